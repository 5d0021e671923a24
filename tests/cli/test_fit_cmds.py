"""CLI: estimate-ei, prepare, cohort (SIGKILL + resume), collect, surrogate mode, bad time series.

These run the real simulator on a 6-region toy network with a short scan (TR 0.72 s, 7.2–14.4 s,
dt 0.005 s) and tiny searches, so each fit takes a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.io import write_matrix

N = 6
FAST = [
    "--popsize", "6", "--mu", "2", "--n-dup", "1", "--dt-train", "0.005", "--dt-val", "0.005",
    "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5", "--warmup-steps", "50",
    "--test-top-k", "2", "--quiet",
]  # fmt: skip
OUTPUTS = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")


def _sc() -> np.ndarray:
    rng = np.random.default_rng(0)
    sc = rng.random((N, N)) ** 3
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def _timeseries(frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    common = rng.standard_normal((frames, 1))
    return rng.standard_normal((frames, N)) + 0.5 * common * np.linspace(0.5, 1.5, N)


def _fc_cdf_numpy(runs: list[np.ndarray], window: int) -> tuple[np.ndarray, np.ndarray]:
    """Independent numpy FC / FCD-CDF (Fisher-z mean over runs, mean of CDFs)."""
    z = np.mean([np.arctanh(np.clip(np.corrcoef(r.T), -1 + 1e-7, 1 - 1e-7)) for r in runs], axis=0)
    fc = np.tanh(z)
    np.fill_diagonal(fc, 1.0)
    cdfs = []
    iu = np.triu_indices(N, 1)
    for r in runs:
        vecs = np.array([np.corrcoef(r[t : t + window].T)[iu] for t in range(len(r) - window + 1)])
        fcd = np.corrcoef(vecs)
        vals = fcd[np.triu_indices(len(vecs), 1)]
        hist, _ = np.histogram(vals, bins=10000, range=(-1, 1))
        c = np.cumsum(hist)
        cdfs.append(c / c[-1])
    return fc, np.mean(cdfs, axis=0)


def _inputs(tmp: Path, sid: str = "sub-00", seed: int = 0) -> dict[str, Path]:
    data = tmp / "data"
    data.mkdir(exist_ok=True)
    ts = _timeseries(40, seed)
    fc, cdf = _fc_cdf_numpy([ts], 5)
    paths = {k: data / f"{sid}_{k}.csv" for k in ("FC", "FCD_CDF")}
    write_matrix(fc, paths["FC"])
    write_matrix(cdf, paths["FCD_CDF"])
    write_matrix(_sc(), data / "sc.csv")
    x = np.linspace(-1, 1, N)
    write_matrix(1.4 - 0.2 * x + 0.1 * np.sin(4 * x), data / "myelin.csv")
    write_matrix((x - x.mean()) / x.std(), data / "gradient.csv")
    paths.update(sc=data / "sc.csv", myelin=data / "myelin.csv", gradient=data / "gradient.csv")
    np.savetxt(data / f"{sid}_run1.tsv", ts, delimiter="\t")
    paths["ts"] = data / f"{sid}_run1.tsv"
    return paths


def test_estimate_ei_writes_outputs_and_skips_when_finished(tmp_path: Path, capsys) -> None:
    p = _inputs(tmp_path)
    out = tmp_path / "out"
    argv = [
        "estimate-ei", "--fc", str(p["FC"]), "--fcd-cdf", str(p["FCD_CDF"]), "--tr", "0.72",
        "--scan-length", "14.4", "--sc", str(p["sc"]), "--myelin", str(p["myelin"]),
        "--gradient", str(p["gradient"]), "--generations", "2", "--out-dir", str(out), *FAST,
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "mean E/I" in printed
    # --n-dup 1 (FAST) leaves no noise floor: the user is told that check did not run
    assert "not compared with the model's own noise floor" in printed
    assert json.loads((out / "run.json").read_text())["fit_quality"]["unchecked"] == ["cost_above_floor"]
    ei = pd.read_csv(out / "EI_ratio.csv")
    assert list(ei.columns) == [
        "region_index",
        "EI_ratio",
        "S_E",
        "S_I",
        "r_E",
        "EI_ratio_sd",
        "EI_ratio_lo",
        "EI_ratio_hi",
        "fit_flagged",
        "fit_flag_reasons",
    ]
    assert len(ei) == N and np.all(np.isfinite(ei["EI_ratio"])) and np.all(ei["EI_ratio"] > 0)
    np.testing.assert_allclose(ei["EI_ratio"], ei["S_E"] / ei["S_I"], rtol=0.05)  # 1 duplicate
    best = pd.read_csv(out / "best_parameters.csv")
    assert list(best.columns) == ["region_index", "wEE", "wEI", "sigma", "G"]
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "complete" and run["design"].startswith("[1, myelin, gradient]")
    assert len(run["result"]["coefficients"]) == 10 and run["settings"]["cmaes"]["generations"] == 2
    before = {f: (out / f).read_bytes() for f in OUTPUTS}
    assert main(argv) == 0
    assert "already finished" in capsys.readouterr().out
    assert before == {f: (out / f).read_bytes() for f in OUTPUTS}


def test_estimate_ei_from_timeseries_and_prepare(tmp_path: Path, capsys) -> None:
    p = _inputs(tmp_path)
    ts2 = _timeseries(30, 7)
    npy = tmp_path / "data" / "run2.npy"
    np.save(npy, ts2)
    assert (
        main(
            [
                "prepare",
                "--timeseries",
                str(p["ts"]),
                str(npy),
                "--tr",
                "0.72",
                "--fcd-window",
                "5",
                "--out-dir",
                str(tmp_path / "prep"),
                "--subject-id",
                "sub-00",
            ]
        )
        == 0
    )
    fc = np.loadtxt(tmp_path / "prep" / "sub-00_FC.csv", delimiter=",")
    cdf = np.loadtxt(tmp_path / "prep" / "sub-00_FCD_CDF.csv", delimiter=",")
    ref_fc, ref_cdf = _fc_cdf_numpy([np.loadtxt(p["ts"], delimiter="\t"), ts2], 5)
    np.testing.assert_allclose(fc, ref_fc, atol=1e-12)
    assert cdf.shape == (10000,) and cdf[-1] == 1.0
    assert np.abs(cdf - ref_cdf).max() <= 0.5 / len(ts2)  # bin-edge ties only
    out = tmp_path / "ts-out"
    argv = [
        "estimate-ei",
        "--timeseries",
        str(p["ts"]),
        "--tr",
        "0.72",
        "--sc",
        str(p["sc"]),
        "--generations",
        "1",
        "--out-dir",
        str(out),
        *FAST,
    ]
    with pytest.warns(Warning, match="maps"):
        assert main(argv) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["timing"]["scan_length"] == pytest.approx(40 * 0.72)  # frames x TR
    assert run["design"] == "[1, gradient]; gradient: subject FC"


@pytest.mark.parametrize(
    ("defect", "message"),
    [("nan", "NaN"), ("constant", "constant"), ("short", "at least 6 are needed")],
)
def test_bad_timeseries_give_a_clear_error(tmp_path: Path, capsys, defect: str, message: str) -> None:
    ts = _timeseries(40, 1)
    if defect == "nan":
        ts[3, 2] = np.nan
    elif defect == "constant":
        ts[:, 4] = 1.0
    else:
        ts = ts[:5]
    path = tmp_path / "bad.tsv"
    np.savetxt(path, ts, delimiter="\t")
    code = main(
        [
            "prepare",
            "--timeseries",
            str(path),
            "--tr",
            "0.72",
            "--fcd-window",
            "5",
            "--out-dir",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "bad.tsv" in err and message in err


def test_surrogate_mode_without_weights(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("DELSSOME_NORMS_PRETRAINED", str(tmp_path / "no_weights_here"))
    p = _inputs(tmp_path)
    code = main(
        [
            "estimate-ei",
            "--fc",
            str(p["FC"]),
            "--fcd-cdf",
            str(p["FCD_CDF"]),
            "--tr",
            "0.72",
            "--scan-length",
            "14.4",
            "--out-dir",
            str(tmp_path / "o"),
            "--mode",
            "surrogate",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "no pretrained surrogate weights" in err
    assert not (tmp_path / "o" / "run.json").exists()


def _manifest(tmp: Path, n_subjects: int) -> Path:
    rows = []
    for i in range(n_subjects):
        sid = f"sub-{i:02d}"
        p = _inputs(tmp, sid, seed=i)
        rows.append(
            {
                "subject_id": sid,
                "tr": 0.72,
                "scan_length": 7.2,
                "fc": p["FC"],
                "fcd_cdf": p["FCD_CDF"],
                "sc": p["sc"],
                "myelin": p["myelin"],
                "gradient": p["gradient"],
            }
        )
    path = tmp / "subjects.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _cohort_argv(manifest: Path, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "delssome_norms.cli.main",
        "cohort",
        "--manifest",
        str(manifest),
        "--out-dir",
        str(out),
        "--batch-subjects",
        "2",
        "--generations",
        "8",
        "--seed",
        "5",
        *FAST,
    ]


def test_cohort_killed_with_sigkill_resumes_to_identical_outputs(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, 2)
    ref = tmp_path / "ref"
    subprocess.run(_cohort_argv(manifest, ref), check=True, capture_output=True, timeout=300)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        _cohort_argv(manifest, out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    state = out / "sub-01" / "checkpoint" / "state.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        try:
            if json.loads(state.read_text())["generations_done"] >= 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "sub-00" / "run.json").exists()  # killed mid-way
    done = subprocess.run(_cohort_argv(manifest, out), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    for sid in ("sub-00", "sub-01"):
        for f in OUTPUTS:
            assert (ref / sid / f).read_bytes() == (out / sid / f).read_bytes(), (sid, f)
    # collect the finished cohort into the chart table
    demo = tmp_path / "demogr.csv"
    pd.DataFrame(
        {
            "subject_id": ["sub-00", "sub-01"],
            "age_in_years": [30, 40],
            "sex": ["F", "M"],
            "site": ["A", "A"],
            "scanner": ["S", "S"],
        }
    ).to_csv(demo, index=False)
    assert (
        main(
            [
                "collect",
                "--in-dir",
                str(out),
                "--demographics",
                str(demo),
                "--out",
                str(tmp_path / "c.csv"),
            ]
        )
        == 0
    )
    table = pd.read_csv(tmp_path / "c.csv")
    assert list(table["subject_id"]) == ["sub-00", "sub-01"] and "ei_ratio_roi_5" in table.columns


def test_estimate_ei_refuses_an_out_dir_name_that_is_not_a_subject_id(tmp_path: Path, capsys) -> None:
    """The folder's name becomes the subject id: one collect would refuse is named at once."""
    ts = tmp_path / "run.tsv"
    np.savetxt(ts, _timeseries(40, 1), delimiter="\t")
    argv = ["estimate-ei", "--timeseries", str(ts), "--tr", "0.72", "--out-dir"]
    assert main([*argv, str(tmp_path / "sub 02")]) == 2
    err = capsys.readouterr().err
    assert "'sub 02' is not a safe folder name" in err and "--subject-id" in err
    assert not (tmp_path / "sub 02").exists()
