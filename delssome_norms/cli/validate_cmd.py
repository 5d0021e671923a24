"""``delssome-norms validate``: check input files before a long fit, with one line per file."""

from __future__ import annotations

import argparse

from delssome_norms.cli.main import add_command

TIMING_OPTIONS = {
    "dt_train": ("--dt-train", float, "integration step of the train stage, s"),
    "dt_val": ("--dt-val", float, "integration step of the validation stage, s"),
    "dt_test": ("--dt-test", float, "integration step of the test stage, s"),
    "burn_in": ("--burn-in", float, "simulated burn-in before the scan, s"),
    "fcd_window": ("--fcd-window", int, "FCD sliding window, frames"),
    "warmup_steps": ("--warmup-steps", int, "unrecorded integration steps before the burn-in"),
}
"""The timing options of ``estimate-ei`` (FitSettings fields), so that a subject is checked with
the timing it will be fitted with. Plain options here (default: the fit's own default), so that
``validate`` imports the fitter (and torch) only when it checks a timing."""


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
    p.add_argument(
        "--drop-na-frames",
        action="store_true",
        help="drop time-series frames with missing values (BIDS n/a), as estimate-ei and prepare "
        "do with this option, instead of refusing them",
    )
    p.add_argument(
        "--demographics", metavar="TABLE", help="demographics table (CSV, or a BIDS participants.tsv)"
    )
    p.add_argument("--manifest", metavar="CSV", help="cohort manifest")
    p.add_argument(
        "--tr",
        type=float,
        help="repetition time (seconds); with --timeseries, as in estimate-ei, the runs' JSON "
        "sidecars give it when --tr is left out, and one that disagrees with --tr is warned",
    )
    p.add_argument("--scan-length", type=float, help="scan length (seconds)")
    p.add_argument("--n-regions", type=int, default=None, help="required number of regions")
    group = p.add_argument_group(
        "timing of the fit (estimate-ei's options; default: the fit's defaults, as there)"
    )
    for flag, kind, text in TIMING_OPTIONS.values():
        group.add_argument(flag, type=kind, default=None, help=text)
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace):
    """FitSettings with the timing options given (the fit's defaults otherwise)."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit import FitSettings

    given = {f: getattr(args, f) for f in TIMING_OPTIONS if getattr(args, f, None) is not None}
    try:
        return FitSettings(**given)
    except InvalidInputError as err:
        flag = TIMING_OPTIONS.get(err.source, (None,))[0]
        raise InvalidInputError(err.problem, flag or err.source) from None


def run(args: argparse.Namespace) -> int:
    """Validate every file given and print a one-line summary of each (a warning about a file
    once, though the file is read alone and again in the check of the subject)."""
    import warnings

    with warnings.catch_warnings():  # restores the caller's showwarning
        show, shown = warnings.showwarning, set()

        def once(message, category, filename, lineno, file=None, line=None):
            if (category, str(message)) not in shown:
                shown.add((category, str(message)))
                show(message, category, filename, lineno, file, line)

        warnings.showwarning = once
        return _run(args)


def _timeseries_tr(args: argparse.Namespace) -> float | None:
    """``--tr``, or the runs' sidecar RepetitionTime (as estimate-ei reads it); None if neither."""
    from delssome_norms.cli.run_tr import timeseries_tr
    from delssome_norms.errors import InvalidInputError

    try:
        tr = timeseries_tr(args.timeseries, args.tr)
    except InvalidInputError as err:
        if args.tr is None and err.source == "--tr":  # no sidecar either: the note below says so
            return None
        raise
    if args.tr is None:
        print(f"ok  TR {tr:g} s from the runs' JSON sidecars (RepetitionTime)")
    return tr


def _run(args: argparse.Namespace) -> int:
    from delssome_norms import io
    from delssome_norms.cli.options import check_seconds
    from delssome_norms.errors import InvalidInputError

    check_seconds(args.tr, "--tr")  # named as the option, before anything is derived from them
    if args.tr is not None:
        from delssome_norms.model.timing import check_tr

        check_tr(args.tr, "--tr")
    check_seconds(args.scan_length, "--scan-length")
    if args.n_regions is not None and args.n_regions < 1:
        raise InvalidInputError(f"must be a positive integer, got {args.n_regions}", "--n-regions")
    if args.timeseries:
        args.tr = _timeseries_tr(args)
    n = args.n_regions
    io.check_map_pair(args.myelin, args.gradient)
    checked = 0
    # with time series and no scan length, the runs set it (frames x TR, as in estimate-ei): the
    # timing is then checked with the subject, below
    runs_set_scan = args.tr is not None and args.scan_length is None and bool(args.timeseries)
    if args.scan_length is not None and args.tr is None:
        raise InvalidInputError("give the repetition time --tr (seconds) with --scan-length", "--tr")
    if args.tr is not None and args.scan_length is None and not runs_set_scan:
        raise InvalidInputError(
            "give the scan length (seconds) with --tr (or --timeseries, whose frames set it)",
            "--scan-length",
        )
    settings = _settings(args) if args.tr is not None or args.manifest else None
    if not runs_set_scan and args.tr is not None:
        _check_timing(args.tr, args.scan_length, settings)
        checked += 1
    # the subject as the fit reads it (below) has its FC's range checked there; else here
    as_fitted = bool((args.fc and args.fcd_cdf) or args.timeseries) and (
        args.tr is not None and bool(args.timeseries or args.scan_length is not None)
    )
    checked += _check_files(args, n, fc_range=not as_fitted)
    if args.demographics:
        table = io.read_demographics(args.demographics)
        # collect matches people to result folders by id: the same rule as there
        io.check_unique_ids(table["subject_id"], str(args.demographics), as_folders=True)
        print(f"ok  demographics: {len(table)} people")
        checked += 1
    if args.manifest:
        _check_manifest(args.manifest, args.n_regions, settings)
        checked += 1
    if as_fitted:
        _check_as_fitted(args, settings)
    elif (args.fc and args.fcd_cdf) or args.timeseries:
        print("note: give --tr and --scan-length to also check the subject as the fit reads it")
    if not checked:
        print("nothing to validate; see delssome-norms validate --help")
    return 0


def _check_files(args: argparse.Namespace, n: int | None, fc_range: bool = True) -> int:
    """Read every region file of the subject by its region names, as the fit does, match the
    names across the files (:func:`~delssome_norms.io.named_regions.match_inputs`: FC or time
    series first, then SC and maps; another order is put in the first file's, other names are
    refused naming both files), then check sizes; one line per input. Returns the count.
    With ``fc_range``, the FC the fit would use (the Fisher-z mean of the FC runs, else of the
    time series' FCs) is checked against the model's range
    (:func:`~delssome_norms.fit.fc_regime.warn_fc_regime`: a warning, not an error)."""
    from delssome_norms import io
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.io.named_inputs import read_fc_named
    from delssome_norms.io.named_regions import (
        labelled_names,
        match_inputs,
        read_map_named,
        read_square,
        unnamed_inputs,
    )
    from delssome_norms.io.named_regions import take_regions as take
    from delssome_norms.io.prepare_record import check_prepared_pair
    from delssome_norms.io.timeseries import (
        dk68_by_position,
        read_timeseries_named,
        warn_dk68_by_position,
    )

    entries = {}  # the files the fit matches, in its order of precedence
    if args.timeseries:
        runs = read_timeseries_named(args.timeseries, drop_na_frames=args.drop_na_frames)
        entries.update(zip(args.timeseries, runs))
    elif args.fc:
        for p in args.fc:
            run = read_square(p, None, "FC")
            entries[p] = run._replace(values=io.check_fc(run.values, n, input_name=p))
    if args.sc:
        entries.setdefault(args.sc, read_square(args.sc, None, "SC"))
    for path in (args.myelin, args.gradient):
        if path:
            entries.setdefault(path, read_map_named(path))
    names, orders = match_inputs(entries)
    # header-less runs of 68 columns: DK68 by position, said once (as prepare and estimate-ei)
    warn_dk68_by_position(dk68_by_position(entries, args.timeseries or ()), stacklevel=2)
    value = {
        k: take(e.values, orders[k], 1 if k in (args.timeseries or ()) else None)
        if k in orders
        else e.values
        for k, e in entries.items()
    }
    checked = 0
    if args.fc:
        if args.timeseries:  # not the fit's input: its runs matched with one another only
            fc = read_fc_named(args.fc, n).values
        else:
            fcs = [value[p] for p in args.fc]
            if len({f.shape for f in fcs}) > 1:
                listing = ", ".join(f"{p}: {f.shape}" for p, f in zip(args.fc, fcs))
                raise InvalidInputError(f"runs have different shapes ({listing})", args.fc[0])
            fc = fcs[0]
        n = fc.shape[0]
        print(f"ok  FC: {len(args.fc)} run(s), {n} regions")
        checked += 1
    if args.fcd_cdf:
        io.read_fcd_cdf_runs(args.fcd_cdf)
        if args.fc and not args.timeseries:  # the FCD-CDF prepare wrote with each FC, if it did
            check_prepared_pair(args.fc, args.fcd_cdf)
        print(f"ok  FCD-CDF: {len(args.fcd_cdf)} run(s)")
        checked += 1
    if args.timeseries and n is None:
        n = value[args.timeseries[0]].shape[1]
    if args.sc:
        # named as the fit names the regions: DK68 for 68 regions, else the files' names
        sc = value[args.sc]
        regions = names if names is not None and len(sc) != 68 else None
        n = io.check_sc(sc, n, input_name=args.sc, regions=regions).shape[0]
        print(f"ok  SC: {args.sc} ({n} regions)")
        checked += 1
    for label, path in (("myelin", args.myelin), ("gradient", args.gradient)):
        if path:
            io.check_map(value[path], n, path)
            print(f"ok  {label}: {path}")
            checked += 1
    for path in args.timeseries or ():
        frames, width = value[path].shape
        print(f"ok  time series {path}: {frames} frames x {width} regions")
        checked += 1
    if fc_range:
        _warn_fc_range(args, value)
    if names is not None:
        labelled = labelled_names(entries, warn=False)
        first = next(iter(labelled))  # the file the names came from
        moved = f"; put in its order: {', '.join(orders)}" if orders else ""
        unnamed, _, order = unnamed_inputs(entries, labelled)
        if len(labelled) == 1:
            how = f"from {first}"
        else:
            how = f"matched by name across the files as in {first}{moved}"
        if unnamed:  # not matched by name: the warning says so too
            one = len(unnamed) == 1
            how += (
                f"; {', '.join(unnamed)} {'names' if one else 'name'} none and "
                f"{'is' if one else 'are'} taken to be in {order.split(' (')[0]}"
            )
        print(f"ok  region names: {len(names)}, {how}")
    return checked


def _warn_fc_range(args: argparse.Namespace, value: dict) -> None:
    """Warn about an FC outside the model's range (global signal regression, heavy smoothing):
    the time series' FC when given (the fit's input), else the FC runs'."""
    import numpy as np

    from delssome_norms.fit.fc_regime import warn_fc_regime
    from delssome_norms.io import fisher_z_mean

    if args.timeseries:
        from delssome_norms.model import bold_fc

        paths = args.timeseries
        fcs = [bold_fc(value[p]).numpy() for p in paths]
    elif args.fc:
        paths = args.fc
        fcs = [value[p] for p in paths]
    else:
        return
    warn_fc_regime(fisher_z_mean(np.stack(fcs)), ";".join(map(str, paths)))


def _check_timing(tr: float, scan_length: float, settings) -> None:
    """TR and scan length as the fit will use them: seconds, not milliseconds, and enough frames
    for the FCD window (default ``round(60 / TR)`` frames) and every stage's dt."""
    from delssome_norms import io
    from delssome_norms.cli.estimate_cmd import check_stage_timing
    from delssome_norms.model.timing import check_tr

    tr, scan = io.check_timing(tr, scan_length, "--tr/--scan-length")
    check_tr(tr, "--tr")
    check_stage_timing(settings, tr, scan, "--tr/--scan-length")
    t = settings.timing(tr, scan, "train")
    print(
        f"ok  timing: TR {tr:g} s, {scan:g} s scan, {t.n_frames} frames; FCD window "
        f"{t.fcd_window} frames ({t.fcd_window * tr:g} s), {t.n_windows} windows; burn-in "
        f"{t.burn_in:g} s ({_which(settings)})"
    )


def _which(settings) -> str:
    """Whether ``settings`` has the default timing (what the summary lines say)."""
    from delssome_norms.fit import FitSettings

    default = FitSettings()
    same = all(getattr(settings, f) == getattr(default, f) for f in TIMING_OPTIONS)
    return "default settings" if same else "the timing options given"


def _check_as_fitted(args: argparse.Namespace, settings) -> None:
    """Read the subject the way ``estimate-ei`` will (default SC template when none is given,
    maps against N, the scan length against the time series, the default stage timings)."""
    from delssome_norms.cli.estimate_cmd import check_stage_timing
    from delssome_norms.fit import load_subject
    from delssome_norms.io.prepare_record import check_prepared_timing
    from delssome_norms.model.timing import fcd_window_frames

    if args.fc and not args.timeseries:  # prepare's record, in words without a subject id
        window = fcd_window_frames(args.tr, settings.fcd_window)
        check_prepared_timing(args.fc, args.tr, args.scan_length, window)  # the pair: _check_files
    subject = load_subject(
        "subject",
        args.tr,
        args.scan_length,
        fc=args.fc if not args.timeseries else None,
        fcd_cdf=args.fcd_cdf if not args.timeseries else None,
        timeseries=args.timeseries,
        sc=args.sc,
        myelin=args.myelin,
        gradient=args.gradient,
        n_regions=args.n_regions,
        fcd_window=settings.fcd_window,
        drop_na_frames=args.drop_na_frames,
    )
    if args.scan_length is None:  # the runs' own length: timing not checked yet
        _check_timing(subject.tr, subject.scan_length, settings)
    else:
        check_stage_timing(settings, subject.tr, subject.scan_length, "--tr/--scan-length")
    sc = args.sc or "the default DK68 template"
    print(
        f"ok  subject as estimate-ei reads it: {subject.n_regions} regions, SC {sc}, "
        f"TR {subject.tr:g} s, {subject.scan_length:g} s scan ({_which(settings)})"
    )


def _check_manifest(path: str, n_regions: int | None, settings) -> None:
    """Read every row's files as ``cohort`` will; one line naming every unusable subject."""
    from delssome_norms import io
    from delssome_norms.cli.estimate_cmd import check_stage_timing
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.cohort import _load_row, cohort_gradient, plan_cohort
    from delssome_norms.fit.manifest_checks import check_manifest_columns

    table = io.read_manifest(path)
    check_manifest_columns(table, path)  # as cohort: an sc or map column filled for some rows only
    plan = plan_cohort(table, settings, group_size=1, n_regions=n_regions)
    # as run_cohort: subjects without maps are fitted with the group-average FC's gradient, in
    # its region order; one naming other regions is then refused (below)
    cohort_gradient(plan, settings.maps)
    bad = []
    for row in plan.rows:
        try:
            subject = _load_row(row, plan.n_regions, settings)
            check_stage_timing(settings, subject.tr, subject.scan_length, "the manifest")
        except InvalidInputError as err:
            bad.append(f"{row['subject_id']} ({err})")
    if bad:
        raise InvalidInputError(
            f"{len(bad)} of {len(plan.rows)} subject(s) cannot be fitted: {'; '.join(bad[:3])}"
            + (f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""),
            path,
        )
    print(f"ok  manifest: {len(plan.rows)} subjects, every file readable ({plan.n_regions} regions)")
