"""Per-subject fit locks (delssome_norms.fit.group_lock): one live process fits a group at a time.

The scenario: a cohort client is killed while its groups still run on Dask workers, and the user
reruns at once (or two runs/shards overlap on one out-dir). The rerun must skip the groups being
fitted elsewhere, take over locks of dead or silent holders, and every holder must release its
locks on success, failure and Ctrl-C.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import analytic_cohort_settings, use_analytic_simulator, write_manifest

from delssome_norms.fit import cohort, group_lock, run_cohort
from delssome_norms.fit.group_lock import GroupLock, GroupLockLost, GroupLockWarning, lock_path
from delssome_norms.fit.lockstep import GroupProgress
from delssome_norms.io import read_manifest

GROUP = ["sub-00", "sub-01"]


def _fake_lock(out: Path, sid: str, *, host: str, pid: int, age: float, stale_after: float = 0):
    """A lock file as another process would have left it (heartbeat ``age`` seconds ago)."""
    path = lock_path(out, sid)
    path.parent.mkdir(parents=True, exist_ok=True)
    beat = time.time() - age
    record = {"format": 1, "host": host, "pid": pid, "pidns": None, "started": beat - 5}
    record.update(heartbeat=beat, stale_after_s=stale_after, token="0" * 16, group=[sid])
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def _rows(tmp_path: Path, n: int = 2) -> list[dict]:
    manifest = read_manifest(write_manifest(tmp_path, n))
    return [{c: cohort._cell(r, c) for c in manifest.columns} for _, r in manifest.iterrows()]


def _task(rows, out: Path, progress: GroupProgress | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cohort.run_group_task(
            rows, str(out), analytic_cohort_settings(), 6, None, progress=progress
        )


def test_threads_contending_for_one_group_exactly_one_gets_it(tmp_path: Path) -> None:
    barrier = threading.Barrier(4)
    results: dict[int, list] = {}
    locks = [GroupLock(tmp_path, GROUP, heartbeat_s=5, stale_after_s=60) for _ in range(4)]

    def contend(i: int) -> None:
        barrier.wait()
        results[i] = locks[i].acquire()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    winners = [i for i, busy in results.items() if busy == []]
    assert len(results) == 4 and len(winners) == 1
    for i, busy in results.items():
        if i != winners[0]:  # the losers name the live holder (this process) and hold nothing
            assert busy[0].record["pid"] == os.getpid()
            assert not locks[i]._held
    locks[winners[0]].release()
    assert not list((tmp_path / group_lock.LOCK_DIR).glob("*.lock"))


def test_a_group_being_fitted_is_skipped_by_a_second_task(tmp_path: Path, monkeypatch) -> None:
    """Task A holds the group (paused at its first generation); task B returns 'busy' for every
    member without writing anything; A then fits the group alone."""
    use_analytic_simulator(monkeypatch)
    rows, out = _rows(tmp_path), tmp_path / "out"
    out.mkdir()
    inside, go = threading.Event(), threading.Event()

    def pause(done: int) -> None:
        if not inside.is_set():
            inside.set()
            assert go.wait(30)

    first: list = []
    a = threading.Thread(
        target=lambda: first.extend(_task(rows, out, GroupProgress(on_generation=pause)))
    )
    a.start()
    assert inside.wait(30)
    second = _task(rows, out)
    go.set()
    a.join(60)
    assert [o["status"] for o in second] == ["busy", "busy"]
    assert f"pid {os.getpid()}" in second[0]["message"]
    assert "being fitted elsewhere" in second[0]["message"]
    assert [o["status"] for o in first] == ["done", "done"]
    assert not (out / "sub-00" / "failure.json").exists()
    assert not list((out / group_lock.LOCK_DIR).glob("*.lock"))


def test_lock_of_a_silent_holder_on_another_node_is_taken_over(tmp_path: Path) -> None:
    _fake_lock(tmp_path, "sub-00", host="other-node", pid=4242, age=30)
    lock = GroupLock(tmp_path, GROUP, heartbeat_s=5, stale_after_s=10)
    with pytest.warns(GroupLockWarning, match=r"stale fit lock of sub-00 \(no heartbeat for 3\d s"):
        assert lock.acquire() == []
    record = json.loads(lock_path(tmp_path, "sub-00").read_text())
    assert (record["pid"], record["group"]) == (os.getpid(), GROUP)
    lock.release()


def test_lock_of_a_live_holder_on_another_node_is_not_taken(tmp_path: Path) -> None:
    path = _fake_lock(tmp_path, "sub-01", host="other-node", pid=4242, age=1)
    lock = GroupLock(tmp_path, GROUP, heartbeat_s=5, stale_after_s=10)
    busy = lock.acquire()
    assert len(busy) == 1 and busy[0].path == path and "host other-node, pid 4242" in busy[0].describe()
    assert not lock_path(tmp_path, "sub-00").exists()  # all or nothing
    # the holder's own, longer timeout wins over the contender's
    _fake_lock(tmp_path, "sub-01", host="other-node", pid=4242, age=30, stale_after=60)
    assert GroupLock(tmp_path, GROUP, stale_after_s=10).acquire()[0].path == path


def test_unreadable_lock_counts_by_its_file_time(tmp_path: Path) -> None:
    path = lock_path(tmp_path, "sub-00")
    path.parent.mkdir()
    path.write_bytes(b'{"host": "no')  # a holder killed while writing it
    assert GroupLock(tmp_path, GROUP, stale_after_s=10).acquire()[0].record is None
    os.utime(path, (time.time() - 60, time.time() - 60))
    lock = GroupLock(tmp_path, GROUP, stale_after_s=10)
    with pytest.warns(GroupLockWarning, match="unreadable lock file"):
        assert lock.acquire() == []
    lock.release()


def test_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path: Path) -> None:
    """A real second process takes the lock (live: refused), then is SIGKILLed (stale at once,
    however fresh its heartbeat)."""
    module = Path(group_lock.__file__)
    code = (
        "import importlib.util, sys, time\n"
        f"spec = importlib.util.spec_from_file_location('gl', {str(module)!r})\n"
        "gl = sys.modules['gl'] = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(gl)\n"
        f"assert gl.GroupLock({str(tmp_path)!r}, {GROUP!r}, heartbeat_s=0.2).acquire() == []\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        busy = GroupLock(tmp_path, GROUP, stale_after_s=600).acquire()
        assert busy and busy[0].record["pid"] == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()
    lock = GroupLock(tmp_path, GROUP, stale_after_s=600)
    with pytest.warns(GroupLockWarning, match=f"its process {proc.pid} on this machine is gone"):
        assert lock.acquire() == []
    lock.release()


def test_heartbeat_advances_and_a_lost_lock_is_noticed(tmp_path: Path) -> None:
    lock = GroupLock(tmp_path, GROUP, heartbeat_s=0.05, stale_after_s=10)
    assert lock.acquire() == []
    path = lock_path(tmp_path, "sub-00")
    first = json.loads(path.read_text())["heartbeat"]
    deadline = time.time() + 5
    while json.loads(path.read_text())["heartbeat"] == first and time.time() < deadline:
        time.sleep(0.05)
    assert json.loads(path.read_text())["heartbeat"] > first
    lock.check()  # still ours
    path.unlink()  # another process judged it stale and took it over
    _fake_lock(tmp_path, "sub-00", host="other-node", pid=4242, age=0)
    deadline = time.time() + 5
    while lock.lost is None and time.time() < deadline:
        time.sleep(0.05)
    with pytest.raises(GroupLockLost, match=r"sub-00 was taken over.*other-node"):
        lock.check()
    lock.release()
    assert json.loads(path.read_text())["host"] == "other-node"  # the new holder's lock stays
    assert not lock_path(tmp_path, "sub-01").exists()


@pytest.mark.parametrize("how", ["success", "exception", "ctrl-c"])
def test_locks_are_released_after_success_failure_and_ctrl_c(
    tmp_path: Path, monkeypatch, how: str
) -> None:
    use_analytic_simulator(monkeypatch)
    rows, out = _rows(tmp_path), tmp_path / "out"
    out.mkdir()
    seen: list[int] = []

    def on_generation(done: int) -> None:
        holder = group_lock.read_holder(lock_path(out, "sub-01"))
        seen.append(holder.record["pid"])  # held while fitting
        if how == "exception":
            raise RuntimeError("GPU fault")
        if how == "ctrl-c":
            raise KeyboardInterrupt

    progress = GroupProgress(on_generation=on_generation)
    if how == "ctrl-c":
        with pytest.raises(KeyboardInterrupt):
            _task(rows, out, progress)
    else:
        outcomes = _task(rows, out, progress)
        expect = "done" if how == "success" else "failed"
        assert [o["status"] for o in outcomes] == [expect, expect]
    assert seen and set(seen) == {os.getpid()}
    assert not list((out / group_lock.LOCK_DIR).iterdir())


def test_cohort_rerun_skips_a_group_held_elsewhere_and_reports_it(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest, out = write_manifest(tmp_path, 3), tmp_path / "out"
    out.mkdir()
    _fake_lock(out, "sub-01", host="gpu-node-7", pid=999, age=2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True)
    assert (summary.done, summary.skipped, summary.failed) == (1, 0, 0)
    assert summary.busy == ["sub-00", "sub-01"]
    said = [str(w.message) for w in caught if w.category is GroupLockWarning]
    assert len(said) == 1 and "2 subject(s) skipped, being fitted elsewhere: sub-00, sub-01" in said[0]
    assert "host gpu-node-7, pid 999" in said[0]
    assert not (out / "sub-00" / "run.json").exists() and (out / "sub-02" / "run.json").exists()
    assert pd.read_csv(out / "failures.csv").empty  # not failures: being fitted
    # the holder goes silent: the next rerun takes over and fits the group
    monkeypatch.setattr(group_lock, "STALE_AFTER_S", 1.0)
    _fake_lock(out, "sub-01", host="gpu-node-7", pid=999, age=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True)
    assert (summary.done, summary.skipped, summary.busy) == (2, 1, [])
    assert any("took over the stale fit lock of sub-01" in str(w.message) for w in caught)


@pytest.mark.timeout(120)
def test_dask_run_skips_the_group_locked_by_a_live_process(tmp_path: Path, monkeypatch) -> None:
    """Group [sub-02] is held by a live process: skipped. Group [sub-00, sub-01] is held by a
    worker of this cluster that has left it (fresh heartbeat): taken over at once and fitted."""
    distributed = pytest.importorskip("dask.distributed")
    use_analytic_simulator(monkeypatch)  # in-process workers (processes=False) see the patch
    manifest, out = write_manifest(tmp_path, 3), tmp_path / "out"
    out.mkdir()
    _fake_lock(out, "sub-02", host="gpu-node-7", pid=999, age=0)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")
        path = _fake_lock(out, "sub-00", host="gpu-node-3", pid=998, age=0)
        record = json.loads(path.read_text())
        record.update(dask_worker="tcp://10.9.9.9:4321", dask_scheduler=cluster.scheduler_address)
        path.write_text(json.dumps(record))
        summary = run_cohort(
            manifest,
            out,
            analytic_cohort_settings(),
            executor="dask",
            scheduler=cluster.scheduler_address,
            group_size=2,
            quiet=True,
        )
    assert (summary.done, summary.failed, summary.busy) == (2, 0, ["sub-02"])
    said = [str(w.message) for w in caught]
    assert any("being fitted elsewhere: sub-02" in m and "gpu-node-7" in m for m in said)
    assert any("Dask worker tcp://10.9.9.9:4321 has left the cluster" in m for m in said)
    assert not (out / "sub-02" / "run.json").exists() and (out / "sub-00" / "run.json").exists()
    assert json.loads(lock_path(out, "sub-02").read_text())["host"] == "gpu-node-7"
    assert not lock_path(out, "sub-00").exists()


def test_cohort_command_says_which_subjects_are_being_fitted_elsewhere(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    from delssome_norms.cli.main import main

    use_analytic_simulator(monkeypatch)
    manifest, out = write_manifest(tmp_path, 3), tmp_path / "out"
    out.mkdir()
    _fake_lock(out, "sub-01", host="gpu-node-7", pid=999, age=2)
    argv = ["cohort", "--manifest", str(manifest), "--out-dir", str(out), "--batch-subjects", "2"]
    argv += ["--mode", "euler", "--generations", "2", "--popsize", "8", "--mu", "2", "--quiet"]
    argv += ["--no-stability-gate", "--dt-train", "0.01", "--dt-val", "0.01", "--dt-test", "0.01"]
    argv += ["--burn-in", "0.72", "--fcd-window", "5", "--warmup-steps", "50", "--n-dup", "2"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "1 done, 0 already finished, 0 failed, 2 being fitted elsewhere" in text
    assert "holds the fit locks of sub-00, sub-01: rerun this command" in text


def test_a_lock_folder_that_cannot_be_written_fails_the_group_alone(tmp_path: Path) -> None:
    """acquire's OSError escaped run_group_task: on Dask it stopped the whole cohort."""
    use = tmp_path / "out"
    use.mkdir()
    (use / group_lock.LOCK_DIR).write_text("not a folder")  # mkdir of the lock folder fails
    rows = _rows(tmp_path)
    outcomes = _task(rows, use)
    assert [o["status"] for o in outcomes] == ["failed", "failed"]
    assert all(o["stage"] == "lock" and "cannot take the fit lock" in o["message"] for o in outcomes)
    record = json.loads((use / "sub-00" / "failure.json").read_text())
    assert record["stage"] == "lock"


def test_a_lock_lost_after_the_train_stage_stops_before_the_next_stage(
    tmp_path: Path, monkeypatch
) -> None:
    """The lost-lock check ran only between train generations: a holder that lost its lock during
    validation went on to test, profile and write next to the new holder."""
    use_analytic_simulator(monkeypatch)
    out = tmp_path / "out"
    out.mkdir()
    made: list[GroupLock] = []
    original = GroupLock.__init__

    def capture(self, *a, **k):
        original(self, *a, **k)
        made.append(self)

    monkeypatch.setattr(GroupLock, "__init__", capture)
    stages: list[str] = []

    def on_stage(stage: str) -> None:
        stages.append(stage)
        if stage == "val":  # the heartbeat finds the lock taken over while validating
            made[0].lost = "taken over by host other-node"

    outcomes = _task(_rows(tmp_path), out, GroupProgress(on_stage=on_stage))
    assert stages == ["val"]  # stopped at the next check, before the test stage
    assert [o["status"] for o in outcomes] == ["busy", "busy"]
    assert "taken over by host other-node" in outcomes[0]["message"]
    assert not (out / "sub-00" / "run.json").exists()


def test_stages_are_announced_in_order(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    stages: list[str] = []
    outcomes = _task(_rows(tmp_path), tmp_path / "out", GroupProgress(on_stage=stages.append))
    assert [o["status"] for o in outcomes] == ["done", "done"]
    assert stages == ["val", "test", "profile", "write"]


def test_a_failed_subject_refitted_elsewhere_is_being_fitted_not_failed(tmp_path: Path) -> None:
    from delssome_norms.fit.outputs import read_failures, write_failure

    out = tmp_path / "out"
    (out / "sub-00").mkdir(parents=True)
    write_failure(out / "sub-00", "sub-00", "train", "train: no valid candidate")
    assert read_failures(out, ["sub-00"])["subject_id"].tolist() == ["sub-00"]
    with GroupLock(out, ["sub-00"]) as lock:
        assert lock.acquire() == []
        assert read_failures(out, ["sub-00"]).empty  # a live process refits it


def test_a_lock_record_without_a_start_time_is_still_described() -> None:
    from delssome_norms.fit.group_lock import Holder

    record = {"host": "h", "pid": 7, "started": None, "heartbeat": 100.0}
    text = Holder(Path("/o/.delssome-norms.locks/s.lock"), record, 100.0).describe(now=130.0)
    assert text.startswith("host h, pid 7, since an unknown time, last heartbeat 30 s ago")
