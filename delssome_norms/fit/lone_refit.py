"""A subject of a cohort refitted alone with another seed stays part of the cohort.

A subject that fails in its lockstep group is refitted alone in its cohort folder with
``estimate-ei --seed N --overwrite`` (:func:`~delssome_norms.fit.outputs.refit_alone_advice`,
docs/rerunning.md). Its results differ from the cohort's run only in the seed and in the group it
was fitted in (alone): the same pipeline, which ``collect`` accepts. A rerun of the cohort (to
finish other subjects, or another shard) must keep such results as finished rather than refuse
the whole folder. A refit alone that has not finished (only its checkpoint) cannot be continued
inside a lockstep group, whose noise depends on its members: it is named as what it is, with the
ways on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from delssome_norms.fit.checkpoint import Checkpoint

LONE_REFIT_KEYS = frozenset({"settings.seed"})
"""Fingerprint keys in which a finished refit alone may differ from its cohort's run."""


def _alone(group: Any, subject_id: str) -> bool:
    return isinstance(group, list) and [str(g) for g in group] == [subject_id]


def is_lone_refit(
    run: Mapping[str, Any], differences: Sequence[str], cohort_group: Sequence[str] | None
) -> bool:
    """Whether finished results (``run``, its ``run.json``) are a refit alone, with another seed,
    of a subject that the cohort fits in the lockstep group ``cohort_group`` (None: not a cohort).

    ``differences`` are the run fingerprint's keys that differ from the cohort's
    (:func:`~delssome_norms.fit.outputs.fingerprint_differences`). A cohort whose group is the
    subject alone cannot tell a refit from its own run with another ``--seed``: not a refit.
    """
    sid = str(run.get("subject_id"))
    if cohort_group is None or _alone(list(cohort_group), sid):
        return False
    return (
        bool(differences)
        and set(differences) <= LONE_REFIT_KEYS
        and _alone(run.get("lockstep_group"), sid)
    )


def unfinished_lone_refit(
    checkpoint: Checkpoint, subject_id: str, cohort_group: Sequence[str]
) -> str | None:
    """Why a checkpoint of a refit alone cannot be continued in the cohort's group (None when the
    checkpoint is not one: absent, matching, or differing in more than the seed and group)."""
    stored = checkpoint.stored_fingerprint()
    differences = checkpoint.differences()
    if stored is None or not differences or _alone(list(cohort_group), subject_id):
        return None
    if not (set(differences) <= {"group"} | LONE_REFIT_KEYS and _alone(stored.get("group"), subject_id)):
        return None
    settings = stored.get("settings")
    seed = settings.get("seed") if isinstance(settings, dict) else None
    return (
        f"an unfinished refit of {subject_id} alone (seed {seed}): finish it by rerunning the "
        f"estimate-ei command that started it (it resumes), or delete {checkpoint.directory} to "
        "have the cohort fit it in its lockstep group with the cohort's seed"
    )
