"""The batched fitter: closed-form cases, gamlss's random-effect fixed point, batching, missing data."""

from __future__ import annotations

import numpy as np
import pytest

from delssome_norms.norms.distributions import NO, SHASHO2
from delssome_norms.norms.fitting import fit_gamlss, fit_site_offsets
from delssome_norms.norms.splines import BSplineBasis


def _design(ages, female, df):
    return np.column_stack(
        [np.ones_like(ages), BSplineBasis.from_data(ages, df).transform(ages), female]
    )


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(4)
    n, S = 1500, 5
    ages = rng.uniform(5, 95, n)
    female = rng.integers(0, 2, n).astype(float)
    site = rng.integers(0, S, n)
    offsets = np.array([0.08, -0.05, 0.02, -0.06, 0.01])
    mu = 2.0 - 0.015 * ages + 0.04 * female + offsets[site]
    y = np.column_stack([mu + rng.normal(0, 0.05 + 0.0005 * ages), 1.5 * mu + rng.normal(0, 0.1, n)])
    return ages, female, site, S, y, offsets


def test_normal_without_random_effects_is_least_squares(data) -> None:
    ages, female, site, S, y, _ = data
    X = _design(ages, female, 4)
    one = np.ones((ages.size, 1))
    res = fit_gamlss(y, NO, [X, one], [False, False], site, S)
    assert res.converged.all()
    for t in range(2):
        beta, *_ = np.linalg.lstsq(X, y[:, t], rcond=None)
        rss = np.sum((y[:, t] - X @ beta) ** 2)
        np.testing.assert_allclose(res.beta[0][t], beta, atol=1e-8)
        assert np.exp(res.beta[1][t, 0]) == pytest.approx(np.sqrt(rss / ages.size), rel=1e-8)
        assert res.edf[t] == X.shape[1] + 1


def test_random_intercepts_meet_gamlss_fixed_point(data) -> None:
    ages, female, site, S, y, offsets = data
    X = _design(ages, female, 4)
    one = np.ones((ages.size, 1))
    res = fit_gamlss(y[:, :1], NO, [X, one], [True, False], site, S)
    assert res.converged.all()
    gamma, lam = res.gamma[0][0], res.lam[0][0]
    sigma = np.exp(res.beta[1][0, 0])
    # penalised normal equations: X'(y - eta) = 0, Z'(y - eta) / sigma^2 = lambda * gamma
    eta = X @ res.beta[0][0] + gamma[site]
    r = (y[:, 0] - eta) / sigma**2
    np.testing.assert_allclose(X.T @ r, 0.0, atol=1e-6)
    np.testing.assert_allclose(np.bincount(site, r, S), lam * gamma, rtol=1e-6, atol=1e-6)
    assert abs(gamma.sum()) < 1e-8
    # gamlss random(): lambda = sig2 / tau2 with working weights 1 / sigma^2 (NO)
    w = np.full(ages.size, 1.0 / sigma**2)
    nw = np.bincount(site, w, S)
    edf = np.sum(nw / (nw + lam))
    sig2 = np.sum(w * ((y[:, 0] - eta) / 1.0) ** 2) / (ages.size - edf)
    tau2 = np.sum(gamma**2) / edf
    assert lam == pytest.approx(sig2 / tau2, rel=1e-5)
    # and the site effects recover the truth (up to the overall level)
    assert np.corrcoef(gamma, offsets)[0, 1] > 0.99


def test_batched_fit_equals_one_target_at_a_time(data) -> None:
    ages, female, site, S, y, _ = data
    Xm, Xs = _design(ages, female, 4), _design(ages, female, 3)
    one = np.ones((ages.size, 1))
    args = ([Xm, Xs, one, one], [True, True, False, False], site, S)
    both = fit_gamlss(y, SHASHO2, *args)
    for t in range(2):
        alone = fit_gamlss(y[:, t : t + 1], SHASHO2, *args)
        for k in range(4):
            np.testing.assert_allclose(both.beta[k][t], alone.beta[k][0], rtol=1e-6, atol=1e-7)
        assert both.loglik[t] == pytest.approx(alone.loglik[0], abs=1e-6)


def test_missing_values_are_skipped(data) -> None:
    ages, female, site, S, y, _ = data
    X = _design(ages, female, 4)
    one = np.ones((ages.size, 1))
    y2 = y[:, :1].copy()
    drop = np.arange(0, ages.size, 7)
    y2[drop] = np.nan
    keep = np.setdiff1d(np.arange(ages.size), drop)
    with_nan = fit_gamlss(y2, NO, [X, one], [True, False], site, S)
    removed = fit_gamlss(y[keep, :1], NO, [X[keep], one[keep]], [True, False], site[keep], S)
    np.testing.assert_allclose(with_nan.beta[0], removed.beta[0], rtol=1e-7)
    assert with_nan.n_obs[0] == keep.size


def test_unconverged_targets_are_reported(data) -> None:
    ages, female, site, S, y, _ = data
    X = _design(ages, female, 4)
    one = np.ones((ages.size, 1))
    res = fit_gamlss(y, SHASHO2, [X, one, one, one], [True, True, False, False], site, S, max_iter=1)
    assert not res.converged.any()
    assert (res.n_iter == 1).all()


def test_site_offsets_by_maximum_likelihood_recover_the_truth() -> None:
    rng = np.random.default_rng(7)
    n = 4000
    site = rng.integers(0, 2, n)
    true_mu, true_ls = np.array([0.1, -0.2]), np.array([0.2, -0.1])
    eta_mu, eta_s = np.full(n, 1.0), np.full(n, np.log(0.3))
    y = NO.rvs(eta_mu + true_mu[site], np.exp(eta_s + true_ls[site]), rng=rng)[:, None]
    res = fit_site_offsets(y, NO, [eta_mu[:, None], eta_s[:, None]], [True, True], site, 2)
    assert res.converged.all()
    for s in range(2):
        sel = site == s
        # ML of a normal with known centre: mean and log sd of the site's values
        assert res.offsets[0, s, 0] == pytest.approx(y[sel, 0].mean() - 1.0, abs=1e-8)
        sd = np.sqrt(np.mean((y[sel, 0] - y[sel, 0].mean()) ** 2))
        assert res.offsets[0, s, 1] == pytest.approx(np.log(sd) - np.log(0.3), abs=1e-8)
    np.testing.assert_allclose(res.offsets[0, :, 0], true_mu, atol=0.035)  # ~4 standard errors


def test_rs_emulation_is_batched_exactly_and_skips_missing_values(data) -> None:
    from delssome_norms.norms.rs import fit_gamlss_rs

    ages, female, site, S, y, _ = data
    X = [
        _design(ages, female, 4),
        _design(ages, female, 3),
        np.ones((ages.size, 1)),
        np.ones((ages.size, 1)),
    ]
    random = [True, True, False, False]
    y2 = y.copy()
    drop = np.arange(0, ages.size, 9)
    y2[drop, 1] = np.nan
    both = fit_gamlss_rs(y2, SHASHO2, X, random, site, S)
    first = fit_gamlss_rs(y2[:, :1], SHASHO2, X, random, site, S)
    keep = np.setdiff1d(np.arange(ages.size), drop)
    second = fit_gamlss_rs(y[keep, 1:], SHASHO2, [x[keep] for x in X], random, site[keep], S)
    assert both.converged.all()
    for k in range(4):
        np.testing.assert_allclose(both.beta[k][0], first.beta[k][0], rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(both.beta[k][1], second.beta[k][0], rtol=1e-9, atol=1e-11)
    assert both.n_obs[1] == keep.size
    # the RS solution is close to the exact optimum in likelihood (it stops on a deviance change)
    exact = fit_gamlss(y2, SHASHO2, X, random, site, S)
    assert np.all(np.abs(both.loglik - exact.loglik) < 0.5)
