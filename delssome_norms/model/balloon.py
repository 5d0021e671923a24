"""Balloon–Windkessel hemodynamic model: neural activity (S_E) → BOLD (docs/science.md §2).

Small pure functions in the style of a derivative function plus an explicit state record: the
integrator advances :class:`BalloonState` with :func:`balloon_step` (noise-free Euler, same ``dt`` as
the neural model) and reads the signal with :func:`bold_signal`. :func:`balloon_steady_state` gives
the analytic fixed point for a constant input, used by the tests.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError
from delssome_norms.model.constants import BALLOON_CONSTANTS, BalloonConstants, balloon_derived


class BalloonState(NamedTuple):
    """Hemodynamic state, each a tensor of the same shape (e.g. (M, N)).

    Attributes
    ----------
    z : Tensor
        Vasodilatory signal [1/s].
    f : Tensor
        Normalised blood inflow.
    v : Tensor
        Normalised blood volume.
    q : Tensor
        Normalised deoxyhaemoglobin content.
    """

    z: Tensor
    f: Tensor
    v: Tensor
    q: Tensor


def balloon_init(like: Tensor) -> BalloonState:
    """Resting state ``z = 0, f = v = q = 1`` with the shape, dtype and device of ``like``."""
    return BalloonState(
        torch.zeros_like(like), torch.ones_like(like), torch.ones_like(like), torch.ones_like(like)
    )


def balloon_dfun(
    state: BalloonState, s: Tensor, const: BalloonConstants = BALLOON_CONSTANTS
) -> BalloonState:
    """Time derivatives of the hemodynamic state driven by the synaptic gating ``s`` (= S_E).

    ``dz = s − kappa z − gamma_h (f − 1)``, ``df = z``, ``dv = (f − v^(1/alpha)) / tau_h``,
    ``dq = (f / rho (1 − (1 − rho)^(1/f)) − q v^(1/alpha − 1)) / tau_h`` (per second).
    """
    c = const
    z, f, v, q = state
    inv_alpha = 1.0 / c.alpha
    v_pow = torch.exp(torch.log(v) * inv_alpha)  # v^(1/alpha)
    extraction = -torch.expm1(math.log(1.0 - c.rho) / f)  # 1 − (1 − rho)^(1/f)
    dz = s - c.kappa * z - c.gamma_h * (f - 1.0)
    df = z
    dv = (f - v_pow) / c.tau_h
    dq = (f * extraction / c.rho - q * v_pow / v) / c.tau_h
    return BalloonState(dz, df, dv, dq)


def balloon_step(
    state: BalloonState, s: Tensor, dt: float, const: BalloonConstants = BALLOON_CONSTANTS
) -> BalloonState:
    """One Euler step of length ``dt`` [s]; returns the new state (inputs are not modified)."""
    d = balloon_dfun(state, s, const)
    return BalloonState(*(x + dt * dx for x, dx in zip(state, d)))


def bold_signal(state: BalloonState, const: BalloonConstants = BALLOON_CONSTANTS) -> Tensor:
    """BOLD signal [% signal change] ``100/rho V0 (k1 (1 − q) + k2 (1 − q/v) + k3 (1 − v))``."""
    d = balloon_derived(const)
    _, _, v, q = state
    return d.scale * (d.k1 * (1.0 - q) + d.k2 * (1.0 - q / v) + d.k3 * (1.0 - v))


def balloon_steady_state(s: float, const: BalloonConstants = BALLOON_CONSTANTS) -> BalloonState:
    """Analytic fixed point for a constant input ``s`` (floats in a float64 0-d tensor each).

    ``z = 0``, ``f = 1 + s / gamma_h``, ``v = f^alpha``,
    ``q = f^alpha (1 − (1 − rho)^(1/f)) / rho``.

    Examples
    --------
    >>> st = balloon_steady_state(0.0)
    >>> [round(float(x), 12) for x in st]
    [0.0, 1.0, 1.0, 1.0]

    Raises
    ------
    InvalidInputError
        ``s`` is not a finite number, or so negative that the inflow ``f = 1 + s / gamma_h`` is
        not positive (no steady state).
    """
    c = const
    try:
        s = float(s)
    except (TypeError, ValueError):
        raise InvalidInputError(f"s must be a number, got {s!r}", "s") from None
    if not math.isfinite(s) or 1.0 + s / c.gamma_h <= 0:
        raise InvalidInputError(
            f"s must be finite and > -gamma_h = {-c.gamma_h:g} (positive inflow), got {s!r}", "s"
        )
    f = 1.0 + s / c.gamma_h
    v = f**c.alpha
    q = v * (1.0 - (1.0 - c.rho) ** (1.0 / f)) / c.rho
    as_t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    return BalloonState(as_t(0.0), as_t(f), as_t(v), as_t(q))
