"""Regional BOLD time series from TSV, CSV (also gzipped), NPY or one-array NPZ files (frames x
regions, checked).

Region columns are matched to the atlas by their names where the file names them (any common
spelling, FreeSurfer label IDs too, behind a prefix or suffix all names share such as XCP-D's
atlas name; ``np.savetxt``'s ``#`` before the header is ignored) and put in atlas order; aparc's
non-cortical labels (unknown, corpus callosum, medial wall) are dropped with a warning, and so is
a first column of frame numbers or times. Files without names are taken in atlas order (68
columns: DK68's, which the commands say once, :func:`warn_dk68_by_position`); a first
row of distinct whole numbers above frames that are not all whole numbers is a header of label
numbers, never a frame: FreeSurfer DK IDs name the regions, a numbering 0..N-1 / 1..N is dropped
and other label numbers (an atlas's, wmparc's white matter) are refused
(:mod:`~delssome_norms.io.label_checks`), as are white-matter names (``wm-lh-*``). Missing
frames can be dropped within limits (:data:`MAX_DROPPED_FRAMES`); fewer than
:data:`MIN_REGIONS` regions are refused. A header of some DK68 regions only (e.g. one
hemisphere) is an atlas of those regions, in DK68 order; another atlas's names are kept
(:func:`read_timeseries_named`) and runs are matched by them. A run whose header names its
regions may have fewer frames than regions (a fine atlas, a short scan); a header-less one is
refused as likely transposed, and one of 68 rows and fewer other columns is said to be likely
transposed too (:func:`~delssome_norms.io.timeseries_shape.transposed_hint`). A square table
exactly symmetric (an FC, its Fisher z, a covariance) is refused as the matrix it is
(:func:`~delssome_norms.io.timeseries_shape.refuse_connectivity_matrix`).
"""

from __future__ import annotations

import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.checks import check_timeseries
from delssome_norms.io.label_checks import is_label_row, label_row_error
from delssome_norms.io.named_regions import (
    Named,
    dk_order,
    match_inputs,
    take_regions,
    unnamed_inputs,
)
from delssome_norms.io.readers import (
    PathLike,
    _atlas_names,
    _fmt_idx,
    check_input_file,
    read_labelled_numeric,
)
from delssome_norms.io.region_names import (
    header_kind,
    header_names,
    is_frame_index,
    is_numbering,
    numbering_permutation,
    warn_numbered_order,
)
from delssome_norms.io.region_names import names_regions as _named_header
from delssome_norms.io.regions import (
    DK68_REGIONS,
    canonical_region_key,
    dk_name_count,
    freesurfer_id_names,
)
from delssome_norms.io.timeseries_shape import (
    refuse_connectivity_matrix,
    transposed_hint,
    with_numeric_header,
)

MAX_DROPPED_FRAMES = 0.5
"""Largest fraction of a run's frames ``drop_na_frames`` drops; beyond it the run is refused."""

MIN_REGIONS = 3
"""Fewest regions of a run: an FCD correlates windowed FCs of at least two region pairs."""

_NOT_CORTEX = frozenset({"unknown", "corpuscallosum", "medialwall", "background"})
"""Labels of an aparc/atlas extraction that are no cortical region (``ctx-lh-unknown``,
``ctx-rh-corpuscallosum``, ``L_Medial_wall``): their columns are dropped with a warning."""
_NOT_CORTEX_IDS = frozenset({"0", "1000", "1004", "2000", "2004"})
"""FreeSurfer label IDs of the same (background, ``ctx-?h-unknown``, ``ctx-?h-corpuscallosum``)."""


def _drop_non_cortex(
    names: list[str], arr: np.ndarray, atlas: Sequence[str], name: str
) -> tuple[list[str], np.ndarray, list[int]]:
    """The columns without aparc's non-cortical labels (unknown, corpus callosum, medial wall),
    with an :class:`InputWarning` naming them, and the kept columns' indices."""
    keys = {canonical_region_key(a) for a in atlas}

    def other(label: str) -> bool:
        key = canonical_region_key(label)
        if key in keys:
            return False
        bare = "".join(c for c in label.lower() if c.isalnum())
        return (
            (key is not None and key[1] in _NOT_CORTEX)
            or bare in _NOT_CORTEX
            or (label.strip() in _NOT_CORTEX_IDS)
        )

    drop = [k for k, label in enumerate(names) if other(label)]
    if not drop:
        return names, arr, list(range(len(names)))
    warnings.warn(
        f"{name}: dropped {len(drop)} column(s) that are no cortical region of the atlas "
        f"({', '.join(repr(names[k]) for k in drop[:4])}{' ...' if len(drop) > 4 else ''})",
        InputWarning,
        stacklevel=3,
    )
    keep = [k for k in range(len(names)) if k not in set(drop)]
    return [names[k] for k in keep], arr[:, keep], keep


def timeseries_header(
    header: list[str] | None, arr: np.ndarray, name: str, n_atlas: int = len(DK68_REGIONS)
) -> tuple[list[str] | None, np.ndarray]:
    """The column names of a time-series table, and its frames without a header row.

    A header row is read by :func:`delssome_norms.io.region_names.header_names`, the matcher
    the FC and SC readers share. Region names pass on (matched to the atlas later). A row that
    only numbers the columns (``roi_0 ...``, or a numeric first row ``0, 1, ...`` /
    ``1, 2, ...`` as pandas writes, also with its index column) is dropped: the columns are in
    atlas order by contract. FreeSurfer label IDs (``1001, 1002, ...``, bare or behind a prefix)
    name the regions. Other names are read in file order, with a warning, for another atlas's
    width, and refused otherwise: taken as numbers or skipped, they would misplace every region
    silently.
    """
    if header is not None:
        return header_names(header, arr, name, n_atlas)
    return _columns(None, arr, name, n_atlas)[:2]


def _columns(
    header: list[str] | None, arr: np.ndarray, name: str, n_atlas: int
) -> tuple[list[str] | None, np.ndarray, str]:
    """:func:`timeseries_header` with what the names are
    (:func:`delssome_norms.io.region_names.header_kind`: ``"dk"``, ``"numbered"``, ``"own"``;
    ``"plain"`` without names); another atlas's names are kept, without a warning."""
    if header is not None:
        return header_kind(header, arr, name, n_atlas)
    if arr.ndim != 2 or arr.shape[0] < 2:
        return None, arr, "plain"
    first = arr[0]
    if np.isnan(first[0]) and (head := numbering_permutation(first[1:])) is not None:
        # DataFrame.to_csv with its index: ",0,1,..." (columns in any order), an index column
        arr = arr[1:]
        if is_numbering(arr[:, 0]):
            arr = arr[:, 1:]
        return None, _in_numbered_order(arr, first[1:], head, name), "plain"
    ids = freesurfer_id_names(first)
    if ids is not None:
        return ids, arr[1:], "dk"
    corner = int(bool(np.isnan(first[0])) and arr.shape[1] > 1)  # pandas' index column: ",1001,..."
    index = corner and (is_numbering(arr[1:, 0]) or is_frame_index(arr[1:, 0]))  # numbers, times
    if index and (ids := freesurfer_id_names(first[1:])):
        return ids, arr[1:, 1:], "dk"
    if (head := numbering_permutation(first)) is not None:  # a numbered header row, not a frame
        arr = _in_numbered_order(arr[1:], first, head, name)
    elif is_label_row(first[corner:], arr[1:, corner:]):  # "2, 4, 6, ..." above the frames
        raise label_row_error(first[corner:], name)
    return None, _without_frame_column(arr, name), "plain"


def _in_numbered_order(arr: np.ndarray, numbers: np.ndarray, order: np.ndarray, name: str) -> np.ndarray:
    """The columns of a table under a header row of bare numbers put in the numbers' order (the
    atlas's), with an :class:`InputWarning` when they were not in it."""
    if arr.shape[1] != order.size or np.array_equal(order, np.arange(order.size)):
        return arr
    warn_numbered_order(name, [f"{v:g}" for v in numbers], order, stacklevel=5)
    return arr[:, order]


def _without_frame_column(arr: np.ndarray, name: str) -> np.ndarray:
    """A header-less table without a first column of frame numbers (0, 1, ... / 1, 2, ...) or
    evenly spaced frame times, with an :class:`InputWarning`: taken for a region it would add
    a 69th "region" to the FC. No BOLD signal is an exact arithmetic sequence."""
    if arr.ndim != 2 or arr.shape[1] <= MIN_REGIONS or arr.shape[0] < 3:
        return arr
    if not is_frame_index(arr[:, 0]):
        return arr
    warnings.warn(
        f"{name}: its first column counts frames or gives their times ({arr[0, 0]:g}, "
        f"{arr[1, 0]:g}, {arr[2, 0]:g}, ...), not a region's signal; it is dropped and the other "
        f"{arr.shape[1] - 1} columns are the regions",
        InputWarning,
        stacklevel=4,
    )
    return arr[:, 1:]


def _columns_in_words(
    ks: np.ndarray, names: list[str] | None, file_cols: list[int] | None, header: list[str] | None
) -> str:
    """``region column 6 (lh_x)``, ``region columns 6 (lh_x), 9 (lh_y)``, ``region column 6``:
    up to four regions of a run by their columns (counted from 1: the messages say so) and the
    names its header gives them (none without a header)."""
    ks = [int(k) for k in ks]
    labels = names if names is not None else header
    shown = [
        f"{(file_cols[k] if file_cols is not None else k) + 1}"
        + (f" ({labels[k]})" if labels is not None and k < len(labels) else "")
        for k in ks[:4]
    ]
    more = " ..." if len(ks) > 4 else ""
    return f"region column{'s' if len(ks) > 1 else ''} {', '.join(shown)}{more}"


_COUNTED = "columns counted from 1"
"""How the messages of :func:`_read_run` count a run's columns, said in each (the FCD's
constant-window refusal counts regions from 0 and says so too)."""


def _refuse_constant(arr: np.ndarray, regions_at, name: str) -> None:
    """Refuse a run with a region constant over every frame (its correlation is undefined),
    naming it by ``regions_at`` (:func:`_columns_in_words`)."""
    const = np.flatnonzero(np.ptp(arr, axis=0) == 0) if arr.ndim == 2 and arr.size else []
    if len(const):
        one = len(const) == 1
        raise InvalidInputError(
            f"{regions_at(const)} {'is' if one else 'are'} constant over every frame "
            f"({_COUNTED}), so {'its' if one else 'their'} correlation is undefined: fix the "
            f"extraction of {'that region' if one else 'those regions'}",
            name,
        )


def _read_run(
    path: PathLike,
    min_frames: int = 2,
    regions: Sequence[str] | None = None,
    drop_na_frames: bool = False,
    warn_own: bool = True,
) -> Named:
    """:func:`read_timeseries`, and what the file's names say about its columns
    (:class:`~delssome_norms.io.named_regions.Named`; ``warn_own``: warn that another atlas's
    names leave the columns in file order)."""
    name = str(path)
    p = Path(path)
    fix = "transpose it so that rows are frames and columns are regions (numpy: ts.T)"
    header, kind = None, "plain"
    if p.suffix.lower() in (".npy", ".npz"):
        check_input_file(p)
        keys: list[str] = []
        try:
            arr = np.load(p, allow_pickle=False)
            if isinstance(arr, np.lib.npyio.NpzFile):
                with arr as npz:
                    keys = list(npz.files)
                    arr = npz[keys[0]] if len(keys) == 1 else None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            with open(p, "rb") as f:
                magic = f.read(6)
            if magic != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":  # npy, npz (zip)
                raise InvalidInputError(
                    f"is not a numpy {p.suffix} file (save it with np.save, or give a text "
                    "table a .tsv or .csv name)",
                    name,
                ) from None
            raise InvalidInputError(f"is not a readable {p.suffix} array ({exc})", name) from None
        if arr is None:
            raise InvalidInputError(
                f"holds {len(keys)} arrays ({', '.join(keys[:5])}); expected one "
                "(frames x regions): save it alone (np.save)",
                name,
            )
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            # complex: float64 would drop the imaginary part; bool, text: not a signal
            raise InvalidInputError(f"holds a {arr.dtype} array, expected real numbers", name)
        refuse_connectivity_matrix(arr, name)  # an FC is no run of N frames of N regions
    else:
        try:
            arr, header, labels = read_labelled_numeric(path, allow_na=True)
        except InvalidInputError as err:  # "line 2 has the non-numeric value 'lh_bankssts'"
            word = err.problem.rsplit("non-numeric value ", 1)[-1].strip("'\"")
            if "non-numeric value" in err.problem and dk_name_count([word]):
                raise InvalidInputError(
                    f"has region names down its first column ({word!r}, ...): regions x frames "
                    f"layout; {fix}",
                    name,
                ) from None
            raise
        if labels is not None:  # names down the first column: a named matrix, or regions x frames
            refuse_connectivity_matrix(with_numeric_header(arr, header), name)
            if _named_header(labels):
                raise InvalidInputError(
                    f"has region names down its first column ({labels[0]!r}, ...): regions x "
                    f"frames layout; {fix}",
                    name,
                )
            raise InvalidInputError(
                f"is not a numeric table: its rows start with non-numeric values such as "
                f"{labels[0][:40]!r}",
                name,
            )
        refuse_connectivity_matrix(arr, name)  # named columns, in any order
        header, arr, kind = _columns(
            header, np.asarray(arr, dtype=np.float64), name, len(_atlas_names(regions))
        )
        refuse_connectivity_matrix(arr, name)  # without pandas' header row and index column
        if kind == "own" and warn_own:
            warnings.warn(  # another atlas: its own names, its own order
                f"{name}: the column names ({header[0]!r}, ...) are not DK68 regions; the "
                f"{np.shape(arr)[1]} columns are taken in file order",
                InputWarning,
                stacklevel=4,
            )
    arr = np.asarray(arr, dtype=np.float64)
    names = header if kind == "dk" else None
    if kind in ("own", "numbered") and len(header) != arr.shape[1]:
        raise InvalidInputError(
            f"has {len(header)} column names but {arr.shape[1]} values per row", name
        )
    if names is not None and len(names) != arr.shape[1]:
        raise InvalidInputError(f"has {len(names)} column names but {arr.shape[1]} values per row", name)
    file_cols = None  # the file's columns left after dropping non-cortical labels
    if names is not None:
        names, arr, file_cols = _drop_non_cortex(names, arr, _atlas_names(regions), name)
    if arr.ndim == 2 and arr.shape[1] < MIN_REGIONS:
        raise InvalidInputError(
            f"has {arr.shape[1]} region column(s); an FC and its FCD need at least "
            f"{MIN_REGIONS} regions (expected frames x regions, one column per region)",
            name,
        )

    def regions_at(ks: np.ndarray) -> str:  # counted from 1, as in a spreadsheet
        return _columns_in_words(ks, names, file_cols, header)

    if arr.ndim == 2 and np.isnan(arr).any():
        empty = np.flatnonzero(np.isnan(arr).all(axis=0))
        if empty.size:
            one = empty.size == 1
            raise InvalidInputError(
                f"{regions_at(empty)} {'has' if one else 'have'} no value in any frame "
                f"(all n/a; {_COUNTED}): fix the extraction of "
                f"{'that region' if one else 'those regions'}",
                name,
            )
        na = ~np.isfinite(arr).all(axis=1)
        if drop_na_frames:
            rows = np.flatnonzero(na)
            if rows.size > MAX_DROPPED_FRAMES * arr.shape[0]:
                raise InvalidInputError(
                    f"{rows.size} of {arr.shape[0]} frames have missing values: more than "
                    f"{MAX_DROPPED_FRAMES:.0%} would be dropped, too few to trust an FC/FCD",
                    name,
                )
            kept = np.flatnonzero(~na)
            interior = rows[(rows > kept[0]) & (rows < kept[-1])]
            warnings.warn(
                f"{name}: dropped {rows.size} of {arr.shape[0]} frame(s) with missing values "
                f"(n/a; frames {_fmt_idx(rows)}, counted from 1)"
                + (
                    f"; {interior.size} of them inside the run, so the frames around each gap "
                    "are joined and FCD windows span it"
                    if interior.size
                    else ""
                ),
                InputWarning,
                stacklevel=2,
            )
            arr = arr[~na]
    if names is not None and arr.ndim == 2:
        rows_n, cols_n = arr.shape
        if rows_n < min_frames:  # named columns: fewer frames than regions is no transposition
            raise InvalidInputError(
                f"has {rows_n} frames of {cols_n} named regions; at least {min_frames} are "
                "needed (two FCD windows): a longer scan",
                name,
            )
        _refuse_constant(np.nan_to_num(arr), regions_at, name)
        order, dk_names = dk_order(names, _atlas_names(regions), name)
        arr = arr[:, order]
        checked = check_timeseries(arr, input_name=name, min_frames=min_frames, named=True)
        return Named(checked, dk_names, "dk", not is_numbering(order))
    # another atlas's names in a header row: the orientation is known (short runs of a fine
    # atlas pass); numbering (0 ... N-1) may be a transposed run's frame numbers
    rows_n, cols_n = arr.shape if arr.ndim == 2 else (0, 0)
    if np.isfinite(arr).all() and rows_n >= min_frames and (rows_n >= cols_n or kind == "own"):
        _refuse_constant(arr, regions_at, name)  # as check_timeseries would, in file columns
    # no names: 68 rows and 60 columns may be a short DK68 run saved regions x frames
    hint = transposed_hint(np.shape(arr), len(_atlas_names(regions))) if kind != "own" else ""
    try:
        checked = check_timeseries(arr, input_name=name, min_frames=min_frames, named=kind == "own")
    except InvalidInputError as err:
        if hint and err.source == name and "are needed" in err.problem:  # too few frames
            raise InvalidInputError(err.problem + hint, name) from None
        raise
    if kind in ("own", "numbered"):
        return Named(checked, tuple(header), kind)
    return Named(checked)


def read_timeseries(
    path: PathLike,
    min_frames: int = 2,
    regions: Sequence[str] | None = None,
    drop_na_frames: bool = False,
) -> np.ndarray:
    """Read regional BOLD time series of shape (frames, regions) from TSV, CSV or NPY.

    Parameters
    ----------
    path : path
        TSV/CSV (optional header row; gzip-compressed too) or NPY/NPZ (one array; loaded with
        ``allow_pickle=False``).
    min_frames : int
        Fewest frames accepted.
    regions : sequence of str, optional
        Atlas region names in canonical order (default DK68). A header row of region names is
        matched to them by name (case-insensitive; ``ctx-lh-x``, ``lh_x``, ``lh.x``, ``L_x``,
        ``Right x``, ``x_lh``... accepted; FreeSurfer label IDs ``1001 ...`` too) and the columns
        are reordered to that order; a prefix or suffix shared by all names is ignored, aparc's
        ``unknown``, ``corpuscallosum`` and medial-wall columns (and FreeSurfer IDs 1000/1004/
        2000/2004) are dropped with a warning; other names matching no region are refused and
        listed. A header
        that only numbers the columns (``roi_0 ...``, ``0 1 ...``) is skipped and the columns
        are taken in atlas order; any other text header is refused.
    drop_na_frames : bool
        Drop frames with a missing value (BIDS ``n/a``, e.g. non-steady-state volumes) with an
        :class:`~delssome_norms.errors.InputWarning` instead of refusing them (at most
        :data:`MAX_DROPPED_FRAMES` of the run).

    Returns
    -------
    ndarray of shape (frames, N), float64
    """
    return _read_run(path, min_frames, regions, drop_na_frames).values


def read_timeseries_runs(
    paths: Sequence[PathLike],
    min_frames: int = 2,
    regions: Sequence[str] | None = None,
    drop_na_frames: bool = False,
) -> list[np.ndarray]:
    """Several runs of one subject (:func:`read_timeseries` each), refused when some name their
    regions and others do not (the unnamed ones' column order is unknown), when they name
    different regions or when they hold different numbers of regions. Runs that name another
    atlas's regions in another order than the first run are put in its order by name."""
    read = read_timeseries_named(paths, min_frames, regions, drop_na_frames, warn_own=True)
    _, orders = match_inputs({str(p): r for p, r in zip(paths, read)})
    return [
        take_regions(r.values, orders[str(p)], 1) if str(p) in orders else r.values
        for p, r in zip(paths, read)
    ]


def read_timeseries_named(
    paths: Sequence[PathLike],
    min_frames: int = 2,
    regions: Sequence[str] | None = None,
    drop_na_frames: bool = False,
    warn_own: bool = False,
) -> list[Named]:
    """The runs of :func:`read_timeseries_runs` as read, each with what its names say (to be
    matched with the subject's other files: :func:`delssome_norms.io.named_regions.match_inputs`);
    ``warn_own``: warn that the first run's names of another atlas leave it in file order."""
    read = [
        _read_run(p, min_frames, regions, drop_na_frames, warn_own and k == 0)
        for k, p in enumerate(paths)
    ]
    named = [str(p) for p, r in zip(paths, read) if r.kind in ("dk", "own")]
    if named and len(named) < len(read):
        plain = next(str(p) for p, r in zip(paths, read) if r.kind not in ("dk", "own"))
        raise InvalidInputError(
            f"{named[0]} names its regions but {plain} does not, so the columns of the second "
            "cannot be matched to the first: give every run a header of region names, or none",
            plain,
        )
    widths = sorted({r.values.shape[1] for r in read})
    if len(widths) > 1:
        raise InvalidInputError(f"runs have different numbers of regions {widths}", str(paths[0]))
    return read


def dk68_by_position(inputs: Mapping[str, Named], runs: Sequence[PathLike]) -> list[str]:
    """The ``runs`` among a subject's ``inputs`` (read as :func:`read_timeseries_named` and the
    SC and map readers read them) that name no regions (no header, or one that only numbers the
    columns) and have 68 columns: they are taken to be the DK68 regions in the packaged order,
    silently unless said (:func:`warn_dk68_by_position`). None where another input names the
    regions of another atlas, or DK68's in another order: the unnamed runs are then taken in its
    order, which :func:`~delssome_norms.io.named_regions.warn_unnamed` says already."""
    if unnamed_inputs(inputs)[0] or any(e.kind == "own" for e in inputs.values()):
        return []
    return [
        str(p)
        for p in runs
        if (e := inputs.get(str(p))) is not None
        and e.kind in ("plain", "numbered")
        and np.ndim(e.values) == 2
        and np.shape(e.values)[1] == len(DK68_REGIONS)
    ]


def warn_dk68_by_position(runs: Sequence[str], stacklevel: int = 2) -> None:
    """One :class:`InputWarning` naming the runs (:func:`dk68_by_position`) whose 68 columns
    are taken to be the DK68 regions by position: nothing checks that order, and every output
    labels the regions with DK68 names. Nothing for no runs."""
    runs = list(dict.fromkeys(map(str, runs)))  # a run given twice is named once
    if not runs:
        return
    one = len(runs) == 1
    shown = ", ".join(runs[:4]) + (f" (and {len(runs) - 4} more)" if len(runs) > 4 else "")
    warnings.warn(
        f"{shown} {'names' if one else 'name'} no regions: {'its' if one else 'their'} 68 columns "
        "are taken to be the DK68 regions in the packaged order (docs/inputs.md); give "
        f"{'it' if one else 'them'} a header row of region names (TSV or CSV) to have them "
        "matched by name",
        InputWarning,
        stacklevel=stacklevel + 1,
    )
