"""Fit-quality verdict: each reason's threshold, the gate metric, and a real fit of a model-made
subject (not flagged) next to a subject whose FC is noise (flagged: cost far above the floor)."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from delssome_norms.datasets import load_default_template, region_classes
from delssome_norms.fit import CMAESSettings, FitSettings, fit_group, synthetic_subject
from delssome_norms.fit import quality as q
from delssome_norms.fit.checkpoint import GenerationRecord
from delssome_norms.fit.design import design_matrix, diffusion_gradient
from delssome_norms.fit.parameterisation import Bounds, Parameterisation
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.model import SimulationTiming

GOOD = {
    "test_total": 0.6,
    "self_floor_total": 0.5,
    "gate_rejected_fraction": 0.1,
    "interval_ratio_mean": 2.1,
    "spread_ratio_mean": 1.2,
    "empirical_mean_fc": 0.05,
    "test_fallback": False,
    "valid_test_duplicates": 3,
    "n_dup": 3,
    "rate_outside_fraction": 0.0,
    "interval_missing_regions": 0,
    "interval_mean_missing": False,
}


def test_a_good_fit_is_not_flagged() -> None:
    verdict = q.assess(GOOD)
    assert verdict == {"flagged": False, "reasons": [], "unchecked": [], "metrics": GOOD}
    # weak coupling inside the model's range (>= 0.03) and a wide own spread are recorded, not
    # reasons (uninformative in the benchmark)
    wide = q.assess({**GOOD, "spread_ratio_mean": 5.0, "empirical_mean_fc": 0.04})
    assert not wide["flagged"] and wide["metrics"]["spread_ratio_mean"] == 5.0


@pytest.mark.parametrize(
    ("key", "bad", "reason"),
    [
        ("test_total", 0.5 + q.COST_FLOOR_MARGIN + 0.01, "cost_above_floor"),
        ("gate_rejected_fraction", q.GATE_REJECTED_MAX + 0.01, "gate_rejected_most"),
        ("test_fallback", True, "test_fallback"),
        ("valid_test_duplicates", 2, "few_valid_duplicates"),
        ("rate_outside_fraction", q.RATE_OUTSIDE_MAX + 0.01, "rate_outside_fic"),
        ("interval_missing_regions", 1, "interval_incomplete"),
        ("interval_mean_missing", True, "interval_incomplete"),
    ],
)
def test_each_reason_has_its_own_threshold(key, bad, reason) -> None:
    verdict = q.assess({**GOOD, key: bad})
    assert verdict["flagged"] and verdict["reasons"] == [reason]
    assert reason in q.REASON_TEXT


def test_missing_metrics_raise_no_reason_and_nan_is_stored_as_null() -> None:
    verdict = q.assess({"test_total": 5.0, "self_floor_total": math.nan, "empirical_mean_fc": None})
    assert not verdict["flagged"]
    assert verdict["metrics"]["self_floor_total"] is None
    # ... but the check that could not run is named (n_dup 1 or no interval stage: no floor)
    assert verdict["unchecked"] == ["cost_above_floor"]


def test_gate_fraction_counts_the_last_generations() -> None:
    def rec(n_gated: int) -> GenerationRecord:
        z = np.zeros(10)
        v = np.r_[np.ones(n_gated), np.zeros(10 - n_gated)]
        return GenerationRecord(np.zeros((10, 2)), z, z, z, v)

    records = [rec(10)] * 8 + [rec(6), rec(2)]  # last 20 % = the last 2 generations
    assert q.gate_rejected_fraction(records) == pytest.approx(8 / 20)
    assert math.isnan(q.gate_rejected_fraction([GenerationRecord(np.zeros((2, 2)), *[np.zeros(2)] * 3)]))


def test_rate_outside_fraction_counts_regions_beyond_the_fic_band() -> None:
    """A fit without the stability gate ended at r_E 0.1 Hz and was reported as fine."""
    r_e = np.array([3.0, 2.71, 3.29, 2.69, 3.31, 0.1, 3.0, 3.0, 3.0, np.nan])
    assert q.rate_outside_fraction(r_e) == pytest.approx(0.4)  # 2.69, 3.31, 0.1 and NaN
    assert q.assess({**GOOD, "rate_outside_fraction": q.RATE_OUTSIDE_MAX})["reasons"] == []


def test_mean_fc_is_the_upper_triangle_mean() -> None:
    fc = np.array([[1.0, 0.2, 0.4], [0.2, 1.0, 0.6], [0.4, 0.6, 1.0]])
    assert q.mean_fc(fc) == pytest.approx(0.4)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    sc = np.array(load_default_template().sc)
    w = np.log1p(100 * sc / sc.max())
    w = w / w.max()
    np.fill_diagonal(w, 1.0)
    g = diffusion_gradient(w, region_classes() == "sensory")
    x = design_matrix(g, warn=False)
    timing = SimulationTiming(
        tr=0.72, scan_length=28.8, dt=0.006, burn_in=14.4, fcd_window=10, warmup_steps=500
    )
    space = Parameterisation(x, g, Bounds(wEI=(0.0, 5.0)))
    truth = np.array([2.5, 0.1, 1.8, 0.35, 1.2, 0.0045, 0.0002])
    model_made = synthetic_subject("model", truth, space, sc, timing, seed=11).inputs
    ts = np.random.default_rng(3).standard_normal((200, 68))
    noise = SubjectInputs(
        subject_id="noise",
        fc=np.corrcoef(ts.T),  # no structure, mean FC ~0
        fcd_cdf=np.linspace(0, 1, model_made.fcd_cdf.size),  # FCD uniform on [-1, 1]
        tr=0.72,
        scan_length=28.8,
        sc=sc,
        gradient=g,
    )
    settings = FitSettings(
        cmaes=CMAESSettings(generations=8, popsize=16, mu=4),
        seed=7, n_dup=3, dt_train=0.006, dt_val=0.006, dt_test=0.006, burn_in=14.4,
        fcd_window=10, warmup_steps=500, test_top_k=3,
    )  # fmt: skip
    out = tmp_path_factory.mktemp("quality")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcomes = fit_group([model_made, noise], [out / "model", out / "noise"], settings)
    assert [o.status for o in outcomes] == ["done", "done"]
    return out


def bm_fc_below(bad: dict, good: dict) -> bool:
    """Noise FC is weaker than model-made FC; the mean FC is recorded, not a reason by itself."""
    return bad["metrics"]["empirical_mean_fc"] < good["metrics"]["empirical_mean_fc"]


def _verdict(d: Path) -> dict:
    return json.loads((d / "run.json").read_text())["fit_quality"]


def test_cost_floor_flags_noise_but_not_a_model_made_subject(fitted: Path) -> None:
    good, bad = _verdict(fitted / "model"), _verdict(fitted / "noise")
    assert "cost_above_floor" not in good["reasons"]
    assert "cost_above_floor" in bad["reasons"] and bad["flagged"]
    assert bm_fc_below(bad, good)
    gm, bm = good["metrics"], bad["metrics"]
    # the model-made subject's test cost is close to the model's own floor; noise is far above it
    assert gm["test_total"] < gm["self_floor_total"] + q.COST_FLOOR_MARGIN
    assert bm["test_total"] > bm["self_floor_total"] + 2 * q.COST_FLOOR_MARGIN
    for name, m in (("model", gm), ("noise", bm)):
        assert 0 <= m["gate_rejected_fraction"] <= 1 and m["n_dup"] == 3
        r_e = np.loadtxt(fitted / name / "EI_ratio.csv", delimiter=",", skiprows=1, usecols=4)
        assert m["rate_outside_fraction"] == pytest.approx(np.mean((r_e < 2.7) | (r_e > 3.3)))


@pytest.mark.parametrize("name", ["model", "noise"])
def test_ei_ratio_csv_carries_the_verdict_of_run_json(fitted: Path, name: str) -> None:
    import pandas as pd

    from delssome_norms.pipeline import EIResult

    verdict = _verdict(fitted / name)
    table = pd.read_csv(fitted / name / "EI_ratio.csv", keep_default_na=False)
    assert table["fit_flagged"].astype(str).eq(str(verdict["flagged"])).all()
    assert table["fit_flag_reasons"].eq(";".join(verdict["reasons"])).all()
    assert (name == "noise") == bool(verdict["flagged"])  # the noise FC is the poor fit
    # reading the folder back and writing its frame gives the same columns
    frame = EIResult.from_dir(fitted / name).to_frame()
    assert frame["fit_flagged"].eq(verdict["flagged"]).all()
    assert frame["fit_flag_reasons"].eq(";".join(verdict["reasons"])).all()
