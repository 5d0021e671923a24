"""``prepare`` checked against numpy, on XCP-D-like BIDS folders (gzip, atlas-prefixed names,
aparc's extra labels, censored n/a frames), and its refusals of bad options and aparc tables."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS


def _fcd_cdf(ts: np.ndarray, window: int, bins: int = 10000) -> np.ndarray:
    """SCIENCE.md §3 in plain numpy: window FCs' upper triangles, their correlations, CDF."""
    iu = np.triu_indices(ts.shape[1], 1)
    vecs = [np.corrcoef(ts[s : s + window], rowvar=False)[iu] for s in range(len(ts) - window + 1)]
    fcd = np.corrcoef(np.array(vecs))
    counts, _ = np.histogram(fcd[np.triu_indices(len(fcd), 1)], bins=bins, range=(-1, 1))
    return np.cumsum(counts) / counts.sum()


def test_fc_and_fcd_cdf_match_numpy(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    a = rng.standard_normal((120, 10)) + rng.standard_normal((120, 1))
    b = 3 * rng.standard_normal((95, 10)) + 5  # another length, scale and offset
    np.savetxt(tmp_path / "a.tsv", a, delimiter="\t")
    np.save(tmp_path / "b.npy", b)
    out = tmp_path / "out"
    argv = ["prepare", "--timeseries", str(tmp_path / "a.tsv"), str(tmp_path / "b.npy")]
    assert main([*argv, "--tr", "2.0", "--out-dir", str(out)]) == 0
    fc = np.loadtxt(out / "FC.csv", delimiter=",")
    off = ~np.eye(10, dtype=bool)
    want = np.eye(10)
    want[off] = np.tanh((np.arctanh(np.corrcoef(a.T)[off]) + np.arctanh(np.corrcoef(b.T)[off])) / 2)
    np.testing.assert_allclose(fc[off], want[off], atol=1e-12)
    np.testing.assert_array_equal(np.diag(fc), 1.0)
    cdf = np.loadtxt(out / "FCD_CDF.csv")
    np.testing.assert_allclose(cdf, (_fcd_cdf(a, 30) + _fcd_cdf(b, 30)) / 2, atol=1e-12)
    # raw (mean 1000), mean-centred and global-signal-regressed runs
    raw = 1000 + a
    gsr = a - a.mean(0)
    g = gsr.mean(1, keepdims=True)
    gsr = gsr - g * (g * gsr).sum(0) / (g * g).sum()
    for name, ts in (("raw", raw), ("centred", a - a.mean(0)), ("gsr", gsr)):
        np.save(tmp_path / f"{name}.npy", ts)
        argv = ["prepare", "--timeseries", str(tmp_path / f"{name}.npy"), "--tr", "2.0"]
        assert main([*argv, "--out-dir", str(tmp_path / name)]) == 0
    raw_fc, gsr_fc = (np.loadtxt(tmp_path / n / "FC.csv", delimiter=",") for n in ("raw", "gsr"))
    centred_fc = np.loadtxt(tmp_path / "centred" / "FC.csv", delimiter=",")
    np.testing.assert_allclose(raw_fc, centred_fc, atol=1e-12)
    np.testing.assert_allclose(gsr_fc, np.corrcoef(gsr.T), atol=1e-12)
    assert gsr_fc.min() < -0.05  # negative FC after GSR is kept, not clipped


def _xcpd_run(folder: Path, stem: str, frames: int, tr: float, seed: int, gz: bool) -> np.ndarray:
    """An XCP-D-like run: atlas-prefixed names, ctx-lh-unknown, three censored (n/a) frames."""
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((frames, 68)) + rng.standard_normal((frames, 1))
    names = ["Desikan_ctx-lh-unknown", *(f"Desikan_ctx-{n[:2]}-{n[3:]}" for n in DK68_REGIONS)]
    rows = ["\t".join(names)]
    for t, row in enumerate(ts):
        rows.append("\t".join("n/a" if t < 3 else repr(float(v)) for v in [0.0, *row]))
    text = "\n".join(rows) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(folder / f"{stem}_timeseries.tsv.gz", "wt") as f:
            f.write(text)
    else:
        (folder / f"{stem}_timeseries.tsv").write_text(text)
    (folder / f"{stem}_timeseries.json").write_text(json.dumps({"RepetitionTime": tr}))
    return ts[3:]


def test_bids_gzip_and_xcpd_names(tmp_path: Path, capsys) -> None:
    root = tmp_path / "xcp_d"
    stem = "task-rest_space-fsLR_seg-Desikan_stat-mean"
    a = _xcpd_run(root / "sub-01" / "func", f"sub-01_{stem}", 120, 2.0, 1, gz=True)
    b = _xcpd_run(root / "sub-02" / "func", f"sub-02_{stem}", 100, 1.5, 2, gz=False)
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match=r"dropped 1 column\(s\) .*\('lh-unknown'\)"):
        code = main(["prepare", "--bids-dir", str(root), "--out-dir", str(out), "--drop-na-frames"])
    assert code == 0, capsys.readouterr().err
    rows = pd.read_csv(out / "manifest.csv").set_index("subject_id")
    assert rows.loc["sub-01", "tr"] == 2.0 and rows.loc["sub-01", "scan_length"] == 117 * 2.0
    assert rows.loc["sub-02", "tr"] == 1.5 and rows.loc["sub-02", "scan_length"] == 97 * 1.5
    for sid, ts in (("sub-01", a), ("sub-02", b)):
        fc = np.loadtxt(out / f"{sid}_FC.csv", delimiter=",")
        np.testing.assert_allclose(fc, np.corrcoef(ts.T), atol=1e-12)


def test_bad_fcd_window_and_aparc_tables(tmp_path: Path, capsys) -> None:
    np.save(tmp_path / "ts.npy", np.random.default_rng(0).standard_normal((200, 68)))
    argv = ["prepare", "--timeseries", str(tmp_path / "ts.npy"), "--tr", "0.72"]
    assert main([*argv, "--out-dir", str(tmp_path / "o"), "--fcd-window", "2"]) == 2
    err = capsys.readouterr().err
    assert "--fcd-window: must be at least 3 frames, got 2" in err and "ts.npy" not in err
    regions = [n[3:] for n in DK68_REGIONS[:34]]

    def table(path: Path, hemi: str, parc: str, subjects: list[str]) -> str:
        cols = [f"{hemi}.{parc}.thickness", *(f"{hemi}_{r}_thickness" for r in regions), "eTIV"]
        rows = [[s, *np.linspace(2, 3, 34).round(3), 1.5e6] for s in subjects]
        pd.DataFrame(rows, columns=cols).to_csv(path, sep="\t", index=False)
        return str(path)

    # a subject listed twice: the second map overwrote the first, and maps.csv named it twice
    lh = table(tmp_path / "lh.tsv", "lh", "aparc", ["sub-01", "sub-01"])
    rh = table(tmp_path / "rh.tsv", "rh", "aparc", ["sub-01", "sub-01"])
    assert main(["prepare", "--aparc-stats", lh, rh, "--out-dir", str(tmp_path / "m")]) == 2
    assert "lh.tsv: lists subject(s) more than once: sub-01" in capsys.readouterr().err
    # the DKT atlas is not DK68 (was: "68 region(s) missing")
    lh = table(tmp_path / "lh.tsv", "lh", "aparc.DKTatlas", ["sub-01"])
    rh = table(tmp_path / "rh.tsv", "rh", "aparc.DKTatlas", ["sub-01"])
    assert main(["prepare", "--aparc-stats", lh, rh, "--out-dir", str(tmp_path / "m")]) == 2
    assert "parcellation aparc.DKTatlas, not the Desikan-Killiany" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
