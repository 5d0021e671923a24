"""A subject's region files read one input at a time with their names, for the entry points
that do not read a whole subject at once (``validate``, the Python API, the cohort FC gradient).

:func:`read_fc_named` reads FC runs by name (:func:`~delssome_norms.io.named_regions.read_square`)
and matches the runs with one another as :func:`delssome_norms.fit.load_subject` does
(:func:`~delssome_norms.io.named_regions.match_inputs`). :func:`as_labelled` turns what a named
file says into a pandas object labelled with its region names, so that the Python API matches
files and labelled pandas inputs with one rule (``align_names``).
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
    match_inputs,
    read_map_named,
    read_square,
    take_regions,
)
from delssome_norms.io.readers import PathLike
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


def as_labelled(named: Named) -> Any:
    """The values of a named file as a pandas object labelled with its region names (a DataFrame
    for a matrix, a Series for a map), or the plain array where the file names no regions."""
    if named.names is None or named.kind == "plain":
        return named.values
    index = pd.Index(list(named.names))
    if np.ndim(named.values) == 2:
        return pd.DataFrame(named.values, index=index, columns=index)
    return pd.Series(named.values, index=index)


__all__ = ["as_labelled", "full_dk", "read_fc_named", "read_named", "warn_reordered"]
