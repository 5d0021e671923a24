"""Review 1207: a row of ``EIResult.to_table`` is scored by region name, ``score(regions=...)``
of the wrong length is refused, and ``predict_parameters`` gives (n, T) for every parameter."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.regions import regions_sha256
from delssome_norms.norms import GrowthChart
from delssome_norms.pipeline import EIResult

NAMES = [f"{h}_{w}" for h in ("L", "R") for w in ("alpha", "bravo", "charlie")]
LEVEL = dict(zip(NAMES, np.linspace(1.0, 3.5, len(NAMES))))  # each region its own E/I level
CHART_ORDER = ["R_bravo", "L_alpha", "R_charlie", "L_charlie", "R_alpha", "L_bravo"]
RESULT_ORDER = ["L_charlie", "R_alpha", "L_alpha", "R_charlie", "L_bravo", "R_bravo"]
ROI = [f"ei_ratio_roi_{j}" for j in range(len(NAMES))]
PERSON = {"age_in_years": 40.0, "sex": "female", "site_scanner": "S1"}
PIPELINE = {"atlas": "custom-6", "n_regions": 6, "sc": "subject SC", "mode": "euler"}


def _cohort(order: list[str], n: int = 400, seed: int = 0) -> pd.DataFrame:
    """People whose region ``r`` has E/I ``LEVEL[r]`` (5 % spread); column j = ``order[j]``."""
    rng = np.random.default_rng(seed)
    table = pd.DataFrame(
        {
            "subject_id": [f"p{i}" for i in range(n)],
            "age_in_years": rng.uniform(5, 90, n),
            "sex": rng.choice(["female", "male"], n),
            "site_scanner": rng.choice(["S1", "S2"], n),
        }
    )
    y = np.array([LEVEL[r] for r in order]) * np.exp(rng.normal(0, 0.05, (n, len(order))))
    for j in range(len(order)):
        table[ROI[j]] = y[:, j]
    table["ei_ratio_mean"] = y.mean(1)
    return table


@pytest.fixture(scope="module")
def chart() -> GrowthChart:
    """A chart of the 6 regions in CHART_ORDER, whose pipeline records that order's digest."""
    prov = {"pipeline": {**PIPELINE, "regions_sha256": regions_sha256(CHART_ORDER)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GrowthChart().fit(_cohort(CHART_ORDER), provenance=prov, regions=CHART_ORDER)


def _result(names: list[str], values: np.ndarray, digest: bool = True) -> EIResult:
    """A result holding ``values`` (region ``names[k]`` has ``values[k]``), its pipeline as a fit
    records it (the digest of its names' order)."""
    idx = list(names)
    s = lambda v, name: pd.Series(np.asarray(v, dtype=float), index=idx, name=name)  # noqa: E731
    k = len(idx)
    pipe = {**PIPELINE, "n_regions": k, "regions_sha256": regions_sha256(idx) if digest else None}
    return EIResult(
        subject_id="sub-1",
        ei=s(values, "EI_ratio"),
        s_e=s(np.full(k, 0.3), "S_E"),
        s_i=s(np.full(k, 0.2), "S_I"),
        r_e=s(np.full(k, 3.0), "r_E"),
        ei_sd=None,
        parameters=pd.DataFrame({"wEE": 1.0, "wEI": 1.0, "sigma": 0.01}, index=idx),
        G=1.0,
        coefficients=np.zeros(7),
        losses=pd.DataFrame(
            {"corr_loss": [0.1], "l1_loss": [0.1], "ks_loss": [0.1], "total_loss": [0.3]},
            index=pd.Index(["test"], name="stage"),
        ),
        provenance={"atlas": {"name": "custom-6", "n_regions": k, "regions": idx}, "pipeline": pipe},
    )


def _z(scores: pd.DataFrame) -> np.ndarray:
    return scores[[f"{c}_z" for c in ROI]].to_numpy(dtype=float).ravel()


def _median_person(order: list[str]) -> np.ndarray:
    """E/I at each region's level, a high value in L_alpha; in ``order``."""
    return np.array([LEVEL[r] * (1.3 if r == "L_alpha" else 1.0) for r in order])


def test_to_table_records_region_names() -> None:
    row = _result(RESULT_ORDER, _median_person(RESULT_ORDER)).to_table(PERSON)
    atlas = row.attrs["delssome_norms_provenance"]["atlas"]
    assert atlas["regions"] == RESULT_ORDER
    assert atlas["regions_sha256"] == regions_sha256(RESULT_ORDER)
    # a fit without region names (region_0 ..): its columns only position identifies
    unnamed = _result([f"region_{i}" for i in range(6)], np.ones(6), digest=False).to_table(PERSON)
    assert "atlas" not in unnamed.attrs["delssome_norms_provenance"]


def test_to_table_row_is_scored_by_name(chart) -> None:
    row = _result(RESULT_ORDER, _median_person(RESULT_ORDER)).to_table(PERSON)
    with pytest.warns(InputWarning, match="another order than the chart"):
        got = chart.score(row)
    # the same person, columns written in the chart's own order: scored by position
    plain = pd.DataFrame([PERSON])
    for j, v in enumerate(_median_person(CHART_ORDER)):
        plain[ROI[j]] = v
    plain["ei_ratio_mean"] = row["ei_ratio_mean"]
    expected = chart.score(plain, allow_pipeline_mismatch=True)
    np.testing.assert_allclose(_z(got), _z(expected), rtol=0, atol=1e-12)
    # and independently: each region at its level is ~median; only L_alpha (30 % above) is high
    z = dict(zip(CHART_ORDER, _z(got)))
    assert z.pop("L_alpha") > 3
    assert max(abs(v) for v in z.values()) < 0.5


def test_to_table_row_of_other_regions_is_refused(chart) -> None:
    other = ["L_alpha", "L_bravo", "L_charlie", "R_alpha", "R_bravo", "R_delta"]
    row = _result(other, np.ones(6) * 2).to_table(PERSON)
    with pytest.raises(InvalidInputError, match=r"not the chart's.*R_delta"):
        chart.score(row)


@pytest.mark.parametrize(
    ("regions", "message"),
    [
        (CHART_ORDER[:5], "list 5 regions but the table has 6 regional columns"),
        ([*CHART_ORDER, "L_delta"], "list 7 regions but the table has 6"),
        ([], "list 0 regions"),
        ("L_alpha", "not the single string"),
        ("R_echo", "not the single string"),  # 6 characters, as many as regional columns
    ],
    ids=["short", "long", "empty", "string", "string-of-6"],
)
def test_score_refuses_region_names_not_one_per_column(chart, regions, message) -> None:
    table = _cohort(RESULT_ORDER, n=5, seed=3)
    with pytest.raises(InvalidInputError, match=message):
        chart.score(table, regions=regions)


def test_score_regions_of_right_length_still_matched(chart) -> None:
    table = _cohort(RESULT_ORDER, n=5, seed=3)
    in_chart_order = table.copy()
    for j, r in enumerate(CHART_ORDER):
        in_chart_order[ROI[j]] = table[ROI[RESULT_ORDER.index(r)]]
    with pytest.warns(InputWarning, match="another order"):
        got = chart.score(table, regions=RESULT_ORDER)
    np.testing.assert_allclose(_z(got), _z(chart.score(in_chart_order)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("site", [None, "S1"])
def test_predict_parameters_every_array_is_n_by_t(chart, site) -> None:
    ages = np.array([10.0, 30.0, 60.0, 80.0])
    targets = ["ei_ratio_mean", ROI[0], ROI[3]]
    got = chart.predict_parameters(ages, "female", site=site, targets=targets)
    assert set(got) == set(chart.family_.params)
    for name, values in got.items():
        assert values.shape == (ages.size, len(targets)), name
        for i, age in enumerate(ages):  # each row is the prediction at that age alone
            alone = chart.predict_parameters([age], "female", site=site, targets=targets)[name]
            np.testing.assert_allclose(values[i], alone[0], rtol=1e-12, err_msg=name)
    got["nu"][0, 0] = 99.0  # writable, one value per person (not a broadcast view)
    assert got["nu"][1, 0] != 99.0
