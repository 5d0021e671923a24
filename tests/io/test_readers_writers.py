"""Readers on the paper's reference files, run combination, and atomic writers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import io
from delssome_norms.errors import InvalidInputError
from delssome_norms.io.readers import read_labelled_numeric


def test_reference_inputs_read(cbig_dir: Path) -> None:
    inp = cbig_dir / "input"
    fc = io.read_fc(inp / "sub-000_FC.csv", 68)
    cdf = io.read_fcd_cdf(inp / "sub-000_FCD_CDF.csv")
    sc = io.read_sc(inp / "SC_group_DK68.csv", 68)
    myelin = io.read_map(inp / "myelin_DK68.csv", 68)
    demo = io.read_demographics(inp / "demogr.csv")
    raw = np.loadtxt(inp / "sub-000_FC.csv", delimiter=",")
    np.testing.assert_array_equal(fc, raw)
    assert cdf.shape == (10000,) and cdf[-1] == 1.0 and np.all(np.diff(cdf) >= 0)
    assert sc.shape == (68, 68) and np.all(np.diag(sc) == 0)
    assert myelin.shape == (68,)
    assert list(demo["numeric_sex"]) == [1 if s == "female" else 0 for s in demo["sex"]]
    assert demo["site_scanner"].iloc[0] == "WashU_Siemens"


def test_fisher_z_mean_matches_hand_computation() -> None:
    a = np.array([[1.0, 0.2], [0.2, 1.0]])
    b = np.array([[1.0, 0.8], [0.8, 1.0]])
    expected = np.tanh((np.arctanh(0.2) + np.arctanh(0.8)) / 2)
    out = io.fisher_z_mean(np.stack([a, b]))
    assert out[0, 1] == pytest.approx(expected, rel=1e-12)
    assert out[0, 0] == 1.0


def test_read_fc_runs_and_cdf_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    fcs = [np.corrcoef(rng.standard_normal((40, 5)), rowvar=False) for _ in range(3)]
    paths = []
    for i, fc in enumerate(fcs):
        paths.append(tmp_path / f"run{i}.csv")
        np.savetxt(paths[-1], fc, delimiter=",")
    out = io.read_fc_runs(paths, 5)
    z = np.mean([np.arctanh(np.clip(f, -1 + 1e-7, 1 - 1e-7)) for f in fcs], axis=0)
    np.testing.assert_allclose(
        out[~np.eye(5, dtype=bool)], np.tanh(z)[~np.eye(5, dtype=bool)], rtol=1e-10
    )
    c1, c2 = np.linspace(0, 1, 10001)[1:], np.linspace(0, 1, 10001)[1:] ** 2
    for i, c in enumerate((c1, c2)):
        np.savetxt(tmp_path / f"cdf{i}.csv", c[:, None])
    mean = io.read_fcd_cdf_runs([tmp_path / "cdf0.csv", tmp_path / "cdf1.csv"])
    np.testing.assert_allclose(mean, (c1 + c2) / 2, rtol=1e-12)


def test_header_row_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("myelin\n1.5\n2.5\n3.5\n")
    np.testing.assert_array_equal(io.read_map(path, 3), [1.5, 2.5, 3.5])


def test_square_matrix_of_another_atlas_is_read_in_file_order_with_a_warning(
    tmp_path: Path,
) -> None:
    import warnings

    from delssome_norms.errors import InputWarning

    fc = np.eye(4) + 0.1 * (1 - np.eye(4))
    fc[0, 1] = fc[1, 0] = 0.5
    names = [f"7Networks_LH_Vis_{i}" for i in range(1, 5)]
    pd.DataFrame(fc, columns=names).to_csv(tmp_path / "fc.csv", index=False)
    with pytest.warns(InputWarning, match=r"\('7Networks_LH_Vis_1', \.\.\.\) are not DK68 regions; "
                      r"the FC is taken in file order"):  # fmt: skip
        np.testing.assert_array_equal(io.read_fc(tmp_path / "fc.csv"), fc)
    # a file without names is atlas order by contract: no warning
    np.savetxt(tmp_path / "plain.csv", fc, delimiter=",")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(io.read_fc(tmp_path / "plain.csv"), fc)


def test_timeseries_npy_and_tsv(tmp_path: Path) -> None:
    ts = np.random.default_rng(0).standard_normal((30, 4))
    np.save(tmp_path / "run.npy", ts)
    np.savetxt(tmp_path / "run.tsv", ts, delimiter="\t")
    np.testing.assert_array_equal(io.read_timeseries(tmp_path / "run.npy"), ts)
    np.testing.assert_allclose(io.read_timeseries(tmp_path / "run.tsv"), ts, rtol=1e-15)


def test_writers_round_trip(tmp_path: Path) -> None:
    ei = np.array([2.0, 2.5])
    io.write_ei_ratio(tmp_path / "EI_ratio.csv", ei, ei / 10, ei / 40, np.array([3.0, 3.1]))
    table = pd.read_csv(tmp_path / "EI_ratio.csv")
    assert list(table.columns) == ["region_index", "EI_ratio", "S_E", "S_I", "r_E"]
    np.testing.assert_array_equal(table["EI_ratio"], ei)
    io.write_parameters(tmp_path / "best_parameters.csv", ei, ei, ei / 1000, 1.25)
    params = io.read_parameters(tmp_path / "best_parameters.csv", 2)
    assert float(params["G"]) == 1.25
    io.write_fit_quality(
        tmp_path / "fit_quality.csv", {"test": {"corr_loss": 0.5, "l1_loss": 0.1, "ks_loss": 0.25}}
    )
    fq = pd.read_csv(tmp_path / "fit_quality.csv")
    assert fq.loc[0, "total_loss"] == pytest.approx(0.85)
    m = np.random.default_rng(1).random((3, 3))
    io.write_matrix(m, tmp_path / "m.csv")
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "m.csv", delimiter=","), m)


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    io.write_json({"a": 1}, target)
    with pytest.raises(TypeError):
        io.write_json({"a": object()}, target)
    assert target.read_text().strip().startswith("{")
    assert '"a": 1' in target.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


@pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")
def test_atomic_write_honours_the_umask(tmp_path: Path) -> None:
    # the temporary file must not keep mkstemp's 0600: outputs are shared within a lab
    old = os.umask(0o027)
    try:
        io.write_json({"a": 1}, tmp_path / "out.json")
    finally:
        os.umask(old)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o640


def test_numeric_frame_keeps_header_and_row_names(tmp_path: Path) -> None:
    from delssome_norms.io.readers import read_numeric_frame

    p = tmp_path / "fc.csv"
    p.write_text(",lh_a,rh_b\nlh_a,1,0.25\nrh_b,0.25,1\n")
    frame = read_numeric_frame(p)
    assert list(frame.columns) == ["lh_a", "rh_b"]
    assert list(frame.index) == ["lh_a", "rh_b"]
    np.testing.assert_array_equal(frame.loc["rh_b"].to_numpy(), [0.25, 1.0])
    t = tmp_path / "ts.tsv"
    t.write_text("lh_a\trh_b\n1.5\tn/a\n-2e-3\t4\n")
    frame = read_numeric_frame(t, allow_na=True)
    assert list(frame.columns) == ["lh_a", "rh_b"] and list(frame.index) == [0, 1]
    assert np.isnan(frame.iloc[0, 1]) and frame.iloc[1, 0] == -0.002


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1,2\n3,4\n", [[1, 2], [3, 4]]),  # comma
        ("1\t2\n3\t4\n", [[1, 2], [3, 4]]),  # tab
        ("1;2\n3;4\n", [[1, 2], [3, 4]]),  # semicolon
        ("  1  2\n3 4  \n", [[1, 2], [3, 4]]),  # whitespace
        ("1,2,\n3,4,\n", [[1, 2], [3, 4]]),  # a separator ending every line
        ('"1","2"\n3,4\n', [[1, 2], [3, 4]]),  # quoted cells
        ("\n1,2\n\n3,4\n", [[1, 2], [3, 4]]),  # blank lines
    ],
)
def test_separators_and_layouts(tmp_path: Path, text: str, expected: list) -> None:
    from delssome_norms.io.readers import read_labelled_numeric

    p = tmp_path / "m.csv"
    p.write_text(text)
    values, header, labels = read_labelled_numeric(p)
    np.testing.assert_array_equal(values, expected)
    assert header is None and labels is None


def test_a_tab_separated_header_may_hold_commas(tmp_path: Path) -> None:
    """nilearn's Harvard-Oxford labels have commas ("..., pars triangularis"): a TSV with them in
    its header was split at the commas and refused as "not a numeric CSV"."""
    names = ["Left Frontal Pole", "Left Inferior Frontal Gyrus, pars triangularis", "Right Pole"]
    p = tmp_path / "run.tsv"
    p.write_text("\t".join(names) + "\n0.5\t1.5\t-2\n3\t4\t5\n")
    values, header, labels = read_labelled_numeric(p)
    np.testing.assert_array_equal(values, [[0.5, 1.5, -2.0], [3.0, 4.0, 5.0]])
    assert header == names and labels is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("1,2\n3,4,5\n", "line 2 has 3 values, expected 2"),
        ("1,2,3\n4,5\n", "line 2 has 2 values, expected 3"),
        ("1,2\n3,x\n", "line 2 has the non-numeric value 'x'"),
        ("a,b\n1,2\n3,?\n", "line 3 has the non-numeric value '?'"),
        ("a,b\n\n", "has a header but no data rows"),
    ],
)
def test_malformed_tables_name_the_line(tmp_path: Path, text: str, needle: str) -> None:
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.io.readers import read_labelled_numeric

    p = tmp_path / "bad.csv"
    p.write_text(text)
    with pytest.raises(InvalidInputError, match=r"bad\.csv") as err:
        read_labelled_numeric(p)
    assert needle in str(err.value)


def test_orphan_temporaries_of_a_killed_write_are_removed(tmp_path: Path) -> None:
    from delssome_norms.io.writers import remove_orphan_temporaries

    ck = tmp_path / "checkpoint"
    ck.mkdir()
    old = ck / ".train_00011.npz.7a3c100a4c2c.tmp"  # the name atomic_path gives
    fresh = ck / ".val.npz.0123456789ab.tmp"  # a write that may still be in progress
    kept = [ck / ".notes.tmp", ck / "train_00011.npz", tmp_path / "a.7a3c100a4c2c.tmp"]
    for p in (old, fresh, *kept):
        p.write_bytes(b"x")
    os.utime(old, (0, 0))
    for p in kept:
        os.utime(p, (0, 0))
    assert remove_orphan_temporaries(tmp_path) == 1
    assert not old.exists() and fresh.exists() and all(p.exists() for p in kept)


def test_demographics_sex_columns_must_agree(tmp_path: Path) -> None:
    demo = tmp_path / "d.csv"
    demo.write_text("subject_id,age_in_years,sex,numeric_sex\na,20,male,1\nb,30,f,1\n")
    error = io.InvalidInputError if hasattr(io, "InvalidInputError") else ValueError
    with pytest.raises(error, match=r"disagree in row\(s\) 1 "):
        io.read_demographics(demo)
    demo.write_text("subject_id,age_in_years,sex,numeric_sex\na,20,male,0\nb,30,f,\n")
    assert io.read_demographics(demo)["numeric_sex"].tolist() == [0, 1]  # an empty cell is fine


def test_strict_json_has_no_nan() -> None:
    import json

    data = {"a": float("nan"), "b": [1.0, np.float32("inf"), {"c": -np.inf}], "d": 2}
    text = json.dumps(io.strict_json(data), allow_nan=False)  # would raise on NaN/inf
    assert json.loads(text) == {"a": None, "b": [1.0, None, {"c": None}], "d": 2}


def test_manifest_scan_length_of_time_series_is_frames_times_tr(tmp_path: Path) -> None:
    """A blank scan_length cell, or no scan_length column at all, is frames x TR for time
    series (pandas 3 keeps an empty cell NaN through astype(str); it was refused as NaN)."""
    for name, frames in (("a.tsv", 240), ("b.tsv", 200)):
        np.savetxt(tmp_path / name, np.zeros((frames, 4)), delimiter="\t")
    (tmp_path / "blank.csv").write_text(
        "subject_id,timeseries,tr,scan_length\ns1,a.tsv,2.0,\ns2,b.tsv,0.72,100\n"
    )
    table = io.read_manifest(tmp_path / "blank.csv")
    assert table["scan_length"].tolist() == [480.0, 100.0]
    (tmp_path / "absent.csv").write_text("subject_id,timeseries,tr\ns1,a.tsv,2.0\ns2,b.tsv,3.0\n")
    table = io.read_manifest(tmp_path / "absent.csv")
    assert table["scan_length"].tolist() == [480.0, 600.0]


def test_manifest_scan_length_with_a_text_cell_is_a_float_column(tmp_path: Path) -> None:
    """A whitespace cell makes the column text (pandas 3: str dtype, which refused the float
    frames x TR with a TypeError); the result is float64 under pandas 2 and 3 alike."""
    for name, frames in (("a.tsv", 240), ("b.tsv", 200)):
        np.savetxt(tmp_path / name, np.zeros((frames, 4)), delimiter="\t")
    (tmp_path / "m.csv").write_text(
        "subject_id,timeseries,tr,scan_length\ns1,a.tsv,2.0, \ns2,b.tsv,0.72,144\n"
    )
    table = io.read_manifest(tmp_path / "m.csv")
    assert table["scan_length"].dtype == np.float64
    assert table["scan_length"].tolist() == [480.0, 144.0]


def test_demographics_site_scanner_of_empty_site_or_scanner(tmp_path: Path) -> None:
    """An empty scanner gives the site alone and an empty site no label, under pandas 2 and 3
    (astype(str) made them "A_nan" / "nan_s2" under pandas 2 and missing under pandas 3)."""
    from delssome_norms.io.ei_table import site_labels

    demo = tmp_path / "d.csv"
    demo.write_text(
        "subject_id,age_in_years,sex,site,scanner\n001,20,f,A,s1\n002,30,m,A,\n003,40,m,,s2\n"
    )
    table = io.read_demographics(demo)
    assert table["subject_id"].tolist() == ["001", "002", "003"]
    assert table["site_scanner"].iloc[:2].tolist() == ["A_s1", "A"]
    assert table["site_scanner"].isna().tolist() == [False, False, True]
    labels = site_labels(pd.read_csv(demo), "site_scanner")
    assert labels.iloc[:2].tolist() == ["A_s1", "A"] and pd.isna(labels.iloc[2])
    demo.write_text("subject_id,age_in_years,sex,site,scanner\na,20,f,A,\nb,30,m,B,\n")
    assert io.read_demographics(demo)["site_scanner"].tolist() == ["A", "B"]  # a float column


def test_parquet_missing_subject_id_stays_missing(tmp_path: Path) -> None:
    """pandas 2's astype(str) made a missing ID the person "None"; pandas 3 keeps it missing."""
    path = tmp_path / "d.parquet"
    pd.DataFrame(
        {"subject_id": ["a", None, "c"], "age_in_years": [20.0, 30, 40], "sex": ["f", "m", "f"]}
    ).to_parquet(path)
    assert io.read_table(path)["subject_id"].isna().tolist() == [False, True, False]
    with pytest.raises(InvalidInputError, match=r"subject_id is empty in row\(s\) 2"):
        io.read_demographics(path)


def test_read_table_reads_every_float_exactly(tmp_path: Path) -> None:
    """pandas 3 reads CSV decimals exactly; pandas 2's default parser was one ulp off for about a
    third of them, so tables (and the charts fitted to them) differed between pandas versions."""
    x = np.random.default_rng(0).normal(size=(500, 3))
    pd.DataFrame(x, columns=["a", "b", "c"]).assign(subject_id="s").to_csv(
        tmp_path / "t.csv", index=False
    )
    np.testing.assert_array_equal(io.read_table(tmp_path / "t.csv")[["a", "b", "c"]].to_numpy(), x)
    x[::7, 1] = np.nan
    pd.DataFrame(x).to_csv(tmp_path / "n.csv", header=False, index=False, na_rep="n/a")
    values, _, _ = read_labelled_numeric(tmp_path / "n.csv", allow_na=True)
    np.testing.assert_array_equal(values, x)


@pytest.mark.parametrize("reader", ["read_fc", "read_sc"])
def test_named_square_matrices_are_put_in_atlas_order(tmp_path: Path, reader: str) -> None:
    """FC and SC with region names in a shuffled order read equal to the atlas-ordered matrix."""
    from delssome_norms.datasets import DK68_REGIONS, load_default_template

    sc = load_default_template().sc
    perm = np.random.default_rng(0).permutation(len(DK68_REGIONS))
    names = [DK68_REGIONS[i] for i in perm]
    mat = sc if reader == "read_sc" else np.corrcoef(np.random.default_rng(1).normal(size=(68, 200)))
    shuffled = pd.DataFrame(mat[np.ix_(perm, perm)], columns=names)
    shuffled.to_csv(tmp_path / "m.csv", index=False)
    got = getattr(io, reader)(tmp_path / "m.csv")
    np.testing.assert_array_equal(got, mat)


@pytest.mark.parametrize("index", [True, False])
def test_square_matrices_written_by_pandas_read_back(tmp_path, index) -> None:
    """``pd.DataFrame(sc).to_csv(path)`` writes a numbered header row (and an index column):
    an FC or SC saved that way was refused ("line 1 has the non-numeric value ''")."""
    import pandas as pd

    rng = np.random.default_rng(3)
    fc = np.corrcoef(rng.standard_normal((6, 50)))
    sc = rng.uniform(0, 1, (6, 6))
    np.fill_diagonal(sc, 0)
    pd.DataFrame(fc).to_csv(tmp_path / "fc.csv", index=index)
    pd.DataFrame(sc).to_csv(tmp_path / "sc.csv", index=index)
    np.testing.assert_allclose(io.read_fc(tmp_path / "fc.csv"), fc, rtol=1e-12)
    np.testing.assert_allclose(io.read_sc(tmp_path / "sc.csv"), sc, rtol=1e-12)


def test_a_blank_cell_inside_a_matrix_is_still_refused(tmp_path) -> None:
    """Only the pandas layout is recognised: an empty cell in the data stays an error."""
    (tmp_path / "sc.csv").write_text("0,1,2\n1,,3\n2,3,0\n")
    with pytest.raises(InvalidInputError, match=r"sc\.csv"):
        io.read_sc(tmp_path / "sc.csv")
