"""Synthetic subjects with known parameters, for parameter-recovery checks.

:func:`synthetic_subject` simulates one BOLD "scan" from known coefficients and returns the FC and
FCD-CDF an estimation would get from it, plus the true E/I ratio (simulated with several noise
duplicates at the test step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from delssome_norms.fit.parameterisation import Parameterisation
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.model import PFICParams, SimulationTiming, bold_fc, bold_fcd_cdf, scale_sc, simulate
from delssome_norms.model.constants import FIC_RATE_BAND as FIC_RATE_BAND  # re-exported for bench/


@dataclass(frozen=True)
class SyntheticSubject:
    """A simulated subject and its ground truth.

    Attributes
    ----------
    inputs : SubjectInputs
        What an estimation sees (FC, FCD-CDF, SC, maps, timing).
    coeffs : ndarray of shape (n_coeffs,)
        True coefficients.
    ei_ratio : ndarray of shape (N,)
        True E/I ratio (mean over ``n_dup_truth`` duplicates at ``truth_timing``).
    rate_e : ndarray of shape (N,)
        True time-averaged excitatory rate [Hz], same simulation and averaging.
    """

    inputs: SubjectInputs
    coeffs: np.ndarray
    ei_ratio: np.ndarray
    rate_e: np.ndarray

    def rates_within(self, band: tuple[float, float] | None) -> bool:
        """Whether every region's true r_E lies in ``band`` [Hz] (always True for None)."""
        return band is None or bool(((self.rate_e >= band[0]) & (self.rate_e <= band[1])).all())


def synthetic_subject(
    subject_id: str,
    coeffs: np.ndarray,
    space: Parameterisation,
    sc: np.ndarray,
    scan_timing: SimulationTiming,
    truth_timing: SimulationTiming | None = None,
    seed: int = 0,
    n_dup_truth: int = 3,
    give_maps: bool = True,
) -> SyntheticSubject:
    """Simulate a subject from known coefficients.

    Parameters
    ----------
    subject_id : str
    coeffs : ndarray of shape (n_coeffs,)
        True coefficients (should be valid in ``space``).
    space : Parameterisation
        Design, maps and bounds used to turn the coefficients into regional parameters.
    sc : ndarray of shape (N, N)
        Unscaled SC.
    scan_timing : SimulationTiming
        Timing of the synthetic scan (TR, scan length, dt, burn-in, FCD window).
    truth_timing : SimulationTiming, optional
        Timing of the ground-truth E/I simulation (default: ``scan_timing``).
    seed : int
        Noise seed.
    n_dup_truth : int
        Duplicates averaged for the true E/I.
    give_maps : bool
        Hand the space's maps to the estimation (else it must fall back to the FC gradient).

    Returns
    -------
    SyntheticSubject
    """
    p = space.to_regional(np.asarray(coeffs)[None])
    params = PFICParams(p.wEE, p.wEI, p.sigma, p.G)
    scaled = scale_sc(np.asarray(sc, dtype=np.float64))
    scan = simulate(params, scaled, scan_timing, n_dup=1, seed=seed, dtype=torch.float64)
    if not bool(scan.valid.all()):
        raise ValueError(
            f"{subject_id}: the synthetic scan is not a valid simulation (it blew up, left the "
            "range of the gating variables, or its Euler step is too coarse for its wEI)"
        )
    bold = scan.bold[0, 0].numpy()
    fc = bold_fc(bold).numpy()
    cdf = bold_fcd_cdf(bold, scan_timing.fcd_window).numpy()
    truth = simulate(
        params,
        scaled,
        truth_timing or scan_timing,
        n_dup=n_dup_truth,
        seed=seed + 1,
        dtype=scan.bold.dtype,
    )
    inputs = SubjectInputs(
        subject_id=subject_id,
        fc=fc,
        fcd_cdf=cdf,
        tr=scan_timing.tr,
        scan_length=scan_timing.scan_length,
        sc=np.asarray(sc, dtype=np.float64),
        myelin=space.myelin if give_maps else None,
        gradient=space.gradient if give_maps else None,
        sources={"synthetic": f"seed {seed}"},
    )
    return SyntheticSubject(
        inputs=inputs,
        coeffs=np.asarray(coeffs, dtype=np.float64),
        ei_ratio=truth.ei_ratio[0].numpy(),
        rate_e=truth.r_e[0].mean(dim=0).numpy(),
    )
