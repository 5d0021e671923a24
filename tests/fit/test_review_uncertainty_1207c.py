"""Uncertainty review 1207c: the profile axis comes from the CMA-ES strategy that drew the winner
(a restart near the end left a fresh, isotropic covariance whose "longest axis" was one arbitrary
coefficient), the step is one standard deviation in Mahalanobis distance of the distribution
pycma samples from, and a tested candidate passed over for leaving the FIC regime does not join
the near-optimal set.

Expectations are independent: pycma's own samples (their covariance), the strategy objects the
search replaced, the E/I of the one eligible test row.
"""

from __future__ import annotations

import math

import numpy as np
from test_regime_winner import _member

from delssome_norms.fit import profile_points
from delssome_norms.fit.cmaes import MIN_ADAPTED_GENERATIONS, CMAESSearch, CMAESSettings
from delssome_norms.fit.stages import subject_result

SCALE = np.array([1.0, 2.0, 0.5, 3.0, 0.1, 1.0, 0.01])  # coefficient scales as uneven as the fit's
A = np.diag([1.0, 10.0, 0.3, 5.0, 30.0, 1.0, 100.0])


class _Box:
    n_coeffs = 7

    def is_valid(self, c: np.ndarray) -> np.ndarray:
        return np.all(np.abs(c) < 50, axis=1)

    def initial_mean(self, rng: np.random.Generator) -> np.ndarray:
        return np.ones(7)

    def initial_stds(self, mean: np.ndarray) -> np.ndarray:
        return SCALE


def _run(search: CMAESSearch, generations: int) -> None:
    for _ in range(generations):
        x = search.ask()
        search.tell((((x - 1.2) / SCALE) @ A * ((x - 1.2) / SCALE)).sum(axis=1))


def test_the_step_is_one_sd_in_mahalanobis_distance_of_pycmas_samples() -> None:
    search = CMAESSearch(_Box(), CMAESSettings(generations=15, popsize=20, mu=5, sigma0=0.5), 3)
    _run(search, 15)
    step = profile_points.principal_step(search)
    samples = np.asarray(search.es.ask(40000))  # the distribution pycma samples from now
    cov = np.cov(samples.T)
    assert math.isclose(math.sqrt(step @ np.linalg.solve(cov, step)), 1.0, rel_tol=0.03)
    # and it is the longest axis of that distribution in CMA-ES's scaled coordinates
    scaled = np.linalg.eigh(cov / np.outer(SCALE, SCALE))
    axis = scaled[1][:, -1]
    u = step / SCALE
    assert abs(u @ axis) / np.linalg.norm(u) > 0.99


def test_after_a_late_restart_the_axis_comes_from_the_strategy_that_drew_the_winner() -> None:
    search = CMAESSearch(_Box(), CMAESSettings(generations=12, popsize=20, mu=5, sigma0=0.5), 3)
    _run(search, 10)
    adapted = search.es
    search.ask()
    search.tell(np.full(20, np.nan))  # nothing valid: the search restarts at generation 11
    assert search.restarts == 1 and search.es is not adapted
    fresh = np.asarray(search.es.C)
    np.testing.assert_allclose(fresh, np.eye(7), atol=1e-3)  # nothing learnt: an arbitrary axis
    # the winner of generation 5 was drawn by the replaced strategy: its axis is used
    assert search.strategy_for(5) is adapted
    want = profile_points.principal_step(type("S", (), {"es": adapted})())
    np.testing.assert_allclose(profile_points.principal_step(search, 5), want)
    # a winner of the fresh strategy (told fewer than MIN_ADAPTED_GENERATIONS generations):
    # the strategy told the most generations gives the axis
    assert search.generation - 11 < MIN_ADAPTED_GENERATIONS
    assert search.strategy_for(search.generation - 1) is adapted
    np.testing.assert_allclose(profile_points.principal_step(search, search.generation - 1), want)
    # the current (fresh) strategy's own "axis" is the last coefficient alone: what was used before
    current = profile_points.principal_step(search)
    assert np.count_nonzero(np.abs(current) > 1e-12) == 1


def test_a_candidate_passed_over_for_leaving_the_fic_regime_is_not_near_optimal(tmp_path) -> None:
    # row 0: the lowest test cost but r_E 4.6 Hz (outside 2.7-3.3): passed over for row 1
    member, ratio, _ = _member(tmp_path, [4.6, 3.0, 3.0])
    test = member.checkpoint.load_stage("test")
    test["corr"] = np.array([0.1, 0.3, 0.2])
    member.checkpoint.save_stage("test", test)
    res = subject_result(member, interval=False)
    assert res.info["test_regime_fallback"]
    metrics = res.quality["metrics"]
    assert metrics["near_optimal_test"] == 1  # row 2 alone (row 0 counted before)
    ei = ratio.mean(axis=1)  # (rows, N): each row's E/I over its duplicates
    want = abs(math.log(ei[2].mean() / ei[1].mean()))
    assert math.isclose(metrics["set_spread_log_mean"], want, rel_tol=1e-9)


def test_the_calibration_covers_neither_a_fit_without_the_gate_nor_other_weights() -> None:
    from dataclasses import replace

    from delssome_norms.fit import FitSettings
    from delssome_norms.fit import uncertainty as unc
    from delssome_norms.surrogate.evaluate import weights_sha256

    cal = unc.load_calibration("surrogate")
    shipped = weights_sha256()  # the weights installed with the package
    assert cal["settings"]["surrogate_weights_sha256"] == shipped
    default = replace(FitSettings(mode="surrogate"), surrogate_weights_sha256=shipped)
    assert unc.calibration_differences(cal, unc.fit_budget(default, 432.0)) == []
    other = replace(default, surrogate_weights_sha256="ab" * 32)
    assert unc.calibration_differences(cal, unc.fit_budget(other, 432.0)) == [
        f"surrogate weights {'ab' * 6} (calibrated with the shipped {shipped[:12]})"
    ]
    ungated = replace(default, stability_gate=False)
    assert unc.calibration_differences(cal, unc.fit_budget(ungated, 432.0)) == [
        "stability_gate off (calibrated with it on)"
    ]
    euler = unc.load_calibration("euler")  # Euler mode: no weights to compare
    budget = FitSettings(cmaes=CMAESSettings(generations=30, popsize=50), n_dup=2, test_top_k=3)
    euler_fit = unc.fit_budget(budget, 432.0)
    assert euler_fit["surrogate_weights_sha256"] is None
    assert unc.calibration_differences(euler, euler_fit) == []
