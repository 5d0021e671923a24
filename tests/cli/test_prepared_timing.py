"""A fit of prepare's FC/FCD-CDF uses the timing they were computed with: the record beside them
(``prepare.json``) refuses another TR, scan length or FCD window, in validate, estimate-ei and
cohort, before any work; an FC edited after prepare (its digest differs) is not held to it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import load_subject
from delssome_norms.io import read_fc

TR, FRAMES = 0.72, 400  # scan 288 s, FCD window round(60 / 0.72) = 83 frames


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("prep")
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((FRAMES, 68)) + 0.6 * rng.standard_normal((FRAMES, 1))
    pd.DataFrame(ts, columns=list(DK68_REGIONS)).to_csv(d / "run.tsv", sep="\t", index=False)
    argv = ["prepare", "--timeseries", str(d / "run.tsv"), "--tr", str(TR), "--out-dir", str(d)]
    assert main([*argv, "--subject-id", "sub-01"]) == 0
    return d


def _load(d: Path, tr=TR, scan=FRAMES * TR, window=None):
    return load_subject(
        "sub-01", tr, scan, fc=d / "sub-01_FC.csv", fcd_cdf=d / "sub-01_FCD_CDF.csv",
        fcd_window=window,
    )  # fmt: skip


def test_the_prepared_timing_is_accepted(prepared) -> None:
    assert _load(prepared).tr == TR
    assert _load(prepared, scan=FRAMES * TR * 1.05).scan_length == pytest.approx(302.4)  # slack


@pytest.mark.parametrize(
    ("kw", "says"),
    [
        ({"tr": 2.0}, "TR 2 s, but the FC was computed at TR 0.72 s"),
        ({"scan": 864.0}, "scan length 864 s, but the runs were 288 s (400 frames)"),
        ({"window": 40}, "FCD window 40 frames, but the FCD-CDF was computed with 83"),
    ],
)
def test_other_timing_is_refused_naming_the_record(prepared, kw, says) -> None:
    with pytest.raises(InvalidInputError, match=r"prepare\.json") as err:
        _load(prepared, **kw)
    assert says in str(err.value)


def test_an_fc_edited_after_prepare_is_not_held_to_its_record(prepared, tmp_path) -> None:
    for name in ("sub-01_FC.csv", "sub-01_FCD_CDF.csv", "sub-01_prepare.json"):
        (tmp_path / name).write_bytes((prepared / name).read_bytes())
    fc = read_fc(tmp_path / "sub-01_FC.csv")
    np.savetxt(tmp_path / "sub-01_FC.csv", fc, delimiter=",")  # rewritten by another tool
    assert _load(tmp_path, tr=2.0, scan=800.0).tr == 2.0


def test_validate_and_estimate_refuse_before_the_fit(prepared, tmp_path, capsys) -> None:
    files = ["--fc", str(prepared / "sub-01_FC.csv"), "--fcd-cdf", str(prepared / "sub-01_FCD_CDF.csv")]
    assert main(["validate", *files, "--tr", "2.0", "--scan-length", "800"]) == 2
    err = capsys.readouterr().err
    assert "computed at TR 0.72 s" in err and "Traceback" not in err
    argv = [
        "estimate-ei",
        *files,
        "--tr",
        "2.0",
        "--scan-length",
        "800",
        "--out-dir",
        str(tmp_path / "f"),
    ]
    assert main(argv) == 2
    assert "computed at TR 0.72 s" in capsys.readouterr().err
    assert not (tmp_path / "f" / "run.json").exists()
    assert main(["validate", *files, "--tr", str(TR), "--scan-length", str(FRAMES * TR)]) == 0


def test_the_python_api_refuses_too(prepared) -> None:
    from delssome_norms.pipeline import EIEstimator

    fc, cdf = prepared / "sub-01_FC.csv", prepared / "sub-01_FCD_CDF.csv"
    with pytest.raises(InvalidInputError, match=r"computed at TR 0\.72 s"):
        EIEstimator().fit(fc, cdf, tr=2.0, scan_length=800.0)
    with pytest.raises(InvalidInputError, match=r"computed with 83"):
        EIEstimator(fcd_window=40).fit(fc, cdf, tr=TR, scan_length=FRAMES * TR)
