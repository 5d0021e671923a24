"""``delssome-norms validate``: check input files before a long fit, with one line per file."""

from __future__ import annotations

import argparse

from delssome_norms.cli.main import add_command


def register(subparsers) -> None:
    """Add the ``validate`` subcommand."""
    p = add_command(
        subparsers,
        "validate",
        help="check subject input files (FC, FCD-CDF, SC, maps, time series, demographics, manifest)",
        example="delssome-norms validate --fc sub-000_FC.csv --fcd-cdf sub-000_FCD_CDF.csv "
        "--tr 0.72 --scan-length 864",
        description="Check input files the way the fitter will read them, and print one line per "
        "file. Exit status 2 at the first unusable file, with a message naming the file and the "
        "problem.",
    )
    p.add_argument("--fc", nargs="+", metavar="CSV", help="FC matrix (N x N), one file per run")
    p.add_argument("--fcd-cdf", nargs="+", metavar="CSV", help="FCD-CDF (10000 x 1), one per run")
    p.add_argument("--sc", metavar="CSV", help="structural connectivity (N x N)")
    p.add_argument("--myelin", metavar="CSV", help="myelin (T1w/T2w) map, one value per region")
    p.add_argument("--gradient", metavar="CSV", help="RSFC gradient map, one value per region")
    p.add_argument("--timeseries", nargs="+", metavar="FILE", help="BOLD runs (frames x regions)")
    p.add_argument("--demographics", metavar="CSV", help="demographics table")
    p.add_argument("--manifest", metavar="CSV", help="cohort manifest")
    p.add_argument("--tr", type=float, help="repetition time (seconds)")
    p.add_argument("--scan-length", type=float, help="scan length (seconds)")
    p.add_argument("--n-regions", type=int, default=None, help="required number of regions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Validate every file given and print a one-line summary of each."""
    from delssome_norms import io

    n = args.n_regions
    io.check_map_pair(args.myelin, args.gradient)
    checked = 0
    if args.tr is not None or args.scan_length is not None:
        tr, scan = io.check_timing(args.tr, args.scan_length, "--tr/--scan-length")
        print(f"ok  timing: TR {tr:g} s, {scan:g} s scan, {round(scan / tr)} frames")
        checked += 1
    if args.fc:
        fc = io.read_fc_runs(args.fc, n)
        n = fc.shape[0]
        print(f"ok  FC: {len(args.fc)} run(s), {n} regions")
        checked += 1
    if args.fcd_cdf:
        io.read_fcd_cdf_runs(args.fcd_cdf)
        print(f"ok  FCD-CDF: {len(args.fcd_cdf)} run(s)")
        checked += 1
    if args.sc:
        n = io.read_sc(args.sc, n).shape[0]
        print(f"ok  SC: {args.sc} ({n} regions)")
        checked += 1
    for label, path in (("myelin", args.myelin), ("gradient", args.gradient)):
        if path:
            io.read_map(path, n)
            print(f"ok  {label}: {path}")
            checked += 1
    for path in args.timeseries or ():
        ts = io.read_timeseries(path)
        print(f"ok  time series {path}: {ts.shape[0]} frames x {ts.shape[1]} regions")
        checked += 1
    if args.demographics:
        table = io.read_demographics(args.demographics)
        print(f"ok  demographics: {len(table)} people")
        checked += 1
    if args.manifest:
        table = io.read_manifest(args.manifest)
        print(f"ok  manifest: {len(table)} subjects")
        checked += 1
    if not checked:
        print("nothing to validate; see delssome-norms validate --help")
    return 0
