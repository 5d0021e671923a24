"""Coefficients ↔ regional pFIC parameters, search bounds and validity rules (docs/science.md §5).

With the design matrix ``X`` (N x P, P = 3 for ``[1, myelin, gradient]`` or 2 for
``[1, gradient]``) a coefficient vector ``c`` of length ``3 P + 1`` maps to regional parameters

    wEE = X c[0:P],  wEI = X c[P:2P],  G = c[2P],  sigma = X c[2P+1:3P+1].

:func:`coeffs_to_regional` and :func:`regional_to_coeffs` are an inverse pair: the second
projects regional parameters onto the span of ``X`` with ``pinv(X)``, so
``coeffs_to_regional(regional_to_coeffs(p)) == p`` exactly when ``p`` lies in that span and
``regional_to_coeffs(coeffs_to_regional(c)) == c`` always (X has full column rank).

A candidate is *valid* (reference code, ``pFIC.is_parameter_valid``) when every regional value is
inside its bounds, ``corr(wEI, myelin) <= 0`` (skipped without myelin), ``corr(wEI, gradient) >= 0``
and ``std(wEI) >= 0.3`` (sample standard deviation, ddof = 1, as ``torch.std``). With the FIC
stability gate (``Parameterisation.fic_sc`` given) the initial mean is drawn with a linearly
stable FIC fixed point (:mod:`delssome_norms.model.stability`); the gate itself acts on the
scores (:class:`~delssome_norms.fit.evaluate.StabilityGatedEvaluator`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from delssome_norms.errors import InvalidInputError
from delssome_norms.model import fic_fixed_point_stable

WEE_BOUNDS = (1.0, 10.0)
"""Bounds of the recurrent excitatory weight wEE in every region."""
G_BOUNDS = (0.0, 3.0)
"""Bounds of the global coupling G."""
MEAN_DRAWS = 256
"""With the stability gate, initial means drawn at once; the first stable one is used."""
SIGMA_BOUNDS = (0.0005, 0.01)
"""Bounds of the noise amplitude sigma in every region."""
MIN_WEI_STD = 0.3
"""Smallest accepted across-region standard deviation of wEI (reference code)."""
SPAN_DIRECTIONS = 720
"""Directions in the plane of two maps examined by :meth:`Parameterisation.min_wei_span`."""
SPAN_SLACK = 1.05
""":meth:`Parameterisation.check_feasible` refuses only spans this much wider than the wEI range
(the sampled directions can miss the best one by a little)."""


class RegionalParams(NamedTuple):
    """Regional pFIC parameters of a batch of candidates (numpy, float64).

    Attributes
    ----------
    wEE, wEI, sigma : ndarray of shape (B, N)
        Recurrent excitation, excitatory-to-inhibitory weight, noise amplitude.
    G : ndarray of shape (B,)
        Global coupling.
    """

    wEE: np.ndarray
    wEI: np.ndarray
    sigma: np.ndarray
    G: np.ndarray


def wei_range(fc_emp: np.ndarray) -> tuple[float, float]:
    """wEI bounds from the empirical FC (reference code, individual-level setting).

    ``wEI_max = clip(11 * mean(upper-tri FC), 3.2, 5)``, ``wEI_min = clip(2 wEI_max - 6, 0, 3.5)``.

    Parameters
    ----------
    fc_emp : ndarray of shape (N, N)

    Returns
    -------
    (wei_min, wei_max) : tuple of float

    Examples
    --------
    >>> import numpy as np
    >>> fc = np.full((4, 4), 0.4); np.fill_diagonal(fc, 1.0)
    >>> tuple(round(v, 6) for v in wei_range(fc))
    (2.8, 4.4)
    """
    fc_emp = np.asarray(fc_emp, dtype=np.float64)
    iu = np.triu_indices(fc_emp.shape[0], 1)
    wei_max = float(np.clip(11.0 * fc_emp[iu].mean(), 3.2, 5.0))
    wei_min = float(np.clip(2.0 * wei_max - 6.0, 0.0, 3.5))
    return wei_min, wei_max


@dataclass(frozen=True)
class Bounds:
    """Per-region bounds of the search (docs/science.md §5), each a (low, high) pair."""

    wEE: tuple[float, float] = WEE_BOUNDS
    wEI: tuple[float, float] = (0.0, 5.0)
    G: tuple[float, float] = G_BOUNDS
    sigma: tuple[float, float] = SIGMA_BOUNDS

    @classmethod
    def from_fc(cls, fc_emp: np.ndarray) -> Bounds:
        """Bounds with the wEI range of :func:`wei_range`."""
        return cls(wEI=wei_range(fc_emp))


def _rowwise_corr(a: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``a`` (B, N) with ``v`` (N,). NaN for constant rows."""
    ac = a - a.mean(axis=1, keepdims=True)
    vc = v - v.mean()
    den = np.sqrt((ac**2).sum(axis=1) * (vc**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ac @ vc) / den


def coeffs_to_regional(coeffs: np.ndarray, design: np.ndarray) -> RegionalParams:
    """Map coefficient vectors to regional parameters.

    Parameters
    ----------
    coeffs : ndarray of shape (B, 3P + 1) or (3P + 1,)
    design : ndarray of shape (N, P)

    Returns
    -------
    RegionalParams with arrays of shape (B, N) and G of shape (B,).
    """
    c = np.atleast_2d(np.asarray(coeffs, dtype=np.float64))
    p = design.shape[1]
    if c.shape[1] != 3 * p + 1:
        raise InvalidInputError(
            f"expected {3 * p + 1} coefficients for a {p}-column design, got {c.shape[1]}"
        )
    return RegionalParams(
        wEE=c[:, 0:p] @ design.T,
        wEI=c[:, p : 2 * p] @ design.T,
        sigma=c[:, 2 * p + 1 : 3 * p + 1] @ design.T,
        G=c[:, 2 * p].copy(),
    )


def regional_to_coeffs(params: RegionalParams, design: np.ndarray) -> np.ndarray:
    """Least-squares coefficients of regional parameters (inverse of :func:`coeffs_to_regional`).

    Parameters
    ----------
    params : RegionalParams
        Arrays of shape (B, N) (or (N,)) and G of shape (B,) (or scalar).
    design : ndarray of shape (N, P)

    Returns
    -------
    ndarray of shape (B, 3P + 1)
    """
    pinv = np.linalg.pinv(design)  # (P, N)
    wee, wei, sig = (np.atleast_2d(np.asarray(x, dtype=np.float64)) for x in params[:3])
    g = np.atleast_1d(np.asarray(params.G, dtype=np.float64))
    return np.concatenate([wee @ pinv.T, wei @ pinv.T, g[:, None], sig @ pinv.T], axis=1)


@dataclass(frozen=True)
class Parameterisation:
    """The search space of one subject: design matrix, maps, bounds and validity rules.

    Parameters
    ----------
    design : ndarray of shape (N, P)
        From :func:`~delssome_norms.fit.design.design_matrix`.
    gradient : ndarray of shape (N,)
        The gradient map (validity rule ``corr(wEI, gradient) >= 0``).
    bounds : Bounds
        Per-region bounds (wEI range from the subject's FC: :meth:`Bounds.from_fc`).
    myelin : ndarray of shape (N,), optional
        The myelin map (rule ``corr(wEI, myelin) <= 0``; skipped when absent).
    min_wei_std : float, default 0.3
        Smallest accepted ``std(wEI)`` across regions (ddof = 1).
    fic_sc : ndarray of shape (N, N), optional
        The subject's scaled SC (:func:`~delssome_norms.model.scale_sc`). When given, the
        initial mean is drawn with a stable FIC fixed point (``FitSettings.stability_gate``).
    """

    design: np.ndarray
    gradient: np.ndarray
    bounds: Bounds = field(default_factory=Bounds)
    myelin: np.ndarray | None = None
    min_wei_std: float = MIN_WEI_STD
    fic_sc: np.ndarray | None = None

    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        return int(self.design.shape[0])

    @property
    def n_coeffs(self) -> int:
        """Length of a coefficient vector, ``3 P + 1`` (10 with myelin, 7 without)."""
        return 3 * int(self.design.shape[1]) + 1

    def to_regional(self, coeffs: np.ndarray) -> RegionalParams:
        """Regional parameters of coefficient vectors (B, n_coeffs); see :func:`coeffs_to_regional`."""
        return coeffs_to_regional(coeffs, self.design)

    def to_coeffs(self, params: RegionalParams) -> np.ndarray:
        """Coefficients (B, n_coeffs) of regional parameters; see :func:`regional_to_coeffs`."""
        return regional_to_coeffs(params, self.design)

    def is_valid(self, coeffs: np.ndarray) -> np.ndarray:
        """Validity of candidates: bounds, wEI correlation signs and wEI spread.

        Parameters
        ----------
        coeffs : ndarray of shape (B, n_coeffs)

        Returns
        -------
        ndarray of bool, shape (B,)
        """
        p = self.to_regional(coeffs)
        b = self.bounds
        ok = np.ones(p.G.shape[0], dtype=bool)
        for arr, (lo, hi) in ((p.wEE, b.wEE), (p.wEI, b.wEI), (p.sigma, b.sigma)):
            ok &= np.all((arr >= lo) & (arr <= hi), axis=1)
        ok &= (p.G >= b.G[0]) & (p.G <= b.G[1])
        ok &= np.std(p.wEI, axis=1, ddof=1) >= self.min_wei_std
        # NaN correlations (constant wEI) are already rejected by the spread rule.
        ok &= ~(_rowwise_corr(p.wEI, self.gradient) < 0)
        if self.myelin is not None:
            ok &= ~(_rowwise_corr(p.wEI, self.myelin) > 0)
        return ok

    def min_wei_span(self) -> float:
        """Narrowest range (max - min over regions) of a wEI pattern the validity rules allow.

        wEI = X c follows the maps; a valid pattern correlates with the gradient (>= 0) and
        against myelin (<= 0) and has an across-region SD (ddof 1) of at least ``min_wei_std``.
        Its range is at least ``min_wei_std`` times the smallest range-to-SD ratio of the maps'
        valid directions (:data:`SPAN_DIRECTIONS` sampled in the plane of two maps). A map
        dominated by a few regions has a large ratio. ``inf`` when no direction passes the
        correlation rules.

        Returns
        -------
        float
            In wEI units.
        """
        x = np.asarray(self.design, dtype=np.float64)
        maps = x[:, x.std(axis=0) > 0]
        maps = maps - maps.mean(axis=0)
        k = maps.shape[1]
        if k == 0:
            return float("inf")
        if k == 1:
            dirs = np.array([[1.0, -1.0]])
        elif k == 2:
            angle = np.linspace(0.0, 2.0 * np.pi, SPAN_DIRECTIONS, endpoint=False)
            dirs = np.vstack([np.cos(angle), np.sin(angle)])
        else:
            dirs = np.random.default_rng(0).standard_normal((k, 8 * SPAN_DIRECTIONS))
        patterns = (maps @ dirs).T  # (directions, N)
        sd = patterns.std(axis=1, ddof=1)
        ok = sd > 1e-12 * max(1.0, float(np.abs(patterns).max()))
        ok &= ~(_rowwise_corr(patterns, self.gradient) < -1e-12)
        if self.myelin is not None:
            ok &= ~(_rowwise_corr(patterns, self.myelin) > 1e-12)
        if not ok.any():
            return float("inf")
        ratio = (patterns.max(axis=1) - patterns.min(axis=1))[ok] / sd[ok]
        return float(ratio.min() * self.min_wei_std)

    def check_feasible(self, source: str = "gradient") -> None:
        """Refuse a search space in which no candidate can be valid (before any simulation).

        Without this the search only reports that CMA-ES collapsed with no valid candidate.

        Parameters
        ----------
        source : str
            Where the maps came from, named in the error (an option or input).

        Raises
        ------
        InvalidInputError
            When every wEI pattern the maps allow is wider than the wEI bounds
            (:meth:`min_wei_span`), or none passes the correlation rules.
        """
        lo, hi = self.bounds.wEI
        need = self.min_wei_span()
        if need <= (hi - lo) * SPAN_SLACK:
            return
        rules = "rise with the gradient" + (" and fall with myelin" if self.myelin is not None else "")
        if not np.isfinite(need):
            raise InvalidInputError(
                f"no wEI pattern can {rules} at once (the maps are too alike); give maps that "
                "differ, or only a gradient map",
                source,
            )
        g = np.asarray(self.gradient, dtype=np.float64)
        z = (g - g.mean()) / g.std()
        k = int(np.argmax(np.abs(z)))
        raise InvalidInputError(
            f"no candidate can pass the search's validity rules: wEI must {rules} with an "
            f"across-region SD of at least {self.min_wei_std:g}, so it spans at least {need:.2f}, "
            f"but the wEI bounds from the subject's FC allow [{lo:.2f}, {hi:.2f}]; the gradient "
            f"is dominated by a few regions (region index {k} lies {z[k]:+.1f} SD from the mean). "
            "Give a gradient map in which the regions spread more evenly",
            source,
        )

    def fic_stable(self, p: RegionalParams) -> np.ndarray:
        """Whether each set's FIC fixed point is linearly stable (needs ``fic_sc``), bool (B,)."""
        if self.fic_sc is None:
            raise ValueError("fic_stable needs the subject's scaled SC (fic_sc)")
        stable, _ = fic_fixed_point_stable(
            *(torch.as_tensor(np.atleast_2d(x), dtype=torch.float64) for x in (p.wEE, p.wEI)),
            torch.as_tensor(np.atleast_1d(p.G), dtype=torch.float64),
            torch.as_tensor(self.fic_sc, dtype=torch.float64),
            with_margin=False,  # only the sign is needed here
        )
        return stable.numpy()

    def initial_mean(self, rng: np.random.Generator) -> np.ndarray:
        """Initial CMA-ES mean: random in-bounds regional parameters projected with ``pinv(X)``.

        Each region's wEE, wEI and sigma and the global G are drawn uniformly inside their bounds
        (reference code, ``pFIC.init_CMA_ES``) and projected onto the span of ``X``. With
        ``fic_sc`` the mean must also have a stable FIC fixed point: of ``MEAN_DRAWS`` draws the
        first stable one is kept (the first draw if none is), so the search does not start
        centred on an unstable point.

        Returns
        -------
        ndarray of shape (n_coeffs,)
        """
        n, b = self.n_regions, self.bounds
        k = 1 if self.fic_sc is None else MEAN_DRAWS
        draw = RegionalParams(
            wEE=rng.uniform(*b.wEE, size=(k, n)),
            wEI=rng.uniform(*b.wEI, size=(k, n)),
            sigma=rng.uniform(*b.sigma, size=(k, n)),
            G=rng.uniform(*b.G, size=k),
        )
        means = self.to_coeffs(draw)
        if self.fic_sc is None:
            return means[0]
        stable = np.flatnonzero(self.fic_stable(self.to_regional(means)))
        return means[stable[0] if len(stable) else 0]

    def initial_stds(self, mean: np.ndarray) -> np.ndarray:
        """Initial per-coefficient standard deviations (multipliers of sigma0), reference values.

        wEE coefficients: |intercept of the wEE mean|; wEI coefficients: |intercept of the wEI
        mean|; G: 0.4; sigma coefficients: 0.0005 (reference code). The wEE and wEI values are
        floored at a quarter of the parameter's range: when a non-centred map (myelin) takes the
        projected level, the intercept can be near zero and the reference values would start the
        search with almost no spread.

        Returns
        -------
        ndarray of shape (n_coeffs,)
        """
        p, b = self.design.shape[1], self.bounds
        stds = np.empty(self.n_coeffs)
        stds[0:p] = max(abs(mean[0]), (b.wEE[1] - b.wEE[0]) / 4)
        stds[p : 2 * p] = max(abs(mean[p]), (b.wEI[1] - b.wEI[0]) / 4)
        stds[2 * p] = 0.4
        stds[2 * p + 1 :] = 0.0005
        return stds
