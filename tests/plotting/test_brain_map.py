"""The DK68 brain map: markers at the template centroids, colour bar, offline, input checks."""

from __future__ import annotations

import socket

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection

from delssome_norms.datasets import DK68_REGIONS, load_default_template
from delssome_norms.errors import InvalidInputError
from delssome_norms.plotting import plot_brain_map


@pytest.fixture
def no_network(monkeypatch):
    """Fail any attempt to open a network connection."""

    def refuse(*args, **kwargs):
        raise AssertionError("plot_brain_map tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def _marker_offsets(fig) -> np.ndarray:
    offsets = [
        c.get_offsets()
        for ax in fig.axes
        for c in ax.collections
        if isinstance(c, PathCollection)  # the markers (outlines are other collection types)
    ]
    return np.concatenate(offsets) if offsets else np.empty((0, 2))


def test_brain_map_offline_with_colorbar(no_network, tmp_path):
    values = np.linspace(-1.0, 2.0, 68)
    fig = plot_brain_map(values, colorbar_label="E/I difference", title="test map", center=0.0)
    cbar_axes = [ax for ax in fig.axes if ax.get_ylabel() == "E/I difference"]
    assert len(cbar_axes) == 1
    assert cbar_axes[0].get_ylim() == pytest.approx((-2.0, 2.0))  # symmetric around center
    path = tmp_path / "map.png"
    fig.savefig(path, dpi=60)
    assert path.stat().st_size > 10000


def test_axial_view_places_one_marker_per_region_at_the_centroids():
    values = pd.Series(np.arange(68.0), index=list(DK68_REGIONS))
    values.iloc[:5] = np.nan  # not drawn
    fig = plot_brain_map(values, display_mode="z")
    xy = _marker_offsets(fig)
    assert len(xy) == 63
    centroids = load_default_template().centroids[5:, :2]
    # The axial view shows x and y in mm: every drawn marker sits on a centroid.
    dist = np.min(np.linalg.norm(xy[:, None, :] - centroids[None, :, :], axis=2), axis=1)
    assert np.all(dist < 1e-6)


def test_brain_map_inside_a_given_axes():
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6))
    ax_top, ax_bottom = fig.subplots(2, 1)
    assert plot_brain_map(np.ones(68) * 0.5, ax=ax_bottom, display_mode="z", vmin=0, vmax=1) is fig
    assert not ax_bottom.axison and ax_top.axison


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (np.ones(67), "expected 68 values"),
        ({"lh_nowhere": 1.0}, "unknown region name"),
        (np.full(68, np.nan), "no finite value"),
    ],
)
def test_brain_map_rejects_bad_values(values, message):
    with pytest.raises(InvalidInputError, match=message):
        plot_brain_map(values)


def test_a_long_person_title_stays_inside_the_figure_and_above_the_brains():
    """A subtitle with a site and three flags ran off the right edge (the flag was lost)."""
    from delssome_norms.plotting.person import plot_person_brain_map

    subtitle = (
        "age 45.3, female, site SiteA_Siemens_Prisma_long_name "
        "[flag: poor_fit, interval_uncalibrated, age_extrapolated]"
    )
    fig = plot_person_brain_map(np.zeros(68), "synth-00187", value="z", subtitle=subtitle)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    (text,) = [t for t in fig.texts if t.get_text().startswith("synth-00187")]
    box = text.get_window_extent(renderer)
    width, height = fig.bbox.width, fig.bbox.height
    assert 0 <= box.x0 and box.x1 <= width and box.y1 <= height  # nothing cut off
    assert "age_extrapolated" in text.get_text()
    brains = [a for a in fig.axes if a.get_ylabel() == ""]
    top = max(a.get_window_extent(renderer).y1 for a in brains)
    assert box.y0 >= top - 1  # above the glass brains, not over them
