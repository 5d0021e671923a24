"""The centile fan figure of a chart."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from delssome_norms.errors import InvalidInputError
from delssome_norms.plotting.charts import plot_chart_centiles


def test_fan_chart_has_one_panel_per_sex_with_bands_and_points(fitted, train_table, tmp_path) -> None:
    fig = plot_chart_centiles(fitted, "ei_ratio_mean", train_table.iloc[:500])
    assert isinstance(fig, Figure)
    axes = fig.get_axes()
    assert [ax.get_title() for ax in axes] == ["mean cortical E/I - female", "mean cortical E/I - male"]
    for ax in axes:
        assert len(ax.collections) == 4  # three bands and the points
        assert len(ax.lines) == 1  # the median
    fig.savefig(tmp_path / "fan.png")
    fig.savefig(tmp_path / "fan.pdf")
    assert (tmp_path / "fan.png").stat().st_size > 1000
    with pytest.raises(InvalidInputError, match="points"):
        plot_chart_centiles(fitted, "ei_ratio_mean", points="both")
    with pytest.raises(InvalidInputError, match="no target"):
        plot_chart_centiles(fitted, "nope")
