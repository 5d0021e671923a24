"""Figures called as a user would: sex labels as F/M, other atlases, empty or non-numeric input.

Each case once gave a silent wrong figure or a raw exception; each now gives the expected figure or
one :class:`InvalidInputError` naming the problem.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.norms import load_reference_chart
from delssome_norms.plotting import (
    plot_brain_map,
    plot_chart_centiles,
    plot_lifespan_centiles,
    plot_person_brain_map,
    plot_region_group_trajectories,
    plot_sex_effects,
    plot_sex_gap,
)


@pytest.fixture(scope="module")
def chart():
    return load_reference_chart()


def _people(n: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(n)],
            "age_in_years": rng.uniform(20, 60, n),
            "sex": np.where(np.arange(n) % 2 == 0, "female", "male"),
            "site_scanner": "SiteA_Siemens",
            "ei_ratio_mean": 3.2 + 0.2 * rng.standard_normal(n),
        }
    )


def _n_points(ax) -> int:
    return sum(len(c.get_offsets()) for c in ax.collections if isinstance(c, PathCollection))


def test_fan_chart_panel_named_f_draws_that_sexs_people(chart) -> None:
    """``sexes=("F",)`` is accepted by the chart; the panel must show the 20 women, not none."""
    data = _people()
    fig = plot_chart_centiles(chart, data=data, sexes=("F",))
    ax = fig.axes[0]
    assert ax.get_title() == "mean cortical E/I - female"
    assert _n_points(ax) == 20
    # a person given as "m" lands in the male panel
    person = {"subject_id": "p1", "sex": "m", "age_in_years": 30.0, "value": 3.1, "centile": 0.4}
    fig = plot_chart_centiles(chart, sexes=("f", "M"), person=person)
    assert [_n_points(a) for a in fig.axes[:2]] == [0, 1]
    with pytest.raises(InvalidInputError, match="unknown sex label"):
        plot_chart_centiles(chart, sexes=("woman",))


def test_fan_chart_y_label_names_the_region(chart) -> None:
    fig = plot_chart_centiles(chart, "ei_ratio_roi_4")
    assert fig.axes[0].get_ylabel() == f"E/I ratio, {DK68_REGIONS[4]} (ei_ratio_roi_4)"
    assert plot_chart_centiles(chart).axes[0].get_ylabel() == "E/I ratio (mean over regions)"


def test_empty_or_text_gap_table_is_one_clear_error() -> None:
    gap = pd.DataFrame({"age_in_years": [20.0, 30.0], "gap": [0.1, 0.1], "ci_low": 0.0, "ci_high": 0.2})
    with pytest.raises(InvalidInputError, match="no rows"):
        plot_sex_gap(gap.iloc[:0])
    with pytest.raises(InvalidInputError, match="'gap' must hold numbers"):
        plot_sex_gap(gap.astype({"gap": str}))


def test_person_brain_map_of_text_values_is_one_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="must be numbers"):
        plot_person_brain_map(["high"] * 68, "sub-01")


def test_lifespan_centiles_refuse_text_columns_and_key_the_bands(chart) -> None:
    female = chart.population_centiles("female")["ei_ratio_mean"]
    male = chart.population_centiles("male")["ei_ratio_mean"]
    with pytest.raises(InvalidInputError, match="'C50' must hold numbers"):
        plot_lifespan_centiles(female.astype({"C50": str}), male)
    fig = plot_lifespan_centiles(female, male, data=_people(), max_points=10)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == [
        "female median",
        "male median",
        "2.5-97.5th centiles",
        "5-95th centiles",
        "25-75th centiles",
        "people (10 of 40)",
    ]


def _other_atlas_table(n_regions: int = 100, n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rois = 3.0 + 0.1 * rng.standard_normal((n, n_regions))
    table = pd.DataFrame(rois, columns=[f"ei_ratio_roi_{i}" for i in range(n_regions)])
    table.insert(0, "sex", np.where(np.arange(n) % 2 == 0, "female", "male"))
    table.insert(0, "age_in_years", rng.uniform(5, 90, n))
    return table


def test_region_groups_of_a_100_region_table_are_refused_not_mislabelled() -> None:
    """The first 68 of 100 regions are not the DK68 regions: no sensory/association figure."""
    with pytest.raises(InvalidInputError, match="up to ei_ratio_roi_99 but regions lists 68"):
        plot_region_group_trajectories(_other_atlas_table(), site=None)


def test_brain_map_of_unnamed_or_repeated_regions_is_refused() -> None:
    effects = pd.Series([0.1, 0.2], index=[None, np.nan])
    with pytest.raises(InvalidInputError, match=r"2 value\(s\) have no region name"):
        plot_brain_map(effects)
    # every test's rows of sex_difference_tests at once: the last test's effect would win silently
    repeated = pd.Series([0.05, 1.08], index=[DK68_REGIONS[0], DK68_REGIONS[0]])
    with pytest.raises(InvalidInputError, match="more than once"):
        plot_brain_map(repeated)


def test_forest_plot_axis_says_what_the_effect_is() -> None:
    rows = pd.DataFrame(
        {
            "test": "sigma_lr",
            "family": "regional",
            "target": ["ei_ratio_roi_0", "ei_ratio_roi_1"],
            "region": DK68_REGIONS[:2],
            "effect": [1.05, 1.1],
            "ci_low": [1.0, 1.02],
            "ci_high": [1.1, 1.2],
            "significant": [False, True],
            "effect_name": "sigma_ratio_female_over_male",
        }
    )
    ax = plot_sex_effects(rows, "sigma_lr").axes[0]
    assert ax.get_xlabel() == "SD ratio, female / male (bars: 95 % confidence interval)"
    assert ax.get_title() == "Sex difference in E/I variability (sigma_lr)"


@pytest.mark.parametrize(("age", "value"), [(45.0, 2.6), (98.0, 3.3), (4.6, 2.9)])
def test_the_persons_label_and_star_stay_inside_the_panel(chart, age, value) -> None:
    """The label box ran past the panel's right edge and a star at the oldest age was cut in
    half by the axis limit; the legend on the other panel said only the id."""
    person = {"subject_id": "sub-with-a-long-identifier-01", "age_in_years": age, "sex": "male",
              "value": value, "centile": 0.2}  # fmt: skip
    fig = plot_chart_centiles(chart, person=person)
    fig.draw_without_rendering()
    male = fig.axes[1]
    panel = male.get_window_extent()
    (note,) = male.texts
    box = note.get_bbox_patch().get_window_extent()
    assert panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1
    lo, hi = male.get_xlim()
    assert lo + 0.03 * (hi - lo) <= age <= hi - 0.03 * (hi - lo)  # the whole star shows
    labels = fig.axes[0].get_legend_handles_labels()[1] + [
        t.get_text() for t in fig.axes[0].get_legend().get_texts()
    ]
    assert "sub-with-a-long-identifier-01 (male panel)" in labels


def test_target_names_read_as_regions_and_the_sex_gap_legend_uses_them() -> None:
    from delssome_norms.datasets import DK68_REGIONS
    from delssome_norms.plotting.charts import target_name

    dk = ["ei_ratio_mean", *(f"ei_ratio_roi_{i}" for i in range(68))]
    assert target_name("ei_ratio_mean", dk) == "mean cortical E/I"
    assert target_name("ei_ratio_roi_4", dk) == DK68_REGIONS[4]
    # 100 regional columns: another atlas, so no DK68 name is borrowed
    other = [f"ei_ratio_roi_{i}" for i in range(100)]
    assert target_name("ei_ratio_roi_4", other) == "ei_ratio_roi_4"
    gap = pd.DataFrame(
        {
            "target": ["ei_ratio_mean"] * 3 + ["ei_ratio_roi_4"] * 3,
            "age_in_years": [10.0, 40.0, 80.0] * 2,
            "gap": [0.04, 0.05, 0.03, 0.05, 0.06, 0.04],
            "ci_low": [0.01] * 6,
            "ci_high": [0.08] * 6,
        }
    )
    fig = plot_sex_gap(gap)
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels[:2] == ["mean cortical E/I", DK68_REGIONS[4]]
