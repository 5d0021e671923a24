"""Shape of the standardised residuals: when the likelihood-ratio test of variability fails.

The likelihood-ratio (and model-based Wald) test of sex in the log-sd assumes normal errors: its
statistic's variance grows with the residuals' excess kurtosis ``k`` by about ``1 + k / 2``, so at
alpha 0.05 it rejects a true null about ``2 Phi(-1.96 / sqrt(1 + k / 2))`` of the time: 10.9 % at
``k = 1``. Measured over null cohorts of 600 people (4 sites, 50 regions, 500-1000 tests each):
t10 noise (k = 1) 10.2 % (11.2 % at 2000 people), t5 (k = 6) 25.6 %, t3 38.2 %, a lognormal
(skewness 2.3, k 10) 30.6 %; normal noise 5.3 %, mildly skewed noise like the packaged reference
cohort's (skewness 0.36, k 0.23) 5.8 %. The Brown-Forsythe test stayed at 3.6-7.0 % (normal, t5
and lognormal noise, with sex balanced or confounded with age or site) and the sandwich (robust
Wald) scale test at 5.6-12 %.

A target is flagged when the excess kurtosis of its standardised residuals exceeds
:data:`KURTOSIS_LIMIT` (1: a size of about 10 % at alpha 0.05) or its skewness exceeds
:data:`SKEWNESS_LIMIT` in absolute value (1: gamma-like skewed shapes with skewness 1 have excess
kurtosis 1.5). One warning names how many targets are flagged when they are at least
:data:`SHARE_LIMIT` of the targets (10 %): with normal residuals the sample kurtosis of 120
people exceeds 1 for 2.7 % of targets by chance (0.5 % at 300, none at 600), so a stray flagged
region among 68 says little, while t10 noise flags 30-35 % of them and t5 69-96 %.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import stats

KURTOSIS_LIMIT = 1.0
"""Excess kurtosis of the standardised residuals above which the LR variability test is flagged."""
SKEWNESS_LIMIT = 1.0
"""Absolute skewness of the standardised residuals above which the LR variability test is flagged."""
SHARE_LIMIT = 0.1
"""Least share of the targets flagged for the one warning."""


class HeavyTailWarning(UserWarning):
    """The residuals are too heavy-tailed or skewed for the normal-theory test of variability."""


def residual_shape(std_resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Skewness and excess kurtosis (bias-corrected sample estimates) of each column.

    Parameters
    ----------
    std_resid : ndarray of shape (n, k)
        Standardised residuals, one column per target.

    Returns
    -------
    skewness, excess_kurtosis : ndarray of shape (k,)
        NaN for a column that holds non-finite values (a fit that diverged) or is constant.
    """
    r = np.asarray(std_resid, dtype=np.float64)
    skew = np.full(r.shape[1], np.nan)
    kurt = np.full(r.shape[1], np.nan)
    with np.errstate(invalid="ignore"):
        good = np.isfinite(r).all(axis=0) & (np.ptp(r, axis=0) > 0) & (r.shape[0] > 3)
    if np.any(good):
        with np.errstate(all="ignore"):
            skew[good] = stats.skew(r[:, good], axis=0, bias=False)
            kurt[good] = stats.kurtosis(r[:, good], axis=0, bias=False)
    return skew, kurt


def heavy_tailed(skew: np.ndarray, kurt: np.ndarray) -> np.ndarray:
    """Which targets' residuals are too heavy-tailed or skewed for the LR variability test."""
    with np.errstate(invalid="ignore"):
        return (np.asarray(kurt) > KURTOSIS_LIMIT) | (np.abs(np.asarray(skew)) > SKEWNESS_LIMIT)


def warn_heavy_tails(
    targets: Sequence[str],
    skew: np.ndarray,
    kurt: np.ndarray,
    test: str,
    *,
    stacklevel: int = 3,
    of_total: int | None = None,
) -> None:
    """One :class:`HeavyTailWarning` when at least :data:`SHARE_LIMIT` of the targets are flagged
    by :func:`heavy_tailed`, naming how many, their median excess kurtosis and what to use
    (``of_total``: the number of targets tested, when ``targets`` are those whose fits converged)."""
    flagged = heavy_tailed(skew, kurt)
    n_flagged = int(flagged.sum())
    if n_flagged == 0 or n_flagged < SHARE_LIMIT * len(targets):
        return
    names = [t for t, bad in zip(targets, flagged) if bad]
    shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
    warnings.warn(
        f"sex_difference_tests: the standardised residuals of {n_flagged} of {len(targets)} "
        + (
            f"target(s) whose fits converged (of {of_total})"
            if of_total is not None and of_total != len(targets)
            else "target(s)"
        )
        + f" ({shown}) are heavy-tailed or skewed (excess kurtosis above "
        f"{KURTOSIS_LIMIT:g} or |skewness| above {SKEWNESS_LIMIT:g}; median excess kurtosis "
        f"{float(np.nanmedian(np.asarray(kurt)[flagged])):.2g}), so their likelihood-ratio test "
        f"of variability ({test}) rejects too often (simulated at alpha 0.05: 10 % at excess "
        "kurtosis 1, 25-38 % with t5 or t3 noise); read the variability from the brown_forsythe "
        "rows or method='robust_wald'",
        HeavyTailWarning,
        stacklevel=stacklevel,
    )
