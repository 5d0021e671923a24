"""Review 12-07 (real-data journey, second pass): a header of atlas label numbers read as a frame,
an FCD-CDF never checked against prepare's record, wmparc white-matter names matched as cortical
regions, the cohort command prepare --bids-dir suggests, and the messages about unknown header
names, a TR in milliseconds, missing ages, an FC whose row and column names disagree, and
validate's record check without a subject id."""

from __future__ import annotations

import hashlib
import json
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import build_parser, main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError
from delssome_norms.io.checks import check_ages
from delssome_norms.io.named_regions import read_square
from delssome_norms.io.prepare_record import check_prepared_timing
from delssome_norms.io.readers import read_manifest
from delssome_norms.io.timeseries import read_timeseries


def _bold(frames: int = 300, seed: int = 0) -> np.ndarray:
    """Regional BOLD: AR-free noise with a shared component (FC clearly positive), not integers."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, 68)) + 0.6 * rng.standard_normal((frames, 1))


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _error(capsys) -> str:
    return next(ln for ln in capsys.readouterr().err.splitlines() if ": error:" in ln)


# --- 1. a header row of integer atlas labels is not a frame ------------------------------------
def _numbered(path: Path, labels, body: np.ndarray, index: bool = False) -> Path:
    pd.DataFrame(body, columns=[str(k) for k in labels]).to_csv(path, sep="\t", index=index)
    return path


def test_a_header_of_atlas_label_numbers_is_refused_not_read_as_a_frame(tmp_path, capsys) -> None:
    x = 800 + 10 * _bold(400)
    path = _numbered(tmp_path / "labels.tsv", range(2, 137, 2), x)
    with pytest.raises(InvalidInputError) as err:
        read_timeseries(path)
    text = str(err.value)
    assert str(path) in text and "header of atlas label numbers" in text and "(2, 4, 6, 8, ...)" in text
    assert "give the columns region names" in text and "remove the header row" in text
    # prepare writes nothing (it wrote a 401-frame FC before)
    out = tmp_path / "out"
    argv = ["prepare", "--timeseries", str(path), "--tr", "0.72", "--out-dir", str(out)]
    assert main(argv) == 2
    assert "atlas label numbers" in _error(capsys)
    assert not (out / "FC.csv").exists()
    # written by pandas with its index: the same
    with pytest.raises(InvalidInputError, match="atlas label numbers"):
        read_timeseries(_numbered(tmp_path / "indexed.tsv", range(2, 137, 2), x, index=True))


def test_wmparc_label_ids_are_named_white_matter(tmp_path) -> None:
    ids = [*range(3001, 3004), *range(3005, 3036), *range(4001, 4004), *range(4005, 4036)]
    path = _numbered(tmp_path / "wm_ids.tsv", ids, _bold(200))
    with pytest.raises(InvalidInputError, match=r"white-matter label IDs \(wmparc"):
        read_timeseries(path)


def test_numeric_tables_without_a_label_header_still_read_every_row(tmp_path) -> None:
    x = _bold(120, 1)
    plain = tmp_path / "plain.tsv"
    np.savetxt(plain, x, delimiter="\t")
    np.testing.assert_allclose(read_timeseries(plain), x)
    # integer-valued raw data: the first row is no header (it does not differ in kind)
    raw = np.round(1000 + 50 * x)
    raw[0] = np.arange(500, 568)  # distinct integers, as a header would be
    ints = tmp_path / "ints.tsv"
    np.savetxt(ints, raw, delimiter="\t", fmt="%d")
    got = read_timeseries(ints)
    assert got.shape == (120, 68)
    np.testing.assert_array_equal(got, raw)
    # FreeSurfer DK IDs written with pandas' index column: names, in DK68 order
    order = np.random.default_rng(2).permutation(68)
    from delssome_norms.io.regions import FREESURFER_DK_IDS

    code = {v: k for k, v in FREESURFER_DK_IDS.items()}
    ids = [code[DK68_REGIONS[k]] for k in order]
    fs = _numbered(tmp_path / "fs.tsv", ids, x[:, order], index=True)
    np.testing.assert_allclose(read_timeseries(fs), x)


# --- 2. the FCD-CDF prepare wrote with the FC --------------------------------------------------
def _prepare(tmp_path: Path, sid: str, *extra: str) -> None:
    run = tmp_path / "run.tsv"
    if not run.exists():
        pd.DataFrame(_bold(300, 3), columns=list(DK68_REGIONS)).to_csv(run, sep="\t", index=False)
    argv = ["prepare", "--timeseries", str(run), "--tr", "0.72", "--out-dir", str(tmp_path / "o")]
    assert main([*argv, "--subject-id", sid, *extra]) == 0


def test_prepare_records_the_fcd_cdf_digest_and_validate_refuses_another_cdf(tmp_path, capsys) -> None:
    from delssome_norms.io.prepare_record import check_prepared_pair

    _prepare(tmp_path, "s8", "--fcd-window", "10")
    _prepare(tmp_path, "s9")
    o = tmp_path / "o"
    record = json.loads((o / "s9_prepare.json").read_text())
    assert record["fcd_cdf_sha256"] == _sha(o / "s9_FCD_CDF.csv")
    assert record["fc_sha256"] == _sha(o / "s9_FC.csv")
    capsys.readouterr()
    base = ["validate", "--fc", str(o / "s9_FC.csv"), "--fcd-cdf"]
    timing = ["--tr", "0.72", "--scan-length", "216"]
    assert main([*base, str(o / "s8_FCD_CDF.csv"), *timing]) == 2
    err = _error(capsys)
    assert f"{o / 's8_FCD_CDF.csv'}: is not the FCD-CDF that prepare wrote with the FC" in err
    assert str(o / "s9_FC.csv") in err and str(o / "s9_FCD_CDF.csv") in err
    assert main([*base, str(o / "s8_FCD_CDF.csv")]) == 2  # without a timing too
    assert "is not the FCD-CDF" in _error(capsys)
    assert main([*base, str(o / "s9_FCD_CDF.csv"), *timing]) == 0
    capsys.readouterr()
    # the check the fit runs: refused with the CDF paths, compatible without them
    fc, cdf8, cdf9 = o / "s9_FC.csv", o / "s8_FCD_CDF.csv", o / "s9_FCD_CDF.csv"
    with pytest.raises(InvalidInputError, match="is not the FCD-CDF"):
        check_prepared_timing([fc], 0.72, 216.0, 83, "s9", fcd_cdf=[cdf8])
    check_prepared_timing([fc], 0.72, 216.0, 83, "s9")
    check_prepared_pair([fc, o / "s8_FC.csv"], [cdf8, cdf9])  # runs: the CDFs in any order
    with pytest.raises(InvalidInputError, match=r"s9_FCD_CDF\.csv: is not the FCD-CDF .*/s8_FC\.csv"):
        check_prepared_pair([o / "s8_FC.csv", fc], [cdf9, cdf9])  # s8's FC without its CDF
    # a record written before the digest was kept: nothing to check
    del record["fcd_cdf_sha256"]
    (o / "s9_prepare.json").write_text(json.dumps(record))
    check_prepared_timing([fc], 0.72, 216.0, 83, "s9", fcd_cdf=[cdf8])


def test_validate_names_no_subject_in_the_timing_check(tmp_path, capsys) -> None:
    _prepare(tmp_path, "s9")
    o = tmp_path / "o"
    capsys.readouterr()
    argv = ["validate", "--fc", str(o / "s9_FC.csv"), "--fcd-cdf", str(o / "s9_FCD_CDF.csv")]
    assert main([*argv, "--tr", "2", "--scan-length", "216"]) == 2
    err = _error(capsys)
    assert "the fit would use TR 2 s, but the FC was computed at TR 0.72 s" in err
    assert "of subject" not in err
    with pytest.raises(InvalidInputError, match="the fit of sub-09 would use TR 2 s"):
        check_prepared_timing([o / "s9_FC.csv"], 2.0, 216.0, 30, "sub-09")


# --- 3. wmparc white matter --------------------------------------------------------------------
def test_white_matter_names_are_refused_as_not_cortical(tmp_path) -> None:
    names = ["wm-" + r.replace("_", "-") for r in DK68_REGIONS]
    path = tmp_path / "wm.tsv"
    pd.DataFrame(_bold(200), columns=names).to_csv(path, sep="\t", index=False)
    with pytest.raises(InvalidInputError) as err:
        read_timeseries(path)
    text = str(err.value)
    assert "68 of its 68 column names are FreeSurfer white-matter labels" in text
    assert "'wm-lh-bankssts'" in text and "cortical parcels" in text
    # beside cortical columns: remove them
    ctx = ["ctx-" + r.replace("_", "-") for r in DK68_REGIONS]
    both = tmp_path / "both.tsv"
    x = np.hstack([_bold(200), _bold(200, 1)[:, :2]])
    pd.DataFrame(x, columns=[*ctx, "wm_lh_insula", "Left-UnsegmentedWhiteMatter"]).to_csv(
        both, sep="\t", index=False
    )
    with pytest.raises(InvalidInputError, match=r"2 of its 70 column names .* remove those columns"):
        read_timeseries(both)


# --- 4. the cohort command prepare --bids-dir prints -------------------------------------------
def test_prepare_bids_prints_a_cohort_command_that_parses(tmp_path, capsys) -> None:
    root = tmp_path / "bids"
    for k, sub in enumerate(("01", "02")):
        func = root / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        path = func / f"sub-{sub}_task-rest_timeseries.tsv"
        pd.DataFrame(_bold(150, k), columns=list(DK68_REGIONS)).to_csv(path, sep="\t", index=False)
        (func / f"sub-{sub}_task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    out = tmp_path / "bprep"
    for extra, window in (([], None), (["--fcd-window", "20"], "20")):
        capsys.readouterr()
        assert main(["prepare", "--bids-dir", str(root), "--out-dir", str(out), *extra]) == 0
        printed = capsys.readouterr().out
        command = printed.split("next: ", 1)[1].split(")\n", 1)[0]
        argv = shlex.split(command)
        assert argv[0] == "delssome-norms"
        args = build_parser().parse_args(argv[1:])  # argparse exits on a missing --out-dir
        assert args.command == "cohort"
        assert Path(args.manifest) == out / "manifest.csv" and args.out_dir
        assert args.fcd_window == (None if window is None else int(window))


# --- 5. unknown header names: remove those columns ---------------------------------------------
def test_unknown_header_names_ask_to_remove_those_columns(tmp_path) -> None:
    ctx = ["ctx-" + r.replace("_", "-") for r in DK68_REGIONS]
    path = tmp_path / "aseg.tsv"
    x = np.hstack([_bold(200), _bold(200, 1)[:, :2]])
    pd.DataFrame(x, columns=["Left-Thalamus", *ctx, "Right-Hippocampus"][:70]).to_csv(
        path, sep="\t", index=False
    )
    with pytest.raises(InvalidInputError) as err:
        read_timeseries(path)
    text = str(err.value)
    assert "'Left-Thalamus'" in text and "remove the columns listed" in text
    assert "drop the header row" not in text


# --- 6. a TR in milliseconds where the scan length is to be derived ----------------------------
def test_manifest_tr_in_ms_with_an_empty_scan_length_is_named_as_the_tr(tmp_path) -> None:
    np.save(tmp_path / "run.npy", _bold(100))
    rows = "subject_id,tr,scan_length,timeseries\ns1,720,,run.npy\n"
    (tmp_path / "m.csv").write_text(rows)
    with pytest.raises(InvalidInputError) as err:
        read_manifest(tmp_path / "m.csv")
    text = str(err.value)
    assert "row 1 (s1)" in text and "TR 720 s" in text and "720 ms is 0.72 s" in text
    assert "scan length 720" not in text
    # a row of FC files: the TR, not "600 frames at TR 720 s are 432000 s"
    (tmp_path / "f.csv").write_text("subject_id,tr,scan_length,fc,fcd_cdf\ns1,720,,a.csv,b.csv\n")
    with pytest.raises(InvalidInputError, match="given in milliseconds") as err:
        read_manifest(tmp_path / "f.csv")
    assert "432000" not in str(err.value)


# --- 7. missing ages name the person and the file line -----------------------------------------
def test_missing_ages_name_the_subject_and_the_line() -> None:
    ages = pd.Series([30.0, "", 41.0, "x"], dtype=object)
    ids = ["sub-01", "sub-02", "sub-03", "sub-04"]
    with pytest.raises(InvalidInputError) as err:
        check_ages(ages, "demo.csv", ids=ids, first_line=2)
    text = str(err.value)
    assert "row(s) 2, 4 (subject_id sub-02, sub-04; file line(s) 3, 5, the header being line 1" in text
    with pytest.raises(InvalidInputError, match=r"row\(s\) 2 \(subject_id sub-03\) have 130"):
        check_ages([20, 130], "demo.csv", ids=["sub-02", "sub-03"])
    # callers that name neither: as before
    with pytest.raises(InvalidInputError, match=r"in row\(s\) 2, 4 \('', 'x'\)$"):
        check_ages(ages, "demo.csv")


# --- 8. an FC whose row and column names disagree ----------------------------------------------
def test_fc_with_row_names_in_another_order_than_the_columns(tmp_path) -> None:
    fc = np.corrcoef(_bold(300).T)
    names = list(DK68_REGIONS)
    perm = np.random.default_rng(5).permutation(68)
    cols = [names[k] for k in perm]
    # the values in the columns' order but the rows named in DK68 order: names contradict values
    bad = tmp_path / "bad.csv"
    pd.DataFrame(fc[np.ix_(perm, perm)], index=names, columns=cols).to_csv(bad)
    with pytest.raises(InvalidInputError) as err:
        read_square(bad)
    text = str(err.value)
    assert str(bad) in text and "row names list the regions in another order" in text
    assert "'lh_bankssts'" in text and repr(cols[0]) in text and "symmetric" in text
    # rows named in another order whose values follow their names: put in order by name
    good = tmp_path / "good.csv"
    rows = np.random.default_rng(6).permutation(68)
    pd.DataFrame(fc[np.ix_(rows, perm)], index=[names[k] for k in rows], columns=cols).to_csv(good)
    np.testing.assert_allclose(read_square(good).values, fc, atol=1e-12)


def test_freesurfer_ids_above_a_column_of_frame_times(tmp_path) -> None:
    """pandas' ``to_csv`` of a table indexed by frame times under FreeSurfer IDs: regions named,
    the times dropped; behind a column that is no frame index, the message names the IDs."""
    from delssome_norms.io.regions import FREESURFER_DK_IDS

    code = {v: k for k, v in FREESURFER_DK_IDS.items()}
    x = _bold(100, 1)
    order = np.random.default_rng(4).permutation(68)
    cols = [code[DK68_REGIONS[k]] for k in order]
    timed = tmp_path / "timed.csv"
    pd.DataFrame(x[:, order], columns=cols, index=np.arange(100) * 0.72).to_csv(timed)
    np.testing.assert_allclose(read_timeseries(timed), x)
    other = tmp_path / "other.csv"
    pd.DataFrame(x[:, order], columns=cols, index=np.random.default_rng(5).normal(size=100)).to_csv(
        other
    )
    with pytest.raises(
        InvalidInputError, match="holds FreeSurfer DK68 label IDs, but with a first column"
    ):
        read_timeseries(other)


def test_age_errors_name_no_file_line_when_lines_are_not_rows(tmp_path) -> None:
    from delssome_norms.io import read_demographics

    plain = tmp_path / "plain.csv"
    plain.write_text("subject_id,age_in_years,sex\nsub-01,30,F\nsub-02,abc,M\n")
    with pytest.raises(InvalidInputError, match=r"subject_id sub-02; file line\(s\) 3, the header"):
        read_demographics(plain)
    blank = tmp_path / "blank.csv"  # the reader skips the blank line: row 2 is on line 4
    blank.write_text("subject_id,age_in_years,sex\nsub-01,30,F\n\nsub-02,abc,M\n")
    with pytest.raises(InvalidInputError, match=r"subject_id sub-02; value") as err:
        read_demographics(blank)
    assert "file line" not in str(err.value)
