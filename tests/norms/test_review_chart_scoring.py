"""A clinical user's path through the shipped chart: adapt to a new site, score, save, reload.

Numbers are checked against independent expectations: draws made from the chart's own
distribution (with a known site offset) must come back as uniform centiles, the offset must be
recovered, and harmonised values must equal the same draws on the population chart.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.norms import GrowthChart, load_reference_chart

MU_OFFSET = 0.08
LOG_SIGMA_OFFSET = 0.15


@pytest.fixture(scope="module")
def chart() -> GrowthChart:
    return load_reference_chart()


def _site_people(chart, n, seed, site="NewSite", mu_off=MU_OFFSET, lsig_off=LOG_SIGMA_OFFSET):
    """People of a new site drawn from the chart with known offsets; also the uniforms and the
    population parameters, to compute the independent harmonised values."""
    rng = np.random.default_rng(seed)
    ages = rng.uniform(10.0, 80.0, n)
    female = rng.integers(0, 2, n)
    pop = chart.predict_parameters(ages, female)
    theta = [pop[p] for p in chart.family_.params]
    site_theta = [theta[0] + mu_off, theta[1] * np.exp(lsig_off), *theta[2:]]
    u = rng.uniform(size=(n, len(chart.targets_)))
    table = pd.DataFrame(chart.family_.ppf(u, *site_theta), columns=chart.targets_)
    table.insert(0, "subject_id", [f"{site}-{seed}-{i}" for i in range(n)])
    table.insert(1, "age_in_years", ages)
    table.insert(2, "numeric_sex", female)
    table.insert(3, "site_scanner", site)
    return table, u, theta


def test_person_at_population_median_has_z_0_and_centile_50(chart) -> None:
    ages = np.array([4.0, 20.0, 55.5, 99.0])  # both ends of the chart's range included
    table = pd.DataFrame(
        {"subject_id": list("abcd"), "age_in_years": ages, "sex": ["f", "M", "Female", "male"]}
    )
    params = chart.predict_parameters(ages, [1, 0, 1, 0])
    median = chart.family_.ppf(0.5, *[params[p] for p in chart.family_.params])
    table[chart.targets_] = median
    with pytest.warns(InputWarning, match="unseen_site"):
        scores = chart.score(table, layout="long")
    np.testing.assert_allclose(scores["z"], 0.0, atol=1e-9)
    np.testing.assert_allclose(scores["centile"], 0.5, atol=1e-9)
    np.testing.assert_allclose(scores["harmonised"], median.ravel(), rtol=1e-12)


def test_adapting_recovers_site_offset_and_harmonises_it_away(chart) -> None:
    controls, _, _ = _site_people(chart, 200, seed=1)
    new = chart.adapt(controls)
    # ML offsets over 69 targets of 200 controls each: their means are close to the truth
    assert new.site_effects_["mu"][:, -1].mean() == pytest.approx(MU_OFFSET, abs=0.015)
    assert new.site_effects_["sigma"][:, -1].mean() == pytest.approx(LOG_SIGMA_OFFSET, abs=0.04)
    people, u, theta = _site_people(chart, 150, seed=2)
    scores = new.score(people, layout="long")
    assert (scores["flag"] == "").all()
    centile = scores["centile"].to_numpy()
    assert stats.kstest(centile, "uniform").pvalue > 0.01
    z = scores["z"].to_numpy()
    assert abs(z.mean()) < 0.05 and abs(z.std() - 1.0) < 0.05
    # without adapting, the same people sit too high (their site's mu offset)
    with pytest.warns(InputWarning, match="unseen_site"):
        assert chart.score(people, layout="long")["z"].mean() > 0.2
    # harmonised = the same draw on the population (site-free) chart
    expected = chart.family_.ppf(u, *theta)
    sigma = theta[1]
    err = np.abs(scores["harmonised"].to_numpy().reshape(expected.shape) - expected) / sigma
    assert np.median(err) < 0.2


def test_adapted_chart_round_trips_through_save_and_load(chart, tmp_path) -> None:
    controls, _, _ = _site_people(chart, 40, seed=3)
    new = chart.adapt(controls)
    new.save(tmp_path / "adapted")
    back = GrowthChart.load(tmp_path / "adapted")
    assert back.sites_ == new.sites_
    assert back.adapted_sites_ == {"NewSite": {"n_controls": 40, "method": "ml"}}
    people, _, _ = _site_people(chart, 10, seed=4)
    a = new.score(people).filter(like="_z").to_numpy()
    b = back.score(people).filter(like="_z").to_numpy()
    np.testing.assert_array_equal(a, b)


def test_adapt_refuses_a_person_listed_twice(chart) -> None:
    controls, _, _ = _site_people(chart, 30, seed=5)
    with pytest.raises(InvalidInputError, match="subject_id listed more than once"):
        chart.adapt(pd.concat([controls, controls.iloc[:5]], ignore_index=True))


def test_adapt_leaves_out_patients_of_a_kind_column(chart) -> None:
    controls, _, _ = _site_people(chart, 30, seed=6)
    patients, _, _ = _site_people(chart, 15, seed=7, mu_off=1.0)  # far above the site's norm
    mixed = pd.concat(
        [controls.assign(kind="control"), patients.assign(kind="patient")], ignore_index=True
    )
    with pytest.warns(InputWarning, match="15 row\\(s\\) whose kind is not 'control'"):
        adapted = chart.adapt(mixed)
    reference = chart.adapt(controls)
    np.testing.assert_allclose(
        adapted.site_effects_["mu"][:, -1], reference.site_effects_["mu"][:, -1], atol=1e-10
    )
    assert adapted.adapted_sites_["NewSite"]["n_controls"] == 30
    with pytest.raises(InvalidInputError, match="only patients cannot be adapted"):
        chart.adapt(patients.assign(kind="patient"))


def test_adapt_ml_refuses_a_target_with_few_values(chart) -> None:
    controls, _, _ = _site_people(chart, 30, seed=8)
    sparse = controls.copy()
    sparse.loc[3:, "ei_ratio_roi_5"] = np.nan  # 3 values left of 30
    with pytest.raises(InvalidInputError, match=r"ei_ratio_roi_5 at NewSite \(3\)"):
        chart.adapt(sparse)
    empty = controls.assign(ei_ratio_roi_5=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no "Mean of empty slice" leaks out
        with pytest.warns(InputWarning, match="no control value for ei_ratio_roi_5"):
            new = chart.adapt(empty, method="map")
    j = chart.targets_.index("ei_ratio_roi_5")
    assert new.site_effects_["mu"][j, -1] == 0.0


def test_score_warns_when_region_columns_are_renamed(chart) -> None:
    people, _, _ = _site_people(chart, 5, seed=9, site="SiteA_Siemens")
    renamed = people.rename(columns={f"ei_ratio_roi_{k}": f"roi{k}" for k in range(68)})
    with pytest.warns(InputWarning, match="none of the chart's 68 regional columns"):
        scores = chart.score(renamed)
    assert [c for c in scores.columns if c.endswith("_z")] == ["ei_ratio_mean_z"]


@pytest.fixture()
def saved(chart, tmp_path) -> Path:
    return chart.save(tmp_path / "chart")


def _strip_checksums(folder: Path) -> dict:
    meta = json.loads((folder / "chart.json").read_text())
    meta.pop("arrays_sha256")
    meta.pop("content_sha256")
    (folder / "chart.json").write_text(json.dumps(meta))
    return meta


def test_damaged_arrays_never_suggest_unpickling(saved) -> None:
    _strip_checksums(saved)  # an older chart without checksums
    (saved / "arrays.npz").write_bytes(b"not an archive")
    with pytest.raises(InvalidInputError, match=r"arrays\.npz: cannot be read") as err:
        GrowthChart.load(saved)
    assert "pickle" not in str(err.value)


def test_load_given_chart_json_names_the_folder(saved) -> None:
    with pytest.raises(InvalidInputError, match="is a file; give the chart folder") as err:
        GrowthChart.load(saved / "chart.json")
    assert f"({saved})" in str(err.value)


def test_malformed_adapted_sites_is_one_clear_error(saved) -> None:
    meta = _strip_checksums(saved)
    meta["adapted_sites"] = ["NewSite"]
    (saved / "chart.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="incomplete or inconsistent chart"):
        GrowthChart.load(saved)


def test_save_onto_a_file_is_refused(chart, tmp_path) -> None:
    target = tmp_path / "chart"
    target.write_text("x")
    with pytest.raises(InvalidInputError, match="exists and is a file"):
        chart.save(target)


def test_cli_refuses_a_chart_folder_named_reference(chart, tmp_path, monkeypatch) -> None:
    controls, _, _ = _site_people(chart, 30, seed=10)
    controls.to_csv(tmp_path / "controls.csv", index=False)
    monkeypatch.chdir(tmp_path)
    argv = ["charts", "adapt", "--chart", "reference", "--controls", "controls.csv"]
    assert main([*argv, "--out", "reference"]) == 2
    assert main([*argv, "--out", str(tmp_path / "reference")]) == 2  # the same folder, absolute
    assert main([*argv, "--out", "x/../reference"]) == 2
    assert not (tmp_path / "reference").exists()
    assert main([*argv, "--out", "adapted"]) == 0
    shutil.rmtree(tmp_path / "adapted")


def test_calibration_summary_scores_once_and_is_calibrated_on_own_draws(chart) -> None:
    from delssome_norms.norms.calibration import calibration_summary

    held, _, _ = _site_people(chart, 400, seed=11, site="SiteA_Siemens", mu_off=0.0, lsig_off=0.0)
    params = chart.predict_parameters(held["age_in_years"], held["numeric_sex"], site="SiteA_Siemens")
    rng = np.random.default_rng(12)
    u = rng.uniform(size=(len(held), len(chart.targets_)))
    held[chart.targets_] = chart.family_.ppf(u, *[params[p] for p in chart.family_.params])
    held.loc[0, "age_in_years"] = 2.0  # outside the chart: left out, warned about once
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = calibration_summary(chart, held, targets=["ei_ratio_mean"])
    assert sum("outside the chart's range" in str(w.message) for w in caught) == 1
    row = summary.iloc[0]
    assert row["n"] == 399
    assert abs(row["z_mean"]) < 0.15 and abs(row["z_sd"] - 1.0) < 0.1
    assert row["max_error_pp"] < 7.0  # 399 people: binomial sd of a fraction <= 2.5 pp
