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


def test_combine_mean_averages_every_searchs_best_candidate(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    subject = [_subject("a", 0.1, 0)]
    best = dataclasses.replace(_settings(8), searches=3, combine="best")
    mean = dataclasses.replace(best, combine=None)  # the default with several searches
    fit_group(subject, [tmp_path / "best"], best)
    (outcome,) = fit_group(subject, [tmp_path / "mean"], mean)
    assert outcome.status == "done"
    ck = tmp_path / "mean" / "checkpoint"
    val, test = _npz(ck / "val_pooled.npz"), _npz(ck / "test.npz")
    total = val["corr"] + val["l1"] + val["ks"]

    # every search's own best validated candidate was tested
    bests = {}
    for r in (0, 1, 2):
        own = np.flatnonzero((val["search"] == r) & np.isfinite(total))
        bests[r] = int(own[np.argmin(total[own])])
    assert set(bests.values()) <= set(test["order"].tolist())

    # E/I = geometric mean over the searches of each one's duplicate-averaged S_E/S_I
    rows = [int(np.flatnonzero(test["order"] == bests[r])[0]) for r in (0, 1, 2)]
    members = []
    for j in rows:
        ok = test["valid"][j].astype(bool)
        members.append((test["s_e"][j][ok] / test["s_i"][j][ok]).mean(axis=0))
    members = np.array(members)
    expected = np.exp(np.log(members).mean(axis=0))
    ei = pd.read_csv(tmp_path / "mean" / "EI_ratio.csv")
    np.testing.assert_allclose(ei["EI_ratio"], expected, rtol=1e-9)
    assert not np.allclose(members[0], members[1])  # the searches did not all find one answer
    # S_E and S_I are combined the same way, so the row's S_E / S_I is its E/I (up to the
    # duplicates' noise; arithmetic means of different searches' S_E, S_I were not)
    s_e = np.exp(
        np.mean([np.log(test["s_e"][j][test["valid"][j].astype(bool)].mean(0)) for j in rows], 0)
    )
    np.testing.assert_allclose(ei["S_E"], s_e, rtol=1e-9)
    np.testing.assert_allclose(ei["S_E"] / ei["S_I"], ei["EI_ratio"], rtol=0.02)

    # the interval is centred on the mean and covers every search's answer
    assert (ei["EI_ratio_lo"] < ei["EI_ratio"]).all() and (ei["EI_ratio"] < ei["EI_ratio_hi"]).all()
    assert (members >= ei["EI_ratio_lo"].to_numpy() - 1e-12).all()
    assert (members <= ei["EI_ratio_hi"].to_numpy() + 1e-12).all()

    # parameters are the winner's, the same as with "best"
    run = json.loads((tmp_path / "mean" / "run.json").read_text())
    assert run["result"]["combine"] == "mean"
    assert sorted(run["result"]["ensemble_searches"]) == [0, 1, 2]
    assert len(run["result"]["ensemble_test_total"]) == 3
    assert run["fit_quality"]["metrics"]["ensemble_spread_log_mean"] > 0
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "mean" / "best_parameters.csv"),
        pd.read_csv(tmp_path / "best" / "best_parameters.csv"),
    )
    run_best = json.loads((tmp_path / "best" / "run.json").read_text())
    assert "combine" not in run_best["result"]


def test_combine_setting() -> None:
    from delssome_norms.cli.estimate_cmd import settings_from_args
    from delssome_norms.cli.main import build_parser

    with pytest.raises(InvalidInputError, match="--searches >= 2"):
        FitSettings(combine="mean")
    with pytest.raises(InvalidInputError, match="best, mean"):
        FitSettings(searches=2, combine="median")
    assert "combine" not in FitSettings().fingerprint()  # old checkpoints stay valid
    assert "combine" not in FitSettings(searches=2, combine="best").fingerprint()
    assert FitSettings(searches=2).combine_rule == "mean"  # the default with several searches
    assert FitSettings(searches=2).fingerprint()["combine"] == "mean"
    assert FitSettings().combine_rule == "best"
    args = build_parser().parse_args(
        ["estimate-ei", "--fc", "f", "--fcd-cdf", "c", "--tr", "0.72", "--scan-length", "864",
         "--out-dir", "o", "--searches", "4", "--combine", "mean"]
    )  # fmt: skip
    s = settings_from_args(args)
    assert (s.searches, s.combine) == (4, "mean")


def test_combine_in_the_pipeline_hash_only_when_it_averages() -> None:
    import hashlib

    from delssome_norms.fit.outputs import PIPELINE_SETTINGS_IGNORED, subject_provenance

    subject = _subject("a", 0.1, 0)

    def sha(settings: FitSettings) -> str:
        return subject_provenance(subject, settings, "[1, gradient]")["pipeline"]["settings_sha256"]

    one = FitSettings()
    # a single search hashes as before combine existed (results of older versions still collect)
    old = {k: v for k, v in one.to_dict().items() if k not in PIPELINE_SETTINGS_IGNORED}
    old.pop("combine")
    assert sha(one) == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()
    # the default with several searches is "mean", the same pipeline as asking for it
    assert sha(FitSettings(searches=4)) == sha(FitSettings(searches=4, combine="mean"))
    assert sha(FitSettings(searches=4)) != sha(FitSettings(searches=4, combine="best"))
