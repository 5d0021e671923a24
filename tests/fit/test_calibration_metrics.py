"""Pure functions of ``bench/ei_calibration.py`` (coverage, leave-one-out conformal factors, flag
metrics) on constructed numbers with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from bench_helpers import load_bench_script


@pytest.fixture(scope="module")
def cal():
    return load_bench_script("ei_calibration")


def test_conformal_quantile_rank(cal):
    # ceil((n + 1) * 0.9): 9th of 9, 18th of 19; 6th of 5 does not exist -> inf
    assert cal.conformal_quantile(np.arange(1.0, 10.0)) == 9.0
    assert cal.conformal_quantile(np.arange(19.0, 0.0, -1.0)) == 18.0
    assert cal.conformal_quantile(np.arange(5.0)) == math.inf
    assert cal.conformal_quantile(np.array([np.nan, 1.0, *range(2, 10)])) == 9.0
    assert math.isnan(cal.conformal_quantile(np.array([])))


def test_interval_scores(cal):
    s = cal.interval_scores(np.array([math.e, 1 / math.e, 2.0]), np.ones(3), np.array([0.5, 2.0, 0.0]))
    np.testing.assert_allclose(s[:2], [2.0, 0.5])
    assert s[2] == math.inf
    assert cal.interval_scores(np.array([3.0]), np.array([3.0]), np.array([0.0]))[0] == 0.0


def test_loo_conformal_k_and_coverage(cal):
    scores = [np.array([float(v)]) for v in range(1, 21)]
    k = cal.loo_conformal_k(scores)
    # others hold 19 values; the 18th smallest is 19 unless the left-out truth is 19 or 20
    np.testing.assert_array_equal(k, [19.0] * 18 + [18.0, 18.0])
    assert cal.coverage(scores, k) == pytest.approx(18 / 20)


def test_coverage_pooled_and_nan(cal):
    scores = [np.array([0.5, 3.0]), np.array([1.5]), np.array([2.5, np.nan])]
    assert cal.coverage(scores, [1.0, 2.0, 3.0]) == pytest.approx(3 / 5)
    assert cal.coverage(scores, 2.0) == pytest.approx(2 / 5)


def test_loo_conformal_coverage_is_nominal_on_exchangeable_scores(cal):
    rng = np.random.default_rng(0)
    scores = [np.abs(rng.normal(size=1)) for _ in range(1000)]
    k = cal.loo_conformal_k(scores)
    # k approaches the 90 % quantile of |N(0, 1)|, 1.645
    assert np.median(k) == pytest.approx(1.645, abs=0.1)
    assert 0.88 <= cal.coverage(scores, k) <= 0.93


def test_width_ratio(cal):
    np.testing.assert_allclose(cal.width_ratio(np.array([0.1, 0.0]), 1.645), [math.exp(0.329), 1.0])


def test_fit_classes_and_flag_rates(cal):
    r = np.array([0.95, 0.3, 0.95, 0.7, np.nan])
    err = np.array([5.0, 5.0, -40.0, 20.0, 0.0])
    poor, good = cal.fit_classes(r, err)
    np.testing.assert_array_equal(poor, [False, True, True, False, True])
    np.testing.assert_array_equal(good, [True, False, False, False, False])
    out = cal.flag_rates(r, err, np.array([False, True, False, True, True]))
    assert out["poor_flagged_share"] == pytest.approx(2 / 3)
    assert out["good_flagged_share"] == 0.0
    assert (out["n_poor"], out["n_good"], out["n_flagged"]) == (3, 1, 3)


def test_suggest_threshold(cal):
    values = np.array([1.0, 2.0, 3.0, 10.0, 11.0, 12.0])
    poor = np.array([False, False, False, True, True, True])
    out = cal.suggest_threshold(values, poor, ~poor)
    assert (out["direction"], out["threshold"], out["meets_targets"]) == (">=", 10.0, True)
    # a metric where low values are bad, overlapping classes: no rule meets the targets
    out = cal.suggest_threshold(-np.array([1.0, 5.0, 3.0, 4.0, 2.0, 6.0]), poor, ~poor)
    assert out["direction"] == "<=" and not out["meets_targets"]
    assert cal.suggest_threshold(values, np.zeros(6, bool), np.ones(6, bool)) is None


def test_strata_edges(cal):
    assert [cal.fc_stratum(v) for v in (0.05, 0.1, 0.249, 0.25)] == ["weak", "mid", "mid", "strong"]
    assert [cal.boundary_stratum(v) for v in (-0.5, -1.0, -2.0)] == ["near", "far", "far"]


def _row(i: int, design: str, fc: float, score_mean: float, covered: bool) -> dict:
    n = 4
    return {
        "status": "done",
        "truth_id": f"t{i}",
        "r": 0.95 if fc >= 0.1 else 0.2,
        "mean_err_pct": 5.0 if fc >= 0.1 else -50.0,
        "mean_ei_true": 2.0 + 0.1 * i,
        "mean_ei_fit": (2.0 + 0.1 * i) * (1.05 if fc >= 0.1 else 0.5),
        "fc_mean": fc,
        "design_stratum": design,
        "boundary_stratum": "near",
        "fc_stratum": cal_fc(fc),
        "score_mean": score_mean,
        "score_region": np.full(n, score_mean),
        "floor_score_mean": score_mean,
        "floor_score_region": np.full(n, score_mean),
        "mean_lo": math.exp(-0.1),
        "mean_hi": math.exp(0.1),
        "covered_mean_shipped": covered,
        "covered_region_shipped": [covered] * n,
        "spread_log_mean": 0.1,
        "spread_log_region": [0.1] * n,
        "k_mean": 1.0,
        "k_region": 1.0,
        "flagged": fc < 0.1,
        "flag_reasons": ["weak"] if fc < 0.1 else [],
        "quality_metrics": {"cost_ratio": 3.0 if fc < 0.1 else 1.0},
    }


def cal_fc(fc: float) -> str:
    return "weak" if fc < 0.1 else ("mid" if fc < 0.25 else "strong")


def test_summarise_and_acceptance(cal):
    rows = [_row(i, "default" if i % 2 else "gradient", 0.2, float(i + 1), i < 9) for i in range(10)]
    rows += [_row(10 + i, "default", 0.05, 0.5, True) for i in range(10)]
    rows.append({"status": "missing", "truth_id": "x"})
    s = cal.summarise(rows)
    ov = s["overall"]
    assert ov["n"] == 20
    assert ov["coverage"]["mean_shipped"] == pytest.approx(19 / 20)
    assert ov["coverage"]["region_shipped"] == pytest.approx(19 / 20)
    # scores 1..10 and ten 0.5s; k for each truth: 18th smallest of the other 19 scores:
    # 9 when the left-out score is 0.5 or <= 8, else 8 -> the truths scoring 9 and 10 miss
    assert ov["coverage"]["mean_loo"] == pytest.approx(18 / 20)
    assert ov["coverage"]["region_loo"] == pytest.approx(18 / 20)  # 70th of 76, same split
    assert ov["width_hi_over_lo"]["mean_shipped"] == pytest.approx(math.exp(0.2))
    assert s["fc_ge_0.1"]["median_r"] == 0.95 and s["fc_lt_0.1"]["median_abs_mean_err_pct"] == 50.0
    assert s["strata"]["fc=weak"]["n"] == 10 and s["strata"]["design=gradient"]["n"] == 5
    assert ov["flag"]["poor_flagged_share"] == 1.0 and ov["flag"]["good_flagged_share"] == 0.0
    # fitted level = 1.05 x true: tracks it exactly (r 1, slope 1.05)
    assert s["fc_ge_0.1"]["level_r"] == pytest.approx(1.0)
    assert s["fc_ge_0.1"]["level_slope"] == pytest.approx(1.05)
    assert s["flag_by_reason"]["weak"]["poor_flagged_share"] == 1.0
    assert s["suggested_thresholds"]["cost_ratio"]["meets_targets"]
    assert s["calibrated_all_truths"]["floor_mean"] == 9.0  # 19th of 20 sorted scores
    assert s["calibrated_all_truths"]["k"] == pytest.approx(1.6448536)
    acc = cal.acceptance(s)
    assert acc["coverage_shipped"] and acc["recovery_fc_ge_0.1"] and acc["flag"]
    assert acc["coverage_loo"]


def test_default_design_coefficients_reproduce_map_units(cal):
    _, spaces, mu_sd = cal.truth_spaces()
    z = np.array([[3.0, 0.2, -0.3], [2.0, 0.4, -0.1], [0.004, 0.0005, 0.0002], [2.5, 0, 0]])
    space = spaces["default"]
    p = space.to_regional(cal._coeffs("default", z, mu_sd)[None])
    zm = (space.myelin - space.myelin.mean()) / space.myelin.std()
    np.testing.assert_allclose(p.wEE[0], 3.0 + 0.2 * space.gradient - 0.3 * zm, atol=1e-12)
    np.testing.assert_allclose(p.wEI[0], 2.0 + 0.4 * space.gradient - 0.1 * zm, atol=1e-12)
    np.testing.assert_allclose(p.sigma[0], 0.004 + 0.0005 * space.gradient + 0.0002 * zm, atol=1e-15)
    assert p.G[0] == 2.5


def test_budget_resolution_order(cal):
    # fit defaults < preset (--cpu-budget) < explicit flags < --mode-budget
    args = cal.parse_args(["--cpu-budget", "--n-dup", "4"])
    defaults = {"generations": 100, "popsize": 100, "n_dup": 3, "test_top_k": 5}
    assert cal.budget_for(args, "euler") == {**defaults, **cal.CPU_BUDGET["euler"], "n_dup": 4}
    assert cal.budget_for(args, "surrogate") == {**defaults, **cal.CPU_BUDGET["surrogate"], "n_dup": 4}
    args = cal.parse_args(["--generations", "7", "--mode-budget", "euler=generations:3,popsize:9"])
    assert cal.budget_for(args, "euler")["generations"] == 3
    assert cal.budget_for(args, "euler")["popsize"] == 9
    assert cal.budget_for(args, "surrogate") == {
        "generations": 7,
        "popsize": 100,
        "n_dup": 3,
        "test_top_k": 5,
    }
    two = {**cal.budget_for(args, "euler"), "searches": 2}
    # several searches are averaged by default ("mean"), "best" keeps the folder of earlier runs
    assert cal.budget_tag("euler", two, 432.0, True) == "euler_g3p9d3k5_searches2_mean_s432_1g"
    assert cal.budget_tag("euler", two, 432.0, True, combine="best") == (
        "euler_g3p9d3k5_searches2_s432_1g"
    )
    assert cal.budget_tag("euler", cal.budget_for(args, "euler"), 864.0, False, "fc") == (
        "euler_g3p9d3k5_s864_fcmap"
    )
    vary_val = {**cal.budget_for(args, "surrogate"), "val_per_generation": 1}
    assert cal.budget_tag("surrogate", vary_val, 432.0, True) == "surrogate_g7p100d3k5_v1_s432_1g"
    settings = cal.make_settings(args, "surrogate", "default", vary_val)
    assert settings.val_per_generation == 1 and settings.searches == 1


def test_level_tracking_against_hand_values(cal):
    true = [2.0, 3.0, 4.0]
    rows = [{"mean_ei_true": t, "mean_ei_fit": f} for t, f in zip(true, [3.0, 3.0, 3.0 + 1e-9])]
    lt = cal.level_tracking(rows)
    assert lt["level_slope"] == pytest.approx(0.0, abs=1e-8)  # a constant guess does not track
    # the oracle constant 3.0: errors 50 %, 0 %, 25 % -> median 25 %
    assert lt["constant_guess_err_pct"] == pytest.approx(25.0)
    rows = [{"mean_ei_true": t, "mean_ei_fit": 2 * t} for t in true]
    assert cal.level_tracking(rows)["level_r"] == pytest.approx(1.0)
    assert math.isnan(cal.level_tracking(rows[:2])["level_r"])


def test_parse_vary(cal):
    assert cal.parse_vary("n-dup=1,3") == ("n_dup", [1.0, 3.0])
    assert cal.parse_vary("val_per_generation=1") == ("val_per_generation", [1.0])
    with pytest.raises(SystemExit):
        cal.parse_vary("seed=1,2")


def test_floor_scores_are_the_floor_that_just_covers(cal):
    err = np.array([0.5, 0.1, 0.0, 0.3])
    spread = np.array([0.1, 0.2, 0.0, 0.0])
    f = cal.floor_scores(err, spread, k=2.0)
    # covered by the spread alone (0.1 / 2 < 0.2; 0 error) -> 0; otherwise the exact floor
    np.testing.assert_allclose(f, [math.sqrt(0.25**2 - 0.01), 0.0, 0.0, 0.15])
    half = 2.0 * np.sqrt(spread**2 + f**2)
    np.testing.assert_allclose(np.maximum(half, err), half)  # each interval reaches its error
    assert np.all(2.0 * np.sqrt(spread**2 + (f - 1e-6).clip(0) ** 2)[f > 0] < err[f > 0])
