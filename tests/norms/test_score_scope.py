"""Scoring people the chart may not describe: a chart without region names scoring a table that
names its DK68 regions in another order, people of the sex the chart was not fitted on, ages
beyond the reference people's, and a scored table's sex and subject_id cells."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import load_reference_table
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import ei_table as et
from delssome_norms.io.checks import table_sex_labels
from delssome_norms.io.regions import DK68_REGIONS
from delssome_norms.norms import GrowthChart, load_reference_chart

PERM = np.random.default_rng(5).permutation(68)  # column j of the permuted table is region PERM[j]
ROI = [et.region_column(k) for k in range(68)]


@pytest.fixture(scope="module")
def unnamed() -> GrowthChart:
    """The reference chart as fitted from a table without a regions.csv: no region names."""
    chart = copy.deepcopy(load_reference_chart())
    chart.provenance_ = {"pipeline": {"n_regions": 68}}
    return chart


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    table = load_reference_table()
    return table[table["age_in_years"].between(20, 70)].head(12).reset_index(drop=True)


def _permuted(table: pd.DataFrame) -> pd.DataFrame:
    out = table.copy()
    for j in range(68):
        out[ROI[j]] = table[ROI[PERM[j]]].to_numpy()
    return out


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_unnamed_dk68_chart_matches_a_permuted_table_by_name(unnamed, people):
    truth = _quiet(unnamed.score, people)
    names = [DK68_REGIONS[k] for k in PERM]
    with pytest.warns(InputWarning, match="matched to the chart's regions by name"):
        got = unnamed.score(_permuted(people), regions=names)
    # the score of DK68 region k is that region's, whichever column held it
    for k in (0, 5, 33, 67):
        np.testing.assert_allclose(got[f"{ROI[k]}_z"], truth[f"{ROI[k]}_z"], rtol=1e-12)
    np.testing.assert_allclose(got["ei_ratio_mean_z"], truth["ei_ratio_mean_z"], rtol=1e-12)


def test_unnamed_dk68_sized_chart_takes_another_atlas_in_its_order_with_a_warning(unnamed, people):
    """The unnamed chart may be of that atlas (fitted on its table without a regions.csv): the
    table is scored by position, as before charts without names were read as DK68, and said."""
    other = [f"7Networks_{k}" for k in range(68)]
    with pytest.warns(InputWarning, match="the chart records no region names"):
        scores = unnamed.score(people, regions=other)
    pd.testing.assert_frame_equal(scores, _quiet(unnamed.score, people))


def test_unnamed_chart_of_another_size_warns_about_a_named_table():
    rng = np.random.default_rng(0)
    n = 120
    table = pd.DataFrame(
        {
            "age_in_years": rng.uniform(10, 80, n),
            "sex": rng.choice(["female", "male"], n),
            "site_scanner": rng.choice(["s1", "s2"], n),
        }
    )
    for k in range(3):
        table[ROI[k]] = 1 + 0.1 * k + rng.normal(0, 0.03, n)
    chart = _quiet(GrowthChart("NO", random_sites=["mu"]).fit, table, targets=ROI[:3])
    names = ["net_b", "net_a", "net_c"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart.score(table.head(5), regions=names)
    texts = [str(w.message) for w in caught if "records no region names" in str(w.message)]
    assert len(texts) == 1
    assert "names its 3 regions (net_b is ei_ratio_roi_0, net_a is ei_ratio_roi_1, ...)" in texts[0]


def test_cli_score_of_permuted_table_with_unnamed_chart(unnamed, people, tmp_path):
    chart_dir = tmp_path / "chart"
    unnamed.save(chart_dir)
    _quiet(people.to_csv, tmp_path / "plain.csv", index=False)
    _permuted(people).to_csv(tmp_path / "perm.csv", index=False)
    et.regions_frame([DK68_REGIONS[k] for k in PERM]).to_csv(tmp_path / "perm.regions.csv", index=False)
    for stem in ("plain", "perm"):
        args = ["charts", "score", "--chart", str(chart_dir), "--table", str(tmp_path / f"{stem}.csv")]
        assert _quiet(main, [*args, "--out", str(tmp_path / f"sc_{stem}.csv")]) == 0
    plain, perm = (pd.read_csv(tmp_path / f"sc_{s}.csv") for s in ("plain", "perm"))
    for k in (0, 12, 40, 67):
        np.testing.assert_allclose(perm[f"{ROI[k]}_z"], plain[f"{ROI[k]}_z"], rtol=1e-9)
    # the scores' sidecar names the scores' columns: the chart's order, DK68
    side = pd.read_csv(tmp_path / "sc_perm.regions.csv")
    assert side["region"].tolist() == list(DK68_REGIONS)


@pytest.fixture(scope="module")
def women_chart() -> GrowthChart:
    rng = np.random.default_rng(1)
    n = 150
    women = pd.DataFrame(
        {
            "age_in_years": rng.uniform(20, 70, n),
            "sex": "female",
            "site_scanner": rng.choice(["s1", "s2"], n),
            "ei_ratio_mean": rng.normal(1.5, 0.1, n),
        }
    )
    return _quiet(
        GrowthChart("NO", mu_sex=False, sigma_sex=False, random_sites=["mu"]).fit,
        women,
        targets=["ei_ratio_mean"],
    )


def test_other_sex_on_one_sex_chart_is_flagged_per_row(women_chart):
    table = pd.DataFrame(
        {
            "age_in_years": [30.0, 40.0, 50.0],
            "sex": ["female", "male", "F"],
            "site_scanner": ["s1", "s1", "s2"],
            "ei_ratio_mean": [1.5, 1.5, 1.6],
        }
    )
    with pytest.warns(InputWarning, match=r"1 row\(s\) are male .*\(flag unseen_sex\)"):
        wide = women_chart.score(table)
    assert wide["flag"].tolist() == ["", "unseen_sex", ""]
    long = _quiet(women_chart.score, table, layout="long")
    assert long["flag"].tolist() == ["", "unseen_sex", ""]


def test_ages_beyond_the_reference_people_are_warned_about(unnamed, people):
    table = people.head(3).copy()
    table["age_in_years"] = [4.2, 50.0, 98.8]  # chart range 4-99, reference people 4.5-98.4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scores = unnamed.score(table, targets=["ei_ratio_mean"])
    assert scores["flag"].str.contains("age_extrapolated").tolist() == [True, False, True]
    texts = [str(w.message) for w in caught if "beyond its reference people's ages" in str(w.message)]
    assert texts == [
        "table: 2 row(s) have ages inside the chart's range 4-99 years but beyond its reference "
        "people's ages 4.50-98.40 (rows 1, 3): the curves there continue the spline past the "
        "data; scored and flagged age_extrapolated"
    ]


def test_empty_sex_cell_takes_numeric_sex(unnamed, people):
    table = pd.DataFrame({"sex": ["F", None, " ", "m"], "numeric_sex": [1, 0, 1, np.nan]})
    assert table_sex_labels(table).tolist() == ["female", "male", "female", "male"]
    both_empty = pd.DataFrame({"sex": ["F", None], "numeric_sex": [1, np.nan]})
    with pytest.raises(InvalidInputError, match=r"column sex: is empty in row\(s\) 2"):
        table_sex_labels(both_empty)
    bad_code = pd.DataFrame({"sex": ["F", "m", None], "numeric_sex": [1, np.nan, 2]})
    with pytest.raises(
        InvalidInputError, match=r"numeric_sex: unknown sex label\(s\) 2(\.0)? in row\(s\) 3"
    ):
        table_sex_labels(bad_code)
    scored = people.head(2).copy()
    scored["numeric_sex"] = (scored["sex"] == "female").astype(int)
    truth = _quiet(unnamed.score, scored, targets=["ei_ratio_mean"])
    scored["sex"] = [None, ""]
    got = _quiet(unnamed.score, scored, targets=["ei_ratio_mean"])
    assert got["sex"].tolist() == truth["sex"].tolist()
    np.testing.assert_allclose(got["ei_ratio_mean_z"], truth["ei_ratio_mean_z"])


def test_scoring_refuses_repeated_ids_also_with_spaces(unnamed, people):
    table = people.head(3).copy()
    table["subject_id"] = ["pat-00", "pat-01", "pat-00"]
    with pytest.raises(InvalidInputError, match="each score must be matched to one row per person"):
        _quiet(unnamed.score, table, targets=["ei_ratio_mean"])
    table["subject_id"] = ["pat-00", "pat-01", "pat-00 "]
    with pytest.raises(
        InvalidInputError,
        match=r"subject_id listed more than once: 'pat-00' and 'pat-00 ' \(IDs that differ only",
    ):
        _quiet(unnamed.score, table, targets=["ei_ratio_mean"])
