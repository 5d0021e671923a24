"""Figures as a journal reviewer reads them (review of 2026-12-06).

Each case was a defect seen on the rendered PNG: the legend of a two-panel fan chart showed one
panel's colours only; a flagged person's label box ran over the y-axis label (and squeezed a
one-panel chart to a sliver); a one-panel chart cut its title off; a chart of another atlas was
titled with DK68 region names; a brain map whose colour scale was cut gave no sign of it.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import Collection
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from matplotlib.offsetbox import DrawingArea, HPacker, TextArea

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.norms import GrowthChart, load_reference_chart
from delssome_norms.plotting import plot_brain_map, plot_chart_centiles, plot_person_brain_map

FLAGS = "unseen_site;age_extrapolated;missing_value;poor_fit;interval_uncalibrated"
"""Every flag a drawable score can carry at once (a drawn target whose own chart is unreliable is
refused; other targets' chart_unreliable is not its flag)."""


@pytest.fixture(scope="module")
def chart() -> GrowthChart:
    return load_reference_chart()


def _drawn(fig):
    """The figure rendered as ``charts plot`` saves it (Agg canvas, final layout)."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig


def _legend_entries(legend) -> dict[str, list[tuple[float, ...]]]:
    """Each legend entry's label -> the colours of its swatches, left to right (repeats of the
    same colour within one swatch collapsed)."""
    entries = {}
    for box in legend.findobj(HPacker):
        children = box.get_children()
        if len(children) != 2 or not isinstance(children[0], DrawingArea):
            continue
        if not isinstance(children[1], TextArea):
            continue
        colours: list[tuple[float, ...]] = []
        for artist in children[0].get_children():
            rgba = _hue(artist)
            if not colours or colours[-1] != rgba:
                colours.append(rgba)
        entries[children[1].get_text()] = colours
    return entries


def _hue(artist) -> tuple[float, ...]:
    """An artist's colour without alpha (the alpha is the band's depth), rounded."""
    if isinstance(artist, Line2D):
        rgba = artist.get_color()
    elif isinstance(artist, Collection):
        rgba = artist.get_facecolor()[0]
    else:  # a legend's patch
        rgba = artist.get_facecolor()
    return tuple(round(c, 3) for c in to_rgba(rgba)[:3])


def _panel_colour(ax, label: str) -> tuple[float, ...]:
    """Colour of the band or line a panel drew under ``label``."""
    for artist in [*ax.collections, *ax.lines]:
        if artist.get_label() == label:
            return _hue(artist)
    raise AssertionError(f"no {label!r} in panel {ax.get_title()!r}")


@pytest.mark.parametrize("person_sex", [None, "female", "male"])
def test_the_legend_shows_each_panels_colours(chart, person_sex) -> None:
    """The key of the bands and the median was taken from the panel it sat under (male blue with
    no person, female pink with a male person): the other panel's curves had no key."""
    person = None
    if person_sex is not None:
        person = {"subject_id": "sub-01", "sex": person_sex, "age_in_years": 40.0, "value": 3.2,
                  "centile": 0.6}  # fmt: skip
    fig = _drawn(plot_chart_centiles(chart, person=person))
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().rsplit(" - ", 1)[1] for ax in panels] == ["female", "male"]
    (legend,) = [ax.get_legend() for ax in panels if ax.get_legend() is not None]
    entries = _legend_entries(legend)
    keyed = [label for label in entries if "centiles" in label or label == "median"]
    assert keyed == ["2.5-97.5th centiles", "5-95th centiles", "25-75th centiles", "median"]
    for label in keyed:
        expected = [_panel_colour(ax, label) for ax in panels]
        assert expected[0] != expected[1]  # the two sexes differ, so the check means something
        assert entries[label] == expected, label
    if person is not None:
        assert f"sub-01 ({person_sex} panel)" in entries


@pytest.mark.parametrize(
    ("sex", "sexes", "age"),
    [
        ("female", None, 5.0),
        ("female", ["female"], 50.0),
        ("female", ["female"], 5.0),
        ("male", None, 5.0),
    ],
)
def test_a_flagged_persons_label_stays_off_the_axis_label(chart, sex, sexes, age) -> None:
    """A long ID with every flag: the box, wider than the panel, ran over the y-axis label (and
    on a one-panel chart, constrained layout squeezed the panel to a sliver to make room)."""
    subject = "sub-with-a-long-identifier-01"
    person = {"subject_id": subject, "sex": sex, "age_in_years": age, "value": 3.3,
              "centile": 0.62, "flag": FLAGS}  # fmt: skip
    fig = _drawn(plot_chart_centiles(chart, person=person, sexes=sexes))
    panels = [ax for ax in fig.axes if ax.get_title()]
    ax = next(a for a in panels if a.get_title().endswith(f" - {sex}"))
    (note,) = ax.texts
    box = note.get_bbox_patch().get_window_extent()
    ylabel = panels[0].yaxis.label.get_window_extent()
    assert not box.overlaps(ylabel)
    panel = ax.get_window_extent()
    assert panel.x0 <= box.x0 and box.x1 <= panel.x1 and panel.y0 <= box.y0 and box.y1 <= panel.y1
    # the panels keep a usable width: each at least half of its share of the figure
    share = fig.bbox.width / len(panels)
    assert all(a.get_window_extent().width > 0.5 * share for a in panels)
    # nothing of the label was lost to the wrapping
    words = " ".join(note.get_text().split())
    assert words.startswith(f"{subject}: 62nd centile")
    assert all(flag in words for flag in FLAGS.split(";"))
    # the legend fits under its panel and inside the figure
    (legend,) = [a.get_legend() for a in panels if a.get_legend() is not None]
    extent = legend.get_window_extent()
    assert fig.bbox.x0 <= extent.x0 and extent.x1 <= fig.bbox.x1 and extent.y0 >= fig.bbox.y0


def test_a_one_panel_chart_shows_its_whole_title(chart) -> None:
    """The model formula in the title ran off both sides of a 5-inch one-panel figure."""
    fig = _drawn(plot_chart_centiles(chart, sexes=["male"]))
    title = fig._suptitle
    extent = title.get_window_extent()
    assert fig.bbox.x0 <= extent.x0 and extent.x1 <= fig.bbox.x1 and extent.y1 <= fig.bbox.y1
    assert " ".join(title.get_text().split()).endswith(f"({chart.formulas_['mu']})")
    assert fig.axes[0].get_xlabel() == "Age (years)"


NAMES10 = [f"7Networks_{h}_{k}" for h in ("LH", "RH") for k in range(5)]


def test_a_chart_of_another_atlas_is_titled_with_its_own_region_names() -> None:
    """A chart of a 10-region atlas (which records its region names) titled ei_ratio_roi_4 with
    the 5th DK68 name, lh_entorhinal."""
    from delssome_norms.datasets.reference import load_reference_table
    from delssome_norms.io.ei_table import region_columns

    table = load_reference_table().iloc[::20].reset_index(drop=True)
    keep = set(region_columns(10))
    table = table.drop(
        columns=[c for c in table.columns if c.startswith("ei_ratio_roi_") and c not in keep]
    )
    fitted = GrowthChart("NO", mu_df=3, sigma_df=3).fit(
        table, targets=["ei_ratio_roi_4"], regions=NAMES10
    )
    fig = plot_chart_centiles(fitted, "ei_ratio_roi_4")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["7Networks_LH_4 - female", "7Networks_LH_4 - male"]
    assert fig.axes[0].get_ylabel() == "E/I ratio, 7Networks_LH_4 (ei_ratio_roi_4)"
    assert DK68_REGIONS[4] not in " ".join([*titles, fig.axes[0].get_ylabel()])


def _colour_bar(fig):
    (bar,) = [ax for ax in fig.axes if ax.get_ylabel()]
    return bar


@pytest.mark.parametrize(("extreme", "ends"), [({3: 6.0}, 1), ({3: 6.0, 9: -7.0}, 2), ({3: 2.0}, 0)])
def test_a_cut_z_scale_shows_pointed_colour_bar_ends(extreme, ends) -> None:
    """|z| beyond 4 is drawn at 4; the colour bar gave no sign that the scale was cut."""
    z = np.linspace(-1.0, 1.0, 68)
    for k, v in extreme.items():
        z[k] = v
    fig = plot_person_brain_map(z, "sub-01")
    bar = _colour_bar(fig)
    assert bar.get_ylabel() == "z-score (0 = chart median)"
    assert len(bar.patches) == ends  # the triangles at the cut ends
    assert bar.get_ylim() == pytest.approx((-4.0, 4.0) if ends else (-2.5, 2.5))


def test_a_brain_map_with_limits_inside_the_data_points_its_colour_bar_ends() -> None:
    values = np.linspace(-2.0, 2.0, 68)
    assert len(_colour_bar(plot_brain_map(values, vmin=-1, vmax=1, colorbar_label="d")).patches) == 2
    assert len(_colour_bar(plot_brain_map(values, vmin=-3, vmax=1, colorbar_label="d")).patches) == 1
    assert len(_colour_bar(plot_brain_map(values, colorbar_label="d")).patches) == 0


def test_a_centile_without_its_mirror_is_drawn_and_named(chart) -> None:
    """``q=[10, 50]`` drew the median alone: the 10th centile has no 90th to make a band with,
    and was left out without a word."""
    from delssome_norms.norms.chart import age_grid

    fig = plot_chart_centiles(chart, q=[10, 50])
    ages = age_grid(*chart.chart_range_)
    for ax, sex in zip([a for a in fig.axes if a.get_title()], ["female", "male"]):
        expected = chart.centiles(ages, sex, q=[10], targets=["ei_ratio_mean"])["C10"]
        (line,) = [ln for ln in ax.lines if ln.get_label() == "other centiles"]
        np.testing.assert_allclose(line.get_ydata(), expected)
        assert [t.get_text() for t in ax.texts] == ["10th"]
    (legend,) = [a.get_legend() for a in fig.axes if a.get_legend() is not None]
    assert _legend_entries(legend)["other centiles"] == [
        _panel_colour(ax, "other centiles") for ax in fig.axes if ax.get_title()
    ]
