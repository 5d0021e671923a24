"""Benchmark: lockstep speed-up and the per-subject cost of a full default fit on CPU (issue 5).

1. **Lockstep vs sequential.** One train generation (simulate → summarize → cost, what the train
   stage does per generation) for K = 8 subjects: one lockstep call with all 8 x popsize x n_dup
   simulations, against 8 calls one after another, same process, same CPU, alternating order.
   Speed-up = sequential time / lockstep time (= ratio of subjects per hour). Run for each
   simulator engine available on CPU ("kernel": fused C++; "torch": plain PyTorch ops).
2. **Full default fit, per subject.** Measured cost per simulated step and simulation at one
   subject's train batch (100 x 3 simulations, N = 68), the FC/FCD summary of 1200-frame BOLD, and
   the test batch (5 x 3) at dt 0.0005 s, extrapolated to 100 generations + validation + test of
   an HCP scan (TR 0.72 s, 864 s, 72 s burn-in, 5000 warm-up steps). This is an extrapolation from
   shorter runs, labelled as such in the output.

The default scan (14.4 s, 20 frames) keeps the CPU run short but lets the FC/FCD summary weigh
more than in a real fit; ``--scan-length 864 --burn-in 72 --fcd-window 83`` times a generation at
HCP length (where the simulation dominates). Writes ``bench/results/lockstep.json`` (or
``--out``) and prints one line (progress goes to stderr). ``--quick`` uses popsize 20 and a
shorter scan (about 6 minutes on a quiet 2-core CPU, most of it the torch engine's sequential
calls; 11 minutes with ``--skip-full`` beside another 2-core job).

Verdict: PASS/FAIL compares the speed-up of the engine a fit uses on that device by default
(``simulate(engine="auto")``: the fused C++ kernel on CPU when it is built, the Triton kernel on
CUDA) with the 3x target; every engine's speed-up is reported beside it. When that engine is not
among ``--engines``, there is no verdict (``pass`` None).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _options import machine_info, results_file  # bench/ is on sys.path

from delssome_norms.cli.options import add_fit_options
from delssome_norms.datasets import load_default_template
from delssome_norms.fit.evaluate import EulerEvaluator
from delssome_norms.io import write_json
from delssome_norms.model import PFICParams, SimulationTiming, summarize
from delssome_norms.model import _kernel as kernel_mod
from delssome_norms.model.integrate import _choose_engine

RESULTS = Path(__file__).resolve().parent / "results" / "lockstep.json"
TARGET_SPEEDUP = 3.0
N = 68


def _params(b: int, rng: np.random.Generator) -> PFICParams:
    g = np.linspace(-1.7, 1.7, N)
    wei = rng.uniform(1.6, 2.2, (b, 1)) + 0.35 * g
    return PFICParams(
        wEE=rng.uniform(2.0, 3.0, (b, 1)) + 0.0 * g,
        wEI=wei,
        sigma=np.full((b, N), 0.0045),
        G=rng.uniform(0.8, 1.6, b),
    )


def _evaluator(
    k: int, timing: SimulationTiming, n_dup: int, engine: str, device: str = "cpu"
) -> EulerEvaluator:
    sc = np.array(load_default_template().sc)
    rng = np.random.default_rng(0)
    fc = np.stack([np.corrcoef(rng.standard_normal((200, N)).T) for _ in range(k)])
    cdf = np.tile(np.linspace(0, 1, 10001)[1:], (k, 1))
    return EulerEvaluator(fc, cdf, np.stack([sc] * k), timing, n_dup=n_dup, engine=engine, device=device)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def lockstep_vs_sequential(
    k: int, popsize: int, n_dup: int, timing: SimulationTiming, engine: str, reps: int, device: str
):
    ev = _evaluator(k, timing, n_dup, engine, device)
    rng = np.random.default_rng(1)
    params = _params(k * popsize, rng)
    index = torch.arange(k).repeat_interleave(popsize)
    ev(PFICParams(*(np.asarray(x)[:popsize] for x in params)), index[:popsize], seed=0)  # warm-up
    t_lock, t_seq = [], []
    for rep in range(reps):
        order = ("lock", "seq") if rep % 2 == 0 else ("seq", "lock")
        for what in order:
            print(f"  {engine} rep {rep}: {what} ...", file=sys.stderr, flush=True)
            _sync(device)
            t = time.perf_counter()
            if what == "lock":
                ev(params, index, seed=rep)
                _sync(device)
                t_lock.append(time.perf_counter() - t)
            else:
                for s in range(k):
                    sl = slice(s * popsize, (s + 1) * popsize)
                    ev(PFICParams(*(np.asarray(x)[sl] for x in params)), index[sl], seed=rep)
                _sync(device)
                t_seq.append(time.perf_counter() - t)
    lock, seq = float(np.median(t_lock)), float(np.median(t_seq))
    return {"engine": engine, "lockstep_s": lock, "sequential_s": seq, "speedup": seq / lock}


def per_subject_full_fit(engine: str, device: str = "cpu") -> dict:
    """Extrapolated wall time of a full default fit (100 x 100 x 3, HCP timing) for one subject."""
    short = SimulationTiming(
        tr=0.72, scan_length=14.4, dt=0.005, burn_in=7.2, fcd_window=10, warmup_steps=0
    )
    ev = _evaluator(1, short, 3, engine, device)
    rng = np.random.default_rng(2)
    # train / validation batch: 100 candidates x 3 duplicates
    p = _params(100, rng)
    from delssome_norms.model import simulate

    simulate(p, ev.sc, short, n_dup=3, seed=0, engine=engine, device=device)  # warm-up
    _sync(device)
    t = time.perf_counter()
    simulate(p, ev.sc, short, n_dup=3, seed=0, engine=engine, device=device)
    _sync(device)
    per_step_sim = (time.perf_counter() - t) / (short.total_steps * 300)
    # test batch: 5 candidates x 3 duplicates
    t = time.perf_counter()
    simulate(_params(5, rng), ev.sc, short, n_dup=3, seed=0, engine=engine, device=device)
    _sync(device)
    per_step_test = (time.perf_counter() - t) / short.total_steps
    # FC + FCD summary of 1200-frame BOLD, measured on 30 simulations and scaled to 300
    hcp = SimulationTiming(tr=0.72, scan_length=864.0, dt=0.005)
    from delssome_norms.model.integrate import SimulationResult

    ones = lambda *shape: torch.ones(*shape, device=device)  # noqa: E731
    fake = SimulationResult(
        bold=torch.randn(10, 3, hcp.n_frames, N, device=device),
        s_e=ones(10, 3, N),
        s_i=ones(10, 3, N),
        r_e=ones(10, 3, N),
        valid=ones(10, 3).bool(),
        w_ie=ones(10, N),
        ei_ratio=ones(10, N),
    )
    _sync(device)
    t = time.perf_counter()
    summarize(fake, hcp)
    _sync(device)
    summary_per_sim = (time.perf_counter() - t) / 30
    steps = hcp.total_steps
    test_steps = SimulationTiming(tr=0.72, scan_length=864.0, dt=0.0005).total_steps
    train_s = 100 * (steps * 300 * per_step_sim + 300 * summary_per_sim)
    val_s = steps * 300 * per_step_sim + 300 * summary_per_sim
    test_s = test_steps * per_step_test + 15 * summary_per_sim
    return {
        "engine": engine,
        "device": device,
        "kind": "extrapolation from measured short runs",
        "seconds_per_step_per_simulation_at_batch_300": per_step_sim,
        "seconds_per_step_test_batch_15": per_step_test,
        "summary_seconds_per_simulation_1200_frames": summary_per_sim,
        "hcp_steps_train": steps,
        "hcp_steps_test": test_steps,
        "train_s": train_s,
        "val_s": val_s,
        "test_s": test_s,
        "total_hours": (train_s + val_s + test_s) / 3600,
    }


def verdict(speed: list[dict], default_engine: str) -> bool | None:
    """Whether the default engine's lockstep speed-up meets the target (None: not measured)."""
    mine = [r for r in speed if r["engine"] == default_engine]
    return bool(mine[0]["speedup"] >= TARGET_SPEEDUP) if mine else None


def verdict_text(passed: bool | None, default_engine: str) -> str:
    if passed is None:
        return f"no verdict, {default_engine} not run"
    return "PASS" if passed else "FAIL"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help="popsize 20, 10-s scan, 1 repetition (~6 min on a quiet 2-core CPU)",
    )
    ap.add_argument("--k", type=int, default=8)
    add_fit_options(ap, ("cmaes.popsize", "n_dup"))
    ap.add_argument("--scan-length", type=float, default=14.4)
    add_fit_options(
        ap,
        ("burn_in", "dt_train", "fcd_window"),
        {
            "burn_in": {"default": 7.2, "help": "burn-in, s"},
            "dt_train": {"flag": "--dt", "help": "integration step, s"},
            "fcd_window": {"default": 10, "help": "FCD window, frames (HCP: 83)"},
        },
    )
    ap.add_argument("--out", default=None, help="JSON path (default: bench/results/lockstep*.json)")
    ap.add_argument("--reps", type=int, default=2)
    add_fit_options(ap, ("device",), {"device": {"choices": ("cpu", "cuda")}})
    ap.add_argument(
        "--engines", nargs="+", default=None, help="default: kernel torch (CPU), triton torch (CUDA)"
    )
    ap.add_argument("--skip-full", action="store_true", help="skip the full-fit extrapolation")
    args = ap.parse_args()
    if args.quick:
        args.popsize, args.scan_length, args.reps = 20, 10.08, 1
    if args.engines is None:
        args.engines = ["kernel", "torch"] if args.device == "cpu" else ["triton", "torch"]
    engines = [e for e in args.engines if e != "kernel" or kernel_mod.available()]
    if args.device == "cuda":
        from delssome_norms.model import _triton

        engines = [e for e in engines if e != "triton" or _triton.available(torch.device("cuda"))]
    timing = SimulationTiming(
        tr=0.72,
        scan_length=args.scan_length,
        dt=args.dt,
        burn_in=args.burn_in,
        fcd_window=args.fcd_window,
        warmup_steps=0,
    )
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load0 = os.getloadavg()
    speed = []
    for e in engines:
        speed.append(
            lockstep_vs_sequential(args.k, args.popsize, args.n_dup, timing, e, args.reps, args.device)
        )
        print(f"  {e}: {speed[-1]}", file=sys.stderr, flush=True)
    full = [] if args.skip_full else [per_subject_full_fit(e, args.device) for e in engines[:1]]
    if full:
        print(f"  full fit: {full[0]}", file=sys.stderr, flush=True)
    default_engine = _choose_engine("auto", torch.device(args.device))
    passed = verdict(speed, default_engine)
    result = {
        "benchmark": "lockstep",
        "when": started,
        "load_average_start": load0,
        "load_average_end": os.getloadavg(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device_name": torch.cuda.get_device_name() if args.device == "cuda" else None,
        "machine": machine_info(args.device),
        "config": vars(args),
        "timing": {"steps_per_simulation": timing.total_steps, "n_frames": timing.n_frames},
        "lockstep": speed,
        "target_speedup": TARGET_SPEEDUP,
        "verdict_engine": default_engine,
        "pass": passed,
        "full_default_fit_per_subject": full,
    }
    out = RESULTS if args.device == "cpu" else RESULTS.with_name(f"lockstep_{args.device}.json")
    out = Path(args.out) if args.out else results_file(out, None, args.quick)
    write_json(result, out)
    parts = ", ".join(f"{r['engine']} {r['speedup']:.2f}x" for r in speed)
    extra = (
        f"; full default fit ~ {full[0]['total_hours']:.1f} h/subject ({full[0]['engine']}, extrap.)"
        if full
        else ""
    )
    print(
        f"lockstep[{args.device}] K={args.k} popsize={args.popsize}: speed-up {parts} "
        f"(target {TARGET_SPEEDUP}x for the default engine {default_engine}: "
        f"{verdict_text(passed, default_engine)}){extra} -> {out}"
    )


if __name__ == "__main__":
    main()
