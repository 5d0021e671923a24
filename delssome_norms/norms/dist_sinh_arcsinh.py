"""The sinh-arcsinh families SHASHo2, SHASHo (Jones & Pewsey 2009) and SHASH (Jones 2005).

Log-densities (numpy or torch), CDFs, quantile functions, exact normal deviates and, for SHASHo2
and SHASHo, closed-form scores and Hessians on the linear-predictor scale for the fitter. See
:mod:`.distributions` for the parameterisations and the :class:`~.distributions.Family` objects.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from delssome_norms.norms.dist_common import (
    LOG_2PI,
    Array,
    _broadcast,
    _logcosh,
    _neg_inf_at_inf,
    _prep,
)


# ---------------------------------------------------------------------------------------------
# SHASHo2 / SHASHo
# ---------------------------------------------------------------------------------------------
def shasho2_logpdf(y: Array, mu: Array, sigma: Array, nu: Array, tau: Array) -> Array:
    """Log-density of SHASHo2 (gamlss.dist ``dSHASHo2(log = TRUE)``).

    Parameters
    ----------
    y, mu, sigma, nu, tau : array or Tensor, broadcastable
        Value, location, scale (> 0), skewness and tail weight (> 0).

    Returns
    -------
    array or Tensor of the broadcast shape.
    """
    xp, (y, mu, sigma, nu, tau) = _prep(y, mu, sigma, nu, tau)
    z = (y - mu) / (sigma * tau)
    x = tau * xp.arcsinh(z) - nu
    r = xp.sinh(x)
    out = -xp.log(sigma) - 0.5 * LOG_2PI - 0.5 * xp.log1p(z * z) + _logcosh(x) - 0.5 * r * r
    return _neg_inf_at_inf(xp, y, out)


def shasho2_cdf(y, mu, sigma, nu, tau) -> np.ndarray:
    """CDF of SHASHo2: ``Phi(sinh(tau * asinh((y - mu) / (sigma * tau)) - nu))``."""
    y, mu, sigma, nu, tau = _broadcast(y, mu, sigma, nu, tau)
    return special.ndtr(np.sinh(tau * np.arcsinh((y - mu) / (sigma * tau)) - nu))


def shasho2_ppf(q, mu, sigma, nu, tau) -> np.ndarray:
    """Quantile function of SHASHo2: ``mu + sigma tau sinh((asinh(Phi^-1(q)) + nu) / tau)``."""
    q, mu, sigma, nu, tau = _broadcast(q, mu, sigma, nu, tau)
    return mu + sigma * tau * np.sinh((np.arcsinh(special.ndtri(q)) + nu) / tau)


def shasho_logpdf(y: Array, mu: Array, sigma: Array, nu: Array, tau: Array) -> Array:
    """Log-density of SHASHo (gamlss.dist ``dSHASHo``); as SHASHo2 without tau in the scale."""
    xp, (y, mu, sigma, nu, tau) = _prep(y, mu, sigma, nu, tau)
    z = (y - mu) / sigma
    x = tau * xp.arcsinh(z) - nu
    r = xp.sinh(x)
    out = (
        -xp.log(sigma) + xp.log(tau) - 0.5 * LOG_2PI - 0.5 * xp.log1p(z * z) + _logcosh(x) - 0.5 * r * r
    )
    return _neg_inf_at_inf(xp, y, out)


def shasho_cdf(y, mu, sigma, nu, tau) -> np.ndarray:
    """CDF of SHASHo: ``Phi(sinh(tau * asinh((y - mu) / sigma) - nu))``."""
    y, mu, sigma, nu, tau = _broadcast(y, mu, sigma, nu, tau)
    return special.ndtr(np.sinh(tau * np.arcsinh((y - mu) / sigma) - nu))


def shasho_ppf(q, mu, sigma, nu, tau) -> np.ndarray:
    """Quantile function of SHASHo: ``mu + sigma sinh((asinh(Phi^-1(q)) + nu) / tau)``."""
    q, mu, sigma, nu, tau = _broadcast(q, mu, sigma, nu, tau)
    return mu + sigma * np.sinh((np.arcsinh(special.ndtri(q)) + nu) / tau)


# ---------------------------------------------------------------------------------------------
# SHASH (Jones 2005)
# ---------------------------------------------------------------------------------------------
def shash_logpdf(y: Array, mu: Array, sigma: Array, nu: Array, tau: Array) -> Array:
    """Log-density of SHASH (gamlss.dist ``dSHASH``); nu, tau > 0."""
    xp, (y, mu, sigma, nu, tau) = _prep(y, mu, sigma, nu, tau)
    z = (y - mu) / sigma
    s = xp.arcsinh(z)
    r = 0.5 * (xp.exp(tau * s) - xp.exp(-nu * s))
    c = 0.5 * (tau * xp.exp(tau * s) + nu * xp.exp(-nu * s))
    out = -xp.log(sigma) - 0.5 * LOG_2PI - 0.5 * xp.log1p(z * z) + xp.log(c) - 0.5 * r * r
    return _neg_inf_at_inf(xp, y, out)


def shash_cdf(y, mu, sigma, nu, tau) -> np.ndarray:
    """CDF of SHASH: ``Phi((exp(tau s) - exp(-nu s)) / 2)``, ``s = asinh((y - mu) / sigma)``."""
    y, mu, sigma, nu, tau = _broadcast(y, mu, sigma, nu, tau)
    s = np.arcsinh((y - mu) / sigma)
    return special.ndtr(0.5 * (np.exp(tau * s) - np.exp(-nu * s)))


def _shash_solve(r, mu, sigma, nu, tau, n_iter: int = 200) -> np.ndarray:
    """``mu + sigma sinh(s)`` with ``(exp(tau s) - exp(-nu s)) / 2 = r`` (r a normal deviate).

    The left side increases with s, so a vectorised bisection on a bracket that always contains
    the root gives the quantile to machine precision (gamlss.dist uses ``uniroot`` per value).
    NaN where r is NaN, +-inf where r is +-inf.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        lo = np.where(r < 0, -np.log1p(2.0 * np.abs(r)) / nu, 0.0)
        hi = np.where(r > 0, np.log1p(2.0 * np.abs(r)) / tau, 0.0)
        for _ in range(n_iter):
            mid = 0.5 * (lo + hi)
            f = 0.5 * (np.exp(tau * mid) - np.exp(-nu * mid)) - r
            lo = np.where(f < 0, mid, lo)
            hi = np.where(f < 0, hi, mid)
            if np.all(hi - lo <= 1e-15 * np.maximum(1.0, np.abs(mid))):
                break
    s = 0.5 * (lo + hi)
    out = mu + sigma * np.sinh(s)
    out = np.where(np.isfinite(r), out, np.where(r > 0, np.inf, -np.inf))
    return np.where(np.isnan(r), np.nan, out)


def shash_ppf(q, mu, sigma, nu, tau, n_iter: int = 200) -> np.ndarray:
    """Quantile function of SHASH, solving ``(exp(tau s) - exp(-nu s)) / 2 = Phi^-1(q)`` for s."""
    q, mu, sigma, nu, tau = _broadcast(q, mu, sigma, nu, tau)
    return _shash_solve(special.ndtri(q), mu, sigma, nu, tau, n_iter)


# ---------------------------------------------------------------------------------------------
# exact normal deviates (the families are transformations of N(0, 1))
# ---------------------------------------------------------------------------------------------
def _full(fresh, *params) -> np.ndarray:
    """``fresh`` (a new float64 result) as an array of the broadcast shape with ``params``, for
    the in-place arithmetic below: a numpy scalar (scalar input) or a smaller shape than the
    parameters' cannot take ``out=`` / ``/=``."""
    out = np.asarray(fresh)
    shape = np.broadcast_shapes(out.shape, *[np.shape(p) for p in params])
    return out if out.shape == shape else np.broadcast_to(out, shape).copy()


def _shasho2_z(y, mu, sigma, nu, tau):
    out = _full(np.subtract(y, mu, dtype=np.float64), sigma, nu, tau)
    out /= sigma
    out /= tau
    np.arcsinh(out, out=out)
    out *= tau
    out -= nu
    return np.sinh(out, out=out)


def _shasho2_from_z(z, mu, sigma, nu, tau):
    out = _full(np.arcsinh(np.asarray(z, dtype=np.float64)), mu, sigma, nu, tau)
    out += nu
    out /= tau
    np.sinh(out, out=out)
    out *= sigma
    out *= tau
    out += mu
    return out


def _shasho_z(y, mu, sigma, nu, tau):
    out = _full(np.subtract(y, mu, dtype=np.float64), sigma, nu, tau)
    out /= sigma
    np.arcsinh(out, out=out)
    out *= tau
    out -= nu
    return np.sinh(out, out=out)


def _shasho_from_z(z, mu, sigma, nu, tau):
    out = _full(np.arcsinh(np.asarray(z, dtype=np.float64)), mu, sigma, nu, tau)
    out += nu
    out /= tau
    np.sinh(out, out=out)
    out *= sigma
    out += mu
    return out


def _shash_z(y, mu, sigma, nu, tau):
    y, mu, sigma, nu, tau = _broadcast(y, mu, sigma, nu, tau)
    s = np.arcsinh((y - mu) / sigma)
    return 0.5 * (np.exp(tau * s) - np.exp(-nu * s))


def _shash_from_z(z, mu, sigma, nu, tau):
    """Inverse of :func:`_shash_z`, solved for z directly (not via ``ppf(ndtr(z))``, which gives
    inf from z ~ 8.3 on, where ``ndtr(z)`` rounds to 1)."""
    z, mu, sigma, nu, tau = _broadcast(z, mu, sigma, nu, tau)
    return _shash_solve(z, mu, sigma, nu, tau)


# ---------------------------------------------------------------------------------------------
# analytic derivatives on the linear-predictor scale (used by the fitter)
# ---------------------------------------------------------------------------------------------
def _sinh_arcsinh_derivatives(y, etas, tau_in_scale: bool, second: bool = True):
    """Log-density, scores and Hessian of SHASHo2 (``tau_in_scale``) or SHASHo per observation.

    Parameters are on the linear-predictor scale: mu, s = log sigma, nu, t = log tau. With
    ``u = (y - mu) / scale`` (scale = sigma tau for SHASHo2, sigma for SHASHo) and
    ``x = tau asinh(u) - nu``, the log-density is ``-s [+ t] - log(2 pi) / 2 - log(1 + u^2) / 2
    + log cosh x - sinh(x)^2 / 2``. The derivatives follow by the chain rule through u(mu, s, t)
    and x(u, t, nu); every term is written out (terms that are zero are skipped).
    """
    mu, s, nu, t = etas
    sigma, tau = np.exp(s), np.exp(t)
    inv = 1.0 / (sigma * tau) if tau_in_scale else 1.0 / sigma
    u = (y - mu) * inv
    uu = u * u
    q2 = 1.0 + uu
    a1 = 1.0 / np.sqrt(q2)  # d asinh(u) / du
    a2 = -u * a1 * a1 * a1  # d2 asinh(u) / du2
    a = np.arcsinh(u)
    x = tau * a - nu
    ex = np.exp(-np.abs(x))
    ch = 0.5 * (1.0 / ex + ex)
    sh = np.sign(x) * 0.5 * (1.0 / ex - ex)
    ll = -s - 0.5 * LOG_2PI - 0.5 * np.log1p(uu) + (np.abs(x) + np.log1p(ex * ex) - math.log(2.0))
    ll -= 0.5 * sh * sh
    dg = -u / q2  # d/du of -log sqrt(1 + u^2)
    ddg = (uu - 1.0) / (q2 * q2)
    dh = sh / ch - sh * ch  # d/dx of log cosh x - sinh(x)^2 / 2
    ddh = 1.0 / (ch * ch) - (ch * ch + sh * sh)
    ta1 = tau * a1
    x_m = -ta1 * inv
    x_s = -ta1 * u
    if tau_in_scale:
        x_t = tau * a - ta1 * u
    else:
        ll += t
        x_t = tau * a
    g_m = -dg * inv + dh * x_m
    g_s = -dg * u + dh * x_s - 1.0
    g_n = -dh
    g_t = dh * x_t + (-dg * u if tau_in_scale else 1.0)
    if not second:
        return ll, [g_m, g_s, g_n, g_t], None
    ddh_xm, ddh_xs, ddh_xt = ddh * x_m, ddh * x_s, ddh * x_t
    inv_u = inv * u
    t_a2 = tau * a2
    h_mm = ddg * inv * inv + ddh_xm * x_m + dh * t_a2 * inv * inv
    h_ms = ddg * inv_u + dg * inv + ddh_xm * x_s + dh * tau * inv * (a2 * u + a1)
    h_mn = -ddh_xm
    h_ss = ddg * uu + dg * u + ddh_xs * x_s + dh * tau * (a2 * uu + a1 * u)
    h_sn = -ddh_xs
    h_nn = ddh
    h_nt = -ddh_xt
    if tau_in_scale:
        h_mt = ddg * inv_u + dg * inv + ddh_xm * x_t + dh * t_a2 * inv_u
        h_st = ddg * uu + dg * u + ddh_xs * x_t + dh * t_a2 * uu
        h_tt = ddg * uu + dg * u + ddh_xt * x_t + dh * tau * (a - a1 * u + a2 * uu)
    else:
        h_mt = ddh_xm * x_t - dh * ta1 * inv
        h_st = ddh_xs * x_t - dh * ta1 * u
        h_tt = ddh_xt * x_t + dh * tau * a
    h = [
        [h_mm, h_ms, h_mn, h_mt],
        [h_ms, h_ss, h_sn, h_st],
        [h_mn, h_sn, h_nn, h_nt],
        [h_mt, h_st, h_nt, h_tt],
    ]
    return ll, [g_m, g_s, g_n, g_t], h


def _shasho2_derivatives(y, etas, second: bool = True):
    return _sinh_arcsinh_derivatives(y, etas, tau_in_scale=True, second=second)


def _shasho_derivatives(y, etas, second: bool = True):
    return _sinh_arcsinh_derivatives(y, etas, tau_in_scale=False, second=second)
