"""Input gate for the cohort statistics: one checked view of an E/I table.

Every public function in :mod:`delssome_norms.stats` that takes a cohort table passes it through
:func:`prepare_cohort` once; the model code after it trusts the arrays it gets.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.io import check_ages, table_sex_labels
from delssome_norms.io import ei_table as et
from delssome_norms.io.checks import sites_mix_sexes
from delssome_norms.io.sidecar import person_id
from delssome_norms.norms.dk68_by_position import (  # noqa: F401 (re-exported to stats)
    DK68_WARNED_ATTR,
    says_dk68,
    warn_dk68_by_position,
)
from delssome_norms.norms.flagged_rows import handle_flagged

ROI_PATTERN = et.REGION_PATTERN
"""Column names of regional targets; the number is the region's index (:func:`table_regions`)."""
TARGET_PREFIX = et.TARGET_PREFIX
SITE_COLUMN = et.SITE_COLUMN
"""Default site column (``site_scanner``; built from ``site`` [+ ``scanner``] when absent)."""
MIN_PER_SEX = 10
"""Fewest people of each sex the sex-difference statistics accept."""
NO_COMMON_AGES = "the ages of the female and of the male people do not overlap"
"""Start of :func:`~delssome_norms.stats.sex_gap`'s refusal of a table whose two sexes cover no
common ages (:func:`gap_ages`)."""


@dataclass(frozen=True)
class Cohort:
    """A checked cohort table as arrays.

    Attributes
    ----------
    age : ndarray of shape (n,)
        Years.
    female : ndarray of bool, shape (n,)
    site : ndarray of int, shape (n,)
        Index into ``site_names`` (all zeros when no site column is used).
    site_names : tuple of str
    y : ndarray of shape (n, k)
        The target columns, float64.
    targets : tuple of str
        Names of the ``k`` targets.
    regions : tuple of (str or None)
        Region name of each target (:func:`target_regions`: the names given or carried by the
        table, DK68 names for exactly the 68 columns ``ei_ratio_roi_0..67``; None for global
        targets and where the table does not name its regions); empty when not computed.
    """

    age: np.ndarray
    female: np.ndarray
    site: np.ndarray
    site_names: tuple[str, ...]
    y: np.ndarray
    targets: tuple[str, ...]
    regions: tuple[str | None, ...] = ()

    @property
    def n_female(self) -> int:
        """Number of females."""
        return int(self.female.sum())

    @property
    def n_male(self) -> int:
        """Number of males."""
        return int((~self.female).sum())


def target_family(name: str) -> str:
    """``"regional"`` for ``ei_ratio_roi_<i>`` columns, ``"global"`` for anything else."""
    return "regional" if ROI_PATTERN.match(name) else "global"


def _region_indices(table: pd.DataFrame) -> list[int]:
    """Indices ``k`` of the table's ``ei_ratio_roi_<k>`` columns, sorted."""
    return sorted(int(m.group(1)) for c in table.columns if (m := ROI_PATTERN.match(str(c))))


def attrs_regions(
    table: pd.DataFrame, input_name: str = "table", provenance_file: str | None = None
) -> list[str] | None:
    """The region names a table carries in its ``attrs`` (``attrs[PROVENANCE_ATTR]["atlas"]
    ["regions"]``, as :func:`~delssome_norms.io.read_ei_table`, :meth:`EIResult.to_table
    <delssome_norms.pipeline.EIResult.to_table>` and :func:`~delssome_norms.pipeline.results_table`
    set them), or None; refused when they leave regional columns unnamed or name a region twice
    (:func:`check_carried_names`)."""
    from delssome_norms.norms.chart_regions import table_region_names

    provenance = getattr(table, "attrs", {}).get(et.PROVENANCE_ATTR)
    names = table_region_names(provenance if isinstance(provenance, dict) else None)
    if names is not None:
        check_carried_names(names, _region_indices(table), input_name, provenance_file)
    return names


def table_regions(
    table: pd.DataFrame,
    regions: Sequence[str] | None = None,
    input_name: str = "table",
    *,
    stacklevel: int = 2,
    provenance_file: str | None = None,
    how: str | None = None,
) -> list[str] | None:
    """The names of a table's regions (``ei_ratio_roi_<k>`` is ``names[k]``), or None.

    In this order: ``regions`` when given (refused unless it names each regional column once); the
    names the table carries in its ``attrs`` (:func:`attrs_regions`), refused when they leave
    regional columns unnamed or name a region twice (:func:`check_carried_names`; more names
    than columns name the columns the table has); the DK68 names for a table whose regional
    columns are exactly the 68 ``ei_ratio_roi_0..67``, as ``stats sex`` reads a table without a
    ``<stem>.regions.csv``, with an :class:`~delssome_norms.errors.InputWarning` that they were
    assumed by position unless the table says it is DK68 (:func:`says_dk68`: the packaged
    reference cohort). Any other table (e.g. 34 columns of one hemisphere, or another
    atlas) gets None: numbered columns say nothing of which regions they hold, and DK68 names by
    position would mislabel them.

    Parameters
    ----------
    table : DataFrame
        The cohort table (its column names and ``attrs`` are read).
    regions : sequence of str, optional
        The table's region names in column order (``regions[k]`` names ``ei_ratio_roi_<k>``).
    input_name : str
        Name of ``table`` in messages.
    stacklevel : int
        ``stacklevel`` of the warning, counted from this function.
    provenance_file : str, optional
        The provenance sidecar the ``attrs`` names were read from, named by refusals (the
        command line's ``stats``).
    how : str, optional
        How to give the table's names, in the warning of DK68 names by position.

    Returns
    -------
    list of str or None

    Raises
    ------
    InvalidInputError
        ``regions``, or the names the table carries, leave regional columns unnamed or name a
        region twice (``regions`` naming more regions than the columns are refused too).
    """
    index = _region_indices(table)
    if regions is not None:
        if isinstance(regions, (str, bytes)):
            raise InvalidInputError(
                f"must be a list of region names, one per regional column, not the single string "
                f"{regions!r}",
                "regions",
            )
        try:
            names = [str(r) for r in regions]
        except TypeError:
            raise InvalidInputError(
                f"must be a list of region names, got {type(regions).__name__}", "regions"
            ) from None
        if index and index[-1] + 1 != len(names):  # longer: which of them are the columns'?
            raise InvalidInputError(
                f"names {len(names)} regions but {input_name} has regional columns up to "
                f"{et.region_column(index[-1])}: give one name per {et.REGION_PREFIX}<k> column "
                f"(k = 0 ... {index[-1]}), in column order (e.g. the region column of the "
                "table's regions.csv)",
                "regions",
            )
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise InvalidInputError(
                f"names a region more than once ({', '.join(twice[:5])}): one name per column",
                "regions",
            )
        return names
    names = attrs_regions(table, input_name, provenance_file)
    if names is not None:
        return names
    if index == list(range(len(DK68_REGIONS))):
        how = how or "regions=, or the region column of the table's regions.csv"
        warn_dk68_by_position(input_name, how, table=table, stacklevel=stacklevel + 1)
        return list(DK68_REGIONS)
    return None


def check_carried_names(
    names: list[str], index: list[int], input_name: str, provenance_file: str | None = None
) -> None:
    """Refuse the region names a table carries (its provenance's ``atlas.regions``, in its
    ``attrs``) that leave regional columns (``index``) unnamed or name a region twice: its
    columns would be named, or classed as sensory/association, by the wrong names. The refusal
    names ``provenance_file`` when given (the command line), else the table and ``regions=``."""
    if provenance_file is None:
        source, where = input_name, "atlas.regions of the provenance in its attrs"
        fix = "pass regions= with one name per regional column, in column order"
        apart, how = "the names are of another table", f" ({et.region_column(0)} .. {{last}})"
    else:
        from delssome_norms.io import regions_path

        source, where = provenance_file, "atlas.regions"
        fix = f"rerun collect, or give the table's names in {regions_path(input_name).name}"
        apart = "the two files belong to different tables"
        how = " (the columns column, region_index, region)"
    if index and index[-1] >= len(names):
        last = et.region_column(index[-1])
        raise InvalidInputError(
            f"names {len(names)} regions ({where}), but {input_name} has regional columns up to "
            f"{last}: {apart}; {fix}{how.format(last=last)}",
            source,
        )
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise InvalidInputError(
            f"names region{'s' * (len(twice) > 1)} {', '.join(twice[:5])} more than once "
            f"({where}): which column is which region cannot be told; {fix}",
            source,
        )


def names_atlas(provenance: dict | None, names: list[str] | None) -> object:
    """The ``atlas`` block of the provenance of a table the statistics derived from a table whose
    provenance (as :func:`~delssome_norms.io.read_ei_table` read it) is ``provenance``: its atlas
    with ``regions`` the names the statistics used (``names``; its ``n_regions`` and
    ``regions_sha256`` to match), e.g. the DK68 names given by position to a table naming none;
    the atlas as read when ``names`` is None."""
    from delssome_norms.io.provenance import set_region_names

    atlas = provenance.get("atlas") if isinstance(provenance, dict) else None
    if names is None:
        return copy.deepcopy(atlas)
    block = copy.deepcopy(atlas) if isinstance(atlas, dict) else {}
    if isinstance(atlas, str) and atlas.strip():  # an atlas named by a string: its name
        block["name"] = atlas
    if not block.get("name") and list(names) == list(DK68_REGIONS):
        block["name"] = "DK68"  # by position (warned), or given as such
    out = {"atlas": block}
    set_region_names(out, list(names))
    block["n_regions"] = len(names)  # the names the tables use, not the input's count
    return out["atlas"]


def target_regions(
    table: pd.DataFrame,
    targets: Sequence[str],
    regions: Sequence[str] | None = None,
    input_name: str = "table",
    *,
    stacklevel: int = 2,
) -> tuple[str | None, ...]:
    """The region name of each target: see :func:`table_regions` for where the names come from.

    Parameters
    ----------
    table : DataFrame
        The cohort table (its column names and ``attrs`` are read).
    targets : sequence of str
        Target column names.
    regions, input_name, stacklevel
        See :func:`table_regions`.

    Returns
    -------
    tuple of (str or None)
        One entry per target; ``None`` for non-regional targets and for every target of a table
        whose regions are not named (the plots then show the column name).
    """
    if not any(ROI_PATTERN.match(str(t)) for t in targets):  # no region to name
        return tuple(None for _ in targets)
    names = table_regions(table, regions, input_name, stacklevel=stacklevel + 1)
    out = []
    for t in targets:
        m = ROI_PATTERN.match(str(t))
        k = int(m.group(1)) if m else None
        out.append(names[k] if names is not None and k is not None and k < len(names) else None)
    return tuple(out)


def default_targets(table: pd.DataFrame) -> list[str]:
    """``ei_ratio_mean`` and every ``ei_ratio_roi_<k>`` column.

    See :func:`delssome_norms.io.ei_table.default_targets`.
    """
    return et.default_targets(table.columns)


def sex_labels(table: pd.DataFrame, input_name: str = "table") -> np.ndarray:
    """Female/male labels from ``sex`` and/or ``numeric_sex`` (female = 1); both must agree.

    See :func:`delssome_norms.io.checks.table_sex_labels`.

    Parameters
    ----------
    table : DataFrame
        Table with ``sex`` and/or ``numeric_sex``.
    input_name : str
        Name of ``table`` in error messages.

    Returns
    -------
    ndarray of str, shape (n,)
        ``"female"`` or ``"male"`` per row.
    """
    if "sex" not in table.columns and "numeric_sex" not in table.columns:
        raise InvalidInputError(
            f"missing column 'sex' (or 'numeric_sex'); columns are {_show_columns(table)}", input_name
        )
    return table_sex_labels(table, input_name)


def _show_columns(table: pd.DataFrame, limit: int = 8) -> str:
    cols = [str(c) for c in table.columns]
    more = f", ... ({len(cols)} in all)" if len(cols) > limit else ""
    return ", ".join(cols[:limit]) + more


def listing(items: Sequence[str], limit: int = 5) -> str:
    """The first ``limit`` items joined by commas, then ``... (and N more)`` when there are more."""
    items = [str(i) for i in items]
    more = f" ... (and {len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def cohort_people(table: pd.DataFrame, exclude_flagged: bool, input_name: str = "table") -> pd.DataFrame:
    """The rows of ``table`` the statistics use: its people whose E/I fit is flagged (``collect``'s
    ``fit_flagged``) are named in a warning, or left out with ``exclude_flagged``
    (:func:`~delssome_norms.norms.flagged_rows.handle_flagged`; warnings point at the caller of the
    public function that calls this). A table that is not a DataFrame is passed on, to be refused
    by :func:`prepare_cohort`; the result has no ``fit_flagged`` column, so the functions it is
    handed on to do not warn again."""
    if not isinstance(table, pd.DataFrame):
        return table
    return handle_flagged(table, exclude_flagged, input_name, stacklevel=4)


def _check_one_row_per_person(table: pd.DataFrame, input_name: str) -> None:
    """Refuse a ``subject_id`` on more than one row (compared as text without surrounding spaces;
    empty ids are unknown, not repeats), and several sessions of one person
    (``sub-01_ses-1``, ``sub-01_ses-2``): one person counted twice shrinks every p-value."""
    if "subject_id" not in table.columns:
        return
    ids = table["subject_id"]
    text = ids[ids.notna()].astype(str).str.strip()
    text = text[text != ""]
    dup = text[text.duplicated(keep=False)].unique()
    if dup.size:
        raise InvalidInputError(
            f"subject_id listed more than once: {', '.join(dup[:5])}{' ...' if dup.size > 5 else ''} "
            f"({dup.size} id{'s' if dup.size > 1 else ''}); the statistics need one row per person "
            "(a repeated person counts twice and makes the p-values too small): keep one row per "
            "person, e.g. table.drop_duplicates('subject_id')",
            input_name,
        )
    rows: dict[str, list[str]] = {}
    for sid in text:
        rows.setdefault(person_id(sid), []).append(sid)
    people = [f"{who} has {len(r)} rows ({listing(r)})" for who, r in rows.items() if len(r) > 1]
    if people:
        raise InvalidInputError(
            f"{listing(people, 3)}: the statistics need one row per person; keep one session per person",
            input_name,
        )


def _check_numeric(table: pd.DataFrame, col: str, input_name: str) -> np.ndarray:
    values = pd.to_numeric(table[col], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        rows = ", ".join(str(int(i) + 1) for i in bad[:5]) + (" ..." if bad.size > 5 else "")
        raise InvalidInputError(
            f"target column {col!r} is missing or not a finite number in {bad.size} row(s) ({rows})",
            input_name,
        )
    return values


def prepare_cohort(
    table: pd.DataFrame,
    targets: Sequence[str] | str | None = None,
    *,
    site: str | None = SITE_COLUMN,
    input_name: str = "table",
    min_per_sex: int = MIN_PER_SEX,
    regions: Sequence[str] | None = None,
    label_regions: bool = True,
) -> Cohort:
    """Check a cohort table and return it as arrays.

    Parameters
    ----------
    table : DataFrame
        One row per person with ``age_in_years``, ``sex`` (or ``numeric_sex``), the ``site``
        column (unless ``site=None``) and the target columns.
    targets : str or sequence of str, optional
        Target columns; default ``ei_ratio_mean`` and every ``ei_ratio_roi_<k>`` column.
    site : str or None
        Column holding the site (or site-scanner) label; ``None`` fits no site terms. The
        default ``site_scanner`` is built from ``site`` (and ``scanner``) when the table lacks it.
    input_name : str
        Name used in error messages.
    min_per_sex : int
        Fewest people of each sex required.
    regions : sequence of str, optional
        The table's region names in column order (:func:`table_regions`; default: those the
        table carries in its ``attrs``, else DK68 for exactly the 68 DK68 columns).
    label_regions : bool
        Name each target's region (``Cohort.regions``; empty when False). Warnings point at the
        caller of the public function that calls this.

    Returns
    -------
    Cohort
        The checked arrays.

    Raises
    ------
    InvalidInputError
        A missing column, a ``subject_id`` on more than one row (or several sessions of one
        person, :func:`person_id`), an unknown sex label, a bad
        age, a non-numeric or constant target, fewer than ``min_per_sex`` people of one sex,
        sex confounded with site (no site with both sexes), or ``regions`` that do not name every
        regional column.
    """
    if not isinstance(table, pd.DataFrame):
        raise InvalidInputError(f"expected a pandas DataFrame, got {type(table).__name__}", input_name)
    if "age_in_years" not in table.columns:
        raise InvalidInputError(
            f"missing column 'age_in_years'; columns are {_show_columns(table)}", input_name
        )
    if len(table) < 2:
        raise InvalidInputError(f"needs at least 2 people (rows), got {len(table)}", input_name)
    _check_one_row_per_person(table, input_name)
    if targets is None:
        targets = default_targets(table)
        if not targets:
            raise InvalidInputError(
                "no target columns (ei_ratio_mean, ei_ratio_roi_*) found; columns are "
                f"{_show_columns(table)}",
                input_name,
            )
    elif isinstance(targets, str):
        targets = [targets]
    targets = list(targets)
    if not targets:
        raise InvalidInputError(
            "targets is empty; name at least one column (default: ei_ratio_mean and every "
            "ei_ratio_roi_* column)",
            "targets",
        )
    missing = [t for t in targets if t not in table.columns]
    if missing:
        raise InvalidInputError(f"missing target column(s) {', '.join(map(repr, missing))}", input_name)
    if len(set(targets)) != len(targets):
        raise InvalidInputError("target columns are listed more than once", input_name)
    age = check_ages(table["age_in_years"], input_name, months_hint=True)
    female = sex_labels(table, input_name) == "female"
    n_f, n_m = int(female.sum()), int((~female).sum())
    if min(n_f, n_m) < min_per_sex:
        raise InvalidInputError(
            f"needs at least {min_per_sex} people of each sex, got {n_f} female and {n_m} male",
            input_name,
        )
    if site is None:
        site_idx = np.zeros(len(table), dtype=int)
        site_names: tuple[str, ...] = ("all",)
    else:
        labels = et.site_labels(table, site)
        if labels is None:
            raise InvalidInputError(
                f"missing site column {site!r} (pass site=None to fit no site terms); "
                f"columns are {_show_columns(table)}",
                input_name,
            )
        if labels.isna().any():
            rows = np.flatnonzero(labels.isna().to_numpy())[:5]
            raise InvalidInputError(
                f"site is missing in row(s) {', '.join(str(r + 1) for r in rows)}", input_name
            )
        codes, uniques = pd.factorize(labels.map(et.site_text), sort=True)  # as the charts do
        site_idx = codes.astype(int)
        site_names = tuple(str(u) for u in uniques)
        if len(site_names) > 1 and not sites_mix_sexes(site_idx, female, len(site_names)):
            raise InvalidInputError(
                f"sex is confounded with site: each of the {len(site_names)} sites has people of "
                "one sex only, so a sex difference cannot be told apart from site differences; "
                "a sex test needs sites with both sexes (or site=None, if the sites are known to "
                "measure alike)",
                input_name,
            )
    y = np.column_stack([_check_numeric(table, t, input_name) for t in targets])
    constant = [t for t, col in zip(targets, y.T) if np.ptp(col) == 0]
    if constant:
        raise InvalidInputError(
            f"{len(constant)} target column(s) are constant: {listing(constant)}", input_name
        )
    return Cohort(
        age=age,
        female=female,
        site=site_idx,
        site_names=site_names,
        y=y,
        targets=tuple(str(t) for t in targets),
        regions=target_regions(table, targets, regions, input_name, stacklevel=3)
        if label_regions
        else (),
    )


def gap_ages(cohort: Cohort, ages: Sequence[float] | np.ndarray | None) -> np.ndarray:
    """The ages of :func:`~delssome_norms.stats.sex_gap`: ``ages`` checked against the ages both
    sexes cover, or every whole year of that overlap; refused when the two sexes' age ranges do
    not overlap."""
    spans = {
        sex: (float(cohort.age[rows].min()), float(cohort.age[rows].max()))
        for sex, rows in (("female", cohort.female), ("male", ~cohort.female))
    }
    lo = max(a for a, _ in spans.values())
    hi = min(b for _, b in spans.values())
    said = ", ".join(f"{sex} {a:.1f} to {b:.1f}" for sex, (a, b) in spans.items())
    if lo > hi:
        raise InvalidInputError(
            f"{NO_COMMON_AGES} (ages: {said}), so no gap between them can be estimated; use a "
            "table in which both sexes span the ages to compare",
            "table",
        )
    if ages is None:
        grid = np.arange(np.ceil(lo), np.floor(hi) + 0.5, 1.0)
        return grid if grid.size else np.array([0.5 * (lo + hi)])
    range_text = f"the age range that both sexes cover, [{lo:g}, {hi:g}] ({said}),"
    return checked_ages(ages, lo, hi, range_text, "one sex has no data and its curve")


def checked_ages(ages, lo: float, hi: float, range_text: str, outside: str) -> np.ndarray:
    """``ages`` [years] as a 1-D float array, refused (naming ``ages``) when empty, not finite or
    outside [``lo``, ``hi``] (``range_text`` says which range that is, ``outside`` what has no
    data beyond it): curves there would be extrapolated."""
    grid = np.asarray(ages, dtype=np.float64).ravel()
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise InvalidInputError("ages must be a non-empty array of finite numbers", "ages")
    if grid.min() < lo or grid.max() > hi:
        raise InvalidInputError(
            f"ages must lie within {range_text} got [{grid.min():g}, {grid.max():g}]: outside it "
            f"{outside} would be extrapolated; pass ages within that range",
            "ages",
        )
    return grid
