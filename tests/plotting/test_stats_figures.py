"""Sex-gap, sex-effect, region-group and lifespan-centile figures: content, labels and PNG output."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection, PolyCollection
from matplotlib.figure import Figure

from delssome_norms.errors import InvalidInputError
from delssome_norms.plotting import (
    plot_ei_vs_age_by_group,
    plot_lifespan_centiles,
    plot_region_group_trajectories,
    plot_sex_effects,
    plot_sex_gap,
)
from delssome_norms.stats import sex_difference_tests, sex_gap


def _saves(fig: Figure, tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bands(ax) -> list:
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def test_sex_gap_plot_draws_gap_band_and_zero_line(cohort_table, tmp_path):
    gap = sex_gap(cohort_table, "ei_ratio_mean", n_boot=30, ages=np.arange(10, 91, 10.0))
    fig = plot_sex_gap(gap)
    ax = fig.axes[0]
    gap_line = next(line for line in ax.lines if line.get_label() == "mean cortical E/I")
    np.testing.assert_allclose(gap_line.get_ydata(), gap["gap"])
    assert any(np.allclose(line.get_ydata(), 0.0) for line in ax.lines)  # zero reference
    assert len(_bands(ax)) == 1
    assert ax.get_xlabel() == "Age (years)" and "median" in ax.get_ylabel()
    _saves(fig, tmp_path, "gap")
    with pytest.raises(InvalidInputError, match="ci_low"):
        plot_sex_gap(gap.drop(columns="ci_low"))


def test_sex_gap_plot_into_given_axes_with_two_targets(cohort_table):
    gaps = pd.concat(
        [
            sex_gap(cohort_table, t, n_boot=0, ages=[20.0, 50.0])
            for t in ("ei_ratio_mean", "ei_ratio_roi_0")
        ]
    )
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_sex_gap(gaps, ax=ax) is fig
    labels = [line.get_label() for line in ax.lines]
    assert "mean cortical E/I" in labels and "lh_bankssts" in labels  # readable names


def test_sex_effects_forest_plot(cohort_table, tmp_path):
    res = sex_difference_tests(cohort_table)
    fig = plot_sex_effects(res, "mu_lr")
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ticks) == 68 and "lh_bankssts" in ticks
    n_points = sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))
    assert n_points == 68
    _saves(fig, tmp_path, "forest")
    with pytest.raises(InvalidInputError, match="no rows"):
        plot_sex_effects(res, "unknown_test")


def test_region_group_trajectories_plot(cohort_table, tmp_path):
    fig = plot_region_group_trajectories(cohort_table)
    ax = fig.axes[0]
    labels = sorted(line.get_label() for line in ax.lines)
    assert labels == sorted(f"{g}, {s}" for g in ("sensory", "association") for s in ("female", "male"))
    sensory = next(line for line in ax.lines if line.get_label() == "sensory, female").get_ydata()
    assoc = next(line for line in ax.lines if line.get_label() == "association, female").get_ydata()
    drawn = np.isfinite(sensory)  # each sex's curve only over its own ages (NaN beyond)
    assert drawn.sum() >= 0.9 * drawn.size and np.array_equal(drawn, np.isfinite(assoc))
    assert np.all(sensory[drawn] > assoc[drawn])  # the simulated +0.08 for sensory regions
    assert len(_bands(ax)) == 4
    _saves(fig, tmp_path, "groups")


def test_ei_vs_age_by_group_has_one_panel_per_group(cohort_table, tmp_path):
    fig = plot_ei_vs_age_by_group(cohort_table, max_points=200)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Sensory regions", "Association regions"]
    points = sum(
        len(c.get_offsets()) for c in fig.axes[0].collections if not isinstance(c, PolyCollection)
    )
    assert points == 200
    _saves(fig, tmp_path, "by_group")


def _centile_table(sex: str, shift: float) -> pd.DataFrame:
    age = np.arange(5.0, 95.01, 0.5)
    med = 1.5 - 0.005 * age + shift
    cols = {"age_in_years": age, "sex": sex}
    for q, z in (
        (2.5, -1.96),
        (5, -1.645),
        (25, -0.674),
        (50, 0.0),
        (75, 0.674),
        (95, 1.645),
        (97.5, 1.96),
    ):
        cols[f"C{q:g}"] = med + 0.1 * z
    return pd.DataFrame(cols)


def test_lifespan_centiles_both_sexes_with_data(cohort_table, tmp_path):
    fig = plot_lifespan_centiles(
        _centile_table("female", 0.03), _centile_table("male", 0.0), data=cohort_table
    )
    ax = fig.axes[0]
    medians = {line.get_label(): line.get_ydata() for line in ax.lines}
    assert set(medians) == {"female median", "male median"}
    np.testing.assert_allclose(medians["female median"] - medians["male median"], 0.03)
    assert len(_bands(ax)) == 6  # three nested bands per sex
    assert sum(len(c.get_offsets()) for c in ax.collections if not isinstance(c, PolyCollection)) == 600
    _saves(fig, tmp_path, "lifespan")


def test_lifespan_centiles_reference_csv(cbig_dir, tmp_path):
    ref = cbig_dir / "reference_output" / "gamlss" / "SHASHo2_bs_df4"
    female = pd.read_csv(ref / "female_population_centiles.csv")
    male = pd.read_csv(ref / "male_population_centiles.csv")
    data = pd.read_csv(cbig_dir / "input" / "gamlss_input.csv")
    fig = plot_lifespan_centiles(female, male, data=data, title="reference")
    assert fig.axes[0].get_title() == "reference"
    _saves(fig, tmp_path, "reference")


def test_lifespan_centiles_need_a_median_column():
    with pytest.raises(InvalidInputError, match="C50"):
        plot_lifespan_centiles(
            _centile_table("female", 0).drop(columns="C50"), _centile_table("male", 0)
        )


def test_sex_effects_plot_of_results_read_back_without_labels(cohort_table, tmp_path) -> None:
    """Results read back from CSV with an empty label column (float NaN): the targets label the
    rows, without the pandas 3 warning of fillna with text on a float column."""
    import warnings

    res = sex_difference_tests(cohort_table)
    res = res[res["test"] == "mu_lr"].head(5).assign(region=None)
    res.to_csv(tmp_path / "res.csv", index=False)
    back = pd.read_csv(tmp_path / "res.csv")
    assert back["region"].dtype == np.float64
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plot_sex_effects(back, "mu_lr", family=None)
    ticks = sorted(t.get_text() for t in fig.axes[0].get_yticklabels())
    assert ticks == sorted(back["target"])
