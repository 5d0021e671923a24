"""The simulation dtype, not the inputs' dtype, sets the precision of a simulation."""

from __future__ import annotations

import numpy as np
import torch
from model_helpers import random_params

from delssome_norms.model import PFICParams, SimulationTiming, scale_sc, simulate
from delssome_norms.model.batch import prepare_batch
from delssome_norms.model.constants import PFIC_CONSTANTS

TIMING = SimulationTiming(
    tr=0.06, scan_length=0.72, dt=0.005, burn_in=0.12, fcd_window=3, warmup_steps=12
)


def _inputs():
    rng = np.random.default_rng(3)
    n = 6
    sc = rng.random((n, n))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0.0)
    p = random_params(rng, 2, n, stable=True)
    # values that float32 holds exactly: float32 tensors and float64 arrays are the same numbers
    exact = PFICParams(*(np.asarray(x, dtype=np.float32).astype(np.float64) for x in p))
    as_f32 = PFICParams(*(torch.tensor(x, dtype=torch.float32) for x in exact))
    return exact, as_f32, scale_sc(sc)


def test_float32_tensors_give_a_float64_simulation_its_full_precision() -> None:
    """float32 parameter tensors hold exact values; a float64 simulation of them must form its
    coefficients (wEE J_NMDA, wEI J_NMDA, G J_NMDA, sigma sqrt(dt)) in float64, as the FIC solve
    does, not in float32 (which is off by float32 rounding, ~5e-8 here)."""
    exact, as_f32, sc = _inputs()
    a = prepare_batch(exact, sc, TIMING.dt, 2, "cpu", torch.float64)
    b = prepare_batch(as_f32, sc, TIMING.dt, 2, "cpu", torch.float64)
    for name in ("wee_j", "wei_j", "w_ie", "g_j", "noise", "sc"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype == torch.float64
        assert torch.equal(x, y), name
    ra = simulate(exact, sc, TIMING, n_dup=2, seed=5, dtype=torch.float64, engine="torch")
    rb = simulate(as_f32, sc, TIMING, n_dup=2, seed=5, dtype=torch.float64, engine="torch")
    assert ra.valid.all() and ra.bold.dtype == rb.bold.dtype == torch.float64
    assert torch.equal(ra.bold, rb.bold) and torch.equal(ra.ei_ratio, rb.ei_ratio)


def test_coefficients_are_the_float64_values_rounded_once() -> None:
    """Whatever the inputs' dtype, each coefficient of a float64 simulation is its float64
    value (float32 simulations keep the inputs' dtype: they reproduce the packaged reference
    simulations bit for bit, ``tests/datasets/test_reference_slow.py``)."""
    dtype = torch.float64
    exact, as_f32, sc = _inputs()
    p = prepare_batch(as_f32, sc, TIMING.dt, 1, "cpu", dtype)
    j = PFIC_CONSTANTS.J_NMDA
    expected = torch.as_tensor(exact.wEE * j).to(dtype)
    assert p.wee_j.dtype == dtype and torch.equal(p.wee_j, expected)
    expected = torch.as_tensor(exact.sigma * np.sqrt(TIMING.dt)).to(dtype)
    assert torch.equal(p.noise, expected)
    q = prepare_batch(exact, sc, TIMING.dt, 1, "cpu", dtype)
    for name in ("wee_j", "wei_j", "w_ie", "g_j", "noise"):
        assert torch.equal(getattr(p, name), getattr(q, name)), name
