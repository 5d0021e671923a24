"""``results_table``: one cohort table of several in-memory fits, one region order by name, one
pipeline (``pd.concat`` of ``to_table`` rows drops the names when the fits' orders differ)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.regions import regions_sha256
from delssome_norms.pipeline import results_table
from tests.norms.test_review_score_regions_1207 import (
    CHART_ORDER,
    LEVEL,
    PERSON,
    RESULT_ORDER,
    ROI,
    _median_person,
    _result,
    _z,
    chart,  # noqa: F401 (fixture)
)


def _fit(sid: str, order: list[str], factor: float = 1.0):
    values = np.array([LEVEL.get(r, 2.0) * factor for r in order])
    return dataclasses.replace(_result(order, values), subject_id=sid)


def _people(ids: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{**PERSON, "subject_id": s} for s in ids])


def test_rows_in_one_region_order_by_name() -> None:
    fits = [_fit("a", CHART_ORDER), _fit("b", RESULT_ORDER, 1.1), _fit("c", CHART_ORDER, 0.9)]
    with pytest.warns(InputWarning, match=r"1 fit\(s\) list their regions in another order.*b"):
        table = results_table(fits, _people(["c", "b", "a"]))
    assert list(table["subject_id"]) == ["a", "b", "c"]
    expected = np.array([[LEVEL[r] * f for r in CHART_ORDER] for f in (1.0, 1.1, 0.9)])
    np.testing.assert_allclose(table[ROI].to_numpy(dtype=float), expected, rtol=0, atol=1e-12)
    atlas = table.attrs["delssome_norms_provenance"]["atlas"]
    assert atlas["regions"] == CHART_ORDER
    pipe = table.attrs["delssome_norms_provenance"]["pipeline"]
    assert pipe["regions_sha256"] == regions_sha256(CHART_ORDER)
    # pd.concat of the same rows loses the names: the failure results_table avoids
    rows = [f.to_table(p) for f, p in zip(fits, _people(["a", "b", "c"]).to_dict("records"))]
    assert pd.concat(rows).attrs == {}


def test_table_scored_as_each_person_alone(chart) -> None:  # noqa: F811
    fits = [
        dataclasses.replace(_result(RESULT_ORDER, _median_person(RESULT_ORDER)), subject_id="x"),
        dataclasses.replace(_result(CHART_ORDER, _median_person(CHART_ORDER)), subject_id="y"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        table = results_table(fits, [dict(PERSON), dict(PERSON)])
        together = _z(chart.score(table))
        alone = np.concatenate([_z(chart.score(f.to_table(PERSON))) for f in fits])
    np.testing.assert_allclose(together, alone, rtol=0, atol=1e-12)
    z = dict(zip(CHART_ORDER, together[:6]))  # only L_alpha (30 % above its level) is high
    assert z.pop("L_alpha") > 3 and max(abs(v) for v in z.values()) < 0.5


def test_to_table_regions_reorders_and_refuses_others() -> None:
    fit = _fit("a", RESULT_ORDER)
    spelled = [f"ctx-{'lh' if n[0] == 'L' else 'rh'}-{n[2:]}" for n in CHART_ORDER]
    row = fit.to_table(PERSON, regions=spelled)
    np.testing.assert_allclose(row[ROI].to_numpy(float)[0], [LEVEL[r] for r in CHART_ORDER])
    assert row.attrs["delssome_norms_provenance"]["atlas"]["regions"] == spelled
    with pytest.raises(InvalidInputError, match="this fit's 6 regions"):
        fit.to_table(PERSON, regions=[*CHART_ORDER[:5], "L_delta"])


@pytest.mark.parametrize(
    ("fits", "people", "message"),
    [
        ([], [], "no results"),
        (["a", "a"], [dict(PERSON), dict(PERSON)], "subject a has more than one result"),
        (["subject", "subject"], [dict(PERSON)] * 2, "subject subject has more than one result .*give"),
        (["subject"], _people(["subject"]), r"results\[0\] was fitted without a subject_id"),
        (["a", "b"], _people(["a"]), r"no row of demographics for 1 result\(s\): b"),
        (["a", "b"], [dict(PERSON)], "gives 1 people for 2 results"),
        (["a", "b"], [dict(PERSON), {**PERSON, "subject_id": "z"}], r"demographics\[1\] is subject"),
        (["a", "b"], pd.concat([_people(["a", "b"]), _people(["a"])]), "lists subject a more"),
    ],
    ids=[
        "empty",
        "repeated",
        "default-twice",
        "default-in-table",
        "no-row",
        "count",
        "wrong-id",
        "demographics-twice",
    ],
)
def test_refusals(fits, people, message) -> None:
    given = [_fit(s, CHART_ORDER) for s in fits]
    with pytest.raises(InvalidInputError, match=message):
        results_table(given, _people(fits) if people is None else people)


def test_other_regions_or_pipelines_refused() -> None:
    other = [*CHART_ORDER[:5], "L_delta"]
    with pytest.raises(InvalidInputError, match="different regions"):
        results_table([_fit("a", CHART_ORDER), _fit("b", other)], _people(["a", "b"]))
    b = _fit("b", CHART_ORDER)
    b = dataclasses.replace(
        b, provenance={**b.provenance, "pipeline": {**b.provenance["pipeline"], "mode": "surrogate"}}
    )
    with pytest.raises(InvalidInputError, match="different pipelines: mode"):
        results_table([_fit("a", CHART_ORDER), b], _people(["a", "b"]))


def test_fits_given_no_subject_id_take_their_demographics_ids() -> None:
    fits = [_fit("subject", CHART_ORDER), _fit("subject", CHART_ORDER, 1.2)]
    people = [{**PERSON, "subject_id": "p1"}, {**PERSON, "subject_id": "p2"}]
    table = results_table(fits, people)
    assert list(table["subject_id"]) == ["p1", "p2"]
    np.testing.assert_allclose(
        table["ei_ratio_mean"], [np.mean(list(LEVEL.values())) * f for f in (1, 1.2)]
    )


def test_regions_spelled_otherwise_are_the_same_regions() -> None:
    spelled = [f"ctx-{'lh' if n[0] == 'L' else 'rh'}-{n[2:]}" for n in RESULT_ORDER]
    fits = [_fit("a", CHART_ORDER), _fit("b", RESULT_ORDER, 1.1)]  # renamed below
    b = fits[1]
    fits[1] = dataclasses.replace(b, ei=b.ei.set_axis(spelled))
    with pytest.warns(InputWarning, match="another order"):
        table = results_table(fits, _people(["a", "b"]))
    expected = [LEVEL[r] * 1.1 for r in CHART_ORDER]
    np.testing.assert_allclose(table[ROI].to_numpy(float)[1], expected, rtol=0, atol=1e-12)
    other = [*CHART_ORDER[:5], "L_delta"]
    with pytest.raises(InvalidInputError, match=r"b has region 'L_delta' that a has not\): build one"):
        results_table([_fit("a", CHART_ORDER), _fit("b", other)], _people(["a", "b"]))
