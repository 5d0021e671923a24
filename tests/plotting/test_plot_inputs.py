"""Public figure functions: a wrong argument is one clear InvalidInputError, not a deep error."""

from __future__ import annotations

import numpy as np
import pytest

from delssome_norms.errors import InvalidInputError, NotFittedError
from delssome_norms.norms import GrowthChart, load_reference_chart
from delssome_norms.plotting import plot_brain_map, plot_chart_centiles


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [({"sexes": ()}, "one or more panels"), ({"person": {"subject_id": "p"}}, "person needs sex")],
)
def test_chart_figure_refuses_bad_arguments(kwargs, words) -> None:
    with pytest.raises(InvalidInputError, match=words):
        plot_chart_centiles(load_reference_chart(), "ei_ratio_mean", **kwargs)
    with pytest.raises(NotFittedError):
        plot_chart_centiles(GrowthChart(), "ei_ratio_mean")


@pytest.mark.parametrize(
    ("values", "kwargs", "words"),
    [
        (np.linspace(0, 1, 68), {"vmin": 2, "vmax": -2}, "must be below vmax"),
        (np.linspace(0, 1, 68), {"cmap": "nope"}, "unknown colour map"),
        (["a"] * 68, {}, "must be numbers"),
    ],
)
def test_brain_map_refuses_bad_arguments(values, kwargs, words) -> None:
    with pytest.raises(InvalidInputError, match=words):
        plot_brain_map(values, **kwargs)


def test_an_infinite_value_does_not_set_the_colour_scale() -> None:
    values = np.linspace(-1.0, 1.0, 68)
    values[5] = np.inf
    fig = plot_brain_map(values, center=0.0)
    bar = fig.axes[-1]  # the colour bar
    assert bar.get_ylim() == pytest.approx((-1.0, 1.0))


@pytest.mark.parametrize(
    ("age", "value", "words"),
    [(2.0, 3.5, "outside the chart"), (120.0, 3.5, "outside the chart"), (40.0, np.nan, "finite")],
)
def test_a_person_the_chart_cannot_show_is_refused(age, value, words) -> None:
    person = {"subject_id": "x", "sex": "male", "age_in_years": age, "value": value, "centile": 0.5}
    with pytest.raises(InvalidInputError, match=words):
        plot_chart_centiles(load_reference_chart(), "ei_ratio_mean", person=person)


def test_an_extrapolated_person_is_drawn_beyond_the_curves() -> None:
    person = {"subject_id": "x", "sex": "male", "age_in_years": 100.0, "value": 3.3}
    person |= {"centile": 0.5, "flag": "age_out_of_range"}
    fig = plot_chart_centiles(load_reference_chart(), "ei_ratio_mean", person=person)
    assert all(ax.get_xlim()[1] >= 101.0 for ax in fig.axes if ax.get_title())


def test_a_missing_nilearn_is_one_clear_error(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "nilearn", None)  # import nilearn raises ImportError
    with pytest.raises(InvalidInputError, match="brain maps need nilearn"):
        plot_brain_map(np.linspace(0, 1, 68))
