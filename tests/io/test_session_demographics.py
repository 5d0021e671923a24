"""Several sessions of one person in ``collect``: BIDS ``participants.tsv`` plus ``sessions.tsv``.

``prepare --bids-dir`` names each session of a person scanned in several ``sub-<label>_ses-<label>``;
``participants.tsv`` has one row per person and BIDS keeps each session's own age in
``sub-<label>/sub-<label>_sessions.tsv``. ``collect`` matches a session folder to its person's row,
takes the session's values (its age above all) over the person's, says so once, keeps the person
in a ``participant_id`` column (the charts and statistics then still see one person), and refuses a
session whose person has no row or which has no age anywhere. Result folders are written by the
fit's own writers, as tests/io/test_bids_participants.py does.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_bids_participants import _cohort as _fits

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import collect
from delssome_norms.io.demographics import read_sessions
from delssome_norms.norms.chart_table import check_unique_people

SESSIONS = ["sub-01_ses-1", "sub-01_ses-2", "sub-02_ses-1", "sub-02_ses-2"]
SESSION_AGES = {"sub-01_ses-1": 30.2, "sub-01_ses-2": 32.4, "sub-02_ses-1": 61.0, "sub-02_ses-2": 63.5}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _bids(root: Path, participants: str, sessions: dict[str, str]) -> Path:
    """A BIDS-like folder: ``participants.tsv`` and ``sub-X/sub-X_sessions.tsv`` per person."""
    for person, text in sessions.items():
        _write(root / person / f"{person}_sessions.tsv", text)
    return _write(root / "participants.tsv", participants)


def _collect_cli(tmp_path: Path, demo: Path, out: str = "t.csv") -> tuple[int, list[str]]:
    argv = ["collect", "--in-dir", str(tmp_path / "fits"), "--demographics", str(demo)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        code = main([*argv, "--out", str(tmp_path / out)])
    return code, [str(w.message) for w in record if issubclass(w.category, InputWarning)]


PEOPLE = "participant_id\tage\tsex\tsite\nsub-01\t30\tF\tA\nsub-02\t60\tM\tB\n"
TWO_SESSIONS = {
    "sub-01": "session_id\tage\tacq_time\nses-1\t30.2\t2019-01-01\nses-2\t32.4\t2021-06-01\n",
    "sub-02": "session_id\tage\nses-1\t61.0\nses-2\t63.5\n",
}


def test_sessions_take_their_person_row_and_their_own_age(tmp_path):
    means = _fits(tmp_path / "fits", SESSIONS)
    demo = _bids(tmp_path / "bids", PEOPLE, TWO_SESSIONS)
    code, said = _collect_cli(tmp_path, demo)
    assert code == 0
    table = pd.read_csv(tmp_path / "t.csv", dtype={"subject_id": str, "participant_id": str})
    assert table["subject_id"].tolist() == SESSIONS
    assert table.columns[:3].tolist() == ["subject_id", "participant_id", "age_in_years"]
    assert table["participant_id"].tolist() == ["sub-01", "sub-01", "sub-02", "sub-02"]
    np.testing.assert_array_equal(table["age_in_years"].to_numpy(), list(SESSION_AGES.values()))
    assert table["sex"].tolist() == ["female", "female", "male", "male"]
    assert table["site"].tolist() == ["A", "A", "B", "B"]
    np.testing.assert_allclose(table["ei_ratio_mean"].to_numpy(), [means[s] for s in SESSIONS])
    matched = [w for w in said if "are sessions of" in w]
    assert len(matched) == 1  # said once, naming what the sessions replaced
    assert "4 result folder(s) are sessions of 2 person(s)" in matched[0]
    assert "4 folder(s) take the values of their session" in matched[0]
    assert "age_in_years replaced" in matched[0]
    assert not any("no finished results" in w or "not in" in w for w in said)
    # the growth charts' reference check sees two people with two rows each, not four people
    with pytest.raises(InvalidInputError, match=r"sub-01 has 2 rows .* sub-02 has 2 rows"):
        check_unique_people(table, "t.csv", sessions=True)


def test_ages_from_sessions_only(tmp_path):
    """A longitudinal participants.tsv without an age column: every age is a session's; a person
    with neither an age nor results is left out, with a warning."""
    _fits(tmp_path / "fits", SESSIONS)
    people = "participant_id\tsex\nsub-01\tF\nsub-02\tM\nsub-03\tF\n"
    later = {**TWO_SESSIONS, "sub-03": "session_id\tage\nses-1\t40\n"}
    code, said = _collect_cli(tmp_path, _bids(tmp_path / "bids", people, later))
    assert code == 0
    table = pd.read_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(table["age_in_years"].to_numpy(), list(SESSION_AGES.values()))
    matched = next(w for w in said if "are sessions of" in w)
    assert "replaced" not in matched  # the person had no age to replace
    (left,) = [w for w in said if "left out" in w]
    assert "1 person(s)" in left and "sub-03" in left


def test_session_without_age_anywhere_is_refused(tmp_path, capsys):
    _fits(tmp_path / "fits", SESSIONS)
    people = "participant_id\tsex\nsub-01\tF\nsub-02\tM\n"
    gap = {**TWO_SESSIONS, "sub-02": "session_id\tage\nses-1\t61\nses-2\tn/a\n"}
    demo = _bids(tmp_path / "bids", people, gap)
    code, _ = _collect_cli(tmp_path, demo)
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"{demo}: result folder sub-02_ses-2 has no age" in err
    assert str(tmp_path / "bids" / "sub-02" / "sub-02_sessions.tsv") in err
    assert not (tmp_path / "t.csv").exists()


def test_sessions_of_a_person_without_row_are_left_out_with_a_warning(tmp_path):
    """A shorter participants.tsv collects a subset, as for folders without sessions."""
    _fits(tmp_path / "fits", SESSIONS)
    demo = _bids(tmp_path / "bids", "participant_id\tage\tsex\nsub-01\t30\tF\n", TWO_SESSIONS)
    code, said = _collect_cli(tmp_path, demo)
    assert code == 0
    table = pd.read_csv(tmp_path / "t.csv")
    assert table["subject_id"].tolist() == ["sub-01_ses-1", "sub-01_ses-2"]
    np.testing.assert_array_equal(table["age_in_years"].to_numpy(), [30.2, 32.4])
    (unlisted,) = [w for w in said if "not in" in w and "left out" in w]
    assert "2 finished subject(s)" in unlisted and "sub-02_ses-1, sub-02_ses-2" in unlisted


def test_explicit_session_row_wins(tmp_path):
    _fits(tmp_path / "fits", SESSIONS)
    people = PEOPLE + "sub-02_ses-2\t70\tM\tC\n"
    code, said = _collect_cli(tmp_path, _bids(tmp_path / "bids", people, TWO_SESSIONS))
    assert code == 0
    table = pd.read_csv(tmp_path / "t.csv").set_index("subject_id")
    assert table.loc["sub-02_ses-2", ["age_in_years", "site"]].tolist() == [70.0, "C"]
    assert table.loc["sub-02_ses-1", ["age_in_years", "site"]].tolist() == [61.0, "B"]
    assert table["participant_id"].tolist() == ["sub-01", "sub-01", "sub-02", "sub-02"]
    assert "3 result folder(s) are sessions of 2 person(s)" in next(
        w for w in said if "sessions of" in w
    )


def test_without_sessions_tsv_the_person_age_is_shared_with_a_warning(tmp_path):
    _fits(tmp_path / "fits", SESSIONS)
    code, said = _collect_cli(tmp_path, _bids(tmp_path / "bids", PEOPLE, {}))
    assert code == 0
    table = pd.read_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(table["age_in_years"].to_numpy(), [30, 30, 60, 60])
    (shared,) = [w for w in said if "share one age" in w]
    assert "4 session(s) have no age" in shared


def test_single_session_folder_takes_its_only_session(tmp_path):
    """``prepare --bids-dir`` names a person scanned once ``sub-03`` (no session entity): the
    only session its sessions.tsv lists gives its age."""
    _fits(tmp_path / "fits", ["sub-03"])
    people = "participant_id\tage\tsex\nsub-03\t39\tF\nsub-04\t50\tM\n"
    sessions = {"sub-03": "session_id\tage\nses-2\t41.5\n"}
    with pytest.warns(InputWarning, match=r"1 folder\(s\) take .* \(age_in_years replaced\): sub-03$"):
        table = collect(
            tmp_path / "fits", _bids(tmp_path / "bids", people, sessions), tmp_path / "t.csv"
        )
    assert table["age_in_years"].tolist() == [41.5]
    assert "participant_id" not in table  # no sessions: the table as before


def test_sessions_beside_another_demographics_file_with_bids_dir(tmp_path):
    """A demographics CSV kept outside the dataset: ``bids_dir`` says where the sessions are."""
    _fits(tmp_path / "fits", SESSIONS)
    _bids(tmp_path / "bids", PEOPLE, TWO_SESSIONS)
    demo = _write(
        tmp_path / "tables" / "demo.csv", "subject_id,age_in_years,sex\nsub-01,30,f\nsub-02,60,m\n"
    )
    with pytest.warns(InputWarning, match="are sessions of"):
        table = collect(tmp_path / "fits", demo, tmp_path / "t.csv", bids_dir=tmp_path / "bids")
    assert table["age_in_years"].tolist() == list(SESSION_AGES.values())


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("session_id\tage\nses-1\t30\n1\t31\n", r"lists session\(s\) 1 more than once"),
        (
            "session_id\tage\nses-1\t30\nses-2\tthirty\n",
            r"age is not a number in row\(s\) 2 \(file line\(s\) 3, the header being line 1; "
            r"value\(s\) 'thirty'\)",
        ),
        (
            "session_id\tage\nses-1\t130\n",
            r"between 0 and 120 years; row\(s\) 1 \(file line\(s\) 2, the header being line 1\) "
            "have 130",
        ),
        ("ses\tage\nses-1\t30\n", r"missing required column\(s\) session_id"),
    ],
)
def test_bad_sessions_tsv_is_refused_naming_it(tmp_path, text, match):
    path = _write(tmp_path / "sub-01" / "sub-01_sessions.tsv", text)
    with pytest.raises(InvalidInputError, match=match) as err:
        read_sessions(path)
    assert str(path) in str(err.value)
    good = read_sessions(_write(tmp_path / "s.tsv", "session_id\tage\nses-a\t30\nses-b\tn/a\n"))
    assert good.index.tolist() == ["a", "b"]
    assert good["age_in_years"].iloc[0] == 30 and np.isnan(good["age_in_years"].iloc[1])


def test_collect_cli_bids_dir_option(tmp_path, capsys):
    """``collect --bids-dir``: the sessions' ages from a dataset elsewhere; a non-folder refused."""
    _fits(tmp_path / "fits", SESSIONS)
    _bids(tmp_path / "bids", PEOPLE, TWO_SESSIONS)
    demo = _write(
        tmp_path / "tables" / "demo.csv", "subject_id,age_in_years,sex\nsub-01,30,f\nsub-02,60,m\n"
    )
    argv = ["collect", "--in-dir", str(tmp_path / "fits"), "--demographics", str(demo)]
    assert main([*argv, "--bids-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "t.csv")]) == 2
    assert "--bids-dir" in capsys.readouterr().err and not (tmp_path / "t.csv").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        code = main([*argv, "--bids-dir", str(tmp_path / "bids"), "--out", str(tmp_path / "t.csv")])
    assert code == 0
    assert "4 subjects (2 people)" in capsys.readouterr().out
    table = pd.read_csv(tmp_path / "t.csv")
    assert table["age_in_years"].tolist() == list(SESSION_AGES.values())


def test_bare_zero_padded_session_labels_match_their_folders(tmp_path):
    """``session_id`` ``01`` (no ``ses-``) is a label, matched as text to ``sub-01_ses-01``: read
    as the number 1 it matched nothing and every session silently took its person's age."""
    folders = ["sub-01_ses-01", "sub-01_ses-02"]
    _fits(tmp_path / "fits", folders)
    people = "participant_id\tage\tsex\nsub-01\t30\tF\n"
    demo = _bids(tmp_path / "bids", people, {"sub-01": "session_id\tage\n01\t30.2\n02\t32.4\n"})
    code, said = _collect_cli(tmp_path, demo)
    assert code == 0
    table = pd.read_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(table["age_in_years"].to_numpy(), [30.2, 32.4])
    assert not any("share one age" in w for w in said)


def test_a_folder_naming_no_session_among_several_is_said(tmp_path):
    """``sub-01`` (one fMRI session, so prepare named no session) with a sessions.tsv of two:
    the person's age is used, and the warning says so and how to choose."""
    _fits(tmp_path / "fits", ["sub-01"])
    people = "participant_id\tage\tsex\nsub-01\t30\tF\n"
    demo = _bids(tmp_path / "bids", people, {"sub-01": "session_id\tage\nses-1\t30\nses-2\t36.5\n"})
    code, said = _collect_cli(tmp_path, demo)
    assert code == 0
    assert pd.read_csv(tmp_path / "t.csv")["age_in_years"].tolist() == [30.0]
    (w,) = [w for w in said if "name no session" in w]
    assert "sub-01 (2 sessions in" in w and "sub-<label>_ses-<label>" in w


def test_bad_person_age_is_named_with_the_files_row(tmp_path, capsys):
    """Row numbers are those of participants.tsv, not of the rows after sessions were matched."""
    _fits(tmp_path / "fits", SESSIONS)
    people = "participant_id\tage\tsex\nsub-01\t30\tF\nsub-02\t150\tM\n"
    code, _ = _collect_cli(tmp_path, _bids(tmp_path / "bids", people, TWO_SESSIONS))
    assert code == 2
    err = capsys.readouterr().err
    assert "row(s) 2 (subject_id sub-02; file line(s) 3, the header being line 1) have 150" in err
    assert "participants.tsv" in err


def test_decimal_comma_age_is_named_in_demographics(tmp_path, capsys):
    _fits(tmp_path / "fits", ["sub-01"])
    demo = _write(tmp_path / "bids" / "participants.tsv", "participant_id\tage\tsex\nsub-01\t30,5\tF\n")
    code, _ = _collect_cli(tmp_path, demo)
    assert code == 2
    assert "'30,5' is written with a decimal comma" in capsys.readouterr().err
