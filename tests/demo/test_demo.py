"""The README's main command, ``delssome-norms demo``, on tiny fit settings (one subject)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from delssome_norms.cli.main import main


def test_demo_runs_and_finds_the_built_in_effects(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    # 6 x 10: the FIC stability gate needs a few generations to find stable candidates (unstable
    # ones are not simulated, so they cost next to nothing)
    argv = ["demo", "--out", str(out), "--subjects", "1", "--generations", "6", "--popsize", "10"]
    assert main([*argv, "--mode", "euler"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["synthetic"] is True and summary["estimation"]["mode"] == "euler"
    # each fitted subject has a 90 % interval around its mean E/I, checked against its truth
    est = pd.read_csv(out / "estimation_vs_truth.csv")
    assert (est["mean_ei_lo"] <= est["mean_ei_fitted"]).all()
    assert (est["mean_ei_fitted"] <= est["mean_ei_hi"]).all()
    inside = (est["mean_ei_lo"] <= est["mean_ei_true"]) & (est["mean_ei_true"] <= est["mean_ei_hi"])
    assert (inside == est["truth_in_interval"]).all()
    assert summary["estimation"]["truths_in_interval"] == int(inside.sum())
    # patients carry a built-in +-2 SD shift in one region group: the charts must find it
    pat = summary["patients"]
    assert pat["true_shift_sd"] == 2.0
    assert 1.2 < pat["mean_z_shifted_regions"] < 2.8
    assert abs(pat["mean_z_other_regions"]) < 0.5
    assert pat["corr_z_with_true_deviation"] > 0.6
    # the reference cohort is built with female > male in median and in spread
    assert summary["charts"]["all_converged"]
    sex = summary["sex_differences"]
    for test in ("mu_lr", "sigma_lr"):
        assert sex[test]["mean_target_p"] < 0.05, test
        assert sex[test]["mean_target_direction"] == "female > male", test
        assert sex[test]["regions_fdr_significant"] >= 60, test
    report = (out / "report.md").read_text()
    assert "SYNTHETIC" in report.upper()
    for name in summary["figures"].values():
        with Image.open(out / "figures" / name) as img:
            w, h = img.size
            pixels = np.asarray(img.convert("L"), dtype=float)
        assert w > 300 and h > 200 and pixels.std() > 5, name  # a real, non-blank figure
        assert f"figures/{name}" in report


def test_brain_map_values_are_the_chart_median() -> None:
    """Figure 4 shows the median at age 30 (it once showed the 0.5th centile: q is in percent)."""
    from delssome_norms.datasets import load_reference_table
    from delssome_norms.demo import _regional_median_at
    from delssome_norms.norms import load_reference_chart

    median = _regional_median_at(load_reference_chart(), 30.0)
    table = load_reference_table()
    near_30 = table[(table["age_in_years"] > 28) & (table["age_in_years"] < 32)]
    empirical = near_30[[f"ei_ratio_roi_{i}" for i in range(68)]].median().to_numpy()
    assert np.abs(median / empirical - 1).max() < 0.05
    assert np.corrcoef(median, empirical)[0, 1] > 0.98
