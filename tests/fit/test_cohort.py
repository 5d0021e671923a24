"""Cohort runs: shards, failures, finished subjects, cohort gradient, collect (analytic simulator)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import N_TINY, analytic_cohort_settings, use_analytic_simulator, write_manifest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import (
    FitSettings,
    collect,
    parse_shard,
    plan_cohort,
    run_cohort,
    shard_groups,
)
from delssome_norms.fit.lockstep import default_gradient
from delssome_norms.io import arrays_sha256, fisher_z_mean, read_fc, read_manifest


def _settings() -> FitSettings:
    return analytic_cohort_settings()


def test_shards_cover_the_manifest_exactly_once(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 5)
    seen: dict[str, list[str]] = {}
    for shard in ("1/2", "2/2"):
        with pytest.warns(InputWarning, match="cohort's group-average FC"):
            summary = run_cohort(
                manifest,
                tmp_path / "out",
                _settings(),
                shard=shard,
                group_size=2,
                quiet=True,
                on_subject=lambda o, s=shard: seen.setdefault(s, []).append(o["subject_id"]),
            )
        assert summary.failed == 0 and summary.skipped == 0
    assert sorted(seen["1/2"]) == ["sub-00", "sub-01", "sub-04"]  # groups 0 and 2
    assert sorted(seen["2/2"]) == ["sub-02", "sub-03"]  # group 1
    assert sorted(seen["1/2"] + seen["2/2"]) == [f"sub-{i:02d}" for i in range(5)]
    # rerunning everything recomputes nothing
    summary = run_cohort(manifest, tmp_path / "out", _settings(), group_size=2, quiet=True)
    assert (summary.done, summary.skipped) == (0, 5)


def test_shards_on_machines_of_different_memory_form_the_same_groups(
    tmp_path: Path, monkeypatch
) -> None:
    """The first shard records its K; a shard on a node that would choose another K adopts it,
    so the shards still cover the manifest exactly once."""
    from delssome_norms.fit import cohort

    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 5)
    seen: list[str] = []
    for shard, machine_k in (("1/2", 3), ("2/2", 2)):
        monkeypatch.setattr(cohort, "choose_group_size", lambda *a, k=machine_k, **kw: k)
        with pytest.warns(InputWarning):
            summary = run_cohort(
                manifest,
                tmp_path / "out",
                _settings(),
                shard=shard,
                quiet=True,
                on_subject=lambda o: seen.append(o["subject_id"]),
            )
        assert summary.group_size == 3 and summary.failed == 0
    assert sorted(seen) == [f"sub-{i:02d}" for i in range(5)]
    plan = json.loads((tmp_path / "out" / "shard_plan.json").read_text())
    assert plan["group_size"] == 3 and plan["n_subjects"] == 5
    # an explicit other K, or another manifest, is refused before any work
    with pytest.raises(InvalidInputError, match=r"groups of 3 subject.*--batch-subjects 3"):
        run_cohort(manifest, tmp_path / "out", _settings(), shard="1/2", group_size=2, quiet=True)
    other = write_manifest(tmp_path / "other", 4)
    with pytest.raises(InvalidInputError, match="planned for another manifest"):
        run_cohort(other, tmp_path / "out", _settings(), shard="1/2", quiet=True)


def test_plan_is_independent_of_the_shard() -> None:
    table = pd.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(7)],
            "tr": [0.72, 0.72, 2.0, 0.72, 2.0, 0.72, 0.72],
            "scan_length": [14.4, 14.4, 20.0, 14.4, 20.0, 14.4, 14.4],
            "sc": ["x"] * 7,
        }
    )
    plan = plan_cohort(table, _settings(), group_size=2, n_regions=6)
    assert plan.groups == [[0, 1], [3, 5], [6], [2, 4]]  # same TR and scan length within a group
    covered = sorted(i for k in (1, 2, 3) for g in shard_groups(plan, (k, 3)) for i in plan.groups[g])
    assert covered == list(range(7))
    assert parse_shard("2/3") == (2, 3)
    for bad in ("0/2", "3/2", "a/b", "1"):
        with pytest.raises(InvalidInputError, match="--shard"):
            parse_shard(bad)


def test_bad_rows_fail_alone_with_clear_messages(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 4)
    table = pd.read_csv(manifest)
    table.loc[1, "fc"] = "data/missing_FC.csv"
    wrong = np.eye(N_TINY + 1)
    np.savetxt(tmp_path / "data" / "wrong_FC.csv", wrong, delimiter=",")
    table.loc[2, "fc"] = "data/wrong_FC.csv"
    # a fixed gradient map: with the cohort-FC gradient, every change of the cohort would change
    # the design of the finished subjects too (their fingerprint), and the rerun would refuse them
    np.savetxt(tmp_path / "data" / "gradient.csv", np.linspace(-1.0, 1.0, N_TINY), delimiter=",")
    np.savetxt(tmp_path / "data" / "myelin.csv", np.linspace(2.0, 1.0, N_TINY) ** 2, delimiter=",")
    table["gradient"], table["myelin"] = "data/gradient.csv", "data/myelin.csv"
    table.to_csv(manifest, index=False)
    summary = run_cohort(manifest, tmp_path / "out", _settings(), group_size=4, quiet=True)
    assert (summary.done, summary.failed) == (2, 2)
    failures = pd.read_csv(tmp_path / "out" / "failures.csv")
    assert list(failures["subject_id"]) == ["sub-01", "sub-02"]
    assert list(failures["stage"]) == ["input", "input"]
    msg = dict(zip(failures["subject_id"], failures["error"]))
    assert "missing_FC.csv" in msg["sub-01"] and "does not exist" in msg["sub-01"]
    assert "wrong_FC.csv" in msg["sub-02"] and f"expected {N_TINY} x {N_TINY}" in msg["sub-02"]
    for sid in ("sub-00", "sub-03"):
        assert (tmp_path / "out" / sid / "run.json").is_file()
    # fixing the file and rerunning completes the failed subject and clears failures.csv
    table.loc[1, "fc"] = "data/sub-01_FC.csv"
    table.to_csv(manifest, index=False)
    summary = run_cohort(manifest, tmp_path / "out", _settings(), group_size=4, quiet=True)
    assert (summary.done, summary.skipped, summary.failed) == (1, 2, 1)
    assert list(pd.read_csv(tmp_path / "out" / "failures.csv")["subject_id"]) == ["sub-02"]


def test_cohort_gradient_is_from_the_group_average_fc(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    with pytest.warns(InputWarning):
        run_cohort(manifest, tmp_path / "out", _settings(), group_size=3, quiet=True)
    table = read_manifest(manifest)
    fcs = np.stack([read_fc(p) for p in table["fc"]])
    expected = default_gradient(fisher_z_mean(fcs))
    got = np.loadtxt(tmp_path / "out" / "cohort_gradient.csv", delimiter=",")
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    run = json.loads((tmp_path / "out" / "sub-00" / "run.json").read_text())
    assert run["design"] == "[1, gradient]; gradient: cohort FC"
    # the gradient's digest is part of the pipeline: collect refuses subjects of one table
    # fitted with different cohort gradients (e.g. shards that could read different subjects)
    sha = arrays_sha256(got)
    assert run["provenance"]["maps"] == {"name": "cohort FC gradient", "sha256": sha}
    assert run["provenance"]["pipeline"]["maps"] == f"cohort FC gradient {sha}"


def test_subjects_left_out_of_the_cohort_gradient_are_named(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    fc = read_manifest(manifest)["fc"][1]
    Path(fc).write_text("not,a,matrix\n")
    with pytest.warns(InputWarning, match=r"averages 2 of 3 subjects: the FC of sub-01 could not"):
        run_cohort(manifest, tmp_path / "out", _settings(), group_size=3, quiet=True)


def test_collect_builds_the_chart_table(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    with pytest.warns(InputWarning):
        run_cohort(manifest, tmp_path / "out", _settings(), group_size=3, quiet=True)
    demo = tmp_path / "demogr.csv"
    pd.DataFrame(
        {
            "subject_id": ["sub-00", "sub-01", "sub-02", "sub-99"],
            "age_in_years": [20.5, 30, 40, 50],
            "sex": ["female", "M", "f", "male"],
            "site": ["A", "A", "B", "B"],
            "scanner": ["X", "X", "Y", "Y"],
        }
    ).to_csv(demo, index=False)
    with pytest.warns(InputWarning, match="sub-99"):
        table = collect(tmp_path / "out", demo, tmp_path / "cohort_ei.csv")
    assert "20.5," in (tmp_path / "cohort_ei.csv").read_text()  # shortest exact floats
    expected_cols = [
        "subject_id",
        "age_in_years",
        "sex",
        "numeric_sex",
        "site",
        "scanner",
        "site_scanner",
    ]
    assert list(table.columns[:7]) == expected_cols
    assert list(table.columns[7:]) == ["ei_ratio_mean"] + [
        f"ei_ratio_roi_{i}" for i in range(N_TINY)
    ] + [
        "ei_ratio_mean_lo",
        "ei_ratio_mean_hi",
        "ei_interval_calibrated",
        "fit_flagged",
        "fit_flag_reasons",
    ]
    assert list(table["numeric_sex"]) == [1, 0, 1] and list(table["site_scanner"]) == [
        "A_X",
        "A_X",
        "B_Y",
    ]
    back = pd.read_csv(tmp_path / "cohort_ei.csv")
    for _, row in back.iterrows():
        ei = pd.read_csv(tmp_path / "out" / row["subject_id"] / "EI_ratio.csv")["EI_ratio"].to_numpy()
        np.testing.assert_allclose(row[[f"ei_ratio_roi_{i}" for i in range(N_TINY)]].to_numpy(float), ei)
        assert row["ei_ratio_mean"] == pytest.approx(ei.mean())
        run = json.loads((tmp_path / "out" / row["subject_id"] / "run.json").read_text())
        assert row["ei_ratio_mean_lo"] == pytest.approx(run["ei_interval"]["mean_lo"])
        assert row["ei_ratio_mean_hi"] == pytest.approx(run["ei_interval"]["mean_hi"])
        assert row["fit_flagged"] == run["fit_quality"]["flagged"]
        assert row["ei_interval_calibrated"] == run["ei_interval"]["calibration_applies"]


def test_dask_executor_needs_a_scheduler(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 1)
    with pytest.raises(InvalidInputError, match="--scheduler"):
        run_cohort(manifest, tmp_path / "out", _settings(), executor="dask")
    with pytest.raises(InvalidInputError, match="--executor"):
        run_cohort(manifest, tmp_path / "out", _settings(), executor="slurm")


def test_manifest_with_timeseries_rows(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    table = pd.read_csv(manifest)
    rng = np.random.default_rng(0)
    for i in range(2):
        for run in (1, 2):
            ts = rng.standard_normal((30, N_TINY)) + rng.standard_normal((30, 1))
            np.savetxt(tmp_path / "data" / f"ts{i}_{run}.tsv", ts, delimiter="\t")
    table["timeseries"] = ["data/ts0_1.tsv;data/ts0_2.tsv", "data/ts1_1.tsv;data/ts1_2.tsv"]
    table = table.drop(columns=["fc", "fcd_cdf"])
    table["scan_length"] = 21.6
    table.to_csv(manifest, index=False)
    with pytest.warns(InputWarning):
        summary = run_cohort(manifest, tmp_path / "out", _settings(), group_size=2, quiet=True)
    assert summary.done == 2
    run = json.loads((tmp_path / "out" / "sub-01" / "run.json").read_text())
    assert run["inputs"]["timeseries"].endswith("ts1_2.tsv") and run["timing"]["scan_length"] == 21.6
    # which precision the FCD products had (bfloat16 only where the CPU kernel has AVX512-BF16)
    from delssome_norms.model import _kernel

    assert _settings().dtype == "float32"
    assert run["timing"]["fcd_products"] == ("bfloat16" if _kernel.has_bf16_fcd() else "float32")


def test_collect_warns_about_rows_that_do_not_match_the_fits(tmp_path: Path, monkeypatch) -> None:
    """A TR/scan length in the demographics other than the fitted one, and finished subjects the
    demographics leave out, are named (both used to pass silently)."""
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    with pytest.warns(InputWarning):
        run_cohort(manifest, tmp_path / "out", _settings(), group_size=3, quiet=True)
    fitted = read_manifest(manifest)
    demo = tmp_path / "demogr.csv"
    pd.DataFrame(
        {
            "subject_id": ["sub-00", "sub-01"],
            "age_in_years": [20, 30],
            "sex": ["f", "m"],
            "TR": [0.8, fitted["tr"].iloc[1]],
            "scan_length": [fitted["scan_length"].iloc[0], fitted["scan_length"].iloc[1]],
        }
    ).to_csv(demo, index=False)
    with pytest.warns(InputWarning) as record:
        table = collect(tmp_path / "out", demo, tmp_path / "t.csv")
    text = " | ".join(str(w.message) for w in record)
    assert f"sub-00: TR 0.8 vs {fitted['tr'].iloc[0]:g} s fitted" in text and "sub-01: TR" not in text
    assert "1 finished subject(s)" in text and "sub-02" in text
    assert table["subject_id"].tolist() == ["sub-00", "sub-01"]


def test_a_shard_without_groups_says_so(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    with pytest.warns(InputWarning, match=r"shard 2/2 has no work: .* 1 lockstep group"):
        summary = run_cohort(
            manifest, tmp_path / "out", _settings(), shard="2/2", group_size=4, quiet=True
        )
    assert (summary.done, summary.skipped, summary.failed) == (0, 0, 0)


def test_collect_names_a_damaged_run_json(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    with pytest.warns(InputWarning):
        run_cohort(manifest, tmp_path / "out", _settings(), group_size=2, quiet=True)
    (tmp_path / "out" / "sub-01" / "run.json").write_text('{"status": "compl')  # cut short
    demo = tmp_path / "demogr.csv"
    demo.write_text("subject_id,age_in_years,sex\nsub-00,20,f\nsub-01,30,m\n")
    with pytest.warns(InputWarning, match=r"damaged or unfinished run.json \(sub-01\)"):
        table = collect(tmp_path / "out", demo, tmp_path / "t.csv")
    assert table["subject_id"].tolist() == ["sub-00"]


def test_collect_names_the_setting_that_differs(tmp_path: Path, monkeypatch) -> None:
    """Subjects of two budgets: the message names the setting, not two pipeline hashes."""
    import dataclasses
    import shutil

    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    longer = dataclasses.replace(
        _settings(), cmaes=dataclasses.replace(_settings().cmaes, generations=4)
    )
    with pytest.warns(InputWarning):
        run_cohort(manifest, tmp_path / "a", _settings(), group_size=2, quiet=True)
        run_cohort(manifest, tmp_path / "b", longer, group_size=2, quiet=True)
    shutil.rmtree(tmp_path / "a" / "sub-01")
    shutil.copytree(tmp_path / "b" / "sub-01", tmp_path / "a" / "sub-01")
    demo = tmp_path / "demogr.csv"
    demo.write_text("subject_id,age_in_years,sex\nsub-00,20,f\nsub-01,30,m\n")
    with pytest.raises(InvalidInputError, match=r"2 different settings .*differing: cmaes\.generations"):
        collect(tmp_path / "a", demo, tmp_path / "t.csv")


def test_collect_warns_about_mixed_precision(tmp_path: Path, monkeypatch) -> None:
    import dataclasses
    import shutil

    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    with pytest.warns(InputWarning):
        run_cohort(manifest, tmp_path / "a", _settings(), group_size=2, quiet=True)
        run_cohort(
            manifest,
            tmp_path / "b",
            dataclasses.replace(_settings(), dtype="float64"),
            group_size=2,
            quiet=True,
        )
    shutil.rmtree(tmp_path / "a" / "sub-01")
    shutil.copytree(tmp_path / "b" / "sub-01", tmp_path / "a" / "sub-01")
    demo = tmp_path / "demogr.csv"
    demo.write_text("subject_id,age_in_years,sex\nsub-00,20,f\nsub-01,30,m\n")
    with pytest.warns(
        InputWarning, match=r"different dtype: float32 \(1: sub-00\); float64 \(1: sub-01\)"
    ):
        table = collect(tmp_path / "a", demo, tmp_path / "t.csv")
    assert table["subject_id"].tolist() == ["sub-00", "sub-01"]


def test_a_row_without_sc_does_not_set_the_cohorts_atlas(tmp_path: Path) -> None:
    """One row missing its SC in a cohort of a 10-region atlas: N comes from the SC files given
    (the row then fails alone, needing an SC); without any SC it is the default template's."""
    from delssome_norms.fit.cohort import _cohort_n_regions
    from delssome_norms.io import write_matrix

    sc = np.ones((10, 10)) - np.eye(10)
    write_matrix(sc, tmp_path / "sc10.csv")
    rows = [{"sc": None}, {"sc": tmp_path / "sc10.csv"}]
    assert _cohort_n_regions(rows) == 10
    assert _cohort_n_regions([{"sc": None}, {"sc": None}]) == 68
    (tmp_path / "broken.csv").write_text("not a matrix\n")
    assert _cohort_n_regions([{"sc": None}, {"sc": tmp_path / "broken.csv"}]) == 68
    with pytest.raises(InvalidInputError, match="no readable SC file"):
        _cohort_n_regions([{"sc": tmp_path / "broken.csv"}])
