"""Readers for the toolkit's input files; every value read goes through a :mod:`.checks` gate.

Numeric inputs use the header-less CSV layout of the paper's reference code (docs/science.md §1): FC and
SC are N rows of N numbers, FCD-CDF and regional maps one number per row. A first row that is not
numeric is taken as a header and skipped. Tables (demographics, manifests, cohort tables) are CSV with
a header row. Every failure raises :class:`~delssome_norms.errors.InvalidInputError` naming the file.
"""

from __future__ import annotations

import io as _stdio
import os
import stat
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.checks import (
    DEFAULT_FCD_BINS,
    as_float_array,
    check_ages,
    check_fc,
    check_fcd_cdf,
    check_map,
    check_sc,
    check_timeseries,
    check_timing,
    check_unique_ids,
    normalise_sex,
)
from delssome_norms.io.combine import fisher_z_mean, mean_cdf

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
    if not raw.strip():
        raise InvalidInputError("file is empty", name)
    if b"\x00" in raw[:4096]:
        raise InvalidInputError("is a binary file, expected CSV text", name)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start})", name
        ) from None


def _sniff_separator(first_line: str) -> str | None:
    if "," in first_line:
        return ","
    if "\t" in first_line:
        return "\t"
    if ";" in first_line:
        return ";"
    return None  # whitespace-separated


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_numeric(path: PathLike) -> np.ndarray:
    """Read a header-less numeric CSV/TSV/whitespace table as a 2-D float64 array.

    A non-numeric first row is treated as a header and skipped. Non-finite values are left for the
    caller's check to report.
    """
    name = str(path)
    text = _read_text(path)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    sep = _sniff_separator(lines[0])
    split = (lambda s: s.split(sep)) if sep else (lambda s: s.split())
    first = [t.strip().strip('"') for t in split(lines[0])]
    start = 0 if all(_is_number(t) for t in first if t != "") else 1
    rows = lines[start:]
    if not rows:
        raise InvalidInputError("has a header but no data rows", name)
    values: list[list[float]] = []
    width = None
    for r, line in enumerate(rows, start=start + 1):
        tokens = [t.strip().strip('"') for t in split(line)]
        if sep and tokens and tokens[-1] == "":
            tokens = tokens[:-1]
        try:
            row = [float(t) for t in tokens]
        except ValueError:
            bad = next(t for t in tokens if not _is_number(t))
            raise InvalidInputError(
                f"is not a numeric CSV: line {r} has the non-numeric value {bad[:40]!r}", name
            ) from None
        if width is None:
            width = len(row)
        elif len(row) != width:
            raise InvalidInputError(
                f"rows have different lengths: line {r} has {len(row)} values, expected {width}",
                name,
            )
        values.append(row)
    return np.asarray(values, dtype=np.float64)


def read_fc(path: PathLike, n_regions: int | None = None) -> np.ndarray:
    """Read an FC matrix (N rows of N numbers). Returns an (N, N) float64 array."""
    return check_fc(read_numeric(path), n_regions, input_name=str(path))


def read_fc_runs(paths: Sequence[PathLike], n_regions: int | None = None) -> np.ndarray:
    """Read one FC per run and combine them with a Fisher-z average. Returns (N, N)."""
    fcs = [read_fc(p, n_regions) for p in paths]
    _check_same_shape(fcs, paths)
    return fisher_z_mean(np.stack(fcs))


def read_fcd_cdf(path: PathLike, n_bins: int = DEFAULT_FCD_BINS) -> np.ndarray:
    """Read an FCD-CDF (one number per row, ``n_bins`` rows). Returns (n_bins,)."""
    return check_fcd_cdf(read_numeric(path), n_bins, input_name=str(path))


def read_fcd_cdf_runs(paths: Sequence[PathLike], n_bins: int = DEFAULT_FCD_BINS) -> np.ndarray:
    """Read one FCD-CDF per run and average them. Returns (n_bins,)."""
    return mean_cdf(np.stack([read_fcd_cdf(p, n_bins) for p in paths]))


def read_sc(path: PathLike, n_regions: int | None = None) -> np.ndarray:
    """Read a structural-connectivity matrix (N x N, unscaled). Returns (N, N) float64."""
    return check_sc(read_numeric(path), n_regions, input_name=str(path))


def read_map(path: PathLike, n_regions: int | None = None) -> np.ndarray:
    """Read a regional map (one value per row). Returns (N,) float64."""
    return check_map(read_numeric(path), n_regions, input_name=str(path))


def read_timeseries(path: PathLike, min_frames: int = 2) -> np.ndarray:
    """Read regional BOLD time series of shape (frames, regions) from TSV, CSV or NPY.

    NPY files are loaded with ``allow_pickle=False``.
    """
    name = str(path)
    p = Path(path)
    if p.suffix.lower() == ".npy":
        check_input_file(p)
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise InvalidInputError(f"is not a readable .npy array ({exc})", name) from None
    else:
        arr = read_numeric(path)
    return check_timeseries(arr, input_name=name, min_frames=min_frames)


def read_table(path: PathLike, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV table with a header row and check that ``required`` columns are present."""
    name = str(path)
    text = _read_text(path)
    try:
        # IDs are text: "001" must stay "001" (a folder name), never become the number 1
        table = pd.read_csv(_stdio.StringIO(text), dtype={"subject_id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InvalidInputError(f"is not a readable CSV table ({exc})", name) from None
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InvalidInputError(
            f"missing required column(s) {', '.join(missing)}; found {', '.join(table.columns)}",
            name,
        )
    if table.empty:
        raise InvalidInputError("has a header but no rows", name)
    return table


def prepare_demographics(table: pd.DataFrame, input_name: str = "demographics") -> pd.DataFrame:
    """Validate a demographics table and add the derived columns the charts use.

    Required: ``subject_id``, ``age_in_years``, and ``sex`` or ``numeric_sex``. Optional: ``site``,
    ``scanner``, ``site_scanner``, ``TR`` and ``scan_length`` (seconds). Adds ``sex``
    (female/male), ``numeric_sex`` (female = 1) and ``site_scanner`` (``site_scanner`` or
    ``<site>_<scanner>``) when possible.
    """
    out = table.copy()
    for col in ("subject_id", "age_in_years"):
        if col not in out.columns:
            raise InvalidInputError(f"missing required column {col!r}", input_name)
    try:
        check_unique_ids(out["subject_id"], input_name)
        out["subject_id"] = out["subject_id"].astype(str)
        check_unique_ids(out["subject_id"], input_name)
        out["age_in_years"] = check_ages(out["age_in_years"], input_name)
        if "sex" in out.columns:
            out["sex"] = normalise_sex(out["sex"], input_name)
        elif "numeric_sex" in out.columns:
            out["sex"] = normalise_sex(out["numeric_sex"], input_name)
        else:
            raise InvalidInputError("missing column 'sex' (or 'numeric_sex')", input_name)
    except InvalidInputError as err:
        raise err.with_source(input_name) from None
    out["numeric_sex"] = (out["sex"] == "female").astype(int)
    if "site_scanner" not in out.columns and "site" in out.columns:
        scanner = out["scanner"].astype(str) if "scanner" in out.columns else ""
        out["site_scanner"] = out["site"].astype(str) + ("_" + scanner if "scanner" in out else "")
    if "TR" in out.columns or "scan_length" in out.columns:
        for i, row in out.iterrows():
            check_timing(row.get("TR"), row.get("scan_length"), f"{input_name} row {i + 1}")
    return out


def read_demographics(path: PathLike) -> pd.DataFrame:
    """Read and validate a demographics CSV (see :func:`prepare_demographics`)."""
    return prepare_demographics(read_table(path), input_name=str(path))


MANIFEST_INPUT_COLUMNS = ("fc", "fcd_cdf", "timeseries")
"""Manifest columns that name a subject's data files (``;`` separates several runs)."""


def read_manifest(path: PathLike) -> pd.DataFrame:
    """Read a cohort manifest: one row per subject.

    Columns: ``subject_id``, ``tr`` and ``scan_length`` (seconds), and either ``fc`` + ``fcd_cdf``
    or ``timeseries`` (several runs separated by ``;``). Optional: ``sc``, ``myelin``,
    ``gradient``. Relative paths are resolved against the manifest's folder. Whether each file
    exists is checked per subject when it is processed, so one bad row fails only that subject.
    """
    name = str(path)
    table = read_table(path, required=("subject_id",))
    table.columns = [c.lower() if c in ("TR",) else c for c in table.columns]
    for col in ("tr", "scan_length"):
        if col not in table.columns:
            raise InvalidInputError(f"missing required column {col!r} (seconds)", name)
    has_fc = "fc" in table.columns and "fcd_cdf" in table.columns
    if not has_fc and "timeseries" not in table.columns:
        raise InvalidInputError("needs columns 'fc' and 'fcd_cdf', or a 'timeseries' column", name)
    check_unique_ids(table["subject_id"], name, as_folders=True)
    base = Path(path).resolve().parent
    for col in ("fc", "fcd_cdf", "timeseries", "sc", "myelin", "gradient"):
        if col in table.columns:
            table[col] = [
                None
                if (isinstance(v, float) and np.isnan(v)) or str(v).strip() == ""
                else ";".join(str((base / s.strip()).resolve()) for s in str(v).split(";"))
                for v in table[col]
            ]
    for i, row in table.iterrows():
        check_timing(row["tr"], row["scan_length"], f"{name} row {i + 1} ({row['subject_id']})")
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
    shown = ", ".join(str(int(i)) for i in idx[:limit])
    return shown + (f" and {len(idx) - limit} more" if len(idx) > limit else "")


def _check_same_shape(arrays: Sequence[np.ndarray], paths: Sequence[PathLike]) -> None:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        listing = ", ".join(f"{p}: {a.shape}" for p, a in zip(paths, arrays))
        raise InvalidInputError(f"runs have different shapes ({listing})", str(paths[0]))
