"""The location-scale ML fit against statsmodels' generic MLE, OLS, and duplicated rows."""

from __future__ import annotations

import numpy as np
import patsy
import pytest
from scipy import stats
from statsmodels.base.model import GenericLikelihoodModel

from delssome_norms.errors import InvalidInputError
from delssome_norms.stats import SplineBasis, fit_location_scale, sum_to_zero


def _data(n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    age = rng.uniform(5, 95, n)
    female = (rng.random(n) < 0.5).astype(float)
    basis, basis_s = SplineBasis.from_data(age, 4), SplineBasis.from_data(age, 3)
    X = np.column_stack([np.ones(n), basis(age), female])
    Z = np.column_stack([np.ones(n), basis_s(age), female])
    sd = np.exp(-2.5 + 0.01 * age + 0.2 * female)
    y = np.sin(age / 20) + 0.05 * female + sd * rng.standard_normal(n)
    return y, X, Z


class _NormalLocationScale(GenericLikelihoodModel):
    """The same model written as a statsmodels generic likelihood (optimised numerically)."""

    def __init__(self, y, X, Z):
        super().__init__(y, np.column_stack([X, Z]))
        self.X, self.Z = X, Z

    def loglike(self, params):
        p = self.X.shape[1]
        return stats.norm.logpdf(self.endog, self.X @ params[:p], np.exp(self.Z @ params[p:])).sum()


def test_matches_statsmodels_generic_mle():
    y, X, Z = _data()
    fit = fit_location_scale(y, X, Z)
    start = np.r_[np.linalg.lstsq(X, y, rcond=None)[0], np.log(y.std()), np.zeros(Z.shape[1] - 1)]
    with pytest.warns(UserWarning):  # statsmodels' df bookkeeping warning for generic models
        ref = _NormalLocationScale(y, X, Z).fit(
            start_params=start, method="bfgs", maxiter=10000, gtol=1e-9, disp=0
        )
    p = X.shape[1]
    assert fit.converged.all()
    assert fit.loglik[0] == pytest.approx(ref.llf, abs=1e-6)
    np.testing.assert_allclose(fit.beta[0], ref.params[:p], atol=2e-4)
    np.testing.assert_allclose(fit.gamma[0], ref.params[p:], atol=2e-4)
    # Expected-information SEs agree with the observed-information ones to a few per cent.
    se_ref = np.sqrt(np.diag(ref.cov_params()))
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_beta[0])), se_ref[:p], rtol=0.1)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov_gamma[0])), se_ref[p:], rtol=0.1)


def test_constant_scale_is_ols():
    y, X, _ = _data(seed=1)
    fit = fit_location_scale(y, X, np.ones((y.size, 1)))
    beta, rss = np.linalg.lstsq(X, y, rcond=None)[:2]
    np.testing.assert_allclose(fit.beta[0], beta, rtol=1e-9, atol=1e-12)
    assert np.exp(fit.gamma[0, 0]) == pytest.approx(np.sqrt(rss[0] / y.size), rel=1e-8)
    assert fit.loglik[0] == pytest.approx(stats.norm.logpdf(y, X @ beta, np.sqrt(rss[0] / y.size)).sum())


def test_frequency_weights_equal_duplicated_rows_and_columns_are_independent():
    y, X, Z = _data(n=300, seed=2)
    counts = np.random.default_rng(3).integers(0, 3, y.size).astype(float)
    rows = np.repeat(np.arange(y.size), counts.astype(int))
    dup = fit_location_scale(y[rows], X[rows], Z[rows])
    both = fit_location_scale(np.column_stack([y, y]), X, Z, np.column_stack([counts, np.ones_like(y)]))
    np.testing.assert_allclose(both.beta[0], dup.beta[0], atol=1e-8)
    np.testing.assert_allclose(both.gamma[0], dup.gamma[0], atol=1e-7)
    assert both.loglik[0] == pytest.approx(dup.loglik[0], abs=1e-6)
    single = fit_location_scale(y, X, Z)
    np.testing.assert_allclose(both.beta[1], single.beta[0], atol=1e-10)


def test_spline_basis_matches_patsy_bs_and_refuses_extrapolation():
    x = np.random.default_rng(4).uniform(5, 95, 200)
    basis = SplineBasis.from_data(x, 5)
    np.testing.assert_allclose(basis(x), patsy.bs(x, df=5), atol=1e-12)
    assert basis.df == 5 and len(basis.knots) == 2
    with pytest.raises(InvalidInputError, match="fitted range"):
        basis(np.array([100.0]))


def test_sum_to_zero_coding():
    coded = sum_to_zero(np.array([0, 1, 2, 2]), 3)
    np.testing.assert_array_equal(coded, [[1, 0], [0, 1], [-1, -1], [-1, -1]])
    assert sum_to_zero(np.zeros(3, int), 1).shape == (3, 0)


def test_an_unbounded_likelihood_is_reported_not_raised() -> None:
    """A person with their own mean and scale column makes the likelihood unbounded (sd -> 0 at
    a zero residual): the fit must say "not converged", not raise or return a finite optimum."""
    y, X, Z = _data(n=40, seed=3)
    own = np.zeros((40, 1))
    own[0] = 1.0
    with pytest.warns(Warning, match="did not converge"):
        fit = fit_location_scale(np.column_stack([y, y]), np.hstack([X, own]), np.hstack([Z, own]))
    assert not fit.converged.any()
