"""The generalised gamma family GG (Lopatatzidis & Green), in gamlss.dist's parameterisation.

``(y / mu) ** nu ~ Gamma(shape=1/(sigma nu)^2, scale=(sigma nu)^2)``; log-normal(log mu, sigma)
in the limit nu -> 0. Needs y > 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from delssome_norms.norms.dist_common import (
    LOG_2PI,
    Array,
    _broadcast,
    _lgamma,
    _neg_inf_at_inf,
    _prep,
)

GG_NU_ZERO = 1e-6
"""|nu| below which GG is evaluated as its log-normal limit (as gamlss.dist does)."""

GG_ASYMPTOTIC_THETA = 3e5
"""``theta = 1 / (sigma nu)^2`` from which GG's CDF, normal deviates and quantiles use Temme's
uniform asymptotic expansion of the incomplete gamma function instead of scipy's ``gammainc`` /
``gammaincinv``, which lose up to one unit of z beyond 5 sd for theta >~ 1e7 (small nu and sigma,
close to the log-normal limit). The expansion (to order theta^(-3/2)) is within ~1e-11 of exact
here; scipy is within ~1e-13 below."""

GG_STIRLING_THETA = 1e4
"""theta from which :func:`gg_logpdf` uses ``log(theta) / 2 - log(2 pi) / 2 - stirling(theta) -
theta (z - 1 - log z)`` instead of ``theta log theta + theta log z - theta z - lgamma(theta)``,
whose terms cancel (an error of ~theta * 1e-16: 0.2 at theta = 1e14, just above the log-normal
switch at |nu| = 1e-6 with sigma = 0.1)."""

Z_LIMIT = 38.0
"""Largest |z| a GG z-score reports (Phi(-38) ~ 1e-316, the smallest double probability)."""

# Temme's coefficients: C0(eta) = 1/(lambda - 1) - 1/eta and C1(eta) as power series in eta
# (DiDonato & Morris 1986, ACM TOMS 12, table d0 / d1; Temme 1979).
_C0 = (-1 / 3, 1 / 12, -2 / 135, 1 / 864, 1 / 2835, -139 / 777600, 1 / 25515, -571 / 261273600)
_C1 = (-1 / 540, -1 / 288, 1 / 378, -9.90226337448559671e-4, 2.05761316872427984e-4)


def _poly(coefs, x):
    out = coefs[-1] + 0.0 * x
    for c in coefs[-2::-1]:
        out = out * x + c
    return out


def _expm1_minus(xp, lg: Array) -> Array:
    """``exp(l) - 1 - l`` without cancellation near l = 0 (numpy or torch)."""
    near = xp.abs(lg) < 0.1
    ls = xp.where(near, lg, 0.0 * lg)  # the unused branch stays finite (autograd through where)
    series = ls * ls * _poly([1.0 / math.factorial(j + 2) for j in range(12)], ls)
    return xp.where(near, series, xp.expm1(lg) - lg)


def _temme_z(theta: np.ndarray, lg: np.ndarray) -> np.ndarray:
    """Normal deviate ``Phi^-1(P(theta, theta exp(l)))`` of a Gamma(theta, 1) variate.

    Temme's expansion ``Q(a, x) = erfc(eta sqrt(a / 2)) / 2 + exp(-a eta^2 / 2) / sqrt(2 pi a)
    (C0(eta) + C1(eta) / a + ...)`` with ``eta^2 / 2 = lambda - 1 - log lambda``, ``lambda =
    x / a``, solved for the deviate to order ``a^(-3/2)``.
    """
    with np.errstate(all="ignore"):
        eta = np.sign(lg) * np.sqrt(2.0 * _expm1_minus(np, lg))
        e = 1.0 / np.sqrt(theta)
        w = eta / e
        c0 = np.where(np.abs(eta) < 0.1, _poly(_C0, eta), 1.0 / np.expm1(lg) - 1.0 / eta)
        c1 = _poly(_C1, eta)
        z = w - c0 * e + 0.5 * w * c0 * c0 * e * e - (c1 + c0**3 * (w * w / 3.0 + 1.0 / 6.0)) * e**3
    return np.where(np.abs(w) > 1e3, w, z)  # far beyond Z_LIMIT (and y = 0 or inf)


def _temme_log_lambda(theta: np.ndarray, z: np.ndarray, n_iter: int = 8) -> np.ndarray:
    """Inverse of :func:`_temme_z`: ``l = log(x / theta)`` with ``Phi^-1(P(theta, x)) = z``."""
    rt = np.sqrt(theta)
    lg = z / rt
    with np.errstate(all="ignore"):
        for _ in range(n_iter):
            eta = np.sign(lg) * np.sqrt(2.0 * _expm1_minus(np, lg))
            slope = np.where(np.abs(lg) < 1e-8, 1.0, np.expm1(lg) / eta)  # d eta / dl
            lg = lg - (_temme_z(theta, lg) - z) / (rt * slope)
    return np.where(np.isinf(z), z, lg)


# ---------------------------------------------------------------------------------------------
# GG (generalised gamma, Lopatatzidis & Green)
# ---------------------------------------------------------------------------------------------
def gg_logpdf(y: Array, mu: Array, sigma: Array, nu: Array) -> Array:
    """Log-density of GG (gamlss.dist ``dGG``); y, mu, sigma > 0.

    For ``|nu| > 1e-6``: ``theta log theta + theta log z - theta z - lgamma(theta) + log|nu| -
    log y`` with ``z = (y / mu) ** nu`` and ``theta = 1 / (sigma nu)^2`` (rearranged as
    ``log(theta) / 2 - log(2 pi) / 2 - stirling(theta) - theta (z - 1 - log z)`` for theta >=
    :data:`GG_STIRLING_THETA`, where the first form cancels); otherwise the log-normal limit.
    -inf at y = +-inf.
    """
    xp, (y, mu, sigma, nu) = _prep(y, mu, sigma, nu)
    small = xp.abs(nu) <= GG_NU_ZERO
    nu_safe = xp.where(small, GG_NU_ZERO * xp.ones_like(nu * y), nu * xp.ones_like(y))
    log_y = xp.log(y)
    log_z = nu_safe * (log_y - xp.log(mu))
    theta = 1.0 / (sigma * sigma * nu_safe * nu_safe)
    gg = (
        theta * xp.log(theta)
        + theta * log_z
        - theta * xp.exp(log_z)
        - _lgamma(theta)
        + xp.log(xp.abs(nu_safe))
        - log_y
    )
    # lgamma's remainder after Stirling's formula (next term 1 / (1680 theta^7): < 1e-30 here)
    big = theta >= GG_STIRLING_THETA
    th = xp.where(big, theta, GG_STIRLING_THETA + 0.0 * theta)  # finite in the unused branch
    stirling = 1.0 / (12.0 * th) - 1.0 / (360.0 * th**3) + 1.0 / (1260.0 * th**5)
    large = (
        0.5 * xp.log(theta)
        - 0.5 * LOG_2PI
        - stirling
        - theta * _expm1_minus(xp, log_z)
        + xp.log(xp.abs(nu_safe))
        - log_y
    )
    gg = xp.where(big, large, gg)
    d = log_y - xp.log(mu)
    lognormal = -log_y - 0.5 * LOG_2PI - xp.log(sigma) - d * d / (2.0 * sigma * sigma)
    return _neg_inf_at_inf(xp, y, xp.where(small, lognormal, gg))


def _gg_tails(y, mu, sigma, nu) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F(y), 1 - F(y), Phi^-1(F(y))) of GG, each tail from its own regularised incomplete
    gamma (``gammainc`` / ``gammaincc``) so that neither rounds through ``1 - p``; Temme's
    expansion for theta >= :data:`GG_ASYMPTOTIC_THETA`. NaN where y is NaN."""
    y, mu, sigma, nu = _broadcast(y, mu, sigma, nu)
    small = np.abs(nu) <= GG_NU_ZERO
    nu_safe = np.where(small, 1.0, nu)
    theta = 1.0 / (sigma * nu_safe) ** 2
    big = (theta >= GG_ASYMPTOTIC_THETA) & ~small
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(y > 0, (np.maximum(y, 1e-300) / mu) ** nu_safe, 0.0)
        below, above = special.gammainc(theta, theta * z), special.gammaincc(theta, theta * z)
        lower = np.where(nu_safe > 0, below, above)
        upper = np.where(nu_safe > 0, above, below)
        log_ratio = np.log(np.maximum(y, 1e-300)) - np.log(mu)
        ln = log_ratio / sigma
        if np.any(big):
            z_big = np.sign(nu_safe) * _temme_z(theta, nu_safe * log_ratio)
            lower = np.where(big, special.ndtr(z_big), lower)
            upper = np.where(big, special.ndtr(-z_big), upper)
    lower = np.where(small, special.ndtr(ln), lower)
    upper = np.where(small, special.ndtr(-ln), upper)
    with np.errstate(divide="ignore"):
        dev = np.where(lower < 0.5, special.ndtri(lower), -special.ndtri(upper))
    if np.any(big):
        dev = np.where(big, z_big, dev)
    positive = y > 0
    nan = np.isnan(y)
    lower = np.where(nan, np.nan, np.where(positive, lower, 0.0))
    upper = np.where(nan, np.nan, np.where(positive, upper, 1.0))
    dev = np.where(nan, np.nan, np.where(positive, dev, -np.inf))
    return lower, upper, dev


def gg_cdf(y, mu, sigma, nu) -> np.ndarray:
    """CDF of GG (regularised incomplete gamma; upper tail when nu < 0)."""
    return _gg_tails(y, mu, sigma, nu)[0]


def _gg_z(y, mu, sigma, nu) -> np.ndarray:
    """Normal deviate of GG from the smaller tail (exact for the log-normal limit)."""
    return np.clip(_gg_tails(y, mu, sigma, nu)[2], -Z_LIMIT, Z_LIMIT)  # y <= 0: a finite extreme


def _gg_quantile(z, p_lower, p_upper, mu, sigma, nu) -> np.ndarray:
    """GG value at normal deviate ``z``.

    ``p_lower`` / ``p_upper`` are the gamma variate's lower / upper tail probabilities
    ``P(G <= x)`` / ``P(G > x)``; each is only read in its own tail (where it is the smaller one),
    so neither needs to be formed as ``1 - p`` where that rounds. For theta >=
    :data:`GG_ASYMPTOTIC_THETA` the value comes from Temme's expansion and z alone.
    """
    small = np.abs(nu) <= GG_NU_ZERO
    nu_safe = np.where(small, 1.0, nu)
    theta = 1.0 / (sigma * nu_safe) ** 2
    big = (theta >= GG_ASYMPTOTIC_THETA) & ~small
    zg = np.where(nu_safe > 0, z, -z)  # deviate of the gamma variate (y decreases with it if nu < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = special.gammaincinv(theta, p_lower)
        upper = special.gammainccinv(theta, p_upper)
        lam = np.where(zg <= 0, lower, upper) / theta
        out = mu * lam ** (1.0 / nu_safe)
        if np.any(big):
            out = np.where(big, mu * np.exp(_temme_log_lambda(theta, zg) / nu_safe), out)
    return np.where(small, mu * np.exp(sigma * z), out)


def gg_ppf(q, mu, sigma, nu) -> np.ndarray:
    """Quantile function of GG (the gamma variate's upper-tail inverse where that is exact)."""
    q, mu, sigma, nu = _broadcast(q, mu, sigma, nu)
    positive = nu > GG_NU_ZERO
    p_lower = np.where(positive, q, 1.0 - q)  # exact where read: q <= 0.5 (nu > 0), q >= 0.5 (nu < 0)
    p_upper = np.where(positive, 1.0 - q, q)
    return _gg_quantile(special.ndtri(q), p_lower, p_upper, mu, sigma, nu)


def _gg_from_z(z, mu, sigma, nu) -> np.ndarray:
    """GG value whose normal deviate is ``z``: exact far in both tails (|z| up to :data:`Z_LIMIT`)."""
    z, mu, sigma, nu = _broadcast(z, mu, sigma, nu)
    zg = np.where(nu > GG_NU_ZERO, z, -z)
    return _gg_quantile(z, special.ndtr(zg), special.ndtr(-zg), mu, sigma, nu)
