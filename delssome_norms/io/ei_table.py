"""The E/I data contract: column names of the cohort E/I table and of per-subject results.

One place spells out the layout that ``fit`` (``collect``), ``norms`` (charts), ``stats``, ``demo``,
``plotting``, the CLI and the synthetic generator share (docs/science.md §5 and §7).

**Cohort table** (one row per person; ``collect`` writes it, ``charts fit`` reads it)::

    subject_id, age_in_years, sex, numeric_sex, site, scanner, site_scanner,
    ei_ratio_mean, ei_ratio_roi_0 .. ei_ratio_roi_{N-1}

``ei_ratio_mean`` is the mean of the N regional values; ``ei_ratio_roi_<k>`` is the region with
index ``k`` (for 68 regions the DK68 order; the ``<table>.regions.csv`` sidecar names them). The
site column defaults to :data:`SITE_COLUMN` (``site_scanner``); a table with only ``site`` (and
optionally ``scanner``) gets ``site_scanner = site + "_" + scanner`` (:func:`site_labels`).

**Per-subject result** (``EI_ratio.csv``): :data:`EI_RATIO_COLUMNS` plus the optional
:data:`EI_RATIO_OPTIONAL` columns, one row per region, ``region_index`` 0 .. N-1. The optional
:data:`REGION` column (the region's name, right after ``region_index``; ``best_parameters.csv``
has it too) holds the names of the fit's atlas as ``run.json`` records them
(``provenance.atlas.regions``); files of a fit without names, and of versions before the column,
lack it. Read it as text (:func:`read_region_cells`): names such as ``NA`` or ``001`` are names.

**Provenance** (the ``<table>.provenance.json`` sidecar and the ``provenance`` block of
``run.json``): :data:`PROVENANCE_FIELDS`; :data:`PIPELINE_FIELDS` must agree between the subjects
of one table and between a table and the chart scoring it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.io.provenance import PIPELINE_FIELDS

# -- cohort table: demographics -------------------------------------------------------------------
SUBJECT_ID = "subject_id"
AGE = "age_in_years"
"""Age [years]."""
SEX = "sex"
"""``female``/``male`` (also f/m/F/M on input)."""
NUMERIC_SEX = "numeric_sex"
"""1 = female, 0 = male."""
SITE = "site"
SCANNER = "scanner"
SITE_SCANNER = "site_scanner"
SITE_COLUMN = SITE_SCANNER
"""The one default site column of charts and statistics (built from site + scanner if absent)."""
DEMOGRAPHIC_COLUMNS = (SUBJECT_ID, AGE, SEX, NUMERIC_SEX, SITE, SCANNER, SITE_SCANNER)
"""Demographic columns of the cohort table (those present in the demographics), in order."""

# -- cohort table: targets ------------------------------------------------------------------------
TARGET_PREFIX = "ei_ratio_"
MEAN_TARGET = "ei_ratio_mean"
"""Mean cortical E/I of a person (mean of the regional values)."""
MEAN_LO = "ei_ratio_mean_lo"
MEAN_HI = "ei_ratio_mean_hi"
"""Bounds of the 90 % interval of the mean E/I (``collect``; docs: README, "Reading the intervals")."""
FIT_FLAGGED = "fit_flagged"
FIT_FLAG_REASONS = "fit_flag_reasons"
"""The fit-quality verdict of a person's E/I (bool; ";"-joined reasons)."""
INTERVAL_CALIBRATED = "ei_interval_calibrated"
"""Whether the shipped calibration covers the fit that made the interval (bool; blank: unknown,
e.g. results written before it was recorded; ``collect``, README "Reading the intervals")."""
PROVENANCE_ATTR = "delssome_norms_provenance"
"""``DataFrame.attrs`` key of a table's provenance (``EIResult.to_table``): what a chart's
``score`` compares when no sidecar is passed."""
REGION_PREFIX = "ei_ratio_roi_"
REGION_PATTERN = re.compile(r"^ei_ratio_roi_(\d+)$")
"""A regional column; the number is the region index."""

# -- per-subject result (EI_ratio.csv) ------------------------------------------------------------
EI_RATIO_FILE = "EI_ratio.csv"
REGION_INDEX = "region_index"
REGION = "region"
"""The region's name (the fit's atlas names, ``run.json`` ``provenance.atlas.regions``), right
after ``region_index`` in ``EI_ratio.csv`` and ``best_parameters.csv``; absent without names."""
EI_RATIO = "EI_ratio"
S_E = "S_E"
S_I = "S_I"
R_E = "r_E"
"""Time-averaged excitatory rate [Hz]."""
EI_RATIO_SD = "EI_ratio_sd"
EI_RATIO_LO = "EI_ratio_lo"
EI_RATIO_HI = "EI_ratio_hi"
FIT_FLAGGED = "fit_flagged"
"""The subject's fit-quality flag (bool; the same in every row of ``EI_ratio.csv``)."""
FIT_FLAG_REASONS = "fit_flag_reasons"
"""The flag's reasons, ";"-joined (empty when not flagged; :mod:`delssome_norms.fit.quality`)."""
EI_RATIO_COLUMNS = (REGION_INDEX, EI_RATIO, S_E, S_I, R_E)
"""Columns every ``EI_ratio.csv`` has."""
EI_RATIO_OPTIONAL = (REGION, EI_RATIO_SD, EI_RATIO_LO, EI_RATIO_HI, FIT_FLAGGED, FIT_FLAG_REASONS)
"""Columns an ``EI_ratio.csv`` may have (the region's name, second; spread and interval of the E/I
ratio, the fit's flag, after :data:`EI_RATIO_COLUMNS`)."""

# -- provenance -------------------------------------------------------------------------------------
PROVENANCE_FIELDS = (
    "format_version",
    "atlas",
    "sc",
    "maps",
    "design",
    "timing",
    "mode",
    "settings",
    "version",
    "pipeline",
)
"""Keys of a subject's provenance block (``run.json``); a table's sidecar has the same keys
(``timing``, ``versions`` summarised over its subjects)."""

__all__ = [
    "AGE",
    "DEMOGRAPHIC_COLUMNS",
    "EI_RATIO",
    "EI_RATIO_COLUMNS",
    "EI_RATIO_FILE",
    "EI_RATIO_HI",
    "EI_RATIO_LO",
    "EI_RATIO_OPTIONAL",
    "EI_RATIO_SD",
    "FIT_FLAGGED",
    "FIT_FLAG_REASONS",
    "MEAN_TARGET",
    "NUMERIC_SEX",
    "PIPELINE_FIELDS",
    "PROVENANCE_FIELDS",
    "REGION",
    "REGION_INDEX",
    "REGION_PATTERN",
    "REGION_PREFIX",
    "R_E",
    "SCANNER",
    "SEX",
    "SITE",
    "SITE_COLUMN",
    "SITE_SCANNER",
    "SUBJECT_ID",
    "S_E",
    "S_I",
    "TARGET_PREFIX",
    "cohort_row",
    "default_targets",
    "ei_ratio_frame",
    "n_region_columns",
    "read_region_cells",
    "region_column",
    "region_columns",
    "region_index",
    "region_name_list",
    "regions_frame",
    "site_labels",
    "site_text",
]


def region_column(k: int) -> str:
    """Column name of region ``k`` (``ei_ratio_roi_<k>``)."""
    return f"{REGION_PREFIX}{int(k)}"


def region_columns(n_regions: int) -> list[str]:
    """``ei_ratio_roi_0`` .. ``ei_ratio_roi_{n-1}``."""
    return [region_column(k) for k in range(int(n_regions))]


def region_index(name: str) -> int | None:
    """Region index of an ``ei_ratio_roi_<k>`` column; None for any other name."""
    m = REGION_PATTERN.match(str(name))
    return int(m.group(1)) if m is not None else None


def n_region_columns(columns: Sequence[str]) -> int:
    """Number of ``ei_ratio_roi_<k>`` names in ``columns``."""
    return sum(region_index(c) is not None for c in columns)


def default_targets(columns: Sequence[str]) -> list[str]:
    """Targets of a cohort table: ``ei_ratio_mean`` (if present), then every ``ei_ratio_roi_<k>``.

    Regional columns keep the table's order; other ``ei_ratio_*`` columns (e.g. scores
    ``ei_ratio_roi_3_z``) are not targets.
    """
    cols = [str(c) for c in columns]
    return [c for c in cols if c == MEAN_TARGET] + [c for c in cols if region_index(c) is not None]


def join_site_scanner(site: pd.Series, scanner: pd.Series | None = None) -> pd.Series:
    """``site + "_" + scanner`` of each row as text (object dtype, ``site``'s index).

    A row without a scanner gets its site alone, and a row without a site gets a missing label,
    under pandas 2 and 3 alike: ``astype(str)`` turns a missing cell into ``"nan"`` under pandas 2
    (``"A_nan"``, ``"nan_s1"``) but keeps it missing under pandas 3 (a missing label).
    """

    def text(v) -> str | None:  # as the charts compare labels (site_text): "A " is "A"
        if pd.isna(v):
            return None
        label = site_text(v)
        return label or None

    labels = [text(v) for v in site]
    if scanner is not None:
        labels = [
            s if s is None or c is None else f"{s}_{c}" for s, c in zip(labels, map(text, scanner))
        ]
    return pd.Series(labels, index=site.index, dtype=object)


_INTEGRAL_FLOAT_TEXT = re.compile(r"[+-]?\d+\.0+")
_INTEGER_TEXT = re.compile(r"([+-]?)([0-9]+)")


def site_text(value: Any) -> str:
    """A site label as text: surrounding spaces dropped, and an integer label (ASCII digits with
    an optional sign, or an integral number such as ``1.0`` or ``"3.0"``) as its number, without
    leading zeros: ``"01"``, ``"1"``, ``1`` and ``1.0`` are all ``"1"`` (``"00"`` is ``"0"``,
    ``"+3"`` is ``"3"``, ``"-03"`` is ``"-3"``); other labels (``"A6"``, ``"0A"``) as written.
    A label of ``_``-separated parts (``site_scanner``) gets this part by part: ``"02_007"`` is
    ``"2_7"``, as :func:`join_site_scanner` joins site ``02`` and scanner ``007``.

    A numeric site column gains a ``.0`` when pandas reads it as float (one empty cell is
    enough), and a trailing space is invisible in a spreadsheet; either would make a known site
    unseen. Zero-padding is lost as easily: a spreadsheet re-saving a CSV writes ``01`` as ``1``,
    and a table read by an older version (or built in Python) holds the number 1, so a chart
    storing ``"01"`` would meet a table holding ``1`` and the reverse; comparing digit labels as
    numbers keeps them one site whichever spelling a file or chart holds.
    """
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (float, np.floating)) and np.isfinite(value) and float(value).is_integer():
        return str(int(value))
    # each "_"-separated part alike: a site_scanner label ("02_007") is read as the joined
    # site and scanner columns make it (join_site_scanner: "2_7"), whichever a file holds
    return "_".join(_label_part(part) for part in str(value).strip().split("_"))


def _label_part(text: str) -> str:
    """One part of a site label: an integer without leading zeros (``"01"``, ``"1.0"``, ``"+1"``:
    ``"1"``), anything else as written."""
    if _INTEGRAL_FLOAT_TEXT.fullmatch(text):  # "3.0" written by an older chart or a float column
        text = text.split(".")[0]
    integer = _INTEGER_TEXT.fullmatch(text)
    if integer:  # "01" of a padded label as its number reads ("1"; "+3" and "-03" as 3 and -3)
        digits = integer[2].lstrip("0") or "0"
        return f"-{digits}" if integer[1] == "-" and digits != "0" else digits
    return text


def site_labels(table: pd.DataFrame, column: str = SITE_COLUMN) -> pd.Series | None:
    """Site label of each row from ``column``; None when the table has no such column.

    ``site_scanner`` missing but ``site`` present (old tables): ``site`` + ``"_" + scanner`` when
    a ``scanner`` column exists, else ``site`` alone (:func:`join_site_scanner`). Labels are
    returned as in the table (missing cells stay missing).
    """
    if column in table.columns:
        return table[column]
    if column == SITE_SCANNER and SITE in table.columns:
        return join_site_scanner(table[SITE], table[SCANNER] if SCANNER in table.columns else None)
    return None


def cohort_row(demographics: pd.Series | dict, ei_ratio: np.ndarray) -> dict:
    """One row of the cohort table: the demographic columns present, the mean and the regions.

    Parameters
    ----------
    demographics : pandas.Series or dict
        The person's demographics (only :data:`DEMOGRAPHIC_COLUMNS` are kept).
    ei_ratio : ndarray of shape (N,)
        Regional E/I ratios, in region order.

    Returns
    -------
    dict
    """
    values = np.asarray(ei_ratio, dtype=np.float64)
    keys = demographics.index if isinstance(demographics, pd.Series) else demographics.keys()
    row = {c: demographics[c] for c in DEMOGRAPHIC_COLUMNS if c in keys}
    row[MEAN_TARGET] = float(values.mean())
    row.update({region_column(i): float(v) for i, v in enumerate(values)})
    return row


def cohort_table(
    subject_id: Sequence[str],
    age: np.ndarray,
    female: np.ndarray,
    site: Sequence[str],
    scanner: Sequence[str],
    ei_ratio: np.ndarray,
) -> pd.DataFrame:
    """A whole cohort table in the standard column order.

    Columns: ``subject_id, age_in_years, sex, site, scanner, site_scanner, numeric_sex,
    ei_ratio_mean, ei_ratio_roi_0 .. ei_ratio_roi_{N-1}`` (``site_scanner`` is ``site_scanner``
    joined by ``"_"``; ``ei_ratio_mean`` the mean of the regional values).

    Parameters
    ----------
    subject_id : sequence of str, length P
    age : ndarray of shape (P,)
        Age [years].
    female : ndarray of shape (P,)
        1 for female, 0 for male.
    site, scanner : sequence of str, length P
    ei_ratio : ndarray of shape (P, N)
        Regional E/I ratios, in region order.
    """
    female = np.asarray(female).astype(np.int64)
    site = np.asarray(site, dtype=str)
    scanner = np.asarray(scanner, dtype=str)
    ei = np.asarray(ei_ratio, dtype=np.float64)
    table = pd.DataFrame(
        {
            SUBJECT_ID: np.asarray(subject_id, dtype=str),
            AGE: np.asarray(age),
            SEX: np.where(female == 1, "female", "male"),
            SITE: site,
            SCANNER: scanner,
            SITE_SCANNER: np.char.add(np.char.add(site, "_"), scanner),
            NUMERIC_SEX: female,
            MEAN_TARGET: ei.mean(axis=1),
        }
    )
    return pd.concat([table, pd.DataFrame(ei, columns=region_columns(ei.shape[1]))], axis=1)


def regions_frame(names: Sequence[str]) -> pd.DataFrame:
    """The ``<table>.regions.csv`` sidecar: ``column, region_index, region``."""
    n = len(names)
    return pd.DataFrame({"column": region_columns(n), REGION_INDEX: np.arange(n), REGION: list(names)})


def ei_ratio_frame(
    ei_ratio: np.ndarray,
    s_e: np.ndarray,
    s_i: np.ndarray,
    r_e: np.ndarray,
    ei_ratio_sd: np.ndarray | None = None,
    ei_ratio_lo: np.ndarray | None = None,
    ei_ratio_hi: np.ndarray | None = None,
    quality: Mapping[str, Any] | None = None,
    regions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """A subject's result in the ``EI_ratio.csv`` layout (one row per region).

    Parameters
    ----------
    ei_ratio, s_e, s_i : ndarray of shape (N,)
        E/I ratio and time-averaged excitatory / inhibitory synaptic gating.
    r_e : ndarray of shape (N,)
        Time-averaged excitatory rate [Hz].
    ei_ratio_sd, ei_ratio_lo, ei_ratio_hi : ndarray of shape (N,), optional
        Spread and interval bounds of the E/I ratio (columns left out when None).
    quality : mapping, optional
        The fit-quality verdict (``run.json``'s ``fit_quality``: ``flagged``, ``reasons``); gives
        the :data:`FIT_FLAGGED` and :data:`FIT_FLAG_REASONS` columns, repeated in every row so
        that the file alone tells whether its numbers come from a poor fit.
    regions : sequence of str, optional
        The N region names (the :data:`REGION` column, after ``region_index``; left out when None).
    """
    table = pd.DataFrame(
        {
            REGION_INDEX: np.arange(len(ei_ratio)),
            EI_RATIO: ei_ratio,
            S_E: s_e,
            S_I: s_i,
            R_E: r_e,
        }
    )
    optional = ((EI_RATIO_SD, ei_ratio_sd), (EI_RATIO_LO, ei_ratio_lo), (EI_RATIO_HI, ei_ratio_hi))
    for name, values in optional:
        if values is not None:
            table[name] = values
    if quality is not None:
        table[FIT_FLAGGED] = bool(quality.get("flagged", False))
        table[FIT_FLAG_REASONS] = ";".join(str(r) for r in quality.get("reasons", ()) or ())
    if regions is not None:
        table.insert(1, REGION, region_name_list(regions, len(table)))
    return table


def region_name_list(regions: Sequence[str], n_regions: int) -> list[str]:
    """``regions`` as a list of N texts, for a :data:`REGION` column (ValueError on another N)."""
    names = [str(r) for r in regions]
    if len(names) != n_regions:
        raise ValueError(f"{len(names)} region names for {n_regions} regions")
    return names


def region_index_cell(text: str) -> int | None:
    """A ``region_index`` cell as written (``"3"``, ``" 3 "``, ``"3.0"`` after a spreadsheet's
    round trip) as an int; None when it is not a whole non-negative number."""
    try:
        value = float(str(text).strip())
    except ValueError:
        return None
    return int(value) if value.is_integer() and value >= 0 else None


def read_region_cells(path: str | Path) -> list[tuple[int, str, str]] | None:
    """The :data:`REGION` column of a result file (``EI_ratio.csv``, ``best_parameters.csv``),
    read as written: ``(row, region_index, region)`` per data row (row 1 = the first after the
    header; both cells as text), or None when the file has no such column.

    Read as text, not by pandas: a region named ``NA`` or ``001`` stays that name. Raises
    :class:`OSError` / :class:`UnicodeDecodeError` / :class:`csv.Error` on an unreadable file.
    """
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = csv.reader(fh)
        header = [h.strip() for h in next(rows, [])]
        if REGION not in header or REGION_INDEX not in header:
            return None
        i, k = header.index(REGION_INDEX), header.index(REGION)
        return [
            (r, cells[i].strip() if i < len(cells) else "", cells[k] if k < len(cells) else "")
            for r, cells in enumerate(rows, start=1)
            if cells
        ]
