"""`bench/surrogate.py`: fit-vs-truth agreement and default-budget timing, on constructed numbers."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench_surrogate():
    sys.path.insert(0, str(BENCH))  # the script imports bench/_options.py as a sibling
    try:
        spec = importlib.util.spec_from_file_location("bench_surrogate", BENCH / "surrogate.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


def test_truth_agreement_known_answers(bench_surrogate):
    truth = np.array([[2.0, 3.0, 4.0, 5.0], [1.0, 1.0, 1.0, 5.0]])
    euler = [1.1 * truth[0], truth[1] - 0.5]  # r 1, +10 %; r 1, mean 2 -> 1.5: -25 %
    surrogate = [truth[0][::-1], 0.5 * truth[1]]  # reversed linear pattern: r = -1
    out = bench_surrogate.truth_agreement(truth, euler, surrogate)
    np.testing.assert_allclose(out["euler"]["r"], [1.0, 1.0])
    np.testing.assert_allclose(out["euler"]["mean_err_pct"], [10.0, -25.0])
    assert out["euler"]["abs_mean_err_pct_median"] == pytest.approx(17.5)
    np.testing.assert_allclose(out["surrogate"]["r"], [-1.0, 1.0])
    np.testing.assert_allclose(out["surrogate"]["mean_err_pct"], [0.0, -50.0], atol=1e-12)
    # coefficient of variation: population sd / mean
    np.testing.assert_allclose(out["truth_regional_cv"], [np.sqrt(1.25) / 3.5, np.sqrt(3.0) / 2.0])
    assert "vs truth" in bench_surrogate.truth_summary(out)


def test_truth_agreement_without_truth(bench_surrogate):
    assert bench_surrogate.truth_agreement(None, [], []) is None
    assert bench_surrogate.truth_summary(None) == ""


def test_default_budget_seconds_scales_the_per_generation_stages(bench_surrogate):
    stages = {"train_s": 30.0, "val_s": 15.0, "test_s": 8.0, "profile_s": 2.0, "note": "x"}
    # 15 generations run, 100 wanted: (30 + 15) * 100 / 15 + 8 + 2 = 310 s for 10 subjects
    assert bench_surrogate.default_budget_seconds(stages, 10, 15, 100) == pytest.approx(31.0)
    # at the budget that was run it is the plain sum of the stages per subject
    assert bench_surrogate.default_budget_seconds(stages, 5, 100, 100) == pytest.approx(11.0)
