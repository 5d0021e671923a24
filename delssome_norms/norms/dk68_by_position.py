"""A table whose 68 regional columns name no regions gets the DK68 names by position: the one
warning that says so, shared by the charts (:mod:`~delssome_norms.norms.chart_regions`) and the
statistics (:mod:`delssome_norms.stats`), so that both say it alike and once per table."""

from __future__ import annotations

import warnings

import pandas as pd

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning
from delssome_norms.io import ei_table as et

DK68_WARNED_ATTR = "delssome_norms_dk68_by_position_warned"
"""``DataFrame.attrs`` key the command line sets on a table it has warned gets DK68 names by
position (:func:`warn_dk68_by_position`), so that the statistics do not say it again."""


def says_dk68(table: pd.DataFrame) -> bool:
    """Whether a table says that its 68 regional columns are the DK68 regions in DK68 order: the
    packaged SYNTHETIC reference cohort (DK68 by construction), marked by ``attrs["synthetic"]``,
    or a provenance in its ``attrs`` whose atlas is ``"DK68"``. (A table read from a file says
    nothing of the kind: its names come from its ``<stem>.regions.csv``.)"""
    attrs = getattr(table, "attrs", {})
    if attrs.get("synthetic") is True:
        return True
    provenance = attrs.get(et.PROVENANCE_ATTR)
    atlas = provenance.get("atlas") if isinstance(provenance, dict) else None
    return isinstance(atlas, dict) and atlas.get("name") == "DK68"


def warn_dk68_by_position(
    input_name: str, how: str, *, table: pd.DataFrame | None = None, stacklevel: int = 2
) -> None:
    """The :class:`~delssome_norms.errors.InputWarning` of a table whose 68 regional columns
    name no regions and get the DK68 names by position (``how``: the way to give its names);
    nothing for a ``table`` that says it is DK68 (:func:`says_dk68`) or was warned about
    already (:data:`DK68_WARNED_ATTR`, which this sets)."""
    if table is not None and (says_dk68(table) or table.attrs.get(DK68_WARNED_ATTR)):
        return
    if table is not None:  # said once per table (and the frames derived from it)
        table.attrs[DK68_WARNED_ATTR] = True
    warnings.warn(
        f"{input_name}: its 68 regional columns name no regions, so they are taken to be the "
        f"DK68 regions in DK68 order (ei_ratio_roi_0 = {DK68_REGIONS[0]}, ...); if the table is "
        f"of another 68-region atlas, give its region names ({how})",
        InputWarning,
        stacklevel=stacklevel + 1,
    )
