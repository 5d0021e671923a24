"""Matrices and maps saved as binary arrays: NumPy ``.npy`` / one-array ``.npz`` and MATLAB
``.mat`` files (an SC or FC saved by numpy or MATLAB, as connectome tools often write them).

:func:`read_binary_array` gives their values to the numeric readers of
:mod:`delssome_norms.io.readers`, which check them like CSV text (a ``.mat`` file must hold one
numeric matrix, dense or sparse; several are refused, listing their names).
For text readers, :func:`describe_binary` names a binary file given where a table is expected (Excel,
HDF5, NIfTI, ...) and :func:`wide_text_encoding` tells UTF-16/UTF-32 text from binary.
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
        if _SPARSE_NPZ <= set(arrays):
            arrays = {"matrix": _sparse_npz(p, arrays, name)}
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


_SPARSE_NPZ = frozenset({"format", "shape", "data"})
"""Arrays that ``scipy.sparse.save_npz`` writes for every sparse format (beside ``indices`` and
``indptr``, ``row`` and ``col``, or ``offsets``)."""
_MAX_DENSE_CELLS = 2**27
"""The most cells of a sparse matrix made dense (1 GiB of float64, the text readers' limit)."""


def _sparse_npz(p: Path, arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The dense values of a matrix saved by ``scipy.sparse.save_npz`` (an SC as some
    connectome tools keep it)."""
    import scipy.sparse

    shape = tuple(int(d) for d in np.ravel(arrays["shape"]))
    if int(np.prod(shape, dtype=np.float64)) > _MAX_DENSE_CELLS:
        raise InvalidInputError(
            f"holds a scipy sparse matrix of shape {shape}, too large to read as a dense region matrix",
            name,
        )
    try:
        return scipy.sparse.load_npz(p).toarray()
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"holds the arrays of a scipy sparse matrix ({', '.join(arrays)}) but they cannot "
            f"be read as one ({exc}); save the dense matrix with numpy.save (m.toarray())",
            name,
        ) from None


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


_SAVE_AS_CSV = "export it as a CSV or TSV table"


def describe_binary(raw: bytes, name: str) -> str | None:
    """What a binary file given where a text table is expected is, by its leading bytes, as an
    error message (with what to do instead), or None when it is no format recognised here.

    ``raw`` holds the file's (gzip-unpacked) bytes; ``name`` the path, whose suffix tells an
    OpenDocument sheet from an Excel workbook.
    """
    head = raw[:512]
    suffix = "".join(Path(name).suffixes[-2:]).lower()
    if head[:4] == b"PK\x03\x04":  # a zip archive: .xlsx/.ods workbooks, .npz arrays
        members = _zip_members(raw)
        if any(m.startswith("xl/") for m in members) or suffix.endswith((".xlsx", ".xlsm")):
            return f"is an Excel workbook, not a text table: {_SAVE_AS_CSV} (Save As > CSV UTF-8)"
        if "content.xml" in members or suffix.endswith(".ods"):
            return f"is an OpenDocument spreadsheet, not a text table: {_SAVE_AS_CSV}"
        if members and all(m.endswith(".npy") for m in members):
            return _binary_name("a NumPy .npz archive", ".npz", name)
        return "is a zip archive, not a text table: unpack it and give the table inside"
    if head[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return f"is an Excel 97-2003 workbook (.xls), not a text table: {_SAVE_AS_CSV}"
    if head[:8] == b"\x89HDF\r\n\x1a\n" or head[512:520] == b"\x89HDF\r\n\x1a\n":
        return (
            "is an HDF5 file (.h5, or a MATLAB v7.3 .mat), not a text table: save the matrix "
            "as CSV (or MATLAB v7: save(..., '-v7'))"
        )
    if _is_nifti(raw):
        return (
            "is a NIfTI image, not a table of regional values: extract the regional time series "
            "first (e.g. nilearn's NiftiLabelsMasker, or the timeseries.tsv of XCP-D)"
        )
    if head[:6] == b"\x93NUMPY":
        return _binary_name("a NumPy .npy array", ".npy", name)
    if head[:10] == b"MATLAB 5.0":
        return _binary_name("a MATLAB .mat file", ".mat", name)
    if head[:4] == b"PAR1":
        return "is a Parquet file, not a numeric text table: export it as CSV"
    return None


def _binary_name(what: str, suffix: str, name: str) -> str:
    """What to do with a binary array file named like a text table: give it its own suffix, or,
    gzip-compressed (``x.npy.gz``; the text readers unpack gzip, the array readers do not),
    decompress it."""
    base = Path(name).name
    if base.lower().endswith(".gz"):
        return (
            f"is {what.replace('a ', 'a gzip-compressed ', 1)}: decompress it (gunzip {base}) "
            f"and give the {suffix} file"
        )
    return f"is {what}: give it a {suffix} name"


def _zip_members(raw: bytes) -> list[str]:
    """Names inside a zip archive held in memory (empty when it cannot be read)."""
    import io

    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return []


def _is_nifti(raw: bytes) -> bool:
    """A NIfTI-1 (header size 348, magic ``n+1``/``ni1`` at byte 344) or NIfTI-2 (540,
    ``n+2``/``ni2`` at byte 4) image, in either byte order."""
    size = raw[:4]
    if size in (b"\x5c\x01\x00\x00", b"\x00\x00\x01\x5c"):
        return raw[344:348] in (b"n+1\x00", b"ni1\x00")
    if size in (b"\x1c\x02\x00\x00", b"\x00\x00\x02\x1c"):
        return raw[4:8] in (b"n+2\x00", b"ni2\x00")
    return False


def wide_text_encoding(raw: bytes) -> str | None:
    """``"utf-32"``/``"utf-16"`` for text with their byte-order mark, ``"utf-16-le"``/``-be``
    for UTF-16 without one (a NUL byte after/before every ASCII character), else None."""
    if raw[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
        return "utf-32"
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16"
    head = raw[: min(len(raw), 4096) // 2 * 2]
    if len(head) >= 4:
        even, odd = head[::2], head[1::2]
        for enc, zeros, chars in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
            if not zeros.strip(b"\x00") and b"\x00" not in chars:
                return enc
    return None
