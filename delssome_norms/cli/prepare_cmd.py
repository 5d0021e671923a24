"""``delssome-norms prepare``: FC and FCD-CDF from regional BOLD time series (reference layout)."""

from __future__ import annotations

import argparse
import shlex

from delssome_norms.cli.main import add_command


def register(subparsers) -> None:
    """Add the ``prepare`` subcommand."""
    p = add_command(
        subparsers,
        "prepare",
        help="compute FC and FCD-CDF from BOLD time series, in the reference-code layout",
        example="delssome-norms prepare --timeseries run1.tsv run2.tsv --tr 0.72 --out-dir sub-01 "
        "--subject-id sub-01",
        description="Each run (frames x regions; TSV, CSV or NPY) gives an FC and an FCD-CDF with "
        "the simulator's own code; several runs are combined by a Fisher-z average of FC and the "
        "mean of the CDFs. Writes <id>_FC.csv (N x N) and <id>_FCD_CDF.csv (10000 x 1), header-less. "
        "A header row of region names (lh_precentral, ctx-lh-precentral, L_precentral, ...) is "
        "matched to DK68 by name and the columns put in DK68 order. With --bids-dir, every "
        "sub-*_timeseries.tsv below the folder is prepared (one subject per sub- label) and a "
        "cohort manifest (manifest.csv, scan length = frames x TR) is written. With --aparc-stats, "
        "FreeSurfer aparcstats2table tables (first column lh.aparc.<measure>, columns "
        "lh_<region>_<measure>) give one regional map per subject in DK68 order (<id>_<map>.csv) "
        "and maps.csv (subject_id, myelin, gradient) to join to a cohort manifest.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--timeseries", nargs="+", metavar="FILE", help="BOLD runs")
    src.add_argument(
        "--bids-dir", metavar="DIR", help="BIDS-derivatives folder of sub-*_timeseries.tsv files"
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
        default="myelin",
        help="with --aparc-stats: which map the table holds (the other is the shipped default)",
    )
    p.add_argument("--tr", type=float, help="repetition time (seconds; needed for time series)")
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
    p.set_defaults(func=run)


def _prepare_runs(paths, args, need: int):
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.subject import empirical_statistics
    from delssome_norms.io import read_timeseries

    runs = [read_timeseries(p, min_frames=need, drop_na_frames=args.drop_na_frames) for p in paths]
    widths = {r.shape[1] for r in runs}
    if len(widths) > 1:
        raise InvalidInputError(f"runs have different numbers of regions {sorted(widths)}", paths[0])
    fc, cdf = empirical_statistics(runs, args.tr, args.fcd_window)
    return runs, fc, cdf


def _bids_subjects(folder) -> dict[str, list]:
    """``sub-<label>`` -> sorted ``*_timeseries.tsv`` files of that subject below ``folder``."""
    import re
    from pathlib import Path

    out: dict[str, list] = {}
    for path in sorted(Path(folder).rglob("*_timeseries.tsv")):
        m = re.search(r"(?:^|_)(sub-[A-Za-z0-9]+)", path.name)
        if m:
            out.setdefault(m.group(1), []).append(path)
    return out


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
    out = Path(args.out_dir)
    other = "gradient" if args.map_name == "myelin" else "myelin"
    write_matrix(np.asarray(getattr(load_default_maps(), other)), out / f"default_{other}.csv")
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
        f"{len(rows)} subject(s): {args.map_name} maps of 68 DK regions from "
        f"{', '.join(map(str, args.aparc_stats))} -> {out}; {other}: the shipped default; join "
        f"{out / 'maps.csv'} to your cohort manifest (paths relative to {out})"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Compute and write the two files (per subject with --bids-dir, plus a manifest)."""
    from pathlib import Path

    import pandas as pd

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.subject import min_frames
    from delssome_norms.io import check_out_dir, check_subject_id, write_matrix, write_table

    if args.aparc_stats is not None:
        return _prepare_maps(args)
    from delssome_norms.model.timing import check_tr

    if args.tr is None:
        raise InvalidInputError("the TR (seconds) is needed for time series", "--tr")
    check_tr(args.tr, "--tr")  # a TR in milliseconds would give an FCD window of 0 frames
    if args.subject_id is not None:  # it becomes a file-name prefix: no paths
        check_subject_id(args.subject_id, "--subject-id")
    need = min_frames(args.tr, args.fcd_window)
    out = check_out_dir(args.out_dir, "--out-dir", create=False)  # made once the inputs pass
    if args.bids_dir is not None:
        if not Path(args.bids_dir).is_dir():
            raise InvalidInputError(f"{args.bids_dir} is not a folder", "--bids-dir")
        subjects = _bids_subjects(args.bids_dir)
        if not subjects:
            raise InvalidInputError(
                "holds no sub-<label>_..._timeseries.tsv file (BIDS derivatives)", args.bids_dir
            )
        # every subject is read and checked before anything is written: a bad one stops the
        # run with nothing half-done
        prepared, bad = {}, []
        for sid, paths in subjects.items():
            try:  # keep FC, CDF and frame counts, not the runs (memory: many subjects)
                runs, fc, cdf = _prepare_runs(paths, args, need)
                prepared[sid] = ({r.shape[0] for r in runs}, fc, cdf)
            except InvalidInputError as err:
                bad.append(f"{sid} ({err})")
        if bad:
            raise InvalidInputError(
                f"{len(bad)} of {len(subjects)} subject(s) cannot be prepared, nothing was "
                f"written: {'; '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}",
                args.bids_dir,
            )
        rows = []
        for sid, (frames, fc, cdf) in prepared.items():
            write_matrix(fc, out / f"{sid}_FC.csv")
            write_matrix(cdf, out / f"{sid}_FCD_CDF.csv")
            rows.append(
                {
                    "subject_id": sid,
                    "tr": args.tr,
                    "scan_length": frames.pop() * args.tr if len(frames) == 1 else None,
                    "fc": f"{sid}_FC.csv",
                    "fcd_cdf": f"{sid}_FCD_CDF.csv",
                }
            )
        write_table(pd.DataFrame(rows), out / "manifest.csv")
        print(
            f"{len(rows)} subject(s) from {args.bids_dir} -> {out}; cohort manifest "
            f"{out / 'manifest.csv'} (next: delssome-norms cohort --manifest "
            f"{shlex.quote(str(out / 'manifest.csv'))})"
        )
        print(_window_note(args.tr, args.fcd_window))
        return 0
    runs, fc, cdf = _prepare_runs(args.timeseries, args, need)
    prefix = f"{args.subject_id}_" if args.subject_id else ""
    write_matrix(fc, out / f"{prefix}FC.csv")
    write_matrix(cdf, out / f"{prefix}FCD_CDF.csv")
    frames = ", ".join(str(r.shape[0]) for r in runs)
    print(
        f"{len(runs)} run(s) ({frames} frames) x {fc.shape[0]} regions -> {out / (prefix + 'FC.csv')}, "
        f"{out / (prefix + 'FCD_CDF.csv')}"
    )
    print(_window_note(args.tr, args.fcd_window))
    return 0


def _window_note(tr: float, fcd_window: int | None) -> str:
    """The FCD window the CDF was computed with, and the option the fit then needs."""
    from delssome_norms.model.timing import default_fcd_window

    window = default_fcd_window(tr) if fcd_window is None else int(fcd_window)
    note = f"FCD window {window} frames ({window * tr:g} s at TR {tr:g} s)"
    if window == default_fcd_window(tr):
        return note + ", the default of estimate-ei and cohort at this TR"
    return (
        note + f", not the fit's default of {default_fcd_window(tr)} frames: give --fcd-window "
        f"{window} to estimate-ei and cohort too, or the simulated FCD is compared with another window"
    )
