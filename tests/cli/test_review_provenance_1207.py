"""Review 12-07: no output (or its side files) may land on an input table or its side files
(``charts score``/``compare``/``report``, ``stats``), and the provenance of what ``charts
score``, ``stats`` and ``prepare`` write (the scores' chart and table, the statistics' table and
settings, prepare's TR, FCD window and runs)."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.io import ei_table as et
from delssome_norms.io import writers

KIND = "delssome_norms cohort table provenance"


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _collected(folder: Path, n: int = 40, name: str = "cohort_ei.csv", seed: int = 0) -> Path:
    """A table as collect leaves it: the table, its regions sidecar and its provenance sidecar."""
    from delssome_norms.datasets import load_reference_table

    folder.mkdir(parents=True, exist_ok=True)
    table = folder / name
    load_reference_table().sample(n=n, random_state=seed).to_csv(table, index=False)
    et.regions_frame(list(DK68_REGIONS)).to_csv(folder / f"{table.stem}.regions.csv", index=False)
    meta = {
        "kind": KIND,
        "table": table.name,
        "format_version": 1,
        "pipeline": {"atlas": "DK68", "n_regions": 68, "mode": "euler", "design": "[1, myelin]"},
        "atlas": {"name": "DK68", "n_regions": 68, "regions": list(DK68_REGIONS)},
        "table_sha256": _sha(table),
    }
    (folder / f"{table.stem}.provenance.json").write_text(json.dumps(meta))
    return table


def _side_bytes(table: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in (table, table.with_suffix(".regions.csv"), table.with_suffix(".provenance.json"))
    }


def _error(capsys) -> str:
    return next(ln for ln in capsys.readouterr().err.splitlines() if ": error:" in ln)


# --- 1. outputs that would overwrite a table's side files -------------------------------------


def test_score_out_on_the_tables_side_files_is_refused(tmp_path: Path, capsys) -> None:
    table = _collected(tmp_path / "t")
    before = _side_bytes(table)
    score = ["charts", "score", "--chart", "reference", "--table", str(table), "--out"]
    # the table's own regions sidecar (before: overwritten with the scores, exit 0)
    assert main([*score, str(table.with_name("cohort_ei.regions.csv"))]) == 2
    err = _error(capsys)
    assert "--out" in err and "is the regions sidecar of --table" in err
    # scores of the same stem: their sidecars would be the table's
    assert main([*score, str(table.with_name("cohort_ei.parquet"))]) == 2
    assert "comes with its regions sidecar" in _error(capsys)
    assert _side_bytes(table) == before
    assert not table.with_name("cohort_ei.parquet").exists()
    # a table named like a sidecar: the scores' sidecar would be the table itself
    odd = table.with_name("a.regions.csv")
    odd.write_bytes(table.read_bytes())
    argv = ["charts", "score", "--chart", "reference", "--table", str(odd)]
    assert main([*argv, "--out", str(table.with_name("a.csv"))]) == 2
    assert "which is the input given as --table" in _error(capsys)
    assert odd.read_bytes() == table.read_bytes() and not table.with_name("a.csv").exists()


def test_compare_and_stats_keep_off_the_tables_side_files(tmp_path: Path, capsys) -> None:
    table = _collected(tmp_path / "t")
    before = _side_bytes(table)
    argv = ["charts", "compare", "--table", str(table), "--out"]
    assert main([*argv, str(table.with_suffix(".regions.csv"))]) == 2  # refused before the fits
    assert "is the regions sidecar of --table" in _error(capsys)
    assert _side_bytes(table) == before
    # a table in a stats folder: its provenance sidecar is the one stats sex writes for sex_gap.csv
    stats_dir = tmp_path / "stats"
    stats_dir.mkdir()
    (stats_dir / ".delssome-norms-stats").write_text("earlier stats\n")
    parquet = stats_dir / "sex_gap.parquet"
    parquet.write_bytes(b"PAR1")
    (stats_dir / "sex_gap.provenance.json").write_text('{"mine": true}')
    assert main(["stats", "sex", "--table", str(parquet), "--out-dir", str(stats_dir)]) == 2
    err = _error(capsys)
    assert "--out-dir" in err and "sex_gap.provenance.json, which is the provenance sidecar" in err
    assert json.loads((stats_dir / "sex_gap.provenance.json").read_text()) == {"mine": True}


# --- 2. provenance of the scores ---------------------------------------------------------------


def test_scores_record_the_chart_and_the_table(tmp_path: Path, capsys) -> None:
    from delssome_norms.io import read_table_provenance
    from delssome_norms.norms import load_reference_chart
    from delssome_norms.norms.reference import reference_chart_path

    table = _collected(tmp_path / "t")
    scores = tmp_path / "s" / "scores.csv"
    argv = ["charts", "score", "--chart", "reference", "--table", str(table), "--out", str(scores)]
    assert main([*argv, "--layout", "long"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the sidecar describes these very scores
        meta = read_table_provenance(scores)
    assert meta["kind"] == KIND and meta["table"] == "scores.csv"
    assert meta["table_sha256"] == _sha(scores)
    source = json.loads(table.with_suffix(".provenance.json").read_text())
    assert meta["pipeline"] == source["pipeline"] and meta["atlas"] == source["atlas"]
    assert meta["source"] == {
        "table": str(table.absolute()),
        "table_sha256": _sha(table),
        "provenance": source,
    }
    assert meta["produced_by"]["command"] == "delssome-norms charts score"
    assert meta["produced_by"]["settings"]["layout"] == "long"
    shipped = reference_chart_path()
    chart = meta["chart"]
    assert chart["chart"] == "reference" and chart["shipped_reference"] is True
    assert chart["chart_json_sha256"] == _sha(shipped / "chart.json")
    assert chart["arrays_sha256"] == _sha(shipped / "arrays.npz")
    assert chart["synthetic"] is True
    regions = table.with_suffix(".regions.csv").read_bytes()
    assert scores.with_suffix(".regions.csv").read_bytes() == regions

    # a chart folder: its own content digest, as its chart.json records it
    folder = tmp_path / "mychart"
    load_reference_chart().save(folder)
    saved = json.loads((folder / "chart.json").read_text())
    again = tmp_path / "s" / "again.csv"
    argv = ["charts", "score", "--chart", str(folder), "--table", str(table), "--out", str(again)]
    assert main(argv) == 0
    chart = json.loads(again.with_suffix(".provenance.json").read_text())["chart"]
    assert chart["chart"] == str(folder.absolute()) and chart["shipped_reference"] is False
    assert chart["content_sha256"] == saved["content_sha256"] is not None
    assert chart["arrays_sha256"] == _sha(folder / "arrays.npz")
    assert chart["chart_json_sha256"] == _sha(folder / "chart.json")
    capsys.readouterr()


# --- 3. provenance of the statistics ------------------------------------------------------------


def test_stats_tables_record_the_table_and_settings(tmp_path: Path, capsys) -> None:
    table = _collected(tmp_path / "t", n=200, seed=1)
    source = json.loads(table.with_suffix(".provenance.json").read_text())
    out = tmp_path / "stats"
    out.mkdir()
    (out / ".delssome-norms-stats").write_text("earlier stats\n")
    stale = ("region_group_trajectories.csv", "region_group_trajectories.provenance.json")
    for name in stale:  # an earlier run's curves: not this run's, so removed with their sidecar
        (out / name).write_text("old\n")
    base = ["--table", str(table), "--out-dir", str(out), "--no-figures"]
    assert main(["stats", "groups", *base, "--no-trajectories", "--bins", "0,40,120"]) == 0
    assert "wrote 2 files" in capsys.readouterr().out
    sex = ["stats", "sex", *base, "--targets", "ei_ratio_mean", "--n-boot", "0", "--seed", "5"]
    assert main(sex) == 0
    capsys.readouterr()
    assert not any((out / name).exists() for name in stale)
    for name, command in (
        ("region_group_scores", "stats groups"),
        ("region_group_summary", "stats groups"),
        ("sex_difference_tests", "stats sex"),
        ("sex_difference_summary", "stats sex"),
        ("sex_gap", "stats sex"),
    ):
        meta = json.loads((out / f"{name}.provenance.json").read_text())
        assert meta["kind"] == KIND and meta["table"] == f"{name}.csv"
        assert meta["table_sha256"] == _sha(out / f"{name}.csv")
        assert meta["pipeline"] == source["pipeline"]
        assert meta["source"]["table_sha256"] == _sha(table)
        assert meta["source"]["provenance"] == source
        settings = meta["produced_by"]["settings"]
        assert meta["produced_by"]["command"] == f"delssome-norms {command}"
        assert settings["n_people"] == 200 and settings["alpha"] == 0.05
        if command == "stats groups":
            assert settings["bins"] == [0.0, 40.0, 120.0] and settings["trajectories"] is False
        else:
            assert settings["seed"] == 5 and settings["n_boot"] == 0
            assert settings["targets"] == "ei_ratio_mean"


# --- 4. prepare's record ----------------------------------------------------------------------


def _run(path: Path, frames: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((frames, 68)) + 0.6 * rng.standard_normal((frames, 1))
    pd.DataFrame(ts, columns=list(DK68_REGIONS)).to_csv(path, sep="\t", index=False)


def test_prepare_records_tr_window_and_runs(tmp_path: Path, monkeypatch, capsys) -> None:
    for k, frames in enumerate((300, 200)):
        _run(tmp_path / f"run{k + 1}.tsv", frames, k)
    out = tmp_path / "out"
    runs = [str(tmp_path / "run1.tsv"), str(tmp_path / "run2.tsv")]
    argv = ["prepare", "--timeseries", *runs, "--tr", "1.5", "--out-dir", str(out)]
    assert main([*argv, "--subject-id", "sub-01", "--fcd-window", "30"]) == 0
    record = json.loads((out / "sub-01_prepare.json").read_text())
    assert record["tr"] == 1.5 and record["fcd_window"] == 30 and record["fcd_window_s"] == 45.0
    assert record["runs"] == [
        {"file": runs[0], "sha256": _sha(Path(runs[0])), "frames": 300},
        {"file": runs[1], "sha256": _sha(Path(runs[1])), "frames": 200},
    ]
    assert record["n_frames"] == 250 and record["scan_length"] == 375.0
    assert record["fc"] == "sub-01_FC.csv" and record["fcd_cdf"] == "sub-01_FCD_CDF.csv"
    assert record["fc_sha256"] == _sha(out / "sub-01_FC.csv")
    from delssome_norms import __version__

    assert record["delssome_norms_version"] == __version__
    # the default window at this TR: round(60 / 1.5) = 40 frames; without --subject-id: prepare.json
    assert main(argv) == 0
    assert json.loads((out / "prepare.json").read_text())["fcd_window"] == 40

    # stopped while the FCD-CDF is written: the record still describes the files beside it
    old = {p: (out / p).read_bytes() for p in ("FC.csv", "FCD_CDF.csv", "prepare.json")}
    original = writers.write_matrix

    def stop_at_cdf(values, path, *names):
        if "FCD_CDF" in Path(path).name:
            raise KeyboardInterrupt
        return original(values, path, *names)

    monkeypatch.setattr("delssome_norms.io.write_matrix", stop_at_cdf)
    assert main([*argv[:-4], "--tr", "2", "--out-dir", str(out)]) == 130
    assert {p: (out / p).read_bytes() for p in old} == old
    capsys.readouterr()


def test_prepare_bids_writes_a_record_per_subject(tmp_path: Path, capsys) -> None:
    root = tmp_path / "bids"
    for k, sub in enumerate(("01", "02")):
        func = root / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        _run(func / f"sub-{sub}_task-rest_timeseries.tsv", 150 + 50 * k, k)
        (func / f"sub-{sub}_task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    out = tmp_path / "out"
    assert main(["prepare", "--bids-dir", str(root), "--out-dir", str(out)]) == 0
    manifest = pd.read_csv(out / "manifest.csv")
    for k, sid in enumerate(("sub-01", "sub-02")):
        record = json.loads((out / f"{sid}_prepare.json").read_text())
        assert record["subject_id"] == sid and record["tr"] == 2.0 and record["fcd_window"] == 30
        assert [r["frames"] for r in record["runs"]] == [150 + 50 * k]
        assert record["scan_length"] == pytest.approx(manifest.loc[k, "scan_length"])
        assert record["fc_sha256"] == _sha(out / f"{sid}_FC.csv")
    capsys.readouterr()
