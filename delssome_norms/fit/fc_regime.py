"""Whether an empirical FC lies where the pFIC model can take it (global signal regression & co).

Real FC often comes from pipelines the model cannot reproduce: global signal regression (GSR;
XCP-D's 36P, many fMRIPrep + nilearn set-ups) centres the correlations, heavy smoothing or
low-pass filtering raises them all. :func:`check_fc_regime` names such an FC before a fit
(``validate``, ``prepare``, ``estimate-ei``, ``cohort``: an
:class:`~delssome_norms.errors.InputWarning`, not an error) and the fit-quality verdict flags the
fit with ``fc_outside_model_range`` (:mod:`delssome_norms.fit.quality`). Only the mean of the
upper triangle decides; the share of negative pairs is reported beside it. Cost: one pass over
the N (N - 1) / 2 pairs (~0.1 ms at N = 68).

Measured by ``bench/fc_regime.py`` (its JSON was not kept; rerun it to check: 96 parameter sets drawn
inside the search bounds with a stable FIC fixed point, G weak (0-0.5), mid and strong (2-3),
half shifted close to the stability boundary; default DK68 template SC and maps; one 432-s scan
each at TR 0.72 s, dt 0.005 s):

* **In the FIC regime the model's mean FC spans -0.002 to 0.41**, with 51 % to 1 % negative
  pairs (seed 0; seed 1: -0.002 to 0.37). Below 0.03 (65 of the 96 sets: all weak-G sets, and
  stronger G far from the boundary) the regions are practically uncoupled: the FC is sampling
  noise (SD of the pairs 0.088-0.098, 38-51 % negative, FCD-CDF median 0.00-0.04, correlation
  with the SC -0.01 to 0.39) whatever the parameters, while their mean E/I spans 1.8-3.8, so
  such FC does not constrain the E/I. The 31 coupled sets (mean FC 0.03-0.41) correlate
  0.34-0.59 with the SC. No set of either seed left the FIC regime.
* **GSR** applied to the model's own BOLD moves every set, coupled or not, to mean FC -0.015 to
  0.002 (both seeds; about -1 / (N - 1): the residuals of a regression on the regional mean sum
  to zero over the regions) with 49-59 % negative pairs.
* The packaged synthetic subjects (68) have mean FC 0.10-0.26 (1-13 % negative pairs); the
  synthetic truths of ``bench/ei_calibration.py`` 0.049-0.326 (screened at >= 0.04 as "far
  below any real cohort").

Hence :data:`MEAN_FC_LOW` (0.03): below every synthetic truth and packaged subject, above every
GSR result and where the model is uncoupled; :data:`MEAN_FC_HIGH` (0.5): above the regime's
0.41 and the 0.45 at which the reference code's wEI bound saturates
(:func:`~delssome_norms.fit.parameterisation.wei_range`), below the > 0.7 expected of heavily
smoothed or low-pass filtered data (not measured here). The share of negative pairs is
reported, not used: at 432 s the uncoupled model has as many as GSR data (and the share
depends on the scan length). A fit to GSR data can end near its own cost floor (the uncoupled
model reproduces noise-like FC): in a small-budget fit (10 generations x 20, 432 s) of a
model-made subject after GSR the test cost was 0.07 above the floor, so ``cost_above_floor``
(0.25) did not flag it.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np

from delssome_norms.errors import InputWarning

MEAN_FC_LOW = 0.03
"""Mean upper-triangle FC below which the model only reaches it uncoupled (GSR, noise) [r]."""
MEAN_FC_HIGH = 0.5
"""Mean upper-triangle FC above which the model's FIC regime does not reach (smoothing) [r]."""
MODEL_MEAN_FC = (0.03, 0.4)
"""Mean FC of the coupled model in its FIC regime (measured; for the messages) [r]."""


class FCRegimeStats(NamedTuple):
    """Summary of an FC's upper triangle.

    Attributes
    ----------
    mean_fc : float
        Mean correlation of the region pairs.
    negative_fraction : float
        Share of pairs with a negative correlation, in [0, 1].
    """

    mean_fc: float
    negative_fraction: float


def fc_regime_stats(fc: np.ndarray) -> FCRegimeStats:
    """Mean and share of negative values of the upper triangle of ``fc`` (N, N), N >= 2."""
    fc = np.asarray(fc, dtype=np.float64)
    iu = np.triu_indices(fc.shape[0], 1)
    pairs = fc[iu]
    if pairs.size == 0:
        return FCRegimeStats(math.nan, math.nan)
    return FCRegimeStats(float(pairs.mean()), float(np.mean(pairs < 0)))


def mean_fc_outside(mean_fc: float) -> str | None:
    """``"low"`` below :data:`MEAN_FC_LOW`, ``"high"`` above :data:`MEAN_FC_HIGH`, else None
    (also for NaN)."""
    if mean_fc < MEAN_FC_LOW:
        return "low"
    if mean_fc > MEAN_FC_HIGH:
        return "high"
    return None


def check_fc_regime(fc: np.ndarray) -> str | None:
    """What is wrong with an FC the model cannot take, as one sentence; None if it can.

    Parameters
    ----------
    fc : ndarray of shape (N, N)
        Empirical FC (checked: finite, symmetric).

    Returns
    -------
    str or None
        The mean FC, the share of negative pairs, the likely cause and what to do.

    Examples
    --------
    >>> fc = np.full((4, 4), 0.3); np.fill_diagonal(fc, 1.0)
    >>> check_fc_regime(fc) is None
    True
    >>> fc[0, 1] = fc[1, 0] = fc[2, 3] = fc[3, 2] = -0.3
    >>> fc[0, 2] = fc[2, 0] = fc[0, 3] = fc[3, 0] = 0.0
    >>> check_fc_regime(fc)[:51]
    'FC has mean 0.00 and 33 % negative region pairs: gl'
    """
    mean, neg = fc_regime_stats(fc)
    side = mean_fc_outside(mean)
    if side is None:
        return None
    lo, hi = MODEL_MEAN_FC
    shown = round(mean, 2) + 0.0  # no "-0.00"
    head = f"FC has mean {shown:.2f} and {100 * neg:.0f} % negative region pairs"
    if side == "low":
        return (
            f"{head}: global signal regression, or regions dominated by noise? The pFIC model "
            f"with positive SC produces a mean FC below {MEAN_FC_LOW:g} only with practically "
            f"uncoupled regions, whose FC is noise that does not constrain the E/I (coupled, its "
            f"mean FC is {lo:g}-{hi:g}, as in FC without GSR); its E/I fitted to these data is "
            "not interpretable. Use FC computed without global signal regression"
        )
    return (
        f"{head}: heavy smoothing or low-pass filtering, task data, or motion? The pFIC model "
        f"with positive SC reaches a mean FC of at most about {hi:g} in its FIC regime, far "
        f"below these data's {shown:.2f}; its E/I fitted to these data is not interpretable. Use "
        "resting-state FC with the usual denoising"
    )


def warn_fc_regime(fc: np.ndarray, source: str, stacklevel: int = 2) -> str | None:
    """Issue :func:`check_fc_regime`'s sentence as an InputWarning naming ``source`` (the
    subject or its files); returns the sentence (None, and no warning, for an FC in range)."""
    problem = check_fc_regime(fc)
    if problem is not None:
        warnings.warn(f"{source}: {problem}", InputWarning, stacklevel=stacklevel + 1)
    return problem
