"""``delssome-norms prepare``: FC and FCD-CDF from regional BOLD time series (reference layout)."""

from __future__ import annotations

import argparse

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
        "mean of the CDFs. Writes <id>_FC.csv (N x N) and <id>_FCD_CDF.csv (10000 x 1), header-less.",
    )
    p.add_argument("--timeseries", nargs="+", required=True, metavar="FILE", help="BOLD runs")
    p.add_argument("--tr", type=float, required=True, help="repetition time (seconds)")
    p.add_argument("--out-dir", required=True, help="output folder")
    p.add_argument("--subject-id", default=None, help="file-name prefix (default: none)")
    p.add_argument(
        "--fcd-window", type=int, default=None, help="FCD window, frames (default round(60/TR))"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Compute and write the two files."""
    from pathlib import Path

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.subject import empirical_statistics, min_frames
    from delssome_norms.io import read_timeseries, write_matrix

    if not (args.tr > 0):
        raise InvalidInputError(f"TR must be a positive number of seconds, got {args.tr}", "--tr")
    need = min_frames(args.tr, args.fcd_window)
    runs = [read_timeseries(p, min_frames=need) for p in args.timeseries]
    widths = {r.shape[1] for r in runs}
    if len(widths) > 1:
        raise InvalidInputError(
            f"runs have different numbers of regions {sorted(widths)}", args.timeseries[0]
        )
    fc, cdf = empirical_statistics(runs, args.tr, args.fcd_window)
    prefix = f"{args.subject_id}_" if args.subject_id else ""
    out = Path(args.out_dir)
    write_matrix(fc, out / f"{prefix}FC.csv")
    write_matrix(cdf, out / f"{prefix}FCD_CDF.csv")
    frames = ", ".join(str(r.shape[0]) for r in runs)
    print(
        f"{len(runs)} run(s) ({frames} frames) x {fc.shape[0]} regions -> {out / (prefix + 'FC.csv')}, "
        f"{out / (prefix + 'FCD_CDF.csv')}"
    )
    return 0
