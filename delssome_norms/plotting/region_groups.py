"""Figures of E/I against age for the sensory and association region groups."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from delssome_norms.io.ei_table import SITE_COLUMN
from delssome_norms.plotting._style import (
    AGE_LABEL,
    GROUP_COLORS,
    SEX_COLORS,
    SEX_LINESTYLES,
    check_max_points,
    new_axes,
)
from delssome_norms.stats import region_group_scores, region_group_trajectories
from delssome_norms.stats._cohort import cohort_people
from delssome_norms.stats.region_groups import GROUPS


def _curve(curves: pd.DataFrame, group: str, sex: str) -> pd.DataFrame:
    """One curve of :func:`~delssome_norms.stats.region_group_trajectories`, every row of it: NaN
    at the ages its sex's people do not cover, which matplotlib leaves undrawn (line and band),
    so the curve is drawn only where it is defined and the line keeps one point per row."""
    return curves[(curves["group"] == group) & (curves["sex"] == sex)]


def plot_region_group_trajectories(
    table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    site: str | None = SITE_COLUMN,
    df: int = 5,
    ages: Sequence[float] | np.ndarray | None = None,
    regions: Sequence[str] | None = None,
    title: str | None = "Sensory vs association E/I",
    curves: pd.DataFrame | None = None,
    exclude_flagged: bool = False,
) -> Figure:
    """Sensory and association E/I against age, one curve per group and sex, with 95% bands.

    Curves come from :func:`delssome_norms.stats.region_group_trajectories` (sex-specific
    spline means at the average site), each drawn only over the ages its sex's people cover.
    Colour encodes the region group, line style the sex (female solid, male dashed).

    Parameters
    ----------
    table : DataFrame
        Cohort table with ``age_in_years``, ``sex``, the site column (default ``site_scanner``,
        or ``site`` [+ ``scanner``]) and ``ei_ratio_roi_*`` columns.
    ax : Axes, optional
    site, df, ages, regions, exclude_flagged
        Passed to :func:`~delssome_norms.stats.region_group_trajectories` (``regions``: default
        the names the table carries, else DK68; ``exclude_flagged``: leave out the people whose
        E/I fit is flagged, ``collect``'s ``fit_flagged``; by default they are kept and named in
        a warning).
    title : str or None
    curves : DataFrame, optional
        Those curves, already computed with the same arguments (computed here when None).

    Returns
    -------
    Figure
    """
    if curves is None:
        curves = region_group_trajectories(
            table, ages=ages, site=site, df=df, regions=regions, exclude_flagged=exclude_flagged
        )
    fig, ax = new_axes(ax, (6.4, 4.2))
    for group in GROUPS:
        for sex in ("female", "male"):
            part = _curve(curves, group, sex)
            color = GROUP_COLORS[group]
            ax.plot(
                part["age_in_years"],
                part["mean"],
                color=color,
                ls=SEX_LINESTYLES[sex],
                lw=2,
                label=f"{group}, {sex}",
            )
            ax.fill_between(
                part["age_in_years"], part["ci_low"], part["ci_high"], color=color, alpha=0.15, lw=0
            )
    ax.set_xlabel(AGE_LABEL)
    ax.set_ylabel("E/I ratio (group mean)")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize="small", ncol=2)
    return fig


def _point_style(n: int) -> tuple[float, float]:
    """Marker area (pt²) and opacity of ``n`` people's points: small and faint for thousands,
    large enough to see for a few dozen."""
    if n <= 200:
        return 14.0, 0.7
    if n <= 1000:
        return 8.0, 0.45
    return 4.0, 0.25


def plot_ei_vs_age_by_group(
    table: pd.DataFrame,
    *,
    site: str | None = SITE_COLUMN,
    df: int = 5,
    max_points: int = 4000,
    seed: int = 0,
    regions: Sequence[str] | None = None,
    curves: pd.DataFrame | None = None,
    with_curves: bool = True,
    note: str | None = None,
    exclude_flagged: bool = False,
) -> Figure:
    """One panel per region group: people's group-mean E/I against age by sex, with fitted curves.

    Parameters
    ----------
    table : DataFrame
        As for :func:`plot_region_group_trajectories`.
    site, df, regions, exclude_flagged
        As for :func:`plot_region_group_trajectories` (the people drawn are those of the curves:
        with ``exclude_flagged``, without the flagged ones).
    max_points : int
        At most this many people are drawn as points (a random subset, for readability; the
        figure's title then says how many of how many are shown).
    seed : int
        Seed of the subset.
    curves : DataFrame, optional
        As for :func:`plot_region_group_trajectories`.
    with_curves : bool
        Draw each sex's curve across the ages its people cover (computed when ``curves`` is
        None). False draws the people alone, e.g. when the curves' fit does not converge; the
        title says so.
    note : str, optional
        A line of text under the title (e.g. why there are no curves).

    Returns
    -------
    Figure
        Two axes (sensory, association) sharing the y axis.
    """
    max_points = check_max_points(max_points)
    # the flagged people once, for the points and the curves alike (one warning, not two)
    table = cohort_people(table, exclude_flagged)
    scores = region_group_scores(table, regions=regions)
    if with_curves and curves is None:
        curves = region_group_trajectories(table, site=site, df=df, regions=regions)
    fig = Figure(figsize=(10, 4.5 if note else 4.2), layout="constrained")
    axes = fig.subplots(1, len(GROUPS), sharey=True)
    rng = np.random.default_rng(seed)
    shown = (
        scores if len(scores) <= max_points else scores.iloc[rng.choice(len(scores), max_points, False)]
    )
    size, alpha = _point_style(len(shown))
    for ax, group in zip(axes, GROUPS):
        for sex in ("female", "male"):
            pts = shown[shown["sex"] == sex]
            ax.scatter(
                pts["age_in_years"],
                pts[group],
                s=size,
                alpha=alpha,
                color=SEX_COLORS[sex],
                lw=0,
                label=None if with_curves else f"{sex} ({len(pts)})",
            )
            if not with_curves:
                continue
            part = _curve(curves, group, sex)
            ax.plot(part["age_in_years"], part["mean"], color=SEX_COLORS[sex], lw=2, label=sex)
            ax.fill_between(
                part["age_in_years"],
                part["ci_low"],
                part["ci_high"],
                color=SEX_COLORS[sex],
                alpha=0.25,
                lw=0,
            )
        ax.set_title(f"{group.capitalize()} regions")
        ax.set_xlabel(AGE_LABEL)
    axes[0].set_ylabel("E/I ratio (group mean)")
    legend = axes[0].legend(frameon=False, fontsize="small")
    for handle in legend.legend_handles:  # the points' legend markers fully opaque
        handle.set_alpha(1.0)
    people = "each person" if len(shown) == len(scores) else (
        f"{len(shown)} of {len(scores)} people (a random subset)"
    )  # fmt: skip
    curves_words = "with each sex's curve and 95% band" if with_curves else "no curves across age"
    fig.suptitle(f"Sensory and association E/I of {people}; {curves_words}")
    if note:
        fig.supxlabel(textwrap.fill(note, 160), fontsize="small", color="0.3")
    return fig
