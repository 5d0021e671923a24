"""Options and result fields shared by the benchmarks (bench/ is on ``sys.path`` when they run).

Fit and simulation options come from the settings fields through
:mod:`delssome_norms.cli.options`, as in the CLI; a benchmark passes its own (smaller) budget as
overrides and never restates an option.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

from delssome_norms.cli.options import add_fit_options
from delssome_norms.fit.synthetic import FIC_RATE_BAND
from delssome_norms.model import SimulationTiming

TR = 0.72
"""Repetition time of the synthetic scans [s] (HCP-like)."""


def add_scan_arguments(ap: argparse.ArgumentParser) -> None:
    """Timing of the short synthetic scans (``bench/recovery.py``, ``bench/identifiability.py``)."""
    ap.add_argument("--scan-length", type=float, default=57.6, help="seconds (80 frames at TR 0.72)")
    add_fit_options(
        ap,
        ("burn_in", "fcd_window", "dt_train", "warmup_steps"),
        overrides={
            "burn_in": {"default": 14.4, "help": "burn-in, s"},
            "fcd_window": {"default": 20, "help": "FCD window, frames"},
            "dt_train": {
                "flag": "--dt",
                "default": 0.005,
                "help": "simulation step (train and validation), s",
            },
            "warmup_steps": {"default": 1000},
        },
    )


def scan_timings(args: argparse.Namespace, dt_truth: float):
    """(scan timing, truth timing, shared timing keywords) from :func:`add_scan_arguments`."""
    common = dict(burn_in=args.burn_in, fcd_window=args.fcd_window, warmup_steps=args.warmup_steps)
    scan = SimulationTiming(tr=TR, scan_length=args.scan_length, dt=args.dt, **common)
    truth = SimulationTiming(tr=TR, scan_length=args.scan_length, dt=dt_truth, **common)
    return scan, truth, common


def add_truth_rate_band(ap: argparse.ArgumentParser, help: str) -> None:
    """``--truth-rate-band LOW HIGH`` [Hz] (default: the FIC regime band; ``0 0``: no check)."""
    ap.add_argument(
        "--truth-rate-band",
        type=float,
        nargs=2,
        default=FIC_RATE_BAND,
        metavar=("LOW", "HIGH"),
        help=help,
    )


def truth_rate_band(args: argparse.Namespace) -> tuple[float, float] | None:
    """The ``--truth-rate-band`` as a tuple, None for ``0 0``."""
    return tuple(args.truth_rate_band) if any(args.truth_rate_band) else None


VERSIONED = ("delssome_norms", "torch", "numpy", "scipy", "pandas", "cma")
"""Packages whose versions every benchmark records."""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str | None = None) -> dict[str, Any]:
    """What a benchmark ran on: host, CPU, load, torch threads, the GPU of a CUDA ``device`` and
    the versions of the packages that set the numbers (only the standard library and torch, so
    that it also works against older versions of the package)."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "unknown"
    cuda = device is not None and torch.device(device).type == "cuda" and torch.cuda.is_available()
    return {
        "host": platform.node(),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(torch.device(device)) if cuda else None,
        "versions": versions,
    }


def result_header(benchmark: str, args: argparse.Namespace) -> dict[str, Any]:
    """The first fields of a benchmark's results JSON (name, --quick, when, load, threads, the
    machine and the package versions)."""
    return {
        "benchmark": benchmark,
        "quick": args.quick,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average": os.getloadavg(),
        "torch_threads": torch.get_num_threads(),
        "machine": machine_info(getattr(args, "device", None)),
    }


def results_file(default: Path, out: str | Path | None = None, quick: bool = False) -> Path:
    """Where a benchmark writes its JSON: ``out`` when the user gave another path, else
    ``default``, or ``<name>_quick.json`` beside it for ``--quick`` (a smoke run never replaces a
    measured result)."""
    if out is not None and Path(out) != Path(default):
        return Path(out)
    return default.with_name(f"{default.stem}_quick{default.suffix}") if quick else Path(default)
