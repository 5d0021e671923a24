"""One lockstep plan for every shard of a cohort folder (``shard_plan.json``).

Shards (``cohort --shard k/n``) take whole lockstep groups, so together they cover the manifest
exactly once only when every shard forms the same groups. The default group size K follows the
memory of the machine a shard runs on (:func:`~delssome_norms.fit.lockstep.choose_group_size`),
which differs between cluster nodes. The first shard to start therefore records its K and the
manifest's subject list in the out-dir (created once, atomically; a shard starting at the same
moment reads the winner's), and every later shard adopts that K or stops with a clear message.

The groups also follow each row's TR and scan length, which a manifest may leave to the runs' JSON
sidecars and time series: a row whose TR or scan length this node cannot find would be planned
under "unknown", and a node that can read its files would form other groups. Shards therefore
refuse such rows up front (:func:`refuse_unknown_timing`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from delssome_norms.errors import InvalidInputError
from delssome_norms.io import read_json_object, write_json
from delssome_norms.io.readers import INPUT_PROBLEM

PLAN_FILE = "shard_plan.json"
"""Name of the plan in the out-dir."""
FORMAT_VERSION = 1
"""Schema version of :data:`PLAN_FILE`."""


def subjects_sha256(subject_ids: list[str]) -> str:
    """SHA-256 of the manifest's subject ids in order (what decides the groups besides K)."""
    return hashlib.sha256(json.dumps([str(s) for s in subject_ids]).encode("utf-8")).hexdigest()


def subject_set_sha256(subject_ids: list[str]) -> str:
    """SHA-256 of the manifest's subject ids in sorted order (tells a reordered manifest from
    another one)."""
    return subjects_sha256(sorted(str(s) for s in subject_ids))


def groups_sha256(plan: Any) -> str:
    """SHA-256 of a plan's lockstep groups (the subject ids of each, in order).

    With the same subjects and K the groups still follow each row's TR and scan length (and a
    time series that cannot be read today has no scan length): shards that formed other groups
    would leave some subjects to no shard and give others to two."""
    groups = [[str(plan.rows[i]["subject_id"]) for i in g] for g in plan.groups]
    return hashlib.sha256(json.dumps(groups).encode("utf-8")).hexdigest()


def refuse_unknown_timing(rows: list[dict[str, Any]]) -> None:
    """Refuse, for ``--shard k/n`` with n > 1, rows whose TR or scan length could not be found
    (the manifest's :data:`~delssome_norms.io.readers.INPUT_PROBLEM`: an empty ``tr`` and no
    readable JSON sidecar with RepetitionTime, or an empty ``scan_length`` and an unreadable
    time series).

    Lockstep groups are formed per TR and scan length, so such a row's group depends on which
    files the node planning it can read: nodes that read them differently would fit a subject
    twice or never. Without shards (one plan, also with Dask) such a row fails alone.

    Raises
    ------
    InvalidInputError
        Naming the rows, why (their runs or sidecars) and the fix.
    """
    bad = [
        str(r[INPUT_PROBLEM])
        for r in rows
        if r.get(INPUT_PROBLEM) and (r.get("tr") is None or r.get("scan_length") is None)
    ]  # a row whose timing is known is planned alike everywhere, and fails alone if it must
    if not bad:
        return
    shown = "; ".join(bad[:3]) + (f" (and {len(bad) - 3} more)" if len(bad) > 3 else "")
    raise InvalidInputError(
        f"{len(bad)} manifest row(s) have no TR or scan length that can be found: {shown}. "
        "Shards form their lockstep groups by TR and scan length, so a node that can read those "
        "files would form other groups (subjects fitted twice or never): fill the manifest's tr "
        "(and scan_length) column for these rows, fix their sidecars or time series, or remove "
        "the rows; or run without --shard",
        "--shard",
    )


def _read(path: Path) -> dict[str, Any]:
    plan = read_json_object(path, "shard plan", "delete it once no shard of this folder is running")
    ok = (
        plan.get("format_version") == FORMAT_VERSION
        and isinstance(plan.get("group_size"), int)
        and plan["group_size"] >= 1
        and isinstance(plan.get("subjects_sha256"), str)
    )
    if not ok:
        raise InvalidInputError(
            "is not a shard plan of this version; delete it once no shard of this folder is running",
            str(path),
        )
    return plan


def agree_group_size(
    out_dir: Path,
    subject_ids: list[str],
    group_size: int,
    explicit: bool,
    replan: Callable[[int], Any],
    plan: Any,
) -> Any:
    """The cohort plan every shard of ``out_dir`` uses.

    Parameters
    ----------
    out_dir : Path
        The cohort's output folder (exists).
    subject_ids : list of str
        The manifest's subjects, in order.
    group_size : int
        K of this process's plan.
    explicit : bool
        K was given (``--batch-subjects``): a different recorded K is an error, not adopted.
    replan : callable
        Builds the plan for another K.
    plan : CohortPlan
        This process's plan (returned when it agrees with the record).

    Returns
    -------
    CohortPlan

    Raises
    ------
    InvalidInputError
        The folder's shards were planned for another manifest, or with another explicit K.
    """
    path = Path(out_dir) / PLAN_FILE
    digest = subjects_sha256(subject_ids)
    record = {
        "format_version": FORMAT_VERSION,
        "group_size": int(group_size),
        "n_subjects": len(subject_ids),
        "subjects_sha256": digest,
        "subject_set_sha256": subject_set_sha256(subject_ids),
        "groups_sha256": groups_sha256(plan),
    }
    try:
        write_json(record, path, exclusive=True)
        return plan
    except FileExistsError:
        stored = _read(path)
    return _check_groups(
        _agree(stored, out_dir, subject_ids, group_size, explicit, replan, plan), stored, out_dir
    )


def _check_groups(plan: Any, stored: dict[str, Any], out_dir: Path) -> Any:
    """``plan`` when it forms the recorded groups (plans recorded before they were: any)."""
    recorded = stored.get("groups_sha256")
    if recorded is None or recorded == groups_sha256(plan):
        return plan
    raise InvalidInputError(
        "the shards of this folder were planned with other lockstep groups: the same subjects, "
        "but a TR or scan length in the manifest changed, or a time series could be read by one "
        "shard and not by another (then its scan length is unknown). Shards cover the cohort "
        "together only with the same groups: run every shard with the same manifest and input "
        f"files, or delete {PLAN_FILE} once no shard of this folder is running and start all of "
        "them again (finished subjects are kept)",
        str(Path(out_dir) / PLAN_FILE),
    )


def _agree(
    stored: dict[str, Any],
    out_dir: Path,
    subject_ids: list[str],
    group_size: int,
    explicit: bool,
    replan: Callable[[int], Any],
    plan: Any,
) -> Any:
    """The plan of the recorded K, or the errors of a plan for another manifest or K."""
    digest = subjects_sha256(subject_ids)
    if stored["subjects_sha256"] != digest:
        if stored.get("subject_set_sha256") == subject_set_sha256(subject_ids):
            what = (
                f"the same {len(subject_ids)} subjects in another row order (shards take lockstep "
                "groups in manifest order, so a reordered manifest forms other groups)"
            )
        else:
            what = f"{stored.get('n_subjects')} subjects, not the {len(subject_ids)} of this one"
            if stored.get("n_subjects") == len(subject_ids):
                what = f"{len(subject_ids)} subjects, not the same ones or not in this order"
                if stored.get("subject_set_sha256"):
                    what = f"{len(subject_ids)} subjects, but not the same ones as this manifest's"
        raise InvalidInputError(
            f"the shards of this folder were planned for another manifest ({what}): every "
            "shard of a folder must read the same manifest, rows in the same order; use another "
            f"--out-dir, or delete {PLAN_FILE} once no shard of this folder is running",
            str(out_dir),
        )
    k = stored["group_size"]
    if k == group_size:
        return plan
    if explicit:
        raise InvalidInputError(
            f"the shards of this folder form lockstep groups of {k} subject(s), not "
            f"{group_size}: shards only cover the cohort together when they form the same "
            f"groups; use --batch-subjects {k} (or leave it out)",
            "--batch-subjects",
        )
    return replan(k)
