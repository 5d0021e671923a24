"""Stratified non-parametric bootstrap helpers (resampling people as frequency weights)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from delssome_norms.errors import InvalidInputError


def stratified_bootstrap_counts(
    strata: np.ndarray, n_boot: int, rng: np.random.Generator | Sequence[np.random.Generator]
) -> np.ndarray:
    """Bootstrap resamples as counts: each stratum is resampled with replacement to its own size.

    Parameters
    ----------
    strata : ndarray of shape (n,)
        Stratum label of each person (e.g. sex, or sex x site).
    n_boot : int
        Number of resamples.
    rng : numpy.random.Generator or sequence of them
        One generator for all resamples, or one per resample (``n_boot`` of them): then each
        resample depends on its own generator only, so resamples drawn in batches of any size
        are the same (:func:`resample_generators`).

    Returns
    -------
    ndarray of float64, shape (n, n_boot)
        How often each person is drawn in each resample; every column sums, within every
        stratum, to the stratum's size.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InvalidInputError(f"n_boot must be an integer >= 1, got {n_boot!r}", "n_boot")
    strata = np.asarray(strata)
    counts = np.zeros((strata.size, n_boot))
    groups = [np.flatnonzero(strata == label) for label in np.unique(strata)]
    if isinstance(rng, np.random.Generator):
        for members in groups:
            draws = rng.integers(0, members.size, size=(n_boot, members.size))
            for b in range(n_boot):
                counts[members, b] = np.bincount(draws[b], minlength=members.size)
        return counts
    if len(rng) != n_boot:
        raise InvalidInputError(f"expected {n_boot} generators, got {len(rng)}", "rng")
    for b, gen in enumerate(rng):
        for members in groups:
            draws = gen.integers(0, members.size, size=members.size)
            counts[members, b] = np.bincount(draws, minlength=members.size)
    return counts


def resample_generators(seed: int | None, n_boot: int) -> list[np.random.Generator]:
    """One independent generator per bootstrap resample, derived from ``seed``.

    Uses numpy's ``SeedSequence.spawn``, so resample k is the same however the resamples are
    batched.

    Parameters
    ----------
    seed : int or None
        Root seed (``None``: fresh entropy).
    n_boot : int
        Number of resamples.

    Returns
    -------
    list of numpy.random.Generator
        ``n_boot`` generators.
    """
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_boot)]


def percentile_interval(
    samples: np.ndarray, level: float = 0.95, axis: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval: the (1 - level)/2 and (1 + level)/2 quantiles along ``axis``.

    Parameters
    ----------
    samples : ndarray
        Bootstrap replicates, one per position along ``axis``.
    level : float
        Coverage, in (0, 1).
    axis : int
        Axis of the replicates.

    Returns
    -------
    low, high : ndarray
        ``samples``' shape without ``axis``.
    """
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must lie in (0, 1), got {level}", "level")
    lo, hi = np.quantile(samples, [(1.0 - level) / 2.0, (1.0 + level) / 2.0], axis=axis)
    return lo, hi


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Median of each column of ``values`` with frequency ``weights``.

    The lower weighted median (the smallest value whose cumulative weight reaches half the total),
    averaged with the next value when the cumulative weight hits exactly one half, which for unit
    weights is the usual median. Hand-written because numpy's weighted quantile
    (``method="inverted_cdf"``) returns the lower median without that averaging and scipy has no
    weighted median; this one is vectorised over the columns (bootstrap replicates).

    Parameters
    ----------
    values : ndarray of shape (n, k)
    weights : ndarray of shape (n, k), or broadcastable to it
        Non-negative frequency weights (e.g. bootstrap counts).

    Returns
    -------
    ndarray of shape (k,)

    Raises
    ------
    InvalidInputError
        ``values`` is not 2-D with at least one row; ``weights`` does not
        broadcast to it, is negative or not finite, or sums to 0 in a column.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise InvalidInputError(f"must have shape (n, k) with n >= 1, got {values.shape}", "values")
    try:
        weights = np.broadcast_to(np.asarray(weights, dtype=np.float64), values.shape)
    except ValueError:
        raise InvalidInputError(
            f"shape {np.shape(weights)} does not broadcast to the values' {values.shape}", "weights"
        ) from None
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise InvalidInputError("frequency weights must be finite and >= 0", "weights")
    if (weights.sum(axis=0) <= 0).any():
        raise InvalidInputError("every column needs a positive total weight", "weights")
    order = np.argsort(values, axis=0)
    v = np.take_along_axis(values, order, axis=0)
    w = np.take_along_axis(weights, order, axis=0)
    cw = np.cumsum(w, axis=0)
    half = 0.5 * cw[-1]
    lo = np.argmax(cw >= half - 1e-9 * cw[-1], axis=0)
    cols = np.arange(v.shape[1])
    exact = np.abs(cw[lo, cols] - half) <= 1e-9 * cw[-1]
    hi = np.where(exact, np.argmax(cw > half + 1e-9 * cw[-1], axis=0), lo)
    return 0.5 * (v[lo, cols] + v[hi, cols])
