"""The interval calibration's scope compares the subject's TR with the timings each mode's floors
were checked at (``tr_checks`` of the calibration file, written by ``bench/ei_calibration.py``).

The shipped checks are tested against the kept TR 2.0 s calibration run
(``bench/results/ei_calibration_tr2.json``): the coverage it records is recomputed here from the
run's per-truth rows, and the verdict from the issue's lower bounds (85 %, strata 75 %).
"""

from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bench_helpers import load_bench_script
from fit_helpers import tiny_cdf, tiny_fc, tiny_sc

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import CMAESSettings, FitSettings, SubjectInputs
from delssome_norms.fit import uncertainty as unc
from delssome_norms.fit.calibration_scope import floors_at, timing_difference, tr_checks

EULER_AT_3 = (
    "tr 3 s (calibrated at TR 0.72 s, checked at 1 s (432-s scans), 2 s (480-s scans); coverage "
    "at this timing is not measured)"
)
"""The phrase of a Euler fit at TR 3 s (docs/accuracy.md and docs/results.md quote it)."""
OLD_AT_2 = "tr 2 s (calibrated at TR 0.72 s; coverage at this timing is not measured)"
"""A Euler result at TR 2 s whose interval used the own floors (before the TR 2 s floors): the
checks of the floors now used at TR 2 s say nothing of it."""
TR2_RUN = Path(__file__).resolve().parents[2] / "bench" / "results" / "ei_calibration_tr2.json"


def _check(tr: float, covered: bool, mean: float = 0.9, region: float = 0.9, **extra) -> dict:
    return {"tr": tr, "covered": covered, "coverage_mean": mean, "coverage_region": region, **extra}


def _calibration(*checks: dict, own_tr: float | None = 0.72) -> dict:
    settings = {"generations": 30} | ({"tr": own_tr} if own_tr is not None else {})
    return {"floor_mean": 0.1, "floor_region": 0.1, "settings": settings, "tr_checks": list(checks)}


def _own_budget(mode: str) -> FitSettings:
    ref = unc.load_calibration(mode)["settings"]
    settings = FitSettings(
        mode=mode,
        cmaes=CMAESSettings(generations=ref["generations"], popsize=ref["popsize"]),
        n_dup=ref["n_dup"],
        test_top_k=ref["test_top_k"],
        val_per_generation=ref["val_per_generation"],
    )
    if mode == "surrogate":
        from delssome_norms.surrogate.evaluate import weights_sha256

        settings = replace(settings, surrogate_weights_sha256=weights_sha256())
    return settings


def _subject(tr: float) -> SubjectInputs:
    """A DK68 subject with the default maps (only its TR differs from the calibration's truths)."""
    n = len(DK68_REGIONS)
    return SubjectInputs(
        subject_id="a", fc=tiny_fc(n), fcd_cdf=tiny_cdf(0), tr=tr, scan_length=864.0,
        sc=tiny_sc(n), regions=DK68_REGIONS,
    )  # fmt: skip


# ------------------------------------------------------------------------------------------- #
# the rule
# ------------------------------------------------------------------------------------------- #
def test_a_tr_is_covered_near_a_covered_check_or_between_two() -> None:
    cal = _calibration(_check(1.5, True), _check(3.0, False, 0.8, 0.82))
    for tr in (0.65, 0.72, 0.79, 1.0, 1.5, 1.65):
        assert timing_difference(cal, tr) is None, tr
    assert timing_difference(cal, None) is None  # unknown TR: not compared
    # below every check
    assert timing_difference(cal, 0.6) == (
        "tr 0.6 s (calibrated at TR 0.72 s, checked at 1.5 s; coverage at this timing is not "
        "measured; at TR 3 s this mode's intervals covered 0.80 / 0.82 (mean / regions), too narrow)"
    )
    # between a covered and a failed check: not bracketed
    assert "coverage at this timing is not measured; at TR 3 s" in timing_difference(cal, 2.0)
    # near the failed check: its coverage, no "not measured"
    assert timing_difference(cal, 2.9) == (
        "tr 2.9 s (calibrated at TR 0.72 s, checked at 1.5 s; at TR 3 s this mode's intervals "
        "covered 0.80 / 0.82 (mean / regions), too narrow)"
    )
    # a failed check between two covered ones splits the range
    split = _calibration(_check(1.0, False, 0.7, 0.75), _check(2.0, True))
    assert timing_difference(split, 1.5) is not None and timing_difference(split, 0.85) is not None
    assert timing_difference(split, 1.95) is None


def test_a_calibration_without_a_tr_is_taken_at_hcp_timing_and_without_checks() -> None:
    bare = {"floor_mean": 0.1, "floor_region": 0.1, "settings": {"generations": 30}}
    assert tr_checks(bare) == [{"tr": 0.72, "covered": True}]
    assert timing_difference(bare, 0.72) is None
    assert timing_difference(bare, 1.0) == (
        "tr 1 s (calibrated at TR 0.72 s; coverage at this timing is not measured)"
    )
    other_own = _calibration(own_tr=2.0)
    assert timing_difference(other_own, 2.1) is None and timing_difference(other_own, 0.72)


def test_a_check_of_other_floors_is_left_out() -> None:
    stale = _check(2.0, True, floor_mean=0.2, floor_region=0.1)
    fresh = _check(2.0, True, floor_mean=0.1, floor_region=0.1)
    assert [c["tr"] for c in tr_checks(_calibration(stale))] == [0.72]
    assert timing_difference(_calibration(stale), 2.0) is not None
    assert timing_difference(_calibration(fresh), 2.0) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"tr_checks": "2.0"},
        {"tr_checks": [{"tr": 2.0, "covered": "yes", "coverage_mean": 0.9, "coverage_region": 0.9}]},
        {"tr_checks": [{"tr": -1.0, "covered": True, "coverage_mean": 0.9, "coverage_region": 0.9}]},
        {"tr_checks": [{"tr": 2.0, "covered": True, "coverage_mean": 1.5, "coverage_region": 0.9}]},
        {"tr_checks": [{"tr": 2.0, "covered": True}]},
        {"settings_tr": 0.0},
    ],
)
def test_malformed_timing_checks_are_refused(monkeypatch, bad: dict) -> None:
    data = json.loads(unc._calibration_text())
    entry = data["modes"]["euler"]
    if "settings_tr" in bad:
        entry["settings"]["tr"] = bad["settings_tr"]
    else:
        entry["tr_checks"] = bad["tr_checks"]
    monkeypatch.setattr(unc, "_calibration_text", lambda: json.dumps(data))
    with pytest.raises(
        InvalidInputError, match=r"interval_calibration\.json.*euler\.(tr_checks|settings\.tr)"
    ):
        unc.load_calibration("euler")


# ------------------------------------------------------------------------------------------- #
# the shipped checks: what the TR 2.0 s run measured
# ------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("run_file", "tr", "modes"),
    [
        ("ei_calibration_tr2.json", 2.0, ("surrogate",)),
        ("ei_calibration_tr2_oos.json", 2.0, ("euler",)),  # the TR 2 s floors, on other truths
        ("ei_calibration_tr1.json", 1.0, ("euler",)),
    ],
)
def test_the_shipped_checks_are_what_the_kept_runs_measured(run_file: str, tr: float, modes) -> None:
    run = json.loads((TR2_RUN.parent / run_file).read_text())
    assert run["config"]["tr"] == tr
    for mode in modes:
        cal = unc.load_calibration(mode)
        (check,) = [c for c in cal["tr_checks"] if c["tr"] == tr]
        assert check["scan_length"] == run["config"]["scan_length"]
        rows = [r for r in run["modes"][mode]["rows"] if "covered_mean_shipped" in r]
        mean = np.mean([r["covered_mean_shipped"] for r in rows])
        region = np.mean([c for r in rows for c in r["covered_region_shipped"]])
        strata: dict[tuple, list] = {}
        for r in rows:
            for kind in ("design_stratum", "boundary_stratum", "fc_stratum"):
                strata.setdefault((kind, r[kind]), []).append(r)
        lowest = min(
            min(np.mean([r["covered_mean_shipped"] for r in rs]),
                np.mean([c for r in rs for c in r["covered_region_shipped"]]))
            for rs in strata.values()
        )  # fmt: skip
        assert check["lowest_stratum"] == pytest.approx(lowest, abs=1e-4)
        assert len(rows) == check["n_truths"] == 32
        assert check["coverage_mean"] == pytest.approx(mean, abs=1e-4)
        assert check["coverage_region"] == pytest.approx(region, abs=1e-4)
        assert check["covered"] == bool(mean >= 0.85 and region >= 0.85 and lowest >= 0.75)
        used = run["modes"][mode].get("floors_used") or floors_at(cal, tr)  # the fits' own
        assert (check["floor_mean"], check["floor_region"]) == (used["floor_mean"], used["floor_region"])
        now = floors_at(cal, tr)  # a covered check counts with floors at least as wide
        assert now["floor_mean"] >= check["floor_mean"] and now["floor_region"] >= check["floor_region"]
    covered = {
        m: [(c["tr"], c["covered"]) for c in unc.load_calibration(m)["tr_checks"]]
        for m in ("euler", "surrogate")
    }
    assert covered == {"euler": [(1.0, True), (2.0, True)], "surrogate": [(2.0, True)]}


@pytest.mark.parametrize(
    ("mode", "tr", "covered"),
    [("euler", 0.72, True), ("euler", 0.8, True), ("euler", 1.0, True), ("euler", 1.1, True),
     ("euler", 1.15, True), ("euler", 1.5, True), ("euler", 2.0, True), ("euler", 2.2, True),
     ("euler", 2.3, False), ("euler", 3.0, False), ("euler", 0.6, False),
     ("surrogate", 0.72, True), ("surrogate", 1.4, True), ("surrogate", 2.0, True),
     ("surrogate", 0.5, False), ("surrogate", 3.0, False)],
)  # fmt: skip
def test_a_fit_at_another_tr_is_calibrated_only_where_it_was_checked(
    mode: str, tr: float, covered: bool
) -> None:
    cal = unc.load_calibration(mode)
    differences = unc.calibration_differences(
        cal, unc.fit_budget(_own_budget(mode), 864.0, _subject(tr))
    )
    timing = [d for d in differences if d.startswith("tr ")]
    assert differences == timing  # the calibration's own budget: nothing else differs
    assert (timing == []) == covered, (mode, tr, differences)


def test_euler_beyond_its_checked_timings_says_so_and_at_tr_2_uses_its_floors() -> None:
    cal = unc.load_calibration("euler")
    (phrase,) = unc.calibration_differences(
        cal, unc.fit_budget(_own_budget("euler"), 864.0, _subject(3.0))
    )
    assert phrase == EULER_AT_3
    fit = unc.fit_budget(_own_budget("euler"), 864.0, _subject(2.0))
    assert unc.calibration_differences(cal, fit) == []
    spread = {"region": np.zeros(4), "mean": 0.0}
    block = unc.interval_block(np.full(4, 3.0), spread, "euler", fit=fit)[2]
    (at2,) = cal["timing_floors"]
    assert (block["floor_log_mean"], block["floor_log_region"]) == (
        at2["floor_mean"],
        at2["floor_region"],
    )
    assert block["base_floor_log_mean"] == cal["floor_mean"] and block["calibration_applies"]


def test_the_cohort_warning_names_the_tr_before_the_work(tmp_path: Path) -> None:
    from delssome_norms.fit.calibration_scope import warn_uncalibrated_cohort

    settings = _own_budget("euler")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unc.warn_uncalibrated(settings, [864.0, 864.0], trs=[0.72, None])
    rows = [
        {"subject_id": "a", "tr": 0.72, "scan_length": 864.0},
        {"subject_id": "b", "tr": "3.0", "scan_length": 864.0},
        {"subject_id": "c", "tr": 3.0, "scan_length": 864.0},
    ]
    with pytest.warns(InputWarning) as caught:
        warn_uncalibrated_cohort(settings, rows, tmp_path, overwrite=False)
    (message,) = [str(w.message) for w in caught]
    assert f"{EULER_AT_3} [2 of 3]" in message
    with pytest.raises(ValueError):  # one TR per scan
        unc.warn_uncalibrated(settings, [864.0, 864.0], trs=[0.72])


def test_a_fit_at_tr_2_records_the_difference_in_run_json(tmp_path: Path) -> None:
    from delssome_norms.fit import estimate_ei
    from delssome_norms.fit.outputs import read_run

    subject = SubjectInputs(
        subject_id="a", fc=tiny_fc(level=0.2, seed=0), fcd_cdf=tiny_cdf(0), tr=3.0,
        scan_length=48.0, sc=tiny_sc(),
    )  # fmt: skip
    settings = FitSettings(
        cmaes=CMAESSettings(generations=2, popsize=6, mu=3), dt_train=0.005, dt_val=0.005,
        dt_test=0.005, burn_in=2.0, fcd_window=5, warmup_steps=50, test_top_k=2, n_dup=2,
        seed=3, stability_gate=False,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert estimate_ei(subject, tmp_path / "a", settings).status == "done"
    block = read_run(tmp_path / "a")["ei_interval"]
    assert block["calibration_applies"] is False
    timing = [d for d in block["calibration_differences"] if d.startswith("tr ")]
    assert timing == [EULER_AT_3]


# ------------------------------------------------------------------------------------------- #
# bench/ei_calibration.py writes the checks
# ------------------------------------------------------------------------------------------- #
def _summary(mean: float, region: float, strata: tuple[float, ...] = (0.9,)) -> dict:
    cov = {"mean_shipped": mean, "region_shipped": region}
    return {
        "overall": {"n": 32, "coverage": cov},
        "strata": {
            f"s{i}": {"coverage": {"mean_shipped": v, "region_shipped": 0.9}}
            for i, v in enumerate(strata)
        },
        "calibrated_all_truths": {"floor_region": 0.09159, "floor_mean": 0.09131},
    }


def test_the_benchmark_records_a_check_and_keeps_it_only_with_its_floors(tmp_path: Path) -> None:
    bench = load_bench_script("ei_calibration")
    path = tmp_path / "cal.json"
    budgets = {"euler": {"generations": 30, "popsize": 50, "n_dup": 2, "test_top_k": 3}}
    args = argparse.Namespace(scan_length=432.0, n_truths=32, seed=2026, command="x", tr=0.72)
    doc = bench.write_calibration({"euler": _summary(0.9, 0.9)}, budgets, path, args)
    entry = doc["modes"]["euler"]
    assert entry["settings"]["tr"] == 0.72 and "tr_checks" not in entry
    floors = {"euler": {k: entry[k] for k in ("floor_mean", "floor_region")}}
    at2 = argparse.Namespace(scan_length=480.0, command="y", tr=2.0)
    # pooled 0.86 / 0.88 but one stratum at 0.6: not covered
    doc = bench.write_tr_check({"euler": _summary(0.86, 0.88, (0.6, 0.95))}, budgets, floors, path, at2)
    (check,) = doc["modes"]["euler"]["tr_checks"]
    assert (check["tr"], check["covered"], check["lowest_stratum"]) == (2.0, False, 0.6)
    assert (check["floor_mean"], check["floor_region"]) == (0.0914, 0.0916)
    # a rerun at the same TR replaces it; pooled 0.9 and strata >= 0.75: covered
    doc = bench.write_tr_check({"euler": _summary(0.9, 0.9, (0.8,))}, budgets, floors, path, at2)
    assert [c["covered"] for c in doc["modes"]["euler"]["tr_checks"]] == [True]
    # other floors or another budget than the file's: not written
    other = {"euler": {"floor_mean": 0.2, "floor_region": 0.2}}
    at3 = argparse.Namespace(scan_length=480.0, command="z", tr=3.0)
    doc = bench.write_tr_check({"euler": _summary(0.9, 0.9)}, budgets, other, path, at3)
    assert [c["tr"] for c in doc["modes"]["euler"]["tr_checks"]] == [2.0]
    bigger = {"euler": {**budgets["euler"], "generations": 100}}
    doc = bench.write_tr_check({"euler": _summary(0.9, 0.9)}, bigger, floors, path, at3)
    assert [c["tr"] for c in doc["modes"]["euler"]["tr_checks"]] == [2.0]
    # new floors at 0.72 drop the check of the old ones; the same floors keep it
    doc = bench.write_calibration({"euler": _summary(0.9, 0.9)}, budgets, path, args)
    assert len(doc["modes"]["euler"]["tr_checks"]) == 1
    moved = _summary(0.9, 0.9)
    moved["calibrated_all_truths"] = {"floor_region": 0.12, "floor_mean": 0.11}
    doc = bench.write_calibration({"euler": moved}, budgets, path, args)
    assert "tr_checks" not in doc["modes"]["euler"]
    assert json.loads(path.read_text()) == doc


def test_pandas_manifest_rows_pass_their_tr(tmp_path: Path) -> None:
    from delssome_norms.fit.calibration_scope import warn_uncalibrated_cohort

    table = pd.DataFrame({"subject_id": ["a", "b"], "tr": [3.0, np.nan], "scan_length": [864.0, 864.0]})
    with pytest.warns(InputWarning, match=r"tr 3 s .* \[1 of 2\]"):
        warn_uncalibrated_cohort(_own_budget("euler"), table.to_dict("records"), tmp_path, False)


def test_the_docs_quote_the_timings_each_mode_is_calibrated_at() -> None:
    """README, science.md, results.md and accuracy.md give the TR ranges the shipped checks
    imply (for scans as long as the checks')."""
    from delssome_norms.fit.calibration_scope import TR_SLACK

    root = Path(__file__).resolve().parents[2]
    ranges = {}
    for mode in ("surrogate", "euler"):
        cal = unc.load_calibration(mode)
        good = [c["tr"] for c in tr_checks(cal) if c["covered"]]
        lo, hi = min(good) * (1 - TR_SLACK), max(good) * (1 + TR_SLACK)
        assert timing_difference(cal, lo + 1e-6, 864.0) is None
        assert timing_difference(cal, hi - 1e-6, 864.0) is None
        assert timing_difference(cal, hi * 1.01, 864.0) is not None
        assert timing_difference(cal, lo * 0.99, 864.0) is not None
        ranges[mode] = (f"{lo:.3f}".rstrip("0"), f"{hi:.3f}".rstrip("0"))
    assert ranges == {"surrogate": ("0.648", "2.2"), "euler": ("0.648", "2.2")}
    docs = (("README.md", "–"), ("docs/science.md", "–"), ("docs/results.md", "-"))
    for name, dash in (*docs, ("docs/accuracy.md", " to ")):
        text = " ".join((root / name).read_text().split())
        for mode, (lo, hi) in ranges.items():
            label = {"surrogate": "surrogate", "euler": "Euler"}[mode]
            if name == "docs/accuracy.md":
                assert (
                    f"{label}-mode intervals" in text
                    and f"from {'TR ' if mode == 'surrogate' else ''}{lo}{dash}{hi} s" in text
                )
            else:
                assert f"{label} mode {lo}{dash}{hi} s" in text, (name, mode)


# ------------------------------------------------------------------------------------------- #
# review of 2026-12-07: scan length of a check, results written before, messages, the bench
# ------------------------------------------------------------------------------------------- #
def test_a_check_counts_only_for_scans_about_as_long_as_its_own() -> None:
    cal = _calibration(_check(2.0, True, scan_length=480.0))
    cal["settings"]["scan_length"] = 432.0
    assert timing_difference(cal, 2.0, 480.0) is None
    assert timing_difference(cal, 2.0, 0.95 * 480.0) is None  # within the scan slack
    assert timing_difference(cal, 1.4, 864.0) is None  # bracketed, long scan
    short = (
        "tr 2 s (calibrated at TR 0.72 s, checked at 2 s (480-s scans); at this timing coverage "
        "is measured on scans of at least 456 s)"
    )
    assert timing_difference(cal, 2.0, 420.0) == short
    assert timing_difference(cal, 2.0, 300.0) == short  # the phrase does not name the scan
    # between the checks the shortest covered scan is interpolated: 410.4 s at 0.72, 456 s at 2
    need = 410.4 + (1.5 - 0.72) / (2.0 - 0.72) * (456.0 - 410.4)
    assert timing_difference(cal, 1.5, need + 0.1) is None
    assert timing_difference(cal, 1.5, need - 1.0).endswith(f"scans of at least {need:.0f} s)")
    assert timing_difference(cal, 0.8, 432.0) is None  # near the own end: the own scan suffices
    assert timing_difference(cal, 0.72, 300.0) is None  # the own TR: scan compared elsewhere
    # TRs no check covers at any scan say nothing about the scan
    assert timing_difference(cal, 3.0, 300.0).endswith("coverage at this timing is not measured)")


def test_the_shipped_surrogate_range_holds_for_the_calibrations_own_scans() -> None:
    cal = unc.load_calibration("surrogate")
    for tr in (0.8, 1.0):
        assert timing_difference(cal, tr, 432.0) is None, tr  # HCP-D/A, ABCD timing
    assert timing_difference(cal, 1.5, 432.0) is not None  # 438 s needed there


def _old_run(tr: float, mode: str = "euler", floors: tuple | None = None, applies=True) -> dict:
    cal = unc.load_calibration(mode)
    f_mean, f_region = floors or (cal["floor_mean"], cal["floor_region"])
    block = {"mode": mode, "floor_log_mean": f_mean, "floor_log_region": f_region,
             "calibration_applies": applies, "calibration_differences": []}  # fmt: skip
    return {"status": "complete", "timing": {"tr": tr, "scan_length": 864.0}, "ei_interval": block}


def test_a_result_written_before_the_tr_was_compared_is_judged_when_read(tmp_path: Path) -> None:
    from delssome_norms.fit.calibration_scope import judge_timing_when_read
    from delssome_norms.fit.outputs import OUTPUT_FILES, read_run

    judged = judge_timing_when_read(_old_run(2.0))["ei_interval"]
    assert judged["calibration_applies"] is False and judged["calibration_tr_judged_on_read"]
    assert judged["calibration_differences"] == [OLD_AT_2]
    # inside the checked timings, or already compared, or no verdict at all: unchanged
    for run in (_old_run(0.75), _old_run(2.0, applies=None)):
        assert judge_timing_when_read(run) == run
    compared = _old_run(2.0)
    compared["ei_interval"]["calibration_tr"] = 2.0
    assert judge_timing_when_read(compared) == compared
    # surrogate at TR 2 s: covered by the check of the current floors, not by older floors'
    assert judge_timing_when_read(_old_run(2.0, "surrogate"))["ei_interval"]["calibration_applies"]
    older = judge_timing_when_read(_old_run(2.0, "surrogate", floors=(0.2, 0.2)))["ei_interval"]
    assert older["calibration_applies"] is False
    assert older["calibration_differences"][0].startswith("tr 2 s (calibrated at TR 0.72 s;")
    # read_run applies it; the file stays as written
    folder = tmp_path / "a"
    folder.mkdir()
    for name in OUTPUT_FILES:
        (folder / name).write_text("x")
    (folder / "run.json").write_text(json.dumps(_old_run(2.0)))
    assert read_run(folder)["ei_interval"]["calibration_applies"] is False
    assert json.loads((folder / "run.json").read_text())["ei_interval"]["calibration_applies"]


def test_a_judged_result_is_not_judged_again(tmp_path: Path) -> None:
    from delssome_norms.fit.calibration_scope import judge_timing_when_read

    once = judge_timing_when_read(_old_run(2.0))
    assert once["ei_interval"]["calibration_tr"] == 2.0
    assert judge_timing_when_read(once) == once  # a saved copy read again: one phrase
    phrase = once["ei_interval"]["calibration_differences"][0]
    written = _old_run(2.0, applies=False)  # by a version that said the TR but not calibration_tr
    written["ei_interval"]["calibration_differences"] = [phrase]
    assert judge_timing_when_read(written) == written


@pytest.mark.parametrize(
    "damage",
    [
        {"floor_log_mean": {"x": 1}},
        {"floor_log_region": "abc"},
        {"calibration_differences": "n_dup 1 (calibrated at 2)"},
    ],
)
def test_a_damaged_old_block_is_read_without_a_crash(damage: dict) -> None:
    from delssome_norms.fit.calibration_scope import judge_timing_when_read

    run = _old_run(2.0)
    run["ei_interval"].update(damage)
    block = judge_timing_when_read(run)["ei_interval"]
    assert block["calibration_applies"] is False
    assert block["calibration_differences"][-1].startswith("tr 2 s (calibrated at TR 0.72 s")
    if "calibration_differences" in damage:
        assert block["calibration_differences"][0] == "n_dup 1 (calibrated at 2)"


def test_the_cohort_warning_does_not_split_trs_by_scan_length() -> None:
    settings = _own_budget("surrogate")
    scans = [406.0, 410.0, 416.0, 420.0, 426.0, 480.0]
    with pytest.warns(InputWarning) as caught:
        unc.warn_uncalibrated(settings, scans, trs=[2.0] * 6)
    (message,) = [str(w.message) for w in caught]
    assert message.count("tr 2 s (") == 1
    assert "scans of at least 456 s) [5 of 6]" in message


def test_a_new_interval_block_records_the_tr_it_compared() -> None:
    spread = {"region": np.full(4, 0.05), "mean": 0.05}
    fit = unc.fit_budget(_own_budget("euler"), 864.0, _subject(3.0))
    _, _, block = unc.interval_block(np.full(4, 3.0), spread, "euler", fit=fit)
    assert block["calibration_tr"] == 3.0 and block["calibration_applies"] is False
    _, _, block = unc.interval_block(
        np.full(4, 3.0), spread, "euler", fit=unc.fit_budget(_own_budget("euler"), 864.0)
    )
    assert "calibration_tr" not in block  # not known: judged when read


def test_the_cohort_warning_says_each_reason_once_with_its_trs() -> None:
    settings = _own_budget("euler")
    scans = [864.0, 864.0, 864.0, 864.0, 864.0, 432.0]
    with pytest.warns(InputWarning) as caught:
        unc.warn_uncalibrated(settings, scans, trs=[3.0, 0.8, 2.5, 0.72, 2.5, 2.0])
    (message,) = [str(w.message) for w in caught]
    assert (
        "tr 2.5, 3 s (calibrated at TR 0.72 s, checked at 1 s (432-s scans), 2 s (480-s scans); "
        "coverage at this timing is not measured) [3 of 6]" in message
    )
    assert "coverage is measured on scans of at least 456 s) [1 of 6]" in message  # 432-s scan
    assert "tr 0.8" not in message  # between the checks at 0.72 and 1 s


@pytest.mark.parametrize(
    "check",
    [
        {"tr": 2.0, "covered": True, "coverage_mean": 0.0, "coverage_region": 0.9},
        {"tr": 2.0, "covered": True, "coverage_mean": 0.9, "coverage_region": 0.9, "floor_mean": 0.1},
    ],
)
def test_well_formed_checks_load(monkeypatch, check: dict) -> None:
    data = json.loads(unc._calibration_text())
    data["modes"]["euler"]["tr_checks"] = [check]
    monkeypatch.setattr(unc, "_calibration_text", lambda: json.dumps(data))
    assert unc.load_calibration("euler")["tr_checks"] == [check]
    data["modes"]["euler"]["tr_checks"] = None
    assert unc.load_calibration("euler")["tr_checks"] is None


@pytest.mark.parametrize("bad", [{"floor_mean": "abc"}, {"floor_region": -1.0}, {"scan_length": 0}])
def test_a_check_with_bad_floors_or_scan_is_refused(monkeypatch, bad: dict) -> None:
    data = json.loads(unc._calibration_text())
    data["modes"]["euler"]["tr_checks"] = [_check(2.0, True) | bad]
    monkeypatch.setattr(unc, "_calibration_text", lambda: json.dumps(data))
    with pytest.raises(InvalidInputError, match=r"euler\.tr_checks"):
        unc.load_calibration("euler")


def test_the_benchmark_takes_the_floors_from_the_fits() -> None:
    bench = load_bench_script("ei_calibration")
    rows = [{"status": "done", "floor_log_mean": 0.0914, "floor_log_region": 0.0916}] * 3
    assert bench.floors_of(rows) == {"floor_mean": 0.0914, "floor_region": 0.0916}
    mixed = [*rows, {"status": "done", "floor_log_mean": 0.5, "floor_log_region": 0.5}]
    assert bench.floors_of(mixed) is None  # a fit reused from before a floor change
    assert bench.floors_of([*rows, {"status": "failed"}]) == bench.floors_of(rows)
    assert bench.floors_of([{"status": "done", "floor_log_mean": None, "floor_log_region": 0.1}]) is None


def test_the_benchmark_refuses_a_check_on_too_few_or_part_of_the_truths() -> None:
    bench = load_bench_script("ei_calibration")
    args = bench.parse_args(["--tr", "2.0", "--write-calibration"])
    assert args.tr == 2.0 and args.n_truths >= bench.MIN_TR_CHECK_TRUTHS
    for argv in (["--quick"], ["--n-truths", "8"], ["--first", "4"]):
        with pytest.raises(SystemExit):
            bench.parse_args(["--tr", "2.0", "--write-calibration", *argv])
    with pytest.raises(SystemExit):
        bench.parse_args(["--write-calibration", "--first", "4"])


def test_the_benchmark_keeps_checks_only_with_the_same_settings(tmp_path: Path) -> None:
    bench = load_bench_script("ei_calibration")
    path = tmp_path / "cal.json"
    budgets = {"euler": {"generations": 30, "popsize": 50, "n_dup": 2, "test_top_k": 3}}
    args = argparse.Namespace(scan_length=432.0, n_truths=32, seed=2026, command="x", tr=0.72)
    doc = bench.write_calibration({"euler": _summary(0.9, 0.9)}, budgets, path, args)
    floors = {"euler": {k: doc["modes"]["euler"][k] for k in ("floor_mean", "floor_region")}}
    at2 = argparse.Namespace(scan_length=480.0, command="y", tr=2.0)
    bench.write_tr_check({"euler": _summary(0.9, 0.9)}, budgets, floors, path, at2)
    longer = argparse.Namespace(**{**vars(args), "scan_length": 864.0})
    doc = bench.write_calibration({"euler": _summary(0.9, 0.9)}, budgets, path, longer)
    assert "tr_checks" not in doc["modes"]["euler"]  # same floors, other scans: dropped
    # an entry without floors is said, not a KeyError
    data = json.loads(path.read_text())
    del data["modes"]["euler"]["floor_mean"]
    path.write_text(json.dumps(data))
    doc = bench.write_tr_check({"euler": _summary(0.9, 0.9)}, budgets, floors, path, at2)
    assert "tr_checks" not in doc["modes"]["euler"]


def test_accuracy_md_quotes_the_tr1_run_as_measured() -> None:
    """The TR 1.0 s Euler paragraph of docs/accuracy.md, recomputed from its kept JSON."""
    root = Path(__file__).resolve().parents[2]
    run = json.loads((TR2_RUN.parent / "ei_calibration_tr1.json").read_text())
    summary = run["modes"]["euler"]["summary"]
    cov, fc = summary["overall"]["coverage"], summary["fc_ge_0.1"]
    lowest = min(
        min(v["coverage"]["mean_shipped"], v["coverage"]["region_shipped"])
        for v in summary["strata"].values()
    )
    text = " ".join((root / "docs" / "accuracy.md").read_text().split())
    for phrase in (
        f"covered {cov['mean_shipped']:.2f} (mean) / {cov['region_shipped']:.2f} (regions)",
        f"(leave-one-out {cov['mean_loo']:.2f} / {cov['region_loo']:.2f}; lowest stratum {lowest:.2f}",
        f"regional r median {summary['overall']['median_r']:.3f}",
        f"median |level error| {summary['overall']['median_abs_mean_err_pct']:.1f} % over all 32 "
        f"(one guess for everyone {summary['overall']['constant_guess_err_pct']:.1f} %)",
        f"{fc['median_abs_mean_err_pct']:.1f} % for the {fc['n']} with mean FC ≥ 0.1 (one guess "
        f"{fc['constant_guess_err_pct']:.1f} %)",
        f'`"{EULER_AT_3}"`',
    ):
        assert phrase in text, phrase
    results = " ".join((root / "docs" / "results.md").read_text().split())
    assert EULER_AT_3 in results


def test_the_docs_say_how_far_432_s_scans_are_covered_in_surrogate_mode() -> None:
    """The shortest covered scan rises from 410.4 s at TR 0.72 to 456 s at TR 2: 432-s scans are
    covered up to the TR where the interpolation reaches 432 s."""
    cal = unc.load_calibration("surrogate")
    top = 0.72 + (432.0 - 0.95 * 432.0) / (0.95 * 480.0 - 0.95 * 432.0) * (2.0 - 0.72)
    assert timing_difference(cal, top - 0.005, 432.0) is None
    assert timing_difference(cal, top + 0.005, 432.0) is not None
    root = Path(__file__).resolve().parents[2]
    for name in ("README.md", "docs/results.md", "docs/science.md", "docs/accuracy.md"):
        text = " ".join((root / name).read_text().split())
        assert f"432-s scans up to {top:.2f} s" in text, name


def test_a_short_scan_at_a_covered_tr_does_not_blame_another_timing() -> None:
    phrase = timing_difference(unc.load_calibration("euler"), 0.8, 300.0)
    assert phrase == (
        "tr 0.8 s (calibrated at TR 0.72 s, checked at 1 s (432-s scans), 2 s (480-s scans); at "
        "this timing coverage is measured on scans of at least 410 s)"
    )
