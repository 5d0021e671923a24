"""Region labels that would be misread, refused with what to do.

- :func:`is_label_row` / :func:`label_row_error`: a header-less time series whose numeric first
  row is a header of atlas label numbers (``2, 4, 6, ...`` as atlas-label exports write, or
  wmparc's ``3001 ...``), not a frame: taken for a frame it adds a frame and changes the FC.
- :func:`refuse_white_matter`: FreeSurfer ``wmparc`` white-matter labels (``wm-lh-bankssts``,
  ``Left-UnsegmentedWhiteMatter``), which read as cortical DK regions once their shared ``wm-``
  is taken for an atlas prefix.
- :func:`same_order_names`: a matrix (FC, SC) whose row names list the regions in another order
  than its column names while its values are symmetric only as written: the names contradict
  the values, and the matrix put in order by name is no longer symmetric.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.regions import freesurfer_id_names, region_match_key

WM_LABEL_IDS = frozenset([*range(3001, 3036), *range(4001, 4036), 5001, 5002])
"""FreeSurferColorLUT IDs of wmparc's white matter: ``wm-lh-*`` 3001-3035, ``wm-rh-*`` 4001-4035,
``Left-/Right-UnsegmentedWhiteMatter`` 5001/5002."""

_WM_NAME = re.compile(r"(?:^|[-_. ])(?:wm|white[-_ ]?matter)[-_. ]?(?:lh|rh|l|r|left|right)[-_. ]")
"""A white-matter label with a hemisphere (``wm-lh-x``, ``wm_rh_x``, ``Desikan_wm-lh-x``)."""


def is_label_row(first: np.ndarray, body: np.ndarray) -> bool:
    """Whether a numeric first row is a header of label numbers: distinct whole numbers above a
    body whose values are not all whole numbers (a first row that differs in kind from the
    frames below it; an all-integer table, e.g. raw intensities, is taken as data)."""
    first = np.asarray(first, dtype=np.float64)
    if first.ndim != 1 or first.size < 2 or not np.all(np.isfinite(first)):
        return False
    if not np.all(first == np.round(first)) or np.unique(first).size != first.size:
        return False
    values = np.asarray(body, dtype=np.float64)
    values = values[np.isfinite(values)]
    return bool(values.size) and not np.all(values == np.round(values))


def label_row_error(first: np.ndarray, name: str) -> InvalidInputError:
    """The error for a first row of label numbers (:func:`is_label_row`) that are neither
    FreeSurfer DK68 IDs nor a numbering 0..N-1 / 1..N: it names the file and what to do."""
    codes = [int(v) for v in np.asarray(first, dtype=np.float64)]
    shown = ", ".join(str(c) for c in codes[:4]) + (", ..." if len(codes) > 4 else "")
    if 2 * sum(c in WM_LABEL_IDS for c in codes) > len(codes):
        return InvalidInputError(
            f"its first row ({shown}) is a header of FreeSurfer white-matter label IDs (wmparc: "
            "wm-lh-* 3001-3035, wm-rh-* 4001-4035), not cortical regions: give the time series "
            "of the cortical parcels (aparc: ctx-lh-* 1001-1035, ctx-rh-* 2001-2035)",
            name,
        )
    if freesurfer_id_names(codes) is not None:
        return InvalidInputError(
            f"its first row ({shown}) holds FreeSurfer DK68 label IDs, but with a first column "
            "that is neither frame numbers nor evenly spaced times before the regions' columns: "
            "remove that column (or write the table without it), so that each column is a region",
            name,
        )
    return InvalidInputError(
        f"its first row ({shown}) holds {len(codes)} distinct whole numbers above non-integer "
        "values: it looks like a header of atlas label numbers, not a frame, and they are "
        "neither FreeSurfer DK68 label IDs (1001-1035, 2001-2035) nor a numbering 0..N-1 or "
        "1..N, so which column is which region cannot be told: give the columns region names "
        "(lh_bankssts, ctx-lh-bankssts, ...), or, if the columns are already in atlas order, "
        "remove the header row",
        name,
    )


def is_white_matter(label: str) -> bool:
    """Whether a column name is a FreeSurfer white-matter label (``wm-lh-bankssts``,
    ``Left-UnsegmentedWhiteMatter``, ``Left-Cerebral-White-Matter``, ``WM-hypointensities``)."""
    text = str(label).strip().strip("\"'").lower()
    bare = "".join(c for c in text if c.isalnum())
    return bool(_WM_NAME.search(text)) or "whitematter" in bare or bare.startswith("wmhypo")


def refuse_white_matter(tokens: Sequence[str], name: str) -> None:
    """Refuse a header with white-matter labels (:func:`is_white_matter`): they are no cortical
    regions, and ``wm-lh-x`` would be matched to the DK region ``x``."""
    wm = [str(t).strip() for t in tokens if is_white_matter(t)]
    if not wm:
        return
    shown = ", ".join(repr(t) for t in wm[:3]) + (", ..." if len(wm) > 3 else "")
    fix = (
        "give the time series of the cortical parcels (aparc's ctx-lh-* and ctx-rh-*)"
        if len(wm) == len(tokens)
        else "remove those columns"
    )
    raise InvalidInputError(
        f"{len(wm)} of its {len(tokens)} column names are FreeSurfer white-matter labels "
        f"({shown}), not cortical regions of the atlas: {fix}",
        name,
    )


def same_order_names(
    values: np.ndarray,
    header: list[str] | None,
    labels: list[str] | None,
    name: str,
    tol: float = 1e-6,
) -> tuple[np.ndarray, list[str] | None, list[str] | None]:
    """``(values, header, labels)`` as given, after refusing a square matrix whose row names
    ``labels`` list the column names' regions in another order while the values are symmetric
    as written and not once the rows are put in the columns' order by name: the names
    contradict the values (an FC written with one list of names for the rows and another for
    the columns). Rows named in another order whose values follow their names pass (the readers
    put them in order by name)."""
    if header is None or labels is None or np.ndim(values) != 2:
        return values, header, labels
    n = len(header)
    if np.shape(values) != (n, n) or len(labels) != n:
        return values, header, labels
    cols = [region_match_key(h) for h in header]
    rows = [region_match_key(r) for r in labels]
    if cols == rows or len(set(cols)) != n or set(cols) != set(rows):
        return values, header, labels
    arr = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        return values, header, labels
    limit = tol * max(1.0, float(np.abs(arr).max()))
    where = {k: i for i, k in enumerate(rows)}
    by_name = arr[[where[k] for k in cols]]  # the rows in the columns' order
    if np.abs(arr - arr.T).max() > limit or np.abs(by_name - by_name.T).max() <= limit:
        return values, header, labels
    raise InvalidInputError(
        f"its row names list the regions in another order than its column names (rows "
        f"{labels[0]!r}, {labels[1]!r}, ...; columns {header[0]!r}, {header[1]!r}, ...), and its "
        "values are symmetric as written but not once the rows are put in the columns' order by "
        "name: the row or the column names do not belong to their values; write the matrix with "
        "one list of names for rows and columns (pandas: pd.DataFrame(fc, index=names, "
        "columns=names))",
        name,
    )
