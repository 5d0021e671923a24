"""``delssome-norms info``: what this installation will compute with (for speed and bug reports).

Prints the package and library versions, the CPU simulator kernel (compiled or why not), the
precision of the FCD products, CUDA devices and whether the Triton kernel runs on them, and where
the surrogate weights come from. Nothing is downloaded; the CPU kernel is built if it is not yet.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from typing import Any

from delssome_norms.cli.main import add_command


def register(subparsers) -> None:
    """Add the ``info`` subcommand."""
    p = add_command(
        subparsers,
        "info",
        help="show versions, the simulator engines and FCD precision this installation uses",
        example="delssome-norms info --json",
        description="Show what this installation computes with: versions, the CPU kernel, the "
        "FCD product precision, CUDA/Triton and the surrogate weights. Include it in bug reports.",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument(
        "--time-fcd",
        action="store_true",
        help="also time the FCD with float32 and bfloat16 products on this CPU (a few seconds) "
        "and say which to set",
    )
    # a misspelt environment variable is one of the facts it reports, not a reason to stop
    p.set_defaults(func=run, check_environment=False)


def collect_info() -> dict[str, Any]:
    """The facts ``info`` prints, as a JSON-able dict."""
    import torch

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.outputs import package_versions
    from delssome_norms.model import _kernel, _triton
    from delssome_norms.model.summary import FCD_PRODUCTS_ENV, fcd_products_name

    kernel: dict[str, Any] = {"available": _kernel.available()}
    if kernel["available"]:
        kernel["library"] = str(getattr(_kernel.load(), "_name", ""))
        kernel["bfloat16_fcd"] = _kernel.has_bf16_fcd()
    elif os.environ.get("DELSSOME_NORMS_NO_KERNEL"):
        kernel["reason"] = "DELSSOME_NORMS_NO_KERNEL is set"
    else:
        try:
            _kernel.load()
        except RuntimeError as exc:
            kernel["reason"] = str(exc)
    cuda: dict[str, Any] = {"available": torch.cuda.is_available()}
    if cuda["available"]:
        devices = [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        cuda["devices"] = [torch.cuda.get_device_name(d) for d in devices]
        # the variant of a default fit: DK68 regions in float32
        cuda["triton"] = bool(devices) and _triton.available(devices[0], torch.float32, 68)
    fcd: dict[str, Any] = {FCD_PRODUCTS_ENV: os.environ.get(FCD_PRODUCTS_ENV) or "auto"}
    try:
        fcd["float32_on_cpu"] = fcd_products_name(torch.float32, "cpu")
        fcd["float32_on_cuda"] = fcd_products_name(torch.float32, "cuda")
    except InvalidInputError as exc:  # a misspelt value: every fit would stop on it
        fcd["error"] = str(exc)
    return {
        "versions": package_versions(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cpu_kernel": kernel,
        "fcd_products": fcd,
        "cuda": cuda,
        "surrogate_weights": _weights_info(),
    }


TIMED_SIMULATIONS, TIMED_FRAMES, TIMED_REGIONS, TIMED_WINDOW = 8, 1200, 68, 83
"""What ``--time-fcd`` times: 8 simulations of an HCP-length scan (1200 frames at TR 0.72 s, 68
regions, the 60-s window)."""
TIMING_REPEATS = 3
"""Alternating repeats of each precision; the median counts (a busy machine slows both)."""


def time_fcd_products() -> dict[str, Any]:
    """Seconds to compute the FCD histograms of :data:`TIMED_SIMULATIONS` HCP-length BOLD runs
    with float32 and with bfloat16 products on this CPU, and which is faster.

    Which precision is faster depends on the machine, not only on its CPU flags (bfloat16 was
    2.6-3x faster on one 2-core host with AVX512-BF16 and about 1.5x slower on another), while
    ``auto`` decides by the flags so that a seed gives the same fit on every machine of a
    cluster; this measures it so that the setting can be chosen once (docs/speed.md).
    """
    import statistics
    import time

    import torch

    from delssome_norms.model import _kernel
    from delssome_norms.model.summary import fcd_histogram

    if not (_kernel.available() and _kernel.has_bf16_fcd()):
        return {"timed": False, "reason": "no bfloat16 FCD kernel on this CPU: float32 is used"}
    gen = torch.Generator().manual_seed(0)
    shape = (TIMED_SIMULATIONS, TIMED_FRAMES, TIMED_REGIONS)
    bold = torch.randn(shape, generator=gen) + 0.5 * torch.randn((*shape[:2], 1), generator=gen)
    seconds: dict[str, list[float]] = {"float32": [], "bfloat16": []}
    fcd_histogram(bold[:1], TIMED_WINDOW, dtype=torch.bfloat16)  # scratch and threads warm
    for _ in range(TIMING_REPEATS):
        for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
            t0 = time.perf_counter()
            fcd_histogram(bold, TIMED_WINDOW, dtype=dtype)
            seconds[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in seconds.items()}
    faster = min(med, key=med.get)
    return {
        "timed": True,
        "simulations": TIMED_SIMULATIONS,
        "frames": TIMED_FRAMES,
        "seconds_float32": med["float32"],
        "seconds_bfloat16": med["bfloat16"],
        "faster": faster,
        "ratio": max(med.values()) / min(med.values()),
    }


def _timing_lines(t: dict[str, Any], current: str) -> list[str]:
    if not t["timed"]:
        return [f"FCD timing: {t['reason']}"]
    lines = [
        f"FCD timing ({t['simulations']} simulations of {t['frames']} frames, median of "
        f"{TIMING_REPEATS}): float32 products {t['seconds_float32']:.2f} s, bfloat16 "
        f"{t['seconds_bfloat16']:.2f} s; {t['faster']} is {t['ratio']:.1f}x faster here"
    ]
    if t["faster"] != current:
        lines.append(
            f"  to use it: export DELSSOME_NORMS_FCD_PRODUCTS={t['faster']} (set it the same on "
            "every machine of a cohort: the precision changes the fit a seed gives)"
        )
    return lines


def _weights_info() -> dict[str, Any]:
    from delssome_norms.errors import InvalidInputError, NotYetAvailableError
    from delssome_norms.surrogate.pretrained import ENV_VAR, default_pretrained_path, load_pretrained

    folder = default_pretrained_path()
    try:
        load_pretrained()
    except NotYetAvailableError as exc:
        reason = str(exc)
        if os.environ.get(ENV_VAR) and folder.exists():
            # the variable names something that holds no weights (a surrogate training data set,
            # a file, a folder missing one of its files): say what load_pretrained says of it
            # given explicitly, not "train weights into it"
            try:
                load_pretrained(folder)
            except (InvalidInputError, NotYetAvailableError) as named:
                reason = f"{ENV_VAR}={folder}: {getattr(named, 'problem', named)}"
        return {"folder": str(folder), "usable": False, "reason": reason}
    except InvalidInputError as exc:
        return {"folder": str(folder), "usable": False, "reason": str(exc)}
    return {"folder": str(folder), "usable": True}


def run(args: argparse.Namespace) -> int:
    """Print the installation's facts as text (or JSON with ``--json``)."""
    info = collect_info()
    if args.time_fcd and "error" not in info["fcd_products"]:
        info["fcd_timing"] = time_fcd_products()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    v, k, c, w = info["versions"], info["cpu_kernel"], info["cuda"], info["surrogate_weights"]
    others = ", ".join(f"{name} {ver}" for name, ver in v.items() if name != "delssome_norms")
    print(f"delssome-norms {v['delssome_norms']} ({others})")
    print(f"platform: {info['platform']}; torch CPU threads: {info['torch_threads']}")
    if k["available"]:
        bf16 = "with" if k["bfloat16_fcd"] else "without"
        print(f"CPU kernel: compiled, {bf16} AVX512-BF16 FCD products ({k['library']})")
    else:
        print(f"CPU kernel: not available, the slower torch engine is used ({k.get('reason', '?')})")
    f = info["fcd_products"]
    env = f"DELSSOME_NORMS_FCD_PRODUCTS={f['DELSSOME_NORMS_FCD_PRODUCTS']}"
    if "error" in f:
        print(f"FCD products: INVALID SETTING, every fit will stop ({f['error']})")
    else:
        print(
            f"FCD products of float32 simulations: {f['float32_on_cpu']} on CPU, "
            f"{f['float32_on_cuda']} on CUDA ({env})"
        )
    if "fcd_timing" in info:
        for line in _timing_lines(info["fcd_timing"], f["float32_on_cpu"]):
            print(line)
    if c["available"]:
        print(f"CUDA: {', '.join(c['devices'])}; fused Triton kernel: {'yes' if c['triton'] else 'no'}")
    else:
        print("CUDA: not available")
    state = "usable" if w["usable"] else f"not usable ({w['reason']})"
    print(f"surrogate weights: {w['folder']} ({state})")
    return 0
