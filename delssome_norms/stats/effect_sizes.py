"""Standardised effect sizes for two-group (female vs male) comparisons."""

from __future__ import annotations

import numpy as np
from scipy import stats


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
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na, nb = a.size, b.size
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    d = float((a.mean() - b.mean()) / pooled)
    se = np.sqrt((na + nb) / (na * nb) + d * d / (2.0 * (na + nb)))
    z = stats.norm.ppf(0.5 + level / 2.0)
    return d, float(d - z * se), float(d + z * se)
