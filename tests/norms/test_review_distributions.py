"""Numerical review of the response distributions, as a user scoring extreme people would use them.

Checks the tails (|z| up to 10 and beyond), extreme tail weight / skewness, float32 input, NaN and
+-inf values, quantile / CDF round trips, the fitter's derivatives and agreement with independent
implementations:

* SHASHo / SHASHo2 follow Jones & Pewsey (2009, Biometrika 96, 761-780), eq. (2):
  ``Z = sinh(delta asinh(X) - epsilon) ~ N(0, 1)`` with ``X = (Y - mu) / sigma`` (SHASHo,
  epsilon = nu, delta = tau) or ``X = (Y - mu) / (sigma tau)`` (SHASHo2), so
  ``F(y) = Phi(sinh(tau asinh(x) - nu))`` and, for nu = 0 and tau = 1, the normal distribution.
  The reference below evaluates that transformation in 50-digit arithmetic (mpmath).
* JSU (gamlss.dist) is Johnson's SU, ``-nu + tau asinh((y - xi) / lambda) ~ N(0, 1)``, i.e.
  ``scipy.stats.johnsonsu(a=-nu, b=tau, loc=xi, scale=lambda)``, with xi, lambda chosen so that
  the mean is mu and the standard deviation sigma; scipy's own moments check that choice.
* GG's CDF is the regularised incomplete gamma function of ``theta (y / mu)^nu``; the reference
  integrates the gamma density in 50-digit arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from delssome_norms.norms import distributions as d
from delssome_norms.norms.distributions import FAMILIES

THETAS = {
    "SHASHo2": [(10.0, 2.0, 0.4, 0.7), (10.0, 2.0, -3.0, 0.08), (10.0, 2.0, 2.0, 12.0)],
    "SHASHo": [(10.0, 2.0, -0.4, 1.6), (10.0, 2.0, 4.0, 0.1), (0.0, 1.0, 0.0, 1.0)],
    "SHASH": [(10.0, 2.0, 0.6, 1.5), (10.0, 2.0, 0.1, 3.0), (10.0, 2.0, 4.0, 0.3)],
    "JSU": [(10.0, 2.0, 0.5, 1.3), (10.0, 2.0, -2.0, 0.5), (10.0, 2.0, 1.0, 50.0)],
    "NO": [(10.0, 2.0)],
    "GG": [(10.0, 0.3, 0.7), (10.0, 0.3, -1.2), (10.0, 0.05, 3.0), (10.0, 0.1, 1e-3)],
}
CASES = [(name, th) for name, ths in THETAS.items() for th in ths]


# ---------------------------------------------------------------------------------------------
# round trips in the far tails
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "theta"), CASES)
def test_zscore_of_from_zscore_is_exact_to_z_10(name, theta) -> None:
    # SHASH and GG had no exact inverse: from_zscore went through ppf(ndtr(z)), and ndtr(z)
    # rounds to 1 from z ~ 8.3 on, so people at z >= 8.5 were mapped to y = inf
    fam = FAMILIES[name]
    z = np.array([-10.0, -9.0, -8.5, -8.0, -6.0, -1.0, 0.0, 1.0, 6.0, 8.0, 8.5, 9.0, 10.0])
    y = fam.from_zscore(z, *theta)
    assert np.all(np.isfinite(y))
    np.testing.assert_allclose(fam.zscore(y, *theta), z, rtol=0, atol=1e-10)


@pytest.mark.parametrize(("name", "theta"), CASES)
def test_cdf_of_ppf_is_p_from_1e12_to_1_minus_1e12(name, theta) -> None:
    fam = FAMILIES[name]
    p = np.concatenate([np.logspace(-12, -1, 23), [0.3, 0.5, 0.7], 1.0 - np.logspace(-1, -12, 23)])
    back = fam.cdf(fam.ppf(p, *theta), *theta)
    np.testing.assert_allclose(back, p, rtol=0, atol=1e-13)
    lower = p < 0.5  # relative accuracy where p itself is small
    np.testing.assert_allclose(back[lower], p[lower], rtol=1e-10, atol=0)


def test_gg_ppf_with_negative_nu_keeps_the_lower_tail() -> None:
    # with nu < 0 the quantile inverted the gamma variate at 1 - q, which rounds: q = 1e-12 came
    # back as 0.99998e-12 (relative error 2e-5)
    p = np.array([1e-300, 1e-100, 1e-12, 3e-12, 1e-6])
    for theta in [(10.0, 0.3, -0.7), (10.0, 0.3, -1.2), (10.0, 0.1, -0.05)]:
        np.testing.assert_allclose(d.gg_cdf(d.gg_ppf(p, *theta), *theta), p, rtol=1e-10)


# ---------------------------------------------------------------------------------------------
# GG close to its log-normal limit (theta = 1 / (sigma nu)^2 large)
# ---------------------------------------------------------------------------------------------
def _gamma_z_reference(a: float, log_lambda: float) -> float:
    """Phi^-1(P(a, a exp(l))) for Gamma(a, 1), from the density of log(G / a) in 50 digits."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        a_, lz = mpmath.mpf(a), mpmath.mpf(log_lambda)
        const = a_ * mpmath.log(a_) - mpmath.loggamma(a_)

        def dens(t):
            return mpmath.exp(const + a_ * t - a_ * mpmath.exp(t))

        sd = 1 / mpmath.sqrt(a_)
        if lz < 0:
            tail = mpmath.quad(dens, [lz - 100 * sd, lz - 20 * sd, lz - 5 * sd, lz])
        else:
            tail = mpmath.quad(dens, [lz, lz + 5 * sd, lz + 20 * sd, lz + 100 * sd])
        guess = abs(float(lz)) * float(mpmath.sqrt(a_))
        z = mpmath.findroot(lambda x: mpmath.log(mpmath.ncdf(-x)) - mpmath.log(tail), guess)
        return float(z) if lz >= 0 else -float(z)


@pytest.mark.parametrize("theta_gamma", [1e6, 1e8, 1e10])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_gg_zscore_far_tail_with_large_theta_matches_reference(theta_gamma, sign) -> None:
    # scipy's gammainc loses accuracy far in the tails for large shape (z off by 8e-7 at
    # theta = 1e6, 0.08 at 1e8, 0.23 at 1e10 at 5 sd); sigma = 0.05 and |nu| ~ 1e-3 is a
    # plausible near-log-normal brain-volume fit
    mu, sigma = 10.0, 0.05
    nu = sign / (sigma * math.sqrt(theta_gamma))
    for w in (-10.0, -5.0, 4.0):
        log_lambda = w / math.sqrt(theta_gamma)
        y = mu * math.exp(log_lambda / nu)
        expected = sign * _gamma_z_reference(theta_gamma, log_lambda)
        assert d.GG.zscore(y, mu, sigma, nu) == pytest.approx(expected, abs=1e-9)
        assert d.GG.cdf(y, mu, sigma, nu) == pytest.approx(special.ndtr(expected), rel=1e-8)


@pytest.mark.parametrize("nu", [2e-6, -2e-6, 1e-5, -1e-5])
def test_gg_near_the_lognormal_switch_agrees_with_the_limit(nu) -> None:
    # just above |nu| = 1e-6 theta ~ 1e14 and theta log theta - lgamma(theta) cancelled: the
    # log-density was off by 0.2 and the z-score of a 5-sd person by 1.1
    mu, sigma = 10.0, 0.05
    y = np.array([6.0, 8.0, 10.0, 13.0])
    ln_z = np.log(y / mu) / sigma
    lognormal = stats.lognorm.logpdf(y, s=sigma, scale=mu)
    # GG -> log-normal as nu -> 0; the first-order difference is O(nu sigma z^3) (< 1e-4 here)
    np.testing.assert_allclose(d.GG.zscore(y, mu, sigma, nu), ln_z, atol=1e-4)
    np.testing.assert_allclose(d.gg_logpdf(y, mu, sigma, nu), lognormal, atol=1e-4)


@pytest.mark.parametrize("theta_gamma", [1e3, 2e4, 1e7, 1e12])
def test_gg_logpdf_matches_50_digit_reference(theta_gamma) -> None:
    mpmath = pytest.importorskip("mpmath")
    mu, sigma = 10.0, 0.05
    nu = 1.0 / (sigma * math.sqrt(theta_gamma))
    y = np.array([5.0, 9.0, 10.0, 11.0, 25.0])
    with mpmath.workdps(50):
        th = mpmath.mpf(theta_gamma)
        nu_ = 1 / (mpmath.mpf(sigma) * mpmath.sqrt(th))
        expected = []
        for yy in y:
            lz = nu_ * mpmath.log(mpmath.mpf(yy) / mu)
            v = th * mpmath.log(th) + th * lz - th * mpmath.exp(lz) - mpmath.loggamma(th)
            expected.append(float(v + mpmath.log(nu_) - mpmath.log(yy)))
    np.testing.assert_allclose(d.gg_logpdf(y, mu, sigma, nu), expected, rtol=0, atol=1e-9)


def test_gg_logpdf_gradient_matches_finite_differences() -> None:
    # the fitter differentiates gg_logpdf with torch autograd, also on the large-theta branch
    y = np.array([7.0, 10.0, 14.0])
    for nu in (1e-3, 0.2, -0.3):
        etas = [np.log(10.0), np.log(0.1), nu]
        leaves = [torch.tensor(e, dtype=torch.float64, requires_grad=True) for e in etas]
        ll = d.gg_logpdf(torch.as_tensor(y), leaves[0].exp(), leaves[1].exp(), leaves[2]).sum()
        grad = torch.autograd.grad(ll, leaves)
        for k in range(3):

            def f(step, k=k, etas=etas):
                e = list(etas)
                e[k] += step
                return float(d.gg_logpdf(y, math.exp(e[0]), math.exp(e[1]), e[2]).sum())

            h = 1e-5
            fd = (f(h) - f(-h)) / (2 * h)
            assert float(grad[k]) == pytest.approx(fd, rel=1e-6, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# JSU with large tau (close to normal)
# ---------------------------------------------------------------------------------------------
def _johnsonsu(mu, sigma, nu, tau):
    rtau = 1.0 / tau
    w = math.exp(rtau * rtau)
    omega = -nu * rtau
    c = (0.5 * math.expm1(rtau * rtau) * (w * math.cosh(2.0 * omega) + 1.0)) ** -0.5
    xi = mu + c * sigma * math.sqrt(w) * math.sinh(omega)
    return stats.johnsonsu(-nu, tau, loc=xi, scale=c * sigma)


@pytest.mark.parametrize(("nu", "tau"), [(0.5, 1.3), (-2.0, 0.5), (1.0, 100.0), (1.0, 1e4), (1.0, 1e9)])
def test_jsu_is_scipy_johnsonsu_with_mean_mu_and_sd_sigma(nu, tau) -> None:
    # w - 1 = exp(1 / tau^2) - 1 cancelled: relative error eps tau^2 (cdf off by 1e-9 at
    # tau = 1e4) and 0, so c = inf and NaN everywhere, for tau > 1e8
    mu, sigma = 10.0, 2.0
    ref = _johnsonsu(mu, sigma, nu, tau)
    assert ref.mean() == pytest.approx(mu, rel=1e-12)
    assert ref.std() == pytest.approx(sigma, rel=1e-12)
    y = np.linspace(-10.0, 30.0, 41)
    np.testing.assert_allclose(d.jsu_cdf(y, mu, sigma, nu, tau), ref.cdf(y), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(d.jsu_logpdf(y, mu, sigma, nu, tau), ref.logpdf(y), rtol=1e-11)
    z = -nu + tau * np.arcsinh((y - ref.kwds["loc"]) / ref.kwds["scale"])
    np.testing.assert_allclose(d.JSU.zscore(y, mu, sigma, nu, tau), z, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# independent references for the sinh-arcsinh families (Jones & Pewsey 2009)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SHASHo2", "SHASHo"])
def test_sinh_arcsinh_cdf_matches_50_digit_transformation(name) -> None:
    mpmath = pytest.importorskip("mpmath")
    fam = FAMILIES[name]
    for mu, sigma, nu, tau in [(10.0, 2.0, 0.4, 0.7), (10.0, 2.0, -3.0, 0.1), (10.0, 2.0, 2.0, 8.0)]:
        scale = sigma * tau if name == "SHASHo2" else sigma
        for y in [-1e6, -100.0, 0.0, 5.0, 10.0, 12.0, 30.0, 1e4]:
            with mpmath.workdps(50):
                x = (mpmath.mpf(y) - mu) / scale
                z = mpmath.sinh(tau * mpmath.asinh(x) - nu)
                expected_p, expected_z = float(mpmath.ncdf(z)), float(z)
            assert fam.zscore(y, mu, sigma, nu, tau) == pytest.approx(expected_z, rel=1e-12, abs=1e-12)
            if expected_p < 0.5:
                assert fam.cdf(y, mu, sigma, nu, tau) == pytest.approx(expected_p, rel=1e-11)
            else:
                assert fam.cdf(y, mu, sigma, nu, tau) == pytest.approx(expected_p, abs=1e-15)


def test_shasho_with_nu_0_tau_1_is_normal() -> None:
    y = np.linspace(-40.0, 40.0, 81)
    np.testing.assert_allclose(
        d.shasho_logpdf(y, 1.0, 2.0, 0.0, 1.0), stats.norm.logpdf(y, 1.0, 2.0), rtol=1e-13
    )
    np.testing.assert_allclose(
        d.shasho_cdf(y, 1.0, 2.0, 0.0, 1.0), stats.norm.cdf(y, 1.0, 2.0), rtol=1e-12
    )
    # SHASHo2 = SHASHo with sigma rescaled by tau
    np.testing.assert_allclose(
        d.shasho2_logpdf(y, 1.0, 2.0, 0.3, 0.6), d.shasho_logpdf(y, 1.0, 1.2, 0.3, 0.6), rtol=1e-13
    )


@pytest.mark.parametrize(("name", "theta"), [c for c in CASES if c[0] != "NO"])
def test_density_integrates_to_the_cdf(name, theta) -> None:
    fam = FAMILIES[name]
    med = float(fam.ppf(0.5, *theta))
    for p in (1e-6, 0.2, 0.7, 1 - 1e-6):
        hi = float(fam.ppf(p, *theta))
        lo, hi_ = min(med, hi), max(med, hi)
        area, _ = integrate.quad(
            lambda t: np.exp(fam.logpdf(t, *theta)), lo, hi_, epsabs=1e-13, epsrel=1e-11, limit=200
        )
        assert abs(fam.cdf(hi, *theta) - 0.5) == pytest.approx(area, rel=1e-8, abs=1e-12)


# ---------------------------------------------------------------------------------------------
# fitter derivatives
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fam", "theta"),
    [
        (d.SHASHO2, (0.3, 1.2, 0.4, 0.8)),
        (d.SHASHO2, (0.3, 1.2, 3.0, 0.05)),
        (d.SHASHO2, (0.3, 1.2, -2.0, 20.0)),
        (d.SHASHO, (0.3, 1.2, -0.6, 2.5)),
        (d.SHASHO, (0.3, 1.2, 0.0, 0.02)),
        (d.NO, (0.3, 1.2)),
    ],
)
def test_analytic_derivatives_match_autograd(fam, theta) -> None:
    from delssome_norms.norms.distributions import _autograd_derivatives

    rng = np.random.default_rng(1)
    y = np.concatenate([rng.normal(size=20) * 3, [1e3, -1e4, 1e-9, 40.0]])
    etas = fam.to_etas([np.full(y.shape, t) for t in theta])
    ll, g, h = fam.derivatives(y, etas)
    ll2, g2, h2 = _autograd_derivatives(fam, y, etas)

    def close(a, b):
        a, b = np.asarray(a), np.asarray(b)
        assert np.all(np.abs(a - b) <= 1e-11 * np.maximum(1.0, np.abs(b)))

    close(ll, ll2)
    for a, b in zip(g, g2):
        close(a, b)
    for ra, rb in zip(h, h2):
        for a, b in zip(ra, rb):
            close(a, b)


# ---------------------------------------------------------------------------------------------
# NaN, +-inf and float32 input
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "theta"), [(n, ths[0]) for n, ths in THETAS.items()])
def test_nan_stays_nan(name, theta) -> None:
    # GG scored a missing volume as z = -38 (cdf 0); SHASH's quantile of NaN was -inf
    fam = FAMILIES[name]
    nan = np.array([np.nan])
    assert np.isnan(fam.zscore(nan, *theta)).all()
    assert np.isnan(fam.cdf(nan, *theta)).all()
    assert np.isnan(fam.logpdf(nan, *theta)).all()
    assert np.isnan(fam.ppf(nan, *theta)).all()
    assert np.isnan(fam.from_zscore(nan, *theta)).all()
    assert np.isnan(fam.ppf(np.array([-0.1, 1.1]), *theta)).all()


@pytest.mark.parametrize(("name", "theta"), [(n, ths[0]) for n, ths in THETAS.items()])
def test_logpdf_at_infinity_is_minus_infinity(name, theta) -> None:
    # the sinh-arcsinh and GG formulas gave inf - inf = NaN
    fam = FAMILIES[name]
    y = np.array([np.inf, -np.inf, 11.0]) if not fam.positive_y else np.array([np.inf, 11.0])
    out = fam.logpdf(y, *theta)
    assert np.all(out[:-1] == -np.inf) and np.isfinite(out[-1])
    out_t = fam.logpdf(torch.as_tensor(y), *theta)
    assert torch.all(out_t[:-1] == -math.inf) and torch.isfinite(out_t[-1])
    assert fam.zscore(np.inf, *theta) > 37.0


@pytest.mark.parametrize(("name", "theta"), [(n, ths[0]) for n, ths in THETAS.items()])
def test_float32_numpy_input_is_evaluated_in_float64(name, theta) -> None:
    # the CDFs and z-scores already upcast; the log-density computed in float32 (rel. error 1e-4)
    fam = FAMILIES[name]
    y32 = np.array([3.0, 9.5, 12.345678, 30.0], dtype=np.float32)
    th32 = [np.float32(t) for t in theta]
    th64 = [np.float64(t) for t in th32]
    out = fam.logpdf(y32, *th32)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, fam.logpdf(y32.astype(np.float64), *th64))
    np.testing.assert_array_equal(fam.zscore(y32, *th32), fam.zscore(y32.astype(np.float64), *th64))
    # torch keeps its dtype (the fitter chooses it)
    assert fam.logpdf(torch.as_tensor(y32), *theta).dtype == torch.float32


@pytest.mark.parametrize(("name", "theta"), [(n, ths[0]) for n, ths in THETAS.items()])
def test_scalar_and_broadcast_input(name, theta) -> None:
    # SHASHo2 / SHASHo z-scores raised TypeError for one person given as scalars (their in-place
    # arithmetic needs an array) and for y smaller than the parameters' broadcast shape
    fam = FAMILIES[name]
    y = float(fam.ppf(0.9, *theta))
    z = fam.zscore(y, *theta)
    assert float(z) == pytest.approx(special.ndtri(0.9), abs=1e-10)
    assert float(fam.from_zscore(float(z), *theta)) == pytest.approx(y, rel=1e-12)
    wide = [np.full(3, t) for t in theta]
    np.testing.assert_allclose(fam.zscore(y, *wide), np.full(3, float(z)), rtol=1e-14)
    np.testing.assert_allclose(fam.from_zscore(float(z), *wide), np.full(3, y), rtol=1e-12)
