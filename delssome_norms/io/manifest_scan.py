"""A cohort manifest row's scan length where its ``scan_length`` cell is empty: the frames of
its time series (:func:`count_frames`) x TR, or the error for a row without time series
(:func:`empty_scan_length`). Used by :func:`delssome_norms.io.readers.read_manifest`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.checks import MAX_TR


def empty_scan_length(tr: object, has_timeseries: bool) -> str:
    """The error for an empty ``scan_length`` cell in a row that gives no time series."""
    try:
        tr_f = float(str(tr))
    except ValueError:
        tr_f = float("nan")
    example = (
        f": e.g. 600 frames at TR {tr_f:g} s are {600 * tr_f:g} s"
        if np.isfinite(tr_f) and 0 < tr_f <= MAX_TR
        else ""
    )
    return (
        "the scan_length cell is empty: fill in the length of the scan the FC was computed "
        f"from, in seconds (frames x TR{example})"
        + ("; only a row with a timeseries may leave it empty" if has_timeseries else "")
    )


def count_frames(path: str | Path) -> int:
    """Number of frames (rows) of a time-series file (TSV/CSV or NPY)."""
    from delssome_norms.io.readers import check_input_file, read_labelled_numeric  # (imports us)
    from delssome_norms.io.timeseries import read_timeseries, timeseries_header

    p = Path(path)
    if p.suffix.lower() == ".npy":
        check_input_file(p)
        try:
            arr = np.load(p, allow_pickle=False, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise InvalidInputError(f"is not a readable .npy array ({exc})", str(path)) from None
        return int(arr.shape[0]) if arr.ndim else 0
    if p.suffix.lower() == ".npz":  # one array in a zip: read as the fit will
        return int(read_timeseries(p).shape[0])
    values, header, _ = read_labelled_numeric(path, allow_na=True)
    _, values = timeseries_header(header, np.asarray(values, dtype=np.float64), str(path))
    return int(values.shape[0])
