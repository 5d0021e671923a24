"""Figures of sex differences: the age-resolved gap with bands, and regional effects with CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from delssome_norms.errors import InvalidInputError
from delssome_norms.plotting._style import AGE_LABEL, SEX_COLORS, check_level, new_axes
from delssome_norms.plotting.charts import target_name

_GAP_COLUMNS = ("age_in_years", "gap", "ci_low", "ci_high")
_EFFECT_LABELS = {
    # effect_name: (x-axis label, title)
    "mean_difference_female_minus_male": ("female − male E/I ratio", "Sex difference in mean E/I"),
    "mu_difference_female_minus_male": ("female − male E/I ratio (mu)", "Sex difference in E/I (mu)"),
    "sigma_ratio_female_over_male": ("SD ratio, female / male", "Sex difference in E/I variability"),
    "spread_ratio_female_over_male": (
        "spread ratio, female / male (mean absolute deviation)",
        "Sex difference in E/I spread",
    ),
}
"""Readable axis label and title of each effect of :func:`~delssome_norms.stats.sex_difference_tests`
(and :func:`~delssome_norms.stats.chart_sex_tests`)."""


def plot_sex_gap(
    gap_table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    color: str | None = None,
    title: str | None = None,
) -> Figure:
    """Plot the female − male gap against age with its confidence band and a zero line.

    Parameters
    ----------
    gap_table : DataFrame
        Output of :func:`delssome_norms.stats.sex_gap` (columns ``age_in_years``, ``gap``,
        ``ci_low``, ``ci_high``; optional ``target``, ``statistic``, ``level``). Several targets
        are drawn as several lines.
    ax : Axes, optional
    color : str, optional
        Line colour when there is one target (default the female colour); several targets get
        the colour cycle.
    title : str, optional

    Returns
    -------
    Figure
    """
    missing = [c for c in _GAP_COLUMNS if c not in gap_table.columns]
    if missing:
        raise InvalidInputError(f"missing column(s) {', '.join(missing)}", "gap_table")
    if gap_table.empty:
        raise InvalidInputError("no rows to plot (an empty sex_gap table)", "gap_table")
    for col in _GAP_COLUMNS:
        if not pd.api.types.is_numeric_dtype(gap_table[col]):
            raise InvalidInputError(f"column {col!r} must hold numbers", "gap_table")
    fig, ax = new_axes(ax, (6.4, 3.8))
    targets = gap_table["target"].unique() if "target" in gap_table.columns else [None]
    level = float(gap_table["level"].iloc[0]) if "level" in gap_table.columns else None
    single = len(targets) == 1
    for i, target in enumerate(targets):
        part = gap_table if target is None else gap_table[gap_table["target"] == target]
        part = part.sort_values("age_in_years")
        c = (color or SEX_COLORS["female"]) if single else f"C{i}"
        name = _gap_label(part, target, targets)
        ax.plot(part["age_in_years"], part["gap"], color=c, lw=2, label=name)
        if np.isfinite(part["ci_low"]).any():
            band = f"{100 * level:g}% bootstrap band" if level else "band"
            ax.fill_between(
                part["age_in_years"],
                part["ci_low"],
                part["ci_high"],
                color=c,
                alpha=0.25,
                lw=0,
                label=band if single else None,
            )
    ax.axhline(0.0, color="0.3", lw=1, ls=":", zorder=0)
    stat = gap_table["statistic"].iloc[0] if "statistic" in gap_table.columns else "median"
    ax.set_xlabel(AGE_LABEL)
    ax.set_ylabel(f"Female − male {stat} E/I")
    if title is None and single and targets[0] is not None:
        title = f"Sex gap in {_gap_label(gap_table, targets[0], targets)}"
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small")
    return fig


def _gap_label(part: pd.DataFrame, target, targets) -> str:
    """A gap line's label: its ``region`` (the name :func:`~delssome_norms.stats.sex_gap` read
    from the table, or "mean cortical E/I"); without that column (a gap table of an older
    version), the target as :func:`~delssome_norms.plotting.charts.target_name` names it."""
    if target is None:
        return "gap"
    if "region" not in part.columns:
        return target_name(target, targets)
    named = part["region"].dropna()
    if len(named):
        return str(named.iloc[0])
    return "mean cortical E/I" if target == "ei_ratio_mean" else str(target)


def plot_sex_effects(
    results: pd.DataFrame,
    test: str = "mu_lr",
    ax: Axes | None = None,
    *,
    family: str | None = "regional",
    label_column: str = "region",
    level: float = 0.95,
) -> Figure:
    """Forest plot of one test's effect and CI per target, sorted by effect, significant ones filled.

    Targets whose fit did not converge (``converged`` False, or no effect) have no test and no
    meaningful effect: they are left out, and the title says how many.

    Parameters
    ----------
    results : DataFrame
        Output of :func:`delssome_norms.stats.sex_difference_tests`.
    test : str
        Which test's rows to show (e.g. ``"mu_lr"``, ``"sigma_lr"``).
    ax : Axes, optional
    family : str or None
        Keep only this family (``"regional"``/``"global"``); ``None`` keeps all.
    label_column : str
        Column used for the tick labels (falls back to ``target`` where empty).
    level : float, default 0.95
        Confidence level the intervals were computed at (``sex_difference_tests(level=...)``),
        for the axis label.

    Returns
    -------
    Figure
    """
    level = check_level(level)
    if not isinstance(results, pd.DataFrame):
        raise InvalidInputError(f"expected a pandas DataFrame, got {type(results).__name__}", "results")
    for col in ("test", "target", "effect", "significant", "effect_name"):
        if col not in results.columns:
            raise InvalidInputError(f"missing column {col!r}", "results")
    rows = results[results["test"] == test]
    if family is not None and "family" in rows.columns:
        rows = rows[rows["family"] == family]
    if rows.empty:
        raise InvalidInputError(f"no rows for test {test!r} (family {family!r})", "results")
    effect_name = str(rows["effect_name"].iloc[0])
    fitted = np.isfinite(pd.to_numeric(rows["effect"], errors="coerce").to_numpy(dtype=float))
    if "converged" in rows.columns:
        fitted &= rows["converged"].astype(bool).to_numpy()
    n_left_out, n_rows = int((~fitted).sum()), len(rows)
    rows = rows[fitted].sort_values("effect").reset_index(drop=True)
    labels = rows["target"]
    if label_column in rows.columns:  # the target where the label is empty (a float column of
        given = rows[label_column]  # NaN when read from CSV: fillna with text warns on pandas 3)
        labels = given.astype(object).where(given.notna(), labels)
    fig, ax = new_axes(ax, (5.5, max(3.0, 0.16 * len(rows) + 1.2)))
    xlabel, title = _EFFECT_LABELS.get(effect_name, (effect_name.replace("_", " "), "Sex difference"))
    title = f"{title} ({test})"
    if n_left_out:
        title += f"\n{n_left_out} of {n_rows} targets left out: their fits did not converge"
    if rows.empty:
        ax.text(0.5, 0.5, "no target's fit converged", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
        ax.set_xlabel(xlabel)
        ax.set_title(title)
        return fig
    y = np.arange(len(rows))
    sig = rows["significant"].to_numpy(dtype=bool)
    if {"ci_low", "ci_high"} <= set(rows.columns) and np.isfinite(rows["ci_low"]).any():
        ax.hlines(y, rows["ci_low"], rows["ci_high"], color="0.5", lw=1)
    ax.scatter(rows["effect"][sig], y[sig], color="k", s=16, zorder=3, label="FDR significant")
    ax.scatter(
        rows["effect"][~sig],
        y[~sig],
        facecolor="w",
        edgecolor="k",
        s=16,
        zorder=3,
        label="not significant",
    )
    null = 1.0 if "ratio" in effect_name else 0.0
    ax.axvline(null, color="0.3", lw=1, ls=":")
    ax.set_yticks(y, labels, fontsize=6 if len(rows) > 30 else 9)
    ax.set_ylim(-1, len(rows))
    if {"ci_low", "ci_high"} <= set(rows.columns) and np.isfinite(rows["ci_low"]).any():
        xlabel += f" (bars: {100 * level:g} % confidence interval)"
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.legend(frameon=False, fontsize="small", loc="lower right")
    return fig
