"""Review of the E/I interval: a test-fallback winner, one duplicate (no noise floor), averaged
searches, the mean's interval (of the mean, not the mean of the regional bounds), where the
calibration applies (seconds, not frames; at its own budget), and strict JSON of a tiny fit."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from fit_helpers import stage_rows, tiny_cdf, tiny_fc, tiny_sc

from delssome_norms.fit import CMAESSettings, FitSettings, fit_group, profile_points
from delssome_norms.fit import uncertainty as unc
from delssome_norms.fit.subject import SubjectInputs

K = 1.645


_stage = stage_rows


def test_spread_of_a_test_fallback_winner_is_centred_on_it() -> None:
    # row 0 (the validation winner) has no valid test duplicate; row 1 is the E/I returned
    test = _stage([np.nan, 1.0, 1.0], [[1.0, 1.0], [2.0, 4.0], [2.2, 4.0]])
    test["valid"][0] = False
    test["s_e"][0] = np.nan
    spread = unc.log_spread(test, 1, None, center=False)
    level = math.log(3.1 / 3.0)  # mean E/I 3.1 of row 2 against the winner's 3.0
    assert spread["near_optimal_test"] == 1 and spread["mean"] == pytest.approx(level)
    np.testing.assert_allclose(spread["region"], [math.log(1.1), level], rtol=1e-12)


def test_one_duplicate_has_no_noise_floor_and_ranks_only_ties() -> None:
    test = _stage([1.0], [[2.0, 2.0]], n_dup=1)
    profile = _stage([1.0, 1.0, 1.0 + 1e-9], [[2.0, 2.0], [2.4, 2.4], [4.0, 4.0]], n_dup=1)
    profile["dup_total"] = profile["corr"][:, None].copy()
    profile["kind"] = np.array(
        [profile_points.KIND_WINNER, profile_points.KIND_AXIS, profile_points.KIND_AXIS]
    )
    profile["position"] = np.array([0.0, 1.0, -1.0])
    spread = unc.log_spread(test, 0, profile, center=False)
    assert math.isnan(spread["noise_floor_sd"]) and spread["tolerance"] == 0.0
    # the tie (2.4) is in the set, the point costing 1e-9 more (4.0) is not; no duplicate noise
    assert spread["near_optimal_profile"] == 1 and spread["dup_se_log_mean"] == 0.0
    np.testing.assert_allclose(spread["region"], math.log(1.2), rtol=1e-12)


def test_averaged_searches_widen_by_their_spread_about_the_geometric_mean() -> None:
    logs = np.log([[1.0, 2.0], [2.0, 4.0]])  # the estimate is exp(mean) = [sqrt 2, sqrt 8]
    out = unc.add_member_spread({"region": np.array([0.5, 0.0]), "mean": 0.4}, logs)
    half = math.log(2.0) / 2  # each member lies a factor sqrt(2) from the centre, per region
    # member means 1.5 and 3 about the centre's mean 1.5 sqrt(2): a factor sqrt(2) too
    assert out["ensemble_spread_log_mean"] == pytest.approx(half)
    assert out["mean"] == pytest.approx(math.hypot(0.4, half))
    # region 0: its own spread with the members'; region 1 (hypot(0, half)) keeps the mean's
    expected = [math.hypot(0.5, half), math.hypot(0.4, half)]
    np.testing.assert_allclose(out["region"], expected, rtol=1e-12)


def test_the_mean_interval_is_the_interval_of_the_mean() -> None:
    point = np.array([1.0, 4.0])
    spread = {"region": np.array([0.5, 0.5]), "mean": 0.1}
    cal = {"k_region": K, "k_mean": K, "floor_region": 0.0, "floor_mean": 0.2}
    lo, hi, block = unc.interval_block(point, spread, "euler", cal)
    half_m = K * math.hypot(0.1, 0.2)
    assert block["mean"] == 2.5
    assert block["mean_lo"] == pytest.approx(2.5 * math.exp(-half_m))
    assert block["mean_hi"] == pytest.approx(2.5 * math.exp(half_m))
    # ... which is narrower than the mean of the regional bounds (regions spread at least as much)
    assert np.mean(lo) == pytest.approx(2.5 * math.exp(-K * 0.5))
    assert np.mean(lo) < block["mean_lo"]
    assert np.mean(hi) > block["mean_hi"]
    assert (lo <= point).all() and (point <= hi).all()


@pytest.mark.parametrize("mode", ["euler", "surrogate"])
def test_calibration_is_judged_in_seconds_and_at_its_own_budget(mode: str) -> None:
    cal = unc.load_calibration(mode)
    ref = cal["settings"]
    budget = dict(
        mode=mode,
        cmaes=CMAESSettings(generations=ref["generations"], popsize=ref["popsize"]),
        n_dup=ref["n_dup"],
        test_top_k=ref["test_top_k"],
        searches=4,  # combine mean by default with several searches
    )
    at = FitSettings(**budget)
    # a budget is judged in seconds (TR does not enter); the calibration's own budget is covered
    assert unc.calibration_differences(cal, unc.fit_budget(at, ref["scan_length"])) == []
    # more of a budget setting is not measured (the profile's grid scales with the last step size)
    more = FitSettings(**{**budget, "n_dup": ref["n_dup"] + 1})
    assert unc.calibration_differences(cal, unc.fit_budget(more, ref["scan_length"])) == [
        f"n_dup {ref['n_dup'] + 1} (calibrated at {ref['n_dup']}; coverage at another budget is "
        "not measured)"
    ]
    # the scan's slack: 95 % of the calibration's seconds is the same protocol, less is not
    edge = unc.SCAN_LENGTH_SLACK * ref["scan_length"]
    assert unc.calibration_differences(cal, unc.fit_budget(at, edge)) == []
    short = unc.calibration_differences(cal, unc.fit_budget(at, edge - 0.01))
    assert short == [f"scan_length {edge - 0.01:g} s (calibrated at {ref['scan_length']:g} s)"]
    best = unc.fit_budget(FitSettings(**{**budget, "combine": "best"}), 864.0)
    assert unc.calibration_differences(cal, best) == [
        "searches 4 with combine best (calibrated on one search; --combine mean is covered)"
    ]


def _reject_constant(name: str):
    raise ValueError(f"non-strict JSON constant {name}")


def test_tiny_fit_with_one_duplicate_writes_strict_json(tmp_path: Path) -> None:
    subject = SubjectInputs(
        subject_id="a", fc=tiny_fc(level=0.2, seed=0), fcd_cdf=tiny_cdf(0), tr=0.72,
        scan_length=14.4, sc=tiny_sc(),
    )  # fmt: skip
    settings = FitSettings(
        cmaes=CMAESSettings(generations=3, popsize=8, mu=3), dt_train=0.005, dt_val=0.005,
        dt_test=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50, test_top_k=3, n_dup=1,
        seed=3, stability_gate=False,
    )  # fmt: skip
    assert fit_group([subject], [tmp_path / "a"], settings)[0].status == "done"
    run = json.loads((tmp_path / "a" / "run.json").read_text(), parse_constant=_reject_constant)
    quality, block = run["fit_quality"], run["ei_interval"]
    # no noise floor: the cost check did not run and says so; the floor's metrics are null
    assert quality["unchecked"] == ["cost_above_floor"]
    assert quality["metrics"]["self_floor_total"] is None
    assert quality["metrics"]["noise_floor_sd"] is None
    assert quality["metrics"]["tolerance"] == 0.0
    assert block["calibration_applies"] is False
    assert "n_dup 1 (calibrated at 2)" in block["calibration_differences"]
    half = block["k_mean"] * math.hypot(block["spread_log_mean"], block["floor_log_mean"])
    assert block["mean_hi"] / block["mean"] == pytest.approx(math.exp(half), rel=1e-12)
    assert block["mean"] / block["mean_lo"] == pytest.approx(math.exp(half), rel=1e-12)
