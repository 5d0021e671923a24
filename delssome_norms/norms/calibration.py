"""Calibration diagnostics of a growth chart on held-out data.

A calibrated chart puts a fraction ``q`` of new people below its ``q``-th centile, and their
z-scores are standard normal. On a held-out table (people not used for fitting, from sites the
chart knows or has been adapted to), these functions report:

- :func:`calibration_table`: empirical fraction below each centile, per target;
- :func:`calibration_summary`: MACE (mean absolute calibration error over the centiles), the
  largest error, mean and SD of z and the Shapiro–Wilk test of z, per target;
- :func:`qq_points`: theoretical vs. sample quantiles of z, for a QQ plot.

Rows that the chart flags (unseen site, age out of range) or with missing values are left out.
People whose z is infinite (a value beyond the chart's numerical range: centile exactly 0 or 1)
are kept: they lie beyond every centile (z = +inf above the 99th, -inf below the 1st), and
:func:`calibration_summary` counts them (``n_infinite_z``); mean, SD and Shapiro–Wilk of z use the
finite z-scores only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special, stats

from delssome_norms.errors import InvalidInputError
from delssome_norms.norms.chart import CENTILES, FLAG_AGE, FLAG_UNSEEN_SITE, GrowthChart

SHAPIRO_MAX_N = 5000
"""Shapiro–Wilk uses at most this many z-scores (a fixed random subset beyond it)."""


def _scores(chart: GrowthChart, table: pd.DataFrame, targets, source: str):
    scored = chart.score(table, targets=targets, layout="long", source=source)
    bad = scored["flag"].str.contains(f"{FLAG_UNSEEN_SITE}|{FLAG_AGE}", regex=True)
    # a z of +-inf is a person beyond every centile (centile 1 or 0), not a missing score: dropping
    # them would hide a chart's failures at the extremes; NaN (missing value) is left out
    kept = scored[~bad & ~np.isnan(scored["z"].to_numpy())]
    if kept.empty:
        raise InvalidInputError(
            "no held-out person can be scored for calibration: every row is from a site the "
            "chart does not know (adapt it first), outside its age range, or missing values",
            source,
        )
    return kept


def calibration_table(
    chart: GrowthChart,
    table: pd.DataFrame,
    q: Sequence[float] = CENTILES,
    targets: Sequence[str] | None = None,
    source: str = "table",
) -> pd.DataFrame:
    """Empirical fraction of held-out people below each centile.

    Parameters
    ----------
    chart : GrowthChart
        A fitted chart.
    table : pandas.DataFrame
        Held-out people (as for :meth:`GrowthChart.score`).
    q : sequence of float
        Centiles in percent.
    targets : sequence of str, optional
    source : str

    Returns
    -------
    pandas.DataFrame
        ``target, centile, nominal, empirical, error_pp, n``: nominal and empirical as fractions,
        ``error_pp`` = (empirical - nominal) in percentage points.
    """
    return _calibration_rows(_scores(chart, table, targets, source), q)


def _calibration_rows(scored: pd.DataFrame, q: Sequence[float]) -> pd.DataFrame:
    """:func:`calibration_table` of an already scored long table."""
    q = np.asarray(q, dtype=np.float64)
    rows = []
    for target, grp in scored.groupby("target", sort=False):
        c = grp["centile"].to_numpy()
        emp = (c[:, None] < q[None, :] / 100.0).mean(0)
        for qq, e in zip(q, emp):
            rows.append(
                {
                    "target": target,
                    "centile": qq,
                    "nominal": qq / 100.0,
                    "empirical": float(e),
                    "error_pp": float(100.0 * (e - qq / 100.0)),
                    "n": int(c.size),
                }
            )
    return pd.DataFrame(rows)


def calibration_summary(
    chart: GrowthChart,
    table: pd.DataFrame,
    q: Sequence[float] | None = None,
    targets: Sequence[str] | None = None,
    source: str = "table",
) -> pd.DataFrame:
    """Per-target calibration summary on held-out data.

    Parameters
    ----------
    q : sequence of float, optional
        Centiles (percent) over which MACE is averaged; default 1, 2, ..., 99.

    Returns
    -------
    pandas.DataFrame
        ``target, n, n_infinite_z, mace_pp, max_error_pp, z_mean, z_sd, shapiro_w, shapiro_p``
        (errors in percentage points). ``n`` counts every scored person, ``n_infinite_z`` those
        whose z is +-inf: they enter the calibration errors (beyond every centile) but not
        ``z_mean``, ``z_sd`` and the Shapiro–Wilk test, which use the finite z-scores.
    """
    q = np.arange(1.0, 100.0) if q is None else np.asarray(q, dtype=np.float64)
    scored = _scores(chart, table, targets, source)  # once: its warnings are shown once
    cal = _calibration_rows(scored, q)
    rng = np.random.default_rng(0)
    rows = []
    for target, grp in scored.groupby("target", sort=False):
        z_all = grp["z"].to_numpy()
        z = z_all[np.isfinite(z_all)]
        sub = z if z.size <= SHAPIRO_MAX_N else rng.choice(z, SHAPIRO_MAX_N, replace=False)
        w, p = stats.shapiro(sub) if sub.size >= 3 else (np.nan, np.nan)
        err = cal.loc[cal["target"] == target, "error_pp"].to_numpy()
        rows.append(
            {
                "target": target,
                "n": int(z_all.size),
                "n_infinite_z": int(z_all.size - z.size),
                "mace_pp": float(np.mean(np.abs(err))),
                "max_error_pp": float(np.max(np.abs(err))),
                "z_mean": float(np.mean(z)) if z.size else np.nan,
                "z_sd": float(np.std(z, ddof=1)) if z.size > 1 else np.nan,
                "shapiro_w": float(w),
                "shapiro_p": float(p),
            }
        )
    return pd.DataFrame(rows)


def qq_points(z, n_points: int | None = 200) -> pd.DataFrame:
    """Theoretical (standard normal) vs. sample quantiles of z-scores.

    Parameters
    ----------
    z : array-like of shape (n,)
        z-scores (NaN are dropped).
    n_points : int or None
        Number of evenly spaced plotting positions (None: one per value).

    Returns
    -------
    pandas.DataFrame with columns ``theoretical`` and ``sample``.
    """
    z = np.sort(np.asarray(z, dtype=np.float64)[np.isfinite(z)])
    n = z.size
    if n == 0:
        return pd.DataFrame({"theoretical": [], "sample": []})
    probs = (np.arange(1, n + 1) - 0.5) / n  # Hazen plotting positions
    if n_points is not None and n > n_points:
        probs = (np.arange(1, n_points + 1) - 0.5) / n_points
        sample = np.quantile(z, probs)
    else:
        sample = z
    return pd.DataFrame({"theoretical": special.ndtri(probs), "sample": sample})
