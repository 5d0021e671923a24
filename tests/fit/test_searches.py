"""Several independent CMA-ES searches per subject (``FitSettings.searches``), analytic simulator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import use_analytic_simulator
from test_lockstep import _settings, _subject

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import FitSettings, fit_group


def _npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _val_totals(path: Path) -> np.ndarray:
    v = _npz(path)
    return v["corr"] + v["l1"] + v["ks"]


def test_searches_pool_their_validated_candidates(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    subject = [_subject("a", 0.1, 0)]
    one = _settings(8)
    three = dataclasses.replace(one, searches=3)
    fit_group(subject, [tmp_path / "one"], one)
    outcomes = fit_group(subject, [tmp_path / "three"], three)
    assert outcomes[0].status == "done"
    ck = tmp_path / "three" / "checkpoint"

    # the first search is the single-search run: same seed, same batch positions, same numbers
    for g in range(8):
        a, b = (
            _npz(tmp_path / "one" / "checkpoint" / f"train_{g:05d}.npz"),
            _npz(ck / f"train_{g:05d}.npz"),
        )
        assert all(np.array_equal(a[k], b[k]) for k in ("candidates", "corr", "l1", "ks"))
    np.testing.assert_array_equal(
        _val_totals(tmp_path / "one" / "checkpoint" / "val.npz"), _val_totals(ck / "val.npz")
    )

    # the other searches start elsewhere; the winner is the best validated over all three
    firsts = [_npz(p / "train_00000.npz")["candidates"] for p in (ck, ck / "search_1", ck / "search_2")]
    assert not np.allclose(firsts[0], firsts[1]) and not np.allclose(firsts[1], firsts[2])
    per_search = [_val_totals(p / "val.npz") for p in (ck, ck / "search_1", ck / "search_2")]
    pooled = _npz(ck / "val_pooled.npz")
    assert sorted(set(pooled["search"].tolist())) == [0, 1, 2]
    assert len(pooled["search"]) == sum(len(t) for t in per_search)
    best = min(np.nanmin(t) for t in per_search)
    fq = pd.read_csv(tmp_path / "three" / "fit_quality.csv").set_index("stage")["total_loss"]
    assert fq["val"] == pytest.approx(best, rel=1e-12)
    fq_one = pd.read_csv(tmp_path / "one" / "fit_quality.csv").set_index("stage")["total_loss"]
    assert fq["val"] < fq_one["val"]  # here another search found the better fit

    run = json.loads((tmp_path / "three" / "run.json").read_text())
    seeds = [s["seed"] for s in run["searches"]]
    assert len(set(seeds)) == 3 and seeds[0] == run["subject_seed"]
    assert run["subject_seed"] == json.loads((tmp_path / "one" / "run.json").read_text())["subject_seed"]
    winner = run["result"]["winner_search"]
    assert np.nanmin(per_search[winner]) == pytest.approx(best, rel=1e-12)


def test_searches_setting() -> None:
    with pytest.raises(InvalidInputError, match="searches"):
        FitSettings(searches=0)
    assert "searches" not in FitSettings().fingerprint()  # old checkpoints stay valid
    assert FitSettings(searches=2).fingerprint()["searches"] == 2


def test_cli_passes_searches_to_the_fit_settings() -> None:
    from delssome_norms.cli.estimate_cmd import settings_from_args
    from delssome_norms.cli.main import build_parser

    args = build_parser().parse_args(
        ["cohort", "--manifest", "m.csv", "--out-dir", "o", "--searches", "3"]
    )
    assert settings_from_args(args).searches == 3


def test_gated_validation_failure_says_what_to_try(tmp_path: Path, monkeypatch) -> None:
    from fit_helpers import AnalyticSimulator

    from delssome_norms.fit import lockstep

    class OutOfBandInValidation(AnalyticSimulator):
        """Train as usual; every re-simulated candidate leaves the rate band (NaN losses)."""

        def simulate(self, params, subject_index, *, seed, timing=None):
            out = super().simulate(params, subject_index, seed=seed, timing=timing)
            return out._replace(corr=np.full_like(out.corr, np.nan), valid=~out.valid)

    use_analytic_simulator(monkeypatch)
    monkeypatch.setattr(lockstep, "EulerEvaluator", OutOfBandInValidation)
    settings = dataclasses.replace(_settings(4), searches=2, rate_gate=(2.7, 3.3))
    (outcome,) = fit_group([_subject("a", 0.1, 0)], [tmp_path / "a"], settings)
    assert outcome.status == "failed" and outcome.stage == "validation"
    assert "--val-per-generation" in outcome.message and "2.7-3.3 Hz" in outcome.message


def test_a_subject_survives_a_failed_search(tmp_path: Path, monkeypatch) -> None:
    from fit_helpers import AnalyticSimulator

    from delssome_norms.fit import lockstep

    class FirstSearchBlowsUp(AnalyticSimulator):
        """Train stage: the first search's candidates (the batch's first ``popsize``) are NaN."""

        def simulate(self, params, subject_index, *, seed, timing=None):
            out = super().simulate(params, subject_index, seed=seed, timing=timing)
            corr = out.corr.copy()
            corr[:12] = np.nan
            return out._replace(corr=corr)

    use_analytic_simulator(monkeypatch)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda m, *a, **k: FirstSearchBlowsUp(*a, **k))
    settings = dataclasses.replace(_settings(4, max_restarts=1), searches=2)
    with pytest.warns(Warning):
        (outcome,) = fit_group([_subject("a", 0.1, 0)], [tmp_path / "a"], settings)
    assert outcome.status == "done"
    run = json.loads((tmp_path / "a" / "run.json").read_text())
    assert "train" in run["searches"][0]["failure"] and run["searches"][1]["failure"] is None
    assert run["result"]["winner_search"] == 1
