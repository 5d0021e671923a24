"""Shared colours and the axes helper of the plotting modules."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure

SEX_COLORS = {"female": "#c2185b", "male": "#1565c0"}
"""Line and fill colour of each sex."""
SEX_LINESTYLES = {"female": "-", "male": "--"}
"""Line style of each sex where colour already encodes something else."""
GROUP_COLORS = {"sensory": "#e66101", "association": "#5e3c99"}
"""Colour of each region group."""
AGE_LABEL = "Age (years)"


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """Return ``(figure, axes)``: ``ax`` and its figure, or a new pyplot-free figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()
