"""Deterministic seeds: one run seed, per-subject and per-call seeds derived from it.

Seeds are derived with :class:`numpy.random.SeedSequence` from the run seed and CRC-32 hashes of
names (never Python's salted ``hash``), so the same subject gets the same seed in any shard, on
any worker and after a restart.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable

import numpy as np

from delssome_norms.errors import InvalidInputError

STAGE_CODES = {"train": 1, "val": 2, "test": 3, "profile": 4}
"""Integer codes of the stages used in call seeds."""


def check_seed(seed: object, name: str = "seed") -> None:
    """Refuse a seed that is not a non-negative integer (Python or NumPy; not a bool)."""
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"{name} must be a non-negative integer, got {seed!r}", name)


def _crc(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _derive(*entropy: int) -> int:
    state = np.random.SeedSequence([int(e) for e in entropy]).generate_state(2, dtype=np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1  # 62-bit non-negative


def subject_seed(seed: int, subject_id: str) -> int:
    """Seed of a subject's CMA-ES (independent of shards, groups and executors)."""
    return _derive(seed, 0, _crc(str(subject_id)))


def group_seed(seed: int, subject_ids: Iterable[str]) -> int:
    """Seed of a lockstep group's simulations (depends on its members, in order)."""
    return _derive(seed, 1, _crc("\x1f".join(map(str, subject_ids))))


def call_seed(group: int, stage: str, generation: int = 0) -> int:
    """Noise seed of one simulation call of a group: stage and generation."""
    return _derive(group, STAGE_CODES[stage], generation)
