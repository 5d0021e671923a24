"""Which torch device to compute on: one check for every entry point (simulate, fits, the CLI)."""

from __future__ import annotations

import contextlib

import torch

from delssome_norms.errors import InvalidInputError

SUPPORTED_TYPES = ("cpu", "cuda")
"""Device types the simulator runs on."""


def parse_device(device: str | torch.device | None, option: str = "device") -> torch.device:
    """``device`` as a :class:`torch.device` of a supported type (``None`` is the CPU).

    Only the spelling is checked (a settings object read back from ``run.json`` on a machine
    without the GPU that wrote it must still load); :func:`check_device` also checks that the
    device exists here.

    Raises
    ------
    InvalidInputError
        An unknown device name or a type other than cpu/cuda.
    """
    if device is None:
        return torch.device("cpu")
    try:
        dev = device if isinstance(device, torch.device) else torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise InvalidInputError(f"unknown device {device!r}; use cpu, cuda or cuda:N", option) from None
    if dev.type not in SUPPORTED_TYPES:
        raise InvalidInputError(
            f"device type {dev.type!r} is not supported; use cpu, cuda or cuda:N", option
        )
    return dev


def check_device(device: str | torch.device | None, option: str = "device") -> torch.device:
    """:func:`parse_device`, and refuse, before any work, a CUDA device this machine lacks.

    Raises
    ------
    InvalidInputError
        Unknown or unsupported device, CUDA asked for without CUDA, or a CUDA index too large.
    """
    dev = parse_device(device, option)
    if dev.type == "cpu":
        return dev
    if not torch.cuda.is_available():
        raise InvalidInputError(
            f"{str(device)!r} was asked for but CUDA is not available on this machine (torch "
            f"{torch.__version__}); use device 'cpu'",
            option,
        )
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise InvalidInputError(
            f"{str(device)!r} does not exist; this machine has {count} CUDA device(s)", option
        )
    return dev


def device_guard(device: torch.device):
    """Context in which ``device`` is the current CUDA device (a no-op for other devices).

    Triton launches a kernel on ``torch.cuda.current_device()`` and its current stream, and a CUDA
    graph captures only the work of its capture stream's device, whatever device the tensors
    are on: without this guard a simulation on ``cuda:1`` would launch on ``cuda:0``.
    """
    if device.type != "cuda":
        return contextlib.nullcontext()
    return torch.cuda.device(device)
