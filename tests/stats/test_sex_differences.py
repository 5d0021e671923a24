"""Sex-difference tests and the age-resolved gap on cohorts with known (or no) effects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.stats import (
    fdr_bh,
    sex_difference_summary,
    sex_difference_tests,
    sex_gap,
)
from delssome_norms.stats.sex_differences import RESULT_COLUMNS


@pytest.fixture(scope="module")
def effect_cohort(make_cohort):
    return make_cohort(n=2000, n_rois=6, mean_gap=0.03, sigma_ratio=1.3, seed=11)


@pytest.fixture(scope="module")
def effect_results(effect_cohort):
    return sex_difference_tests(effect_cohort, regions=DK68_REGIONS[:6])


def test_known_effects_are_detected_in_the_right_direction(effect_results):
    res = effect_results
    assert list(res.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert len(res) == 3 * 7
    for test in ("mu_lr", "sigma_lr", "brown_forsythe"):
        rows = res[res["test"] == test]
        assert rows["significant"].all(), test
        assert (rows["direction"] == "female > male").all(), test
    mu = res[res["test"] == "mu_lr"]
    # The Wald intervals cover the true mean difference and the true sd ratio for (nearly) all targets.
    assert ((mu["ci_low"] < 0.03) & (mu["ci_high"] > 0.03)).mean() >= 5 / 7
    sig = res[res["test"] == "sigma_lr"]
    assert ((sig["ci_low"] < 1.3) & (sig["ci_high"] > 1.3)).mean() >= 5 / 7
    assert (mu["cohens_d"] > 0.1).all() and (mu["cohens_d"] < 0.6).all()
    regional = res[res["family"] == "regional"]
    assert regional["region"].iloc[0] == "lh_bankssts"
    assert res.loc[res["target"] == "ei_ratio_mean", "family"].eq("global").all()


def test_fdr_is_bh_within_test_and_family(effect_results):
    rows = effect_results[
        (effect_results["test"] == "sigma_lr") & (effect_results["family"] == "regional")
    ]
    _, adjusted = fdr_bh(rows["p"].to_numpy())
    np.testing.assert_allclose(rows["p_fdr"], adjusted)


def test_summary_counts(effect_results):
    summary = sex_difference_summary(effect_results).set_index(["test", "family"])
    assert summary.loc[("mu_lr", "regional"), "n_female_greater"] == 6
    assert summary.loc[("sigma_lr", "regional"), "n_male_greater"] == 0


def test_reversed_effect_gives_female_below_male(make_cohort):
    table = make_cohort(n=1500, n_rois=1, mean_gap=-0.04, sigma_ratio=0.75, seed=3)
    res = sex_difference_tests(table, targets="ei_ratio_roi_0", method="robust_wald").set_index("test")
    assert res.loc["mu_robust_wald", "significant"] and res.loc["sigma_robust_wald", "significant"]
    assert res.loc["mu_robust_wald", "direction"] == "female < male"
    assert res.loc["sigma_robust_wald", "effect"] < 1
    assert res.loc["brown_forsythe", "direction"] == "female < male"


def test_null_cohorts_typically_show_no_significant_region(make_cohort):
    # Under the global null, BH keeps P(any region significant) <= 0.05 per test. Over 15 null
    # cohorts of 20 correlated regions, at most 4 may show any (P(>= 5) ~ 6e-4 at rate 0.05).
    rois = [f"ei_ratio_roi_{i}" for i in range(20)]
    cohorts_with_findings = {"mu_lr": 0, "sigma_lr": 0, "brown_forsythe": 0}
    for seed in range(15):
        res = sex_difference_tests(make_cohort(n=600, n_rois=20, seed=200 + seed), targets=rois)
        assert len(res) == 60 and (res["p_fdr"] >= res["p"]).all()
        for test in cohorts_with_findings:
            cohorts_with_findings[test] += int(res.loc[res["test"] == test, "significant"].any())
    assert max(cohorts_with_findings.values()) <= 4, cohorts_with_findings


def test_null_rejection_rate_is_near_alpha(make_cohort):
    # 60 independent null cohorts: the unadjusted rejection count at alpha 0.05 of each test stays
    # within the central 99.8% of Binomial(60, 0.05) (0 to 9); a miscalibrated test exceeds it.
    rejections = {"mu_lr": 0, "sigma_lr": 0, "brown_forsythe": 0}
    for seed in range(60):
        res = sex_difference_tests(
            make_cohort(n=500, n_rois=1, seed=100 + seed), targets="ei_ratio_roi_0"
        )
        for test in rejections:
            rejections[test] += int(res.loc[res["test"] == test, "p"].iloc[0] < 0.05)
    assert all(count <= 9 for count in rejections.values()), rejections


def test_gap_band_covers_a_known_age_varying_gap(make_cohort):
    true_gap = lambda age: 0.01 + 0.0006 * (age - 5.0)  # noqa: E731
    table = make_cohort(n=3000, n_rois=1, mean_gap=true_gap, seed=21)
    gap = sex_gap(table, "ei_ratio_roi_0", n_boot=200, ages=np.arange(10.0, 91.0, 5.0), seed=1)
    assert list(gap["age_in_years"]) == list(np.arange(10.0, 91.0, 5.0))
    covered = (gap["ci_low"] <= true_gap(gap["age_in_years"])) & (
        gap["ci_high"] >= true_gap(gap["age_in_years"])
    )
    assert covered.mean() >= 0.85
    assert (gap["ci_low"] < gap["gap"]).all() and (gap["gap"] < gap["ci_high"]).all()
    assert gap["gap"].iloc[-1] > gap["gap"].iloc[0]  # the gap widens with age
    assert gap["excludes_zero"].iloc[-5:].all()
    assert 0.005 < gap["se"].median() < 0.02


def test_median_gap_differs_from_mean_gap_under_skew(make_cohort):
    # Same right-skewed error shape for both sexes, female sd twice the male sd, no shift in the
    # mean: the female median lies below the male one by (sd_f - sd_m) * |median(e)|.
    table = make_cohort(n=4000, n_rois=1, sigma_ratio=2.0, n_sites=1, noise="skewed", seed=8)
    s = 0.5
    median_e = (1.0 - np.exp(s * s / 2)) / np.sqrt((np.exp(s * s) - 1.0) * np.exp(s * s))
    ages = np.array([20.0, 50.0, 80.0])
    true_median_gap = 0.08 * (1 + ages / 100) * (2.0 - 1.0) * median_e
    kw = {"ages": ages, "site": None, "n_boot": 100, "seed": 2}
    med = sex_gap(table, "ei_ratio_roi_0", statistic="median", **kw)
    mean = sex_gap(table, "ei_ratio_roi_0", statistic="mean", **kw)
    assert ((med["ci_low"] <= true_median_gap) & (med["ci_high"] >= true_median_gap)).sum() >= 2
    assert ((mean["ci_low"] <= 0) & (mean["ci_high"] >= 0)).sum() >= 2
    assert (med["gap"] < mean["gap"]).all()


def test_gap_without_bootstrap_has_nan_bands(make_cohort):
    gap = sex_gap(make_cohort(n=300, n_rois=1, seed=1), "ei_ratio_mean", n_boot=0)
    assert gap["ci_low"].isna().all() and not gap["excludes_zero"].any()
    assert gap["age_in_years"].iloc[0] == np.ceil(gap["age_in_years"].iloc[0])


@pytest.mark.parametrize(
    ("change", "kwargs", "message"),
    [
        (lambda t: t.drop(columns="age_in_years"), {}, "missing column 'age_in_years'"),
        (lambda t: t.drop(columns="sex"), {}, "missing column 'sex'"),
        (lambda t: t.assign(sex=["x", *t["sex"].iloc[1:]]), {}, "unknown sex label"),
        (lambda t: t.drop(columns="site"), {}, "missing site column 'site_scanner'"),
        (lambda t: t.assign(sex="female"), {}, "at least 10 people of each sex"),
        (lambda t: t, {"targets": ["nope"]}, "missing target column"),
        (lambda t: t.assign(ei_ratio_roi_0=np.nan), {}, "not a finite number"),
        (lambda t: t.assign(ei_ratio_roi_0=1.0), {}, "constant"),
        (lambda t: t, {"method": "wald"}, "method must be one of"),
        (lambda t: t, {"mu_df": 2}, "mu_df must be an integer"),
        (lambda t: t.assign(age_in_years=-1.0), {}, "age must be between"),
    ],
)
def test_bad_inputs_are_rejected(make_cohort, change, kwargs, message):
    table = change(make_cohort(n=200, n_rois=2, seed=0))
    with pytest.raises(InvalidInputError, match=message):
        sex_difference_tests(table, **kwargs)


def test_numeric_sex_and_no_site_are_accepted(make_cohort):
    table = make_cohort(n=400, n_rois=1, seed=4)
    numeric = table.drop(columns=["sex", "site"]).assign(
        numeric_sex=(table["sex"] == "female").astype(int)
    )
    a = sex_difference_tests(numeric, targets="ei_ratio_mean", site=None)
    b = sex_difference_tests(table, targets="ei_ratio_mean", site=None)
    pd.testing.assert_frame_equal(a, b)


def test_gap_rejects_ages_outside_the_data(make_cohort):
    with pytest.raises(InvalidInputError, match="age range"):
        sex_gap(make_cohort(n=200, n_rois=1), ages=[1.0, 50.0], n_boot=0)


def test_sites_too_small_for_scale_effects_are_refused(effect_cohort) -> None:
    """A site of one person would let its scale effect fit that person exactly (unbounded
    likelihood: the reviewed failure gave p = 0 for a sample of 60 people in 13 sites)."""
    from delssome_norms.stats.sex_differences import MIN_PER_SITE_SCALE

    table = effect_cohort.copy()
    table.loc[table.index[:2], "site"] = "tiny"
    if "site_scanner" in table:
        table.loc[table.index[:2], "site_scanner"] = "tiny"
    with pytest.raises(InvalidInputError, match=rf"fewer than {MIN_PER_SITE_SCALE} people: tiny \(2\)"):
        sex_difference_tests(table, targets="ei_ratio_mean")
    res = sex_difference_tests(table, targets="ei_ratio_mean", scale_site=False)
    assert res["converged"].all() and res["p"].between(0, 1).all()
