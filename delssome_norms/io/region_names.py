"""What the header row of a region table names: one matcher for time series, FC and SC files.

:func:`header_names` reads a header row the way every region reader of the toolkit does
(:func:`delssome_norms.io.timeseries.read_timeseries`, :func:`delssome_norms.io.readers.read_fc`,
:func:`delssome_norms.io.readers.read_sc`): region names in any spelling that
:func:`delssome_norms.io.regions.canonical_region_key` reads, also behind a prefix or suffix
that all names share (XCP-D's ``Desikan_``), and FreeSurfer label IDs (``Mean_1001``) pass on to
be matched to the atlas by name; a header that only numbers the columns (one prefix and the
numbers 0..n-1 or 1..n, in any order: :func:`numbering_order`) is dropped, its columns put in
numeric order (atlas order by contract), and one that repeats a number refused; other
text is read in file order, with a warning, for another atlas's width, and refused for the
atlas's own width, where it would be taken for the atlas's regions in a wrong order.
:func:`header_kind` is the same reading with the kind of names, keeping another atlas's names
(:mod:`delssome_norms.io.named_regions` matches them across the files of one subject).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.label_checks import refuse_white_matter
from delssome_norms.io.regions import (
    DK68_REGIONS,
    dk_name_count,
    freesurfer_id_names,
    header_numbers,
    looks_like_region_header,
    shared_prefix_numbers,
)

_ROW_INDEX_NAMES = frozenset({"", "unnamed: 0", "index"})
"""Names of a first column that numbers the rows: pandas' index (``to_csv`` leaves its name
empty; read back, ``Unnamed: 0``) or a column named so."""
_INDEX_COLUMN_NAMES = _ROW_INDEX_NAMES | frozenset(
    {"time", "t", "frame", "frames", "volume", "tr", "timepoint", "onset"}
)
"""Names of a first column that counts frames or gives their times (not a region)."""


def is_numbering(values: np.ndarray) -> bool:
    """Whether values count 0, 1, ... or 1, 2, ... (a header or index, not data)."""
    n = np.size(values)
    return np.array_equal(values, np.arange(n)) or np.array_equal(values, np.arange(1, n + 1))


def numbering_permutation(values: np.ndarray) -> np.ndarray | None:
    """Positions that put a row of numbers 0..n-1 or 1..n, in any order, in numeric order (a
    header or index that numbers the regions); None for any other row."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        return None
    order = np.argsort(values, kind="stable")
    return order if is_numbering(values[order]) else None


def names_regions(header: list[str] | None) -> bool:
    """Whether a header row names regions (most of its names carry a hemisphere)."""
    return header is not None and looks_like_region_header(header)


def without_comment_mark(header: list[str]) -> list[str]:
    """The header without the ``#`` that ``np.savetxt(..., header=...)`` puts before it."""
    first = header[0].lstrip()
    if not first.startswith("#"):
        return header
    first = first[1:].strip()
    return ([first] if first else []) + header[1:]


def _common_start(texts: list[str]) -> str:
    """The characters every text starts with."""
    first, last = min(texts), max(texts)
    n = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    return first[:n]


def without_common_affix(header: list[str]) -> list[str]:
    """The header without a prefix or suffix that every name shares (an atlas or a statistic:
    ``Desikan_ctx-lh-bankssts``, ``aparc.lh_bankssts``, ``lh_bankssts_mean``) where the names
    then read as more DK68 regions; else unchanged."""
    tokens = [h.strip() for h in header]
    if len(tokens) < 2:
        return header
    pre = _common_start(tokens)
    pre = pre[: max(pre.rfind(c) for c in "-_. ") + 1]
    suf = _common_start([t[::-1] for t in tokens])[::-1]
    cuts = [i for i in (suf.find(c) for c in "-_. ") if i >= 0]
    suf = suf[min(cuts) :] if cuts else ""
    best, n_best = header, dk_name_count(tokens)
    for p, q in ((pre, ""), ("", suf), (pre, suf)):
        if p or q:
            cand = [t[len(p) : len(t) - len(q)] for t in tokens]
            if all(cand) and dk_name_count(cand) > n_best:
                best, n_best = cand, dk_name_count(cand)
    return best


def is_frame_index(values: np.ndarray) -> bool:
    """Whether a column counts frames (0, 1, ... / 1, 2, ...) or gives evenly spaced times."""
    if is_numbering(values):
        return True
    step = np.diff(values)
    return bool(
        step.size > 1
        and np.isfinite(step).all()
        and step[0] > 0
        and np.allclose(step, step[0], rtol=1e-6, atol=0)
    )


def leads_with_index(header: Sequence[str], arr: np.ndarray, frames: bool = True) -> bool:
    """Whether the first of the columns that ``header`` names is an index, not a region: named
    like pandas' index (an empty name, ``Unnamed: 0``, ``index``) and counting the rows 0, 1, ...
    or 1, 2, ... (``pd.DataFrame.to_csv`` with its default index). With ``frames``, also a
    column of frame numbers or evenly spaced times named so (``time``, ``frame``, ``TR``...):
    a time series's; without, the rows must be counted exactly (a map's or an FCD-CDF's)."""
    if arr.ndim != 2 or len(header) != arr.shape[1] or arr.shape[1] < 2:
        return False
    names = _INDEX_COLUMN_NAMES if frames else _ROW_INDEX_NAMES
    counts = is_frame_index if frames else is_numbering
    return str(header[0]).strip().lower() in names and bool(counts(arr[:, 0]))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def unknown_names_error(tokens: list[str], name: str, n_atlas: int) -> InvalidInputError:
    """The error for a header of ``n_atlas`` names that are not DK68 regions: it names the file,
    the first unknown names and the two fixes."""
    unknown = [t for t in tokens if not dk_name_count([t])] or tokens
    shown = ", ".join(repr(t) for t in unknown[:3]) + (", ..." if len(unknown) > 3 else "")
    if all(_is_number(t) for t in unknown):  # names down the first column, no header row
        return InvalidInputError(
            f"its first line looks like data, not a header row of region names (after its first "
            f"cell it holds numbers: {shown}), so the file seems to name its regions down the "
            "first column only (as R's write.table(col.names=FALSE) writes); region names are "
            "read from a header row above the columns (also with names down the first column): "
            "add that header row of DK68 region names, or remove the first column if the rows "
            "and columns are in DK68 order",
            name,
        )
    return InvalidInputError(
        f"its first row is text but not DK68 region names with a hemisphere ({len(unknown)} of "
        f"{len(tokens)} names unknown: {shown}): rename the columns to DK68 region names, in any "
        "order (lh_bankssts, ctx-lh-bankssts or L_bankssts), or, if the columns are already in "
        "DK68 order, remove the header row"
        + (
            ". Another 68-region atlas is not supported: its regions would be taken for DK68's"
            if n_atlas == len(DK68_REGIONS)
            else ""
        ),
        name,
    )


def numbering_order(tokens: Sequence[str], name: str) -> np.ndarray | None:
    """Positions that put the columns of a numbering header in numeric order, or None.

    A numbering header is one shared prefix (any case, maybe none) and the numbers 0..n-1 or
    1..n, each once, in any order (``roi_3, roi_1, roi_2``; ``R05 ... R00``): the columns are
    the atlas's regions in that numeric order (by contract, as for a header in order). None for
    other headers: several prefixes (``Vis_1, SomMot_2``: an atlas's own names), text, and
    FreeSurfer label IDs (``Mean_1001``, matched by :func:`header_kind`).

    Numbers with gaps (``roi_1, roi_2, roi_4``: a region dropped; label values such as AAL's
    ``Mean_2001 ...``) are names, matched by name like any atlas's own.

    Raises
    ------
    InvalidInputError
        One prefix and a number used twice (``roi_1, roi_2, roi_2``): which column is which
        region cannot be told, by number or by name.
    """
    numbers = shared_prefix_numbers(tokens)
    if numbers is None:
        return None
    n = len(numbers)
    if sorted(numbers) in (list(range(n)), list(range(1, n + 1))):
        return np.argsort(np.asarray(numbers), kind="stable")
    repeated = sorted({k for k in numbers if numbers.count(k) > 1})
    if not repeated:
        return None  # gaps: names (and FreeSurfer label IDs, matched by header_kind)
    shown = ", ".join(repr(str(t).strip()) for t in tokens[:3])
    raise InvalidInputError(
        f"its column names number the {n} columns ({shown}, ...) with repeats (repeated: "
        f"{', '.join(str(k) for k in repeated[:5])}{', ...' if len(repeated) > 5 else ''}), so "
        "which column is which region cannot be told: number every column once, 0..n-1 or 1..n "
        "(any order), name the regions, or remove the header row if the columns are in atlas "
        "order",
        name,
    )


def warn_numbered_order(name: str, tokens: Sequence[str], order: np.ndarray, stacklevel: int) -> None:
    """The :class:`InputWarning` of a header that numbers its columns out of numeric order
    (``order``: :func:`numbering_order`); ``stacklevel`` as for :func:`warnings.warn`, plus 1."""
    first = ", ".join(str(t).strip() for t in tokens[:3])
    ordered = ", ".join(str(tokens[k]).strip() for k in order[:3])
    warnings.warn(
        f"{name}: its column names number the regions in another order ({first}, ...); put in "
        f"numeric order ({ordered}, ...), the atlas's order",
        InputWarning,
        stacklevel=stacklevel,
    )


def header_kind(
    header: list[str],
    arr: np.ndarray,
    name: str,
    n_atlas: int = len(DK68_REGIONS),
    sort: bool = True,
) -> tuple[list[str], np.ndarray, str]:
    """What a header row names, its names and the values without a frame-number column.

    Returns ``(names, arr, kind)`` with ``kind`` one of ``"dk"`` (region names of the atlas, in
    any spelling, FreeSurfer label IDs turned into DK names; matched to the atlas by name),
    ``"numbered"`` (a header that only numbers the columns, ``roi_1 ...`` in any order
    (:func:`numbering_order`): atlas order by contract; ``sort``: the columns of ``arr`` and the
    names put in numeric order, with an :class:`InputWarning` where they were not, else left in
    file order for the caller to sort) or ``"own"`` (another atlas's names, for another width
    than the atlas's: kept in file order, to name and align that atlas's inputs). Raises for
    ``n_atlas`` columns named with other text (see :func:`header_names`), for a numbering
    that repeats a number (numbers with gaps are names) and for white-matter labels
    (:func:`~delssome_norms.io.label_checks.refuse_white_matter`: no cortical regions).
    """
    header = without_comment_mark(header)
    refuse_white_matter(header, name)  # wm-lh-x would read as x once "wm-" is taken for a prefix
    # pandas' DataFrame.to_csv writes its index as an unnamed first column; some tools a column
    # of frame numbers or times
    if leads_with_index(header, arr):
        header, arr = header[1:], arr[:, 1:]
    header = without_common_affix(header)
    tokens = [h for h in header if h != ""]
    other_atlas = arr.ndim == 2 and arr.shape[1] != n_atlas
    if names_regions(header) and not (other_atlas and 2 * dk_name_count(tokens) < len(tokens)):
        return header, arr, "dk"  # mostly DK names (extra or missing ones are listed when matched)
    order = numbering_order(tokens, name)
    if order is not None:  # numbered columns: atlas order by contract, in numeric order
        in_order = np.array_equal(order, np.arange(order.size))
        if sort and not in_order and arr.ndim == 2 and len(tokens) == len(header) == arr.shape[1]:
            warn_numbered_order(name, header, order, stacklevel=4)
            header, arr = [header[k] for k in order], arr[:, order]
        return header, arr, "numbered"
    numbers = header_numbers(tokens)
    ids = freesurfer_id_names(numbers) if numbers is not None else None
    if ids is not None:  # "Mean_1001 ...": FreeSurfer label IDs behind a prefix
        return ids, arr, "dk"
    if other_atlas:
        return [h.strip() for h in header], arr, "own"  # another atlas: its names, its order
    raise unknown_names_error(tokens, name, n_atlas)


def header_names(
    header: list[str], arr: np.ndarray, name: str, n_atlas: int = len(DK68_REGIONS)
) -> tuple[list[str] | None, np.ndarray]:
    """The region names of a header row (None: the columns are in atlas order), and the values
    without a first column of frame numbers or times.

    Parameters
    ----------
    header : list of str
        The table's first row (not numeric).
    arr : ndarray of shape (rows, columns)
        The values below it.
    name : str
        File name for messages.
    n_atlas : int
        The atlas's number of regions (default 68, DK68).

    Returns
    -------
    names : list of str or None
        Names to match to the atlas (:func:`delssome_norms.io.regions.match_regions`, which
        lists unknown, repeated or missing ones), FreeSurfer label IDs turned into DK names; None
        for a header that only numbers the columns, and for another atlas's names (with an
        :class:`InputWarning`: its columns are read in file order).
    arr : ndarray

    Raises
    ------
    InvalidInputError
        For ``n_atlas`` columns named with text that is neither region names nor numbering
        (e.g. another 68-region atlas's labels): taken in file order they would misplace every
        region silently.
    """
    names, arr, kind = header_kind(header, arr, name, n_atlas)
    if kind == "own":  # another atlas: its own names, its own order
        warn_file_order(name, names[0], f"the {arr.shape[1]} columns are", stacklevel=5)
    return names if kind == "dk" else None, arr


def warn_file_order(name: str, first: str, taken: str, stacklevel: int) -> None:
    """The :class:`InputWarning` of a file whose names are another atlas's: ``taken`` (e.g. "the
    10 columns are") is read in file order; ``stacklevel`` as for :func:`warnings.warn`, plus 1."""
    warnings.warn(
        f"{name}: the column names ({first!r}, ...) are not DK68 regions; {taken} taken in file order",
        InputWarning,
        stacklevel=stacklevel,
    )
