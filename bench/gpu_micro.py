"""Device micro-benchmarks of issue 24: the stability-gate margin and the coupling product.

1. **Gate.** Leading eigenvalue of B FIC Jacobians (68 x 68, float64; B = 3200, a 32-subject
   lockstep generation): ``torch.linalg.eigvalsh`` versus the batched Householder + Sturm path of
   :mod:`delssome_norms.model.stability`, time and largest difference; plus one batched Cholesky.
2. **Coupling headroom.** The simulator's coupling term is ``SC (N x N) @ S_E (N x M)`` per step.
   Timed as a plain matmul over ``--steps`` steps for M simulations in FP32, TF32 and BF16 (FP32
   accumulate), with its relative error against float64; reported as region-steps/s of the
   product alone, to compare with the fused kernel's whole-step rate (``bench/simulate.py``).

Writes ``bench/results/gpu_micro.json`` (``--quick``: ``gpu_micro_quick.json``; or ``--out``) and
prints one summary line.
Usage: ``python bench/gpu_micro.py [--device cuda] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _options import machine_info, results_file  # bench/ is on sys.path

RESULTS = Path(__file__).parent / "results" / "gpu_micro.json"


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _timed(fn, dev: torch.device, reps: int = 3) -> float:
    fn()
    _sync(dev)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(dev)
        best = min(best, time.perf_counter() - t)
    return best


def gate(dev: torch.device, n_sets: int) -> dict:
    from delssome_norms.datasets import load_default_template
    from delssome_norms.model import fic_reduced_jacobian, scale_sc
    from delssome_norms.model.stability import _leading_eigenvalue

    sc = torch.as_tensor(scale_sc(np.asarray(load_default_template().sc, dtype=np.float64)))
    n = sc.shape[0]
    rng = np.random.default_rng(0)
    wee = torch.as_tensor(rng.uniform(1, 10, (n_sets, n)), device=dev)
    wei = torch.as_tensor(rng.uniform(0.5, 5, (n_sets, n)), device=dev)
    g = torch.as_tensor(rng.uniform(1, 10, n_sets), device=dev)
    m = fic_reduced_jacobian(wee, wei, g, sc.to(dev))
    m = m[torch.isfinite(m).all(dim=(1, 2))].contiguous()
    out = {"matrices": int(m.shape[0])}
    res = {}
    for method in ("eigvalsh", "tridiagonal"):
        out[f"{method}_s"] = _timed(
            lambda method=method: res.__setitem__(method, _leading_eigenvalue(m, True, method)), dev
        )
    out["cholesky_s"] = _timed(lambda: torch.linalg.cholesky_ex(-m), dev)
    diff = (res["eigvalsh"] - res["tridiagonal"]).abs().max().item()
    out["max_abs_diff"] = diff
    out["max_abs_eig"] = res["eigvalsh"].abs().max().item()
    out["speedup"] = out["eigvalsh_s"] / out["tridiagonal_s"]
    return out


def coupling(dev: torch.device, sims: list[int], steps: int, n: int = 68) -> list[dict]:
    from delssome_norms.datasets import load_default_template
    from delssome_norms.model import scale_sc

    sc64 = torch.as_tensor(
        scale_sc(np.asarray(load_default_template().sc, dtype=np.float64)), device=dev
    )
    rows = []
    for m in sims:
        gen = torch.Generator(device=dev).manual_seed(0)
        x64 = torch.rand((n, m), generator=gen, device=dev, dtype=torch.float64) * 0.5 + 0.1
        ref = sc64 @ x64
        for name, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                                  ("bf16", torch.bfloat16, False)):  # fmt: skip
            if dev.type == "cpu" and name == "tf32":
                continue
            prev = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = tf32
            try:
                a, x = sc64.to(dtype), x64.to(dtype)
                out = torch.empty((n, m), device=dev, dtype=dtype)

                def run(a=a, x=x, out=out):
                    for _ in range(steps):
                        torch.matmul(a, x, out=out)

                t = _timed(run, dev)
                err = ((a @ x).double() - ref).abs().max().item() / ref.abs().max().item()
            finally:
                torch.backends.cuda.matmul.allow_tf32 = prev
            rows.append({"sims": m, "precision": name, "steps": steps, "s": t,
                         "region_steps_per_s": n * m * steps / t, "max_rel_err": err})  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sets", type=int, default=3200, help="FIC Jacobians in the gate timing")
    ap.add_argument("--sims", type=int, nargs="+", default=[300, 3000, 30000])
    ap.add_argument("--steps", type=int, default=2000, help="coupling products per timing")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    args.out = str(results_file(RESULTS, args.out, args.quick))
    if args.quick:
        args.sets, args.sims, args.steps = 64, [300], 20
    dev = torch.device(args.device)
    rec = {"benchmark": "gpu_micro", "device": str(dev), "torch": torch.__version__,
           "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
           "when": time.strftime("%Y-%m-%d %H:%M:%S"), "quick": args.quick,
           "settings": {"sets": args.sets, "sims": args.sims, "steps": args.steps},
           "machine": machine_info(args.device)}  # fmt: skip
    rec["gate"] = gate(dev, args.sets)
    rec["coupling"] = coupling(dev, args.sims, args.steps)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rec, indent=1))
    g = rec["gate"]
    best = {}
    for r in rec["coupling"]:
        if r["sims"] == max(args.sims):
            best[r["precision"]] = f"{r['region_steps_per_s']:.2e} (err {r['max_rel_err']:.1e})"
    print(
        f"gpu_micro [{dev}]: gate {g['matrices']} x 68^2: eigvalsh {g['eigvalsh_s']:.3f} s, "
        f"tridiagonal {g['tridiagonal_s']:.3f} s (diff {g['max_abs_diff']:.1e}); coupling at "
        f"{max(args.sims)} sims, region-steps/s: {best} -> {args.out}",
        flush=True,
    )
    return rec


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
