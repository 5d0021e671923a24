"""Johnson's SU (mean / sd parameterisation of gamlss.dist) and the normal family.

Log-densities (numpy or torch), CDFs, quantile functions, exact normal deviates and the normal's
closed-form scores and Hessian. See :mod:`.distributions` for the :class:`~.distributions.Family`
objects.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from delssome_norms.norms.dist_common import LOG_2PI, Array, _broadcast, _prep


# ---------------------------------------------------------------------------------------------
# JSU (mean / sd parameterisation of gamlss.dist)
# ---------------------------------------------------------------------------------------------
def _jsu_constants(xp, sigma, nu, tau):
    rtau = 1.0 / tau
    w = xp.exp(rtau * rtau)
    omega = -nu * rtau
    # expm1: w - 1 cancels for large tau (relative error eps * tau^2; 0 and c = inf for tau > 1e8)
    c = (0.5 * xp.expm1(rtau * rtau) * (w * xp.cosh(2.0 * omega) + 1.0)) ** -0.5
    return rtau, w, omega, c


def jsu_logpdf(y: Array, mu: Array, sigma: Array, nu: Array, tau: Array) -> Array:
    """Log-density of JSU (gamlss.dist ``dJSU``): mean mu, standard deviation sigma."""
    xp, (y, mu, sigma, nu, tau) = _prep(y, mu, sigma, nu, tau)
    rtau, w, omega, c = _jsu_constants(xp, sigma, nu, tau)
    z = (y - (mu + c * sigma * xp.sqrt(w) * xp.sinh(omega))) / (c * sigma)
    r = -nu + xp.arcsinh(z) / rtau
    return (
        -xp.log(sigma) - xp.log(c) - xp.log(rtau) - 0.5 * xp.log1p(z * z) - 0.5 * LOG_2PI - 0.5 * r * r
    )


def jsu_cdf(y, mu, sigma, nu, tau) -> np.ndarray:
    """CDF of JSU."""
    y, mu, sigma, nu, tau = _broadcast(y, mu, sigma, nu, tau)
    rtau, w, omega, c = _jsu_constants(np, sigma, nu, tau)
    z = (y - (mu + c * sigma * np.sqrt(w) * np.sinh(omega))) / (c * sigma)
    return special.ndtr(-nu + np.arcsinh(z) / rtau)


def jsu_ppf(q, mu, sigma, nu, tau) -> np.ndarray:
    """Quantile function of JSU."""
    q, mu, sigma, nu, tau = _broadcast(q, mu, sigma, nu, tau)
    rtau, w, omega, c = _jsu_constants(np, sigma, nu, tau)
    z = np.sinh(rtau * (special.ndtri(q) + nu))
    return mu + c * sigma * np.sqrt(w) * np.sinh(omega) + c * sigma * z


# ---------------------------------------------------------------------------------------------
# NO
# ---------------------------------------------------------------------------------------------
def no_logpdf(y: Array, mu: Array, sigma: Array) -> Array:
    """Log-density of the normal distribution with mean mu and standard deviation sigma."""
    xp, (y, mu, sigma) = _prep(y, mu, sigma)
    z = (y - mu) / sigma
    return -xp.log(sigma) - 0.5 * LOG_2PI - 0.5 * z * z


def no_cdf(y, mu, sigma) -> np.ndarray:
    """CDF of the normal distribution."""
    y, mu, sigma = _broadcast(y, mu, sigma)
    return special.ndtr((y - mu) / sigma)


def no_ppf(q, mu, sigma) -> np.ndarray:
    """Quantile function of the normal distribution."""
    q, mu, sigma = _broadcast(q, mu, sigma)
    return mu + sigma * special.ndtri(q)


# ---------------------------------------------------------------------------------------------
# exact normal deviates
# ---------------------------------------------------------------------------------------------
def _jsu_z(y, mu, sigma, nu, tau):
    y, mu, sigma, nu, tau = _broadcast(y, mu, sigma, nu, tau)
    rtau, w, omega, c = _jsu_constants(np, sigma, nu, tau)
    z = (y - (mu + c * sigma * np.sqrt(w) * np.sinh(omega))) / (c * sigma)
    return -nu + np.arcsinh(z) / rtau


def _jsu_from_z(z, mu, sigma, nu, tau):
    z, mu, sigma, nu, tau = _broadcast(z, mu, sigma, nu, tau)
    rtau, w, omega, c = _jsu_constants(np, sigma, nu, tau)
    return mu + c * sigma * np.sqrt(w) * np.sinh(omega) + c * sigma * np.sinh(rtau * (z + nu))


def _no_z(y, mu, sigma):
    y, mu, sigma = _broadcast(y, mu, sigma)
    return (y - mu) / sigma


def _no_from_z(z, mu, sigma):
    z, mu, sigma = _broadcast(z, mu, sigma)
    return mu + sigma * z


# ---------------------------------------------------------------------------------------------
# closed-form derivatives of NO on the linear-predictor scale
# ---------------------------------------------------------------------------------------------
def _no_derivatives(y, etas, second: bool = True):
    mu, s = etas
    sigma = np.exp(s)
    z = (y - mu) / sigma
    ll = -s - 0.5 * LOG_2PI - 0.5 * z * z
    g = [z / sigma, z * z - 1.0]
    if not second:
        return ll, g, None
    h01 = -2.0 * z / sigma
    h = [[-1.0 / sigma**2 + 0.0 * z, h01], [h01, -2.0 * z * z]]
    return ll, g, h
