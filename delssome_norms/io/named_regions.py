"""Region names carried by a subject's inputs, matched across them.

Every region file of one subject (FC or time-series runs, SC, myelin and gradient maps) may name
its regions in a header row (maps: a header row above one row of values, or a first column of
names). :func:`read_square` and :func:`read_map_named` read such files and say what the names
are (:class:`Named`): DK68 region names (put in DK68 order; a file that names only some DK68
regions, e.g. one hemisphere, is a smaller atlas of those regions, kept in DK68 order), another
atlas's names (kept in file order), numbering (``roi_1 ...``) or none. :func:`match_inputs`
then matches the files of one subject by name: the first named file sets the order, files that
list the same names in another order are put in it (with a note), files that name other regions
are refused (naming both files and some names only one of them has), and the names become the
subject's region names. :func:`align_names` is the matching itself, shared with the Python API
(:func:`delssome_norms.pipeline.estimator.subject_from_arrays` for labelled pandas inputs).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.index_column import explain_two_columns, read_value_table
from delssome_norms.io.readers import PathLike, _atlas_names, read_labelled_numeric
from delssome_norms.io.region_names import (
    header_kind,
    is_numbering,
    numbering_order,
    numbering_permutation,
    warn_file_order,
    warn_numbered_order,
    without_common_affix,
)
from delssome_norms.io.regions import DK68_REGIONS, canonical_region_key, match_regions


class Named(NamedTuple):
    """Values read from a region file and what its names say about their order.

    ``kind``: ``"plain"`` (no names: atlas order by contract), ``"numbered"`` (a header that
    numbers the columns, ``roi_1 ...`` in any order: ``values`` and ``names`` put in numeric
    order, the atlas order by contract), ``"dk"`` (DK68 region names; ``values`` put in DK68
    order and ``names`` the DK68 names, all 68 or the subset the file names) or ``"own"``
    (another atlas's names, ``values`` in file order). ``moved``: the values were reordered by
    name from the file's order (numbering aside: its numeric order is the atlas's).
    """

    values: np.ndarray
    names: tuple[str, ...] | None = None
    kind: str = "plain"
    moved: bool = False


def take_regions(values: np.ndarray, order: np.ndarray, axis: int | None = None) -> np.ndarray:
    """``values`` with its regions in ``order``: rows and columns of a square matrix, the
    entries of a map, or (``axis=1``) the columns of a time series."""
    if axis is not None:
        return np.take(values, order, axis=axis)
    if np.ndim(values) == 2:
        return values[np.ix_(order, order)]
    return values[order]


def _shown(names: Sequence[str], limit: int = 3) -> str:
    return ", ".join(repr(n) for n in names[:limit]) + (", ..." if len(names) > limit else "")


def align_names(
    labels: Mapping[str, Sequence[str]], what: str = "input"
) -> tuple[tuple[str, ...], str, dict[str, np.ndarray | None]]:
    """Match inputs that list the same region names, maybe in other orders, to the first one.

    Parameters
    ----------
    labels : mapping of input name to its region names
        In order of precedence: the first sets the order.
    what : str
        What the inputs are, for the message (``"input"``, ``"file"``).

    Returns
    -------
    names : tuple of str
        The first input's names.
    reference : str
        The first input's name.
    orders : dict
        For every other input, the positions that put its regions in the first one's order
        (:func:`take_regions`), or None where they already are.

    Raises
    ------
    InvalidInputError
        The first input names a region twice; another input names other regions than the first
        (naming both and some names only one of them has).
    """
    ref_name, *others = labels
    ref = [str(n) for n in labels[ref_name]]
    twice = sorted({n for n in ref if ref.count(n) > 1})
    if twice:
        raise InvalidInputError(f"names region(s) {', '.join(twice[:3])} more than once", ref_name)
    orders: dict[str, np.ndarray | None] = {}
    for name in others:
        names = [str(n) for n in labels[name]]
        if names == ref:
            orders[name] = None
            continue
        if len(names) != len(ref) or set(names) != set(ref):
            here = [n for n in names if n not in ref]
            there = [n for n in ref if n not in names]
            diff = "; ".join(
                text
                for text in (
                    f"only here: {_shown(here)}" if here else "",
                    f"only in {ref_name}: {_shown(there)}" if there else "",
                    "" if here or there else "some names repeated",
                )
                if text
            )
            raise InvalidInputError(
                f"is labelled with other regions than {ref_name} ({len(names)} vs {len(ref)} "
                f"names; {diff}), so its regions cannot be matched to {ref_name}'s; label every "
                f"{what} with the same region names",
                name,
            )
        pos = {n: i for i, n in enumerate(names)}
        orders[name] = np.array([pos[n] for n in ref])
    return tuple(ref), ref_name, orders


def dk_order(
    header: Sequence[str], atlas: Sequence[str], name: str
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Column order that puts a header of atlas region names in atlas order, and the names.

    A header of fewer names than the atlas, every one an atlas region named once (e.g. the 34
    ``lh_*`` regions of DK68), is an atlas of those regions: they are kept, in atlas order.
    Otherwise every atlas region must be named (:func:`~delssome_norms.io.regions.match_regions`
    lists unknown, repeated or missing names).
    """
    keys = [canonical_region_key(h) for h in header]
    atlas_keys = {canonical_region_key(a) for a in atlas}
    if len(header) < len(atlas) and len(set(keys)) == len(keys) and set(keys) <= atlas_keys:
        subset = tuple(a for a in atlas if canonical_region_key(a) in set(keys))
        return match_regions(header, subset, name), subset
    return match_regions(header, atlas, name), tuple(atlas)


def _numbered_by_pandas(values: np.ndarray, name: str) -> np.ndarray | None:
    """A square matrix without the numbered header row (``0, 1, ...``, in any order) and index
    column that ``pd.DataFrame(m).to_csv(path)`` writes around it (read with empty cells as
    NaN), rows and columns put in the numbers' order (with an :class:`InputWarning` where they
    were not in it: a header alone numbers the rows too); None when ``values`` is not laid out
    that way."""
    rows, cols = values.shape if values.ndim == 2 else (0, 0)
    if cols == rows + 1 and rows > 2 and is_numbering(values[:, 0]):  # a 0/1-based label column
        return values[:, 1:]
    if rows == cols + 1 and (head := numbering_permutation(values[0])) is not None:  # index=False
        values, index = values[1:], head
    elif rows == cols and rows > 1 and np.isnan(values[0, 0]):
        head, index = numbering_permutation(values[0, 1:]), numbering_permutation(values[1:, 0])
        if head is None or index is None:
            return None
        values = values[1:, 1:]
    else:
        return None
    if not (is_numbering(head) and is_numbering(index)):
        warnings.warn(
            f"{name}: its rows and columns are numbered in another order; put in numeric order, "
            "the atlas's order",
            InputWarning,
            stacklevel=4,
        )
    return values[np.ix_(index, head)]


def read_square(
    path: PathLike, regions: Sequence[str] | None = None, what: str = "FC", warn: bool = False
) -> Named:
    """A square region-by-region matrix (FC, SC) and what its names say.

    A header row of atlas region names (and optionally a first column of them) is matched to
    the atlas by name (``regions``, default DK68; any spelling, a shared affix, FreeSurfer IDs)
    and rows and columns are put in atlas order; a header of fewer DK names is an atlas of those
    regions (:func:`dk_order`). A header that numbers the columns (``roi_1 ...``, in any order;
    :func:`~delssome_norms.io.region_names.numbering_order`) puts rows and columns in numeric
    order (the rows by their own names, else as the columns). Another atlas's names are kept in
    file order (``warn``: with an :class:`InputWarning` saying so), rows named in another order
    than the columns put in the columns' order. A file without names is taken as it is.
    """
    name = str(path)
    try:
        values, header, labels = read_labelled_numeric(path)
    except InvalidInputError:
        values = _numbered_by_pandas(read_labelled_numeric(path, allow_na=True)[0], name)
        if values is None:
            raise
        return Named(values)
    stripped = _numbered_by_pandas(values, name) if header is None and labels is None else None
    values = values if stripped is None else stripped
    atlas = _atlas_names(regions)
    kind = "plain"
    if header is not None and values.ndim == 2:
        # the time-series reader's matcher (any spelling, a shared affix, FreeSurfer IDs); the
        # atlas's width in other text is refused, not taken for the atlas in file order
        header, values, kind = header_kind(header, values, name, len(atlas), sort=False)
    return square_by_kind(values, header, labels, kind, atlas, name, what, warn)


def square_by_kind(
    values: np.ndarray,
    header: Sequence[str] | None,
    labels: Sequence[str] | None,
    kind: str,
    atlas: Sequence[str],
    name: str,
    what: str = "FC",
    warn: bool = False,
) -> Named:
    """A square matrix put in order by its column names ``header`` (and row names ``labels``),
    once :func:`header_kind` has said what they name (``kind``): the part of :func:`read_square`
    after reading, shared with the Python API for labelled DataFrames."""
    header = None if header is None else list(header)
    labels = None if labels is None else list(labels)
    if kind == "dk" and labels is not None:
        labels = without_common_affix(labels)
    if kind == "dk" and values.shape == (len(header), len(header)):
        from delssome_norms.io.timeseries import _drop_non_cortex  # (it imports this module)

        header, _, keep = _drop_non_cortex(header, values, atlas, name)  # aparc's unknown, CC
        rows = keep
        if labels is not None:  # rows by their own names: they may be in another order
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InputWarning)
                labels, _, rows = _drop_non_cortex(labels, values.T, atlas, name)
        values = values[np.ix_(rows, keep)]
    if kind == "dk":
        order, names = dk_order(header, atlas, name)
        row_order = order
        if labels is not None:
            row_order, row_names = dk_order(labels, atlas, name)
            if row_names != names:
                raise InvalidInputError(
                    "its rows name other regions than its columns; give a matrix whose rows and "
                    "columns list the same regions",
                    name,
                )
        if values.shape[0] != len(header):
            raise InvalidInputError(
                f"has {len(header)} named columns but {values.shape[0]} rows; expected a square "
                f"{what} matrix",
                name,
            )
        moved = not (is_numbering(order) and is_numbering(row_order))
        return Named(values[np.ix_(row_order, order)], names, "dk", moved)
    if labels is not None and (kind == "plain" or sorted(labels) != sorted(header)):
        raise InvalidInputError(
            f"is not a numeric CSV: its rows start with non-numeric values such as "
            f"{labels[0][:40]!r} that are not region names",
            name,
        )
    if kind == "plain":
        return Named(values)
    if labels is not None and list(labels) != list(header):  # rows in another order
        pos = {n: i for i, n in enumerate(labels)}
        values = values[[pos[n] for n in header]]
    order = numbering_order(header, name) if kind == "numbered" else None
    n = len(header)
    if order is not None and values.shape == (n, n) and not np.array_equal(order, np.arange(n)):
        warn_numbered_order(name, header, order, stacklevel=5)  # rows in the columns' order
        header, values = [header[k] for k in order], values[np.ix_(order, order)]
    if warn and kind == "own":  # another atlas's width and names: its own order, as for time series
        warn_file_order(name, header[0], f"the {what} is", stacklevel=6)
    return Named(values, tuple(header), kind)


def read_map_named(path: PathLike, regions: Sequence[str] | None = None) -> Named:
    """A regional map and its region names, if it has them: a header row of names above one
    row of values, or a first column of names beside one column of values (an optional header
    row above it). DK68 names are put in DK68 order as for :func:`read_square`; other names kept
    in file order. A map without names (one value per row, an optional one-word header) is
    taken as it is, without the index column that pandas writes before it
    (:func:`~delssome_norms.io.index_column.read_value_table`)."""
    name = str(path)
    values, header, labels = read_value_table(path)
    names: list[str] | None = None
    if labels is not None:
        if values.ndim != 2 or values.shape[1] != 1:
            raise InvalidInputError(
                f"is not a numeric CSV: line {2 if header is not None else 1} has the "
                f"non-numeric value {labels[0][:40]!r}",
                name,
            )
        names, values = list(labels), values[:, 0]
    elif header is not None and values.ndim == 2 and values.shape[0] == 1 < len(header):
        if len(header) == values.shape[1]:
            names, values = list(header), values[0]
    if names is None:
        explain_two_columns(path, values)  # an index without a header, decimal commas
        return Named(values)
    atlas = _atlas_names(regions)
    names, row, kind = header_kind(names, values.reshape(1, -1), name, len(atlas))
    if labels is not None and kind == "dk":
        keys = [canonical_region_key(n) for n in names]
        twice = [n for n, k in zip(names, keys) if k is not None and keys.count(k) > 1]
        if twice:
            raise InvalidInputError(
                f"names region(s) {_shown(list(dict.fromkeys(twice)))} more than once in its "
                "first column; give every region one row",
                name,
            )
    return map_by_kind(row[0], names, kind, atlas, name)


def map_by_kind(
    values: np.ndarray, names: Sequence[str], kind: str, atlas: Sequence[str], name: str
) -> Named:
    """A regional map put in order by its region ``names`` once :func:`header_kind` has said
    what they name (``kind``): the part of :func:`read_map_named` after reading, shared with the
    Python API for labelled Series."""
    names = list(names)
    if kind != "dk":
        return Named(values, tuple(names), kind)
    order, dk_names = dk_order(names, atlas, name)
    return Named(values[order], dk_names, "dk", not is_numbering(order))


def labelled_names(inputs: Mapping[str, Named], warn: bool = True) -> dict[str, tuple[str, ...]]:
    """The region names of the inputs whose names are matched across a subject's inputs (in
    the inputs' order): DK68 names and another atlas's, and numbering next to another atlas's
    names (alone it is the atlas order by contract).

    With ``warn``, inputs without names next to named ones are warned about
    (:func:`warn_unnamed`): every caller that combines a subject's inputs reads their names
    here (:func:`match_inputs`, the Python API)."""
    own = any(e.kind == "own" for e in inputs.values())
    labelled = {
        k: tuple(e.names or ())
        for k, e in inputs.items()
        if e.kind in ("dk", "own") or (own and e.kind == "numbered")
    }
    if warn:
        warn_unnamed(inputs, labelled)
    return labelled


def unnamed_inputs(
    inputs: Mapping[str, Named], labelled: Mapping[str, Sequence[str]] | None = None
) -> tuple[list[str], str | None, str]:
    """The inputs without region names that are taken to be in the named inputs' order.

    Returns ``(unnamed, reference, order)``: the inputs naming no regions (no header, or a
    numbering), the named input whose order they are taken in, and that order in words; an
    empty list where there is nothing to say: every input unnamed (the atlas order by
    contract), every input named, all 68 DK68 regions named in DK68 order (unnamed inputs are
    in DK68 order by contract, and the named ones say so), or named inputs in orders that
    :func:`match_inputs` refuses beside unnamed ones anyway (another atlas's names listed in two
    orders, a reordered subset of DK68).
    """
    labelled = labelled_names(inputs, warn=False) if labelled is None else labelled
    unnamed = [k for k in inputs if k not in labelled]
    if not labelled or not unnamed:
        return [], None, ""
    ref = next(iter(labelled))
    names = list(labelled[ref])
    if any(list(v) != names for v in labelled.values()):
        return [], None, ""  # reordered by name: refused beside unnamed inputs
    dk = inputs[ref].kind == "dk"
    moved = [k for k in labelled if inputs[k].moved]
    if dk and len(names) == len(DK68_REGIONS):
        if not moved:
            return [], None, ""
        return unnamed, moved[0], "DK68 order (the atlas's), not the order of " + moved[0]
    if moved:
        return [], None, ""  # a reordered DK subset: refused beside unnamed inputs
    return unnamed, ref, f"the region order of {ref} ({len(names)} regions: {_shown(names)})"


def warn_unnamed(
    inputs: Mapping[str, Named], labelled: Mapping[str, Sequence[str]] | None = None
) -> None:
    """One :class:`InputWarning` naming the inputs without region names that are taken to be in
    the order of the named ones (:func:`unnamed_inputs`); none where there is nothing to say."""
    unnamed, ref, order = unnamed_inputs(inputs, labelled)
    if not unnamed:
        return
    one = len(unnamed) == 1
    warnings.warn(
        f"{', '.join(unnamed)} {'names' if one else 'name'} no regions, so "
        f"{'its' if one else 'their'} regions are taken to be in {order}; "
        f"check that {'it lists' if one else 'they list'} the regions in that order, or give "
        f"{'it' if one else 'them'} the region names of {ref} (a header row, or pandas labels)",
        InputWarning,
        stacklevel=4,
    )


def match_inputs(inputs: Mapping[str, Named]) -> tuple[tuple[str, ...] | None, dict[str, np.ndarray]]:
    """Match the named region files of one subject by name (see the module's docstring).

    Parameters
    ----------
    inputs : mapping of file name to :class:`Named`
        In order of precedence: FC or time-series runs first, then SC and maps.

    Returns
    -------
    names : tuple of str or None
        The subject's region names (the first named file's), or None where no file names its
        regions (numbering only counts next to another atlas's names).
    orders : dict
        For each file to reorder, the positions that put its regions in the names' order
        (:func:`take_regions`); an :class:`InputWarning` says so.

    Raises
    ------
    InvalidInputError
        Files naming other regions than the first named one, a region named twice, or a file
        without names next to a file whose regions had to be reordered (its order is unknown).
    """
    labelled = labelled_names(inputs)
    if not labelled:
        return None, {}
    names, ref, orders = align_names(labelled, "file")
    todo = {k: o for k, o in orders.items() if o is not None}
    for k in todo:
        warnings.warn(
            f"{k}: lists the regions of {ref} in another order; put in {ref}'s order by name",
            InputWarning,
            stacklevel=3,
        )
    dk = inputs[ref].kind == "dk"
    full = dk and len(names) == len(DK68_REGIONS)
    moved = [*todo, *(k for k in labelled if inputs[k].moved and not full)]
    plain = [k for k in inputs if k not in labelled]
    if moved and plain:
        order = "DK68 order" if dk else f"{ref}'s order"
        one = len(plain) == 1
        raise InvalidInputError(
            f"lists the regions {'of ' + ref + ' ' if not dk else ''}in another order and was put "
            f"in {order} by name, but {', '.join(plain)} {'has' if one else 'have'} no "
            f"region-name header, so the order of {'its' if one else 'their'} regions cannot be "
            f"checked; give every file the same header of region names, or every file in {order}",
            moved[0],
        )
    if dk and not full:
        missing = [r for r in DK68_REGIONS if r not in names]
        warnings.warn(
            f"{ref}: names {len(names)} of the 68 DK68 regions (not {_shown(missing, 4)}): "
            f"taken as a {len(names)}-region atlas of these regions, in DK68 order",
            InputWarning,
            stacklevel=3,
        )
    return names, todo
