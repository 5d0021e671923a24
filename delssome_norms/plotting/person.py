"""Person-centred figures: one person's centile label and regional deviation map."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.plotting.brain_map import colorbar_extend, plot_brain_map

PERSON_COLOR = "#ffb300"
"""Fill of the marker of the highlighted person (amber, visible on both sexes' fans)."""

VALUE_KINDS = {
    # kind: (score-table column suffix, colour-bar label, colormap)
    "z": ("z", "z-score (0 = chart median)", "RdBu_r"),
    "centile": ("centile", "centile (%)", "RdBu_r"),
    "ei": ("harmonised", "harmonised E/I ratio", "viridis"),
}
"""What ``charts brainmap --value`` can show."""


TITLE_WIDTH = 90
"""Characters per line of a brain map's subtitle (longer lines ran off the 11-inch figure)."""
Z_COLOUR_LIMIT = 4.0
"""Largest |z| the z colour scale spans; beyond it a region takes the end colour."""


def ordinal(n: int) -> str:
    """``1`` -> ``"1st"``, ``2`` -> ``"2nd"``, ``13`` -> ``"13th"``, ``93`` -> ``"93rd"``."""
    if 10 <= n % 100 <= 20:
        suffix = "th"
    else:
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def centile_text(centile: float) -> str:
    """A centile in words, e.g. ``0.931`` -> ``"93rd centile"``.

    Parameters
    ----------
    centile : float
        Centile as a fraction in [0, 1] (the score table's ``<target>_centile``).

    Returns
    -------
    str
        Rounded to a whole percent; below 1 % ``"<1st centile"``, above 99 % ``">99th centile"``.
    """
    c = float(centile)
    if not np.isfinite(c) or not 0.0 <= c <= 1.0:
        raise InvalidInputError(f"a centile must lie in [0, 1]; got {centile!r}", "centile")
    pct = 100.0 * c
    if pct < 1.0:
        return "<1st centile"
    if pct > 99.0:
        return ">99th centile"
    return f"{ordinal(round(pct))} centile"


def person_label(subject_id: str, centile: float) -> str:
    """The label of a person on a fan chart, e.g. ``"sub-01: 93rd centile"``.

    Parameters
    ----------
    subject_id : str
        The person's ID.
    centile : float
        Centile as a fraction in [0, 1] (see :func:`centile_text`).

    Returns
    -------
    str
    """
    return f"{subject_id}: {centile_text(centile)}"


def plot_person_brain_map(
    values: Sequence[float] | np.ndarray,
    subject_id: str,
    *,
    value: str = "z",
    regions: Sequence[str] = DK68_REGIONS,
    subtitle: str = "",
    unreliable: Sequence[bool] | np.ndarray | None = None,
) -> Figure:
    """One person's regional scores on the glass brain (DK68 centroids).

    Parameters
    ----------
    values : array-like of shape (68,)
        The person's value per region in ``regions`` order: z-scores, centiles as fractions in
        [0, 1] (drawn in percent) or harmonised E/I ratios, as ``value`` says.
    subject_id : str
        Shown in the title.
    value : {"z", "centile", "ei"}
        ``z``: diverging colormap centred at 0, limits +-max(2.5, max |z|) up to
        +-:data:`Z_COLOUR_LIMIT` (larger |z| are drawn at the limit, and the title says so);
        ``centile``: diverging, 0-100 % centred at 50 (fractions in [0, 1] expected); ``ei``:
        sequential, the data range. Regions with NaN are not drawn (the title counts them).
    regions : sequence of str
        Region names (DK68 by default).
    subtitle : str
        A second title line (e.g. age, sex, site and the flags).
    unreliable : array-like of bool of shape (68,), optional
        Regions whose chart is unreliable for the person (flag ``chart_unreliable``; their z
        can be 1e20): drawn as grey, hatched markers without a colour and counted apart in the
        title; their values neither colour nor scale the map.

    Returns
    -------
    matplotlib.figure.Figure
    """
    if value not in VALUE_KINDS:
        raise InvalidInputError(f"value must be one of {', '.join(VALUE_KINDS)}; got {value!r}", "value")
    _, label, cmap = VALUE_KINDS[value]
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise InvalidInputError("values must be numbers, one per region", "values") from None
    grey = None
    if unreliable is not None:
        grey = np.asarray(unreliable, dtype=bool).ravel()
        if grey.shape != arr.shape:
            raise InvalidInputError(
                f"expected {arr.size} booleans (one per value), got {grey.size}", "unreliable"
            )
        arr = np.where(grey, np.nan, arr)
    lim: dict[str, float | None] = {"vmin": None, "vmax": None, "center": None}
    what = {"z": "regional E/I z-scores", "centile": "regional E/I centiles", "ei": "regional E/I"}
    note = ""
    extend = "neither"
    if value == "z":
        largest = float(np.nanmax(np.abs(arr))) if np.isfinite(arr).any() else 0.0
        half = min(max(2.5, largest), Z_COLOUR_LIMIT)
        if largest > Z_COLOUR_LIMIT:  # one wild region would wash out every other colour
            # the colour bar's pointed ends say which side was cut
            extend = colorbar_extend(arr, -half, half)
            arr = np.clip(arr, -half, half)
            note = f"; |z| > {Z_COLOUR_LIMIT:g} drawn at {Z_COLOUR_LIMIT:g}"
        lim = {"vmin": -half, "vmax": half, "center": 0.0}
    elif value == "centile":
        finite = arr[np.isfinite(arr)]
        if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
            raise InvalidInputError(
                f"centiles must be fractions in [0, 1]; got values from {finite.min():g} to "
                f"{finite.max():g} (percent? divide by 100)",
                "values",
            )
        arr = 100.0 * arr
        lim = {"vmin": 0.0, "vmax": 100.0, "center": 50.0}
    shown = int(np.isfinite(arr).sum())
    count = f"{len(regions)} regions" if shown == len(regions) else f"{shown} of {len(regions)} regions"
    n_grey = int(grey.sum()) if grey is not None else 0
    if n_grey:
        note += f"; {n_grey} with an unreliable chart in grey, without a score"
    title = f"{subject_id}: {what[value]} ({count}{note})"
    if subtitle:  # a second line: on one line a long site or flag list ran off the figure
        title += "\n" + textwrap.fill(subtitle, TITLE_WIDTH, break_on_hyphens=False)
    return plot_brain_map(
        arr,
        regions=regions,
        cmap=cmap,
        colorbar_label=label,
        title=title,
        node_size=90.0,
        extend=extend,
        greyed=grey,
        **lim,
    )
