"""When the curves across age do not converge, ``stats groups`` still draws each person's E/I
(without curves, saying so) and ``stats sex`` still writes its tests and their figures, each
naming what it left out and exiting 1.

80 people of the packaged SYNTHETIC reference table (``random_state=0``: 39 female, 41 male, 14
sites, 5 with fewer than 5 people) are a cohort whose curves do not converge with site offsets
(tests/cli/test_stats_cmd_cohorts.py); the same people under one site label converge.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from delssome_norms.cli import stats_cmd
from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, SENSORY_REGIONS

PNG = b"\x89PNG\r\n\x1a\n"
SEX_TARGETS = "ei_ratio_mean,ei_ratio_roi_0,ei_ratio_roi_10,ei_ratio_roi_20,ei_ratio_roi_30"


@pytest.fixture(scope="module")
def many_sites(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    from delssome_norms.datasets import load_reference_table

    path = tmp_path_factory.mktemp("people") / "mixed80.csv"
    load_reference_table().sample(n=80, random_state=0).reset_index(drop=True).to_csv(path, index=False)
    return path, pd.read_csv(path, dtype={"subject_id": str})


@pytest.fixture
def drawn(monkeypatch) -> dict:
    """The figures the command drew, by file name (recorded as it closes them)."""
    figures: dict = {}
    close = stats_cmd._close

    def record(figs: dict) -> None:
        figures.update(figs)
        close(figs)

    monkeypatch.setattr(stats_cmd, "_close", record)
    return figures


def _run(argv: list, capsys) -> tuple[int, list[str], list[str], str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    errors = [ln for ln in cap.err.splitlines() if ln.startswith("delssome-norms: error:")]
    said = [str(w.message) for w in caught]  # less the unnamed-columns one (test_atlas_messages)
    return code, [w for w in said if "taken to be the DK68 regions" not in w], errors, cap.out


def _group_means(table: pd.DataFrame) -> dict[str, np.ndarray]:
    """Each person's mean E/I over the DK68 sensory and association columns (independent)."""
    cols = {"sensory": [], "association": []}
    for k, name in enumerate(DK68_REGIONS):
        cols["sensory" if name in SENSORY_REGIONS else "association"].append(f"ei_ratio_roi_{k}")
    return {g: table[c].mean(axis=1).to_numpy() for g, c in cols.items()}


def _points(ax) -> np.ndarray:
    return np.vstack([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])


def test_groups_draws_the_people_without_curves_when_the_curves_fail(
    many_sites, drawn, tmp_path, capsys
) -> None:
    """It drew no figure at all; now every person is drawn at their own group means, with no
    curve, and the figure, the warning and the printed lines say the curves are missing."""
    path, table = many_sites
    out = tmp_path / "groups"
    code, warns, errors, stdout = _run(["stats", "groups", "--table", path, "--out-dir", out], capsys)
    assert (code, errors) == (1, [])
    assert (out / "region_group_people.png").read_bytes()[:8] == PNG
    assert not (out / "region_group_trajectories.png").exists()
    assert not (out / "region_group_trajectories.csv").exists()
    assert "wrote 3 files" in stdout
    assert "not written: region_group_trajectories.csv, region_group_trajectories.png" in stdout
    assert len(warns) == 1 and "region_group_people.png, without curves" in warns[0]

    fig = drawn["region_group_people.png"]
    assert sorted(drawn) == ["region_group_people.png"]
    means = _group_means(table)
    for ax, group in zip(fig.axes, ("sensory", "association"), strict=True):
        assert ax.get_title() == f"{group.capitalize()} regions"
        assert len(ax.lines) == 0  # no curve
        got = _points(ax)
        expected = np.column_stack([table["age_in_years"], means[group]])
        assert len(got) == len(table) == 80
        np.testing.assert_allclose(got[np.lexsort(got.T)], expected[np.lexsort(expected.T)])
    assert "no curves across age" in fig.get_suptitle()
    assert "did not converge" in fig._supxlabel.get_text()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["female (39)", "male (41)"]


def test_groups_without_figures_names_only_the_table_it_left_out(many_sites, tmp_path, capsys):
    """With --no-figures no PNG was asked for: the lines saying what is missing named one."""
    path, _ = many_sites
    out = tmp_path / "groups_nofig"
    argv = ["stats", "groups", "--table", path, "--out-dir", out, "--no-figures"]
    code, warns, errors, stdout = _run(argv, capsys)
    assert (code, errors) == (1, [])
    assert not list(out.glob("*.png"))
    assert "not written: region_group_trajectories.csv: the curves" in stdout
    assert len(warns) == 1 and "(region_group_trajectories.csv; the scores" in warns[0]
    assert ".png" not in warns[0].split(":")[0] and "trajectories.png" not in stdout


def test_groups_with_converging_curves_draws_them_in_both_figures(
    many_sites, drawn, tmp_path, capsys
) -> None:
    """The same people under one site: both figures, the people's with each sex's curve."""
    path, table = many_sites
    one = path.with_name("onesite80.csv")
    table.assign(site="A", scanner="S", site_scanner="A_S").to_csv(one, index=False)
    out = tmp_path / "groups"
    code, _, errors, stdout = _run(["stats", "groups", "--table", one, "--out-dir", out], capsys)
    assert (code, errors) == (0, [])
    assert "not written" not in stdout
    curves = pd.read_csv(out / "region_group_trajectories.csv")
    fig = drawn["region_group_people.png"]
    female = curves[(curves["group"] == "sensory") & (curves["sex"] == "female")]
    line = next(ln for ln in fig.axes[0].lines if ln.get_label() == "female")
    np.testing.assert_allclose(line.get_ydata(), female["mean"], rtol=1e-9)
    assert "with each sex's curve" in fig.get_suptitle()


def test_people_figure_says_how_many_people_it_shows(many_sites) -> None:
    """A random subset of the people is drawn above max_points; the title says so."""
    from delssome_norms.plotting import plot_ei_vs_age_by_group

    _, table = many_sites
    fig = plot_ei_vs_age_by_group(table, max_points=30, with_curves=False)
    assert len(_points(fig.axes[0])) == 30
    assert "30 of 80 people (a random subset)" in fig.get_suptitle()


def test_sex_writes_its_tests_when_the_gap_fails_and_removes_an_earlier_gap(
    many_sites, drawn, tmp_path, capsys
) -> None:
    """The sex gap's fit does not converge with 14 sites: the command exited 2 and wrote nothing.
    Now the tests, their summary and their figures are written, an earlier run's sex gap is
    removed (not left beside tests of other people), and the exit status is 1. The mean's fit of
    most regions does not converge either: the summary and the forest plot leave those out
    (the plot drew their arbitrary effects as if tested)."""
    path, table = many_sites
    one = path.with_name("onesite80_sex.csv")
    table.assign(site="A", scanner="S", site_scanner="A_S").to_csv(one, index=False)
    out = tmp_path / "sex"
    argv = ["stats", "sex", "--out-dir", out, "--n-boot", "0"]
    code, _, errors, _ = _run([*argv, "--table", one, "--targets", SEX_TARGETS], capsys)
    assert (code, errors) == (0, []) and (out / "sex_gap.csv").is_file()

    code, warns, errors, stdout = _run([*argv, "--table", path, "--no-scale-site"], capsys)
    assert (code, errors) == (1, [])
    assert not (out / "sex_gap.csv").exists() and not (out / "sex_gap.png").exists()
    for name in ("sex_effects_mean.png", "sex_effects_sd.png"):
        assert (out / name).read_bytes()[:8] == PNG, name
    tests = pd.read_csv(out / "sex_difference_tests.csv")
    assert len(set(tests["target"])) == 69  # the mean and the 68 regions
    assert any("sex gap across age not written" in w and "did not converge" in w for w in warns)
    # --no-scale-site was given: the ways out name the small sites, not that option again
    assert not any("--no-scale-site" in w for w in warns), warns
    assert any("merge or leave out the 5 site(s) with fewer than 5 people" in w for w in warns)
    assert "sex gap across age: not estimated (its fit did not converge)" in stdout
    assert "not written: sex_gap.csv, sex_gap.png" in stdout
    # the printed counts and the forest plot leave out the fits that did not converge
    mu = tests[(tests["test"] == "mu_lr") & (tests["family"] == "regional")]
    failed = int((~mu["converged"].astype(bool)).sum())
    assert 0 < failed < len(mu)
    assert f"; {failed} not tested: their fits did not converge)" in stdout
    fig = drawn["sex_effects_mean.png"]
    ax = fig.axes[0]
    assert len(_points(ax)) == len(mu) - failed
    assert f"{failed} of {len(mu)} targets left out" in ax.get_title()
    kept = sorted(mu.loc[mu["converged"].astype(bool), "region"])
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == kept


def test_forest_plot_of_no_converged_fit_says_so() -> None:
    """Every fit failed: an empty panel saying so, not arbitrary effects drawn as tested."""
    from delssome_norms.plotting import plot_sex_effects

    results = pd.DataFrame(
        {
            "test": "mu_lr",
            "family": "regional",
            "target": ["ei_ratio_roi_0", "ei_ratio_roi_1"],
            "region": ["lh_bankssts", "lh_caudalanteriorcingulate"],
            "effect": [1.45, 0.1],
            "ci_low": [-0.2, -0.1],
            "ci_high": [0.3, 0.2],
            "significant": False,
            "effect_name": "mean_difference_female_minus_male",
            "converged": False,
        }
    )
    ax = plot_sex_effects(results).axes[0]
    assert len([c for c in ax.collections if isinstance(c, PathCollection)]) == 0
    assert "2 of 2 targets left out" in ax.get_title()
    assert [t.get_text() for t in ax.texts] == ["no target's fit converged"]
