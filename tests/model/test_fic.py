"""FIC: the solved w_IE makes (S_E*, S_I*) an exact fixed point at r_E = 3 Hz (docs/science.md §2)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import random_params, rate_numpy
from scipy.optimize import brentq

from delssome_norms.model import (
    PFIC_CONSTANTS,
    SimulationTiming,
    fixed_point_i_e,
    fixed_point_s_e,
    rate,
    simulate,
    solve_fic,
)
from delssome_norms.model.fic import rate_derivative
from delssome_norms.model.integrate import initial_neural_state, pfic_dfun, prepare_batch, sc_coupling

C = PFIC_CONSTANTS

_h = rate_numpy


def test_fixed_point_constants_solve_their_equations():
    s_e = fixed_point_s_e()
    # 3 Hz with tau_E = 0.1 s and gamma = 0.641 gives 0.1612849 (0.1641205 would be 3.0631 Hz).
    assert s_e / (C.tau_E * C.gamma_kin * (1 - s_e)) == pytest.approx(3.0, abs=1e-12)
    assert s_e == pytest.approx(0.19230 / 1.19230, rel=1e-12)
    assert _h(fixed_point_i_e(), C.a_E, C.b_E, C.d_E) == pytest.approx(3.0, abs=1e-9)


def test_rate_is_smooth_through_the_removable_singularity():
    x0 = C.b_E / C.a_E
    x = torch.tensor([x0 - 1e-5, x0 - 1e-9, x0, x0 + 1e-9, x0 + 1e-5], dtype=torch.float64)
    h = rate(x, C.a_E, C.b_E, C.d_E)
    assert torch.isfinite(h).all()
    assert h[2].item() == pytest.approx(1.0 / C.d_E, rel=1e-6)
    assert torch.all(torch.diff(h) > 0)
    far = torch.tensor([0.2, 0.5], dtype=torch.float64)
    np.testing.assert_allclose(
        rate(far, C.a_E, C.b_E, C.d_E).numpy(), _h(far.numpy(), C.a_E, C.b_E, C.d_E)
    )
    eps = 1e-7
    fd = (rate(far + eps, C.a_I, C.b_I, C.d_I) - rate(far - eps, C.a_I, C.b_I, C.d_I)) / (2 * eps)
    np.testing.assert_allclose(rate_derivative(far, C.a_I, C.b_I, C.d_I).numpy(), fd.numpy(), rtol=1e-6)


def test_vectorised_newton_matches_a_scalar_root_finder():
    rng = np.random.default_rng(3)
    wee, wei = rng.uniform(1, 10, (3, 5)), rng.uniform(0, 5, (3, 5))
    sol = solve_fic(
        torch.tensor(wee), torch.tensor(wei), torch.tensor([0.5, 1.0, 2.0]), torch.zeros(5, 5)
    )
    assert sol.converged.all()
    s_e = fixed_point_s_e()
    for b in range(3):
        for i in range(5):

            def g(x, w=wei[b, i]):
                return x - C.W_I * C.I0 - C.J_NMDA * w * s_e + C.tau_I * _h(x, C.a_I, C.b_I, C.d_I)

            root = brentq(g, 0.0, 1.0, xtol=1e-15)
            assert sol.i_i[b, i].item() == pytest.approx(root, abs=1e-12)


def test_fic_fixed_point_is_exact_for_every_random_in_bounds_set(template_sc):
    rng = np.random.default_rng(0)
    params = random_params(rng, 40, 68)
    p = prepare_batch(params, template_sc, 0.005, 1, "cpu", torch.float64)
    assert p.fic.converged.all()
    x = initial_neural_state(p, "fixed_point")
    dx, r_e = pfic_dfun(x, sc_coupling(x[0], p), p)
    assert dx.abs().max().item() < 1e-10
    assert (r_e - 3.0).abs().max().item() < 1e-9


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_noise_free_run_stays_at_3hz(template_sc, dtype):
    rng = np.random.default_rng(1)
    params = random_params(rng, 6, 68, stable=True, sigma=0.0)
    timing = SimulationTiming(
        tr=0.72, scan_length=4.32, dt=0.005, burn_in=0.72, fcd_window=3, warmup_steps=200
    )
    res = simulate(
        params, template_sc, timing, n_dup=1, seed=0, dtype=dtype, initial_state="fixed_point"
    )
    assert res.valid.all()
    assert (res.r_e.double() - 3.0).abs().max().item() < 0.01
    assert (res.s_e.double() - fixed_point_s_e()).abs().max().item() < 1e-3
