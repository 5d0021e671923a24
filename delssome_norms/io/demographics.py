"""Demographics tables: the people of a cohort (CSV, or a BIDS ``participants.tsv``).

The toolkit's names are ``subject_id``, ``age_in_years`` and ``sex`` (or ``numeric_sex``). A BIDS
``participants.tsv`` (tab-separated, ``n/a`` for missing cells) names the first two
``participant_id`` and ``age``; these are used, with a warning, where the toolkit's own name is
absent. IDs are never rewritten: ``sub-01`` stays ``sub-01`` (the folder name ``prepare
--bids-dir`` gives that person's results).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.checks import check_ages, check_timing, check_unique_ids, table_sex_labels

BIDS_NAMES = {"subject_id": "participant_id", "age_in_years": "age"}
"""Required demographics columns and the BIDS ``participants.tsv`` names accepted for them."""

SEX_COLUMNS = ("sex", "numeric_sex")


def with_toolkit_names(table: pd.DataFrame, input_name: str = "demographics") -> pd.DataFrame:
    """``table`` with BIDS ``participant_id``/``age`` renamed ``subject_id``/``age_in_years``
    where the toolkit's name is absent (one :class:`InputWarning` naming the columns used).

    Raises
    ------
    InvalidInputError
        Every required column that is missing under all its accepted names, in one message.
    """
    renames = {b: ours for ours, b in BIDS_NAMES.items() if ours not in table and b in table}
    missing = [
        f"{ours} (or BIDS {bids})"
        for ours, bids in BIDS_NAMES.items()
        if ours not in table and bids not in table
    ]
    if not any(c in table for c in SEX_COLUMNS):
        missing.append("sex (female/male, F/M) or numeric_sex (1 = female, 0 = male)")
    if missing:
        raise InvalidInputError(
            f"missing required column(s): {'; '.join(missing)}; found: "
            f"{', '.join(map(str, table.columns))}",
            input_name,
        )
    if renames:
        used = ", ".join(f"{b} as {ours}" for b, ours in renames.items())
        warnings.warn(f"{input_name}: using the BIDS column(s) {used}", InputWarning, stacklevel=3)
    return table.rename(columns=renames)


def prepare_demographics(table: pd.DataFrame, input_name: str = "demographics") -> pd.DataFrame:
    """Validate a demographics table and add the derived columns the charts use.

    Required: ``subject_id`` (or BIDS ``participant_id``), ``age_in_years`` (years; or BIDS
    ``age``), and ``sex`` or ``numeric_sex``. Optional: ``site``, ``scanner``, ``site_scanner``,
    ``TR`` and ``scan_length`` (seconds). Adds ``sex`` (female/male), ``numeric_sex`` (female = 1)
    and ``site_scanner`` (``site_scanner`` or ``<site>_<scanner>``; ``<site>`` where the scanner is
    empty, empty where the site is) when possible.
    """
    out = with_toolkit_names(table, input_name).copy()
    try:
        check_unique_ids(out["subject_id"], input_name)
        out["subject_id"] = out["subject_id"].astype(str)
        check_unique_ids(out["subject_id"], input_name)
        out["age_in_years"] = check_ages(out["age_in_years"], input_name)
        out["sex"] = table_sex_labels(out, input_name)
    except InvalidInputError as err:
        raise err.with_source(input_name) from None
    out["numeric_sex"] = (out["sex"] == "female").astype(int)
    if "site_scanner" not in out.columns and "site" in out.columns:
        from delssome_norms.io.ei_table import join_site_scanner

        scanner = out["scanner"] if "scanner" in out.columns else None
        out["site_scanner"] = join_site_scanner(out["site"], scanner)
    if "TR" in out.columns or "scan_length" in out.columns:
        for i, row in out.iterrows():
            check_timing(row.get("TR"), row.get("scan_length"), f"{input_name} row {i + 1}")
    return out


def read_demographics(path: str | Path) -> pd.DataFrame:
    """Read and validate a demographics table: CSV, tab-separated (BIDS ``participants.tsv``,
    ``n/a`` read as missing) or Parquet (see :func:`prepare_demographics`)."""
    from delssome_norms.io.readers import read_table  # (it imports this module)

    return prepare_demographics(read_table(path, tabs=True), input_name=str(path))
