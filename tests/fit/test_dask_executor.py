"""The Dask executor: one task per lockstep group, spread over the workers, local numbers.

A LocalCluster of 2 single-thread worker processes stands in for 2 GPUs (``docs/dask_slurm.md``
starts one worker per GPU with dask-jobqueue).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import dask_cohort_settings, write_manifest

from delssome_norms.fit import run_cohort

distributed = pytest.importorskip("dask.distributed")

OUTPUTS = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")


def _local_then_dask(tmp_path: Path, n_subjects: int, group_size: int, seed: int):
    """Run the same tiny cohort locally and on a 2-worker cluster; the dask summary, the
    subjects reported as they finished, the task stream and the workers' addresses."""
    manifest = write_manifest(tmp_path, n_subjects, scan=7.2)
    settings = dask_cohort_settings(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = run_cohort(manifest, tmp_path / "local", settings, group_size=group_size, quiet=True)
    assert local.done == n_subjects
    seen: list[str] = []
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        warnings.catch_warnings(),
        distributed.get_task_stream(client=client) as stream,
    ):
        warnings.simplefilter("ignore")
        summary = run_cohort(
            manifest,
            tmp_path / "dask",
            settings,
            executor="dask",
            scheduler=cluster.scheduler_address,
            group_size=group_size,
            quiet=True,
            on_subject=lambda o: seen.append(o["subject_id"]),
        )
        workers = {cluster.workers[w].worker_address for w in cluster.workers}
    for sid in seen:
        for f in OUTPUTS:
            local_bytes = (tmp_path / "local" / sid / f).read_bytes()
            assert local_bytes == (tmp_path / "dask" / sid / f).read_bytes(), (sid, f)
    return summary, seen, stream.data, workers


def test_dask_local_cluster_matches_local_executor(tmp_path: Path) -> None:
    summary, seen, _, _ = _local_then_dask(tmp_path, n_subjects=3, group_size=2, seed=4)
    assert (summary.done, summary.failed, summary.n_groups) == (3, 0, 2)
    assert sorted(seen) == ["sub-00", "sub-01", "sub-02"]
    assert pd.read_csv(tmp_path / "dask" / "failures.csv").empty


def test_groups_are_sharded_over_workers(tmp_path: Path) -> None:
    summary, seen, stream, workers = _local_then_dask(tmp_path, n_subjects=4, group_size=1, seed=7)
    assert (summary.done, summary.failed, summary.n_groups) == (4, 0, 4)
    assert sorted(seen) == ["sub-00", "sub-01", "sub-02", "sub-03"]
    tasks = [t for t in stream if t["key"].startswith("run_group_task")]
    assert len({t["key"] for t in tasks}) == 4  # one task per group
    used = {t["worker"] for t in tasks}
    assert used <= workers and len(used) == 2, f"groups ran on {used} of {workers}"


def test_relative_out_dir_is_the_clients_folder_not_the_workers(tmp_path: Path, monkeypatch) -> None:
    """Workers started in another folder (as on a cluster) write where the client asked."""
    manifest = write_manifest(tmp_path, 1, scan=7.2)
    (tmp_path / "workers").mkdir()
    (tmp_path / "client").mkdir()
    monkeypatch.chdir(tmp_path / "workers")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        monkeypatch.chdir(tmp_path / "client")
        summary = run_cohort(
            manifest,
            "out",
            dask_cohort_settings(2),
            executor="dask",
            scheduler=cluster.scheduler_address,
            group_size=1,
            quiet=True,
        )
    assert summary.done == 1
    assert (tmp_path / "client" / "out" / "sub-00" / "EI_ratio.csv").is_file()
    assert not (tmp_path / "workers" / "out").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs workers without CUDA")
def test_the_device_is_checked_on_the_workers_not_the_client(tmp_path: Path) -> None:
    """The client may lack the workers' GPU (a login node); a worker without it is refused."""
    import dataclasses

    from delssome_norms.errors import InvalidInputError

    manifest = write_manifest(tmp_path, 1, scan=7.2)
    settings = dataclasses.replace(dask_cohort_settings(2), device="cuda")
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        pytest.raises(InvalidInputError, match="on a Dask worker: 'cuda' was asked for but CUDA"),
    ):
        run_cohort(
            manifest,
            tmp_path / "out",
            settings,
            executor="dask",
            scheduler=cluster.scheduler_address,
            quiet=True,
        )
    assert not (tmp_path / "out" / "sub-00").exists()  # refused before any work
