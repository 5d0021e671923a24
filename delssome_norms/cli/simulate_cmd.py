"""``delssome-norms simulate``: simulate one pFIC parameter set and write its E/I, FC and FCD-CDF."""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

from delssome_norms.cli import options
from delssome_norms.cli.main import add_command


def register(subparsers) -> None:
    """Add the ``simulate`` subcommand."""
    p = add_command(
        subparsers,
        "simulate",
        help="simulate regional pFIC parameters: E/I ratio, FC, FCD-CDF (and losses)",
        example="delssome-norms simulate --params best_parameters.csv --sc SC.csv --tr 0.72 "
        "--scan-length 864 --out-dir sim/ --fc sub-000_FC.csv --fcd-cdf sub-000_FCD_CDF.csv",
        description="Simulate the pFIC model (feedback inhibition control, Euler–Maruyama, "
        "Balloon–Windkessel BOLD) for one set of regional parameters with several noise "
        "duplicates. Writes EI_ratio.csv (region_index[, region], EI_ratio, S_E, S_I, r_E), FC.csv and "
        "FCD_CDF.csv to --out-dir, and fit_quality.csv (stage 'simulate') when --fc and "
        "--fcd-cdf are given. Defaults follow the paper's final test stage (dt 0.0005 s). "
        "--from-run RUN_JSON reproduces a fit's own test simulation of its winner bit for bit "
        "(its seed, batch row and size, duplicates, dtype, device and timing from run.json).",
    )
    p.add_argument(
        "--params",
        metavar="CSV",
        action=_Given,
        help="regional parameters: region_index, wEE, wEI, sigma, G (best_parameters.csv layout); "
        "default with --from-run: the fit's best_parameters.csv",
    )
    p.add_argument(
        "--sc",
        metavar="CSV",
        action=_Given,
        help="structural connectivity (N x N); default: the DK68 template (with --from-run: the "
        "fit's SC, checked against its digest in run.json)",
    )
    p.add_argument(
        "--tr", type=float, action=_Given, help="repetition time (seconds); required without --from-run"
    )
    p.add_argument(
        "--scan-length",
        type=float,
        action=_Given,
        help="scan length (seconds); required without --from-run",
    )
    p.add_argument("--out-dir", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--fc", metavar="CSV", help="empirical FC to score the simulation against")
    p.add_argument("--fcd-cdf", metavar="CSV", help="empirical FCD-CDF (10000 x 1)")
    p.add_argument(
        "--from-run",
        metavar="RUN_JSON",
        help="reproduce a fit's test-stage simulation of its winner bit for bit: the seed, "
        "batch row and size, duplicates, dtype, device and timing come from this run.json (or "
        "the fit's folder), the parameters and SC from beside it / its inputs; an option "
        "given as well must agree with it (--device may differ: the same noise, other rounding)",
    )
    p.add_argument(
        "--batch-row",
        type=int,
        metavar="R",
        action=_Given,
        help="simulate the parameters as row R of a batch (run.json's test_batch_row): "
        "duplicate d gets the noise of simulation R x n_dup + d; rows 0 .. R are simulated, so "
        "the cost grows with R (default 0)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        metavar="B",
        action=_Given,
        help="rows of that batch (run.json's test_batch_size): R must be below it; needed only "
        "by the torch engine (no C++ kernel, or CUDA without Triton)",
    )
    options.defer(p, _add_simulation_options)
    p.set_defaults(func=run)


SIMULATION_FIELDS = (
    "dt_test", "burn_in", "fcd_window", "warmup_steps", "n_dup", "seed", "device", "dtype", "engine",
)  # fmt: skip
"""The FitSettings options ``simulate`` takes."""


def _add_simulation_options(p: argparse.ArgumentParser) -> None:
    """The fit's options with the defaults of its final test stage (a noise seed of its own)."""
    options.add_fit_options(
        p,
        SIMULATION_FIELDS,
        overrides={
            "dt_test": {"flag": "--dt", "help": "integration step, s", "action": _Given},
            "burn_in": {"action": _Given},
            "fcd_window": {"action": _Given},
            "warmup_steps": {"action": _Given},
            "n_dup": {"help": "noise duplicates", "action": _Given},
            "seed": {"default": 1, "help": "noise seed", "action": _Given},
            "device": {"help": "torch device: cpu, cuda or cuda:N", "action": _Given},
            "dtype": {"action": _Given},
            "engine": {
                "action": _Given,
                "help": "simulator engine: auto, torch, kernel (CPU) or triton (CUDA); default "
                "auto, with --from-run the engine the fit ran on (run.json settings.engine_used)",
            },
        },
    )
    p.add_argument(
        "--sc-max",
        type=float,
        default=0.02,
        action=_Given,
        help="SC is scaled to this maximum (default 0.02)",
    )


class _Given(argparse.Action):
    """Store an option's value and remember that it was given (``given_options``), so that
    ``--from-run`` can tell an option the user set from its default."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, values)
        namespace.given_options = {*getattr(namespace, "given_options", ()), self.dest}


OUTPUT_FILES = ("EI_ratio.csv", "FC.csv", "FCD_CDF.csv", "fit_quality.csv")
"""What ``simulate`` writes to --out-dir (``fit_quality.csv`` only when scoring)."""
RECORD_FILE = "simulate.json"
"""``simulate``'s record of what made its files (settings, inputs' SHA-256, version)."""


def run(args: argparse.Namespace) -> int:
    """Read the inputs, simulate, and write EI_ratio.csv, FC.csv, FCD_CDF.csv (+ fit_quality.csv).

    Ctrl-C or SIGTERM: one line of simulate's own (it has no checkpoint to resume from), exit
    status 130 or 143."""
    state = {"writing": False}
    try:
        return _run(args, state)
    except KeyboardInterrupt as err:
        from delssome_norms.cli.simulate_inputs import stopped_message

        return stopped_message(err, args.out_dir, state["writing"])


def _run(args: argparse.Namespace, state: dict) -> int:
    import torch

    from delssome_norms import io
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit import reproduce
    from delssome_norms.model import PFICParams, cost, scale_sc, summarize

    record = _apply_run_record(args) if args.from_run is not None else None
    for option, value in (("--params", args.params), ("--tr", args.tr)):
        if value is None:
            raise InvalidInputError("is required (or take it from a fit with --from-run)", option)
    if args.scan_length is None:
        raise InvalidInputError("is required (or take it from a fit with --from-run)", "--scan-length")
    if (args.fc is None) != (args.fcd_cdf is None):
        raise InvalidInputError("give both --fc and --fcd-cdf to score the simulation, or neither")
    if args.n_dup < 1:
        raise InvalidInputError(f"must be at least 1, got {args.n_dup}", "--n-dup")
    if not (math.isfinite(args.dt) and args.dt > 0):
        raise InvalidInputError(f"must be a positive number of seconds, got {args.dt}", "--dt")
    if not 0 <= args.seed < 2**63:
        raise InvalidInputError(f"must be an integer in [0, 2**63), got {args.seed}", "--seed")
    row = 0 if args.batch_row is None else args.batch_row
    reproduce.check_batch_row(row, args.batch_size)
    from delssome_norms.model.devices import check_device

    check_device(args.device, "--device")  # a device torch knows and this machine has
    if Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():
        raise InvalidInputError(f"{args.out_dir} exists and is not a folder", "--out-dir")
    timing = _timing(args)

    par = io.read_parameters(args.params)
    n = len(par["wEE"])
    regions = _parameter_regions(args.params, n)
    if n < 3:
        raise InvalidInputError(
            f"has {n} region row(s); FC and FCD need at least 3 regions (a correlation of "
            "region pairs between windows)",
            args.params,
        )
    if args.sc is not None:
        sc_raw, sc_name = _in_parameter_order(args.sc, regions, "SC"), f"the SC {args.sc}"
    else:
        sc_raw, sc_name = _template_sc(regions, args.params), "the default DK68 template SC"
    if record is not None:
        _check_fit_sc(record, sc_raw, sc_name, args.sc)
    if sc_raw.shape[0] != n:
        raise InvalidInputError(
            f"has {n} region rows but {sc_name} has {sc_raw.shape[0]} regions; the "
            "parameters and the SC must describe the same regions",
            args.params,
        )
    from delssome_norms.model.batch import warn_asymmetric_sc

    warn_asymmetric_sc(sc_raw, sc_name)  # a directed SC is used as it is (row i: inputs to i)
    if record is None:  # a fit's run.json beside the parameters: its SC, or a warning
        from delssome_norms.cli.simulate_inputs import warn_sc_not_the_fits

        warn_sc_not_the_fits(args.params, sc_raw, sc_name, args.sc is not None)
    if not (math.isfinite(args.sc_max) and 0 < args.sc_max <= SC_MAX_LIMIT):
        raise InvalidInputError(
            f"must be a positive number up to {SC_MAX_LIMIT:g} (the fit scales its SC to a "
            f"maximum of 0.02), got {args.sc_max:g}",
            "--sc-max",
        )
    sc = scale_sc(sc_raw, max_value=args.sc_max)
    fc_emp = _in_parameter_order(args.fc, regions, "FC", n) if args.fc else None
    cdf_emp = io.read_fcd_cdf(args.fcd_cdf) if args.fcd_cdf else None
    params = PFICParams(par["wEE"][None], par["wEI"][None], par["sigma"][None], [float(par["G"])])
    _check_step(params, sc, timing.dt, args.params)
    dtype = getattr(torch, args.dtype)
    engine = getattr(args, "engine", "auto")  # --from-run: the fit's
    why = None if engine == "auto" else reproduce.engine_unavailable(engine, args.device, n, dtype)
    if why is not None:
        raise InvalidInputError(f"{why}; give --engine auto (or torch)", "--engine")
    # a simulation of its own (no fit's batch to reproduce) is a batch of one
    own = args.batch_size is None and args.batch_row is None and record is None
    batch_size = 1 if own else args.batch_size
    rows = reproduce.rows_to_simulate(row, batch_size, engine, args.device, n, dtype)
    engine_used = reproduce.chosen_engine(engine, args.device, n, dtype)
    reproduce.check_rows_memory(rows, row, args.n_dup, n, timing.n_frames, dtype, args.device)

    from delssome_norms.cli.simulate_inputs import discard_if_failed, new_folders

    created = new_folders(args.out_dir)  # removed again if the run fails and leaves them empty
    out = _check_out_dir(args)  # before the simulation
    with io.OutDirLock(out, "--out-dir"), discard_if_failed(created):
        with _progress(timing.total_steps) as progress:
            res = reproduce.simulate_batch_row(
                params,
                sc,
                timing,
                row,
                batch_size,
                n_dup=args.n_dup,
                seed=args.seed,
                device=args.device,
                dtype=dtype,
                engine=engine,
                progress=progress,
            )
        n_valid = int(res.valid.sum())
        if n_valid == 0:
            raise InvalidInputError(
                "no duplicate gave a valid simulation: the state blew up to NaN/inf or the "
                "gating variables left (0, 1); check wEE, wEI, sigma and G (and --sc-max)",
                args.params,
            )
        if n_valid < args.n_dup:
            warnings.warn(
                f"{args.n_dup - n_valid} of {args.n_dup} duplicates blew up (NaN/inf) and were "
                "left out of the averages",
                stacklevel=2,
            )
        # written out: full precision
        summary = summarize(res, timing, fcd_products=res.bold.dtype)
        means = reproduce.duplicate_means(res)  # the fit's arithmetic (float64 means)
        ei, r_e = means["EI_ratio"], means["r_E"]
        _warn_outside_regime(r_e, params, sc)
        fc_sim = summary.fc[0].double().cpu().numpy()
        cdf_sim = summary.fcd_cdf[0].double().cpu().numpy()
        losses = None if fc_emp is None else cost(summary, fc_emp, cdf_emp).as_dict(0)
        # read together (the E/I and the statistics of one simulation; FC and FCD-CDF as a fit's
        # inputs): a stop between the writes must not leave new files beside an earlier run's
        state["writing"] = True
        io.write_together(
            [
                (  # what made these files (first: a stop never leaves them without a record)
                    out / RECORD_FILE,
                    lambda p: io.write_json(
                        _record(args, timing, batch_size, row, engine_used, sc_raw, n_valid), p
                    ),
                ),
                (
                    out / "EI_ratio.csv",
                    lambda p: io.write_ei_ratio(p, ei, means["S_E"], means["S_I"], r_e, regions=regions),
                ),
                (out / "FC.csv", lambda p: io.write_matrix(fc_sim, p, names=regions)),
                (out / "FCD_CDF.csv", lambda p: io.write_matrix(cdf_sim, p)),
                (  # without --fc an earlier run's fit_quality.csv is removed with its partners
                    out / "fit_quality.csv",
                    None if losses is None else lambda p: io.write_fit_quality(p, {"simulate": losses}),
                ),
            ]
        )
        state["writing"] = False
        line = (
            f"E/I mean {ei.mean():.4f} (regions {ei.min():.4f}-{ei.max():.4f}), "
            f"r_E mean {r_e.mean():.3f} Hz, {timing.n_frames} frames x {args.n_dup} duplicates"
        )
        if row or args.batch_size is not None:
            of = f" of {args.batch_size}" if args.batch_size is not None else ""
            line += f", as row {row} of a batch{of}" + (f" ({rows} rows simulated)" if rows > 1 else "")
        if losses is not None:
            line += (
                f"; corr_loss {losses['corr_loss']:.4f}, l1_loss {losses['l1_loss']:.4f}, "
                f"ks_loss {losses['ks_loss']:.4f}"
            )
        if record is not None:
            line += _compare_with_fit(record, means, args.params)
    print(f"{line}; wrote {out}")
    return 0


SC_MAX_LIMIT = 1.0
"""Largest ``--sc-max`` accepted: 50 times the fit's scaling (a larger SC maximum is a typo or an
unscaled matrix, whose coupling would overwhelm the local dynamics)."""


FROM_RUN_FIELDS = {
    "seed": ("--seed", "result.seeds.test"),
    "batch_row": ("--batch-row", "result.test_batch_row"),
    "batch_size": ("--batch-size", "result.test_batch_size"),
    "n_dup": ("--n-dup", "settings.n_dup"),
    "dtype": ("--dtype", "settings.dtype"),
    "tr": ("--tr", "timing.tr"),
    "scan_length": ("--scan-length", "timing.scan_length"),
    "dt": ("--dt", "timing.dt.test"),
    "burn_in": ("--burn-in", "timing.burn_in"),
    "fcd_window": ("--fcd-window", "timing.fcd_window"),
    "warmup_steps": ("--warmup-steps", "timing.warmup_steps"),
    "sc_max": ("--sc-max", "SC scaling (the fit scales its SC to a maximum of 0.02)"),
}
"""Options ``--from-run`` takes from run.json: (flag, where run.json records it)."""


def _apply_run_record(args: argparse.Namespace):
    """Fill ``args`` from the fit's run.json (``--from-run``); refuse a given option that
    contradicts it. Returns the :class:`~delssome_norms.fit.reproduce.WinnerRecord`."""
    import torch

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.reproduce import read_winner_record

    rec = read_winner_record(args.from_run)
    given = getattr(args, "given_options", set())
    fit = {
        "seed": rec.seed,
        "batch_row": rec.row,
        "batch_size": rec.batch_size,
        "n_dup": rec.n_dup,
        "dtype": rec.dtype,
        **{k: rec.timing[k] for k in ("tr", "scan_length", "dt", "burn_in", "fcd_window")},
        "warmup_steps": rec.timing["warmup_steps"],
        "sc_max": 0.02,
    }
    for dest, value in fit.items():
        mine = getattr(args, dest)
        if dest in given and value is not None and not _same(mine, value):
            flag, where = FROM_RUN_FIELDS[dest]
            raise InvalidInputError(
                f"{mine} contradicts the fit's {where} ({value}) in {rec.path}; leave it out to "
                "reproduce the fit's test simulation (or leave out --from-run)",
                flag,
            )
        setattr(args, dest, value)
    other_device = False
    if "device" not in given:
        args.device = rec.device
        if rec.device.startswith("cuda") and not torch.cuda.is_available():
            raise InvalidInputError(
                f"the fit ran on {rec.device}, but CUDA is not available on this machine; give "
                "--device cpu to simulate the same noise on the CPU (close to the fit's result, "
                "not identical)",
                "--device",
            )
    elif str(args.device).split(":")[0] != rec.device.split(":")[0]:
        other_device = True
        warnings.warn(
            f"--device {args.device}: the fit ran on {rec.device}; the noise is the same but the "
            "arithmetic rounds differently, so the result is close to the fit's, not identical",
            stacklevel=3,
        )
    if "engine" in given:
        if rec.engine_used is not None and args.engine not in ("auto", rec.engine_used):
            warnings.warn(
                f"--engine {args.engine}: the fit ran on the {rec.engine_used!r} engine "
                f"(settings.engine_used in {rec.path}); "
                + (
                    "the torch engine draws other noise than the Philox kernels, so the result "
                    "is not the fit's"
                    if "torch" in (args.engine, rec.engine_used)
                    else "the noise is the same but the arithmetic rounds differently"
                ),
                stacklevel=3,
            )
    else:
        args.engine = _fit_engine(rec, args.device, other_device)
    if args.params is None:
        args.params = str(rec.folder / "best_parameters.csv")
    if args.sc is None and not rec.sc_template:
        from delssome_norms.fit.reproduce import find_fit_sc

        args.sc = str(find_fit_sc(rec, "--sc"))
    return rec


PHILOX_ENGINES = {"cpu": "kernel", "cuda": "triton"}
"""The engine of each device that draws the Philox noise stream (the same on both)."""


def _fit_engine(rec, device, other_device: bool) -> str:
    """The engine that reproduces the fit's noise on ``device``: the one the fit ran on
    (``settings.engine_used``), or on another device its Philox counterpart. Refused, naming
    --engine and --device, where that engine is not available here (``auto`` would silently
    take another engine, whose result then differs from the fit's)."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.reproduce import engine_unavailable

    used = rec.engine_used
    if used is None:  # a fit stored before settings.engine_used was recorded
        if other_device and rec.engine != "torch":
            return "auto"  # the Philox engine of the other device: the same noise stream
        return rec.engine
    kind = str(device).split(":")[0]
    engine = PHILOX_ENGINES.get(kind, used) if other_device and used != "torch" else used
    why = engine_unavailable(engine, device, 0)
    if why is None:
        return engine
    other = [k for k, e in PHILOX_ENGINES.items() if k != kind and e != "torch"]
    if used == "torch":
        alternative = "no other engine draws the torch engine's noise"
    else:
        alternative = (
            f"the {PHILOX_ENGINES[other[0]]!r} engine draws the same noise: give --device "
            f"{other[0]} where it is available (close to the fit's result, not identical)"
        )
    raise InvalidInputError(
        f"the fit's simulations ran on the {used!r} engine (settings.engine_used in {rec.path}), "
        f"and {why}, so its noise cannot be drawn here with --device {device}; {alternative}, "
        "or give --engine torch (or auto) to simulate anyway with other noise (statistically "
        "alike, not the fit's numbers), or run this on a machine where it is available",
        "--engine",
    )


def _same(a, b) -> bool:
    if isinstance(b, float) or isinstance(a, float):
        return a is not None and math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return a == b


def _check_fit_sc(record, sc_raw, sc_name: str, given: str | None) -> None:
    """Refuse an SC whose digest is not the one the fit recorded (``provenance.sc.sha256``)."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.io.digest import arrays_sha256

    if record.sc_sha256 and arrays_sha256(sc_raw) != record.sc_sha256:
        raise InvalidInputError(
            f"{sc_name} is not the SC this fit used (its digest differs from provenance.sc.sha256 "
            f"in {record.path}); give the fit's SC",
            "--sc" if given is not None else "--from-run",
        )


def _compare_with_fit(record, means, params: str | None = None) -> str:
    """Compare the simulation with the fit's EI_ratio.csv: the end of the summary line (or a
    warning when they differ, naming first parameters ``params`` that are not the fit's). The
    fit's E/I is the winner's times ``exp(level_shift_log)``."""
    import math

    import numpy as np
    import pandas as pd

    from delssome_norms.fit.reproduce import largest_relative_difference

    path = record.folder / "EI_ratio.csv"
    if record.combined:
        return (
            f"; the fit's {path.name} combines several searches (--combine mean), so it is not "
            "this simulation alone"
        )
    if not path.is_file():
        return f"; no {path.name} beside {record.path.name} to compare with"
    fit = pd.read_csv(path)
    cols = ("S_E", "S_I", "EI_ratio")
    if any(c not in fit.columns for c in cols) or len(fit) != len(means["S_E"]):
        return f"; {path} is not a fit's EI_ratio.csv of these regions: not compared"
    shift = record.level_shift_log
    ours = {**means, "EI_ratio": np.asarray(means["EI_ratio"]) * math.exp(shift)}
    same = {c: np.array_equal(fit[c].to_numpy(dtype=np.float64), ours[c]) for c in cols}
    if shift == 0.0 and all(same.values()):
        return f"; S_E, S_I and E/I identical to the fit's {path}"
    if (
        same["S_E"]
        and same["S_I"]
        and largest_relative_difference(ours["EI_ratio"], fit["EI_ratio"].to_numpy(dtype=np.float64))
        < 1e-12
    ):
        return (
            f"; S_E and S_I identical to the fit's {path}, whose E/I is this E/I times "
            f"{math.exp(shift):.4g} (its level centred in the near-optimal set)"
        )
    from delssome_norms.cli.simulate_inputs import other_fits_parameters

    worst = max(largest_relative_difference(ours[c], fit[c].to_numpy(dtype=np.float64)) for c in cols)
    other = other_fits_parameters(params, record)
    warnings.warn(
        f"the simulation differs from the fit's {path} (largest relative difference {worst:.3g}): "
        + (
            other
            or "another device, engine or CPU than the fit's (the C++ kernel is compiled for "
            "this machine's CPU), or edited parameters"
        ),
        stacklevel=3,
    )
    said = f"; differs from the fit's {path} (largest relative difference {worst:.3g})"
    return said + ("; --params is not this fit's parameters file" if other else "")


def _timing(args: argparse.Namespace):
    """The simulation's timing, a problem with it named by its option."""
    from delssome_norms import io
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.io.checks import MAX_SCAN_LENGTH
    from delssome_norms.model import SimulationTiming
    from delssome_norms.model.timing import timing_option

    tr, scan = io.check_timing(args.tr, args.scan_length, "--tr/--scan-length")
    if args.burn_in is not None and args.burn_in > MAX_SCAN_LENGTH:
        raise InvalidInputError(
            f"{args.burn_in:g} s is implausible (at most {MAX_SCAN_LENGTH:g} s); it is in seconds",
            "--burn-in",
        )
    try:
        return SimulationTiming(
            tr=tr,
            scan_length=scan,
            dt=args.dt,
            burn_in=args.burn_in,
            fcd_window=args.fcd_window,
            warmup_steps=args.warmup_steps,
        )
    except InvalidInputError as err:
        flag = timing_option(getattr(err, "field", None)) or "timing options"
        if flag == "--fcd-window" and args.fcd_window is None:
            flag += " (default round(60 / TR) frames)"
        raise InvalidInputError(err.problem, flag) from None


def _check_step(params, sc, dt: float, source: str) -> None:
    """Refuse, before simulating, parameters without an FIC solution or whose fixed point an
    Euler step of ``dt`` cannot follow (the simulation would be marked invalid)."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.model.batch import dt_advice, euler_dt_limit, euler_stable
    from delssome_norms.model.fic import solve_fic

    fic = solve_fic(params.wEE, params.wEI, params.G, sc)
    if not bool(fic.converged.all()):
        raise InvalidInputError(
            "feedback inhibition control has no solution for these parameters (no inhibitory "
            "fixed point with r_E = 3 Hz); check wEE, wEI and G",
            source,
        )
    if not bool(euler_stable(fic, dt).all()):
        limit = float(euler_dt_limit(fic)[0])
        raise InvalidInputError(
            f"an Euler step of {dt:g} s is unstable at the fixed point of these parameters "
            f"(the inhibitory population relaxes faster than 2 / dt); {dt_advice(limit)}",
            "--dt",
        )


def _check_out_dir(args: argparse.Namespace) -> Path:
    """Create --out-dir, refusing the folder of an ``estimate-ei`` fit (its EI_ratio.csv and
    fit_quality.csv would be overwritten) and an input that is one of the outputs."""
    import os

    from delssome_norms import io
    from delssome_norms.errors import InvalidInputError

    out = Path(args.out_dir)
    if (out / "run.json").is_file() or (out / "checkpoint").is_dir():
        raise InvalidInputError(
            f"{out} holds an estimate-ei fit (run.json or checkpoint/); simulating there would "
            "overwrite its EI_ratio.csv and fit_quality.csv: choose another --out-dir",
            "--out-dir",
        )
    prepared = sorted(p.name for p in out.glob("*prepare.json"))
    # simulate.json, or an EI_ratio.csv beside them (prepare never writes one: a run of a version
    # before simulate.json), says simulate wrote the files there
    ours = (out / RECORD_FILE).is_file() or (out / "EI_ratio.csv").is_file()
    theirs = [] if ours else [n for n in OUTPUT_FILES if (out / n).is_file()]
    if prepared or theirs:
        raise InvalidInputError(
            f"{out} holds files simulate did not write ({', '.join((prepared + theirs)[:3])}: "
            "e.g. a subject's FC and FCD-CDF from prepare); simulating there would replace them: "
            "choose another --out-dir",
            "--out-dir",
        )
    inputs = (("--params", args.params), ("--sc", args.sc), ("--fc", args.fc))
    for option, path in (*inputs, ("--fcd-cdf", args.fcd_cdf)):
        for name in OUTPUT_FILES if path is not None else ():
            target = out / name
            if target.is_file() and os.path.samefile(path, target):
                raise InvalidInputError(
                    f"{path} is the {name} that this run writes to --out-dir; it would be "
                    "overwritten: copy it elsewhere or choose another --out-dir",
                    option,
                )
    return io.check_out_dir(out, "--out-dir", create=True)


def _warn_outside_regime(r_e, params, sc) -> None:
    """Warn when regions' time-averaged r_E leave the FIC regime (``FIC_RATE_BAND``): the E/I
    then describes another state of the model than the one FIC places at r_E = 3 Hz."""
    import numpy as np

    from delssome_norms.model import fic_stability_margin
    from delssome_norms.model.constants import FIC_RATE_BAND

    lo, hi = FIC_RATE_BAND
    outside = int(np.sum((r_e < lo) | (r_e > hi)))
    if not outside:
        return
    margin = float(fic_stability_margin(params.wEE, params.wEI, params.G, sc)[0])
    why = (
        f"their FIC fixed point is linearly unstable (margin {margin:.3g} /s), so the state "
        "leaves it; estimate-ei's stability gate ranks such parameters last"
        if margin >= 0
        else "the noise (sigma) carries the state away from the fixed point"
    )
    warnings.warn(
        f"{outside} of {len(r_e)} regions have a mean r_E outside {lo:g}-{hi:g} Hz (mean "
        f"{float(np.mean(r_e)):.3g} Hz; FIC places the fixed point at 3 Hz): {why}. The E/I "
        "describes that other state, not the FIC regime",
        stacklevel=2,
    )


class _progress:
    """tqdm progress bar over integration steps (silent when stderr is not a terminal)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar = None

    def __enter__(self):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=self.total, unit="step", unit_scale=True, disable=None, leave=False)
        return self._update

    def _update(self, done: int, total: int) -> None:
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc) -> None:
        self.bar.close()


def _in_parameter_order(path, regions: list[str] | None, what: str, n: int | None = None):
    """The SC or FC at ``path``, checked, with its regions in the order of the parameters'
    ``region`` column when both name their regions: reordered by name (with a warning), refused
    when they name other regions. A file without names, or parameters without them, is taken as
    it is (the parameters' order by contract)."""
    import warnings

    from delssome_norms.errors import InputWarning
    from delssome_norms.io import checks, named_regions

    named = named_regions.read_square(path, None, what)
    values = named.values
    if regions is None and named.kind == "own":
        warnings.warn(
            f"{path} names its regions but --params has no region column: taken in file order",
            InputWarning,
            stacklevel=2,
        )
    if regions is not None and named.names is not None and named.kind != "numbered":
        _, _, orders = named_regions.align_names({"--params": regions, str(path): named.names}, "file")
        order = orders[str(path)]
        if order is not None:
            warnings.warn(
                f"{path}: its regions are put in the order of the parameters' region column, by name",
                InputWarning,
                stacklevel=2,
            )
            values = named_regions.take_regions(values, order)
    check = checks.check_sc if what == "SC" else checks.check_fc
    return check(values, n, input_name=str(path))


def _parameter_regions(path, n: int) -> list[str] | None:
    """Names of a ``best_parameters.csv``'s ``region`` column in region_index order (None when
    it has none, or when its indices are not 0..n-1): ``simulate`` writes them into its
    ``EI_ratio.csv`` as the fit did."""
    from delssome_norms.io import ei_table as et

    cells = et.read_region_cells(path)
    if cells is None:
        return None
    indexed = {et.region_index_cell(k): name for _, k, name in cells}
    if len(cells) != n or sorted(indexed, key=lambda k: -1 if k is None else k) != list(range(n)):
        return None
    return [indexed[k] for k in range(n)]


def _template_sc(regions: list[str] | None, params: str):
    """The default DK68 template SC in the parameters' region order (their ``region`` names,
    any spelling the readers accept); parameters naming other regions are refused."""
    import numpy as np

    from delssome_norms.datasets import load_default_template
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.io.regions import DK68_REGIONS, match_region_order, region_match_key

    sc = np.asarray(load_default_template().sc)
    if regions is None or len(regions) != len(DK68_REGIONS):
        return sc  # unnamed: rows in DK68 order by contract (another count is refused later)
    order = match_region_order(regions, list(DK68_REGIONS))
    keys = [region_match_key(r) for r in regions]
    twice = [r for r, k in zip(regions, keys) if keys.count(k) > 1]
    if twice:
        raise InvalidInputError(f"its region column names {twice[0]!r} more than once", params)
    if order is None:
        known = {region_match_key(r) for r in DK68_REGIONS}
        other = [r for r in regions if region_match_key(r) not in known] or regions
        raise InvalidInputError(
            f"its region column names regions that are not the default template's DK68 "
            f"regions (e.g. {other[0]!r}): give --sc with the SC of these regions",
            params,
        )
    return sc[np.ix_(order, order)]


def _record(args, timing, batch_size, row, engine, sc_raw, n_valid) -> dict:
    """``simulate.json``: what made the files of --out-dir."""
    from delssome_norms import __version__
    from delssome_norms.io.digest import arrays_sha256

    return {
        "kind": "delssome_norms simulate",
        "format_version": 1,
        "delssome_norms_version": __version__,
        "params": _file_record(args.params),
        "sc": {
            "path": None if args.sc is None else str(Path(args.sc).resolve()),
            "source": "default DK68 template" if args.sc is None else "file",
            "sha256": arrays_sha256(sc_raw),
            "sc_max": args.sc_max,
        },
        # the empirical data fit_quality.csv scores against (None when not scored)
        "fc": _file_record(args.fc),
        "fcd_cdf": _file_record(args.fcd_cdf),
        "timing": timing.to_record(),
        "n_dup": args.n_dup,
        "valid_duplicates": n_valid,
        "seed": args.seed,
        "batch_row": row,
        "batch_size": batch_size,
        "engine": engine,
        "dtype": args.dtype,
        "device": str(args.device),
        "from_run": None if args.from_run is None else str(Path(args.from_run).resolve()),
    }


def _file_record(path) -> dict | None:
    """An input file's absolute path and SHA-256 of its bytes (None when it was not given)."""
    from delssome_norms.io import file_sha256

    if path is None:
        return None
    return {"path": str(Path(path).resolve()), "sha256": file_sha256(path)}
