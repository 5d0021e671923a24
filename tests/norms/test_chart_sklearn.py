"""GrowthChart as a scikit-learn estimator: clone, get_params/set_params, repr, module sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

import delssome_norms
from delssome_norms.errors import InvalidInputError, NotFittedError
from delssome_norms.io import ei_table
from delssome_norms.norms import GrowthChart
from delssome_norms.norms.chart import default_targets, table_sites

PARAMS = (
    "family", "mu_df", "sigma_df", "nu_df", "tau_df", "mu_sex", "sigma_sex", "random_sites",
    "site_column", "algorithm", "max_iter", "tol", "strict",
)  # fmt: skip


def test_clone_gives_an_unfitted_copy_with_equal_params(fitted) -> None:
    chart = GrowthChart(mu_df=5)
    copy = clone(chart)
    assert copy is not chart
    assert copy.get_params() == chart.get_params()
    assert copy.mu_df == 5 and copy.sigma_df == 3
    # a fitted chart clones to an unfitted one
    again = clone(fitted)
    assert again.get_params() == fitted.get_params()
    assert not hasattr(again, "coef_")
    with pytest.raises(NotFittedError):
        again.centiles([10.0], "female")


def test_get_params_lists_every_constructor_argument() -> None:
    params = GrowthChart(family="NO", sigma_df=None).get_params(deep=True)
    assert tuple(params) == tuple(sorted(PARAMS))
    assert set(GrowthChart._parameter_constraints) == set(PARAMS)
    assert params["family"] == "NO" and params["sigma_df"] is None
    assert params["site_column"] == ei_table.SITE_COLUMN == "site_scanner"
    assert GrowthChart().get_params(deep=False) == GrowthChart().get_params(deep=True)


def test_set_params_returns_self_and_changes_the_fit(train_table, fitted) -> None:
    chart = GrowthChart()
    assert chart.set_params(mu_df=3, tol=1e-7) is chart
    assert chart.mu_df == 3 and chart.tol == 1e-7
    with pytest.raises(ValueError, match="Invalid parameter"):
        chart.set_params(mu_degrees=3)
    chart.set_params(mu_df=4, tol=1e-9)
    refit = chart.fit(train_table)
    # same params as the fixture chart -> the same coefficients
    np.testing.assert_array_equal(refit.coef_["mu"], fitted.coef_["mu"])


def test_repr_shows_the_non_default_params() -> None:
    assert repr(GrowthChart()) == "GrowthChart()"
    assert repr(GrowthChart(mu_df=5, family="NO")) == "GrowthChart(family='NO', mu_df=5)"


def test_contract_targets_and_site_fallback(train_table) -> None:
    cols = ["subject_id", "ei_ratio_roi_1", "ei_ratio_mean", "ei_ratio_roi_0", "ei_ratio_roi_0_z", "x"]
    assert default_targets(cols) == ["ei_ratio_mean", "ei_ratio_roi_1", "ei_ratio_roi_0"]
    old = train_table.drop(columns=["site_scanner"]).head(4)
    labels = table_sites(old, "site_scanner", "t", required=True)
    expected = (old["site"].astype(str) + "_" + old["scanner"].astype(str)).tolist()
    assert labels.tolist() == expected


def test_no_module_over_800_lines() -> None:
    root = Path(delssome_norms.__file__).parent
    allowed: set[str] = set()
    long = {
        str(p.relative_to(root)): n
        for p in root.rglob("*.py")
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 800
    }
    assert {k: v for k, v in long.items() if k not in allowed} == {}


def test_centiles_refuse_ages_outside_the_chart(fitted) -> None:
    lo, hi = fitted.chart_range_
    with pytest.raises(InvalidInputError, match="outside the chart's range"):
        fitted.centiles([hi + 50.0], "female")
    with pytest.raises(InvalidInputError, match="finite"):
        fitted.centiles([np.nan], "female")
    with pytest.raises(InvalidInputError, match="one-dimensional"):
        fitted.centiles([[lo + 1, lo + 2]], "female")
    inside = fitted.centiles([hi], "female", q=[50.0])["C50"].to_numpy()
    beyond = fitted.centiles([hi, hi + 1.0], "female", q=[50.0], extrapolate=True)["C50"].to_numpy()
    assert np.isfinite(beyond).all() and beyond[0] == pytest.approx(inside[0], rel=1e-12)


def test_unknown_site_warns_and_gets_the_population_curve(fitted) -> None:
    from delssome_norms.errors import InputWarning

    age = [0.5 * sum(fitted.chart_range_)]
    pop = fitted.centiles(age, "male", q=[50.0])
    with pytest.warns(InputWarning, match="unknown to the chart"):
        typo = fitted.centiles(age, "male", q=[50.0], site="no-such-site")
    np.testing.assert_allclose(typo["C50"], pop["C50"], rtol=1e-12)


def test_one_target_name_is_one_target(train_table) -> None:
    chart = GrowthChart(random_sites=()).fit(train_table, targets="ei_ratio_mean")
    assert chart.targets_ == ["ei_ratio_mean"]


def test_not_fitted_is_also_an_attribute_error() -> None:
    chart = GrowthChart()
    assert not hasattr(chart, "bic_") and getattr(chart, "convergence_", None) is None


def test_chart_tables_need_one_row_per_person(train_table) -> None:
    table = train_table.copy()
    table["subject_id"] = [f"p{i}" for i in range(len(table))]
    table.loc[table.index[3], "subject_id"] = "p0"
    with pytest.raises(InvalidInputError, match="subject_id listed more than once: p0"):
        GrowthChart(random_sites=()).fit(table, targets=["ei_ratio_mean"])
    table.loc[table.index[3], "subject_id"] = " "
    with pytest.raises(InvalidInputError, match=r"subject_id is empty in row\(s\) 4"):
        GrowthChart(random_sites=()).fit(table, targets=["ei_ratio_mean"])


def test_people_without_a_value_are_named(train_table) -> None:
    from delssome_norms.errors import InputWarning

    table = train_table.copy()
    table.loc[table.index[:2], "ei_ratio_mean"] = np.nan
    with pytest.warns(InputWarning, match=r"left out of that target's chart: ei_ratio_mean \(2\)"):
        chart = GrowthChart(random_sites=()).fit(table, targets=["ei_ratio_mean"])
    assert chart.targets_ == ["ei_ratio_mean"]


def test_scores_need_one_row_per_person_and_positive_fitted_ei(train_table, fitted) -> None:
    table = train_table.iloc[:6].copy()
    table["subject_id"] = ["a", "b", "c", "d", "e", "a"]
    with pytest.raises(InvalidInputError, match="subject_id listed more than once: a"):
        fitted.score(table, targets=["ei_ratio_mean"])
    table["subject_id"] = list("abcdef")
    table.loc[table.index[2], "ei_ratio_mean"] = -3.0
    # a table that collect wrote (it has a provenance sidecar) holds fitted E/I: S_E/S_I > 0
    with pytest.raises(InvalidInputError, match=r"ei_ratio_mean has E/I ratio\(s\) <= 0 in row\(s\) 3"):
        fitted.score(table, targets=["ei_ratio_mean"], provenance={}, allow_pipeline_mismatch=True)
