"""Growth charts on the messy tables researchers actually have: small cohorts, few controls, numeric
site codes, confounded designs and hand-edited chart files."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError
from delssome_norms.io import read_table
from delssome_norms.norms import GrowthChart, load_reference_chart
from delssome_norms.norms.calibration import calibration_summary
from delssome_norms.norms.chart_fit import TAIL_Z_MAX
from delssome_norms.stats import region_group_scores, sex_difference_tests, sex_gap

OFFSETS = {"S1": 0.03, "S2": -0.02, "S3": 0.0, "S4": -0.01}


def normal_cohort(n: int, seed: int, sites=OFFSETS) -> pd.DataFrame:
    """Normal E/I with a linear age trend, a sex effect and fixed site offsets."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(8, 85, n)
    female = rng.integers(0, 2, n)
    site = rng.choice(list(sites), n)
    mu = 1.0 + 0.004 * age + 0.05 * female + np.array([sites[s] for s in site])
    return pd.DataFrame(
        {
            "subject_id": [f"s{seed}_{i}" for i in range(n)],
            "age_in_years": age,
            "sex": np.where(female == 1, "female", "male"),
            "site_scanner": site,
            "ei_ratio_mean": rng.normal(mu, 0.1),
        }
    )


def quiet_fit(table: pd.DataFrame, **kw) -> GrowthChart:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GrowthChart(**kw).fit(table)


# -- degenerate shapes -----------------------------------------------------------------------------
def test_a_degenerate_small_cohort_chart_is_flagged_and_its_scores_too() -> None:
    train, heldout = normal_cohort(80, 11), normal_cohort(2000, 777)
    with pytest.warns(ConvergenceWarning, match="degenerate tail"):
        chart = GrowthChart().fit(train)
    assert chart.converged_.all() and not chart.reliable_.any()
    assert chart.tail_z_[0] > TAIL_Z_MAX
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = chart.score(heldout)
    # what the flag is for: held-out people from the same normal model get absurd z
    assert scores["ei_ratio_mean_z"].abs().max() > 50
    inside = ~scores["flag"].str.contains("age_out_of_range")
    # (held-out ages beyond the training people's are also age_extrapolated)
    flags = scores.loc[inside, "flag"].str.replace("age_extrapolated;", "")
    assert flags.eq("chart_unreliable").all()
    # a normal chart of the same people is trusted; its tail z is the normal value
    # Phi^-1(0.75) + 3 * (Phi^-1(0.75) - Phi^-1(0.25)) = 4.7214
    normal = quiet_fit(train, family="NO")
    assert normal.reliable_.all()
    assert normal.tail_z_[0] == pytest.approx(stats.norm.ppf(0.75) * 7, rel=1e-6)
    assert normal.convergence_.loc[0, "tail_z"] == pytest.approx(normal.tail_z_[0])


def test_the_shipped_reference_chart_has_trusted_tails() -> None:
    chart = load_reference_chart()
    assert chart.reliable_.all() and chart.tail_z_.max() < 10


def test_scores_of_an_unconverged_chart_are_flagged(tmp_path) -> None:
    table = normal_cohort(400, 3)
    chart = quiet_fit(table, max_iter=1)
    assert not chart.converged_.any()
    chart.save(tmp_path / "c")
    loaded = GrowthChart.load(tmp_path / "c")
    with pytest.warns(ConvergenceWarning, match="chart_unreliable"):
        scores = loaded.score(table.iloc[:5], layout="long")
    assert scores["flag"].eq("chart_unreliable").all()
    meta = json.loads((tmp_path / "c" / "chart.json").read_text())
    assert meta["convergence"]["unconverged_targets"] == ["ei_ratio_mean"]


# -- new sites -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chart4() -> GrowthChart:
    return quiet_fit(normal_cohort(1200, 5))


def test_adapt_refuses_ml_offsets_from_a_handful_of_controls(chart4) -> None:
    new = normal_cohort(40, 9, sites={"NEW": 0.05})
    with pytest.raises(
        InvalidInputError, match=r"fewer than 10 controls.*NEW \(3\)|NEW \(3\).*fewer than 10"
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            chart4.adapt(new.iloc[:3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shrunk = chart4.adapt(new.iloc[:3], method="map")
        adapted = chart4.adapt(new)
    assert shrunk.adapted_sites_["NEW"] == {"n_controls": 3, "method": "map"}
    assert adapted.site_effects_["mu"][0, -1] == pytest.approx(
        0.05 - np.mean(list(OFFSETS.values())), abs=0.05
    )


def test_adapt_with_no_control_inside_the_age_range_is_an_error(chart4) -> None:
    old = normal_cohort(40, 9, sites={"OLD": 0.0}).assign(age_in_years=90.0)
    with pytest.raises(InvalidInputError, match="no controls of the new site"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            chart4.adapt(old)


# -- labels ----------------------------------------------------------------------------------------
def test_numeric_site_codes_survive_a_float_column_and_spaces() -> None:
    table = normal_cohort(800, 21)
    table["site_scanner"] = table["site_scanner"].str[1].astype(int)  # sites 1..4
    chart = quiet_fit(table)
    assert chart.sites_ == ["1", "2", "3", "4"]
    people = table.iloc[:20].copy()
    as_float = people.assign(site_scanner=people["site_scanner"].astype(float))  # "1.0"
    spaced = people.assign(site_scanner=people["site_scanner"].astype(str) + " ")
    expected = chart.score(people)
    for variant in (as_float, spaced):
        got = chart.score(variant)
        assert got["flag"].eq("").all()
        np.testing.assert_allclose(got["ei_ratio_mean_z"], expected["ei_ratio_mean_z"])


def test_an_unseen_site_that_differs_in_case_is_named(chart4) -> None:
    people = normal_cohort(5, 1).assign(site_scanner="s1")
    with pytest.warns(InputWarning, match="s1 may be S1"):
        scores = chart4.score(people)
    assert scores["flag"].eq("unseen_site").all()


def test_a_single_site_chart_flags_people_from_other_sites() -> None:
    table = normal_cohort(600, 4, sites={"ONLY": 0.0})
    chart = quiet_fit(table)
    assert not chart.site_effects_ and chart.sites_ == ["ONLY"]
    people = table.iloc[:4].assign(site_scanner=["ONLY", "ONLY", "ELSEWHERE", "ELSEWHERE"])
    with pytest.warns(InputWarning, match="fitted on one site"):
        scores = chart.score(people)
    assert scores["flag"].tolist() == ["", "", "unseen_site", "unseen_site"]


def test_numbers_in_the_sex_column_are_refused_everywhere() -> None:
    table = normal_cohort(300, 8)
    coded = table.assign(sex=(table["sex"] == "female").astype(int))
    with pytest.raises(InvalidInputError, match="numeric code"):
        GrowthChart().fit(coded)
    with pytest.raises(InvalidInputError, match="numeric code"):
        sex_difference_tests(coded, targets="ei_ratio_mean", site=None)
    # the explicit column is read as documented, and must agree with the labels
    explicit = table.assign(numeric_sex=(table["sex"] == "female").astype(int)).drop(columns="sex")
    a = quiet_fit(table, family="NO")
    b = quiet_fit(explicit, family="NO")
    np.testing.assert_allclose(a.coef_["mu"], b.coef_["mu"])
    wrong = table.assign(numeric_sex=(table["sex"] == "male").astype(int))
    with pytest.raises(InvalidInputError, match="disagree"):
        sex_difference_tests(wrong, targets="ei_ratio_mean", site=None)


def test_sex_confounded_with_site_is_refused_by_the_tests_and_warned_by_the_chart() -> None:
    table = normal_cohort(400, 12, sites={"SF": 0.0, "SM": 0.0})
    table["sex"] = np.where(table["site_scanner"] == "SF", "female", "male")
    with pytest.raises(InvalidInputError, match="confounded with site"):
        sex_difference_tests(table, targets="ei_ratio_mean", site="site_scanner")
    with pytest.warns(InputWarning, match="confounded with site"):
        GrowthChart(family="NO").fit(table)


# -- saved charts ----------------------------------------------------------------------------------
def test_an_edited_chart_json_is_refused(chart4, tmp_path) -> None:
    chart4.save(tmp_path / "c")
    path = tmp_path / "c" / "chart.json"
    original = path.read_text()
    edits = {
        "sites": lambda m: m.update(sites=m["sites"][::-1]),
        "chart_range": lambda m: m.update(chart_range=[0.0, 120.0]),
    }
    for edit in edits.values():
        meta = json.loads(original)
        edit(meta)
        path.write_text(json.dumps(meta))
        with pytest.raises(InvalidInputError, match="edited"):
            GrowthChart.load(tmp_path / "c")
    meta = json.loads(original)
    meta["format_version"] = 99
    path.write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="upgrade delssome_norms"):
        GrowthChart.load(tmp_path / "c")
    path.write_text(original)
    assert GrowthChart.load(tmp_path / "c").sites_ == chart4.sites_


# -- statistics and small API points ---------------------------------------------------------------
def test_sex_gap_bands_do_not_depend_on_the_batch_size() -> None:
    table = normal_cohort(300, 14)
    kw = {"n_boot": 20, "ages": np.arange(20.0, 71.0, 25.0), "seed": 3}
    a = sex_gap(table, "ei_ratio_mean", batch_size=7, **kw)
    b = sex_gap(table, "ei_ratio_mean", batch_size=20, **kw)
    pd.testing.assert_frame_equal(a, b)


def test_one_target_name_is_not_split_into_characters(chart4) -> None:
    people = normal_cohort(300, 31)
    scores = chart4.score(people, targets="ei_ratio_mean")
    assert "ei_ratio_mean_z" in scores
    summary = calibration_summary(chart4, people, targets="ei_ratio_mean")
    assert summary["target"].tolist() == ["ei_ratio_mean"]
    # z of people drawn from the chart's own model are about standard normal
    assert abs(summary.loc[0, "z_mean"]) < 0.2 and 0.85 < summary.loc[0, "z_sd"] < 1.15
    with pytest.raises(InvalidInputError, match="numeric sex code"):
        chart4.centiles([40.0], 1.0)  # 1 is female here but male in other coding schemes
    c = chart4.centiles([40.0], "F")
    assert c["sex"].tolist() == ["female"]
    p = chart4.predict_parameters([40.0, 41.0], "female", site="S1")
    assert p["mu"].shape == (2, 1)


def test_calibration_with_only_unseen_sites_is_an_error(chart4) -> None:
    people = normal_cohort(30, 2).assign(site_scanner="ELSEWHERE")
    with pytest.raises(InvalidInputError, match="no held-out person"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            calibration_summary(chart4, people)


def test_semicolon_tables_are_named(tmp_path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("subject_id;age_in_years;sex\ns1;30,5;F\n")
    with pytest.raises(InvalidInputError, match="semicolons"):
        read_table(path)


def test_region_group_means_need_every_region() -> None:
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {"age_in_years": rng.uniform(10, 80, 20), "sex": ["female", "male"] * 10}
        | {f"ei_ratio_roi_{i}": rng.uniform(1, 2, 20) for i in range(68)}
    )
    assert len(region_group_scores(table)) == 20
    with pytest.raises(InvalidInputError, match="1 of the 68 regional columns are missing"):
        region_group_scores(table.drop(columns="ei_ratio_roi_5"))


# -- second review: families, saved options, older charts, model choice ---------------------------
def test_a_generalised_gamma_chart_is_trusted_and_its_tails_exact() -> None:
    from delssome_norms.norms.distributions import get_family

    gg = get_family("GG")
    mu, sigma, nu = 1.0, 0.4, -2.0
    theta = 1.0 / (sigma * nu) ** 2
    y = np.array([0.12, 0.3, 0.6, 1.0, 2.5, 40.0])
    # independent: for nu < 0, F(y) = P(Gamma(theta) >= theta (y / mu)^nu)
    x = theta * (y / mu) ** nu
    lower, upper = stats.gamma(theta).sf(x), stats.gamma(theta).cdf(x)  # F(y), 1 - F(y)
    expected = np.where(lower < 0.5, stats.norm.ppf(lower), stats.norm.isf(upper))
    got = gg.zscore(y, np.full(6, mu), np.full(6, sigma), np.full(6, nu))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert got[0] < -14  # 1 - P(upper) rounded to 0 here: the old z was the clip at -37
    rng = np.random.default_rng(0)
    table = normal_cohort(3000, 1)
    n = len(table)
    table["ei_ratio_mean"] = gg.ppf(
        rng.uniform(size=n), np.full(n, mu), np.full(n, sigma), np.full(n, nu)
    )
    chart = quiet_fit(table, family="GG", mu_df=3, sigma_df=3, random_sites=())
    assert chart.reliable_.all() and chart.tail_z_[0] < 5


def test_numpy_options_save_and_older_site_labels_load(tmp_path) -> None:
    table = normal_cohort(600, 6)
    table["site_scanner"] = table["site_scanner"].str[1].astype(int)
    chart = quiet_fit(table, family="NO", mu_df=np.int64(4), mu_sex=np.bool_(True))
    chart.save(tmp_path / "c")
    assert GrowthChart.load(tmp_path / "c").mu_df == 4
    # a chart written before site labels were normalised stored a float column's 1 as "1.0"
    meta = json.loads((tmp_path / "c" / "chart.json").read_text())
    meta["sites"] = [f"{s}.0" for s in meta["sites"]]
    del meta["content_sha256"]
    (tmp_path / "c" / "chart.json").write_text(json.dumps(meta))
    old = GrowthChart.load(tmp_path / "c")
    assert old.sites_ == ["1", "2", "3", "4"]
    assert old.score(table.iloc[:10])["flag"].eq("").all()


def test_model_choice_never_picks_a_degenerate_chart() -> None:
    from delssome_norms.norms.selection import best_models, compare_models

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = compare_models(normal_cohort(80, 15), families=("SHASHo2", "NO"), mu_dfs=(4,))
    shash = table[table["family"] == "SHASHo2"].iloc[0]
    assert not shash["reliable"] and shash["delta_bic"] < 0  # the lowest BIC, and degenerate
    best = best_models(table)
    assert best["family"].tolist() == ["NO"] and bool(table.loc[table["best"], "reliable"].all())
