"""A researcher's own files: decimal commas, triangular and labelled SC, aparc's extra regions in
an SC, a frame column in a header-less time series, and the TR in a BIDS run's bold sidecar."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning
from delssome_norms.io.readers import read_fc, read_sc
from delssome_norms.io.timeseries import read_timeseries

NAMES = list(DK68_REGIONS)


@pytest.fixture
def series() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.standard_normal((200, 68)) + rng.standard_normal((200, 68)).cumsum(0) * 0.1


@pytest.fixture
def sc() -> np.ndarray:
    m = np.random.default_rng(8).random((68, 68))
    m = m + m.T
    np.fill_diagonal(m, 0.0)
    return m


@pytest.mark.parametrize("sep", [";", "\t"])
@pytest.mark.parametrize("header", [True, False])
def test_decimal_comma_tables_read_the_values_written(tmp_path: Path, series, sep, header) -> None:
    path = tmp_path / "ts.csv"
    frame = pd.DataFrame(series, columns=NAMES if header else None)
    path.write_text(frame.to_csv(sep=sep, index=False, header=header, decimal=","))
    assert "," in path.read_text()
    np.testing.assert_allclose(read_timeseries(path), series, rtol=1e-12)


def test_decimal_comma_sc_and_plain_comma_csv(tmp_path: Path, sc) -> None:
    path = tmp_path / "sc.csv"
    path.write_text(pd.DataFrame(sc).to_csv(sep=";", index=False, header=False, decimal=","))
    np.testing.assert_allclose(read_sc(path), sc, rtol=1e-12)
    plain = tmp_path / "plain.csv"
    np.savetxt(plain, sc, delimiter=", ", fmt="%d")  # integers, comma and space: not decimal
    np.testing.assert_array_equal(read_sc(plain), np.floor(sc))


@pytest.mark.parametrize("triangle", [np.tril, np.triu])
def test_triangular_sc_is_mirrored_with_a_warning(tmp_path: Path, sc, triangle) -> None:
    path = tmp_path / "sc_tri.csv"
    np.savetxt(path, triangle(sc), delimiter=",")
    with pytest.warns(InputWarning, match="triangle"):
        got = read_sc(path)
    np.testing.assert_allclose(got, sc)


def test_lower_triangular_fc_is_mirrored(tmp_path: Path, series) -> None:
    fc = np.corrcoef(series.T)
    path = tmp_path / "fc_tri.csv"
    np.savetxt(path, np.tril(fc), delimiter=",")
    with pytest.warns(InputWarning, match="lower triangle"):
        np.testing.assert_allclose(read_fc(path), fc, atol=1e-12)


@pytest.mark.parametrize("start", [0, 1])
def test_sc_with_a_numbered_label_column(tmp_path: Path, sc, start) -> None:
    path = tmp_path / "sc_labels.csv"
    np.savetxt(path, np.column_stack([np.arange(start, start + 68), sc]), delimiter=",")
    np.testing.assert_allclose(read_sc(path), sc)


def test_named_70_region_sc_drops_unknown_and_corpus_callosum(tmp_path: Path, sc) -> None:
    names = ["lh_unknown", *NAMES[:34], "lh_corpuscallosum", *NAMES[34:]]
    where = [None, *range(34), None, *range(34, 68)]
    big = np.full((70, 70), 0.5)
    for a, i in enumerate(where):
        for b, j in enumerate(where):
            if i is not None and j is not None:
                big[a, b] = sc[i, j]
    np.fill_diagonal(big, 0.0)
    rows = np.random.default_rng(1).permutation(70)  # rows in another order than the columns
    frame = pd.DataFrame(big, index=names, columns=names).iloc[rows]
    path = tmp_path / "sc70.csv"
    frame.to_csv(path)
    with pytest.warns(InputWarning, match="lh_corpuscallosum"):
        np.testing.assert_allclose(read_sc(path), sc)


@pytest.mark.parametrize("column", ["zero", "one", "times"])
def test_headerless_frame_column_is_dropped(tmp_path: Path, series, column) -> None:
    first = {
        "zero": np.arange(200.0),
        "one": np.arange(1.0, 201.0),
        "times": np.arange(200) * 0.72,
    }[column]
    path = tmp_path / "ts.tsv"
    np.savetxt(path, np.column_stack([first, series]), delimiter="\t")
    with pytest.warns(InputWarning, match="first column counts frames"):
        got = read_timeseries(path)
    np.testing.assert_allclose(got, series)
    plain = tmp_path / "plain.tsv"
    np.savetxt(plain, series, delimiter="\t")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        np.testing.assert_allclose(read_timeseries(plain), series)


def test_bids_tr_from_the_runs_bold_sidecar(tmp_path: Path, series, capsys) -> None:
    from delssome_norms.cli.main import main

    func = tmp_path / "bids" / "sub-01" / "func"
    func.mkdir(parents=True)
    stem = "sub-01_task-rest_space-fsLR_seg-Desikan_stat-mean_timeseries"
    pd.DataFrame(np.vstack([series, series]), columns=NAMES).to_csv(
        func / f"{stem}.tsv", sep="\t", index=False
    )
    (func / "sub-01_task-rest_space-fsLR_desc-preproc_bold.json").write_text(
        json.dumps({"RepetitionTime": 2.0})
    )
    (func / "sub-01_task-other_bold.json").write_text(json.dumps({"RepetitionTime": 9.0}))
    out = tmp_path / "out"
    with pytest.warns(InputWarning, match="sidecar RepetitionTime 2 s is used"):
        assert main(["prepare", "--bids-dir", str(tmp_path / "bids"), "--tr", "0.72",
                     "--out-dir", str(out)]) == 0  # fmt: skip
    manifest = pd.read_csv(out / "manifest.csv")
    assert manifest["tr"].tolist() == [2.0]
    assert manifest["scan_length"].tolist() == [400 * 2.0]


def test_bids_run_sidecars_that_disagree_are_refused(tmp_path: Path, series, capsys) -> None:
    from delssome_norms.cli.main import main

    func = tmp_path / "bids" / "sub-01" / "func"
    func.mkdir(parents=True)
    pd.DataFrame(np.vstack([series, series]), columns=NAMES).to_csv(
        func / "sub-01_task-rest_seg-DK_timeseries.tsv", sep="\t", index=False
    )
    (func / "sub-01_task-rest_bold.json").write_text(json.dumps({"RepetitionTime": 2.0}))
    (func / "sub-01_task-rest_desc-preproc_bold.json").write_text(json.dumps({"RepetitionTime": 0.8}))
    out = tmp_path / "out"
    assert main(["prepare", "--bids-dir", str(tmp_path / "bids"), "--out-dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "disagree on RepetitionTime" in err and "sub-01_task-rest_bold.json" in err
    assert not out.exists() or not any(out.iterdir())


def test_validate_drops_na_frames_as_the_fit_would(tmp_path: Path, series, capsys) -> None:
    from delssome_norms.cli.main import main

    values = np.vstack([series, series])
    values[:3] = np.nan
    path = tmp_path / "run.tsv"
    pd.DataFrame(values, columns=NAMES).to_csv(path, sep="\t", index=False, na_rep="n/a")
    assert main(["validate", "--timeseries", str(path), "--tr", "0.72"]) == 2
    assert "--drop-na-frames" in capsys.readouterr().err
    with pytest.warns(InputWarning, match="dropped 3 of 400"):
        code = main(["validate", "--timeseries", str(path), "--tr", "0.72", "--drop-na-frames"])
    assert code == 0
    assert f"{path}: 397 frames x 68 regions" in capsys.readouterr().out


def _run_with_sidecar(tmp_path: Path, series, tr: float | None) -> Path:
    path = tmp_path / "run1.tsv.gz"
    pd.DataFrame(np.vstack([series, series]), columns=NAMES).to_csv(
        path, sep="\t", index=False, compression="gzip"
    )
    if tr is not None:
        (tmp_path / "run1.json").write_text(json.dumps({"RepetitionTime": tr}))
    return path


def test_prepare_timeseries_takes_the_tr_of_its_sidecar(tmp_path: Path, series, capsys) -> None:
    from delssome_norms.cli.main import main

    path = _run_with_sidecar(tmp_path, series, 2.0)
    assert main(["prepare", "--timeseries", str(path), "--out-dir", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "TR 2 s from the runs' JSON sidecars" in out
    assert "FCD window 30 frames" in out  # round(60 / 2.0), not the window of another TR
    with pytest.warns(InputWarning, match="RepetitionTime 2 s but --tr is 0.72 s"):
        code = main(
            ["prepare", "--timeseries", str(path), "--tr", "0.72", "--out-dir", str(tmp_path / "b")]
        )
    assert code == 0


def test_prepare_timeseries_without_tr_or_sidecar_names_the_file(tmp_path: Path, series, capsys) -> None:
    from delssome_norms.cli.main import main

    path = _run_with_sidecar(tmp_path, series, None)
    assert main(["prepare", "--timeseries", str(path), "--out-dir", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "--tr" in err and str(path) in err


def test_manifest_npz_timeseries_sets_the_scan_length(tmp_path: Path, series) -> None:
    from delssome_norms.io.readers import INPUT_PROBLEM, read_manifest

    np.savez(tmp_path / "run.npz", ts=series)
    (tmp_path / "manifest.csv").write_text("subject_id,tr,timeseries\ns1,0.5,run.npz\n")
    table = read_manifest(tmp_path / "manifest.csv")
    assert INPUT_PROBLEM not in table.columns
    assert table["scan_length"].tolist() == [200 * 0.5]


def test_binary_sc_files_read_the_values_saved(tmp_path: Path, sc) -> None:
    import scipy.io

    np.save(tmp_path / "sc.npy", sc)
    np.savez(tmp_path / "sc.npz", sc=sc)
    scipy.io.savemat(tmp_path / "sc.mat", {"sc": sc, "names": np.array(NAMES)})
    for name in ("sc.npy", "sc.npz", "sc.mat"):
        np.testing.assert_array_equal(read_sc(tmp_path / name), sc)
    scipy.io.savemat(tmp_path / "two.mat", {"sc": sc, "fc": sc})
    with pytest.raises(Exception, match=r"two\.mat: holds 2 arrays \(sc, fc\)"):
        read_sc(tmp_path / "two.mat")
    (tmp_path / "text.npy").write_text("1,2\n3,4\n")
    with pytest.raises(Exception, match=r"text\.npy: is not a numpy \.npy file"):
        read_sc(tmp_path / "text.npy")
