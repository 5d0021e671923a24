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


def run(args: argparse.Namespace) -> int:
    """Read the inputs, simulate, and write EI_ratio.csv, FC.csv, FCD_CDF.csv (+ fit_quality.csv)."""
    import numpy as np
    import torch

    from delssome_norms import io
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.model import (
        PFICParams,
        SimulationTiming,
        cost,
        scale_sc,
        simulate,
        summarize,
    )

    if (args.fc is None) != (args.fcd_cdf is None):
        raise InvalidInputError("give both --fc and --fcd-cdf to score the simulation, or neither")
    if args.n_dup < 1:
        raise InvalidInputError(f"must be at least 1, got {args.n_dup}", "--n-dup")
    if not (math.isfinite(args.dt) and args.dt > 0):
        raise InvalidInputError(f"must be a positive number of seconds, got {args.dt}", "--dt")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError("CUDA is not available on this machine; use --device cpu", "--device")
    if Path(args.out_dir).exists() and not Path(args.out_dir).is_dir():
        raise InvalidInputError(f"{args.out_dir} exists and is not a folder", "--out-dir")
    tr, scan = io.check_timing(args.tr, args.scan_length, "--tr/--scan-length")
    try:
        timing = SimulationTiming(
            tr=tr,
            scan_length=scan,
            dt=args.dt,
            burn_in=args.burn_in,
            fcd_window=args.fcd_window,
            warmup_steps=args.warmup_steps,
        )
    except InvalidInputError as err:
        raise err.with_source("timing options") from None

    par = io.read_parameters(args.params)
    n = len(par["wEE"])
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

    io.check_out_dir(args.out_dir, "--out-dir", create=False)  # before the simulation
    dtype = getattr(torch, args.dtype)
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
            "no duplicate gave a valid simulation (values blew up to NaN/inf or left the range "
            "of the gating variables, or --dt is too coarse for these parameters: see the "
            "warning); check wEE, wEI, sigma, G and use --dt 0.005 s or finer",
            args.params,
        )
    if n_valid < args.n_dup:
        warnings.warn(
            f"{args.n_dup - n_valid} of {args.n_dup} duplicates blew up (NaN/inf) and were "
            "left out of the averages",
            stacklevel=2,
        )
    summary = summarize(res, timing, fcd_products=res.bold.dtype)  # written out: full precision
    out = Path(args.out_dir)

    def mean(x):
        return res.mean_over_valid(x)[0].double().cpu().numpy()

    ei = res.ei_ratio[0].double().cpu().numpy()
    r_e = mean(res.r_e)
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
