"""Lockstep groups, stage selection, resume and skipping (analytic stand-in simulator)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import (
    N_TINY,
    AnalyticSimulator,
    analytic_cohort_settings,
    tiny_cdf,
    tiny_fc,
    tiny_sc,
    use_analytic_simulator,
)

from delssome_norms.fit import CMAESSettings, FitSettings, fit_group, plan_groups
from delssome_norms.fit.checkpoint import Checkpoint
from delssome_norms.fit.cmaes import CMAESSearch
from delssome_norms.fit.design import design_matrix
from delssome_norms.fit.lockstep import choose_group_size, subject_memory_bytes
from delssome_norms.fit.parameterisation import Bounds, Parameterisation
from delssome_norms.fit.stages import Member, subject_result
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.model.batch import simulation_bytes

OUTPUTS = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")


def _gradient(n: int = N_TINY) -> np.ndarray:
    x = np.linspace(-1, 1, n)
    return (x - x.mean()) / x.std()


def _subject(sid: str, level: float, seed: int) -> SubjectInputs:
    return SubjectInputs(
        subject_id=sid,
        fc=tiny_fc(level=level, seed=seed),
        fcd_cdf=tiny_cdf(seed),
        tr=0.72,
        scan_length=14.4,
        sc=tiny_sc(),
        myelin=None,
        gradient=_gradient(),
    )


def _settings(generations: int = 30, **kw) -> FitSettings:
    return analytic_cohort_settings(generations, popsize=12, mu=3, test_top_k=3, seed=3, **kw)


def _outputs(d: Path) -> dict[str, bytes]:
    return {f: (d / f).read_bytes() for f in OUTPUTS}


def test_each_subject_fits_its_own_data(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    subjects = [_subject("a", 0.1, 0), _subject("b", 0.35, 1)]
    outcomes = fit_group(subjects, [tmp_path / "a", tmp_path / "b"], _settings(40))
    assert [o.status for o in outcomes] == ["done", "done"]
    for s in subjects:
        iu = np.triu_indices(N_TINY, 1)
        target = 10 * (0.3 + s.fc[iu].mean())  # optimum of the analytic corr loss
        wee = pd.read_csv(tmp_path / s.subject_id / "best_parameters.csv")["wEE"].mean()
        assert abs(wee - target) < 0.15, (s.subject_id, wee, target)
        run = json.loads((tmp_path / s.subject_id / "run.json").read_text())
        assert run["lockstep_group"] == ["a", "b"] and run["search"]["generations_done"] == 40
        fq = pd.read_csv(tmp_path / s.subject_id / "fit_quality.csv")
        assert list(fq["stage"]) == ["train", "val", "test"]
        np.testing.assert_allclose(fq["total_loss"], fq[["corr_loss", "l1_loss", "ks_loss"]].sum(axis=1))
        ei = pd.read_csv(tmp_path / s.subject_id / "EI_ratio.csv")
        assert list(ei.columns) == [
            "region_index",
            "EI_ratio",
            "S_E",
            "S_I",
            "r_E",
            "EI_ratio_sd",
            "EI_ratio_lo",
            "EI_ratio_hi",
            "fit_flagged",
            "fit_flag_reasons",
        ]


class _Interrupt(Exception):
    pass


def _interrupting(after_calls: int):
    class Interrupting(AnalyticSimulator):
        def simulate(self, *a, **k):
            if type(self).calls >= after_calls:
                raise _Interrupt
            return super().simulate(*a, **k)

    return Interrupting


@pytest.mark.parametrize("searches", [1, 2])
# mid-train, during validation, during test, during the profile
@pytest.mark.parametrize("after_calls", [4, 8, 9, 10])
def test_interrupted_group_resumes_to_identical_outputs(
    tmp_path: Path, monkeypatch, after_calls, searches
) -> None:
    from delssome_norms.fit import lockstep

    use_analytic_simulator(monkeypatch)
    subjects = [_subject("a", 0.1, 0), _subject("b", 0.2, 1)]
    settings = dataclasses.replace(_settings(8), searches=searches)
    ref = [tmp_path / "ref" / s.subject_id for s in subjects]
    fit_group(subjects, ref, settings)
    # 8 generations + validation + test + profile; every search of every subject shares each call
    assert AnalyticSimulator.calls == 11

    dirs = [tmp_path / "run" / s.subject_id for s in subjects]
    cls = _interrupting(after_calls)
    cls.calls = 0
    monkeypatch.setattr(lockstep, "EulerEvaluator", cls)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: cls(*a, **k))
    with pytest.raises(_Interrupt):
        fit_group(subjects, dirs, settings)
    if after_calls == 4:
        # emulate a kill between the two members' checkpoint writes: "b" is one generation behind
        state = dirs[1] / "checkpoint" / "state.json"
        st = json.loads(state.read_text())
        st["generations_done"] -= 1
        state.write_text(json.dumps(st))
    use_analytic_simulator(monkeypatch)
    outcomes = fit_group(subjects, dirs, settings)
    assert [o.status for o in outcomes] == ["done", "done"]
    for r, d in zip(ref, dirs):
        assert _outputs(r) == _outputs(d)


@pytest.mark.parametrize(("first", "then"), [(8, 5), (5, 8)])
def test_changed_generations_on_resume_rebuild_the_later_stages(
    tmp_path: Path, monkeypatch, first, then
) -> None:
    """A run interrupted after its validation stage and resumed with another --generations gives
    what a run with that number from the start gives (the stored stages are not reused)."""
    from delssome_norms.fit import lockstep

    use_analytic_simulator(monkeypatch)
    subjects = [_subject("a", 0.1, 0), _subject("b", 0.2, 1)]
    ref = [tmp_path / "ref" / s.subject_id for s in subjects]
    fit_group(subjects, ref, _settings(then))
    dirs = [tmp_path / "run" / s.subject_id for s in subjects]
    cls = _interrupting(first + 1)  # train + validation done, interrupted in the test stage
    cls.calls = 0
    monkeypatch.setattr(lockstep, "EulerEvaluator", cls)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: cls(*a, **k))
    with pytest.raises(_Interrupt):
        fit_group(subjects, dirs, _settings(first))
    assert (dirs[0] / "checkpoint" / "val.npz").is_file()
    use_analytic_simulator(monkeypatch)
    with pytest.warns(Warning, match=f"recomputed for --generations {then}"):
        outcomes = fit_group(subjects, dirs, _settings(then))
    assert [o.status for o in outcomes] == ["done", "done"]
    for r, d in zip(ref, dirs):
        assert _outputs(r) == _outputs(d)
        assert json.loads((d / "run.json").read_text())["search"]["generations_done"] == then


def test_checkpoint_mismatch_names_the_nested_setting(tmp_path: Path) -> None:
    fp = {"settings": {"cmaes": {"popsize": 12, "mu": 3}, "seed": 1}, "inputs": "x"}
    Checkpoint(tmp_path, fp)._write_state()
    changed = {"settings": {"cmaes": {"popsize": 16, "mu": 3}, "seed": 1}, "inputs": "x"}
    assert Checkpoint(tmp_path, changed).stale() == (
        "written with other inputs or settings: settings.cmaes.popsize"
    )
    moved = {**fp, "settings": {**fp["settings"], "surrogate_weights": "/elsewhere"}}
    assert Checkpoint(tmp_path, moved).stale() is None  # the weights are known by their SHA-256


def test_finished_subjects_are_skipped(tmp_path: Path, monkeypatch) -> None:
    sim = use_analytic_simulator(monkeypatch)
    subjects = [_subject("a", 0.1, 0)]
    fit_group(subjects, [tmp_path / "a"], _settings(3))
    before = {f: (tmp_path / "a" / f).stat().st_mtime_ns for f in (*OUTPUTS, "run.json")}
    sim.calls = 0
    outcomes = fit_group(subjects, [tmp_path / "a"], _settings(3))
    assert outcomes[0].status == "skipped" and sim.calls == 0
    assert before == {f: (tmp_path / "a" / f).stat().st_mtime_ns for f in before}


def test_subject_without_valid_simulation_fails_alone(tmp_path: Path, monkeypatch) -> None:
    from delssome_norms.fit import lockstep

    class BadForB(AnalyticSimulator):
        def simulate(self, params, subject_index, *, seed, timing=None):
            out = super().simulate(params, subject_index, seed=seed, timing=timing)
            bad = np.asarray(subject_index) == 1
            corr = np.where(bad, np.nan, out.corr)
            return out._replace(corr=corr)

    monkeypatch.setattr(lockstep, "EulerEvaluator", BadForB)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: BadForB(*a, **k))
    subjects = [_subject("a", 0.1, 0), _subject("b", 0.2, 1)]
    with pytest.warns(Warning):
        outcomes = fit_group(subjects, [tmp_path / "a", tmp_path / "b"], _settings(6, max_restarts=1))
    assert outcomes[0].status == "done"
    assert outcomes[1].status == "failed"
    assert "none of the" in outcomes[1].message and "produced a valid simulation" in outcomes[1].message
    failure = json.loads((tmp_path / "b" / "failure.json").read_text())
    assert failure["stage"] == "train"


def _member_with_stages(tmp_path: Path, val: dict, test: dict) -> Member:
    g = _gradient()
    space = Parameterisation(design_matrix(g, warn=False), g, Bounds(wEI=(0.4, 3.2)))
    ckpt = Checkpoint(tmp_path / "ckpt", {"x": 1})
    ckpt.save_stage("val", val)
    ckpt.save_stage("test", test)
    return Member("s", 0, space, CMAESSearch(space, CMAESSettings(popsize=4, mu=2), 0), ckpt)


def test_subject_result_winner_fallback_and_pooled_sd(tmp_path: Path) -> None:
    n, k, d = N_TINY, 3, 2
    cands = np.array([[3.0, 0.1, 2.0, 0.5, 1.0, 0.005, 0.0]] * 4) + np.arange(4)[:, None] * 0.01
    val = {
        "candidates": cands,
        "generation": np.array([0, 1, 2, 3]),
        "train_corr": np.array([0.5, 0.4, 0.3, 0.2]),
        "train_l1": np.zeros(4),
        "train_ks": np.zeros(4),
        "corr": np.array([0.3, 0.1, np.nan, 0.2]),
        "l1": np.zeros(4),
        "ks": np.zeros(4),
    }
    rng = np.random.default_rng(0)
    s_e = rng.uniform(0.1, 0.2, (k, d, n))
    s_i = rng.uniform(0.04, 0.06, (k, d, n))
    valid = np.array([[False, False], [True, True], [True, False]])  # winner (rank 0) blew up
    test = {
        "order": np.array([1, 3, 0]),
        "corr": np.array([np.nan, 0.25, np.nan]),
        "l1": np.zeros(3),
        "ks": np.zeros(3),
        "s_e": s_e,
        "s_i": s_i,
        "r_e": np.full((k, d, n), 3.0),
        "valid": valid,
    }
    res = subject_result(_member_with_stages(tmp_path, val, test))
    # fallback to the second validated candidate (val index 3), both of its duplicates valid
    np.testing.assert_allclose(res.ei_ratio, (s_e[1] / s_i[1]).mean(axis=0))
    np.testing.assert_allclose(res.s_e, s_e[1].mean(axis=0))
    pooled = np.stack([s_e[1, 0] / s_i[1, 0], s_e[1, 1] / s_i[1, 1], s_e[2, 0] / s_i[2, 0]])
    np.testing.assert_allclose(res.ei_ratio_sd, pooled.std(axis=0, ddof=1))
    np.testing.assert_array_equal(res.coeffs, cands[3])
    assert res.info["test_fallback"] and res.info["winner_train_generation"] == 3
    assert res.losses["train"]["corr_loss"] == 0.2 and res.losses["val"]["corr_loss"] == 0.2
    assert res.losses["test"]["corr_loss"] == 0.25


def test_plan_groups_and_group_size() -> None:
    assert plan_groups([(0.72, 864)] * 5, 2) == [[0, 1], [2, 3], [4]]
    assert plan_groups([1, 2, 1, 2, 1], 8) == [[0, 2, 4], [1, 3]]
    per = subject_memory_bytes(68, 1200, 100, 3)
    # what simulate() itself holds (the BOLD twice: 196 MB, its mask) plus FC and histograms
    bold = 300 * 1200 * 68 * 4
    assert per >= simulation_bytes(300, 68, 1200, 4) + 300 * 8 * 10000 > 2 * bold
    assert per < 3.2 * bold  # the mask (1/4 of it), SC, state, FC and histograms: ~0.9 x BOLD
    k = choose_group_size(68, 1200, 100, 3, "cpu")
    assert 1 <= k <= 8
    assert choose_group_size(68, 10**7, 100, 3, "cpu") == 1  # huge scans: one subject at a time
    # the validation call (all validated candidates of the group at once) can be the largest
    k_val = choose_group_size(68, 1200, 100, 3, "cpu", validation_sets=300)
    assert k_val <= k
    total = _total_memory_for_test()
    assert k_val == 1 or k_val * subject_memory_bytes(68, 1200, 300, 3) <= 0.5 * total


def _total_memory_for_test() -> int:
    from delssome_norms.fit.lockstep import _total_memory

    return _total_memory("cpu")


def test_group_members_must_share_timing(tmp_path: Path) -> None:
    from dataclasses import replace

    from delssome_norms.errors import InvalidInputError

    a = _subject("a", 0.1, 0)
    with pytest.raises(InvalidInputError, match="share TR, scan length and N"):
        fit_group(
            [a, replace(a, subject_id="b", scan_length=28.8)],
            [tmp_path / "a", tmp_path / "b"],
            _settings(2),
        )


def test_checkpoint_writer_keeps_one_generation_in_flight_and_raises() -> None:
    import time

    from delssome_norms.fit.stages import CheckpointWriter

    order: list[str] = []
    w = CheckpointWriter(threads=2)
    w.submit([lambda: (time.sleep(0.05), order.append("g0"))])
    w.submit([lambda: order.append("g1")])  # starts only after generation 0 is written
    w.close()
    assert order == ["g0", "g1"]
    w = CheckpointWriter()
    w.submit([lambda: 1 / 0])
    with pytest.raises(ZeroDivisionError):
        w.close()


def test_gate_wipe_out_message_counts_and_names_the_options() -> None:
    from delssome_norms.fit.checkpoint import GenerationRecord
    from delssome_norms.fit.stages import no_valid_candidate_message

    nan = np.full(4, np.nan)
    gated = GenerationRecord(np.zeros((4, 7)), nan, nan, nan, violation=np.array([0.3, 0.1, 2.0, 0.0]))
    msg = no_valid_candidate_message([gated, gated])
    assert "rejected 6 of the 8 candidates of 2 generation(s)" in msg
    assert "--no-stability-gate" in msg and "--generations" in msg
    plain = GenerationRecord(np.zeros((4, 7)), nan, nan, nan)
    assert no_valid_candidate_message([plain]) == (
        "train: none of the 4 candidates of 1 generation(s) produced a valid simulation"
    )
    assert no_valid_candidate_message([plain], 0.005) == no_valid_candidate_message([plain])
    assert "--dt-train 0.008 s: above 0.005 s" in no_valid_candidate_message([plain], 0.008)


def test_a_checkpoint_continues_only_in_the_group_that_wrote_it(tmp_path: Path, monkeypatch) -> None:
    """The group's noise derives from its members: a subject interrupted in group (a, b) and
    resumed alone (another --batch-subjects, or estimate-ei into a cohort's folder) would match
    neither run, so it is refused, naming the way back."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit import lockstep
    from delssome_norms.fit.cohort import subject_finished

    use_analytic_simulator(monkeypatch)
    subjects = [_subject("a", 0.1, 0), _subject("b", 0.2, 1)]
    settings = _settings(8)
    dirs = [tmp_path / s.subject_id for s in subjects]
    cls = _interrupting(4)
    cls.calls = 0
    monkeypatch.setattr(lockstep, "EulerEvaluator", cls)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: cls(*a, **k))
    with pytest.raises(_Interrupt):
        fit_group(subjects, dirs, settings)
    use_analytic_simulator(monkeypatch)
    with pytest.raises(
        InvalidInputError, match=r"lockstep group of 2 subject\(s\) \(a, b\).*--batch-subjects 2"
    ):
        fit_group(subjects[:1], dirs[:1], settings)
    with pytest.raises(InvalidInputError, match="lockstep group"):
        subject_finished(subjects[0], dirs[0], settings)  # the estimator's pre-check
    assert subject_finished(subjects[0], dirs[0], settings, group_ids=["a", "b"]) is False
    # a checkpoint written before the group was recorded still resumes
    state = dirs[0] / "checkpoint" / "state.json"
    st = json.loads(state.read_text())
    del st["fingerprint"]["group"]
    state.write_text(json.dumps(st))
    assert subject_finished(subjects[0], dirs[0], settings) is False
    assert fit_group(subjects, dirs, settings)[0].status == "done"
