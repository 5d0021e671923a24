"""``collect`` and its demographics, as a researcher with their own data meets them (review 1208):
a fit whose folder is not named as its subject is found and named (never collected from there),
site columns spelled ``Site`` are used and site-like columns that cannot be are named, every
missing required column is named at once, and TR / scan-length differences are counted by
subject."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import collect
from delssome_norms.io import read_demographics


def _finished(folder: Path, sid: str, tr: float = 2.0, scan: float = 300.0) -> None:
    """A finished subject's folder without fitting: the four result files, run.json complete."""
    folder.mkdir(parents=True)
    ei = pd.DataFrame({"region_index": [0, 1, 2], "EI_ratio": [1.0, 1.5, 2.0]})
    ei.to_csv(folder / "EI_ratio.csv", index=False)
    (folder / "best_parameters.csv").write_text("region_index\n0\n1\n2\n", encoding="utf-8")
    (folder / "fit_quality.csv").write_text("metric,value\ncost,1\n", encoding="utf-8")
    run = {"status": "complete", "subject_id": sid, "timing": {"tr": tr, "scan_length": scan}}
    (folder / "run.json").write_text(json.dumps(run), encoding="utf-8")


def _demo(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _collect(in_dir: Path, demo: Path, out: Path) -> tuple[pd.DataFrame, list[str]]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        table = collect(in_dir, demo, out)
    return table, [str(w.message) for w in record if issubclass(w.category, InputWarning)]


def test_a_fit_in_a_folder_named_otherwise_is_named_not_collected(tmp_path: Path) -> None:
    cohort = tmp_path / "sid test"
    _finished(cohort / "P1", "P1")
    _finished(cohort / "A1 fit", "A1")  # estimate-ei --out-dir "A1 fit" --subject-id A1
    demo = _demo(tmp_path / "demo.csv", "subject_id,age_in_years,sex\nP1,20,F\nA1,30,F\n")
    table, texts = _collect(cohort, demo, tmp_path / "t.csv")
    assert table["subject_id"].tolist() == ["P1"]  # not silently taken from 'A1 fit'
    (text,) = [t for t in texts if "have no finished results" in t]
    hint = (
        "A1 found in folder 'A1 fit' (its run.json names A1): collect looks results up by "
        "folder name; rename the folder to A1"
    )
    assert text.endswith(hint)
    assert "1 named otherwise (A1:" in text and "not started" not in text
    assert not [t for t in texts if "are not in" in t]  # 'A1 fit' is not also "unlisted"
    # the subject alone: the error says where its fit is
    alone = _demo(tmp_path / "a1.csv", "subject_id,age_in_years,sex\nA1,30,F\n")
    with pytest.warns(InputWarning), pytest.raises(InvalidInputError) as err:
        collect(cohort, alone, tmp_path / "a1_table.csv")
    assert str(err.value).endswith(hint)


def test_a_site_column_spelled_otherwise_is_used(tmp_path: Path) -> None:
    cohort = tmp_path / "out"
    _finished(cohort / "P1", "P1")
    _finished(cohort / "P2", "P2")
    demo = _demo(
        tmp_path / "demo.csv",
        "subject_id,age_in_years,sex,Site,Scanner\nP1,20,F,Leipzig,Prisma\nP2,30,M,Bonn,\n",
    )
    table, texts = _collect(cohort, demo, tmp_path / "t.csv")
    assert table["site"].tolist() == ["Leipzig", "Bonn"]
    assert table["scanner"].fillna("").tolist() == ["Prisma", ""]
    assert table["site_scanner"].tolist() == ["Leipzig_Prisma", "Bonn"]
    assert not [t for t in texts if "look like a site" in t]
    people = read_demographics(
        _demo(tmp_path / "h.csv", "subject_id,age_in_years,sex,Site-Scanner\nP1,20,F,L_1\n")
    )
    assert people["site_scanner"].tolist() == ["L_1"]


def test_a_site_like_column_that_cannot_be_used_is_named(tmp_path: Path) -> None:
    cohort = tmp_path / "out"
    _finished(cohort / "P1", "P1")
    demo = _demo(
        tmp_path / "demo.csv", "subject_id,age_in_years,sex,Scanner Site,handedness\nP1,20,F,L,R\n"
    )
    table, texts = _collect(cohort, demo, tmp_path / "t.csv")
    assert "site" not in table.columns and "site_scanner" not in table.columns
    named = [t for t in texts if "look like a site or scanner column" in t]
    assert len(named) == 1  # one warning, though read_demographics checks the rows twice
    assert named[0].startswith(f"{demo}: column(s) 'Scanner Site' look like a site or scanner")
    assert "rename it site (or scanner)" in named[0] and "handedness" not in named[0]
    # two spellings of one column: neither is chosen, both are named
    both = _demo(tmp_path / "two.csv", "subject_id,age_in_years,sex,Site,SITE\nP1,20,F,L,M\n")
    with pytest.warns(InputWarning, match="'Site', 'SITE' look like a site"):
        people = read_demographics(both)
    assert "site" not in people.columns


def test_every_missing_required_column_is_named_at_once(tmp_path: Path) -> None:
    cohort = tmp_path / "out"
    _finished(cohort / "A1", "A1")
    demo = _demo(tmp_path / "demo.csv", "ID,Age,Gender,Scanner Site\nA1,30,F,X\n")
    with pytest.raises(InvalidInputError) as err:
        collect(cohort, demo, tmp_path / "t.csv")
    text = str(err.value)
    for column in ("subject_id (or BIDS", "age_in_years (or BIDS age)", "sex (female/male"):
        assert column in text, column
    assert "rename ID to subject_id, Age to age_in_years, Gender to sex" in text
    # once ids and sex are fixed the age is the only one left: named, not a new surprise
    fixed = _demo(tmp_path / "fixed.csv", "subject_id,Age,sex\nA1,30,F\n")
    with pytest.raises(InvalidInputError, match=r"column\(s\): age_in_years \(or BIDS age\); found"):
        collect(cohort, fixed, tmp_path / "t.csv")
    # where BIDS sessions.tsv files could give the ages, the age is not demanded
    (tmp_path / "sub-01").mkdir()
    (tmp_path / "sub-01" / "sub-01_sessions.tsv").write_text("session_id\tage\nses-1\t30\n")
    with pytest.raises(InvalidInputError) as err:
        read_demographics(demo, ["A1"])
    assert "subject_id (or BIDS" in str(err.value) and "age_in_years (or" not in str(err.value)


def test_timing_differences_are_counted_by_subject(tmp_path: Path) -> None:
    cohort = tmp_path / "out"
    for sid in ("P002", "P004", "P005"):
        _finished(cohort / sid, sid, tr=2.0, scan=300.0)
    demo = _demo(
        tmp_path / "tr.csv",
        "subject_id,age_in_years,sex,TR,scan_length\n"
        "P002,34,F,0.72,864\nP004,61,M,2,300\nP005,25,F,2,240\n",
    )
    _, texts = _collect(cohort, demo, tmp_path / "t.csv")
    (text,) = [t for t in texts if "TR or scan length" in t]
    assert text.startswith(f"2 subject(s) have a TR or scan length in {demo} that differs")
    assert (
        "fitted with: P002: TR 0.72 vs 2 s fitted, scan length 864 vs 300 s fitted; "
        "P005: scan length 240 vs 300 s fitted (check" in text
    )
