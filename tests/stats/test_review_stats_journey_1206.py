"""A researcher's journey through the cohort statistics: realistic mistakes in the cohort table.

Each mistake must either give a correct result or one clear error, never a silently wrong or
all-NaN table.
"""

from __future__ import annotations

import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.stats import (
    region_group_scores,
    region_group_summary,
    region_group_trajectories,
    sex_difference_tests,
    sex_gap,
)

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def cohort(make_cohort) -> pd.DataFrame:
    """1200 simulated people, 68 regions, sensory +0.08, women +0.02."""
    return make_cohort(n=1200, n_rois=68, sensory_offset=0.08, mean_gap=0.02, seed=7)


def _few_women(cohort: pd.DataFrame, n_female: int, n_male: int, seed: int) -> pd.DataFrame:
    women = cohort[cohort["sex"] == "female"].sample(n_female, random_state=seed)
    men = cohort[cohort["sex"] == "male"].sample(n_male, random_state=seed)
    return pd.concat([women, men]).reset_index(drop=True)


# ----------------------------------------------------------------------------- duplicate people
@pytest.mark.parametrize(
    "call",
    [
        lambda t: sex_difference_tests(t, "ei_ratio_mean"),
        lambda t: sex_gap(t, n_boot=0),
        lambda t: region_group_scores(t),
        lambda t: region_group_summary(t),
        lambda t: region_group_trajectories(t),
    ],
    ids=["sex_difference_tests", "sex_gap", "region_group_scores", "summary", "trajectories"],
)
def test_a_person_listed_twice_is_refused(cohort, call):
    """The same subject_id twice (a row pasted twice, or two visits of one person) would count one
    person twice and shrink the p-values; the growth charts refuse it, and so must the statistics
    (they accepted it silently)."""
    table = pd.concat([cohort.iloc[:300], cohort.iloc[[5, 17]]]).reset_index(drop=True)
    with pytest.raises(InvalidInputError, match=r"subject_id listed more than once: sub-00005"):
        call(table)


def test_duplicates_are_found_after_trimming_and_missing_ids_are_not_duplicates(cohort):
    """Ids are compared as text without surrounding spaces; missing ids, or no subject_id column
    at all, are unknown people, not repeats."""
    table = cohort.iloc[:300].copy()
    table.loc[table.index[1], "subject_id"] = table["subject_id"].iloc[0] + " "
    with pytest.raises(InvalidInputError, match=r"sub-00000 \(1 id\)"):
        sex_difference_tests(table, "ei_ratio_mean")
    table = cohort.iloc[:300].copy()
    table.loc[table.index[:2], "subject_id"] = np.nan  # unknown ids are not the same person
    res = sex_difference_tests(table, "ei_ratio_mean")
    assert res["n_female"].iloc[0] + res["n_male"].iloc[0] == 300
    res = sex_difference_tests(table.drop(columns="subject_id"), "ei_ratio_mean")
    assert res["n_female"].iloc[0] + res["n_male"].iloc[0] == 300


# ----------------------------------------------------------------------------- too few of one sex
def test_sex_gap_refuses_a_fit_that_does_not_converge(cohort):
    """10 women among 200 men: the women's own age curves (5 mean and 4 log-sd parameters) do not
    converge. sex_gap returned a table of NaN gaps with overflow warnings; now one clear error
    naming the counts and the ways out."""
    table = _few_women(cohort, 10, 200, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no stray overflow or convergence warnings either
        with pytest.raises(InvalidInputError, match=r"did not converge.*10 female and 200 male"):
            sex_gap(table, site=None, n_boot=0)
    # the refusal is for fits that fail, not for small cohorts: 400 people give a finite gap
    # whose average lies near the built-in +0.02
    gap = sex_gap(cohort.iloc[:400], site=None, n_boot=0)
    assert np.isfinite(gap["gap"]).all()
    assert abs(gap["gap"].mean() - 0.02) < 0.03


@pytest.mark.parametrize("n", [15, 20])
def test_region_group_trajectories_refuse_a_fit_that_does_not_converge(cohort, n):
    """A cohort of 15-20 people cannot carry sex-specific df-5 curves: the fit did not converge and
    the curves came back NaN (plotted as an empty figure) with only a generic warning."""
    table = cohort.sample(n, random_state=0).reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=".*taken to be the DK68 regions")  # unnamed
        with pytest.raises(InvalidInputError, match=r"did not converge.*df"):
            region_group_trajectories(table, site=None)
    from delssome_norms.plotting import plot_ei_vs_age_by_group

    with pytest.raises(InvalidInputError, match="did not converge"):
        plot_ei_vs_age_by_group(table, site=None)


def test_sex_gap_reports_its_resamples_as_it_goes(cohort):
    """``progress`` hears every batch of resamples (the CLI's bar) and changes no number."""
    sample = cohort.sample(400, random_state=3)
    heard = []
    with_bar = sex_gap(sample, n_boot=7, batch_size=3, seed=5, progress=heard.append)
    assert heard == [3, 3, 1]
    pd.testing.assert_frame_equal(with_bar, sex_gap(sample, n_boot=7, batch_size=3, seed=5))
