"""Cohorts that are not HCP: TR 0.8-3 s, 5-10 minute scans, sites with different TRs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import tiny_surrogate_weights, write_manifest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import CMAESSettings, FitSettings, load_subject, run_cohort
from delssome_norms.fit import cohort as cohort_module
from delssome_norms.fit.cohort import plan_cohort
from delssome_norms.model import SimulationTiming
from delssome_norms.surrogate import SURROGATE_BACKEND


@pytest.mark.parametrize(
    ("tr", "frames", "window"),
    [(0.8, 450, 75), (1.5, 320, 40), (2.0, 240, 30), (2.5, 192, 24), (3.0, 100, 20)],
)
def test_default_timing_of_slow_trs(tr: float, frames: int, window: int) -> None:
    """docs/science.md §2-§3: burn-in ceil(72 / TR) TR, round(scan / TR) frames kept, FCD window
    round(60 / TR) frames (about 60 s, not the 83 frames of TR 0.72 s), at both default steps."""
    for dt in (0.005, 0.0005):
        t = SimulationTiming(tr=tr, scan_length=frames * tr, dt=dt)
        assert t.n_frames == frames
        assert t.fcd_window == window
        assert t.burn_in == pytest.approx(math.ceil(72 / tr) * tr)
        assert t.n_windows == frames - window + 1


def test_tr_in_milliseconds_is_named_before_the_fcd_window(tmp_path: Path) -> None:
    """A TR of 2000 (ms) with time series was refused as 'window ... got 0' (round(60 / 2000))."""
    ts = np.random.default_rng(0).standard_normal((240, 6))
    path = tmp_path / "run.tsv"
    np.savetxt(path, ts, delimiter="\t")
    with pytest.raises(InvalidInputError, match="milliseconds"):
        load_subject("s01", 2000.0, None, timeseries=str(path))


def test_surrogate_timing_outside_the_weights_is_reported_before_any_work(
    tmp_path: Path, monkeypatch
) -> None:
    """A TR-2 cohort in surrogate mode (weights trained at TR 0.72 s): one warning, naming the
    way out, before any group runs (it used to come from each group's train stage only, on the
    Dask worker with ``--executor dask``)."""
    weights = tiny_surrogate_weights(tmp_path / "weights")
    manifest = write_manifest(tmp_path, 2, tr=2.0, scan=40.0)
    settings = FitSettings(
        cmaes=CMAESSettings(generations=1, popsize=4, mu=2),
        mode="surrogate",
        surrogate_weights=str(weights),
        dt_train=0.01, dt_val=0.01, dt_test=0.01, burn_in=2.0, fcd_window=5, warmup_steps=10,
    )  # fmt: skip

    def no_work(*args, **kwargs):
        raise RuntimeError("work started")

    monkeypatch.setattr(cohort_module, "_run_locked", no_work)
    with (
        pytest.warns(InputWarning, match=r"TR 2 s is outside .*--mode euler"),
        pytest.raises(RuntimeError, match="work started"),
    ):
        run_cohort(manifest, tmp_path / "out", settings, surrogate=SURROGATE_BACKEND)


def test_automatic_group_size_plans_for_the_longest_scan(monkeypatch) -> None:
    """Two sites: TR 2 s, 480 s (240 frames) listed first, then HCP (1200 frames). The memory
    per subject must be that of the longest scan, not of the first row's."""
    seen = []

    def record(n_regions, n_frames, *args, **kwargs):
        seen.append(n_frames)
        return 4

    monkeypatch.setattr(cohort_module, "choose_group_size", record)
    table = pd.DataFrame({"subject_id": ["a", "b"], "tr": [2.0, 0.72], "scan_length": [480.0, 864.0]})
    plan = plan_cohort(table, FitSettings(), None, n_regions=68)
    assert seen == [1200]
    assert plan.groups == [[0], [1]]  # one lockstep group per timing
