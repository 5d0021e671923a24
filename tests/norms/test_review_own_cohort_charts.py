"""Growth charts of a researcher's own small cohorts (review of ``charts fit``/``GrowthChart``)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import load_reference_table
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.norms import GrowthChart

COLUMNS = ["subject_id", "age_in_years", "sex", "site_scanner", "ei_ratio_mean"]


@pytest.fixture(scope="module")
def developmental() -> pd.DataFrame:
    """300 people aged 5-21 from the packaged reference table (one fixed draw)."""
    t = load_reference_table()
    kids = t[(t.age_in_years >= 5) & (t.age_in_years <= 21)]
    return kids.sample(300, random_state=1).reset_index(drop=True)[COLUMNS]


def _median_follows_data(chart: GrowthChart, table: pd.DataFrame, sex: str) -> None:
    """The chart's median at an age lies within 3 standard errors of the sample median of the
    people of that sex in a +-1.5-year bin around it (se of a median: 1.25 sd / sqrt(n))."""
    curves = chart.population_centiles(sex)["ei_ratio_mean"]
    people = table[table.sex.str.lower().str[0] == sex[0]]
    for age in (8.0, 10.0, 12.0):
        near = people[(people.age_in_years - age).abs() < 1.5].ei_ratio_mean
        assert len(near) >= 15
        row = curves.iloc[int((curves.age_in_years - age).abs().argmin())]
        se = 1.25 * near.std() / np.sqrt(len(near))
        assert abs(row["C50"] - near.median()) < 3 * se, (sex, age, row["C50"], near.median(), se)


def test_unequal_sites_converge_and_follow_the_data(developmental) -> None:
    """A site of 10 people next to one of 290: gamlss's local lambda iteration for sigma's site
    term has two fixed points there, and restarting it from 10 at every Newton iteration cycled
    between them (lambda_sigma 2.6 -> 18 -> 25 -> 32 -> 2.6 ...), so the fit never converged
    (``charts fit`` exit 1 on a good table)."""
    table = developmental.copy()
    table["site_scanner"] = ["small"] * 10 + ["big"] * 290
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning
        chart = GrowthChart().fit(table, targets=["ei_ratio_mean"])
    assert chart.converged_.all() and chart.reliable_.all()
    for sex in ("female", "male"):
        _median_follows_data(chart, table, sex)


def test_site_labels_differing_in_case_warn(developmental) -> None:
    """ "Site A" and "site a " are two sites to the chart: say so at fit time."""
    table = developmental.copy()
    table["site_scanner"] = np.where(np.arange(len(table)) % 2, "Site A", "site a ")
    with pytest.warns(InputWarning, match="differ only in letter case.*'site a'.*'Site A'"):
        chart = GrowthChart().fit(table, targets=["ei_ratio_mean"])
    assert sorted(chart.sites_) == ["Site A", "site a"]
    table["site_scanner"] = np.where(np.arange(len(table)) % 2, 1, 2)  # numbers: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        assert GrowthChart().fit(table, targets=["ei_ratio_mean"]).sites_ == ["1", "2"]


def test_ages_in_months_are_named_as_such(developmental) -> None:
    table = developmental.copy()
    table["age_in_years"] *= 12  # 60-252
    with pytest.raises(InvalidInputError, match=r"ages in months \(up to 24\d") as err:
        GrowthChart().fit(table, targets=["ei_ratio_mean"], source="kids.csv")
    assert err.value.source == "kids.csv: column age_in_years"
    table["age_in_years"] = developmental.age_in_years * 365  # days, not months: plain message
    with pytest.raises(InvalidInputError, match="between 0 and 120") as err:
        GrowthChart().fit(table, targets=["ei_ratio_mean"])
    assert "months" not in err.value.problem


def test_one_sex_cohort_error_names_the_cli_options(developmental) -> None:
    girls = developmental[developmental.sex.str.lower().str[0] == "f"]
    with pytest.raises(InvalidInputError, match=r"only one sex \(female\).*--no-mu-sex --no-sigma-sex"):
        GrowthChart().fit(girls, targets=["ei_ratio_mean"])
    chart = GrowthChart(mu_sex=False, sigma_sex=False).fit(girls, targets=["ei_ratio_mean"])
    _median_follows_data(chart, girls, "female")


def test_one_sex_chart_knows_its_sex(developmental, tmp_path) -> None:
    """A chart of girls only has no curves of boys: ``charts fit`` writes no male table, and
    scoring a boy on it warns (also after save/load); girls score without a warning."""
    girls = developmental[developmental.sex.str.lower().str[0] == "f"]
    path = tmp_path / "girls.csv"
    girls.to_csv(path, index=False)
    out = tmp_path / "chart"
    argv = ["charts", "fit", "--table", str(path), "--out", str(out), "--no-mu-sex", "--no-sigma-sex"]
    assert main(argv) == 0
    assert sorted(p.name for p in (out / "ei_ratio_mean").iterdir()) == [
        "female_population_centiles.csv"
    ]
    chart = GrowthChart.load(out)
    assert chart.sexes_ == ["female"]
    people = pd.DataFrame(
        {
            "age_in_years": [10.0, 10.0],
            "sex": ["F", "M"],
            "site_scanner": [girls.site_scanner.iloc[0]] * 2,
        }
    ).assign(ei_ratio_mean=3.3)
    with pytest.warns(InputWarning, match=r"1 row\(s\) are male \(rows 2\).*female people only"):
        scores = chart.score(people)
    assert scores.ei_ratio_mean_centile.nunique() == 1  # the same curves for both
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        chart.score(people.iloc[:1])
