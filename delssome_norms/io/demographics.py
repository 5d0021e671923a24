"""Demographics tables: the people of a cohort (CSV, or a BIDS ``participants.tsv``).

The toolkit's names are ``subject_id``, ``age_in_years`` and ``sex`` (or ``numeric_sex``). A BIDS
``participants.tsv`` (tab-separated, ``n/a`` for missing cells) names the first two
``participant_id`` and ``age``; these are used, with a warning, where the toolkit's own name is
absent. IDs are never rewritten: ``sub-01`` stays ``sub-01`` (the folder name ``prepare
--bids-dir`` gives that person's results).

Sessions (:func:`read_demographics` given the result folders): ``prepare --bids-dir`` names each
session of a person scanned in several ``sub-<label>_ses-<label>``; such a folder takes the row of
its person (``sub-<label>``) and the values of its session in the BIDS
``sub-<label>/sub-<label>_sessions.tsv`` (``session_id``, e.g. ``ses-1``; ``age`` and others),
which win over the person's. An explicit row named as the folder wins over both.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.checks import (
    check_ages,
    check_timing,
    check_unique_ids,
    table_sex_labels,
)
from delssome_norms.io.sidecar import entity, person_id

BIDS_NAMES = {"subject_id": "participant_id", "age_in_years": "age"}
"""Required demographics columns and the BIDS ``participants.tsv`` names accepted for them."""

SEX_COLUMNS = ("sex", "numeric_sex")


SITE_COLUMNS = ("site", "scanner", "site_scanner")
"""Optional demographics columns of the scanning site, matched in any case with spaces or hyphens
for underscores (``Site``, ``Site-Scanner``)."""

KNOWN_COLUMNS = (*BIDS_NAMES, *BIDS_NAMES.values(), *SEX_COLUMNS, *SITE_COLUMNS, "TR", "scan_length")
"""Demographics columns the toolkit reads (in :func:`site_like_unused`'s sense)."""


REQUIRED_SPELLINGS = {
    "subject_id": ("subject_id", "participant_id", "id", "subject", "participant", "sub_id"),
    "age_in_years": ("age_in_years", "age", "age_years"),
    "sex": ("sex", "gender"),
}
"""Spellings of the required columns that are not accepted but named in the missing-column error
(matched by :func:`column_key`: ``Age``, ``ID``, ``Gender``)."""


def column_key(name: object) -> str:
    """A column name compared case-insensitively, spaces and hyphens as underscores."""
    return "_".join(str(name).strip().lower().replace("-", " ").replace("_", " ").split())


def with_toolkit_names(
    table: pd.DataFrame,
    input_name: str = "demographics",
    *,
    age: bool = True,
    warn_unused: bool = True,
) -> pd.DataFrame:
    """``table`` with BIDS ``participant_id``/``age`` renamed ``subject_id``/``age_in_years``
    where the toolkit's name is absent (one :class:`InputWarning` naming the columns used), and
    a site column spelled otherwise (``Site``, ``Scanner``, ``Site-Scanner``) renamed ``site``,
    ``scanner`` or ``site_scanner`` where the toolkit's name is absent. Without ``age`` an age
    column is optional (sessions may give the ages). With ``warn_unused``, columns that look
    like a site or scanner column but are not used (``Scanner Site``) are named in one
    :class:`InputWarning` (:func:`site_like_unused`).

    Raises
    ------
    InvalidInputError
        Every required column that is missing under all its accepted names, in one message.
    """
    renames = {b: ours for ours, b in BIDS_NAMES.items() if ours not in table and b in table}
    missing = [
        f"{ours} (or BIDS {bids})"
        for ours, bids in BIDS_NAMES.items()
        if ours not in table and bids not in table and (age or ours != "age_in_years")
    ]
    if not any(c in table for c in SEX_COLUMNS):
        missing.append("sex (female/male, F/M) or numeric_sex (1 = female, 0 = male)")
    if missing:
        absent = [m.split(" ", 1)[0] for m in missing]
        near = [
            f"{c} to {ours}"
            for c in table.columns
            for ours, keys in REQUIRED_SPELLINGS.items()
            if ours in absent and column_key(c) in keys
        ]
        raise InvalidInputError(
            f"missing required column(s): {'; '.join(missing)}; found: "
            f"{', '.join(map(str, table.columns))}"
            + (f" (rename {', '.join(near)} if that is what they hold)" if near else ""),
            input_name,
        )
    if renames:
        used = ", ".join(f"{b} as {ours}" for b, ours in renames.items())
        warnings.warn(f"{input_name}: using the BIDS column(s) {used}", InputWarning, stacklevel=3)
    for ours in SITE_COLUMNS:
        spelled = [c for c in table.columns if c != ours and column_key(c) == ours]
        if ours not in table and len(spelled) == 1:  # two spellings: neither is chosen
            renames[spelled[0]] = ours
    out = table.rename(columns=renames)
    unused = site_like_unused(out.columns) if warn_unused else []
    if unused:
        warnings.warn(
            f"{input_name}: column(s) {', '.join(repr(str(c)) for c in unused)} look like a site "
            "or scanner column but are not used: the toolkit reads only columns named site, "
            "scanner or site_scanner (any case, spaces or hyphens for underscores, one column "
            "each); rename it site (or scanner) to give the table and the charts the site",
            InputWarning,
            stacklevel=3,
        )
    return out


def site_like_unused(columns: Iterable[object]) -> list[object]:
    """The columns among ``columns`` that the toolkit does not read (:data:`KNOWN_COLUMNS`) but
    whose name mentions a site or scanner (``Scanner Site``, ``site_id``, a second ``Site``)."""
    return [
        c
        for c in columns
        if c not in KNOWN_COLUMNS
        and any(w.startswith(("site", "scanner")) for w in column_key(c).split("_"))  # not "website"
    ]


def first_data_line(path: str | Path, n_rows: int) -> int | None:
    """The file line of a table's first row (2: the line after the header) when each of its
    ``n_rows`` rows is one line of the file; None when lines and rows differ (blank or comment
    lines the reader skipped, cells spanning lines), so that no wrong line is named."""
    try:
        lines = Path(path).read_bytes().splitlines()
    except OSError:
        return None
    while lines and not lines[-1].strip():
        lines.pop()
    return 2 if len(lines) == n_rows + 1 and all(line.strip() for line in lines) else None


def prepare_demographics(
    table: pd.DataFrame,
    input_name: str = "demographics",
    *,
    age: bool = True,
    first_line: int | None = None,
    warn_unused: bool = True,
) -> pd.DataFrame:
    """Validate a demographics table and add the derived columns the charts use.

    Required: ``subject_id`` (or BIDS ``participant_id``), ``age_in_years`` (years; or BIDS
    ``age``), and ``sex`` or ``numeric_sex``. Optional: ``site``, ``scanner``, ``site_scanner``
    (in any case, spaces or hyphens for underscores: ``Site``), ``TR`` and ``scan_length``
    (seconds). Adds ``sex`` (female/male), ``numeric_sex`` (female = 1)
    and ``site_scanner`` (``site_scanner`` or ``<site>_<scanner>``; ``<site>`` where the scanner is
    empty, empty where the site is) when possible. Without ``age`` the ages are neither required
    nor checked (the person rows of people whose sessions give them). ``first_line``: the file
    line of the table's first row (2 for a file read as it is), named with the ``subject_id``
    in the message of a missing or wrong age. ``warn_unused``: see :func:`with_toolkit_names`.
    """
    out = with_toolkit_names(table, input_name, age=age, warn_unused=warn_unused).copy()
    try:
        check_unique_ids(out["subject_id"], input_name)
        out["subject_id"] = out["subject_id"].astype(str)
        check_unique_ids(out["subject_id"], input_name)
        if age:
            out["age_in_years"] = check_ages(
                out["age_in_years"],
                input_name,
                months_hint=True,
                ids=out["subject_id"],
                first_line=first_line,
            )
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


def read_demographics(
    path: str | Path,
    folders: Iterable[str] | None = None,
    bids_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Read and validate a demographics table: CSV, tab-separated (BIDS ``participants.tsv``,
    ``n/a`` read as missing) or Parquet (see :func:`prepare_demographics`).

    Parameters
    ----------
    path : path
        The table (one row per person, or per session where a row is named as its folder).
    folders : iterable of str, optional
        The result folders' names (``collect``). Each session folder (``sub-01_ses-1``) without a
        row of its own becomes a row: its person's (``sub-01``, whose row it replaces), with the
        values of that session in ``<bids_dir>/sub-01/sub-01_sessions.tsv`` winning (one
        :class:`InputWarning` says so); a person's folder without a session (``sub-03``) takes
        the values of the only session its sessions.tsv lists. People without an age whose
        sessions.tsv exists and who have no folder are left out, with a warning.
    bids_dir : path, optional
        The BIDS dataset holding the ``sub-<label>/sub-<label>_sessions.tsv`` files; default
        the folder of ``path``.

    Raises
    ------
    InvalidInputError
        Besides :func:`prepare_demographics`'s (every missing required column at once; the ages
        only where no ``sub-*/sub-*_sessions.tsv`` could give them): a session folder whose
        session has no age (neither in ``path`` nor in its sessions.tsv); an unreadable
        sessions.tsv or one without ``session_id`` or with an age out of range. (Sessions of a
        person without a row are left out, as any folder the table does not list.)
    """
    from delssome_norms.io.readers import read_table  # (it imports this module)

    name = str(path)
    raw = read_table(path, tabs=True)
    line = first_data_line(path, len(raw))
    if folders is None:
        return prepare_demographics(raw, input_name=name, first_line=line)
    root = Path(path).parent if bids_dir is None else Path(bids_dir)
    try:
        people = with_toolkit_names(raw, name, age=False)
    except InvalidInputError:
        if not any(root.glob(SESSIONS_FILE.format("sub-*"))):
            with_toolkit_names(raw, name)  # no sessions to give ages: name every column missing
        raise
    folders = set(map(str, folders))
    quiet = {"warn_unused": False}  # warned above
    if not _has_sessions(people, folders, root):
        return prepare_demographics(people, name, first_line=line, **quiet)  # the rows, own ages
    prepare_demographics(people, name, age=False, **quiet)  # ids, sex, site, timing: the rows
    if "age_in_years" in people:  # ages given: checked with the file's own row numbers
        check_ages(
            people["age_in_years"],
            f"{name}: column age_in_years",
            allow_missing=True,
            months_hint=True,
            ids=people["subject_id"],
            first_line=line,
        )
    rows = _session_rows(people, folders, root, name)
    return prepare_demographics(rows, f"{name} (its rows matched to the result folders)", **quiet)


SESSIONS_FILE = "{0}/{0}_sessions.tsv"
"""A BIDS person's sessions table, relative to the dataset root (``{0}``: ``sub-<label>``)."""


def read_sessions(path: Path) -> pd.DataFrame:
    """A BIDS ``sub-<label>_sessions.tsv`` indexed by session label (``1`` for ``ses-1``),
    ``age`` named ``age_in_years`` (years; missing where ``n/a``).

    Raises
    ------
    InvalidInputError
        No ``session_id`` column, a session listed twice, an age that is not a number or out of
        range (0 to 120 years; rows counted after the header).
    """
    from delssome_norms.io.readers import read_table

    table = read_table(path, required=("session_id",), tabs=True)
    if "age" in table and "age_in_years" not in table:
        table = table.rename(columns={"age": "age_in_years"})
    labels = table["session_id"].astype(str).str.strip().str.removeprefix("ses-")
    twice = sorted(set(labels[labels.duplicated()]))
    if twice:
        raise InvalidInputError(f"lists session(s) {', '.join(twice)} more than once", str(path))
    if "age_in_years" in table:
        table["age_in_years"] = check_ages(
            table["age_in_years"],
            str(path),
            allow_missing=True,
            months_hint=True,
            first_line=first_data_line(path, len(table)),
        )
    return table.drop(columns="session_id").set_axis(labels.to_list())


def _has_sessions(people: pd.DataFrame, folders: set[str], root: Path) -> bool:
    """Whether a result folder is a session without a row of its own, or a person with a folder
    or without an age has a sessions.tsv."""
    ids = people["subject_id"].astype(str)
    listed = set(ids)
    if any(person_id(f) != f and f not in listed for f in folders):
        return True
    ages = people.get("age_in_years", pd.Series(np.nan, index=people.index))
    no_age = pd.to_numeric(ages, errors="coerce").isna().to_numpy()
    return any(
        (root / SESSIONS_FILE.format(sid)).is_file()
        for sid, missing in zip(ids, no_age)
        if sid in folders or missing
    )


def _session_rows(people: pd.DataFrame, folders: set[str], root: Path, name: str) -> pd.DataFrame:
    """``people`` (toolkit names) with each person's session folders as rows of their own, the
    values of their sessions.tsv winning; see :func:`read_demographics`."""
    ids = people["subject_id"].astype(str).tolist()
    listed = set(ids)
    sessions_of: dict[str, list[str]] = {}
    for folder in sorted(folders):
        person = person_id(folder)
        if person != folder and folder not in listed:
            sessions_of.setdefault(person, []).append(folder)
    for person in [p for p in sessions_of if p not in listed]:
        # sessions of a person without a row: left out like any unlisted folder (collect warns)
        del sessions_of[person]
    if "age_in_years" not in people:
        people = people.assign(age_in_years=np.nan)
    people_ages = pd.to_numeric(people["age_in_years"], errors="coerce")
    tables: dict[str, pd.DataFrame | None] = {}

    def sessions(person: str) -> pd.DataFrame | None:
        if person not in tables:
            path = root / SESSIONS_FILE.format(person)
            tables[person] = read_sessions(path) if path.is_file() else None
        return tables[person]

    out, replaced, taken, shared, left_out, unnamed = [], set(), [], [], [], []
    for i, (sid, person) in enumerate(zip(ids, people.to_dict("records"))):
        person["age_in_years"] = people_ages.iloc[i]
        table = sessions(sid)
        if sid in sessions_of:
            folders_here = [sid] * (sid in folders) + sessions_of[sid]
        elif sid in folders or table is None or not np.isnan(person["age_in_years"]):
            folders_here = [sid]  # the person's own row (a person's folder, or no results)
        else:  # no age, no folder of this person: a longitudinal person not fitted yet
            left_out.append(sid)
            continue
        where = root / SESSIONS_FILE.format(sid)
        for folder in folders_here:
            label = entity(folder, "ses") if folder != sid else None
            if label is None and table is not None and sid in folders and sid not in sessions_of:
                if len(table) == 1:
                    label = table.index[0]  # the only session of a person's folder
                elif not np.isnan(person["age_in_years"]):
                    unnamed.append(f"{sid} ({len(table)} sessions in {where})")
                else:
                    raise InvalidInputError(
                        f"{sid} has no age, and its results folder names no session while "
                        f"{where} lists {len(table)} ({', '.join(table.index[:4])}): give {sid} an "
                        "age, or a row named as the folder",
                        name,
                    )
            row = {**person, "subject_id": folder}
            own = table.loc[label] if table is not None and label in table.index else None
            if own is not None:
                taken.append(folder)
                for column, value in own.items():
                    if pd.isna(value):
                        continue
                    if column in row and not _missing(row[column]) and row[column] != value:
                        replaced.add(column)
                    row[column] = value
            if np.isnan(float(row["age_in_years"])):
                who = f"result folder {folder}" if folder in folders else folder
                raise InvalidInputError(
                    f"{who} has no age: none for {sid} here and "
                    + (
                        f"none for ses-{label} in {where}"
                        if table is not None and label is not None
                        else f"no {where}"
                    ),
                    name,
                )
            if label is not None and (own is None or _missing(own.get("age_in_years"))):
                shared.append(folder)
            out.append(row)
    _warn_sessions(sessions_of, (taken, replaced), (shared, unnamed), left_out, (name, root))
    return pd.DataFrame(out, columns=list(dict.fromkeys([*people.columns, *_columns(out)])))


def _missing(value: object) -> bool:
    """True for a missing cell (NaN, None, ``n/a`` read as NaN)."""
    return bool(pd.isna(value)) if np.ndim(value) == 0 else False


def _columns(rows: list[dict]) -> list[str]:
    return [c for row in rows for c in row]


def _warn_sessions(
    sessions_of: dict[str, list[str]],
    taken: tuple[list[str], set[str]],
    person_age: tuple[list[str], list[str]],
    left_out: list[str],
    where: tuple[str, Path],
) -> None:
    """One warning for the folders matched to their person's row or given their session's values
    (``taken``: those folders, the person's columns they replaced), one for sessions taking their
    person's age and one for folders naming no session among several (``person_age``), one for
    people left out (``where``: the table, the BIDS root)."""

    def shown(ids: list[str]) -> str:
        return ", ".join(ids[:6]) + (f" (and {len(ids) - 6} more)" if len(ids) > 6 else "")

    name, root = where
    shared, unnamed = person_age
    matched = [f for fs in sessions_of.values() for f in fs]
    folders, replaced = taken
    parts = []
    if matched:
        parts.append(
            f"{len(matched)} result folder(s) are sessions of {len(sessions_of)} person(s) of "
            f"{name} and take their person's row"
        )
    if folders:
        wins = f" ({', '.join(sorted(replaced))} replaced)" if replaced else ""
        parts.append(
            f"{len(folders)} folder(s) take the values of their session in "
            f"{root / SESSIONS_FILE.format('sub-<label>')}, which win over the person's{wins}"
        )
    if parts:
        everyone = sorted({*matched, *folders})
        warnings.warn(f"{'; '.join(parts)}: {shown(everyone)}", InputWarning, stacklevel=4)
    if shared:
        warnings.warn(
            f"{len(shared)} session(s) have no age in their sub-<label>_sessions.tsv and take "
            f"their person's age from {name} (the sessions of one person then share one age): "
            f"{shown(shared)}",
            InputWarning,
            stacklevel=4,
        )
    if unnamed:
        warnings.warn(
            f"{len(unnamed)} result folder(s) name no session while their sessions.tsv lists "
            f"several, so they take the age of {name}: {shown(unnamed)}; add a row named as the "
            "session (sub-<label>_ses-<label>) to choose its age",
            InputWarning,
            stacklevel=4,
        )
    if left_out:
        warnings.warn(
            f"{len(left_out)} person(s) of {name} have no age there, sessions in their "
            f"sub-<label>_sessions.tsv and no results folder, and are left out: {shown(left_out)}",
            InputWarning,
            stacklevel=4,
        )
