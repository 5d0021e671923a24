"""The cohort's group-average FC matched by region name, and its gradient for subjects without maps.

Subjects' files may name their regions (another atlas's names, or some DK68 regions) and list
them in different orders. :func:`cohort_gradient` reads each subject's FC by name
(:func:`row_fc`: runs matched with one another as :func:`~delssome_norms.fit.load_subject` does),
puts it in the region order of the first subject whose FC names its regions, and averages.

A subject whose FC names other regions (or whose order cannot be checked: no names next to a
reordered reference) is left out of the average with an
:class:`~delssome_norms.errors.InputWarning` naming it and why, and, if it has no maps of its
own, fails alone when fitted (:func:`in_cohort_order`): one subject of another parcellation (or
with a typo in a header) should not stop the other subjects of a cohort, as an unreadable
subject does not, and a subject with its own maps does not use the gradient at all.

The gradient is in the reference subject's order, so each subject fitted with it is put in
that order (:func:`in_cohort_order`, from the row's :data:`ORDER_KEY`): its FC, SC and region
names; its FCD-CDF does not depend on the order of the regions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.design import FCGradientError, disconnected_reason
from delssome_norms.fit.lockstep import default_gradient
from delssome_norms.io import fisher_z_mean, read_json_object, write_json
from delssome_norms.io.digest import arrays_sha256
from delssome_norms.io.named_inputs import read_fc_named
from delssome_norms.io.named_regions import Named, align_names, match_inputs, take_regions
from delssome_norms.io.timeseries import read_timeseries_named
from delssome_norms.model import bold_fc

if TYPE_CHECKING:
    from delssome_norms.fit.subject import SubjectInputs

MAP_COLUMNS = ("myelin", "gradient")
ORDER_KEY = "_cohort_fc_regions"
"""Key of a manifest row (set by :func:`cohort_gradient`) holding ``(subject_id, names)``: the
region order of the cohort FC gradient, that a subject fitted with it is put in."""
GRADIENT_FILE = "cohort_gradient.json"
"""The cohort FC gradient a cohort's output folder was fitted with (:func:`folder_gradient`)."""
FORMAT_VERSION = 1
"""Schema version of :data:`GRADIENT_FILE`."""


@dataclass(frozen=True)
class CohortGradient:
    """A cohort FC gradient and what it was computed from.

    Attributes
    ----------
    values : ndarray of shape (N,)
        The gradient (unitless), in the region order of ``order``.
    order : (str, tuple of str) or None
        ``(subject_id, region names)`` of the subject whose region order it is in (None: the
        subjects' files name no regions; every subject is fitted in its own column order).
    subjects : tuple of str
        The subjects whose FC it averages.
    """

    values: np.ndarray
    order: tuple[str, tuple[str, ...]] | None
    subjects: tuple[str, ...]


def row_fc(row: dict[str, Any], n_regions: int) -> Named:
    """A manifest row's FC with its region names: its FC runs
    (:func:`~delssome_norms.io.named_inputs.read_fc_named`), or the Fisher-z mean of its time
    series' FCs (runs matched by name as for FC runs)."""
    if not row.get("timeseries"):
        return read_fc_named(str(row["fc"]).split(";"), n_regions)
    paths = str(row["timeseries"]).split(";")
    read = read_timeseries_named(paths)
    for p, r in zip(paths, read):
        if r.values.shape[1] != n_regions:
            raise InvalidInputError(f"has {r.values.shape[1]} region columns, expected {n_regions}", p)
    names, orders = match_inputs(dict(zip(paths, read)))
    runs = [
        take_regions(r.values, orders[p], 1) if p in orders else r.values for p, r in zip(paths, read)
    ]
    fc = fisher_z_mean(np.stack([bold_fc(r).numpy() for r in runs]))
    first = read[0]
    if names is None:
        return Named(fc, first.names, "numbered") if first.kind == "numbered" else Named(fc)
    kind = "own" if any(r.kind == "own" for r in read) else "dk"
    full = kind == "dk" and len(names) == len(DK68_REGIONS)
    return Named(fc, tuple(names), kind, bool(orders) or (not full and any(r.moved for r in read)))


def _aligned(read: dict[str, Named]) -> tuple[list[np.ndarray], list[str], dict[str, str], Any]:
    """The FCs in the first named subject's order; the subjects reordered; those left out (and
    why); and ``(subject_id, names)`` of the reference (None without names)."""
    named = [s for s, e in read.items() if e.kind in ("dk", "own")]
    named = named or [s for s, e in read.items() if e.kind == "numbered"]
    if not named:
        return [e.values for e in read.values()], [], {}, None
    ref = named[0]
    fcs, moved, refused = [], [], {}
    for sid, entry in read.items():
        if sid == ref:
            fcs.append(entry.values)
            continue
        try:
            with warnings.catch_warnings():  # one warning below lists them
                warnings.simplefilter("ignore", InputWarning)
                _, orders = match_inputs({ref: read[ref], sid: entry})
        except InvalidInputError as err:
            refused[sid] = err.problem
            continue
        if sid in orders:
            moved.append(sid)
        fcs.append(take_regions(entry.values, orders[sid]) if sid in orders else entry.values)
    names = read[ref].names
    return fcs, moved, refused, None if names is None else (ref, tuple(names))


def cohort_gradient(plan: Any, maps: str = "fc-gradient") -> np.ndarray | None:
    """Principal gradient of the group-average FC, or None if no subject needs it.

    None when every row has its own maps, or when ``maps="default"`` and the atlas is DK68 (the
    shipped default maps are used). Subjects' FCs are put in the region order of the first
    subject that names its regions (see the module's docstring). Unreadable subjects, and
    subjects naming other regions, are left out with an
    :class:`~delssome_norms.errors.InputWarning` naming them (they fail with a clear message
    when processed, if they have no maps). Every row then holds the gradient's region order
    (:data:`ORDER_KEY`).
    """
    fresh = _computed(plan, maps)
    return None if fresh is None else fresh.values


def needs_gradient(plan: Any, maps: str) -> bool:
    """Whether some row of ``plan`` is fitted with the cohort FC gradient (no maps of its own,
    and not the shipped DK68 maps of ``maps="default"``)."""
    if maps == "default" and plan.n_regions == len(DK68_REGIONS):
        return False
    return not all(any(r.get(c) for c in MAP_COLUMNS) for r in plan.rows)


def _computed(plan: Any, maps: str) -> CohortGradient | None:
    """:func:`cohort_gradient` with its region order and the subjects it averages."""
    if not needs_gradient(plan, maps):
        return None
    read, unread = {}, []
    for r in plan.rows:
        try:
            read[str(r["subject_id"])] = row_fc(r, plan.n_regions)
        except InvalidInputError:
            unread.append(str(r["subject_id"]))
    fcs, moved, refused, order = _aligned(read)
    if unread:
        warnings.warn(
            f"the cohort FC gradient averages {len(fcs)} of {len(plan.rows)} subjects: the FC of "
            f"{', '.join(unread[:5])}{' ...' if len(unread) > 5 else ''} could not be read. "
            "Every subject without maps is fitted with this gradient, and a cohort's output "
            f"folder keeps it ({GRADIENT_FILE}) for its reruns and other shards, so fix those "
            "inputs first (--overwrite recomputes it and refits the subjects fitted with another)",
            InputWarning,
            stacklevel=4,
        )
    if refused:
        shown = "; ".join(f"{s}: {why}" for s, why in list(refused.items())[:3])
        warnings.warn(
            f"the cohort FC gradient averages {len(fcs)} of {len(plan.rows)} subjects: "
            f"{len(refused)} subject(s) cannot be matched by region name to {order[0]}, whose "
            f"FC sets the gradient's regions ({shown}{' ...' if len(refused) > 3 else ''}); "
            "those without maps of their own fail when fitted",
            InputWarning,
            stacklevel=4,
        )
    if moved:
        warnings.warn(
            f"the cohort FC gradient puts the FC of {', '.join(moved[:5])}"
            f"{' ...' if len(moved) > 5 else ''} in {order[0]}'s region order by name before "
            "averaging; those subjects fitted with it are put in that order too",
            InputWarning,
            stacklevel=4,
        )
    if not fcs:
        return None
    for r in plan.rows:
        if order is not None:
            r[ORDER_KEY] = order
    averaged = tuple(s for s in read if s not in refused)
    names = None if order is None else order[1]  # the reference subject's region names
    try:
        values = default_gradient(fisher_z_mean(np.stack(fcs)), names)
    except FCGradientError as err:
        raise _group_fc_error(err, averaged, names, plan, maps) from None
    return CohortGradient(values, order, averaged)


def _group_fc_error(
    err: FCGradientError, averaged: Sequence[str], names: Sequence[str] | None, plan: Any, maps: str
) -> InvalidInputError:
    """The refusal of the cohort's group-average FC as the gradient of the subjects without maps,
    in a cohort's words: which FC (the average of which subjects), its parts by region name
    (where the files name them) and what to do (maps in the manifest; the shipped DK68 maps)."""
    shown = ", ".join(averaged[:3]) + (", ..." if len(averaged) > 3 else "")
    reason = err.reason
    if err.parts is not None:  # the parts by region name, where the files name them
        reason = disconnected_reason(err.parts, names)
    without = [str(r["subject_id"]) for r in plan.rows if not any(r.get(c) for c in MAP_COLUMNS)]
    if plan.n_regions == len(DK68_REGIONS) and maps != "default":
        remedy = (
            "run with --maps default (the shipped DK68 myelin and gradient maps; "
            "maps='default' in Python), or give every subject myelin and gradient maps in the "
            "manifest's myelin and gradient columns"
        )
    else:
        remedy = (
            f"give myelin and gradient maps of this {plan.n_regions}-region atlas in the "
            "manifest's myelin and gradient columns (the same two files in every row give the "
            "whole cohort one design; the shipped maps are DK68's); see delssome-norms cohort "
            "--help"
        )
    return InvalidInputError(
        f"the group-average FC of {len(averaged)} subject(s) ({shown}), whose gradient "
        f"{len(without)} subject(s) without maps would be fitted with, cannot give one: "
        f"{reason}; {remedy}",
        "cohort FC gradient",
    )


def _record(g: CohortGradient) -> dict[str, Any]:
    """The JSON record of :data:`GRADIENT_FILE`."""
    return {
        "format_version": FORMAT_VERSION,
        "n_regions": int(g.values.shape[0]),
        "reference_subject": None if g.order is None else g.order[0],
        "regions": None if g.order is None else list(g.order[1]),
        "subjects": list(g.subjects),
        "sha256": arrays_sha256(g.values),
        "gradient": [float(v) for v in g.values],
    }


def _read_stored(path: Path, n_regions: int | None) -> CohortGradient:
    """The gradient of :data:`GRADIENT_FILE`, checked (errors name the file and the way out)."""
    remedy = (
        "delete it, or rerun with --overwrite, to recompute the gradient (subjects fitted with "
        "another one are then refitted)"
    )
    rec = read_json_object(path, "cohort FC gradient record", remedy)
    values = rec.get("gradient")
    regions = rec.get("regions")
    ref = rec.get("reference_subject")
    subjects = rec.get("subjects")
    ok = (
        rec.get("format_version") == FORMAT_VERSION
        and isinstance(values, list)
        and all(isinstance(v, float | int) and not isinstance(v, bool) for v in values)
        and all(math.isfinite(v) for v in values)
        and (regions is None or (isinstance(regions, list) and len(regions) == len(values)))
        and (regions is None or (isinstance(ref, str) and all(isinstance(r, str) for r in regions)))
        and isinstance(subjects, list)
        and all(isinstance(s, str) for s in subjects)
    )
    if not ok:
        raise InvalidInputError(
            f"is not a cohort FC gradient record of this version; {remedy}", str(path)
        )
    gradient = np.asarray(values, dtype=np.float64)
    if rec.get("sha256") != arrays_sha256(gradient):
        raise InvalidInputError(f"its gradient does not match its sha256 (edited?); {remedy}", str(path))
    if n_regions is not None and gradient.shape[0] != n_regions:
        raise InvalidInputError(
            f"holds the cohort FC gradient of {gradient.shape[0]} regions, but this manifest's "
            f"subjects have {n_regions}: use another --out-dir, or --overwrite to recompute it",
            str(path),
        )
    order = None if regions is None else (ref, tuple(regions))
    return CohortGradient(gradient, order, tuple(subjects))


def _difference(fresh: CohortGradient | None, stored: CohortGradient) -> str | None:
    """How the gradient the manifest gives now differs from the stored one (None: it does not)."""
    if fresh is None:
        return "no subject's FC can be read now"
    now, before = set(fresh.subjects), set(stored.subjects)
    changes = []
    if before - now:
        gone = sorted(before - now)
        changes.append(f"{len(gone)} subject(s) no longer averaged: {', '.join(gone[:5])}")
    if now - before:
        new = sorted(now - before)
        changes.append(f"{len(new)} subject(s) averaged now: {', '.join(new[:5])}")
    values = fresh.values
    if fresh.order is not None and stored.order is not None and fresh.order[1] != stored.order[1]:
        where = {name: i for i, name in enumerate(fresh.order[1])}
        if set(where) != set(stored.order[1]):
            changes.append("its subjects' files name other regions")
            return "; ".join(changes)
        values = values[[where[name] for name in stored.order[1]]]  # by name, in the stored order
    if not changes and np.allclose(values, stored.values, rtol=0.0, atol=1e-9):
        return None
    r = float(np.corrcoef(values, stored.values)[0, 1])
    changes.insert(0, f"correlation {r:.4f} with the stored one, largest difference "
                   f"{float(np.max(np.abs(values - stored.values))):.3g}")  # fmt: skip
    return "; ".join(changes)


def _use(plan: Any, g: CohortGradient) -> np.ndarray:
    """Put every row in ``g``'s region order (:data:`ORDER_KEY`) and return its values."""
    for r in plan.rows:
        r[ORDER_KEY] = g.order
    return g.values


def folder_gradient(plan: Any, maps: str, out: Path, overwrite: bool) -> np.ndarray | None:
    """The cohort FC gradient of a cohort run into ``out``: the one stored there, else computed.

    The first run into a folder computes it (:func:`cohort_gradient`) and stores it with its
    region order in :data:`GRADIENT_FILE` (created once, atomically: a shard starting at the
    same moment reads the winner's). Later runs and other shards use the stored gradient, so
    finished subjects stay finished and every subject without maps shares one design even when
    the manifest's readable subjects changed; they warn once, saying how much, when the
    manifest now gives another gradient. ``overwrite`` recomputes and replaces it.

    Returns
    -------
    ndarray of shape (N,) or None
        None when no subject needs it (:func:`needs_gradient`) or none can be read.

    Raises
    ------
    InvalidInputError
        A damaged or edited :data:`GRADIENT_FILE`, or one of another number of regions.
    """
    if not needs_gradient(plan, maps):
        return None
    path = Path(out) / GRADIENT_FILE
    if not overwrite and path.exists():
        stored = _read_stored(path, plan.n_regions)
        with warnings.catch_warnings():  # about an average that is not used: one warning below
            warnings.simplefilter("ignore", InputWarning)
            fresh = _computed(plan, maps)
    else:
        fresh = _computed(plan, maps)
        if fresh is None:
            return None
        try:
            if overwrite:  # shards started together with --overwrite write the same record
                write_json(_record(fresh), path)
            else:
                write_json(_record(fresh), path, exclusive=True)
            return _use(plan, fresh)
        except FileExistsError:  # another shard stored it first: use that one
            stored = _read_stored(path, plan.n_regions)
    differs = _difference(fresh, stored)
    if differs is not None:
        warnings.warn(
            f"{path} holds the cohort FC gradient (averaged over {len(stored.subjects)} "
            "subjects) this folder's subjects without maps are fitted with; it is used again so "
            "that finished subjects stay finished and the whole cohort shares one design, but the "
            f"manifest's readable subjects now give another gradient ({differs}); --overwrite "
            "recomputes it from them and refits every subject without maps",
            InputWarning,
            stacklevel=3,
        )
    return _use(plan, stored)


GRADIENT_TOLERANCE = 1e-9
"""Largest difference [unitless] between a process's cohort gradient and the folder's stored one
that counts as the same gradient (another node's LAPACK may differ in the last bits)."""


def folder_gradient_now(out: Path, gradient: np.ndarray | None) -> tuple[np.ndarray | None, str | None]:
    """The gradient a lockstep group is fitted with now, or why it must not be fitted.

    The folder's :data:`GRADIENT_FILE` decides: shards started together with ``--overwrite``
    each compute and write the gradient, the last write wins, and another node's computation
    may differ in the last bits. A stored gradient within :data:`GRADIENT_TOLERANCE` of
    ``gradient`` is used as stored, so every group of the folder is fitted with the same numbers
    (and the same design digest); one that differs more was written by a run that computed
    another gradient since this one started (two gradients must not be used in one folder).

    Returns
    -------
    (gradient, problem)
        The gradient to fit with (``gradient`` itself when nothing is stored), and None; or
        ``gradient`` and the reason the group must fail.
    """
    path = Path(out) / GRADIENT_FILE
    if gradient is None or not path.exists():
        return gradient, None
    try:
        stored = _read_stored(path, gradient.shape[0])
    except InvalidInputError as err:
        return gradient, f"cohort FC gradient: {err}"
    if np.allclose(stored.values, gradient, rtol=0.0, atol=GRADIENT_TOLERANCE):
        return stored.values, None
    return gradient, (
        f"cohort FC gradient: {path} was replaced, since this run started, by another run with "
        "--overwrite that computed another gradient; rerun the cohort (or this shard) to fit "
        "these subjects with the folder's gradient"
    )


def read_cohort_gradient(path: str | Path, n_regions: int) -> CohortGradient:
    """The cohort FC gradient a cohort folder was fitted with, to refit one of its subjects alone
    with it (``estimate-ei --cohort-gradient``).

    Parameters
    ----------
    path : path
        The cohort's output folder, or its :data:`GRADIENT_FILE` (``cohort_gradient.csv``, the
        copy for reading, names its folder's record too).
    n_regions : int
        The subject's number of regions.

    Raises
    ------
    InvalidInputError
        No record there, or a damaged one, or one of another number of regions.
    """
    p = Path(path)
    record = p / GRADIENT_FILE if p.is_dir() else p.with_name(GRADIENT_FILE)
    if not record.is_file():
        raise InvalidInputError(
            f"no {GRADIENT_FILE} here: give the output folder of the cohort run whose subject "
            "this is (a cohort run writes it when subjects without maps use the cohort's FC "
            "gradient)",
            str(path),
        )
    stored = _read_stored(record, None)
    if stored.values.shape[0] != n_regions:
        raise InvalidInputError(
            f"holds the cohort FC gradient of {stored.values.shape[0]} regions, but this subject "
            f"has {n_regions}: it is not this subject's cohort",
            str(record),
        )
    return stored


def in_cohort_order(subject: SubjectInputs, row: dict[str, Any]) -> SubjectInputs:
    """A subject without maps put in the region order of the cohort FC gradient it is fitted
    with (the row's :data:`ORDER_KEY`); unchanged when it has maps, no names or that order.

    Raises
    ------
    InvalidInputError
        The subject names other regions than the gradient's: it cannot be fitted with it.
    """
    if row.get(ORDER_KEY) is None or subject.gradient is not None or subject.regions is None:
        return subject
    ref, names = row[ORDER_KEY]
    if tuple(subject.regions) == tuple(names):
        return subject
    try:
        _, _, orders = align_names({ref: names, subject.subject_id: subject.regions}, "subject")
    except InvalidInputError as err:
        raise InvalidInputError(
            f"{err.problem}; it has no myelin/gradient maps, and the cohort FC gradient it would "
            f"be fitted with is in {ref}'s regions: give it files naming {ref}'s regions, or "
            "maps of its own (then it is fitted without the cohort's gradient: another design)",
            subject.subject_id,
        ) from None
    order = orders[subject.subject_id]
    return replace(
        subject,
        fc=take_regions(subject.fc, order),
        sc=take_regions(subject.sc, order),
        regions=tuple(names),
    )


def with_cohort_gradient(
    subject: SubjectInputs, path: str | Path, maps: str, source: str = "--cohort-gradient"
) -> tuple[SubjectInputs, np.ndarray]:
    """A subject of a cohort, to be refitted alone with the cohort's FC gradient: put in the
    gradient's region order (:func:`in_cohort_order`), and the gradient's values (the
    ``fallback_gradient`` of :func:`~delssome_norms.fit.lockstep.estimate_ei`).

    Parameters
    ----------
    subject : SubjectInputs
    path : path
        The cohort's output folder or its ``cohort_gradient.json`` / ``.csv``
        (:func:`read_cohort_gradient`).
    maps : {"default", "fc-gradient"}
        The fit's ``maps`` setting.
    source : str
        The option or argument errors name.

    Raises
    ------
    InvalidInputError
        The subject has maps of its own, or is a 68-region DK subject fitted with the shipped maps
        (``maps="default"``): the cohort gradient would not be used; or no usable record.
    """
    if subject.myelin is not None or subject.gradient is not None:
        raise InvalidInputError(
            "the cohort FC gradient is for subjects without maps, and this one has its own "
            "myelin/gradient maps: give one or the other",
            source,
        )
    if subject.uses_default_maps(maps):
        raise InvalidInputError(
            "a 68-region DK subject without maps is fitted with the shipped DK68 maps, not a "
            "cohort's FC gradient, unless --maps fc-gradient (as its cohort was run, if that "
            "cohort used its FC gradient)",
            source,
        )
    g = read_cohort_gradient(path, subject.n_regions)
    return in_cohort_order(subject, {ORDER_KEY: g.order}), g.values


__all__ = [
    "GRADIENT_FILE",
    "ORDER_KEY",
    "CohortGradient",
    "cohort_gradient",
    "folder_gradient",
    "folder_gradient_now",
    "in_cohort_order",
    "needs_gradient",
    "read_cohort_gradient",
    "row_fc",
    "with_cohort_gradient",
]
