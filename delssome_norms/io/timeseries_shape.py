"""What the shape and values of a table given as a BOLD time series say it is, when it is not
frames x regions: a connectivity matrix (an FC, its Fisher z or zeroed-diagonal form, a
covariance; :func:`refuse_connectivity_matrix`), or a short run saved regions x frames
(:func:`transposed_hint`).

A real BOLD run is never exactly symmetric: every one of its N (N - 1) / 2 pairs of frame i,
region j and frame j, region i would have to agree to 1e-6. A square table (N >= 3) that is
exactly symmetric off its diagonal is refused, named by its diagonal: 1 with values in [-1, 1]
an FC, 0 or blank a zeroed or Fisher z FC (or an SC), positive and bounding every entry a
covariance.
"""

from __future__ import annotations

import numpy as np

from delssome_norms.errors import InvalidInputError

SYMMETRY_TOL = 1e-6
"""Largest |A - A.T| off the diagonal, relative to max(1, max |A|), of a table taken for a
connectivity matrix (as ``FC_SYMMETRY_TOL`` of :func:`~delssome_norms.io.checks.check_fc`)."""

ATLAS_SIZES = {68: "DK68"}
"""Region counts of known atlases: a header-less run with that many rows and another number
of columns may be saved regions x frames (:func:`transposed_hint`)."""

_MIN_SIZE = 3
"""Smallest matrix tested (``MIN_REGIONS`` of :mod:`delssome_norms.io.timeseries`)."""

_GENERIC = "a connectivity matrix: FC, SC?"
"""How :func:`_matrix_kind` names a symmetric matrix of no known kind."""

_GIVE_FC = "give it with --fc (the fc column of a cohort manifest)"


def _matrix_kind(arr: np.ndarray) -> str | None:
    """What a square table exactly symmetric off its diagonal is (the problem, in words); None
    for any other table, every real BOLD run among them."""
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < _MIN_SIZE:
        return None
    n = arr.shape[0]
    off = ~np.eye(n, dtype=bool)
    upper, lower = arr[off], arr.T[off]
    if not np.isfinite(upper).all() or np.ptp(upper) == 0:
        return None
    scale = max(1.0, float(np.max(np.abs(upper))))
    if float(np.max(np.abs(upper - lower))) > SYMMETRY_TOL * scale:
        return None
    diag = np.diag(arr)
    shape = f"is a symmetric {n} x {n} matrix"
    if np.all(np.abs(diag - 1.0) <= 1e-6) and np.all(np.abs(upper) <= 1.0 + 1e-9):
        return (
            f"{shape} with 1 on its diagonal and values in [-1, 1]: an FC (correlation) matrix, "
            f"not a time series (frames x regions): {_GIVE_FC}"
        )
    if np.all((diag == 0) | np.isnan(diag)):
        return (
            f"{shape} with {'0' if np.all(diag == 0) else 'no value'} on its diagonal: a "
            "connectivity matrix (an FC with its diagonal zeroed or in Fisher z, or an SC), not "
            "a time series (frames x regions); give an FC as Pearson r with 1 on the diagonal "
            "with --fc, an SC with --sc"
        )
    if np.all(diag > 0):
        bound = np.sqrt(np.outer(diag, diag))[off]
        if np.all(np.abs(upper) <= bound * (1.0 + 1e-9)):
            return (
                f"{shape} whose positive diagonal bounds every entry (|c_ij| <= sqrt(c_ii c_jj)): "
                "a covariance matrix, not a time series (frames x regions); give the regional "
                "BOLD time series, or its correlation matrix (an FC) with --fc"
            )
    return (
        f"{shape} ({_GENERIC}), not a time series (frames x regions), "
        "which is never symmetric; give an FC as Pearson r with 1 on the diagonal with --fc, "
        "an SC with --sc"
    )


def refuse_connectivity_matrix(arr: np.ndarray, input_name: str) -> None:
    """Refuse a table given as a time series that is a connectivity matrix (:func:`_matrix_kind`):
    as it is, after a first column of row names or numbers (N x N+1), below a header row of
    numbers (N+1 x N), or without both (pandas' ``to_csv``). Read as N frames of N regions, an
    FC would be fitted as a time series (for a TR of 0.9 s and more N = 68 frames are enough)
    without any warning. An FC, covariance or zero diagonal is named before a symmetric matrix
    of no such kind (a header row of numbers above an index column of the same numbers)."""
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        return
    rows, cols = arr.shape
    candidates = [(arr, "")]
    if cols == rows + 1:
        candidates.append((arr[:, 1:], " (after its first column)"))
    elif rows == cols + 1:
        candidates.append((arr[1:], " (below its first row)"))
    elif rows == cols:
        candidates.append((arr[1:, 1:], " (without its first row and column)"))
    found = [
        kind.replace(" matrix", f" matrix{where}", 1)
        for part, where in candidates
        if (kind := _matrix_kind(part)) is not None
    ]
    if found:
        raise InvalidInputError(next((k for k in found if _GENERIC not in k), found[0]), input_name)


def with_numeric_header(arr: np.ndarray, header: list[str] | None) -> np.ndarray:
    """The table with its first row put back where the reader took it for a header that is all
    numbers (a matrix with row names and no header: its first line holds the first row's
    values after the first name); the table itself otherwise."""
    if header is None or len(header) != np.shape(arr)[-1]:
        return arr
    try:
        first = np.array([float(h) for h in header], dtype=np.float64)
    except ValueError:
        return arr
    return np.vstack([first, arr])


def transposed_hint(shape: tuple[int, ...], n_atlas: int | None = None) -> str:
    """``; 68 rows is the number of DK68 regions: ...`` for a header-less run of ``shape``
    whose number of rows is that of a known atlas (:data:`ATLAS_SIZES`, or ``n_atlas``, the
    atlas the run is read for) and its number of columns smaller and not: possibly a short run
    saved regions x frames; '' otherwise. The shape alone cannot tell: a genuine 68-frame run of
    an atlas of fewer regions has it too, so the hint belongs in an error the run runs into (too
    few frames, an SC of another size), not in a warning about a run that is read and used."""
    if len(shape) != 2:
        return ""
    rows, cols = shape
    sizes = dict(ATLAS_SIZES)
    if n_atlas is not None:
        sizes.setdefault(n_atlas, "the atlas's")
    if rows not in sizes or cols in sizes or cols >= rows:
        return ""
    return (
        f"; {rows} rows is the number of {sizes[rows]} regions ({cols} columns is no known "
        "atlas's): if the file holds regions x frames (a short run saved transposed), "
        "transpose it so that rows are frames and columns are regions (numpy: ts.T)"
    )
