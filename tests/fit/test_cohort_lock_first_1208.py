"""A second ``cohort`` run on a folder another run holds stops at once, before it reads the
manifest or warns about it (docs/rerunning.md), as the lock's own refusal would say later."""

from __future__ import annotations

from pathlib import Path

import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.cohort import run_cohort
from delssome_norms.io import OutDirLock


def test_a_locked_out_dir_is_refused_before_the_manifest_is_read(tmp_path: Path) -> None:
    out = tmp_path / "fits"
    out.mkdir()
    missing = tmp_path / "no_such_manifest.csv"  # reading it would be the first error otherwise
    with OutDirLock(out, "--out-dir"):
        with pytest.raises(InvalidInputError, match="in use by another delssome-norms run") as err:
            run_cohort(missing, out)
    assert err.value.source == "--out-dir"
    # once the first run is over the same call gets as far as the manifest
    with pytest.raises(InvalidInputError, match="no_such_manifest"):
        run_cohort(missing, out)


def test_a_shard_does_not_probe_the_shared_lock(tmp_path: Path) -> None:
    """Shards share the folder (each takes a shared lock): one shard running must not stop
    another before its manifest is read."""
    out = tmp_path / "fits"
    out.mkdir()
    with OutDirLock(out, shared=True):
        with pytest.raises(InvalidInputError, match="no_such_manifest"):
            run_cohort(tmp_path / "no_such_manifest.csv", out, shard="1/2")
