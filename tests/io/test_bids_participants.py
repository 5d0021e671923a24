"""A BIDS ``participants.tsv`` as ``collect``'s demographics.

BIDS writes the people of a dataset tab-separated, with ``n/a`` for missing cells, and names the
toolkit's ``subject_id`` and ``age_in_years`` ``participant_id`` and ``age``. Such a table is read
as it is (the BIDS names used with a warning), a table lacking required columns names all of them
with the accepted names at once, and ``collect`` says when ids differ from the result folders
(``sub-01``, as ``prepare --bids-dir`` names them) by the ``sub-`` prefix only.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.outputs import (
    run_fingerprint,
    run_record,
    subject_provenance,
    write_result_files,
)
from delssome_norms.fit.settings import FitSettings
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.io import read_demographics

NAMES = [f"{h}_{r}" for h in ("L", "R") for r in ("a", "b", "c", "d")]
N = len(NAMES)
RNG = np.random.default_rng(3)
SC = RNG.random((N, N))
SC = (SC + SC.T) / 2


def _finish(root: Path, sid: str, ei: np.ndarray) -> None:
    """A finished subject folder written by the fit's own writers (as
    tests/fit/test_review_collect_orders.py does), with regional E/I ``ei``."""
    subject = SubjectInputs(
        subject_id=sid, fc=np.corrcoef(RNG.normal(size=(N, 40))), fcd_cdf=np.linspace(0, 1, 10000),
        tr=0.72, scan_length=180.0, sc=SC, sources={"sc": "sc.csv"}, regions=tuple(NAMES),
    )  # fmt: skip
    settings = FitSettings()
    info = {
        "fingerprint": run_fingerprint(subject, settings),
        "provenance": subject_provenance(subject, settings, "[1, gradient]; gradient: FC", ei),
    }
    ones = np.ones(N)
    write_result_files(
        root / sid,
        columns={"EI_ratio": ei, "S_E": ei, "S_I": ones, "r_E": 3 * ones},
        parameters={"wEE": ones, "wEI": ones, "sigma": ones, "G": 1.0},
        losses={"test": {"corr_loss": 0.1, "l1_loss": 0.1, "ks_loss": 0.1}},
        run=run_record(sid, ei, np.zeros(3), info),
    )


PARTICIPANTS = (
    "participant_id\tage\tsex\thandedness\tgroup\n"
    "sub-01\t25\tF\tn/a\tcontrol\n"
    "sub-02\t31.5\tM\tright\tn/a\n"
    "sub-03\t44.2\tF\tleft\tpatient\n"
)
AGES = [25.0, 31.5, 44.2]
SEXES = ["female", "male", "female"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_participants_tsv_is_read_with_bids_names(tmp_path):
    path = _write(tmp_path / "participants.tsv", PARTICIPANTS)
    with pytest.warns(InputWarning, match="participant_id as subject_id, age as age_in_years"):
        demo = read_demographics(path)
    assert demo["subject_id"].tolist() == ["sub-01", "sub-02", "sub-03"]
    np.testing.assert_array_equal(demo["age_in_years"].to_numpy(), AGES)
    assert demo["sex"].tolist() == SEXES
    assert demo["numeric_sex"].tolist() == [1, 0, 1]
    assert demo["handedness"].isna().tolist() == [True, False, False]  # n/a is missing
    assert demo["group"].isna().tolist() == [False, True, False]
    assert "participant_id" not in demo and "age" not in demo


def test_bare_bids_labels_stay_text(tmp_path):
    """``01`` is a label, never the number 1 (a folder name), under the BIDS name too."""
    text = "participant_id\tage\tsex\n01\t25\tF\n002\t30\tM\n"
    with pytest.warns(InputWarning):
        demo = read_demographics(_write(tmp_path / "p.tsv", text))
    assert demo["subject_id"].tolist() == ["01", "002"]


def test_toolkit_names_win_over_bids_names_without_warning(tmp_path):
    text = "subject_id\tparticipant_id\tage_in_years\tage\tsex\ns1\tsub-01\t25\t99\tF\n"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        demo = read_demographics(_write(tmp_path / "both.tsv", text))
    assert demo["subject_id"].tolist() == ["s1"]
    assert demo["age_in_years"].tolist() == [25.0]


def test_tab_separated_csv_suffix_and_csv_unchanged(tmp_path):
    """A tab-separated file named .csv (header without commas) is read; a CSV is read as before,
    a comma inside a TSV cell does not make it a CSV."""
    tsv_as_csv = _write(tmp_path / "t.csv", "subject_id\tage_in_years\tsex\ns1\t20\tm\n")
    assert read_demographics(tsv_as_csv)["sex"].tolist() == ["male"]
    csv = _write(tmp_path / "c.csv", "subject_id,age_in_years,sex\n007,20.5,f\n")
    demo = read_demographics(csv)
    assert demo["subject_id"].tolist() == ["007"] and demo["age_in_years"].tolist() == [20.5]
    notes = _write(tmp_path / "n.tsv", "subject_id\tage_in_years\tsex\tnote\ns1\t20\tm\ta, b\n")
    assert read_demographics(notes)["note"].tolist() == ["a, b"]


def test_semicolons_are_still_refused_with_the_fix(tmp_path):
    path = _write(tmp_path / "s.csv", "subject_id;age_in_years;sex\ns1;20;m\n")
    with pytest.raises(InvalidInputError, match=r"separated by semicolons.*comma- or tab-sep"):
        read_demographics(path)


def test_all_missing_required_columns_in_one_message(tmp_path):
    path = _write(tmp_path / "p.tsv", "id\tyears\tgroup\n01\t3\tx\n")
    with pytest.raises(InvalidInputError) as err:
        read_demographics(path)
    msg = str(err.value)
    for part in (
        "subject_id (or BIDS participant_id)",
        "age_in_years (or BIDS age)",
        "sex (female/male, F/M) or numeric_sex",
        "found: id, years, group",
    ):
        assert part in msg
    path = _write(tmp_path / "q.tsv", "participant_id\tsex\n01\tF\n")
    with pytest.raises(InvalidInputError, match=r"column\(s\): age_in_years \(or BIDS age\); found"):
        read_demographics(path)


def test_na_age_names_the_row(tmp_path):
    text = "participant_id\tage\tsex\nsub-01\t25\tF\nsub-02\tn/a\tM\n"
    with pytest.warns(InputWarning), pytest.raises(InvalidInputError, match=r"row\(s\) 2"):
        read_demographics(_write(tmp_path / "p.tsv", text))


def _cohort(root: Path, ids: list[str]) -> dict[str, float]:
    """Finished results of ``ids``; returns each one's mean E/I."""
    means = {}
    for k, sid in enumerate(ids):
        ei = 1.0 + 0.1 * np.arange(N) + 0.05 * k
        _finish(root, sid, ei)
        means[sid] = float(ei.mean())
    return means


def test_collect_reads_participants_tsv_end_to_end(tmp_path):
    means = _cohort(tmp_path / "fits", ["sub-01", "sub-02", "sub-03"])
    demo = _write(tmp_path / "participants.tsv", PARTICIPANTS)
    out = tmp_path / "cohort_ei.csv"
    argv = ["collect", "--in-dir", str(tmp_path / "fits"), "--demographics", str(demo)]
    with pytest.warns(InputWarning, match=r"BIDS column\(s\) participant_id as subject_id"):
        assert main([*argv, "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype={"subject_id": str})
    assert table["subject_id"].tolist() == ["sub-01", "sub-02", "sub-03"]
    np.testing.assert_array_equal(table["age_in_years"].to_numpy(), AGES)
    assert table["sex"].tolist() == SEXES
    np.testing.assert_allclose(table["ei_ratio_mean"].to_numpy(), list(means.values()))


@pytest.mark.parametrize(
    ("folders", "ids", "pair"),
    [
        (["sub-01", "sub-02"], ["01", "02"], "01 -> folder sub-01"),
        (["01", "02"], ["sub-01", "sub-02"], "sub-01 -> folder 01"),
    ],
)
def test_collect_names_a_sub_prefix_mismatch(tmp_path, capsys, folders, ids, pair):
    _cohort(tmp_path / "fits", folders)
    rows = "".join(f"{sid}\t{20 + i}\tF\n" for i, sid in enumerate(ids))
    demo = _write(tmp_path / "participants.tsv", "participant_id\tage\tsex\n" + rows)
    argv = ["collect", "--in-dir", str(tmp_path / "fits"), "--demographics", str(demo)]
    with pytest.warns(InputWarning):
        assert main([*argv, "--out", str(tmp_path / "t.csv")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    error = next(line for line in err.splitlines() if "error:" in line)
    assert "2 id(s) of the demographics match a results folder only once a BIDS 'sub-'" in error
    assert pair in error
    assert not (tmp_path / "t.csv").exists()  # ids are never rewritten


def test_collect_without_prefix_mismatch_has_no_hint(tmp_path):
    _cohort(tmp_path / "fits", ["sub-01"])
    demo = _write(tmp_path / "d.tsv", "participant_id\tage\tsex\nsub-01\t20\tF\nsub-09\t30\tM\n")
    argv = ["collect", "--in-dir", str(tmp_path / "fits"), "--demographics", str(demo)]
    with pytest.warns(InputWarning) as record:
        assert main([*argv, "--out", str(tmp_path / "t.csv")]) == 0
    (missing,) = [str(w.message) for w in record if "no finished results" in str(w.message)]
    assert "1 subject(s) in" in missing and "sub-09" in missing
    assert "'sub-' prefix" not in missing
