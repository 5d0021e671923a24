"""Stability of the FIC fixed point: the Schur complement against a finite-difference Jacobian of the
model equations (written out here from docs/science.md §2), and against simulated rates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import rate_numpy

from delssome_norms.model import (
    PFIC_CONSTANTS,
    PFICParams,
    SimulationTiming,
    fic_fixed_point_stable,
    fic_reduced_jacobian,
    fic_stability_margin,
    simulate,
    solve_fic,
)

C = PFIC_CONSTANTS

_h = rate_numpy


def _drift(x, wee, wei, g, w_ie, sc):
    """dS_E/dt, dS_I/dt of docs/science.md §2 for the state x = [S_E, S_I] (2N,), numpy float64."""
    n = len(wee)
    s_e, s_i = x[:n], x[n:]
    i_e = C.W_E * C.I0 + wee * C.J_NMDA * s_e + g * C.J_NMDA * sc @ s_e - w_ie * s_i
    i_i = C.W_I * C.I0 + wei * C.J_NMDA * s_e - s_i
    ds_e = -s_e / C.tau_E + (1 - s_e) * C.gamma_kin * _h(i_e, C.a_E, C.b_E, C.d_E)
    ds_i = -s_i / C.tau_I + _h(i_i, C.a_I, C.b_I, C.d_I)
    return np.concatenate([ds_e, ds_i])


def _fd_jacobian(x, f, h=1e-7):
    cols = [(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(len(x))]
    return np.stack(cols, axis=1)


@pytest.fixture(scope="module")
def small_network():
    """Six regions, a symmetric SC scaled like the template, sets on both sides of the bifurcation."""
    rng = np.random.default_rng(3)
    n = 6
    sc = rng.random((n, n))
    sc = np.triu(sc, 1)
    sc = (sc + sc.T) * 0.02 / sc.max()
    b = 8
    wee = rng.uniform(1.0, 6.0, (b, n))
    wei = rng.uniform(1.5, 4.0, (b, n))
    g = rng.uniform(0.0, 3.0, b)
    return sc, wee, wei, g


def test_reduced_jacobian_is_schur_complement_of_the_model_jacobian(small_network):
    sc, wee, wei, g = small_network
    t = [torch.as_tensor(a) for a in (wee, wei, g, sc)]
    fic = solve_fic(*t)
    m = fic_reduced_jacobian(*t).numpy()
    margin = fic_stability_margin(*t).numpy()
    n = sc.shape[0]
    signs = set()
    for k in range(len(g)):
        x = np.concatenate([np.full(n, fic.s_e), fic.s_i[k].numpy()])
        f = lambda y, k=k: _drift(y, wee[k], wei[k], g[k], fic.w_ie[k].numpy(), sc)  # noqa: E731
        assert np.abs(f(x)).max() < 1e-6  # a fixed point
        jac = _fd_jacobian(x, f)
        jee, jei, jie, jii = jac[:n, :n], jac[:n, n:], jac[n:, :n], jac[n:, n:]
        assert np.abs(jii - np.diag(np.diag(jii))).max() < 1e-4  # inhibitory block is diagonal
        schur = jee - jei @ np.linalg.solve(jii, jie)
        np.testing.assert_allclose(m[k], schur, rtol=1e-5, atol=1e-4)
        lead = np.linalg.eigvals(jac).real.max()
        assert np.sign(lead) == np.sign(margin[k])
        signs.add(np.sign(lead))
    assert signs == {-1.0, 1.0}  # both stable and unstable sets were checked


def test_cholesky_gate_matches_eigenvalues(small_network, template_sc):
    sc, wee, wei, g = small_network
    t = [torch.as_tensor(a) for a in (wee, wei, g, sc)]
    stable, margin = fic_fixed_point_stable(*t)
    lead = fic_stability_margin(*t)
    np.testing.assert_array_equal(stable.numpy(), (lead < 0).numpy())
    np.testing.assert_allclose(margin[~stable].numpy(), lead[~stable].numpy(), rtol=1e-10)
    assert (margin[stable] == 0).all()
    # an asymmetric SC takes the general eigenvalue path and agrees with the reduced matrix
    asym = sc.copy()
    asym[0, 1] *= 1.5
    ta = [*t[:3], torch.as_tensor(asym)]
    m = fic_reduced_jacobian(*ta).numpy()
    stable_a, _ = fic_fixed_point_stable(*ta)
    np.testing.assert_array_equal(stable_a.numpy(), np.linalg.eigvals(m).real.max(axis=1) < 0)


def test_stable_fixed_point_keeps_rates_at_3_hz(template_sc):
    """Uniform sets on either side of the bifurcation: the stable one stays at r_E = 3 Hz, the
    unstable ones leave the 2.7–3.3 Hz band."""
    n = template_sc.shape[0]
    wee = torch.tensor([[3.0] * n, [4.6] * n, [5.0] * n], dtype=torch.float64)
    wei = torch.full((3, n), 2.0, dtype=torch.float64)
    g = torch.full((3,), 1.5, dtype=torch.float64)
    sc = torch.as_tensor(template_sc)
    stable, margin = fic_fixed_point_stable(wee, wei, g, sc)
    assert stable.tolist() == [True, False, False]
    assert (margin[1:] > 1.0).all()
    timing = SimulationTiming(
        tr=0.72, scan_length=14.4, dt=0.005, burn_in=0.72, fcd_window=5, warmup_steps=1000
    )
    params = PFICParams(wee, wei, torch.full((3, n), 0.005, dtype=torch.float64), g)
    r_e = simulate(params, sc, timing, n_dup=2, seed=0).r_e
    assert ((r_e[0] > 2.9) & (r_e[0] < 3.1)).all()
    for k in (1, 2):
        assert r_e[k].min() < 2.7


def test_batched_tridiagonal_eigenvalue_matches_eigvalsh(template_sc):
    """The device path of the gate's margin (Householder + Sturm multisection) = LAPACK eigvalsh,
    on random symmetric matrices (clustered and spread spectra) and on FIC Jacobians of the
    template SC, in float64 on CPU."""
    from delssome_norms.model.stability import (
        _leading_eigenvalue,
        tridiagonal_largest_eigenvalue,
        tridiagonalize,
    )

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(40, 68, 68, dtype=torch.float64, generator=gen)
    sym = a + a.transpose(1, 2)
    sym[:5] = torch.eye(68, dtype=torch.float64) * 3.0 + 1e-9 * sym[:5]  # clustered spectrum
    ref = torch.linalg.eigvalsh(sym)[:, -1]
    got = tridiagonal_largest_eigenvalue(*tridiagonalize(sym))
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=0, atol=1e-11 * ref.abs().max().item())
    d, e = tridiagonalize(sym)
    tri = torch.diag_embed(d) + torch.diag_embed(e, 1) + torch.diag_embed(e, -1)
    np.testing.assert_allclose(torch.linalg.eigvalsh(tri).numpy(), torch.linalg.eigvalsh(sym).numpy(),
                               atol=1e-11 * ref.abs().max().item())  # fmt: skip
    rng = np.random.default_rng(1)
    n = template_sc.shape[0]
    wee = torch.as_tensor(rng.uniform(1, 10, (60, n)))
    wei = torch.as_tensor(rng.uniform(0.5, 5, (60, n)))
    g = torch.as_tensor(rng.uniform(1, 10, 60))
    m = fic_reduced_jacobian(wee, wei, g, torch.as_tensor(template_sc))
    m = m[torch.isfinite(m).all(dim=(1, 2))]
    ref = _leading_eigenvalue(m, True, "eigvalsh")
    got = _leading_eigenvalue(m, True, "tridiagonal")
    np.testing.assert_allclose(got.numpy(), ref.numpy(), rtol=1e-12, atol=1e-12)


def test_stable_without_margin_skips_only_the_margin(small_network):
    sc, wee, wei, g = small_network
    t = [torch.as_tensor(x) for x in (wee, wei, g, sc)]
    stable, _ = fic_fixed_point_stable(*t)
    stable2, margin2 = fic_fixed_point_stable(*t, with_margin=False)
    np.testing.assert_array_equal(stable.numpy(), stable2.numpy())
    assert (margin2[stable2] == 0).all()


def test_full_jacobian_and_its_schur_complement_agree() -> None:
    """``fic_reduced_jacobian`` is the Schur complement of ``fic_jacobian`` on the S_I block."""
    from delssome_norms.model import fic_jacobian, fic_reduced_jacobian, scale_sc

    gen = torch.Generator().manual_seed(3)
    n = 6
    raw = torch.rand((n, n), generator=gen, dtype=torch.float64)
    sc = scale_sc((raw + raw.T).fill_diagonal_(0.0))
    wee = 1.0 + 2.0 * torch.rand((4, n), generator=gen, dtype=torch.float64)
    wei = 0.5 + 2.0 * torch.rand((4, n), generator=gen, dtype=torch.float64)
    g = 0.5 + torch.rand(4, generator=gen, dtype=torch.float64)
    jac = fic_jacobian(wee, wei, g, sc)
    assert jac.shape == (4, 2 * n, 2 * n) and jac.dtype == torch.float64
    a, b, c, d = jac[:, :n, :n], jac[:, :n, n:], jac[:, n:, :n], jac[:, n:, n:]
    assert torch.count_nonzero(d - torch.diag_embed(d.diagonal(dim1=-2, dim2=-1))) == 0
    schur = a - b @ torch.linalg.solve(d, c)
    torch.testing.assert_close(schur, fic_reduced_jacobian(wee, wei, g, sc), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_a_set_without_fic_solution_is_not_stable_and_leaves_the_others(small_network, asymmetric):
    sc, wee, wei, g = small_network
    if asymmetric:
        sc = sc.copy()
        sc[0, 1] *= 1.5
    bad_wei = wei.copy()
    bad_wei[2] = np.nan  # no FIC solution: reported, never stable, never a margin
    t = [torch.as_tensor(a) for a in (wee, bad_wei, g, sc)]
    stable, margin = fic_fixed_point_stable(*t)
    ref_stable, ref_margin = fic_fixed_point_stable(*(torch.as_tensor(a) for a in (wee, wei, g, sc)))
    assert not stable[2] and torch.isnan(margin[2])
    others = np.arange(len(g)) != 2
    np.testing.assert_array_equal(stable.numpy()[others], ref_stable.numpy()[others])
    np.testing.assert_allclose(margin.numpy()[others], ref_margin.numpy()[others], rtol=1e-12)
    assert ref_stable.any() and (~ref_stable).any()  # both sides of the boundary are compared
    assert torch.isnan(fic_reduced_jacobian(*t)[2]).all()
