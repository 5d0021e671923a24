"""The provenance sidecar of ``collect``'s cohort table, summarised over its subjects.

Subjects of one table share a pipeline (:data:`~delssome_norms.io.provenance.PIPELINE_FIELDS`),
but not necessarily their inputs: each may have its own SC (``pipeline.sc`` "subject SC"), given
maps of its own (``pipeline.maps`` "given") or a design whose gradient came from elsewhere. The
sidecar says which subjects used which: ``sc`` is the list of distinct SCs, and ``maps`` and
``design`` are the subjects' common value, or, where they differ, the list of distinct values;
each entry of such a list counts its subjects and names them (:func:`input_groups`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.fit.outputs import PROVENANCE_FORMAT_VERSION

IDS_SHOWN = 5
"""Subject ids named by the entry of the most common input (the others name all theirs)."""


def input_groups(values: Mapping[str, Any], key: str | None = None) -> list[dict[str, Any]]:
    """The distinct values of one input over a table's subjects, each with its subjects.

    Parameters
    ----------
    values : mapping of subject id to value
        Each subject's input (a dict such as ``{"name", "sha256"}``, or a string), in the
        table's order.
    key : str, optional
        For a value that is not a dict: the key it is recorded under in its entry.

    Returns
    -------
    list of dict
        One entry per distinct value in first-seen order: the value (a dict's keys, or ``key``),
        ``subjects`` (their number) and ``subject_ids``. Every entry names all its subjects but
        the most common one (the first of ties), which names its first :data:`IDS_SHOWN` and
        says ``subject_ids_complete`` false when it has more: its other subjects are those of
        ``values`` that no other entry names (a 12,005-subject table with one SC names 5 ids,
        not 12,005). ``values`` holds the subjects with provenance only: a table's
        ``subjects_without_provenance`` are in no entry.
    """
    groups: dict[str, list[str]] = {}
    for sid, value in values.items():
        groups.setdefault(json.dumps(value, sort_keys=True), []).append(sid)
    largest = max(groups, key=lambda k: len(groups[k]), default=None)
    out = []
    for text, ids in groups.items():
        value = json.loads(text)
        entry = dict(value) if isinstance(value, dict) else {key or "value": value}
        shown = ids[:IDS_SHOWN] if text == largest else ids
        entry.update(subjects=len(ids), subject_ids=shown, subject_ids_complete=len(shown) == len(ids))
        out.append(entry)
    return out


def common_or_groups(values: Mapping[str, Any], key: str | None = None) -> Any:
    """The subjects' common value (None without subjects), or their :func:`input_groups` when
    they differ: ``maps`` and ``design`` keep their one-subject meaning where all agree."""
    groups = input_groups(values, key)
    if len(groups) > 1:
        return groups
    return next(iter(values.values()), None)


def merged_settings(
    recorded: list[Any],
) -> tuple[dict[str, Any] | None, dict[str, list[dict[str, Any]]]]:
    """The settings of a table's subjects: each setting's value where they all agree; where
    they differ (seed, device, engine: outside the pipeline), the list of distinct values in
    first-seen order, and in the second dict, per such setting, each value's number of
    subjects (so a mixed-seed table never states one seed)."""
    dicts = [s for s in recorded if isinstance(s, dict)]
    if not dicts:
        return None, {}
    merged: dict[str, Any] = {}
    differing: dict[str, list[dict[str, Any]]] = {}
    for key in dict.fromkeys(k for s in dicts for k in s):
        counts: dict[str, int] = {}
        for s in dicts:
            text = json.dumps(s.get(key), sort_keys=True)
            counts[text] = counts.get(text, 0) + 1
        values = [json.loads(text) for text in counts]
        merged[key] = values[0] if len(values) == 1 else values
        if len(values) > 1:
            differing[key] = [{"value": v, "subjects": n} for v, n in zip(values, counts.values())]
    return merged, differing


def table_provenance(
    provenances: Mapping[str, Mapping[str, Any]],
    n_regions: int,
    subjects: list[str],
    missing: list[str],
    unprovenanced: list[str],
) -> dict[str, Any]:
    """The sidecar of a cohort table from its subjects' ``run.json`` provenance blocks.

    ``sc`` lists the distinct SCs (``name``, ``sha256``) with their subjects
    (:func:`input_groups`); ``maps`` (``name``, ``sha256``) and ``design`` are the subjects'
    common value, or the list of distinct values with their subjects where they differ.
    """
    from delssome_norms.io.regions import regions_sha256

    if provenances:
        first = next(iter(provenances.values()))
        pipeline = dict(first["pipeline"])
        atlas = dict(first["atlas"])
    else:  # results of an older version: only the number of regions is known
        names = list(DK68_REGIONS) if n_regions == len(DK68_REGIONS) else None
        atlas = {
            "name": "DK68 (assumed from 68 regions)" if names else f"custom-{n_regions}",
            "n_regions": n_regions,
            "regions": names,
        }
        pipeline = {
            "n_regions": n_regions,
            "regions_sha256": regions_sha256(names) if names else None,
        }
    timings: dict[str, int] = {}
    versions = set()
    for prov in provenances.values():
        t = prov.get("timing", {})
        key = f"TR {t.get('tr')} s, {t.get('scan_length')} s"
        timings[key] = timings.get(key, 0) + 1
        versions.add(str(prov.get("version")))
    scs, sc_names = {}, {}
    for sid, prov in provenances.items():  # one SC per digest (named as its first subject's)
        sc = prov.get("sc") if isinstance(prov.get("sc"), Mapping) else {}
        sha = str(sc.get("sha256"))
        scs[sid] = {"name": sc_names.setdefault(sha, str(sc.get("name"))), "sha256": sha}
    first = next(iter(provenances.values()), {})
    settings, differing = merged_settings([p.get("settings") for p in provenances.values()])
    return {
        "format_version": PROVENANCE_FORMAT_VERSION,
        "pipeline": pipeline,
        "atlas": atlas,
        "sc": input_groups(scs),
        "maps": common_or_groups({s: p.get("maps") for s, p in provenances.items()}, "maps"),
        "design": common_or_groups({s: p.get("design") for s, p in provenances.items()}, "design"),
        "mode": first.get("mode"),
        "settings": settings,
        "settings_differing": differing,
        "timing": [{"timing": k, "subjects": v} for k, v in timings.items()],
        "versions": sorted(versions),
        "n_subjects": len(subjects),
        "subjects_without_provenance": unprovenanced,
        "dropped_subjects": missing,
    }
