"""Benjamini–Hochberg false-discovery-rate control, as arrays and on tidy tables."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from statsmodels.stats.multitest import multipletests

from delssome_norms.errors import InvalidInputError


def fdr_bh(pvalues: ArrayLike, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg step-up procedure.

    Parameters
    ----------
    pvalues : array-like of shape (m,)
        P-values in [0, 1]; NaN entries are ignored (they stay NaN and are not rejected).
    alpha : float
        FDR level.

    Returns
    -------
    reject : ndarray of bool, shape (m,)
    p_adjusted : ndarray of shape (m,)
        BH-adjusted p-values, ``min_{j >= i} m p_(j) / j`` capped at 1, in the input order.
    """
    p = np.asarray(pvalues, dtype=np.float64).ravel()
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must lie in (0, 1), got {alpha}", "alpha")
    ok = np.isfinite(p)
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise InvalidInputError("p-values must lie in [0, 1]", "pvalues")
    reject = np.zeros(p.shape, dtype=bool)
    adjusted = np.full(p.shape, np.nan)
    if ok.any():
        rej, adj, _, _ = multipletests(p[ok], alpha=alpha, method="fdr_bh")
        reject[ok] = rej
        adjusted[ok] = adj
    return reject, adjusted


def add_fdr(
    table: pd.DataFrame,
    by: Sequence[str] = ("test", "family"),
    *,
    alpha: float = 0.05,
    p_col: str = "p",
) -> pd.DataFrame:
    """Add ``p_fdr`` and ``significant`` columns, applying BH separately within each ``by`` group.

    Parameters
    ----------
    table : DataFrame
        Tidy test results with a p-value column.
    by : sequence of str
        Grouping columns (those absent from ``table`` are ignored; none left: one group), e.g.
        one test across the 68 regions.
    alpha : float
        FDR level.
    p_col : str
        The p-value column.

    Returns
    -------
    DataFrame
        A copy of ``table`` with ``p_fdr`` (BH-adjusted p) and ``significant`` (bool) added.
    """
    if not isinstance(table, pd.DataFrame):
        raise InvalidInputError(f"expected a pandas DataFrame, got {type(table).__name__}", "table")
    if p_col not in table.columns:
        raise InvalidInputError(f"missing p-value column {p_col!r}", "table")
    out = table.copy()
    out["p_fdr"] = np.nan
    out["significant"] = False
    by = [c for c in by if c in out.columns]
    groups = out.groupby(by, sort=False).groups.values() if by else [out.index]
    for idx in groups:
        reject, adjusted = fdr_bh(out.loc[idx, p_col].to_numpy(), alpha)
        out.loc[idx, "p_fdr"] = adjusted
        out.loc[idx, "significant"] = reject
    out["significant"] = out["significant"].astype(bool)
    return out
