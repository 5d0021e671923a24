"""A full disk stops a cohort with one line naming the output folder and what to do, instead of
recording every subject as a failed fit (a full disk is not the subject's fault, and a rerun
once there is room resumes)."""

from __future__ import annotations

import errno
import importlib
from pathlib import Path

from fit_helpers import write_manifest

from delssome_norms.cli.main import main
from delssome_norms.errors import out_of_space

FAST = [
    "--mode", "euler", "--generations", "1", "--popsize", "6", "--mu", "2", "--n-dup", "1",
    "--fcd-window", "5", "--burn-in", "0.72", "--warmup-steps", "50", "--dt-train", "0.01",
    "--dt-val", "0.01", "--dt-test", "0.01", "--quiet", "--no-interval",
]  # fmt: skip


def test_out_of_space_recognises_a_full_disk_and_a_full_quota() -> None:
    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert out_of_space(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert not out_of_space(OSError(errno.EACCES, "Permission denied"))
    assert not out_of_space(ValueError("no"))


def test_a_full_disk_stops_the_cohort_and_says_what_to_do(tmp_path: Path, monkeypatch, capsys) -> None:
    cohort = importlib.import_module("delssome_norms.fit.cohort")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cohort, "fit_group", full)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    assert main(["cohort", "--manifest", str(manifest), "--out-dir", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"delssome-norms: error: {out}: No space left on device" in err
    assert "free some space" in err and "rerun the same command" in err
    assert "Traceback" not in err
    # no subject was recorded as a failed fit: a rerun with room fits them all
    assert not list(out.rglob("failure.json"))
    assert not (out / "failures.csv").exists()


def test_another_error_of_one_group_is_still_that_groups_failure(tmp_path: Path, monkeypatch) -> None:
    cohort = importlib.import_module("delssome_norms.fit.cohort")

    def broken(*args, **kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(cohort, "fit_group", broken)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    main(["cohort", "--manifest", str(manifest), "--out-dir", str(out), *FAST])
    assert len(list(out.rglob("failure.json"))) == 2
