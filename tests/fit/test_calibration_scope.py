"""Where the interval calibration applies (review of its scope check).

A budget above the calibration's is not measured either; the atlas, a gradient from FC and a
coarser step are compared; Python fits record which surrogate weights scored them and say when
the calibration does not apply; an ensemble that fell back to the best search is not the
calibrated one; ``collect`` names a table whose subjects' intervals come from different floors;
the written floors are rounded up.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_helpers import load_bench_script
from fit_helpers import N_TINY, tiny_cdf, tiny_fc, tiny_sc

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import FitQualityWarning, InputWarning
from delssome_norms.fit import CMAESSettings, FitSettings, SubjectInputs, collect
from delssome_norms.fit import uncertainty as unc
from delssome_norms.fit.checkpoint import Checkpoint
from delssome_norms.fit.cmaes import CMAESSearch
from delssome_norms.fit.design import design_matrix
from delssome_norms.fit.lockstep import SubjectOutcome
from delssome_norms.fit.parameterisation import Bounds, Parameterisation
from delssome_norms.fit.profile_points import KIND_WINNER
from delssome_norms.fit.stages import Member, subject_result

NOT_MEASURED = "; coverage at another budget is not measured)"


def _subject(n: int = N_TINY, regions=None, maps: bool = False) -> SubjectInputs:
    rng = np.random.default_rng(0)
    return SubjectInputs(
        subject_id="a", fc=tiny_fc(n), fcd_cdf=tiny_cdf(0), tr=0.72, scan_length=432.0,
        sc=tiny_sc(n), regions=regions, myelin=rng.normal(size=n) if maps else None,
        gradient=rng.normal(size=n) if maps else None,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- #
# 1. a budget above the calibration's
# ------------------------------------------------------------------------------------------- #
def test_a_default_euler_fit_is_not_covered_by_the_cpu_budget_calibration() -> None:
    cal = unc.load_calibration("euler")
    assert cal["settings"]["generations"] == 30 and cal["settings"]["popsize"] == 50
    default = unc.fit_budget(FitSettings(), 432.0)  # 100 x 100, n_dup 3, 5 tested
    assert unc.calibration_differences(cal, default) == [
        "generations 100 (calibrated at 30" + NOT_MEASURED,
        "popsize 100 (calibrated at 50" + NOT_MEASURED,
        "n_dup 3 (calibrated at 2" + NOT_MEASURED,
        "test_top_k 5 (calibrated at 3" + NOT_MEASURED,
    ]
    # below stays as it was; its own budget is covered
    own = FitSettings(cmaes=CMAESSettings(generations=30, popsize=50), n_dup=2, test_top_k=3)
    assert unc.calibration_differences(cal, unc.fit_budget(own, 432.0)) == []
    less = replace(own, n_dup=1)
    assert unc.calibration_differences(cal, unc.fit_budget(less, 432.0)) == ["n_dup 1 (calibrated at 2)"]
    more_val = replace(own, val_per_generation=3)
    assert unc.calibration_differences(cal, unc.fit_budget(more_val, 432.0)) == [
        "val_per_generation 3 (calibrated at 1" + NOT_MEASURED
    ]


def test_a_default_surrogate_fit_stays_calibrated() -> None:
    from delssome_norms.surrogate.evaluate import weights_sha256

    cal = unc.load_calibration("surrogate")
    default = replace(FitSettings(mode="surrogate"), surrogate_weights_sha256=weights_sha256())
    assert unc.calibration_differences(cal, unc.fit_budget(default, 432.0)) == []
    dk68 = _subject(len(DK68_REGIONS), regions=DK68_REGIONS)  # default maps, DK68
    budget = unc.fit_budget(default, 864.0, dk68, "[1, myelin, gradient]; gradient: default DK68 maps")
    assert unc.calibration_differences(cal, budget) == []
    # float64 is no difference
    budget = unc.fit_budget(replace(default, dtype="float64"), 432.0)
    assert unc.calibration_differences(cal, budget) == []


def test_the_cohort_warning_names_the_calibrations_budget() -> None:
    with pytest.warns(InputWarning) as caught:
        unc.warn_uncalibrated(FitSettings(), [432.0])
    (message,) = [str(w.message) for w in caught]
    assert "generations 100 (calibrated at 30" + NOT_MEASURED + " [1 of 1]" in message
    assert "measured at (30 x 50, n_dup 2, test_top_k 3, 432-s scans)" in message
    assert "default budget" not in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unc.warn_uncalibrated(FitSettings(mode="surrogate"), [432.0, 900.0])


# ------------------------------------------------------------------------------------------- #
# 2. atlas, maps, steps
# ------------------------------------------------------------------------------------------- #
def test_atlas_maps_and_steps_are_compared() -> None:
    cal = unc.load_calibration("surrogate")
    settings = FitSettings(mode="surrogate")
    dk68 = _subject(len(DK68_REGIONS), regions=DK68_REGIONS)
    default_design = "[1, myelin, gradient]; gradient: default DK68 maps"
    assert unc.calibration_differences(cal, unc.fit_budget(settings, 432.0, dk68, default_design)) == []
    # 68 regions without names are taken in DK68 order (as the shipped maps are)
    unnamed = _subject(len(DK68_REGIONS))
    assert (
        unc.calibration_differences(cal, unc.fit_budget(settings, 432.0, unnamed, default_design)) == []
    )
    custom = _subject(40, maps=True)
    assert unc.calibration_differences(
        cal, unc.fit_budget(settings, 432.0, custom, "[1, myelin, gradient]; gradient: given")
    ) == ["atlas custom-40 (calibrated on DK68)"]
    renamed = _subject(68, regions=tuple(f"r{i}" for i in range(68)), maps=True)
    assert unc.calibration_differences(
        cal, unc.fit_budget(settings, 432.0, renamed, "[1, myelin, gradient]; gradient: given")
    ) == ["atlas custom-68 (calibrated on DK68)"]
    fc_maps = "(calibrated with the maps its truths were built on; a gradient from FC is another map)"
    for source, name in (("cohort FC", "cohort FC gradient"), ("subject FC", "subject FC gradient")):
        budget = unc.fit_budget(settings, 432.0, dk68, f"[1, gradient]; gradient: {source}")
        assert unc.calibration_differences(cal, budget) == [f"maps {name} {fc_maps}"]
    # without a design: from the subject's maps and settings.maps
    fc_gradient = replace(settings, maps="fc-gradient")
    budget = unc.fit_budget(fc_gradient, 432.0, dk68)
    assert unc.calibration_differences(cal, budget) == [f"maps subject FC gradient {fc_maps}"]
    # a coarser step is a difference, a finer one is not; a calibration without steps: 0.005 s
    coarse = replace(settings, dt_train=0.01, dt_val=0.0075)
    assert unc.calibration_differences(cal, unc.fit_budget(coarse, 432.0)) == [
        "dt_train 0.01 s (calibrated at 0.005 s; a coarser step is not measured)",
        "dt_val 0.0075 s (calibrated at 0.005 s; a coarser step is not measured)",
    ]
    fine = replace(settings, dt_train=0.0025, dt_val=0.0025)
    assert unc.calibration_differences(cal, unc.fit_budget(fine, 432.0)) == []
    old = {**cal, "settings": {k: v for k, v in cal["settings"].items() if not k.startswith("dt_")}}
    assert len(unc.calibration_differences(old, unc.fit_budget(coarse, 432.0))) == 2
    assert cal["settings"]["dt_train"] == cal["settings"]["dt_val"] == 0.005


# ------------------------------------------------------------------------------------------- #
# 3. the weights' identity in Python fits
# ------------------------------------------------------------------------------------------- #
class _Backend:
    """A surrogate backend stand-in whose weights have another digest than the shipped ones."""

    sha = "ab" * 32

    def check_available(self, weights=None) -> None:
        pass

    def weights_sha256(self, weights=None) -> str:
        return self.sha


class _Stop(Exception):
    pass


def test_python_fits_record_which_weights_scored_them(monkeypatch, tmp_path: Path) -> None:
    from delssome_norms.fit import cohort, lockstep

    seen: list[FitSettings] = []

    def fake_group(subjects, dirs, settings, **kw):
        seen.append(settings)
        return [SubjectOutcome(s.subject_id, "failed", "input", "stand-in") for s in subjects]

    settings = FitSettings(mode="surrogate")
    assert settings.surrogate_weights_sha256 is None
    monkeypatch.setattr(lockstep, "fit_group", fake_group)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)  # the subject has no maps
        lockstep.estimate_ei(_subject(), None, settings, surrogate=_Backend())
    assert seen[-1].surrogate_weights_sha256 == _Backend.sha
    # the calibration then says these are not the shipped weights
    cal = unc.load_calibration("surrogate")
    shipped = cal["settings"]["surrogate_weights_sha256"]
    assert unc.calibration_differences(cal, unc.fit_budget(seen[-1], 432.0)) == [
        f"surrogate weights {'ab' * 6} (calibrated with the shipped {shipped[:12]})"
    ]
    monkeypatch.undo()

    def stop_fingerprint(subject, settings, *a):
        seen.append(settings)
        raise _Stop

    monkeypatch.setattr(lockstep, "run_fingerprint", stop_fingerprint)
    with pytest.raises(_Stop):
        lockstep.fit_group([_subject()], [tmp_path / "a"], settings, surrogate=_Backend())
    assert seen[-1].surrogate_weights_sha256 == _Backend.sha

    def stop_cohort(table, out_dir, settings, *a):
        seen.append(settings)
        raise _Stop

    monkeypatch.setattr(cohort, "_run_cohort", stop_cohort)
    monkeypatch.setattr(cohort, "check_manifest_columns", lambda *a: None)
    with pytest.raises(_Stop):
        cohort.run_cohort(pd.DataFrame({"subject_id": ["a"]}), tmp_path, settings, surrogate=_Backend())
    assert seen[-1].surrogate_weights_sha256 == _Backend.sha
    # an identity given is kept; Euler mode has none
    given = replace(settings, surrogate_weights_sha256="cd" * 32)
    with pytest.raises(_Stop):
        lockstep.fit_group([_subject()], [tmp_path / "a"], given, surrogate=_Backend())
    assert seen[-1].surrogate_weights_sha256 == "cd" * 32


# ------------------------------------------------------------------------------------------- #
# 4. fit.estimate_ei says when the calibration does not apply
# ------------------------------------------------------------------------------------------- #
def test_estimate_ei_warns_as_the_estimator_does(tmp_path: Path) -> None:
    from delssome_norms.fit import estimate_ei
    from delssome_norms.pipeline import EIResult

    subject = SubjectInputs(
        subject_id="a", fc=tiny_fc(level=0.2, seed=0), fcd_cdf=tiny_cdf(0), tr=0.72,
        scan_length=14.4, sc=tiny_sc(),
    )  # fmt: skip
    settings = FitSettings(
        cmaes=CMAESSettings(generations=3, popsize=8, mu=3), dt_train=0.005, dt_val=0.005,
        dt_test=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50, test_top_k=3, n_dup=2,
        seed=3, stability_gate=False,
    )  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcome = estimate_ei(subject, tmp_path / "a", settings)
    assert outcome.status == "done"
    said = [str(w.message) for w in caught if issubclass(w.category, FitQualityWarning)]
    # every note EIEstimator emits (built by the same function), once each
    result = EIResult.from_subject_result(outcome.result, outcome.run_info, subject.regions)
    expected = [f"a: {n.replace('(README ', '(README.md ')}" for n in result.quality_notes()]
    assert said == expected
    notes = [n for n in said if "not calibrated" in n]
    assert len(notes) == 1
    assert notes[0].startswith("a: note: the interval is not calibrated for this fit (generations 3 (")
    assert "scan_length 14.4 s (calibrated at 432 s)" in notes[0]
    assert "measured at (30 x 50, n_dup 2, test_top_k 3, 432-s scans)" in notes[0]
    # a finished fit reused from its folder says it again
    with pytest.warns(FitQualityWarning, match=r"^a: note: the interval is not calibrated"):
        assert estimate_ei(subject, tmp_path / "a", settings).status == "skipped"


# ------------------------------------------------------------------------------------------- #
# 5. combine="mean" that fell back to the best search
# ------------------------------------------------------------------------------------------- #
K, D = 3, 2


def _member(tmp_path: Path, valid) -> Member:
    g = np.linspace(-1, 1, N_TINY)
    g = (g - g.mean()) / g.std()
    space = Parameterisation(design_matrix(g, warn=False), g, Bounds(wEI=(0.4, 3.2)))
    cands = np.array([[3.0, 0.1, 2.0, 0.5, 1.0, 0.005, 0.0]] * K) + np.arange(K)[:, None] * 0.01
    val = {
        "candidates": cands, "generation": np.arange(K), "train_corr": np.full(K, 0.3),
        "train_l1": np.zeros(K), "train_ks": np.zeros(K), "corr": np.array([0.1, 0.2, 0.3]),
        "l1": np.zeros(K), "ks": np.zeros(K), "search": np.array([0, 0, 1]),
    }  # fmt: skip
    rng = np.random.default_rng(1)
    s_e, s_i = rng.uniform(0.1, 0.2, (K, D, N_TINY)), rng.uniform(0.04, 0.06, (K, D, N_TINY))
    test = {
        "order": np.arange(K), "corr": np.array([0.4, 0.3, 0.2]), "l1": np.zeros(K),
        "ks": np.zeros(K), "s_e": s_e, "s_i": s_i, "r_e": np.full((K, D, N_TINY), 3.0),
        "valid": np.asarray(valid, dtype=bool),
    }  # fmt: skip
    first = int(np.flatnonzero(np.asarray(valid).all(axis=1))[0])
    profile = {
        "kind": np.array([KIND_WINNER]), "position": np.zeros(1), "corr": np.array([0.4]),
        "l1": np.zeros(1), "ks": np.zeros(1), "s_e": s_e[first:first + 1],
        "s_i": s_i[first:first + 1], "r_e": np.full((1, D, N_TINY), 3.0),
        "valid": np.ones((1, D), bool), "dup_total": np.array([[0.39, 0.41]]),
        "pair_corr": np.array([0.2]), "pair_l1": np.zeros(1), "pair_ks": np.zeros(1),
        "dropped": np.array(0),
    }  # fmt: skip
    ckpt = Checkpoint(tmp_path / "ckpt", {"x": 1})
    ckpt.save_stage("val", val)
    ckpt.save_stage("test", test)
    ckpt.save_stage("profile", profile)
    return Member("s", 0, space, CMAESSearch(space, CMAESSettings(popsize=4, mu=2), 0), ckpt)


def test_an_ensemble_that_fell_back_to_the_best_search_is_not_calibrated(tmp_path: Path) -> None:
    settings = FitSettings(mode="surrogate", searches=2)  # combine mean by default
    budget = unc.fit_budget(settings, 432.0)
    assert unc.calibration_differences(unc.load_calibration("surrogate"), budget) == []
    both = subject_result(_member(tmp_path / "both", np.ones((K, D))), mode="surrogate",
                          combine="mean", budget=budget)  # fmt: skip
    assert both.info["ensemble_searches"] == [0, 1]
    assert both.interval["calibration_applies"] is True
    # search 1's only tested row has no valid duplicate: the estimate is the best search's
    valid = [[True, True], [True, True], [False, False]]
    fell = subject_result(_member(tmp_path / "fell", valid), mode="surrogate", combine="mean",
                          budget=budget)  # fmt: skip
    assert fell.info["ensemble_searches"] == [0]
    assert fell.interval["calibration_applies"] is False
    assert fell.interval["calibration_differences"] == [
        "searches combined by best (fewer than two searches had a usable test row)"
    ]


# ------------------------------------------------------------------------------------------- #
# 6. collect over subjects of different calibrations
# ------------------------------------------------------------------------------------------- #
def _finish(root: Path, sid: str, floor_mean: float, source: str) -> None:
    from delssome_norms.fit.outputs import (
        run_fingerprint,
        run_record,
        subject_provenance,
        write_result_files,
    )

    settings = FitSettings()
    n = N_TINY
    rng = np.random.default_rng(abs(hash(sid)) % 1000)
    subject = SubjectInputs(
        subject_id=sid, fc=tiny_fc(n), fcd_cdf=tiny_cdf(0), tr=0.72, scan_length=432.0,
        sc=tiny_sc(n), myelin=np.linspace(0, 1, n), gradient=np.linspace(1, 0, n),
    )  # fmt: skip
    info = {
        "fingerprint": run_fingerprint(subject, settings),
        "provenance": subject_provenance(subject, settings, "[1, myelin, gradient]; gradient: given"),
    }
    ei = rng.uniform(0.8, 1.5, n)
    cal = {"k_region": 1.6449, "k_mean": 1.6449, "floor_region": 0.0916, "floor_mean": floor_mean,
           "source": source, "budget": "30 x 50"}  # fmt: skip
    block = unc.interval_block(ei, {"region": np.zeros(n), "mean": 0.0}, "euler", cal)[2]
    ones = np.ones(n)
    write_result_files(
        root / sid,
        columns={"EI_ratio": ei, "S_E": ei, "S_I": ones, "r_E": 3 * ones},
        parameters={"wEE": ones, "wEI": ones, "sigma": ones, "G": 1.0},
        losses={"test": {"corr_loss": 0.1, "l1_loss": 0.1, "ks_loss": 0.1}},
        run=run_record(sid, ei, np.zeros(3), info, interval=block),
    )


def _collect(tmp: Path, ids: list[str]) -> tuple[list[str], dict]:
    pd.DataFrame({"subject_id": ids, "age_in_years": 20.0 + np.arange(len(ids)), "sex": "male"}).to_csv(
        tmp / "demo.csv", index=False
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collect(tmp / "fits", tmp / "demo.csv", tmp / "table.csv")
    mixed = [str(w.message) for w in caught if "different calibrations" in str(w.message)]
    assert all(issubclass(w.category, InputWarning) for w in caught if str(w.message) in mixed)
    return mixed, json.loads((tmp / "table.provenance.json").read_text())


def test_collect_names_subjects_of_different_calibrations(tmp_path: Path) -> None:
    for sid in ("s1", "s2", "s3"):
        _finish(tmp_path / "fits", sid, 0.0914, "new")
    mixed, side = _collect(tmp_path, ["s1", "s2", "s3"])
    assert mixed == []
    assert side["interval_calibrations"] == [
        {
            "source": "new",
            "floor_log_region": 0.0916,
            "floor_log_mean": 0.0914,
            "k_region": 1.6449,
            "k_mean": 1.6449,
            "subjects": 3,
        }
    ]
    # a subject fitted with the floor before rounding up (0.0913) is of the same calibration
    _finish(tmp_path / "fits", "s0", 0.0913, "new")
    mixed, side = _collect(tmp_path, ["s0", "s1", "s2", "s3"])
    assert mixed == [] and [c["subjects"] for c in side["interval_calibrations"]] == [4]
    # a rerun kept a subject fitted with an older floor (same source text, another floor)
    _finish(tmp_path / "fits", "s4", 0.1026, "new")
    mixed, side = _collect(tmp_path, ["s1", "s2", "s3", "s4"])
    assert len(mixed) == 1
    assert mixed[0].startswith("the subjects' E/I intervals come from 2 different calibrations (3 with")
    assert "1 with floors 0.0916/0.1026 (new: s4)" in mixed[0]
    assert [(c["floor_log_mean"], c["subjects"]) for c in side["interval_calibrations"]] == [
        (0.0914, 3),
        (0.1026, 1),
    ]


# ------------------------------------------------------------------------------------------- #
# 7. floors rounded up
# ------------------------------------------------------------------------------------------- #
def test_written_floors_are_rounded_up(tmp_path: Path, monkeypatch) -> None:
    import argparse

    bench = load_bench_script("ei_calibration")
    assert bench.round_up(0.09130837886980335) == 0.0914
    assert bench.round_up(0.0914) == 0.0914  # already rounded: kept
    summaries = {"euler": {"calibrated_all_truths": {"floor_region": 0.09159584191914348,
                                                      "floor_mean": 0.09130837886980335},
                           "overall": {"n": 32}}}  # fmt: skip
    budgets = {"euler": {"generations": 30, "popsize": 50, "n_dup": 2, "test_top_k": 3}}
    args = argparse.Namespace(scan_length=432.0, n_truths=32, seed=2026, command="x")
    doc = bench.write_calibration(summaries, budgets, tmp_path / "cal.json", args)
    written = doc["modes"]["euler"]
    assert (written["floor_region"], written["floor_mean"]) == (0.0916, 0.0914)
    assert written["settings"]["dt_train"] == written["settings"]["dt_val"] == 0.005
    shipped = unc.load_calibration("euler")
    assert shipped["floor_mean"] == 0.0914 >= 0.09130837886980335
    assert math.ceil(shipped["floor_region"] * 1e4 - 1e-9) / 1e4 == shipped["floor_region"]


def test_calibrations_differing_only_in_their_source_text_or_rounding_are_one() -> None:
    from delssome_norms.fit.calibration_scope import calibration_mix

    def key(source: str, floor_mean: float, floor_region: float = 0.0916) -> tuple:
        return (source, floor_region, floor_mean, 1.6449, 1.6449)

    same = {"a": key("euler run of 12-06", 0.0913), "b": key("reworded", 0.0914)}
    record, message = calibration_mix(same)
    assert message is None and [r["subjects"] for r in record] == [2]
    other = {**same, "c": key("euler run of 12-05", 0.1026, 0.0990)}
    record, message = calibration_mix(other)
    assert [r["subjects"] for r in record] == [2, 1]
    assert message is not None and "2 different calibrations" in message and "c" in message


def test_the_cohort_warning_says_maps_fc_gradient_before_the_work() -> None:
    euler = unc.load_calibration("euler")["settings"]
    calibrated = FitSettings(
        cmaes=CMAESSettings(generations=euler["generations"], popsize=euler["popsize"]),
        n_dup=euler["n_dup"],
        test_top_k=euler["test_top_k"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unc.warn_uncalibrated(calibrated, [432.0])  # the calibration's own budget: nothing to say
    with pytest.warns(InputWarning, match=r"maps fc-gradient for 68-region subjects without maps"):
        unc.warn_uncalibrated(replace(calibrated, maps="fc-gradient"), [432.0, 432.0])


def test_fit_notes_says_the_flag_the_calibration_and_an_unchecked_noise_floor() -> None:
    from delssome_norms.fit.calibration_scope import NOISE_FLOOR_UNCHECKED, fit_notes

    quality = {"flagged": True, "reasons": ["cost_above_floor", "gate_rejected_most"]}
    assert fit_notes(None, quality) == ["fit flagged as poor: cost_above_floor; gate_rejected_most"]
    unchecked = {"flagged": False, "reasons": [], "unchecked": ["cost_above_floor"]}
    assert fit_notes({"calibration_applies": True}, unchecked) == [NOISE_FLOOR_UNCHECKED]
    interval = {"calibration_applies": False, "calibration_differences": ["n_dup 1 (calibrated at 3)"]}
    notes = fit_notes(interval, unchecked, readme="README.md")
    assert len(notes) == 2 and "n_dup 1 (calibrated at 3)" in notes[0] and "(README.md " in notes[0]
    assert fit_notes(None, None) == []


def test_the_cohort_warning_is_about_the_subjects_this_run_fits(tmp_path: Path) -> None:
    from delssome_norms.fit.calibration_scope import warn_uncalibrated_cohort
    from delssome_norms.fit.outputs import OUTPUT_FILES

    done = tmp_path / "sub-a"
    done.mkdir()
    for name in OUTPUT_FILES:
        (done / name).write_text("x")
    rows = [{"subject_id": "sub-a", "scan_length": 432.0}, {"subject_id": "sub-b", "scan_length": 300.0}]
    euler = FitSettings()  # the default Euler budget: not the calibration's
    with pytest.warns(InputWarning, match=r"scan_length 300 s .*\[1 of 1\]") as said:
        warn_uncalibrated_cohort(euler, rows, tmp_path, overwrite=False)
    assert len(said) == 1 and "[1 of 1]" in str(said[0].message)  # sub-b only
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a rerun with every subject finished: nothing to say
        warn_uncalibrated_cohort(euler, rows[:1], tmp_path, overwrite=False)
    with pytest.warns(InputWarning, match=r"\[2 of 2\]"):  # --overwrite fits both again
        warn_uncalibrated_cohort(euler, rows, tmp_path, overwrite=True)
