"""Issue #20: no stale results, no writes outside the out-dir, one clear error for every mistake.

One test (or group) per numbered defect of the issue, on a 6-region toy subject with tiny fits
(2 generations x 6 candidates, 28.8-s scans at dt 0.005 s), plus the concurrency check: two
``cohort`` runs on one out-dir, the second stops at once, the first matches a lone run byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import io
from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning

N = 6
FAST = ["--generations", "2", "--popsize", "6", "--mu", "2", "--n-dup", "1", "--dt-train", "0.005",
        "--dt-val", "0.005", "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5",
        "--warmup-steps", "50", "--test-top-k", "2", "--quiet"]  # fmt: skip
RESULTS = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")


def _subject(d: Path, sid: str, seed: int) -> dict[str, Path]:
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((40, N)) + 0.6 * rng.standard_normal((40, 1)) * np.linspace(0.5, 1.5, N)
    p = {k: d / f"{sid}_{k}.csv" for k in ("fc", "cdf")}
    io.write_matrix(np.corrcoef(ts.T), p["fc"])
    fcd = np.sort(rng.uniform(-1, 1, 500))
    hist = np.histogram(fcd, bins=10000, range=(-1, 1))[0].cumsum()
    io.write_matrix(hist / hist[-1], p["cdf"])
    sc = np.random.default_rng(0).random((N, N)) ** 3
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    x = np.linspace(-1, 1, N)
    p.update(sc=d / "sc.csv", myelin=d / "myelin.csv", gradient=d / "gradient.csv")
    io.write_matrix(sc, p["sc"])
    io.write_matrix(1.4 - 0.2 * x + 0.1 * np.sin(4 * x), p["myelin"])
    io.write_matrix(x / x.std(), p["gradient"])
    return p


def _estimate(p: dict[str, Path], out: Path, *extra: str) -> list[str]:
    return ["estimate-ei", "--fc", str(p["fc"]), "--fcd-cdf", str(p["cdf"]), "--sc", str(p["sc"]),
            "--myelin", str(p["myelin"]), "--gradient", str(p["gradient"]), "--tr", "0.72",
            "--scan-length", "28.8", "--out-dir", str(out), *FAST, *extra]  # fmt: skip


def _manifest(d: Path, subjects: dict[str, dict[str, Path]], ids=None) -> Path:
    rows = [
        f"{sid},0.72,28.8,{p['fc']},{p['cdf']},{p['sc']},{p['myelin']},{p['gradient']}"
        for sid, p in subjects.items()
    ]
    path = d / "manifest.csv"
    path.write_text("subject_id,tr,scan_length,fc,fcd_cdf,sc,myelin,gradient\n" + "\n".join(rows) + "\n")
    return path


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _one_error_line(capsys) -> str:
    err = [
        ln
        for ln in capsys.readouterr().err.splitlines()
        if ln.strip() and not ln.startswith("delssome-norms: warning")
    ]
    assert len(err) == 1, err
    assert err[0].startswith("delssome-norms: error: ")
    return err[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, dict[str, Path]]:
    d = tmp_path_factory.mktemp("reliability")
    return {"s01": _subject(d / "data", "s01", 1), "s02": _subject(d / "data", "s02", 2), "root": d}


# ---- 1: a finished subject is reused only with the same inputs and settings ---------------
def test_finished_fit_of_other_settings_or_subject_is_refused(data, tmp_path, capsys) -> None:
    out = tmp_path / "fit"
    assert main(_estimate(data["s01"], out)) == 0
    capsys.readouterr()
    run = json.loads((out / "run.json").read_text())
    assert run["fingerprint"]["settings"]["seed"] == 0
    assert len(run["fingerprint"]["inputs_sha256"]) == 64
    before = _tree(out)
    # other settings
    assert main(_estimate(data["s01"], out, "--seed", "1")) == 2
    line = _one_error_line(capsys)
    assert "settings.seed" in line and "--overwrite" in line and str(out) in line
    assert _tree(out) == before
    # another subject's data into the same folder
    assert main(_estimate(data["s02"], out)) == 2
    line = _one_error_line(capsys)
    assert "inputs_sha256" in line and "--overwrite" in line
    assert _tree(out) == before
    # more generations is another result, too
    assert main(_estimate(data["s01"], out, "--generations", "3")) == 2
    assert "settings.cmaes.generations" in _one_error_line(capsys)
    # the same command still reuses it
    assert main(_estimate(data["s01"], out)) == 0
    assert "already finished" in capsys.readouterr().out
    assert _tree(out) == before
    # --overwrite refits with the new settings
    assert main(_estimate(data["s01"], out, "--generations", "3", "--overwrite")) == 0
    assert "done" in capsys.readouterr().out
    fp = json.loads((out / "run.json").read_text())["fingerprint"]
    assert fp["settings"]["cmaes"]["generations"] == 3


def test_output_without_fingerprint_is_refused_not_reused(data, tmp_path, capsys) -> None:
    out = tmp_path / "fit"
    assert main(_estimate(data["s01"], out)) == 0
    run = json.loads((out / "run.json").read_text())
    del run["fingerprint"]  # as written by an older version
    (out / "run.json").write_text(json.dumps(run))
    capsys.readouterr()
    assert main(_estimate(data["s01"], out)) == 2
    line = _one_error_line(capsys)
    assert "without a run fingerprint" in line and "--overwrite" in line


def test_cohort_refuses_finished_subjects_of_other_settings(data, tmp_path, capsys) -> None:
    manifest = _manifest(tmp_path, {"s01": data["s01"], "s02": data["s02"]})
    out = tmp_path / "cohort"
    argv = ["cohort", "--manifest", str(manifest), "--out-dir", str(out), "--batch-subjects", "2", *FAST]
    # the tiny budget is below the interval calibration: said before the work, once
    with pytest.warns(InputWarning) as record:
        assert main(argv) == 0
    said = [w for w in record if "intervals will not be calibrated for these fits" in str(w.message)]
    assert len(said) == 1 and "generations 2 (calibrated at 30) [2 of 2]" in str(said[0].message)
    # the summary names the fits flagged as poor, as their run.json say
    flagged = [s for s in ("s01", "s02") if json.loads((out / s / "run.json").read_text())[
        "fit_quality"]["flagged"]]  # fmt: skip
    text = capsys.readouterr().out
    if flagged:
        assert f"{len(flagged)} of the 2 fitted subject(s) flagged as poor fits: " in text
        assert all(s in text.split("flagged as poor fits: ")[1] for s in flagged)
    else:
        assert "flagged as poor fits" not in text
    before = _tree(out)
    assert main([*argv, "--seed", "5"]) == 2
    line = _one_error_line(capsys)
    assert "2 subject folder(s)" in line and "s01, s02" in line and "--overwrite" in line
    assert _tree(out) == before
    assert main(argv) == 0
    assert "0 done, 2 already finished" in capsys.readouterr().out
    assert main([*argv, "--seed", "5", "--overwrite"]) == 0
    assert "2 done" in capsys.readouterr().out


def _fake_finished(folder: Path, sid: str, ei: np.ndarray, seed: int = 0) -> None:
    folder.mkdir(parents=True)
    io.write_ei_ratio(folder / "EI_ratio.csv", ei, ei, ei, ei)
    io.write_parameters(folder / "best_parameters.csv", ei, ei, ei, 1.0)
    io.write_fit_quality(
        folder / "fit_quality.csv", {"test": {"corr_loss": 0, "l1_loss": 0, "ks_loss": 0}}
    )
    fp = {"subject_id": sid, "settings": {"seed": seed}}
    io.write_json({"status": "complete", "subject_id": sid, "fingerprint": fp}, folder / "run.json")


def test_collect_refuses_foreign_mixed_and_nan_results(tmp_path, capsys) -> None:
    demo = tmp_path / "demogr.csv"
    demo.write_text("subject_id,age_in_years,sex\n001,30,f\ns02,40,m\n")
    _fake_finished(tmp_path / "in" / "001", "001", np.full(N, 1.1))
    _fake_finished(tmp_path / "in" / "s02", "s99", np.full(N, 1.2))  # another subject's results
    argv = ["collect", "--in-dir", str(tmp_path / "in"), "--demographics", str(demo)]
    out = tmp_path / "table.csv"
    assert main([*argv, "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "'s99'" in line and "s02" in line and not out.exists()
    # mixed settings
    (tmp_path / "in" / "s02" / "run.json").unlink()
    _fake = tmp_path / "in" / "s02"
    io.write_json(
        {
            "status": "complete",
            "subject_id": "s02",
            "fingerprint": {"settings": {"seed": 0, "n_dup": 2}},
        },
        _fake / "run.json",
    )
    assert main([*argv, "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "2 different settings" in line and "differing: n_dup" in line and not out.exists()
    # 6: NaN means are never written (another seed is not another setting: a cohort may mix them)
    io.write_json(
        {"status": "complete", "subject_id": "s02", "fingerprint": {"settings": {"seed": 7}}},
        _fake / "run.json",
    )
    ei = np.full(N, 1.2)
    ei[3] = np.nan
    io.write_ei_ratio(_fake / "EI_ratio.csv", ei, ei, ei, ei)
    assert main([*argv, "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert "EI_ratio.csv" in line and "region(s) 3" in line and not out.exists()
    # 2: '001' stays '001' (the folder), it is not read as the number 1
    ei[3] = 1.2
    io.write_ei_ratio(_fake / "EI_ratio.csv", ei, ei, ei, ei)
    assert main([*argv, "--out", str(out)]) == 0
    table = pd.read_csv(out, dtype={"subject_id": str})
    assert table["subject_id"].tolist() == ["001", "s02"]


# ---- 2: subject IDs are strings and safe folder names -----------------------------------
def test_subject_ids_are_read_as_strings(tmp_path) -> None:
    m = tmp_path / "m.csv"
    m.write_text("subject_id,tr,scan_length,fc,fcd_cdf\n001,0.72,28.8,a.csv,b.csv\n1e3,0.72,28.8,a,b\n")
    assert io.read_manifest(m)["subject_id"].tolist() == ["001", "1e3"]
    d = tmp_path / "d.csv"
    d.write_text("subject_id,age_in_years,sex\n001,30,f\n0010,31,m\n")
    assert io.read_demographics(d)["subject_id"].tolist() == ["001", "0010"]


@pytest.mark.parametrize("bad", ["../../x", "/abs/path", ".", "..", "a/b", "a b", "-x", ""])
def test_unsafe_subject_ids_are_refused(tmp_path, bad: str) -> None:
    m = tmp_path / "m.csv"
    m.write_text(f'subject_id,tr,scan_length,fc,fcd_cdf\nok,0.72,28.8,a,b\n"{bad}",0.72,28.8,a,b\n')
    with pytest.raises(io.InvalidInputError if hasattr(io, "InvalidInputError") else Exception) as e:
        io.read_manifest(m)
    assert "m.csv" in str(e.value)


# ---- 3: one run per out-dir ---------------------------------------------------------------
def test_locked_out_dir_is_refused_naming_the_holder(data, tmp_path, capsys) -> None:
    out = tmp_path / "fit"
    out.mkdir()
    with io.OutDirLock(out):
        before = _tree(out)
        assert main(_estimate(data["s01"], out)) == 2
        line = _one_error_line(capsys)
        assert f"PID {os.getpid()}" in line and "--out-dir" in line and "in use" in line
        assert _tree(out) == before
    assert main(_estimate(data["s01"], out)) == 0  # released: runs


def test_runs_nested_in_a_running_one_are_refused(data, tmp_path, capsys) -> None:
    """estimate-ei into a subject folder of a running cohort (or a cohort over a folder that a
    running estimate-ei writes) would mix two runs' checkpoints in one folder."""
    cohort_dir = tmp_path / "cohort"
    (cohort_dir / "s01").mkdir(parents=True)
    with io.OutDirLock(cohort_dir):
        assert main(_estimate(data["s01"], cohort_dir / "s01")) == 2
        line = _one_error_line(capsys)
        assert f"PID {os.getpid()}" in line and str(cohort_dir) in line and "in use" in line
    with io.OutDirLock(cohort_dir, shared=True):  # a cohort shard holds a shared lock
        assert main(_estimate(data["s01"], cohort_dir / "s01")) == 2
        assert "in use" in _one_error_line(capsys)
    manifest = _manifest(tmp_path, {"s01": data["s01"]})
    with io.OutDirLock(cohort_dir / "s01"):
        assert main(["cohort", "--manifest", str(manifest), "--out-dir", str(cohort_dir), *FAST]) == 2
        line = _one_error_line(capsys)
        assert str(cohort_dir / "s01") in line and "in use" in line
    assert not (cohort_dir / "s01" / "run.json").exists()


def _code_path() -> str:
    """Where the children import delssome_norms from: the package this test process imports."""
    import delssome_norms

    return str(Path(delssome_norms.__file__).resolve().parents[1])


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "delssome_norms.cli.main", *args]


@pytest.mark.timeout(300)
def test_two_concurrent_cohort_runs(data, tmp_path) -> None:
    subjects = {"s01": data["s01"], "s02": data["s02"]}
    manifest = _manifest(tmp_path, subjects)
    slow = [a if a != "2" or i != 1 else "200" for i, a in enumerate(FAST)]  # 200 generations
    shared = ["cohort", "--manifest", str(manifest), "--batch-subjects", "1", *slow]
    env = {**os.environ, "PYTHONPATH": _code_path()}
    first = subprocess.Popen(
        _cli(*shared, "--out-dir", str(tmp_path / "a")),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lock = tmp_path / "a" / ".delssome-norms.lock"
    deadline = time.time() + 120
    while time.time() < deadline and f'"pid": {first.pid}' not in (
        lock.read_text() if lock.exists() else ""
    ):
        assert first.poll() is None, first.communicate()
        time.sleep(0.2)
    t0 = time.time()
    second = subprocess.run(
        _cli(*shared, "--out-dir", str(tmp_path / "a")), env=env, capture_output=True, text=True
    )
    waited = time.time() - t0
    assert first.poll() is None, "the first run ended before the second started; make it slower"
    assert second.returncode == 2, second.stderr
    lines = [ln for ln in second.stderr.splitlines() if not ln.startswith("delssome-norms: warning")]
    assert len(lines) == 1 and f"PID {first.pid}" in lines[0] and "in use" in lines[0], lines
    assert first.wait(timeout=240) == 0, first.communicate()
    lone = subprocess.run(
        _cli(*shared, "--out-dir", str(tmp_path / "b")), env=env, capture_output=True, text=True
    )
    assert lone.returncode == 0, lone.stderr
    for sid in subjects:
        for name in RESULTS:
            a = (tmp_path / "a" / sid / name).read_bytes()
            assert a == (tmp_path / "b" / sid / name).read_bytes(), (sid, name)
        ra, rb = (json.loads((tmp_path / x / sid / "run.json").read_text()) for x in "ab")
        assert ra["result"] == rb["result"] and ra["fingerprint"] == rb["fingerprint"]
    print(f"second run refused after {waited:.2f} s (interpreter start included)")


# ---- 4: OS, device, Dask and file-format errors are one line ------------------------------
def test_corrupted_checkpoint_is_one_line(data, tmp_path, capsys) -> None:
    out = tmp_path / "fit"
    assert main(_estimate(data["s01"], out)) == 0
    for name in (*RESULTS, "run.json"):  # as if killed before the outputs were written
        (out / name).unlink()
    npz = out / "checkpoint" / "train_00000.npz"
    npz.write_bytes(npz.read_bytes()[:100])
    capsys.readouterr()
    assert main(_estimate(data["s01"], out)) == 2
    line = _one_error_line(capsys)
    assert "train_00000.npz" in line and "--overwrite" in line
    assert main(_estimate(data["s01"], out, "--overwrite")) == 0


def test_unreachable_dask_scheduler_is_one_line(data, tmp_path, capsys, monkeypatch) -> None:
    import delssome_norms.fit.cohort as cohort

    monkeypatch.setattr(cohort, "DASK_CONNECT_TIMEOUT_S", 2)
    manifest = _manifest(tmp_path, {"s01": data["s01"]})
    out = tmp_path / "cohort"
    argv = ["cohort", "--manifest", str(manifest), "--out-dir", str(out), "--executor", "dask",
            "--scheduler", "tcp://127.0.0.1:9", *FAST]  # fmt: skip
    assert main(argv) == 2
    line = _one_error_line(capsys)
    assert "--scheduler" in line and "127.0.0.1:9" in line
    assert not out.exists()


def _weights_folder(tmp_path: Path, meta: dict) -> Path:
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    (folder / "metadata.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize(
    ("meta", "fragment"),
    [
        ([1, 2], "not a JSON object"),
        ({"kind": "delssome_norms.surrogate.pretrained", "format_version": 1}, "weights_sha256"),
        (
            {
                "kind": "delssome_norms.surrogate.pretrained",
                "format_version": 1,
                "weights_sha256": hashlib.sha256(b"\x00" * 64).hexdigest(),
            },
            "malformed network settings",
        ),
    ],
    ids=["not_object", "no_sha256", "no_network"],
)
def test_malformed_surrogate_metadata_is_one_line(data, tmp_path, capsys, meta, fragment) -> None:
    folder = _weights_folder(tmp_path, meta)
    out = tmp_path / "fit"
    assert main(_estimate(data["s01"], out, "--mode", "surrogate", "--weights", str(folder))) == 2
    line = _one_error_line(capsys)
    assert fragment in line and "metadata.json" in line
    assert not out.exists()


# ---- 5: damaged charts and caches are refused ---------------------------------------------
@pytest.fixture(scope="module")
def chart(tmp_path_factory) -> tuple[Path, Path]:
    from delssome_norms.norms.simulate import make_truth, simulate_cohort

    d = tmp_path_factory.mktemp("chart")
    cohort = simulate_cohort(make_truth(n_targets=1, n_sites=3, seed=3), 600, seed=1)
    cohort.to_csv(d / "table.csv", index=False)
    assert main(["charts", "fit", "--table", str(d / "table.csv"), "--out", str(d / "chart")]) == 0
    return d / "chart", d / "table.csv"


def _edited_chart(src: Path, dst: Path, arrays=None, meta=None) -> Path:
    import shutil

    shutil.copytree(src, dst)
    if arrays is not None:
        with np.load(dst / "arrays.npz") as npz:
            a = {k: npz[k].copy() for k in npz.files}
        arrays(a)
        np.savez(dst / "arrays.npz", **a)
        m = json.loads((dst / "chart.json").read_text())
        m.pop("arrays_sha256", None)  # hand-edited charts: checked on their numbers
        (dst / "chart.json").write_text(json.dumps(m))
    if meta is not None:
        m = json.loads((dst / "chart.json").read_text())
        meta(m)
        (dst / "chart.json").write_text(json.dumps(m))
    return dst


def _set_site(a: dict, p: str, value: float) -> None:
    a[f"site_{p}"][0, 0] = value


def _knot_nan(m: dict) -> None:
    basis = m["parameters"]["mu"]["basis"]
    key = next(k for k, v in basis.items() if isinstance(v, list) and v and isinstance(v[0], float))
    basis[key][0] = float("nan")


@pytest.mark.parametrize(
    ("edit", "fragment", "named"),
    [
        (dict(arrays=lambda a: _set_site(a, "mu", np.nan)), "site_mu contains", "arrays.npz"),
        (dict(arrays=lambda a: _set_site(a, "sigma", np.inf)), "site_sigma contains", "arrays.npz"),
        (dict(meta=_knot_nan), "non-finite number(s) at parameters.mu.basis", "chart.json"),
        (
            dict(meta=lambda m: m.__setitem__("age_range", [float("nan"), 80.0])),
            "age_range",
            "chart.json",
        ),
        (
            dict(meta=lambda m: m.__setitem__("age_range", [80.0, 10.0])),
            "empty or reversed",
            "chart.json",
        ),
        (dict(meta=lambda m: m.__setitem__("arrays_sha256", "0" * 64)), "sha256", "arrays.npz"),
    ],
    ids=[
        "nan_site_offset",
        "inf_site_sigma",
        "nan_knot",
        "nan_age_range",
        "reversed_age_range",
        "checksum",
    ],
)
def test_damaged_chart_is_refused(chart, tmp_path, capsys, edit, fragment, named) -> None:
    src, table = chart
    if "sigma" in fragment:
        with np.load(src / "arrays.npz") as npz:
            if "site_sigma" not in npz.files:
                pytest.skip("this chart has no random site effect on sigma")
    bad = _edited_chart(src, tmp_path / "edited", **edit)
    out = tmp_path / "scores.csv"
    assert main(["charts", "score", "--chart", str(bad), "--table", str(table), "--out", str(out)]) == 2
    line = _one_error_line(capsys)
    assert fragment in line and named in line, line
    assert not out.exists()


def test_saved_chart_records_a_checksum(chart) -> None:
    src, _ = chart
    meta = json.loads((src / "chart.json").read_text())
    assert meta["arrays_sha256"] == hashlib.sha256((src / "arrays.npz").read_bytes()).hexdigest()


@pytest.mark.timeout(300)
def test_tampered_kernel_cache_is_rebuilt_not_loaded(tmp_path) -> None:
    from delssome_norms.model import _kernel

    if not _kernel._compilers():
        pytest.skip("no C++ compiler")
    env = {
        **os.environ,
        "DELSSOME_NORMS_CACHE": str(tmp_path),
        "PYTHONPATH": _code_path(),
    }
    load = [sys.executable, "-c", "from delssome_norms.model import _kernel; _kernel.load()"]
    subprocess.run(load, env=env, check=True, timeout=240)  # in a child: never map a file we edit
    libs = list(tmp_path.glob("pfic_kernel_*.so"))
    assert len(libs) == 1
    lib = libs[0]
    good = lib.read_bytes()
    sidecar = lib.with_name(lib.name + ".sha256")
    assert sidecar.read_text().strip() == hashlib.sha256(good).hexdigest()
    lib.write_bytes(good[:-16] + b"\x00" * 16)  # damaged (or replaced) in the cache
    subprocess.run(load, env=env, check=True, timeout=240)
    assert hashlib.sha256(lib.read_bytes()).hexdigest() == sidecar.read_text().strip()


# ---- 6: the docs' simulate example (docs/cli.md) is valid with the default FCD window ------
def test_readme_simulate_example_timing_is_valid() -> None:
    import re
    import shlex

    from delssome_norms.model import SimulationTiming

    readme = (Path(__file__).resolve().parents[2] / "docs" / "cli.md").read_text()
    line = next(ln for ln in readme.splitlines() if "delssome-norms simulate --params" in ln)
    args = shlex.split(re.search(r"`(delssome-norms simulate[^`]*)`", line).group(1))
    tr = float(args[args.index("--tr") + 1])
    scan = float(args[args.index("--scan-length") + 1])
    SimulationTiming(tr=tr, scan_length=scan, dt=0.0005)  # the command's defaults
