"""Continuing :func:`~.train.train_surrogate` from its per-epoch checkpoint (:mod:`~.train_checkpoint`).

A checkpoint of the same data and settings is continued from its last epoch, unless it already ran
more epochs than ``settings.epochs`` (:class:`CheckpointAheadError`: its result would be that of the
longer training, recorded as the shorter one). The wall time of the earlier runs is carried on, so
that a resumed training reports the time of all its runs (:func:`earlier_seconds`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from delssome_norms.errors import InvalidInputError
from delssome_norms.surrogate import train_checkpoint as ckpt

SECONDS_KEY = "seconds"
"""Entry of the checkpoint's ``state.json``: wall time [s] of the training's runs so far."""


class CheckpointAheadError(InvalidInputError):
    """The checkpoint already ran more epochs than asked for (it is kept: nothing is wrong with
    it, and a run with enough epochs continues it)."""


def earlier_seconds(state: dict[str, Any], history: list[dict[str, Any]]) -> float:
    """Wall time [s] of the runs that wrote a checkpoint: its ``seconds`` entry, or for a
    checkpoint written before it was recorded, the sum of its epochs' times (without the set-up
    and evaluation of each run)."""
    value = state.get(SECONDS_KEY)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return max(float(value), 0.0)
    times = [h.get("seconds") for h in history]
    return float(sum(t for t in times if isinstance(t, (int, float)) and math.isfinite(t)))


def resume_training(
    checkpoint: str | Path,
    fingerprint: dict[str, Any],
    epochs: int,
    state: tuple[torch.nn.Module, torch.optim.Optimizer, Any, torch.Generator],
    log: Callable[[str], None] | None = None,
) -> dict[str, Any] | None:
    """Restore a training from the checkpoint in ``checkpoint`` (see
    :func:`~.train_checkpoint.load_checkpoint`).

    Parameters
    ----------
    checkpoint : path
    fingerprint : dict
        :func:`~.train_checkpoint.training_fingerprint` of this training.
    epochs : int
        ``settings.epochs`` of this training.
    state : (model, optimizer, scheduler, generator)
        Restored in place.
    log : callable, optional
        Receives the "continuing after epoch ..." line.

    Returns
    -------
    dict or None
        :func:`~.train_checkpoint.restore_training`'s entries plus ``seconds`` (the wall time of
        the earlier runs, :func:`earlier_seconds`); None without a usable checkpoint.

    Raises
    ------
    CheckpointAheadError
        The checkpoint already ran more than ``epochs`` epochs (nothing is restored).
    """
    found = ckpt.load_checkpoint(checkpoint, fingerprint)
    if found is None:
        return None
    done_epochs = int(found[1]["epoch"])
    if done_epochs > epochs:
        raise CheckpointAheadError(
            f"the training checkpoint in {checkpoint} is already past --epochs {epochs} "
            f"({done_epochs} epochs done, with the same data and settings): use --epochs >= "
            f"{done_epochs} to continue it, or remove {checkpoint} to train again from the start",
            "--epochs",
        )
    done = ckpt.restore_training(found, *state)
    done["seconds"] = earlier_seconds(found[1], done["history"])
    if log:
        log(f"continuing after epoch {done['epoch']} from the checkpoint in {checkpoint}")
    return done
