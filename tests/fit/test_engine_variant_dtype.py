"""The engine (and so the noise) of a reproduced batch row is chosen for the run's dtype.

On a GPU where only some Triton kernel variants compile, the float64 run of ``auto`` uses the
torch engine, whose noise depends on the whole batch: the row must then be simulated in a batch of
the fit's size, not of ``row + 1`` (the Philox engines' rule).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delssome_norms.fit import reproduce
from delssome_norms.model import SimulationTiming, _triton


@pytest.fixture
def float32_only_triton(monkeypatch):
    """A pretend CUDA device whose Triton kernel compiles in float32 only."""
    from delssome_norms.model import devices

    monkeypatch.setattr(
        _triton, "available", lambda device, dtype=torch.float32, n=4: dtype == torch.float32
    )
    real = devices.check_device
    monkeypatch.setattr(
        devices, "check_device", lambda d, *a: torch.device("cuda") if str(d) == "cuda" else real(d, *a)
    )


def test_rows_and_engine_follow_the_dtype(float32_only_triton) -> None:
    assert reproduce.chosen_engine("auto", "cuda", 68, "float32") == "triton"
    assert reproduce.chosen_engine("auto", "cuda", 68, torch.float64) == "torch"
    assert reproduce.rows_to_simulate(2, 10, "auto", "cuda", 68, "float32") == 3  # Philox: row + 1
    assert reproduce.rows_to_simulate(2, 10, "auto", "cuda", 68, "float64") == 10  # the batch
    why = reproduce.engine_unavailable("triton", "cuda", 68, "float64")
    assert why is not None and "float64" in why
    assert reproduce.engine_unavailable("triton", "cuda", 68, "float32") is None


def test_simulate_batch_row_simulates_the_batch_the_dtype_needs(float32_only_triton, monkeypatch):
    import delssome_norms.model as model

    seen = {}

    class Stop(Exception):
        pass

    def fake_simulate(batch, sc, timing, **kw):
        seen["rows"], seen["dtype"] = len(np.asarray(batch.G)), kw.get("dtype")
        raise Stop

    monkeypatch.setattr(model, "simulate", fake_simulate)
    monkeypatch.setattr(reproduce, "check_rows_memory", lambda *a, **k: None)
    n = 68
    timing = SimulationTiming(tr=0.72, scan_length=60, dt=0.005, burn_in=1.44, fcd_window=5)
    params = (np.full(n, 3.0), np.full(n, 3.0), np.full(n, 0.005), 1.5)
    for dtype, rows in ((torch.float64, 10), (torch.float32, 3)):
        with pytest.raises(Stop):
            reproduce.simulate_batch_row(
                params, np.eye(n), timing, 2, 10, n_dup=3, seed=1, device="cuda", dtype=dtype,
                engine="auto",
            )  # fmt: skip
        assert seen["rows"] == rows, dtype
