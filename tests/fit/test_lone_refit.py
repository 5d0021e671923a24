"""A cohort subject refitted alone with another seed (fit/lone_refit.py): finished, it is kept by
a later cohort run; unfinished, the cohort run names it and the ways on."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import analytic_cohort_settings, use_analytic_simulator, write_manifest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import lockstep, run_cohort
from delssome_norms.fit.cohort import _load_row, plan_cohort
from delssome_norms.fit.lone_refit import is_lone_refit
from delssome_norms.fit.outputs import OUTPUT_FILES
from delssome_norms.io import read_manifest, write_matrix


def _cohort(tmp_path: Path, monkeypatch):
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    table = pd.read_csv(manifest)  # given maps: a refit alone has the cohort's design
    write_matrix(np.linspace(-1.0, 1.0, 6), tmp_path / "data" / "gradient.csv")
    write_matrix(np.array([1.9, 1.2, 1.7, 1.1, 1.5, 1.3]), tmp_path / "data" / "myelin.csv")
    table["gradient"], table["myelin"] = "data/gradient.csv", "data/myelin.csv"
    table.to_csv(manifest, index=False)
    out = tmp_path / "out"
    settings = analytic_cohort_settings(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_cohort(manifest, out, settings, group_size=2, quiet=True)
    plan = plan_cohort(read_manifest(manifest), settings, 2)
    subject = _load_row(plan.rows[1], plan.n_regions, settings)
    return manifest, out, settings, subject


def test_an_unfinished_refit_alone_is_named_with_the_ways_on(tmp_path: Path, monkeypatch) -> None:
    manifest, out, settings, subject = _cohort(tmp_path, monkeypatch)
    shutil.rmtree(out / "sub-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lockstep.estimate_ei(subject, out / "sub-01", analytic_cohort_settings(seed=7))
    for name in OUTPUT_FILES:  # interrupted before its results were written
        (out / "sub-01" / name).unlink()
    with pytest.raises(InvalidInputError) as err:
        run_cohort(manifest, out, settings, group_size=2, quiet=True)
    text = str(err.value)
    assert "unfinished refit of sub-01 alone (seed 7)" in text
    assert "rerunning the estimate-ei command" in text
    assert str(out / "sub-01" / "checkpoint") in text
    # deleting its checkpoint, as the message says, lets the cohort fit it with its seed
    shutil.rmtree(out / "sub-01" / "checkpoint")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_cohort(manifest, out, settings, group_size=2, quiet=True)
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, 0)


def test_is_lone_refit_needs_a_refit_alone_differing_only_in_the_seed() -> None:
    alone = {"subject_id": "b", "lockstep_group": ["b"]}
    grouped = {"subject_id": "b", "lockstep_group": ["a", "b"]}
    assert is_lone_refit(alone, ["settings.seed"], ["a", "b"])
    assert not is_lone_refit(grouped, ["settings.seed"], ["a", "b"])  # the cohort's other seed
    assert not is_lone_refit(alone, ["settings.seed", "settings.popsize"], ["a", "b"])
    assert not is_lone_refit(alone, [], ["a", "b"])  # identical runs need no exception
    assert not is_lone_refit(alone, ["settings.seed"], ["b"])  # K = 1: cannot tell them apart
    assert not is_lone_refit(alone, ["settings.seed"], None)  # estimate-ei's own check
