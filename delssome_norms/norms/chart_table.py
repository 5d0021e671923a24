"""Reading a cohort table for the growth charts, and small helpers (docs/science.md §7).

Input tables are pandas DataFrames with ``age_in_years``, ``numeric_sex`` (1 = female) and/or
``sex`` (female/male/f/m), a site column (default :data:`~delssome_norms.io.ei_table.SITE_COLUMN`)
and one column per target; the column names are those of :mod:`delssome_norms.io.ei_table`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import check_ages, table_sex_labels
from delssome_norms.io.ei_table import (
    FIT_FLAGGED,
    INTERVAL_CALIBRATED,
    MEAN_TARGET,
    REGION_PREFIX,
    SCANNER,
    SITE,
    SITE_COLUMN,
    SITE_SCANNER,
    default_targets,
    n_region_columns,
    site_labels,
    site_text,
)
from delssome_norms.io.sidecar import person_id

__all__ = [
    "CENTILES",
    "FLAG_AGE",
    "FLAG_AGE_EXTRAPOLATED",
    "FLAG_FEW_CONTROLS",
    "FLAG_MISSING",
    "FLAG_POOR_FIT",
    "FLAG_SITE_UNRELIABLE",
    "FLAG_UNCALIBRATED",
    "FLAG_UNRELIABLE",
    "FLAG_UNSEEN_SEX",
    "FLAG_UNSEEN_SITE",
    "GRID_STEP",
    "MEAN_TARGET",
    "REGION_PREFIX",
    "SITE_COLUMN",
    "age_grid",
    "centile_label",
    "default_targets",
    "growth_rate",
    "table_ages",
    "table_sex",
    "table_sites",
    "table_targets",
]

CENTILES: tuple[float, ...] = (2.5, 5.0, 25.0, 50.0, 75.0, 95.0, 97.5)
"""Centiles (percent) of the population curves, as in the reference code."""
GRID_STEP = 0.1
"""Age step (years) of the population curves."""
FLAG_UNSEEN_SITE = "unseen_site"
FLAG_UNSEEN_SEX = "unseen_sex"
"""The person's sex is absent from the chart's training table (a chart fitted on one sex,
without sex terms): they are scored on the other sex's curves."""
FLAG_AGE = "age_out_of_range"
FLAG_AGE_EXTRAPOLATED = "age_extrapolated"
"""The age lies inside the chart's range (``chart_range_``: floor(youngest) to ceil(oldest)
training age, docs/science.md §7) but outside the training ages (``age_range_``): the ``bs()``
age curves continue the polynomial piece of their boundary interval there, as R's ``bs()`` does,
with no data behind them. Scored as usual."""
FLAG_MISSING = "missing_value"
FLAG_POOR_FIT = "poor_fit"
"""The person's E/I comes from a fit flagged as poor (``fit_flagged`` of the scored table)."""
FLAG_UNCALIBRATED = "interval_uncalibrated"
"""The person's E/I interval (and so the centile's) comes from a fit the interval calibration
does not cover (``ei_interval_calibrated`` False in the scored table): it may be too narrow."""
FLAG_UNRELIABLE = "chart_unreliable"
"""The target's chart did not converge or has a degenerate tail (``GrowthChart.reliable_``), or
the person's site was adapted with extreme offsets (``GrowthChart.site_tail_z``)."""
FLAG_SITE_UNRELIABLE = "site_unreliable"
"""The person's site is a training site of the chart whose fitted offsets of the target fail the
tail check (``GrowthChart.unreliable_sites_``; typically a site of very few people whose sigma
offset shrinks its spread many times over): the population curves are fine, the site's are not."""
FLAG_FEW_CONTROLS = "few_site_controls"
"""The person's site was adapted (``GrowthChart.adapt``) from fewer controls than
:data:`FEW_SITE_CONTROLS`: its offsets are uncertain, so its centiles are less accurate than
those of a training site."""
FEW_SITE_CONTROLS = 30
"""Controls per site below which ``GrowthChart.adapt`` warns and ``score`` flags the site's people
:data:`FLAG_FEW_CONTROLS`. On simulated new sites (offsets drawn like the training sites'), ML
offsets from 10 controls put 11 % of the site's people outside the 2.5-97.5 centiles (30 % at the
worst of 30 sites and targets), from 20 controls 8 % (23 %), from 50 controls 6.5 % (13 %);
nominal 5 %."""
MIN_SITE_PEOPLE = 10
"""People per training site below which ``GrowthChart.fit`` warns when sigma (or nu, tau) has a
site term. On simulated cohorts of 198 people, a 6-person site got a fitted log-sigma offset of
-1.5 (truth -0.06) and its new people z-scores with sd 7 (77 % outside the 2.5-97.5 centiles),
in 2 of 96 site-target charts; with a site term of mu only, sd 0.85."""
SCORE_CHUNK = 8192
"""People scored per block (blocks run in a few threads; numpy releases the GIL)."""
MIN_OBS_PER_PARAMETER = 5
"""A target needs at least this many observations per estimated parameter."""


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _rows(idx, limit: int = 5) -> str:
    """Row numbers for messages: data rows counted from 1 (the first row after the header), as
    every table message of the toolkit counts them; ``idx`` holds 0-based positions."""
    idx = [int(i) + 1 for i in idx]
    more = f" (and {len(idx) - limit} more)" if len(idx) > limit else ""
    return ", ".join(map(str, idx[:limit])) + more


def check_table_frame(table: Any, source: str) -> None:
    """Refuse what is not a pandas DataFrame with rows (one row per person)."""
    if not isinstance(table, pd.DataFrame):
        raise InvalidInputError(
            f"expected a pandas DataFrame with one row per person; got {type(table).__name__} "
            "(read a file with delssome_norms.io.read_table)",
            source,
        )
    if table.empty:
        raise InvalidInputError("the table has no rows; expected one row per person", source)


def fitted_on_ei(provenance: dict[str, Any] | None) -> bool:
    """Whether a chart's provenance says it was fitted on fitted E/I (a pipeline beyond the
    region count the chart itself records): its E/I targets must then be positive."""
    pipeline = (provenance or {}).get("pipeline") or {}
    return bool(set(pipeline) - {"n_regions"})


def table_sex(table: pd.DataFrame, source: str) -> np.ndarray:
    """Female indicator (1 = female, 0 = male) from ``sex`` labels and/or ``numeric_sex``.

    See :func:`delssome_norms.io.checks.table_sex_labels` (numbers in ``sex`` are refused; both
    columns must agree).

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    return (table_sex_labels(table, source) == "female").astype(np.float64)


def table_ages(table: pd.DataFrame, source: str) -> np.ndarray:
    """Ages in years from ``age_in_years`` (present, numeric, 0 to 120)."""
    if "age_in_years" not in table.columns:
        raise InvalidInputError("missing column 'age_in_years'", source)
    name = f"{source}: column age_in_years"
    return check_ages(table["age_in_years"].tolist(), name, months_hint=True)


def warn_case_variant_sites(labels: np.ndarray, source: str) -> None:
    """Warn when site labels differ only in letter case (``"Site A"`` and ``"site a"``): they are
    fitted as separate sites, which is rarely what the table's author meant."""
    groups: dict[str, list[str]] = {}
    for label in pd.unique(np.asarray(labels, dtype=object)):
        if str(label):
            groups.setdefault(str(label).casefold(), []).append(str(label))
    clash = [" / ".join(repr(v) for v in g) for g in groups.values() if len(g) > 1]
    if clash:
        warnings.warn(
            f"{source}: site labels that differ only in letter case are fitted as separate "
            f"sites: {'; '.join(clash[:4])}{' ...' if len(clash) > 4 else ''}; if they name one "
            "site, write one spelling",
            InputWarning,
            stacklevel=3,
        )


def table_sites(table: pd.DataFrame, site_column: str, source: str, required: bool) -> np.ndarray | None:
    """Site labels (str) from ``site_column``; ``site_scanner`` may be built from site + scanner.

    See :func:`delssome_norms.io.ei_table.site_labels`.
    """
    values = site_labels(table, site_column)
    if values is None:
        if not required:
            return None
        raise InvalidInputError(
            f"missing site column {site_column!r}; name the column that holds each person's "
            "site with --site-column (site_column=... in Python)",
            source,
        )
    missing = np.flatnonzero(values.isna().to_numpy())
    if missing.size and required:
        raise InvalidInputError(
            f"column {site_column} is empty in row(s) {_rows(missing)} (a site named NA, N/A or "
            "null is read as empty: rename it)",
            source,
        )
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = np.array([site_text(u) for u in uniques] + [""], dtype=object)
    return text[codes]  # code -1 (missing) takes the last entry, ""


def no_site_column_text(site_column: str) -> str:
    """What a table lacks when it has no site for a chart keyed on ``site_column``, for messages:
    ``"no site_scanner column, nor site [+ scanner] to build it from"`` for the default column
    (:func:`~delssome_norms.io.ei_table.site_labels`), else ``"no <site_column> column"``."""
    if site_column == SITE_SCANNER:
        return f"no {SITE_SCANNER} column, nor {SITE} [+ {SCANNER}] to build it from"
    return f"no {site_column} column"


def missing_site_text(value: Any) -> str:
    """A site label as text (:func:`~delssome_norms.io.ei_table.site_text`), ``""`` for a missing
    one (None, NaN, ``pd.NA``, blank text), as :func:`table_sites` reads an empty cell.

    A missing site is "no site": scoring gives it the population-average curves and flags it
    ``unseen_site``, never a site named ``"nan"``; fitting and adapting refuse it
    (:func:`table_sites` with ``required=True``).
    """
    if value is None or (not isinstance(value, str) and bool(np.ndim(value) == 0) and pd.isna(value)):
        return ""
    return site_text(value)


def near_site_names(unseen: Sequence[str], known: Sequence[str]) -> str:
    """Hint for unseen site labels that equal a known one up to letter case (``" (s1 may be S1:
    labels are case-sensitive)"``), or that are a known label's site without its scanner
    (``SiteA`` for ``SiteA_Siemens``: the chart's labels are ``site_scanner``); empty when none
    is near."""
    by_fold = {str(k).casefold(): str(k) for k in known}
    case = [f"{u} may be {by_fold[u.casefold()]}" for u in unseen if u.casefold() in by_fold]
    hints = [f"{', '.join(case[:4])}: labels are case-sensitive"] if case else []
    scanner = []
    for u in unseen:
        if u.casefold() in by_fold:
            continue
        longer = [str(k) for k in known if str(k).casefold().startswith(u.casefold() + "_")]
        if longer:
            scanner.append(f"{u} may be {' or '.join(longer[:3])}")
    if scanner:
        hints.append(
            f"{', '.join(scanner[:4])}: the chart's labels join site and scanner "
            "(site_scanner), so give the scanner too"
        )
    return f" ({'; '.join(hints)})" if hints else ""


def table_targets(
    table: pd.DataFrame, targets: Sequence[str], source: str, ei_positive: bool = False
) -> np.ndarray:
    """Target values as float64 (N, T); NaN for empty cells; errors for text or infinities.

    ``ei_positive``: the table holds fitted E/I (it came with the provenance sidecar that
    ``collect`` writes), so a value <= 0 in an E/I column is refused (charts of other
    quantities under these names, e.g. centred values in tests, are not affected).
    """
    missing = [t for t in targets if t not in table.columns]
    if missing:
        raise InvalidInputError(
            f"target column(s) {', '.join(missing)} not found; table has "
            f"{', '.join(map(str, table.columns[:12]))}{' ...' if len(table.columns) > 12 else ''}",
            source,
        )
    block = table[list(targets)]
    if all(
        pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt) for dt in block.dtypes
    ):
        out = block.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isinf(out).any():
            return _check_ei_positive(out, targets, source) if ei_positive else out
    out = np.empty((len(table), len(targets)))
    for j, t in enumerate(targets):
        col = table[t]
        vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(vals) & col.notna().to_numpy())
        if bad.size:
            raise InvalidInputError(
                f"column {t} has non-numeric value(s) in row(s) {_rows(bad)}", source
            )
        inf = np.flatnonzero(np.isinf(vals))
        if inf.size:
            raise InvalidInputError(f"column {t} has infinite value(s) in row(s) {_rows(inf)}", source)
        out[:, j] = vals
    return _check_ei_positive(out, targets, source) if ei_positive else out


def _check_ei_positive(y: np.ndarray, targets: Sequence[str], source: str) -> np.ndarray:
    """E/I columns (the mean and the regions) hold ratios of positive gating variables: a value
    at or below zero is a corrupted table, not a person at an extreme centile."""
    for j, t in enumerate(targets):
        if t == MEAN_TARGET or str(t).startswith(REGION_PREFIX):
            bad = np.flatnonzero(y[:, j] <= 0)
            if bad.size:
                raise InvalidInputError(
                    f"column {t} has E/I ratio(s) <= 0 in row(s) {_rows(bad)}: an E/I ratio "
                    "S_E/S_I is positive",
                    source,
                )
    return y


def table_fit_flagged(table: pd.DataFrame, source: str) -> np.ndarray:
    """``fit_flagged`` of each row as bool (all False without the column; blank cells False)."""
    return _table_bool(table, FIT_FLAGGED, source, blank=False)


def table_interval_uncalibrated(table: pd.DataFrame, source: str) -> np.ndarray:
    """Rows whose ``ei_interval_calibrated`` is False (bool; without the column, or for blank
    cells, nothing is known and no row is marked)."""
    return ~_table_bool(table, INTERVAL_CALIBRATED, source, blank=True)


def blank_cells(col: pd.Series) -> np.ndarray:
    """Cells of a True/False column with no value (empty, NaN, None), as bool."""
    text = col.astype(str).str.strip().str.lower()
    return col.isna().to_numpy() | text.isin(("", "nan", "none", "<na>")).to_numpy()


def _table_bool(table: pd.DataFrame, column: str, source: str, blank: bool) -> np.ndarray:
    """A True/False column as bool (CSV text, 0/1 or bool), ``blank`` where absent or empty."""
    if column not in table.columns:
        return np.full(len(table), blank, dtype=bool)
    col = table[column]
    if pd.api.types.is_bool_dtype(col.dtype):  # numpy, nullable or pyarrow booleans
        return col.to_numpy(dtype=bool, na_value=blank)
    text = col.astype(str).str.strip().str.lower()
    known = {"true": True, "1": True, "1.0": True, "false": False, "0": False, "0.0": False}
    empty = blank_cells(col)
    bad = np.flatnonzero(~empty & ~text.isin(list(known)).to_numpy())
    if bad.size:
        raise InvalidInputError(
            f"column {column} must be True/False, got {col.iloc[bad[0]]!r} in row(s) {_rows(bad)}",
            source,
        )
    return np.where(empty, blank, text.map(known).eq(True).to_numpy(dtype=bool))


def check_unique_people(table: pd.DataFrame, source: str, sessions: bool = False) -> None:
    """One row per person: an empty or repeated ``subject_id`` (when the table has the column)
    would let one person count twice in a reference, or give two scores for one id. With
    ``sessions`` (a chart's reference people, a site's controls) several sessions of one person
    (``sub-01_ses-1``, ``sub-01_ses-2``, as ``prepare --bids-dir`` names them) are refused too;
    scoring each session of a person is fine."""
    if "subject_id" not in table.columns:
        return
    ids = table["subject_id"]
    empty = np.flatnonzero(ids.isna().to_numpy() | (ids.astype(str).str.strip() == "").to_numpy())
    if empty.size:
        raise InvalidInputError(f"subject_id is empty in row(s) {_rows(empty)}", source)
    text = ids.astype(str)
    key = text.str.strip()  # "pat-00" and "pat-00 " are one person
    dup = key[key.duplicated(keep=False)].unique()
    if dup.size:
        shown = []
        for k in dup[:5]:
            spellings = text[key == k].unique()
            shown.append(k if spellings.size == 1 else " and ".join(map(repr, spellings)))
        spaced = any(" and " in v for v in shown)
        need = (
            "a growth chart needs one row per person"
            if sessions
            else "each score must be matched to one row per person (or session): keep one row "
            "per subject_id"
        )
        raise InvalidInputError(
            f"subject_id listed more than once: {', '.join(shown)}"
            f"{' ...' if dup.size > 5 else ''}"
            f"{' (IDs that differ only by surrounding spaces name one person)' if spaced else ''}"
            f"; {need}",
            source,
        )
    if sessions:
        rows: dict[str, list[str]] = {}
        for sid in ids.astype(str).str.strip():
            rows.setdefault(person_id(sid), []).append(sid)
        repeated = [f"{p} has {len(v)} rows ({', '.join(v[:3])})" for p, v in rows.items() if len(v) > 1]
        if repeated:
            raise InvalidInputError(
                f"{'; '.join(repeated[:3])}{' ...' if len(repeated) > 3 else ''}: a growth "
                "chart's reference needs one row per person (a person's sessions would count as "
                "several people); keep one session per person",
                source,
            )


def growth_rate(ages: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Derivative of a curve on an age grid, as the reference code computes it.

    Central differences ``(v[i+1] - v[i-1]) / (a[i+1] - a[i-1])`` inside, one-sided differences at
    the two ends.

    Parameters
    ----------
    ages : ndarray of shape (n,), years
    values : ndarray of shape (n, ...)

    Returns
    -------
    ndarray of the shape of ``values``, per year.
    """
    ages = np.asarray(ages, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    if ages.size < 2:
        out[...] = np.nan
        return out
    a = ages.reshape((-1,) + (1,) * (values.ndim - 1))
    out[1:-1] = (values[2:] - values[:-2]) / (a[2:] - a[:-2])
    out[0] = (values[1] - values[0]) / (a[1] - a[0])
    out[-1] = (values[-1] - values[-2]) / (a[-1] - a[-2])
    return out


def age_grid(lo: float, hi: float, step: float = GRID_STEP) -> np.ndarray:
    """Ages from ``lo`` to ``hi`` every ``step`` years (both ends included), rounded to 1e-10."""
    n = round((hi - lo) / step) + 1
    return np.round(lo + step * np.arange(n), 10)


# ---------------------------------------------------------------------------------------------


def _n_roi_columns(columns: Sequence[str]) -> int:
    """Number of ``ei_ratio_roi_<k>`` names in ``columns``."""
    return n_region_columns(columns)


def _chart_provenance(table: pd.DataFrame, provenance: dict[str, Any] | None) -> dict[str, Any]:
    """The chart's record of what its table came from (the sidecar, with the table's atlas size)."""
    out = json.loads(json.dumps(provenance, default=str)) if provenance else {}
    pipe = dict(out.get("pipeline") or {})
    n = _n_roi_columns(table.columns)
    if n:
        pipe["n_regions"] = n
    out["pipeline"] = pipe
    return out


def centile_label(q: float) -> str:
    """Centile label as in the reference files: 2.5 -> '2.5', 50.0 -> '50'."""
    return f"{q:g}"


def _join_flags(parts: list[np.ndarray]) -> np.ndarray:
    """Join per-row flag strings with ';', skipping empty ones."""
    out = np.asarray(parts[0], dtype=object)
    for p in parts[1:]:
        p = np.asarray(p, dtype=object)
        both = (out != "") & (p != "")
        out = np.where(both, out + ";" + p, np.where(out != "", out, p))
    return out.astype(str)
