"""Simulator throughput: one HCP-size CMA-ES generation, one test-stage simulation, and a baseline.

* Generation: 100 parameter sets x 3 duplicates, N = 68, TR 0.72 s, 72 s burn-in + 864 s scan at
  dt 0.005 s (5000 warm-up steps), including FC, FCD and cost. Target on the 2-core CPU: <= 40 s.
* Test stage: 1 set x 3 duplicates at dt 0.0005 s, same length. Target: <= 3 min.
* Baseline: a straightforward per-step float64 torch loop, written the way the reference code
  integrates (new tensors every step, two ``torch.randn`` per step), on the same generation. It is
  timed over ``--baseline-steps`` steps and extrapolated linearly to the full run (its cost per step
  is constant); the speed-up compares whole generations (baseline integration + the same summary).

Each measurement runs in its own subprocess so that the peak memory (max RSS on CPU, max allocated
on CUDA) is its own. Wall-clock times depend on what else runs on the machine: the 1-minute load
average is recorded and process CPU time is reported beside wall time. Results are merged into
``bench/results/simulate.json`` under the device type (``cpu`` or ``cuda``, with ``_<engine>`` for
a named engine and ``_quick`` for a smoke run); the section records the full device (``cuda:1``)
and its GPU name. One summary line is printed.

Usage: ``python bench/simulate.py [--device cpu|cuda|cuda:N] [--engine auto|kernel|torch|triton]
[--threads 2] [--quick]``
(on CUDA the test-stage simulation is timed over ``--test-fraction`` of its steps and extrapolated;
``--scale-sets`` adds a many-subjects throughput run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from _options import machine_info, results_file  # bench/ is on sys.path

from delssome_norms.errors import InvalidInputError
from delssome_norms.io import write_json
from delssome_norms.model.devices import check_device
from delssome_norms.model.integrate import ENGINES

GEN_LIMIT_S, TEST_LIMIT_S, SPEEDUP_MIN = 40.0, 180.0, 5.0
RESULTS = Path(__file__).parent / "results" / "simulate.json"


# ------------------------------------------------------------------------------------------------
# inputs
# ------------------------------------------------------------------------------------------------
def _inputs(n_sets: int, seed: int = 0):
    from delssome_norms.datasets import load_default_template
    from delssome_norms.model import PFICParams, scale_sc

    sc = scale_sc(np.asarray(load_default_template().sc, dtype=np.float64))
    n = sc.shape[0]
    rng = np.random.default_rng(seed)
    # a CMA-ES-like population: smooth regional profiles inside the docs/science.md §5 bounds
    profile = rng.standard_normal(n)
    base_ee, base_ei = rng.uniform(1.5, 6.0, (n_sets, 1)), rng.uniform(1.5, 4.5, (n_sets, 1))
    wee = np.clip(base_ee + 0.5 * rng.standard_normal((n_sets, 1)) * profile, 1, 10)
    wei = np.clip(base_ei - 0.3 * rng.standard_normal((n_sets, 1)) * profile, 0, 5)
    sigma = np.clip(rng.uniform(0.002, 0.008, (n_sets, 1)) + 0.0 * profile, 0.0005, 0.01)
    params = PFICParams(wee, wei, np.broadcast_to(sigma, (n_sets, n)).copy(), rng.uniform(0, 2, n_sets))
    fc_emp = np.corrcoef(rng.standard_normal((n, 1200)) + rng.standard_normal(1200))
    cdf_emp = np.linspace(0.0, 1.0, 10000)
    return params, sc, fc_emp, cdf_emp


def _timing(dt: float, quick: bool):
    from delssome_norms.model import SimulationTiming

    if quick:
        return SimulationTiming(tr=0.72, scan_length=86.4, dt=dt, burn_in=7.2, warmup_steps=500)
    return SimulationTiming(tr=0.72, scan_length=864.0, dt=dt)  # burn-in 72 s, window 83


def device_arg(value: str) -> str:
    """``--device``: ``cpu``, ``cuda`` or ``cuda:N`` (anything else is an argparse error)."""
    if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
        raise argparse.ArgumentTypeError(f"unknown device {value!r}; use cpu, cuda or cuda:N")
    return value


def _is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def result_key(device: str, engine: str = "auto", quick: bool = False) -> str:
    """Key of a run in ``simulate.json``: the device type (``cuda:1`` is stored under ``cuda``, as
    the docs and earlier results read it), ``_<engine>`` for a named engine, ``_quick``."""
    key = torch.device(device).type + ("" if engine == "auto" else f"_{engine}")
    return key + ("_quick" if quick else "")


def _sync(device: str) -> None:
    if _is_cuda(device):
        torch.cuda.synchronize(device)


def _peak(device: str) -> int:
    if _is_cuda(device):
        return int(torch.cuda.max_memory_allocated(device))
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


# ------------------------------------------------------------------------------------------------
# measurements (each in its own subprocess)
# ------------------------------------------------------------------------------------------------
def measure_generation(device: str, quick: bool, n_sets: int, engine: str = "auto") -> dict:
    from delssome_norms.model import cost, simulate, summarize
    from delssome_norms.model.summary import fcd_products_name

    params, sc, fc_emp, cdf_emp = _inputs(n_sets)
    timing = _timing(0.005, quick)
    _warm_up(device, engine)
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate(params, sc, timing, n_dup=3, seed=1, device=device, engine=engine)
    _sync(device)
    t1, c1 = time.perf_counter(), time.process_time()
    loss = cost(summarize(res, timing), fc_emp, cdf_emp)
    _sync(device)
    t2, c2 = time.perf_counter(), time.process_time()
    sims = n_sets * 3
    region_steps = sims * sc.shape[0] * timing.total_steps
    return {
        "n_sets": n_sets,
        "n_dup": 3,
        "n_regions": sc.shape[0],
        "steps": timing.total_steps,
        "frames": timing.n_frames,
        "engine": _engine_name(device, engine),
        "fcd_products": fcd_products_name(res.bold.dtype, device),
        "seconds": t2 - t0,
        "simulate_seconds": t1 - t0,
        "summary_cost_seconds": t2 - t1,
        "cpu_seconds": c2 - c0,
        "simulate_cpu_seconds": c1 - c0,
        "summary_cost_cpu_seconds": c2 - c1,
        "region_steps_per_s": region_steps / (t1 - t0),
        "peak_memory_bytes": _peak(device),
        "valid_sets": int(res.valid_set.sum()),
        "finite_losses": int(torch.isfinite(loss.total).sum()),
    }


def measure_test_stage(device: str, quick: bool, fraction: float, engine: str = "auto") -> dict:
    from delssome_norms.model import SimulationTiming, simulate

    params, sc, *_ = _inputs(1)
    full = _timing(0.0005, quick)
    timing = full
    if fraction < 1.0:  # a shorter scan with the same per-step cost, extrapolated
        frames = max(full.fcd_window + 2, int(full.n_frames * fraction))
        timing = SimulationTiming(
            tr=full.tr,
            scan_length=frames * full.tr,
            dt=full.dt,
            burn_in=full.burn_in,
            warmup_steps=full.warmup_steps,
        )
    _warm_up(device, engine)
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    simulate(params, sc, timing, n_dup=3, seed=1, device=device, engine=engine)
    _sync(device)
    el, cpu = time.perf_counter() - t0, time.process_time() - c0
    scale = full.total_steps / timing.total_steps
    return {
        "n_sets": 1,
        "n_dup": 3,
        "dt": full.dt,
        "steps": full.total_steps,
        "steps_timed": timing.total_steps,
        "extrapolated": scale > 1.0,
        "engine": _engine_name(device, engine),
        "seconds": el * scale,
        "cpu_seconds": cpu * scale,
        "region_steps_per_s": 3 * sc.shape[0] * timing.total_steps / el,
        "peak_memory_bytes": _peak(device),
    }


def baseline_loop(params, sc, timing, device: str, n_steps: int, n_dup: int = 3) -> float:
    """Per-step float64 loop in the style of the reference code; returns seconds per step."""
    from delssome_norms.model import PFIC_CONSTANTS, balloon_derived, solve_fic

    c = PFIC_CONSTANTS
    dev = torch.device(device)
    f64 = torch.float64
    wee = torch.as_tensor(params.wEE, dtype=f64)
    wei = torch.as_tensor(params.wEI, dtype=f64)
    G = torch.as_tensor(params.G, dtype=f64)
    sc_t = torch.as_tensor(sc, dtype=f64)
    fic = solve_fic(wee, wei, G, sc_t)
    rep = lambda t: t.T.repeat(1, n_dup).to(dev)  # noqa: E731  (N, M) layout as the reference
    w_ee, w_ei, w_ie = rep(wee), rep(wei), rep(fic.w_ie)
    sigma = rep(torch.as_tensor(params.sigma, dtype=f64))
    g = G.repeat(n_dup).to(dev)
    sc_t = sc_t.to(dev)
    N, M = w_ee.shape
    dt = timing.dt
    d = balloon_derived()
    S_E = torch.full((N, M), fic.s_e, dtype=f64, device=dev)
    S_I = torch.full((N, M), c.s_i_init, dtype=f64, device=dev)
    z = torch.zeros((N, M), dtype=f64, device=dev)
    f, v, q = torch.ones_like(z), torch.ones_like(z), torch.ones_like(z)
    acc_e, acc_i, acc_r = torch.zeros_like(z), torch.zeros_like(z), torch.zeros_like(z)
    bold = torch.zeros((N, M, timing.n_samples), dtype=f64, device=dev)
    spt = timing.steps_per_tr
    _sync(device)
    t0 = time.perf_counter()
    for t in range(n_steps):
        I_E = c.W_E * c.I0 + w_ee * c.J_NMDA * S_E + g * c.J_NMDA * torch.matmul(sc_t, S_E) - w_ie * S_I
        I_I = c.W_I * c.I0 + w_ei * c.J_NMDA * S_E - S_I
        r_E = (c.a_E * I_E - c.b_E) / (1 - torch.exp(-c.d_E * (c.a_E * I_E - c.b_E)))
        r_I = (c.a_I * I_I - c.b_I) / (1 - torch.exp(-c.d_I * (c.a_I * I_I - c.b_I)))
        dSE = -S_E / c.tau_E + (1 - S_E) * c.gamma_kin * r_E
        dSI = -S_I / c.tau_I + r_I
        S_E = S_E + dSE * dt + sigma * torch.randn(N, M, dtype=f64, device=dev) * dt**0.5
        S_I = S_I + dSI * dt + sigma * torch.randn(N, M, dtype=f64, device=dev) * dt**0.5
        dz = S_E - 0.65 * z - 0.41 * (f - 1)
        dv = (f - v ** (1 / 0.33)) / 0.98
        dq = (f / 0.34 * (1 - (1 - 0.34) ** (1 / f)) - q * v ** (1 / 0.33 - 1)) / 0.98
        z, f, v, q = z + dz * dt, f + z * dt, v + dv * dt, q + dq * dt
        acc_e, acc_i, acc_r = acc_e + S_E, acc_i + S_I, acc_r + r_E
        if (t + 2) % spt == 0:
            k = (t + 2) // spt - 1
            bold[:, :, k] = d.scale * (d.k1 * (1 - q) + d.k2 * (1 - q / v) + d.k3 * (1 - v))
    _sync(device)
    return (time.perf_counter() - t0) / n_steps


def measure_baseline(device: str, quick: bool, n_sets: int, n_steps: int) -> dict:
    params, sc, *_ = _inputs(n_sets)
    timing = _timing(0.005, quick)
    _warm_up(device)
    baseline_loop(params, sc, timing, device, 20)  # warm-up
    per_step = baseline_loop(params, sc, timing, device, n_steps)
    return {
        "steps_timed": n_steps,
        "seconds_per_step": per_step,
        "simulate_seconds_extrapolated": per_step * timing.total_steps,
        "region_steps_per_s": n_sets * 3 * sc.shape[0] / per_step,
    }


def measure_scale(device: str, n_sets: int, engine: str = "auto") -> dict:
    """Many simulations in one batch (many subjects at once): throughput of the integrator."""
    from delssome_norms.model import SimulationTiming, simulate

    params, sc, *_ = _inputs(n_sets)
    timing = SimulationTiming(tr=0.72, scan_length=72.0, dt=0.005, burn_in=7.2, warmup_steps=0)
    _warm_up(device, engine)
    _sync(device)
    t0 = time.perf_counter()
    simulate(params, sc, timing, n_dup=3, seed=1, device=device, engine=engine)
    _sync(device)
    el = time.perf_counter() - t0
    return {
        "engine": _engine_name(device, engine),
        "n_simulations": n_sets * 3,
        "steps": timing.total_steps,
        "seconds": el,
        "region_steps_per_s": n_sets * 3 * sc.shape[0] * timing.total_steps / el,
        "peak_memory_bytes": _peak(device),
    }


def _warm_up(device: str, engine: str = "auto") -> None:
    """Build the CPU kernel / compile the GPU kernel / initialise CUDA outside the timed region."""
    from delssome_norms.model import PFICParams, SimulationTiming, simulate

    timing = SimulationTiming(
        tr=0.72, scan_length=7.2, dt=0.005, burn_in=0.72, fcd_window=3, warmup_steps=10
    )
    _, sc, *_ = _inputs(1)  # the benchmark's size, so that a GPU kernel compiles here
    n = sc.shape[0]
    p = PFICParams(np.full((1, n), 3.0), np.full((1, n), 3.0), np.full((1, n), 0.005), np.ones(1))
    simulate(p, sc, timing, n_dup=1, device=device, engine=engine)  # warm-up and recorded steps
    if _is_cuda(device):
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def _engine_name(device: str, engine: str) -> str:
    from delssome_norms.model.integrate import _choose_engine

    chosen = _choose_engine(engine, torch.device(device))
    names = {"kernel": "fused C++ kernel", "triton": "fused Triton kernel"}
    if chosen == "torch":
        return "torch + CUDA graphs" if _is_cuda(device) else "torch"
    return names[chosen]


# ------------------------------------------------------------------------------------------------
# driver
# ------------------------------------------------------------------------------------------------
def _worker(args) -> None:
    torch.set_num_threads(args.threads)
    name = args.worker
    if name == "generation":
        out = measure_generation(args.device, args.quick, args.n_sets, args.engine)
    elif name == "test_stage":
        out = measure_test_stage(args.device, args.quick, args.test_fraction, args.engine)
    elif name == "baseline":
        out = measure_baseline(args.device, args.quick, args.n_sets, args.baseline_steps)
    elif name == "scale":
        out = measure_scale(args.device, args.scale_sets, args.engine)
    else:
        raise SystemExit(f"unknown worker {name}")
    print("RESULT " + json.dumps(out))


def _run_worker(name: str, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, "--device", args.device, "--engine", args.engine]
    cmd += ["--threads", str(args.threads), "--n-sets", str(args.n_sets)]
    cmd += ["--baseline-steps", str(args.baseline_steps), "--test-fraction", str(args.test_fraction)]
    cmd += ["--scale-sets", str(args.scale_sets)] + (["--quick"] if args.quick else [])
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--device", type=device_arg, default="cpu", help="cpu, cuda or cuda:N (default cpu)"
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="simulator engine (default auto: fused C++ kernel on CPU, fused Triton kernel on CUDA)",
    )
    parser.add_argument("--threads", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 10 sets, 86 s scan")
    parser.add_argument("--n-sets", type=int, default=None, help="parameter sets per generation")
    parser.add_argument("--baseline-steps", type=int, default=None, help="baseline steps timed")
    parser.add_argument("--test-fraction", type=float, default=None, help="test-stage steps timed")
    parser.add_argument("--scale-sets", type=int, default=None, help="sets in the scaling run")
    parser.add_argument("--skip-test-stage", action="store_true")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out = str(results_file(RESULTS, args.out, args.quick))
    cuda = _is_cuda(args.device)
    if args.n_sets is None:
        args.n_sets = 10 if args.quick else 100
    if args.baseline_steps is None:
        args.baseline_steps = 200 if args.quick else 2000
    if args.test_fraction is None:
        args.test_fraction = 0.1 if (cuda or args.quick) else 1.0
    if args.scale_sets is None:
        args.scale_sets = (100 if args.quick else 1000) if cuda else 0
    if args.worker:
        _worker(args)
        return 0
    if cuda:
        try:  # CUDA missing, or an index this machine lacks
            check_device(args.device, "--device")
        except InvalidInputError as exc:
            raise SystemExit(str(exc)) from None

    started = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    gen = _run_worker("generation", args)
    base = _run_worker("baseline", args)
    test = None if args.skip_test_stage else _run_worker("test_stage", args)
    scale = _run_worker("scale", args) if args.scale_sets else None
    base_gen = base["simulate_seconds_extrapolated"] + gen["summary_cost_seconds"]
    section = {
        "started": started,
        "device": args.device,
        "quick": args.quick,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "threads": args.threads,
            "load_average_1min_at_start": load,
            "torch": torch.__version__,
            "device_name": torch.cuda.get_device_name(torch.device(args.device)) if cuda else None,
            **{
                k: v
                for k, v in machine_info(args.device).items()
                if k not in ("load_average", "torch_threads")  # the workers' are above
            },
        },
        "generation": gen,
        "baseline": {
            **base,
            "generation_seconds_extrapolated": base_gen,
            "speedup_generation": base_gen / gen["seconds"],
            "speedup_integration": base["simulate_seconds_extrapolated"] / gen["simulate_seconds"],
        },
        "test_stage": test,
        "scale": scale,
        "targets": {
            "generation_seconds_max": GEN_LIMIT_S,
            "test_stage_seconds_max": TEST_LIMIT_S,
            "speedup_min": SPEEDUP_MIN,
        },
    }
    # the targets are for the full HCP-size generation (100 sets); a quick or resized run has none
    comparable = not args.quick and args.n_sets == 100
    checks = {
        "generation": gen["seconds"] <= GEN_LIMIT_S,
        "speedup": section["baseline"]["speedup_generation"] >= SPEEDUP_MIN,
    }
    if test:
        checks["test_stage"] = test["seconds"] <= TEST_LIMIT_S
    section["checks"] = checks if comparable else None
    section["pass"] = bool(all(checks.values())) if comparable else None
    verdict = "targets n/a (" + ("quick" if args.quick else f"{args.n_sets} sets, not 100") + ")"
    if comparable:
        verdict = "PASS" if section["pass"] else "FAIL"
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {}
    results[result_key(args.device, args.engine, args.quick)] = section
    write_json(results, out)
    test_s = "skipped"
    if test:
        test_s = f"{test['seconds']:.1f} s" + (" (extrapolated)" if test["extrapolated"] else "")
    speed = section["baseline"]
    print(
        f"simulate[{args.device}, {gen['engine']}{', quick' if args.quick else ''}]: generation "
        f"{gen['n_sets']}x3 sims {gen['seconds']:.1f} s (simulate {gen['simulate_seconds']:.1f} s, "
        f"FCD products {gen.get('fcd_products', '?')}, "
        f"{gen['region_steps_per_s'] / 1e6:.0f} M region-steps/s, "
        f"peak {gen['peak_memory_bytes'] / 2**30:.2f} GiB) | "
        f"baseline x{speed['speedup_generation']:.1f} (integration x{speed['speedup_integration']:.1f})"
        f" | test stage {test_s}"
        + (
            f" | {scale['n_simulations']} sims {scale['region_steps_per_s'] / 1e6:.0f} M region-steps/s"
            if scale
            else ""
        )
        + f" | load {load if load is None else round(load, 2)} | {verdict} (generation <= "
        f"{GEN_LIMIT_S:g} s, test stage <= {TEST_LIMIT_S:g} s, baseline x >= {SPEEDUP_MIN:g}) -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
