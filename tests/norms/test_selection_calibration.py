"""BIC table, calibration diagnostics and the pygam cross-check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from delssome_norms.norms import GrowthChart
from delssome_norms.norms.calibration import calibration_summary, calibration_table, qq_points
from delssome_norms.norms.crosscheck import crosscheck_summary, quantile_crosscheck
from delssome_norms.norms.selection import best_models, compare_models


def test_bic_table_prefers_the_generating_family(train_table) -> None:
    small = train_table.iloc[:3000]
    table = compare_models(
        small, families=("SHASHo2", "NO", "GG"), mu_dfs=(3, 4), targets=["ei_ratio_mean"]
    )
    assert len(table) == 6
    assert set(table["family"]) == {"SHASHo2", "NO", "GG"}
    row = table[(table["family"] == "NO") & (table["mu_df"] == 4)].iloc[0]
    assert row["bic"] == pytest.approx(-2 * row["loglik"] + np.log(row["n_obs"]) * row["edf"])
    assert table["delta_bic"].min() == 0.0 and table["best"].sum() == 1
    best = best_models(table)
    # data are skewed SHASHo2 with a df-4 curve: the normal family must lose
    assert best["family"].iloc[0] == "SHASHo2"
    assert table.loc[table["family"] == "NO", "delta_bic"].min() > 10


def test_bic_table_records_families_that_do_not_apply(train_table) -> None:
    data = train_table.iloc[:800].assign(ei_ratio_mean=lambda t: t["ei_ratio_mean"] - 5.0)
    table = compare_models(data, families=("GG", "NO"), mu_dfs=(3,), targets=["ei_ratio_mean"])
    gg = table[table["family"] == "GG"].iloc[0]
    assert np.isnan(gg["bic"]) and "positive" in gg["note"]
    assert bool(table[table["family"] == "NO"]["best"].iloc[0])


def test_calibration_of_a_misspecified_chart_is_visible(train_table, heldout_table, fitted) -> None:
    good = calibration_summary(fitted, heldout_table, targets=["ei_ratio_mean"]).iloc[0]
    bad_chart = GrowthChart("NO", mu_df=3).fit(train_table, targets=["ei_ratio_mean"])
    bad = calibration_summary(bad_chart, heldout_table).iloc[0]
    assert good["mace_pp"] < 0.6 and good["max_error_pp"] < 1.5
    assert bad["mace_pp"] > good["mace_pp"]
    assert bad["shapiro_p"] < good["shapiro_p"]
    assert good["z_mean"] == pytest.approx(0.0, abs=0.05)
    assert good["z_sd"] == pytest.approx(1.0, abs=0.05)


def test_calibration_table_counts_by_hand(fitted, heldout_table) -> None:
    cal = calibration_table(fitted, heldout_table, q=[10, 50], targets=["ei_ratio_roi_1"])
    scores = fitted.score(heldout_table, targets=["ei_ratio_roi_1"])["ei_ratio_roi_1_centile"]
    assert cal["empirical"].tolist() == pytest.approx([np.mean(scores < 0.1), np.mean(scores < 0.5)])
    assert cal["error_pp"].iloc[0] == pytest.approx(100 * (np.mean(scores < 0.1) - 0.1))


def test_qq_points_and_shapiro_against_scipy() -> None:
    z = np.random.default_rng(0).standard_normal(1000)
    qq = qq_points(z, n_points=None)
    np.testing.assert_allclose(qq["sample"], np.sort(z))
    np.testing.assert_allclose(qq["theoretical"], special.ndtri((np.arange(1, 1001) - 0.5) / 1000))
    assert len(qq_points(z, n_points=50)) == 50
    assert stats.shapiro(z).pvalue > 0.01


def test_quantile_gam_crosscheck_separates_right_and_wrong_charts(fitted, train_table) -> None:
    sub = train_table.iloc[:1500]
    right = quantile_crosscheck(fitted, sub, "ei_ratio_mean", q=[5, 95], step=2.0, sexes=("female",))
    assert set(right.columns) >= {"parametric", "nonparametric", "difference", "difference_z"}
    np.testing.assert_allclose(right["difference"], right["nonparametric"] - right["parametric"])
    wrong_chart = GrowthChart("NO", mu_df=3, sigma_df=None).fit(sub, targets=["ei_ratio_mean"])
    wrong = quantile_crosscheck(
        wrong_chart, sub, "ei_ratio_mean", q=[5, 95], step=2.0, sexes=("female",)
    )

    def inner_error(cc):
        mid = cc[(cc["age_in_years"] > 15) & (cc["age_in_years"] < 85)]
        return mid["difference_z"].abs().mean()

    assert inner_error(right) < 0.15
    assert inner_error(wrong) > inner_error(right)
    summary = crosscheck_summary(right)
    assert len(summary) == 2
    assert isinstance(summary, pd.DataFrame)
