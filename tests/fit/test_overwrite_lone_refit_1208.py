"""``cohort --overwrite`` keeps a finished refit alone whose inputs are unchanged (review of
2026-12-08: it was refitted with the cohort's seed, the seed that had failed it, and its good
result moved to previous/); one whose inputs changed is refitted; the refit-alone advice quotes
its paths."""

from __future__ import annotations

import json
import shlex
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from fit_helpers import (
    AnalyticSimulator,
    analytic_cohort_settings,
    use_analytic_simulator,
    write_manifest,
)

from delssome_norms.fit import cohort, lockstep, run_cohort
from delssome_norms.fit.cohort import _load_row, plan_cohort
from delssome_norms.fit.lone_refit import REFIT_FILE
from delssome_norms.fit.outputs import PREVIOUS_DIR, refit_alone_advice
from delssome_norms.io import read_manifest, write_matrix

COHORT_SEED, LONE_SEED = 1, 7


def _seed(subject_dir: Path) -> int:
    return json.loads((subject_dir / "run.json").read_text())["fingerprint"]["settings"]["seed"]


def _quiet_cohort(manifest: Path, out: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_cohort(manifest, out, analytic_cohort_settings(seed=COHORT_SEED), group_size=2,
                          quiet=True, **kw)  # fmt: skip


def _cohort_with_lone_refit(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """Two subjects (given maps: a refit alone has the cohort's design) fitted with the cohort's
    seed, then sub-01 refitted alone into its cohort folder with another seed."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    table = pd.read_csv(manifest)
    write_matrix(np.linspace(-1.0, 1.0, 6), tmp_path / "data" / "gradient.csv")
    write_matrix(np.array([1.9, 1.2, 1.7, 1.1, 1.5, 1.3]), tmp_path / "data" / "myelin.csv")
    table["gradient"], table["myelin"] = "data/gradient.csv", "data/myelin.csv"
    table.to_csv(manifest, index=False)
    out = tmp_path / "out"
    _quiet_cohort(manifest, out)
    settings = analytic_cohort_settings(seed=COHORT_SEED)
    plan = plan_cohort(read_manifest(manifest), settings, 2)
    subject = _load_row(plan.rows[1], plan.n_regions, settings)
    shutil.rmtree(out / "sub-01")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = lockstep.estimate_ei(subject, out / "sub-01", analytic_cohort_settings(seed=LONE_SEED))
    assert outcome.status == "done" and (out / "sub-01" / REFIT_FILE).is_file()
    return manifest, out


def _edit_fc(tmp_path: Path, sid: str) -> None:
    path = tmp_path / "data" / f"{sid}_FC.csv"
    fc = pd.read_csv(path, header=None).to_numpy()
    fc[0, 1] = fc[1, 0] = fc[0, 1] + 0.05
    write_matrix(fc, path)


def test_overwrite_keeps_a_finished_refit_alone_and_refits_the_edited_subject(
    tmp_path: Path, monkeypatch
) -> None:
    manifest, out = _cohort_with_lone_refit(tmp_path, monkeypatch)
    kept_ei = (out / "sub-01" / "EI_ratio.csv").read_text()
    _edit_fc(tmp_path, "sub-00")  # the user edits only sub-00's inputs
    seen: list[str] = []  # the warnings recorded when the first group starts
    real_task = cohort.run_group_task

    def first_task(*args, **kwargs):
        seen.extend(str(w.message) for w in caught)
        return real_task(*args, **kwargs)

    monkeypatch.setattr(cohort, "run_group_task", first_task)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_cohort(
            manifest, out, analytic_cohort_settings(seed=COHORT_SEED), group_size=2, quiet=True,
            overwrite=True,
        )  # fmt: skip
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, 0)
    assert summary.lone_refits == ["sub-01"]
    assert _seed(out / "sub-01") == LONE_SEED  # kept, not refitted with the cohort's seed
    assert (out / "sub-01" / "EI_ratio.csv").read_text() == kept_ei
    assert not (out / "sub-01" / PREVIOUS_DIR).exists()
    assert _seed(out / "sub-00") == COHORT_SEED
    assert json.loads((out / "sub-00" / "run.json").read_text())["simulated_with"] == ["sub-00"]
    # named before any work, with the way to have it refitted instead
    kept = [m for m in seen if "--overwrite keeps 1 finished refit(s) alone" in m]
    assert len(kept) == 1 and "sub-01 (seed 7)" in kept[0] and f"delete its {REFIT_FILE}" in kept[0]


def test_a_rerun_without_overwrite_counts_the_kept_refit_alone_silently(
    tmp_path: Path, monkeypatch
) -> None:
    manifest, out = _cohort_with_lone_refit(tmp_path, monkeypatch)
    calls = AnalyticSimulator.calls
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary = run_cohort(
            manifest, out, analytic_cohort_settings(seed=COHORT_SEED), group_size=2, quiet=True
        )
    assert (summary.done, summary.skipped, summary.lone_refits) == (0, 2, ["sub-01"])
    assert AnalyticSimulator.calls == calls
    assert not [w for w in caught if "refit(s) alone" in str(w.message)]  # only --overwrite warns


def test_overwrite_refits_a_refit_alone_whose_inputs_changed(tmp_path: Path, monkeypatch) -> None:
    manifest, out = _cohort_with_lone_refit(tmp_path, monkeypatch)
    _edit_fc(tmp_path, "sub-01")
    summary = _quiet_cohort(manifest, out, overwrite=True)
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, 0)
    assert summary.lone_refits == []
    assert _seed(out / "sub-01") == COHORT_SEED


def test_deleting_the_record_has_overwrite_refit_it_with_the_cohorts_seed(
    tmp_path: Path, monkeypatch
) -> None:
    """The way on that the warning and docs/rerunning.md name."""
    manifest, out = _cohort_with_lone_refit(tmp_path, monkeypatch)
    (out / "sub-01" / REFIT_FILE).unlink()
    summary = _quiet_cohort(manifest, out, overwrite=True)
    assert (summary.done, summary.skipped, summary.lone_refits) == (1, 1, [])
    assert _seed(out / "sub-01") == COHORT_SEED


def test_the_refit_alone_advice_quotes_paths_with_spaces(tmp_path: Path) -> None:
    cohort_dir = tmp_path / "cohort out"
    (cohort_dir / "P002").mkdir(parents=True)
    pd.DataFrame(columns=["subject_id", "stage", "error"]).to_csv(
        cohort_dir / "failures.csv", index=False
    )
    advice = refit_alone_advice(cohort_dir / "P002", cohort_gradient=True)
    subject = shlex.quote(str(cohort_dir / "P002"))
    assert subject.startswith("'") and f"estimate-ei --out-dir {subject} " in advice
    assert f"--cohort-gradient {shlex.quote(str(cohort_dir))} " in advice
    assert "--overwrite included, keep that refit" in advice
