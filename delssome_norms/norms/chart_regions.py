"""Matching a table's regional columns to a chart's regions by name (docs/science.md §7).

A chart records the region names of its training table (``provenance_["atlas"]["regions"]``,
``ei_ratio_roi_<k>`` being region ``k``); a scored table may list the same regions in another
order (its ``<stem>.regions.csv`` / provenance sidecar). Its regional columns are then renamed
into the chart's order, so that each region is scored against its own chart; a table of other
regions is refused, never scored by column position.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Sequence
from typing import Any

import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import ei_table as et
from delssome_norms.io.regions import DK68_REGIONS, match_region_order, region_match_key

ALLOW_MISMATCH = "--allow-pipeline-mismatch (allow_pipeline_mismatch=True in Python)"
"""The option that uses a table of another pipeline anyway, spelled for both interfaces (as
``--site-column (site_column=... in Python)``): messages of charts score/adapt reach both."""
_REGION_COLUMN = re.compile(rf"^{re.escape(et.REGION_PREFIX)}(\d+)(_.*)?$")
"""A regional column, with an optional suffix (``ei_ratio_roi_3``, ``ei_ratio_roi_3_lo``)."""


def _atlas_names(provenance: Any) -> list[str] | None:
    """The names a provenance lists in its ``atlas.regions``, or None: none listed, or an
    ``atlas`` that is not a block (e.g. the string ``"DK68"``) or ``regions`` that are not a list
    of names (e.g. one string), which name no regions."""
    atlas = provenance.get("atlas") if isinstance(provenance, dict) else None
    return _names(atlas.get("regions")) if isinstance(atlas, dict) else None


def _names(value: Any) -> list[str] | None:
    if isinstance(value, (list, tuple)) and value and all(v is not None for v in value):
        return [str(v).strip() for v in value]
    return None


def chart_region_names(chart: Any, implied: bool = True) -> list[str] | None:
    """The chart's region names in its order (``ei_ratio_roi_<k>`` is ``names[k]``), or None.

    A chart that records no names (fitted on a table without a ``regions.csv``) but whose
    regional targets are exactly ``ei_ratio_roi_0`` .. ``ei_ratio_roi_67`` is read as DK68, as
    ``charts report``, ``brainmap`` and ``stats`` read such columns (unless not ``implied``)."""
    names = _atlas_names(getattr(chart, "provenance_", None))
    if names is None and implied and _dk68_columns(chart):
        return list(DK68_REGIONS)
    return names


def _regional_targets(chart: Any) -> list[str]:
    return [str(t) for t in getattr(chart, "targets_", None) or [] if et.region_index(t) is not None]


def _dk68_names(names: Sequence[str]) -> bool:
    """Whether ``names`` are the DK68 regions (any spelling the readers match, any order)."""
    return match_region_order(list(names), list(DK68_REGIONS)) is not None


def _dk68_columns(chart: Any) -> bool:
    """Whether the chart's regional targets are exactly the 68 DK68 columns (any order)."""
    regional = _regional_targets(chart)
    return len(regional) == len(DK68_REGIONS) and set(regional) == set(
        et.region_columns(len(DK68_REGIONS))
    )


def table_region_names(
    provenance: dict[str, Any] | None, regions: Sequence[str] | None = None
) -> list[str] | None:
    """A table's region names: ``regions`` when given (its ``<stem>.regions.csv``), else its
    provenance sidecar's ``atlas.regions``; None when neither names them (an ``atlas`` that is
    not a block, or ``regions`` that are not a list, name none)."""
    if regions is not None:
        return _names(list(regions))
    return _atlas_names(provenance)


def refuse_single_string(regions: Any, source: str) -> None:
    """Refuse one string given as ``regions`` (its characters are not region names, however
    many columns they match)."""
    if isinstance(regions, (str, bytes)):
        raise InvalidInputError(
            f"regions must be a list of region names, one per regional column, not the single "
            f"string {regions!r}",
            source,
        )


def check_region_count(regions: Any, table: pd.DataFrame, source: str = "table") -> list[Any]:
    """``regions`` as a list, refused unless it names one region per ``ei_ratio_roi_<j>`` column
    of ``table`` (a table without regional columns takes any list)."""
    refuse_single_string(regions, source)
    try:
        names = list(regions)
    except TypeError:
        raise InvalidInputError(
            f"regions must be a list of region names, got {type(regions).__name__}", source
        ) from None
    n = et.n_region_columns([str(c) for c in table.columns])
    if n and len(names) != n:
        raise InvalidInputError(
            f"the region names (regions=, or the table's regions.csv) list {len(names)} regions "
            f"but the table has {n} regional columns: give one name per {et.REGION_PREFIX}<j> "
            "column, in column order",
            source,
        )
    return names


def _first_names(names: list[str]) -> str:
    """``lh_a is ei_ratio_roi_0, lh_b is ei_ratio_roi_1, ...`` for up to two names."""
    shown = ", ".join(f"{v} is {et.region_column(k)}" for k, v in enumerate(names[:2]))
    return shown + (", ..." if len(names) > 2 else "")


def _warn_unnamed(table: pd.DataFrame, ours: list[str], source: str, implied: bool) -> None:
    """Warn that a table naming no regions is taken in the chart's order: nothing can check
    that its columns follow the chart's. For a chart naming the DK68 regions in DK68 order (the
    reference chart) the table's 68 columns are DK68 by position, said as ``stats`` says it
    (:func:`~delssome_norms.norms.dk68_by_position.warn_dk68_by_position`: not for a table that says it
    is DK68, nor twice for one table); nothing for a chart that names no regions either
    (``implied``: its 68 columns read as DK68), whose order is the table's by construction."""
    n = et.n_region_columns([str(c) for c in table.columns])
    if n != len(ours):
        return
    if match_region_order(ours, list(DK68_REGIONS)) == list(range(len(ours))):
        if not implied:
            from delssome_norms.norms.dk68_by_position import warn_dk68_by_position

            warn_dk68_by_position(source, _how_to_name(source), table=table, stacklevel=4)
        return
    warnings.warn(
        f"{source}: names none of its {n} regions (no regions.csv or provenance sidecar beside "
        f"it) while the chart lists its own ({_first_names(ours)}): its regional columns were "
        "taken in the chart's order, "
        "which cannot be checked; give the table's region names (regions= / its regions.csv)",
        InputWarning,
        stacklevel=4,
    )


def _how_to_name(source: str) -> str:
    """How to give the region names of the table ``source`` (a file, also as the CLI names it,
    ``t.csv (--table)``: its regions.csv, in stats' words)."""
    from pathlib import Path

    from delssome_norms.io import regions_path

    for path in (source, source.rsplit(" (", 1)[0]):
        if Path(path).suffix.lower() in (".csv", ".tsv", ".gz") and Path(path).is_file():
            name = regions_path(path).name
            return f"{name} beside it, with the columns column, region_index, region"
    return "regions=, or the table's regions.csv"


def _warn_chart_unnamed(chart: Any, theirs: list[str], source: str) -> None:
    """Warn that a table naming its regions is taken in the order of a chart that records no
    names (nor has the 68 DK68 columns, read as DK68): nothing can check the match."""
    n = len(_regional_targets(chart))
    if n != len(theirs):  # another number of regions: check_pipeline refuses the table
        return
    warnings.warn(
        f"{source}: names its {n} regions ({_first_names(theirs)}) but the chart records no "
        "region names (it was fitted on a table without a regions.csv): the table's regional "
        "columns were taken in the chart's order, which cannot be checked; fit the chart on a "
        "table with its regions.csv to have them matched by name",
        InputWarning,
        stacklevel=4,
    )


def align_table_regions(
    chart: Any,
    table: pd.DataFrame,
    provenance: dict[str, Any] | None,
    regions: Sequence[str] | None = None,
    source: str = "table",
) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """The table with its regional columns in the chart's order, and its provenance to match.

    Where both the chart and the table name their regions and the names are the same regions
    in another order, each ``ei_ratio_roi_<j>`` column (and ``ei_ratio_roi_<j>_<suffix>``) of
    the table becomes the chart's column of that region, with one
    :class:`~delssome_norms.errors.InputWarning`; the provenance copy then lists the regions
    in the chart's order (so its ``regions_sha256`` matches). Without names on either side, or
    with the same order, nothing changes. A chart without recorded names whose regional targets
    are ``ei_ratio_roi_0`` .. ``ei_ratio_roi_67`` is read as DK68 (:func:`chart_region_names`);
    a chart of another size without names takes a named table's columns in its order, with one
    :class:`~delssome_norms.errors.InputWarning`.

    Parameters
    ----------
    chart : GrowthChart
    table : pandas.DataFrame
    provenance : dict or None
        The table's provenance sidecar.
    regions : sequence of str, optional
        The table's region names (``ei_ratio_roi_<j>`` is ``regions[j]``); default: the
        provenance's ``atlas.regions``.
    source : str
        Name of the table in messages.

    Returns
    -------
    table, provenance

    Raises
    ------
    InvalidInputError
        ``regions`` given but not one name per regional column of the table (as
        :meth:`GrowthChart.fit <delssome_norms.norms.chart.GrowthChart.fit>` refuses them), or
        the same number of named regions on both sides but not the same regions (named): such
        a table is never scored by column position, even with ``allow_pipeline_mismatch``.
    """
    if regions is not None:
        regions = check_region_count(regions, table, source)
    theirs, ours = table_region_names(provenance, regions), chart_region_names(chart)
    implied = ours is not None and chart_region_names(chart, implied=False) is None
    if theirs is None and ours is not None:
        _warn_unnamed(table, ours, source, implied)
    if theirs is not None and ours is None:
        _warn_chart_unnamed(chart, theirs, source)
    if theirs is None or ours is None or theirs == ours or len(theirs) != len(ours):
        return table, provenance  # a different number of regions: check_pipeline refuses
    order = match_region_order(theirs, ours)
    if order is None and implied and not _dk68_names(theirs):
        # a chart without names, read as DK68 because of its 68 columns, and a table naming
        # another atlas: the chart may be of that atlas (fitted on its unnamed table), so its
        # columns are taken in the chart's order, as for any chart without names
        _warn_chart_unnamed(chart, theirs, source)
        return table, provenance
    if order is None:
        twice = sorted({v for v in theirs if theirs.count(v) > 1})
        if twice:
            raise InvalidInputError(
                f"the table names region {twice[0]} more than once (its regions.csv or "
                "provenance sidecar): which column is which region cannot be told",
                source,
            )
        mine, yours = {region_match_key(v) for v in ours}, {region_match_key(v) for v in theirs}
        only_table = [v for v in theirs if region_match_key(v) not in mine]
        only_chart = [v for v in ours if region_match_key(v) not in yours]
        shown = ", ".join(f"{v} ({et.region_column(theirs.index(v))})" for v in only_table[:3])
        shown = shown or "two names of one region"  # e.g. lh_x and ctx-lh-x in one table
        raise InvalidInputError(
            f"the table's regions are not the chart's: {shown} "
            f"{'is' if len(only_table) == 1 else 'are'} not among the chart's {len(ours)} regions"
            + (f" (the chart has {', '.join(only_chart[:3])} instead)" if only_chart else "")
            + (
                " (the chart records no region names: its 68 regional columns are read as DK68)"
                if implied
                else ""
            )
            + f"; its columns cannot be scored by position, even with {ALLOW_MISMATCH}: "
            "use a chart fitted on tables of this atlas",
            source,
        )
    if order == list(range(len(order))):  # same regions, spelled otherwise, same order
        renamed = table
    else:
        mapping = {}
        for col in table.columns:
            m = _REGION_COLUMN.match(str(col))
            if m is not None and int(m.group(1)) < len(order):
                mapping[col] = f"{et.region_column(order[int(m.group(1))])}{m.group(2) or ''}"
        renamed = table.rename(columns=mapping)
        renamed.attrs = table.attrs
        moved = sum(k != j for j, k in enumerate(order))
        warnings.warn(
            f"{source}: lists its {len(order)} regions in another order than the chart "
            f"({moved} at other positions, e.g. {theirs[_first_moved(order)]} is "
            f"{et.region_column(_first_moved(order))} in the table but "
            f"{et.region_column(order[_first_moved(order)])} in the chart): its regional columns "
            "were matched to the chart's regions by name",
            InputWarning,
            stacklevel=3,
        )
    if provenance is None:
        return renamed, None
    from delssome_norms.io.regions import regions_sha256

    aligned = copy.deepcopy(provenance)
    atlas = aligned.get("atlas")
    if isinstance(atlas, dict):
        atlas["regions"] = list(ours)
        if atlas.get("regions_sha256") is not None:
            atlas["regions_sha256"] = regions_sha256(ours)
    pipe = aligned.get("pipeline")
    if isinstance(pipe, dict) and pipe.get("regions_sha256") is not None:
        chart_pipe = (getattr(chart, "provenance_", None) or {}).get("pipeline") or {}
        pipe["regions_sha256"] = chart_pipe.get("regions_sha256") or regions_sha256(ours)
    return renamed, aligned


def _first_moved(order: list[int]) -> int:
    return next(j for j, k in enumerate(order) if j != k)
