"""Checks of a cohort manifest's columns before any work (``cohort`` and ``validate --manifest``).

* a column the cohort does not read ('SC', 'myelin_map') is warned about: it would silently
  leave the default SC or maps in use;
* a manifest whose ``sc`` column (or whose ``myelin``/``gradient`` columns) names files for some
  subjects and is empty for others is refused: the empty rows would be fitted with the default
  template SC (or the maps ``--maps`` chooses), a pipeline other than the rest's, which
  ``collect`` refuses to put in one table after every subject was fitted; unless the files
  named hold the template SC (the shipped maps) themselves, as the demo manifest's do.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.readers import INPUT_PROBLEM, MANIFEST_PATH_COLUMNS

MANIFEST_COLUMNS = ("subject_id", "tr", "scan_length", *MANIFEST_PATH_COLUMNS, "n_runs", INPUT_PROBLEM)
"""Columns a cohort reads (the last two written by the toolkit, not named in the warning)."""
SHOWN_IDS = 3
"""Subject ids named of each kind (given, empty) in the refusal of a partly filled column."""
_WHAT = {
    ("sc",): ("column sc names an SC file", "the default template SC"),
    ("myelin", "gradient"): (
        "columns myelin and gradient name map files",
        "the maps --maps chooses (the shipped DK68 maps by default)",
    ),
}


def warn_unread_columns(table: pd.DataFrame, source: str, stacklevel: int = 3) -> None:
    """A misspelt column ('SC', 'myelin_map') would silently leave the default SC or maps in use."""
    unread = [str(c) for c in table.columns if c not in MANIFEST_COLUMNS]
    if unread:
        warnings.warn(
            f"{source}: column(s) {', '.join(map(repr, unread[:8]))} are not read (manifest "
            f"columns, case-sensitive: {', '.join(MANIFEST_COLUMNS[:-2])})",
            InputWarning,
            stacklevel=stacklevel,
        )


def _given(value: Any) -> bool:
    """Whether a manifest cell names something (not None, NaN or blank text)."""
    if value is None or value is pd.NA:
        return False
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return False
    return str(value).strip() != ""


def _ids(ids: Sequence[str]) -> str:
    more = f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else ""
    return ", ".join(ids[:SHOWN_IDS]) + more


def _all_defaults(table: pd.DataFrame, columns: list[str], given: np.ndarray) -> bool:
    """Whether every file the partly filled ``columns`` name holds what an empty row gets: the
    default template SC, or the shipped DK68 maps value for value (the demo manifest's
    ``sc.csv``, ``myelin.csv`` and ``gradient.csv``): then it is one pipeline, which ``collect``
    combines. An unreadable file is not (its subject fails alone later)."""
    from delssome_norms.datasets import load_default_maps, load_default_template
    from delssome_norms.io import read_map, read_sc

    rows = table.loc[given, columns].astype(str).drop_duplicates()
    try:
        with warnings.catch_warnings():  # the subjects' own reads warn, once
            warnings.simplefilter("ignore")
            if columns == ["sc"]:
                template = load_default_template().sc
                return all(np.array_equal(read_sc(path), template) for path in rows["sc"].str.strip())
            if columns != ["myelin", "gradient"]:
                return False
            maps = load_default_maps()
            return all(
                np.array_equal(read_map(m.strip()), maps.myelin)
                and np.array_equal(read_map(g.strip()), maps.gradient)
                for m, g in zip(rows["myelin"], rows["gradient"])
            )
    except (InvalidInputError, OSError, ValueError):
        return False


def check_partly_filled(table: pd.DataFrame, source: str, maps: str = "default") -> None:
    """Refuse a manifest whose ``sc`` column, or whose ``myelin``/``gradient`` columns (a row
    gives maps when it names either), name files for some subjects and are empty for others
    (unless the files hold what the empty rows get: the template SC; the shipped maps when
    ``maps``, the fit's ``--maps``, is ``"default"``: with ``"fc-gradient"`` empty rows get an
    FC gradient instead).

    Raises
    ------
    InvalidInputError
        Naming ``source`` (the manifest), the column(s), up to :data:`SHOWN_IDS` subject ids of
        each kind and what to do: fill the empty cells, or run those subjects as a separate
        cohort.
    """
    ids = [str(v) for v in table["subject_id"]] if "subject_id" in table.columns else []
    for columns, (what, fallback) in _WHAT.items():
        present = [c for c in columns if c in table.columns]
        if not present or not ids:
            continue
        given = np.zeros(len(table), dtype=bool)
        for c in present:
            given |= np.array([_given(v) for v in table[c]], dtype=bool)
        if given.all() or not given.any():
            continue
        same = present == ["sc"] or maps == "default"  # what the empty rows get (--maps)
        if same and _all_defaults(table, present, given):  # the files hold that themselves
            continue
        named = [s for s, g in zip(ids, given) if g]
        empty = [s for s, g in zip(ids, given) if not g]
        verb = "is" if len(columns) == 1 else "are"
        raise InvalidInputError(
            f"{what} for {len(named)} subject(s) ({_ids(named)}) and {verb} empty for "
            f"{len(empty)} ({_ids(empty)}); the subjects with empty cells would be fitted with "
            f"{fallback}, a pipeline other than the others', and collect refuses to put both in "
            "one table: fill the empty cells, or run the subjects with empty cells as a separate "
            "cohort (a manifest and --out-dir of their own)",
            source,
        )


def check_manifest_columns(table: pd.DataFrame, source: str, maps: str = "default") -> None:
    """Before any work on a manifest: warn about unread columns
    (:func:`warn_unread_columns`), refuse partly filled SC or map columns
    (:func:`check_partly_filled`; ``maps``: the fit's ``--maps``)."""
    warn_unread_columns(table, source, stacklevel=4)
    check_partly_filled(table, source, maps)
