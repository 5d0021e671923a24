"""Dask executor, one worker per device: lockstep groups are spread over the workers (issue 24).

A LocalCluster of 2 single-thread worker processes stands in for 2 GPUs (``docs/dask_slurm.md``
starts one worker per GPU with dask-jobqueue). The groups must run on both workers, each group
as one task on one worker, and give the local executor's numbers.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import dask_cohort_settings, write_manifest

from delssome_norms.fit import FitSettings, run_cohort

distributed = pytest.importorskip("dask.distributed")


def _settings() -> FitSettings:
    return dask_cohort_settings(seed=7)


def test_groups_are_sharded_over_workers(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 4, scan=7.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = run_cohort(manifest, tmp_path / "local", _settings(), group_size=1, quiet=True)
    assert local.done == 4
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        with distributed.get_task_stream(client=client) as stream:
            summary = run_cohort(
                manifest,
                tmp_path / "dask",
                _settings(),
                executor="dask",
                scheduler=cluster.scheduler_address,
                group_size=1,
                quiet=True,
            )
        workers = set(cluster.workers[w].worker_address for w in cluster.workers)
    assert (summary.done, summary.failed, summary.n_groups) == (4, 0, 4)
    tasks = [t for t in stream.data if t["key"].startswith("run_group_task")]
    assert len({t["key"] for t in tasks}) == 4  # one task per group
    used = {t["worker"] for t in tasks}
    assert used <= workers and len(used) == 2, f"groups ran on {used} of {workers}"
    for sid in ("sub-00", "sub-01", "sub-02", "sub-03"):
        a = pd.read_csv(tmp_path / "local" / sid / "EI_ratio.csv")
        b = pd.read_csv(tmp_path / "dask" / sid / "EI_ratio.csv")
        pd.testing.assert_frame_equal(a, b)
