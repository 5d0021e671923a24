"""Review findings about CLI messages (12-07): each says what is wrong and the way forward.

* ``collect`` with result folders ``001``/``002`` and demographics ids ``1``/``2`` (a spreadsheet
  dropped the zeros) names the folders the ids match and how to keep the ids as text;
* a manifest row with fc/fcd_cdf and an empty ``scan_length`` says the cell is empty (not
  "got nan");
* a Windows-1252 CSV (Excel's plain "CSV" on Windows) names the cell and says to save UTF-8;
* ages that look like months get the months hint in ``collect`` as in ``charts``;
* ``collect --help`` says when the site and scanner columns are written, as ``collect`` does.
"""

from __future__ import annotations

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
from delssome_norms.io import check_ages, read_demographics, read_manifest
from delssome_norms.norms.chart_table import table_ages

NAMES = [f"{h}_{r}" for h in ("L", "R") for r in ("a", "b", "c")]
N = len(NAMES)
RNG = np.random.default_rng(1207)
SC = RNG.random((N, N))
SC = (SC + SC.T) / 2


def _finish(root: Path, sid: str, ei: np.ndarray) -> None:
    """A finished subject folder written by the fit's own writers, with regional E/I ``ei``."""
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


def _cohort(root: Path, ids: list[str]) -> list[float]:
    """Finished results of ``ids``; each one's mean E/I."""
    means = []
    for k, sid in enumerate(ids):
        ei = 1.0 + 0.1 * np.arange(N) + 0.05 * k
        _finish(root, sid, ei)
        means.append(float(ei.mean()))
    return means


def _collect(tmp_path: Path, demo_text: str, out: str = "t.csv") -> int:
    demo = tmp_path / "demo.csv"
    demo.write_text(demo_text, encoding="utf-8")
    argv = ["collect", "--in-dir", str(tmp_path / "fits"), "--demographics", str(demo)]
    return main([*argv, "--out", str(tmp_path / out)])


# -- 1. ids that lost their leading zeros -------------------------------------------------------


def test_collect_names_folders_whose_ids_lost_their_leading_zeros(tmp_path, capsys):
    _cohort(tmp_path / "fits", ["001", "002"])
    with pytest.warns(InputWarning) as record:
        rc = _collect(tmp_path, "subject_id,age_in_years,sex\n1,11.5,M\n2,9.6,F\n")
    assert rc == 2 and not (tmp_path / "t.csv").exists()  # ids are never rewritten
    error = next(line for line in capsys.readouterr().err.splitlines() if "error:" in line)
    assert "2 id(s) of the demographics match a results folder once their leading zeros" in error
    assert "1 -> folder 001, 2 -> folder 002" in error
    assert "keeping the id column as text" in error
    (missing,) = [str(w.message) for w in record if "no finished results" in str(w.message)]
    assert "1 -> folder 001" in missing
    assert "not started" not in missing  # their results exist, under the padded names
    assert "2 named otherwise (1, 2:" in missing


def test_leading_zero_hint_only_for_the_ids_it_fits(tmp_path):
    """``3`` has no folder at all (still "not started"); ``007`` is written with its zeros and
    collected; ``4`` matches two padded folders (``04``, ``004``), so no folder is named."""
    means = _cohort(tmp_path / "fits", ["001", "007", "04", "004"])
    text = "subject_id,age_in_years,sex\n1,11,M\n3,12,F\n007,13,F\n4,14,M\n"
    with pytest.warns(InputWarning) as record:
        assert _collect(tmp_path, text) == 0
    table = pd.read_csv(tmp_path / "t.csv", dtype={"subject_id": str})
    assert table["subject_id"].tolist() == ["007"]
    np.testing.assert_allclose(table["ei_ratio_mean"], [means[1]])
    (missing,) = [str(w.message) for w in record if "no finished results" in str(w.message)]
    assert "2 not started (3, 4:" in missing and "1 named otherwise (1:" in missing
    assert "1 id(s) of the demographics match" in missing and "1 -> folder 001" in missing
    assert "4 -> folder" not in missing


def test_no_leading_zero_hint_when_ids_match(tmp_path):
    _cohort(tmp_path / "fits", ["001"])
    with pytest.warns(InputWarning) as record:
        assert _collect(tmp_path, "subject_id,age_in_years,sex\n001,11,M\n5,12,F\n") == 0
    (missing,) = [str(w.message) for w in record if "no finished results" in str(w.message)]
    assert "leading zeros" not in missing and "1 not started (5:" in missing


# -- 2a. an empty scan_length cell ---------------------------------------------------------------


@pytest.mark.parametrize("cell", ["", " ", "n/a"])
def test_empty_scan_length_cell_is_named_as_empty(tmp_path, capsys, cell):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        f"subject_id,tr,scan_length,fc,fcd_cdf\ns1,0.72,{cell},fc.csv,fcd.csv\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInputError) as err:
        read_manifest(manifest)
    msg = str(err.value)
    assert msg.startswith(f"{manifest} row 1 (s1): the scan_length cell is empty")
    assert "frames x TR: e.g. 600 frames at TR 0.72 s are 432 s" in msg  # 600 x 0.72
    assert "nan" not in msg
    assert main(["validate", "--manifest", str(manifest)]) == 2
    assert "the scan_length cell is empty" in capsys.readouterr().err


def test_empty_scan_length_with_a_timeseries_column_says_which_rows_may_leave_it(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "subject_id,tr,scan_length,fc,fcd_cdf,timeseries\ns1,2,,fc.csv,fcd.csv,\n", encoding="utf-8"
    )
    with pytest.raises(InvalidInputError, match=r"at TR 2 s are 1200 s\); only a row with a time"):
        read_manifest(manifest)


# -- 2b. a Windows-1252 CSV ----------------------------------------------------------------------


def test_windows_1252_csv_names_the_cell_and_says_save_as_utf8(tmp_path, capsys):
    raw = "subject_id,age_in_years,sex,site\ns1,11.5,M,Montréal\n".encode("cp1252")
    demo = tmp_path / "demo.csv"
    demo.write_bytes(raw)
    position = raw.index(b"\xe9")
    with pytest.raises(InvalidInputError) as err:
        read_demographics(demo)
    msg = str(err.value)
    assert f"is not UTF-8 text (byte 0xe9 at position {position}, line 2: 'Montréal'" in msg
    assert "Save As > 'CSV UTF-8 (Comma delimited)'" in msg
    (tmp_path / "fits").mkdir()
    argv = ["collect", "--in-dir", str(tmp_path / "fits"), "--demographics", str(demo)]
    assert main([*argv, "--out", str(tmp_path / "t.csv")]) == 2
    assert "CSV UTF-8" in capsys.readouterr().err


def test_semicolon_cp1252_cell_is_cut_at_the_separator(tmp_path):
    path = tmp_path / "m.csv"
    path.write_bytes("subject_id;site\ns1;Zürich;x\n".encode("cp1252"))
    with pytest.raises(InvalidInputError, match=r"line 2: 'Zürich' read as Windows-1252"):
        read_demographics(path)


# -- 2c. ages in months --------------------------------------------------------------------------

MONTHS = "subject_id,age_in_years,sex\ns1,137,M\ns2,116,M\ns3,108,F\n"


def test_collect_asks_whether_ages_are_months(tmp_path, capsys):
    _cohort(tmp_path / "fits", ["s1", "s2", "s3"])
    assert _collect(tmp_path, MONTHS) == 2
    err = capsys.readouterr().err
    assert (
        "age must be between 0 and 120 years; row(s) 1 (subject_id s1; file line(s) 2, the "
        "header being line 1) have 137"
    ) in err
    assert "are these ages in months (up to 137)? age_in_years must be in years" in err
    assert err.count("in months") == 1


def test_months_hint_only_where_months_fit(tmp_path):
    """No hint for a negative age or one above 12 x 120 (not months either); the charts'
    own hint stays single (check_ages leaves it out by default)."""
    for ages in (["-1", "130"], ["30", "1500"]):
        text = "subject_id,age_in_years,sex\n" + "".join(f"s{i},{a},F\n" for i, a in enumerate(ages))
        (tmp_path / "d.csv").write_text(text, encoding="utf-8")
        with pytest.raises(InvalidInputError) as err:
            read_demographics(tmp_path / "d.csv")
        assert "in months" not in str(err.value)
    with pytest.raises(InvalidInputError) as err:
        check_ages([137.0, 116.0])
    assert "in months" not in str(err.value)
    table = pd.DataFrame({"age_in_years": [137.0, 116.0]})
    with pytest.raises(InvalidInputError) as err:
        table_ages(table, "t.csv")
    assert str(err.value).count("in months") == 1


def test_sessions_tsv_ages_in_months_get_the_hint(tmp_path):
    from delssome_norms.io.demographics import read_sessions

    path = tmp_path / "sub-01_sessions.tsv"
    path.write_text("session_id\tage\nses-1\t130\nses-2\t142\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"in months \(up to 142\)"):
        read_sessions(path)


# -- 3. collect --help and the site/scanner columns ----------------------------------------------


def test_collect_help_says_when_site_and_scanner_are_written(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["collect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "site and scanner only when the demographics have those columns" in text
    assert "<site> without a scanner" in text
    # as collect does: no site/scanner column without them, site_scanner built from site alone
    _cohort(tmp_path / "fits", ["s1", "s2"])
    assert _collect(tmp_path, "subject_id,age_in_years,sex\ns1,10,F\ns2,11,M\n", "a.csv") == 0
    columns = pd.read_csv(tmp_path / "a.csv").columns
    assert not {"site", "scanner", "site_scanner"} & set(columns)
    text = "subject_id,age_in_years,sex,site\ns1,10,F,A\ns2,11,M,B\n"
    assert _collect(tmp_path, text, "b.csv") == 0
    table = pd.read_csv(tmp_path / "b.csv")
    assert "scanner" not in table and table["site_scanner"].tolist() == ["A", "B"]
