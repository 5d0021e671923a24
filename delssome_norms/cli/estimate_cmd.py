"""``delssome-norms estimate-ei``: one subject's regional E/I ratio (CMA-ES train → val → test)."""

from __future__ import annotations

import argparse
import sys
import warnings

from delssome_norms.cli import options
from delssome_norms.cli.main import add_command
from delssome_norms.errors import FitQualityWarning


def add_fit_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``estimate-ei`` and ``cohort`` (search, simulation, device).

    The FitSettings options come from the settings fields (:mod:`delssome_norms.cli.options`).
    """
    fit_group = p.add_argument_group("fit")
    options.add_fit_options(fit_group, options.FIT_OPTIONS)
    options.add_threads_option(
        fit_group,
        "CPU threads of the simulator and torch (default: torch's, one per core; with "
        "--executor dask this process only)",
    )
    fit_group.add_argument("--quiet", action="store_true", help="no progress bars")
    fit_group.add_argument(
        "--overwrite",
        action="store_true",
        help="refit subjects whose folders hold results or checkpoints written with other inputs "
        "or settings (default: refuse; matching results are always kept and reused)",
    )
    simulation = p.add_argument_group("simulation (advanced; defaults from docs/science.md)")
    options.add_fit_options(simulation, options.SIMULATION_OPTIONS)


def check_device(device: str, option: str = "--device") -> str:
    """Refuse, before any work, a device torch does not know or this machine does not have.

    Returns
    -------
    str
        The device string, unchanged.
    """
    from delssome_norms.model.devices import check_device as check

    check(device, option)
    return device


def settings_from_args(args: argparse.Namespace, device_here: bool = True):
    """Build :class:`~delssome_norms.fit.FitSettings` from parsed options (checks mode, device).

    ``device_here`` False: the work runs elsewhere (Dask workers), so only the device's spelling
    is checked here; the workers check that they have it.
    """
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit import check_mode
    from delssome_norms.fit.evaluate import with_weights_identity
    from delssome_norms.model.devices import parse_device
    from delssome_norms.surrogate import SURROGATE_BACKEND

    options.set_threads(getattr(args, "threads", None))
    if device_here:
        check_device(args.device)
    else:
        parse_device(args.device, "--device")
    for name in ("generations", "popsize", "mu"):
        value = getattr(args, name)
        if value is not None and value < 1:  # --mu left out: 10, at most popsize // 2
            raise InvalidInputError(f"must be a positive integer, got {value}", f"--{name}")
    check_mode(args.mode, args.weights, SURROGATE_BACKEND)
    if args.weights is not None and args.mode != "surrogate":
        raise InvalidInputError("--weights only applies with --mode surrogate", "--weights")
    settings = with_weights_identity(options.fit_settings_from_args(args), SURROGATE_BACKEND)
    if settings.mode == "surrogate":
        print(weights_line(settings.surrogate_weights))
    return settings


def weights_line(weights: str | None) -> str:
    """One line naming the surrogate weights a fit uses: folder, digest and what they cover."""
    from delssome_norms.surrogate import load_pretrained

    model = load_pretrained(weights)
    meta = model.metadata
    cover = meta.get("timing") or {}
    ranges = [
        f"{name} {lo:g}-{hi:g} s" if lo != hi else f"{name} {lo:g} s"
        for name, key in (("TR", "tr_range"), ("scans", "scan_length_range"))
        if key in cover
        for lo, hi in [cover[key]]
    ]
    trained = f"trained for {', '.join(ranges)}" if ranges else "no recorded timing"
    digest = str(meta.get("weights_sha256", ""))[:12]
    default = "" if weights else "default "
    return (
        f"surrogate weights ({default}{model.path}): sha256 {digest}..., {trained}, "
        f"{meta.get('n_regions', '?')} regions ({meta.get('atlas', 'atlas not recorded')})"
    )


def register(subparsers) -> None:
    """Add the ``estimate-ei`` subcommand."""
    p = add_command(
        subparsers,
        "estimate-ei",
        help="estimate one subject's regional E/I ratio from FC and FCD-CDF (or BOLD time series)",
        example="delssome-norms estimate-ei --fc sub-000_FC.csv --fcd-cdf sub-000_FCD_CDF.csv "
        "--tr 0.72 --scan-length 864 --out-dir out/sub-000",
        description="Fit the pFIC model to one subject with CMA-ES (train), re-simulate each "
        "generation's best (validation) and the best validated sets at a finer step (test). Writes "
        "EI_ratio.csv, best_parameters.csv, fit_quality.csv and run.json to --out-dir; rerunning "
        "the same command after an interruption resumes from the last finished generation.",
    )
    src = p.add_argument_group("inputs")
    src.add_argument("--fc", nargs="+", metavar="CSV", help="FC (N x N), one file per run")
    src.add_argument("--fcd-cdf", nargs="+", metavar="CSV", help="FCD-CDF (10000 x 1), one file per run")
    src.add_argument(
        "--timeseries", nargs="+", metavar="FILE", help="BOLD runs (frames x regions; TSV, CSV or NPY)"
    )
    src.add_argument(
        "--drop-na-frames",
        action="store_true",
        help="drop time-series frames with missing values (BIDS n/a) instead of refusing them",
    )
    src.add_argument(
        "--tr",
        type=float,
        help="repetition time (seconds). Needed with --fc/--fcd-cdf; with --timeseries needed "
        "unless the runs' JSON sidecars give RepetitionTime (run.json next to run.tsv, or the "
        "BIDS sidecars of the run), and a sidecar that disagrees with --tr gets a warning",
    )
    src.add_argument("--scan-length", type=float, help="scan length (seconds; default frames x TR)")
    src.add_argument("--sc", metavar="CSV", help="SC (N x N); default: the DK68 template")
    src.add_argument("--myelin", metavar="CSV", help="myelin map (give with --gradient)")
    src.add_argument("--gradient", metavar="CSV", help="RSFC gradient map (give with --myelin)")
    src.add_argument(
        "--cohort-gradient",
        metavar="DIR",
        help="refit a subject of a cohort alone with the cohort's FC gradient (subjects without "
        "maps of another atlas, or a cohort run with --maps fc-gradient): the cohort's --out-dir "
        "(its cohort_gradient.json); with --out-dir DIR/ID, another --seed and --overwrite "
        "(docs/rerunning.md)",
    )
    src.add_argument(
        "--subject-id",
        default=None,
        help="the subject's name in run.json (default: out-dir name); with --seed it also seeds "
        "the fit, so the same data under another name give another, equally valid, draw",
    )
    p.add_argument("--out-dir", required=True, help="output folder")
    options.defer(p, add_fit_options)
    p.set_defaults(func=run)


def _timing_value(field: str, settings, tr: float) -> str:
    """The value of a fit's timing field in words, with the default the fit used when its option
    was left out ("" for ``dt``, which the stage's option names)."""
    from delssome_norms.model.timing import default_burn_in, fcd_window_frames

    if field == "fcd_window":
        given = settings.fcd_window
        if given is None:
            return f"default round(60 / TR) = {fcd_window_frames(tr)} frames"
        return f"now {given} frames"
    if field == "burn_in":
        if settings.burn_in is None:
            return f"default ceil(72 / TR) x TR = {default_burn_in(tr):g} s"
        return f"now {settings.burn_in:g} s"
    if field == "warmup_steps":
        return f"now {settings.warmup_steps}"
    return ""


def check_stage_timing(settings, tr: float, scan_length: float, source: str) -> None:
    """Build the train/val/test timings once before the work (dt vs TR, burn-in, FCD window).

    Raises
    ------
    InvalidInputError
        Attributed to the option that sets the value it is about (e.g.
        ``--fcd-window (now 200 frames; train stage; TR and scan length from --tr/--scan-length)``),
        else to ``source`` (what gave the TR and scan length) and the stage.
    """
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.model.timing import FIT_OPTION_FIELDS, timing_option

    for stage in ("train", "val", "test"):
        try:
            settings.timing(tr, scan_length, stage)
        except InvalidInputError as err:
            field = getattr(err, "field", None)
            if field not in FIT_OPTION_FIELDS:  # TR and scan length: from the subject's inputs
                raise err.with_source(f"{source} ({stage} stage)") from None
            value = _timing_value(field, settings, tr)
            where = "; ".join(
                w for w in (value, f"{stage} stage", f"TR and scan length from {source}") if w
            )
            raise InvalidInputError(err.problem, f"{timing_option(field, stage)} ({where})") from None


def run(args: argparse.Namespace) -> int:
    """Load the subject, fit it (:class:`~delssome_norms.pipeline.EIEstimator`), print the mean E/I."""
    from pathlib import Path

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit import load_subject
    from delssome_norms.io import check_not_locked, check_out_dir, check_subject_id
    from delssome_norms.io.tidy_lock import TidyOutDirLock, missing_folders
    from delssome_norms.pipeline import EIEstimator, EIFitError
    from delssome_norms.pipeline.estimator import check_fit_possible

    settings = settings_from_args(args)
    if args.timeseries and (args.fc or args.fcd_cdf):
        raise InvalidInputError("give either --timeseries or --fc with --fcd-cdf", "estimate-ei")
    if not args.timeseries and not (args.fc and args.fcd_cdf):
        raise InvalidInputError("needs --fc and --fcd-cdf, or --timeseries", "estimate-ei")
    if not args.timeseries and args.scan_length is None:
        raise InvalidInputError("--scan-length (seconds) is required with --fc/--fcd-cdf", "estimate-ei")
    if not args.timeseries and args.tr is None:
        raise InvalidInputError("the repetition time (seconds) is required with --fc/--fcd-cdf", "--tr")
    from delssome_norms.cli.run_tr import timeseries_tr
    from delssome_norms.model.timing import check_scan_length, check_tr

    if args.tr is not None:
        check_tr(args.tr, "--tr")  # named as the option, before anything is derived from them
    timing_source = "--tr/--scan-length"
    from_sidecar = False
    if args.timeseries:  # the runs' JSON sidecars, as prepare --timeseries reads them
        from_sidecar = args.tr is None
        args.tr = timeseries_tr(args.timeseries, args.tr)
        if from_sidecar:
            timing_source = "the runs' JSON sidecars (TR) and --scan-length or the runs' frames"
            print(f"TR {args.tr:g} s from the runs' JSON sidecars (RepetitionTime)")
    if args.scan_length is not None:
        options.check_seconds(args.scan_length, "--scan-length")
        check_scan_length(args.scan_length, "--scan-length")
    out = Path(args.out_dir)
    if args.subject_id is not None:
        subject_id = check_subject_id(args.subject_id, "--subject-id")
    else:  # the folder's name: it must pass the rule collect applies to every subject id
        try:
            subject_id = check_subject_id(out.resolve().name, "--out-dir")
        except InvalidInputError as err:
            raise InvalidInputError(
                f"{err.problem}; the subject id is the output folder's name unless "
                "--subject-id gives one",
                "--out-dir",
            ) from None
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} exists and is not a folder", "--out-dir")
    if settings.mode == "surrogate" and args.sc:  # before the inputs are read: the SC file alone
        from delssome_norms.surrogate.evaluate import check_surrogate_sc

        check_surrogate_sc(settings.surrogate_weights, args.sc)
    subject = load_subject(
        subject_id,
        None if from_sidecar else args.tr,  # load_subject records the sidecar as the TR's source
        args.scan_length,
        fc=args.fc,
        fcd_cdf=args.fcd_cdf,
        timeseries=args.timeseries,
        sc=args.sc,
        myelin=args.myelin,
        gradient=args.gradient,
        fcd_window=args.fcd_window,
        drop_na_frames=args.drop_na_frames,
    )
    check_stage_timing(settings, subject.tr, subject.scan_length, timing_source)
    if args.timeseries:  # header-less runs of 68 columns: DK68 by position, said once
        _warn_dk68_by_position(args)
    fallback = None
    if args.cohort_gradient is not None:  # in the gradient's region order, as the cohort fits it
        from delssome_norms.fit.cohort_fc import with_cohort_gradient

        subject, fallback = with_cohort_gradient(subject, args.cohort_gradient, settings.maps)
    # before the output folder exists: surrogate weights of another atlas, impossible maps
    fc_option = "--timeseries" if args.timeseries else "--fc"
    check_fit_possible(
        subject,
        settings,
        {"given": "--gradient", "subject FC": f"{fc_option} (the gradient of the subject's FC)"},
        fallback,
    )
    if settings.mode == "surrogate":  # the SC as fitted (region order, or the template)
        from delssome_norms.surrogate.evaluate import check_surrogate_sc

        check_surrogate_sc(settings.surrogate_weights, subject.sc)
    if args.subject_id is not None:  # the inputs pass: the fit starts
        _warn_other_folder_name(subject_id, out)
    check_not_locked(out.resolve().parent, "--out-dir")  # a cohort run owns its subject folders
    created = missing_folders(out)
    out = check_out_dir(out, "--out-dir")
    estimator = EIEstimator(settings, out_dir=out, overwrite=args.overwrite)
    # a refusal before anything is written leaves no folder of its own holding a lock file
    with TidyOutDirLock(out, created, "--out-dir"):
        progress, bar = _generation_bar(args.quiet)
        try:
            with warnings.catch_warnings():  # printed below, as the command's own notes
                warnings.simplefilter("ignore", FitQualityWarning)
                estimator.fit_subject(subject, progress=progress, cohort_gradient=args.cohort_gradient)
        except EIFitError as err:
            print(f"delssome-norms: {err.cli_message}", file=sys.stderr)
            return 1
        finally:  # an InvalidInputError goes on to cli.main, which reports it in the CLI's words
            bar.close()
    ei = estimator.result_.ei
    verb = "already finished" if estimator.outcome_.status == "skipped" else "done"
    result = estimator.result_
    span = result.mean_interval
    span_text = f" (90 % interval {span[0]:.4f}-{span[1]:.4f})" if span else ""
    print(
        f"{subject.subject_id}: {verb}; mean E/I {ei.mean():.4f}{span_text} over {len(ei)} regions "
        f"-> {out}"
    )
    for note in result.quality_notes():
        print(f"{subject.subject_id}: {note}")
    return 0


def _warn_other_folder_name(subject_id: str, out) -> None:
    """Warn, before the fit, that ``--subject-id`` is not the ``--out-dir`` folder's name:
    ``collect`` (and ``cohort``) find a subject's results in the folder named like its id, so
    this fit would never be collected."""
    import shlex

    from delssome_norms.errors import InputWarning

    folder = out.resolve().name
    if folder == subject_id:
        return
    warnings.warn(
        f"--subject-id {subject_id} is not the name of the --out-dir folder ({folder!r}): "
        f"collect looks for each subject's results in the folder named like its subject id "
        f"({subject_id}), so it will not find this fit; give --out-dir "
        f"{shlex.quote(str(out.parent / subject_id))} to collect it",
        InputWarning,
        stacklevel=3,
    )


def _warn_dk68_by_position(args: argparse.Namespace) -> None:
    """The runs of ``--timeseries`` whose 68 columns name no regions, said in one line
    (:func:`~delssome_norms.io.timeseries.warn_dk68_by_position`) once the subject is read: their
    names (none), and the SC's and maps', are read again quietly, as the fit read them (small
    files: the fit's own reading keeps no names of the runs)."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.io.named_regions import read_map_named, read_square
    from delssome_norms.io.timeseries import (
        dk68_by_position,
        read_timeseries_named,
        warn_dk68_by_position,
    )

    paths = [str(p) for p in args.timeseries]
    try:
        with warnings.catch_warnings():  # said when the fit read them
            warnings.simplefilter("ignore")
            runs = read_timeseries_named(paths, drop_na_frames=args.drop_na_frames)
            entries = dict(zip(paths, runs))
            if args.sc:
                entries.setdefault(str(args.sc), read_square(args.sc, None, "SC"))
            for path in (args.myelin, args.gradient):
                if path:
                    entries.setdefault(str(path), read_map_named(path))
    except (InvalidInputError, OSError):  # read once already: nothing new to say
        return
    warn_dk68_by_position(dk68_by_position(entries, paths), stacklevel=3)


def _generation_bar(quiet: bool):
    from delssome_norms.fit import GroupProgress
    from delssome_norms.fit.progress import progress_bar

    bar = progress_bar(0, "generations", "gen", quiet)

    def start(total: int) -> None:
        bar.reset(total=total)

    def step(done: int) -> None:
        bar.update(max(0, done - bar.n))

    return GroupProgress(on_start=start, on_generation=step), bar
