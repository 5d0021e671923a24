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

import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.lockstep import default_gradient
from delssome_norms.io import fisher_z_mean
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
    if maps == "default" and plan.n_regions == len(DK68_REGIONS):
        return None
    if all(any(r.get(c) for c in MAP_COLUMNS) for r in plan.rows):
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
            "Every subject without maps is fitted with this gradient, so fix those inputs before "
            "other shards or reruns start (collect refuses subjects fitted with different "
            "cohort gradients)",
            InputWarning,
            stacklevel=3,
        )
    if refused:
        shown = "; ".join(f"{s}: {why}" for s, why in list(refused.items())[:3])
        warnings.warn(
            f"the cohort FC gradient averages {len(fcs)} of {len(plan.rows)} subjects: "
            f"{len(refused)} subject(s) cannot be matched by region name to {order[0]}, whose "
            f"FC sets the gradient's regions ({shown}{' ...' if len(refused) > 3 else ''}); "
            "those without maps of their own fail when fitted",
            InputWarning,
            stacklevel=3,
        )
    if moved:
        warnings.warn(
            f"the cohort FC gradient puts the FC of {', '.join(moved[:5])}"
            f"{' ...' if len(moved) > 5 else ''} in {order[0]}'s region order by name before "
            "averaging; those subjects fitted with it are put in that order too",
            InputWarning,
            stacklevel=3,
        )
    if not fcs:
        return None
    for r in plan.rows:
        if order is not None:
            r[ORDER_KEY] = order
    return default_gradient(fisher_z_mean(np.stack(fcs)))


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
            f"be fitted with is in {ref}'s regions: give it maps of its own, or files naming "
            f"{ref}'s regions",
            subject.subject_id,
        ) from None
    order = orders[subject.subject_id]
    return replace(
        subject,
        fc=take_regions(subject.fc, order),
        sc=take_regions(subject.sc, order),
        regions=tuple(names),
    )


__all__ = ["ORDER_KEY", "cohort_gradient", "in_cohort_order", "row_fc"]
