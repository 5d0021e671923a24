"""Fixes of 2026-12-07 to the benchmark scripts: gpu_check.sh's preflight and exit status, reused
work folders that must match the request, verdicts only where the target applies, temporary
folders, group sizes in the summary line, the retrain step's dt and the docs quoting them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from bench_helpers import load_bench_script

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"


def _load(name: str):
    return load_bench_script(name)


# ------------------------------------------------------------------ 1. bench/gpu_check.sh
def _gpu_check(tmp_path: Path, python: str, device: str = "cpu") -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHON=python,
        DEVICE=device,
        SCAN_LENGTH="72",
        SUBJECTS="2",
        EULER_SUBJECTS="2",
        BUDGET_S="300",
        OUT=str(tmp_path / "out"),
    )
    return subprocess.run(
        ["bash", str(BENCH / "gpu_check.sh")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_gpu_check_preflight_stops_before_any_step(tmp_path):
    broken = tmp_path / "python_without_torch"
    broken.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'torch'\" >&2\nexit 1\n")
    broken.chmod(0o755)
    proc = _gpu_check(tmp_path, str(broken))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert f"{broken} cannot import torch" in lines[0] and "set PYTHON=" in lines[0]
    assert "===" not in proc.stdout  # no step (not even the device listing) ran
    assert not (tmp_path / "out" / "gpu_check.log").exists()


def _fake_python(tmp_path: Path) -> Path:
    """An interpreter that passes the preflight (``-c``) and fails everything else, logging argv."""
    fake = tmp_path / "fake_python"
    log = tmp_path / "calls.txt"
    fake.write_text(
        f'#!/bin/bash\necho "$*" >> {log}\n[ "$1" = "-c" ] && exit 0\ncat > /dev/null\nexit 3\n'
    )
    fake.chmod(0o755)
    return fake


def test_gpu_check_exits_1_and_lists_failed_steps(tmp_path):
    proc = _gpu_check(tmp_path, str(_fake_python(tmp_path)))
    assert proc.returncode == 1, proc.stdout[-2000:]
    out = proc.stdout
    # steps 1, 2, 4, 5, 6, 7 ran and failed (no .baseline: step 3 skipped), and so did the merge
    assert "=== FAILED: 7 step(s)" in out
    for name in ("cohort throughput, surrogate (rc 3)", "GPU tests (rc 3)", "micro-benchmarks (rc 3)"):
        assert name in out.splitlines()[-1]
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    sim = [c for c in calls if "bench/simulate.py" in c]
    assert len(sim) == 1
    assert "--device cpu" in sim[0] and "--quick" in sim[0] and "--scale-sets" not in sim[0]


def test_gpu_check_passes_the_device_to_simulate(tmp_path):
    proc = _gpu_check(tmp_path, str(_fake_python(tmp_path)), device="cuda:0")
    assert proc.returncode == 1
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    sim = [c for c in calls if "bench/simulate.py" in c]
    assert "--device cuda:0 " in sim[0] and "--scale-sets 1000" in sim[0] and "--quick" not in sim[0]
    tp = [c for c in calls if "cohort_throughput.py" in c]
    assert tp and all("--device cuda:0" in c for c in tp)  # the fitting scripts take cuda:N


def test_gpu_check_header_dry_run_line_is_complete():
    text = (BENCH / "gpu_check.sh").read_text()
    dry = text[text.index("# overrides for a CPU dry run") :].split("\ndev=")[0]
    assert "BUDGET_S=300" in dry and "OUT=" in dry and "bash bench/gpu_check.sh" in dry


# ------------------------------------------------------------------ 2. reused held-out subjects
def _stored_subjects(sur, path: Path, request: dict | None, n: int = 2) -> None:
    rng = np.random.default_rng(0)
    m = 68
    fc = np.stack([np.corrcoef(rng.standard_normal((m, 200))) for _ in range(n)])
    arrays = {
        "rate_band": np.asarray(sur.FIC_RATE_BAND, dtype=float),
        "ids": np.array([f"bench_{i:03d}" for i in range(n)]),
        "fc": fc,
        "fcd_cdf": np.tile(np.linspace(0.0, 1.0, 10000), (n, 1)),
        "tr": np.full(n, 0.72),
        "scan_length": np.full(n, 432.0),
        "sc": np.tile(np.ones((m, m)) - np.eye(m), (n, 1, 1)),
        "gradient": rng.standard_normal((n, m)),
        "myelin": rng.standard_normal((n, m)),
        "ei_true": rng.uniform(1.5, 3.0, (n, m)),
    }
    if request is not None:
        arrays["request"] = np.array(json.dumps(request))
    sur.write_arrays(arrays, path)


def _gsettings(sur, **changes):
    base = dict(n_subjects=2, group_size=2, tr=0.72, scan_lengths=(432.0,), seed=1000)
    return sur.GenerateSettings(**(base | changes))


def test_held_out_subjects_refuses_a_folder_drawn_for_another_request(tmp_path, monkeypatch):
    sur = _load("surrogate")
    monkeypatch.setattr(sur, "synthetic_subjects", None)  # nothing may be simulated here
    path = tmp_path / "work" / "subjects.npz"
    path.parent.mkdir()
    _stored_subjects(sur, path, sur.subjects_request(_gsettings(sur)))
    # the same request: the stored subjects and truth come back
    subjects, ei_true = sur.held_out_subjects(_gsettings(sur), path)
    assert [s.subject_id for s in subjects] == ["bench_000", "bench_001"] and ei_true.shape == (2, 68)
    # another seed, subject count or scan length: one line naming the folder and the difference
    for change, text in (
        ({"seed": 7}, "seed 1000 (stored) vs 7 (asked)"),
        ({"n_subjects": 5, "group_size": 5}, "n_subjects 2 (stored) vs 5 (asked)"),
        ({"scan_lengths": (864.0,)}, "scan_lengths [432.0] (stored) vs [864.0] (asked)"),
    ):
        with pytest.raises(SystemExit) as exc:
            sur.held_out_subjects(_gsettings(sur, **change), path)
        msg = str(exc.value)
        assert msg.startswith(f"{path.parent}:") and text in msg and "\n" not in msg


def test_held_out_subjects_old_folder_without_request(tmp_path, monkeypatch):
    sur = _load("surrogate")
    path = tmp_path / "subjects.npz"
    _stored_subjects(sur, path, None)
    stored = dict(np.load(path))
    drawn = sur._subjects_from_arrays(stored)
    monkeypatch.setattr(sur, "load_default_template", lambda: SimpleNamespace(sc=stored["sc"][0]))
    monkeypatch.setattr(sur, "truth_maps", lambda sc: (None, None, None))
    # the subjects this request draws are the stored ones: reused, and the request is added
    monkeypatch.setattr(sur, "synthetic_subjects", lambda *a, **k: (drawn, 0, 0, stored["ei_true"]))
    subjects, _ = sur.held_out_subjects(_gsettings(sur), path)
    assert [s.subject_id for s in subjects] == ["bench_000", "bench_001"]
    with np.load(path) as z:
        assert json.loads(str(z["request"]))["seed"] == 1000
    # other subjects than those stored (and no request to tell why): refused
    _stored_subjects(sur, path, None)
    other = [s.__class__(**{**s.__dict__, "fc": np.eye(68)}) for s in drawn]
    monkeypatch.setattr(sur, "synthetic_subjects", lambda *a, **k: (other, 0, 0, stored["ei_true"]))
    with pytest.raises(SystemExit, match="stored without their request"):
        sur.held_out_subjects(_gsettings(sur), path)


# ------------------------------------------------------------------ 8. surrogate.py's temporary folder
@pytest.mark.parametrize("keep", [False, True])
def test_surrogate_removes_its_temporary_folder_also_on_error(tmp_path, monkeypatch, keep):
    sur = _load("surrogate")
    made = tmp_path / "made_by_mkdtemp"
    monkeypatch.setattr(sur.tempfile, "mkdtemp", lambda prefix="": str(made.mkdir() or made))
    monkeypatch.setattr(sur, "load_pretrained", lambda w: SimpleNamespace(metadata={}))
    monkeypatch.setattr(sur, "bench_settings", lambda *a: (None, sur.FitSettings()))

    def fail(*args):
        args[5].mkdir(parents=True, exist_ok=True)
        (args[5] / "subjects.npz").write_text("x")
        raise RuntimeError("fit failed")

    monkeypatch.setattr(sur, "compare_modes", fail)
    work = tmp_path / "work"
    argv = ["surrogate.py", "--out", str(tmp_path / "s.json")] + (["--work", str(work)] if keep else [])
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(RuntimeError, match="fit failed"):
        sur.main()
    if keep:
        assert (work / "subjects.npz").is_file() and not made.exists()
    else:
        assert not made.exists()


# ------------------------------------------------------------------ 3. lockstep verdict
def test_lockstep_verdict_is_the_default_engines(tmp_path, monkeypatch, capsys):
    lock = _load("lockstep")
    speeds = {"kernel": 1.02, "torch": 3.5}
    monkeypatch.setattr(
        lock,
        "lockstep_vs_sequential",
        lambda k, pop, dup, timing, e, reps, dev: {"engine": e, "speedup": speeds[e]},
    )
    out = tmp_path / "lockstep.json"
    argv = ["lockstep.py", "--quick", "--skip-full", "--engines", "kernel", "torch"]
    monkeypatch.setattr(sys, "argv", [*argv, "--out", str(out)])
    lock.main()
    res = json.loads(out.read_text())
    default = "kernel" if lock.kernel_mod.available() else "torch"
    assert res["verdict_engine"] == default
    assert res["pass"] is (speeds[default] >= 3.0)
    line = capsys.readouterr().out
    assert "kernel 1.02x" in line or not lock.kernel_mod.available()
    assert ("FAIL" in line) is (default == "kernel")
    assert lock.verdict([{"engine": "torch", "speedup": 9.0}], "kernel") is None
    assert "about 6 minutes" in " ".join(lock.__doc__.split())


# ------------------------------------------------------------------ 5, 6. targets that do not apply
def test_sex_null_quick_has_no_verdict():
    sn = _load("sex_null")
    ok, bad = {"null/mu_lr": True, "null/sigma_lr": True}, {"null/mu_lr": True, "null/sigma_lr": False}
    assert sn.null_verdict(bad, quick=True) == (None, "too few repetitions to judge")
    assert sn.null_verdict(ok, quick=True) == (None, "too few repetitions to judge")
    assert sn.null_verdict(ok, quick=False) == (True, None)
    assert sn.null_verdict(bad, quick=False) == (False, None)
    assert sn.verdict_text(False, None, bad) == "FAIL (null/sigma_lr)"
    assert sn.verdict_text(None, "too few repetitions to judge", bad) == (
        "no verdict (too few repetitions to judge)"
    )
    assert "--reps" not in sn.__doc__


def test_score_reference_verdict_only_at_100000_people():
    sr = _load("score_reference")
    passed, note = sr.score_verdict(0.5, 1.0, 10_000)
    assert passed is None and "100,000" in note and "10,000" in note
    assert sr.score_verdict(0.5, 1.0, 100_000) == (True, None)
    assert sr.score_verdict(2.5, 1.0, 100_000) == (False, None)
    assert sr.score_verdict(0.5, 6.0, 200_000) == (False, None)


# ------------------------------------------------------------------ 7. cohort_scale --tmp / --n
class _Stop(Exception):
    pass


def test_cohort_scale_creates_tmp_and_honours_n_with_quick(tmp_path, monkeypatch, capsys):
    cs = _load("cohort_scale")
    seen = {}

    def make_inputs(root, n):
        seen["root"], seen["n"] = Path(root), n
        raise _Stop

    monkeypatch.setattr(cs, "make_inputs", make_inputs)
    target = tmp_path / "not" / "yet"
    with pytest.raises(_Stop):
        cs.main(["--quick", "--n", "7", "--tmp", str(target), "--out", str(tmp_path / "c.json")])
    assert seen["n"] == 7 and seen["root"].parent == target
    with pytest.raises(_Stop):
        cs.main(["--quick", "--tmp", str(target), "--out", str(tmp_path / "c.json")])
    assert seen["n"] == 50
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exc:
        cs.main(["--quick", "--tmp", str(blocker / "sub")])
    assert exc.value.code == 2
    assert "cannot create the folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cs.main(["--help"])
    assert "--n 50 unless --n is given" in " ".join(capsys.readouterr().out.split())


# ------------------------------------------------------------------ 9. cohort_throughput's group sizes
def test_cohort_throughput_prints_the_groups_that_ran():
    tp = _load("cohort_throughput")
    assert tp.group_text({"group_size": 8, "group_sizes": [2]}) == "K=8 (groups of 2 run)"
    assert tp.group_text({"group_size": 8, "group_sizes": [8, 4]}) == "K=8 (groups of 8/4 run)"
    assert tp.group_text({"group_size": 4, "group_sizes": [4]}) == "K=4"
    doc = " ".join(tp.__doc__.split())
    assert "uses only" not in doc and "add_fit_options" in doc and "fit_settings_from_args" in doc


# ------------------------------------------------------------------ 10. the retrain script's dt
def test_gpu_surrogate_retrain_uses_the_documented_dt():
    script = (BENCH / "gpu_surrogate_retrain.sh").read_text()
    readme = (REPO / "pretrained" / "README.md").read_text()
    meta = json.loads((REPO / "pretrained" / "delssome_dk68" / "metadata.json").read_text())
    dt_script = re.findall(r"--dt (\S+)", script)
    dt_readme = re.findall(r"surrogate generate[^`]*?--dt (\S+)", readme)
    assert dt_script == ["0.006"] and dt_readme and set(dt_readme) == {"0.006"}
    assert float(dt_script[0]) == meta["training_data"]["generation_settings"]["dt"]


# ------------------------------------------------------------------ 4, 11. docs
def test_docs_quote_what_the_scripts_do():
    speed = (REPO / "docs" / "speed.md").read_text()
    stored = json.loads((BENCH / "results" / "cohort_throughput_cpu.json").read_text())["settings"]
    row = next(ln for ln in speed.splitlines() if "`bench/cohort_throughput.py" in ln)
    cmd = re.search(r"`(bench/cohort_throughput\.py [^`]*)`", row).group(1)
    assert "--out bench/results/cohort_throughput_cpu.json" in cmd
    assert f"--profile {stored['profile']}" in cmd and f"--subjects {stored['subjects']}" in cmd
    results = " ".join((REPO / "docs" / "results.md").read_text().split())
    assert "EULER_GENERATIONS=100 bash bench/gpu_calibration.sh" not in results
    assert "EULER_GENERATIONS=100 N_TRUTHS=16 bash bench/gpu_calibration.sh" in results
    accuracy = " ".join((REPO / "docs" / "accuracy.md").read_text().split())
    assert "both modes at the full budget" not in accuracy
    assert "Euler at 40 of its 100 generations" in accuracy
    header = (BENCH / "gpu_calibration.sh").read_text()
    assert 'eg="${EULER_GENERATIONS:-40}"' in header and 'n="${N_TRUTHS:-32}"' in header


# ------------------------------------------------------------------ preflight of every gpu_*.sh
def _python_failing(tmp_path: Path, pattern: str) -> Path:
    """An interpreter whose ``-c`` code fails when it contains ``pattern`` (passes otherwise) and
    that fails every script it is asked to run."""
    fake = tmp_path / "python_failing"
    fake.write_text(
        f'#!/bin/bash\nif [ "$1" = "-c" ]; then case "$2" in *"{pattern}"*) exit 1;; esac; exit 0; fi\n'
        "cat > /dev/null\nexit 3\n"
    )
    fake.chmod(0o755)
    return fake


@pytest.mark.parametrize("script", ["gpu_check.sh", "gpu_calibration.sh", "gpu_surrogate_retrain.sh"])
@pytest.mark.parametrize(
    ("pattern", "device", "said"),
    [
        ("import cma", "cpu", "cannot import cma; carry .whl"),  # the device image lacks cma
        ("import tvb_data", "cpu", "cannot import tvb_data.connectivity"),
        ("cuda.is_available", "cuda", "sees no CUDA device (DEVICE=cuda)"),
    ],
)
def test_every_gpu_script_stops_before_spending_device_time(tmp_path, script, pattern, device, said):
    env = dict(os.environ, PYTHON=str(_python_failing(tmp_path, pattern)), DEVICE=device)
    env["OUT"] = str(tmp_path / "out")
    proc = subprocess.run(
        ["bash", str(BENCH / script)], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, (proc.stdout[-1500:], proc.stderr[-1500:])
    assert said in proc.stderr and "nothing was run" in proc.stderr
    assert "===" not in proc.stdout


def test_gpu_surrogate_retrain_exits_1_when_its_steps_fail(tmp_path):
    env = dict(os.environ, PYTHON=str(_python_failing(tmp_path, "no such code")), DEVICE="cpu")
    env["OUT"] = str(tmp_path / "out")
    proc = subprocess.run(
        ["bash", str(BENCH / "gpu_surrogate_retrain.sh")], cwd=REPO, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-1500:]
    assert "=== FAILED: generate rc 3, train rc 3, metadata rc 3" in proc.stdout


def test_cohort_throughput_exit_status_says_whether_anything_was_measured():
    status = _load("cohort_throughput").exit_status
    ok = {"done": 2, "failed": 0}
    assert status({"modes": {"surrogate": ok, "euler": ok}}) == 0
    assert status({"modes": {"surrogate": ok, "euler": {"done": 0, "failed": 2}}}) == 1
    assert status({"modes": {"surrogate": {"done": 1, "failed": 1}}}) == 1
    assert status({"modes": {}}) == 1 and status(None) == 1
