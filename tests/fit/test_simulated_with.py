"""``run.json`` records who a subject was simulated with (``simulated_with``, the batch rows'
subjects) beside its planned group (``lockstep_group``): a subject refitted while its group-mate
stays finished is simulated alone, and says so."""

from __future__ import annotations

import json
from pathlib import Path

from fit_helpers import (
    analytic_cohort_settings,
    tiny_subject,
    use_analytic_simulator,
)

from delssome_norms.fit import fit_group
from delssome_norms.fit.outputs import set_aside_previous


def _run(d: Path) -> dict:
    return json.loads((d / "run.json").read_text())


def test_a_refit_alone_records_that_it_was_simulated_alone(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    subjects, dirs = [tiny_subject("a", 0), tiny_subject("b", 1)], [tmp_path / "a", tmp_path / "b"]
    settings = analytic_cohort_settings()
    fit_group(subjects, dirs, settings)
    for d in dirs:
        assert _run(d)["lockstep_group"] == ["a", "b"] and _run(d)["simulated_with"] == ["a", "b"]
    set_aside_previous(dirs[1])  # b is refitted; a stays finished
    fit_group(subjects[1:], dirs[1:], settings, group_ids=["a", "b"])
    assert _run(dirs[1])["lockstep_group"] == ["a", "b"] and _run(dirs[1])["simulated_with"] == ["b"]
