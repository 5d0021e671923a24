"""Response distributions of the growth charts, in R gamlss.dist's parameterisations and links.

Each family is available as plain functions (``shasho2_logpdf(y, mu, sigma, nu, tau)``,
``shasho2_cdf``, ``shasho2_ppf``, ...) and as a :class:`Family` object that the fitter and
:class:`~delssome_norms.norms.chart.GrowthChart` use. Log-densities accept numpy arrays or torch
tensors (so the fitter can differentiate them); CDFs and quantiles are numpy. All functions
broadcast their arguments.

Families (gamlss.dist names; default links in brackets):

``SHASHo2`` (mu identity, sigma log, nu identity, tau log)
    ``z = sinh(tau * asinh((y - mu) / (sigma * tau)) - nu) ~ N(0, 1)`` (the paper's choice;
    Jones & Pewsey 2009 with sigma rescaled by tau).
``SHASHo`` (same links)
    ``z = sinh(tau * asinh((y - mu) / sigma) - nu) ~ N(0, 1)``.
``SHASH`` (mu identity, sigma log, nu log, tau log)
    ``z = (exp(tau * s) - exp(-nu * s)) / 2``, ``s = asinh((y - mu) / sigma)`` (Jones 2005; nu and
    tau control the left and right tails).
``JSU`` (mu identity, sigma log, nu identity, tau log)
    Johnson's SU reparameterised so that mu is the mean and sigma the standard deviation.
``NO`` (mu identity, sigma log)
    Normal with mean mu and standard deviation sigma.
``GG`` (mu log, sigma log, nu identity)
    Generalised gamma (Lopatatzidis & Green): ``(y / mu) ** nu ~ Gamma(shape=1/(sigma nu)^2,
    scale=(sigma nu)^2)``; log-normal(log mu, sigma) in the limit nu -> 0. Needs y > 0.

Random draws use the quantile function of uniform draws, as gamlss.dist does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import special

Array = np.ndarray | torch.Tensor

LOG_2PI = math.log(2.0 * math.pi)
GG_NU_ZERO = 1e-6
"""|nu| below which GG is evaluated as its log-normal limit (as gamlss.dist does)."""


# ---------------------------------------------------------------------------------------------
# small helpers that work on numpy arrays and torch tensors alike
# ---------------------------------------------------------------------------------------------
def _xp(*values):
    return torch if any(isinstance(v, torch.Tensor) for v in values) else np


def _prep(*values):
    """Return the array namespace and the values, converted to tensors when any is a tensor."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return np, values
    ref = tensors[0]
    return torch, tuple(
        v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=ref.dtype, device=ref.device)
        for v in values
    )


def _logcosh(x: Array) -> Array:
    xp = _xp(x)
    a = xp.abs(x)
    return a + xp.log1p(xp.exp(-2.0 * a)) - math.log(2.0)


def _lgamma(x: Array) -> Array:
    return torch.lgamma(x) if isinstance(x, torch.Tensor) else special.gammaln(x)


def _digamma(x: Array) -> Array:
    return torch.digamma(x) if isinstance(x, torch.Tensor) else special.digamma(x)


def _trigamma(x: Array) -> Array:
    return torch.polygamma(1, x) if isinstance(x, torch.Tensor) else special.polygamma(1, x)


def _broadcast(*arrays) -> list[np.ndarray]:
    return list(np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays]))


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
    (
        xp,
        (
            y,
            mu,
            sigma,
            nu,
            tau,
        ),
    ) = _prep(y, mu, sigma, nu, tau)
    z = (y - mu) / (sigma * tau)
    x = tau * xp.arcsinh(z) - nu
    r = xp.sinh(x)
    return -xp.log(sigma) - 0.5 * LOG_2PI - 0.5 * xp.log1p(z * z) + _logcosh(x) - 0.5 * r * r


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
    (
        xp,
        (
            y,
            mu,
            sigma,
            nu,
            tau,
        ),
    ) = _prep(y, mu, sigma, nu, tau)
    z = (y - mu) / sigma
    x = tau * xp.arcsinh(z) - nu
    r = xp.sinh(x)
    return (
        -xp.log(sigma) + xp.log(tau) - 0.5 * LOG_2PI - 0.5 * xp.log1p(z * z) + _logcosh(x) - 0.5 * r * r
    )


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
    (
        xp,
        (
            y,
            mu,
            sigma,
            nu,
            tau,
        ),
    ) = _prep(y, mu, sigma, nu, tau)
    z = (y - mu) / sigma
    s = xp.arcsinh(z)
    r = 0.5 * (xp.exp(tau * s) - xp.exp(-nu * s))
    c = 0.5 * (tau * xp.exp(tau * s) + nu * xp.exp(-nu * s))
    return -xp.log(sigma) - 0.5 * LOG_2PI - 0.5 * xp.log1p(z * z) + xp.log(c) - 0.5 * r * r


def shash_cdf(y, mu, sigma, nu, tau) -> np.ndarray:
    """CDF of SHASH: ``Phi((exp(tau s) - exp(-nu s)) / 2)``, ``s = asinh((y - mu) / sigma)``."""
    y, mu, sigma, nu, tau = _broadcast(y, mu, sigma, nu, tau)
    s = np.arcsinh((y - mu) / sigma)
    return special.ndtr(0.5 * (np.exp(tau * s) - np.exp(-nu * s)))


def shash_ppf(q, mu, sigma, nu, tau, n_iter: int = 200) -> np.ndarray:
    """Quantile function of SHASH, solving ``(exp(tau s) - exp(-nu s)) / 2 = Phi^-1(q)`` for s.

    The left side increases with s, so a vectorised bisection on a bracket that always contains
    the root gives the quantile to machine precision (gamlss.dist uses ``uniroot`` per value).
    """
    q, mu, sigma, nu, tau = _broadcast(q, mu, sigma, nu, tau)
    r = special.ndtri(q)
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
    return np.where(np.isfinite(r), out, np.where(r > 0, np.inf, -np.inf))


# ---------------------------------------------------------------------------------------------
# JSU (mean / sd parameterisation of gamlss.dist)
# ---------------------------------------------------------------------------------------------
def _jsu_constants(xp, sigma, nu, tau):
    rtau = 1.0 / tau
    w = xp.exp(rtau * rtau)
    omega = -nu * rtau
    c = (0.5 * (w - 1.0) * (w * xp.cosh(2.0 * omega) + 1.0)) ** -0.5
    return rtau, w, omega, c


def jsu_logpdf(y: Array, mu: Array, sigma: Array, nu: Array, tau: Array) -> Array:
    """Log-density of JSU (gamlss.dist ``dJSU``): mean mu, standard deviation sigma."""
    (
        xp,
        (
            y,
            mu,
            sigma,
            nu,
            tau,
        ),
    ) = _prep(y, mu, sigma, nu, tau)
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
    (
        xp,
        (
            y,
            mu,
            sigma,
        ),
    ) = _prep(y, mu, sigma)
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
# GG (generalised gamma, Lopatatzidis & Green)
# ---------------------------------------------------------------------------------------------
def gg_logpdf(y: Array, mu: Array, sigma: Array, nu: Array) -> Array:
    """Log-density of GG (gamlss.dist ``dGG``); y, mu, sigma > 0.

    For ``|nu| > 1e-6``: ``theta log theta + theta log z - theta z - lgamma(theta) + log|nu| -
    log y`` with ``z = (y / mu) ** nu`` and ``theta = 1 / (sigma nu)^2``; otherwise the
    log-normal limit.
    """
    (
        xp,
        (
            y,
            mu,
            sigma,
            nu,
        ),
    ) = _prep(y, mu, sigma, nu)
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
    d = log_y - xp.log(mu)
    lognormal = -log_y - 0.5 * LOG_2PI - xp.log(sigma) - d * d / (2.0 * sigma * sigma)
    return xp.where(small, lognormal, gg)


Z_LIMIT = 38.0
"""Largest |z| a GG z-score reports (Phi(-38) ~ 1e-316, the smallest double probability)."""


def _gg_tails(y, mu, sigma, nu) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(F(y), 1 - F(y), small-nu mask) of GG, each tail from its own regularised incomplete
    gamma (``gammainc`` / ``gammaincc``) so that neither rounds through ``1 - p``."""
    y, mu, sigma, nu = _broadcast(y, mu, sigma, nu)
    small = np.abs(nu) <= GG_NU_ZERO
    nu_safe = np.where(small, 1.0, nu)
    theta = 1.0 / (sigma * nu_safe) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(y > 0, (np.maximum(y, 1e-300) / mu) ** nu_safe, 0.0)
        below, above = special.gammainc(theta, theta * z), special.gammaincc(theta, theta * z)
        lower = np.where(nu_safe > 0, below, above)
        upper = np.where(nu_safe > 0, above, below)
        ln = (np.log(np.maximum(y, 1e-300)) - np.log(mu)) / sigma
    lower = np.where(small, special.ndtr(ln), lower)
    upper = np.where(small, special.ndtr(-ln), upper)
    positive = y > 0
    return np.where(positive, lower, 0.0), np.where(positive, upper, 1.0), small


def gg_cdf(y, mu, sigma, nu) -> np.ndarray:
    """CDF of GG (regularised incomplete gamma; upper tail when nu < 0)."""
    return _gg_tails(y, mu, sigma, nu)[0]


def _gg_z(y, mu, sigma, nu) -> np.ndarray:
    """Normal deviate of GG from the smaller tail (exact for the log-normal limit)."""
    lower, upper, _ = _gg_tails(y, mu, sigma, nu)
    with np.errstate(divide="ignore"):
        z = np.where(lower < 0.5, special.ndtri(lower), -special.ndtri(upper))
    return np.clip(z, -Z_LIMIT, Z_LIMIT)  # y <= 0 (or beyond double range): a finite extreme


def gg_ppf(q, mu, sigma, nu) -> np.ndarray:
    """Quantile function of GG."""
    q, mu, sigma, nu = _broadcast(q, mu, sigma, nu)
    small = np.abs(nu) <= GG_NU_ZERO
    nu_safe = np.where(small, 1.0, nu)
    theta = 1.0 / (sigma * nu_safe) ** 2
    p = np.where(nu_safe > 0, q, 1.0 - q)
    z = special.gammaincinv(theta, p) / theta
    with np.errstate(divide="ignore"):
        out = mu * z ** (1.0 / nu_safe)
    return np.where(small, mu * np.exp(sigma * special.ndtri(q)), out)


# ---------------------------------------------------------------------------------------------
# exact normal deviates (the families above are transformations of N(0, 1))
# ---------------------------------------------------------------------------------------------
def _shasho2_z(y, mu, sigma, nu, tau):
    out = np.subtract(y, mu, dtype=np.float64)
    out /= sigma
    out /= tau
    np.arcsinh(out, out=out)
    out *= tau
    out -= nu
    return np.sinh(out, out=out)


def _shasho2_from_z(z, mu, sigma, nu, tau):
    out = np.arcsinh(np.asarray(z, dtype=np.float64))
    out += nu
    out /= tau
    np.sinh(out, out=out)
    out *= sigma
    out *= tau
    out += mu
    return out


def _shasho_z(y, mu, sigma, nu, tau):
    out = np.subtract(y, mu, dtype=np.float64)
    out /= sigma
    np.arcsinh(out, out=out)
    out *= tau
    out -= nu
    return np.sinh(out, out=out)


def _shasho_from_z(z, mu, sigma, nu, tau):
    out = np.arcsinh(np.asarray(z, dtype=np.float64))
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


# ---------------------------------------------------------------------------------------------
# links
# ---------------------------------------------------------------------------------------------
def link_inverse(name: str, eta: Array) -> Array:
    """Map a linear predictor to the parameter scale (``"identity"`` or ``"log"``)."""
    if name == "identity":
        return eta
    if name == "log":
        return _xp(eta).exp(eta)
    raise ValueError(f"unknown link {name!r}")


def link(name: str, value: Array) -> Array:
    """Map a parameter to its linear-predictor scale (inverse of :func:`link_inverse`)."""
    if name == "identity":
        return value
    if name == "log":
        return _xp(value).log(value)
    raise ValueError(f"unknown link {name!r}")


# ---------------------------------------------------------------------------------------------
# working weights of gamlss's RS algorithm (used for the random-effect variance)
# ---------------------------------------------------------------------------------------------
def _d2_squared_score(k: int, dldp: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
    # SHASHo2, SHASHo, SHASH: gamlss.dist approximates d2l/dp2 by -(dl/dp)^2
    return -dldp * dldp


def _d2_jsu(k: int, dldp: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
    # JSU: -(dl/dp)^2, capped at -1e-4 for nu and tau
    d2 = -dldp * dldp
    return np.minimum(d2, -1e-4) if k >= 2 else d2


def _d2_no(k: int, dldp: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
    # NO: expected information
    sigma = params[1]
    return -1.0 / sigma**2 if k == 0 else -2.0 / sigma**2


def _d2_gg(k: int, dldp: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
    # GG: expected information as in gamlss.dist (theta uses |nu|)
    mu, sigma, nu = params
    small = np.abs(nu) <= GG_NU_ZERO
    nu_safe = np.where(small, 1.0, nu)
    theta = 1.0 / (sigma * sigma * nu_safe * nu_safe)
    if k == 0:
        return -1.0 / (mu * mu * sigma * sigma)
    if k == 1:
        expected = 4.0 * (theta / sigma**2) * (1.0 - theta * special.polygamma(1, theta))
        return np.where(small, -2.0 / sigma**2, expected)
    lt, dg, tg = np.log(theta), special.digamma(theta), special.polygamma(1, theta)
    return -(theta / nu_safe**2) * (
        tg * (1.0 + 4.0 * theta)
        - (4.0 + 3.0 / theta)
        - lt * (2.0 / theta - lt)
        + dg * (dg + 2.0 / theta - 2.0 * lt)
    )


def _autograd_derivatives(family, y, etas, second: bool = True):
    """Per-observation log-density, scores (and Hessian) on the eta scale by torch autograd."""
    leaves = [torch.as_tensor(np.asarray(e, dtype=np.float64)).requires_grad_(True) for e in etas]
    yt = torch.as_tensor(np.asarray(y, dtype=np.float64))
    ll = family.logpdf(yt, *family.to_params(leaves))
    shape = ll.shape
    g = torch.autograd.grad(ll.sum(), leaves, create_graph=second)
    g_np = [np.broadcast_to(gk.detach().numpy(), shape) for gk in g]
    if not second:
        return ll.detach().numpy(), g_np, None
    K = len(leaves)
    h = [[None] * K for _ in range(K)]
    for k in range(K):
        row = torch.autograd.grad(g[k].sum(), leaves, retain_graph=k < K - 1, allow_unused=True)
        for j in range(K):
            h[k][j] = np.zeros(shape) if row[j] is None else np.broadcast_to(row[j].numpy(), shape)
    return ll.detach().numpy(), g_np, h


# ---------------------------------------------------------------------------------------------
# Family objects
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """A gamlss.dist family: parameter names, links and the numeric functions.

    Attributes
    ----------
    name : str
        gamlss.dist name, e.g. ``"SHASHo2"``.
    params : tuple of str
        Parameter names in order (``("mu", "sigma", "nu", "tau")`` or a prefix of it).
    links : tuple of str
        Link of each parameter (``"identity"`` or ``"log"``).
    positive_y : bool
        The family needs y > 0.
    location_scale : bool
        mu is a location and sigma a scale parameter (for fixed nu, tau): ``(y - mu) / sigma``
        has a distribution free of mu and sigma.
    """

    name: str
    params: tuple[str, ...]
    links: tuple[str, ...]
    _logpdf: Callable = field(repr=False)
    _cdf: Callable = field(repr=False)
    _ppf: Callable = field(repr=False)
    _d2: Callable = field(repr=False)
    positive_y: bool = False
    location_scale: bool = False
    description: str = ""
    _z: Callable | None = field(default=None, repr=False)
    _from_z: Callable | None = field(default=None, repr=False)
    _derivatives: Callable | None = field(default=None, repr=False)

    @property
    def n_params(self) -> int:
        """Number of distribution parameters (2 to 4)."""
        return len(self.params)

    def logpdf(self, y: Array, *theta: Array) -> Array:
        """Log-density at ``y`` (numpy or torch); ``theta`` on the parameter scale."""
        return self._logpdf(y, *theta)

    def cdf(self, y, *theta) -> np.ndarray:
        """Cumulative distribution function at ``y``."""
        return self._cdf(y, *theta)

    def ppf(self, q, *theta) -> np.ndarray:
        """Quantile function at probabilities ``q`` in (0, 1)."""
        return self._ppf(q, *theta)

    def zscore(self, y, *theta) -> np.ndarray:
        """Normal deviate of ``y``: ``Phi^-1(F(y))``, computed without rounding through F.

        The sinh-arcsinh, Johnson and normal families transform y to N(0, 1) directly, so their
        z-scores stay exact far in the tails; GG uses ``Phi^-1(F(y))``.
        """
        if self._z is not None:
            return self._z(y, *theta)
        return special.ndtri(np.clip(self._cdf(y, *theta), 1e-300, 1.0 - 1e-16))

    def from_zscore(self, z, *theta) -> np.ndarray:
        """Value whose normal deviate is ``z`` (inverse of :meth:`zscore`)."""
        if self._from_z is not None:
            return self._from_z(z, *theta)
        return self._ppf(special.ndtr(z), *theta)

    @property
    def has_analytic_derivatives(self) -> bool:
        """Whether :meth:`derivatives` is closed-form (else the fitter uses torch autograd)."""
        return self._derivatives is not None

    def derivatives(self, y: np.ndarray, etas: list[np.ndarray]):
        """Log-density, scores and Hessian per observation on the linear-predictor scale.

        Closed-form for SHASHo2, SHASHo and NO; torch autograd for the other families.

        Parameters
        ----------
        y : ndarray
        etas : list of ndarray, one per parameter (broadcastable with y)

        Returns
        -------
        ll : ndarray
        g : list of K ndarrays, dl/deta_k
        h : K x K nested list of ndarrays, d2l/deta_k deta_j
        """
        if self._derivatives is None:
            return _autograd_derivatives(self, y, etas, second=True)
        return self._derivatives(y, etas)

    def scores(self, y: np.ndarray, etas: list[np.ndarray]):
        """Log-density and scores dl/deta_k per observation (first derivatives only).

        Returns
        -------
        ll : ndarray
        g : list of K ndarrays
        """
        if self._derivatives is None:
            ll, g, _ = _autograd_derivatives(self, y, etas, second=False)
        else:
            ll, g, _ = self._derivatives(y, etas, second=False)
        return ll, g

    def rvs(self, *theta, size=None, rng: np.random.Generator | int | None = None) -> np.ndarray:
        """Random draws (quantile function of uniform draws, as gamlss.dist's ``r*``)."""
        gen = np.random.default_rng(rng)
        shape = np.broadcast_shapes(*[np.shape(t) for t in theta]) if size is None else size
        return self._ppf(gen.uniform(size=shape), *theta)

    def to_params(self, etas: list[Array]) -> list[Array]:
        """Apply the inverse links to the linear predictors (one per parameter)."""
        return [link_inverse(lk, e) for lk, e in zip(self.links, etas)]

    def to_etas(self, params: list[Array]) -> list[Array]:
        """Apply the links to parameter values (one per parameter)."""
        return [link(lk, p) for lk, p in zip(self.links, params)]

    def working_weights(self, k: int, score_eta: np.ndarray, params: list[np.ndarray]) -> np.ndarray:
        """gamlss RS working weights of parameter ``k`` on the linear-predictor scale.

        Parameters
        ----------
        k : int
            Parameter index (0 = mu, 1 = sigma).
        score_eta : ndarray
            dl/deta_k per observation.
        params : list of ndarray
            Parameter values per observation.

        Returns
        -------
        ndarray, ``-d2l/dp2 * (dp/deta)^2`` with gamlss.dist's ``d2l/dp2`` (minus the squared
        score for the SHASH and JSU families, expected information for NO and GG), capped and
        clipped to [1e-10, 1e10] as gamlss's RS algorithm does.
        """
        dpdeta = params[k] if self.links[k] == "log" else 1.0
        dldp = score_eta / dpdeta
        d2 = np.minimum(self._d2(k, dldp, params), -1e-15)  # gamlss glim.fit's cap
        wt = np.broadcast_to(-d2 * dpdeta * dpdeta, np.shape(score_eta))
        return np.clip(wt, 1e-10, 1e10)


SHASHO2 = Family(
    "SHASHo2",
    ("mu", "sigma", "nu", "tau"),
    ("identity", "log", "identity", "log"),
    shasho2_logpdf,
    shasho2_cdf,
    shasho2_ppf,
    _d2_squared_score,
    location_scale=True,
    description="sinh-arcsinh, Jones & Pewsey (2009), sigma rescaled by tau",
    _z=_shasho2_z,
    _from_z=_shasho2_from_z,
    _derivatives=_shasho2_derivatives,
)
SHASHO = Family(
    "SHASHo",
    ("mu", "sigma", "nu", "tau"),
    ("identity", "log", "identity", "log"),
    shasho_logpdf,
    shasho_cdf,
    shasho_ppf,
    _d2_squared_score,
    location_scale=True,
    description="sinh-arcsinh, Jones & Pewsey (2009)",
    _z=_shasho_z,
    _from_z=_shasho_from_z,
    _derivatives=_shasho_derivatives,
)
SHASH = Family(
    "SHASH",
    ("mu", "sigma", "nu", "tau"),
    ("identity", "log", "log", "log"),
    shash_logpdf,
    shash_cdf,
    shash_ppf,
    _d2_squared_score,
    location_scale=True,
    description="sinh-arcsinh, Jones (2005)",
    _z=_shash_z,
)
JSU = Family(
    "JSU",
    ("mu", "sigma", "nu", "tau"),
    ("identity", "log", "identity", "log"),
    jsu_logpdf,
    jsu_cdf,
    jsu_ppf,
    _d2_jsu,
    location_scale=True,
    description="Johnson SU, mean mu and standard deviation sigma",
    _z=_jsu_z,
    _from_z=_jsu_from_z,
)
NO = Family(
    "NO",
    ("mu", "sigma"),
    ("identity", "log"),
    no_logpdf,
    no_cdf,
    no_ppf,
    _d2_no,
    location_scale=True,
    description="normal, mean mu and standard deviation sigma",
    _z=_no_z,
    _from_z=_no_from_z,
    _derivatives=_no_derivatives,
)
GG = Family(
    "GG",
    ("mu", "sigma", "nu"),
    ("log", "log", "identity"),
    gg_logpdf,
    gg_cdf,
    gg_ppf,
    _d2_gg,
    _z=_gg_z,
    positive_y=True,
    description="generalised gamma (Lopatatzidis & Green)",
)

FAMILIES: dict[str, Family] = {f.name: f for f in (SHASHO2, SHASHO, SHASH, JSU, NO, GG)}
"""Registry of the supported families by gamlss.dist name."""


def get_family(name: str) -> Family:
    """Look up a family by its gamlss.dist name (case-insensitive); ``ValueError`` if unknown."""
    for key, fam in FAMILIES.items():
        if key.lower() == str(name).lower():
            return fam
    raise ValueError(f"unknown family {name!r}; choose one of {', '.join(FAMILIES)}")
