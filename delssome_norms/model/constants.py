"""Constants of the pFIC mean-field model and of the Balloon–Windkessel BOLD model (docs/science.md §2).

Both are :class:`~typing.NamedTuple` records with module-level defaults, so a study can run the
model with other values (``PFIC_CONSTANTS._replace(tau_E=0.2)``) without touching the integrator.
Values are those of Deco et al. 2014 / Zhang et al. 2024 (pFIC) as used by Zeng et al. 2026.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class PFICConstants(NamedTuple):
    """Fixed constants of the pFIC model (Zhang et al. 2024; units in brackets).

    Attributes
    ----------
    I0 : float
        External input current [nA].
    W_E, W_I : float
        Scaling of ``I0`` for the excitatory / inhibitory population.
    J_NMDA : float
        Excitatory synaptic coupling [nA].
    gamma_kin : float
        Kinetic parameter of excitatory gating.
    a_E, b_E, d_E : float
        Excitatory rate-function parameters [nC⁻¹, Hz, s].
    tau_E : float
        Excitatory synaptic time constant [s].
    a_I, b_I, d_I, tau_I : float
        The same for the inhibitory population.
    target_rate : float
        Excitatory firing rate the feedback inhibition control enforces at the fixed point [Hz].
    s_i_init : float
        Initial inhibitory gating variable used by the reference code.
    """

    I0: float = 0.382
    W_E: float = 1.0
    W_I: float = 0.7
    J_NMDA: float = 0.15
    gamma_kin: float = 0.641
    a_E: float = 310.0
    b_E: float = 125.0
    d_E: float = 0.16
    tau_E: float = 0.1
    a_I: float = 615.0
    b_I: float = 177.0
    d_I: float = 0.087
    tau_I: float = 0.01
    target_rate: float = 3.0
    s_i_init: float = 0.1433408985


PFIC_CONSTANTS = PFICConstants()
"""Default pFIC constants (docs/science.md §2)."""

FIC_RATE_BAND = (2.7, 3.3)
"""Band of time-averaged excitatory rates [Hz] of the FIC regime around the 3-Hz target
(Zhang et al. 2024's rate gate): a simulation whose regions leave it is not in that regime."""


class BalloonConstants(NamedTuple):
    """Balloon–Windkessel hemodynamic constants (Friston et al. 2003; Deco et al. 2014).

    Attributes
    ----------
    V0 : float
        Resting blood volume fraction.
    kappa : float
        Rate of signal decay [1/s].
    gamma_h : float
        Rate of flow-dependent elimination [1/s].
    tau_h : float
        Hemodynamic transit time [s].
    alpha : float
        Grubb's exponent.
    rho : float
        Resting oxygen extraction fraction.
    B0 : float
        Magnetic field strength [T].
    TE : float
        Echo time [s].
    r0 : float
        Slope of the intravascular relaxation rate [1/s].
    epsilon : float
        Ratio of intra- to extravascular signal.
    """

    V0: float = 0.02
    kappa: float = 0.65
    gamma_h: float = 0.41
    tau_h: float = 0.98
    alpha: float = 0.33
    rho: float = 0.34
    B0: float = 3.0
    TE: float = 0.0331
    r0: float = 110.0
    epsilon: float = 0.47


BALLOON_CONSTANTS = BalloonConstants()
"""Default Balloon–Windkessel constants (docs/science.md §2)."""


class BalloonDerived(NamedTuple):
    """Derived Balloon–Windkessel coefficients, computed once by :func:`balloon_derived`."""

    k1: float
    k2: float
    k3: float
    scale: float
    """``100 / rho * V0``: converts the bracket of the BOLD equation to percent signal change."""
    inv_alpha: float
    log_one_minus_rho: float


def balloon_derived(const: BalloonConstants = BALLOON_CONSTANTS) -> BalloonDerived:
    """Compute k1, k2, k3 and the other coefficients the BOLD step needs.

    Examples
    --------
    >>> d = balloon_derived()
    >>> round(d.k1, 6), round(d.k3, 2)
    (4.103417, 0.53)
    """
    c = const
    return BalloonDerived(
        k1=4.3 * 28.265 * c.B0 * c.TE * c.rho,
        k2=c.epsilon * c.r0 * c.TE * c.rho,
        k3=1.0 - c.epsilon,
        scale=100.0 / c.rho * c.V0,
        inv_alpha=1.0 / c.alpha,
        log_one_minus_rho=math.log(1.0 - c.rho),
    )
