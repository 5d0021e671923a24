"""One cohort E/I table from several in-memory fits, as ``collect`` builds it from folders.

``pd.concat`` of :meth:`EIResult.to_table <delssome_norms.pipeline.EIResult.to_table>` rows keeps
their ``attrs`` (the region names a chart's ``score`` matches columns by) only when every row
has the same; rows of fits that list their regions in different orders would then be scored by
column position. :func:`results_table` puts every row in one region order by name and checks
that the fits share regions and pipeline, as ``collect`` does (docs/python.md).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.collect import common_region_order
from delssome_norms.io import ei_table as et
from delssome_norms.io.provenance import pipeline_differences
from delssome_norms.pipeline.result import EIResult, region_names

_SOURCE = "results"


def _people(
    results: Sequence[EIResult], demographics: pd.DataFrame | Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Each result's demographics: ``demographics``' row of its subject id (a table), or the
    mapping at its position (a sequence of mappings)."""
    if isinstance(demographics, pd.DataFrame):
        if et.SUBJECT_ID not in demographics.columns:
            raise InvalidInputError(
                f"demographics has no {et.SUBJECT_ID} column to match the results by",
                "demographics",
            )
        ids = demographics[et.SUBJECT_ID].astype(str).str.strip()
        twice = sorted(set(ids[ids.duplicated()]))
        if twice:
            raise InvalidInputError(
                f"demographics lists subject {twice[0]} more than once", "demographics"
            )
        rows = dict(zip(ids, demographics.to_dict("records")))
        missing = [r.subject_id for r in results if r.subject_id not in rows]
        if missing:
            raise InvalidInputError(
                f"no row of demographics for {len(missing)} result(s): "
                f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}",
                "demographics",
            )
        return [rows[r.subject_id] for r in results]
    people = list(demographics)
    if len(people) != len(results):
        raise InvalidInputError(
            f"demographics gives {len(people)} people for {len(results)} results: give one "
            "mapping per result, in the results' order, or a table with a subject_id column",
            "demographics",
        )
    for i, person in enumerate(people):
        if not hasattr(person, "items"):
            raise InvalidInputError(
                f"demographics[{i}] must be a mapping or pandas Series; got {type(person).__name__}",
                "demographics",
            )
        given = person.get(et.SUBJECT_ID)
        if given is not None and str(given).strip() != results[i].subject_id:
            raise InvalidInputError(
                f"demographics[{i}] is subject {given!r} but results[{i}] is {results[i].subject_id!r}",
                "demographics",
            )
    return people


def results_table(
    results: Sequence[EIResult], demographics: pd.DataFrame | Sequence[Mapping[str, Any]]
) -> pd.DataFrame:
    """The cohort E/I table of several fits, ready for a chart's ``score`` or ``fit``.

    Parameters
    ----------
    results : sequence of EIResult
        One fit per person (distinct subject ids).
    demographics : pandas.DataFrame or sequence of mappings
        ``age_in_years`` [years], ``sex`` and site of each person: a table with a
        ``subject_id`` column (rows matched to the results by id; extra rows ignored), or one
        mapping per result in the results' order.

    Returns
    -------
    pandas.DataFrame
        One :meth:`EIResult.to_table` row per result, in the results' order, every row's
        regional columns in one region order (the order most fits list; ties: the first's),
        matched by name with an :class:`~delssome_norms.errors.InputWarning` naming the fits
        that listed their regions otherwise. ``attrs`` records the common pipeline and region
        names, as a single row's does.

    Raises
    ------
    InvalidInputError
        No results, a repeated subject id, a person without demographics, fits of different
        regions, or fits of different pipelines (as ``collect`` refuses them).
    """
    results = list(results)
    if not results:
        raise InvalidInputError("no results given", _SOURCE)
    for i, result in enumerate(results):
        if not isinstance(result, EIResult):
            raise InvalidInputError(
                f"results[{i}] is a {type(result).__name__}, not an EIResult", _SOURCE
            )
    ids = [r.subject_id for r in results]
    twice = sorted({s for s in ids if ids.count(s) > 1})
    if twice:
        raise InvalidInputError(f"subject {twice[0]} has more than one result", _SOURCE)
    people = _people(results, demographics)
    named = {
        r.subject_id: tuple(r.regions) for r in results if r.regions != region_names(len(r.regions))
    }
    order, reordered = common_region_order(named, _SOURCE)
    rows = [
        r.to_table(person, regions=list(order) if r.subject_id in named else None)
        for r, person in zip(results, people)
    ]
    unnamed = [r.subject_id for r in results if r.subject_id not in named]
    if reordered and unnamed:
        raise InvalidInputError(
            f"{len(unnamed)} fit(s) have no region names ({unnamed[0]}, ...) while others list "
            "their regions in different orders: which of their columns is which region cannot "
            "be told",
            _SOURCE,
        )
    pipelines: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for sid, row in zip(ids, rows):
        pipeline = row.attrs.get(et.PROVENANCE_ATTR, {}).get("pipeline") or {}
        pipelines.setdefault(json.dumps(pipeline, sort_keys=True), (pipeline, []))[1].append(sid)
    if len(pipelines) > 1:
        (ref, ref_ids), (other, other_ids) = sorted(
            pipelines.values(), key=lambda v: len(v[1]), reverse=True
        )[:2]
        field, a, b = (pipeline_differences(ref, other) or [("pipeline", "?", "?")])[0]
        raise InvalidInputError(
            f"the fits have different pipelines: {field} is {a!r} for {ref_ids[0]} but {b!r} "
            f"for {other_ids[0]}; score or chart each pipeline's fits in their own table",
            _SOURCE,
        )
    if reordered:
        warnings.warn(
            f"{len(reordered)} fit(s) list their regions in another order than the table "
            f"({', '.join(reordered[:5])}{' ...' if len(reordered) > 5 else ''}): their regional "
            "columns were put in the table's order by name",
            InputWarning,
            stacklevel=2,
        )
    table = pd.concat(rows, ignore_index=True)
    table.attrs = dict(rows[0].attrs)
    return table
