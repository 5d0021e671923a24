"""The shard plan tells a reordered manifest from another one (fit/shard_plan.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.shard_plan import agree_group_size


def _plan(ids: list[str]) -> SimpleNamespace:
    rows = [{"subject_id": s} for s in ids]
    return SimpleNamespace(rows=rows, groups=[list(range(len(ids)))])


def _agree(tmp_path: Path, ids: list[str]):
    return agree_group_size(tmp_path, ids, 8, False, lambda k: _plan(ids), _plan(ids))


def test_same_subjects_in_another_order_is_named_as_such(tmp_path: Path) -> None:
    ids = ["a", "b", "c", "d"]
    assert _agree(tmp_path, ids).rows[0]["subject_id"] == "a"  # first shard records the plan
    assert _agree(tmp_path, ids).rows[0]["subject_id"] == "a"  # the same manifest agrees
    with pytest.raises(InvalidInputError, match=r"same 4 subjects in another row order"):
        _agree(tmp_path, ids[::-1])


def test_other_subjects_of_the_same_count_are_not_called_a_reordering(tmp_path: Path) -> None:
    _agree(tmp_path, ["a", "b", "c", "d"])
    with pytest.raises(InvalidInputError, match=r"4 subjects, but not the same ones") as err:
        _agree(tmp_path, ["a", "b", "c", "e"])
    assert "another row order" not in str(err.value)
    with pytest.raises(InvalidInputError, match=r"4 subjects, not the 3 of this one"):
        _agree(tmp_path, ["a", "b", "c"])
