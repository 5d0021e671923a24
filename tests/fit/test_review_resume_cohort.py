"""Resume, sharding and collect as a cohort user meets them: damaged results, changed manifests,
misspelt columns, and why collect left subjects out (analytic stand-in simulator)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import analytic_cohort_settings, use_analytic_simulator, write_manifest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import FitSettings, collect, run_cohort


def _settings() -> FitSettings:
    return analytic_cohort_settings()


def _cohort(manifest, out: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        return run_cohort(manifest, out, _settings(), group_size=2, quiet=True, **kw)


def _demographics(path: Path, ids: list[str]) -> Path:
    n = len(ids)
    ages = [30 + i for i in range(n)]
    pd.DataFrame({"subject_id": ids, "age_in_years": ages, "sex": ["F"] * n}).to_csv(path, index=False)
    return path


def test_collect_names_the_ei_ratio_file_that_was_cut_short(tmp_path: Path, monkeypatch) -> None:
    """A results folder copied incompletely: the short file is named, not the next subject's."""
    use_analytic_simulator(monkeypatch)
    out = tmp_path / "out"
    _cohort(write_manifest(tmp_path, 2), out)
    ei = out / "sub-00" / "EI_ratio.csv"
    ei.write_text("".join(ei.read_text().splitlines(keepends=True)[:4]))  # header + 3 regions
    demo = _demographics(tmp_path / "demo.csv", ["sub-00", "sub-01"])
    with pytest.raises(InvalidInputError, match=r"has 3 regions but run\.json records a fit of 6") as e:
        collect(out, demo, tmp_path / "table.csv")
    assert e.value.source == str(ei)
    assert not (tmp_path / "table.csv").exists()


def test_collect_refuses_an_edited_ei_ratio(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    out = tmp_path / "out"
    _cohort(write_manifest(tmp_path, 2), out)
    ei = out / "sub-01" / "EI_ratio.csv"
    table = pd.read_csv(ei)
    table.loc[2, "EI_ratio"] *= 1.5
    table.to_csv(ei, index=False)
    demo = _demographics(tmp_path / "demo.csv", ["sub-00", "sub-01"])
    with pytest.raises(InvalidInputError, match=r"run\.json records ei_ratio_mean") as err:
        collect(out, demo, tmp_path / "table.csv")
    assert err.value.source == str(ei)


def test_cohort_refuses_a_damaged_result_and_overwrite_rewrites_it(tmp_path: Path, monkeypatch) -> None:
    """A finished subject whose EI_ratio.csv was cut short is not 'already finished'."""
    sim = use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    _cohort(manifest, out)
    ei = out / "sub-01" / "EI_ratio.csv"
    good = ei.read_bytes()
    ei.write_bytes(good[: len(good) // 2])
    with pytest.raises(InvalidInputError, match=r"sub-01: EI_ratio.csv: ") as err:
        _cohort(manifest, out)
    assert err.value.source == str(out)
    calls = sim.calls
    summary = _cohort(manifest, out, overwrite=True)
    assert (summary.done, summary.skipped, summary.failed) == (1, 1, 0)
    assert ei.read_bytes() == good  # rewritten from its checkpoint, identical
    assert sim.calls == calls  # ... without simulating anything again


def test_a_shard_that_forms_other_groups_is_refused(tmp_path: Path, monkeypatch) -> None:
    """Same subjects, one scan length changed between two shards: groups [[0, 1], [2, 3]] became
    [[0, 2], [3], [1]], so shard 2/2 would run sub-03 alone and sub-02 would belong to no shard."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 4)
    out = tmp_path / "out"
    _cohort(manifest, out, shard="1/2")
    table = pd.read_csv(manifest)
    table.loc[1, "scan_length"] = 7.2
    changed = tmp_path / "changed.csv"
    table.to_csv(changed, index=False)
    with pytest.raises(InvalidInputError, match="planned with other lockstep groups") as err:
        _cohort(changed, out, shard="2/2")
    assert err.value.source == str(out / "shard_plan.json")
    assert not (out / "sub-03").exists()  # refused before any work
    # the same manifest still runs the other shard
    summary = _cohort(manifest, out, shard="2/2")
    assert (summary.done, summary.failed) == (2, 0)


def test_a_misspelt_manifest_column_is_named(tmp_path: Path, monkeypatch) -> None:
    """'myelin_map' is not 'myelin': unnoticed, the default maps would be fitted instead."""
    use_analytic_simulator(monkeypatch)
    table = pd.read_csv(write_manifest(tmp_path, 1))
    table["myelin_map"] = "data/my_myelin.csv"
    manifest = tmp_path / "typo.csv"
    table.to_csv(manifest, index=False)
    with pytest.warns(InputWarning, match=r"typo.csv: column\(s\) 'myelin_map' are not read"):
        run_cohort(manifest, tmp_path / "out", _settings(), group_size=2, quiet=True)


def test_collect_says_why_subjects_have_no_results(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    table = pd.read_csv(manifest)
    table.loc[2, "fc"] = "data/missing_FC.csv"  # sub-02 fails
    table.to_csv(manifest, index=False)
    out = tmp_path / "out"
    summary = _cohort(manifest, out)
    assert summary.failed == 1
    (out / "sub-01" / "run.json").unlink()  # killed before its last write: checkpoint only
    demo = _demographics(tmp_path / "demo.csv", ["sub-00", "sub-01", "sub-02", "sub-09"])
    with pytest.warns(InputWarning, match="have no finished results") as record:
        collect(out, demo, tmp_path / "table.csv")
    text = next(str(w.message) for w in record if "have no finished results" in str(w.message))
    assert "1 unfinished (sub-01: a checkpoint but no result: rerun the cohort command" in text
    assert "1 failed (sub-02: see failures.csv" in text
    assert "1 not started (sub-09: no checkpoint or result" in text
    # sub-01 resumed by another live process (its fit lock is held): "being fitted", not unfinished
    from delssome_norms.fit.group_lock import GroupLock

    with GroupLock(out, ["sub-01"]) as lock:
        assert lock.acquire() == []
        with pytest.warns(InputWarning, match="have no finished results") as record:
            collect(out, demo, tmp_path / "table.csv")
    text = next(str(w.message) for w in record if "have no finished results" in str(w.message))
    assert "1 being fitted (sub-01: another cohort run or Dask task holds their fit lock" in text
    assert "unfinished" not in text


def test_shard_plan_records_the_groups(tmp_path: Path, monkeypatch) -> None:
    """Plans of an older version (no groups_sha256) are still accepted."""
    import json

    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 4)
    out = tmp_path / "out"
    _cohort(manifest, out, shard="1/2")
    plan = json.loads((out / "shard_plan.json").read_text())
    assert len(plan["groups_sha256"]) == 64
    del plan["groups_sha256"]
    (out / "shard_plan.json").write_text(json.dumps(plan))
    assert _cohort(manifest, out, shard="2/2").done == 2


def test_a_single_fit_refuses_its_damaged_result(tmp_path: Path, monkeypatch) -> None:
    """estimate-ei (fit_group) reused a finished folder whose EI_ratio.csv was cut short: the
    check lives with the other finished-result checks, so every entry point refuses it."""
    from delssome_norms.fit import estimate_ei, load_subject

    use_analytic_simulator(monkeypatch)
    manifest = pd.read_csv(write_manifest(tmp_path, 1))
    row = manifest.iloc[0]
    data = Path(tmp_path / "data")
    subject = load_subject(
        "sub-00", 0.72, float(row["scan_length"]), fc=data / Path(row["fc"]).name,
        fcd_cdf=data / Path(row["fcd_cdf"]).name, sc=data / Path(row["sc"]).name,
    )  # fmt: skip
    out = tmp_path / "fit"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        assert estimate_ei(subject, out, _settings()).status == "done"
        ei = out / "EI_ratio.csv"
        good = ei.read_text()
        ei.write_text(good.replace(good.splitlines()[1].split(",")[1], "9.5", 1))  # edited value
        with pytest.raises(InvalidInputError, match=r"EI_ratio.csv: regional E/I values average"):
            estimate_ei(subject, out, _settings())


def test_a_cohort_timing_error_names_the_option_that_sets_it(tmp_path: Path, monkeypatch) -> None:
    """It said 'subject sub-00 (train timing)' for an FCD window longer than the scan."""
    from dataclasses import replace

    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)  # 14.4-s scans at TR 0.72: 20 frames
    settings = replace(_settings(), fcd_window=30)
    with pytest.raises(InvalidInputError, match=r"subject sub-00 \(train timing, --fcd-window\)"):
        run_cohort(manifest, tmp_path / "out", settings, group_size=2, quiet=True)
    assert not (tmp_path / "out" / "sub-00").exists()  # refused before any work
