"""People whose E/I fit is flagged (``collect``'s ``fit_flagged``) in the Python API.

``GrowthChart.fit`` and the statistics (``sex_difference_tests``, ``chart_sex_tests``,
``sex_gap``, ``region_group_scores``/``_summary``/``_trajectories``) read a table from
``pd.read_csv("cohort_ei.csv")`` as the CLI reads it: flagged people are named in one warning
(count and the ``exclude_flagged=True`` keyword), or, with ``exclude_flagged=True``, left out, which
gives exactly the results on the table without them. A CLI run warns once, not once per layer.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import stats
from delssome_norms.cli.main import main
from delssome_norms.datasets import load_reference_table
from delssome_norms.errors import InvalidInputError
from delssome_norms.norms import GrowthChart

N, FLAGGED = 400, [2, 17, 40, 41, 99, 150, 222, 301, 333, 350, 371, 398]
"""People in the test cohort, and the rows whose fit is flagged (12: more than the 10 named)."""
CHART = {"family": "NO", "mu_df": 3, "sigma_df": 3, "random_sites": ()}
"""A small chart: quick to fit, and not told apart from the data by site terms."""


@pytest.fixture(scope="module")
def csv_path(tmp_path_factory) -> Path:
    """400 reference people whose flagged fits gave E/I far off (+2), written as collect does."""
    table = load_reference_table().sample(n=N, random_state=5).reset_index(drop=True)
    table["fit_flagged"] = False
    table["fit_flag_reasons"] = ""
    table.loc[FLAGGED, "fit_flagged"] = True
    table.loc[FLAGGED, "fit_flag_reasons"] = "cost_above_floor"
    table.loc[FLAGGED, ["ei_ratio_mean", "ei_ratio_roi_0"]] += 2.0  # a poor fit's E/I
    path = tmp_path_factory.mktemp("flagged") / "cohort_ei.csv"
    table.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def table(csv_path) -> pd.DataFrame:
    """The table as a user reads it: fit_flagged is CSV text read back, reasons NaN where empty."""
    return pd.read_csv(csv_path)


@pytest.fixture(scope="module")
def clean(table) -> pd.DataFrame:
    """The independent expectation: the same table with the flagged rows removed by hand."""
    keep = ~table.index.isin(FLAGGED)
    return table.loc[keep].drop(columns=["fit_flagged"]).reset_index(drop=True)


def _flag_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "flagged" in str(w.message).lower()]


def _call(func, *args, **kwargs):
    """Run ``func`` with every warning recorded; its result and the flag warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    return out, _flag_warnings(caught)


def _kept_warning(messages: list[str]) -> str:
    assert len(messages) == 1, messages
    text = messages[0]
    assert f"{len(FLAGGED)} of {N} people have a flagged E/I fit" in text
    assert "exclude_flagged=True" in text  # the keyword that leaves them out
    return text


# -------------------------------------------------------------------------- GrowthChart.fit
def test_chart_fit_names_the_flagged_people_and_keeps_them(table, clean) -> None:
    chart, messages = _call(GrowthChart(**CHART).fit, table, targets=["ei_ratio_mean"])
    text = _kept_warning(messages)
    first = table.loc[FLAGGED[0], "subject_id"]
    assert f"{first} (" in text and "(and 2 more)" in text  # 10 named, the rest counted
    assert chart.n_obs_.tolist() == [N]


def test_chart_fit_exclude_flagged_is_the_fit_without_them(table, clean) -> None:
    chart, messages = _call(
        GrowthChart(**CHART).fit, table, targets=["ei_ratio_mean"], exclude_flagged=True
    )
    assert len(messages) == 1 and f"left out {len(FLAGGED)} of {N} people" in messages[0]
    assert "exclude_flagged=True" in messages[0]
    expected = GrowthChart(**CHART).fit(clean, targets=["ei_ratio_mean"])
    assert chart.n_obs_.tolist() == [N - len(FLAGGED)]
    for param in ("mu", "sigma"):
        np.testing.assert_allclose(chart.coef_[param], expected.coef_[param], rtol=1e-8, atol=1e-10)
    # the poor fits' E/I (+2) pulls the kept chart's median up; the left-out one's is not
    kept, _ = _call(GrowthChart(**CHART).fit, table, targets=["ei_ratio_mean"])
    c50 = {
        "kept": kept.population_centiles("male")["ei_ratio_mean"]["C50"].to_numpy(),
        "left": chart.population_centiles("male")["ei_ratio_mean"]["C50"].to_numpy(),
    }
    assert np.mean(c50["kept"] - c50["left"]) > 0.03


def test_exclude_flagged_needs_the_column_and_someone_left(table) -> None:
    bare = table.drop(columns=["fit_flagged"])
    with pytest.raises(InvalidInputError, match=r"exclude_flagged=True needs the fit_flagged"):
        GrowthChart(**CHART).fit(bare, targets=["ei_ratio_mean"], exclude_flagged=True)
    with pytest.raises(InvalidInputError, match="exclude_flagged=True needs the fit_flagged"):
        stats.sex_difference_tests(bare, ["ei_ratio_mean"], site=None, exclude_flagged=True)
    _, messages = _call(GrowthChart(**CHART).fit, bare, targets=["ei_ratio_mean"])
    assert messages == []  # no column, no verdicts: nothing to say
    every = table.assign(fit_flagged=True)
    with pytest.raises(InvalidInputError, match=f"every person's E/I fit is flagged \\({N} people"):
        GrowthChart(**CHART).fit(every, targets=["ei_ratio_mean"], exclude_flagged=True)


# -------------------------------------------------------------------------- statistics
def test_sex_difference_tests_and_gap(table, clean) -> None:
    args = {"site": None, "scale_site": False}
    tests, messages = _call(stats.sex_difference_tests, table, ["ei_ratio_mean"], **args)
    _kept_warning(messages)
    assert tests["n_female"].iloc[0] + tests["n_male"].iloc[0] == N
    left, messages = _call(
        stats.sex_difference_tests, table, ["ei_ratio_mean"], exclude_flagged=True, **args
    )
    assert len(messages) == 1 and "left out 12 of 400 people" in messages[0]
    expected = stats.sex_difference_tests(clean, ["ei_ratio_mean"], **args)
    assert left["n_female"].iloc[0] + left["n_male"].iloc[0] == N - len(FLAGGED)
    np.testing.assert_allclose(left["effect"], expected["effect"], rtol=1e-9)
    np.testing.assert_allclose(left["p"], expected["p"], rtol=1e-9)

    gap_args = {**args, "n_boot": 0, "mu_df": 3, "sigma_df": 3}
    gap, messages = _call(stats.sex_gap, table, "ei_ratio_mean", **gap_args)
    _kept_warning(messages)
    gap, _ = _call(stats.sex_gap, table, "ei_ratio_mean", exclude_flagged=True, **gap_args)
    expected = stats.sex_gap(clean, "ei_ratio_mean", **gap_args)
    np.testing.assert_allclose(gap["gap"], expected["gap"], rtol=1e-9)


def test_chart_sex_tests_warn_once(table, clean) -> None:
    """The tests fit a GrowthChart to the table themselves: one warning, not one per layer."""
    args = {"family": "NO", "mu_df": 3, "sigma_df": 3, "site": None}
    _, messages = _call(stats.chart_sex_tests, table, ["ei_ratio_mean"], **args)
    _kept_warning(messages)
    left, messages = _call(stats.chart_sex_tests, table, ["ei_ratio_mean"], exclude_flagged=True, **args)
    assert len(messages) == 1 and "left out" in messages[0]
    expected = stats.chart_sex_tests(clean, ["ei_ratio_mean"], **args)
    assert (left["n_female"] + left["n_male"]).tolist() == [N - len(FLAGGED)] * 2
    np.testing.assert_allclose(left["effect"], expected["effect"], rtol=1e-7)


def test_region_group_statistics(table, clean) -> None:
    scores, messages = _call(stats.region_group_scores, table)
    _kept_warning(messages)
    assert len(scores) == N
    scores, _ = _call(stats.region_group_scores, table, exclude_flagged=True)
    flagged_ids = set(table.loc[FLAGGED, "subject_id"])
    assert len(scores) == N - len(FLAGGED) and not flagged_ids & set(scores["subject_id"])

    summary, messages = _call(stats.region_group_summary, table)
    _kept_warning(messages)  # once, although the summary calls region_group_scores
    summary, messages = _call(stats.region_group_summary, table, exclude_flagged=True)
    assert len(messages) == 1
    expected = stats.region_group_summary(clean)
    pd.testing.assert_frame_equal(summary, expected)

    args = {"site": None, "df": 3}
    curves, messages = _call(stats.region_group_trajectories, table, **args)
    _kept_warning(messages)
    curves, _ = _call(stats.region_group_trajectories, table, exclude_flagged=True, **args)
    expected = stats.region_group_trajectories(clean, **args)
    np.testing.assert_allclose(curves["mean"], expected["mean"], rtol=1e-9)


# -------------------------------------------------------------------------- the CLI
def test_charts_fit_warns_once_and_prints_what_it_left_out(csv_path, tmp_path, capsys) -> None:
    base = ["charts", "fit", "--table", str(csv_path), "--targets", "ei_ratio_mean",
            "--family", "NO", "--mu-df", "3", "--sigma-df", "3", "--random-sites", "none",
            "--centile-tables", "none"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*base, "--out", str(tmp_path / "kept")]) == 0
    messages = _flag_warnings(caught)
    assert len(messages) == 1 and "--exclude-flagged" in messages[0]
    assert f"{len(FLAGGED)} of {N} people have a flagged E/I fit" in messages[0]
    assert f"on {N} people" in capsys.readouterr().out

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*base, "--out", str(tmp_path / "left"), "--exclude-flagged"]) == 0
    assert _flag_warnings(caught) == []
    out = capsys.readouterr().out
    assert f"--exclude-flagged: left out {len(FLAGGED)} of {N} people: " in out
    assert f"on {N - len(FLAGGED)} people" in out


def test_charts_compare_takes_exclude_flagged(csv_path, tmp_path, capsys) -> None:
    """``charts compare`` fits charts too: the flagged people are named once, in the CLI's words,
    and ``--exclude-flagged`` leaves them out of every model, as ``charts fit`` does."""
    base = ["charts", "compare", "--table", str(csv_path), "--targets", "ei_ratio_mean",
            "--families", "NO", "--mu-dfs", "3"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*base, "--out", str(tmp_path / "kept.csv")]) == 0
    messages = _flag_warnings(caught)
    assert len(messages) == 1 and "--exclude-flagged" in messages[0], messages
    assert pd.read_csv(tmp_path / "kept.csv")["n_obs"].tolist() == [N]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*base, "--out", str(tmp_path / "left.csv"), "--exclude-flagged"]) == 0
    assert _flag_warnings(caught) == []
    assert f"left out {len(FLAGGED)} of {N} people" in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "left.csv")["n_obs"].tolist() == [N - len(FLAGGED)]


def test_exclude_flagged_must_be_a_bool() -> None:
    """A string is truthy: "False" would leave people out (review of 2026-12-07)."""
    from delssome_norms.norms.flagged_rows import handle_flagged

    table = pd.DataFrame({"fit_flagged": [True, False]})
    with pytest.raises(InvalidInputError, match="must be True or False, got 'False'") as err:
        handle_flagged(table, "False")
    assert err.value.source == "exclude_flagged"
    assert len(handle_flagged(table, np.bool_(True))) == 1
