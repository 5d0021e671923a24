"""pFIC maths of the synthetic cohort: fixed-point E/I, the E/I mapping, the wEE rule.

docs/science.md §2, §8.

* E/I mapping (:class:`EIMapping`): at the noise-free FIC fixed point ``S_E* ≈ 0.1613`` in every
  region and ``S_I*`` depends only on wEI, so E/I = ``S_E* / S_I*(wEI)`` (:func:`fixed_point_ei`,
  from the model's FIC solver).
* wEE rule (:class:`WEERule`): the wEE that keeps the network's slowest mode decaying at a given
  margin for a given wEI (:func:`max_growth_rate`, from the Jacobian of
  :func:`delssome_norms.model.stability.fic_jacobian`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from delssome_norms.model.fic import solve_fic
from delssome_norms.model.stability import fic_jacobian

# --------------------------------------------------------------------------------------------------
# The model's E/I mapping
# --------------------------------------------------------------------------------------------------


def _solve_fixed_point_ei(w: np.ndarray) -> np.ndarray:
    """Exact fixed-point E/I of a 1-D wEI array through the model's vectorised FIC solver."""
    width = 64  # solve as a (rows, 64) batch against a 64-region empty network
    flat = np.concatenate([w, np.full((-w.size) % width, 2.0)]).reshape(-1, width)
    wei_t = torch.from_numpy(flat)
    sol = solve_fic(
        torch.zeros_like(wei_t),
        wei_t,
        torch.zeros(len(flat), dtype=torch.float64),
        torch.zeros(width, width, dtype=torch.float64),
    )
    return (sol.s_e / sol.s_i.numpy()).ravel()[: w.size]


_TABLE_RANGE = (-1.0, 8.0)
_TABLE_STEP = 0.0005


@lru_cache(maxsize=1)
def _fixed_point_table() -> Any:
    """Cubic-spline interpolant of the exact fixed-point E/I on a 0.0005-wEI grid over [-1, 8]."""
    from scipy.interpolate import CubicSpline

    lo, hi = _TABLE_RANGE
    grid = np.linspace(lo, hi, round((hi - lo) / _TABLE_STEP) + 1)
    return CubicSpline(grid, _solve_fixed_point_ei(grid))


def fixed_point_ei(wei: np.ndarray | float, exact: bool = False) -> np.ndarray:
    """E/I ratio ``S_E* / S_I*`` at the noise-free FIC fixed point, from the model's FIC solver.

    At the fixed point ``S_E*`` is the same in every region and ``S_I*`` depends only on wEI
    (docs/science.md §2), so this is exact for any wEE, G and SC.

    Parameters
    ----------
    wei : array-like
        Excitatory-to-inhibitory weight(s), any shape.
    exact : bool, default False
        Solve the FIC equation for every value (:func:`~delssome_norms.model.fic.solve_fic`).
        Otherwise values in [-1, 8] use a cubic spline through exact solutions every 0.0005
        (relative error below 1e-12) and others are solved exactly.

    Returns
    -------
    ndarray of the same shape, float64 (unitless).

    Examples
    --------
    >>> round(float(fixed_point_ei(2.0)), 4)
    3.0086
    """
    w = np.asarray(wei, dtype=np.float64)
    flat = w.ravel()
    if exact:
        return _solve_fixed_point_ei(flat).reshape(w.shape)
    lo, hi = _TABLE_RANGE
    inside = (flat >= lo) & (flat <= hi)
    out = np.empty_like(flat)
    out[inside] = _fixed_point_table()(flat[inside])
    if not inside.all():
        out[~inside] = _solve_fixed_point_ei(flat[~inside])
    return out.reshape(w.shape)


@dataclass(frozen=True)
class EIMapping:
    """Time-averaged E/I of the noisy model as a function of wEI and sigma.

    ``E/I(wEI, sigma) = fixed_point_ei(wEI) * (1 + (sigma / 0.005)^2 * (c0 + c1 (wEI - 2) +
    c2 (wEI - 2)^2))``: the noise-induced shift is second order in the noise amplitude (Itô/Jensen
    effect of fluctuations through the convex rate functions), with a quadratic dependence on wEI.
    The coefficients are fitted to :func:`~delssome_norms.model.simulate` runs at the cohort's
    G and wEE rule by :func:`calibrate_ei_mapping`.

    Attributes
    ----------
    coefficients : tuple of float
        ``(c0, c1, c2)``; all zero means the fixed-point mapping.
    G, margin : float
        Global coupling and wEE-rule stability margin [1/s] the calibration ran at.
    residual_sd : float
        SD of the relative residual of the calibration points (unitless).
    n_points : int
        Calibration points (regions x parameter sets).
    source : str
        How the coefficients were obtained.
    """

    coefficients: tuple[float, float, float] = (0.0, 0.0, 0.0)
    G: float = float("nan")
    margin: float = float("nan")
    residual_sd: float = float("nan")
    n_points: int = 0
    source: str = "uncalibrated (fixed point only)"

    def relative_shift(self, wei: np.ndarray, sigma: np.ndarray | float) -> np.ndarray:
        """``E/I / fixed_point_ei(wEI) - 1`` (unitless), broadcast over ``wei`` and ``sigma``."""
        c0, c1, c2 = self.coefficients
        x = np.asarray(wei, dtype=np.float64) - 2.0
        s2 = (np.asarray(sigma, dtype=np.float64) / 0.005) ** 2
        return s2 * (c0 + c1 * x + c2 * x * x)

    def __call__(self, wei: np.ndarray, sigma: np.ndarray | float) -> np.ndarray:
        """Time-averaged E/I (unitless) for regional wEI and noise amplitude sigma (any shapes)."""
        return fixed_point_ei(wei) * (1.0 + self.relative_shift(wei, sigma))

    def inverse(
        self, ei: np.ndarray, sigma: np.ndarray | float, lo: float = -1.0, hi: float = 8.0
    ) -> np.ndarray:
        """wEI giving the E/I ``ei`` (vectorised bisection; the mapping is decreasing in wEI).

        Hand-written because scipy's root finders (``brentq``, ``bisect``) solve one scalar
        bracket at a time; here every person and region is solved at once (60 halvings).

        Parameters
        ----------
        ei : ndarray
            Target time-averaged E/I (unitless), any shape.
        sigma : ndarray or float
            Noise amplitude, broadcast against ``ei``.
        lo, hi : float
            Bracket of wEI searched; results are clipped to it.

        Returns
        -------
        ndarray of the broadcast shape of ``ei`` and ``sigma``, float64; accurate to 1e-12.
        """
        target, s = np.broadcast_arrays(np.asarray(ei, dtype=np.float64), np.asarray(sigma, float))
        low = np.full(target.shape, lo)
        high = np.full(target.shape, hi)
        for _ in range(60):
            mid = 0.5 * (low + high)
            too_high = self(mid, s) > target  # E/I still too high: need more wEI
            low = np.where(too_high, mid, low)
            high = np.where(too_high, high, mid)
        return 0.5 * (low + high)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EIMapping:
        """Inverse of :meth:`to_dict`."""
        data = dict(data)
        data["coefficients"] = tuple(float(c) for c in data["coefficients"])
        return cls(**data)


def _scaled(sc: np.ndarray) -> np.ndarray:
    """SC scaled to a maximum of 0.02, as the model does (docs/science.md §1)."""
    sc = np.asarray(sc, dtype=np.float64)
    return sc * (0.02 / sc.max())


def network_jacobian(wee: np.ndarray, wei: np.ndarray, g: np.ndarray, sc: np.ndarray) -> np.ndarray:
    """Jacobian of the noise-free pFIC network at its FIC fixed point, ``(B, 2N, 2N)`` [1/s].

    :func:`delssome_norms.model.stability.fic_jacobian` on numpy inputs; ``wee``, ``wei`` (B, N),
    ``g`` (B,), ``sc`` (N, N) unscaled (scaled to max 0.02 here).
    """
    wee = np.atleast_2d(np.asarray(wee, dtype=np.float64))
    wei = np.atleast_2d(np.asarray(wei, dtype=np.float64))
    g = np.atleast_1d(np.asarray(g, dtype=np.float64))
    jac = fic_jacobian(
        torch.from_numpy(wee),
        torch.from_numpy(wei),
        torch.from_numpy(g),
        torch.from_numpy(_scaled(sc)),
    )
    return jac.numpy()


def max_growth_rate(wee: np.ndarray, wei: np.ndarray, g: np.ndarray, sc: np.ndarray) -> np.ndarray:
    """Largest real part of the network Jacobian's eigenvalues [1/s], shape (B,).

    Negative: the FIC fixed point is stable and its slowest mode decays at that rate.
    """
    return np.linalg.eigvals(network_jacobian(wee, wei, g, sc)).real.max(axis=-1)


@dataclass(frozen=True)
class WEERule:
    """wEE that keeps the network at a fixed distance from instability, as a function of wEI.

    ``h(w)`` is the wEE for which the homogeneous network (every region wEI = w, wEE = h(w), the
    cohort's G, sigma-free) has its slowest mode decaying at ``margin`` [1/s]
    (:func:`max_growth_rate` = ``-margin``); it is tabulated on ``wei_grid`` and interpolated with
    a cubic spline. Simulated FC is realistic only near instability, and lower wEI (weaker
    inhibition) needs lower wEE to stay stable, so a person's regional wEE follows their wEI:
    ``wEE_i = h(a) + h'(a) (wEI_i - a)`` around their intercept ``a`` (linear in the gradient,
    i.e. inside the ``[1, gradient]`` parameterisation).
    """

    wei_grid: tuple[float, ...]
    wee: tuple[float, ...]
    margin: float
    G: float

    @property
    def _spline(self) -> Any:
        from scipy.interpolate import CubicSpline

        return CubicSpline(np.array(self.wei_grid), np.array(self.wee))

    def __call__(self, wei: np.ndarray | float) -> np.ndarray:
        """``h(wEI)``, same shape as ``wei``."""
        return self._spline(np.asarray(wei, dtype=np.float64))

    def derivative(self, wei: np.ndarray | float) -> np.ndarray:
        """``h'(wEI)``, same shape as ``wei``."""
        return self._spline(np.asarray(wei, dtype=np.float64), 1)

    def regional(self, intercept: np.ndarray, wei: np.ndarray) -> np.ndarray:
        """Regional wEE ``h(a) + h'(a) (wEI - a)``; ``intercept`` (P,), ``wei`` (P, N) -> (P, N)."""
        a = np.asarray(intercept, dtype=np.float64)[:, None]
        return self(a) + self.derivative(a) * (np.asarray(wei) - a)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WEERule:
        """Inverse of :meth:`to_dict`."""
        return cls(
            wei_grid=tuple(float(x) for x in data["wei_grid"]),
            wee=tuple(float(x) for x in data["wee"]),
            margin=float(data["margin"]),
            G=float(data["G"]),
        )


def fit_wee_rule(
    g: float, margin: float, sc: np.ndarray, grid: np.ndarray | None = None, tol: float = 1e-7
) -> WEERule:
    """Tabulate :class:`WEERule` by bisection on wEE in [0.5, 12] for every wEI of ``grid``.

    The growth rate increases with wEE (more recurrent excitation), so bisection is safe. It is
    written out (not :func:`scipy.optimize.brentq`) so that every grid point advances together,
    with one batched eigenvalue solve per step.

    Parameters
    ----------
    g : float
        Global coupling G.
    margin : float
        Decay rate [1/s] of the slowest mode to keep (``max_growth_rate = -margin``).
    sc : ndarray of shape (N, N)
        Unscaled SC (scaled to max 0.02 inside).
    grid : ndarray, optional
        wEI values to tabulate; default 0.2 to 5.0 every 0.2.
    tol : float
        Bracket width at which bisection stops (wEE units).

    Returns
    -------
    WEERule
    """
    grid = np.round(np.arange(0.2, 5.0001, 0.2), 10) if grid is None else np.asarray(grid, float)
    n = np.asarray(sc).shape[0]
    low = np.full(len(grid), 0.5)
    high = np.full(len(grid), 12.0)
    ones = np.ones((len(grid), n))
    while (high - low).max() > tol:
        mid = 0.5 * (low + high)
        rate = max_growth_rate(mid[:, None] * ones, grid[:, None] * ones, np.full(len(grid), g), sc)
        unstable = rate > -margin
        high = np.where(unstable, mid, high)
        low = np.where(unstable, low, mid)
    wee = 0.5 * (low + high)
    return WEERule(tuple(float(x) for x in grid), tuple(float(x) for x in wee), float(margin), float(g))
