"""Differences in variability between two groups: the Brown–Forsythe test and spread ratios."""

from __future__ import annotations

import numpy as np
from scipy import stats

from delssome_norms.stats.effect_sizes import check_groups


def brown_forsythe(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    """Brown–Forsythe test of equal spread (Levene's test with median centring).

    Parameters
    ----------
    a, b : ndarray of shape (n_a,), (n_b,)
        The two groups (e.g. age-adjusted residuals of females and of males).

    Returns
    -------
    statistic : float
        The F statistic, with (1, n_a + n_b - 2) degrees of freedom.
    p : float
    spread_ratio : float
        Mean absolute deviation from the group median, ``a`` over ``b`` (> 1: ``a`` more variable).

    Raises
    ------
    InvalidInputError
        A group has fewer than 2 values or holds NaN/inf.
    """
    a, b = check_groups(a, b)
    res = stats.levene(a, b, center="median")
    ratio = np.mean(np.abs(a - np.median(a))) / np.mean(np.abs(b - np.median(b)))
    return float(res.statistic), float(res.pvalue), float(ratio)
