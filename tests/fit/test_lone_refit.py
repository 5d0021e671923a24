"""A cohort subject refitted alone with another seed (fit/lone_refit.py): finished, it is kept by
a later cohort run; unfinished, the cohort run names it and the ways on."""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import analytic_cohort_settings, use_analytic_simulator, write_manifest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import lockstep, run_cohort
from delssome_norms.fit.cohort import _load_row, plan_cohort
from delssome_norms.fit.cohort_fc import with_cohort_gradient
from delssome_norms.fit.lone_refit import REFIT_FILE
from delssome_norms.fit.outputs import OUTPUT_FILES, write_failure
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


def test_a_cohorts_own_groups_of_one_are_no_refits_alone(tmp_path: Path, monkeypatch) -> None:
    """Results and checkpoints of the cohort's own groups of one subject (--batch-subjects 1)
    look like a refit alone but were not recorded as one: another --seed is still refused, and
    an unfinished one is named by its group, not as a refit alone."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_cohort(manifest, out, analytic_cohort_settings(seed=0), group_size=1, quiet=True)
    assert not (out / "sub-01" / REFIT_FILE).exists()
    with pytest.raises(InvalidInputError, match=r"2 subject folder\(s\).*settings\.seed"):
        run_cohort(manifest, out, analytic_cohort_settings(seed=5), group_size=2, quiet=True)
    for name in OUTPUT_FILES:  # sub-01 interrupted in its group of one
        (out / "sub-01" / name).unlink()
    with pytest.raises(InvalidInputError, match=r"lockstep group of 1 subject") as err:
        run_cohort(manifest, out, analytic_cohort_settings(seed=0), group_size=2, quiet=True)
    assert "refit of" not in str(err.value)


def test_a_failed_or_other_budget_refit_alone_is_not_called_one_to_finish(
    tmp_path: Path, monkeypatch
) -> None:
    manifest, out, settings, subject = _cohort(tmp_path, monkeypatch)
    shutil.rmtree(out / "sub-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lockstep.estimate_ei(subject, out / "sub-01", analytic_cohort_settings(seed=7))
    for name in OUTPUT_FILES:
        (out / "sub-01" / name).unlink()
    write_failure(out / "sub-01", "sub-01", "train", "the gates rejected every candidate")
    with pytest.raises(InvalidInputError, match=r"refit of sub-01 alone with seed 7 that failed"):
        run_cohort(manifest, out, settings, group_size=2, quiet=True)
    # a refit alone with another budget is another pipeline: not "finish it"
    shutil.rmtree(out / "sub-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lockstep.estimate_ei(subject, out / "sub-01", analytic_cohort_settings(seed=7, generations=4))
    for name in OUTPUT_FILES:
        (out / "sub-01" / name).unlink()
    with pytest.raises(InvalidInputError, match=r"sub-01") as err:
        run_cohort(manifest, out, settings, group_size=2, quiet=True)
    assert "refit of sub-01" not in str(err.value)


def test_a_cohort_fc_gradient_subject_refitted_alone_joins_its_cohort(
    tmp_path: Path, monkeypatch
) -> None:
    """A subject without maps (another atlas: the cohort's FC gradient) refitted alone with
    ``with_cohort_gradient`` has the cohort's design: a cohort rerun keeps it, collect mixes it."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)  # N_TINY regions, no maps: the cohort's FC gradient
    out = tmp_path / "out"
    settings = analytic_cohort_settings(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_cohort(manifest, out, settings, group_size=2, quiet=True)
    plan = plan_cohort(read_manifest(manifest), settings, 2)
    subject = _load_row(plan.rows[1], plan.n_regions, settings)
    first = json.loads((out / "sub-01" / "run.json").read_text())
    refit, values = with_cohort_gradient(subject, out, settings.maps)
    stored = json.loads((out / "cohort_gradient.json").read_text())["gradient"]
    np.testing.assert_array_equal(values, stored)
    shutil.rmtree(out / "sub-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = lockstep.estimate_ei(
            refit, out / "sub-01", analytic_cohort_settings(seed=7), fallback_gradient=values
        )
    assert outcome.status == "done"
    again = json.loads((out / "sub-01" / "run.json").read_text())
    assert again["design"] == first["design"] and "cohort FC" in again["design"]
    assert again["fingerprint"]["maps_sha256"] == first["fingerprint"]["maps_sha256"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_cohort(manifest, out, settings, group_size=2, quiet=True)
    assert (summary.done, summary.skipped) == (0, 2)
    # without the cohort's gradient the refit would be fitted with its own FC's: another design
    own, _ = lockstep.build_space(subject, None, False, settings.maps)
    assert not np.allclose(own.gradient, values)


def test_with_cohort_gradient_refuses_what_would_not_use_it(tmp_path: Path, monkeypatch) -> None:
    _, out, settings, subject = _cohort(tmp_path, monkeypatch)  # subjects with maps
    with pytest.raises(InvalidInputError, match="has its own myelin/gradient maps"):
        with_cohort_gradient(subject, out, settings.maps)
    bare = replace(subject, myelin=None, gradient=None)
    with pytest.raises(InvalidInputError, match=r"no cohort_gradient\.json here") as err:
        with_cohort_gradient(bare, out, settings.maps)
    assert err.value.source == str(out)


def test_estimate_ei_cohort_gradient_refuses_a_dk68_subject_on_the_shipped_maps(
    tmp_path: Path, capsys
) -> None:
    from delssome_norms.cli.main import main
    from delssome_norms.datasets import materialise_subjects

    data = materialise_subjects(tmp_path / "subj").parent
    sid = pd.read_csv(data / "manifest.csv")["subject_id"].iloc[0]
    args = ["estimate-ei", "--fc", str(data / f"{sid}_FC.csv"), "--fcd-cdf"]
    args += [str(data / f"{sid}_FCD_CDF.csv"), "--tr", "0.72", "--scan-length", "432"]
    args += ["--out-dir", str(tmp_path / "c" / sid), "--cohort-gradient", str(tmp_path / "c")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--cohort-gradient" in err and "shipped DK68 maps" in err and "Traceback" not in err
    assert not (tmp_path / "c").exists()  # refused before any folder was made
    assert main([*args, "--maps", "fc-gradient"]) == 2  # then the folder has no record
    assert "no cohort_gradient.json here" in capsys.readouterr().err


def test_a_record_left_by_a_fit_that_refitted_nothing_fools_no_cohort_rerun(
    tmp_path: Path, monkeypatch
) -> None:
    """estimate_ei into a finished cohort subject (nothing refitted) still leaves the record; the
    cohort's own results (fitted in its group) are no refit alone, and the cohort's own
    checkpoint is not called one (review of 2026-12-07)."""
    manifest, out, settings, subject = _cohort(tmp_path, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = lockstep.estimate_ei(subject, out / "sub-01", settings)
    assert outcome.status == "skipped" and (out / "sub-01" / REFIT_FILE).exists()
    with pytest.raises(InvalidInputError, match=r"2 subject folder\(s\).*settings\.seed"):
        run_cohort(manifest, out, analytic_cohort_settings(seed=5), group_size=2, quiet=True)
    for name in OUTPUT_FILES:  # the cohort's own checkpoint, unfinished, beside the record
        (out / "sub-01" / name).unlink()
    with pytest.raises(InvalidInputError, match=r"sub-01") as err:
        run_cohort(manifest, out, analytic_cohort_settings(seed=5), group_size=2, quiet=True)
    assert "refit of sub-01" not in str(err.value)


def test_a_failed_refit_alone_is_listed_in_the_cohorts_failures(tmp_path: Path, monkeypatch) -> None:
    """A finished cohort subject refitted alone whose refit fails joins failures.csv (it was
    left out, so collect's pointer to failures.csv led nowhere)."""
    import torch
    from fit_helpers import AnalyticSimulator
    from test_review_cohort_1207b import _GatedLosses

    from delssome_norms.fit.outputs import set_aside_previous

    class RejectsAll(AnalyticSimulator):
        def __call__(self, params, subject_index, *, seed):
            losses = super().__call__(params, subject_index, seed=seed)
            every = np.ones(np.shape(subject_index), dtype=bool)
            nan = torch.from_numpy(np.where(every, np.nan, 0.0))
            return _GatedLosses(*(t + nan for t in losses), every.astype(np.float64))

    _, out, _, subject = _cohort(tmp_path, monkeypatch)
    assert pd.read_csv(out / "failures.csv").empty
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: RejectsAll(*a, **k))
    set_aside_previous(out / "sub-01")  # what --overwrite does first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = lockstep.estimate_ei(subject, out / "sub-01", analytic_cohort_settings(seed=7))
    assert outcome.status == "failed"
    failures = pd.read_csv(out / "failures.csv", dtype=str)
    assert failures["subject_id"].tolist() == ["sub-01"] and "gates rejected" in failures["error"][0]
