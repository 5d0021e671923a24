"""Loose ends of 2026-12-07 (second pass):

1. ``bench/simulate.py --device`` takes ``cuda:N`` (synchronising and measuring that device, its
   results kept under the device type) and ``bench/gpu_check.sh`` passes the full device to it;
2. ``bench/surrogate.py --quick`` is a smoke run: no PASS/FAIL, ``passed`` None;
3. a ``regions.csv`` naming more or fewer regions than its table has regional columns is refused
   alike by ``read_ei_table`` and ``stats`` (naming both files); rows in another order are matched
   to the columns by name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from bench_helpers import load_bench_script

from delssome_norms.errors import InvalidInputError
from delssome_norms.io import read_ei_table, regions_path
from delssome_norms.io.ei_table import PROVENANCE_ATTR, regions_frame

REPO = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ 1. simulate.py --device cuda:N
@pytest.fixture(scope="module")
def sim():
    return load_bench_script("simulate")


def _parse_error(sim, monkeypatch, capsys, device: str) -> str:
    monkeypatch.setattr(sys, "argv", ["simulate.py", "--device", device])
    with pytest.raises(SystemExit) as exit_:
        sim.main()
    assert exit_.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "mps", "cpu:0", "CUDA", "cuda:"])
def test_simulate_refuses_other_devices_naming_the_value(sim, monkeypatch, capsys, device):
    err = _parse_error(sim, monkeypatch, capsys, device)
    assert f"argument --device: unknown device '{device}'; use cpu, cuda or cuda:N" in err


def test_simulate_device_argument_and_result_key(sim):
    for device in ("cpu", "cuda", "cuda:0", "cuda:1", "cuda:12"):
        assert sim.device_arg(device) == device
    # results stay keyed by the device type, as the docs and earlier results read them
    assert sim.result_key("cuda:1") == "cuda"
    assert sim.result_key("cuda", "torch", quick=True) == "cuda_torch_quick"
    assert sim.result_key("cpu", "auto", quick=False) == "cpu"
    assert sim.result_key("cpu", "kernel", quick=True) == "cpu_kernel_quick"


def test_simulate_synchronises_and_measures_the_named_cuda_device(sim, monkeypatch):
    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(("sync", d)))
    monkeypatch.setattr(
        torch.cuda, "max_memory_allocated", lambda d=None: calls.append(("peak", d)) or 7
    )
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d=None: calls.append(("reset", d)))
    import delssome_norms.model as model

    monkeypatch.setattr(model, "simulate", lambda *a, **k: calls.append(("simulate", k["device"])))
    sim._sync("cuda:1")
    assert sim._peak("cuda:1") == 7
    sim._warm_up("cuda:1", "torch")
    assert calls == [
        ("sync", "cuda:1"),
        ("peak", "cuda:1"),
        ("simulate", "cuda:1"),
        ("sync", "cuda:1"),
        ("reset", "cuda:1"),
    ]
    calls.clear()
    sim._sync("cpu")  # the CPU path: nothing to synchronise, peak = max RSS
    assert calls == [] and sim._peak("cpu") > 10 * 2**20


def _fake_workers(sim, monkeypatch) -> list:
    seen = []

    def run_worker(name, args):
        seen.append((name, args.device))
        if name == "generation":
            return {
                "n_sets": args.n_sets, "engine": "torch", "seconds": 4.0, "simulate_seconds": 3.0,
                "summary_cost_seconds": 1.0, "fcd_products": "float32",
                "region_steps_per_s": 2e8, "peak_memory_bytes": 2**30,
            }  # fmt: skip
        if name == "baseline":
            return {"simulate_seconds_extrapolated": 39.0}
        if name == "test_stage":
            return {"seconds": 20.0, "extrapolated": True}
        return {"n_simulations": 3 * args.scale_sets, "region_steps_per_s": 1e9}

    monkeypatch.setattr(sim, "_run_worker", run_worker)
    return seen


def test_simulate_records_a_cpu_run_under_cpu(sim, monkeypatch, capsys, tmp_path):
    seen = _fake_workers(sim, monkeypatch)
    out = tmp_path / "simulate.json"
    out.write_text(json.dumps({"cuda": {"kept": True}}))
    monkeypatch.setattr(sys, "argv", ["simulate.py", "--quick", "--out", str(out)])
    assert sim.main() == 0
    assert seen == [("generation", "cpu"), ("baseline", "cpu"), ("test_stage", "cpu")]
    results = json.loads(out.read_text())
    assert set(results) == {"cuda", "cpu_quick"} and results["cuda"] == {"kept": True}
    run = results["cpu_quick"]
    assert run["device"] == "cpu" and run["machine"]["device_name"] is None
    assert run["baseline"]["speedup_generation"] == pytest.approx((39.0 + 1.0) / 4.0)
    assert run["pass"] is None  # a quick run has no verdict
    assert capsys.readouterr().out.startswith("simulate[cpu, torch, quick]: generation 10x3 sims")


def test_simulate_records_cuda_n_under_cuda_with_its_gpu(sim, monkeypatch, capsys, tmp_path):
    seen = _fake_workers(sim, monkeypatch)
    checked, named = [], []
    monkeypatch.setattr(sim, "check_device", lambda d, option: checked.append((d, option)))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: named.append(d) or "Fake GPU")
    out = tmp_path / "simulate.json"
    argv = ["simulate.py", "--device", "cuda:1", "--skip-test-stage", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    assert sim.main() == 0
    assert checked == [("cuda:1", "--device")]
    assert seen == [("generation", "cuda:1"), ("baseline", "cuda:1"), ("scale", "cuda:1")]
    run = json.loads(out.read_text())["cuda"]
    assert run["device"] == "cuda:1" and run["machine"]["device_name"] == "Fake GPU"
    assert torch.device("cuda:1") in named and run["scale"]["n_simulations"] == 3000
    assert run["pass"] is True  # 4 s <= 40 s, x10 >= x5
    assert capsys.readouterr().out.startswith("simulate[cuda:1, torch]: generation 100x3 sims")


def test_simulate_refuses_a_cuda_device_this_machine_lacks(sim, monkeypatch, tmp_path):
    _fake_workers(sim, monkeypatch)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    argv = ["simulate.py", "--device", "cuda:1", "--out", str(tmp_path / "s.json")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit, match=r"^--device: 'cuda:1' was asked for but CUDA is not"):
        sim.main()
    assert not (tmp_path / "s.json").exists()


def test_gpu_check_passes_the_full_device_to_simulate(tmp_path):
    fake = tmp_path / "fake_python"  # passes the preflight (-c), fails every step, logs argv
    log = tmp_path / "calls.txt"
    fake.write_text(
        f'#!/bin/bash\necho "$*" >> {log}\n[ "$1" = "-c" ] && exit 0\ncat > /dev/null\nexit 3\n'
    )
    fake.chmod(0o755)
    env = dict(os.environ, PYTHON=str(fake), DEVICE="cuda:1", BUDGET_S="300", OUT=str(tmp_path / "o"))
    cmd = ["bash", str(REPO / "bench" / "gpu_check.sh")]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    sim_calls = [c for c in log.read_text().splitlines() if "bench/simulate.py" in c]
    assert len(sim_calls) == 1 and "--device cuda:1 " in sim_calls[0], sim_calls
    assert "--scale-sets 1000" in sim_calls[0]


# ------------------------------------------------------------------ 2. surrogate.py --quick
@pytest.fixture(scope="module")
def sur():
    return load_bench_script("surrogate")


CHECKS_OK = {"spearman_total_pooled": True, "per_candidate_ratio": True, "test_cost": True}


def test_surrogate_verdicts(sur):
    passed, note = sur.surrogate_verdict(CHECKS_OK, quick=True)
    assert passed is None and note.startswith("smoke run, no verdict")
    assert sur.verdict_text(passed, note, CHECKS_OK) == note
    assert sur.surrogate_verdict(CHECKS_OK, quick=False) == (True, None)
    assert sur.verdict_text(True, None, CHECKS_OK) == "PASS"
    failing = {**CHECKS_OK, "test_cost": False, "per_candidate_ratio": False}
    assert sur.surrogate_verdict(failing, quick=False) == (False, None)
    assert sur.verdict_text(False, None, failing) == "FAIL (per_candidate_ratio, test_cost)"
    # a failing smoke run is still no verdict
    assert sur.surrogate_verdict(failing, quick=True)[0] is None


def _fake_surrogate_run(sur, monkeypatch, tmp_path: Path) -> None:
    """compare_modes on made-up fits: nothing is simulated or trained."""
    ids = ["h0", "h1"]
    rng = np.random.default_rng(0)
    subjects = [
        SimpleNamespace(subject_id=i, fc=np.eye(3), fcd_cdf=np.zeros(5), sc=np.eye(3), tr=0.72,
                        scan_length=432.0)
        for i in ids
    ]  # fmt: skip
    ei = {i: rng.uniform(1, 3, 68) for i in ids}
    quality = {i: pd.DataFrame({"total_loss": [0.5]}, index=["test"]) for i in ids}

    def run_mode(mode, subjects, work, settings, weights):
        dirs = []
        for i in ids:
            d = tmp_path / mode / i
            d.mkdir(parents=True, exist_ok=True)
            (d / "run.json").write_text(
                json.dumps({"wall_time_s": {"total": 100.0 if mode == "euler" else 5.0}})
            )
            dirs.append(d)
        secs = 200.0 if mode == "euler" else 10.0
        return {"quality": quality, "ei": ei, "dirs": dirs, "seconds": secs, "cpu_seconds": secs,
                "reused": False}  # fmt: skip

    class Evaluator:
        def __init__(self, *a):
            pass

        def predict(self, params, subj):
            return torch.zeros(len(subj), 4)

    n = 6
    candidates = (np.ones((n, 68, 3)), np.ones(n), np.zeros(n, int), np.arange(n), np.zeros((n, 4)))
    monkeypatch.setattr(sur, "held_out_subjects", lambda *a: (subjects, None))
    monkeypatch.setattr(sur, "run_mode", run_mode)
    monkeypatch.setattr(sur, "euler_candidates", lambda *a: candidates)
    monkeypatch.setattr(sur, "SurrogateEvaluator", Evaluator)
    monkeypatch.setattr(sur, "prediction_metrics", lambda *a: {"pooled": {"total": {"spearman": 0.95}}})
    cost = {"ratio_cpu": 5000.0, "ratio_wall": 4000.0}
    monkeypatch.setattr(sur, "per_candidate_cost", lambda *a, **k: cost)
    monkeypatch.setattr(sur, "default_budget_seconds", lambda stages, *a: stages["total"])


@pytest.mark.parametrize("quick", [True, False])
def test_surrogate_quick_run_records_no_verdict(sur, monkeypatch, capsys, tmp_path, quick):
    _fake_surrogate_run(sur, monkeypatch, tmp_path)
    from delssome_norms.fit import CMAESSettings, FitSettings

    fit = FitSettings(cmaes=CMAESSettings(generations=3, popsize=40, mu=10), test_top_k=1)
    gsettings = SimpleNamespace(generations=3, burn_in=None, warmup_steps=10)
    out = tmp_path / "surrogate.json"
    args = SimpleNamespace(truth_rate_band=[0, 0], val_per_generation=None, quick=quick,
                           weights=None, out=str(out))  # fmt: skip
    surrogate = SimpleNamespace(path=tmp_path, metadata={})
    assert sur.compare_modes(args, surrogate, gsettings, fit, 2, tmp_path, True) == 0
    result = json.loads(out.read_text())
    line = capsys.readouterr().out.strip()
    assert all(result["checks"].values())  # the checks are recorded either way
    if quick:
        assert result["passed"] is None and result["verdict_note"].startswith("smoke run, no verdict")
        assert "-> smoke run, no verdict" in line and "PASS" not in line and "FAIL" not in line
    else:
        assert result["passed"] is True and result["verdict_note"] is None
        assert line.endswith(f"-> PASS ({out})")


# ------------------------------------------------------------------ 3. regions.csv vs columns
N_ROI = 4


def _table(tmp_path: Path, sidecar_names: list[str] | None, *, shuffle: bool = False) -> Path:
    rng = np.random.default_rng(1)
    n = 20
    table = pd.DataFrame(
        {
            "subject_id": [f"s{i:02d}" for i in range(n)],
            "age_in_years": rng.uniform(10, 80, n),
            "sex": ["female", "male"] * (n // 2),
            "site": ["a", "b"] * (n // 2),
        }
    )
    for k in range(N_ROI):
        table[f"ei_ratio_roi_{k}"] = rng.uniform(1, 3, n)
    path = tmp_path / "cohort_ei.csv"
    table.to_csv(path, index=False)
    if sidecar_names is not None:
        frame = regions_frame(sidecar_names)
        if shuffle:
            frame = frame.iloc[[2, 0, 3, 1]]
        frame.to_csv(regions_path(path), index=False)
    return path


def _stats_read(path: Path):
    from delssome_norms.cli.stats_cmd import _read

    return _read(str(path))


READERS = {"read_ei_table": read_ei_table, "stats": _stats_read}
NAMES = ["alpha", "beta", "gamma", "delta"]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize(
    ("names", "gap"),
    [
        ([*NAMES, "epsilon", "zeta"], "names for 2 columns it lacks"),
        (NAMES[:3], "1 of its columns without a name"),
    ],
)
def test_a_regions_csv_of_another_length_is_refused_by_both_readers(tmp_path, reader, names, gap):
    path = _table(tmp_path, names)
    with pytest.raises(InvalidInputError) as err:
        READERS[reader](path)
    assert err.value.source == str(regions_path(path))
    assert err.value.problem == (
        f"names {len(names)} regions, but {path} has regional columns up to ei_ratio_roi_3 "
        f"({gap}): the two files belong to different tables; rerun collect to write both, or "
        "give cohort_ei.regions.csv one row per column ei_ratio_roi_0 .. ei_ratio_roi_3"
    )


def test_reordered_regions_csv_rows_are_matched_by_column_in_both_readers(tmp_path):
    path = _table(tmp_path, NAMES, shuffle=True)
    assert pd.read_csv(regions_path(path))["region"].tolist() == ["gamma", "alpha", "delta", "beta"]
    table = read_ei_table(path)
    assert table.attrs[PROVENANCE_ATTR]["atlas"]["regions"] == NAMES
    stats_table, names, site = _stats_read(path)
    assert names == NAMES and site is not None  # the table has a site column
    assert stats_table.attrs[PROVENANCE_ATTR]["atlas"]["regions"] == NAMES


@pytest.mark.parametrize("command", ["sex", "groups"])
def test_stats_cli_refuses_a_longer_regions_csv(tmp_path, capsys, command):
    from delssome_norms.cli.main import main

    path = _table(tmp_path, [*NAMES, "epsilon"])
    out = tmp_path / "out"
    assert main(["stats", command, "--table", str(path), "--out-dir", str(out)]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if "warning" not in ln]
    assert len(errors) == 1, errors
    assert errors[0].startswith(
        f"delssome-norms: error: {regions_path(path)}: names 5 regions, but {path}"
    )
    assert "(names for 1 column it lacks)" in errors[0] and not out.exists()
