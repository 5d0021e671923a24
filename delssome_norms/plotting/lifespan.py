"""Lifespan centile figure from reference-format centile tables (both sexes on one axes)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.ei_table import MEAN_TARGET
from delssome_norms.plotting._style import AGE_LABEL, SEX_COLORS, check_max_points, new_axes
from delssome_norms.stats._cohort import sex_labels

_CENTILE = re.compile(r"^C(\d+(?:\.\d+)?)$")


def _centile_columns(table: pd.DataFrame, name: str) -> dict[float, str]:
    if not isinstance(table, pd.DataFrame):
        raise InvalidInputError(f"expected a pandas DataFrame, got {type(table).__name__}", name)
    if table.empty:
        raise InvalidInputError("the centile table has no rows (no ages to draw)", name)
    if "age_in_years" not in table.columns:
        raise InvalidInputError("missing column 'age_in_years'", name)
    cols = {float(m.group(1)): c for c in table.columns if (m := _CENTILE.match(str(c)))}
    if 50.0 not in cols:
        raise InvalidInputError(
            f"missing the median column 'C50' (centile columns found: {sorted(cols) or 'none'})", name
        )
    text = [c for c in ("age_in_years", *cols.values()) if not pd.api.types.is_numeric_dtype(table[c])]
    if text:
        raise InvalidInputError(f"column(s) {', '.join(map(repr, text))} must hold numbers", name)
    return cols


def plot_lifespan_centiles(
    centiles_female: pd.DataFrame,
    centiles_male: pd.DataFrame,
    data: pd.DataFrame | None = None,
    ax: Axes | None = None,
    *,
    target: str = MEAN_TARGET,
    max_points: int = 4000,
    seed: int = 0,
    ylabel: str = "E/I ratio",
    title: str | None = None,
) -> Figure:
    """Population centile curves of both sexes on one axes, optionally over the data.

    Each sex's centile pairs (C2.5/C97.5, C5/C95, C25/C75) are drawn as nested bands, darker
    towards the middle, with the median (C50) as a solid line. This reads the reference CSV
    format (``female_population_centiles.csv``: ``age_in_years``, ``C2.5`` … ``C97.5``); for a
    fitted :class:`~delssome_norms.norms.GrowthChart` (one panel per sex, harmonised data) use
    :func:`delssome_norms.plotting.charts.plot_chart_centiles`; this one overlays both sexes.

    Parameters
    ----------
    centiles_female, centiles_male : DataFrame
        Centile tables with ``age_in_years`` and ``C<q>`` columns (at least ``C50``).
    data : DataFrame, optional
        People to draw as points: ``age_in_years``, ``sex`` (or ``numeric_sex``) and ``target``.
    ax : Axes, optional
    target : str
        Column of ``data`` to draw.
    max_points : int
        At most this many people are drawn (random subset).
    seed : int
        Seed of that subset.
    ylabel : str
        y-axis label.
    title : str, optional
        Axes title.

    Returns
    -------
    Figure
    """
    max_points = check_max_points(max_points)
    tables = {"female": centiles_female, "male": centiles_male}
    columns = {sex: _centile_columns(t, f"centiles_{sex}") for sex, t in tables.items()}
    fig, ax = new_axes(ax, (7.0, 4.5))
    if data is not None:
        if target not in data.columns or "age_in_years" not in data.columns:
            raise InvalidInputError(f"needs columns 'age_in_years' and {target!r}", "data")
        sexes = sex_labels(data, "data")
        idx = np.arange(len(data))
        if idx.size > max_points:
            idx = np.sort(np.random.default_rng(seed).choice(idx, max_points, replace=False))
        for sex in ("female", "male"):
            sel = idx[sexes[idx] == sex]
            ax.scatter(
                data["age_in_years"].to_numpy()[sel],
                data[target].to_numpy()[sel],
                s=5,
                lw=0,
                alpha=0.3,
                color=SEX_COLORS[sex],
            )
    bands: dict[float, float] = {}  # lower centile of each band drawn -> its alpha
    for sex, table in tables.items():
        cols = columns[sex]
        table = table.sort_values("age_in_years")
        age = table["age_in_years"].to_numpy(dtype=np.float64)
        lows = sorted(q for q in cols if q < 50.0)
        for depth, q in enumerate(lows):
            hi = 100.0 - q
            if hi in cols:
                bands[q] = 0.08 + 0.07 * depth
                ax.fill_between(
                    age,
                    table[cols[q]],
                    table[cols[hi]],
                    color=SEX_COLORS[sex],
                    lw=0,
                    alpha=0.08 + 0.07 * depth,
                )
        ax.plot(age, table[cols[50.0]], color=SEX_COLORS[sex], lw=2, label=f"{sex} median")
    ax.set_xlabel(AGE_LABEL)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    # the bands of both sexes in one neutral key each (the colour already says the sex)
    handles, labels = ax.get_legend_handles_labels()
    for q in sorted(bands):
        handles.append(Patch(color="0.35", alpha=bands[q] + 0.1, lw=0))
        labels.append(f"{q:g}-{100 - q:g}th centiles")
    if data is not None:
        handles.append(Line2D([], [], ls="", marker="o", ms=3, color="0.5", alpha=0.6))
        labels.append(f"people ({len(idx):,} of {len(data):,})" if len(idx) < len(data) else "people")
    ax.legend(handles, labels, frameon=False, fontsize="small")
    return fig
