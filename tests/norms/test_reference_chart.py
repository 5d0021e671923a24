"""The shipped SYNTHETIC reference chart: small, labelled, loadable, and equal to a fresh fit."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.norms import GrowthChart, load_reference_chart, reference_chart_path

SCRIPT = Path(__file__).resolve().parents[2] / "reference_data" / "reference_chart.py"


def _script():
    spec = importlib.util.spec_from_file_location("reference_chart_script", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_shipped_chart_is_small_labelled_and_complete() -> None:
    folder = reference_chart_path()
    size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
    assert size <= 5e6
    chart = load_reference_chart()
    assert chart.targets_ == ["ei_ratio_mean", *(f"ei_ratio_roi_{i}" for i in range(68))]
    assert chart.family_.name == "SHASHo2" and chart.converged_.all()
    assert chart.provenance_["synthetic"] is True and "SYNTHETIC" in chart.provenance_["label"]
    assert chart.provenance_["atlas"]["regions"] == list(DK68_REGIONS)
    assert "SYNTHETIC" in (folder / "README.md").read_text()


def test_shipped_chart_equals_a_fresh_fit(tmp_path) -> None:
    mod = _script()
    fresh = GrowthChart.load(mod.fit_reference_chart().save(tmp_path / "chart"))
    assert mod.centile_difference(fresh, load_reference_chart()) <= mod.CHECK_TOL
    ages = np.array([10.0, 50.0, 90.0])
    a = fresh.centiles(ages, "female")["C50"].to_numpy()
    b = load_reference_chart().centiles(ages, "female")["C50"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-9)
