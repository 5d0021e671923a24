"""A subject interrupted in group (a, b) and resumed in the same group listed (b, a) — the
manifest's rows re-sorted — is refused with a message that says so (the noise depends on the
members' order), not one that asks for the same manifest and --batch-subjects it already has."""

from __future__ import annotations

from pathlib import Path

import pytest
from fit_helpers import use_analytic_simulator
from test_lockstep import _Interrupt, _interrupting, _settings, _subject

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.lockstep import fit_group


def test_a_group_resumed_in_another_row_order_names_the_re_sorting(tmp_path: Path, monkeypatch) -> None:
    from delssome_norms.fit import lockstep

    subjects = [_subject("a", 0.1, 0), _subject("b", 0.2, 1)]
    settings = _settings(8)
    dirs = [tmp_path / s.subject_id for s in subjects]
    cls = _interrupting(4)
    cls.calls = 0
    monkeypatch.setattr(lockstep, "EulerEvaluator", cls)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: cls(*a, **k))
    with pytest.raises(_Interrupt):
        fit_group(subjects, dirs, settings)
    use_analytic_simulator(monkeypatch)
    with pytest.raises(InvalidInputError, match="listed in another order") as err:
        fit_group(subjects[::-1], dirs[::-1], settings, group_ids=["b", "a"])
    assert "re-sorted" in str(err.value) and "earlier row order" in str(err.value)
    assert "--batch-subjects" not in str(err.value)
    fit_group(subjects, dirs, settings)  # the earlier order resumes
