"""Calibration diagnostics of a growth chart on held-out data.

A calibrated chart puts a fraction ``q`` of new people below its ``q``-th centile, and their
z-scores are standard normal. On a held-out table (people not used for fitting, from sites the
chart knows or has been adapted to), these functions report:

- :func:`calibration_table`: empirical fraction below each centile, per target;
- :func:`calibration_summary`: MACE (mean absolute calibration error over the centiles), the
  largest error, mean and SD of z and the Shapiro–Wilk test of z, per target;
- :func:`qq_points`: theoretical vs. sample quantiles of z, for a QQ plot.

Rows that the chart flags (unseen site, age out of range) or with missing values are left out
(counted in the result's ``attrs["left_out"]``; people of unseen sites with a warning). ``by``
splits the report by sex, age band and/or site: pooled over them, errors of opposite sign
cancel (a chart without sex terms, on a cohort with a sex effect: MACE 0.5-1.4 percentage points
pooled, 4.6 and 6.0 per sex). ``delssome-norms charts calibrate`` writes the summary.
People whose z is infinite (a value beyond the chart's numerical range: centile exactly 0 or 1)
or beyond :data:`Z_EXTREME` in size (e.g. a value of 1e300, a typo or a unit error) are kept:
they lie beyond every centile (z = +inf above the 99th, -inf below the 1st), and
:func:`calibration_summary` counts them (``n_extreme_z``, of which ``n_infinite_z`` infinite);
mean, SD and Shapiro–Wilk of z use the other z-scores only.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import special, stats

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.norms.chart import CENTILES, FLAG_AGE, FLAG_UNSEEN_SITE, GrowthChart

SHAPIRO_MAX_N = 5000
"""Shapiro–Wilk uses at most this many z-scores (a fixed random subset beyond it)."""
GROUPINGS = ("sex", "age", "site")
"""What ``by`` can split the calibration by: sex, age band (:data:`AGE_BANDS`) and site."""
AGE_BANDS: tuple[float, ...] = (0.0, 10.0, 20.0, 40.0, 60.0, 80.0, 120.0)
"""Default edges (years) of the age bands of ``by=["age"]``: [0, 10), [10, 20) ... [80, 120]."""
AGE_BAND_COLUMN = "age_band"
Z_EXTREME = 40.0
"""|z| beyond this is counted apart (``n_extreme_z``) and left out of z's mean, SD and
Shapiro–Wilk test. No centile lies there: a centile below 1 is at most 1 - 1.1e-16 (z 8.2)
and one above 0 at least 4.9e-324, the smallest double (z -38.5), and a real person beyond
|z| = 8 is a chance of 1e-15; a larger z comes from a value far outside the chart (e.g. 1e300,
a typo or unit error), whose square alone would overflow the SD."""


def _scores(
    chart: GrowthChart, table: pd.DataFrame, targets, source: str, **score_options: Any
) -> pd.DataFrame:
    """The held-out table scored (long layout), less the rows calibration cannot use.

    ``attrs["left_out"]`` counts the people left out: ``unseen_site`` (a site the chart does not
    know, or none: their scores use the population curves, so they would measure the site
    effect, not the chart), ``age_out_of_range`` and, per target, ``missing_value``; one
    :class:`InputWarning` names the first (``score``'s own, which says they get the population
    prediction, is not passed on)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scored = chart.score(table, targets=targets, layout="long", source=source, **score_options)
    for w in caught:  # all but the unseen-site warning of score(): those people are left out here
        if not (issubclass(w.category, InputWarning) and f"(flag {FLAG_UNSEEN_SITE})" in str(w.message)):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    n = len(table)
    flags = scored["flag"].astype(str)
    unseen = flags.str.contains(FLAG_UNSEEN_SITE).to_numpy().reshape(n, -1).any(1)
    age = flags.str.contains(FLAG_AGE).to_numpy().reshape(n, -1).any(1) & ~unseen
    bad = flags.str.contains(f"{FLAG_UNSEEN_SITE}|{FLAG_AGE}", regex=True).to_numpy()
    # a z of +-inf is a person beyond every centile (centile 1 or 0), not a missing score: dropping
    # them would hide a chart's failures at the extremes; NaN (missing value) is left out
    missing = ~bad & np.isnan(scored["z"].to_numpy())
    kept = scored[~bad & ~missing]
    left_out = {
        FLAG_UNSEEN_SITE: int(unseen.sum()),
        FLAG_AGE: int(age.sum()),
        "missing_value": int(missing.sum()),  # person-target values
    }
    if unseen.any():
        warnings.warn(
            f"{source}: {int(unseen.sum())} of {n} people are left out of the calibration: their "
            f"site is unknown to the chart or missing (flag {FLAG_UNSEEN_SITE}), so their scores "
            "would use the population-average curves and measure their site's offset rather "
            "than the chart; adapt the chart to their sites first (charts adapt) to include them",
            InputWarning,
            stacklevel=3,
        )
    if kept.empty:
        raise InvalidInputError(
            "no held-out person can be scored for calibration: every row is from a site the "
            "chart does not know (adapt it first), outside its age range, or missing values",
            source,
        )
    kept = kept.copy()
    kept.attrs["left_out"] = left_out
    return kept


def _group_keys(
    scored: pd.DataFrame, chart: GrowthChart, by, age_bands: Sequence[float] | None
) -> list[str]:
    """Add the grouping columns of ``by`` to ``scored`` (in place); the keys to group by."""
    if by is None:
        return []
    by = [by] if isinstance(by, str) else list(by)
    unknown = [b for b in by if b not in GROUPINGS]
    if unknown or len(set(by)) != len(by):
        raise InvalidInputError(
            f"by must list some of {', '.join(GROUPINGS)} once each; got {by!r}", "by"
        )
    keys = []
    for b in GROUPINGS:  # a fixed order: sex, age, site
        if b not in by:
            continue
        if b == "age":
            edges = np.asarray(AGE_BANDS if age_bands is None else age_bands, dtype=np.float64)
            if edges.ndim != 1 or edges.size < 2 or not np.all(np.diff(edges) > 0):
                raise InvalidInputError(
                    f"age_bands must be two or more increasing ages (years); got {age_bands!r}",
                    "age_bands",
                )
            labels = [f"{lo:g}-{hi:g}" for lo, hi in itertools.pairwise(edges)]
            band = pd.cut(scored["age_in_years"].astype(float), edges, right=False, labels=labels)
            last = scored["age_in_years"].astype(float).to_numpy() == edges[-1]  # closed on top
            band[last] = labels[-1]
            scored[AGE_BAND_COLUMN] = band
            keys.append(AGE_BAND_COLUMN)
        else:
            keys.append("sex" if b == "sex" else chart.site_column_)
    return keys


def _groups(scored: pd.DataFrame, keys: list[str]):
    """(key values, rows) per group and target, groups in sorted order, targets in chart order."""
    if not keys:
        for target, grp in scored.groupby("target", sort=False):
            yield {"target": target}, grp
        return
    for values, grp in scored.groupby(keys, sort=True, observed=True, dropna=True):
        values = values if isinstance(values, tuple) else (values,)
        for target, sub in grp.groupby("target", sort=False):
            yield {**dict(zip(keys, values)), "target": target}, sub


def calibration_table(
    chart: GrowthChart,
    table: pd.DataFrame,
    q: Sequence[float] = CENTILES,
    targets: Sequence[str] | None = None,
    source: str = "table",
    *,
    by: Sequence[str] | str | None = None,
    age_bands: Sequence[float] | None = None,
    **score_options: Any,
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
    by : sequence of {"sex", "age", "site"}, optional
        Report each sex, age band and/or site apart (default: everyone pooled). Pooling can
        hide miscalibration: a chart without sex terms fitted to a cohort with a sex effect
        was off by 0.5-1.4 percentage points pooled, by 4.6 (female) and 6.0 (male) per sex.
    age_bands : sequence of float, optional
        Edges (years) of the age bands of ``by="age"`` (default :data:`AGE_BANDS`); bands are
        ``[lo, hi)``, the last one closed; ages outside every band are left out of that split.
    **score_options
        Passed to :meth:`GrowthChart.score` (``provenance``, ``regions``,
        ``allow_pipeline_mismatch``).

    Returns
    -------
    pandas.DataFrame
        ``[sex, age_band, <site column>,] target, centile, nominal, empirical, error_pp, n``:
        nominal and empirical as fractions, ``error_pp`` = (empirical - nominal) in percentage
        points. ``attrs["left_out"]`` counts the people left out (``unseen_site``,
        ``age_out_of_range``) and the missing values (``missing_value``).
    """
    scored = _scores(chart, table, targets, source, **score_options)
    keys = _group_keys(scored, chart, by, age_bands)
    out = _calibration_rows(scored, q, keys)
    out.attrs["left_out"] = dict(scored.attrs["left_out"])
    return out


def _calibration_rows(
    scored: pd.DataFrame, q: Sequence[float], keys: Sequence[str] = ()
) -> pd.DataFrame:
    """:func:`calibration_table` of an already scored long table (grouped by ``keys``)."""
    q = np.asarray(q, dtype=np.float64)
    rows = []
    for key, grp in _groups(scored, list(keys)):
        c = grp["centile"].to_numpy()
        emp = (c[:, None] < q[None, :] / 100.0).mean(0)
        for qq, e in zip(q, emp):
            rows.append(
                {
                    **key,
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
    *,
    by: Sequence[str] | str | None = None,
    age_bands: Sequence[float] | None = None,
    **score_options: Any,
) -> pd.DataFrame:
    """Per-target calibration summary on held-out data (per group with ``by``).

    Parameters
    ----------
    q : sequence of float, optional
        Centiles (percent) over which MACE is averaged; default 1, 2, ..., 99.
    by, age_bands, **score_options
        As for :func:`calibration_table`.

    Returns
    -------
    pandas.DataFrame
        ``[sex, age_band, <site column>,] target, n, n_infinite_z, n_extreme_z, mace_pp,
        max_error_pp, z_mean, z_sd, shapiro_w, shapiro_p`` (errors in percentage points). ``n``
        counts every scored person, ``n_extreme_z`` those whose |z| is beyond
        :data:`Z_EXTREME` (40) or infinite, ``n_infinite_z`` the infinite ones among them: they
        enter the calibration errors (beyond every centile) but not ``z_mean``, ``z_sd`` and the
        Shapiro–Wilk test, which use the other z-scores. ``attrs["left_out"]``: as for
        :func:`calibration_table`.
    """
    scored = _scores(chart, table, targets, source, **score_options)  # once: warnings shown once
    out = _summary_rows(scored, q, _group_keys(scored, chart, by, age_bands))
    out.attrs["left_out"] = dict(scored.attrs["left_out"])
    return out


def _summary_rows(
    scored: pd.DataFrame, q: Sequence[float] | None, keys: Sequence[str] = ()
) -> pd.DataFrame:
    """:func:`calibration_summary` of an already scored long table (grouped by ``keys``)."""
    q = np.arange(1.0, 100.0) if q is None else np.asarray(q, dtype=np.float64)
    rng = np.random.default_rng(0)
    rows = []
    for key, grp in _groups(scored, list(keys)):
        c = grp["centile"].to_numpy()
        err = 100.0 * ((c[:, None] < q[None, :] / 100.0).mean(0) - q / 100.0)
        z_all = grp["z"].to_numpy()
        extreme = np.abs(z_all) > Z_EXTREME  # infinite ones included
        z = z_all[~extreme & np.isfinite(z_all)]
        sub = z if z.size <= SHAPIRO_MAX_N else rng.choice(z, SHAPIRO_MAX_N, replace=False)
        w, p = stats.shapiro(sub) if sub.size >= 3 else (np.nan, np.nan)
        rows.append(
            {
                **key,
                "n": int(z_all.size),
                "n_infinite_z": int(np.isinf(z_all).sum()),
                "n_extreme_z": int(extreme.sum()),
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
