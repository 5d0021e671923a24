"""Regional BOLD time series from TSV, CSV or NPY files (frames x regions, checked).

Region columns are matched to the atlas by their names where the file names them (any common
spelling, FreeSurfer label IDs too) and put in atlas order; files without names are taken in atlas
order. Missing frames can be dropped within limits (:data:`MAX_DROPPED_FRAMES`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.checks import check_timeseries
from delssome_norms.io.readers import (
    PathLike,
    _atlas_names,
    _fmt_idx,
    _named_header,
    check_input_file,
    is_numbering,
    read_labelled_numeric,
)
from delssome_norms.io.regions import (
    DK68_REGIONS,
    dk_name_count,
    freesurfer_id_names,
    header_numbers,
    looks_like_index_header,
    match_regions,
)

MAX_DROPPED_FRAMES = 0.5
"""Largest fraction of a run's frames ``drop_na_frames`` drops; beyond it the run is refused."""


def timeseries_header(
    header: list[str] | None, arr: np.ndarray, name: str, n_atlas: int = len(DK68_REGIONS)
) -> tuple[list[str] | None, np.ndarray]:
    """The column names of a time-series table, and its frames without a header row.

    Region names pass on (matched to the atlas later). A row that only numbers the columns
    (``roi_0 ...``, or a numeric first row ``0, 1, ...`` / ``1, 2, ...`` as pandas writes, also
    with its index column) is dropped: the columns are in atlas order by contract. FreeSurfer
    label IDs (``1001, 1002, ...``, bare or behind a prefix) name the regions. Other names are
    read in file order, with a warning, for another atlas's width, and refused otherwise: taken
    as numbers or skipped, they would misplace every region silently.
    """
    if header is not None and arr.ndim == 2 and len(header) == arr.shape[1] and arr.shape[1] > 1:
        # pandas' DataFrame.to_csv writes its index as an unnamed first column
        if header[0].strip() in ("", "Unnamed: 0", "index") and is_numbering(arr[:, 0]):
            header, arr = header[1:], arr[:, 1:]
    if header is None:
        if arr.ndim != 2 or arr.shape[0] < 2:
            return None, arr
        first = arr[0]
        if np.isnan(first[0]) and is_numbering(first[1:]):
            # DataFrame.to_csv with its index: ",0,1,..." then an index column
            arr = arr[1:]
            return None, arr[:, 1:] if is_numbering(arr[:, 0]) else arr
        ids = freesurfer_id_names(first)
        if ids is not None:
            return ids, arr[1:]
        if is_numbering(first):
            return None, arr[1:]  # a numbered header row, not a frame
        return None, arr
    tokens = [h for h in header if h != ""]
    other_atlas = arr.ndim == 2 and arr.shape[1] != n_atlas
    if _named_header(header) and not (other_atlas and 2 * dk_name_count(tokens) < len(tokens)):
        return header, arr  # mostly DK names (extra or missing ones are listed when matched)
    if looks_like_index_header(tokens):
        return None, arr  # numbered columns: atlas order by contract
    numbers = header_numbers(tokens)
    ids = freesurfer_id_names(numbers) if numbers is not None else None
    if ids is not None:  # "Mean_1001 ...": FreeSurfer label IDs behind a prefix
        return ids, arr
    if other_atlas:
        warnings.warn(  # another atlas: its own names, its own order
            f"{name}: the column names ({header[0]!r}, ...) are not DK68 regions; the "
            f"{arr.shape[1]} columns are taken in file order",
            InputWarning,
            stacklevel=3,
        )
        return None, arr
    shown = ", ".join(repr(h) for h in header[:3])
    raise InvalidInputError(
        f"its first row ({shown}, ...) is text but not DK68 region names with a hemisphere: "
        "remove the row to give the columns in atlas order, or name the columns like "
        "lh_bankssts, ctx-lh-bankssts or L_bankssts",
        name,
    )


def _read_run(
    path: PathLike,
    min_frames: int = 2,
    regions: Sequence[str] | None = None,
    drop_na_frames: bool = False,
) -> tuple[np.ndarray, bool]:
    """:func:`read_timeseries`, and whether the file named its regions."""
    name = str(path)
    p = Path(path)
    fix = "transpose it so that rows are frames and columns are regions (numpy: ts.T)"
    header = None
    if p.suffix.lower() == ".npy":
        check_input_file(p)
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InvalidInputError(f"is not a readable .npy array ({exc})", name) from None
    else:
        arr, header, labels = read_labelled_numeric(path, allow_na=True)
        if labels is not None:
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
        header, arr = timeseries_header(
            header, np.asarray(arr, dtype=np.float64), name, len(_atlas_names(regions))
        )
    arr = np.asarray(arr, dtype=np.float64)
    names = header if _named_header(header) else None
    if names is not None and len(names) != arr.shape[1]:
        raise InvalidInputError(f"has {len(names)} column names but {arr.shape[1]} values per row", name)

    def column(k: int) -> str:
        return f"column {k + 1} ({names[k]})" if names is not None else f"column {k + 1}"

    if arr.ndim == 2 and np.isnan(arr).any():
        empty = np.flatnonzero(np.isnan(arr).all(axis=0))
        if empty.size:
            raise InvalidInputError(
                f"region {', '.join(column(k) for k in empty[:4])} has no value in any frame "
                "(all n/a): fix the extraction of that region",
                name,
            )
        na = ~np.isfinite(arr).all(axis=1)
        if drop_na_frames and not na.all():
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
        if rows_n < min_frames or rows_n < cols_n:
            need = max(min_frames, cols_n)
            raise InvalidInputError(
                f"has {rows_n} frames of {cols_n} named regions; at least {need} are needed "
                "(two FCD windows, and as many frames as regions for an FC): a longer scan",
                name,
            )
        const = np.flatnonzero(np.ptp(np.nan_to_num(arr), axis=0) == 0)
        if const.size:
            raise InvalidInputError(
                f"region {', '.join(column(k) for k in const[:4])}"
                f"{' ...' if const.size > 4 else ''} is constant; its correlation is undefined",
                name,
            )
        arr = arr[:, match_regions(names, _atlas_names(regions), name)]
    return check_timeseries(arr, input_name=name, min_frames=min_frames), names is not None


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
        TSV/CSV (optional header row) or NPY (loaded with ``allow_pickle=False``).
    min_frames : int
        Fewest frames accepted.
    regions : sequence of str, optional
        Atlas region names in canonical order (default DK68). A header row of region names is
        matched to them by name (case-insensitive; ``ctx-lh-x``, ``lh_x``, ``lh.x``, ``L_x``,
        ``Right x``, ``x_lh``... accepted; FreeSurfer label IDs ``1001 ...`` too) and the columns
        are reordered to that order; names matching no region are refused and listed. A header
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
    return _read_run(path, min_frames, regions, drop_na_frames)[0]


def read_timeseries_runs(
    paths: Sequence[PathLike],
    min_frames: int = 2,
    regions: Sequence[str] | None = None,
    drop_na_frames: bool = False,
) -> list[np.ndarray]:
    """Several runs of one subject (:func:`read_timeseries` each), refused when some name their
    regions and others do not (the unnamed ones' column order is unknown) or when they hold
    different numbers of regions."""
    read = [_read_run(p, min_frames, regions, drop_na_frames) for p in paths]
    named = [str(p) for p, (_, n) in zip(paths, read) if n]
    if named and len(named) < len(read):
        plain = next(str(p) for p, (_, n) in zip(paths, read) if not n)
        raise InvalidInputError(
            f"{named[0]} names its regions but {plain} does not, so the columns of the second "
            "cannot be matched to the first: give every run a header of region names, or none",
            plain,
        )
    widths = sorted({a.shape[1] for a, _ in read})
    if len(widths) > 1:
        raise InvalidInputError(f"runs have different numbers of regions {widths}", str(paths[0]))
    return [a for a, _ in read]
