"""Combining several runs of one subject: Fisher-z average of FC, plain mean of FCD-CDFs."""

from __future__ import annotations

import numpy as np

FISHER_CLIP = 1.0 - 1e-7
"""|r| is clipped below 1 before atanh so that perfect correlations stay finite (docs/science.md §1)."""


def fisher_z_mean(fcs: np.ndarray) -> np.ndarray:
    """Average correlation matrices in Fisher-z space.

    Parameters
    ----------
    fcs : ndarray of shape (n_runs, N, N)
        FC matrices of the runs.

    Returns
    -------
    ndarray of shape (N, N) with unit diagonal: ``tanh(mean(atanh(clip(fc))))``.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.array([[1.0, 0.5], [0.5, 1.0]])
    >>> float(fisher_z_mean(np.stack([a, a]))[0, 1])
    0.5
    """
    fcs = np.asarray(fcs, dtype=np.float64)
    z = np.arctanh(np.clip(fcs, -FISHER_CLIP, FISHER_CLIP))
    out = np.tanh(z.mean(axis=0))
    np.fill_diagonal(out, 1.0)
    return out


def mean_cdf(cdfs: np.ndarray) -> np.ndarray:
    """Average FCD-CDFs of several runs (n_runs, n_bins) -> (n_bins,), renormalised to end at 1."""
    out = np.asarray(cdfs, dtype=np.float64).mean(axis=0)
    return out / out[-1]
