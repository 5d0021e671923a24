"""``delssome-norms cohort`` (E/I for every subject of a manifest) and ``collect`` (chart table)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from delssome_norms.cli.estimate_cmd import add_fit_options, settings_from_args
from delssome_norms.cli.main import add_command
from delssome_norms.cli.options import defer


def register(subparsers) -> None:
    """Add the ``cohort`` and ``collect`` subcommands."""
    p = add_command(
        subparsers,
        "cohort",
        help="estimate E/I for every subject of a manifest (lockstep batches, shards, Dask)",
        example="delssome-norms cohort --manifest subjects.csv --out-dir out/ --shard 1/4",
        description="Manifest columns: subject_id, tr, scan_length (seconds), and fc + fcd_cdf or "
        "timeseries (';' between runs); optional sc, myelin, gradient. Subjects advance in lockstep "
        "groups of K (--batch-subjects; default from memory). Finished subjects are skipped and "
        "interrupted ones resumed when the command is rerun; a subject with bad inputs is listed in "
        "failures.csv and the others go on.",
    )
    p.add_argument("--manifest", required=True, metavar="CSV", help="cohort manifest")
    p.add_argument("--out-dir", required=True, help="output folder (one sub-folder per subject)")
    p.add_argument("--shard", default=None, metavar="k/n", help="run only shard k of n (e.g. 1/4)")
    p.add_argument("--executor", choices=("local", "dask"), default="local", help="where groups run")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="Dask scheduler address for --executor dask, e.g. tcp://HOST:8786 (docs/dask_slurm.md)",
    )
    p.add_argument(
        "--batch-subjects", type=int, default=None, metavar="K", help="subjects per lockstep group"
    )
    defer(p, add_fit_options)
    p.set_defaults(func=run_cohort_cmd)

    c = add_command(
        subparsers,
        "collect",
        help="gather per-subject E/I into the growth-chart input table",
        example="delssome-norms collect --in-dir out/ --demographics demogr.csv --out cohort_ei.csv",
        description="Write subject_id, age_in_years, sex, numeric_sex, site, scanner and "
        "site_scanner (site and scanner only when the demographics have those columns; "
        "site_scanner when they have it or a site column to build it from: <site>_<scanner>, or "
        "<site> without a scanner), "
        "ei_ratio_mean, ei_ratio_mean_lo/_hi (90 % interval), ei_interval_calibrated, fit_flagged, "
        "fit_flag_reasons and "
        "ei_ratio_roi_0..N-1 for every person of the demographics table with "
        "finished results in --in-dir, plus <stem>.provenance.json (atlas, SC, maps, design, mode, "
        "settings, timing of the fits) and <stem>.regions.csv (region name of each column). "
        "Subjects whose results list the same regions in another order (other header orders) "
        "are put by name in the order most subjects list; subjects fitted with other regions, "
        "pipelines or settings are refused. Session folders (sub-X_ses-Y) take their person's "
        "row and their session's age from sub-X/sub-X_sessions.tsv (BIDS).",
    )
    c.add_argument("--in-dir", required=True, help="cohort output folder")
    c.add_argument(
        "--demographics",
        required=True,
        metavar="TABLE",
        help="demographics table (CSV, or a BIDS participants.tsv)",
    )
    c.add_argument(
        "--bids-dir",
        metavar="DIR",
        help="BIDS dataset holding sub-<label>/sub-<label>_sessions.tsv (each session's age); "
        "default: the folder of --demographics",
    )
    c.add_argument("--out", required=True, metavar="CSV", help="output table")
    c.set_defaults(func=run_collect_cmd)


def run_cohort_cmd(args: argparse.Namespace) -> int:
    """Run (a shard of) the cohort and print a summary line."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit import parse_shard, run_cohort
    from delssome_norms.surrogate import SURROGATE_BACKEND

    settings = settings_from_args(args, device_here=args.executor == "local")
    shard = parse_shard(args.shard)
    if args.executor == "local" and args.scheduler is not None:
        raise InvalidInputError("--scheduler only applies with --executor dask", "--scheduler")
    if args.batch_subjects is not None and args.batch_subjects < 1:
        raise InvalidInputError(
            f"must be a positive integer, got {args.batch_subjects}", "--batch-subjects"
        )
    out = Path(args.out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} exists and is not a folder", "--out-dir")
    summary = run_cohort(
        args.manifest,
        args.out_dir,
        settings,
        shard=shard,
        executor=args.executor,
        scheduler=args.scheduler,
        group_size=args.batch_subjects,
        quiet=args.quiet,
        overwrite=args.overwrite,
        surrogate=SURROGATE_BACKEND,
    )
    print(
        f"cohort shard {shard[0]}/{shard[1]}: {summary.done} done, {summary.skipped} already finished"
        + (f" ({len(summary.lone_refits)} kept lone refit(s))" if summary.lone_refits else "")
        + f", {summary.failed} failed"
        + (f", {len(summary.busy)} being fitted elsewhere" if summary.busy else "")
        + f" ({summary.n_groups} lockstep group(s) of up to {summary.group_size})"
    )
    if summary.busy:
        print(
            "another cohort run or Dask task holds the fit locks of "
            f"{', '.join(summary.busy[:10])}{' ...' if len(summary.busy) > 10 else ''}: "
            "rerun this command once it has finished to pick up anything it leaves"
        )
    if summary.flagged:
        ids = summary.flagged
        print(
            f"{len(ids)} of the {summary.done} fitted subject(s) flagged as poor fits: "
            f"{', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''} (reasons in their run.json; "
            "README 'Reading the intervals and the flag')"
        )
    if summary.failed:
        print(f"failures listed in {args.out_dir}/failures.csv")
    return 1 if summary.failed else 0


def run_collect_cmd(args: argparse.Namespace) -> int:
    """Write the cohort table."""
    from delssome_norms.datasets import DK68_REGIONS
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit import collect
    from delssome_norms.io import check_out_file, provenance_path, regions_path
    from delssome_norms.io.ei_table import n_region_columns
    from delssome_norms.io.guard import TABLE_SUFFIXES

    if not Path(args.in_dir).is_dir():
        raise InvalidInputError(f"{args.in_dir} is not a folder", "--in-dir")
    if args.bids_dir is not None and not Path(args.bids_dir).is_dir():
        raise InvalidInputError(f"{args.bids_dir} is not a folder", "--bids-dir")
    check_out_file(args.out, "--out", {"--demographics": args.demographics}, TABLE_SUFFIXES)

    table = collect(args.in_dir, args.demographics, args.out, bids_dir=args.bids_dir)
    n_roi = n_region_columns(table.columns)

    quoted = shlex.quote(str(args.out))
    # the shipped reference chart is DK68: other atlases need a chart of their own first
    nxt = (
        f"delssome-norms charts score --chart reference --table {quoted} --out scores.csv"
        if n_roi == len(DK68_REGIONS)
        else f"delssome-norms charts fit --table {quoted} --out my_chart (a chart of this atlas; "
        "the shipped reference chart is DK68)"
    )
    people = f" ({table['participant_id'].nunique()} people)" if "participant_id" in table else ""
    print(
        f"{len(table)} subjects{people} x {n_roi} regions -> {args.out} (provenance: "
        f"{provenance_path(args.out)}, region names: {regions_path(args.out)}); next: {nxt}"
    )
    return 0
