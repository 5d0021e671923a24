"""Fit-quality verdict of one subject: a plain flag with its reasons (docs/science.md §5).

Every metric is recorded in ``run.json`` (``fit_quality.metrics``); a subject is flagged when any
reason applies. The thresholds are the module constants below (one place, each with its
rationale); ``bench/ei_calibration.py`` measures how well they separate good fits from poor ones.

Reasons
-------
``cost_above_floor``
    The winner's test cost exceeds the model's own floor at this scan length by more than
    ``COST_FLOOR_MARGIN``. The floor is the mean cost of one fresh-noise simulation of the
    winner against another (``profile`` stage): what a perfect model reaches against data of
    this length. A cost well above it means the model does not reproduce the subject's FC/FCD.
``gate_rejected_most``
    The stability gate (or the r_E gate) rejected more than ``GATE_REJECTED_MAX`` of the
    candidates of the last ``GATE_LAST_FRACTION`` of the train generations: the search ended
    pressed against the edge of the FIC regime.
``test_fallback``
    The validation winner had no valid test duplicate; the E/I comes from the next candidate.
``few_valid_duplicates``
    Fewer than ``n_dup`` valid test duplicates of the winner.
``rate_outside_fic``
    More than ``RATE_OUTSIDE_MAX`` of the regions have a time-averaged excitatory rate outside
    the FIC band (:data:`~delssome_norms.model.constants.FIC_RATE_BAND`, 2.7-3.3 Hz): the
    winner is not in the regime FIC places at 3 Hz (a fit without the stability gate can end
    at r_E 0.1 Hz), so its E/I describes another state of the model. Default fits of the
    benchmark's truths ran at 3.00-3.02 Hz in every region.
``pattern_ambiguous``
    A tested candidate whose test cost is within the noise tolerance of the winner's (one the
    data cannot rank below it: the near-optimal set of :mod:`~delssome_norms.fit.uncertainty`)
    has a regional E/I pattern that correlates with the winner's below ``PATTERN_R_MIN``
    (``near_optimal_pattern_r``): the data do not say which map mix is the subject's. Two
    patterns that both correlated 0.9 or more with the truth would correlate 0.62 or more with
    each other, so at least one of the two is a poor estimate, and the fit cannot tell which.
    In the benchmark this caught a default-design fit whose pattern was not recovered (r 0.11;
    its equally good tested candidates reached 0.93-1.00), and flagged 1 of 12 good
    surrogate-mode fits of new truths and 1 of 10 of the calibration's truths, whose winners
    happened to be the right mix (bench/results/ei_calibration_surrogate{_oos,}.json).
``interval_incomplete``
    Some region, or the mean, has no interval (``ei_interval.missing_regions``): its E/I or
    its spread was not finite, so part of the estimate cannot be trusted or compared.
``fc_outside_model_range``
    The empirical mean FC (``empirical_mean_fc``) is below
    :data:`~delssome_norms.fit.fc_regime.MEAN_FC_LOW` (0.03: global signal regression, noise)
    or above :data:`~delssome_norms.fit.fc_regime.MEAN_FC_HIGH` (0.5: heavy smoothing), where
    the coupled model in its FIC regime does not go (``bench/fc_regime.py``; docstring of
    :mod:`~delssome_norms.fit.fc_regime`). The fit may still reach its own cost floor (the
    uncoupled model reproduces noise-like FC), but its E/I is not interpretable.

Recorded but not reasons, because ``bench/ei_calibration.py`` found them uninformative: the
empirical mean FC inside the model's range (weakly coupled truths, mean FC 0.049-0.1, were
recovered as well as the others) and the fit's own spread of the mean (``spread_ratio_mean``,
hi / lo before the calibrated floor; it was as large for well-recovered truths as for poor ones,
so it would flag good fits). Their uncertainty is what the calibrated interval covers.

What the verdict cannot see: a wrong E/I *level*. Across the benchmark's truths the fitted mean
E/I does not follow the true one (docs/science.md, "Measured checks"), so nothing a fit computes
separates a level 30 % off from one 3 % off; that uncertainty is in every fit and is what the
interval's calibrated floor reports. Nor can it see a wrong map: a ``[1, gradient]`` fit with a
gradient unrelated to the true E/I hierarchy reaches the model's own cost floor while its pattern
is wrong. The verdict is for fits the model does not reproduce and searches that went wrong.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from delssome_norms.fit.fc_regime import fc_regime_stats, mean_fc_outside
from delssome_norms.model.constants import FIC_RATE_BAND

COST_FLOOR_MARGIN = 0.25
"""Test total cost above the self-floor that flags a fit [cost units; ~0.1 per loss term]."""
GATE_REJECTED_MAX = 0.5
"""Largest fraction of gate-rejected candidates in the last generations of a trusted search."""
RATE_OUTSIDE_MAX = 0.1
"""Largest fraction of regions whose mean r_E may leave the FIC band in a trusted fit."""
PATTERN_R_MIN = 0.5
"""Lowest Pearson r between the winner's regional E/I and an equally good tested candidate's
(below it the pattern is ambiguous; the issue's own bar for a poor pattern)."""
GATE_LAST_FRACTION = 0.2
"""Fraction of the train generations (at least one) whose gate rejections are counted."""

REASON_TEXT = {
    "cost_above_floor": "test cost far above the model's own floor",
    "gate_rejected_most": "the gate rejected most candidates of the last generations",
    "test_fallback": "the validation winner failed the test; the next candidate was used",
    "few_valid_duplicates": "few valid test duplicates",
    "rate_outside_fic": "the winner's excitatory rates leave the FIC regime (2.7-3.3 Hz)",
    "pattern_ambiguous": "equally good candidates disagree on the regional pattern (another "
    "mix of the maps fits as well)",
    "interval_incomplete": "some region or the mean has no interval (non-finite E/I or spread)",
    "fc_outside_model_range": "the empirical mean FC is outside the model's range (global signal "
    "regression? heavy smoothing?)",
}
"""One line per reason (warnings of ``collect`` and ``charts fit``)."""


def gate_rejected_fraction(records: Sequence[Any]) -> float:
    """Fraction of gate-rejected candidates over the last ``GATE_LAST_FRACTION`` of generations.

    Parameters
    ----------
    records : sequence of GenerationRecord
        A search's train generations (``violation`` > 0 marks a gated candidate).

    Returns
    -------
    float
        NaN when no generation recorded violations (no gate).
    """
    if not records:
        return math.nan
    last = max(1, math.ceil(GATE_LAST_FRACTION * len(records)))
    tail = [r for r in records[-last:] if r.violation is not None]
    if not tail:
        return math.nan
    gated = sum(int((np.asarray(r.violation) > 0).sum()) for r in tail)
    total = sum(len(r.violation) for r in tail)
    return gated / total if total else math.nan


def mean_fc(fc: np.ndarray) -> float:
    """Mean of the upper triangle of an FC matrix."""
    return fc_regime_stats(fc).mean_fc


FC_OUTSIDE = "fc_outside_model_range"
"""The reason for an empirical FC outside the model's range (:mod:`.fc_regime`)."""


def fc_outside(metrics: Any) -> bool:
    """Whether recorded metrics hold an ``empirical_mean_fc`` outside the model's range; also
    read by ``collect`` for results written before the rule existed."""
    value = metrics.get("empirical_mean_fc") if isinstance(metrics, Mapping) else None
    return isinstance(value, numbers.Real) and mean_fc_outside(float(value)) is not None


def assess(metrics: dict[str, Any]) -> dict[str, Any]:
    """The verdict from a subject's metrics (missing or NaN metrics raise no reason).

    Parameters
    ----------
    metrics : dict
        ``test_total``, ``self_floor_total``, ``gate_rejected_fraction``,
        ``test_fallback``, ``valid_test_duplicates``, ``n_dup``, ``rate_outside_fraction``,
        ``near_optimal_pattern_r``,
        ``interval_missing_regions``, ``interval_mean_missing``, ``empirical_mean_fc`` (Python
        or numpy numbers).

    Returns
    -------
    dict
        ``flagged`` (bool), ``reasons`` (list of str, keys of :data:`REASON_TEXT`),
        ``unchecked`` (reasons that could not be tested: ``cost_above_floor`` without the noise
        floor, which needs ``n_dup >= 2`` and the interval stage, or without a finite test cost,
        which needs every test duplicate of the winner to be valid), ``metrics`` (non-finite
        numbers as None, so that ``run.json`` stays strict JSON).
    """

    def num(key: str) -> float:
        v = metrics.get(key)
        # numpy scalars too (np.int64 and np.float32 are not int / float subclasses)
        return float(v) if isinstance(v, numbers.Real) else math.nan

    reasons = []
    if num("test_total") > num("self_floor_total") + COST_FLOOR_MARGIN:
        reasons.append("cost_above_floor")
    if num("gate_rejected_fraction") > GATE_REJECTED_MAX:
        reasons.append("gate_rejected_most")
    if metrics.get("test_fallback"):
        reasons.append("test_fallback")
    if num("valid_test_duplicates") < num("n_dup"):
        reasons.append("few_valid_duplicates")
    if num("rate_outside_fraction") > RATE_OUTSIDE_MAX:
        reasons.append("rate_outside_fic")
    if num("near_optimal_pattern_r") < PATTERN_R_MIN:
        reasons.append("pattern_ambiguous")
    if num("interval_missing_regions") > 0 or metrics.get("interval_mean_missing"):
        reasons.append("interval_incomplete")
    if fc_outside(metrics):
        reasons.append(FC_OUTSIDE)
    # a check whose metric is missing could not run (e.g. the floor needs two duplicates and the
    # profile stage): say so, rather than let "not flagged" read as "checked and fine"
    # (a winner with an invalid test duplicate has no test cost: the cost of the averaged FC needs
    # every duplicate)
    cost_known = math.isfinite(num("test_total")) and math.isfinite(num("self_floor_total"))
    unchecked = [] if cost_known else ["cost_above_floor"]
    clean = {k: _finite_or_none(v) for k, v in metrics.items()}
    return {"flagged": bool(reasons), "reasons": reasons, "unchecked": unchecked, "metrics": clean}


def _finite_or_none(v: Any) -> Any:
    """A metric as ``run.json`` stores it: non-finite numbers (numpy's too) as None."""
    if isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)):
        return None if not math.isfinite(float(v)) else v
    return v


def describe(reasons: Sequence[str]) -> str:
    """Reasons as one readable phrase (unknown keys are kept as they are)."""
    return "; ".join(REASON_TEXT.get(r, r) for r in reasons)


def min_pattern_r(point: np.ndarray, members: np.ndarray) -> float:
    """Lowest Pearson r between a regional E/I ``point`` (N,) and each row of ``members`` (M, N),
    over the regions finite in both (NaN without members or with fewer than 3 such regions)."""
    rs = []
    for row in np.atleast_2d(members):
        ok = np.isfinite(point) & np.isfinite(row)
        if ok.sum() >= 3 and np.ptp(point[ok]) > 0 and np.ptp(row[ok]) > 0:
            rs.append(float(np.corrcoef(point[ok], row[ok])[0, 1]))
    return min(rs) if rs else math.nan


def rate_outside_fraction(r_e: np.ndarray) -> float:
    """Fraction of regions whose time-averaged excitatory rate [Hz] is outside the FIC band."""
    lo, hi = FIC_RATE_BAND
    r_e = np.asarray(r_e, dtype=np.float64)
    return float(np.mean(~((r_e >= lo) & (r_e <= hi)))) if r_e.size else math.nan
