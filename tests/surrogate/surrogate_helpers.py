"""Helpers shared by the surrogate tests."""

from __future__ import annotations

import numpy as np


def random_subjects(n: int, bins: int, k: int, seed: int = 0):
    """FC (k, n, n) of random time series with a shared signal, FCD-CDFs (k, bins) and a symmetric
    SC (n, n) with a zero diagonal."""
    rng = np.random.default_rng(seed)
    fc = np.empty((k, n, n))
    for i in range(k):
        ts = rng.standard_normal((50, n)) + rng.standard_normal((50, 1))
        fc[i] = np.corrcoef(ts.T)
    cdf = np.cumsum(rng.uniform(0, 1, (k, bins)), axis=1)
    cdf /= cdf[:, -1:]
    sc = rng.uniform(0, 1, (n, n))
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0)
    return fc, cdf, sc
