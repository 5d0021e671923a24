"""BH FDR, Cohen's d, Brown–Forsythe and bootstrap helpers against hand computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from delssome_norms.errors import InvalidInputError
from delssome_norms.stats import (
    add_fdr,
    brown_forsythe,
    cohens_d,
    fdr_bh,
    percentile_interval,
    stratified_bootstrap_counts,
    weighted_median,
)


def test_bh_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, 0.005, 0.2])
    # sorted: 0.005, 0.01, 0.03, 0.04, 0.2 -> m p / rank = 0.025, 0.025, 0.05, 0.05, 0.2;
    # running minimum from the top leaves them unchanged; back in input order:
    expected = np.array([0.025, 0.05, 0.05, 0.025, 0.2])
    reject, adjusted = fdr_bh(p, alpha=0.05)
    np.testing.assert_allclose(adjusted, expected)
    np.testing.assert_array_equal(reject, [True, True, True, True, False])
    reject, _ = fdr_bh(p, alpha=0.03)
    np.testing.assert_array_equal(reject, [True, False, False, True, False])


def test_bh_step_up_monotone_and_nan():
    # m = 3 (NaN ignored); sorted 0.02, 0.03, 0.049 -> 3p/rank = 0.06, 0.045, 0.049 -> running
    # minimum from the top: 0.045, 0.045, 0.049. Rank 1 (0.06 alone) is rescued by the step-up.
    p = np.array([0.049, 0.02, np.nan, 0.03])
    reject, adjusted = fdr_bh(p)
    np.testing.assert_allclose(adjusted, [0.049, 0.045, np.nan, 0.045])
    np.testing.assert_array_equal(reject, [True, True, False, True])
    with pytest.raises(InvalidInputError):
        fdr_bh([0.5, 1.5])


def test_add_fdr_applies_bh_within_groups():
    table = pd.DataFrame({"test": ["a", "a", "b", "b"], "p": [0.01, 0.04, 0.03, 0.5]})
    table = table.assign(family="regional")
    out = add_fdr(table)
    # group a: 2*0.01/1, 2*0.04/2; group b: 2*0.03/1, 2*0.5/2
    np.testing.assert_allclose(out["p_fdr"], [0.02, 0.04, 0.06, 0.5])
    np.testing.assert_array_equal(out["significant"], [True, True, False, False])
    pooled = add_fdr(table, by=())
    # m = 4: sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06, 0.0533, 0.5 -> running min 0.04, 0.0533, ...
    np.testing.assert_allclose(pooled["p_fdr"], [0.04, 0.16 / 3, 0.16 / 3, 0.5])


def test_cohens_d_hand_computation():
    a = np.array([2.0, 4.0, 6.0])  # mean 4, var 4
    b = np.array([1.0, 2.0, 3.0, 4.0])  # mean 2.5, var 5/3
    pooled = np.sqrt((2 * 4.0 + 3 * 5.0 / 3.0) / 5.0)
    d, lo, hi = cohens_d(a, b)
    assert d == pytest.approx(1.5 / pooled)
    se = np.sqrt(7 / 12 + d**2 / 14)
    assert (lo, hi) == pytest.approx((d - 1.959963985 * se, d + 1.959963985 * se))


def test_brown_forsythe_is_anova_on_absolute_median_deviations():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1.5, 80), rng.normal(3, 1.0, 120)
    stat, p, ratio = brown_forsythe(a, b)
    da, db = np.abs(a - np.median(a)), np.abs(b - np.median(b))
    ref = stats.f_oneway(da, db)
    assert stat == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert ratio == pytest.approx(da.mean() / db.mean())
    assert p < 0.01 and ratio > 1


def test_stratified_counts_keep_stratum_sizes():
    strata = np.array([0] * 7 + [1] * 3 + [2] * 5)
    counts = stratified_bootstrap_counts(strata, 50, np.random.default_rng(1))
    assert counts.shape == (15, 50)
    for s, size in ((0, 7), (1, 3), (2, 5)):
        np.testing.assert_array_equal(counts[strata == s].sum(axis=0), size)
    assert counts.std() > 0


def test_weighted_median_and_percentile_interval():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(11, 3))
    np.testing.assert_allclose(weighted_median(x, np.ones_like(x)), np.median(x, axis=0))
    x4 = rng.normal(size=(10, 1))
    np.testing.assert_allclose(weighted_median(x4, np.ones_like(x4)), np.median(x4, axis=0))
    w = rng.integers(0, 4, size=(11, 1)).astype(float)
    assert weighted_median(x[:, :1], w)[0] == pytest.approx(
        np.median(np.repeat(x[:, 0], w[:, 0].astype(int)))
    )
    lo, hi = percentile_interval(np.arange(1001.0)[:, None], 0.9)
    assert (lo[0], hi[0]) == pytest.approx((50.0, 950.0))
