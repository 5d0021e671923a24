"""``delssome-norms simulate``: simulate one pFIC parameter set and write its E/I, FC and FCD-CDF."""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

from delssome_norms.cli import options
from delssome_norms.cli.main import add_command

DEVICES = ("cpu", "cuda")


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
        "duplicates. Writes EI_ratio.csv (region_index, EI_ratio, S_E, S_I, r_E), FC.csv and "
        "FCD_CDF.csv to --out-dir, and fit_quality.csv (stage 'simulate') when --fc and "
        "--fcd-cdf are given. Defaults follow the paper's final test stage (dt 0.0005 s).",
    )
    p.add_argument(
        "--params",
        required=True,
        metavar="CSV",
        help="regional parameters: region_index, wEE, wEI, sigma, G (best_parameters.csv layout)",
    )
    p.add_argument(
        "--sc", metavar="CSV", help="structural connectivity (N x N); default: the DK68 template"
    )
    p.add_argument("--tr", type=float, required=True, help="repetition time (seconds)")
    p.add_argument("--scan-length", type=float, required=True, help="scan length (seconds)")
    p.add_argument("--out-dir", required=True, metavar="DIR", help="folder for the outputs")
    p.add_argument("--fc", metavar="CSV", help="empirical FC to score the simulation against")
    p.add_argument("--fcd-cdf", metavar="CSV", help="empirical FCD-CDF (10000 x 1)")
    options.defer(p, _add_simulation_options)
    p.set_defaults(func=run)


def _add_simulation_options(p: argparse.ArgumentParser) -> None:
    """The fit's options with the defaults of its final test stage (a noise seed of its own)."""
    options.add_fit_options(
        p,
        ("dt_test", "burn_in", "fcd_window", "warmup_steps", "n_dup", "seed", "device", "dtype"),
        overrides={
            "dt_test": {"flag": "--dt", "help": "integration step, s"},
            "n_dup": {"help": "noise duplicates"},
            "seed": {"default": 1, "help": "noise seed"},
            "device": {"choices": DEVICES, "help": "torch device"},
        },
    )
    p.add_argument(
        "--sc-max", type=float, default=0.02, help="SC is scaled to this maximum (default 0.02)"
    )


OUTPUT_FILES = ("EI_ratio.csv", "FC.csv", "FCD_CDF.csv", "fit_quality.csv")
"""What ``simulate`` writes to --out-dir (``fit_quality.csv`` only when scoring)."""


def run(args: argparse.Namespace) -> int:
    """Read the inputs, simulate, and write EI_ratio.csv, FC.csv, FCD_CDF.csv (+ fit_quality.csv)."""
    import numpy as np
    import torch

    from delssome_norms import io
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.model import PFICParams, cost, scale_sc, simulate, summarize

    if (args.fc is None) != (args.fcd_cdf is None):
        raise InvalidInputError("give both --fc and --fcd-cdf to score the simulation, or neither")
    if args.n_dup < 1:
        raise InvalidInputError(f"must be at least 1, got {args.n_dup}", "--n-dup")
    if not (math.isfinite(args.dt) and args.dt > 0):
        raise InvalidInputError(f"must be a positive number of seconds, got {args.dt}", "--dt")
    if not 0 <= args.seed < 2**63:
        raise InvalidInputError(f"must be an integer in [0, 2**63), got {args.seed}", "--seed")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("CUDA is not available on this machine; use --device cpu", "--device")
    if Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():
        raise InvalidInputError(f"{args.out_dir} exists and is not a folder", "--out-dir")
    timing = _timing(args)

    par = io.read_parameters(args.params)
    n = len(par["wEE"])
    if n < 3:
        raise InvalidInputError(
            f"has {n} region row(s); FC and FCD need at least 3 regions (a correlation of "
            "region pairs between windows)",
            args.params,
        )
    if args.sc is not None:
        sc_raw, sc_name = io.read_sc(args.sc), f"the SC {args.sc}"
    else:
        from delssome_norms.datasets import load_default_template

        sc_raw, sc_name = np.asarray(load_default_template().sc), "the default DK68 template SC"
    if sc_raw.shape[0] != n:
        raise InvalidInputError(
            f"has {n} region rows but {sc_name} has {sc_raw.shape[0]} regions; the "
            "parameters and the SC must describe the same regions",
            args.params,
        )
    if not (math.isfinite(args.sc_max) and args.sc_max > 0):
        raise InvalidInputError(f"must be a positive number, got {args.sc_max}", "--sc-max")
    sc = scale_sc(sc_raw, max_value=args.sc_max)
    fc_emp = io.read_fc(args.fc, n) if args.fc else None
    cdf_emp = io.read_fcd_cdf(args.fcd_cdf) if args.fcd_cdf else None
    params = PFICParams(par["wEE"][None], par["wEI"][None], par["sigma"][None], [float(par["G"])])
    _check_step(params, sc, timing.dt, args.params)

    out = _check_out_dir(args)  # before the simulation
    dtype = getattr(torch, args.dtype)
    with io.OutDirLock(out, "--out-dir"):
        with _progress(timing.total_steps) as progress:
            res = simulate(
                params,
                sc,
                timing,
                n_dup=args.n_dup,
                seed=args.seed,
                device=args.device,
                dtype=dtype,
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

        def mean(x):
            return res.mean_over_valid(x)[0].double().cpu().numpy()

        ei = res.ei_ratio[0].double().cpu().numpy()
        r_e = mean(res.r_e)
        _warn_outside_regime(r_e, params, sc)
        if fc_emp is None:  # a fit_quality.csv of an earlier run does not describe this one
            (out / "fit_quality.csv").unlink(missing_ok=True)
        io.write_ei_ratio(out / "EI_ratio.csv", ei, mean(res.s_e), mean(res.s_i), r_e)
        io.write_matrix(summary.fc[0].double().cpu().numpy(), out / "FC.csv")
        io.write_matrix(summary.fcd_cdf[0].double().cpu().numpy(), out / "FCD_CDF.csv")
        line = (
            f"E/I mean {ei.mean():.4f} (regions {ei.min():.4f}-{ei.max():.4f}), "
            f"r_E mean {r_e.mean():.3f} Hz, {timing.n_frames} frames x {args.n_dup} duplicates"
        )
        if fc_emp is not None:
            losses = cost(summary, fc_emp, cdf_emp).as_dict(0)
            io.write_fit_quality(out / "fit_quality.csv", {"simulate": losses})
            line += (
                f"; corr_loss {losses['corr_loss']:.4f}, l1_loss {losses['l1_loss']:.4f}, "
                f"ks_loss {losses['ks_loss']:.4f}"
            )
    print(f"{line}; wrote {out}")
    return 0


def _timing(args: argparse.Namespace):
    """The simulation's timing, a problem with it named by its option."""
    from delssome_norms import io
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.model import SimulationTiming
    from delssome_norms.model.timing import timing_option

    tr, scan = io.check_timing(args.tr, args.scan_length, "--tr/--scan-length")
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
