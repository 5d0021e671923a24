"""Sensory vs association summaries on cohorts with a known sensory offset."""

from __future__ import annotations

import numpy as np
import pytest

from delssome_norms.datasets import region_classes
from delssome_norms.errors import InvalidInputError
from delssome_norms.stats import region_group_scores, region_group_summary, region_group_trajectories


@pytest.fixture(scope="module")
def cohort68(make_cohort):
    return make_cohort(n=1500, n_rois=68, sensory_offset=0.08, mean_gap=0.02, seed=7)


def test_scores_are_the_class_means(cohort68):
    scores = region_group_scores(cohort68)
    sensory = np.flatnonzero(region_classes() == "sensory")
    cols = [f"ei_ratio_roi_{i}" for i in sensory]
    np.testing.assert_allclose(scores["sensory"], cohort68[cols].mean(axis=1))
    assert len(sensory) == 18
    np.testing.assert_allclose(scores["difference"], scores["sensory"] - scores["association"])
    assert list(scores.columns[:4]) == ["subject_id", "age_in_years", "sex", "site"]


def test_summary_finds_sensory_above_association_in_every_bin(cohort68):
    summary = region_group_summary(cohort68)
    diff = summary[summary["group"] == "difference"]
    assert set(diff["sex"]) == {"all", "female", "male"}
    assert diff["significant"].all()
    # The true within-person difference is 0.08 in every bin.
    assert np.all(np.abs(diff.loc[diff["sex"] == "all", "mean"] - 0.08) < 0.01)
    everyone = summary[summary["sex"] == "all"]
    assert everyone.groupby("group")["n"].sum().loc["sensory"] == len(cohort68)
    assert set(everyone["age_bin"]) >= {"[0, 10)", "[90, 120)"}


def test_trajectories_follow_the_simulated_curves(cohort68):
    curves = region_group_trajectories(cohort68, ages=np.array([10.0, 50.0, 90.0]))
    assert len(curves) == 2 * 2 * 3
    wide = curves.pivot_table(index=["sex", "age_in_years"], columns="group", values="mean")
    assert (wide["sensory"] - wide["association"]).between(0.06, 0.10).all()
    fem = curves[curves["sex"] == "female"].set_index(["group", "age_in_years"])["mean"]
    male = curves[curves["sex"] == "male"].set_index(["group", "age_in_years"])["mean"]
    assert (fem - male).between(0.0, 0.04).all()
    assert (curves["ci_low"] < curves["mean"]).all() and (curves["mean"] < curves["ci_high"]).all()


def test_region_groups_need_both_classes(make_cohort):
    table = make_cohort(n=100, n_rois=3)  # rois 0-2 are all association regions
    with pytest.raises(InvalidInputError, match="sensory"):
        region_group_scores(table)
    with pytest.raises(InvalidInputError, match="increasing"):
        region_group_summary(make_cohort(n=100, n_rois=68), age_bins=[10, 5])
