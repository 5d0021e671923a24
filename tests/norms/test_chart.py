"""GrowthChart: recovered truth, calibration, scoring, bad input, new sites, persistence."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError, NotFittedError
from delssome_norms.norms import CENTILES, GrowthChart, growth_rate
from delssome_norms.norms.calibration import calibration_table
from delssome_norms.norms.simulate import make_truth, simulate_cohort


# -- fitting and recovered ground truth --------------------------------------------------------
def test_population_centiles_recover_the_generating_model(fitted, truth) -> None:
    ages = np.linspace(7.0, 96.0, 60)
    for female, sex in ((1.0, "female"), (0.0, "male")):
        est = fitted.centiles(ages, sex, q=[5, 50, 95])
        for j, target in enumerate(truth.targets):
            rows = est[est["target"] == target]
            for q in (5, 50, 95):
                true = truth.centiles(q, ages, np.full(ages.size, female))[:, j]
                spread = (
                    truth.centiles(95, ages, np.full(ages.size, female))[:, j]
                    - truth.centiles(5, ages, np.full(ages.size, female))[:, j]
                )
                err = np.abs(rows[f"C{q:g}"].to_numpy() - true)
                assert err.max() < 0.06 * spread.min(), (target, sex, q)


def test_site_effects_recover_the_truth(fitted, truth) -> None:
    order = [fitted.sites_.index(f"{s}_Siemens") for s in truth.sites]
    est = fitted.site_effects_["mu"][:, order]
    for t in range(len(truth.targets)):
        assert np.corrcoef(est[t], truth.site_mu[t])[0, 1] > 0.95


def test_heldout_fraction_below_each_centile_is_nominal(fitted, heldout_table) -> None:
    # acceptance: >= 5000 held-out people from several sites, within +-1.5 percentage points
    cal = calibration_table(fitted, heldout_table)
    assert (cal["n"] >= 5000).all()
    assert set(cal["centile"]) == set(CENTILES)
    assert cal["error_pp"].abs().max() <= 1.5


def test_population_centile_table_layout(fitted) -> None:
    tables = fitted.population_centiles("male")
    assert list(tables) == fitted.targets_
    tab = tables["ei_ratio_mean"]
    assert list(tab.columns) == [
        "age_in_years",
        "sex",
        "mu",
        "sigma",
        "nu",
        "tau",
        "C2.5",
        "C5",
        "C25",
        "C50",
        "C75",
        "C95",
        "C97.5",
        "growth_rate",
    ]
    lo, hi = fitted.chart_range_
    assert tab["age_in_years"].iloc[0] == lo and tab["age_in_years"].iloc[-1] == hi
    np.testing.assert_allclose(np.diff(tab["age_in_years"]), 0.1, atol=1e-9)
    c = tab[["C2.5", "C5", "C25", "C50", "C75", "C95", "C97.5"]].to_numpy()
    assert (np.diff(c, axis=1) > 0).all()
    np.testing.assert_allclose(
        tab["growth_rate"], np.gradient(tab["C50"].to_numpy(), tab["age_in_years"].to_numpy()), atol=1e-9
    )


def test_growth_rate_is_the_reference_finite_difference() -> None:
    ages = np.array([0.0, 0.1, 0.2, 0.4])
    vals = np.array([1.0, 1.5, 1.7, 2.7])
    np.testing.assert_allclose(growth_rate(ages, vals), [5.0, 3.5, 4.0, 5.0])


def test_chart_without_sex_terms_is_nested(train_table, fitted) -> None:
    reduced = GrowthChart(mu_sex=False).fit(train_table)
    assert "numeric_sex" not in reduced.formulas_["mu"]
    assert "numeric_sex" in reduced.formulas_["sigma"]
    assert reduced.coef_["mu"].shape[1] == fitted.coef_["mu"].shape[1] - 1
    lr = 2 * (fitted.loglik_ - reduced.loglik_)
    assert (lr > 0).all()  # the data have a real sex effect in mu (0.05)
    # gamlss df: fixed columns plus the random terms' edf
    for chart in (fitted, reduced):
        n_fixed = sum(c.shape[1] for c in chart.coef_.values())
        np.testing.assert_allclose(chart.edf_, n_fixed + sum(chart.edf_random_.values()))


# -- scoring ------------------------------------------------------------------------------------
def test_score_definitions(fitted, heldout_table) -> None:
    people = heldout_table.iloc[:50]
    scores = fitted.score(people)
    t = "ei_ratio_roi_0"
    params_site = fitted.predict_parameters(
        people["age_in_years"], people["sex"], site=people["site_scanner"], targets=[t]
    )
    params_pop = fitted.predict_parameters(people["age_in_years"], people["sex"], targets=[t])
    fam = fitted.family_
    th_site = [params_site[p][:, 0] for p in fam.params]
    th_pop = [params_pop[p][:, 0] for p in fam.params]
    centile = fam.cdf(people[t].to_numpy(), *th_site)
    np.testing.assert_allclose(scores[f"{t}_centile"], centile, atol=1e-12)
    np.testing.assert_allclose(scores[f"{t}_z"], special.ndtri(centile), atol=1e-8)
    np.testing.assert_allclose(scores[f"{t}_harmonised"], fam.ppf(centile, *th_pop), atol=1e-9)
    np.testing.assert_array_equal(scores["centile_with_site"], scores["ei_ratio_mean_centile"])
    np.testing.assert_array_equal(scores["corrected_value"], scores["ei_ratio_mean_harmonised"])
    assert (scores["flag"] == "").all()
    long = fitted.score(people, layout="long")
    assert len(long) == 50 * len(fitted.targets_)
    sub = long[long["target"] == t]
    np.testing.assert_allclose(sub["centile"], scores[f"{t}_centile"])


def test_unseen_site_gets_population_prediction_with_warning(fitted, heldout_table) -> None:
    people = heldout_table.iloc[:20].copy()
    people["site_scanner"] = "Elsewhere_GE"
    with pytest.warns(InputWarning, match="population-average"):
        scores = fitted.score(people, targets=["ei_ratio_mean"])
    assert (scores["flag"] == "unseen_site").all()
    pop = fitted.predict_parameters(people["age_in_years"], people["sex"], targets=["ei_ratio_mean"])
    expected = fitted.family_.cdf(
        people["ei_ratio_mean"].to_numpy(), *[pop[p][:, 0] for p in fitted.family_.params]
    )
    np.testing.assert_allclose(scores["ei_ratio_mean_centile"], expected, atol=1e-12)
    # harmonised value of an unseen site is the value itself
    np.testing.assert_allclose(scores["ei_ratio_mean_harmonised"], people["ei_ratio_mean"], atol=1e-9)


def test_age_out_of_range_is_flagged_and_not_extrapolated(fitted, heldout_table) -> None:
    people = heldout_table.iloc[:10].copy()
    people.loc[people.index[:2], "age_in_years"] = [1.0, 110.0]
    with pytest.warns(InputWarning, match="outside the chart's range"):
        scores = fitted.score(people)
    assert scores["flag"].iloc[0] == "age_out_of_range"
    assert scores["ei_ratio_mean_centile"].iloc[:2].isna().all()
    assert scores["ei_ratio_mean_centile"].iloc[2:].notna().all()
    with pytest.warns(InputWarning, match="extrapolated"):
        ext = fitted.score(people, extrapolate=True)
    assert ext["ei_ratio_mean_centile"].iloc[:2].notna().all()
    assert ext["flag"].iloc[1] == "age_out_of_range"


def test_missing_value_is_flagged(fitted, heldout_table) -> None:
    people = heldout_table.iloc[:5].copy()
    people.loc[people.index[0], "ei_ratio_roi_1"] = np.nan
    scores = fitted.score(people)
    assert scores["flag"].iloc[0] == "missing_value"
    assert np.isnan(scores["ei_ratio_roi_1_centile"].iloc[0])
    assert np.isfinite(scores["ei_ratio_mean_centile"].iloc[0])


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda t: t.assign(sex=["female", "x"] + ["male"] * (len(t) - 2)).drop(
                columns="numeric_sex"
            ),
            "unknown sex label",
        ),
        (lambda t: t.assign(age_in_years=[np.nan, *list(t["age_in_years"][1:])]), "age is missing"),
        (lambda t: t.drop(columns=["age_in_years"]), "missing column 'age_in_years'"),
        (lambda t: t.drop(columns=["sex", "numeric_sex"]), "numeric_sex"),
        (lambda t: t.assign(numeric_sex=1 - t["numeric_sex"]), "disagree"),
        (lambda t: t.assign(ei_ratio_mean=["a"] * len(t)), "non-numeric"),
    ],
)
def test_bad_scoring_tables_raise_one_clear_error(fitted, heldout_table, change, message) -> None:
    people = change(heldout_table.iloc[:6].copy())
    with pytest.raises(InvalidInputError, match=message) as info:
        fitted.score(people, source="people.csv")
    assert str(info.value).startswith("people.csv")


def test_target_the_chart_does_not_have(fitted, heldout_table) -> None:
    with pytest.raises(InvalidInputError, match="no target"):
        fitted.score(heldout_table.iloc[:5], targets=["ei_ratio_roi_99"])
    with pytest.raises(InvalidInputError, match="none of the chart's targets"):
        fitted.score(heldout_table.iloc[:5][["age_in_years", "sex"]])


def test_not_fitted_and_bad_parameters() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        GrowthChart().score(pd.DataFrame({"a": [1]}))
    bad = {
        "family": "BCT",
        "mu_df": 2,
        "sigma_df": "3",
        "mu_sex": "yes",
        "random_sites": ("mu", "xi"),
        "site_column": "",
        "max_iter": 0,
        "tol": -1.0,
    }
    table = pd.DataFrame({"age_in_years": [5.0, 6.0], "sex": ["f", "m"], "ei_ratio_mean": [1, 2]})
    for name, value in bad.items():
        assert name in GrowthChart._parameter_constraints
        with pytest.raises(InvalidInputError, match=name):
            GrowthChart(**{name: value}).fit(table)


def test_fit_input_errors(train_table) -> None:
    with pytest.raises(InvalidInputError, match="missing site column"):
        GrowthChart().fit(train_table.drop(columns=["site_scanner", "site"]), source="t.csv")
    with pytest.raises(InvalidInputError, match="target column"):
        GrowthChart().fit(train_table, targets=["nope"])
    with pytest.raises(InvalidInputError, match="positive"):
        GrowthChart("GG").fit(train_table.assign(ei_ratio_mean=-1.0), targets=["ei_ratio_mean"])


def test_unconverged_fit_is_never_silent(train_table) -> None:
    small = train_table.iloc[:600]
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        chart = GrowthChart(max_iter=1).fit(small)
    assert not chart.converged_.any()
    assert not chart.convergence_["converged"].any()
    with pytest.raises(InvalidInputError, match="did not converge"):
        GrowthChart(max_iter=1, strict=True).fit(small)
    with pytest.warns(ConvergenceWarning, match="unreliable"):
        chart.score(small.iloc[:3])


# -- new sites ------------------------------------------------------------------------------------
def test_adapt_estimates_new_site_offsets_and_improves_calibration() -> None:
    truth = make_truth(n_targets=2, n_sites=7, seed=21, site_sd_mu=0.08)
    table = simulate_cohort(truth, 7000, seed=3)
    new = "HCP_Siemens"
    train = table[table["site_scanner"] != new]
    site_rows = table[table["site_scanner"] == new]
    controls, patients = site_rows.iloc[:200], site_rows.iloc[200:]
    chart = GrowthChart().fit(train)
    adapted = chart.adapt(controls)
    assert adapted.sites_[-1] == new and new not in chart.sites_
    assert adapted.adapted_sites_[new] == {"n_controls": 200, "method": "ml"}
    # the population fit is frozen
    for p in chart.coef_:
        np.testing.assert_array_equal(adapted.coef_[p], chart.coef_[p])
    # offsets relative to the training sites' mean (the chart's intercept absorbs the rest)
    j = truth.sites.index("HCP")
    train_sites = [truth.sites.index(s.split("_")[0]) for s in chart.sites_]
    true_rel = truth.site_mu[:, j] - truth.site_mu[:, train_sites].mean(1)
    np.testing.assert_allclose(adapted.site_effects_["mu"][:, -1], true_rel, atol=0.03)
    with pytest.warns(InputWarning):
        before = chart.score(patients)
    after = adapted.score(patients)
    assert (after["flag"] == "").all()
    q = np.array([2.5, 25, 50, 75, 97.5])
    err_before = np.abs(
        (before["ei_ratio_mean_centile"].to_numpy()[:, None] < q / 100).mean(0) - q / 100
    )
    err_after = np.abs((after["ei_ratio_mean_centile"].to_numpy()[:, None] < q / 100).mean(0) - q / 100)
    assert err_after.max() < 0.04
    assert err_after.mean() < err_before.mean()
    shrunk = chart.adapt(controls, method="map")
    assert np.all(
        np.abs(shrunk.site_effects_["mu"][:, -1]) <= np.abs(adapted.site_effects_["mu"][:, -1]) + 1e-12
    )


def test_adapt_input_errors(fitted, heldout_table) -> None:
    with pytest.raises(InvalidInputError, match="no controls from sites new"):
        with pytest.warns(InputWarning):
            fitted.adapt(heldout_table.iloc[:50])
    with pytest.raises(InvalidInputError, match="method"):
        fitted.adapt(heldout_table.iloc[:50], method="bayes")


# -- persistence -----------------------------------------------------------------------------------
def test_save_load_round_trip_is_exact(fitted, heldout_table, tmp_path) -> None:
    folder = fitted.save(tmp_path / "chart")
    meta = json.loads((folder / "chart.json").read_text())
    assert meta["format_version"] == 1 and meta["family"] == "SHASHo2"
    assert (
        meta["formulas"]["mu"] == "bs(age_in_years, df=4, degree=3) + numeric_sex + random(site_scanner)"
    )
    assert meta["sites"] == fitted.sites_
    assert len(meta["parameters"]["mu"]["basis"]["interior_knots"]) == 1
    loaded = GrowthChart.load(folder)
    for p in fitted.coef_:
        np.testing.assert_array_equal(loaded.coef_[p], fitted.coef_[p])
    for p in fitted.site_effects_:
        np.testing.assert_array_equal(loaded.site_effects_[p], fitted.site_effects_[p])
    assert loaded.designs_ == fitted.designs_
    pd.testing.assert_frame_equal(
        loaded.score(heldout_table.iloc[:30]), fitted.score(heldout_table.iloc[:30])
    )
    assert not list(folder.glob("*.pkl"))


def test_load_refuses_other_format_versions_and_broken_folders(fitted, tmp_path) -> None:
    folder = fitted.save(tmp_path / "chart")
    meta = json.loads((folder / "chart.json").read_text())
    meta["format_version"] = 2
    (folder / "chart.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="format_version 2 is newer than this"):
        GrowthChart.load(folder)
    with pytest.raises(InvalidInputError, match="does not exist"):
        GrowthChart.load(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match=r"chart\.json is missing"):
        GrowthChart.load(tmp_path / "empty")
    folder2 = fitted.save(tmp_path / "chart2")
    (folder2 / "arrays.npz").write_bytes(b"not an npz")
    with pytest.raises(InvalidInputError, match=r"arrays\.npz"):
        GrowthChart.load(folder2)


def test_other_families_fit_and_score(train_table) -> None:
    small = train_table.iloc[:1500]
    for family in ("NO", "JSU", "GG", "SHASH", "SHASHo"):
        with warnings.catch_warnings():
            warnings.simplefilter("error", ConvergenceWarning)
            chart = GrowthChart(family, mu_df=3).fit(small, targets=["ei_ratio_mean"])
        scores = chart.score(small.iloc[:100], targets=["ei_ratio_mean"])
        c = scores["ei_ratio_mean_centile"].to_numpy()
        assert np.all((c > 0) & (c < 1)), family


def test_chart_without_site_terms_scores_every_site_alike(train_table) -> None:
    small = train_table.iloc[:1500]
    chart = GrowthChart(random_sites=()).fit(small, targets=["ei_ratio_mean"])
    assert chart.site_effects_ == {} and "random" not in chart.formulas_["mu"]
    people = small.iloc[:10].assign(site_scanner="Anywhere")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = chart.score(people)
    assert (scores["flag"] == "").all()
    np.testing.assert_allclose(scores["ei_ratio_mean_harmonised"], people["ei_ratio_mean"], atol=1e-9)


def test_load_detects_edited_coefficients(fitted, tmp_path) -> None:
    folder = fitted.save(tmp_path / "chart")
    meta = json.loads((folder / "chart.json").read_text())
    meta["coefficients"]["ei_ratio_roi_0"]["mu"]["(Intercept)"] += 0.1
    (folder / "chart.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="disagree"):
        GrowthChart.load(folder)
