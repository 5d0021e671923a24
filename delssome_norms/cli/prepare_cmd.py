"""``delssome-norms prepare``: FC and FCD-CDF from regional BOLD time series (reference layout)."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from delssome_norms.cli.main import add_command
from delssome_norms.cli.run_tr import runs_tr, timeseries_tr
from delssome_norms.io.sidecar import RUN_ENTITIES
from delssome_norms.io.sidecar import entity as _entity

if TYPE_CHECKING:  # numpy is loaded when a command runs, not when the parser is built
    import numpy as np


def register(subparsers) -> None:
    """Add the ``prepare`` subcommand."""
    p = add_command(
        subparsers,
        "prepare",
        help="compute FC and FCD-CDF from BOLD time series, in the reference-code layout",
        example="delssome-norms prepare --timeseries run1.tsv run2.tsv --tr 0.72 --out-dir sub-01 "
        "--subject-id sub-01",
        description="Each run (frames x regions; TSV or CSV, also .gz, NPY or one-array NPZ) "
        "gives an FC and an FCD-CDF with "
        "the simulator's own code; several runs are combined by a Fisher-z average of FC and the "
        "mean of the CDFs. Writes <id>_FC.csv (N x N) and <id>_FCD_CDF.csv (10000 x 1), header-less "
        "(the FC of another atlas, or of some DK68 regions, gets the runs' region names as header "
        "row and first column, which estimate-ei and cohort match to the SC and maps by name). "
        "A header row of region names (lh_precentral, ctx-lh-precentral, L_precentral, ...) is "
        "matched to DK68 by name (a prefix shared by all names, e.g. an atlas name, is ignored; "
        "unknown, corpuscallosum and medial-wall columns are dropped) and the columns put in DK68 "
        "order. With --bids-dir, every "
        "sub-*_timeseries.tsv (or .tsv.gz) below the folder is prepared (one entry per subject, or per "
        "session for subjects with several; the TR from each run's JSON sidecar, or by BIDS "
        "inheritance from a task-<label>_bold.json in a session or subject folder or the "
        "dataset root; one task, --task) and a cohort manifest (manifest.csv, scan length = "
        "frames x TR) is written. "
        "With --aparc-stats, "
        "FreeSurfer aparcstats2table tables (first column lh.aparc.<measure>, columns "
        "lh_<region>_<measure>) give one regional map per subject in DK68 order (<id>_<map>.csv) "
        "and maps.csv (subject_id, myelin, gradient) to join to a cohort manifest.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--timeseries", nargs="+", metavar="FILE", help="BOLD runs")
    src.add_argument(
        "--bids-dir", metavar="DIR", help="BIDS-derivatives folder of sub-*_timeseries.tsv(.gz) files"
    )
    src.add_argument(
        "--aparc-stats",
        nargs="+",
        metavar="TSV",
        help="FreeSurfer aparcstats2table output (lh and rh tables): one regional map per subject",
    )
    p.add_argument(
        "--map-name",
        choices=("myelin", "gradient"),
        default=None,
        help="with --aparc-stats: which map the table holds (the other is the shipped default; "
        "default myelin, for a table of a myelin measure: a table of another measure, e.g. "
        "lh.aparc.thickness, is refused unless --map-name says which map it stands for)",
    )
    p.add_argument(
        "--tr",
        type=float,
        help="repetition time (seconds). With --timeseries: needed unless each run has a JSON "
        "sidecar (run.json next to run.tsv, or for a BIDS-named run its _bold.json, also "
        "inherited from folders above) giving RepetitionTime; a sidecar that disagrees "
        "with --tr gets a warning. With --bids-dir it only fills in where no sidecar JSON of the "
        "run gives RepetitionTime",
    )
    p.add_argument(
        "--task",
        default=None,
        metavar="LABEL",
        help="with --bids-dir: only files of this task (task-<LABEL>); needed when the folder "
        "holds several tasks",
    )
    p.add_argument(
        "--select",
        action="append",
        default=None,
        metavar="ENTITY-LABEL",
        help="with --bids-dir: only files whose name has this entity, e.g. seg-Desikan, "
        "atlas-DK or space-fsLR (XCP-D writes one time series per atlas); repeat for several",
    )
    p.add_argument("--out-dir", required=True, help="output folder")
    p.add_argument("--subject-id", default=None, help="file-name prefix (default: none)")
    p.add_argument(
        "--fcd-window", type=int, default=None, help="FCD window, frames (default round(60/TR))"
    )
    p.add_argument(
        "--drop-na-frames",
        action="store_true",
        help="drop frames with missing values (BIDS n/a) instead of refusing the run",
    )
    p.add_argument(
        "--skip-failed",
        action="store_true",
        help=f"with --bids-dir: prepare the subjects that can be prepared and list the others, "
        f"with the reason, in {FAILURES_TABLE} beside the manifest (default: one subject that "
        "cannot be prepared stops the run before anything is written)",
    )
    p.set_defaults(func=run)


def _prepare_runs(paths, tr: float, args, need: int, by_position: list[str] | None = None):
    """The runs (matched by name: runs naming their regions in other orders are put in the
    first run's), their FC and FCD-CDF, and the region names to write with the FC
    (:func:`_names_to_write`). Runs of 68 columns naming no regions, taken to be DK68 by
    position, are added to ``by_position`` (the command says so once,
    :func:`~delssome_norms.io.timeseries.warn_dk68_by_position`)."""
    from delssome_norms.fit.fc_regime import warn_fc_regime
    from delssome_norms.fit.subject import empirical_statistics
    from delssome_norms.io.named_regions import match_inputs, take_regions
    from delssome_norms.io.timeseries import dk68_by_position, read_timeseries_named

    read = read_timeseries_named(paths, min_frames=need, drop_na_frames=args.drop_na_frames)
    inputs = {str(p): r for p, r in zip(paths, read)}
    names, orders = match_inputs(inputs)
    if by_position is not None:
        by_position += dk68_by_position(inputs, paths)
    runs = [
        take_regions(r.values, orders[str(p)], 1) if str(p) in orders else r.values
        for p, r in zip(paths, read)
    ]
    fc, cdf = empirical_statistics(runs, tr, args.fcd_window, sources=paths, regions=names)
    warn_fc_regime(fc, ";".join(map(str, paths)))  # GSR? the files are written all the same
    return runs, fc, cdf, _names_to_write(names)


def _names_to_write(names) -> tuple[str, ...] | None:
    """The region names an FC is written with: None for none or all 68 DK68 regions (the
    reference code's header-less layout, whose order is DK68's by contract); another atlas's
    names, or a subset of DK68's (e.g. one hemisphere), otherwise."""
    from delssome_norms.io.regions import DK68_REGIONS

    if names is None or tuple(names) == tuple(DK68_REGIONS):
        return None
    return tuple(str(n) for n in names)


MAX_FCD_WINDOW = 100_000
"""Largest ``--fcd-window`` [frames] accepted (a 10-h scan at TR 0.36 s)."""


def write_pair(
    fc: np.ndarray,
    cdf: np.ndarray,
    fc_path: Path,
    cdf_path: Path,
    names: tuple[str, ...] | None = None,
    record: dict | None = None,
) -> None:
    """Write a subject's FC (N x N) and FCD-CDF (bins,) so that they always belong together:
    ``estimate-ei`` fits the two files as one subject, and a Ctrl-C, crash or full disk between
    two plain writes would leave a new FC beside the FCD-CDF of an earlier run in the same
    folder (:func:`delssome_norms.io.write_together`: at worst an FC without its FCD-CDF, which
    every reader refuses as a missing file). With ``names`` the FC gets them as header row and
    first column (as ``pd.DataFrame(fc, index=names, columns=names).to_csv``), which the FC
    readers match to an SC and maps by name; without, it is header-less (reference layout).
    ``record`` (:func:`~delssome_norms.io.prepare_record.prepare_record`: TR, FCD window, runs) is
    written with them as ``<prefix>prepare.json``, with the SHA-256 of the FC and of the FCD-CDF
    (a fit checks that its FCD-CDF is the one written with its FC), and renamed into place
    between the FC and the FCD-CDF: the folder never holds a record beside another FC, and a
    complete pair always has its record. None removes an earlier one."""
    from delssome_norms import io
    from delssome_norms.io.prepare_record import prepare_record_path

    staged: dict[str, Path] = {}

    def write_fc(p: Path) -> None:
        io.write_matrix(fc, p, names)
        staged["fc"] = p

    def stage_record(p: Path) -> None:  # renamed before the FCD-CDF, written with its digest
        staged["record"] = p

    def write_cdf(p: Path) -> None:
        io.write_matrix(cdf, p)
        if record is not None:
            files = {"fc": fc_path.name, "fcd_cdf": cdf_path.name}
            digests = {"fc_sha256": io.file_sha256(staged["fc"]), "fcd_cdf_sha256": io.file_sha256(p)}
            io.write_json({**record, **files, **digests}, staged["record"])

    io.write_together(
        [
            (fc_path, write_fc),
            (prepare_record_path(fc_path), None if record is None else stage_record),
            (cdf_path, write_cdf),
        ]
    )


def _names_note(names: tuple[str, ...], where: str) -> str:
    """What ``prepare`` does with another atlas's region names."""
    return (
        f"region names of the time series ({names[0]!r}, ...; {len(names)} regions) kept: "
        f"{where} FC has them as header row and first column, so estimate-ei and cohort match "
        "it to an SC and maps by name"
    )


TIMESERIES_SUFFIXES = ("_timeseries.tsv", "_timeseries.tsv.gz")
FAILURES_TABLE = "prepare_failures.tsv"
"""``prepare --bids-dir --skip-failed``'s table of the subjects it could not prepare (subject_id,
file, reason), beside ``manifest.csv``; named apart from a cohort's own ``failures.csv``."""


def _selected(files: list, select: list[str] | None, folder) -> list:
    """The files whose names carry every ``entity-label`` of ``select`` (``--select``)."""
    import re

    from delssome_norms.errors import InvalidInputError

    for item in select or []:
        m = re.fullmatch(r"([A-Za-z]+)-([A-Za-z0-9]+)", item.strip())
        if m is None:
            raise InvalidInputError(
                f"expected ENTITY-LABEL such as seg-Desikan, got {item!r}", "--select"
            )
        key, label = m.groups()
        found = sorted({v for p in files if (v := _entity(p.name, key))})
        files = [p for p in files if _entity(p.name, key) == label]
        if not files:
            raise InvalidInputError(
                f"holds no *_timeseries.tsv with {key}-{label} (found: "
                f"{', '.join(f'{key}-{v}' for v in found) or f'no {key}- entity'})",
                str(folder),
            )
    return files


def _bids_subjects(folder, task: str | None, select: list[str] | None = None) -> dict[str, list]:
    """``sub-<label>`` (``sub-<label>_ses-<label>`` for subjects with several sessions) -> the
    sorted ``*_timeseries.tsv`` runs of that scan session below ``folder``.

    Runs of one session are averaged into one FC/FCD; sessions are time points, so a subject
    with several gets one entry per session. Files of several tasks are refused unless ``task``
    picks one (a task fMRI run averaged with rest would change the FC).
    """
    from pathlib import Path

    from delssome_norms.errors import InvalidInputError

    files = [
        p
        for p in sorted(Path(folder).rglob("*_timeseries.tsv*"))
        if p.name.endswith(TIMESERIES_SUFFIXES)
        and _entity(p.name, "sub")
        and _entity(p.name, "desc") != "confounds"  # fMRIPrep regressors
    ]
    files = _selected(files, select, folder)
    runs: dict[tuple, list] = {}
    for p in files:
        runs.setdefault(tuple(_entity(p.name, k) for k in RUN_ENTITIES), []).append(p)
    twice = next((v for v in runs.values() if len(v) > 1), None)
    if twice is not None:
        raise InvalidInputError(
            f"holds {len(twice)} time series of one run ({', '.join(p.name for p in twice[:3])}): "
            "they differ in another entity (atlas-, seg-, space-, desc-...); pick one with "
            "--select (e.g. --select seg-Desikan)",
            str(folder),
        )
    tasks = sorted({t for p in files if (t := _entity(p.name, "task"))})
    if task is not None:
        files = [p for p in files if _entity(p.name, "task") == task]
        if not files:
            raise InvalidInputError(
                f"holds no *_timeseries.tsv of task-{task} (tasks found: {', '.join(tasks) or 'none'})",
                str(folder),
            )
    elif len(tasks) > 1:
        raise InvalidInputError(
            f"holds time series of {len(tasks)} tasks ({', '.join(tasks)}); pick the resting-state "
            "one with --task (runs of different tasks must not be averaged)",
            str(folder),
        )
    sessions: dict[str, set] = {}
    for p in files:
        sessions.setdefault(f"sub-{_entity(p.name, 'sub')}", set()).add(_entity(p.name, "ses"))
    out: dict[str, list] = {}
    for p in files:
        sub, ses = f"sub-{_entity(p.name, 'sub')}", _entity(p.name, "ses")
        key = f"{sub}_ses-{ses}" if ses is not None and len(sessions[sub]) > 1 else sub
        out.setdefault(key, []).append(p)
    return out


def _failure(sid: str, paths: list, err: Exception) -> dict[str, str]:
    """One row of :data:`FAILURES_TABLE`: the subject, the file the error names (a run or a
    sidecar; else all the subject's runs, ``; ``-separated) and the error's one-line text."""
    from delssome_norms.errors import InvalidInputError

    if isinstance(err, InvalidInputError):
        named, text = err.source, str(err)
    else:  # OSError: a run the checks could not foresee as unreadable (permissions, a folder)
        named = getattr(err, "filename", None)
        text = f"{named}: {err.strerror or type(err).__name__}" if named else str(err)
    named = str(named) if named is not None else None
    if named is None or named == sid or not Path(named).exists():
        named = "; ".join(str(p) for p in paths)
    return {"subject_id": sid, "file": named, "reason": " ".join(text.split())}


def _other_widths(prepared: dict, subjects: dict, folder) -> list[dict[str, str]]:
    """Subjects whose runs have another number of regions than most (one cohort is one atlas):
    removed from ``prepared`` and returned as failures; a tie between widths is refused."""
    from collections import Counter

    from delssome_norms.errors import InvalidInputError

    widths = Counter(v[2].shape[0] for v in prepared.values())
    if len(widths) < 2:
        return []
    ranked = widths.most_common()
    counts = ", ".join(f"{w} regions: {n} subject(s)" for w, n in ranked)
    if ranked[0][1] == ranked[1][1]:
        raise InvalidInputError(
            f"the subjects' time series have different numbers of regions ({counts}), nothing "
            "was written: one cohort is fitted in one atlas (--select picks one atlas's series)",
            folder,
        )
    common, n_common = ranked[0]
    out = []
    for sid in [s for s, v in prepared.items() if v[2].shape[0] != common]:
        reason = (
            f"{sid}: {prepared.pop(sid)[2].shape[0]} regions where {n_common} other subject(s) "
            f"have {common} (another atlas? one cohort is fitted in one atlas; {counts})"
        )
        out.append({"subject_id": sid, "file": "; ".join(map(str, subjects[sid])), "reason": reason})
    return out


def _common_order(prepared: dict, subjects: dict) -> list[dict[str, str]]:
    """Put every subject's FC in the region order of the first subject whose time series name
    their regions (one :class:`InputWarning` lists the subjects reordered), so that a cohort's
    FCs are in one order. Subjects naming other regions, or none beside named ones (their
    column order is unknown), are removed from ``prepared`` and returned as failures."""
    import warnings

    from delssome_norms.errors import InputWarning, InvalidInputError
    from delssome_norms.io.named_regions import align_names, take_regions

    named = [sid for sid, v in prepared.items() if v[4] is not None]
    if not named:
        return []
    ref, ref_names = named[0], prepared[named[0]][4]
    moved, out = [], []
    for sid in list(prepared):
        names = prepared[sid][4]
        if sid == ref:
            continue
        if names is None:
            reason = (
                f"{sid}: its time series have no header of region names, while {ref}'s name "
                f"their regions ({ref_names[0]!r}, ...), so its column order cannot be matched "
                "to theirs: give every subject's time series the same header of region names"
            )
        else:
            try:
                _, _, orders = align_names({ref: ref_names, sid: names}, "subject's time series")
            except InvalidInputError as err:
                reason = f"{sid}: {err.problem}"
            else:
                if orders[sid] is not None:
                    tr, frames, fc, cdf, _ = prepared[sid]
                    prepared[sid] = (tr, frames, take_regions(fc, orders[sid]), cdf, ref_names)
                    moved.append(sid)
                continue
        prepared.pop(sid)
        out.append({"subject_id": sid, "file": "; ".join(map(str, subjects[sid])), "reason": reason})
    if moved:
        warnings.warn(
            f"{len(moved)} subject(s) list the regions of {ref} in another column order "
            f"({', '.join(moved[:5])}{' ...' if len(moved) > 5 else ''}): their FCs are put in "
            f"{ref}'s order by name, so every FC written is in one region order",
            InputWarning,
            stacklevel=3,
        )
    return out


def _listed(failures: list[dict[str, str]]) -> str:
    """'sub-02 (reason); sub-03 (reason); sub-04 (reason) ...' for an error line."""
    shown = "; ".join(f"{f['subject_id']} ({f['reason']})" for f in failures[:3])
    return shown + (" ..." if len(failures) > 3 else "")


def _prepare_bids(args: argparse.Namespace, out) -> int:
    """Every scan session below ``--bids-dir``: FC, FCD-CDF and a cohort manifest row; with
    ``--skip-failed`` the sessions that cannot be prepared are listed in
    :data:`FAILURES_TABLE` instead of stopping the run."""
    import warnings
    from pathlib import Path

    import pandas as pd

    from delssome_norms import io
    from delssome_norms.errors import InputWarning, InvalidInputError
    from delssome_norms.fit.subject import min_frames
    from delssome_norms.io import write_table
    from delssome_norms.io.prepare_record import prepare_record
    from delssome_norms.model.timing import fcd_window_frames

    if not Path(args.bids_dir).is_dir():
        raise InvalidInputError(f"{args.bids_dir} is not a folder", "--bids-dir")
    subjects = _bids_subjects(args.bids_dir, args.task, args.select)
    if not subjects:
        raise InvalidInputError(
            "holds no sub-<label>_..._timeseries.tsv file (BIDS derivatives)", args.bids_dir
        )
    # every subject is read and checked before anything is written: a bad one stops the
    # run with nothing half-done (or, with --skip-failed, is listed and left out)
    prepared, failed, by_position = {}, [], []
    for sid, paths in subjects.items():
        try:  # keep FC, CDF and frame counts, not the runs (memory: many subjects)
            tr = runs_tr(paths, args.tr, sid)
            unnamed: list[str] = []
            need = min_frames(tr, args.fcd_window)
            runs, fc, cdf, names = _prepare_runs(paths, tr, args, need, unnamed)
            prepared[sid] = (tr, [r.shape[0] for r in runs], fc, cdf, names)
            by_position.append((sid, unnamed))
        except (InvalidInputError, OSError) as err:
            failed.append(_failure(sid, paths, err))
    failed += _other_widths(prepared, subjects, args.bids_dir)
    failed += _common_order(prepared, subjects)
    failed.sort(key=lambda f: f["subject_id"])
    failures_path = out / FAILURES_TABLE
    if failed and (not args.skip_failed or not prepared):
        skip = (
            f" (--skip-failed prepares the other {len(prepared)} and lists these in {failures_path})"
            if prepared
            else ""
        )
        raise InvalidInputError(
            f"{len(failed)} of {len(subjects)} subject(s) cannot be prepared, nothing was "
            f"written{skip}: {_listed(failed)}",
            args.bids_dir,
        )
    from delssome_norms.io.timeseries import warn_dk68_by_position

    # once, listing the runs of the subjects written (not those skipped)
    warn_dk68_by_position([p for sid, runs in by_position if sid in prepared for p in runs])
    rows, uneven = [], []
    # an earlier manifest goes first: a run stopped among the subjects leaves no manifest
    # (cohort refuses to start), never an old one listing TRs and scan lengths beside new files;
    # so does an earlier failures table, which would list subjects this run may prepare
    (out / "manifest.csv").unlink(missing_ok=True)
    failures_path.unlink(missing_ok=True)
    # a skipped subject's files of an earlier run are kept (nothing written is deleted) but
    # are not in the manifest, so no cohort run reads them as the subject's current data
    kept = [
        name
        for f in failed
        for name in (f"{f['subject_id']}_FC.csv", f"{f['subject_id']}_FCD_CDF.csv")
        if (out / name).is_file()
    ]
    for sid, (tr, frames, fc, cdf, names) in prepared.items():
        window = fcd_window_frames(tr, args.fcd_window)
        record = prepare_record(subjects[sid], frames, tr, window, fc.shape[0], args.drop_na_frames, sid)
        write_pair(fc, cdf, out / f"{sid}_FC.csv", out / f"{sid}_FCD_CDF.csv", names, record)
        # the simulation has one length: runs of different lengths give their mean, in frames
        n_frames = round(sum(frames) / len(frames))
        if len(set(frames)) > 1:
            uneven.append(f"{sid} ({'/'.join(map(str, frames))} -> {n_frames})")
        rows.append(
            {
                "subject_id": sid,
                "tr": tr,
                "scan_length": n_frames * tr,
                "fc": f"{sid}_FC.csv",
                "fcd_cdf": f"{sid}_FCD_CDF.csv",
                "n_runs": len(frames),
            }
        )
    manifest = (out / "manifest.csv", lambda p: write_table(pd.DataFrame(rows), p))
    if failed:  # the failures table is renamed into place first: stopped between the two
        # renames, the folder holds no manifest (cohort refuses to start), never one whose
        # skipped subjects are not listed
        table = pd.DataFrame(failed, columns=["subject_id", "file", "reason"])
        text = table.to_csv(sep="\t", index=False, lineterminator="\n")
        io.write_together([(failures_path, lambda p: io.write_text(text, p)), manifest])
    else:  # a rerun that prepares every subject leaves no failures table of an earlier one
        io.write_together([manifest, (failures_path, None)])
    several = sum(r["n_runs"] > 1 for r in rows)
    n_regions = next(iter(prepared.values()))[2].shape[0]
    sc_column = (
        ", after adding an sc column naming each subject's SC of this atlas" if n_regions != 68 else ""
    )
    print(
        f"{len(rows)} subject(s) from {args.bids_dir} -> {out}"
        + (f" ({several} with several runs averaged: n_runs in the manifest)" if several else "")
        + f"; cohort manifest {out / 'manifest.csv'} (next{sc_column}: "
        f"{_cohort_hint(out, [r['tr'] for r in rows], args.fcd_window)})"
    )
    named = next((v[4] for v in prepared.values() if v[4] is not None), None)
    if named is not None:
        print(_names_note(named, "each subject's"))
    if n_regions != 68:
        print(_atlas_note(n_regions, f"an sc column in {out / 'manifest.csv'}", named is not None))
    if uneven:
        print(
            f"runs of different lengths: the scan length simulated is their mean number of frames "
            f"x TR for {', '.join(uneven[:5])}{' ...' if len(uneven) > 5 else ''}"
        )
    if any("_ses-" in r["subject_id"] for r in rows):
        print("subjects with several sessions get one entry per session (sub-<label>_ses-<label>)")
    for tr in sorted({r["tr"] for r in rows}):
        print(_window_note(tr, args.fcd_window))
    if failed:
        removed = (
            f"; files of an earlier run of these subjects are kept but not in the manifest "
            f"({', '.join(kept[:4])}{' ...' if len(kept) > 4 else ''})"
            if kept
            else ""
        )
        warnings.warn(
            f"{len(failed)} of {len(subjects)} subject(s) cannot be prepared and were skipped "
            f"(--skip-failed; not in the manifest): subject, file and reason in {failures_path}"
            + removed,
            InputWarning,
            stacklevel=2,
        )
    return 0


MYELIN_MEASURES = re.compile(r"myelin|t1w?_?t2w?|t1w?/t2w?|t1w?divt2w?|t1w?overt2w?", re.I)
"""Names of a myelin measure in an aparcstats2table header (``lh.aparc.<measure>``): T1w/T2w
ratio maps are sampled with a custom stats run whose measure name is the lab's own."""
GRADIENT_MEASURES = re.compile(r"gradient|grad\d|pc\d", re.I)


def _aparc_measure(path) -> str:
    """The measure of an aparcstats2table table (``lh.aparc.thickness`` -> ``thickness``); the
    table was read (and its header checked) by :func:`read_aparc_stats` already."""
    import pandas as pd

    first = str(pd.read_csv(path, sep=r"\s+", nrows=0, engine="python").columns[0])
    return first.split(".", 2)[-1]


def _map_of_measure(measure: str, source) -> str:
    """The map a table of ``measure`` stands for when ``--map-name`` is not given: myelin for a
    myelin measure; otherwise refused, naming ``--map-name``.

    Saving a thickness (area, volume, curvature ...) table as "myelin" without a word would put
    another measure into every fit as the myelin map, and the E/I estimates would depend on it
    with nothing in the outputs saying so; a warning scrolls past in a batch job, while a refusal
    costs one rerun with the option that records the choice.
    """
    from delssome_norms.errors import InvalidInputError

    if MYELIN_MEASURES.search(measure):
        return "myelin"
    which = "an RSFC gradient" if GRADIENT_MEASURES.search(measure) else "not a myelin"
    raise InvalidInputError(
        f"holds the measure {measure!r} ({which} measure), and prepare --aparc-stats saves the "
        "table as the myelin map unless told otherwise: give --map-name gradient or --map-name "
        f"myelin to say which map of the model {measure} stands for",
        str(source),
    )


def _prepare_maps(args: argparse.Namespace) -> int:
    """One regional map per subject from aparcstats2table tables, plus maps.csv."""
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from delssome_norms.datasets import DK68_REGIONS, load_default_maps
    from delssome_norms.io import check_subject_id, write_matrix, write_table
    from delssome_norms.io.aparc import read_aparc_stats

    table = read_aparc_stats(args.aparc_stats, DK68_REGIONS)
    for sid in table.index:
        check_subject_id(sid, args.aparc_stats[0])
    measure = _aparc_measure(args.aparc_stats[0])
    if args.map_name is None:
        args.map_name = _map_of_measure(measure, args.aparc_stats[0])
    out = Path(args.out_dir)
    other = "gradient" if args.map_name == "myelin" else "myelin"
    write_matrix(np.asarray(getattr(load_default_maps(), other)), out / f"default_{other}.csv")
    # as in _prepare_bids: no old maps.csv beside maps of this run if it is stopped half-way
    (out / "maps.csv").unlink(missing_ok=True)
    rows = []
    for sid, values in table.iterrows():
        write_matrix(values.to_numpy(), out / f"{sid}_{args.map_name}.csv")
        rows.append(
            {
                "subject_id": sid,
                args.map_name: f"{sid}_{args.map_name}.csv",
                other: f"default_{other}.csv",
            }
        )
    write_table(pd.DataFrame(rows)[["subject_id", "myelin", "gradient"]], out / "maps.csv")
    print(
        f"{len(rows)} subject(s): {args.map_name} maps (aparc measure {measure!r}) of 68 DK "
        "regions from "
        f"{', '.join(map(str, args.aparc_stats))} -> {out}; {other}: the shipped default; join "
        f"{out / 'maps.csv'} to your cohort manifest (its paths are relative to {out}, and a "
        "manifest's paths are read relative to the manifest's folder: write the manifest there "
        "or prefix the paths)"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Compute and write the two files (per subject with --bids-dir, plus a manifest)."""

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.subject import min_frames
    from delssome_norms.io import check_out_dir, check_subject_id
    from delssome_norms.io.prepare_record import prepare_record
    from delssome_norms.model.timing import fcd_window_frames

    if args.skip_failed and args.bids_dir is None:
        raise InvalidInputError(
            "only applies with --bids-dir (it skips the subjects of a BIDS folder that cannot "
            "be prepared)",
            "--skip-failed",
        )
    if args.aparc_stats is not None:
        return _prepare_maps(args)
    from delssome_norms.model.timing import MIN_FCD_WINDOW, check_tr

    if args.tr is not None:
        check_tr(args.tr, "--tr")  # a TR in milliseconds would give an FCD window of 0 frames
    if args.fcd_window is not None and args.fcd_window < MIN_FCD_WINDOW:  # as the fit's check
        raise InvalidInputError(
            f"must be at least {MIN_FCD_WINDOW} frames, got {args.fcd_window}", "--fcd-window"
        )
    if args.fcd_window is not None and args.fcd_window > MAX_FCD_WINDOW:
        raise InvalidInputError(
            f"{args.fcd_window} frames is longer than any scan (at most {MAX_FCD_WINDOW}); the "
            "window is in frames (default round(60 / TR))",
            "--fcd-window",
        )
    if args.subject_id is not None:  # it becomes a file-name prefix: no paths
        check_subject_id(args.subject_id, "--subject-id")
    out = check_out_dir(args.out_dir, "--out-dir", create=False)  # made once the inputs pass
    if args.bids_dir is not None:
        return _prepare_bids(args, out)
    if args.task is not None:
        raise InvalidInputError("--task selects files of --bids-dir", "--task")
    if args.select is not None:
        raise InvalidInputError("--select selects files of --bids-dir", "--select")
    from_sidecar = args.tr is None
    args.tr = timeseries_tr(args.timeseries, args.tr)
    if from_sidecar:
        print(f"TR {args.tr:g} s from the runs' JSON sidecars (RepetitionTime)")
    need = min_frames(args.tr, args.fcd_window)
    by_position: list[str] = []
    runs, fc, cdf, names = _prepare_runs(args.timeseries, args.tr, args, need, by_position)
    from delssome_norms.io.timeseries import warn_dk68_by_position

    warn_dk68_by_position(by_position)  # one line for all the runs, before anything is written
    prefix = f"{args.subject_id}_" if args.subject_id else ""
    counts = [r.shape[0] for r in runs]
    window = fcd_window_frames(args.tr, args.fcd_window)
    record = prepare_record(
        args.timeseries, counts, args.tr, window, fc.shape[0], args.drop_na_frames, args.subject_id
    )
    write_pair(fc, cdf, out / f"{prefix}FC.csv", out / f"{prefix}FCD_CDF.csv", names, record)
    frames = ", ".join(str(r.shape[0]) for r in runs)
    print(
        f"{len(runs)} run(s) ({frames} frames) x {fc.shape[0]} regions -> {out / (prefix + 'FC.csv')}, "
        f"{out / (prefix + 'FCD_CDF.csv')}"
    )
    if names is not None:
        print(_names_note(names, "the"))
    if fc.shape[0] != 68:  # DK68: the shipped SC and maps
        print(_atlas_note(fc.shape[0], "--sc YOUR_SC.csv", header=names is not None))
    print(_window_note(args.tr, args.fcd_window))
    frames_per_run = [r.shape[0] for r in runs]
    print(_fit_hint(out, prefix, frames_per_run, args.tr, args.fcd_window, fc.shape[0]))
    return 0


def _atlas_note(n_regions: int, sc_where: str, header: bool) -> str:
    """What a fit of an atlas other than DK68 needs: its SC (the template is DK68's); maps are
    optional (without them the FC gradient is used)."""
    note = (
        f"{n_regions} regions, not DK68's 68: estimate-ei and cohort need an SC of this atlas "
        f"({sc_where}; the template SC is DK68's); myelin and gradient maps of it are optional "
        "(without them the FC's principal gradient is used: estimate-ei the subject's, cohort the "
        "group-average FC's)"
    )
    if not header:
        note += (
            "; for DK68 columns plus aparc's unknown, corpus callosum or medial wall, give the "
            "file a header row of region names: those are then dropped"
        )
    return note


def _fit_hint(
    out: Path, prefix: str, frames: list[int], tr: float, fcd_window: int | None, n_regions: int
) -> str:
    """The estimate-ei command for the files just written: with --fc it needs --tr [s] and
    --scan-length [s] (the runs' mean number of frames x TR, as in a --bids-dir manifest),
    --fcd-window [frames] when the CDF was computed with another window than the fit's
    default, and --sc for an atlas other than DK68."""
    from delssome_norms.model.timing import default_fcd_window, fcd_window_frames

    n_frames = round(sum(frames) / len(frames))
    window = fcd_window_frames(tr, fcd_window)
    argv = [
        "delssome-norms estimate-ei --fc",
        shlex.quote(str(out / f"{prefix}FC.csv")),
        "--fcd-cdf",
        shlex.quote(str(out / f"{prefix}FCD_CDF.csv")),
        f"--tr {tr:.10g} --scan-length {n_frames * tr:.10g}",
        *([f"--fcd-window {window}"] if window != default_fcd_window(tr) else []),
        *(["--sc YOUR_SC.csv"] if n_regions != 68 else []),
        "--out-dir FIT_FOLDER",
    ]
    mean = " (the runs' mean number of frames x TR)" if len(set(frames)) > 1 else ""
    return f"next: {' '.join(argv)}{mean}"


def _cohort_hint(out: Path, trs: list[float], fcd_window: int | None) -> str:
    """The cohort command for a manifest just written, as it runs: its required --out-dir (a
    folder beside the prepared files) and --fcd-window where the CDFs were computed with another
    window than the fit's default at some TR."""
    from delssome_norms.model.timing import default_fcd_window, fcd_window_frames

    other = fcd_window is not None and any(
        fcd_window_frames(tr, fcd_window) != default_fcd_window(tr) for tr in trs
    )
    return (
        f"delssome-norms cohort --manifest {shlex.quote(str(out / 'manifest.csv'))} --out-dir "
        f"{shlex.quote(str(out / 'cohort'))}" + (f" --fcd-window {fcd_window}" if other else "")
    )


def _window_note(tr: float, fcd_window: int | None) -> str:
    """The FCD window the CDF was computed with, and the option the fit then needs."""
    from delssome_norms.model.timing import default_fcd_window, fcd_window_frames

    window = fcd_window_frames(tr, fcd_window)
    note = f"FCD window {window} frames ({window * tr:g} s at TR {tr:g} s)"
    if window == default_fcd_window(tr):
        return note + ", the default of estimate-ei and cohort at this TR"
    return (
        note + f", not the fit's default of {default_fcd_window(tr)} frames: give --fcd-window "
        f"{window} to estimate-ei and cohort too, or the simulated FCD is compared with another window"
    )
