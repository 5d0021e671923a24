"""Rate function and feedback inhibition control (FIC) of the pFIC model (docs/science.md §2).

FIC (Deco et al. 2014; Zhang et al. 2024) fixes the recurrent inhibitory weight ``w_IE`` of every
region so that the noise-free fixed point has ``r_E = 3 Hz``. :func:`solve_fic` solves the
per-region inhibitory fixed point for all regions of all parameter sets at once with a vectorised
Newton iteration (the equation is monotone, so Newton from the reference start converges in a
handful of iterations) and checks convergence.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError
from delssome_norms.model.constants import PFIC_CONSTANTS, PFICConstants
from delssome_norms.model.tensors import numeric_tensor

_SMALL = 1e-6
"""|a x - b| below which the rate function uses its series expansion (removable singularity)."""


def rate(x: Tensor, a: float, b: float, d: float) -> Tensor:
    """Population firing rate ``H(x) = (a x − b) / (1 − exp(−d (a x − b)))`` [Hz].

    The removable singularity at ``a x = b`` (limit ``1 / d``) is replaced by its first-order
    expansion ``1/d + (a x − b)/2``; elsewhere ``1 − exp(−d y)`` is computed as ``−expm1(−d y)``.

    Parameters
    ----------
    x : Tensor
        Input current [nA], any shape.
    a, b, d : float
        Gain [nC⁻¹], threshold [Hz] and curvature [s].

    Returns
    -------
    Tensor
        Firing rate [Hz], same shape as ``x``.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([125.0 / 310.0], dtype=torch.float64)
    >>> round(float(rate(x, 310.0, 125.0, 0.16)[0]), 9)  # the limit 1 / d at a x = b
    6.25
    """
    x = x if isinstance(x, Tensor) else torch.from_numpy(np.array(x, dtype=np.float64))
    y = a * x - b
    small = y.abs() < _SMALL
    safe = torch.where(small, torch.ones_like(y), y)
    return torch.where(small, 1.0 / d + 0.5 * y, safe / (-torch.expm1(-d * safe)))


def rate_derivative(x: Tensor, a: float, b: float, d: float) -> Tensor:
    """Derivative ``dH/dx`` of :func:`rate` [Hz/nA], same shape as ``x``."""
    x = x if isinstance(x, Tensor) else torch.from_numpy(np.array(x, dtype=np.float64))
    y = a * x - b
    small = y.abs() < _SMALL
    safe = torch.where(small, torch.ones_like(y), y)
    e = torch.exp(-d * safe)
    den = -torch.expm1(-d * safe)
    dh_dy = (den - d * safe * e) / (den * den)
    return a * torch.where(small, torch.full_like(y, 0.5), dh_dy)


def fixed_point_s_e(const: PFICConstants = PFIC_CONSTANTS) -> float:
    """Excitatory gating ``S_E*`` at the FIC fixed point (≈ 0.1612849115).

    Closed-form solution of ``S_E / (tau_E gamma_kin (1 − S_E)) = r_target``.
    """
    k = const.target_rate * const.tau_E * const.gamma_kin
    return k / (1.0 + k)


def fixed_point_i_e(const: PFICConstants = PFIC_CONSTANTS, tol: float = 1e-14) -> float:
    """Excitatory input current ``I_E*`` with ``H_E(I_E*) = r_target`` (≈ 0.3765333620) [nA].

    Newton's method from 0.3772259651, the reference code's starting guess (``H_E`` there is
    3.063 Hz, so it is not the root).
    """
    x = torch.tensor([0.3772259651], dtype=torch.float64)
    for _ in range(100):
        f = rate(x, const.a_E, const.b_E, const.d_E) - const.target_rate
        step = f / rate_derivative(x, const.a_E, const.b_E, const.d_E)
        x = x - step
        if abs(float(step[0])) < tol:
            break
    return float(x[0])


class FICSolution(NamedTuple):
    """Result of :func:`solve_fic`.

    Attributes
    ----------
    w_ie : Tensor of shape (B, N)
        Inhibitory-to-excitatory weight per region; NaN where the solve did not converge.
    s_i : Tensor of shape (B, N)
        Inhibitory gating ``S_I*`` at the fixed point.
    i_i : Tensor of shape (B, N)
        Inhibitory input current ``I_I*`` at the fixed point [nA].
    converged : Tensor of shape (B,), bool
        Whether every region of the parameter set met the tolerance.
    s_e : float
        ``S_E*``, the same for every region.
    i_e : float
        ``I_E*`` [nA], the same for every region.
    """

    w_ie: Tensor
    s_i: Tensor
    i_i: Tensor
    converged: Tensor
    s_e: float
    i_e: float


def as_parameter_tensors(wEE, wEI, G, sc) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``wEE, wEI`` (B, N), ``G`` (B,) and ``sc`` as float64 tensors on ``wEI``'s device.

    Accepts numpy arrays and nested lists as well as tensors, and one parameter set given as
    1-D ``wEE``/``wEI`` with a scalar ``G`` (made a batch of one). Tensors keep their device.
    """

    def tensor(x: Any, name: str) -> Tensor:
        return numeric_tensor(x, name).to(torch.float64)

    wEE, wEI, G, sc = tensor(wEE, "wEE"), tensor(wEI, "wEI"), tensor(G, "G"), tensor(sc, "sc")
    if wEE.ndim == 1 and wEI.ndim == 1:  # one parameter set
        wEE, wEI, G = wEE[None], wEI[None], G.reshape(1)
    G = G.reshape(-1) if G.ndim == 0 else G
    if wEE.ndim != 2 or wEE.shape != wEI.shape or G.shape != wEE.shape[:1]:
        raise InvalidInputError(
            f"expected wEE and wEI of shape (B, N) and G of shape (B,), got {tuple(wEE.shape)}, "
            f"{tuple(wEI.shape)} and {tuple(G.shape)}",
            "parameters",
        )
    n = wEE.shape[1]
    if sc.shape[-2:] != (n, n) or sc.ndim not in (2, 3):
        raise InvalidInputError(f"sc must be ({n}, {n}) or (B, {n}, {n}), got {tuple(sc.shape)}", "sc")
    if sc.ndim == 3 and sc.shape[0] not in (1, wEE.shape[0]):
        raise InvalidInputError(
            f"sc holds {sc.shape[0]} matrices for {wEE.shape[0]} parameter set(s); give one "
            f"({n}, {n}) matrix or one per set",
            "sc",
        )
    device = wEI.device
    return wEE.to(device), wEI, G.to(device), sc.to(device)


def solve_fic(
    wEE: Tensor,
    wEI: Tensor,
    G: Tensor,
    sc: Tensor,
    const: PFICConstants = PFIC_CONSTANTS,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> FICSolution:
    """Solve the FIC condition for every region of every parameter set at once.

    The inhibitory fixed point solves ``g(I) = I − W_I I0 − J_NMDA wEI S_E* + tau_I H_I(I) = 0``
    (``g' = 1 + tau_I H_I' > 1``), by Newton's method from ``I = 0.2963858`` on the whole (B, N)
    array, in float64. Then ``S_I* = tau_I H_I(I_I*)`` and

    ``w_IE = (W_E I0 + wEE J_NMDA S_E* + G J_NMDA (SC · S_E* 1) − I_E*) / S_I*``.

    Parameters
    ----------
    wEE, wEI : Tensor of shape (B, N)
        Recurrent excitatory and excitatory-to-inhibitory weights.
    G : Tensor of shape (B,)
        Global coupling.
    sc : Tensor of shape (N, N) or (B, N, N)
        Structural connectivity, already scaled (see :func:`scale_sc`); row ``i`` holds the inputs
        of region ``i``.
    const : PFICConstants
        Model constants.
    tol : float
        Convergence tolerance on ``|g(I)|`` [nA].
    max_iter : int
        Newton iterations before giving up.

    Returns
    -------
    FICSolution
        All tensors float64 on the device of ``wEI``; ``converged`` is False (and ``w_ie`` NaN)
        for a set with a NaN/inf input or without a finite solution.
    """
    c = const
    wEE, wEI, G, sc = as_parameter_tensors(wEE, wEI, G, sc)
    s_e = fixed_point_s_e(c)
    i_e = fixed_point_i_e(c)
    offset = c.W_I * c.I0 + c.J_NMDA * wEI * s_e
    x = torch.full_like(wEI, 0.296385800197336)
    for _ in range(max_iter):
        g = x - offset + c.tau_I * rate(x, c.a_I, c.b_I, c.d_I)
        dg = 1.0 + c.tau_I * rate_derivative(x, c.a_I, c.b_I, c.d_I)
        x = x - g / dg
    residual = (x - offset + c.tau_I * rate(x, c.a_I, c.b_I, c.d_I)).abs()
    ok = torch.isfinite(residual) & (residual < tol)
    s_i = c.tau_I * rate(x, c.a_I, c.b_I, c.d_I)
    sc_rows = sc.sum(dim=-1)  # (N,) or (B, N): SC · 1
    drive = c.W_E * c.I0 + wEE * c.J_NMDA * s_e + G[:, None] * c.J_NMDA * sc_rows * s_e - i_e
    w_ie = drive / s_i
    # a NaN/inf wEE, G or SC leaves the Newton solve (wEI only) converged but w_IE undefined
    converged = (ok & torch.isfinite(w_ie)).all(dim=-1)
    w_ie = torch.where(converged[:, None], w_ie, torch.full_like(w_ie, math.nan))
    return FICSolution(w_ie=w_ie, s_i=s_i, i_i=x, converged=converged, s_e=s_e, i_e=i_e)
