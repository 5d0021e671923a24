"""A subject's region files read one input at a time with their names, for the entry points
that do not read a whole subject at once (``validate``, the Python API, the cohort FC gradient).

:func:`read_fc_named` reads FC runs by name (:func:`~delssome_norms.io.named_regions.read_square`)
and matches the runs with one another as :func:`delssome_norms.fit.load_subject` does
(:func:`~delssome_norms.io.named_regions.match_inputs`). :func:`named_pandas` reads the region
labels of a pandas input (the Python API) as the file readers read a header row, into the same
:class:`~delssome_norms.io.named_regions.Named`, so that the Python API matches files and
labelled pandas inputs with one rule (``align_names``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.checks import check_fc
from delssome_norms.io.combine import fisher_z_mean
from delssome_norms.io.named_regions import (
    Named,
    map_by_kind,
    match_inputs,
    read_map_named,
    read_square,
    square_by_kind,
    take_regions,
)
from delssome_norms.io.readers import PathLike
from delssome_norms.io.region_names import header_kind, numbering_order
from delssome_norms.io.regions import DK68_REGIONS


def read_fc_named(paths: Sequence[PathLike], n_regions: int | None = None) -> Named:
    """FC runs read by their region names, matched with one another and Fisher-z averaged.

    Each run is read with :func:`~delssome_norms.io.named_regions.read_square` and checked
    (``n_regions``); runs listing the first named run's regions in another order are put in its
    order, runs naming other regions are refused (:func:`match_inputs`). The result's ``names``
    are the runs' (None without names), ``kind`` the first named run's, ``moved`` whether a run
    was reordered by name in a way that an unnamed file beside it could not follow (another
    atlas's order, or some DK68 regions only).

    Raises
    ------
    InvalidInputError
        A run that cannot be read, names other regions than the first, or has another shape.
    """
    paths = [str(p) for p in paths]
    entries: dict[str, Named] = {}
    for p in paths:
        if p not in entries:
            run = read_square(p, None, "FC")
            entries[p] = run._replace(values=check_fc(run.values, n_regions, input_name=p))
    names, orders = match_inputs(entries)
    fcs = [
        take_regions(entries[p].values, orders[p]) if p in orders else entries[p].values for p in paths
    ]
    if len({f.shape for f in fcs}) > 1:
        listing = ", ".join(f"{p}: {f.shape}" for p, f in zip(paths, fcs))
        raise InvalidInputError(f"runs have different shapes ({listing})", paths[0])
    mean = fisher_z_mean(np.stack(fcs))
    first = entries[paths[0]]
    if names is None:  # numbering names the regions only next to another atlas's names
        return Named(mean, first.names, "numbered") if first.kind == "numbered" else Named(mean)
    kinds = [e.kind for e in entries.values()]
    kind = "own" if "own" in kinds else "dk"
    full = kind == "dk" and len(names) == len(DK68_REGIONS)
    moved = bool(orders) or (not full and any(e.moved for e in entries.values()))
    return Named(mean, tuple(names), kind, moved)


def read_named(path: PathLike | Sequence[PathLike], what: str) -> Named:
    """One input of a subject read by name: ``what`` is ``"fc"`` (one path per run,
    :func:`read_fc_named`), ``"sc"`` (:func:`read_square`) or a map (:func:`read_map_named`);
    the SC and maps take one file."""
    paths = [str(path)] if isinstance(path, (str, os.PathLike)) else [str(p) for p in path]
    if what == "fc":
        return read_fc_named(paths)
    if len(paths) != 1:
        raise InvalidInputError(f"takes one file, got {len(paths)} ({', '.join(paths[:3])})", what)
    if what == "sc":
        return read_square(paths[0], None, "SC")
    return read_map_named(paths[0])


def full_dk(named: Named) -> bool:
    """Whether a file names all 68 DK68 regions: put in DK68 order by name, it may sit beside
    files without names (DK68 order by contract); a reordered subset or another atlas may not."""
    return named.kind == "dk" and named.names is not None and len(named.names) == len(DK68_REGIONS)


def warn_reordered(reordered: Sequence[str], files: dict[str, list[str]], ref: str | None) -> None:
    """The :class:`InputWarning` of :func:`match_inputs` for the inputs ``reordered`` by name to
    the order of ``ref`` (each named by its file where it is one: ``files``)."""
    where = {k: ";".join(v) for k, v in files.items()}
    for k in reordered:
        first = where.get(ref, ref)
        warnings.warn(
            f"{where.get(k, k)}: lists the regions of {first} in another order; put in {first}'s "
            "order by name",
            InputWarning,
            stacklevel=3,
        )


def pandas_labels(value: Any, name: str) -> list[str] | None:
    """The region labels of a pandas input: a Series' index, a DataFrame's columns (its index,
    where labelled, must list the same labels in the same order); None for other values and for
    pandas objects without labels (a ``RangeIndex``; a DataFrame with numbered columns).

    Raises
    ------
    InvalidInputError
        A DataFrame whose rows and columns carry different labels.
    """
    if not isinstance(value, (pd.DataFrame, pd.Series)):
        return None
    rows = None if isinstance(value.index, pd.RangeIndex) else [str(v) for v in value.index]
    if isinstance(value, pd.Series):
        return rows
    if isinstance(value.columns, pd.RangeIndex):
        return None
    columns = [str(v) for v in value.columns]
    if rows is not None and rows != columns:  # pd.read_csv of a header row: columns only
        first = next(((a, b) for a, b in zip(rows, columns) if a != b), "the sizes")
        raise InvalidInputError(
            f"rows and columns are labelled differently (first difference: {first}); give a "
            "matrix whose rows and columns list the regions in the same order",
            name,
        )
    return columns


def not_dk68(labels: Sequence[str], name: str, parts: str = "rows") -> InvalidInputError:
    """The error for 68 labels (of a pandas object's ``parts``: rows or columns) that are not all
    DK68 region names: they cannot be matched to the atlas a 68-region fit uses."""
    shown = ", ".join(repr(v) for v in labels[:3])
    values = "values" if parts == "rows" else parts
    return InvalidInputError(
        f"is labelled with {len(labels)} names that are not DK68 regions ({shown}, ...), so its "
        f"{parts} cannot be matched to the DK68 atlas that a 68-region fit uses (template SC, "
        "default maps and the region names of the result); name them as DK68 regions, in any "
        f"order (lh_bankssts, ctx-lh-bankssts or L_bankssts), or, if the {values} are already in "
        "DK68 order (datasets.atlas.DK68_REGIONS), give the plain array (.to_numpy()). Another "
        "68-region atlas is not supported: its regions would be reported under DK68 names",
        name,
    )


def named_pandas(value: Any, name: str, what: str = "FC") -> Named | None:
    """A labelled pandas input read by its labels as a file by its header row (the Python API).

    The labels (:func:`pandas_labels`) are what a square matrix's header row
    (:func:`~delssome_norms.io.named_regions.read_square`) or a map's names
    (:func:`~delssome_norms.io.named_regions.read_map_named`) are to the file readers: DK68
    names in any spelling put the values in DK68 order under the canonical names (a subset of
    DK68 regions: those, in DK68 order), numbering (``roi_1 ...``, in any order: put in numeric
    order) is the atlas order by contract, another atlas's names are kept in their order.
    Returns None for values that are not pandas objects, and the plain values (``kind``
    ``"plain"``) for pandas objects without labels or of another shape (checked later).

    Raises
    ------
    InvalidInputError
        Rows and columns labelled differently; 68 labels that are not all DK68 names;
        DK68 names that are unknown, repeated or missing; a numbering that repeats a number.
    """
    if not isinstance(value, (pd.DataFrame, pd.Series)):
        return None
    labels, values = pandas_labels(value, name), value.to_numpy()
    if labels is None:
        return Named(values)
    square = values.ndim == 2 and values.shape == (len(labels), len(labels))
    if values.ndim == 2 and values.shape[0] == 1 < len(labels) == values.shape[1]:
        values = values[0]  # one row of a map below its names
    elif not square and values.ndim != 1:
        return Named(values)
    numbering_order(labels, name)  # a repeated number: refused as such, not as not-DK68
    try:
        arr = values if square else values.reshape(1, -1)
        names, arr, kind = header_kind(labels, arr, name, sort=not square)
    except InvalidInputError:  # the atlas's width with other names
        raise not_dk68(labels, name) from None
    if square:
        return square_by_kind(arr, names, None, kind, DK68_REGIONS, name, what)
    return map_by_kind(arr[0], names, kind, DK68_REGIONS, name)


__all__ = [
    "full_dk",
    "named_pandas",
    "pandas_labels",
    "read_fc_named",
    "read_named",
    "warn_reordered",
]
