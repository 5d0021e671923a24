"""Atomic writers: every output is written to a temporary file in the same folder, then renamed.

An interrupted run therefore never leaves a half-written file, and an existing file is replaced only
by a complete new one. Reference-code layouts (docs/science.md §5): ``EI_ratio.csv``,
``best_parameters.csv`` (both with a ``region`` column of names when given them), ``fit_quality.csv``;
FC and FCD-CDF as header-less CSV.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.io.checks import PARQUET_SUFFIXES

PathLike = str | Path


@contextlib.contextmanager
def atomic_path(path: PathLike, exclusive: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it is renamed onto ``path``.

    With ``exclusive`` the finished file is linked to ``path`` instead, which raises
    :class:`FileExistsError` when ``path`` exists (another process wrote it first): a
    create-once file that readers never see half-written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> (d / "x.txt").read_text()
    'done'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # not tempfile.mkstemp: it creates the file with mode 0600, which would leave every output
    # unreadable to a lab's group; os.open with 0666 honours the user's umask like open() does
    while True:
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            break
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if exclusive:
            os.link(tmp, target)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_together(
    writes: Sequence[tuple[PathLike, Callable[[Path], object] | None]],
) -> list[Path]:
    """Write files that are read together (an FC and its FCD-CDF, an E/I table and the
    statistics simulated with it) so that a folder never holds new ones beside earlier ones.

    Each ``write(path)`` writes one file, at a staging name next to its target that ends in
    the target's name (writers that choose a format by suffix still do). Once all are written,
    the earlier files but the first are removed, then the staged files are renamed into place,
    the first one first. Stopped while writing, the earlier files stay as they were; stopped
    between the renames, the folder holds some of the new files and none of the earlier ones
    (a reader then misses a file, and says so), never a mixture.

    Parameters
    ----------
    writes : sequence of (path, write)
        Target paths, and a function writing that file's content to the path it is given
        (None: an earlier file of the set that this run does not write; it is removed with the
        other earlier files). The first entry must be written.

    Returns
    -------
    list of Path
        The targets.
    """
    if not writes or writes[0][1] is None:
        raise ValueError("write_together: the first file must be written")
    token = secrets.token_hex(6)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, write in writes:
            if write is None:
                continue
            target = Path(path)
            stage = target.with_name(f".staged-{token}-{target.name}")
            staged.append((stage, target))
            write(stage)
        for path, _ in writes[1:]:
            Path(path).unlink(missing_ok=True)
        for stage, target in staged:
            os.replace(stage, target)
    finally:
        for stage, _ in staged:
            if stage.exists():
                stage.unlink()
    return [target for _, target in staged]


def write_text(text: str, path: PathLike, exclusive: bool = False) -> Path:
    """Write UTF-8 text atomically (``exclusive``: only if ``path`` does not exist, else
    :class:`FileExistsError`; see :func:`atomic_path`)."""
    with atomic_path(path, exclusive) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(obj: Mapping[str, Any], path: PathLike, exclusive: bool = False) -> Path:
    """Write a JSON document atomically (indented, keys in insertion order; ``exclusive``: see
    :func:`write_text`)."""
    return write_text(json.dumps(obj, indent=2, default=_json_default) + "\n", path, exclusive)


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) as None: strict JSON has no NaN, and
    files others read (weights metadata, metrics) must load in any JSON reader."""
    if isinstance(value, Mapping):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (float, np.floating)) and not np.isfinite(value):
        return None
    return value


def as_json_data(value: Any) -> Any:
    """``value`` as JSON reads it back: numpy numbers and arrays as Python numbers and lists,
    paths as text, tuples as lists (what :func:`write_json` writes)."""
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


_TEMPORARY = re.compile(r"\.(.+)\.[0-9a-f]{12}\.tmp|\.staged-[0-9a-f]{12}-(.+)")
"""Names :func:`atomic_path` gives its temporary files (``.<name>.<12 hex>.tmp``), and
:func:`write_together` its staged ones (``.staged-<12 hex>-<name>``)."""


def atomic_target(path: PathLike) -> Path | None:
    """The output file that :func:`atomic_path`'s temporary ``path`` stands for (None when
    ``path`` is not such a temporary): error messages name the output, not the temporary."""
    p = Path(path)
    m = _TEMPORARY.fullmatch(p.name)
    return p.with_name(m.group(1) or m.group(2)) if m else None


def remove_orphan_temporaries(folder: PathLike, min_age_s: float = 60.0) -> int:
    """Delete temporary files that :func:`atomic_path` (or :func:`write_together`) left in
    ``folder`` and its sub-folders when a process was killed mid-write (``kill -9``; they are
    never read). Only files older
    than ``min_age_s`` [s] go, so a write in progress elsewhere is left alone.

    Returns
    -------
    int
        Number of files deleted.
    """
    root = Path(folder)
    if not root.is_dir():
        return 0
    now, removed = time.time(), 0
    for path in (*root.rglob(".*.tmp"), *root.rglob(".staged-*")):
        if atomic_target(path) is not None and path.is_file():
            with contextlib.suppress(OSError):
                if now - path.stat().st_mtime >= min_age_s:
                    path.unlink()
                    removed += 1
    return removed


def remove_dead_temporaries(folder: PathLike, held: bool = False) -> int:
    """Delete the temporaries of :func:`remove_orphan_temporaries` in ``folder`` whatever their
    age when no live writer can be there, else those older than 60 s.

    No live writer can be there when this process holds the folder's out-dir lock
    (:class:`~delssome_norms.io.OutDirLock`: ``estimate-ei``), or when ``held`` (the caller holds
    another lock over the folder: a cohort group's subject locks) and no other process holds
    that out-dir lock. A run calls it as it starts, on finished folders too: a file that a
    ``kill -9`` left half-written would otherwise stay there.

    Returns
    -------
    int
        Number of files deleted.
    """
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.io.guard import check_not_locked, held_by_this_process

    try:
        check_not_locked(folder)
    except InvalidInputError:  # held: by this process (its record names it) or another one
        dead = held_by_this_process(folder)
    else:
        dead = held
    return remove_orphan_temporaries(folder, 0.0 if dead else 60.0)


def write_table(table: pd.DataFrame, path: PathLike, float_format: str | None = None) -> Path:
    """Write a table with a header row, atomically: CSV (full float precision by default), or
    Apache Parquet when ``path`` ends in ``.parquet``/``.pq`` (binary, exact, and about ten times
    faster for large tables).

    By default a float is written as its shortest exact form (``11.482``, not
    ``11.481999999999999``: read back it is the same double). ``float_format`` (e.g. ``"%.7g"``)
    shortens derived CSV tables whose last digits carry nothing.

    Writes the table only: its ``<stem>.provenance.json`` and ``<stem>.regions.csv`` sidecars
    are not written, and ``table.attrs`` are not stored (pandas would embed them in a Parquet
    file, where they would outlive the rows they described).
    """
    with atomic_path(path) as tmp:
        if Path(path).suffix.lower() in PARQUET_SUFFIXES:
            bare = table.copy(deep=False)
            bare.attrs = {}
            bare.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, float_format=float_format)
    return Path(path)


def write_matrix(values: np.ndarray, path: PathLike, names: Sequence[str] | None = None) -> Path:
    """Write a vector or matrix as header-less CSV (the reference layout of FC and FCD-CDF), or,
    with ``names``, a square matrix with them as header row and first column (as
    ``pd.DataFrame(values, index=names, columns=names).to_csv``; the FC readers match such a
    file to an SC and maps by name)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    with atomic_path(path) as tmp:
        if names is None:
            np.savetxt(tmp, arr, delimiter=",", fmt="%.17g")
        else:
            labels = [str(n) for n in names]
            table = pd.DataFrame(arr, index=labels, columns=labels)
            table.to_csv(tmp, float_format="%.17g", lineterminator="\n")
    return Path(path)


def write_arrays(arrays: Mapping[str, np.ndarray], path: PathLike) -> Path:
    """Write named arrays to an ``.npz`` file atomically (read back with ``allow_pickle=False``).

    The zip entries get a fixed timestamp, so the same arrays always give the same bytes (and
    the same SHA-256).
    """
    import zipfile

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for key, value in arrays.items():
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with zf.open(info, "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asarray(value), allow_pickle=False)
    return Path(path)


def write_ei_ratio(
    path: PathLike,
    ei_ratio: np.ndarray,
    s_e: np.ndarray,
    s_i: np.ndarray,
    r_e: np.ndarray,
    ei_ratio_sd: np.ndarray | None = None,
    ei_ratio_lo: np.ndarray | None = None,
    ei_ratio_hi: np.ndarray | None = None,
    quality: Mapping[str, Any] | None = None,
    regions: Sequence[str] | None = None,
) -> Path:
    """Write ``EI_ratio.csv``: region_index [, region], EI_ratio, S_E, S_I, r_E [, EI_ratio_sd]
    [, EI_ratio_lo, EI_ratio_hi] [, fit_flagged, fit_flag_reasons]
    (:func:`delssome_norms.io.ei_table.ei_ratio_frame`; ``region``: the N names ``regions``, left
    out when None)."""
    from delssome_norms.io.ei_table import ei_ratio_frame

    return write_table(
        ei_ratio_frame(ei_ratio, s_e, s_i, r_e, ei_ratio_sd, ei_ratio_lo, ei_ratio_hi, quality, regions),
        path,
    )


def write_parameters(
    path: PathLike,
    wee: np.ndarray,
    wei: np.ndarray,
    sigma: np.ndarray,
    g: float,
    regions: Sequence[str] | None = None,
) -> Path:
    """Write ``best_parameters.csv``: region_index [, region], wEE, wEI, sigma, G (G repeated per
    region; ``region``: the N names ``regions``, left out when None)."""
    from delssome_norms.io.ei_table import REGION, REGION_INDEX, region_name_list

    n = len(wee)
    table = pd.DataFrame(
        {
            REGION_INDEX: np.arange(n),
            "wEE": wee,
            "wEI": wei,
            "sigma": sigma,
            "G": np.full(n, float(g)),
        }
    )
    if regions is not None:
        table.insert(1, REGION, region_name_list(regions, n))
    return write_table(table, path)


FIT_QUALITY_COLUMNS = ("stage", "corr_loss", "l1_loss", "ks_loss", "total_loss")


def write_fit_quality(path: PathLike, rows: Mapping[str, Mapping[str, float]]) -> Path:
    """Write ``fit_quality.csv``; ``rows`` maps a stage name to its corr/l1/ks losses."""
    records = []
    for stage, losses in rows.items():
        corr, l1, ks = (float(losses[k]) for k in ("corr_loss", "l1_loss", "ks_loss"))
        records.append(
            {
                "stage": stage,
                "corr_loss": corr,
                "l1_loss": l1,
                "ks_loss": ks,
                "total_loss": corr + l1 + ks,
            }
        )
    return write_table(pd.DataFrame.from_records(records, columns=FIT_QUALITY_COLUMNS), path)
