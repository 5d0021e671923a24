"""Linear stability of the FIC fixed point: is a parameter set in the regime the model assumes?

FIC (docs/science.md §2) places the noise-free fixed point of every region at r_E = 3 Hz, whatever the
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

How well the margin's sign predicts escape from the FIC regime in simulation is measured on
synthetic fits (figures: docs/science.md, "Measured checks").

Written here because no library computes it: it is this model's algebra, vectorised over
parameter sets (one batched ``eigvalsh`` or Cholesky factorisation).
"""

from __future__ import annotations

import torch
from torch import Tensor

from delssome_norms.model.constants import PFIC_CONSTANTS, PFICConstants
from delssome_norms.model.fic import as_parameter_tensors, rate, rate_derivative, solve_fic

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
    m, _ = _reduced_jacobian(*as_parameter_tensors(wEE, wEI, G, sc), const, sign=1.0)
    return m


def _reduced_jacobian(
    wEE: Tensor, wEI: Tensor, G: Tensor, sc: Tensor, const: PFICConstants, sign: float
) -> tuple[Tensor, Tensor]:
    """``sign * M`` and which sets have a finite ``M``, from its factors.

    ``M = s SC + diag(d)`` with a scalar ``s`` and a vector ``d`` per set, so ``M`` is finite
    exactly where ``s`` and ``d`` are (and the FIC solve converged): the stability gate checks
    that on (B, N) numbers instead of scanning the (B, N, N) matrices, and builds ``-M`` for its
    Cholesky factorisation directly instead of negating a copy.
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
    scale = c * c_.J_NMDA * G
    m = (sign * scale)[:, None, None] * sc
    m.diagonal(dim1=-2, dim2=-1).add_(diag, alpha=sign)
    finite = torch.isfinite(scale) & torch.isfinite(diag).all(dim=-1)
    if not converged:
        solved = torch.as_tensor(fic.converged, device=m.device)
        finite &= solved
        m[~solved] = float("nan")
    return m, finite


def fic_jacobian(
    wEE: Tensor,
    wEI: Tensor,
    G: Tensor,
    sc: Tensor,
    const: PFICConstants = PFIC_CONSTANTS,
) -> Tensor:
    """Full Jacobian (B, 2N, 2N) of the noise-free drift in ``(S_E, S_I)`` at the FIC fixed point.

    With ``k = (1 - S_E*) gamma H_E'(I_E*)`` and ``J = J_NMDA`` (docs/science.md §2):
    ``dS_E'/dS_E = -1/tau_E - gamma r* + k (wEE J + G J SC)``, ``dS_E'/dS_I = -k w_IE``,
    ``dS_I'/dS_E = H_I'(I_I*) wEI J``, ``dS_I'/dS_I = -1/tau_I - H_I'(I_I*)``; state order
    ``(S_E of the N regions, S_I of the N regions)``. :func:`fic_reduced_jacobian` is its Schur
    complement on the inhibitory block.

    Parameters
    ----------
    wEE, wEI : Tensor of shape (B, N)
    G : Tensor of shape (B,)
    sc : Tensor of shape (N, N) or (B, N, N)
        Scaled structural connectivity (row ``i`` holds the inputs of region ``i``).
    const : PFICConstants

    Returns
    -------
    Tensor of shape (B, 2N, 2N) [1/s], float64.
    """
    c = const
    wEE, wEI, G, sc = as_parameter_tensors(wEE, wEI, G, sc)
    fic = solve_fic(wEE, wEI, G, sc, const)
    i_e = torch.tensor([fic.i_e], dtype=torch.float64, device=wEE.device)
    dh_e = float(rate_derivative(i_e, c.a_E, c.b_E, c.d_E)[0])
    dh_i = rate_derivative(fic.i_i, c.a_I, c.b_I, c.d_I)
    k = (1.0 - fic.s_e) * c.gamma_kin * dh_e
    b, n = wEE.shape
    jac = torch.zeros((b, 2 * n, 2 * n), dtype=torch.float64, device=wEE.device)
    idx = torch.arange(n, device=wEE.device)
    jac[:, :n, :n] = k * c.J_NMDA * G[:, None, None] * sc
    jac[:, idx, idx] += -1.0 / c.tau_E - c.gamma_kin * c.target_rate + k * c.J_NMDA * wEE
    jac[:, idx, n + idx] = -k * fic.w_ie
    jac[:, n + idx, idx] = dh_i * c.J_NMDA * wEI
    jac[:, n + idx, n + idx] = -1.0 / c.tau_I - dh_i
    return jac


def _symmetric(sc: Tensor, given: bool | None) -> bool:
    if given is not None:
        return given
    return bool(torch.allclose(sc, sc.transpose(-1, -2), rtol=1e-10, atol=1e-12))


def tridiagonalize(m: Tensor) -> tuple[Tensor, Tensor]:
    """Householder reduction of symmetric matrices to tridiagonal form (same eigenvalues).

    Parameters
    ----------
    m : Tensor of shape (B, N, N)
        Symmetric matrices (float64 recommended).

    Returns
    -------
    diag : Tensor of shape (B, N)
    off : Tensor of shape (B, N - 1)
        Diagonal and off-diagonal of ``Q^T m Q`` (the off-diagonal's signs are arbitrary).
        Batched over B with N - 2 rank-2 updates, so it runs as a few hundred device kernels
        whatever B (cuSOLVER's ``syevd`` runs once per matrix for N > 32).
    """
    a = m.clone()
    n = a.shape[-1]
    off = []
    for k in range(n - 2):
        x = a[:, k + 1 :, k]
        norm = torch.linalg.vector_norm(x, dim=-1)
        sign = torch.where(x[:, 0] >= 0, 1.0, -1.0).to(a.dtype)
        alpha = -sign * norm  # H x = alpha e1, sign chosen against cancellation in v0
        v = x.clone()
        v[:, 0] -= alpha
        vv = (v * v).sum(-1)
        tau = torch.where(vv > 0, 2.0 / torch.where(vv > 0, vv, 1.0), 0.0)
        sub = a[:, k + 1 :, k + 1 :]
        p = tau[:, None] * (sub @ v[..., None])[..., 0]
        w = p - (0.5 * tau * (p * v).sum(-1))[:, None] * v
        sub -= v[:, :, None] * w[:, None, :] + w[:, :, None] * v[:, None, :]
        off.append(alpha)
    if n >= 2:
        off.append(a[:, n - 1, n - 2])
    diag = a.diagonal(dim1=-2, dim2=-1).clone()
    return diag, torch.stack(off, dim=-1) if off else a.new_zeros((a.shape[0], 0))


def tridiagonal_largest_eigenvalue(
    diag: Tensor, off: Tensor, points: int = 255, max_passes: int = 12
) -> Tensor:
    """Largest eigenvalue of symmetric tridiagonal matrices by Sturm-count multisection.

    Each pass evaluates the Sturm count (eigenvalues below x, from the signs of the LDL^T pivots
    of ``T - x I``) at ``points`` abscissae of the current bracket of every matrix at once and
    keeps the sub-interval where the count reaches N: the bracket shrinks ``points + 1``-fold
    per pass, from the Gershgorin interval down to a few ulps of the answer.

    Parameters
    ----------
    diag : Tensor of shape (B, N)
    off : Tensor of shape (B, N - 1)
    points : int
        Abscissae per pass.
    max_passes : int
        Upper bound on passes (float64 needs ~7 with 255 points).

    Returns
    -------
    Tensor of shape (B,)
    """
    n = diag.shape[-1]
    e2 = off * off
    radius = torch.zeros_like(diag)
    radius[:, :-1] += off.abs()
    radius[:, 1:] += off.abs()
    lo = (diag - radius).min(dim=-1).values
    hi = (diag + radius).max(dim=-1).values
    scale = torch.maximum(lo.abs(), hi.abs()).clamp_min(torch.finfo(diag.dtype).tiny)
    e2max = e2.amax(dim=-1) if e2.shape[-1] else torch.ones_like(lo)
    pivmin = torch.finfo(diag.dtype).tiny * e2max.clamp_min(1.0)[:, None]
    frac = torch.arange(1, points + 1, dtype=diag.dtype, device=diag.device) / (points + 1)
    eps = torch.finfo(diag.dtype).eps
    for _ in range(max_passes):
        x = lo[:, None] + (hi - lo)[:, None] * frac  # (B, S)
        q = diag[:, :1] - x
        q = torch.where(q.abs() < pivmin, -pivmin, q)
        count = (q < 0).to(torch.int32)
        for i in range(1, n):
            q = (diag[:, i : i + 1] - x) - e2[:, i - 1 : i] / q
            q = torch.where(q.abs() < pivmin, -pivmin, q)
            count += q < 0
        below = count < n  # the largest eigenvalue is above x
        n_below = below.sum(dim=-1)  # abscissae below it (counts are monotone in x)
        idx = (n_below - 1).clamp_min(0)
        new_lo = torch.where(n_below > 0, x.gather(1, idx[:, None])[:, 0], lo)
        idx = n_below.clamp_max(points - 1)
        new_hi = torch.where(n_below < points, x.gather(1, idx[:, None])[:, 0], hi)
        lo, hi = new_lo, new_hi
        if bool(((hi - lo) <= 4 * eps * scale).all()):
            break
    return 0.5 * (lo + hi)


def _leading_eigenvalue(m: Tensor, symmetric: bool, method: str = "auto") -> Tensor:
    """Largest eigenvalue (real part) of each finite matrix of ``m`` (K, N, N).

    Symmetric matrices: ``eigvalsh`` on CPU; on other devices (``method="auto"``) a batched
    Householder tridiagonalisation and Sturm multisection (:func:`tridiagonal_largest_eigenvalue`),
    which agree with ``eigvalsh`` to ~1e-13 relative but run as one batched computation
    (cuSOLVER solves a batch of 68 x 68 ``eigvalsh`` problems one matrix at a time).
    """
    if symmetric:
        if method == "eigvalsh" or (method == "auto" and m.device.type == "cpu"):
            return torch.linalg.eigvalsh(m)[:, -1]
        return tridiagonal_largest_eigenvalue(*tridiagonalize(m))
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
    wEE, wEI, G, sc = as_parameter_tensors(wEE, wEI, G, sc)
    m, _ = _reduced_jacobian(wEE, wEI, G, sc, const, sign=1.0)
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
    with_margin: bool = True,
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
        With ``with_margin=False`` (symmetric SC) the unstable sets' margins are not computed
        and are NaN.
    """
    wEE, wEI, G, sc = as_parameter_tensors(wEE, wEI, G, sc)
    symmetric = _symmetric(sc, symmetric)
    neg_m, finite = _reduced_jacobian(wEE, wEI, G, sc, const, sign=-1.0)  # -M: Cholesky wants it
    lead = torch.full(neg_m.shape[:1], float("nan"), dtype=torch.float64, device=neg_m.device)
    if symmetric:
        if not bool(finite.all()):
            neg_m[~finite] = 0.0  # fails the factorisation; reported through ``finite``
        _, info = torch.linalg.cholesky_ex(neg_m)
        stable = finite & (info == 0)
    else:
        if finite.any():
            lead[finite] = _leading_eigenvalue(-neg_m[finite], symmetric=False)
        stable = finite & (lead < 0)
    unstable = finite & ~stable
    if symmetric and unstable.any() and with_margin:
        lead[unstable] = _leading_eigenvalue(-neg_m[unstable], symmetric=True)
    margin = torch.where(finite, torch.zeros_like(lead), lead)
    margin[unstable] = lead[unstable].clamp_min(1e-9)
    return stable, margin
