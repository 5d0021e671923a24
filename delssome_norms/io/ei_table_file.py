"""A collected E/I table read with its sidecars, as the command line reads it.

``collect`` writes a table (CSV or Parquet) with two sidecars: ``<stem>.provenance.json`` (the
atlas, SC, maps and settings of the fits) and ``<stem>.regions.csv`` (the region name of each
``ei_ratio_roi_<k>`` column). ``charts`` and ``stats`` read all three. A table read with
``pandas.read_csv`` alone has lost both: its regional columns are then only numbers, and a chart
of another atlas would score it by column position. :func:`read_ei_table` returns the table with
the sidecars in ``DataFrame.attrs``, where :class:`~delssome_norms.norms.GrowthChart` and the
``stats`` functions look for them, so Python gives what the command line gives.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import ei_table as et
from delssome_norms.io.provenance import read_table_provenance, regions_path, set_region_names
from delssome_norms.io.readers import read_table

PathLike = str | Path


def read_regions_sidecar(path: PathLike) -> list[str]:
    """The region names of a ``<table>.regions.csv`` (columns ``column, region_index, region``
    as ``collect`` writes them): ``names[k]`` is the region of ``ei_ratio_roi_<k>``.

    Raises
    ------
    InvalidInputError
        An unreadable file, one that does not list ``ei_ratio_roi_0`` ... ``_<N-1>`` once
        each, or one naming a region twice (naming the file).
    """
    try:
        frame = pd.read_csv(path, dtype={"region": str}, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"cannot be read as a regions table ({exc})", str(path)) from None
    if not {"column", "region"} <= set(frame.columns):
        raise InvalidInputError(
            "is not a regions sidecar (expected the columns column, region_index, region that "
            "collect writes)",
            str(path),
        )
    index = [et.region_index(str(c)) for c in frame["column"]]
    if any(k is None for k in index) or sorted(index) != list(range(len(index))):
        raise InvalidInputError(
            f"should list {et.region_column(0)} .. ei_ratio_roi_<N-1> once each (as collect writes it)",
            str(path),
        )
    names = dict(zip(index, frame["region"].astype(str).str.strip(), strict=True))
    ordered = [names[k] for k in range(len(index))]
    if any(not n for n in ordered):
        raise InvalidInputError("has an empty region name; every column needs one", str(path))
    twice = sorted({n for n in ordered if ordered.count(n) > 1})
    if twice:
        columns = ", ".join(et.region_column(k) for k, n in enumerate(ordered) if n == twice[0])
        raise InvalidInputError(
            f"names region{'s' * (len(twice) > 1)} {', '.join(twice[:5])}"
            f"{' ...' if len(twice) > 5 else ''} more than once ({twice[0]}: {columns}): which "
            "column is which region cannot be told; give each column its own region name (as "
            "collect writes it)",
            str(path),
        )
    return ordered


def read_table_regions(path: PathLike, table: pd.DataFrame) -> list[str] | None:
    """The region names of the table read from ``path`` (``names[k]`` names
    ``ei_ratio_roi_<k>``), from its ``<stem>.regions.csv``; None without one.

    The sidecar's rows are matched to the columns by their ``column`` field, so rows in another
    order name the same columns. It must name exactly ``ei_ratio_roi_0`` up to the table's last
    regional column: fewer names leave columns unnamed, more names are of columns the table lacks;
    either way the two files were not written together (``collect`` writes both). A table
    without regional columns is not checked. ``read_ei_table`` and ``stats`` read a table's
    region names with this function.

    Raises
    ------
    InvalidInputError
        An unreadable sidecar, or one naming more or fewer regions than the table has regional
        columns (naming both files).
    """
    sidecar = regions_path(path)
    if not sidecar.is_file():
        return None
    names = read_regions_sidecar(sidecar)
    index = [k for c in table.columns if (k := et.region_index(str(c))) is not None]
    if index and max(index) + 1 != len(names):
        last, n = et.region_column(max(index)), max(index) + 1
        extra = len(names) - n
        gap = f"names for {extra} column{'s' * (extra > 1)} it lacks" if extra > 0 else ""
        gap = gap or f"{-extra} of its columns without a name"
        raise InvalidInputError(
            f"names {len(names)} regions, but {path} has regional columns up to {last} ({gap}): "
            f"the two files belong to different tables; rerun collect to write both, or give "
            f"{sidecar.name} one row per column {et.region_column(0)} .. {last}",
            str(sidecar),
        )
    return names


def read_ei_table(path: PathLike) -> pd.DataFrame:
    """A ``collect`` table (CSV or Parquet) with its provenance and region names in ``attrs``.

    ``attrs["delssome_norms_provenance"]`` holds the ``<stem>.provenance.json`` sidecar (a
    table edited after ``collect`` gets the sidecar's :class:`~delssome_norms.errors.InputWarning`),
    with ``atlas.regions`` taken from ``<stem>.regions.csv`` when there is one (the names the
    command line uses). :meth:`GrowthChart.fit <delssome_norms.norms.GrowthChart.fit>` and
    :meth:`~delssome_norms.norms.GrowthChart.score` then check the table's pipeline and match its
    regions by name, and the ``stats`` functions name its regions, as ``charts`` and ``stats``
    do with the file. A table without sidecars is returned with empty ``attrs``: a table's
    provenance comes only from its sidecar files. (pandas keeps a frame's ``attrs`` inside the
    Parquet files it writes, so ``write_table(read_ei_table(t)[mask], "x.parquet")`` holds the
    whole table's provenance, its row count and SHA-256; that copy is dropped on reading, as the
    command line ignores it.)

    Parameters
    ----------
    path : str or Path
        The table ``collect`` wrote (or any E/I table with the same columns).

    Returns
    -------
    DataFrame

    Raises
    ------
    InvalidInputError
        An unreadable table or sidecar, or a ``regions.csv`` naming more or fewer regions than
        the table has regional columns (:func:`read_table_regions`: it belongs to another table).
    """
    table = read_table(path)
    table.attrs.clear()  # attrs a Parquet file carries (another table's provenance): not a sidecar
    provenance = read_table_provenance(path)
    names = read_table_regions(path, table)
    if names is not None:
        provenance = _with_region_names(provenance, names, regions_path(path))
    if provenance is not None:
        table.attrs[et.PROVENANCE_ATTR] = provenance
    return table


def _with_region_names(
    provenance: dict[str, Any] | None, names: list[str], sidecar: Path
) -> dict[str, Any]:
    """``provenance`` (copied) whose ``atlas.regions`` are ``names``, the digests that describe
    them updated; a provenance that listed other regions gets a warning (the sidecar wins, as on
    the command line)."""
    out = copy.deepcopy(provenance) if provenance is not None else {}
    atlas = out.get("atlas") if isinstance(out.get("atlas"), dict) else {}
    listed = atlas.get("regions")
    if listed is not None and [str(r) for r in listed] != names:
        warnings.warn(
            f"{sidecar} lists other regions than the table's provenance sidecar (edited, or "
            "from another collect): its names are used; rerun collect to rebuild both",
            InputWarning,
            stacklevel=3,
        )
    set_region_names(out, names)
    out["atlas"].setdefault("n_regions", len(names))
    return out
