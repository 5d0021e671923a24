"""Region-name headers of time-series and FC files, matched to an atlas by name.

Labs name regions many ways: ``ctx-lh-precentral`` (FreeSurfer LUT), ``lh_precentral``,
``lh.precentral``, ``L_precentral``, ``Left-precentral``, ``precentral_lh``, ``precentral_L``...
:func:`canonical_region_key` reduces each to ``(hemisphere, region)``; :func:`match_regions`
returns, for each canonical region, the column that holds it, and refuses headers with unknown,
duplicated or missing names (listing them). :data:`DK68_REGIONS` is the toolkit's canonical region
order (FreeSurfer ``aparc`` colour-table order, ``lh`` then ``rh``; re-exported by
:mod:`delssome_norms.datasets.atlas`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from delssome_norms.errors import InvalidInputError

_APARC_ORDER = (
    "bankssts", "caudalanteriorcingulate", "caudalmiddlefrontal", "cuneus", "entorhinal",
    "fusiform", "inferiorparietal", "inferiortemporal", "isthmuscingulate", "lateraloccipital",
    "lateralorbitofrontal", "lingual", "medialorbitofrontal", "middletemporal", "parahippocampal",
    "paracentral", "parsopercularis", "parsorbitalis", "parstriangularis", "pericalcarine",
    "postcentral", "posteriorcingulate", "precentral", "precuneus", "rostralanteriorcingulate",
    "rostralmiddlefrontal", "superiorfrontal", "superiorparietal", "superiortemporal",
    "supramarginal", "frontalpole", "temporalpole", "transversetemporal", "insula",
)  # fmt: skip

DK68_REGIONS: tuple[str, ...] = tuple(f"lh_{r}" for r in _APARC_ORDER) + tuple(
    f"rh_{r}" for r in _APARC_ORDER
)
"""The 68 region names, ``lh_*`` then ``rh_*``, in the toolkit's canonical order."""

_HEMI = {"lh": "lh", "l": "lh", "left": "lh", "rh": "rh", "r": "rh", "right": "rh"}
_PREFIX = re.compile(r"^(?:ctx)?[-_.]?(lh|rh|l|r|left|right)[-_.](.+)$")
_SUFFIX = re.compile(r"^(.+?)[-_.](lh|rh|l|r|left|right)$")


def canonical_region_key(name: str) -> tuple[str, str] | None:
    """``(hemisphere, region)`` of a region label, or None when no hemisphere can be read.

    Case-insensitive; the hemisphere may be a prefix (``ctx-lh-``, ``lh_``, ``lh.``, ``L_``,
    ``Left-``) or a suffix (``_lh``, ``.rh``, ``_L``, ``-right``); quotes and spaces are ignored.

    Examples
    --------
    >>> canonical_region_key("ctx-lh-precentral")
    ('lh', 'precentral')
    >>> canonical_region_key("precentral_R")
    ('rh', 'precentral')
    """
    s = str(name).strip().strip('"').strip("'").strip().lower().replace(" ", "")
    m = _PREFIX.match(s)
    if m:
        return _HEMI[m.group(1)], m.group(2)
    m = _SUFFIX.match(s)
    if m:
        return _HEMI[m.group(2)], m.group(1)
    return None


def regions_sha256(names: Sequence[str]) -> str:
    """SHA-256 (hex) of an ordered list of region names (newline-joined UTF-8)."""
    return hashlib.sha256("\n".join(str(n) for n in names).encode("utf-8")).hexdigest()


def looks_like_region_header(tokens: Sequence[str]) -> bool:
    """Whether a non-numeric first row names regions (most tokens carry a hemisphere)."""
    keys = [canonical_region_key(t) for t in tokens]
    return bool(tokens) and sum(k is not None for k in keys) >= max(2, len(tokens) // 2)


def match_regions(header: Sequence[str], canonical: Sequence[str], input_name: str) -> np.ndarray:
    """Column index of each canonical region in ``header``.

    Parameters
    ----------
    header : sequence of str, length C
        Column names of the file.
    canonical : sequence of str, length N
        The atlas' region names in canonical order (e.g. ``DK68_REGIONS``).
    input_name : str
        File name for messages.

    Returns
    -------
    ndarray of int, shape (N,)
        ``data[:, order]`` puts the columns in canonical order.

    Raises
    ------
    InvalidInputError
        Names that match no region of the atlas (listed), a region named twice, or regions
        missing from the header.
    """
    wanted = {canonical_region_key(c): i for i, c in enumerate(canonical)}
    order = np.full(len(canonical), -1, dtype=np.int64)
    unmatched, twice = [], []
    for j, name in enumerate(header):
        key = canonical_region_key(name)
        i = wanted.get(key) if key is not None else None
        if i is None:
            unmatched.append(str(name))
        elif order[i] >= 0:
            twice.append(str(name))
        else:
            order[i] = j
    n = len(canonical)
    if unmatched:
        shown = ", ".join(repr(u) for u in unmatched[:8]) + (" ..." if len(unmatched) > 8 else "")
        raise InvalidInputError(
            f"{len(unmatched)} column name(s) match no region of the {n}-region atlas: {shown} "
            f"(expected names like {canonical[0]!r}, 'ctx-lh-...', 'L_...'; or drop the header "
            "row to give the columns in atlas order)",
            input_name,
        )
    if twice:
        raise InvalidInputError(
            f"region(s) named more than once in the header: {', '.join(twice[:8])}", input_name
        )
    missing = [canonical[i] for i in np.flatnonzero(order < 0)]
    if missing:
        raise InvalidInputError(
            f"the header lacks {len(missing)} of the atlas' {n} regions: {', '.join(missing[:8])}"
            + (" ..." if len(missing) > 8 else ""),
            input_name,
        )
    return order
