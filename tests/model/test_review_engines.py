"""Review of the simulation engines where no GPU runs: device placement, odd shapes, agreement.

The CUDA paths are checked with a fake ``torch.cuda`` that models what the real one does with
the current device (Triton launches on ``torch.cuda.current_device()``; entering a stream makes
its device current; ``torch.cuda.graph`` without a stream captures on one process-wide stream made
on the first current device). The Triton kernel itself runs under its interpreter (subprocess:
``TRITON_INTERPRET=1`` must be set before Triton is imported).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from delssome_norms.errors import InvalidInputError
from delssome_norms.model import SimulationTiming, scale_sc, simulate
from delssome_norms.model.integrate import prepare_batch

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from model_helpers import random_params  # noqa: E402

TIMING = SimulationTiming(
    tr=0.06, scan_length=0.36, dt=0.005, burn_in=0.12, fcd_window=3, warmup_steps=12
)


def _sc(rng: np.random.Generator, n: int) -> np.ndarray:
    sc = rng.random((n, n))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    return scale_sc(sc)


class _FakeCuda:
    """The current-device bookkeeping of ``torch.cuda``, without a GPU."""

    def __init__(self) -> None:
        self.current = 0
        self.default_capture_stream = None
        self.captures: list[int] = []  # device of the capture stream of each capture
        self.replays: list[int] = []  # current device at each replay

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        fake = self

        @contextlib.contextmanager
        def device(dev):
            idx = dev.index if isinstance(dev, torch.device) else int(dev)
            idx = fake.current if idx is None else idx
            prev, fake.current = fake.current, idx
            try:
                yield
            finally:
                fake.current = prev

        class Stream:
            def __init__(self, dev=None):
                idx = None if dev is None else torch.device(dev).index
                self.device = torch.device("cuda", fake.current if idx is None else idx)

            def wait_stream(self, other):
                pass

        @contextlib.contextmanager
        def stream(s):
            with device(s.device):  # entering a stream makes its device current
                yield

        class CUDAGraph:
            def replay(self):
                fake.replays.append(fake.current)

        @contextlib.contextmanager
        def graph(g, pool=None, stream=None, capture_error_mode="global"):
            if stream is None:  # torch's one default capture stream, made on the first device
                if fake.default_capture_stream is None:
                    fake.default_capture_stream = Stream()
                stream = fake.default_capture_stream
            fake.captures.append(stream.device.index)
            with device(stream.device):
                yield

        for name, value in {
            "device": device,
            "Stream": Stream,
            "stream": stream,
            "CUDAGraph": CUDAGraph,
            "graph": graph,
            "current_stream": lambda dev=None: Stream(dev),
            "current_device": lambda: fake.current,
        }.items():
            monkeypatch.setattr(torch.cuda, name, value)


# --------------------------------------------------------------------------------------------- #
# Device placement on a machine with several GPUs
# --------------------------------------------------------------------------------------------- #
def test_device_guard_makes_the_simulation_device_current(monkeypatch):
    from delssome_norms.model.devices import device_guard

    fake = _FakeCuda()
    fake.install(monkeypatch)
    with device_guard(torch.device("cuda", 1)):
        assert torch.cuda.current_device() == 1
    assert torch.cuda.current_device() == 0
    with device_guard(torch.device("cpu")):  # never touches CUDA
        assert torch.cuda.current_device() == 0


def test_triton_launches_run_with_the_tensors_device_current(monkeypatch):
    """Triton launches on the current CUDA device: every launch must be inside the guard."""
    _triton = pytest.importorskip("delssome_norms.model._triton")
    if _triton.triton is None:
        pytest.skip("needs the 'triton' package")
    rng = np.random.default_rng(0)
    p = prepare_batch(
        random_params(rng, 2, 3, stable=True), _sc(rng, 3), TIMING.dt, 1, "cpu", torch.float32
    )
    guarded: list[torch.device] = []
    launches: list[bool] = []

    @contextlib.contextmanager
    def guard(device):
        guarded.append(device)
        yield
        guarded.pop()

    class FakeKernel:
        def __getitem__(self, grid):
            def launch(*args, **kwargs):
                launches.append(guarded == [p.wee_j.device])

            return launch

    monkeypatch.setattr(_triton, "device_guard", guard)
    monkeypatch.setattr(_triton, "_pfic_chunk", FakeKernel())
    _triton.run_triton(p, TIMING, seed=0, chunk_steps=20)
    assert len(launches) >= 2 and all(launches)


def test_triton_probe_of_plain_cuda_is_for_the_current_device(monkeypatch):
    """``"cuda"`` is the current device (torch.cuda.set_device(1)), not always cuda:0."""
    _triton = pytest.importorskip("delssome_norms.model._triton")
    if _triton.triton is None:
        pytest.skip("needs the 'triton' package")
    monkeypatch.delenv("DELSSOME_NORMS_NO_TRITON", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    probed = []
    monkeypatch.setattr(_triton, "_probe", lambda dev, *a: probed.append(dev) or True)
    monkeypatch.setattr(_triton, "_PROBED", {})
    assert _triton.available(torch.device("cuda"))
    assert probed == [torch.device("cuda", 1)]


def test_cuda_graph_is_captured_on_the_simulation_device(monkeypatch):
    """A block for tensors on cuda:1 is warmed up, captured and replayed with cuda:1 current."""
    from delssome_norms.model.graphed import _Runner

    fake = _FakeCuda()
    fake.install(monkeypatch)
    fake.default_capture_stream = torch.cuda.Stream()  # an earlier graph on cuda:0 made it
    ran_on: list[int] = []
    runner = _Runner(lambda: ran_on.append(torch.cuda.current_device()), True, torch.device("cuda", 1))
    for _ in range(3):
        runner()
    assert ran_on == [1, 1]  # the warm-up run and the capture
    assert fake.captures == [1]
    assert fake.replays == [1, 1]
    assert torch.cuda.current_device() == 0  # restored


# --------------------------------------------------------------------------------------------- #
# Shapes at the edges
# --------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize("engine", ["torch", "kernel", "graphed"])
def test_an_empty_batch_gives_empty_results(engine):
    rng = np.random.default_rng(1)
    params = random_params(rng, 0, 4, stable=True)
    sc = _sc(rng, 4)
    if engine == "graphed":  # the CUDA default engine, run eagerly
        from delssome_norms.model.graphed import run_torch_graphed

        p = prepare_batch(params, sc, TIMING.dt, 2, "cpu", torch.float32)
        bold, sums, finite = run_torch_graphed(p, TIMING, 0, capture=False)
        assert bold.shape == (TIMING.n_frames, 0, 4) and sums.shape == (3, 0, 4)
        assert finite.shape == (0,)
        return
    if engine == "kernel":
        from delssome_norms.model import _kernel

        if not _kernel.available():
            pytest.skip("no C++ compiler")
    res = simulate(params, sc, TIMING, n_dup=2, engine=engine)
    assert res.bold.shape == (0, 2, TIMING.n_frames, 4)
    assert res.s_e.shape == (0, 2, 4) and res.valid.shape == (0, 2)


def test_a_network_without_regions_is_refused():
    rng = np.random.default_rng(2)
    with pytest.raises(InvalidInputError, match="N >= 1"):
        simulate(random_params(rng, 1, 0), np.zeros((0, 0)), TIMING, engine="torch")


def test_cuda_without_cuda_and_bad_device_strings_are_refused():
    rng = np.random.default_rng(3)
    params, sc = random_params(rng, 1, 3, stable=True), _sc(rng, 3)
    if not torch.cuda.is_available():
        for dev in ("cuda", "cuda:1", torch.device("cuda", 2)):
            with pytest.raises(InvalidInputError, match="CUDA is not available"):
                simulate(params, sc, TIMING, device=dev)
    for dev in ("gpu", "cuda:x", ""):
        with pytest.raises(InvalidInputError, match="unknown device"):
            simulate(params, sc, TIMING, device=dev)
    with pytest.raises(InvalidInputError, match="not supported"):
        simulate(params, sc, TIMING, device="meta")


# --------------------------------------------------------------------------------------------- #
# The Triton kernel under its interpreter: odd shapes against the CPU kernel and the torch engine
# --------------------------------------------------------------------------------------------- #
_SCRIPT = r"""
import json, sys
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from model_helpers import random_params
from delssome_norms.model import SimulationTiming, scale_sc, simulate

T = SimulationTiming(tr=0.06, scan_length=0.36, dt=0.005, burn_in=0.12, fcd_window=3, warmup_steps=12)
rng = np.random.default_rng(4)
def sc_of(n):
    sc = rng.random((n, n)); sc = sc + sc.T; np.fill_diagonal(sc, 0); return scale_sc(sc)
out = {}
# N = 3 (13 masked lanes of a 16-lane block), M = 3 (no block of simulations), n_dup = 3,
# float32 SC tensor with a float64 simulation, a seed with high bits set
params = random_params(rng, 1, 3, stable=True)
sc3 = torch.as_tensor(sc_of(3), dtype=torch.float32)
kw = dict(n_dup=3, seed=2**40 + 2**31 + 5, dtype=torch.float64)
a = simulate(params, sc3, T, engine="triton", **kw)
b = simulate(params, sc3, T, engine="kernel", **kw)
out["n3"] = [float((a.bold - b.bold).abs().max() / b.bold.abs().max()),
             float(((a.s_e - b.s_e) / b.s_e).abs().max()), bool(a.valid.all()), bool(b.valid.all())]
# duplicates draw different noise
out["dups_differ"] = float((a.bold[0, 0] - a.bold[0, 1]).abs().max())
# N = 20 (block of 32), B = 1, float32, batched SC of one set
params = random_params(rng, 1, 20, stable=True)
sc20 = sc_of(20)[None]
kw = dict(n_dup=1, seed=9, dtype=torch.float32)
a = simulate(params, sc20, T, engine="triton", **kw)
b = simulate(params, sc20, T, engine="kernel", **kw)
c = simulate(params, sc20, T, engine="torch", **kw)
out["n20"] = [float(((a.s_e - b.s_e) / b.s_e).abs().max()), float(((a.r_e - b.r_e) / b.r_e).abs().max()),
              bool(a.valid.all())]
# the torch engine draws other noise: time averages agree statistically only
out["n20_torch"] = [float(((a.s_e - c.s_e) / c.s_e).abs().max()),
                    float(((a.s_i - c.s_i) / c.s_i).abs().max())]
# N = 200 (the largest block, 256 lanes), float64
params = random_params(rng, 1, 200, stable=True)
sc200 = sc_of(200)
kw = dict(n_dup=1, seed=5, dtype=torch.float64)
a = simulate(params, sc200, T, engine="triton", **kw)
b = simulate(params, sc200, T, engine="kernel", **kw)
out["n200"] = [float((a.bold - b.bold).abs().max() / b.bold.abs().max()),
               float(((a.s_e - b.s_e) / b.s_e).abs().max()), bool(a.valid.all())]
# an empty batch
e = simulate(random_params(rng, 0, 5), sc_of(5), T, n_dup=2, engine="triton")
out["empty"] = list(e.bold.shape)
print("RESULT " + json.dumps(out))
"""


def test_interpreted_triton_kernel_on_odd_shapes(tmp_path):
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(HERE.parents[1]))
    script = tmp_path / "odd_shapes.py"
    script.write_text(_SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), str(HERE)], capture_output=True, text=True, env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT "))
    out = json.loads(line[len("RESULT ") :])
    bold, s_e, valid_a, valid_b = out["n3"]
    assert bold < 1e-10 and s_e < 1e-12 and valid_a and valid_b
    assert out["dups_differ"] > 1e-6
    s_e, r_e, valid = out["n20"]
    assert s_e < 1e-5 and r_e < 1e-4 and valid
    assert max(out["n20_torch"]) < 0.05  # sigma 0.005 over 72 steps: a few % at most
    bold, s_e, valid = out["n200"]
    assert bold < 1e-10 and s_e < 1e-12 and valid
    assert out["empty"] == [0, 2, TIMING.n_frames, 5]


def test_atlases_beyond_the_triton_limit_use_the_torch_engine_on_cuda(monkeypatch):
    from delssome_norms.model import _triton
    from delssome_norms.model.integrate import _choose_engine

    monkeypatch.setattr(_triton, "available", lambda device, *a: True)
    cuda1 = torch.device("cuda", 1)
    assert _choose_engine("auto", cuda1, _triton.MAX_REGIONS) == "triton"
    assert _choose_engine("auto", cuda1, _triton.MAX_REGIONS + 1) == "torch"
    with pytest.raises(InvalidInputError, match="at most"):
        _choose_engine("triton", cuda1, _triton.MAX_REGIONS + 1)
    with pytest.raises(InvalidInputError, match="CPU only"):
        _choose_engine("kernel", cuda1, 68)


def test_block_steps_reaches_the_cuda_graph_engine(monkeypatch):
    """``simulate(block_steps=...)`` on CUDA (torch engine, graphs) sizes the graphed blocks."""
    from delssome_norms.model import graphed, integrate

    rng = np.random.default_rng(5)
    params, sc = random_params(rng, 1, 3, stable=True), _sc(rng, 3)
    seen = {}
    real = graphed.run_torch_graphed

    def fake_graphed(p, timing, seed, const, balloon, **kwargs):
        seen.update(kwargs)
        return real(p, timing, seed, const, balloon, capture=False, **kwargs)

    cuda = torch.device("cuda", 1)  # the CUDA branch of simulate, run on CPU tensors
    monkeypatch.setattr(integrate, "check_device", lambda device: cuda)
    real_prepare = integrate.prepare_batch
    monkeypatch.setattr(
        integrate, "prepare_batch", lambda *a, **k: real_prepare(*a[:4], "cpu", *a[5:], **k)
    )
    monkeypatch.setattr(graphed, "run_torch_graphed", fake_graphed)
    res = simulate(params, sc, TIMING, n_dup=2, engine="torch", block_steps=24)
    assert seen["block_steps"] == 24
    assert res.bold.shape == (1, 2, TIMING.n_frames, 3) and bool(res.valid.all())
