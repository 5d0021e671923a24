"""The Dask executor on a LocalCluster of 2 worker processes gives the local executor's numbers."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import dask_cohort_settings, write_manifest

from delssome_norms.fit import FitSettings, run_cohort

distributed = pytest.importorskip("dask.distributed")

OUTPUTS = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")


def _settings() -> FitSettings:
    return dask_cohort_settings(seed=4)


def test_dask_local_cluster_matches_local_executor(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 3, scan=7.2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        local = run_cohort(manifest, tmp_path / "local", _settings(), group_size=2, quiet=True)
    assert local.done == 3
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        seen = []
        summary = run_cohort(
            manifest,
            tmp_path / "dask",
            _settings(),
            executor="dask",
            scheduler=cluster.scheduler_address,
            group_size=2,
            quiet=True,
            on_subject=lambda o: seen.append(o["subject_id"]),
        )
    assert (summary.done, summary.failed, summary.n_groups) == (3, 0, 2)
    assert sorted(seen) == ["sub-00", "sub-01", "sub-02"]
    assert pd.read_csv(tmp_path / "dask" / "failures.csv").empty
    for sid in seen:
        for f in OUTPUTS:
            assert (tmp_path / "local" / sid / f).read_bytes() == (
                tmp_path / "dask" / sid / f
            ).read_bytes()
