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
from delssome_norms.io.regions import match_region_order, region_match_key
from delssome_norms.pipeline.result import DEFAULT_SUBJECT_ID, EIResult, region_names

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
        unnamed = [i for i, r in enumerate(results) if r.subject_id == DEFAULT_SUBJECT_ID]
        if unnamed:
            raise InvalidInputError(
                f"results[{unnamed[0]}] was fitted without a subject_id ({DEFAULT_SUBJECT_ID!r}), "
                "so no row of the demographics table can be matched to it: give subject_id= to "
                "EIEstimator.fit, or the demographics as one mapping per result, in order",
                "demographics",
            )
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
        try:
            results[i].demographics_id(person)  # refuses another person's
        except InvalidInputError:
            raise InvalidInputError(
                f"demographics[{i}] is subject {person.get(et.SUBJECT_ID)!r} but results[{i}] is "
                f"{results[i].subject_id!r}",
                "demographics",
            ) from None
    return people


def _row_id(result: EIResult, person: Mapping[str, Any]) -> str:
    """The id of a result's row: its own, or its demographics' for a fit given none."""
    given = result.demographics_id(person)
    return given if given is not None and result.subject_id == DEFAULT_SUBJECT_ID else result.subject_id


def _region_names(results: Sequence[EIResult], ids: list[str]) -> dict[str, tuple[str, ...]]:
    """Each named fit's region names in its order, spelled as the first named fit spells them
    (``ctx-lh-x`` is ``lh_x``); fits of other regions are refused."""
    named = [
        (sid, r.regions) for sid, r in zip(ids, results) if r.regions != region_names(len(r.regions))
    ]
    if not named:
        return {}
    first_id, first = named[0]
    out = {}
    for sid, names in named:
        order = match_region_order(names, first)
        if order is None:
            keys = {region_match_key(v) for v in first}
            theirs = {region_match_key(v) for v in names}
            extra = [v for v in names if region_match_key(v) not in keys]
            lacking = [v for v in first if region_match_key(v) not in theirs]
            what = (
                f"{sid} has region {extra[0]!r} that {first_id} has not"
                if extra
                else f"{first_id} has region {lacking[0]!r} that {sid} has not"
                if lacking
                else f"{sid} names a region more than once"
            )
            raise InvalidInputError(
                f"the fits are of different regions ({what}): build one table per atlas",
                _SOURCE,
            )
        out[sid] = tuple(first[k] for k in order)
    return out


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
    people = _people(results, demographics)
    ids = [_row_id(r, person) for r, person in zip(results, people)]
    twice = sorted({s for s in ids if ids.count(s) > 1})
    if twice:
        hint = (
            f" (fits given no subject_id are all {DEFAULT_SUBJECT_ID!r}: give subject_id= to "
            "EIEstimator.fit, or each person's subject_id in the demographics)"
            if twice[0] == DEFAULT_SUBJECT_ID
            else ""
        )
        raise InvalidInputError(f"subject {twice[0]} has more than one result{hint}", _SOURCE)
    named = _region_names(results, ids)
    order, reordered = common_region_order(named, _SOURCE)
    rows = [
        r.to_table(person, regions=list(order) if sid in named else None)
        for r, person, sid in zip(results, people, ids)
    ]
    unnamed = [sid for sid in ids if sid not in named]
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
