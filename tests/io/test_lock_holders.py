"""A folder held by cohort shards (a shared lock) is refused naming them, not the stale record of
an earlier exclusive holder; an exclusive holder is still named by its PID."""

from __future__ import annotations

import os

import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.guard import OutDirLock, check_not_locked

pytest.importorskip("fcntl")


def test_shards_are_named_as_shards(tmp_path) -> None:
    with OutDirLock(tmp_path):  # an earlier exclusive run leaves its record in the lock file
        pass
    with OutDirLock(tmp_path, shared=True), OutDirLock(tmp_path, shared=True):
        for attempt in (lambda: OutDirLock(tmp_path).acquire(), lambda: check_not_locked(tmp_path)):
            with pytest.raises(InvalidInputError, match="cohort --shard runs") as err:
                attempt()
            assert f"PID {os.getpid()}" not in str(err.value)


def test_an_exclusive_holder_is_named_by_its_pid(tmp_path) -> None:
    with OutDirLock(tmp_path):
        for attempt in (
            lambda: OutDirLock(tmp_path).acquire(),
            lambda: OutDirLock(tmp_path, shared=True).acquire(),
            lambda: check_not_locked(tmp_path),
        ):
            with pytest.raises(InvalidInputError, match=f"PID {os.getpid()} on "):
                attempt()
