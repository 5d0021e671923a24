"""Floors measured at another TR (``timing_floors`` of the calibration file): interpolated in TR,
never below the calibration's own, recorded in ``run.json``, and the timing checks that still
hold for them (coverage only grows with the floor)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from bench_helpers import load_bench_script

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import calibration_scope as scope
from delssome_norms.fit import uncertainty as unc


def _cal(*floors: dict, checks: tuple = ()) -> dict:
    return {
        "k_region": 1.6449,
        "k_mean": 1.6449,
        "floor_mean": 0.1,
        "floor_region": 0.12,
        "settings": {"generations": 30, "popsize": 50, "n_dup": 2, "test_top_k": 3,
                     "scan_length": 432.0, "tr": 0.72},
        "timing_floors": list(floors),
        "tr_checks": list(checks),
    }  # fmt: skip


def _floors(tr: float, mean: float, region: float) -> dict:
    return {"tr": tr, "floor_mean": mean, "floor_region": region, "scan_length": 480.0}


def test_floors_are_interpolated_in_tr_and_held_beyond_the_measured_timings() -> None:
    cal = _cal(_floors(2.0, 0.2, 0.2))
    assert scope.floors_at(cal, None) == {"floor_mean": 0.1, "floor_region": 0.12}
    assert scope.floors_at(cal, 0.5) == {"floor_mean": 0.1, "floor_region": 0.12}
    assert scope.floors_at(cal, 0.72) == {"floor_mean": 0.1, "floor_region": 0.12}
    half = (0.72 + 2.0) / 2
    got = scope.floors_at(cal, half)
    assert got["floor_mean"] == pytest.approx(0.15) and got["floor_region"] == pytest.approx(0.16)
    assert scope.floors_at(cal, 2.0) == {"floor_mean": 0.2, "floor_region": 0.2}
    assert scope.floors_at(cal, 3.0) == {"floor_mean": 0.2, "floor_region": 0.2}
    # a floor measured lower at another timing does not narrow the intervals
    low = _cal(_floors(2.0, 0.05, 0.3))
    assert scope.floors_at(low, 2.0) == {"floor_mean": 0.1, "floor_region": 0.3}
    # without timing floors: the own ones everywhere
    assert scope.floors_at(_cal(), 2.5) == {"floor_mean": 0.1, "floor_region": 0.12}


def test_the_interval_at_a_slow_tr_uses_its_floors_and_records_the_own_ones() -> None:
    cal = _cal(_floors(2.0, 0.2, 0.3))
    n = 4
    point = np.full(n, 2.0)
    spread = {"region": np.zeros(n), "mean": 0.0}
    fit = {"generations": 30, "popsize": 50, "n_dup": 2, "test_top_k": 3, "scan_length": 480.0}
    lo, hi, block = unc.interval_block(point, spread, "euler", cal, {**fit, "tr": 2.0})
    np.testing.assert_allclose(lo, 2.0 * np.exp(-1.6449 * 0.3))
    np.testing.assert_allclose(hi, 2.0 * np.exp(1.6449 * 0.3))
    assert block["mean_hi"] == pytest.approx(2.0 * np.exp(1.6449 * 0.2))
    assert (block["floor_log_mean"], block["floor_log_region"]) == (0.2, 0.3)
    assert (block["base_floor_log_mean"], block["base_floor_log_region"]) == (0.1, 0.12)
    _, hi72, own = unc.interval_block(point, spread, "euler", cal, {**fit, "tr": 0.72})
    np.testing.assert_allclose(hi72, 2.0 * np.exp(1.6449 * 0.12))
    assert "base_floor_log_mean" not in own
    # subjects at both TRs come from one calibration (their widths differ by design)
    keys = {"a": scope.calibration_key({"ei_interval": block}),
            "b": scope.calibration_key({"ei_interval": own})}  # fmt: skip
    record, message = scope.calibration_mix(keys)
    assert message is None and record[0]["subjects"] == 2


def test_a_check_counts_while_its_verdict_holds_for_the_floors_now_used() -> None:
    def check(covered: bool, floor: float) -> dict:
        return {"tr": 2.0, "covered": covered, "coverage_mean": 0.9, "coverage_region": 0.9,
                "floor_mean": floor, "floor_region": floor, "scan_length": 480.0}  # fmt: skip

    widened = _cal(_floors(2.0, 0.2, 0.2))
    # covered with narrower floors: still covered with wider ones
    assert [c["tr"] for c in scope.tr_checks({**widened, "tr_checks": [check(True, 0.1)]})] == [
        0.72,
        2.0,
    ]
    # too narrow with narrower floors: says nothing of the wider ones
    assert [c["tr"] for c in scope.tr_checks({**widened, "tr_checks": [check(False, 0.1)]})] == [0.72]
    # too narrow with wider floors than now: still too narrow
    assert [c["tr"] for c in scope.tr_checks({**_cal(), "tr_checks": [check(False, 0.3)]})] == [
        0.72,
        2.0,
    ]
    # covered with wider floors than now: says nothing of the narrower ones
    assert [c["tr"] for c in scope.tr_checks({**_cal(), "tr_checks": [check(True, 0.3)]})] == [0.72]
    assert scope.timing_difference({**widened, "tr_checks": [check(True, 0.2)]}, 2.0, 480.0) is None


def test_a_result_written_before_with_the_own_floors_is_judged_uncalibrated_at_a_slow_tr(
    monkeypatch,
) -> None:
    cal = _cal(_floors(2.0, 0.2, 0.2))
    cal["tr_checks"] = [{"tr": 2.0, "covered": True, "coverage_mean": 0.9, "coverage_region": 0.9,
                         "floor_mean": 0.2, "floor_region": 0.2, "scan_length": 480.0}]  # fmt: skip
    monkeypatch.setattr(unc, "load_calibration", lambda mode: dict(cal))
    old = {"mode": "euler", "floor_log_mean": 0.1, "floor_log_region": 0.12,
           "calibration_applies": True, "calibration_differences": []}  # fmt: skip
    run = {"ei_interval": old, "timing": {"tr": 2.0, "scan_length": 480.0}}
    judged = scope.judge_timing_when_read(run)["ei_interval"]
    assert judged["calibration_applies"] is False and judged["calibration_tr"] == 2.0
    new = {**old, "floor_log_mean": 0.2, "floor_log_region": 0.2}
    assert scope.judge_timing_when_read({**run, "ei_interval": new})["ei_interval"] == new


@pytest.mark.parametrize(
    "bad",
    [
        "2.0",
        [{"tr": 2.0, "floor_mean": 0.1}],
        [{"tr": 0, "floor_mean": 0.1, "floor_region": 0.1}],
        [{"tr": 2.0, "floor_mean": -0.1, "floor_region": 0.1}],
        [{"tr": 2.0, "floor_mean": 0.1, "floor_region": 0.1, "scan_length": "long"}],
    ],
)
def test_malformed_timing_floors_are_refused(monkeypatch, bad) -> None:
    data = json.loads(unc._calibration_text())
    data["modes"]["euler"]["timing_floors"] = bad
    monkeypatch.setattr(unc, "_calibration_text", lambda: json.dumps(data))
    with pytest.raises(InvalidInputError, match=r"interval_calibration\.json.*euler\.timing_floors"):
        unc.load_calibration("euler")


def test_the_benchmark_writes_timing_floors_and_checks_them_only_on_other_truths(
    tmp_path: Path,
) -> None:
    bench = load_bench_script("ei_calibration")
    path = tmp_path / "cal.json"
    budgets = {"euler": {"generations": 30, "popsize": 50, "n_dup": 2, "test_top_k": 3}}
    own = {
        "overall": {"n": 32, "coverage": {"mean_shipped": 0.9, "region_shipped": 0.9}},
        "strata": {},
        "calibrated_all_truths": {"floor_region": 0.09159, "floor_mean": 0.09131},
    }
    args = argparse.Namespace(scan_length=432.0, n_truths=32, seed=2026, command="x", tr=0.72)
    bench.write_calibration({"euler": own}, budgets, path, args)
    at2 = {**own, "calibrated_all_truths": {"floor_region": 0.10601, "floor_mean": 0.1155}}
    args2 = argparse.Namespace(scan_length=480.0, n_truths=32, seed=7, command="y", tr=2.0)
    doc = bench.write_timing_floors({"euler": at2}, budgets, path, args2)
    (entry,) = doc["modes"]["euler"]["timing_floors"]
    assert (entry["tr"], entry["floor_mean"], entry["floor_region"], entry["seed"]) == (
        2.0, 0.1155, 0.1061, 7
    )  # fmt: skip
    floors = {"euler": {"floor_mean": 0.1155, "floor_region": 0.1061}}
    # the same truths (seed) cannot check their own floors
    doc = bench.write_tr_check({"euler": own}, budgets, floors, path, args2)
    assert "tr_checks" not in doc["modes"]["euler"]
    # other truths checked with those floors: recorded and in force at TR 2
    other = argparse.Namespace(scan_length=480.0, n_truths=32, seed=8, command="z", tr=2.0)
    doc = bench.write_tr_check({"euler": own}, budgets, floors, path, other)
    (check,) = doc["modes"]["euler"]["tr_checks"]
    assert check["covered"] and check["seed"] == 8
    assert scope.timing_difference(doc["modes"]["euler"], 2.0, 480.0) is None
    # checks made with the own floors (those fits' run.json) are not written at TR 2
    stale = {"euler": {"floor_mean": 0.0914, "floor_region": 0.0916}}
    third = argparse.Namespace(scan_length=600.0, n_truths=32, seed=9, command="w", tr=2.0)
    doc = bench.write_tr_check({"euler": own}, budgets, stale, path, third)
    assert len(doc["modes"]["euler"]["tr_checks"]) == 1
    # the own floors rewritten with the same settings keep the timing floors
    doc = bench.write_calibration({"euler": own}, budgets, path, args)
    assert doc["modes"]["euler"]["timing_floors"] == [entry]
