"""The README's Python example (arrays -> E/I -> a scored person, no files) runs and is right.

The example's E/I is compared with the file-based CLI path (``delssome-norms estimate-ei`` with the
same settings and seed: identical numbers) and with the synthetic subject's known true E/I.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import load_reference_subjects
from delssome_norms.surrogate import default_pretrained_path

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- readme-example -->"


def readme_example() -> str:
    """The first ```python block after the marker."""
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, "README lost its example marker"
    m = re.search(r"```python\n(.*?)```", text[text.index(MARKER) :], re.S)
    assert m is not None
    return m.group(1)


def test_example_is_at_most_ten_lines() -> None:
    lines = [ln for ln in readme_example().splitlines() if ln.strip()]
    assert len(lines) <= 10, lines


@pytest.mark.skipif(
    not (Path(default_pretrained_path()) / "model.safetensors").is_file(),
    reason="packaged surrogate weights absent",
)
def test_readme_example_runs_and_matches_the_cli(tmp_path: Path, capsys) -> None:
    ns: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(readme_example(), str(README), "exec"), ns)
    est, scores, person = ns["est"], ns["scores"], ns["person"]
    # a Python user is told what estimate-ei prints: the tiny budget's interval is uncalibrated
    from delssome_norms.errors import FitQualityWarning

    notes = [str(w.message) for w in caught if issubclass(w.category, FitQualityWarning)]
    assert any("the interval is not calibrated for this fit" in n for n in notes), notes
    assert len(notes) == len(est.result_.quality_notes())
    ei = est.result_.ei
    subjects = load_reference_subjects()
    # the estimate recovers the synthetic subject's regional pattern even with the tiny budget
    assert ei.index[0] == "lh_bankssts" and len(ei) == 68
    assert np.corrcoef(ei.to_numpy(), subjects.sim_ei_ratio[0])[0, 1] > 0.5
    # one score per target (mean + 68 regions), finite, z = Phi^-1(centile)
    # the fit's verdict reaches the scores: a flagged fit is a poor_fit row, its reasons kept
    assert len(scores) == 69
    flags = ["poor_fit"] * est.result_.flagged + ["interval_uncalibrated"]
    assert est.result_.interval_calibrated is False  # the tiny budget is not calibrated
    assert scores["flag"].eq(";".join(flags)).all()
    assert scores["ei_interval_calibrated"].eq(False).all()
    reasons = ";".join(est.result_.quality.get("reasons", []))
    assert scores["fit_flag_reasons"].eq(reasons).all()
    lo, hi = est.result_.mean_interval
    mean_rows = scores[scores["target"] == "ei_ratio_mean"]
    assert (
        mean_rows["centile_lo"].iloc[0]
        <= mean_rows["centile"].iloc[0]
        <= mean_rows["centile_hi"].iloc[0]
    )
    assert lo < est.result_.ei.mean() < hi
    from scipy.stats import norm

    np.testing.assert_allclose(scores["z"], norm.ppf(scores["centile"]), atol=1e-9)
    # the row carries its fit's pipeline: a chart of other regions (names) refuses it, as it
    # refuses a collect table whose sidecar says so
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.norms import load_reference_chart

    other = dict(est.result_.provenance["pipeline"], regions_sha256="0" * 64)
    table = est.result_.to_table(person)
    assert table.attrs["delssome_norms_provenance"]["pipeline"] == est.result_.provenance["pipeline"]
    table.attrs["delssome_norms_provenance"] = {"pipeline": other}
    with pytest.raises(InvalidInputError, match="regions_sha256 is '000000000000"):
        load_reference_chart().score(table)
    row = scores.set_index("target")
    assert row.loc["ei_ratio_mean", "value"] == pytest.approx(ei.mean(), rel=1e-12)
    # the same fit through files (the CLI) gives the same numbers
    fc, cdf = tmp_path / "fc.csv", tmp_path / "cdf.csv"
    np.savetxt(fc, subjects.fc[0], delimiter=",", fmt="%.17g")
    np.savetxt(cdf, subjects.fcd_cdf[0][:, None], fmt="%.17g")
    s = est.resolved_settings()
    code = main(
        [
            "estimate-ei", "--fc", str(fc), "--fcd-cdf", str(cdf), "--tr", "0.72",
            "--scan-length", "432", "--mode", "surrogate", "--subject-id", "subject",
            "--generations", str(s.cmaes.generations), "--popsize", str(s.cmaes.popsize),
            "--mu", str(s.cmaes.mu), "--n-dup", str(s.n_dup), "--test-top-k", str(s.test_top_k),
            "--dt-train", str(s.dt_train), "--dt-val", str(s.dt_val), "--dt-test", str(s.dt_test),
            "--out-dir", str(tmp_path / "out"), "--quiet",
        ]
    )  # fmt: skip
    capsys.readouterr()
    assert code == 0
    cli = pd.read_csv(tmp_path / "out" / "EI_ratio.csv")["EI_ratio"].to_numpy()
    np.testing.assert_allclose(ei.to_numpy(), cli, rtol=1e-12, atol=0)
