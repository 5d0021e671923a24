"""Warnings about a structural connectivity that passes the input gates but cannot be what the
model expects (:func:`~delssome_norms.io.checks.check_sc` calls :func:`warn_implausible_sc`).

Two kinds, each an :class:`~delssome_norms.errors.InputWarning`, never a refusal (a lab may have
its reasons):

* regions without any connection: the model gives them no input from the other regions, so
  their simulated FC with every other region is noise (a tractography that missed them, or a
  threshold that removed them);
* a heavy-tailed SC (largest connection more than :data:`SC_HEAVY_TAIL_RATIO` times the median
  nonzero one), as raw streamline counts are: the model scales the SC to a maximum of 0.02, so
  most connections become too weak to couple the regions (the shipped template is log-scaled,
  ``log1p``: its ratio is 1.6).

Each text names the file, so Python's warning filters (and ``validate``'s) show it once per file.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from delssome_norms.errors import InputWarning
from delssome_norms.io.regions import DK68_REGIONS

SC_HEAVY_TAIL_RATIO = 20.0
"""Largest / median of the nonzero off-diagonal SC entries above which the SC is warned about
as heavy-tailed (raw streamline counts: 60-1000; the log1p-scaled template: 1.6)."""
SC_SCALED_MAX = 0.02
"""The model scales an SC to this maximum (docs/science.md), named in the heavy-tail warning."""
SHOWN_REGIONS = 5
"""Regions named in the warning about regions without connections (the others counted)."""


def isolated_regions(sc: np.ndarray) -> np.ndarray:
    """0-based indices of the regions with no connection to or from any other region."""
    arr = np.asarray(sc, dtype=np.float64)
    off = arr * ~np.eye(arr.shape[0], dtype=bool)
    return np.flatnonzero((off != 0).sum(axis=0) + (off != 0).sum(axis=1) == 0)


def heavy_tail_ratio(sc: np.ndarray) -> float | None:
    """Largest / median of the nonzero off-diagonal entries (None with fewer than 2 of them)."""
    arr = np.asarray(sc, dtype=np.float64)
    values = arr[~np.eye(arr.shape[0], dtype=bool)]
    values = values[values > 0]
    if values.size < 2:
        return None
    return float(values.max() / np.median(values))


def _region_label(i: int, regions: Sequence[str] | None) -> str:
    return str(regions[i]) if regions is not None else f"region {i}"


def warn_implausible_sc(
    sc: np.ndarray, input_name: str, regions: Sequence[str] | None = None, stacklevel: int = 3
) -> None:
    """Warn (:class:`~delssome_norms.errors.InputWarning`) about regions without any connection
    and about a heavy-tailed SC (raw streamline counts), for a checked SC (square, non-negative,
    zero diagonal).

    ``regions``: the SC's region names in its row order; without them a 68-region SC is named
    in the DK68 order (as the fit reads it) and other ones by 0-based index (``region 3``, as
    ``region_index``). ``stacklevel``: that of the caller to name (default: the caller of the
    function that calls this one).
    """
    arr = np.asarray(sc, dtype=np.float64)
    n = arr.shape[0]
    if regions is not None and len(regions) != n:
        regions = None
    if regions is None and n == len(DK68_REGIONS):
        regions = DK68_REGIONS
    lonely = isolated_regions(arr)
    if lonely.size:
        shown = ", ".join(_region_label(int(i), regions) for i in lonely[:SHOWN_REGIONS])
        more = f" and {lonely.size - SHOWN_REGIONS} more" if lonely.size > SHOWN_REGIONS else ""
        pairs = n * (n - 1)
        density = float(((arr != 0) & ~np.eye(n, dtype=bool)).sum()) / pairs if pairs else 0.0
        warnings.warn(
            f"{input_name}: {lonely.size} of {n} regions {'has' if lonely.size == 1 else 'have'} "
            f"no connection in the SC ({shown}{more}; {density:.1%} of region pairs connected): "
            "the model gives them no input from the other regions, so their simulated FC with "
            "them is noise alone; check the SC (a tractography that missed them, or a threshold "
            "that removed their connections?)",
            InputWarning,
            stacklevel=stacklevel,
        )
    ratio = heavy_tail_ratio(arr)
    if ratio is not None and ratio > SC_HEAVY_TAIL_RATIO:
        warnings.warn(
            f"{input_name}: the SC's largest connection is {ratio:.0f} x its median nonzero one "
            f"(the template's: 1.6 x): raw streamline counts? log-scale them, e.g. log1p, as the "
            f"template is; the model scales the SC to a maximum of {SC_SCALED_MAX:g}, so its "
            f"median connection becomes {SC_SCALED_MAX / ratio:.2g} and the regions barely couple",
            InputWarning,
            stacklevel=stacklevel,
        )
