"""The fused Triton engine against the fused CPU kernel: same Philox noise, so the same numbers.

On CPU-only machines the kernel runs through Triton's interpreter (``TRITON_INTERPRET=1``, which
must be set before Triton is imported, hence the subprocess); on a CUDA machine the ``gpu`` test
runs the compiled kernel at the template size.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from delssome_norms.errors import InvalidInputError

triton = pytest.importorskip("triton", reason="the Triton engine needs the 'triton' package")

HERE = Path(__file__).parent

_SCRIPT = r"""
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from model_helpers import random_params
from delssome_norms.model import SimulationTiming, scale_sc, simulate
from delssome_norms.model.integrate import prepare_batch
from delssome_norms.model import _kernel, _triton

T = SimulationTiming(tr=0.06, scan_length=0.72, dt=0.005, burn_in=0.12, fcd_window=3, warmup_steps=12)
rng = np.random.default_rng(0)
N = 6
sc = rng.random((N, N)); sc = sc + sc.T; np.fill_diagonal(sc, 0); sc = scale_sc(sc)
params = random_params(rng, 2, N, stable=True)
out = {"total_steps": T.total_steps}

# public API, float64, shared SC
a = simulate(params, sc, T, n_dup=2, seed=11, dtype=torch.float64, engine="triton")
b = simulate(params, sc, T, n_dup=2, seed=11, dtype=torch.float64, engine="kernel")
out["f64_bold"] = float((a.bold - b.bold).abs().max() / b.bold.abs().max())
out["f64_ei"] = float(((a.ei_ratio - b.ei_ratio) / b.ei_ratio).abs().max())
out["f64_valid"] = bool(a.valid.all())
out["bold_moves"] = float(b.bold.std())

# float32, one SC per set, a blown-up set, launches of 25 steps (chunk boundaries mid-TR)
sig = params.sigma.copy(); sig[1] = 50.0
bad = params._replace(sigma=sig)
scs = np.stack([sc, scale_sc(sc + 0.5 * rng.random((N, N)))])
p = prepare_batch(bad, scs, T.dt, 2, "cpu", torch.float32)
b1, s1, f1 = _kernel.run_kernel(p, T, 3)
b2, s2, f2 = _triton.run_triton(p, T, 3, chunk_steps=25)
good = slice(0, 2)
out["f32_bold"] = float((b1[:, good] - b2[:, good]).abs().max() / b1[:, good].abs().max())
out["f32_sums"] = float(((s1[:, good] - s2[:, good]) / s1[:, good]).abs().max())
ok = lambda f, b: (f & torch.isfinite(b).all(dim=(0, 2))).tolist()
out["f32_finite"] = [ok(f1, b1), ok(f2, b2)]
out["probe"] = _triton._probe(torch.device("cpu"))
print("RESULT " + json.dumps(out))
"""


def test_interpreted_triton_kernel_matches_the_cpu_kernel(tmp_path):
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(HERE.parents[1]))
    script = tmp_path / "compare.py"
    script.write_text(_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(HERE)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    assert out["bold_moves"] > 1e-3  # the comparison is not between two constants
    assert out["f64_valid"]
    assert out["f64_bold"] < 1e-10 and out["f64_ei"] < 1e-12
    # float32 rounding accumulates over the 168 steps (1.4e-4 measured on a 2-core CI runner)
    assert out["f32_bold"] < 5e-4 and out["f32_sums"] < 1e-5
    # the blown-up set (simulations 2, 3) is flagged by both engines, the others are not
    assert out["f32_finite"][0] == out["f32_finite"][1] == [True, True, False, False]
    assert out["probe"] is True  # the start-up probe passes where the kernel runs


def test_a_failing_probe_falls_back_with_a_warning(monkeypatch):
    from delssome_norms.model import _triton as tri

    def broken(*args, **kwargs):
        raise RuntimeError("no kernel image for this GPU")

    monkeypatch.setattr(tri, "run_triton", broken)
    with pytest.warns(RuntimeWarning, match="no kernel image for this GPU"):
        assert tri._probe(torch.device("cpu")) is False
    # the verdict is cached per CUDA device, so the probe runs once
    calls = []
    monkeypatch.setattr(tri, "_PROBED", {})
    monkeypatch.setattr(tri, "_probe", lambda device, *a: calls.append(str(device)) or False)
    assert not tri.available(torch.device("cuda")) and not tri.available(torch.device("cuda:0"))
    assert calls == ["cuda:0"]


def test_each_kernel_variant_is_probed_before_it_is_used(monkeypatch):
    """Every (device, dtype, padded region count) is its own compiled kernel: each is compiled
    and run once by the probe (with the run's dtype and region count), so one that does not
    compile falls back before the work instead of failing in the middle of a fit."""
    from delssome_norms.model import _triton as tri

    monkeypatch.delenv("DELSSOME_NORMS_NO_TRITON", raising=False)
    monkeypatch.setattr(tri, "triton", object())  # the check needs only "Triton is installed"
    monkeypatch.setattr(tri, "_PROBED", {})
    calls = []
    ok = {torch.float32: True, torch.float64: False}  # say the float64 variant does not compile
    monkeypatch.setattr(tri, "_probe", lambda d, dt, n: calls.append((str(d), dt, n)) or ok[dt])
    cuda = torch.device("cuda", 0)
    assert tri.available(cuda, torch.float32, 68) and tri.available(cuda, torch.float32, 100)
    assert not tri.available(cuda, torch.float64, 68)
    assert tri.available(cuda, torch.float32, 40) and tri.available(cuda, torch.float32, 33)
    # 68 and 100 regions share BLOCK 128, 40 and 33 share BLOCK 64: one probe each
    assert calls == [("cuda:0", torch.float32, 68), ("cuda:0", torch.float64, 68),
                     ("cuda:0", torch.float32, 40)]  # fmt: skip
    from delssome_norms.model.integrate import _choose_engine

    assert _choose_engine("auto", cuda, 68, torch.float32) == "triton"
    assert _choose_engine("auto", cuda, 68, torch.float64) == "torch"  # the variant that failed
    with pytest.raises(InvalidInputError, match="'triton' engine needs"):
        _choose_engine("triton", cuda, 68, torch.float64)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_cuda_triton_kernel_matches_the_cpu_kernel(template_sc, dtype):
    from model_helpers import random_params

    from delssome_norms.model import SimulationTiming, simulate
    from delssome_norms.model import _triton as tri

    T = SimulationTiming(
        tr=0.72, scan_length=28.8, dt=0.005, burn_in=1.44, fcd_window=5, warmup_steps=300
    )
    params = random_params(np.random.default_rng(1), 4, 68, stable=True)
    gpu = simulate(params, template_sc, T, n_dup=3, seed=9, device="cuda", dtype=dtype)
    cpu = simulate(params, template_sc, T, n_dup=3, seed=9, dtype=dtype, engine="kernel")
    assert tri.available(torch.device("cuda")) and gpu.valid.all()
    tol = 1e-9 if dtype == torch.float64 else 2e-3
    bold_err = (gpu.bold.cpu() - cpu.bold).abs().max() / cpu.bold.abs().max()
    assert bold_err < tol, bold_err
    ei_err = ((gpu.ei_ratio.cpu() - cpu.ei_ratio) / cpu.ei_ratio).abs().max()
    assert ei_err < tol, ei_err
