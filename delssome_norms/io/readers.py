"""Readers for the toolkit's input files; every value read goes through a :mod:`.checks` gate.

Numeric inputs use the header-less CSV layout of the paper's reference code (docs/science.md §1): FC and
SC are N rows of N numbers, FCD-CDF and regional maps one number per row. A first row that is not
numeric is taken as a header and its names are kept (:func:`read_labelled_numeric`,
:func:`read_numeric_frame`): region-named FC and time series are matched to the atlas by name.
Tables (demographics, manifests, cohort tables) are CSV with a header row (demographics may also be
tab-separated, as BIDS ``participants.tsv``: :mod:`.demographics`). Every failure raises
:class:`~delssome_norms.errors.InvalidInputError` naming the file.

Parsing is done by libraries, never by hand: numpy's C parser (``np.loadtxt``) reads numeric
bodies (a 68 x 68 FC in about a quarter of the time ``pd.read_csv`` takes to assemble 68 columns),
and ``pd.read_csv`` (C engine) reads bodies with missing values (``n/a``) and, cell by cell as
text, anything else, so that an error names the line and the value at fault.
"""

from __future__ import annotations

import csv
import gzip
import io as _stdio
import os
import re
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.binary_arrays import describe_binary, read_binary_array, wide_text_encoding
from delssome_norms.io.checks import (
    DEFAULT_FCD_BINS,
    PARQUET_SUFFIXES,
    as_float_array,
    check_fc,
    check_fcd_cdf,
    check_map,
    check_sc,
    check_timing,
    check_tr_seconds,
    check_unique_ids,
)
from delssome_norms.io.combine import fisher_z_mean, mean_cdf
from delssome_norms.io.decimal_comma import with_decimal_point
from delssome_norms.io.demographics import (  # noqa: F401 (public names kept here)
    column_key,
    prepare_demographics,
    read_demographics,
)
from delssome_norms.io.ei_table import SCANNER, SITE, SITE_SCANNER
from delssome_norms.io.label_checks import same_order_names
from delssome_norms.io.manifest_scan import count_frames, empty_scan_length
from delssome_norms.io.manifest_tr import fill_manifest_tr

PathLike = str | Path
MAX_INPUT_BYTES = 1 << 30
"""Largest input file read (1 GiB); bigger files are refused before reading."""


def check_input_file(path: PathLike, max_bytes: int = MAX_INPUT_BYTES) -> Path:
    """Refuse, before reading, a path that is missing, not a regular file, or too large.

    A FIFO, socket or device (``/dev/zero``) would hang or exhaust memory when read.

    Returns
    -------
    Path
    """
    p = Path(path)
    name = str(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise InvalidInputError("file does not exist", name) from None
    except OSError as exc:
        raise InvalidInputError(f"cannot be read ({exc.strerror})", name) from None
    if stat.S_ISDIR(st.st_mode):
        raise InvalidInputError("is a directory, expected a file", name)
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInputError("is not a regular file (a pipe, socket or device?)", name)
    if st.st_size > max_bytes:
        raise InvalidInputError(
            f"is {st.st_size / 2**20:.0f} MiB; inputs above {max_bytes / 2**20:.0f} MiB are refused",
            name,
        )
    return p


def _read_text(path: PathLike) -> str:
    """Read a whole file as UTF-8 text, with one clear error for each way this can fail."""
    p = check_input_file(path)
    name = str(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"cannot be read ({exc.strerror})", name) from None
    if raw[:2] == b"\x1f\x8b":  # gzip (.tsv.gz), unpacked to at most MAX_INPUT_BYTES
        try:
            with gzip.GzipFile(fileobj=_stdio.BytesIO(raw)) as gz:
                raw = gz.read(MAX_INPUT_BYTES + 1)
        except (OSError, EOFError) as exc:
            raise InvalidInputError(f"is not a readable gzip file ({exc})", name) from None
        if len(raw) > MAX_INPUT_BYTES:
            raise InvalidInputError("unpacks to more than 1 GiB; such inputs are refused", name)
    if not raw.strip():
        raise InvalidInputError("file is empty", name)
    encoding = wide_text_encoding(raw)  # Excel's "Unicode Text", Windows PowerShell: UTF-16
    if encoding is None and b"\x00" in raw[:4096]:
        what = describe_binary(raw, name)
        raise InvalidInputError(what or "is a binary file, expected CSV text", name)
    try:
        text = raw.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        if encoding is not None:
            raise InvalidInputError(f"is not readable {encoding} text ({exc.reason})", name) from None
        what = describe_binary(raw, name)  # an .xlsx (a zip) need not hold a NUL byte early on
        if what is not None:
            raise InvalidInputError(what, name) from None
        raise InvalidInputError(_not_utf8(raw, exc.start), name) from None
    if encoding is not None and not text.strip("\ufeff \t\r\n"):
        raise InvalidInputError("file is empty", name)
    return text.removeprefix("\ufeff")


SAVE_AS_UTF8 = (
    "save it as UTF-8 text (Excel: Save As > 'CSV UTF-8 (Comma delimited)'; other editors: "
    "choose the UTF-8 encoding when saving)"
)
"""The way forward for a text file in another encoding (Excel's plain "CSV" on Windows is
Windows-1252: ``é`` is the single byte 0xe9)."""


def _not_utf8(raw: bytes, start: int) -> str:
    """``is not UTF-8 text (byte 0xe9 at position 62, line 3: 'Montréal' read as Windows-1252,
    ...); save it as UTF-8 ...``: the byte, its line and cell, and :data:`SAVE_AS_UTF8`."""
    line = raw.count(b"\n", 0, start) + 1
    before = _CELL_EDGE.split(raw[max(0, start - 40) : start])[-1]
    after = _CELL_EDGE.split(raw[start : start + 40])[0]
    cell = (before + after).strip().decode("cp1252", errors="replace")
    return (
        f"is not UTF-8 text (byte 0x{raw[start]:02x} at position {start}, line {line}: {cell!r} "
        "read as Windows-1252, the encoding of Excel's plain 'CSV' on Windows); " + SAVE_AS_UTF8
    )


_CELL_EDGE = re.compile(rb"[,;\t\r\n]")


NA_TOKENS = frozenset({"n/a", "na", "nan", ""})
"""Cells read as missing (NaN) where missing values are allowed (BIDS writes ``n/a``)."""

_NA_VALUES = sorted(NA_TOKENS | {"NA", "N/A", "NaN"})
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}
"""``pd.read_csv`` options that read every decimal number exactly: pandas 3 does by default (and
deprecates ``float_precision``); pandas 2's default parser is one ulp off for about a third of
them, so tables (and the charts fitted to them) differed between pandas versions."""
_NAN_WORDS = frozenset({"nan", "+nan", "-nan"})
_LEADING_BLANK = re.compile(r"\A(?:[ \t]*\r?\n)* *")  # blank lines, then spaces
_WORDY = re.compile(r"[^0-9\s.,;+eE-]")  # a first line that may be a header
_RAGGED = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _separator(first_line: str) -> str:
    """The column separator of a numeric table: tab, comma or semicolon, else whitespace. Tab
    first: a tab-separated header may hold commas in its names (nilearn's Harvard-Oxford labels,
    ``Inferior Frontal Gyrus, pars triangularis``), a comma-separated one has no tabs."""
    for sep in ("\t", ",", ";"):
        if sep in first_line:
            return sep
    return r"\s+"


def _loadtxt(text: str, sep: str, skip: int, dtype: type = np.float64, **kwargs) -> np.ndarray:
    """``np.loadtxt`` (numpy's C parser) of a header-less table as a 2-D array."""
    return np.loadtxt(
        _stdio.StringIO(text),
        dtype=dtype,
        delimiter=None if sep == r"\s+" else sep,
        skiprows=skip,
        ndmin=2,
        comments=None,
        quotechar='"',
        **kwargs,
    )


def _read_csv(text: str, sep: str, skip: int, **kwargs) -> pd.DataFrame:
    """``pd.read_csv`` of a header-less numeric table (blank lines skipped, quotes removed)."""
    return pd.read_csv(
        _stdio.StringIO(text),
        sep=sep,
        header=None,
        skiprows=skip,
        skip_blank_lines=True,
        skipinitialspace=True,
        engine="c",
        **_EXACT_FLOATS,
        **kwargs,
    )


def _numeric(cells, allow_na: bool) -> np.ndarray:
    """Which text cells are numbers (or, with ``allow_na``, missing-value tokens)."""
    cells = np.char.strip(np.asarray(cells, dtype=str))
    lower = np.char.lower(cells)
    parsed = pd.to_numeric(cells.ravel().astype(object), errors="coerce")
    ok = ~np.isnan(np.asarray(parsed, dtype=np.float64)).reshape(cells.shape)
    ok |= np.isin(lower, list(_NAN_WORDS))
    if allow_na:
        ok |= np.isin(lower, list(NA_TOKENS))
    return ok


def read_labelled_numeric(
    path: PathLike, allow_na: bool = False
) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """Read a numeric CSV/TSV/whitespace table with an optional header row and row labels.

    The table is parsed by pandas (``pd.read_csv``, C engine); the separator is the first of
    comma, tab and semicolon found in the first line, else whitespace.

    Parameters
    ----------
    path : path
    allow_na : bool
        Read ``n/a``, ``NA``, ``NaN`` and empty cells as NaN (BIDS time series); otherwise only
        numbers are accepted (non-finite values are left for the caller's check to report).

    Returns
    -------
    values : ndarray of shape (rows, columns), float64
    header : list of str or None
        The first row when it is not numeric (without the row-label column's cell): e.g. the
        region names of an FC matrix or time series, which callers match to the atlas by name.
    row_labels : list of str or None
        The first cell of every row when those are all non-numeric (e.g. region names of a
        regions x frames layout, or of an FC matrix written with an index).
    """
    name = str(path)
    if (binary := read_binary_array(check_input_file(path))) is not None:  # .npy/.npz/.mat
        return binary, None, None
    text = _LEADING_BLANK.sub("", _without_comment_lines(_read_text(path)))
    first_line = text.split("\n", 1)[0]
    text, sep = with_decimal_point(text, first_line, _separator(first_line))  # 0,25 -> 0.25
    text = _without_empty_end_columns(text, sep, name)
    first_line = text.split("\n", 1)[0]
    header, skip = None, 0
    if _WORDY.search(first_line):  # a header row, or data with nan/inf/n/a
        header = _header_or_none(
            [str(t).strip() for t in _loadtxt(text, sep, 0, str, max_rows=1)[0]], sep, allow_na
        )
        if header is not None:
            skip = 1
            if not text[len(first_line) :].strip():
                raise InvalidInputError("has a header but no data rows", name)
    row_labels = False
    if header is not None:  # named columns: are the rows named too?
        try:
            row = _loadtxt(text, sep, skip, str, max_rows=1)[0]
            row_labels = not _numeric(row[:1], allow_na).all()
        except ValueError:
            pass
    try:  # a purely numeric body: numpy's C parser (pandas' frame assembly costs more)
        if not row_labels:
            values = _loadtxt(text, sep, skip)
            if values.size and not np.isnan(values).any():
                return values, header, None
    except ValueError:
        pass  # n/a cells, row labels, ragged rows or an error to report: below
    labelled = _labelled_numeric(text, sep, skip, header, allow_na)
    if labelled is not None:  # an FC's rows named in another order than its columns: refused
        return same_order_names(*labelled, name)  # where the names contradict the values
    if allow_na:
        try:
            values = _read_csv(
                text, sep, skip, dtype=np.float64, keep_default_na=False, na_values=_NA_VALUES
            ).to_numpy()
            if not np.isnan(values[:, -1]).any():  # NaN at a row's end may be a short row
                return values, header, None
        except pd.errors.ParserError as exc:
            _raise_ragged(exc, name)
        except ValueError:
            pass
    return same_order_names(*_labelled_text_table(text, sep, skip, header, allow_na, name), name)


def _labelled_numeric(
    text: str, sep: str, skip: int, header: list[str] | None, allow_na: bool
) -> tuple[np.ndarray, list[str] | None, list[str]] | None:
    """A table whose first column holds text row labels and the rest numbers, else None."""
    try:  # numpy's C parser: the labels as text, the rest as numbers
        width = _loadtxt(text, sep, skip, str, max_rows=1).shape[1]
        labels = _loadtxt(text, sep, skip, str, usecols=0)[:, 0]
        values = _loadtxt(text, sep, skip, usecols=range(1, width))
    except (ValueError, IndexError):
        try:  # n/a cells: pandas
            table = _read_csv(
                text,
                sep,
                skip,
                index_col=0,
                keep_default_na=False,
                na_values=_NA_VALUES if allow_na else None,
            )
            labels, values = table.index.to_numpy(dtype=str), table.to_numpy(dtype=np.float64)
        except (ValueError, TypeError, pd.errors.ParserError):
            return None
    labels = [str(v).strip() for v in labels]
    if not values.shape[1] or np.isnan(values[:, -1]).any() or _numeric(labels, allow_na).any():
        return None  # no numbers, a short row's padding, or numeric "labels": the text path
    if header is not None and len(header) == values.shape[1] + 1:
        header = header[1:]  # the row-label column's own name (often empty)
    return values, header, labels


def _cell_counts(line: str) -> set[int]:
    """How many cells a line has, split at each separator the readers know (at least two)."""
    counts = {len(line.split(sep)) for sep in (",", "\t", ";")} | {len(line.split())}
    return {n for n in counts if n > 1}


def _without_comment_lines(text: str) -> str:
    """The text without the ``#`` comment lines that open it (AFNI ``.1D`` files, notes), except
    a last one with as many cells as the data (``np.savetxt``'s ``# name, ...`` header)."""
    if not text.lstrip().startswith("#"):
        return text
    lines = text.lstrip().split("\n")
    k = next((i for i, ln in enumerate(lines) if not ln.lstrip().startswith("#")), len(lines))
    data = next((ln.rstrip("\r") for ln in lines[k:] if ln.strip()), None)
    if data is None:
        return text  # nothing but comments: reported as no data by the reader
    last = lines[k - 1].lstrip()[1:].rstrip("\r")
    widths = _cell_counts(data)
    header = [lines[k - 1]] if _cell_counts(last) & (widths | {n - 1 for n in widths}) else []
    return "\n".join(header + lines[k:])


def _without_empty_end_columns(text: str, sep: str, name: str) -> str:
    """The text without the separators that end every line: one (a writer's habit) silently,
    several (empty columns, as spreadsheets export) with an :class:`InputWarning`. Read as
    columns they would be regions without values."""
    if sep == r"\s+" or not text.split("\n", 1)[0].rstrip("\r ").endswith(sep):
        return text
    ends = [ln.rstrip("\r ") for ln in text.split("\n")]
    trailing = min(e[len(e.rstrip(sep + " ")) :].count(sep) for e in ends if e)
    if not trailing:
        return text
    if trailing > 1:
        warnings.warn(
            f"{name}: every line ends with {trailing} separators ({trailing - 1} empty "
            "column(s) at the end); they were ignored",
            InputWarning,
            stacklevel=4,
        )
    for _ in range(trailing):
        ends = [e.rstrip(" ")[:-1] if e else e for e in ends]
    return "\n".join(ends)


def _header_or_none(first: list[str], sep: str, allow_na: bool) -> list[str] | None:
    """The first row's cells when it is a header (not all numeric), else None."""
    if sep != r"\s+" and len(first) > 1 and first[-1] == "":
        first = first[:-1]  # a separator at the end of the line
    return None if _numeric([t for t in first if t != ""], allow_na).all() else first


def _raise_ragged(exc: Exception, name: str) -> None:
    match = _RAGGED.search(str(exc))
    if match is None:
        raise InvalidInputError(f"is not a readable numeric table ({exc})", name) from None
    width, line, seen = match.groups()
    raise InvalidInputError(
        f"rows have different lengths: line {line} has {seen} values, expected {width}", name
    ) from None


def _labelled_text_table(
    text: str, sep: str, skip: int, header: list[str] | None, allow_na: bool, name: str
) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """The slow path of :func:`read_labelled_numeric`: cells as text, row labels, exact errors."""
    try:
        table = _read_csv(text, sep, skip, dtype=str, na_filter=False)
    except pd.errors.ParserError as exc:
        _raise_ragged(exc, name)
    cells = np.asarray(table.to_numpy(dtype=object), dtype=str)
    cells = np.char.strip(np.char.strip(cells), '"')
    if not skip:  # no header seen in the first line: look again, cell by cell
        header = _header_or_none([str(t) for t in cells[0]], sep, allow_na)
        if header is not None:
            header = header[: len(header) - int(np.argmax(np.asarray(header[::-1]) != ""))]
            skip, cells = 1, cells[1:]
            if not len(cells):
                raise InvalidInputError("has a header but no data rows", name)
    if sep != r"\s+" and cells.shape[1] > 1 and (cells[:, -1] == "").all():
        cells = cells[:, :-1]  # a separator at the end of every line
    numeric = _numeric(cells, allow_na)
    labelled = bool(cells.shape[1] > 1 and not numeric[:, 0].any() and numeric[:, 1].all())
    row_labels = [str(v) for v in cells[:, 0]] if labelled else None
    if labelled:
        cells, numeric = cells[:, 1:], numeric[:, 1:]
        if header is not None and len(header) == cells.shape[1] + 1:
            header = header[1:]  # the row-label column's own name (often empty)
    # a row shorter than the first is padded with empty cells at its end
    filled = cells != ""
    # where missing values are allowed an empty cell is one (pandas writes NaN as ""), also at
    # the end of a row or in a whole row; otherwise a row ending early is a short row
    lengths = (
        np.full(cells.shape[0], cells.shape[1])
        if allow_na
        else np.where(filled.any(axis=1), cells.shape[1] - np.argmax(filled[:, ::-1], axis=1), 1)
    )
    width = lengths[0]
    first_line_no = 2 if skip else 1
    for r in range(cells.shape[0]):
        bad = ~numeric[r, : lengths[r]]
        if bad.any():
            token = cells[r, : lengths[r]][bad][0]
            raise InvalidInputError(
                f"is not a numeric CSV: line {r + first_line_no} has the non-numeric value "
                f"{token[:40]!r}",
                name,
            )
        if lengths[r] != width:
            raise InvalidInputError(
                f"rows have different lengths: line {r + first_line_no} has {lengths[r]} values, "
                f"expected {width}",
                name,
            )
    values = np.full(cells.shape, np.nan)
    number = numeric & ~np.isin(np.char.lower(cells), list(NA_TOKENS))
    values[number] = cells[number].astype(np.float64)
    nan_word = np.isin(np.char.lower(cells), list(_NAN_WORDS))
    values[nan_word] = np.nan
    return values, header, row_labels


def read_numeric_frame(path: PathLike, allow_na: bool = False) -> pd.DataFrame:
    """A numeric table as a DataFrame that keeps its names (see :func:`read_labelled_numeric`).

    Returns
    -------
    DataFrame of float64
        Columns: the header's names (``0 .. n-1`` without a header); index: the row labels
        (``0 .. rows-1`` without them). A region-named matrix can then be checked or reordered
        by name, e.g. ``frame.loc[regions, regions]``.
    """
    values, header, labels = read_labelled_numeric(path, allow_na=allow_na)
    name = str(path)
    if header is not None and len(header) != values.shape[1]:
        raise InvalidInputError(
            f"has {len(header)} column names but {values.shape[1]} values per row", name
        )
    return pd.DataFrame(values, columns=header, index=labels)


def read_numeric(path: PathLike) -> np.ndarray:
    """Read a header-less numeric CSV/TSV/whitespace table as a 2-D float64 array.

    A non-numeric first row is treated as a header and skipped. Non-finite values are left for the
    caller's check to report.
    """
    name = str(path)
    values, header, labels = read_labelled_numeric(path)
    if labels is not None:
        raise InvalidInputError(
            f"is not a numeric CSV: line {2 if header is not None else 1} has the non-numeric "
            f"value {labels[0][:40]!r}",
            name,
        )
    return values


def _atlas_names(regions: Sequence[str] | None) -> Sequence[str]:
    if regions is not None:
        return regions
    from delssome_norms.io.regions import DK68_REGIONS

    return DK68_REGIONS


def _read_square_by_name(path: PathLike, regions: Sequence[str] | None, what: str) -> np.ndarray:
    """A square region-by-region matrix, put in the atlas order when it names its regions
    (:func:`delssome_norms.io.named_regions.read_square`; another atlas's names: file order,
    with a warning)."""
    from delssome_norms.io.named_regions import read_square  # (it imports this module)

    return read_square(path, regions, what, warn=True).values


def read_fc(
    path: PathLike, n_regions: int | None = None, regions: Sequence[str] | None = None
) -> np.ndarray:
    """Read an FC matrix (N rows of N numbers). Returns an (N, N) float64 array.

    A header row of region names (and optionally a first column of them) is matched to the
    atlas by name (``regions``, default DK68; aliases such as ``ctx-lh-precentral`` or
    ``L_precentral`` are accepted) and rows and columns are put in the atlas order.
    """
    return check_fc(_read_square_by_name(path, regions, "FC"), n_regions, input_name=str(path))


def read_fc_runs(paths: Sequence[PathLike], n_regions: int | None = None) -> np.ndarray:
    """Read one FC per run and combine them with a Fisher-z average. Returns (N, N)."""
    fcs = [read_fc(p, n_regions) for p in paths]
    _check_same_shape(fcs, paths)
    return fisher_z_mean(np.stack(fcs))


def read_fcd_cdf(path: PathLike, n_bins: int = DEFAULT_FCD_BINS) -> np.ndarray:
    """Read an FCD-CDF (one number per row, ``n_bins`` rows). Returns (n_bins,)."""
    from delssome_norms.io.index_column import read_value_column  # it imports this module

    return check_fcd_cdf(read_value_column(path), n_bins, input_name=str(path))


def read_fcd_cdf_runs(paths: Sequence[PathLike], n_bins: int = DEFAULT_FCD_BINS) -> np.ndarray:
    """Read one FCD-CDF per run and average them. Returns (n_bins,)."""
    return mean_cdf(np.stack([read_fcd_cdf(p, n_bins) for p in paths]))


def read_sc(
    path: PathLike, n_regions: int | None = None, regions: Sequence[str] | None = None
) -> np.ndarray:
    """Read a structural-connectivity matrix (N x N, unscaled). Returns (N, N) float64.

    Region names in a header row (and first column) put it in the atlas order, as for
    :func:`read_fc`, so an SC and an FC that name their regions in different orders describe
    the same regions.
    """
    return check_sc(_read_square_by_name(path, regions, "SC"), n_regions, input_name=str(path))


def read_map(path: PathLike, n_regions: int | None = None) -> np.ndarray:
    """Read a regional map (one value per row). Returns (N,) float64. Region names (a header row
    above one row of values, or a first column) of DK68 put it in DK68 order
    (:func:`delssome_norms.io.named_regions.read_map_named`)."""
    from delssome_norms.io.named_regions import read_map_named  # (it imports this module)

    return check_map(read_map_named(path).values, n_regions, input_name=str(path))


def is_parquet(path: PathLike) -> bool:
    """Whether a table path names a Parquet file (by its suffix)."""
    return Path(path).suffix.lower() in PARQUET_SUFFIXES


def _read_parquet(path: PathLike) -> pd.DataFrame:
    p = check_input_file(path)
    try:
        table = pd.read_parquet(p)
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise InvalidInputError(
            "reading Parquet needs pyarrow (pip install pyarrow)", str(path)
        ) from None
    except Exception as exc:
        raise InvalidInputError(
            f"is not a readable Parquet table ({type(exc).__name__}: {str(exc)[:200]})", str(path)
        ) from None
    table.attrs = {}  # pandas keeps attrs in the file: a table's provenance is its sidecars only
    if "subject_id" in table.columns:  # a missing ID stays missing (pandas 2 made None "None")
        ids = table["subject_id"]
        table["subject_id"] = ids.astype(str).where(ids.notna())
    return table


def read_table(path: PathLike, required: Sequence[str] = (), tabs: bool = False) -> pd.DataFrame:
    """Read a table with a header row (CSV, or Parquet by suffix) and check ``required`` columns.

    Parquet (``.parquet``/``.pq``) reads and writes large tables (100,000 people x 69 targets) an
    order of magnitude faster than CSV text. With ``tabs``, a text table whose header line has
    tabs and no commas, or any named ``.tsv``/``.tsv.gz``, is read as tab-separated (BIDS).
    """
    name = str(path)
    header, sep = "", ","
    if is_parquet(path):
        table = _read_parquet(path)
    else:
        text = _read_text(path)
        header = text.lstrip("\r\n").split("\n", 1)[0]
        tsv = name.lower().endswith((".tsv", ".tsv.gz")) or "," not in header
        sep = "\t" if tabs and "\t" in header and tsv else ","
        try:
            # IDs are text: "001" must stay "001" (a folder name), never become the number 1
            # (BIDS session labels too: "01" of sub-01_ses-01)
            # and flag lists are text (mostly blank in a collected table: read in chunks, a column
            # blank in one chunk and text in another made pandas warn of mixed types)
            ids = {"subject_id": str, "participant_id": str, "session_id": str}
            ids.update(dict.fromkeys(("fit_flag_reasons", "flag"), str))
            # site labels are text too: pandas made "01" the number 1 only where every label of
            # the file's column looked numeric (site_text then makes "01", "1" and 1.0 one site)
            # (any spelling demographics accept: "Site", "Scanner Site" read as the numbers 1.5
            # where "site" gave "1.50")
            cells = next(csv.reader([header], delimiter=sep), [])
            sites = (SITE, SCANNER, SITE_SCANNER)
            ids.update({c: str for c in (*sites, *cells) if column_key(c) in sites})
            table = pd.read_csv(
                _stdio.StringIO(text), sep=sep, dtype=ids, low_memory=False, **_EXACT_FLOATS
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            what = "tab-separated" if sep == "\t" else "CSV"
            raise InvalidInputError(f"is not a readable {what} table ({exc})", name) from None
    table.columns = [str(c).strip() for c in table.columns]
    if table.shape[1] == 1:
        header = str(table.columns[0])
        for sep, what in ((";", "semicolons"), ("\t", "tabs")):
            if sep in header:
                raise InvalidInputError(
                    f"looks separated by {what}, not commas (one column named {header[:40]!r}...); "
                    f"save it as {'comma- or tab-separated text' if tabs else 'comma-separated CSV'}"
                    " with '.' as the decimal mark",
                    name,
                )
    missing = [c for c in required if c not in table.columns]
    cells = [c.strip().strip('"') for c in header.strip().split(sep)] if missing else []
    if cells and all(cells) and _numeric(cells, allow_na=False).all():
        # a header-less matrix (an FC or SC given as a table): its numbers are no column names
        shown = ", ".join(cells[:3]) + (" ..." if len(cells) > 3 else "")
        raise InvalidInputError(
            f"has no header row: its first line holds {len(cells)} number(s) ({shown}), as a "
            "header-less matrix (an FC or SC) does; expected a table whose first line names the "
            f"columns {', '.join(required)}",
            name,
        )
    if missing:
        raise InvalidInputError(
            f"missing required column(s) {', '.join(missing)}; found {', '.join(table.columns)}",
            name,
        )
    if table.empty:
        raise InvalidInputError("has a header but no rows", name)
    return table


MANIFEST_PATH_COLUMNS = ("fc", "fcd_cdf", "timeseries", "sc", "myelin", "gradient")
"""Manifest columns that name files (``;`` separates several runs), read relative to the
manifest's folder."""


INPUT_PROBLEM = "input_problem"
"""Column :func:`read_manifest` adds when a row's time series cannot be read to derive its scan
length: the message, for that subject's failure record (the others go on)."""


def read_manifest(path: PathLike) -> pd.DataFrame:
    """Read a cohort manifest: one row per subject.

    Columns: ``subject_id``, ``tr`` and ``scan_length`` (seconds), and either ``fc`` + ``fcd_cdf``
    or ``timeseries`` (several runs separated by ``;``). Optional: ``sc``, ``myelin``,
    ``gradient``. ``scan_length`` may be left out (or empty) for rows with ``timeseries``: it is
    then frames x TR. ``tr`` may be left out (or empty) for rows with ``timeseries``: it is then
    the runs' JSON sidecar RepetitionTime (a given ``tr`` is used, with a warning where a sidecar
    differs; :mod:`delssome_norms.io.manifest_tr`). Relative paths are resolved against the
    manifest's folder. Whether each file exists is checked per subject when it is processed, so
    one bad row fails only that subject: a row whose TR cannot be found, or whose time series
    cannot be read to derive its scan length, gets the reason in :data:`INPUT_PROBLEM` (a column
    added only then).
    """
    name = str(path)
    table = read_table(path, required=("subject_id",))
    table.columns = [c.lower() if c in ("TR",) else c for c in table.columns]
    if "tr" not in table.columns:
        if "timeseries" not in table.columns:
            raise InvalidInputError("missing required column 'tr' (seconds)", name)
        table["tr"] = np.nan  # from each row's JSON sidecars
    has_fc = "fc" in table.columns and "fcd_cdf" in table.columns
    if not has_fc and "timeseries" not in table.columns:
        raise InvalidInputError("needs columns 'fc' and 'fcd_cdf', or a 'timeseries' column", name)
    if "scan_length" not in table.columns:
        if "timeseries" not in table.columns:
            raise InvalidInputError(
                "missing required column 'scan_length' (seconds; it can be left out only for "
                "time series, whose length is frames x TR)",
                name,
            )
        table["scan_length"] = np.nan
    check_unique_ids(table["subject_id"], name, as_folders=True)
    # absolute, not resolved: a symlinked dataset (DataLad, git-annex) keeps its folders, in
    # which the runs' JSON sidecars lie (resolving led into .git/annex/objects)
    base = Path(os.path.abspath(path)).parent
    for col in MANIFEST_PATH_COLUMNS:
        if col in table.columns:
            table[col] = [
                None
                if (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
                else ";".join(os.path.abspath(base / s.strip()) for s in str(v).split(";"))
                for v in table[col]
            ]
    scan = pd.to_numeric(table["scan_length"], errors="coerce")
    # a missing cell reads as NaN (pandas 3 keeps it NaN through astype(str)) or as blank text
    cells = table["scan_length"]
    blank = scan.isna() & (
        cells.isna() | cells.astype(object).astype(str).str.strip().isin(("", "nan", "n/a"))
    )
    if "timeseries" in table.columns:
        derive = blank & table["timeseries"].notna()
    else:
        derive = pd.Series(False, index=table.index)
    # a column with a text cell (" ") is str under pandas 3, which refuses the float frames x TR
    table["scan_length"] = cells.astype(object)
    problems = fill_manifest_tr(table, name)  # a row whose TR cannot be found fails alone
    for i, row in table.iterrows():
        where = f"{name} row {i + 1} ({row['subject_id']})"
        if blank.loc[i] and i not in problems:  # the TR alone: the scan length is to follow
            check_tr_seconds(row["tr"], where)
        if derive.loc[i] and i not in problems:
            try:  # a missing or unreadable file fails this subject only (INPUT_PROBLEM)
                frames = {count_frames(p) for p in str(row["timeseries"]).split(";")}
                if len(frames) > 1:
                    raise InvalidInputError(
                        f"runs have different lengths {sorted(frames)} frames; give the "
                        "subject's scan_length in the manifest",
                        str(row["timeseries"]).split(";")[0],
                    )
            except InvalidInputError as err:
                problems[i] = f"{where}: {err}"
            else:
                table.loc[i, "scan_length"] = frames.pop() * float(row["tr"])
        if i in problems:  # fails alone when its group runs: no timing to check
            table.loc[i, "scan_length"] = np.nan
            continue
        if blank.loc[i] and not derive.loc[i]:
            raise InvalidInputError(empty_scan_length(row["tr"], "timeseries" in table), where)
        check_timing(row["tr"], table.loc[i, "scan_length"], where)
    if problems:
        table[INPUT_PROBLEM] = [problems.get(i) for i in table.index]
    # every cell checked above (NaN in a row that fails alone, INPUT_PROBLEM saying why)
    table["scan_length"] = table["scan_length"].astype(np.float64)
    return table


PARAMETER_COLUMNS = ("region_index", "wEE", "wEI", "sigma", "G")
PARAMETER_LIMITS = {"wEE": (0.0, 100.0), "wEI": (0.0, 50.0), "sigma": (0.0, 0.1), "G": (0.0, 30.0)}
"""Plausible ranges of each pFIC parameter (10 times the search bounds); values outside are
refused as data errors (``sigma`` must also be > 0)."""


def read_parameters(path: PathLike, n_regions: int | None = None) -> dict[str, np.ndarray]:
    """Read regional pFIC parameters in the reference layout of ``best_parameters.csv``.

    Parameters
    ----------
    path : path
    n_regions : int, optional
        Required number of region rows (the SC's N).

    Returns a dict with arrays ``wEE``, ``wEI``, ``sigma`` of shape (N,) and scalar ``G``.
    """
    name = str(path)
    table = read_table(path, required=PARAMETER_COLUMNS)
    if n_regions is not None and len(table) != n_regions:
        raise InvalidInputError(
            f"has {len(table)} region rows, expected {n_regions} (one per region of the SC)", name
        )
    idx = pd.to_numeric(table["region_index"], errors="coerce").to_numpy()
    if not np.array_equal(np.sort(idx), np.arange(len(table))):
        raise InvalidInputError("region_index must list 0 .. N-1 once each", name)
    table = table.assign(region_index=idx).sort_values("region_index")
    out = {}
    for col in ("wEE", "wEI", "sigma", "G"):
        out[col] = as_float_array(table[col].to_numpy(), f"{name} column {col}", ndim=1)
    if np.ptp(out["G"]) > 1e-12:
        raise InvalidInputError("G must be the same in every row (one global coupling)", name)
    out["G"] = np.asarray(out["G"][0])
    if np.any(out["sigma"] <= 0):
        raise InvalidInputError("sigma (noise amplitude) must be positive", name)
    for col, (lo, hi) in PARAMETER_LIMITS.items():
        v = np.atleast_1d(out[col])
        bad = np.flatnonzero((v < lo) | (v > hi))
        if bad.size:
            raise InvalidInputError(
                f"{col} must lie in [{lo:g}, {hi:g}]; found {v[bad[0]]:.4g} (row(s) {_fmt_idx(bad)})",
                name,
            )
    return out


def _fmt_idx(idx: np.ndarray, limit: int = 5) -> str:
    """Data rows counted from 1 (the first row after the header) from 0-based positions."""
    shown = ", ".join(str(int(i) + 1) for i in idx[:limit])
    return shown + (f" and {len(idx) - limit} more" if len(idx) > limit else "")


def _check_same_shape(arrays: Sequence[np.ndarray], paths: Sequence[PathLike]) -> None:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        listing = ", ".join(f"{p}: {a.shape}" for p, a in zip(paths, arrays))
        raise InvalidInputError(f"runs have different shapes ({listing})", str(paths[0]))
