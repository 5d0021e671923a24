"""Review of 12-06 (stats, ``stats sex|groups`` and the plots): sessions of one person counted as
people, non-DK68 regions classed as association, the person's star found by its label, and the
CLI's messages (Python words, a 70-column listing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import stats
from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, SENSORY_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.stats._cohort import person_id

ONE_ROW = "the statistics need one row per person; keep one session per person"


def _run(argv: list[str], capsys) -> tuple[int, list[str]]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, [ln for ln in err.splitlines() if not ln.startswith("delssome-norms: warning")]


# ------------------------------------------------------------------ 1. sessions of one person
@pytest.mark.parametrize(
    ("subject_id", "person"),
    [
        ("sub-01_ses-2", "sub-01"),
        ("sub-01_ses-10", "sub-01"),  # the whole label, not "sub-010"
        ("sub-01_ses-pre_run-1", "sub-01_run-1"),
        ("sub-01", "sub-01"),
        ("ses-1_x", "ses-1_x"),  # no subject before the session
        ("p_sessions-1", "p_sessions-1"),  # not a ses entity
    ],
)
def test_person_id_removes_the_session_entity_only(subject_id, person) -> None:
    assert person_id(subject_id) == person


def test_two_sessions_of_one_person_are_refused(make_cohort) -> None:
    table = make_cohort(n=80, n_rois=4, seed=1)
    table["subject_id"] = [f"sub-{i:03d}_ses-1" for i in range(80)]
    table.loc[5, "subject_id"] = "sub-000_ses-2"  # sub-000 seen twice, as prepare --bids-dir names
    expected = f"sub-000 has 2 rows (sub-000_ses-1, sub-000_ses-2): {ONE_ROW}"
    for call in (
        lambda t: stats.sex_difference_tests(t, "ei_ratio_mean"),
        lambda t: stats.sex_gap(t, "ei_ratio_mean", n_boot=0),
        lambda t: stats.region_group_scores(t, regions=DK68_REGIONS[:4]),
    ):
        with pytest.raises(InvalidInputError) as err:
            call(table)
        assert err.value.problem == expected
    # one session per person (every id with _ses-1) is one row per person
    table.loc[5, "subject_id"] = "sub-005_ses-1"
    assert len(stats.sex_difference_tests(table, "ei_ratio_mean", site=None)) > 0


def test_stats_sex_refuses_a_cohort_of_two_sessions_each(make_cohort, tmp_path, capsys) -> None:
    """The review's sessions.csv: 120 rows of 60 people; it ran and reported p 5.3e-08."""
    table = make_cohort(n=120, n_rois=4, seed=2)
    table["subject_id"] = [f"sub-{i % 60:03d}_ses-{1 + i // 60}" for i in range(120)]
    path = tmp_path / "sessions.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "out"
    argv = ["stats", "sex", "--table", str(path), "--out-dir", str(out), "--n-boot", "0"]
    code, errors = _run([*argv, "--targets", "ei_ratio_mean", "--no-figures"], capsys)
    assert code == 2 and len(errors) == 1, errors
    assert errors[0] == (
        f"delssome-norms: error: {path} (--table): sub-000 has 2 rows (sub-000_ses-1, "
        "sub-000_ses-2), sub-001 has 2 rows (sub-001_ses-1, sub-001_ses-2), sub-002 has 2 rows "
        f"(sub-002_ses-1, sub-002_ses-2) ... (and 57 more): {ONE_ROW}"
    )
    assert not out.exists()


# ------------------------------------------------------------------ 4. the CLI's words
def test_stats_cli_says_the_repeated_id_fix_without_python(make_cohort, tmp_path, capsys) -> None:
    table = make_cohort(n=80, n_rois=4, seed=3)
    table.loc[7, "subject_id"] = table.loc[3, "subject_id"]
    path = tmp_path / "dup.csv"
    table.to_csv(path, index=False)
    argv = ["stats", "sex", "--table", str(path), "--out-dir", str(tmp_path / "o")]
    code, errors = _run([*argv, "--n-boot", "0", "--no-figures"], capsys)
    assert code == 2 and len(errors) == 1, errors
    assert "subject_id listed more than once: sub-00003" in errors[0]
    assert errors[0].endswith("keep one row per person in the table")
    assert "drop_duplicates" not in errors[0] and "table.drop" not in errors[0]


# ------------------------------------------------------------------ 2. non-DK68 regions
def _dk68_plus(extra: list[str], n: int = 60) -> tuple[pd.DataFrame, list[str]]:
    """DK68 cortex at 2.0 and ``extra`` regions at 5.0 (the review's thalamus)."""
    names = [*DK68_REGIONS, *extra]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        {
            "subject_id": [f"sub-{i:03d}" for i in range(n)],
            "age_in_years": rng.uniform(8, 80, n),
            "sex": rng.choice(["F", "M"], n),
            "site": rng.choice(["a", "b"], n),
        }
    )
    for k, name in enumerate(names):
        level = 2.0 if name in DK68_REGIONS else 5.0
        table[f"ei_ratio_roi_{k}"] = level + 0.01 * rng.standard_normal(n)
    return table, names


def test_region_groups_refuse_names_that_are_not_dk68() -> None:
    """Left/Right-Thalamus were classed as association: its mean was 2.115, not the cortex's 2."""
    table, names = _dk68_plus(["Left-Thalamus", "Right-Thalamus"])
    for call in (
        stats.region_group_scores,
        stats.region_group_summary,
        lambda t, regions: stats.region_group_trajectories(t, regions=regions, site=None),
    ):
        with pytest.raises(InvalidInputError) as err:
            call(table, regions=names)
        assert err.value.source == "regions"
        assert err.value.problem.startswith(
            "2 of the 70 region names are not DK68 cortical regions (Left-Thalamus, "
            "Right-Thalamus): the sensory/association classes are defined for DK68 cortical "
            "regions only"
        )
    seven = [f"Sub{k}" for k in range(7)]
    table, names = _dk68_plus(seven)
    with pytest.raises(InvalidInputError) as err:
        stats.region_group_scores(table, regions=names)
    assert err.value.problem.startswith(
        "7 of the 75 region names are not DK68 cortical regions (Sub0, Sub1, Sub2, Sub3, Sub4 ... "
        "(and 2 more)):"
    )
    # the DK68 cortex alone: association is the mean of the 50 association columns (2.0)
    dk = table.drop(columns=[f"ei_ratio_roi_{k}" for k in range(68, 75)])
    scores = stats.region_group_scores(dk)
    assoc = [f"ei_ratio_roi_{k}" for k, r in enumerate(DK68_REGIONS) if r not in SENSORY_REGIONS]
    np.testing.assert_allclose(scores["association"], dk[assoc].mean(axis=1), rtol=1e-12)


def test_stats_groups_refuses_a_subcortical_sidecar(tmp_path, capsys) -> None:
    table, names = _dk68_plus(["Left-Thalamus", "Right-Thalamus"])
    path = tmp_path / "t70.csv"
    table.to_csv(path, index=False)
    cols = [f"ei_ratio_roi_{k}" for k in range(70)]
    sidecar = tmp_path / "t70.regions.csv"
    pd.DataFrame({"column": cols, "region_index": range(70), "region": names}).to_csv(
        sidecar, index=False
    )
    out = tmp_path / "g70"
    code, errors = _run(["stats", "groups", "--table", str(path), "--out-dir", str(out)], capsys)
    assert code == 2 and len(errors) == 1, errors
    assert errors[0].startswith(f"delssome-norms: error: {sidecar}: 2 of the 70 region names")
    assert "(Left-Thalamus, Right-Thalamus)" in errors[0] and not out.exists()


# ------------------------------------------------------------------ 5. a long listing
def test_many_constant_columns_are_listed_briefly(make_cohort) -> None:
    table = make_cohort(n=80, n_rois=70, seed=4)
    for k in range(70):
        table[f"ei_ratio_roi_{k}"] = 2.0
    with pytest.raises(InvalidInputError) as err:
        stats.sex_difference_tests(table, site=None)
    assert err.value.problem == (
        "70 target column(s) are constant: ei_ratio_roi_0, ei_ratio_roi_1, ei_ratio_roi_2, "
        "ei_ratio_roi_3, ei_ratio_roi_4 ... (and 65 more)"
    )


# ------------------------------------------------------------------ 3. the person's star
@pytest.fixture(scope="module")
def chart(make_cohort):
    from delssome_norms.norms.chart import GrowthChart

    table = make_cohort(n=240, n_rois=2, n_sites=3, seed=5)
    return GrowthChart(mu_df=3, sigma_df=3).fit(table, targets=["ei_ratio_mean"])


@pytest.mark.parametrize("subject", ["_pilot01", "median", "sub-01"])
def test_the_star_is_keyed_whatever_the_id(chart, subject) -> None:
    """'_pilot01' raised ValueError (matplotlib hides labels starting with '_'); 'median' took the
    female median's place (its swatch showed the male curve only) and keyed the star with a line."""
    from matplotlib.collections import PathCollection
    from matplotlib.lines import Line2D

    from delssome_norms.plotting._style import SEX_COLORS
    from delssome_norms.plotting.charts import plot_chart_centiles

    person = {"subject_id": subject, "age_in_years": 30.0, "sex": "F", "value": 1.1, "centile": 0.6}
    fig = plot_chart_centiles(chart, "ei_ratio_mean", person=person)
    (legend,) = [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    texts = [t.get_text() for t in legend.get_texts()]
    handles = dict(zip(texts, legend.legend_handles))
    assert texts[-1] == f"{subject} (female panel)" and texts.count("median") == 1
    assert isinstance(handles[texts[-1]], PathCollection)  # the star, not the median line
    median = handles["median"]
    assert isinstance(median, Line2D) and median.get_color() == SEX_COLORS["female"]


# ------------------------------------------------------------------ 6. one colour-bar rule
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.0, 1.0, np.nan], "neither"),
        ([-5.0, 1.0], "min"),
        ([5.0, np.nan, 1.0], "max"),
        ([-5.0, 5.0], "both"),
        ([4.0, -4.0, np.inf], "neither"),  # at the limits; an infinite value is not drawn
    ],
)
def test_colorbar_extend(values, expected) -> None:
    from delssome_norms.plotting.brain_map import colorbar_extend

    assert colorbar_extend(values, -4.0, 4.0) == expected


def test_person_map_uses_the_brain_maps_rule() -> None:
    import matplotlib

    matplotlib.use("Agg")
    from delssome_norms.plotting import brain_map, person

    assert person.colorbar_extend is brain_map.colorbar_extend
    z = np.zeros(68)
    z[3], z[9] = -7.0, 1.0
    fig = person.plot_person_brain_map(z, "sub-01", value="z")
    (bar,) = [ax._colorbar for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]
    assert bar.extend == "min"


# ------------------------------------------------------------------ 7. shared CLI helpers
def test_cli_helpers_are_public_in_charts_helpers(tmp_path) -> None:
    from delssome_norms.cli import charts_cmd, charts_helpers, person_report, stats_cmd

    assert stats_cmd.csv_list is charts_cmd.csv_list is charts_helpers.csv_list
    assert person_report.sidecar_atlas is charts_helpers.sidecar_atlas  # charts_cmd reads tables
    # as read_ei_table does (its regions.csv checked against the columns), not with sidecar_atlas
    assert not hasattr(charts_cmd, "_csv_list") and not hasattr(person_report, "_sidecar_atlas")
    assert charts_helpers.csv_list(" a, b ,,c ") == ["a", "b", "c"]
    side = tmp_path / "t.regions.csv"
    pd.DataFrame(
        {"column": ["ei_ratio_roi_1", "ei_ratio_roi_0"], "region_index": [1, 0], "region": ["B", "NA"]}
    ).to_csv(side, index=False)
    atlas = charts_helpers.sidecar_atlas(side)
    assert (atlas.n, atlas.names) == (2, ["NA", "B"])  # "NA" is a name, not missing
    source = Path(charts_cmd.__file__).read_text(encoding="utf-8")
    assert source.count("\n") <= 800  # the module limit (it held 787 lines when moved)


def test_fits_that_did_not_converge_give_one_warning_and_no_overflow() -> None:
    """80 people in 14 sites, site effects in the mean only: most fits diverge. The user gets one
    ConvergenceWarning naming the small sites as the way out, not numpy's 'overflow encountered
    in expm1' from the small-sample calibration of a diverged likelihood ratio; those p are NaN."""
    import warnings

    from delssome_norms.datasets import load_reference_table
    from delssome_norms.errors import ConvergenceWarning
    from delssome_norms.stats import sex_difference_tests

    table = load_reference_table().sample(80, random_state=0)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = sex_difference_tests(table, scale_site=False)
    kinds = [w.category for w in record]
    assert kinds == [ConvergenceWarning], [str(w.message)[:80] for w in record]
    said = str(record[0].message)
    assert "merge or leave out the 5 site(s) with fewer than 5 people" in said
    assert "scale_site=False" not in said
    mu = result[result["test"] == "mu_lr"]
    assert mu.loc[~mu["converged"].astype(bool), "p"].isna().all()
    assert mu.loc[mu["converged"].astype(bool), "p"].between(0, 1).all()
