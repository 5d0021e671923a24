"""Growth-chart likelihood-ratio tests of sex, cross-checked against the location-scale tests."""

from __future__ import annotations

import numpy as np
import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.stats import chart_sex_tests, sex_difference_tests

pytest.importorskip("delssome_norms.norms")


@pytest.fixture(scope="module")
def cohort(make_cohort):
    return make_cohort(n=1500, n_rois=2, mean_gap=0.03, sigma_ratio=1.25, seed=31)


def test_normal_chart_agrees_with_location_scale_model(cohort):
    # With the normal family the chart is the location-scale model with random instead of fixed
    # site effects: the two LR statistics and effects must nearly agree.
    chart = chart_sex_tests(cohort, family="NO").set_index(["target", "test"])
    ls = sex_difference_tests(cohort).set_index(["target", "test"])
    for target in ("ei_ratio_roi_0", "ei_ratio_roi_1", "ei_ratio_mean"):
        for param in ("mu", "sigma"):
            c, r = chart.loc[(target, f"{param}_chart_lr")], ls.loc[(target, f"{param}_lr")]
            assert c["statistic"] == pytest.approx(r["statistic"], rel=0.25)
            assert c["effect"] == pytest.approx(r["effect"], abs=0.006 if param == "mu" else 0.03)
            assert c["significant"] and c["direction"] == "female > male"
            assert c["converged"] and 0.8 < c["edf_difference"] < 1.5


def test_shasho2_chart_detects_the_effects_and_tables_are_tidy(cohort):
    res = chart_sex_tests(cohort, targets=["ei_ratio_roi_0"])
    assert list(res["test"]) == ["mu_chart_lr", "sigma_chart_lr"]
    assert res["significant"].all()
    assert res["model"].eq("growth_chart_SHASHo2").all()
    assert res.loc[1, "effect"] == pytest.approx(1.25, abs=0.12)
    assert np.isnan(res["ci_low"]).all()


def test_chart_tests_validate_input(cohort):
    with pytest.raises(InvalidInputError, match="missing site column"):
        chart_sex_tests(cohort.drop(columns="site"))
