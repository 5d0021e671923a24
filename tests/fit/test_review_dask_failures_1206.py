"""The Dask executor when things go wrong mid-run: an input deleted after the groups were
submitted, a scheduler without workers, a worker dying mid-group, Ctrl-C in the client.

Each run uses a LocalCluster of worker processes (CPU) and the executor tests' tiny settings.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import dask_cohort_settings, write_manifest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import dask_executor, run_cohort

distributed = pytest.importorskip("dask.distributed")

OUTPUTS = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")


def _cluster(n_workers: int = 1, **config):
    import dask

    with dask.config.set(config):
        return distributed.LocalCluster(
            n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        )


def _run(manifest: Path, out: Path, scheduler, group_size: int = 1, seed: int = 2, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_cohort(
            manifest,
            out,
            dask_cohort_settings(seed),
            executor="dask" if scheduler is not None else "local",
            scheduler=scheduler,
            group_size=group_size,
            quiet=True,
            **kw,
        )


def _same_results(a: Path, b: Path, ids: list[str]) -> None:
    for sid in ids:
        for f in OUTPUTS:
            assert (a / sid / f).read_bytes() == (b / sid / f).read_bytes(), (sid, f)


def _run_losing_sub02_fc(folder: Path, executor: str, monkeypatch):
    """3 subjects in groups of 1; sub-02's FC is deleted after the planning: locally once
    sub-00's group has run, with Dask once its group's files were listed for the worker check."""
    manifest = write_manifest(folder, 3, scan=7.2)
    gone = folder / "data" / "sub-02_FC.csv"
    if executor == "local":
        return _run(manifest, folder / "out", None, on_subject=lambda o: gone.unlink(missing_ok=True))
    with _cluster() as cluster, distributed.Client(cluster) as client:
        submit = client.submit

        def submit_then_delete(task, check, rows, *a, **k):
            if any(r["subject_id"] == "sub-02" for r in rows):
                gone.unlink(missing_ok=True)
            return submit(task, check, rows, *a, **k)

        monkeypatch.setattr(client, "submit", submit_then_delete)
        return _run(manifest, folder / "out", client)


def test_an_input_deleted_after_submission_fails_its_subject_alone_as_locally(
    tmp_path: Path, monkeypatch
) -> None:
    """A file deleted (or moved) while the cohort ran stopped the whole Dask run with 'cannot see
    input file(s)' (the mount check), the other groups cancelled and no failures.csv; the local
    executor fails that subject alone ('file does not exist') and goes on."""
    reports = {}
    for executor in ("local", "dask"):
        summary = _run_losing_sub02_fc(tmp_path / executor, executor, monkeypatch)
        assert (summary.done, summary.failed) == (2, 1), executor
        failures = pd.read_csv(tmp_path / executor / "out" / "failures.csv")
        failures["error"] = failures["error"].str.replace(str(tmp_path / executor), "<tmp>")
        reports[executor] = failures.to_dict("records")
    assert reports["dask"] == reports["local"]
    assert reports["dask"] == [
        {
            "subject_id": "sub-02",
            "stage": "input",
            "error": "<tmp>/data/sub-02_FC.csv: file does not exist",
        }
    ]
    _same_results(tmp_path / "local" / "out", tmp_path / "dask" / "out", ["sub-00", "sub-01"])


def test_a_worker_without_the_inputs_still_stops_the_run(tmp_path: Path) -> None:
    """The resubmission above is only for files the client lost too: a worker that does not see
    files the client sees (another mount) still stops the run before any result."""
    manifest = write_manifest(tmp_path, 2, scan=7.2)
    hidden = str(tmp_path / "data" / "sub-01_FC.csv")

    def hide(hidden=hidden):
        import os.path

        real = os.path.exists
        os.path.exists = lambda p: str(p) != hidden and real(p)

    with _cluster() as cluster, distributed.Client(cluster) as client:
        client.run(hide)
        with pytest.raises(InvalidInputError, match="cannot see input file") as err:
            _run(manifest, tmp_path / "out", cluster.scheduler_address)
    assert err.value.source == "--manifest" and hidden in str(err.value)
    assert not (tmp_path / "out" / "sub-01").exists()


@pytest.mark.timeout(120)
def test_a_scheduler_without_workers_is_said_and_the_run_goes_on_when_one_joins(
    tmp_path: Path,
) -> None:
    """With no worker (SLURM jobs still queued, or never started) the client waited silently
    for ever; now it says so at once, and finishes once a worker joins."""
    manifest = write_manifest(tmp_path, 1, scan=7.2)
    result: dict = {}
    with (
        _cluster(n_workers=0) as cluster,
        warnings.catch_warnings(record=True) as caught,
    ):
        warnings.simplefilter("always")

        def client_run() -> None:
            try:
                result["summary"] = run_cohort(
                    manifest,
                    tmp_path / "out",
                    dask_cohort_settings(2),
                    executor="dask",
                    scheduler=cluster.scheduler_address,
                    group_size=1,
                    quiet=True,
                )
            except BaseException as exc:  # reported by the assertions below
                result["error"] = exc

        thread = threading.Thread(target=client_run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        said = []
        while time.monotonic() < deadline and not said and thread.is_alive():
            time.sleep(0.2)
            said = [w for w in caught if "has no workers" in str(w.message)]
        cluster.scale(1)  # a worker joins: the waiting group runs
        thread.join(60)
    assert not thread.is_alive() and "error" not in result, result
    assert result["summary"].done == 1
    assert len(said) == 1 and issubclass(said[0].category, dask_executor.NoWorkersWarning)
    assert cluster.scheduler_address in str(said[0].message)
    assert "1 group(s) left wait until workers join" in str(said[0].message)


def _crash_in_fit(marker: str) -> None:
    """On a worker: the first fit to reach its second generation check kills the worker (after
    the first train generation's checkpoint); ``marker`` makes it happen once in the cluster."""
    from delssome_norms.fit import group_lock

    real = group_lock.GroupLock.check

    def check(self):
        self._checks = getattr(self, "_checks", 0) + 1
        if self._checks == 2:
            try:
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return real(self)
            os._exit(1)
        return real(self)

    group_lock.GroupLock.check = check


def test_a_group_whose_worker_died_resumes_on_rerun_with_the_uninterrupted_numbers(
    tmp_path: Path,
) -> None:
    """Coverage (passed before this review): the group whose worker died mid-train is listed in
    failures.csv; the rerun keeps the finished subjects, takes over the dead worker's lock at
    once, resumes from the checkpoints and writes the bytes of an uninterrupted run."""
    manifest = write_manifest(tmp_path, 3, scan=7.2)
    ids = ["sub-00", "sub-01", "sub-02"]
    assert _run(manifest, tmp_path / "local", None, group_size=2, seed=3).done == 3
    config = {
        "distributed.scheduler.allowed-failures": 0,
        "distributed.scheduler.worker-saturation": 1.0,
    }
    with _cluster(2, **config) as cluster, distributed.Client(cluster) as client:
        client.run(_crash_in_fit, str(tmp_path / "killed"))
        first = _run(manifest, tmp_path / "out", cluster.scheduler_address, 2, 3)
        assert (first.done, first.failed) == (len(ids) - first.failed, first.failed) != (3, 0)
        failed = pd.read_csv(tmp_path / "out" / "failures.csv")
        assert set(failed["stage"]) == {"worker"} and len(failed) == first.failed
        kept = {s: (tmp_path / "out" / s / "run.json").stat().st_mtime_ns for s in ids
                if s not in set(failed["subject_id"])}  # fmt: skip
        again = _run(manifest, tmp_path / "out", cluster.scheduler_address, 2, 3)
    assert (again.done, again.skipped, again.failed) == (first.failed, len(kept), 0)
    assert pd.read_csv(tmp_path / "out" / "failures.csv").empty
    assert kept == {s: (tmp_path / "out" / s / "run.json").stat().st_mtime_ns for s in kept}
    _same_results(tmp_path / "local", tmp_path / "out", ids)


def test_a_killed_group_with_a_finished_member_reports_that_member_finished(
    tmp_path: Path,
) -> None:
    """A resumed group [finished sub-00, unfitted sub-01] whose worker died reported sub-00 as
    failed too (summary 2 failed, exit 1) and wrote a failure record into its finished folder,
    while failures.csv listed only sub-01."""
    manifest = write_manifest(tmp_path, 2, scan=7.2)
    fc = tmp_path / "data" / "sub-01_FC.csv"
    good = fc.read_bytes()
    fc.write_text("not,a\nmatrix,\n")
    first = _run(manifest, tmp_path / "out", None, group_size=2)
    assert (first.done, first.failed) == (1, 1)
    fc.write_bytes(good)  # fixed: the rerun fits sub-01 in the same group

    def crash_in_fit():
        from delssome_norms.fit import cohort

        cohort.fit_group = lambda *a, **k: os._exit(1)

    config = {"distributed.scheduler.allowed-failures": 0}
    with _cluster(**config) as cluster, distributed.Client(cluster) as client:
        client.run(crash_in_fit)
        again = _run(manifest, tmp_path / "out", cluster.scheduler_address, group_size=2)
    assert (again.done, again.skipped, again.failed) == (0, 1, 1)
    assert not (tmp_path / "out" / "sub-00" / "failure.json").exists()
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert failures["subject_id"].tolist() == ["sub-01"]
    assert failures["stage"].tolist() == ["worker"]


def test_ctrl_c_in_the_client_leaves_a_folder_that_the_rerun_finishes(tmp_path: Path) -> None:
    """Coverage (passed before this review): Ctrl-C while groups run removes the worker-check
    marker, releases the out-dir lock and cancels the queued groups; reruns skip what finished,
    wait for the groups still running on the workers, and end with the uninterrupted bytes."""
    manifest = write_manifest(tmp_path, 4, scan=7.2)
    ids = [f"sub-{i:02d}" for i in range(4)]
    assert _run(manifest, tmp_path / "local", None, seed=3).done == 4

    def interrupt(outcome):
        raise KeyboardInterrupt

    with _cluster() as cluster:
        with pytest.raises(KeyboardInterrupt):
            _run(manifest, tmp_path / "out", cluster.scheduler_address, 1, 3, on_subject=interrupt)
        assert not list((tmp_path / "out").glob(".delssome-norms.dask-check-*"))
        finished = {s for s in ids if (tmp_path / "out" / s / "run.json").is_file()}
        assert 1 <= len(finished) < 4  # the rest was cancelled or is still running
        total = {"done": 0, "skipped": 0}
        for _ in range(20):  # the out-dir lock is free at once; a busy group waits its holder
            summary = _run(manifest, tmp_path / "out", cluster.scheduler_address, 1, 3)
            assert summary.failed == 0
            total["done"] += summary.done
            if not summary.busy:
                break
            time.sleep(1)
    assert not summary.busy and summary.done + summary.skipped == 4
    _same_results(tmp_path / "local", tmp_path / "out", ids)


def test_sizing_a_gpu_on_a_scheduler_without_workers_says_why_it_waits() -> None:
    """``cohort --executor dask --device cuda`` sizes its groups with a task on a worker before
    any group is submitted: with no worker yet, the client says why it waits (it was silent)."""
    from types import SimpleNamespace

    from delssome_norms.fit import cohort

    submitted = []
    client = SimpleNamespace(
        nthreads=lambda: {},
        scheduler=SimpleNamespace(address="tcp://10.0.0.1:8786"),
        submit=lambda fn, *a, **k: submitted.append(fn) or SimpleNamespace(result=lambda: (7, None)),
    )
    with pytest.warns(dask_executor.NoWorkersWarning, match="tcp://10.0.0.1:8786 has no workers"):
        assert cohort._worker_memory(client, "cuda") == 7
    assert len(submitted) == 1
