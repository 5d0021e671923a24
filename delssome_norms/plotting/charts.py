"""Centile fan chart of a fitted :class:`~delssome_norms.norms.GrowthChart` (one panel per sex).

The figure is built without pyplot (``matplotlib.figure.Figure``), so no GUI backend is involved:
``fig.savefig("chart.png")`` renders it with the Agg canvas (PDF with matplotlib's PDF canvas).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.legend_handler import HandlerTuple
from numpy.typing import ArrayLike

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.io import normalise_sex
from delssome_norms.io.ei_table import MEAN_TARGET, region_index
from delssome_norms.norms.chart import CENTILES, GrowthChart, age_grid, centile_label
from delssome_norms.norms.chart_regions import chart_region_names
from delssome_norms.plotting._style import AGE_LABEL, SEX_COLORS
from delssome_norms.plotting.person import PERSON_COLOR, ordinal, person_label


def plot_chart_centiles(
    chart: GrowthChart,
    target: str = MEAN_TARGET,
    data: pd.DataFrame | None = None,
    *,
    sexes: Sequence[str] | None = None,
    q: Sequence[float] = CENTILES,
    points: str = "harmonised",
    crosscheck: pd.DataFrame | None = None,
    max_points: int = 4000,
    seed: int = 0,
    ylabel: str | None = None,
    person: Mapping[str, Any] | None = None,
    source: str = "data",
    provenance: Mapping[str, Any] | None = None,
    regions: Sequence[str] | None = None,
) -> Figure:
    """Population centile fan of one target, one panel per sex, with the data as points.

    Centile pairs symmetric about the median (2.5/97.5, 5/95, 25/75) are drawn as nested bands,
    darker towards the middle, and the median as a line.

    Parameters
    ----------
    chart : GrowthChart
        A fitted chart.
    target : str
        Target to draw.
    data : pandas.DataFrame, optional
        People to draw (age, sex, site and the target column).
    sexes : sequence of str, optional
        Panels, left to right: female/male (f/m in any case, or 1/0 as ``numeric_sex``).
        Default: the sexes the chart was fitted on (``chart.sexes_``); a sex the chart was not
        fitted on is refused (its curves would be the other sex's).
    q : sequence of float
        Centiles (percent) to draw: pairs symmetric about 50 as bands, 50 as the median line,
        any other as a dotted line named at its right end (e.g. ``10th``).
    points : {"harmonised", "raw"}
        Draw the site-free harmonised values (comparable with the population fan) or the raw
        values.
    crosscheck : pandas.DataFrame, optional
        Output of :func:`delssome_norms.norms.crosscheck.quantile_crosscheck`; its
        non-parametric centiles are drawn as dashed lines.
    max_points : int
        At most this many people per panel are drawn (random subset).
    seed : int
        Seed of that subset.
    ylabel : str, optional
        Default: ``E/I ratio (mean over regions)`` or ``E/I ratio, <DK68 region> (<target>)``.
    person : mapping, optional
        One person to highlight: ``subject_id``, ``sex``, ``age_in_years`` (years), ``value``
        (on the scale of ``points``) and ``centile`` (fraction in [0, 1]). Drawn in the panel of
        their sex as a large amber star labelled e.g. ``"sub-01: 93rd centile"``.
    source : str
        Name of ``data`` in warnings and errors (e.g. its file name).
    provenance : mapping, optional
        The provenance sidecar of ``data`` (default: the one in ``data.attrs``, as
        :func:`delssome_norms.io.read_ei_table` puts it there), passed to
        :meth:`GrowthChart.score <delssome_norms.norms.GrowthChart.score>`.
    regions : sequence of str, optional
        The region names of ``data``'s regional columns (its ``<stem>.regions.csv``; default:
        the provenance's), passed to :meth:`GrowthChart.score`, which matches them to the
        chart's regions by name.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if points not in ("harmonised", "raw"):
        raise InvalidInputError(f"points must be 'harmonised' or 'raw'; got {points!r}", "points")
    chart._check_fitted()
    fitted = [str(s) for s in getattr(chart, "sexes_", ("female", "male"))]
    if sexes is None:
        sexes = fitted
    if isinstance(sexes, str) or len(sexes) == 0:
        raise InvalidInputError(f"sexes must list one or more panels, got {sexes!r}", "sexes")
    # the chart accepts F/M (any case) and 1/0; the scored data say female/male, so the panels must
    # too, or a panel named "F" would draw the centiles without any of the data's people
    sexes = [str(s) for s in _sex_labels(sexes, "sexes")]
    unfitted = [s for s in sexes if s not in fitted]
    if unfitted:
        raise InvalidInputError(
            f"the chart was fitted on {' and '.join(fitted)} people only, so it has no "
            f"{' or '.join(unfitted)} curves (they would be the {' and '.join(fitted)} ones); "
            f"draw {', '.join(fitted)}",
            "sexes",
        )
    if person is not None:
        missing = [
            k for k in ("subject_id", "sex", "age_in_years", "value", "centile") if k not in person
        ]
        if missing:
            raise InvalidInputError(f"person needs {', '.join(missing)}", "person")
    chart._target_index([target], source="target")
    names = chart_region_names(chart)  # the chart's own atlas, e.g. 7Networks_LH_Vis_1
    q = sorted(chart._check_q(q))
    ages = age_grid(*chart.chart_range_)
    fig = Figure(figsize=(5.0 * len(sexes), 4.4), layout="constrained")  # legend below
    axes = fig.subplots(1, len(sexes), sharey=True, squeeze=False)[0]
    scored = None
    if data is not None:
        scored = chart.score(
            data,
            targets=[target],
            layout="long",
            source=source,
            provenance=None if provenance is None else dict(provenance),
            regions=regions,
        )
        if points == "raw":
            scored = scored.assign(harmonised=scored["value"])
    if person is not None:
        person = {**person, "sex": str(_sex_labels([person["sex"]], "person")[0])}
        if person["sex"] not in fitted:
            raise InvalidInputError(
                f"the person ({person['subject_id']}) is {person['sex']}, but the chart was "
                f"fitted on {' and '.join(fitted)} people only: it has no {person['sex']} "
                "curves to place them on",
                "person",
            )
        if person["sex"] not in sexes:
            raise InvalidInputError(
                f"the person's sex {person['sex']!r} has no panel (panels: {', '.join(sexes)})",
                "person",
            )
        age, value = float(person["age_in_years"]), float(person["value"])
        lo, hi = chart.chart_range_
        if not (np.isfinite(age) and np.isfinite(value)):
            raise InvalidInputError(
                f"the person ({person['subject_id']}) cannot be drawn: age {age:g} years and "
                f"value {value:g} must be finite numbers",
                "person",
            )
        if not lo <= age <= hi and not person.get("flag"):  # a scored person outside carries
            raise InvalidInputError(  # the age_out_of_range flag (scored with extrapolate)
                f"the person ({person['subject_id']}) is {age:g} years old, outside the chart's "
                f"{lo:g}-{hi:g} years; score with extrapolate=True to place them beyond it",
                "person",
            )
        label = person_label(str(person["subject_id"]), float(person["centile"]))
        if person.get("flag"):
            label += f" [flag: {str(person['flag']).replace(';', ', ')}]"
    rng = np.random.default_rng(seed)
    person_ax = star = None
    for ax, sex in zip(axes, sexes):
        color = SEX_COLORS.get(sex, "0.3")
        cen = chart.centiles(ages, sex, q=q, targets=[target])
        pairs = [(lo, hi) for lo in q for hi in q if lo < 50 and abs(lo + hi - 100) < 1e-9]
        for i, (lo, hi) in enumerate(sorted(pairs)):
            ax.fill_between(
                ages,
                cen[f"C{centile_label(lo)}"],
                cen[f"C{centile_label(hi)}"],
                color=color,
                alpha=0.12 + 0.08 * i,
                linewidth=0,
                label=f"{centile_label(lo)}-{centile_label(hi)}th centiles",
            )
        if 50.0 in q:
            ax.plot(ages, cen["C50"], color=color, linewidth=2.0, label="median")
        paired = {v for pair in pairs for v in pair} | {50.0}
        for qq in (v for v in q if v not in paired):  # was left out without a word
            curve = np.asarray(cen[f"C{centile_label(qq)}"], dtype=np.float64)
            ax.plot(ages, curve, color=color, linewidth=1.0, linestyle=":", label="other centiles")
            ax.annotate(  # named at its right end: dotted lines look alike in the legend
                _nth(qq),
                (ages[-1], curve[-1]),
                xytext=(-2, 2),
                textcoords="offset points",
                ha="right",
                va="bottom",
                fontsize=7,
                color=color,
            )
        if scored is not None:
            pts = scored[(scored["sex"] == sex) & np.isfinite(scored["harmonised"])]
            if len(pts) > max_points:
                pts = pts.iloc[np.sort(rng.choice(len(pts), max_points, replace=False))]
            ax.scatter(
                pts["age_in_years"],
                pts["harmonised"],
                s=6,
                color="0.25",
                alpha=0.5,
                linewidths=0,
                label=f"{points} values",
            )
        if crosscheck is not None:
            cc = crosscheck[(crosscheck["target"] == target) & (crosscheck["sex"] == sex)]
            for j, (_qq, grp) in enumerate(cc.groupby("centile")):
                ax.plot(
                    grp["age_in_years"],
                    grp["nonparametric"],
                    color="k",
                    linestyle="--",
                    linewidth=0.8,
                    label="quantile GAM" if j == 0 else None,
                )
        if person is not None and person["sex"] == sex:
            x, y = float(person["age_in_years"]), float(person["value"])
            star = ax.scatter(
                [x],
                [y],
                s=260,
                marker="*",
                color=PERSON_COLOR,
                edgecolors="k",
                linewidths=1.2,
                zorder=5,
                label=str(person["subject_id"]),
            )
            person_ax = ax
        ax.set_title(f"{_chart_target_name(target, chart.targets_, names)} - {sex}")
        ax.set_xlabel(AGE_LABEL)
        x_lo, x_hi = ages[0], ages[-1]
        if person is not None:  # an extrapolated person beyond the curves stays in view,
            # star included (half its width is ~3 % of a panel)
            pad = 0.04 * (x_hi - x_lo)
            x_lo = min(x_lo, float(person["age_in_years"]) - pad)
            x_hi = max(x_hi, float(person["age_in_years"]) + pad)
        ax.set_xlim(x_lo, x_hi)
    axes[0].set_ylabel(ylabel or _target_label(target, chart.targets_, names))
    legend_ax = axes[-1]
    if person_ax is not None:
        # the legend goes to a panel without the person so it cannot hide them
        legend_ax = next((a for a in axes[::-1] if a is not person_ax), person_ax)
    title = f"{chart.family_.name} growth chart ({chart.formulas_['mu']})"
    # ~16 characters of 9-point text per inch: a one-panel figure cut the model formula off
    fig.suptitle(textwrap.fill(title, int(16 * fig.get_figwidth())), fontsize=9)
    handles, labels = _panel_legend(axes, star, person)
    legend = None  # none without a band, median or point to key (e.g. q=[10])
    for ncol in range(min(len(labels), 4), 0, -1):  # as many columns as fit under the panel:
        # a wider legend pushed the panels apart (or, on one panel, squeezed it to a sliver)
        # below the panel, outside the data: inside it ("best") the legend hid people's points
        legend = legend_ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.16),
            ncol=ncol,
            fontsize=8,
            frameon=False,
            handler_map={tuple: HandlerTuple(ndivide=None, pad=0.0)},
        )
        legend.set_in_layout(False)
        fig.draw_without_rendering()
        if legend.get_window_extent().width <= 1.02 * legend_ax.get_window_extent().width:
            break
    if legend is not None:
        legend.set_in_layout(True)
    if person_ax is not None:  # last: the label is sized to the panels' final width
        _annotate_person(person_ax, person, label)
    return fig


def _panel_legend(
    axes: Sequence[Axes], star: Artist | None, person: Mapping[str, Any] | None
) -> tuple[list[Any], list[str]]:
    """One legend entry per label with one swatch per panel, in panel order (female pink, male
    blue side by side): a key drawn from one panel showed the other panel in the wrong colour.
    The person's star (the artist their scatter returned: found by its label, an ID such as
    ``median`` took another entry's place and one starting with ``_``, which matplotlib leaves
    out of legends, was not found) is named with its panel when there are several."""
    order: list[str] = []
    per_label: dict[str, list[Any]] = {}
    for ax in axes:
        seen: set[str] = set()  # one swatch per panel (e.g. of its several "other centiles")
        for handle, text in zip(*ax.get_legend_handles_labels()):
            if handle is star or text in seen:
                continue
            seen.add(text)
            if text not in per_label:
                order.append(text)
                per_label[text] = []
            per_label[text].append(handle)
    handles = [per_label[t][0] if len(per_label[t]) == 1 else tuple(per_label[t]) for t in order]
    labels = list(order)
    if star is not None and person is not None:
        name = str(person["subject_id"])
        handles.append(star)
        labels.append(f"{name} ({person['sex']} panel)" if len(axes) > 1 else name)
    return handles, labels


def _nth(q: float) -> str:
    """A centile as an ordinal: ``10`` -> ``10th``, ``1`` -> ``1st``, ``2.5`` -> ``2.5th``."""
    return ordinal(int(q)) if float(q).is_integer() else f"{q:g}th"


def _target_label(target: str, targets: Sequence[str], names: Sequence[str] | None = None) -> str:
    """The y-axis label of a target: e.g. ``E/I ratio (mean over regions)``, ``E/I ratio,
    lh_cuneus (ei_ratio_roi_4)``; the region named from ``names`` (the chart's recorded atlas)
    when given, else by DK68 (only when the chart has no region beyond the 68th)."""
    if target == MEAN_TARGET:
        return "E/I ratio (mean over regions)"
    name = _chart_target_name(target, targets, names)
    return f"E/I ratio, {name} ({target})" if name != target else f"E/I ratio ({target})"


def _chart_target_name(target: str, targets: Sequence[str], names: Sequence[str] | None) -> str:
    """:func:`target_name`, but a regional target of a chart that recorded its region names
    (``provenance_["atlas"]["regions"]``) is named from them: a chart of a 10-region atlas was
    titled with DK68 names (``ei_ratio_roi_4`` as ``lh_entorhinal``)."""
    k = region_index(target)
    if names is not None and k is not None and k < len(names):
        return str(names[k])
    return target_name(target, targets)


def target_name(target: str, targets: Sequence[str] = ()) -> str:
    """A target as a reader knows it: ``mean cortical E/I``, a DK68 region name (``lh_cuneus``;
    only when ``targets`` has no region beyond the 68th), else the column name itself.

    Parameters
    ----------
    target : str
        Target column, e.g. ``ei_ratio_roi_4``.
    targets : sequence of str
        All targets of the chart or table (to tell DK68 from another atlas); default just
        ``target``.

    Returns
    -------
    str
    """
    if target == MEAN_TARGET:
        return "mean cortical E/I"
    # a list of targets (a chart's, a sex gap's), not a table: its regions are read as DK68 unless
    # one lies beyond the 68th (tables are named by stats._cohort.table_regions)
    index = [k for t in (list(targets) or [target]) if (k := region_index(str(t))) is not None]
    k = region_index(str(target))
    if k is None or max([k, *index]) >= len(DK68_REGIONS):
        return str(target)
    return DK68_REGIONS[k]


def _sex_labels(values: ArrayLike, input_name: str) -> np.ndarray:
    """``female``/``male`` for each label (F/M in any case, 1/0), or one clear error."""
    try:
        return normalise_sex(list(values), input_name)
    except InvalidInputError:
        raise InvalidInputError(
            f"unknown sex label(s) in {list(values)!r}; use female/male (or f/m, 1/0)", input_name
        ) from None


def _annotate_person(ax: Axes, person: Mapping[str, Any], label: str) -> None:
    """Label the person's star: a box above or below it (towards the emptier half), centred on
    it but moved as far as needed to stay inside the panel.

    The box takes no part in the layout (a wide one squeezed a one-panel chart to a sliver) and
    is wrapped, at 10 then 8 points, until it fits the panel: a long ID with several flags ran
    past the panel's edge, over the y-axis label."""
    x, y = float(person["age_in_years"]), float(person["value"])
    if len(label) > 40 and " [" in label:  # the flags on a line of their own: a panel is narrow
        label = label.replace(" [", "\n[", 1)
    (x_lo, x_hi), (lo, hi) = ax.get_xlim(), ax.get_ylim()
    fx, fy = (x - x_lo) / (x_hi - x_lo), (y - lo) / (hi - lo)  # the star in axes fractions
    up = fy < 0.5
    note = ax.annotate(
        label,
        (x, y),
        xytext=(fx, fy + 0.12 if up else fy - 0.12),
        textcoords="axes fraction",
        ha="center",
        va="bottom" if up else "top",
        fontsize=10,
        fontweight="bold",
        bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "k", "alpha": 0.9},
        arrowprops={"arrowstyle": "-", "color": "k", "linewidth": 1.0},
        zorder=6,
    )
    note.set_in_layout(False)
    fig = ax.figure
    fig.draw_without_rendering()  # the panels' final size (constrained layout)
    panel = ax.get_window_extent()

    def size() -> tuple[float, float]:  # the box (text and its 0.3-em pad) in axes fractions
        box = note.get_window_extent()
        pad = 2 * 0.3 * note.get_fontsize() * fig.dpi / 72.0
        return (box.width + pad) / panel.width, (box.height + pad) / panel.height

    for fontsize in (10, 8):
        note.set_fontsize(fontsize)
        width = max(len(line) for line in label.split("\n"))
        while True:
            note.set_text(_wrap_label(label, width))
            if size()[0] <= 0.96 or width <= 12:
                break
            width -= 4
        if size()[0] <= 0.96:
            break
    w, h = size()
    margin = min(0.5 * w + 0.02, 0.5)
    y_text = min(fy + 0.12, 0.98 - h) if up else max(fy - 0.12, 0.02 + h)
    note.xyann = (min(max(fx, margin), 1.0 - margin), y_text)


def _wrap_label(label: str, width: int) -> str:
    """Each line of ``label`` wrapped at ``width`` characters (at spaces; words stay whole)."""
    lines = label.split("\n")
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) for line in lines
    )
