"""A rerun of a finished cohort reads each finished subject once (it read them twice: before the
work and again under its group's lock); a file changed in between still gets the full check.

Fits use the analytic stand-in simulator of tests/fit/fit_helpers.py (seconds each).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest
from fit_helpers import analytic_cohort_settings, use_analytic_simulator, write_manifest

from delssome_norms.errors import InputWarning
from delssome_norms.fit import cohort, run_cohort, verified


def _cohort(manifest: Path, out: Path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        return run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True)


@pytest.fixture
def finished(tmp_path: Path, monkeypatch):
    """Four subjects fitted in two lockstep groups; (manifest, out folder, load counter)."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 4, n=6)
    out = tmp_path / "out"
    assert _cohort(manifest, out).done == 4
    loads: list[str] = []
    load_row = cohort._load_row

    def counted(row, *args, **kwargs):
        loads.append(str(row["subject_id"]))
        return load_row(row, *args, **kwargs)

    monkeypatch.setattr(cohort, "_load_row", counted)
    return manifest, out, loads


def test_a_finished_rerun_reads_each_subject_once(finished) -> None:
    manifest, out, loads = finished
    before = {p: p.stat().st_mtime_ns for p in out.glob("sub-*/*") if p.is_file()}
    summary = _cohort(manifest, out)
    assert (summary.done, summary.skipped, summary.failed) == (0, 4, 0)
    assert sorted(loads) == ["sub-00", "sub-01", "sub-02", "sub-03"]  # once each (twice before)
    after = {p: p.stat().st_mtime_ns for p in out.glob("sub-*/*") if p.is_file()}
    assert after == before  # no subject's file rewritten


def test_a_file_changed_after_the_first_check_gets_the_full_check(finished, monkeypatch) -> None:
    """Between the check before the work and the group, sub-01's run.json is rewritten (as
    another process's --overwrite would): its group checks it again in full."""
    manifest, out, loads = finished
    check = cohort.check_stale_subjects

    def then_touch(*args, **kwargs):
        check(*args, **kwargs)
        run = out / "sub-01" / "run.json"
        text = run.read_text()
        run.unlink()
        run.write_text(text)  # same bytes, another file: a new inode and time
        os.utime(run, ns=(run.stat().st_atime_ns, run.stat().st_mtime_ns + 10**9))

    monkeypatch.setattr(cohort, "check_stale_subjects", then_touch)
    summary = _cohort(manifest, out)
    assert (summary.done, summary.skipped, summary.failed) == (0, 4, 0)
    assert sorted(loads) == ["sub-00", "sub-01", "sub-01", "sub-02", "sub-03"]


def test_signatures_change_with_any_file_of_the_subject(finished) -> None:
    manifest, out, _ = finished
    import pandas as pd

    row = pd.read_csv(manifest).iloc[0].to_dict()
    row = {k: (str(manifest.parent / v) if k in ("fc", "fcd_cdf", "sc") else v) for k, v in row.items()}
    sdir = out / str(row["subject_id"])
    verified.mark_verified(row, verified.signatures(row, sdir))
    assert verified.still_verified(row, sdir)
    fc = Path(row["fc"])
    fc.write_text(fc.read_text())  # rewritten in place: a new time
    os.utime(fc, ns=(fc.stat().st_atime_ns, fc.stat().st_mtime_ns + 10**9))
    assert not verified.still_verified(row, sdir)
    assert not verified.still_verified({"subject_id": "x"}, sdir)  # never verified
    (sdir / "EI_ratio.csv").unlink()
    assert verified.signatures(row, sdir) is None
