"""A fit (cohort/estimate-ei through ``load_subject``, and ``EIEstimator.fit`` given files)
refuses an FCD-CDF file that ``prepare`` did not write with the FC it is given: another
subject's, or one of another FCD window (``validate`` refuses it too)."""

from __future__ import annotations

import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import load_subject
from delssome_norms.pipeline import EIEstimator
from tests.io.test_review_realdata_1207b import _prepare


def test_fits_refuse_an_fcd_cdf_not_written_with_the_fc(tmp_path) -> None:
    _prepare(tmp_path, "s8", "--fcd-window", "10")
    _prepare(tmp_path, "s9")
    o = tmp_path / "o"
    fc, own, other = o / "s9_FC.csv", o / "s9_FCD_CDF.csv", o / "s8_FCD_CDF.csv"
    with pytest.raises(InvalidInputError, match=r"s8_FCD_CDF\.csv: is not the FCD-CDF"):
        load_subject("s9", 0.72, 216.0, fc=fc, fcd_cdf=other)
    subject = load_subject("s9", 0.72, 216.0, fc=fc, fcd_cdf=own)
    assert subject.fc.shape == (68, 68)
    est = EIEstimator(mode="surrogate", generations=1, popsize=4, mu=2, n_dup=1)
    with pytest.raises(InvalidInputError, match=r"s8_FCD_CDF\.csv: is not the FCD-CDF"):
        est.fit(str(fc), str(other), tr=0.72, scan_length=216.0, subject_id="s9")
    assert not hasattr(est, "result_")


def test_the_same_fcd_cdf_in_another_file_is_accepted(tmp_path) -> None:
    import numpy as np

    from delssome_norms.io.readers import read_fcd_cdf

    _prepare(tmp_path, "s9")
    o = tmp_path / "o"
    fc, own = o / "s9_FC.csv", o / "s9_FCD_CDF.csv"
    npy = tmp_path / "cdf.npy"
    np.save(npy, read_fcd_cdf(own))  # the same values, another format and name
    subject = load_subject("s9", 0.72, 216.0, fc=fc, fcd_cdf=npy)
    np.testing.assert_array_equal(
        subject.fcd_cdf, load_subject("s9", 0.72, 216.0, fc=fc, fcd_cdf=own).fcd_cdf
    )
    changed = read_fcd_cdf(own)
    changed[:5000] = np.minimum(changed[:5000] * 1.01, 1.0)
    np.save(npy, np.maximum.accumulate(changed))
    with pytest.raises(InvalidInputError, match=r"nor its values those of s9_FCD_CDF\.csv"):
        load_subject("s9", 0.72, 216.0, fc=fc, fcd_cdf=npy)


def test_load_subject_timeseries_needs_no_timing_arguments(tmp_path) -> None:
    """``tr`` from the runs' sidecar and the scan length from their frames (docstring, notebook
    01): both arguments may be left out."""
    import json

    import numpy as np
    import pandas as pd

    from delssome_norms.datasets import DK68_REGIONS

    run = tmp_path / "sub-01_run-1.tsv"
    x = np.random.default_rng(0).standard_normal((200, 68))
    pd.DataFrame(x, columns=list(DK68_REGIONS)).to_csv(run, sep="\t", index=False)
    run.with_suffix(".json").write_text(json.dumps({"RepetitionTime": 0.72}))
    subject = load_subject("sub-01", timeseries=run)
    assert subject.tr == 0.72 and subject.scan_length == pytest.approx(200 * 0.72)
    np.testing.assert_allclose(subject.fc, np.corrcoef(x.T), atol=1e-12)
