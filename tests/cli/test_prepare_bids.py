"""``prepare --bids-dir`` on a BIDS-derivatives tree: sidecar TRs, sessions, tasks, the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError


def _run(folder: Path, name: str, frames: int, tr: float | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((frames, 68)) + rng.standard_normal((frames, 1))
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(ts, columns=list(DK68_REGIONS)).to_csv(
        folder / f"{name}_timeseries.tsv", sep="\t", index=False
    )
    if tr is not None:
        (folder / f"{name}_timeseries.json").write_text(json.dumps({"RepetitionTime": tr}))


@pytest.fixture
def bids(tmp_path: Path) -> Path:
    root = tmp_path / "bids"
    func = root / "sub-01" / "func"
    _run(func, "sub-01_task-rest_run-1", 160, 0.8, 1)
    _run(func, "sub-01_task-rest_run-2", 120, 0.8, 2)
    _run(func, "sub-01_task-nback_run-1", 150, 0.8, 3)
    for k, ses in enumerate(("1", "2")):
        _run(root / "sub-02" / f"ses-{ses}" / "func", f"sub-02_ses-{ses}_task-rest", 70, 2.0, 4 + k)
    return root


def test_bids_sidecars_sessions_and_tasks(bids: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "prepared"
    assert main(["prepare", "--bids-dir", str(bids), "--out-dir", str(out)]) == 2
    assert "2 tasks (nback, rest)" in capsys.readouterr().err
    assert main(["prepare", "--bids-dir", str(bids), "--task", "rest", "--out-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert "one entry per session" in text and "sub-01 (160/120 -> 140)" in text
    manifest = pd.read_csv(out / "manifest.csv")
    rows = manifest.set_index("subject_id")
    assert list(rows.index) == ["sub-01", "sub-02_ses-1", "sub-02_ses-2"]
    assert rows.loc["sub-01", "tr"] == 0.8 and rows.loc["sub-01", "scan_length"] == pytest.approx(112.0)
    assert rows.loc["sub-02_ses-1", "tr"] == 2.0 and rows.loc["sub-02_ses-2", "scan_length"] == 140.0
    assert rows["n_runs"].tolist() == [2, 1, 1]
    assert main(["validate", "--manifest", str(out / "manifest.csv")]) == 0
    # --tr only fills in where a sidecar lacks the TR; a sidecar's TR wins, with a warning
    again = tmp_path / "again"
    argv = ["prepare", "--bids-dir", str(bids), "--task", "rest", "--out-dir", str(again)]
    with pytest.warns(UserWarning, match="sidecar RepetitionTime 2 s is used, not --tr 0.8 s"):
        assert main([*argv, "--tr", "0.8"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(again / "manifest.csv"), manifest)
    for side in bids.rglob("sub-02_*.json"):
        side.unlink()
    bad = tmp_path / "bad"
    argv[-1] = str(bad)
    assert main(argv) == 2
    assert "give --tr" in capsys.readouterr().err and not bad.exists()
    assert main([*argv, "--tr", "2.0"]) == 0
    assert pd.read_csv(bad / "manifest.csv")["tr"].tolist() == [0.8, 2.0, 2.0]


def test_collect_refuses_to_write_into_a_subject_folder(tmp_path: Path) -> None:
    from delssome_norms.fit.collect import _check_out_outside_results

    cohort = tmp_path / "cohort"
    (cohort / "sub-01").mkdir(parents=True)
    (cohort / "sub-01" / "EI_ratio.csv").write_text("x")
    with pytest.raises(InvalidInputError, match="results folder of subject sub-01"):
        _check_out_outside_results(cohort, cohort / "sub-01" / "EI_ratio.csv")
    with pytest.raises(InvalidInputError, match=r"replace the cohort's own failures\.csv"):
        _check_out_outside_results(cohort, cohort / "failures.csv")
    _check_out_outside_results(cohort, cohort / "cohort_ei.csv")
    _check_out_outside_results(cohort, tmp_path / "cohort_ei.csv")


def test_an_unreadable_manifest_row_fails_alone(tmp_path: Path, capsys) -> None:
    from delssome_norms.fit import FitSettings
    from delssome_norms.fit.cohort import _load_row, plan_cohort
    from delssome_norms.io import read_manifest
    from delssome_norms.io.readers import INPUT_PROBLEM

    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "a.tsv", rng.standard_normal((100, 68)), delimiter="\t")
    manifest = tmp_path / "m.csv"
    manifest.write_text("subject_id,tr,timeseries\nsub-a,0.72,a.tsv\nsub-b,0.72,missing.tsv\n")
    table = read_manifest(manifest)
    assert table["scan_length"].iloc[0] == 72.0 and np.isnan(table["scan_length"].iloc[1])
    assert "missing.tsv: file does not exist" in table[INPUT_PROBLEM].iloc[1]
    # both stay in the plan (its subjects do not depend on what is readable today); b fails alone
    plan = plan_cohort(table, FitSettings(), group_size=2, n_regions=68)
    assert plan.subject_ids == ["sub-a", "sub-b"]
    with pytest.raises(InvalidInputError, match=r"missing\.tsv: file does not exist"):
        _load_row(plan.rows[1], 68, FitSettings())
    assert main(["validate", "--manifest", str(manifest)]) == 2
    assert "1 of 2 subject(s) cannot be fitted: sub-b" in capsys.readouterr().err


def test_bids_confounds_are_skipped_and_two_atlases_of_one_run_refused(bids: Path, tmp_path, capsys):
    func = bids / "sub-01" / "func"
    confounds = pd.DataFrame({"global_signal": np.arange(160.0), "csf": np.ones(160)})
    confounds.to_csv(
        func / "sub-01_task-rest_run-1_desc-confounds_timeseries.tsv", sep="\t", index=False
    )
    out = tmp_path / "out"
    argv = ["prepare", "--bids-dir", str(bids), "--task", "rest", "--out-dir"]
    assert main([*argv, str(out)]) == 0
    assert pd.read_csv(out / "manifest.csv")["n_runs"].tolist() == [2, 1, 1]
    _run(func, "sub-01_task-rest_run-1_atlas-Other", 160, 0.8, 9)
    assert main([*argv, str(tmp_path / "out2")]) == 2
    assert "2 time series of one run" in capsys.readouterr().err
