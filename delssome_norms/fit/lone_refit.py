"""A subject of a cohort refitted alone with another seed stays part of the cohort.

A subject that fails in its lockstep group is refitted alone in its cohort folder with
``estimate-ei --seed N --overwrite`` (:func:`~delssome_norms.fit.outputs.refit_alone_advice`,
docs/rerunning.md). Its results differ from the cohort's run only in the seed and in the group it
was fitted in (alone): the same pipeline, which ``collect`` accepts. A rerun of the cohort (to
finish other subjects, or another shard) must keep such results as finished rather than refuse
the whole folder.

A refit alone cannot be told from the cohort's own group of one subject by its results (the same
``lockstep_group``, and a cohort rerun with another ``--seed`` must still be refused), so the
single-subject fit (:func:`~delssome_norms.fit.lockstep.estimate_ei`) into a cohort's subject
folder records itself before it starts: :data:`REFIT_FILE`, the run fingerprint it fits with.
Results are taken as a refit alone only when their fingerprint is the recorded one and differs
from the cohort's in the seed alone. A refit alone that has not finished (its checkpoint) cannot
be continued inside a lockstep group, whose noise depends on its members: it is named as what it
is (unfinished, or failed), with the ways on.

``cohort --overwrite`` keeps a finished refit alone too (:func:`kept_seed`, named before the work
by :func:`warn_kept` and counted in the summary): the user made it deliberately, often because
the cohort's seed failed that subject, and refitting it with the cohort's seed would replace a
good result with a known failure. One whose inputs changed (or any setting but the seed) differs
in more than the seed and is refitted like any other subject. Deleting :data:`REFIT_FILE` makes
the results the cohort's again (``--overwrite`` then refits them with the cohort's seed).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from delssome_norms.errors import InputWarning
from delssome_norms.fit.outputs import FAILURE_FILE, fingerprint_differences, read_run
from delssome_norms.io import write_json

REFIT_FILE = "refit_alone.json"
"""Record, in a cohort's subject folder, of a fit of that subject alone (``estimate-ei``)."""
FORMAT_VERSION = 1
LONE_REFIT_KEYS = frozenset({"settings.seed"})
"""Fingerprint keys in which a refit alone may differ from its cohort's run."""


def record_refit_alone(subject_dir: str | Path, fingerprint: Mapping[str, Any]) -> None:
    """Record, before it starts, that ``subject_dir`` (a cohort's subject folder) is fitted alone
    with the run ``fingerprint`` (:func:`~delssome_norms.fit.outputs.run_fingerprint`)."""
    Path(subject_dir).mkdir(parents=True, exist_ok=True)
    record = {"format_version": FORMAT_VERSION, "fingerprint": dict(fingerprint)}
    write_json(record, Path(subject_dir) / REFIT_FILE)


def _recorded(subject_dir: str | Path) -> dict[str, Any] | None:
    """The fingerprint :func:`record_refit_alone` wrote, as ``run.json`` stores one (None: none,
    or unreadable: then nothing is taken as a refit alone)."""
    try:
        record = json.loads((Path(subject_dir) / REFIT_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
        return None
    fingerprint = record.get("fingerprint")
    return fingerprint if isinstance(fingerprint, dict) else None


def _refit_alone_fingerprint(subject_dir: str | Path, run: Mapping[str, Any] | None) -> dict | None:
    """The fingerprint of finished results (``run``, their ``run.json``) when they are the
    recorded refit alone of ``subject_dir`` (fitted alone, fingerprint as recorded), else None."""
    recorded = _recorded(subject_dir)
    stored = run.get("fingerprint") if run is not None else None
    if recorded is None or not isinstance(stored, dict) or fingerprint_differences(recorded, stored):
        return None
    return stored if _alone(run.get("lockstep_group"), str(run.get("subject_id"))) else None


def is_lone_refit(subject_dir: str | Path, run: Mapping[str, Any], differences: Sequence[str]) -> bool:
    """Whether finished results (``run``, their ``run.json``) are a recorded refit alone whose
    fingerprint differs from the cohort's (``differences``, its keys) in the seed alone."""
    if not differences or not set(differences) <= LONE_REFIT_KEYS:
        return False
    return _refit_alone_fingerprint(subject_dir, run) is not None


def kept_seed(subject_dir: str | Path, cohort_seed: Any) -> Any:
    """The seed of the results in ``subject_dir`` when a cohort run of seed ``cohort_seed``,
    which found them finished (``cohort.subject_finished``), took them as a refit alone
    (:func:`is_lone_refit`); None for the cohort's own results."""
    stored = _refit_alone_fingerprint(subject_dir, read_run(subject_dir))
    settings = stored.get("settings") if stored is not None else None
    seed = settings.get("seed") if isinstance(settings, dict) else None
    return seed if seed is not None and seed != cohort_seed else None


def warn_kept(kept: list[tuple[str, Any]], overwrite: bool) -> list[tuple[str, Any]]:
    """Before the work of ``cohort --overwrite``: name the finished refits alone it keeps
    (``(subject_id, seed)``, :func:`kept_seed`) and how to have one refitted instead; returns
    ``kept``."""
    if not (kept and overwrite):
        return kept
    shown = ", ".join(f"{sid} (seed {seed})" for sid, seed in kept[:10])
    more = f" and {len(kept) - 10} more" if len(kept) > 10 else ""
    warnings.warn(
        f"--overwrite keeps {len(kept)} finished refit(s) alone, fitted with another --seed and "
        f"otherwise the cohort's inputs and settings: {shown}{more}; to refit one with the "
        f"cohort's seed instead, delete its {REFIT_FILE} and rerun with --overwrite "
        "(docs/rerunning.md)",
        InputWarning,
        stacklevel=2,
    )
    return kept


def _alone(group: Any, subject_id: str) -> bool:
    return isinstance(group, list) and [str(g) for g in group] == [subject_id]


def _checkpoint_of(subject_dir: Path) -> dict[str, Any] | None:
    """The fingerprint stored in the subject's checkpoint (None: none, or unreadable)."""
    try:
        state = json.loads((subject_dir / "checkpoint" / "state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    fingerprint = state.get("fingerprint") if isinstance(state, dict) else None
    return fingerprint if isinstance(fingerprint, dict) else None


def refit_alone_checkpoint(
    subject_dir: str | Path, subject_id: str, cohort_fingerprint: Mapping[str, Any]
) -> str | None:
    """Why the subject's checkpoint, written by a recorded refit alone of this cohort's pipeline
    with another seed, cannot be continued in the cohort's group (None: no such refit)."""
    recorded = _recorded(subject_dir)
    if recorded is None:
        return None
    differences = fingerprint_differences(recorded, cohort_fingerprint)
    if not differences or not set(differences) <= LONE_REFIT_KEYS:
        return None  # another budget or other inputs: the generic message says which
    settings = recorded.get("settings")
    seed = settings.get("seed") if isinstance(settings, dict) else None
    stored = _checkpoint_of(Path(subject_dir))  # the refit's own checkpoint, not the cohort's
    stored_settings = stored.get("settings") if stored is not None else None
    if not (
        stored is not None
        and _alone(stored.get("group"), subject_id)
        and isinstance(stored_settings, dict)
        and stored_settings.get("seed") == seed
    ):
        return None
    checkpoint = Path(subject_dir) / "checkpoint"
    cohort_way = (
        f"or delete {checkpoint} to have the cohort fit it in its lockstep group with the cohort's seed"
    )
    if (Path(subject_dir) / FAILURE_FILE).is_file():
        return (
            f"a refit of {subject_id} alone with seed {seed} that failed: refit it alone with "
            f"another --seed and --overwrite, {cohort_way}"
        )
    return (
        f"an unfinished refit of {subject_id} alone (seed {seed}): finish it by rerunning the "
        f"estimate-ei command that started it (it resumes), {cohort_way}"
    )
