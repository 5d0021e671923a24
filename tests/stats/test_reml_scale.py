"""REML scale fits and the size of the sex test in variability (independent expectations)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.stats import fit_location_scale, sex_difference_tests


def test_reml_variance_is_rss_over_n_minus_p():
    """Constant variance: REML gives the unbiased RSS / (n - p), ML gives RSS / n (analytic)."""
    rng = np.random.default_rng(3)
    n = 40
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(0.0, 2.0, n)
    Z = np.ones((n, 1))
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    rss = float(np.sum((y - X @ beta) ** 2))
    ml = fit_location_scale(y, X, Z)
    reml = fit_location_scale(y, X, Z, reml=True)
    assert np.exp(2 * ml.gamma[0, 0]) == pytest.approx(rss / n, rel=1e-7)
    assert np.exp(2 * reml.gamma[0, 0]) == pytest.approx(rss / (n - 3), rel=1e-7)
    np.testing.assert_allclose(reml.beta[0], beta, rtol=1e-8)


def test_reml_group_variances_are_unbiased_per_group():
    """Two groups with their own mean and variance: REML gives each group's s^2 (ddof = 1)."""
    rng = np.random.default_rng(4)
    g = np.r_[np.zeros(12), np.ones(30)]
    X = np.column_stack([np.ones(g.size), g])
    y = np.where(g == 1, 2.0, 0.0) + rng.normal(size=g.size) * np.where(g == 1, 3.0, 1.0)
    fit = fit_location_scale(y, X, X, reml=True)
    var = np.exp(2 * (X[[0, -1]] @ fit.gamma[0]))
    np.testing.assert_allclose(var, [y[g == 0].var(ddof=1), y[g == 1].var(ddof=1)], rtol=1e-6)


def _null_cohort(rng: np.random.Generator, n: int) -> pd.DataFrame:
    age = rng.uniform(8, 80, n)
    female = rng.uniform(size=n) < 0.5
    site = rng.integers(0, 4, n)
    sd = np.exp(0.2 * np.sin(age / 20) + np.linspace(-0.2, 0.2, 4)[site])
    y = 1 + 0.3 * np.log1p(age) + np.linspace(0.3, -0.3, 4)[site] + sd * rng.normal(size=n)
    return pd.DataFrame(
        {
            "age_in_years": age,
            "sex": np.where(female, "female", "male"),
            "site": [f"s{k}" for k in site],
            "ei_ratio_mean": y,
        }
    )


def test_variability_lr_test_holds_its_size_in_small_samples():
    """No sex difference, n = 60 over 4 sites (19 parameters): the scale LR test must reject
    about 5 % of the time. The ML likelihood ratio rejected 11.75 % here (REML: 3.75 %); with 400
    replicates the binomial sd of a 5 % rate is 1.1 %, so 8 % is ~2.7 sd above the target."""
    rng = np.random.default_rng(11)
    p = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(400):
            res = sex_difference_tests(_null_cohort(rng, 60), site="site")
            p.append(res.loc[res["test"] == "sigma_lr", "p"].item())
    rate = float(np.mean(np.asarray(p) < 0.05))
    assert 0.02 <= rate <= 0.08, rate


def test_mean_tests_hold_their_size_in_small_samples():
    """No sex difference, n = 60 over 4 sites (9 mean and 8 scale parameters): against
    chi-square(1) the mean LR test rejected 13.75 % of these 400 null cohorts and the HC0 sandwich
    Wald test 25 %; with the F(1, n - p - q + 1) calibration (and HC3 residuals for the Wald test)
    7.0 % and 11 %. The binomial sd of a 5 % rate over 400 replicates is 1.1 %."""
    rng = np.random.default_rng(11)
    p = {"lr": [], "robust_wald": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(400):
            table = _null_cohort(rng, 60)
            for method in p:
                res = sex_difference_tests(table, site="site", method=method)
                row = res.loc[res["test"] == f"mu_{method}"].iloc[0]
                assert row["df_resid"] == 60 - 9 - 7
                p[method].append(row["p"])
    rate = {m: float(np.mean(np.asarray(v) < 0.05)) for m, v in p.items()}
    assert 0.02 <= rate["lr"] <= 0.09, rate
    assert rate["robust_wald"] <= 0.14, rate


def test_frequency_weights_equal_repeated_rows_in_the_sandwich():
    """Integer weights are frequency weights: every covariance equals that of the data with the
    rows repeated (the HC3 leverage is one copy's, not the sum of the copies')."""
    rng = np.random.default_rng(5)
    n = 30
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n)])
    Z = X[:, :2]
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=n) * np.exp(0.3 * X[:, 1])
    w = rng.integers(0, 4, n)
    rep = np.repeat(np.arange(n), w)
    for reml in (False, True):
        weighted = fit_location_scale(y, X, Z, weights=w.astype(float), reml=reml)
        repeated = fit_location_scale(y[rep], X[rep], Z[rep], reml=reml)
        for name in ("beta", "cov_beta", "robust_cov_beta", "robust_cov_gamma"):
            np.testing.assert_allclose(
                getattr(weighted, name), getattr(repeated, name), rtol=1e-6, err_msg=name
            )
