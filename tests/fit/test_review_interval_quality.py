"""Review of the fit-quality verdict: each reason at both sides of its threshold, a missing test
cost reported as unchecked, numpy metrics, and strict JSON of the metrics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from delssome_norms.fit import quality as q

GOOD = {
    "test_total": 0.6,
    "self_floor_total": 0.5,
    "gate_rejected_fraction": 0.1,
    "test_fallback": False,
    "valid_test_duplicates": 3,
    "n_dup": 3,
}


@pytest.mark.parametrize(
    ("key", "ok", "bad", "reason"),
    [
        # "more than 0.25 above the floor": exactly 0.25 above is not flagged
        ("test_total", 0.75, 0.75 + 1e-9, "cost_above_floor"),
        # "over half": exactly half is not flagged
        ("gate_rejected_fraction", 0.5, 0.5 + 1e-9, "gate_rejected_most"),
        ("test_fallback", False, True, "test_fallback"),
        ("valid_test_duplicates", 3, 2, "few_valid_duplicates"),
    ],
)
def test_each_reason_fires_exactly_past_its_threshold(key, ok, bad, reason) -> None:
    # the documented thresholds (docs/results.md table: 0.25 above the floor, over half the candidates)
    assert (q.COST_FLOOR_MARGIN, q.GATE_REJECTED_MAX) == (0.25, 0.5)
    assert q.assess({**GOOD, key: ok})["reasons"] == []
    verdict = q.assess({**GOOD, key: bad})
    assert verdict["reasons"] == [reason] and verdict["flagged"] and verdict["unchecked"] == []


def test_a_winner_without_a_test_cost_has_its_cost_check_unchecked() -> None:
    # A winner with an invalid test duplicate has NaN test losses (the cost of the duplicate-
    # averaged FC needs every duplicate: Summary.valid is valid_set), while the profile's floor
    # is finite. The cost check could not run and must say so, not read as "checked and fine".
    verdict = q.assess({**GOOD, "test_total": math.nan, "valid_test_duplicates": 2})
    assert verdict["reasons"] == ["few_valid_duplicates"]
    assert verdict["unchecked"] == ["cost_above_floor"]
    assert verdict["metrics"]["test_total"] is None
    # no floor (n_dup 1 or --no-interval): unchecked as before
    assert q.assess({**GOOD, "self_floor_total": None})["unchecked"] == ["cost_above_floor"]


def test_numpy_metrics_are_judged_like_python_numbers() -> None:
    # np.int64 / np.float32 are not int / float subclasses: they used to read as "missing"
    numpy = {
        **GOOD,
        "valid_test_duplicates": np.int64(2),
        "n_dup": np.int64(3),
        "test_total": np.float32(0.9),
        "gate_rejected_fraction": np.float32(0.75),
    }
    reasons = ["cost_above_floor", "gate_rejected_most", "few_valid_duplicates"]
    assert q.assess(numpy)["reasons"] == reasons


def test_non_finite_metrics_of_any_float_type_are_stored_as_null() -> None:
    metrics = {
        **GOOD,
        "self_floor_total": np.float32("nan"),
        "noise_floor_sd": np.float64("inf"),
        "interval_ratio_mean": float("-inf"),
        "profile_open": np.bool_(True),
        "test_fallback": True,
    }
    verdict = q.assess(metrics)
    stored = verdict["metrics"]
    assert stored["self_floor_total"] is None and stored["noise_floor_sd"] is None
    assert stored["interval_ratio_mean"] is None
    assert stored["test_fallback"] is True and stored["test_total"] == 0.6
    # strict JSON: no NaN/Infinity tokens (numpy scalars as Python numbers, as write_json does)
    text = json.dumps(verdict, allow_nan=False, default=lambda v: v.item())
    assert json.loads(text)["metrics"]["profile_open"] is True
