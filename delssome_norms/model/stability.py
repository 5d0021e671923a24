"""Linear stability of the FIC fixed point: is a parameter set in the regime the model assumes?

FIC (SCIENCE.md §2) places the noise-free fixed point of every region at r_E = 3 Hz, whatever the
parameters; it does not make that fixed point *stable*. When it is unstable the simulated state
leaves it (to a low- or high-activity state), the time-averaged r_E is far from 3 Hz and S_E/S_I
no longer describes the FIC regime: fits that land there give E/I maps unrelated to (often
anti-correlated with) those of the in-regime fits of the same subject.

At the fixed point (``S_E*``, ``I_E*``, ``r_E* = 3 Hz`` shared by all regions; ``I_I*``, ``S_I*``,
``w_IE`` per region) the Jacobian of the drift in (S_E, S_I) is

    [[A, -diag(c w_IE)], [diag(J wEI H_I'), -diag(1/tau_I + H_I')]]

with ``c = gamma (1 - S_E*) H_E'(I_E*)``, ``A = diag(-1/tau_E - gamma r_E* + c J wEE) + c J G SC``
and ``J = J_NMDA``. The inhibitory block is diagonal and fast (tau_I = 10 ms), so the Schur complement

    M = A - diag(c w_IE J wEI H_I' / (1/tau_I + H_I'))

(N x N, symmetric for a symmetric SC) satisfies ``det(Jacobian) = det(M) prod(-(1/tau_I + H_I'))``:
a real eigenvalue of the full system crosses zero exactly when one of ``M`` does. The largest
eigenvalue of ``M`` [1/s] is the stability margin used here: negative means stable.

Measured on 300 train candidates of 10 synthetic subjects (144-s simulations, dt 0.005 s, 2 noise
duplicates): every candidate whose simulated r_E stayed in 2.7-3.3 Hz in all regions had a margin
<= -0.16 /s; of the 240 that left the band, 233 had a positive margin (the other 7: margins -0.22
... -0.01 /s, noise-driven escapes near the bifurcation); the margin's sign agreed with that of the
full 2N x 2N Jacobian's largest real part for all 300.

Written here because no library computes it: it is this model's algebra, vectorised over
parameter sets (one batched ``eigvalsh`` or Cholesky factorisation).
"""

from __future__ import annotations

import torch
from torch import Tensor

from delssome_norms.model.constants import PFIC_CONSTANTS, PFICConstants
from delssome_norms.model.fic import rate, rate_derivative, solve_fic

NEWTON_ITERATIONS = 12
"""Newton iterations of the FIC solve here (the default 50 only for sets not converged by then)."""


def fic_reduced_jacobian(
    wEE: Tensor,
    wEI: Tensor,
    G: Tensor,
    sc: Tensor,
    const: PFICConstants = PFIC_CONSTANTS,
) -> Tensor:
    """Schur complement ``M`` (B, N, N) of the Jacobian at the FIC fixed point [1/s], float64.

    Parameters
    ----------
    wEE, wEI : Tensor of shape (B, N)
    G : Tensor of shape (B,)
    sc : Tensor of shape (N, N) or (B, N, N)
        Scaled structural connectivity (:func:`~delssome_norms.model.scale_sc`); row ``i`` holds
        the inputs of region ``i``.
    const : PFICConstants

    Returns
    -------
    Tensor of shape (B, N, N)
        NaN everywhere for a parameter set whose FIC solve did not converge.
    """
    c_ = const
    # Newton converges in <= 6 iterations for wEI in 0-6 (checked against the default 50); the
    # rare set that has not converged is solved again with the default budget
    fic = solve_fic(wEE, wEI, G, sc, const, max_iter=NEWTON_ITERATIONS)
    converged = bool(fic.converged.all())
    if not converged:
        fic = solve_fic(wEE, wEI, G, sc, const)
        converged = bool(fic.converged.all())
    wEE = wEE.to(torch.float64)
    wEI = wEI.to(torch.float64)
    G = G.to(torch.float64)
    sc = sc.to(device=wEE.device, dtype=torch.float64)
    i_e = torch.tensor(fic.i_e, dtype=torch.float64, device=wEE.device)
    r_e = rate(i_e, c_.a_E, c_.b_E, c_.d_E)
    c = c_.gamma_kin * (1.0 - fic.s_e) * rate_derivative(i_e, c_.a_E, c_.b_E, c_.d_E)
    dh_i = rate_derivative(fic.i_i, c_.a_I, c_.b_I, c_.d_I)
    diag = (
        -1.0 / c_.tau_E
        - c_.gamma_kin * r_e
        + c * c_.J_NMDA * wEE
        - c * fic.w_ie * c_.J_NMDA * wEI * dh_i / (1.0 / c_.tau_I + dh_i)
    )
    m = (c * c_.J_NMDA * G)[:, None, None] * sc
    m.diagonal(dim1=-2, dim2=-1).add_(diag)
    if not converged:
        m[~fic.converged] = float("nan")
    return m


def _symmetric(sc: Tensor, given: bool | None) -> bool:
    if given is not None:
        return given
    return bool(torch.allclose(sc, sc.transpose(-1, -2), rtol=1e-10, atol=1e-12))


def _leading_eigenvalue(m: Tensor, symmetric: bool) -> Tensor:
    """Largest eigenvalue (real part) of each finite matrix of ``m`` (K, N, N)."""
    if symmetric:
        return torch.linalg.eigvalsh(m)[:, -1]
    return torch.linalg.eigvals(m).real.max(dim=-1).values


def fic_stability_margin(
    wEE: Tensor,
    wEI: Tensor,
    G: Tensor,
    sc: Tensor,
    const: PFICConstants = PFIC_CONSTANTS,
    symmetric: bool | None = None,
) -> Tensor:
    """Largest (real part of an) eigenvalue of :func:`fic_reduced_jacobian` [1/s], shape (B,).

    Negative: the FIC fixed point is linearly stable. NaN where the FIC solve did not converge.
    ``symmetric`` says whether ``sc`` is symmetric (checked when None).
    """
    m = fic_reduced_jacobian(wEE, wEI, G, sc, const)
    ok = torch.isfinite(m).all(dim=(-1, -2))
    out = torch.full(m.shape[:1], float("nan"), dtype=torch.float64, device=m.device)
    if ok.any():
        out[ok] = _leading_eigenvalue(m[ok], _symmetric(sc, symmetric))
    return out


def fic_fixed_point_stable(
    wEE: Tensor,
    wEI: Tensor,
    G: Tensor,
    sc: Tensor,
    const: PFICConstants = PFIC_CONSTANTS,
    symmetric: bool | None = None,
) -> tuple[Tensor, Tensor]:
    """Which parameter sets have a linearly stable FIC fixed point, and by how much others miss.

    ``sc`` is (N, N) or one SC per set (B, N, N); ``symmetric`` says whether it is symmetric
    (checked when None).

    Returns
    -------
    stable : Tensor of bool, shape (B,)
        False also where the FIC solve did not converge.
    margin : Tensor of shape (B,)
        Stability margin [1/s] of the unstable sets (:func:`fic_stability_margin`), 0 for the
        stable ones (which, for a symmetric SC, are identified by one Cholesky factorisation of
        ``-M``, much cheaper than an eigen-decomposition), NaN where FIC did not converge.
    """
    m = fic_reduced_jacobian(wEE, wEI, G, sc, const)
    finite = torch.isfinite(m).all(dim=(-1, -2))
    symmetric = _symmetric(sc, symmetric)
    lead = torch.full(m.shape[:1], float("nan"), dtype=torch.float64, device=m.device)
    if symmetric:
        _, info = torch.linalg.cholesky_ex(-torch.nan_to_num(m))
        stable = finite & (info == 0)
    else:
        if finite.any():
            lead[finite] = _leading_eigenvalue(m[finite], symmetric=False)
        stable = finite & (lead < 0)
    unstable = finite & ~stable
    if symmetric and unstable.any():
        lead[unstable] = _leading_eigenvalue(m[unstable], symmetric=True)
    margin = torch.where(finite, torch.zeros_like(lead), lead)
    margin[unstable] = lead[unstable].clamp_min(1e-9)
    return stable, margin
