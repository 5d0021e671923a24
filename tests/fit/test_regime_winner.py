"""The test winner stays in the FIC regime: a validation winner whose test simulation leaves it
(most regions' mean r_E outside 2.7-3.3 Hz) gives way to the next validated candidate that stays
in it; when none does, the validation winner is kept and flagged ``rate_outside_fic``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fit_helpers import N_TINY

from delssome_norms.fit.checkpoint import Checkpoint
from delssome_norms.fit.cmaes import CMAESSearch, CMAESSettings
from delssome_norms.fit.design import design_matrix
from delssome_norms.fit.parameterisation import Bounds, Parameterisation
from delssome_norms.fit.stages import Member, in_fic_regime, subject_result

K, D = 3, 2


def _member(tmp_path: Path, r_e_rows, valid=None, search=None) -> tuple[Member, np.ndarray, np.ndarray]:
    g = np.linspace(-1, 1, N_TINY)
    g = (g - g.mean()) / g.std()
    space = Parameterisation(design_matrix(g, warn=False), g, Bounds(wEI=(0.4, 3.2)))
    cands = np.array([[3.0, 0.1, 2.0, 0.5, 1.0, 0.005, 0.0]] * K) + np.arange(K)[:, None] * 0.01
    val = {
        "candidates": cands,
        "generation": np.arange(K),
        "train_corr": np.full(K, 0.3),
        "train_l1": np.zeros(K),
        "train_ks": np.zeros(K),
        "corr": np.array([0.1, 0.2, 0.3]),
        "l1": np.zeros(K),
        "ks": np.zeros(K),
    }
    if search is not None:
        val["search"] = np.asarray(search)
    rng = np.random.default_rng(1)
    s_e, s_i = rng.uniform(0.1, 0.2, (K, D, N_TINY)), rng.uniform(0.04, 0.06, (K, D, N_TINY))
    r_e = np.stack([np.full((D, N_TINY), float(v)) for v in r_e_rows])
    test = {
        "order": np.arange(K),
        "corr": np.array([0.4, 0.3, 0.2]),
        "l1": np.zeros(K),
        "ks": np.zeros(K),
        "s_e": s_e,
        "s_i": s_i,
        "r_e": r_e,
        "valid": np.ones((K, D), bool) if valid is None else np.asarray(valid),
    }
    ckpt = Checkpoint(tmp_path / "ckpt", {"x": 1})
    ckpt.save_stage("val", val)
    ckpt.save_stage("test", test)
    member = Member("s", 0, space, CMAESSearch(space, CMAESSettings(popsize=4, mu=2), 0), ckpt)
    return member, s_e / s_i, cands


def test_a_winner_outside_the_regime_gives_way_to_the_next_inside_it(tmp_path) -> None:
    member, ratio, cands = _member(tmp_path, [4.6, 1.2, 3.0])
    res = subject_result(member, interval=False)
    np.testing.assert_allclose(res.ei_ratio, ratio[2].mean(axis=0))
    np.testing.assert_array_equal(res.coeffs, cands[2])
    assert res.info["test_regime_fallback"] and not res.info["test_fallback"]
    assert res.losses["test"]["corr_loss"] == 0.2
    assert res.quality["metrics"]["rate_outside_fraction"] == 0.0
    assert not res.quality["flagged"]  # a winner in the regime with valid duplicates


def test_without_any_candidate_inside_the_winner_is_kept_and_flagged(tmp_path) -> None:
    member, ratio, _ = _member(tmp_path, [4.6, 1.2, 0.2])
    res = subject_result(member, interval=False)
    np.testing.assert_allclose(res.ei_ratio, ratio[0].mean(axis=0))
    assert not res.info["test_regime_fallback"]
    assert "rate_outside_fic" in res.quality["reasons"]


def test_a_failed_winner_and_an_outside_one_are_both_passed_over(tmp_path) -> None:
    valid = [[False, False], [True, True], [True, True]]
    member, ratio, _ = _member(tmp_path, [3.0, 3.9, 3.1], valid=valid)
    res = subject_result(member, interval=False)
    np.testing.assert_allclose(res.ei_ratio, ratio[2].mean(axis=0))
    assert res.info["test_fallback"] and res.info["test_regime_fallback"]
    assert res.quality["reasons"] == ["test_fallback"]


@pytest.mark.parametrize(
    ("n_outside", "inside"),
    [(0, True), (2, True), (3, False), (20, False)],  # 20 regions: up to 10 % may leave the band
)
def test_regime_is_the_fraction_of_regions_outside_the_band(n_outside, inside) -> None:
    rates = np.full(20, 3.3)  # the band's edge is inside
    rates[:n_outside] = np.where(np.arange(n_outside) % 2 == 0, 2.69, 3.31)
    test = {"r_e": rates[None, None, :], "valid": np.ones((1, 1), bool)}
    assert in_fic_regime(test, np.array([0]))[0] == inside


def test_averaged_searches_take_their_best_candidates_inside_the_regime(tmp_path) -> None:
    # search 0's best validated candidate (row 0) leaves the regime: its next one (row 1) is used
    member, ratio, _ = _member(tmp_path, [4.6, 3.0, 3.0], search=[0, 0, 1])
    res = subject_result(member, interval=False, combine="mean")
    expected = np.exp(np.mean([np.log(ratio[k].mean(axis=0)) for k in (1, 2)], axis=0))
    np.testing.assert_allclose(res.ei_ratio, expected)
    assert res.info["ensemble_searches"] == [0, 1]
