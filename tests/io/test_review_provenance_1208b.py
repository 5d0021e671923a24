"""Provenance review (1208b): ``charts calibrate`` on the chart's own training table, its missing
provenance sidecar, another table's provenance carried inside a Parquet file, and what the
documentation says the SC and maps digests are of.

Expectations are independent of the code under test: SHA-256 digests are computed here with
hashlib from the files' bytes, the chart's digests read from its ``chart.json``.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import load_default_maps
from delssome_norms.errors import InputWarning
from delssome_norms.io import read_ei_table, write_table
from delssome_norms.io.digest import arrays_sha256
from delssome_norms.io.provenance import SIDECAR_KIND, read_table_provenance
from delssome_norms.norms import GrowthChart

MEAN = "ei_ratio_mean"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
PIPELINE = {"atlas": "custom-2", "n_regions": 2, "mode": "euler", "design": "[1, gradient]"}
IN_SAMPLE = "was fitted on (its SHA-256 is the table_sha256 the chart records)"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cohort(seed: int, n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(10, 80, n)
    female = rng.random(n) < 0.5
    return pd.DataFrame(
        {
            "subject_id": [f"s{seed}-{i}" for i in range(n)],
            "age_in_years": age,
            "sex": np.where(female, "female", "male"),
            "site_scanner": np.where(rng.random(n) < 0.5, "A", "B"),
            MEAN: 1.0 + 0.002 * age + 0.1 * rng.standard_normal(n),
        }
    )


def collected(path: Path, table: pd.DataFrame) -> Path:
    """``table`` written with a provenance sidecar as collect writes it (its SHA-256 recorded)."""
    write_table(table, path)
    sidecar = {"kind": SIDECAR_KIND, "format_version": 1, "pipeline": dict(PIPELINE)}
    sidecar.update(table=path.name, n_subjects=len(table), table_sha256=sha(path))
    path.with_name(path.stem + ".provenance.json").write_text(json.dumps(sidecar))
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A chart fitted on ``train.csv`` (with its sidecar), and a held-out ``other.csv``."""
    root = tmp_path_factory.mktemp("cal")
    train = collected(root / "train.csv", cohort(1))
    other = collected(root / "other.csv", cohort(2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chart = GrowthChart("NO", mu_df=3, sigma_df=None).fit(
            pd.read_csv(train), provenance=read_table_provenance(train)
        )
    return chart.save(root / "chart"), train, other


def calibrate(chart: Path, table: Path, out: Path, *extra: str):
    argv = ["charts", "calibrate", "--chart", str(chart), "--table", str(table), "--out", str(out)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main([*argv, *extra])
    return code, [str(w.message) for w in caught if issubclass(w.category, InputWarning)]


# -- 1. the chart's own training table is in-sample ----------------------------------------------
def test_calibrating_on_the_training_table_is_warned_and_recorded(fitted, tmp_path, capsys) -> None:
    chart, train, _ = fitted
    out = tmp_path / "cal.csv"
    code, said = calibrate(chart, train, out, "--by", "sex")
    assert code == 0
    named = [m for m in said if IN_SAMPLE in m]
    assert len(named) == 1 and str(train) in named[0] and "in-sample and optimistic" in named[0]
    printed = capsys.readouterr().out
    assert "people of the table the chart was fitted on (in-sample: optimistic)" in printed
    assert "held-out people" not in printed
    meta = json.loads((tmp_path / "cal.provenance.json").read_text())
    assert meta["calibration"]["in_sample"] is True


def test_a_held_out_table_is_not_warned_about(fitted, tmp_path, capsys) -> None:
    chart, _, other = fitted
    code, said = calibrate(chart, other, tmp_path / "cal.csv")
    assert code == 0 and not [m for m in said if IN_SAMPLE in m]
    assert "on 240 held-out people" in capsys.readouterr().out
    meta = json.loads((tmp_path / "cal.provenance.json").read_text())
    assert meta["calibration"]["in_sample"] is False


def test_a_chart_recording_no_table_digest_cannot_tell(tmp_path, capsys) -> None:
    path = tmp_path / "plain.csv"
    cohort(3).to_csv(path, index=False)  # no sidecar: the chart records no table SHA-256
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        folder = GrowthChart("NO", mu_df=3, sigma_df=None).fit(pd.read_csv(path)).save(tmp_path / "c")
    code, said = calibrate(folder, path, tmp_path / "cal.csv")
    assert code == 0 and not [m for m in said if IN_SAMPLE in m]
    meta = json.loads((tmp_path / "cal.provenance.json").read_text())
    assert meta["calibration"]["in_sample"] is None


# -- 2. the calibration's provenance sidecar ------------------------------------------------------
def test_calibrate_writes_provenance_sidecars_with_its_outputs(fitted, tmp_path, capsys) -> None:
    chart, _, other = fitted
    out, cent = tmp_path / "cal.csv", tmp_path / "cent.parquet"
    stale = tmp_path / "cal.regions.csv"  # of an earlier scores file of that name
    stale.write_text("column,region_index,region\nei_ratio_roi_0,0,a\n")
    code, _ = calibrate(chart, other, out, "--by", "sex", "--age-bands", "0,40,120", "--by", "age")
    assert code == 0
    code, _ = calibrate(chart, other, out, "--by", "sex", "--centiles-out", str(cent))
    assert code == 0
    assert not stale.exists()
    document = json.loads((chart / "chart.json").read_text())
    for table in (out, cent):
        meta = json.loads(table.with_name(table.stem + ".provenance.json").read_text())
        assert meta["kind"] == SIDECAR_KIND and meta["table"] == table.name
        assert meta["table_sha256"] == sha(table)  # of the file as written
        assert meta["source"]["table"] == str(other.absolute())
        assert meta["source"]["table_sha256"] == sha(other)
        assert meta["source"]["provenance"]["table_sha256"] == sha(other)
        assert meta["pipeline"] == PIPELINE
        assert meta["chart"]["chart"] == str(chart.absolute())
        assert meta["chart"]["content_sha256"] == document["content_sha256"]
        assert meta["chart"]["chart_json_sha256"] == sha(chart / "chart.json")
        produced = meta["produced_by"]
        assert produced["command"] == "delssome-norms charts calibrate"
        assert produced["settings"]["by"] == ["sex"] and produced["settings"]["age_bands"] is None
        assert re.fullmatch(r"\d+\.\d+.*", produced["delssome_norms_version"])
        assert meta["calibration"]["centiles"] == cent.name
    printed = capsys.readouterr().out
    assert "(with cal.provenance.json and cent.provenance.json)" in printed


def test_outputs_whose_sidecars_would_collide_are_refused(fitted, tmp_path, capsys) -> None:
    chart, _, other = fitted
    out = tmp_path / "cal.csv"
    code, _ = calibrate(chart, other, out, "--centiles-out", str(tmp_path / "cal.parquet"))
    assert code == 2 and not out.exists()
    err = capsys.readouterr().err
    assert "--centiles-out" in err and "cal.provenance.json" in err


def test_an_output_onto_the_tables_sidecar_is_refused(fitted, tmp_path, capsys) -> None:
    chart, _, other = fitted
    # an output named other.parquet would write other.provenance.json, the input's sidecar (and
    # remove other.regions.csv, were there one)
    before = sha(other.with_name("other.provenance.json"))
    code, _ = calibrate(chart, other, other.with_name("other.parquet"))
    err = capsys.readouterr().err
    assert code == 2 and "sidecar of --table" in err and "it would be overwritten" in err
    assert sha(other.with_name("other.provenance.json")) == before


# -- 3. a Parquet file's embedded attrs are not its provenance -----------------------------------
def test_a_parquet_subset_does_not_carry_the_full_tables_provenance(fitted, tmp_path) -> None:
    _, train, _ = fitted
    full = read_ei_table(train)
    assert full.attrs["delssome_norms_provenance"]["n_subjects"] == 240
    subset = tmp_path / "young.parquet"
    write_table(full[full["age_in_years"] < 30], subset)
    read = read_ei_table(subset)
    assert len(read) == int((full["age_in_years"] < 30).sum()) < 240
    assert read.attrs == {}  # no sidecar: no provenance, as the command line reads it
    # a sidecar written for it is what it carries
    collected(subset, read)
    mine = read_ei_table(subset).attrs["delssome_norms_provenance"]
    assert mine["table_sha256"] == sha(subset) != sha(train)
    assert mine["n_subjects"] == len(read)


# -- 4. what the digests are of, as the documentation says ---------------------------------------
def test_docs_say_the_default_maps_digest_is_of_the_packaged_file() -> None:
    raw = importlib.resources.files("delssome_norms.datasets").joinpath("data", "default_maps.csv")
    maps = load_default_maps()
    assert maps.sha256 == hashlib.sha256(raw.read_bytes()).hexdigest()
    assert maps.sha256 != arrays_sha256(maps.myelin, maps.gradient)
    text = " ".join(DOCS.read_text(encoding="utf-8").split())
    assert "is the SHA-256 of the packaged `default_maps.csv` file's bytes" in text
    assert "SC and maps' `sha256` digest their values" not in text
    assert "as everywhere an SC or map is recorded" not in text
    assert "`write_table` writes the table only" in text


def test_parquet_attrs_are_neither_written_nor_read(tmp_path: Path) -> None:
    """``write_table`` stores the rows only; a Parquet file that pandas wrote with ``attrs``
    inside is read by ``read_table`` without them (provenance comes from sidecars only)."""
    from delssome_norms.io import read_table, write_table

    frame = pd.DataFrame({"subject_id": ["a", "b"], "ei_ratio_mean": [3.0, 3.5]})
    frame.attrs = {"provenance": {"n_subjects": 1500}}
    write_table(frame, tmp_path / "ours.parquet")
    assert pd.read_parquet(tmp_path / "ours.parquet").attrs == {}
    assert frame.attrs == {"provenance": {"n_subjects": 1500}}  # the caller's frame is untouched
    frame.to_parquet(tmp_path / "pandas.parquet", index=False)
    assert pd.read_parquet(tmp_path / "pandas.parquet").attrs  # pandas does embed them
    read = read_table(tmp_path / "pandas.parquet")
    assert read.attrs == {} and read["ei_ratio_mean"].tolist() == [3.0, 3.5]


# -- review of 2026-12-08: adapted charts, tables without sidecars, other tables' sidecars ------
def test_an_adapted_chart_calibrated_on_its_own_controls_is_in_sample(fitted, tmp_path, capsys):
    chart, _, _ = fitted
    controls = cohort(3, n=40).assign(site_scanner="C")
    controls = collected(tmp_path / "controls.csv", controls)
    adapted = tmp_path / "adapted"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        argv = ["charts", "adapt", "--chart", str(chart), "--controls", str(controls)]
        assert main([*argv, "--out", str(adapted)]) == 0
    code, said = calibrate(adapted, controls, tmp_path / "cal.csv")
    assert code == 0
    (named,) = [m for m in said if "was adapted with" in m]
    assert "(site C)" in named and "in-sample and optimistic" in named
    assert "in-sample: optimistic" in capsys.readouterr().out
    meta = json.loads((tmp_path / "cal.provenance.json").read_text())
    assert meta["calibration"]["in_sample"] is True
    # other people of the adapted site are held out for it
    other = collected(tmp_path / "other_c.csv", cohort(4, n=40).assign(site_scanner="C"))
    code, said = calibrate(adapted, other, tmp_path / "c3.csv")
    assert code == 0 and not [m for m in said if "in-sample" in m]


def test_calibrate_says_when_the_table_has_no_sidecar(fitted, tmp_path) -> None:
    chart, _, other = fitted
    bare = tmp_path / "bare.csv"
    bare.write_bytes(other.read_bytes())  # copied without its provenance sidecar
    code, said = calibrate(chart, bare, tmp_path / "cal.csv")
    assert code == 0
    assert [m for m in said if "no provenance sidecar bare.provenance.json" in m]
    meta = json.loads((tmp_path / "cal.provenance.json").read_text())
    assert meta["table_provenance"] == "missing"
    code, said = calibrate(chart, other, tmp_path / "cal2.csv")
    assert json.loads((tmp_path / "cal2.provenance.json").read_text())["table_provenance"] == "sidecar"


def test_calibrate_refuses_to_replace_another_tables_sidecar(fitted, tmp_path, capsys) -> None:
    chart, _, other = fitted
    neighbour = collected(tmp_path / "cohort_ei.csv", cohort(5, n=30))
    before = neighbour.with_suffix(".provenance.json").read_text()
    code, _ = calibrate(chart, other, tmp_path / "cohort_ei.parquet")
    assert code == 2
    assert "would replace the provenance sidecar cohort_ei.provenance.json" in capsys.readouterr().err
    assert neighbour.with_suffix(".provenance.json").read_text() == before
    assert not (tmp_path / "cohort_ei.parquet").exists()


def test_score_refuses_to_replace_another_tables_sidecar(fitted, tmp_path, capsys) -> None:
    chart, _, other = fitted
    neighbour = collected(tmp_path / "cohort_ei.csv", cohort(6, n=30))
    before = neighbour.with_suffix(".provenance.json").read_text()
    argv = ["charts", "score", "--chart", str(chart), "--table", str(other)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*argv, "--out", str(tmp_path / "cohort_ei.parquet")]) == 2
    assert "would replace the provenance sidecar cohort_ei.provenance.json" in capsys.readouterr().err
    assert neighbour.with_suffix(".provenance.json").read_text() == before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*argv, "--out", str(tmp_path / "scores.csv")]) == 0  # its own name: written
