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
_PREFIX = re.compile(r"^(?:ctx)?[-_. ]?(lh|rh|l|r|left|right)[-_. ]+(.+)$")
_SUFFIX = re.compile(r"^(.+?)[-_. ]+(lh|rh|l|r|left|right)$")
_NOT_ALNUM = re.compile(r"[^a-z0-9]")

FREESURFER_DK_IDS: dict[int, str] = {
    **{code: f"lh_{r}" for code, r in zip([*range(1001, 1004), *range(1005, 1036)], _APARC_ORDER)},
    **{code: f"rh_{r}" for code, r in zip([*range(2001, 2004), *range(2005, 2036)], _APARC_ORDER)},
}
"""FreeSurferColorLUT label IDs of the 68 DK regions (``ctx-lh-*`` 1001-1035 and ``ctx-rh-*``
2001-2035, without 1004/2004 corpus callosum): the IDs atlas tools write as column names."""


def canonical_region_key(name: str) -> tuple[str, str] | None:
    """``(hemisphere, region)`` of a region label, or None when no hemisphere can be read.

    Case-insensitive; the hemisphere may be a prefix (``ctx-lh-``, ``lh_``, ``lh.``, ``L_``,
    ``Left-``, ``Right ``) or a suffix (``_lh``, ``.rh``, ``_L``, ``-right``); quotes are
    ignored, and so are separators inside the region's name (``pars opercularis``).

    Examples
    --------
    >>> canonical_region_key("ctx-lh-precentral")
    ('lh', 'precentral')
    >>> canonical_region_key("precentral_R")
    ('rh', 'precentral')
    """
    s = " ".join(str(name).strip().strip('"').strip("'").lower().split())
    m = _PREFIX.match(s)
    if m:
        return _HEMI[m.group(1)], _NOT_ALNUM.sub("", m.group(2))
    m = _SUFFIX.match(s)
    if m:
        return _HEMI[m.group(2)], _NOT_ALNUM.sub("", m.group(1))
    return None


def region_match_key(name: str) -> object:
    """A region's hemisphere and region (``ctx-lh-precentral`` = ``lh_precentral``), or the name
    itself for names without a hemisphere (another atlas's)."""
    return canonical_region_key(name) or name


def match_region_order(theirs: Sequence[str], ours: Sequence[str]) -> list[int] | None:
    """Index in ``ours`` of each region of ``theirs`` when both list the same regions (by exact
    name, else by :func:`region_match_key`); None when they are not the same set (or a list
    names a region twice)."""
    for key in (str, region_match_key):
        a, b = [key(v) for v in theirs], [key(v) for v in ours]
        if len(set(a)) != len(a) or len(set(b)) != len(b):
            continue
        if set(a) == set(b):
            where = {k: i for i, k in enumerate(b)}
            return [where[k] for k in a]
    return None


def freesurfer_id_names(values: Sequence[float]) -> list[str] | None:
    """Region names for a row of FreeSurfer label IDs (e.g. a header ``1001, 1002, ...``), or
    None when the row is not one: most (60 of 68) DK label IDs, all integers. IDs of other
    labels are kept as text, so that matching them to the atlas lists them as unknown."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
        return None
    codes = [int(v) for v in arr]
    if len(set(codes) & set(FREESURFER_DK_IDS)) < 60:
        return None
    return [FREESURFER_DK_IDS.get(c, str(c)) for c in codes]


def header_numbers(tokens: Sequence[str]) -> list[int] | None:
    """The numbers of a header whose every name is a short prefix and a number (``roi_1``,
    ``V1``, ``Mean_1001``, ``7``), else None."""
    found = [_INDEX_NAME.fullmatch(str(t).strip()) for t in tokens]
    if not tokens or not all(found):
        return None
    return [int(m.group(1)) for m in found]


def dk_name_count(tokens: Sequence[str]) -> int:
    """How many names of a header are DK68 regions (any spelling :func:`canonical_region_key`
    reads)."""
    keys = {canonical_region_key(r) for r in DK68_REGIONS}
    return sum(canonical_region_key(t) in keys for t in tokens)


def shared_prefix_numbers(tokens: Sequence[str]) -> list[int] | None:
    """The numbers of a header whose every name is one shared prefix (any case, maybe none)
    and a number (``roi_1, roi_2``, ``R05, R04``, ``7, 3``), in the header's order; else None.
    Several prefixes (``Vis_1, SomMot_2``; ``netA0, netB1``) name an atlas's own regions."""
    numbers = header_numbers(tokens)
    if numbers is None:
        return None
    texts = [str(t).strip() for t in tokens]
    prefixes = {t[: _INDEX_NAME.fullmatch(t).start(1)].strip().casefold() for t in texts}
    return numbers if len(prefixes) == 1 else None


_INDEX_NAME = re.compile(r"[A-Za-z_ .-]{0,40}?(\d+)")


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
        # without the header a file with extra columns (subcortical labels) would be read as an
        # atlas of as many regions: the fix is to remove those columns, or to rename them
        raise InvalidInputError(
            f"{len(unmatched)} column name(s) match no region of the {n}-region atlas: {shown}; "
            "remove the columns listed if they are no cortical regions of the atlas (subcortical "
            "or other labels), or rename them to its region names (like "
            f"{canonical[0]!r}, 'ctx-lh-...', 'L_...')",
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
