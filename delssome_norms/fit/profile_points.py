"""The profile points of a fit's interval stage: the winner, points along the search's
longest axis and points of the wEI level (:mod:`delssome_norms.fit.uncertainty` scores them).
"""

from __future__ import annotations

import math

import numpy as np

from delssome_norms.fit.cmaes import CMAESSearch
from delssome_norms.fit.parameterisation import Parameterisation

PROFILE_AXIS_STEPS = (1.0, 2.0, 4.0, 8.0)
"""Profile steps along the CMA-ES principal axis [search standard deviations], both signs."""
WEI_SCALE_STEPS = (0.05, 0.10)
"""Relative changes of the wEI level (all wEI coefficients scaled by 1 +- step), both signs."""
KIND_WINNER, KIND_AXIS, KIND_WEI = 0, 1, 2
"""Row kinds of the ``profile`` stage."""


def principal_step(search: CMAESSearch, generation: int | None = None) -> np.ndarray:
    """One standard deviation of the search distribution along its longest axis in the search's
    own scaled coordinates (pycma's covariance ``C``, before the per-coefficient scaling
    ``D = sigma_vec``): the step reaches Mahalanobis distance 1 of the distribution pycma
    samples from (``sigma^2 D C D``), so profile points at 1, 2, 4, 8 steps lie on its 1, 2, 4,
    8-SD ellipsoids. The axis is taken where the coefficients are on CMA-ES's common scale, not
    in raw units (where the coefficient of largest units, wEE's, would always dominate).

    Parameters
    ----------
    search : CMAESSearch
        The (finished) search; its pycma strategy's ``sigma``, ``C`` and ``sigma_vec`` are read.
    generation : int, optional
        The winner's train generation: the strategy that drew it is used
        (:meth:`CMAESSearch.strategy_for`: after a restart the current one may have a fresh,
        isotropic covariance); None: the current strategy.

    Returns
    -------
    ndarray of shape (n_coeffs,)
        ``sigma * sqrt(lambda_max) * D e_max`` in coefficient units (sign: positive wEI
        component, so "+" raises the wEI level).
    """
    pick = getattr(search, "strategy_for", None)
    es = search.es if generation is None or pick is None else pick(int(generation))
    c = np.asarray(es.C, dtype=np.float64)
    vals, vecs = np.linalg.eigh(0.5 * (c + c.T))
    e = vecs[:, -1] * math.sqrt(max(float(vals[-1]), 0.0))
    scaling = np.asarray(getattr(es.sigma_vec, "scaling", 1.0), dtype=np.float64)
    step = float(es.sigma) * scaling * e
    p = (len(step) - 1) // 3
    if step[p : 2 * p].sum() < 0:
        step = -step
    return step


EDGE_POINTS = 31
"""Points between the last admissible grid point and the first inadmissible one that locate the
edge of the space (to 1/32 of that interval, in one batched check)."""


def profile_candidates(
    coeffs: np.ndarray, step: np.ndarray, space: Parameterisation, stability_gate: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The winner and its profile points, kept inside the search space (and the stable region).

    Along each signed direction the points are taken in increasing distance; the first one that
    leaves the space (or, with the gate, the FIC-stable region) is moved back to the last
    admissible position between it and the previous point (``EDGE_POINTS`` checked at once), and
    that side ends there: the profile brackets the near-optimal set or stops at the edge of what
    the fit may return.

    Parameters
    ----------
    coeffs : ndarray of shape (n_coeffs,)
        The winner.
    step : ndarray of shape (n_coeffs,)
        From :func:`principal_step`.
    space : Parameterisation
    stability_gate : bool
        Keep points with a stable FIC fixed point only.

    Returns
    -------
    candidates : ndarray of shape (M, n_coeffs)
        Row 0 is the winner (always kept).
    kind : ndarray of int64, shape (M,)
        ``KIND_WINNER``, ``KIND_AXIS`` or ``KIND_WEI``.
    position : ndarray of shape (M,)
        Signed step (axis: standard deviations; wEI: relative change).
    dropped : int
        Grid points not simulated (beyond the edge).
    """
    coeffs = np.asarray(coeffs, dtype=np.float64)
    p = (len(coeffs) - 1) // 3
    gate = stability_gate and space.fic_sc is not None

    def admissible(c: np.ndarray) -> np.ndarray:
        ok = space.is_valid(c)
        if gate and ok.any():
            ok[ok] = space.fic_stable(space.to_regional(c[ok]))
        return ok

    def along(direction: np.ndarray, grid: tuple[float, ...]) -> tuple[list, list, int]:
        ok = admissible(coeffs + np.asarray(grid)[:, None] * direction)
        n = int(np.argmin(ok)) if not ok.all() else len(grid)  # first inadmissible grid point
        rows = [coeffs + t * direction for t in grid[:n]]
        pos = list(grid[:n])
        if n == len(grid):
            return rows, pos, 0
        prev = grid[n - 1] if n else 0.0
        fine = prev + (grid[n] - prev) * np.arange(1, EDGE_POINTS + 1) / (EDGE_POINTS + 1)
        inside = admissible(coeffs + fine[:, None] * direction)
        run = int(np.argmin(inside)) if not inside.all() else len(fine)  # contiguous from prev
        if run:
            rows.append(coeffs + fine[run - 1] * direction)
            pos.append(float(fine[run - 1]))
        return rows, pos, len(grid) - n - (1 if run else 0)

    wei = np.zeros_like(coeffs)
    wei[p : 2 * p] = coeffs[p : 2 * p]  # c + f * wei scales the wEI coefficients by 1 + f
    rows, kinds, pos, dropped = [coeffs], [KIND_WINNER], [0.0], 0
    for direction, grid, kind in (
        (step, PROFILE_AXIS_STEPS, KIND_AXIS),
        (wei, WEI_SCALE_STEPS, KIND_WEI),
    ):
        for sign in (-1.0, 1.0):
            r, t, d = along(sign * direction, grid)
            rows += r
            pos += [sign * x for x in t]
            kinds += [kind] * len(r)
            dropped += d
    return np.stack(rows), np.asarray(kinds, np.int64), np.asarray(pos), dropped
