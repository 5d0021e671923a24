"""Regional values on a glass brain: nilearn markers at the DK68 region centroids (offline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from delssome_norms.datasets import DK68_REGIONS, load_default_template
from delssome_norms.errors import InvalidInputError


def _values_by_region(
    values: ArrayLike | pd.Series | Mapping[str, float], regions: Sequence[str]
) -> np.ndarray:
    """Values in ``regions`` order (NaN where absent) from an array, a Series or a mapping."""
    if isinstance(values, (pd.Series, Mapping)):
        keys = list(values.index) if isinstance(values, pd.Series) else list(values)
        unnamed = int(pd.isna(pd.Series(keys, dtype=object)).sum())
        if unnamed:  # e.g. sex_difference_tests' region column of a table of another atlas
            raise InvalidInputError(
                f"{unnamed} value(s) have no region name (None/NaN in the index): a global "
                "target such as ei_ratio_mean (keep the regional rows only), or a table of an "
                f"atlas other than these {len(regions)} regions (pass its values in region order "
                "with its regions= and coords=)",
                "values",
            )
        repeated = sorted({str(k) for k in pd.Series(keys, dtype=object)[lambda k: k.duplicated()]})
        if repeated:  # e.g. every test's rows of sex_difference_tests: the last one would win
            raise InvalidInputError(
                f"region name(s) given more than once ({', '.join(repeated[:3])}"
                f"{' ...' if len(repeated) > 3 else ''}); pass one value per region (e.g. the rows "
                "of one test)",
                "values",
            )
        mapping = dict(values.items())
        unknown = sorted(str(k) for k in mapping if k not in regions)
        if unknown:
            raise InvalidInputError(
                f"unknown region name(s) {', '.join(unknown[:5])}; expected DK68 names such as "
                f"{regions[0]!r}",
                "values",
            )
        arr = np.array([mapping.get(r, np.nan) for r in regions], dtype=np.float64)
    else:
        try:
            arr = np.asarray(values, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise InvalidInputError("values must be numbers, one per region", "values") from None
        if arr.size != len(regions):
            other = (
                "; values of another atlas need its regions= and coords= (its centroids in mm): "
                "the DK68 centroids would put them at wrong places"
            ) * (tuple(regions) == DK68_REGIONS)
            raise InvalidInputError(
                f"expected {len(regions)} values (one per region), got {arr.size}{other}", "values"
            )
    if not np.isfinite(arr).any():
        raise InvalidInputError("no finite value to plot", "values")
    return np.where(np.isinf(arr), np.nan, arr)  # an infinite value is not drawn (no colour)


def colorbar_extend(values: ArrayLike, vmin: float, vmax: float) -> str:
    """The colour bar's pointed ends for ``values`` drawn between ``vmin`` and ``vmax``.

    ``"min"``/``"max"``/``"both"`` when some finite values lie below ``vmin`` / above ``vmax`` /
    both (they take the end colour, and the pointed end says so), else ``"neither"``.
    """
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    below, above = bool((arr < vmin).any()), bool((arr > vmax).any())
    return {(True, True): "both", (True, False): "min", (False, True): "max"}.get(
        (below, above), "neither"
    )


def plot_brain_map(
    values: ArrayLike | pd.Series | Mapping[str, float],
    ax: Axes | None = None,
    *,
    regions: Sequence[str] = DK68_REGIONS,
    coords: np.ndarray | None = None,
    cmap: str = "viridis",
    vmin: float | None = None,
    vmax: float | None = None,
    center: float | None = None,
    colorbar_label: str = "",
    title: str | None = None,
    display_mode: str = "lzry",
    node_size: float = 60.0,
    extend: str | None = None,
    greyed: ArrayLike | None = None,
) -> Figure:
    """Show one value per region as coloured markers on a glass brain, with a colour bar.

    Uses :func:`nilearn.plotting.plot_markers` at the region centroids of the packaged template
    (:func:`delssome_norms.datasets.load_default_template`, approximately MNI); the glass-brain
    outlines ship with nilearn, so nothing is downloaded. Regions with NaN are not drawn.

    Parameters
    ----------
    values : array-like of shape (68,), Series or mapping
        Values in ``regions`` order, or keyed by region name (e.g. the ``region`` column of
        :func:`delssome_norms.stats.sex_difference_tests` as index).
    ax : Axes, optional
        The area to draw into (its frame is hidden; nilearn adds its own axes inside it).
    regions : sequence of str
        Region names (default DK68).
    coords : ndarray of shape (len(regions), 3), optional
        Marker positions in mm; default the template centroids (DK68 only).
    cmap : str
        Matplotlib colormap name (``"RdBu_r"`` suits signed values).
    vmin, vmax : float, optional
        Colour limits; default the data range.
    center : float, optional
        Make the colour limits symmetric around this value (0 for differences, 1 for ratios).
    colorbar_label : str
        Label of the colour bar.
    title : str, optional
        Figure title (may hold line breaks).
    display_mode : str
        nilearn display mode (``"lzry"``: left, top, right, back; ``"ortho"``, ``"z"``, ...).
    node_size : float
        Marker area in points².
    extend : {"neither", "min", "max", "both"}, optional
        Pointed ends of the colour bar, saying that values lie beyond its limits (drawn in the
        end colour). Default: from the values and the colour limits.
    greyed : array-like of bool, shape (len(regions),), optional
        Regions drawn as grey, hatched markers without a colour, whatever their value (e.g.
        scores from an unreliable chart); their values neither colour nor scale the map.

    Returns
    -------
    Figure
    """
    try:
        from nilearn import plotting as nplot  # heavy import, only when a map is drawn
    except ImportError as exc:
        raise InvalidInputError(
            f"brain maps need nilearn ({exc}); install it with `pip install nilearn`", "nilearn"
        ) from None

    grey = np.zeros(len(regions), dtype=bool)
    if greyed is not None:
        grey = np.asarray(greyed, dtype=bool).ravel()
        if grey.size != len(regions):
            raise InvalidInputError(
                f"expected {len(regions)} booleans (one per region), got {grey.size}", "greyed"
            )
        values = np.where(grey, np.nan, _values_by_region(values, tuple(regions)))
    arr = _values_by_region(values, tuple(regions))
    if coords is None:
        if tuple(regions) != DK68_REGIONS:
            raise InvalidInputError("pass coords for regions other than the DK68 set", "coords")
        coords = load_default_template().centroids
    coords = np.asarray(coords, dtype=np.float64)
    if coords.shape != (len(regions), 3):
        raise InvalidInputError(
            f"expected coords of shape ({len(regions)}, 3), got {coords.shape}", "coords"
        )
    finite = np.isfinite(arr)
    if vmin is not None and vmax is not None and not float(vmin) < float(vmax):
        raise InvalidInputError(f"vmin ({vmin}) must be below vmax ({vmax})", "vmin")
    if cmap not in colormaps:
        raise InvalidInputError(f"unknown colour map {cmap!r} (a matplotlib colormap name)", "cmap")
    lo = float(np.nanmin(arr)) if vmin is None else float(vmin)
    hi = float(np.nanmax(arr)) if vmax is None else float(vmax)
    if center is not None:
        half = max(abs(lo - center), abs(hi - center)) or 1.0
        lo, hi = center - half, center + half
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    if extend is None:  # values beyond vmin/vmax took the end colour without a sign of it
        extend = colorbar_extend(arr, lo, hi)
    elif extend not in ("neither", "min", "max", "both"):
        raise InvalidInputError(f"must be one of neither, min, max, both; got {extend!r}", "extend")
    nl_title = title
    if ax is None:
        # the title goes above the brains (nilearn draws it over them, and a long one ran off
        # the figure): 0.22 inch per line on top of the 3.2-inch display
        lines = title.count("\n") + 1 if title else 0
        height = 3.2 + 0.22 * lines + (0.08 if lines else 0.0)
        fig = Figure(figsize=(11.0, height))
        rect = (0.0, 0.0, 0.9, 3.2 / height)
        if title:
            fig.text(0.01, 1.0 - 0.04 / height, title, ha="left", va="top", fontsize=10)
            nl_title = None
    else:
        fig = ax.figure
        box = ax.get_position()
        rect = (box.x0, box.y0, 0.9 * box.width, box.height)
        ax.set_axis_off()
    try:
        display = nplot.plot_markers(
            arr[finite],
            coords[finite],
            node_cmap=cmap,
            node_vmin=lo,
            node_vmax=hi,
            node_size=node_size,
            display_mode=display_mode,
            figure=fig,
            axes=rect,
            title=nl_title,
            colorbar=False,
            alpha=0.9,
        )
    except ValueError as exc:  # nilearn names the valid modes of its installed version
        if "display_mode" not in str(exc):
            raise
        raise InvalidInputError(str(exc), "display_mode") from None
    if grey.any():  # no colour: a grey disc with hatching reads as "no value" in print too
        display.add_markers(
            coords[grey],
            marker_color="#d9d9d9",
            marker_size=node_size,
            edgecolors="#6e6e6e",
            linewidths=0.6,
            hatch="////",
        )
    x0, y0, w, h = rect
    cax = fig.add_axes((x0 + w + 0.01 * (1 - x0), y0 + 0.15 * h, 0.012, 0.7 * h))
    bar = fig.colorbar(ScalarMappable(Normalize(lo, hi), colormaps[cmap]), cax=cax, extend=extend)
    bar.set_label(colorbar_label)
    return fig
