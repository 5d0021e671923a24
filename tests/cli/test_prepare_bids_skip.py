"""``prepare --bids-dir --skip-failed``: the subjects that can be prepared are written, the others
listed in ``prepare_failures.tsv``; without the flag one bad subject still stops the run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning

FRAMES, TR = 70, 2.0  # 68 frames is the least a 68-region run at TR 2 s may have


def _series(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((FRAMES, 68)) + rng.standard_normal((FRAMES, 1))


def _subject(root: Path, sub: str, seed: int, broken: str | None = None) -> Path:
    """One rest run of ``sub-<sub>`` with its sidecar; ``broken`` spoils it in one way."""
    func = root / f"sub-{sub}" / "func"
    func.mkdir(parents=True, exist_ok=True)
    path = func / f"sub-{sub}_task-rest_timeseries.tsv"
    table = pd.DataFrame(_series(seed), columns=list(DK68_REGIONS))
    if broken == "nan":
        table.iloc[4, 2] = np.nan
    if broken == "constant":
        table.iloc[:, 7] = 1.5
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    side = path.with_name(path.name.replace(".tsv", ".json"))
    side.unlink(missing_ok=True)
    if broken != "no-tr":
        side.write_text(json.dumps({"RepetitionTime": TR}))
    return path


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    """Five subjects; sub-02 (an n/a frame), sub-03 (a constant region) and sub-05 (no TR)
    cannot be prepared."""
    root = tmp_path / "bids"
    broken = {"02": "nan", "03": "constant", "05": "no-tr"}
    for k, sub in enumerate(("01", "02", "03", "04", "05")):
        _subject(root, sub, k, broken.get(sub))
    return root


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_skip_failed_writes_the_others_and_lists_the_failed(cohort: Path, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["prepare", "--bids-dir", str(cohort), "--out-dir", str(out)]
    # without the flag: nothing written, every subject's problem counted, the flag named
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "3 of 5 subject(s) cannot be prepared, nothing was written" in err
    assert "--skip-failed prepares the other 2" in err and not out.exists()
    with pytest.warns(InputWarning) as caught:
        assert main([*argv, "--skip-failed"]) == 0
    texts = [str(w.message) for w in caught if "were skipped" in str(w.message)]
    assert len(texts) == 1
    assert texts[0].startswith("3 of 5 subject(s) cannot be prepared and were skipped")
    assert str(out / "prepare_failures.tsv") in texts[0]
    manifest = pd.read_csv(out / "manifest.csv")
    assert manifest["subject_id"].tolist() == ["sub-01", "sub-04"]
    assert sorted(p.name for p in out.iterdir()) == [
        "manifest.csv",
        "prepare_failures.tsv",
        "sub-01_FC.csv",
        "sub-01_FCD_CDF.csv",
        "sub-01_prepare.json",
        "sub-04_FC.csv",
        "sub-04_FCD_CDF.csv",
        "sub-04_prepare.json",
    ]
    # a prepared subject's FC is its run's correlation matrix (seed 3 is sub-04's)
    fc = np.loadtxt(out / "sub-04_FC.csv", delimiter=",")
    np.testing.assert_allclose(fc, np.corrcoef(_series(3).T), atol=1e-12)
    failures = pd.read_csv(out / "prepare_failures.tsv", sep="\t")
    assert list(failures.columns) == ["subject_id", "file", "reason"]
    rows = failures.set_index("subject_id")
    assert list(rows.index) == ["sub-02", "sub-03", "sub-05"]
    run = "sub-{}/func/sub-{}_task-rest_timeseries.tsv"
    for sub in ("02", "03", "05"):  # the file to fix (sub-05's error names no file: its run)
        assert rows.loc[f"sub-{sub}", "file"] == str(cohort / run.format(sub, sub))
    assert "contain NaN/inf or n/a (frames 5, counted from 1)" in rows.loc["sub-02", "reason"]
    assert "region column 8 (lh_inferiortemporal) is constant" in rows.loc["sub-03", "reason"]
    assert rows.loc["sub-05", "reason"] == (
        "sub-05: no sidecar JSON with RepetitionTime next to its time series; give --tr (seconds)"
    )
    # the reason is the text of the all-or-nothing error, word for word
    assert f"sub-02 ({rows.loc['sub-02', 'reason']})" in err
    assert (out / "prepare_failures.tsv").read_text().count("\n") == 4  # one line each


def test_a_rerun_with_the_subjects_fixed_equals_a_fresh_run(cohort: Path, tmp_path) -> None:
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    argv = ["prepare", "--bids-dir", str(cohort), "--out-dir"]
    with pytest.warns(InputWarning, match="were skipped"):
        assert main([*argv, str(out), "--skip-failed"]) == 0
    _subject(cohort, "02", 1)
    with pytest.warns(InputWarning, match="2 of 5 subject"):
        assert main([*argv, str(out), "--skip-failed"]) == 0
    assert pd.read_csv(out / "prepare_failures.tsv", sep="\t")["subject_id"].tolist() == [
        "sub-03",
        "sub-05",
    ]
    _subject(cohort, "03", 2)
    _subject(cohort, "05", 4)
    assert main([*argv, str(out), "--skip-failed"]) == 0  # nothing to skip: no table left
    assert main([*argv, str(fresh)]) == 0
    assert _files(out) == _files(fresh)
    assert "prepare_failures.tsv" not in _files(out) and len(_files(out)) == 16


def test_a_skipped_subject_keeps_its_files_of_an_earlier_run(cohort: Path, tmp_path) -> None:
    """sub-01 was prepared from last month's data; today its run is broken: its old FC and
    FCD-CDF are kept (nothing written is deleted), named in the warning, and not in the
    manifest, so no cohort run takes them for its current data."""
    out = tmp_path / "out"
    argv = ["prepare", "--bids-dir", str(cohort), "--out-dir", str(out), "--skip-failed"]
    with pytest.warns(InputWarning):
        assert main(argv) == 0
    assert (out / "sub-01_FC.csv").is_file()
    _subject(cohort, "01", 0, broken="nan")
    with pytest.warns(InputWarning, match="sub-01_FC.csv, sub-01_FCD_CDF.csv") as caught:
        assert main(argv) == 0
    assert any("4 of 5 subject(s)" in str(w.message) for w in caught)
    assert (out / "sub-01_FC.csv").is_file() and (out / "sub-01_FCD_CDF.csv").is_file()
    assert pd.read_csv(out / "manifest.csv")["subject_id"].tolist() == ["sub-04"]


def test_no_subject_prepared_still_fails(cohort: Path, tmp_path, capsys) -> None:
    for sub, seed in (("01", 0), ("04", 3)):
        _subject(cohort, sub, seed, broken="no-tr")
    out = tmp_path / "out"
    argv = ["prepare", "--bids-dir", str(cohort), "--out-dir", str(out), "--skip-failed"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "5 of 5 subject(s) cannot be prepared, nothing was written: sub-01 (" in err
    assert "prepares the other" not in err and not out.exists()


def test_skip_failed_needs_bids_dir(tmp_path: Path, capsys) -> None:
    run = _subject(tmp_path / "bids", "01", 0)
    out = tmp_path / "out"
    argv = ["prepare", "--timeseries", str(run), "--out-dir", str(out), "--skip-failed"]
    assert main(argv) == 2
    assert "--skip-failed: only applies with --bids-dir" in capsys.readouterr().err
    assert not out.exists()


def test_stopped_while_writing_leaves_no_manifest_and_no_old_table(
    cohort: Path, tmp_path, monkeypatch
) -> None:
    """Interrupted at the manifest, the folder holds neither an earlier manifest nor an earlier
    failures table (which would list subjects this run did prepare)."""
    from delssome_norms.io import writers

    out = tmp_path / "out"
    argv = ["prepare", "--bids-dir", str(cohort), "--out-dir", str(out), "--skip-failed"]
    with pytest.warns(InputWarning):
        assert main(argv) == 0
    _subject(cohort, "02", 1)
    original = writers.write_table

    def stop(table, path, *a, **k):
        if Path(path).name.endswith("manifest.csv"):
            raise KeyboardInterrupt
        return original(table, path, *a, **k)

    monkeypatch.setattr("delssome_norms.io.write_table", stop)
    assert main(argv) == 130
    assert not (out / "manifest.csv").exists() and not (out / "prepare_failures.tsv").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]  # no staged files
    monkeypatch.undo()
    with pytest.warns(InputWarning, match="2 of 5 subject"):
        assert main(argv) == 0
    assert pd.read_csv(out / "manifest.csv")["subject_id"].tolist() == ["sub-01", "sub-02", "sub-04"]


def test_an_unreadable_run_is_skipped_with_its_os_error(cohort: Path, tmp_path, monkeypatch):
    """An OSError the readers do not turn into a message (here: raised by the TR look-up of
    sub-04) fails that subject alone, naming the file and the system's reason."""
    from delssome_norms.cli import prepare_cmd

    original = prepare_cmd.runs_tr

    def denied(paths, given, sid):
        if sid == "sub-04":
            raise PermissionError(13, "Permission denied", str(paths[0]))
        return original(paths, given, sid)

    monkeypatch.setattr(prepare_cmd, "runs_tr", denied)
    out = tmp_path / "out"
    with pytest.warns(InputWarning, match="4 of 5 subject"):
        assert main(["prepare", "--bids-dir", str(cohort), "--out-dir", str(out), "--skip-failed"]) == 0
    rows = pd.read_csv(out / "prepare_failures.tsv", sep="\t").set_index("subject_id")
    run = cohort / "sub-04" / "func" / "sub-04_task-rest_timeseries.tsv"
    assert rows.loc["sub-04", "file"] == str(run)
    assert rows.loc["sub-04", "reason"] == f"{run}: Permission denied"


def test_stopped_between_the_renames_leaves_the_table_without_a_manifest(
    cohort: Path, tmp_path, monkeypatch
) -> None:
    """The failures table is renamed into place before the manifest: a run stopped between
    the two leaves no manifest (cohort refuses to start), never a manifest whose skipped
    subjects are listed nowhere."""
    import os

    out = tmp_path / "out"
    original = os.replace

    def stop(src, dst, *a, **k):
        if Path(dst).name == "manifest.csv":
            raise KeyboardInterrupt
        return original(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", stop)
    argv = ["prepare", "--bids-dir", str(cohort), "--out-dir", str(out), "--skip-failed"]
    assert main(argv) == 130
    assert not (out / "manifest.csv").exists()
    assert pd.read_csv(out / "prepare_failures.tsv", sep="\t")["subject_id"].tolist() == [
        "sub-02",
        "sub-03",
        "sub-05",
    ]


def _narrow(root: Path, sub: str, seed: int, width: int) -> None:
    """``sub-<sub>`` with the first ``width`` DK68 regions only (another atlas's width)."""
    path = _subject(root, sub, seed)
    table = pd.read_csv(path, sep="\t")
    table.iloc[:, :width].to_csv(path, sep="\t", index=False)


def test_a_subject_of_another_width_is_not_mixed_into_the_cohort(tmp_path: Path, capsys) -> None:
    """Four DK68 subjects and one with 60 regions: one cohort is fitted in one atlas, so the
    odd one fails like any other unpreparable subject (it was written into the manifest)."""
    root = tmp_path / "bids"
    for k, sub in enumerate(("01", "02", "03", "04")):
        _subject(root, sub, k)
    _narrow(root, "05", 4, 60)
    out = tmp_path / "out"
    argv = ["prepare", "--bids-dir", str(root), "--out-dir", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "1 of 5 subject(s) cannot be prepared" in err
    assert "sub-05 (sub-05: 60 regions where 4 other subject(s) have 68" in err
    assert not out.exists()
    with pytest.warns(InputWarning, match="1 of 5 subject"):
        assert main([*argv, "--skip-failed"]) == 0
    assert pd.read_csv(out / "manifest.csv")["subject_id"].tolist() == [f"sub-0{k}" for k in "1234"]
    failures = pd.read_csv(out / "prepare_failures.tsv", sep="\t")
    assert failures["subject_id"].tolist() == ["sub-05"]
    assert "60 regions" in failures["reason"][0] and "sub-05_task-rest" in failures["file"][0]


def test_a_tie_between_widths_is_refused_even_when_skipping(tmp_path: Path, capsys) -> None:
    root = tmp_path / "bids"
    _subject(root, "01", 0)
    _narrow(root, "02", 1, 60)
    out = tmp_path / "out"
    argv = ["prepare", "--bids-dir", str(root), "--out-dir", str(out), "--skip-failed"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "different numbers of regions (68 regions: 1 subject(s), 60 regions: 1 subject(s))" in err
    assert not out.exists()
