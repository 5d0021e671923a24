"""The FIC stability gate: candidates with an unstable FIC fixed point are never evaluated."""

from __future__ import annotations

import dataclasses
import glob
from pathlib import Path

import numpy as np
import pytest
import torch
from fit_helpers import AnalyticSimulator, tiny_cdf, tiny_fc, tiny_sc, use_analytic_simulator
from test_lockstep import _Interrupt, _interrupting, _outputs, _settings, _subject

from delssome_norms.fit import FitSettings, fit_group
from delssome_norms.fit.evaluate import StabilityGatedEvaluator, stack_params
from delssome_norms.fit.lockstep import build_space
from delssome_norms.model import SimulationTiming, fic_stability_margin, scale_sc


def _margins(space, coeffs: np.ndarray) -> np.ndarray:
    p = space.to_regional(coeffs)
    return fic_stability_margin(
        *(torch.as_tensor(x) for x in (p.wEE, p.wEI, p.G)), torch.as_tensor(space.fic_sc)
    ).numpy()


def _draws(seed: int = 0, n: int = 400):
    """Candidates close around a stable initial mean (a quarter of the first step; rules unchecked)."""
    subject = _subject("a", 0.2, 0)
    space, _ = build_space(subject, stability_gate=True)
    rng = np.random.default_rng(seed)
    mean = space.initial_mean(rng)
    return space, mean + 0.05 * space.initial_stds(mean) * rng.standard_normal((n, len(mean)))


def test_gated_space_draws_a_stable_initial_mean() -> None:
    subject = _subject("a", 0.2, 0)
    plain, _ = build_space(subject)
    gated, _ = build_space(subject, stability_gate=True)
    assert plain.fic_sc is None
    np.testing.assert_allclose(gated.fic_sc, scale_sc(tiny_sc()))
    plain_means = np.stack([plain.initial_mean(np.random.default_rng(s)) for s in range(20)])
    gated_means = np.stack([gated.initial_mean(np.random.default_rng(s)) for s in range(20)])
    assert (_margins(gated, gated_means) < 0).all()
    assert (_margins(gated, plain_means) > 0).sum() >= 5  # without the gate many are unstable


def test_gated_evaluator_scores_only_stable_candidates() -> None:
    space, coeffs = _draws()
    margin = _margins(space, coeffs)
    stable = margin < 0
    assert 20 < stable.sum() < len(stable) - 20  # both kinds are present
    params = stack_params([space.to_regional(coeffs)])
    idx = torch.zeros(len(coeffs), dtype=torch.long)
    timing = SimulationTiming(tr=0.72, scan_length=14.4, dt=0.005, burn_in=0.72, fcd_window=5)
    fc, cdf, sc = tiny_fc(level=0.2)[None], tiny_cdf()[None], tiny_sc()[None]
    inner = AnalyticSimulator(fc, cdf, sc, timing, n_dup=2)
    scores = StabilityGatedEvaluator(inner, sc)(params, idx, seed=5)
    total = scores.total.numpy()
    assert np.isnan(total[~stable]).all()
    np.testing.assert_allclose(scores.violation.numpy()[~stable], margin[~stable], rtol=1e-9)
    assert (scores.violation.numpy()[stable] == 0).all()
    # the stable ones were scored in one inner call on exactly them (same seed, same numbers)
    keep = np.flatnonzero(stable)
    sub = stack_params([space.to_regional(coeffs[keep])])
    direct = inner(sub, idx[keep], seed=5)
    np.testing.assert_allclose(total[stable], direct.total.numpy(), atol=1e-12)


def test_unconverged_fic_counts_as_gated_and_is_scored_as_invalid(monkeypatch) -> None:
    from delssome_norms.fit.checkpoint import GenerationRecord
    from delssome_norms.fit.quality import gate_rejected_fraction

    space, coeffs = _draws(n=4)
    params = stack_params([space.to_regional(coeffs)])
    idx = torch.zeros(4, dtype=torch.long)
    timing = SimulationTiming(tr=0.72, scan_length=14.4, dt=0.005, burn_in=0.72, fcd_window=5)
    fc, cdf, sc = tiny_fc(level=0.2)[None], tiny_cdf()[None], tiny_sc()[None]
    gate = StabilityGatedEvaluator(AnalyticSimulator(fc, cdf, sc, timing, n_dup=2), sc)
    # candidate 1: FIC did not converge (no margin); candidate 2: unstable by 3/s
    verdict = (np.array([True, False, False, True]), np.array([0.0, np.nan, 3.0, 0.0]))
    monkeypatch.setattr(gate, "stable", lambda *_: verdict)
    scores = gate(params, idx, seed=0)
    v = scores.violation.numpy()
    assert v[1] == np.inf and v[2] == 3.0 and (v[[0, 3]] == 0).all()
    assert np.isnan(scores.total.numpy()[1:3]).all()
    rec = GenerationRecord(coeffs, scores.corr.numpy(), scores.l1.numpy(), scores.ks.numpy(), v)
    assert gate_rejected_fraction([rec]) == 0.5  # was 0.25: the unconverged one was not counted
    # the search ranks it as any invalid candidate, after the finite-margin one (3/s)
    from delssome_norms.fit.cmaes import CMAESSearch, CMAESSettings

    search = CMAESSearch(space, CMAESSettings(generations=5, popsize=4, mu=2), seed=0)
    search.ask()
    told = {}
    monkeypatch.setattr(search._es, "tell", lambda x, f, **k: told.setdefault("f", f))
    search.tell(scores.total.numpy(), v)
    inv = CMAESSettings().invalid_fitness
    assert told["f"][1] == inv and told["f"][2] == inv + 3.0


def test_settings_cli_and_fingerprint() -> None:
    from delssome_norms.cli.estimate_cmd import settings_from_args
    from delssome_norms.cli.main import build_parser

    assert FitSettings().stability_gate is True
    assert FitSettings().fingerprint()["stability_gate"] is True
    # off: the key is left out, so checkpoints written before the gate existed stay valid
    assert "stability_gate" not in FitSettings(stability_gate=False).fingerprint()
    base = ["estimate-ei", "--fc", "f.csv", "--fcd-cdf", "c.csv", "--tr", "0.72"]
    base += ["--scan-length", "864", "--out-dir", "o"]
    parser = build_parser()
    assert settings_from_args(parser.parse_args(base)).stability_gate is True
    args = parser.parse_args([*base, "--no-stability-gate"])
    assert settings_from_args(args).stability_gate is False
    with pytest.raises(Exception, match="stability_gate"):
        FitSettings(stability_gate="yes")


def test_gated_fit_scores_only_stable_candidates_and_resumes(tmp_path: Path, monkeypatch) -> None:
    from delssome_norms.fit import evaluate, lockstep

    def gated_analytic(mode, fc, cdf, sc, *a, stability_gate=False, **k):
        inner = AnalyticSimulator(fc, cdf, sc, *a, **k)
        return evaluate.StabilityGatedEvaluator(inner, sc) if stability_gate else inner

    use_analytic_simulator(monkeypatch)
    monkeypatch.setattr(lockstep, "make_evaluator", gated_analytic)
    subjects = [_subject("a", 0.1, 0), _subject("b", 0.2, 1)]
    settings = dataclasses.replace(_settings(8), stability_gate=True)
    ref = [tmp_path / "ref" / s.subject_id for s in subjects]
    assert [o.status for o in fit_group(subjects, ref, settings)] == ["done", "done"]
    for s, d in zip(subjects, ref):
        space, _ = build_space(s, stability_gate=True)
        files = sorted(glob.glob(str(d / "checkpoint" / "train_*.npz")))
        assert len(files) == 8
        gens = [np.load(f) for f in files]
        cands = np.concatenate([g["candidates"] for g in gens])
        finite = np.isfinite(np.concatenate([g["corr"] for g in gens]))
        margin = _margins(space, cands)
        np.testing.assert_array_equal(finite, margin < 0)
        assert finite.any()
        best = np.loadtxt(d / "best_parameters.csv", delimiter=",", skiprows=1)
        assert best.shape[0] == 6
    # an interrupted gated run replays its stored generations and ends with the same outputs
    dirs = [tmp_path / "run" / s.subject_id for s in subjects]
    cls = _interrupting(4)
    cls.calls = 0

    def interrupting(mode, fc, cdf, sc, *a, stability_gate=False, **k):
        return evaluate.StabilityGatedEvaluator(cls(fc, cdf, sc, *a, **k), sc)

    monkeypatch.setattr(lockstep, "EulerEvaluator", cls)
    monkeypatch.setattr(lockstep, "make_evaluator", interrupting)
    with pytest.raises(_Interrupt):
        fit_group(subjects, dirs, settings)
    use_analytic_simulator(monkeypatch)
    monkeypatch.setattr(lockstep, "make_evaluator", gated_analytic)
    fit_group(subjects, dirs, settings)
    for r, d in zip(ref, dirs):
        assert _outputs(r) == _outputs(d)
