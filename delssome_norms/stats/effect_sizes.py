"""Standardised effect sizes for two-group (female vs male) comparisons."""

from __future__ import annotations

import numpy as np
from scipy import stats

from delssome_norms.errors import InvalidInputError


def check_groups(a: np.ndarray, b: np.ndarray, min_size: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` as finite float64 vectors of at least ``min_size`` values each.

    Raises
    ------
    InvalidInputError
        A group is not numeric, not one-dimensional, too small, or holds NaN/inf.
    """
    out = []
    for name, x in (("a", a), ("b", b)):
        try:
            v = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"must be numbers, got {type(x).__name__}", name) from None
        if v.ndim != 1:
            raise InvalidInputError(f"must be one-dimensional, got shape {v.shape}", name)
        if v.size < min_size:
            raise InvalidInputError(f"needs at least {min_size} values, got {v.size}", name)
        if not np.isfinite(v).all():
            raise InvalidInputError("contains NaN or inf", name)
        out.append(v)
    return out[0], out[1]


def cohens_d(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Cohen's d of ``a`` minus ``b`` with a normal-approximation confidence interval.

    ``d = (mean(a) - mean(b)) / s_pooled`` with ``s_pooled^2 = ((n_a-1) s_a^2 + (n_b-1) s_b^2) /
    (n_a + n_b - 2)``; ``se(d) = sqrt((n_a + n_b) / (n_a n_b) + d^2 / (2 (n_a + n_b)))``
    (Hedges & Olkin 1985). Hand-written because scipy has no Cohen's d and statsmodels'
    ``meta_analysis.effectsize_smd`` returns the bias-corrected Hedges' g instead.

    Parameters
    ----------
    a, b : ndarray of shape (n_a,), (n_b,)
        The two groups (e.g. female and male residuals).
    level : float
        Confidence level of the interval.

    Returns
    -------
    d, ci_low, ci_high : float

    Raises
    ------
    InvalidInputError
        A group has fewer than 2 values or holds NaN/inf, or ``level`` is not in (0, 1).
    """
    a, b = check_groups(a, b)
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must lie in (0, 1), got {level}", "level")
    na, nb = a.size, b.size
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    d = float((a.mean() - b.mean()) / pooled)
    se = np.sqrt((na + nb) / (na * nb) + d * d / (2.0 * (na + nb)))
    z = stats.norm.ppf(0.5 + level / 2.0)
    return d, float(d - z * se), float(d + z * se)
