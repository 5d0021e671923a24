"""Input gates: convert user data to float64 arrays and check them (no file access here).

Every reader in :mod:`delssome_norms.io` passes what it read through one of these functions, so the
rest of the package can trust its inputs. Each failure raises
:class:`~delssome_norms.errors.InvalidInputError` naming the input and the problem, e.g.
``"sub-003_FCD_CDF.csv: expected 10000 rows, got 9999"``. The conventions follow docs/science.md §1.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.sc_warnings import warn_implausible_sc
from delssome_norms.io.timeseries_shape import refuse_connectivity_matrix

FC_SYMMETRY_TOL = 1e-6
"""Largest |FC - FC.T| accepted for an FC matrix."""
CDF_RESCALE_TOL = 1e-3
"""An FCD-CDF whose last value is within this of 1 is rescaled (with a warning); otherwise an error."""
DEFAULT_FCD_BINS = 10000
"""Number of histogram bins of the FCD-CDF over (-1, 1) (docs/science.md §3)."""
SEX_LABELS = {"female": "female", "f": "female", "male": "male", "m": "male"}
"""Accepted sex labels (case-insensitive) and the canonical label each one maps to."""
MAX_AGE_YEARS = 120.0
"""Ages above this are rejected as data errors."""
SUBJECT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
"""A subject ID must be a safe folder name: letters, digits, ``. _ -``, first a letter or digit,
at most 128 characters (no ``/``, no ``..``, not absolute, no spaces)."""
PARQUET_SUFFIXES = (".parquet", ".pq")
"""File suffixes read and written as Apache Parquet (pyarrow) instead of CSV."""


def _fmt_rows(idx: Iterable[int], limit: int = 5) -> str:
    """Data rows counted from 1 (the first row after the header) from 0-based positions."""
    rows = [str(int(i) + 1) for i in idx]
    more = f" (and {len(rows) - limit} more)" if len(rows) > limit else ""
    return ", ".join(rows[:limit]) + more


def as_float_array(value, input_name: str, ndim: int | None = None) -> np.ndarray:
    """Convert ``value`` to a finite float64 array of the expected number of dimensions.

    Parameters
    ----------
    value : array-like
        Numbers to convert.
    input_name : str
        Name used in error messages (usually the file name).
    ndim : int, optional
        Required number of dimensions.
    """
    _refuse_complex(value, input_name)
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"expected numbers, could not convert ({exc})", input_name) from None
    if ndim is not None and arr.ndim != ndim:
        raise InvalidInputError(f"expected a {ndim}-D array, got shape {arr.shape}", input_name)
    if arr.size == 0:
        raise InvalidInputError("is empty", input_name)
    bad = ~np.isfinite(arr)
    if bad.any():
        where = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(arr[tuple(where)]) else "inf"
        raise InvalidInputError(
            f"contains {int(bad.sum())} non-finite value(s) ({kind} first at index "
            f"{tuple(int(i) for i in where)})",
            input_name,
        )
    return arr


def _refuse_complex(value: Any, input_name: str) -> None:
    """Refuse complex numbers (NumPy would drop their imaginary parts with a ComplexWarning)."""
    if np.iscomplexobj(value):
        raise InvalidInputError("expected real numbers, got complex ones", input_name)


def _check_square(arr: np.ndarray, input_name: str, n_regions: int | None) -> None:
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise InvalidInputError(f"expected a square matrix, got shape {arr.shape}", input_name)
    if n_regions is not None and arr.shape[0] != n_regions:
        raise InvalidInputError(
            f"expected {n_regions} x {n_regions} (one row per region), got {arr.shape}", input_name
        )


def _mirror_triangle(arr: np.ndarray, input_name: str, what: str) -> np.ndarray:
    """The full matrix of one stored as a triangle (every connection stored in one direction
    only: the other strict triangle all zeros, as MATLAB's ``tril`` or some connectome tools
    write it, also after its rows and columns were put in another region order), with an
    :class:`InputWarning`; other matrices unchanged. Read as they are, the model's ``SC . S_E``
    would give every region input from one side of the region order only, and an FC would fail
    as asymmetric."""
    n = arr.shape[0]
    if n < 3:
        return arr
    stored = (arr != 0) & ~np.eye(n, dtype=bool)
    if not stored.any() or (stored & stored.T).any():  # no connections, or some stored both ways
        return arr
    if not np.tril(stored).any():
        kept = "only its upper triangle (the other is all zeros)"
    elif not np.triu(stored).any():
        kept = "only its lower triangle (the other is all zeros)"
    else:
        kept = "each connection in one direction only (a triangle, in another region order)"
    warnings.warn(
        f"{input_name}: the {what} holds {kept}; it is mirrored into a symmetric matrix",
        InputWarning,
        stacklevel=3,
    )
    return arr + arr.T - np.diag(np.diag(arr))


def check_fc(fc, n_regions: int | None = None, input_name: str = "FC") -> np.ndarray:
    """Check a functional-connectivity matrix.

    Parameters
    ----------
    fc : array-like of shape (n_regions, n_regions)
        Pearson correlations: symmetric (tol 1e-6), unit diagonal, values in [-1, 1], not the
        same value in every region pair (the cost's Pearson r would be undefined).
    n_regions : int, optional
        Required number of regions.
    input_name : str
        Name used in error messages.

    Returns
    -------
    ndarray of shape (n_regions, n_regions), float64
    """
    arr = as_float_array(fc, input_name)
    _check_square(arr, input_name, n_regions)
    arr = _mirror_triangle(arr, input_name, "FC")
    asym = float(np.max(np.abs(arr - arr.T)))
    if asym > FC_SYMMETRY_TOL:
        raise InvalidInputError(
            f"FC must be symmetric; largest |FC - FC.T| is {asym:.3g} (tolerance {FC_SYMMETRY_TOL})",
            input_name,
        )
    diag_err = float(np.max(np.abs(np.diag(arr) - 1.0)))
    beyond = bool(np.any(np.abs(arr) > 1.0 + 1e-9))
    if diag_err > 1e-6:
        raise InvalidInputError(
            f"FC diagonal must be 1 (correlation of a region with itself); largest deviation "
            f"{diag_err:.3g}" + _fc_diagonal_hint(np.diag(arr), beyond),
            input_name,
        )
    if beyond:
        raise InvalidInputError(
            f"FC values must lie in [-1, 1]; found {float(arr.min()):.4g} .. {float(arr.max()):.4g}"
            ": Fisher z values (arctanh r)? Give Pearson r (numpy: r = np.tanh(z))",
            input_name,
        )
    upper = arr[np.triu_indices(arr.shape[0], 1)]
    if upper.size >= 2 and float(np.ptp(upper)) == 0.0:
        raise InvalidInputError(
            f"every region pair has the same FC ({float(upper[0]):g}); the cost's corr_loss "
            "(1 - Pearson r of the FC upper triangles) is undefined for it: give the "
            "subject's measured FC",
            input_name,
        )
    return np.clip(arr, -1.0, 1.0)


def _fc_diagonal_hint(diag: np.ndarray, beyond: bool) -> str:
    """The likely cause of an FC diagonal that is not 1: zeroed (some tools write it so) or
    Fisher z values (``beyond``: values outside [-1, 1]); '' for a few wrong values."""
    zeroed = bool(np.all(diag == 0))
    if beyond:
        return (
            f"; its diagonal is {'all 0' if zeroed else 'not 1'} and values lie beyond [-1, 1]: "
            "Fisher z values (arctanh r)? Give Pearson r with 1 on the diagonal (numpy: "
            "r = np.tanh(z); np.fill_diagonal(r, 1))"
        )
    if zeroed:
        return (
            "; its diagonal is all 0: zeroed, or Fisher z values (arctanh r)? Give Pearson r "
            "with 1 on the diagonal (numpy: np.fill_diagonal(fc, 1), after r = np.tanh(z) for "
            "Fisher z)"
        )
    return ""


def check_fcd_cdf(cdf, n_bins: int = DEFAULT_FCD_BINS, input_name: str = "FCD-CDF") -> np.ndarray:
    """Check a cumulative FCD histogram (docs/science.md §1).

    Parameters
    ----------
    cdf : array-like of shape (n_bins,) or (n_bins, 1)
        Non-decreasing, non-negative, last value 1. A last value within 1e-3 of 1 is rescaled with
        a warning; otherwise it is an error.
    n_bins : int
        Required number of bins (10000 in the reference code).

    Returns
    -------
    ndarray of shape (n_bins,), float64
    """
    arr = as_float_array(cdf, input_name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InvalidInputError(
            f"expected one column of {n_bins} values, got shape {arr.shape}", input_name
        )
    if arr.shape[0] != n_bins:
        raise InvalidInputError(f"expected {n_bins} rows, got {arr.shape[0]}", input_name)
    if arr.min() < 0:
        raise InvalidInputError(f"CDF values must be >= 0; minimum is {arr.min():.4g}", input_name)
    steps = np.diff(arr)
    if np.any(steps < -1e-12):
        first = int(np.argmax(steps < -1e-12))
        raise InvalidInputError(
            f"CDF must be non-decreasing; it decreases from row {first} to row {first + 1} "
            f"({arr[first]:.6g} -> {arr[first + 1]:.6g})",
            input_name,
        )
    last = float(arr[-1])
    if abs(last - 1.0) > CDF_RESCALE_TOL:
        raise InvalidInputError(
            f"CDF must end at 1 (cumulative sum / total); last value is {last:.6g}", input_name
        )
    if last != 1.0:
        if abs(last - 1.0) > 1e-9:
            warnings.warn(
                f"{input_name}: CDF ends at {last:.6g}, rescaled to end at 1",
                InputWarning,
                stacklevel=2,
            )
        arr = arr / last
    return arr


def check_sc(
    sc, n_regions: int | None = None, input_name: str = "SC", regions: Sequence[str] | None = None
) -> np.ndarray:
    """Check a structural-connectivity matrix: square, finite, non-negative, zero diagonal.

    An SC that passes but cannot be what the model expects is warned about
    (:class:`~delssome_norms.errors.InputWarning`, :mod:`delssome_norms.io.sc_warnings`): regions
    without any connection (named by ``regions``, the SC's region names in row order; without
    them a 68-region SC by its DK68 names, another by 0-based index), and a heavy-tailed SC (raw
    streamline counts: log-scale them, as the template is).

    Returns
    -------
    ndarray of shape (n_regions, n_regions), float64, unscaled (the model scales it to max 0.02).
    """
    arr = as_float_array(sc, input_name)
    _check_square(arr, input_name, n_regions)
    arr = _mirror_triangle(arr, input_name, "SC")
    if arr.min() < 0:
        i, j = np.unravel_index(int(np.argmin(arr)), arr.shape)
        raise InvalidInputError(
            f"SC must be non-negative; found {arr[i, j]:.4g} at row {i}, column {j}", input_name
        )
    diag = float(np.max(np.abs(np.diag(arr))))
    if diag > 0:
        raise InvalidInputError(
            f"SC diagonal must be zero (no self-connections); largest diagonal value {diag:.4g}: "
            "tools such as MRtrix tck2connectome write self-connections unless given "
            "-zero_diagonal; set the diagonal to 0 (numpy: np.fill_diagonal(sc, 0))",
            input_name,
        )
    if arr.max() <= 0:
        raise InvalidInputError("SC has no connections (all zeros)", input_name)
    warn_implausible_sc(arr, input_name, regions)  # the caller of check_sc is named
    return arr


def check_map(values, n_regions: int | None = None, input_name: str = "map") -> np.ndarray:
    """Check a regional map (one value per region), e.g. myelin (T1w/T2w) or the RSFC gradient.

    Returns
    -------
    ndarray of shape (n_regions,), float64
    """
    arr = as_float_array(values, input_name)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise InvalidInputError(f"expected one value per region, got shape {arr.shape}", input_name)
    if n_regions is not None and arr.shape[0] != n_regions:
        raise InvalidInputError(
            f"map length {arr.shape[0]} does not match the {n_regions} regions", input_name
        )
    if np.ptp(arr) == 0:
        raise InvalidInputError("map is constant; it cannot inform regional parameters", input_name)
    return arr


def check_map_pair(myelin, gradient) -> None:
    """Myelin and gradient must be given together (or neither, for the default fallback)."""
    if (myelin is None) != (gradient is None):
        given, missing = ("myelin", "gradient") if gradient is None else ("gradient", "myelin")
        raise InvalidInputError(
            f"only {given} was given; give both myelin and gradient maps, or neither (then "
            "--maps decides: the shipped DK68 myelin and gradient maps by default, or the "
            "[1, gradient] design with a gradient of the FC with --maps fc-gradient)",
            f"--{missing}",
        )


MAX_TR = 30.0
"""Largest plausible repetition time [s] (a larger one was most likely given in milliseconds)."""
MAX_SCAN_LENGTH = 36000.0
"""Longest plausible scan [s] (10 h: every run of a densely sampled subject concatenated; a
longer one was most likely given in milliseconds and would start a simulation of days)."""


def _seconds(value: Any) -> float:
    """``float(value)``; a float32/float16 number as the shortest decimal that rounds to it."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)):  # True is 1 to float(): not a number of seconds
        raise TypeError("a truth value")
    if isinstance(value, np.floating) and value.dtype.itemsize < 8:
        return float(str(value))  # NumPy prints the shortest repr that round-trips
    return float(value)


def check_timing(tr: float, scan_length: float, input_name: str = "timing") -> tuple[float, float]:
    """Check the repetition time TR and scan length (both in seconds).

    The scan length must be a whole number of frames within 1 %: ``|round(scan / TR) * TR - scan|``
    at most 1 % of the scan length (the paper's demo, 60 s at TR 0.72 s = 83 frames, passes).

    A float32 or float16 value (NumPy scalar or 0-d array) is read as the shortest decimal that
    rounds to it (``np.float32(0.72)`` is 0.72 s, not 0.7200000286 s), the value it was made
    from, so that records and run fingerprints hold the TR that was meant.

    Returns
    -------
    (tr, scan_length) as floats, in seconds.
    """
    try:
        tr_f, scan_f = _seconds(tr), _seconds(scan_length)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"TR and scan length must be numbers (seconds), got {tr!r} and {scan_length!r}",
            input_name,
        ) from None
    if not np.isfinite(tr_f) or tr_f <= 0:
        raise InvalidInputError(f"TR must be a positive number of seconds, got {tr!r}", input_name)
    if not np.isfinite(scan_f) or scan_f <= 0:
        raise InvalidInputError(
            f"scan length must be a positive number of seconds, got {scan_length!r}", input_name
        )
    if tr_f > MAX_TR or scan_f > MAX_SCAN_LENGTH:
        raise InvalidInputError(
            f"TR {tr_f:g} s and scan length {scan_f:g} s: TR and scan length are in seconds "
            f"(given in milliseconds?); at most {MAX_TR:g} s and {MAX_SCAN_LENGTH:g} s "
            f"({MAX_SCAN_LENGTH / 3600:g} h)",
            input_name,
        )
    frames = scan_f / tr_f
    n_frames = round(frames)
    if n_frames < 1 or abs(n_frames * tr_f - scan_f) > 0.01 * scan_f:
        raise InvalidInputError(
            f"scan length {scan_f:g} s is not a whole number of frames of TR {tr_f:g} s "
            f"({frames:.3f} frames; expected frames x TR within 1 %)",
            input_name,
        )
    return tr_f, scan_f


def check_tr_seconds(tr: Any, input_name: str = "TR") -> float:
    """Check a TR alone (seconds; where the scan length is still to be derived from it): a
    positive number, at most :data:`MAX_TR` (a larger one was most likely given in ms)."""
    try:
        tr_f = _seconds(tr)
    except (TypeError, ValueError):
        raise InvalidInputError(f"TR must be a number of seconds, got {tr!r}", input_name) from None
    if not np.isfinite(tr_f) or tr_f <= 0:
        raise InvalidInputError(f"TR must be a positive number of seconds, got {tr!r}", input_name)
    if tr_f > MAX_TR:
        raise InvalidInputError(
            f"TR {tr_f:g} s is more than the longest plausible TR ({MAX_TR:g} s): the TR is in "
            f"seconds (given in milliseconds? {tr_f:g} ms is {tr_f / 1000:g} s)",
            input_name,
        )
    return tr_f


def normalise_sex(values: Sequence, input_name: str = "sex") -> np.ndarray:
    """Map sex labels to ``"female"``/``"male"``.

    Accepts female, male, f, m in any case, and 1/0 (``numeric_sex``: female = 1, male = 0).

    Returns
    -------
    ndarray of str, same length as ``values``.
    """
    series = pd.Series(list(values), dtype=object)
    out = np.empty(len(series), dtype=object)
    bad_rows, empty_rows = [], []
    for i, v in enumerate(series):
        if v is None or v is pd.NA or (isinstance(v, (float, np.floating)) and np.isnan(v)):
            empty_rows.append(i)
            continue
        if isinstance(v, str) and not v.strip():
            empty_rows.append(i)
            continue
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            if v == 1:
                out[i] = "female"
                continue
            if v == 0:
                out[i] = "male"
                continue
            bad_rows.append(i)
            continue
        label = SEX_LABELS.get(str(v).strip().lower()) if v is not None else None
        if label is None:
            bad_rows.append(i)
        else:
            out[i] = label
    if empty_rows:
        raise InvalidInputError(
            f"is empty in row(s) {_fmt_rows(empty_rows)}: every person needs a sex "
            "(female/male/f/m, or numeric_sex 1/0)",
            input_name,
        )
    if bad_rows:
        shown = sorted({repr(series.iloc[i]) for i in bad_rows[:5]})
        raise InvalidInputError(
            f"unknown sex label(s) {', '.join(shown)} in row(s) {_fmt_rows(bad_rows)}; "
            f"use female/male/f/m (any case) or numeric_sex 1/0",
            input_name,
        )
    return out.astype(str)


def _numeric_code(value) -> bool:
    """Whether a cell of a ``sex`` column is a number (or a number written as text)."""
    if isinstance(value, (bool, np.bool_)) or value is None:
        return False
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(np.isfinite(value))
    try:
        float(str(value).strip())
    except ValueError:
        return False
    return str(value).strip().lower() not in ("nan", "inf", "-inf", "")


def _column_sex(values: pd.Series, input_name: str) -> np.ndarray:
    """normalise_sex on the distinct values only (fast for long tables), row-exact on errors."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    try:
        labels = normalise_sex(list(uniques), input_name)
    except InvalidInputError:
        normalise_sex(values.tolist(), input_name)  # raises with the row numbers
        raise
    return np.asarray(labels, dtype=object)[codes].astype(str)


def table_sex_labels(table: pd.DataFrame, input_name: str = "table") -> np.ndarray:
    """``"female"``/``"male"`` per row of a table, from ``sex`` and/or ``numeric_sex``.

    ``sex`` holds labels (female/male/f/m, any case). Numbers in ``sex`` are refused: datasets
    disagree on what they mean (UK Biobank codes 0 = female, ABCD 1 = male / 2 = female), and
    reading them one way would silently flip every sex effect of the others. ``numeric_sex`` is
    this toolkit's explicit coding, 1 = female and 0 = male. With both columns, they must agree
    wherever ``numeric_sex`` is given, and an empty ``sex`` cell takes the row's ``numeric_sex``.

    Raises
    ------
    InvalidInputError
        Neither column, numbers in ``sex``, unknown labels, or columns that disagree (rows
        counted from 1 after the header).
    """
    labels = None
    coded = table["numeric_sex"] if "numeric_sex" in table.columns else None
    if coded is not None:
        given = ~_blank_cells(coded)
        # blanks replaced by a valid code, so that an error names the row of the file
        from_numeric = _column_sex(coded.where(given, 1), f"{input_name}: column numeric_sex")
    if "sex" in table.columns:
        column = table["sex"]
        uniques = pd.unique(column.to_numpy(dtype=object))
        numbers = [v for v in uniques if _numeric_code(v)]
        if numbers:
            rows = np.flatnonzero(column.isin(numbers).to_numpy())
            raise InvalidInputError(
                f"column sex holds numeric code(s) {', '.join(sorted(map(str, numbers))[:4])} in "
                f"row(s) {_fmt_rows(rows)}; datasets differ on what they mean (UK Biobank: 0 = "
                "female; ABCD: 2 = female), so write labels (female/male or F/M) in sex, or "
                "rename the column numeric_sex if it is coded 1 = female, 0 = male",
                input_name,
            )
        # an empty sex cell takes the row's numeric_sex (the person's sex is given there)
        fill = _blank_cells(column) & given if coded is not None else None
        if fill is not None and fill.any():
            column = column.astype(object).where(~fill, "female")
        labels = _column_sex(column, f"{input_name}: column sex")
        if fill is not None and fill.any():
            labels[fill] = from_numeric[fill]
    if coded is not None:
        if labels is None:
            return _column_sex(coded, f"{input_name}: column numeric_sex")
        differ = np.flatnonzero(given & (from_numeric != labels))
        if differ.size:
            raise InvalidInputError(
                f"columns sex and numeric_sex disagree in row(s) {_fmt_rows(differ)} "
                "(numeric_sex: 1 = female, 0 = male)",
                input_name,
            )
    if labels is None:
        raise InvalidInputError(
            "missing column 'sex' (female/male) or 'numeric_sex' (1 = female)", input_name
        )
    return labels


def _blank_cells(values: pd.Series) -> np.ndarray:
    """Cells with no value (None, NaN, ``pd.NA``, blank text), as bool."""
    text = values.astype(object).map(lambda v: isinstance(v, str) and not v.strip())
    return values.isna().to_numpy() | text.to_numpy(dtype=bool)


def sites_mix_sexes(site_codes: np.ndarray, female: np.ndarray, n_sites: int) -> bool:
    """Whether at least one of ``n_sites`` sites has people of both sexes: otherwise (with
    several sites) sex and site are confounded and a sex effect cannot be told from site
    effects. ``site_codes`` index the sites, ``female`` is 1/0 (or bool) per person."""
    n_female = np.bincount(site_codes, weights=np.asarray(female, dtype=np.float64), minlength=n_sites)
    n_site = np.bincount(site_codes, minlength=n_sites)
    return bool(((n_female > 0) & (n_female < n_site)).any())


def check_ages(
    values,
    input_name: str = "age_in_years",
    *,
    allow_missing: bool = False,
    months_hint: bool = False,
    ids: Sequence | None = None,
    first_line: int | None = None,
) -> np.ndarray:
    """Check ages in years: present, numeric, non-negative and below 120.

    ``allow_missing``: empty cells (NaN, ``n/a``) pass as NaN; text that is not a number still
    does not. A cell written with a decimal comma (``30,5``) is named as such. ``months_hint``:
    ages out of range that all fit 0 to 12 x 120 ask whether they are months
    (:func:`in_months_hint`). ``ids`` (the rows' ``subject_id``) and ``first_line`` (the file
    line of the first value: 2 below a header on line 1) name the people at fault in an error,
    so that they can be found in the file.

    Returns
    -------
    ndarray of float64, same length as ``values``.
    """
    raw = pd.Series(list(values), dtype=object)
    ages = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(ages)
    if allow_missing:  # an empty cell passes, text that is not a number does not
        bad &= (raw.notna() & (raw.astype(str).str.strip() != "")).to_numpy()
    missing = np.flatnonzero(bad)
    if missing.size:
        what = "not a number" if allow_missing else "missing or not a number"
        shown = [repr(str(v).strip()) for v in raw.iloc[missing[:3]] if not pd.isna(v)]
        raise InvalidInputError(
            f"age is {what} in row(s) {_fmt_rows(missing)}"
            + _who(missing, ids, first_line, [f"value(s) {', '.join(shown)}"] if shown else [])
            + _decimal_comma_hint(raw),
            input_name,
        )
    with np.errstate(invalid="ignore"):
        negative = np.flatnonzero((ages < 0) | (ages > MAX_AGE_YEARS))
    if negative.size:
        raise InvalidInputError(
            f"age must be between 0 and {MAX_AGE_YEARS:g} years; row(s) {_fmt_rows(negative)}"
            f"{_who(negative, ids, first_line)} have "
            f"{', '.join(f'{a:g}' for a in ages[negative[:5]])}"
            + (in_months_hint(ages) if months_hint else ""),
            input_name,
        )
    return ages


def _who(
    rows: np.ndarray, ids: Sequence | None, first_line: int | None, more: Sequence[str] = ()
) -> str:
    """`` (subject_id sub-02, sub-05; file line(s) 3, 6, the header being line 1)`` for rows
    (0-based positions) of :func:`check_ages`, then ``more`` (``value(s) 'x'``); '' for none.
    Without ids and lines the values alone, as `` ('x')``."""
    limit, parts = 5, []
    if ids is not None:
        ids = list(ids)
        named = [str(ids[int(r)]).strip() for r in rows[:limit]]
        parts.append(f"subject_id {', '.join(named)}{' ...' if len(rows) > limit else ''}")
    if first_line is not None:
        lines = ", ".join(str(int(r) + first_line) for r in rows[:limit])
        header = ", the header being line 1" if first_line == 2 else ""
        parts.append(f"file line(s) {lines}{' ...' if len(rows) > limit else ''}{header}")
    if not parts:  # as before ids and lines were known: the values alone
        more = [m.removeprefix("value(s) ") for m in more]
    parts += more
    return f" ({'; '.join(parts)})" if parts else ""


def in_months_hint(ages: np.ndarray) -> str:
    """``; are these ages in months (up to 138)? ...`` when the ages, some above
    :data:`MAX_AGE_YEARS`, all lie in 0 to 12 x :data:`MAX_AGE_YEARS`; else ''."""
    ages = np.asarray(ages, dtype=np.float64)
    ages = ages[np.isfinite(ages)]
    if ages.size and ages.min() >= 0 and MAX_AGE_YEARS < ages.max() <= 12 * MAX_AGE_YEARS:
        return (
            f"; are these ages in months (up to {ages.max():g})? age_in_years must be in years "
            "(divide months by 12)"
        )
    return ""


def _decimal_comma_hint(raw: pd.Series) -> str:
    """``; '30,5' is written with a decimal comma: ...`` for the first such cell, else ''."""
    from delssome_norms.io.decimal_comma import _DECIMAL_COMMA

    for value in raw:
        if isinstance(value, str) and _DECIMAL_COMMA.fullmatch(value.strip()):
            point = value.strip().replace(",", ".")
            return (
                f"; {value.strip()!r} is written with a decimal comma: write ages with a decimal "
                f"point ({point})"
            )
    return ""


def check_subject_id(subject_id, input_name: str = "subject_id") -> str:
    """Check that one subject ID is a string usable as a folder name (see ``SUBJECT_ID_PATTERN``).

    Returns
    -------
    str
        The ID, unchanged (IDs are never parsed as numbers: ``001`` stays ``001``).
    """
    if not isinstance(subject_id, str):
        raise InvalidInputError(f"subject_id must be text, got {subject_id!r}", input_name)
    if not SUBJECT_ID_PATTERN.fullmatch(subject_id) or ".." in subject_id:
        raise InvalidInputError(
            f"subject_id {subject_id!r} is not a safe folder name; use letters, digits, '.', '_' "
            "and '-' (first a letter or digit, no '..', at most 128 characters)",
            input_name,
        )
    return subject_id


def check_unique_ids(ids: Sequence, input_name: str = "subject_id", as_folders: bool = False) -> None:
    """Subject identifiers must be present and unique; with ``as_folders`` also safe folder names.

    Every offending ID is listed (up to 10) in one message.
    """
    series = pd.Series(list(ids), dtype=object)
    missing = np.flatnonzero(series.isna().to_numpy() | (series.astype(str).str.strip() == ""))
    if missing.size:
        raise InvalidInputError(f"subject_id is empty in row(s) {_fmt_rows(missing)}", input_name)
    unsafe = [
        (i, v)
        for i, v in enumerate(series)
        if as_folders and (not isinstance(v, str) or not SUBJECT_ID_PATTERN.fullmatch(v) or ".." in v)
    ]
    if unsafe:
        shown = ", ".join(f"{v!r} (row {i + 1})" for i, v in unsafe[:10])
        more = f" (and {len(unsafe) - 10} more)" if len(unsafe) > 10 else ""
        raise InvalidInputError(
            f"{len(unsafe)} subject_id(s) are not safe folder names: {shown}{more}; use letters, "
            "digits, '.', '_' and '-' (first a letter or digit, no '..', at most 128 characters)",
            input_name,
        )
    dup = series[series.duplicated(keep=False)]
    if len(dup):
        names = sorted(set(map(str, dup)))[:5]
        raise InvalidInputError(f"duplicate subject_id(s): {', '.join(names)}", input_name)


def check_timeseries(
    ts, input_name: str = "timeseries", min_frames: int = 2, named: bool = False
) -> np.ndarray:
    """Check regional BOLD time series of shape (frames, regions).

    Rejects connectivity matrices (an FC, its Fisher z, a covariance: square and exactly
    symmetric, :func:`~delssome_norms.io.timeseries_shape.refuse_connectivity_matrix`), NaN
    frames, constant regions and runs with fewer than ``min_frames`` frames. Without
    ``named`` it also rejects arrays with fewer frames than regions (most likely transposed).
    ``named``: the columns were named by a header row, so the orientation is known and a short
    run of a fine atlas (Glasser-360 or Schaefer-400 with 180-300 frames) is accepted; its FC is
    rank-deficient but still a correlation matrix.
    """
    _refuse_complex(ts, input_name)
    arr = np.asarray(ts, dtype=np.float64)
    if arr.ndim != 2:
        raise InvalidInputError(f"expected frames x regions, got shape {arr.shape}", input_name)
    refuse_connectivity_matrix(arr, input_name)  # N x N, exactly symmetric: an FC, no run
    nan_frames = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if nan_frames.size:
        raise InvalidInputError(
            f"{nan_frames.size} frame(s) contain NaN/inf or n/a (frames {_fmt_rows(nan_frames)}, "
            "counted from 1); "
            "drop them with --drop-na-frames (estimate-ei, prepare, validate; for a cohort, make its FC "
            "and FCD-CDF files with prepare --drop-na-frames), or remove or interpolate them first",
            input_name,
        )
    rows, cols = arr.shape
    transposed = " (frames x regions expected; more columns than rows: is it transposed?)"
    if rows < min_frames:
        raise InvalidInputError(
            f"has {rows} frames; at least {min_frames} are needed (two FCD windows)"
            + (transposed if cols > rows and not named else ""),
            input_name,
        )
    if rows < cols and not named:
        raise InvalidInputError(
            f"has fewer rows ({rows}) than columns ({cols}): regions x frames (transposed?); "
            "expected frames (rows) x regions (columns): transpose it (numpy: ts.T); a run with "
            "fewer frames than regions is read from a table whose header row names the regions",
            input_name,
        )
    const = np.flatnonzero(np.ptp(arr, axis=0) == 0)
    if const.size:
        raise InvalidInputError(
            f"region column(s) {', '.join(map(str, const[:5]))}{' ...' if len(const) > 5 else ''} "
            "(counted from 0, as region_index) are constant; their correlation is undefined",
            input_name,
        )
    return arr
