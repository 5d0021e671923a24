"""``prepare``'s record beside the FC and FCD-CDF it computed (``<prefix>prepare.json``), and the
check that a fit of those files uses the timing they were computed with.

An FC and FCD-CDF carry no TR: a fit given another TR, scan length or FCD window than the ones
``prepare`` used simulates another scan than the data (its FCD windows, frames and BOLD sampling
differ) and silently fits the wrong thing. The record names them; a fit reading an FC whose
record describes that very file (``fc_sha256``) must agree with it, and its FCD-CDF must be the
one ``prepare`` wrote with that FC (``fcd_cdf_sha256``; records written before it was kept are
not checked for it): an FCD-CDF of another subject, TR or FCD window beside the FC would be
fitted without a word.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.digest import file_sha256

PREPARE_RECORD_KIND = "delssome_norms prepare record"
"""Value of ``kind`` in ``<prefix>prepare.json``."""


def prepare_record(
    runs: Sequence[str | Path],
    frames: Sequence[int],
    tr: float,
    fcd_window: int,
    n_regions: int,
    drop_na_frames: bool,
    subject_id: str | None = None,
) -> dict[str, Any]:
    """What ``prepare`` computed an FC and FCD-CDF from: TR [s], FCD window [frames], each run
    (absolute path, SHA-256, frames used), the scan length a fit needs (the runs' mean number of
    frames x TR [s]) and the package version. The names of the FC and FCD-CDF and their
    SHA-256 (``fc_sha256``, ``fcd_cdf_sha256``) are added by
    :func:`~delssome_norms.cli.prepare_cmd.write_pair`."""
    from delssome_norms import __version__

    n_frames = round(sum(frames) / len(frames))
    return {
        "kind": PREPARE_RECORD_KIND,
        "format_version": 1,
        "delssome_norms_version": __version__,
        "subject_id": subject_id,
        "tr": float(tr),
        "fcd_window": int(fcd_window),
        "fcd_window_s": int(fcd_window) * float(tr),
        "runs": [
            {"file": str(Path(p).absolute()), "sha256": file_sha256(p), "frames": int(n)}
            for p, n in zip(runs, frames, strict=True)
        ],
        "n_frames": n_frames,
        "scan_length": n_frames * float(tr),
        "n_regions": int(n_regions),
        "drop_na_frames": bool(drop_na_frames),
    }


def prepare_record_path(fc_path: str | Path) -> Path:
    """``prepare``'s record beside an FC it wrote: ``<prefix>FC.csv`` -> ``<prefix>prepare.json``."""
    fc = Path(fc_path)
    return fc.with_name(fc.name.removesuffix("FC.csv") + "prepare.json")


def read_prepare_record(fc_path: str | Path) -> dict[str, Any] | None:
    """The record beside ``fc_path`` when it describes that file (its ``fc_sha256`` is the file's
    digest); None when there is none, it is not a record, or it describes another FC (an FC
    written over by hand, or by another tool)."""
    path = prepare_record_path(fc_path)
    if path == Path(fc_path) or not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("kind") != PREPARE_RECORD_KIND:
        return None
    if record.get("fc_sha256") != file_sha256(fc_path):
        return None
    return record


def check_prepared_pair(fc_paths: Sequence[str | Path], fcd_cdf_paths: Sequence[str | Path]) -> None:
    """Refuse FCD-CDF files that are not the ones ``prepare`` wrote with the FC files: the
    record beside each FC (:func:`read_prepare_record`) that names its FCD-CDF's SHA-256 needs
    a file of that digest among ``fcd_cdf_paths`` (in any order). Nothing to check for an FC
    without a record, a record written before the digest was kept, or a missing FCD-CDF file
    (its reader says so)."""
    cdfs = [Path(p) for p in fcd_cdf_paths]
    if not cdfs or not all(p.is_file() for p in cdfs):
        return
    digests: set[str] | None = None
    for k, fc_path in enumerate(fc_paths):
        record = read_prepare_record(fc_path)
        want = None if record is None else record.get("fcd_cdf_sha256")
        if not isinstance(want, str):
            continue
        if digests is None:
            digests = {file_sha256(p) for p in cdfs}
        if want in digests:
            continue
        own = Path(fc_path).with_name(str(record.get("fcd_cdf") or "FCD_CDF.csv"))
        if _same_values(own, want, cdfs):  # the same CDF in another file (format, name)
            continue
        given = cdfs[k] if len(cdfs) == len(fc_paths) else "; ".join(map(str, cdfs))
        compared = (
            f"nor its values those of {own.name}"
            if own.is_file()
            else f"and {own.name} is not there to compare values with"
        )
        raise InvalidInputError(
            f"is not the FCD-CDF that prepare wrote with the FC {fc_path}: its record "
            f"{prepare_record_path(fc_path)} names {own.name}, whose SHA-256 no FCD-CDF given "
            f"has, {compared}; an FCD-CDF of another subject, TR or FCD window would be fitted "
            f"with that FC: give the FCD-CDF prepared with it ({own}), or prepare the time "
            "series again",
            str(given),
        )


def _same_values(own: Path, digest: str, given: Sequence[Path]) -> bool:
    """Whether one of the ``given`` FCD-CDF files holds the values of ``own`` (the file
    ``prepare`` wrote, still of its recorded ``digest``) to 1e-9: the same CDF converted to
    another format or re-saved under another name."""
    import numpy as np

    from delssome_norms.io.readers import read_fcd_cdf

    if not own.is_file() or file_sha256(own) != digest:
        return False
    try:
        ref = read_fcd_cdf(own)
    except (InvalidInputError, OSError, ValueError):
        return False
    for path in given:
        try:
            values = read_fcd_cdf(path)
        except (InvalidInputError, OSError, ValueError):
            continue
        if values.shape == ref.shape and np.allclose(values, ref, rtol=0, atol=1e-9):
            return True
    return False


def check_prepared_timing(
    fc_paths: Sequence[str | Path],
    tr: float,
    scan_length: float,
    fcd_window: int,
    subject: str | None = None,
    *,
    fcd_cdf: Sequence[str | Path] | None = None,
) -> None:
    """Refuse a fit whose TR [s], scan length [s] or FCD window [frames] contradicts the record
    ``prepare`` wrote beside any of its FC files ``fc_paths`` (no record, or one of another FC:
    nothing to check); with ``fcd_cdf`` (the subject's FCD-CDF files), also FCD-CDF files that
    are not the ones ``prepare`` wrote with those FCs (:func:`check_prepared_pair`).

    The scan length may differ by a TR or 10 % (the slack of a scan length given with time
    series: frames dropped as ``n/a`` or scrubbed). ``subject`` names the fit in the message
    (None: "the fit would use ...").
    """
    if fcd_cdf is not None:
        check_prepared_pair(fc_paths, fcd_cdf)
    for fc_path in fc_paths:
        _check_one(fc_path, tr, scan_length, fcd_window, subject)


def _check_one(
    fc_path: str | Path, tr: float, scan_length: float, fcd_window: int, subject: str | None
) -> None:
    record = read_prepare_record(fc_path)
    if record is None:
        return
    where = f"{prepare_record_path(fc_path)} (prepare's record of {Path(fc_path).name})"
    problems = []
    r_tr, r_scan, r_window = (record.get(k) for k in ("tr", "scan_length", "fcd_window"))
    if isinstance(r_tr, (int, float)) and not math.isclose(float(r_tr), tr, rel_tol=1e-6):
        problems.append(f"TR {tr:g} s, but the FC was computed at TR {float(r_tr):g} s")
    if isinstance(r_scan, (int, float)):
        slack = max(float(r_tr) if isinstance(r_tr, (int, float)) else 0.0, 0.1 * float(r_scan))
        if abs(scan_length - float(r_scan)) > slack:
            problems.append(
                f"scan length {scan_length:g} s, but the runs were {float(r_scan):g} s "
                f"({record.get('n_frames')} frames)"
            )
    if isinstance(r_window, int) and r_window != fcd_window and not problems:
        problems.append(f"FCD window {fcd_window} frames, but the FCD-CDF was computed with {r_window}")
    if problems:
        raise InvalidInputError(
            f"the fit{f' of {subject}' if subject else ''} would use {'; '.join(problems)} "
            f"({where}): give the timing "
            "the data were prepared with (--tr, --scan-length, --fcd-window, or the manifest's "
            "tr / scan_length cells), or prepare the time series again",
            str(fc_path),
        )
