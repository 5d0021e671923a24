"""The benchmark scripts in ``bench/``: every one answers ``--help`` without running, the shared
result fields record the machine, and a tiny benchmark writes its JSON and one summary line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench_helpers import load_bench_script

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
SCRIPTS = sorted(p.name for p in BENCH.glob("[a-z]*.py"))

_HELP_ALL = """
import contextlib, io, runpy, sys
failed = []
for name in sys.argv[1:]:
    sys.argv = [name, "--help"]
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            runpy.run_path(name, run_name="__main__")
        failed.append(f"{name}: ran instead of printing its help")
    except SystemExit as exc:
        if exc.code not in (0, None) or "usage:" not in out.getvalue():
            failed.append(f"{name}: exit {exc.code}, {out.getvalue()[:200]!r}")
print("FAILED " + " | ".join(failed) if failed else "OK")
"""


def _load(name: str):
    return load_bench_script(name)


def _results_listing() -> dict[str, float]:
    folder = BENCH / "results"
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")} if folder.is_dir() else {}


def test_every_benchmark_answers_help_without_running():
    assert len(SCRIPTS) >= 14
    before = _results_listing()
    proc = subprocess.run(
        [sys.executable, "-c", _HELP_ALL, *SCRIPTS],
        cwd=BENCH,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "OK", proc.stdout[-2000:]
    assert _results_listing() == before  # --help wrote no result


def test_shell_scripts_parse():
    for script in sorted(BENCH.glob("*.sh")):
        proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, f"{script.name}: {proc.stderr}"


def test_machine_info_and_quick_results_file(tmp_path):
    options = _load("_options")
    info = options.machine_info("cpu")
    for key in ("host", "platform", "cpu", "cpu_count", "torch_threads", "versions"):
        assert key in info
    assert info["gpu"] is None
    assert {"python", "delssome_norms", "torch", "numpy"} <= set(info["versions"])
    json.dumps(info)  # JSON-safe
    default = tmp_path / "x.json"
    assert options.results_file(default, None, quick=True) == tmp_path / "x_quick.json"
    assert options.results_file(default, str(default), quick=False) == default
    assert options.results_file(default, tmp_path / "y.json", quick=True) == tmp_path / "y.json"


def test_gpu_micro_quick_on_cpu_writes_json_and_one_line(tmp_path, capsys):
    micro = _load("gpu_micro")
    out = tmp_path / "micro.json"
    micro.main(["--device", "cpu", "--quick", "--out", str(out)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_micro [cpu]")
    rec = json.loads(out.read_text())
    assert rec["quick"] is True and rec["when"] and rec["machine"]["versions"]["torch"]
    assert rec["settings"] == {"sets": 64, "sims": [300], "steps": 20}
    assert rec["gate"]["max_abs_diff"] < 1e-8
    assert {r["precision"] for r in rec["coupling"]} == {"fp32", "bf16"}


@pytest.mark.parametrize("quick", [True, False])
def test_cohort_throughput_target_applies_only_at_hcp_timing(quick):
    from types import SimpleNamespace

    tp = _load("cohort_throughput")
    hcp = dict(tr=0.72, scan_length=864.0, popsize=100, full_generations=100)
    assert tp._target_applies(SimpleNamespace(quick=quick, **hcp)) is (not quick)
    assert not tp._target_applies(SimpleNamespace(quick=False, **(hcp | {"scan_length": 72.0})))
