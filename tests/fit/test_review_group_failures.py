"""Lockstep groups whose feasible members change between an interrupted run and its resume
(analytic stand-in simulator): the resumed group gives the numbers of an uninterrupted run of
the members it fits now, and failures inside a group under the Dask executor."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import (
    N_TINY,
    AnalyticSimulator,
    analytic_cohort_settings,
    tiny_cdf,
    tiny_fc,
    tiny_sc,
    use_analytic_simulator,
    write_manifest,
)

from delssome_norms.errors import InputWarning, MembersChangedWarning
from delssome_norms.fit import fit_group, run_cohort
from delssome_norms.fit.subject import SubjectInputs

OUTPUTS = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")
GROUP = ["a", "b", "c"]


def _subject(sid: str, seed: int) -> SubjectInputs:
    x = np.linspace(-1, 1, N_TINY)
    return SubjectInputs(
        subject_id=sid,
        fc=tiny_fc(level=0.1 + 0.1 * seed, seed=seed),
        fcd_cdf=tiny_cdf(seed),
        tr=0.72,
        scan_length=14.4,
        sc=tiny_sc(),
        myelin=None,
        gradient=(x - x.mean()) / x.std(),
    )


SUBJECTS = {sid: _subject(sid, i) for i, sid in enumerate(GROUP)}


def _settings():
    return analytic_cohort_settings(5, popsize=6, mu=2, test_top_k=2, seed=3)


def _outputs(d: Path) -> dict[str, bytes]:
    return {f: (d / f).read_bytes() for f in OUTPUTS}


def _train_losses(d: Path) -> list[np.ndarray]:
    """Train-stage losses of every generation (their noise shows the candidates' batch rows)."""
    state = json.loads((d / "checkpoint" / "state.json").read_text())
    out = []
    for g in range(state["generations_done"]):
        with np.load(d / "checkpoint" / f"train_{g:05d}.npz") as z:
            out.append(z["corr"])
    return out


def _same_fit(ref: Path, run: Path) -> None:
    assert _outputs(ref) == _outputs(run), run.name
    a, b = _train_losses(ref), _train_losses(run)
    assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)), run.name


class _Interrupt(Exception):
    pass


def _interrupt_after(monkeypatch, calls: int) -> None:
    from delssome_norms.fit import lockstep

    class Interrupting(AnalyticSimulator):
        def simulate(self, *a, **k):
            if type(self).calls >= calls:
                raise _Interrupt
            return super().simulate(*a, **k)

    Interrupting.calls = 0
    monkeypatch.setattr(lockstep, "EulerEvaluator", Interrupting)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: Interrupting(*a, **k))


def _fit(ids: list[str], root: Path):
    """Fit ``ids`` of the planned group GROUP (the others failed their input checks)."""
    return fit_group([SUBJECTS[s] for s in ids], [root / s for s in ids], _settings(), GROUP)


@pytest.mark.parametrize(
    ("before", "after"),
    [(GROUP, ["a", "c"]), (["a", "c"], GROUP), (["a", "c"], ["a", "c"])],
    ids=["member-left", "member-joined", "same-members"],
)
@pytest.mark.parametrize("calls", [3, 6], ids=["in-train", "in-validation"])
def test_resumed_group_matches_an_uninterrupted_run_of_its_members(
    tmp_path: Path, monkeypatch, before, after, calls
) -> None:
    use_analytic_simulator(monkeypatch)
    _fit(after, tmp_path / "ref")  # uninterrupted, with the members fitted on resume
    _interrupt_after(monkeypatch, calls)  # 5 train generations, then validation (call 6)
    with pytest.raises(_Interrupt):
        _fit(before, tmp_path / "run")
    state = json.loads((tmp_path / "run" / "a" / "checkpoint" / "state.json").read_text())
    assert state["members"] == before and state["fingerprint"]["group"] == GROUP
    use_analytic_simulator(monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outcomes = _fit(after, tmp_path / "run")
    assert [o.status for o in outcomes] == ["done"] * len(after)
    for s in after:
        _same_fit(tmp_path / "ref" / s, tmp_path / "run" / s)
    changed = [w for w in caught if issubclass(w.category, MembersChangedWarning)]
    if before == after:
        assert not changed and AnalyticSimulator.calls == 8 - calls  # continued, not refitted
    else:
        assert len(changed) == 1 and "fitted again from the start" in str(changed[0].message)
        assert AnalyticSimulator.calls == 8  # 5 generations + validation + test + profile


def test_stored_results_of_another_batch_are_written_without_simulating(
    tmp_path: Path, monkeypatch
) -> None:
    """Killed while writing the outputs, and a member now fails its input checks: nothing is left
    to simulate, so the others' stored results are written (not refitted)."""
    use_analytic_simulator(monkeypatch)
    _fit(GROUP, tmp_path)
    expected = _outputs(tmp_path / "c")
    for name in (*OUTPUTS, "run.json"):  # "c" was not written yet
        (tmp_path / "c" / name).unlink()
    AnalyticSimulator.calls = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", MembersChangedWarning)
        outcomes = _fit(["a", "c"], tmp_path)
    assert [(o.status, o.message) for o in outcomes] == [("skipped", ""), ("done", "")]
    assert AnalyticSimulator.calls == 0 and _outputs(tmp_path / "c") == expected


def _cohort(manifest: Path, out: Path, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", InputWarning)
        summary = run_cohort(manifest, out, _settings(), group_size=3, quiet=True, **kw)
    return summary, [str(w.message) for w in caught if issubclass(w.category, MembersChangedWarning)]


def test_cohort_resume_after_a_subjects_file_disappeared(tmp_path: Path, monkeypatch) -> None:
    """A cohort interrupted mid-train resumes after one subject's FC file vanished: the others
    equal a run without that subject, the cohort warns, the subject is listed in failures.csv."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    # given maps: the cohort-FC gradient would change with the readable subjects (another design)
    x = np.linspace(-1, 1, N_TINY)
    pd.DataFrame({"gradient": (x - x.mean()) / x.std()}).to_csv(tmp_path / "grad.csv", index=False)
    pd.DataFrame({"myelin": 1.5 + 0.2 * x**2}).to_csv(tmp_path / "myelin.csv", index=False)
    table = pd.read_csv(manifest)
    table["gradient"], table["myelin"] = str(tmp_path / "grad.csv"), str(tmp_path / "myelin.csv")
    table.to_csv(manifest, index=False)
    fc = tmp_path / "data" / "sub-01_FC.csv"
    kept = fc.read_bytes()
    fc.unlink()
    _cohort(manifest, tmp_path / "ref")
    fc.write_bytes(kept)
    _interrupt_after(monkeypatch, 3)
    summary, _ = _cohort(manifest, tmp_path / "run")  # every member fails at "fit"
    assert summary.failed == 3
    fc.unlink()
    use_analytic_simulator(monkeypatch)
    summary, changed = _cohort(manifest, tmp_path / "run")
    assert (summary.done, summary.failed) == (2, 1), summary.failures.to_dict("records")
    assert len(changed) == 1 and "sub-00, sub-02" in changed[0]
    for s in ("sub-00", "sub-02"):
        _same_fit(tmp_path / "ref" / s, tmp_path / "run" / s)
    failures = pd.read_csv(tmp_path / "run" / "failures.csv")
    assert list(failures["subject_id"]) == ["sub-01"] and list(failures["stage"]) == ["input"]
