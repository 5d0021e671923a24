"""Per-epoch checkpoint of :func:`~.train.train_surrogate`, so that an interrupted training resumes.

A checkpoint is a folder::

    state.safetensors   the network's weights now (``model.*``) and at the best epoch (``best.*``),
                        Adam's moment estimates (``adam.<i>.<name>``), the batch-order generator's
                        state, torch's CPU random state and, for a CUDA model, the device's
                        (``rng.*``, uint8)
    state.json          kind, format_version, fingerprint of the data, network and settings,
                        epochs done, best epoch and validation MSE, epochs without improvement,
                        history, Adam's parameter groups and the scheduler's state

It is written after every epoch into a fresh sibling folder ``.<name>.tmp<pid>`` that then takes
the old one's place: the old folder is first renamed ``.<name>.old<pid>``, and removed once the new
one is in place. A write killed between the two renames leaves the previous epoch's checkpoint
only in ``.<name>.old<pid>``; :func:`load_checkpoint` reads it from there (the newest readable
one), and the next write removes such leftovers, so a killed write always leaves the previous
epoch's checkpoint. Nothing is unpickled: tensors are read with safetensors, the rest is JSON.
Resuming restores every state the next epoch depends on, so an interrupted and resumed training
gives the same weights as an uninterrupted one (on the CPU; a GPU's own random state is not kept,
which matters only with dropout).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from delssome_norms import io
from delssome_norms.errors import InputWarning

CHECKPOINT_KIND = "delssome_norms.surrogate.train_checkpoint"
CHECKPOINT_FORMAT_VERSION = 1
STATE_TENSORS = "state.safetensors"
STATE_JSON = "state.json"


def training_fingerprint(data: Any, config: Any, settings: Any) -> dict[str, Any]:
    """What a checkpoint must match to be continued: the data set's candidates, losses and
    subjects (SHA-256), the network settings and the training settings (all but ``epochs``
    and ``patience``, which may be raised to train longer, and ``device``)."""
    train = {k: v for k, v in settings.to_dict().items() if k not in ("epochs", "patience", "device")}
    h = hashlib.sha256()
    for a in (data.losses, data.g, data.regional, data.subject, data.generation, data.tr,
              data.scan_length, data.fc_triu, data.fcd_density, data.sc):  # fmt: skip
        arr = np.ascontiguousarray(a)  # hashed in place: no float64 copy of a large data set
        h.update(f"{arr.dtype.str}{arr.shape}".encode())
        h.update(memoryview(arr).cast("B"))
    digest = h.hexdigest()
    return io.as_json_data({"data_sha256": digest, "network": config.to_dict(), "settings": train})


def save_checkpoint(folder: str | Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """Write a checkpoint folder atomically (replacing the previous one).

    Parameters
    ----------
    folder : path
    tensors : dict of str to Tensor
        Stored in ``state.safetensors`` (moved to the CPU).
    state : dict
        JSON-ready; stored in ``state.json`` with kind and format_version.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.tmp{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        cpu = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        save_file(cpu, str(staging / STATE_TENSORS))
        record = {"kind": CHECKPOINT_KIND, "format_version": CHECKPOINT_FORMAT_VERSION, **state}
        io.write_json(io.strict_json(record), staging / STATE_JSON)
        old = folder.parent / f".{folder.name}.old{os.getpid()}"
        leftovers = _leftovers(folder)  # of writes killed between the renames below
        if folder.exists():  # complete (only ever a renamed staging folder): leftovers are older
            for stale in leftovers:
                shutil.rmtree(stale, ignore_errors=True)
            leftovers = set()
        try:
            if folder.exists():
                os.replace(folder, old)
            os.replace(staging, folder)
        except BaseException:  # Ctrl-C or an OS error between the renames: put the old one back
            if not folder.exists() and (old / STATE_JSON).is_file():
                os.replace(old, folder)
            raise
        # the previous checkpoint, and what killed writes left (their staging folders too)
        for stale in {old, *leftovers, *(_leftovers(folder, "tmp") - {staging})}:
            shutil.rmtree(stale, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load_checkpoint(
    folder: str | Path, fingerprint: dict[str, Any]
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """Read a checkpoint written by :func:`save_checkpoint`.

    A checkpoint missing from ``folder`` because a write was killed between its two renames is
    read from the ``.<name>.old<pid>`` folder that write left (the one of most epochs).

    Returns
    -------
    (tensors, state) or None
        None when there is none, or (with an :class:`~delssome_norms.errors.InputWarning`
        naming the folder and why) when it cannot be read or belongs to other data, network or
        training settings: the training then starts from the first epoch and replaces it.
    """
    folder = Path(folder)
    if not (folder / STATE_JSON).is_file():
        folder = _newest_leftover(folder)  # a write killed between its two renames
        if folder is None:
            return None

    def unusable(why: str) -> None:
        warnings.warn(
            f"{folder}: {why}; training starts from the first epoch (the checkpoint is replaced)",
            InputWarning,
            stacklevel=3,
        )

    try:
        state = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
        tensors = load_file(str(folder / STATE_TENSORS))
    except Exception as err:  # JSON, OS and safetensors errors alike: one clear message
        return unusable(f"the training checkpoint cannot be read ({type(err).__name__}: {err})")
    if not isinstance(state, dict) or state.get("kind") != CHECKPOINT_KIND:
        return unusable("is not a surrogate training checkpoint")
    if state.get("format_version") != CHECKPOINT_FORMAT_VERSION:
        return unusable(f"training checkpoint of format_version {state.get('format_version')!r}")
    stored = state.get("fingerprint") or {}
    differ = sorted(k for k in set(stored) | set(fingerprint) if stored.get(k) != fingerprint.get(k))
    if differ:
        parts = []
        for key in differ:
            a, b = stored.get(key), fingerprint.get(key)
            if isinstance(a, dict) and isinstance(b, dict):
                parts.extend(f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))
            else:
                parts.append("the data set" if key == "data_sha256" else key)
        return unusable(f"the training checkpoint is of other data or settings ({', '.join(parts)})")
    return tensors, state


def _leftovers(folder: Path, kind: str = "old") -> set[Path]:
    """The ``.<name>.<kind><pid>`` folders (``old``: previous checkpoints; ``tmp``: staging
    folders) that writes of ``folder`` left behind."""
    prefix = f".{folder.name}.{kind}"
    try:
        entries = list(folder.parent.iterdir())
    except OSError:
        return set()
    return {
        e
        for e in entries
        if e.name.startswith(prefix) and e.name[len(prefix) :].isdigit() and e.is_dir()
    }


def _newest_leftover(folder: Path) -> Path | None:
    """The leftover of a write killed between its two renames (:func:`save_checkpoint`) holding
    the most epochs, among those whose two files are there and whose state.json reads; or None."""
    best: tuple[int, float, Path] | None = None
    for cand in _leftovers(folder):
        epoch = _state_epoch(cand) if (cand / STATE_TENSORS).is_file() else None
        if epoch is None:
            continue
        key = (epoch, (cand / STATE_JSON).stat().st_mtime, cand)
        if best is None or key[:2] > best[:2]:
            best = key
    return None if best is None else best[2]


def _state_epoch(folder: Path) -> int | None:
    """The epoch recorded in a checkpoint folder's state.json, or None where it cannot be read."""
    try:
        return int(json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def saved_epochs(folder: str | Path) -> int | None:
    """Finished epochs the checkpoint at ``folder`` keeps (read as :func:`load_checkpoint` would
    find it, a killed write's leftover included), or None when there is none."""
    folder = Path(folder)
    if not (folder / STATE_JSON).is_file():
        folder = _newest_leftover(folder)
    return None if folder is None else _state_epoch(folder)


def checkpoint_state(
    model: torch.nn.Module,
    best_state: dict[str, torch.Tensor],
    opt: torch.optim.Optimizer,
    sched: Any,
    gen: torch.Generator,
    progress: dict[str, Any],
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and JSON state of a training after an epoch (``progress``: epoch, best_val,
    best_epoch, stale, stopped, history, fingerprint)."""
    adam, groups = optimizer_tensors(opt)
    tensors = {
        **{f"model.{k}": v for k, v in model.state_dict().items()},
        **{f"best.{k}": v for k, v in best_state.items()},
        **adam,
        "rng.generator": gen.get_state(),
        "rng.torch": torch.get_rng_state(),
    }
    device = next(model.parameters()).device
    if device.type == "cuda":  # dropout on a CUDA model draws from the device's own stream
        tensors["rng.cuda"] = torch.cuda.get_rng_state(device)
    state = {**progress, "adam_param_groups": groups, "scheduler": io.as_json_data(sched.state_dict())}
    return tensors, state


def restore_training(
    found: tuple[dict[str, torch.Tensor], dict[str, Any]],
    model: torch.nn.Module,
    opt: torch.optim.Optimizer,
    sched: Any,
    gen: torch.Generator,
) -> dict[str, Any]:
    """Inverse of :func:`checkpoint_state`: restores ``model``, ``opt``, ``sched``, ``gen`` and
    torch's random state in place; returns the progress entries and ``best_state``."""
    tensors, state = found
    device = next(model.parameters()).device

    def part(prefix: str, to: torch.device | str) -> dict[str, torch.Tensor]:
        n = len(prefix)
        return {k[n:]: v.to(to) for k, v in tensors.items() if k.startswith(prefix)}

    model.load_state_dict(part("model.", device))
    # Adam moves its moments to the parameters' device itself; its step counts stay on the CPU
    restore_optimizer(opt, part("adam.", "cpu"), state["adam_param_groups"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    if device.type == "cuda" and "rng.cuda" in tensors:  # absent when saved by a CPU training
        torch.cuda.set_rng_state(tensors["rng.cuda"], device)
    best_val = state.get("best_val")
    return {
        "epoch": int(state["epoch"]),
        "best_val": math.inf if best_val is None else float(best_val),
        "best_epoch": int(state["best_epoch"]),
        "stale": int(state["stale"]),
        "stopped": bool(state.get("stopped")),
        "history": [
            {k: (math.nan if v is None else v) for k, v in rec.items()} for rec in state["history"]
        ],
        "best_state": part("best.", device),
    }


def optimizer_tensors(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], list[Any]]:
    """Adam's per-parameter state as flat tensors (``adam.<i>.<name>``) and its parameter groups."""
    sd = opt.state_dict()
    flat = {
        f"adam.{i}.{name}": torch.as_tensor(value)
        for i, entry in sd["state"].items()
        for name, value in entry.items()
    }
    return flat, io.as_json_data(sd["param_groups"])


def restore_optimizer(
    opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], groups: list
) -> None:
    """Inverse of :func:`optimizer_tensors` (``tensors`` without the ``adam.`` prefix)."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        i, name = key.split(".", 1)
        state.setdefault(int(i), {})[name] = value
    opt.load_state_dict({"state": state, "param_groups": groups})
