"""Cohort review 1207b: ``simulated_with`` after a kill during the writes, the input warnings of a
cohort's fits, temporaries of killed writers, the way to refit one failed subject of a cohort,
collect's sidecar of a mixed-seed table, the surrogate timing warning, ``load_pretrained``'s
argument, the high-FC sentence.

Expectations are built by hand: the members of a 3-subject group, the fresh temporary a SIGKILL
leaves, the warning texts of the module that raises them, the two seeds of a table.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import torch
from fit_helpers import (
    AnalyticSimulator,
    analytic_cohort_settings,
    tiny_subject,
    use_analytic_simulator,
    write_manifest,
)

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import collect, fit_group, lockstep, run_cohort
from delssome_norms.fit.cohort import _load_row, plan_cohort
from delssome_norms.fit.fc_regime import check_fc_regime
from delssome_norms.fit.outputs import OUTPUT_FILES, refit_alone_advice, set_aside_previous
from delssome_norms.io import OutDirLock, read_manifest, write_matrix
from delssome_norms.io.guard import LOCK_FILE
from delssome_norms.io.writers import remove_dead_temporaries
from delssome_norms.surrogate.pretrained import load_pretrained

TEMP = ".best_parameters.csv.0123456789ab.tmp"  # the name atomic_path gives a temporary


def _run(d: Path) -> dict:
    return json.loads((d / "run.json").read_text())


# 1 ------------------------------------------------------------------------------------------ #
def test_a_group_killed_during_its_writes_records_every_member_on_rerun(
    tmp_path: Path, monkeypatch
) -> None:
    use_analytic_simulator(monkeypatch)
    ids = ["a", "b", "c"]
    subjects = [tiny_subject(s, i) for i, s in enumerate(ids)]
    dirs = [tmp_path / s for s in ids]
    settings = analytic_cohort_settings()
    fit_group(subjects, dirs, settings)
    before = {d.name: (d / "EI_ratio.csv").read_bytes() for d in dirs}
    for d in dirs[1:]:  # killed after a wrote its results: b and c hold every stage, no results
        for name in OUTPUT_FILES:
            (d / name).unlink()
    calls = AnalyticSimulator.calls
    fit_group(subjects, dirs, settings)
    assert AnalyticSimulator.calls == calls  # written from the stored stages, nothing simulated
    for d in dirs[1:]:
        assert (d / "EI_ratio.csv").read_bytes() == before[d.name]
        assert _run(d)["simulated_with"] == ids  # was ["b", "c"]
        state = json.loads((d / "checkpoint" / "state.json").read_text())
        assert state["members"] == ids
    # a genuinely smaller batch still names itself: c refitted alone, a and b finished
    set_aside_previous(dirs[2])
    fit_group(subjects[2:], dirs[2:], settings, group_ids=ids)
    assert _run(dirs[2])["simulated_with"] == ["c"] and _run(dirs[2])["lockstep_group"] == ids


# 2 ------------------------------------------------------------------------------------------ #
def test_cohort_shows_the_recomputed_for_generations_warning(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_cohort(manifest, out, analytic_cohort_settings(generations=3), group_size=2, quiet=True)
    for sid in ("sub-00", "sub-01"):  # interrupted while writing: stages of 3 generations stored
        for name in OUTPUT_FILES:
            (out / sid / name).unlink()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_cohort(manifest, out, analytic_cohort_settings(generations=2), group_size=2, quiet=True)
    texts = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    recomputed = [t for t in texts if "recomputed for --generations 2" in t]
    assert len(recomputed) == 1, texts  # shown, once
    assert "2 subject(s) (sub-00, sub-01)" in recomputed[0]


def test_noting_input_warnings_keeps_input_ones_drops_ignored_shows_others() -> None:
    class Quiet(InputWarning):
        pass

    notes: list[str] = []
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with lockstep.noting_input_warnings(notes, Quiet):
            warnings.warn("kept", InputWarning, stacklevel=1)
            warnings.warn("dropped", Quiet, stacklevel=1)
            warnings.warn("other", RuntimeWarning, stacklevel=1)
    assert notes == ["kept"]
    assert [str(w.message) for w in shown] == ["other"]


# 3 ------------------------------------------------------------------------------------------ #
def test_cohort_rerun_removes_a_fresh_temporary_from_a_finished_subject(
    tmp_path: Path, monkeypatch
) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True)
        orphan = out / "sub-01" / TEMP
        orphan.write_text("subject_id,wEE\n0,1.")  # SIGKILL mid-write: a second ago
        nested = out / "sub-01" / "checkpoint" / ".val.npz.0123456789ab.tmp"
        nested.write_bytes(b"PK")
        summary = run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True)
    assert summary.skipped == 2
    assert not orphan.exists() and not nested.exists()


def test_a_fit_holding_the_folder_lock_removes_fresh_temporaries(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    d = tmp_path / "a"
    fit_group([tiny_subject("a", 0)], [d], analytic_cohort_settings())
    (d / TEMP).write_text("half")
    fit_group([tiny_subject("a", 0)], [d], analytic_cohort_settings())  # no lock: a live writer?
    assert (d / TEMP).exists()
    with OutDirLock(d):  # as estimate-ei holds it
        fit_group([tiny_subject("a", 0)], [d], analytic_cohort_settings())
    assert not (d / TEMP).exists()


def test_a_folder_locked_by_another_process_keeps_fresh_temporaries(tmp_path: Path) -> None:
    (tmp_path / TEMP).write_text("half")
    with OutDirLock(tmp_path):
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": os.getpid() + 1, "host": "elsewhere"}))
        assert remove_dead_temporaries(tmp_path, held=True) == 0
    assert (tmp_path / TEMP).exists()
    old = 1_000_000_000
    os.utime(tmp_path / TEMP, (old, old))
    with OutDirLock(tmp_path):
        (tmp_path / LOCK_FILE).write_text(json.dumps({"pid": os.getpid() + 1, "host": "elsewhere"}))
        assert remove_dead_temporaries(tmp_path, held=True) == 1  # older than 60 s: dead


# 4 and 5 ------------------------------------------------------------------------------------ #
class _GatedLosses(NamedTuple):
    corr: torch.Tensor
    l1: torch.Tensor
    ks: torch.Tensor
    violation: np.ndarray


class _GateRejectsSecond(AnalyticSimulator):
    """The train stage's gate rejects every candidate of the group's second subject."""

    def __call__(self, params, subject_index, *, seed):
        losses = super().__call__(params, subject_index, seed=seed)
        second = np.asarray(subject_index) == 1
        nan = torch.from_numpy(np.where(second, np.nan, 0.0))
        return _GatedLosses(*(t + nan for t in losses), second.astype(np.float64))


def _demographics(path: Path) -> Path:
    pd.DataFrame(
        {"subject_id": ["sub-00", "sub-01"], "age_in_years": [20, 30], "sex": ["f", "m"]}
    ).to_csv(path, index=False)
    return path


def test_a_failed_cohort_subject_is_told_how_to_refit_it_alone_and_leaves_failures_csv(
    tmp_path: Path, monkeypatch
) -> None:
    use_analytic_simulator(monkeypatch)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: _GateRejectsSecond(*a, **k))
    manifest = write_manifest(tmp_path, 2)
    table = pd.read_csv(manifest)  # given maps: estimate-ei can fit the cohort's design
    write_matrix(np.linspace(-1.0, 1.0, 6), tmp_path / "data" / "gradient.csv")
    write_matrix(np.array([1.9, 1.2, 1.7, 1.1, 1.5, 1.3]), tmp_path / "data" / "myelin.csv")
    table["gradient"], table["myelin"] = "data/gradient.csv", "data/myelin.csv"
    table.to_csv(manifest, index=False)
    out = tmp_path / "out"
    settings = analytic_cohort_settings(seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = run_cohort(manifest, out, settings, group_size=2, quiet=True)
    assert (summary.done, summary.failed) == (1, 1)
    failures = pd.read_csv(out / "failures.csv", dtype=str)
    assert failures["subject_id"].tolist() == ["sub-01"]
    error = failures["error"].iloc[0]
    assert "gates rejected" in error and "another --seed" in error
    assert f"estimate-ei --out-dir {out / 'sub-01'} with its inputs and settings, --seed N" in error
    assert "--overwrite" in error
    assert refit_alone_advice(tmp_path / "alone") == ""  # a folder of its own: no cohort advice
    # the cohort's FC gradient: no estimate-ei option gives that design
    assert f"--cohort-gradient {out} " in refit_alone_advice(out / "sub-01", cohort_gradient=True)

    # the per-subject route: estimate-ei into the cohort folder with another seed
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: AnalyticSimulator(*a, **k))
    plan = plan_cohort(read_manifest(manifest), settings, 2)
    subject = _load_row(plan.rows[1], plan.n_regions, settings)
    reseeded = analytic_cohort_settings(seed=2)
    shutil.rmtree(out / "sub-01" / "checkpoint")  # --overwrite: the failed checkpoint goes
    outcome = lockstep.estimate_ei(subject, out / "sub-01", reseeded)
    assert outcome.status == "done"
    assert pd.read_csv(out / "failures.csv", dtype=str).empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = collect(out, _demographics(tmp_path / "demo.csv"), tmp_path / "t.csv")
    assert table["subject_id"].tolist() == ["sub-00", "sub-01"]
    sidecar = json.loads((tmp_path / "t.provenance.json").read_text())
    assert sidecar["settings"]["seed"] == [1, 2]  # not one seed for a mixed-seed table
    assert sidecar["settings_differing"] == {
        "seed": [{"value": 1, "subjects": 1}, {"value": 2, "subjects": 1}]
    }
    assert sidecar["settings"]["n_dup"] == 2  # shared settings stay single values
    # as docs/rerunning.md says: a later cohort run counts the refit alone as finished
    calls = AnalyticSimulator.calls
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = run_cohort(manifest, out, settings, group_size=2, quiet=True)
    assert (again.done, again.skipped, again.failed) == (0, 2, 0)
    assert AnalyticSimulator.calls == calls
    assert _run(out / "sub-01")["seed"] == 2  # kept, not refitted with the cohort's seed
    # while the cohort's own run with another --seed is still refused (not a refit alone)
    with pytest.raises(InvalidInputError, match=r"1 subject folder\(s\) .*: sub-00 "):
        run_cohort(manifest, out, analytic_cohort_settings(seed=3), group_size=2, quiet=True)
    # and --overwrite keeps it too (its inputs are unchanged: docs/rerunning.md)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        redo = run_cohort(manifest, out, settings, group_size=2, quiet=True, overwrite=True)
    assert (redo.done, redo.skipped, redo.lone_refits) == (0, 2, ["sub-01"])
    assert _run(out / "sub-01")["seed"] == 2


# 6 ------------------------------------------------------------------------------------------ #
def test_surrogate_timing_warning_lists_every_value_outside_with_counts_and_ids() -> None:
    weights = load_pretrained()
    lo, hi = weights.metadata["timing"]["tr_range"]
    assert lo <= 0.72 <= hi and hi < 2.0
    tr = np.array([0.72, 3.0, 3.0, 2.5, 3.0, 3.0])
    scan = np.full(6, weights.metadata["timing"]["scan_length_range"][0])
    with pytest.warns(InputWarning) as record:
        weights.check_timing(tr, scan, subject_ids=["s0", "s1", "s2", "s3", "s4", "s5"])
    text = str(record[0].message)
    assert "TR 3 s (4 subjects: s1, s2, s4 ...), 2.5 s (1 subject: s3) are outside" in text
    assert "scan length" not in text
    with pytest.warns(InputWarning, match=r"TR 3 s \(4 subjects\), 2.5 s \(1 subject\) are"):
        weights.check_timing(tr, scan)
    with pytest.warns(InputWarning, match=r"TR 3 s is outside the trained range \S+ \S+ s \(2 subj"):
        weights.check_timing(np.array([3.0, 3.0]), scan[:2], subject_ids=["x", "y"])
    with pytest.warns(InputWarning, match=r"TR 3 s is outside the trained range"):
        weights.check_timing(3.0, float(scan[0]))


# 7 ------------------------------------------------------------------------------------------ #
@pytest.mark.parametrize("folder", [3, 2.5, ["pretrained"]])
def test_load_pretrained_refuses_a_non_path(folder) -> None:
    with pytest.raises(InvalidInputError, match=r"must be the path of a pretrained folder"):
        load_pretrained(folder)


# 8 ------------------------------------------------------------------------------------------ #
def test_high_fc_sentence_names_the_data_mean() -> None:
    fc = np.full((6, 6), 0.55)
    np.fill_diagonal(fc, 1.0)
    text = check_fc_regime(fc)
    assert text.startswith("FC has mean 0.55")
    assert "far below these data's 0.55" in text and "far from 0.5" not in text


def test_noting_input_warnings_off_the_main_thread_leaves_warnings_working() -> None:
    """On a worker thread the block records nothing (catch_warnings is process-wide): it drops
    InputWarnings as before, and warnings after it are shown as usual."""
    import threading
    import warnings as w

    from delssome_norms.errors import InputWarning
    from delssome_norms.fit.lockstep import noting_input_warnings

    notes: list[str] = []

    def work() -> None:
        with noting_input_warnings(notes):
            w.warn("dropped on a worker", InputWarning, stacklevel=1)

    before = w.showwarning
    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert notes == [] and w.showwarning is before
    with w.catch_warnings(record=True) as caught:
        w.simplefilter("always")
        w.warn("still shown", UserWarning, stacklevel=1)
    assert [str(c.message) for c in caught] == ["still shown"]
