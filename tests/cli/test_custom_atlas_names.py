"""A custom atlas keeps its region names through ``prepare`` and ``validate``; named runs of a
fine atlas may be shorter than its number of regions.

``prepare`` writes the FC of another atlas with its region names (header row and first column),
so the fit matches it to an SC in another order by name; subjects of ``prepare --bids-dir``
naming the same regions in other column orders get FCs in one order; ``validate`` names the file
the region names came from; a header of region names makes a run with fewer frames than regions
unambiguous (header-less ones are still refused as likely transposed).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.subject import load_subject
from delssome_norms.io import check_timeseries, read_timeseries

N = 12
NAMES = [
    f"7Networks_{h}_{net}_{k}" for h in ("LH", "RH") for net in ("Vis", "Default") for k in (1, 2, 3)
]
TR = 2.0  # FCD window round(60 / 2) = 30 frames: runs need 31


def _ts(frames: int, n: int, seed: int) -> np.ndarray:
    """Noise with a shared signal (mean FC about 0.26, inside the model's range)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, n)) + 0.6 * rng.standard_normal((frames, 1))


def _fc(runs: list[np.ndarray]) -> np.ndarray:
    """Fisher-z mean of the runs' Pearson FCs (unit diagonal), computed independently."""
    z = np.mean([np.arctanh(np.clip(np.corrcoef(r.T), -1 + 1e-15, 1 - 1e-15)) for r in runs], 0)
    fc = np.tanh(z)
    np.fill_diagonal(fc, 1.0)
    return fc


def _write(path: Path, ts: np.ndarray, columns: list[str] | None) -> str:
    pd.DataFrame(ts, columns=columns).to_csv(path, sep="\t", index=False, header=columns is not None)
    return str(path)


def _sc(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sc = rng.random((n, n))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0.0)
    return sc


def test_prepare_writes_the_names_and_the_fit_matches_an_sc_in_another_order(
    tmp_path: Path, capsys
) -> None:
    runs = [_ts(80, N, 1), _ts(80, N, 2)]
    # the second run lists the regions in another order: matched by name to the first's
    perm = np.random.default_rng(3).permutation(N)
    paths = [
        _write(tmp_path / "r1.tsv", runs[0], NAMES),
        _write(tmp_path / "r2.tsv", runs[1][:, perm], [NAMES[k] for k in perm]),
    ]
    out = tmp_path / "prep"
    argv = ["prepare", "--timeseries", *paths, "--tr", str(TR), "--out-dir", str(out)]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert main([*argv, "--subject-id", "sub-01"]) == 0
    assert not [w for w in seen if "file order" in str(w.message)]  # the names are kept
    text = capsys.readouterr().out
    assert "FC has them as header row and first column" in text
    assert "myelin and gradient maps of it are optional" in text and "need an SC and maps" not in text
    table = pd.read_csv(out / "sub-01_FC.csv", index_col=0)
    assert list(table.columns) == NAMES and list(table.index) == NAMES
    np.testing.assert_allclose(table.to_numpy(), _fc(runs), atol=1e-12)
    # an SC naming the same regions in another order: estimate-ei's reader pairs them by name
    sc = _sc(N, 4)
    order = np.random.default_rng(5).permutation(N)
    sc_path = tmp_path / "sc.csv"
    names = [NAMES[k] for k in order]
    pd.DataFrame(sc[np.ix_(order, order)], index=names, columns=names).to_csv(sc_path)
    with pytest.warns(InputWarning, match="in another order; put in"):
        subject = load_subject(
            "s",
            TR,
            160.0,
            fc=str(out / "sub-01_FC.csv"),
            fcd_cdf=str(out / "sub-01_FCD_CDF.csv"),
            sc=str(sc_path),
        )
    assert subject.regions == tuple(NAMES)
    np.testing.assert_allclose(subject.sc / subject.sc.max(), sc / sc.max(), rtol=1e-12)
    assert main(["validate", "--fc", str(out / "sub-01_FC.csv"), "--sc", str(sc_path)]) == 0
    assert f"put in its order: {sc_path}" in capsys.readouterr().out


def test_prepare_keeps_the_header_less_dk68_layout(tmp_path: Path) -> None:
    # DK68 (the reference layout): named columns in another order are put in DK68 order and
    # the FC stays header-less, as the reference code and its readers expect
    ts = _ts(80, 68, 6)
    perm = np.random.default_rng(7).permutation(68)
    path = _write(tmp_path / "dk.tsv", ts[:, perm], [DK68_REGIONS[k] for k in perm])
    out = tmp_path / "prep"
    assert main(["prepare", "--timeseries", path, "--tr", str(TR), "--out-dir", str(out)]) == 0
    np.testing.assert_allclose(np.loadtxt(out / "FC.csv", delimiter=","), _fc([ts]), atol=1e-12)


def _bids_run(root: Path, sid: str, ts: np.ndarray, columns: list[str] | None) -> None:
    func = root / sid / "func"
    func.mkdir(parents=True)
    _write(func / f"{sid}_task-rest_timeseries.tsv", ts, columns)
    (func / f"{sid}_task-rest_timeseries.json").write_text(json.dumps({"RepetitionTime": TR}))


def test_bids_subjects_in_other_column_orders_get_one_order(tmp_path: Path, capsys) -> None:
    root = tmp_path / "bids"
    a, b = _ts(80, N, 8), _ts(80, N, 9)
    perm = np.random.default_rng(10).permutation(N)
    _bids_run(root, "sub-01", a, NAMES)
    _bids_run(root, "sub-02", b[:, perm], [NAMES[k] for k in perm])
    out = tmp_path / "prep"
    moved = r"1 subject\(s\) list the regions of sub-01 in another"
    with pytest.warns(InputWarning, match=moved) as rec:
        assert main(["prepare", "--bids-dir", str(root), "--out-dir", str(out)]) == 0
    assert "sub-02" in str(next(w for w in rec if "another column order" in str(w.message)).message)
    text = capsys.readouterr().out
    assert "after adding an sc column naming each subject's SC of this atlas" in text
    for sid, ts in (("sub-01", a), ("sub-02", b)):
        table = pd.read_csv(out / f"{sid}_FC.csv", index_col=0)
        assert list(table.columns) == NAMES and list(table.index) == NAMES
        np.testing.assert_allclose(table.to_numpy(), _fc([ts]), atol=1e-12)
    # a subject naming other regions (same width) is refused, named, nothing written
    other = [n.replace("Default", "Cont") for n in NAMES]
    _bids_run(root, "sub-03", _ts(80, N, 11), other)
    again = tmp_path / "again"
    assert main(["prepare", "--bids-dir", str(root), "--out-dir", str(again)]) == 2
    err = capsys.readouterr().err
    assert "sub-03" in err and "other regions than sub-01" in err
    assert not (again / "manifest.csv").exists()
    # with --skip-failed the others are prepared and sub-03 is listed with its reason
    assert main(["prepare", "--bids-dir", str(root), "--out-dir", str(again), "--skip-failed"]) == 0
    failures = pd.read_csv(again / "prepare_failures.tsv", sep="\t")
    assert failures["subject_id"].tolist() == ["sub-03"]
    assert pd.read_csv(again / "manifest.csv")["subject_id"].tolist() == ["sub-01", "sub-02"]


def test_validate_names_the_file_the_names_came_from(tmp_path: Path, capsys) -> None:
    fc = tmp_path / "fc.csv"
    np.savetxt(fc, _fc([_ts(80, N, 12)]), delimiter=",")  # no names
    sc = tmp_path / "sc.csv"
    pd.DataFrame(_sc(N, 13), index=NAMES, columns=NAMES).to_csv(sc)
    assert main(["validate", "--fc", str(fc), "--sc", str(sc)]) == 0
    out = capsys.readouterr().out
    assert f"region names: 12, from {sc}" in out  # the names' file, and not "matched by name":
    assert f"{fc} names none and is taken to be in the region order of {sc}" in out


def test_named_runs_may_have_fewer_frames_than_regions(tmp_path: Path, capsys) -> None:
    wide = 40
    names = [f"{h}_A{k}_ROI" for h in ("L", "R") for k in range(wide // 2)]
    ts = _ts(35, wide, 14)  # 35 frames of 40 regions: two FCD windows of 30 frames fit
    named = _write(tmp_path / "named.tsv", ts, names)
    with pytest.warns(InputWarning, match="not DK68 regions"):
        np.testing.assert_array_equal(read_timeseries(named, min_frames=31), ts)
    np.testing.assert_array_equal(check_timeseries(ts, "x", min_frames=31, named=True), ts)
    with pytest.raises(InvalidInputError, match="transposed"):
        check_timeseries(ts, "x", min_frames=31)
    # header-less: transposition is the likely cause, still refused
    plain = _write(tmp_path / "plain.tsv", ts, None)
    with pytest.raises(InvalidInputError, match="transposed"):
        read_timeseries(plain, min_frames=31)
    # the FCD window still needs window + 1 frames
    short = _write(tmp_path / "short.tsv", ts[:30], names)
    with pytest.raises(InvalidInputError, match="at least 31"):
        read_timeseries(short, min_frames=31)
    out = tmp_path / "prep"
    assert main(["prepare", "--timeseries", named, "--tr", str(TR), "--out-dir", str(out)]) == 0
    table = pd.read_csv(out / "FC.csv", index_col=0)
    assert list(table.columns) == names
    np.testing.assert_allclose(table.to_numpy(), _fc([ts]), atol=1e-12)
    # DK68 names: a 50-frame run of the 68 regions is no transposition either
    dk = _write(tmp_path / "dk.tsv", _ts(50, 68, 15), list(DK68_REGIONS))
    assert read_timeseries(dk, min_frames=31).shape == (50, 68)
