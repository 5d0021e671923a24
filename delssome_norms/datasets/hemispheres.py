"""Each region's hemisphere read from its name, for any atlas whose names say it.

Atlases spell the hemisphere many ways: ``lh_precentral`` / ``ctx-lh-precentral`` / ``lh.V1``
(FreeSurfer), ``7Networks_LH_Vis_1`` (Schaefer), ``L_V1_ROI`` (Glasser), ``Precentral_L`` (AAL,
Brainnetome), ``Left-Hippocampus`` (FreeSurfer aseg), ``precentral_rh``. :func:`hemisphere_from_names`
reads them all (case-insensitive) and gives the indicator the FC gradient's hemisphere guard uses
(:func:`~delssome_norms.fit.design.diffusion_gradient`), or None when the names do not say it for
every region.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

__all__ = ["hemisphere_from_names", "region_hemisphere"]

_TOKENS = re.compile(r"[-_.\s]+")
_ANYWHERE = {"lh": 0, "rh": 1, "left": 0, "right": 1}
"""Tokens that say the hemisphere wherever they stand in a name."""
_ENDS = {"l": 0, "r": 1}
"""One-letter tokens that say it only as a name's first or last token (``L_V1_ROI``,
``Precentral_R``); inside a name a lone letter may be part of the region's own name."""


def region_hemisphere(name: str) -> int | None:
    """0 (left) or 1 (right) for a region name that says its hemisphere, else None.

    Case-insensitive. ``lh``/``rh``/``left``/``right`` count as whole tokens anywhere in the
    name (tokens are separated by ``_``, ``-``, ``.`` or spaces); ``L``/``R`` only as the first
    or last token. A name with markers of both hemispheres, or none, gives None.

    Examples
    --------
    >>> [region_hemisphere(n) for n in ("7Networks_LH_Vis_1", "L_V1_ROI", "Right-Putamen")]
    [0, 0, 1]
    >>> region_hemisphere("Vermis_1_2") is None
    True
    """
    tokens = [t for t in _TOKENS.split(str(name).strip().strip("\"'").lower()) if t]
    found = {_ANYWHERE[t] for t in tokens if t in _ANYWHERE}
    if tokens:
        found |= {_ENDS[t] for t in {tokens[0], tokens[-1]} if t in _ENDS and len(tokens) > 1}
    return found.pop() if len(found) == 1 else None


def hemisphere_from_names(names: Sequence[str] | None) -> np.ndarray | None:
    """Hemisphere indicator (0.0 left, 1.0 right) of an atlas's regions, read from their names.

    Parameters
    ----------
    names : sequence of str, or None
        Region names in the order of the FC's rows.

    Returns
    -------
    ndarray of float64, shape (N,), or None
        None when ``names`` is None or a single string, when some name says no hemisphere (or
        both, e.g. a midline structure), or when the names do not cover both hemispheres.

    Examples
    --------
    >>> hemisphere_from_names(["lh_cuneus", "rh.cuneus", "Left-Caudate", "Precentral_R"])
    array([0., 1., 0., 1.])
    >>> hemisphere_from_names(["lh_cuneus", "lh_insula"]) is None
    True
    """
    if names is None or isinstance(names, str) or len(names) == 0:
        return None
    hemi = [region_hemisphere(n) for n in names]
    if any(h is None for h in hemi) or len(set(hemi)) != 2:
        return None
    return np.asarray(hemi, dtype=np.float64)
