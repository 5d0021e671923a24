"""Matrices and maps saved as binary arrays: NumPy ``.npy`` / one-array ``.npz`` and MATLAB
``.mat`` files (an SC or FC saved by numpy or MATLAB, as connectome tools often write them).

:func:`read_binary_array` gives their values to the numeric readers of
:mod:`delssome_norms.io.readers`, which check them like CSV text (a ``.mat`` file must hold one
numeric matrix, dense or sparse; several are refused, listing their names).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from delssome_norms.errors import InvalidInputError

BINARY_SUFFIXES = (".npy", ".npz", ".mat")


def read_binary_array(path: str | Path) -> np.ndarray | None:
    """The 2-D float64 values of a ``.npy``, one-array ``.npz`` or one-matrix ``.mat`` file
    (a 1-D array becomes one column), or None for another suffix.

    Raises
    ------
    InvalidInputError
        Naming the file: unreadable, several arrays, not numeric, or more than 2 dimensions.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in BINARY_SUFFIXES:
        return None
    name = str(path)
    if suffix == ".mat":
        arrays = _mat_arrays(p, name)
    else:
        with open(p, "rb") as fh:
            magic = fh.read(6)
        if magic != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":  # .npy, .npz (zip)
            raise InvalidInputError(
                f"is not a numpy {suffix} file (save it with np.save, or give a text table a "
                ".csv or .tsv name)",
                name,
            )
        try:
            loaded = np.load(p, allow_pickle=False)
            if isinstance(loaded, np.lib.npyio.NpzFile):
                with loaded as npz:
                    arrays = {k: npz[k] for k in npz.files}
            else:
                arrays = {"array": loaded}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InvalidInputError(f"is not a readable {suffix} array ({exc})", name) from None
    if len(arrays) != 1:
        raise InvalidInputError(
            f"holds {len(arrays)} arrays ({', '.join(list(arrays)[:5]) or 'none'}); expected "
            "one matrix: save it alone",
            name,
        )
    arr = next(iter(arrays.values()))
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise InvalidInputError(f"holds a {arr.dtype} array, expected real numbers", name)
    arr = np.asarray(arr, dtype=np.float64)
    if arr.ndim > 2:
        raise InvalidInputError(f"holds an array of shape {arr.shape}, expected a matrix", name)
    return arr.reshape(-1, 1) if arr.ndim < 2 else arr


def _mat_arrays(p: Path, name: str) -> dict[str, np.ndarray]:
    """The numeric variables of a MATLAB file (``__header__``, text and cell arrays such as a
    list of region names left out; a sparse matrix made dense).

    Raises
    ------
    InvalidInputError
        No numeric variable: the variables found and their kinds are listed (a matrix inside a
        struct or cell array must be saved as its own variable).
    """
    import scipy.io
    import scipy.sparse

    try:
        content = scipy.io.loadmat(p)
    except NotImplementedError:  # MATLAB v7.3 files are HDF5
        raise InvalidInputError(
            "is a MATLAB v7.3 (HDF5) file, which is not read: save it with save(..., '-v7') "
            "or as CSV (writematrix)",
            name,
        ) from None
    except (ValueError, OSError, TypeError) as exc:
        raise InvalidInputError(f"is not a readable .mat file ({exc})", name) from None
    variables = {k: v for k, v in content.items() if not k.startswith("__")}
    arrays = {}
    for k, v in variables.items():
        if scipy.sparse.issparse(v):  # scipy.io.savemat of a sparse matrix, MATLAB's sparse()
            v = v.toarray()
        if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.number):
            arrays[k] = v
    if not arrays:
        found = ", ".join(f"{k} ({_mat_kind(v)})" for k, v in list(variables.items())[:8])
        nested = [
            (k, v.dtype.names)
            for k, v in variables.items()
            if isinstance(v, np.ndarray) and (v.dtype.names is not None or v.dtype == object)
        ]
        if nested:
            k, fields = nested[0]
            example = f"{k}.{fields[0]}" if fields else f"{k}{{1}}"
            hint = (
                "; a matrix inside a struct or cell array is not read: save the matrix as its "
                f"own variable (e.g. SC = {example}; save('sc.mat', 'SC'))"
            )
        else:
            hint = "; save the matrix as a numeric variable (save('sc.mat', 'SC'))"
        raise InvalidInputError(
            f"holds no numeric matrix (variables found: {found or 'none'}){hint}", name
        )
    return arrays


def _mat_kind(value: object) -> str:
    """What a MATLAB variable read by scipy is, in MATLAB's words (for messages)."""
    if not isinstance(value, np.ndarray):
        return type(value).__name__
    shape = "x".join(str(d) for d in value.shape) or "scalar"
    if value.dtype.names is not None:
        return f"struct with fields {', '.join(value.dtype.names[:6])}"
    if value.dtype == object:
        return f"{shape} cell array"
    if value.dtype.kind in "US":
        return "text"
    if value.dtype.kind == "b":
        return f"{shape} logical array"
    return f"{shape} {value.dtype} array"
