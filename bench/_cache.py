"""Work folders that benchmarks reuse: keep a subject's fit only if it is current.

A benchmark's ``--work`` folder caches finished fits between runs. A fit written with other inputs,
other settings or an older version (its ``run.json`` fingerprint differs) must not be reported as
this run's result, and a checkpoint of such a fit must not block the new one; the benchmark owns
its work folder, so both are discarded and refitted
(:func:`delssome_norms.fit.cohort.subject_finished` with ``overwrite``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from delssome_norms.fit import FitSettings
from delssome_norms.fit.cohort import subject_finished
from delssome_norms.fit.subject import SubjectInputs


def current_fits(
    subjects: Sequence[SubjectInputs],
    dirs: Sequence[Path],
    settings: FitSettings,
    fallback_gradient: np.ndarray | None = None,
) -> list[bool]:
    """Per subject: whether its folder holds a finished fit of exactly these inputs and settings.

    Stale results and checkpoints (other inputs, settings or version) are deleted on the way.
    """
    group = [s.subject_id for s in subjects]  # fit_group's default group: these subjects
    return [
        subject_finished(s, d, settings, fallback_gradient, overwrite=True, group_ids=group)
        for s, d in zip(subjects, dirs, strict=True)
    ]


def discard(dirs: Sequence[Path]) -> None:
    """Delete subject folders (to refit a whole group, e.g. when its wall time is measured)."""
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
