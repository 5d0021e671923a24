"""The installed package is complete: a wheel built from the repository, installed into a fresh
virtual environment outside it, fits in surrogate mode with the shipped weights and scores with the
shipped reference chart (no source tree, no ``$DELSSOME_NORMS_PRETRAINED``).

Slow (~1-2 min: wheel build, venv, one tiny surrogate-mode fit); run with ``pytest -m slow``.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import delssome_norms

REPO = Path(delssome_norms.__file__).resolve().parents[1]
FAST = [
    "--generations", "2", "--popsize", "8", "--mu", "2", "--n-dup", "1", "--dt-train", "0.005",
    "--dt-val", "0.005", "--dt-test", "0.005", "--test-top-k", "1", "--quiet",
]  # fmt: skip


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_wheel_installs_weights_and_reference_chart(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "DELSSOME_NORMS_PRETRAINED")}
    wheels = tmp_path / "wheels"
    _run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation",
         "-w", str(wheels), "-q"],
        tmp_path,
        env,
    )  # fmt: skip
    (wheel,) = wheels.glob("delssome_norms-*.whl")
    with zipfile.ZipFile(wheel) as zf:  # the fused kernel's C++ source ships as package data
        assert "delssome_norms/model/kernels/pfic_cpu.cpp" in zf.namelist()
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], tmp_path, env)
    py = venv / "bin" / "python"
    # reuse this environment's dependencies (torch, numpy...) without re-downloading them; the
    # venv's own site-packages (where the wheel goes) come first on sys.path
    venv_site = Path(
        _run([str(py), "-c", "import site; print(site.getsitepackages()[0])"], tmp_path, env).strip()
    )
    (venv_site / "zz_parent_env.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], tmp_path, env)
    work = tmp_path / "outside"
    work.mkdir()
    where = _run(
        [str(py), "-c", "import delssome_norms.surrogate as s, delssome_norms as d; "
         "print(d.__file__); print(s.default_pretrained_path())"],
        work,
        env,
    ).split()  # fmt: skip
    assert where[0].startswith(str(venv_site)), where
    assert where[1].startswith(str(venv_site)) and (Path(where[1]) / "model.safetensors").is_file()
    # one tiny surrogate-mode fit of a synthetic reference subject (68 regions, template SC)
    _run(
        [str(py), "-c", "import numpy as np; from delssome_norms.datasets import "
         "load_reference_subjects as l; s = l(); np.savetxt('fc.csv', s.fc[0], delimiter=','); "
         "np.savetxt('cdf.csv', s.fcd_cdf[0][:, None])"],
        work,
        env,
    )  # fmt: skip
    cli = str(venv / "bin" / "delssome-norms")
    _run(
        [cli, "estimate-ei", "--fc", "fc.csv", "--fcd-cdf", "cdf.csv", "--tr", "0.72",
         "--scan-length", "432", "--mode", "surrogate", "--out-dir", "fit", *FAST],
        work,
        env,
    )  # fmt: skip
    run = json.loads((work / "fit" / "run.json").read_text())
    assert run["provenance"]["mode"] == "surrogate"
    assert run["ei_interval"]["mode"] == "surrogate"  # the calibration file is package data
    assert run["ei_interval"]["calibration_source"]
    ei = np.genfromtxt(work / "fit" / "EI_ratio.csv", delimiter=",", names=True)["EI_ratio"]
    assert ei.shape == (68,) and np.isfinite(ei).all()
    out = _run([str(py), "-c", "from delssome_norms.norms import load_reference_chart as l; "
                "print(len(l().targets_))"], work, env)  # fmt: skip
    assert out.strip() == "69"
