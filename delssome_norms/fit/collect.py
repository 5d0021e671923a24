"""The cohort table for the growth charts: ``collect`` gathers every finished subject's E/I.

One row per subject with the demographics, the mean and regional E/I, the mean's 90 % interval
and the fit-quality flag (docs/science.md §5), written with a provenance sidecar that records the
pipeline that produced the numbers.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import group_lock, quality
from delssome_norms.fit.calibration_scope import calibration_key, calibration_mix
from delssome_norms.fit.collect_lookup import renamed_fits, renamed_hint
from delssome_norms.fit.collect_provenance import table_provenance
from delssome_norms.fit.outputs import (
    FAILURE_FILE,
    FAILURES_TABLE,
    OUTPUT_FILES,
    PIPELINE_SETTINGS_IGNORED,
    PREVIOUS_DIR,
    RECORDED_NOT_COMPARED,
    fingerprint_differences,
    read_result_values,
    read_run,
    recorded_regions,
)
from delssome_norms.io import (
    check_unique_ids,
    file_sha256,
    read_demographics,
    write_json,
    write_table,
    write_together,
)
from delssome_norms.io import ei_table as et
from delssome_norms.io.provenance import pipeline_differences
from delssome_norms.io.sidecar import person_id

PERSON_COLUMN = "participant_id"
"""The person of each row (``sub-01`` for ``sub-01_ses-2``), written when the table has sessions."""

CHART_COLUMNS = et.DEMOGRAPHIC_COLUMNS
"""Demographic columns of the cohort table (those present in the demographics)."""


INTERVAL_COLUMNS = (
    et.MEAN_LO,
    et.MEAN_HI,
    et.INTERVAL_CALIBRATED,
    et.FIT_FLAGGED,
    et.FIT_FLAG_REASONS,
)
"""Columns of the cohort table from ``run.json``'s ``ei_interval`` and ``fit_quality`` blocks."""


def interval_and_flag(run: Mapping[str, Any]) -> dict[str, Any]:
    """The interval of the mean E/I and the fit-quality flag of a subject's ``run.json``.

    Results of versions without them give NaN bounds, ``ei_interval_calibrated`` None (unknown),
    ``fit_flagged`` False and empty reasons; results written before the ``fc_outside_model_range``
    rule get that reason from their recorded mean FC, as a fit today would.
    """
    block = run.get("ei_interval")
    verdict = run.get("fit_quality")
    lo = hi = float("nan")
    calibrated = None
    if isinstance(block, Mapping):
        applies = block.get("calibration_applies")
        calibrated = applies if isinstance(applies, bool) else None
        lo, hi = (
            float(v) if isinstance(v, (int, float)) else float("nan")
            for v in (block.get("mean_lo"), block.get("mean_hi"))
        )
    flagged, reasons = False, []
    if isinstance(verdict, Mapping):
        flagged = bool(verdict.get("flagged", False))
        reasons = [str(r) for r in verdict.get("reasons") or []]
        # results written before the FC-range rule record the mean FC: the same rule for all
        if quality.FC_OUTSIDE not in reasons and quality.fc_outside(verdict.get("metrics")):
            flagged, reasons = True, [*reasons, quality.FC_OUTSIDE]
    return {
        "ei_ratio_mean_lo": lo,
        "ei_ratio_mean_hi": hi,
        et.INTERVAL_CALIBRATED: calibrated,
        "fit_flagged": flagged,
        "fit_flag_reasons": ";".join(reasons),
    }


def uncalibrated_message(differences: Mapping[str, list[str]], n_subjects: int) -> str:
    """Warning about subjects whose interval the calibration does not cover: how many per kind
    of difference (the setting each phrase starts with), an example, and the first ids."""
    kinds: dict[str, int] = {}
    for phrases in differences.values():
        for kind in {p.split(" ", 1)[0] for p in phrases}:
            kinds[kind] = kinds.get(kind, 0) + 1
    ids = list(differences)
    example = f"{ids[0]}: {'; '.join(differences[ids[0]]) or 'no difference recorded'}"
    counts = ", ".join(f"{k} ({v} subject{'s' if v > 1 else ''})" for k, v in sorted(kinds.items()))
    return (
        f"the E/I intervals of {len(ids)} of {n_subjects} subject(s) are not calibrated for their "
        f"fits ({counts}; e.g. {example}) and "
        f"may be too narrow: {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}; see README "
        "'Reading the intervals and the flag'"
    )


def flagged_message(flagged: list[str], n_subjects: int) -> str:
    """Warning naming flagged subjects ("id (reason;reason)") and what to do about them."""
    shown = ", ".join(flagged[:10]) + (f" (and {len(flagged) - 10} more)" if len(flagged) > 10 else "")
    return (
        f"{len(flagged)} of {n_subjects} subject(s) have a poor fit-quality flag: {shown}; see "
        "README 'Reading the intervals and the flag' (charts fit --exclude-flagged leaves them out)"
    )


def _check_out_outside_results(in_dir: Path, out: Path) -> None:
    """Refuse a table path inside a subject's results folder, or named like a cohort file.

    Written there it would replace a result (``EI_ratio.csv``) or a record the cohort reads
    back, and ``cohort`` would go on treating the subject as finished."""
    root, target = in_dir.resolve(), out.resolve()
    if root not in target.parents:
        return
    if target.parent == root:
        if target.name in (FAILURES_TABLE, *OUTPUT_FILES):
            raise InvalidInputError(f"would replace the cohort's own {target.name}", str(out))
        return
    subject = root / target.relative_to(root).parts[0]
    if any((subject / n).exists() for n in (*OUTPUT_FILES, FAILURE_FILE, "checkpoint")):
        raise InvalidInputError(
            f"lies in the results folder of subject {subject.name}, where it could replace a "
            "result; write the table elsewhere (e.g. next to the cohort folder)",
            str(out),
        )


def _check_sidecars_free(out: Path) -> None:
    """Refuse a table whose sidecars (``<stem>.provenance.json``, ``<stem>.regions.csv``) would
    replace those of another table of the same stem beside it (``cohort.csv`` and
    ``cohort.parquet``): that table would keep rows whose provenance and region names were gone."""
    from delssome_norms.io import provenance_path

    try:
        other = json.loads(provenance_path(out).read_text(encoding="utf-8")).get("table")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return
    if isinstance(other, str) and other != out.name and (out.parent / other).is_file():
        raise InvalidInputError(
            f"its sidecars ({provenance_path(out).name}, {out.stem}.regions.csv) would replace "
            f"those of {other} beside it, which would then keep rows whose provenance and region "
            f"names are gone; name this table otherwise (e.g. {out.stem}_2{out.suffix})",
            str(out),
        )


def collect(
    in_dir: str | Path,
    demographics: str | Path,
    out: str | Path,
    bids_dir: str | Path | None = None,
) -> pd.DataFrame:
    """Build the growth-chart input table from per-subject results and demographics.

    Parameters
    ----------
    in_dir : path
        A cohort output folder (one sub-folder per subject with ``EI_ratio.csv``).
    demographics : path
        CSV with subject_id, age_in_years, sex (or numeric_sex) and optionally site, scanner,
        site_scanner, or a BIDS ``participants.tsv`` (participant_id, age, sex; see
        :func:`delssome_norms.io.read_demographics`). IDs must be the result folders' names,
        except that a session folder ``sub-01_ses-1`` (``prepare --bids-dir``) without a row of
        its own takes the row of its person ``sub-01`` and the values of its session in
        ``sub-01/sub-01_sessions.tsv`` (``age`` above all), which win.
    out : path
        Output CSV: subject_id, age_in_years, sex, numeric_sex, site, scanner, site_scanner
        (site and scanner only where the demographics have them; site_scanner where they have it
        or site, :func:`~delssome_norms.io.prepare_demographics`), ei_ratio_mean,
        ei_ratio_roi_0 .. ei_ratio_roi_{N-1}, ei_ratio_mean_lo, ei_ratio_mean_hi
        (the 90 % interval of the mean; NaN for results of older versions),
        ei_interval_calibrated (whether the interval's calibration covers the fit; blank when the
        result did not record it), fit_flagged (bool),
        fit_flag_reasons (";"-joined, :mod:`delssome_norms.fit.quality`). Next to it
        ``<stem>.provenance.json`` (the pipeline that produced every row: atlas, SC, maps, design,
        mode, settings, timing, versions, dropped subjects, reordered subjects, the interval
        calibrations used and how many subjects each, ``interval_calibrations``; a setting that
        differs between subjects, such as the seed, is the list of its values, each counted in
        ``settings_differing``; ``sc`` lists each distinct SC with its subjects, and ``maps`` and
        ``design`` are the subjects' common value or, where subjects differ, such a list:
        :func:`~delssome_norms.fit.collect_provenance.input_groups`) and
        ``<stem>.regions.csv`` (region name of each ``ei_ratio_roi_k``). A table with sessions
        has a ``participant_id`` column after ``subject_id``: the person of each row
        (:func:`~delssome_norms.io.sidecar.person_id`). Subjects whose results
        list the same region names in another order (files with other header orders) have their
        regional columns put by name in the order most subjects list (ties: the first listed in
        ``demographics``), with one :class:`~delssome_norms.errors.InputWarning`.
    bids_dir : path, optional
        The BIDS dataset whose ``sub-<label>/sub-<label>_sessions.tsv`` give the sessions' values;
        default the folder of ``demographics``.

    Returns
    -------
    DataFrame
        The table written. Subjects without finished results are skipped with an
        :class:`~delssome_norms.errors.InputWarning` (listed in the sidecar); flagged subjects
        are named in another, and subjects whose intervals come from different calibrations
        (floors; a rerun keeps subjects fitted with older ones) in another.

    Raises
    ------
    InvalidInputError
        Subjects with different numbers of regions or region names (two subjects and a region
        named), settings, or pipelines (atlas, SC, maps, design, mode: the first differing field
        and both values are named).
    """
    from delssome_norms.io import provenance_path, regions_path
    from delssome_norms.io.provenance import SIDECAR_KIND
    from delssome_norms.io.regions import regions_sha256

    _check_out_outside_results(Path(in_dir), Path(out))
    _check_sidecars_free(Path(out))
    in_dir = Path(in_dir)
    folders = [d.name for d in in_dir.iterdir() if d.is_dir()] if in_dir.is_dir() else []
    demo = read_demographics(demographics, folders, bids_dir)
    try:
        check_unique_ids(demo["subject_id"], str(demographics), as_folders=True)
    except InvalidInputError as err:
        raise err.with_source(str(demographics)) from None
    rows, missing, n_regions = [], [], None
    settings_seen: dict[str, list[str]] = {}
    recorded: dict[str, dict[str, list[str]]] = {}
    pipelines: dict[str, tuple[dict[str, Any], list[str]]] = {}
    pipeline_of: dict[str, dict[str, Any]] = {}
    names_of: dict[str, tuple[str, ...]] = {}  # each subject's region names, in its own order
    found: list[tuple[pd.Series, dict[str, Any], np.ndarray, tuple[str, ...] | None]] = []
    provenances: dict[str, dict[str, Any]] = {}
    unfingerprinted, unprovenanced = [], []
    flagged: list[str] = []
    uncalibrated: dict[str, list[str]] = {}
    calibrations: dict[str, tuple | None] = {}  # each subject's interval calibration
    timing_mismatch: dict[str, list[str]] = {}  # each subject's TR / scan length differences
    damaged: list[str] = []
    states: dict[str, list[str]] = {}  # why subjects have no results: failed, unfinished, ...
    for _, person in demo.iterrows():
        sid = str(person["subject_id"])
        sdir = in_dir / sid
        run = read_run(sdir)
        if run is None:
            missing.append(sid)
            # a live fit lock first: a failed subject being refitted elsewhere is not failed
            why = "being fitted" if group_lock.live_holder(in_dir, sid) is not None else None
            if why is None and (sdir / FAILURE_FILE).is_file():
                why = "failed"
            if why is None and (sdir / PREVIOUS_DIR / "run.json").is_file():
                why = "refit interrupted"  # an --overwrite refit stopped: old results set aside
            why = why or ("unfinished" if (sdir / "checkpoint").is_dir() else "not started")
            states.setdefault(why, []).append(sid)
            if all((sdir / f).is_file() for f in OUTPUT_FILES):
                damaged.append(sid)  # every file there, but run.json unreadable or incomplete
            continue
        run_path = str(sdir / "run.json")
        if str(run.get("subject_id")) != sid:
            raise InvalidInputError(
                f"holds the results of subject {run.get('subject_id')!r}, not {sid!r}; move it "
                "to the right folder or refit",
                run_path,
            )
        fp = run.get("fingerprint")
        if isinstance(fp, dict):
            # a seed (or device) does not define the method: a cohort may mix them
            fitted = fp.get("settings")
            if isinstance(fitted, dict):
                for name in RECORDED_NOT_COMPARED:
                    recorded.setdefault(name, {}).setdefault(str(fitted.get(name)), []).append(sid)
                fitted = {k: v for k, v in fitted.items() if k not in PIPELINE_SETTINGS_IGNORED}
            key = json.dumps(fitted, sort_keys=True)
            settings_seen.setdefault(key, []).append(sid)
        else:
            unfingerprinted.append(sid)
        if differs := _check_timing_columns(person, run):
            timing_mismatch[sid] = differs
        prov = run.get("provenance")
        if isinstance(prov, dict) and isinstance(prov.get("pipeline"), dict):
            pipeline_of[sid] = prov["pipeline"]
            provenances[sid] = prov
        else:
            unprovenanced.append(sid)
        ei_path = sdir / et.EI_RATIO_FILE
        values = read_result_values(sdir, run)
        if n_regions is None:
            n_regions = len(values)
        elif len(values) != n_regions:
            raise InvalidInputError(
                f"has {len(values)} regions but earlier subjects have {n_regions}",
                str(ei_path),
            )
        listed = recorded_regions(run, len(values))
        names = None if listed is None else tuple(listed)
        if names is not None:
            names_of[sid] = names
        found.append((person, run, values, names))
    order, reordered = common_region_order(names_of, str(in_dir))
    for person, run, values, names in found:
        sid = str(person["subject_id"])
        if order is not None and names is not None and names != order:
            where = {n: i for i, n in enumerate(names)}
            values = values[[where[n] for n in order]]  # the table's order, by name
            pipeline = pipeline_of.get(sid)
            if pipeline is not None and pipeline.get("regions_sha256") == regions_sha256(names):
                # the digest of the same names in the table's order
                pipeline_of[sid] = {**pipeline, "regions_sha256": regions_sha256(order)}
        row = et.cohort_row(person, values)
        row.update(interval_and_flag(run))
        calibrations[sid] = calibration_key(run)
        if row["fit_flagged"]:
            flagged.append(f"{sid} ({row['fit_flag_reasons']})")
        if row[et.INTERVAL_CALIBRATED] is False:  # then run.json has the ei_interval block
            differences = run["ei_interval"].get("calibration_differences") or []
            uncalibrated[sid] = [str(d) for d in differences]
        rows.append(row)
    for sid, pipeline in pipeline_of.items():
        key = json.dumps(pipeline, sort_keys=True)
        pipelines.setdefault(key, (pipeline, []))[1].append(sid)
    listed_ids = set(demo["subject_id"].astype(str))
    prefix_pairs = _sub_prefix_pairs(missing, in_dir, listed_ids)
    zero_pairs = _leading_zero_pairs(missing, in_dir, listed_ids)
    misnamed = {sid for sid, _ in prefix_pairs + zero_pairs}
    renamed = renamed_fits(missing, in_dir, listed_ids, misnamed)  # never collected from there
    prefix_hint = _sub_prefix_hint(prefix_pairs) + _leading_zeros_hint(zero_pairs, demographics)
    prefix_hint += renamed_hint(renamed)
    _relabel_misnamed(states, misnamed | {sid for sid, _ in renamed})
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
        )
        warnings.warn(
            f"{len(missing)} subject(s) in {demographics} have no finished results in {in_dir}: "
            f"{shown} (left out of the table; {_missing_states(states)})"
            + (
                f"; {len(damaged)} of them have all their files but a damaged or unfinished "
                f"run.json ({', '.join(damaged[:5])}): refit them with --overwrite"
                if damaged
                else ""
            )
            + prefix_hint,
            InputWarning,
            stacklevel=2,
        )
    if not rows:
        raise InvalidInputError(
            f"no finished subject results in {in_dir} for the people listed in {demographics} "
            "(one folder per subject_id, each with a run.json)" + prefix_hint,
            str(in_dir),
        )
    if reordered:
        warnings.warn(
            reordered_message(reordered, names_of, order, len(rows), out), InputWarning, stacklevel=2
        )
        unnamed = [str(p["subject_id"]) for p, _, _, names in found if names is None]
        if unnamed:
            warnings.warn(
                f"{len(unnamed)} subject(s) record no region names (results of an older "
                f"version): {', '.join(unnamed[:10])}{' ...' if len(unnamed) > 10 else ''}; "
                "their columns are taken in the table's order, which cannot be checked while "
                "other subjects list their regions in other orders: refit them to be sure",
                InputWarning,
                stacklevel=2,
            )
    if flagged:
        warnings.warn(flagged_message(flagged, len(rows)), InputWarning, stacklevel=2)
    if uncalibrated:
        warnings.warn(uncalibrated_message(uncalibrated, len(rows)), InputWarning, stacklevel=2)
    calibration_record, mixed = calibration_mix(calibrations)
    if mixed:  # a rerun keeps subjects fitted with older floors
        warnings.warn(mixed, InputWarning, stacklevel=2)
    diff: list = []
    if len(pipelines) > 1:
        (ref, ref_ids), *others = sorted(pipelines.values(), key=lambda v: len(v[1]), reverse=True)
        other, other_ids = others[0]
        diff = pipeline_differences(ref, other) or [("pipeline", "?", "?")]
        if [d[0] for d in diff] == ["settings_sha256"] and len(settings_seen) > 1:
            diff = []  # the settings check below names the settings that differ
    if diff:
        field, a, b = diff[0]
        raise InvalidInputError(
            f"subjects were fitted with different pipelines: {field} is {a!r} for "
            f"{', '.join(ref_ids[:3])}{' ...' if len(ref_ids) > 3 else ''} but {b!r} for "
            f"{', '.join(other_ids[:3])}{' ...' if len(other_ids) > 3 else ''}"
            + (f" (and {len(diff) - 1} more field(s) differ)" if len(diff) > 1 else "")
            + "; collect each pipeline into its own table, or refit (cohort --overwrite)",
            str(in_dir),
        )
    if len(settings_seen) > 1:
        ranked = sorted(settings_seen.items(), key=lambda kv: len(kv[1]), reverse=True)
        groups = [ids for _, ids in ranked]
        shown = "; ".join(
            ", ".join(g[:3]) + (f" (+{len(g) - 3})" if len(g) > 3 else "") for g in groups[:4]
        )
        first, second = (json.loads(k) for k, _ in ranked[:2])
        differing = fingerprint_differences(
            first if isinstance(first, dict) else {}, second if isinstance(second, dict) else {}
        )
        raise InvalidInputError(
            f"subjects were fitted with {len(settings_seen)} different settings ({shown}; "
            f"differing: {', '.join(differing[:6]) or 'settings'}); refit them with one setting "
            "(cohort --overwrite) before building one table",
            str(in_dir),
        )
    for name, values in recorded.items():
        if len(values) > 1:  # allowed in one table, but worth knowing
            shown = "; ".join(
                f"{v if len(v) <= 16 else v[:12] + '...'} ({len(ids)}: {', '.join(ids[:2])}"
                f"{' ...' if len(ids) > 2 else ''})"
                for v, ids in values.items()
            )
            warnings.warn(
                f"subjects were fitted with different {name}: {shown}; their E/I may differ "
                "slightly by that alone",
                InputWarning,
                stacklevel=2,
            )
    if timing_mismatch:
        each = [f"{sid}: {', '.join(d)}" for sid, d in timing_mismatch.items()]
        warnings.warn(
            f"{len(timing_mismatch)} subject(s) have a TR or scan length in {demographics} that "
            f"differs from the one they were fitted with: {'; '.join(each[:5])}"
            + (f" (and {len(each) - 5} more)" if len(each) > 5 else "")
            + " (check that each row describes the scan that was fitted)",
            InputWarning,
            stacklevel=2,
        )
    listed = {*demo["subject_id"].astype(str), *(folder for _, folder in renamed)}  # named above
    unlisted = sorted(
        d.name for d in in_dir.iterdir() if d.is_dir() and d.name not in listed and read_run(d)
    )
    if unlisted:
        warnings.warn(
            f"{len(unlisted)} finished subject(s) in {in_dir} are not in {demographics} and are "
            f"left out of the table: {', '.join(unlisted[:10])}"
            + (f" (and {len(unlisted) - 10} more)" if len(unlisted) > 10 else ""),
            InputWarning,
            stacklevel=2,
        )
    if unfingerprinted:
        warnings.warn(
            f"{len(unfingerprinted)} subject(s) in {in_dir} were written by an older version "
            f"without a run fingerprint; their settings cannot be checked: "
            f"{', '.join(unfingerprinted[:5])}",
            InputWarning,
            stacklevel=2,
        )
    if unprovenanced and provenances:
        warnings.warn(
            f"{len(unprovenanced)} subject(s) in {in_dir} were written by an older version "
            f"without provenance; their pipeline cannot be checked: {', '.join(unprovenanced[:5])}",
            InputWarning,
            stacklevel=2,
        )
    table = pd.DataFrame(rows)
    people = [person_id(s) for s in table[et.SUBJECT_ID].astype(str)]
    if people != table[et.SUBJECT_ID].astype(str).tolist():  # sessions: name each row's person
        table.insert(table.columns.get_loc(et.SUBJECT_ID) + 1, PERSON_COLUMN, people)
    sidecar = table_provenance(
        provenances, n_regions, [str(r["subject_id"]) for r in rows], missing, unprovenanced
    )
    if order is not None:  # the table's order (subjects listing it otherwise were reordered)
        sidecar["atlas"]["regions"] = list(order)
        sidecar["pipeline"]["regions_sha256"] = regions_sha256(order)
    sidecar["reordered_subjects"] = reordered
    sidecar["interval_calibrations"] = calibration_record
    names = sidecar["atlas"]["regions"] or [f"region_{i}" for i in range(n_regions)]
    sidecar["atlas"]["regions_sha256"] = (
        regions_sha256(sidecar["atlas"]["regions"]) if sidecar["atlas"]["regions"] else None
    )
    sidecar = {"kind": SIDECAR_KIND, "table": Path(out).name, **sidecar}
    regions = et.regions_frame(names)

    def write_rows(path: Path) -> None:
        write_table(table, path)
        sidecar["table_sha256"] = file_sha256(path)  # which table the sidecar describes

    # the three files together: a collect stopped midway never leaves the new table beside the
    # earlier region names and provenance (which charts would align its columns by)
    write_together(
        [
            (out, write_rows),
            (regions_path(out), lambda path: write_table(regions, path)),
            (provenance_path(out), lambda path: write_json(sidecar, path)),
        ]
    )
    return table


def common_region_order(
    names_of: Mapping[str, tuple[str, ...]], source: str
) -> tuple[tuple[str, ...] | None, list[str]]:
    """The region order of a cohort table and the subjects whose results list it otherwise.

    Parameters
    ----------
    names_of : mapping of subject id to region names
        Each subject's names in the order of its results, in the demographics' order.
    source : str
        The cohort folder, for the error.

    Returns
    -------
    order : tuple of str or None
        The order most subjects list (ties: the first subject's of those); None without names.
    reordered : list of str
        The subjects listing the same names in another order (put in ``order`` by name).

    Raises
    ------
    InvalidInputError
        A subject naming other regions than ``order``'s subjects (names both and one region).
    """
    counts: dict[tuple[str, ...], list[str]] = {}
    for sid, names in names_of.items():
        counts.setdefault(names, []).append(sid)
    if not counts:
        return None, []
    order, holders = max(counts.items(), key=lambda kv: len(kv[1]))  # first of the most common
    reordered, in_order = [], set(order)
    for sid, names in names_of.items():
        if names == order:
            continue
        in_names = set(names)
        here = [n for n in names if n not in in_order]
        there = [n for n in order if n not in in_names]
        if here or there or sorted(names) != sorted(order):
            what = (
                f"{sid} has region {here[0]!r} that {holders[0]} has not"
                if here
                else f"{holders[0]} has region {there[0]!r} that {sid} has not"
                if there
                else f"{sid} names a region more than once"
            )
            raise InvalidInputError(
                f"subjects were fitted with different regions ({what}; {len(holders)} "
                f"subject(s) list {holders[0]}'s {len(order)} regions); collect each atlas into "
                "its own table, or refit with the same regions (cohort --overwrite)",
                source,
            )
        reordered.append(sid)
    return order, reordered


def reordered_message(
    reordered: list[str],
    names_of: Mapping[str, tuple[str, ...]],
    order: tuple[str, ...] | None,
    n_subjects: int,
    out: str | Path,
) -> str:
    """Warning naming the subjects whose regional columns were put in the table's order."""
    from delssome_norms.io import regions_path

    first = next(sid for sid, names in names_of.items() if names == order)
    return (
        f"{len(reordered)} of {n_subjects} subject(s) list their regions in another order than "
        f"{first} (the order most subjects list): {', '.join(reordered[:10])}"
        + (f" (and {len(reordered) - 10} more)" if len(reordered) > 10 else "")
        + f"; their regional columns were put in {first}'s order by name (the table's region "
        f"names: {regions_path(out)})"
    )


def _missing_states(states: Mapping[str, list[str]]) -> str:
    """'2 failed (see failures.csv of the cohort run), 1 unfinished (...)' for the warning."""
    advice = {
        "failed": "see failures.csv of the cohort run",
        "being fitted": "another cohort run or Dask task holds their fit lock now: collect "
        "again when it has finished",
        "refit interrupted": f"an --overwrite refit stopped before its result: the earlier "
        f"results wait in their {PREVIOUS_DIR}/ folder; rerun the cohort command to finish the "
        "refit (with or without --overwrite)",
        "unfinished": "a checkpoint but no result: rerun the cohort command to resume them",
        "not started": "no checkpoint or result: not run yet, or run into another --in-dir",
        "named otherwise": "no folder of that name, but another folder seems to hold it: see "
        "the end of this message",
    }
    return "; ".join(
        f"{len(ids)} {why} ({', '.join(ids[:3])}{' ...' if len(ids) > 3 else ''}: {advice[why]})"
        for why, ids in states.items()
    )


def _relabel_misnamed(states: dict[str, list[str]], misnamed: set[str]) -> None:
    """Move ids whose folder exists under another spelling from "not started" to "named otherwise"."""
    ids = states.get("not started", [])
    moved = [sid for sid in ids if sid in misnamed]
    if moved:
        states["named otherwise"] = moved
        states["not started"] = [sid for sid in ids if sid not in misnamed]
        if not states["not started"]:
            del states["not started"]


def _sub_prefix_pairs(missing: list[str], in_dir: Path, listed: set[str]) -> list[tuple[str, str]]:
    """(id, folder) where a result folder differs from a missing id by a BIDS ``sub-`` prefix."""
    pairs = []
    for sid in missing:
        other = sid.removeprefix("sub-") if sid.startswith("sub-") else f"sub-{sid}"
        if other and other not in listed and (in_dir / other).is_dir():
            pairs.append((sid, other))
    return pairs


def _leading_zero_pairs(missing: list[str], in_dir: Path, listed: set[str]) -> list[tuple[str, str]]:
    """(id, folder) where the only unlisted result folder of a missing numeric id's value has
    leading zeros (``1`` and ``001``: a spreadsheet read the ids as numbers)."""
    padded: dict[int, list[str]] = {}
    if in_dir.is_dir():
        for d in in_dir.iterdir():
            if d.is_dir() and d.name.isdigit() and d.name.startswith("0") and d.name not in listed:
                padded.setdefault(int(d.name), []).append(d.name)
    return [
        (sid, padded[int(sid)][0])
        for sid in missing
        if sid.isdigit() and len(padded.get(int(sid), [])) == 1
    ]


def _folder_hint(pairs: list[tuple[str, str]], differs: str, advice: str) -> str:
    """'; N id(s) ... match a results folder <differs> (a -> folder b, ...): <advice>' for
    the (id, folder) pairs of :func:`_sub_prefix_pairs` or :func:`_leading_zero_pairs` (ids are
    never rewritten: the user fixes the table), else ''."""
    if not pairs:
        return ""
    shown = ", ".join(f"{a} -> folder {b}" for a, b in pairs[:3])
    more = " ..." if len(pairs) > 3 else ""
    head = f"; {len(pairs)} id(s) of the demographics match a results folder {differs}"
    return f"{head} ({shown}{more}): {advice}"


def _sub_prefix_hint(pairs: list[tuple[str, str]]) -> str:
    """The hint for ids that differ from their folders by a BIDS ``sub-`` prefix."""
    return _folder_hint(
        pairs,
        "only once a BIDS 'sub-' prefix is added or removed",
        "write the ids in the demographics exactly as the folders are named (prepare --bids-dir "
        "names them sub-<label>, as BIDS participant_id does)",
    )


def _leading_zeros_hint(pairs: list[tuple[str, str]], demographics: str | Path) -> str:
    """The hint for numeric ids whose folders have leading zeros, and how to keep them."""
    return _folder_hint(
        pairs,
        "once their leading zeros are restored",
        f"a spreadsheet read the ids as numbers and dropped the zeros; write them in {demographics} "
        "exactly as the folders are named, keeping the id column as text (Excel: import the CSV "
        "with Data > From Text/CSV and set the id column's type to Text, or format the column as "
        "Text before typing the ids)",
    )


TIMING_COLUMNS = {"TR": "tr", "tr": "tr", "scan_length": "scan_length"}
"""Demographics columns compared with the timing a subject was fitted with (``run.json``)."""


def _check_timing_columns(person: pd.Series, run: Mapping[str, Any]) -> list[str]:
    """``["TR 2 vs 0.72 s fitted", ...]``: where the demographics row gives a TR or scan length
    [s] other than the fitted one (absent columns are not checked)."""
    timing = run.get("timing")
    mismatches: list[str] = []
    if not isinstance(timing, Mapping):
        return mismatches
    for column, key in TIMING_COLUMNS.items():
        if column not in person.index or key not in timing:
            continue
        given = pd.to_numeric(pd.Series([person[column]]), errors="coerce").iloc[0]
        fitted = float(timing[key])
        if np.isfinite(given) and not np.isclose(given, fitted, rtol=1e-3, atol=1e-6):
            name = "TR" if key == "tr" else "scan length"
            text = f"{name} {given:g} vs {fitted:g} s fitted"
            mismatches += [text] if text not in mismatches else []  # TR and tr both given
    return mismatches
