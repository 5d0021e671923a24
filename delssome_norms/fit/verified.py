"""Finished subjects verified once per cohort run: file signatures instead of a second check.

A cohort run checks every subject folder that holds results before any work
(``cohort.check_stale_subjects``: its inputs loaded, its fingerprint and result files compared)
and again under its group's lock, since another process may have changed the folder in between.
The second check re-reads and re-parses every input of every finished subject (about 10 ms
each: minutes for a finished 12,005-person cohort, ``bench/cohort_scale.py``). The first check
therefore records the signatures (size, modification time in ns, inode) of the subject's result
files and inputs, taken before it reads them, in the manifest row (:data:`VERIFIED_KEY`); under
the lock a subject whose files all still carry those signatures is skipped as finished without
reading them again. Any write, replacement or deletion of one of them (another process's
``--overwrite``, an edited input) changes a signature and leads to the full check.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from delssome_norms.io.readers import MANIFEST_PATH_COLUMNS

VERIFIED_KEY = "_verified_finished"
"""Manifest-row key of the signatures of a subject verified as finished before the work."""

RESULT_FILES = ("run.json", "EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")


def _input_paths(row: dict[str, Any]) -> list[str]:
    paths = []
    for col in MANIFEST_PATH_COLUMNS:
        value = row.get(col)
        if isinstance(value, str) and value.strip():
            paths += [p.strip() for p in value.split(";") if p.strip()]
    return paths


def signatures(row: dict[str, Any], subject_dir: str | Path) -> tuple | None:
    """``(path, size, mtime_ns, inode)`` of the subject's result files and inputs (None when one
    of them cannot be read: the full check then runs)."""
    folder = Path(subject_dir)
    out = []
    for path in [*(str(folder / f) for f in RESULT_FILES), *_input_paths(row)]:
        try:
            st = os.stat(path)
        except OSError:
            return None
        out.append((path, st.st_size, st.st_mtime_ns, st.st_ino))
    return tuple(out)


def mark_verified(row: dict[str, Any], taken: tuple | None) -> None:
    """Record that the subject was found finished with its files at signatures ``taken``
    (taken before the check read them)."""
    if taken is not None:
        row[VERIFIED_KEY] = taken


def still_verified(row: dict[str, Any], subject_dir: str | Path) -> bool:
    """Whether the subject was verified as finished and none of its files changed since."""
    taken = row.get(VERIFIED_KEY)
    return taken is not None and signatures(row, subject_dir) == taken
