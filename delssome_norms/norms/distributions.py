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

Layout: :mod:`.dist_common` (array helpers, links), :mod:`.dist_sinh_arcsinh` (SHASHo2,
SHASHo, SHASH), :mod:`.dist_johnson_normal` (JSU, NO) and :mod:`.dist_gg` (GG) hold the numeric
functions; this module holds the :class:`Family` objects, gamlss's RS working weights and the
registry, and re-exports the functions so that ``distributions.shasho2_cdf`` etc. keep working.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from scipy import special

from delssome_norms.norms.dist_common import LOG_2PI, Array, link, link_inverse
from delssome_norms.norms.dist_gg import (
    GG_NU_ZERO,
    Z_LIMIT,
    _gg_from_z,
    _gg_z,
    gg_cdf,
    gg_logpdf,
    gg_ppf,
)
from delssome_norms.norms.dist_johnson_normal import (
    _jsu_from_z,
    _jsu_z,
    _no_derivatives,
    _no_from_z,
    _no_z,
    jsu_cdf,
    jsu_logpdf,
    jsu_ppf,
    no_cdf,
    no_logpdf,
    no_ppf,
)
from delssome_norms.norms.dist_sinh_arcsinh import (
    _shash_from_z,
    _shash_z,
    _shasho2_derivatives,
    _shasho2_from_z,
    _shasho2_z,
    _shasho_derivatives,
    _shasho_from_z,
    _shasho_z,
    shash_cdf,
    shash_logpdf,
    shash_ppf,
    shasho2_cdf,
    shasho2_logpdf,
    shasho2_ppf,
    shasho_cdf,
    shasho_logpdf,
    shasho_ppf,
)

__all__ = [
    "FAMILIES",
    "GG",
    "GG_NU_ZERO",
    "JSU",
    "LOG_2PI",
    "NO",
    "SHASH",
    "SHASHO",
    "SHASHO2",
    "Z_LIMIT",
    "Array",
    "Family",
    "get_family",
    "gg_cdf",
    "gg_logpdf",
    "gg_ppf",
    "jsu_cdf",
    "jsu_logpdf",
    "jsu_ppf",
    "link",
    "link_inverse",
    "no_cdf",
    "no_logpdf",
    "no_ppf",
    "shash_cdf",
    "shash_logpdf",
    "shash_ppf",
    "shasho2_cdf",
    "shasho2_logpdf",
    "shasho2_ppf",
    "shasho_cdf",
    "shasho_logpdf",
    "shasho_ppf",
]


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
    _from_z=_shash_from_z,
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
    _from_z=_gg_from_z,
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
