"""Shared colours and the axes helper of the plotting modules."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from delssome_norms.errors import InvalidInputError

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


def check_max_points(max_points: int) -> int:
    """``max_points`` (people drawn as points; 0: the curves alone) as an int >= 0.

    Raises
    ------
    InvalidInputError
        Not a whole number >= 0.
    """
    if isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 0:
        raise InvalidInputError(f"must be an integer >= 0, got {max_points!r}", "max_points")
    return int(max_points)


def check_level(level: float) -> float:
    """``level`` (a confidence level) as a float in (0, 1).

    Raises
    ------
    InvalidInputError
        Not a number strictly between 0 and 1.
    """
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise InvalidInputError(f"must be a number in (0, 1), got {level!r}", "level") from None
    if not (math.isfinite(value) and 0.0 < value < 1.0):
        raise InvalidInputError(f"must lie in (0, 1), got {level!r}", "level")
    return value
