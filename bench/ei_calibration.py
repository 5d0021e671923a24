"""Benchmark: calibration of the fit's E/I intervals and quality flag on independent truths (issue 22).

**Truths.** ``--n-truths`` synthetic subjects (default 32) on the default DK68 template, drawn
independently of the surrogate's training prior (``surrogate/generate.py:TRUTH_PRIOR``: wider
ranges, and a different construction) to span what a real cohort covers:

* **both designs**, alternating: ``default`` truths are linear in the shipped z-scored myelin and
  gradient maps and are fitted with the default ``[1, myelin, gradient]`` design (10 coefficients,
  the shipped maps); ``gradient`` truths are linear in the shipped gradient only and are fitted
  with the ``[1, gradient]`` design (7 coefficients; the design of ``--maps fc-gradient`` and of
  other atlases) with that gradient handed to them as their own map (``--gradient-map own``,
  default). Both are exactly representable, so what the benchmark measures is the fit, not a
  wrong map. ``--gradient-map fc`` instead fits the gradient truths as ``--maps fc-gradient``
  would, with the gradient of their cohort's FC, which on the template SC correlates only ~0.3
  with their map: a misspecified fit, reported on its own (``ei_calibration_fcmap.json``);
* **close to the FIC stability boundary and far from it**: every draw gets a target
  :func:`~delssome_norms.model.fic_stability_margin` (-0.6 ... -0.25, -1 ... -0.25 or
  -3.5 ... -1 /s) and its wEE level is shifted (bisection) until its fixed point has that margin;
  the ``near`` stratum is margin > -1 /s (above -0.25 /s most draws escape the fixed point within
  a scan and leave the rate band);
* **weak to strong coupling**: G ~ U(0.8 or 1.8 or 2.2, 3); the truth's simulated mean FC (upper
  triangle of the synthetic scan) puts it in the ``weak`` (< 0.1), ``mid`` (0.1-0.25) or
  ``strong`` (>= 0.25) stratum. A pool of draws is screened with one float32 simulation each and
  the truths are taken round-robin over the (boundary x FC x design) cells, so each cell that the
  model can reach gets its share; screened mean FC below 0.04 (far below any real cohort) is not
  used. Far from the boundary the model's FC stays below ~0.2, and with the fit's wEI validity
  rule (wEI >= 2 x 11 mean FC - 6 in every region) mean FC above ~0.35 is rarely reachable: the
  default seed's 32 truths span mean FC 0.049-0.326 (20 with FC >= 0.1), margins -3.3 ... -0.28.

The kept truths are simulated in one float64 batch, as :func:`delssome_norms.fit.synthetic_subject`
does for one (a scan whose FC and FCD-CDF are the data, and the true E/I from 3 further
duplicates, all at ``--truth-dt`` = the fit's test step, finer than its train step); each must
keep every region's time-averaged r_E in the FIC band
(:data:`~delssome_norms.fit.synthetic.FIC_RATE_BAND`, 2.7-3.3 Hz) and be valid with the wEI range
of its own FC. Truths are cached in the work folder (``truths/``) so a rerun reuses them.

**Fits.** Each mode (``--modes``) fits all truths with :func:`delssome_norms.fit.fit_group` in
lockstep groups (one per design, or both designs together with ``--single-group``; split by
:func:`~delssome_norms.fit.choose_group_size` or ``--group-size``), with
:class:`~delssome_norms.fit.FitSettings` defaults except the budget (``--generations --popsize
--n-dup --test-top-k``, per mode ``--mode-budget``; ``--cpu-budget`` is a preset for a 2-core
CPU). Fits are written to ``--work-dir``; a rerun skips finished subjects (the fit's own resume),
so ``--first N`` after a run summarises the first N truths without refitting.

Cost, in core-seconds of the fused CPU kernel (~5e7 region-steps/s per core): one 432-s
simulation at dt 0.005 s is 0.14, at the test step 1.4. A truth costs, per mode: train (Euler:
generations x popsize x n_dup simulations; surrogate: network inference), validation
(generations x 1 (Euler) or 3 (surrogate) x n_dup), test (test_top_k x n_dup at the test step)
and the profile (13 x n_dup). Measured on 2 cores (16 truths per lockstep group): surrogate mode
at 100 x 100 ~60 core-s per truth, Euler mode at 30 x 50 with 2 duplicates ~100 core-s.

**Metrics** (per mode; overall and per stratum): median regional r (fitted vs true E/I), median
|mean E/I error| [%], empirical coverage of the 90 % intervals for the mean and for regions
(pooled), with the calibration the fits used (the intervals they wrote) and leave-one-truth-out:
the interval is ``est * exp(+-k sqrt(s^2 + f^2))`` with ``k = 1.645`` and a floor ``f``; each truth
needs ``f_j = sqrt(max(0, (|log(est/true)| / k)^2 - s_j^2))`` to be covered and, for truth i, ``f``
is the finite-sample corrected 90 % quantile of the other truths' ``f_j`` (so no truth is scored
with a floor fitted on it); the median interval width hi/lo, and the flag: the share of poor fits
(r < 0.5 or |error| > 30 %) flagged and of good fits (r >= 0.9 and |error| <= 10 %) flagged, per
reason, with thresholds of the quality metrics that would meet the targets. Truths with mean FC >=
0.1 are reported separately from the rest. ``--write-calibration`` writes the floors fitted on all
truths (and ``k``) to ``delssome_norms/fit/data/interval_calibration.json`` (``--calibration-file``);
with another ``--tr`` it writes no floors but records how the floors in force there covered at that
timing (the mode's ``tr_checks``, which the fit's calibration scope compares a subject's TR with).
``--write-timing-floors`` at another ``--tr`` records the floors these truths need there as the
mode's ``timing_floors`` (fits at that TR use them, interpolated in TR: ``calibration_scope.floors_at``);
a check of them must then be made on other truths (another ``--seed``, ``--write-calibration``).

``--vary NAME=V1,V2`` refits the first ``--vary-truths`` truths with one setting changed
(``searches``, ``n_dup``, ``test_top_k``, ``generations``, ``popsize``, ``scan_length``,
``val_per_generation``) and reports the level error per value (issue 22, item 3).

Writes ``bench/results/ei_calibration.json`` (``--out``; by default ``_quick``, ``_fcmap`` and
``_tr<TR>`` are added to the name for ``--quick``, ``--gradient-map fc`` and another ``--tr``):
every truth's row, summaries, settings, versions, wall times; regions and means without an interval
(null in ``run.json``) count as not covered and are counted (``missing_intervals``). It prints one
summary line with PASS/FAIL per acceptance figure. ``--quick``: a smoke run (3 truths, tiny budget,
work folder ``bench/results/ei_calibration_quick``). ``bench/gpu_calibration.sh`` runs the full
budget on a CUDA device.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "ei_calibration.json"
DEFAULT_WORK = REPO / "bench" / "results" / "ei_calibration_work"
CALIBRATION_FILE = REPO / "delssome_norms" / "fit" / "data" / "interval_calibration.json"
TR = 0.72
"""Default TR [s] (HCP); ``--tr`` gives another."""
MIN_TR_CHECK_TRUTHS = 30
"""Fewest truths a timing check recorded in the calibration file may rest on (issue 22: >= 30)."""
LEVEL = 0.9
K_NORMAL = 1.6448536269514722
"""Two-sided 90 % factor of the normal distribution: the intervals' ``k``; the floor is calibrated."""
COVERAGE_RANGE = (0.85, 0.95)
STRATUM_MIN = 0.75
INFORMATIVE_FC = 0.1
TARGET_R = 0.9
TARGET_ERR = 10.0
POOR_R, POOR_ERR = 0.5, 30.0
GOOD_R, GOOD_ERR = 0.9, 10.0
FLAG_POOR_MIN, FLAG_GOOD_MAX = 0.9, 0.1
FC_EDGES = (0.1, 0.25)
"""Mean-FC edges of the weak / mid / strong strata."""
NEAR_MARGIN = -1.0
"""Truths whose stability margin [1/s] is above this are ``near`` the boundary."""
MARGIN_RANGES = {"edge": (-0.6, -0.25), "near": (-1.0, -0.25), "far": (-3.5, -1.0)}
"""Target stability margins [1/s] of the three draw classes (above -0.25 most draws escape the
FIC fixed point within a scan and leave the rate band)."""
MIN_SCREEN_FC = 0.04
DESIGNS = ("default", "gradient")
CPU_BUDGET = {
    "euler": {"generations": 30, "popsize": 50, "n_dup": 2, "test_top_k": 3},
    "surrogate": {},
}
"""``--cpu-budget``: per-mode budget changes for a 2-core CPU (with ``--single-group --group-size
16``, 32 truths, measured 2026-12-05 on an otherwise idle CPU: surrogate ~17 min, Euler 27 min):
surrogate mode at the fit's default budget (100 x 100, 3 duplicates, 5 tested); Euler mode a
reduced search, 30 x 50 with 2 duplicates and 3 tested (the default 100 x 100 x 3 needs ~2 h per
truth here; ``bench/gpu_calibration.sh`` runs it on a GPU)."""
QUICK_BUDGET = {"generations": 3, "popsize": 40, "n_dup": 1, "test_top_k": 2}

# coefficient ranges in z-scored-map units: (level, gradient slope, myelin slope)
WEE_RANGE = ((1.5, 5.5), (-0.4, 0.4), (-0.4, 0.4))
"""wEE level before the margin shift, slopes per SD of the gradient / myelin map."""
WEI_RANGE = ((1.2, 2.9), (0.25, 0.45), (-0.25, 0.0))
"""wEI: inside the FC-derived range (0.4-3.2 for mean FC < 0.29) for most draws."""
G_RANGE = {"edge": (2.2, 3.0), "near": (0.8, 3.0), "far": (1.8, 3.0)}
SIGMA_RANGE = ((0.0015, 0.009), (-0.0006, 0.0006), (-0.0006, 0.0006))


def log(msg: str) -> None:
    """Timestamped progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------- #
# pure metric functions (tests/fit/test_calibration_metrics.py)
# ------------------------------------------------------------------------------------------- #
def conformal_quantile(scores: np.ndarray, level: float = LEVEL) -> float:
    """Finite-sample corrected ``level`` quantile of conformity scores (split conformal).

    The ``ceil((n + 1) level)``-th smallest of the n finite scores: a new exchangeable score falls
    at or below it with probability >= ``level``. ``inf`` when that rank exceeds n, NaN for no
    scores.

    Examples
    --------
    >>> conformal_quantile(np.arange(1.0, 10.0), 0.9)  # ceil(10 * 0.9) = 9th of 9
    9.0
    """
    s = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    s = s[~np.isnan(s)]
    if s.size == 0:
        return float("nan")
    rank = math.ceil((s.size + 1) * level - 1e-9)
    return float("inf") if rank > s.size else float(s[rank - 1])


def interval_scores(estimate: np.ndarray, truth: np.ndarray, spread: np.ndarray) -> np.ndarray:
    """Conformity scores ``|log(estimate / truth)| / spread`` (unitless; inf where spread is 0)."""
    err = np.abs(np.log(np.asarray(estimate, float) / np.asarray(truth, float)))
    spread = np.asarray(spread, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = err / spread
    return np.where((spread == 0) & (err == 0), 0.0, out)


def floor_scores(abs_log_err: np.ndarray, spread: np.ndarray, k: float = K_NORMAL) -> np.ndarray:
    """Floor each estimate needs to be covered: ``sqrt(max(0, (|log(est/true)| / k)^2 - s^2))``.

    The interval ``est * exp(+-k sqrt(s^2 + f^2))`` covers the truth exactly when ``f`` is at
    least this score, so the conformal quantile of the scores is a calibrated floor (log units).

    Examples
    --------
    >>> float(floor_scores(np.array([0.5]), np.array([0.3]), k=1.0)[0])  # sqrt(0.25 - 0.09)
    0.4
    """
    a = np.asarray(abs_log_err, dtype=np.float64) / k
    s = np.asarray(spread, dtype=np.float64)
    return np.sqrt(np.maximum(0.0, a**2 - s**2))


def loo_conformal_k(scores: Sequence[np.ndarray], level: float = LEVEL) -> np.ndarray:
    """Leave-one-truth-out factor per truth: :func:`conformal_quantile` of the other truths' scores.

    Parameters
    ----------
    scores : sequence of arrays
        One array of scores per truth (one value for the mean, N for the regions).

    Returns
    -------
    ndarray of shape (len(scores),)
    """
    arrays = [np.atleast_1d(np.asarray(s, dtype=np.float64)) for s in scores]
    out = np.empty(len(arrays))
    for i in range(len(arrays)):
        others = [a for j, a in enumerate(arrays) if j != i]
        out[i] = conformal_quantile(np.concatenate(others), level) if others else float("nan")
    return out


def coverage(scores: Sequence[np.ndarray], k: Sequence[float] | float) -> float:
    """Share of scores (pooled over truths) at or below their truth's factor ``k``; NaN if none.

    A NaN score (no interval) counts as not covered.
    """
    arrays = [np.atleast_1d(np.asarray(s, dtype=np.float64)) for s in scores]
    ks = np.broadcast_to(np.asarray(k, dtype=np.float64), (len(arrays),))
    n = sum(a.size for a in arrays)
    if n == 0:
        return float("nan")
    return float(sum(np.sum(a <= kk) for a, kk in zip(arrays, ks)) / n)


def width_ratio(spread: np.ndarray, k: np.ndarray | float) -> np.ndarray:
    """Interval width as hi / lo = ``exp(2 k s)`` of the multiplicative interval."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(2.0 * np.asarray(k, float) * np.asarray(spread, float))


def fit_classes(r: np.ndarray, err_pct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(poor, good) masks: poor = r < 0.5 or |error| > 30 %; good = r >= 0.9 and |error| <= 10 %."""
    r, e = np.asarray(r, float), np.abs(np.asarray(err_pct, float))
    poor = (r < POOR_R) | (e > POOR_ERR) | ~np.isfinite(r)
    good = (r >= GOOD_R) & (e <= GOOD_ERR)
    return poor, good


def flag_rates(r: np.ndarray, err_pct: np.ndarray, flagged: np.ndarray) -> dict[str, Any]:
    """Share of poor fits flagged and of good fits flagged (NaN where a class is empty)."""
    poor, good = fit_classes(r, err_pct)
    flagged = np.asarray(flagged, dtype=bool)

    def share(mask: np.ndarray) -> float:
        return float(flagged[mask].mean()) if mask.any() else float("nan")

    return {
        "n_poor": int(poor.sum()),
        "poor_flagged_share": share(poor),
        "n_good": int(good.sum()),
        "good_flagged_share": share(good),
        "n_flagged": int(flagged.sum()),
    }


def suggest_threshold(values: np.ndarray, poor: np.ndarray, good: np.ndarray) -> dict[str, Any] | None:
    """Threshold of one quality metric that best separates poor from good fits.

    Candidate rules ``value >= t`` and ``value <= t`` for every observed value t. Among rules that
    flag >= 90 % of poor fits and <= 10 % of good fits the one with the largest difference of the
    two shares is returned (``meets_targets`` True); otherwise the rule with the largest
    difference. None without finite values or without both classes.
    """
    v = np.asarray(values, dtype=np.float64)
    poor, good = np.asarray(poor, bool), np.asarray(good, bool)
    ok = np.isfinite(v)
    if not ok.any() or not (poor & ok).any() or not (good & ok).any():
        return None
    best: dict[str, Any] | None = None
    for t in np.unique(v[ok]):
        for direction in (">=", "<="):
            flag = (v >= t) if direction == ">=" else (v <= t)
            p, g = float(flag[poor & ok].mean()), float(flag[good & ok].mean())
            meets = p >= FLAG_POOR_MIN and g <= FLAG_GOOD_MAX
            key = (meets, p - g, -g)
            if best is None or key > best["_key"]:
                best = {
                    "_key": key,
                    "direction": direction,
                    "threshold": float(t),
                    "poor_flagged_share": p,
                    "good_flagged_share": g,
                    "meets_targets": meets,
                }
    assert best is not None
    best.pop("_key")
    return best


def fc_stratum(fc_mean: float) -> str:
    """``weak`` (< 0.1), ``mid`` (0.1-0.25) or ``strong`` (>= 0.25) coupling by mean FC."""
    return "weak" if fc_mean < FC_EDGES[0] else ("mid" if fc_mean < FC_EDGES[1] else "strong")


def boundary_stratum(margin: float) -> str:
    """``near`` the FIC stability boundary (margin > -1 /s) or ``far`` from it."""
    return "near" if margin > NEAR_MARGIN else "far"


def level_tracking(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Does the fitted mean E/I follow the true one across truths?

    ``level_r``: Pearson r of fitted and true mean E/I; ``level_slope``: least-squares slope of
    fitted on true; ``constant_guess_err_pct``: median |error| [%] of the *same* guess for every
    truth (the median true level, an oracle constant), the error a fit with no information on the
    level would still reach on these truths.
    """
    nan = float("nan")
    t = np.array([x["mean_ei_true"] for x in rows], float)
    f = np.array([x["mean_ei_fit"] for x in rows], float)
    if len(rows) < 3 or np.std(t) == 0 or np.std(f) == 0:
        return {"level_r": nan, "level_slope": nan, "constant_guess_err_pct": nan}
    return {
        "level_r": float(np.corrcoef(t, f)[0, 1]),
        "level_slope": float(np.polyfit(t, f, 1)[0]),
        "constant_guess_err_pct": float(100 * np.median(np.abs(np.median(t) / t - 1))),
    }


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics of one mode's finished truths, overall and per stratum.

    ``rows`` hold ``r``, ``mean_err_pct``, ``fc_mean``, strata and, when the fit wrote intervals,
    ``score_mean`` (float), ``score_region`` (N), ``covered_mean_shipped`` (bool),
    ``covered_region_shipped`` (N bool), ``spread_log_mean``, ``spread_log_region``, ``k_mean``,
    ``k_region`` and ``flagged``. Leave-one-truth-out factors are computed over all ``rows``.
    """
    n_failed = sum(r.get("status") != "done" for r in rows)
    rows = [r for r in rows if r.get("status") == "done"]
    if not rows:
        return {"n": 0, "n_failed": n_failed}
    has_int = all(r.get("score_mean") is not None for r in rows)
    if has_int:
        # leave-one-truth-out calibrated floors (k fixed at K_NORMAL): no truth is scored with a
        # floor fitted on it
        f_mean_loo = loo_conformal_k([r["floor_score_mean"] for r in rows])
        f_reg_loo = loo_conformal_k([np.asarray(r["floor_score_region"]) for r in rows])
    has_flag = all(r.get("flagged") is not None for r in rows)

    def block(idx: list[int]) -> dict[str, Any]:
        sub = [rows[i] for i in idx]
        r = np.array([x["r"] for x in sub], float)
        e = np.array([x["mean_err_pct"] for x in sub], float)
        out: dict[str, Any] = {
            "n": len(sub),
            "median_r": float(np.nanmedian(r)) if len(sub) else float("nan"),
            "median_abs_mean_err_pct": float(np.median(np.abs(e))) if len(sub) else float("nan"),
            "median_mean_err_pct": float(np.median(e)) if len(sub) else float("nan"),
            **level_tracking(sub),
        }
        if has_int and sub:
            out["coverage"] = {
                "mean_shipped": float(np.mean([x["covered_mean_shipped"] for x in sub])),
                "region_shipped": float(
                    np.mean(np.concatenate([np.asarray(x["covered_region_shipped"]) for x in sub]))
                ),
                "mean_loo": coverage([x["floor_score_mean"] for x in sub], f_mean_loo[idx]),
                "region_loo": coverage(
                    [np.asarray(x["floor_score_region"]) for x in sub], f_reg_loo[idx]
                ),
            }
            s_m = np.array([x["spread_log_mean"] for x in sub], float)
            s_r = [np.asarray(x["spread_log_region"], float) for x in sub]
            half_m = K_NORMAL * np.sqrt(s_m**2 + f_mean_loo[idx] ** 2)
            half_r = np.concatenate(
                [K_NORMAL * np.sqrt(sr**2 + f**2) for sr, f in zip(s_r, f_reg_loo[idx])]
            )
            # medians over the intervals that exist (a null spread or bound is NaN)
            out["width_hi_over_lo"] = {
                "mean_shipped": _nanmedian([x["mean_hi"] / x["mean_lo"] for x in sub]),
                "mean_loo": _nanmedian(np.exp(2 * half_m)),
                "region_loo": _nanmedian(np.exp(2 * half_r)),
                "mean_spread_only": _nanmedian(width_ratio(s_m, K_NORMAL)),
            }
            out["missing_intervals"] = {
                "mean": int(sum(bool(x.get("interval_mean_missing")) for x in sub)),
                "region": int(sum(int(x.get("interval_missing_regions") or 0) for x in sub)),
            }
        if has_flag and sub:
            out["flag"] = flag_rates(r, e, np.array([bool(x["flagged"]) for x in sub]))
        return out

    all_idx = list(range(len(rows)))
    strata: dict[str, dict[str, Any]] = {}
    for key, values in (
        ("boundary", ("near", "far")),
        ("fc", ("weak", "mid", "strong")),
        ("design", DESIGNS),
    ):
        for v in values:
            idx = [i for i in all_idx if rows[i][f"{key}_stratum"] == v]
            if idx:
                strata[f"{key}={v}"] = block(idx)
    informative = [i for i in all_idx if rows[i]["fc_mean"] >= INFORMATIVE_FC]
    rest = [i for i in all_idx if rows[i]["fc_mean"] < INFORMATIVE_FC]
    out = {
        "n_failed": n_failed,
        "overall": block(all_idx),
        "fc_ge_0.1": block(informative),
        "fc_lt_0.1": block(rest),
        "strata": strata,
    }
    if has_int:
        out["calibrated_all_truths"] = {
            "k": K_NORMAL,
            "floor_mean": conformal_quantile(np.array([r["floor_score_mean"] for r in rows])),
            "floor_region": conformal_quantile(np.concatenate([r["floor_score_region"] for r in rows])),
        }
    if has_flag:
        poor, good = fit_classes(
            np.array([x["r"] for x in rows]), np.array([x["mean_err_pct"] for x in rows])
        )
        reasons = sorted({q for x in rows for q in x.get("flag_reasons", [])})
        out["flag_by_reason"] = {
            q: flag_rates(
                np.array([x["r"] for x in rows]),
                np.array([x["mean_err_pct"] for x in rows]),
                np.array([q in x.get("flag_reasons", []) for x in rows]),
            )
            for q in reasons
        }
        metrics = sorted({m for x in rows for m in (x.get("quality_metrics") or {})})
        out["suggested_thresholds"] = {
            m: suggest_threshold(
                np.array([_num((x.get("quality_metrics") or {}).get(m)) for x in rows]), poor, good
            )
            for m in metrics
        }
    return out


def _nanmedian(values: Any) -> float:
    """Median of the non-NaN values (NaN, without a warning, when there are none)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[~np.isnan(v)]
    return float(np.median(v)) if v.size else float("nan")


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def acceptance(summary: dict[str, Any]) -> dict[str, bool | None]:
    """PASS/FAIL of the issue's acceptance figures for one mode (None: not measurable)."""
    out: dict[str, bool | None] = {}
    ov = summary.get("overall", {})
    cov = ov.get("coverage")
    lo, hi = COVERAGE_RANGE
    if cov:
        for kind in ("loo", "shipped"):
            out[f"coverage_{kind}"] = bool(
                lo <= cov[f"mean_{kind}"] <= hi and lo <= cov[f"region_{kind}"] <= hi
            )
            strata = [s.get("coverage") for s in summary.get("strata", {}).values()]
            out[f"strata_coverage_{kind}"] = bool(
                all(
                    c[f"mean_{kind}"] >= STRATUM_MIN and c[f"region_{kind}"] >= STRATUM_MIN
                    for c in strata
                    if c
                )
            )
    else:
        out["coverage_loo"] = out["coverage_shipped"] = None
    inf = summary.get("fc_ge_0.1", {})
    out["recovery_fc_ge_0.1"] = (
        bool(inf["median_r"] >= TARGET_R and inf["median_abs_mean_err_pct"] <= TARGET_ERR)
        if inf.get("n")
        else None
    )
    fl = ov.get("flag")
    if fl:
        p, g = fl["poor_flagged_share"], fl["good_flagged_share"]
        out["flag"] = bool(
            (math.isnan(p) or p >= FLAG_POOR_MIN) and (math.isnan(g) or g <= FLAG_GOOD_MAX)
        )
    else:
        out["flag"] = None
    return out


# ------------------------------------------------------------------------------------------- #
# truths
# ------------------------------------------------------------------------------------------- #
@dataclass
class Truth:
    """One calibration truth: its synthetic subject and strata."""

    truth_id: str
    design: str
    margin: float
    fc_mean: float
    subject: Any  # SyntheticSubject
    draw: dict[str, Any]
    own_map: np.ndarray | None = None
    """The gradient map a ``gradient``-design truth is linear in (None: the shipped gradient)."""

    @property
    def strata(self) -> dict[str, str]:
        return {
            "design_stratum": self.design,
            "boundary_stratum": boundary_stratum(self.margin),
            "fc_stratum": fc_stratum(self.fc_mean),
        }


def truth_spaces():
    """(template SC, {design: (Parameterisation, z-to-coefficient transform)})."""
    from delssome_norms.datasets import load_default_maps, load_default_template
    from delssome_norms.fit import Bounds, Parameterisation, design_matrix

    sc = np.array(load_default_template().sc, dtype=np.float64)
    maps = load_default_maps()
    g, my = np.asarray(maps.gradient, float), np.asarray(maps.myelin, float)
    loose = Bounds(wEI=(0.0, 5.0))
    spaces = {
        "default": Parameterisation(design_matrix(g, my, warn=False), g, loose, myelin=my),
        "gradient": Parameterisation(design_matrix(g, warn=False), g, loose),
    }
    return sc, spaces, (float(my.mean()), float(my.std()))


def _coeffs(design: str, z: np.ndarray, myelin_mu_sd: tuple[float, float]) -> np.ndarray:
    """Coefficient vector of a design from (level, gradient slope, myelin slope) per parameter.

    ``z`` has rows wEE, wEI, sigma of (level, gradient slope, myelin-per-SD slope) and G in
    ``z[3, 0]``. The default design's myelin column is the raw map, so the myelin slope is divided
    by its SD and the level corrected by ``slope mean / SD``.
    """
    mu, sd = myelin_mu_sd
    parts = []
    for a, b, m in z[:3]:
        if design == "default":
            parts.append([a - m * mu / sd, m / sd, b])
        else:
            parts.append([a, b])
    return np.array([*parts[0], *parts[1], z[3, 0], *parts[2]], dtype=np.float64)


def draw_pool(
    n: int,
    rng: np.random.Generator,
    myelin_mu_sd: tuple[float, float],
    designs: Sequence[str] = DESIGNS,
) -> list[dict[str, Any]]:
    """``n`` raw draws: design, boundary class, target margin [1/s] and map-unit coefficients."""
    out = []
    nd = len(designs)
    for i in range(n):
        design = designs[i % nd]
        boundary = ("edge", "near", "far", "far")[(i // nd) % 4]
        z = np.zeros((4, 3))
        for row, ranges in enumerate((WEE_RANGE, WEI_RANGE, SIGMA_RANGE)):
            z[row] = [rng.uniform(lo, hi) for lo, hi in ranges]
            if design == "gradient":
                z[row, 2] = 0.0
        z[3, 0] = rng.uniform(*G_RANGE[boundary])
        target = float(rng.uniform(*MARGIN_RANGES[boundary]))
        out.append({"design": design, "boundary": boundary, "target_margin": target, "z": z})
    return out


def place_margins(pool: list[dict[str, Any]], spaces, sc: np.ndarray, myelin_mu_sd) -> None:
    """Shift each draw's wEE level (bisection, 40 steps) so its FIC stability margin hits the target.

    Sets ``coeffs``, ``margin`` (achieved, [1/s]) and ``ok`` (in bounds, converged) on each draw.
    """
    from delssome_norms.model import fic_stability_margin, scale_sc

    scaled = torch.as_tensor(np.asarray(scale_sc(sc)), dtype=torch.float64)
    for design, space in spaces.items():
        items = [d for d in pool if d["design"] == design]
        if not items:
            continue
        base = np.stack([_coeffs(design, d["z"], myelin_mu_sd) for d in items])
        target = np.array([d["target_margin"] for d in items])
        lo, hi = np.full(len(items), -4.0), np.full(len(items), 8.0)

        def margin(shift: np.ndarray, base=base, space=space) -> np.ndarray:
            c = base.copy()
            c[:, 0] += shift
            p = space.to_regional(c)
            t = torch.float64
            m = fic_stability_margin(
                torch.as_tensor(p.wEE, dtype=t),
                torch.as_tensor(p.wEI, dtype=t),
                torch.as_tensor(p.G, dtype=t),
                scaled,
            ).numpy()
            return np.where(np.isnan(m), np.inf, m)  # no FIC solution: treat as too excitable

        for _ in range(40):
            mid = 0.5 * (lo + hi)
            above = margin(mid) > target
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        final = lo
        achieved = margin(final)
        for d, s, m in zip(items, final, achieved):
            c = _coeffs(design, d["z"], myelin_mu_sd)
            c[0] += s
            d["coeffs"] = c
            d["margin"] = float(m)
            d["ok"] = bool(
                np.isfinite(m) and abs(m - d["target_margin"]) < 0.05 and space.is_valid(c[None])[0]
            )


def screen(pool: list[dict[str, Any]], spaces, sc: np.ndarray, scan, device: str) -> None:
    """One float32 simulation of each usable draw at the scan timing: mean FC and rate band."""
    from delssome_norms.fit import Bounds, Parameterisation
    from delssome_norms.fit.synthetic import FIC_RATE_BAND
    from delssome_norms.model import PFICParams, bold_fc, scale_sc, simulate

    scaled = scale_sc(sc)
    use = [d for d in pool if d.get("ok")]
    iu = np.triu_indices(sc.shape[0], 1)
    chunk = 64
    for s in range(0, len(use), chunk):
        part = use[s : s + chunk]
        regs = [spaces[d["design"]].to_regional(d["coeffs"][None]) for d in part]
        f32 = torch.float32

        def cat(name: str, regs=regs, dtype=f32) -> torch.Tensor:
            return torch.as_tensor(np.concatenate([getattr(p, name) for p in regs]), dtype=dtype)

        params = PFICParams(cat("wEE"), cat("wEI"), cat("sigma"), cat("G"))
        res = simulate(params, scaled, scan, n_dup=1, seed=1000 + s, device=device, dtype=f32)
        for j, d in enumerate(part):
            if not bool(res.valid[j, 0]):
                d["ok"] = False
                continue
            fc = bold_fc(res.bold[j, 0].cpu()).numpy()
            re = res.r_e[j, 0].cpu().numpy()
            d["screen_fc"] = float(fc[iu].mean())
            band = bool(((re >= FIC_RATE_BAND[0]) & (re <= FIC_RATE_BAND[1])).all())
            space = spaces[d["design"]]
            valid = Parameterisation(
                space.design, space.gradient, Bounds.from_fc(fc), myelin=space.myelin
            ).is_valid(d["coeffs"][None])[0]
            d["ok"] = bool(band and valid and d["screen_fc"] >= MIN_SCREEN_FC)


def simulate_truths(
    batch: list[dict[str, Any]], spaces, sc: np.ndarray, scan, seed: int, device: str
) -> list[Any]:
    """Scan and true E/I of a batch of draws in float64 (what ``synthetic_subject`` does for one).

    The scan is one noise run at ``scan`` (its FC and FCD-CDF are the subject's data); the true
    E/I and r_E are the mean of 3 further duplicates at the same timing. Returns a
    :class:`~delssome_norms.fit.synthetic.SyntheticSubject` per draw (None where a run blew up).
    """
    from delssome_norms.fit import SubjectInputs
    from delssome_norms.fit.synthetic import SyntheticSubject
    from delssome_norms.model import PFICParams, bold_fc, bold_fcd_cdf, scale_sc, simulate

    f64 = torch.float64
    regs = [spaces[d["design"]].to_regional(d["coeffs"][None]) for d in batch]

    def cat(name: str) -> torch.Tensor:
        return torch.as_tensor(np.concatenate([getattr(p, name) for p in regs]), dtype=f64)

    params = PFICParams(cat("wEE"), cat("wEI"), cat("sigma"), cat("G"))
    scaled = scale_sc(sc)
    run = simulate(params, scaled, scan, n_dup=1, seed=seed, device=device, dtype=f64)
    truth = simulate(params, scaled, scan, n_dup=3, seed=seed + 1, device=device, dtype=f64)
    out = []
    for j, d in enumerate(batch):
        if not (bool(run.valid[j, 0]) and bool(truth.valid[j].all())):
            out.append(None)
            continue
        bold = run.bold[j, 0].cpu()
        inputs = SubjectInputs(
            subject_id=f"draw-{j}",
            fc=bold_fc(bold).numpy(),
            fcd_cdf=bold_fcd_cdf(bold, scan.fcd_window).numpy(),
            tr=scan.tr,
            scan_length=scan.scan_length,
            sc=sc,
            sources={"synthetic": f"batch seed {seed}, member {j}"},
        )
        out.append(
            SyntheticSubject(
                inputs=inputs,
                coeffs=np.asarray(d["coeffs"], dtype=np.float64),
                ei_ratio=truth.ei_ratio[j].cpu().numpy(),
                rate_e=truth.r_e[j].mean(dim=0).cpu().numpy(),
            )
        )
    return out


def truth_config(args: argparse.Namespace) -> dict[str, Any]:
    """What the truths depend on (their cache key)."""
    return {
        "n_truths": args.n_truths,
        "seed": args.seed,
        "scan_length": args.scan_length,
        "truth_dt": args.truth_dt,
        "version": 1,
    } | ({} if args.tr == TR else {"tr": args.tr})  # HCP-timing caches keep their key


def _truth_timings(scan_length: float, truth_dt: float, tr: float = TR):
    from delssome_norms.model import SimulationTiming

    scan = SimulationTiming(tr=tr, scan_length=scan_length, dt=truth_dt)
    screen_t = SimulationTiming(tr=tr, scan_length=scan_length, dt=0.005)
    return scan, screen_t


def _load_truths(folder: Path, args: argparse.Namespace, sc: np.ndarray):
    """A cached truth set (None if absent)."""
    from delssome_norms.fit import SubjectInputs
    from delssome_norms.fit.synthetic import SyntheticSubject

    meta_path = folder / "truths.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text())
    truths = []
    for t in meta["truths"]:
        with np.load(folder / f"{t['truth_id']}.npz", allow_pickle=False) as a:
            inputs = SubjectInputs(
                subject_id=t["truth_id"],
                fc=a["fc"],
                fcd_cdf=a["fcd_cdf"],
                tr=args.tr,
                scan_length=float(args.scan_length),
                sc=sc,
                sources={"synthetic": t["sources"]},
            )
            subj = SyntheticSubject(inputs, a["coeffs"], a["ei_ratio"], a["rate_e"])
        design = "gradient" if t["design"] == "fc-gradient" else t["design"]  # name before 2026-12-05
        truths.append(Truth(t["truth_id"], design, t["margin"], t["fc_mean"], subj, t["draw"]))
    log(f"truths: {len(truths)} loaded from {folder}")
    return truths, meta["stats"]


def _save_truths(folder: Path, cfg: dict, stats: dict, chosen: Sequence[Truth]) -> None:
    from delssome_norms.io import write_arrays, write_json

    folder.mkdir(parents=True, exist_ok=True)
    for t in chosen:
        write_arrays(
            {
                "fc": t.subject.inputs.fc,
                "fcd_cdf": t.subject.inputs.fcd_cdf,
                "coeffs": t.subject.coeffs,
                "ei_ratio": t.subject.ei_ratio,
                "rate_e": t.subject.rate_e,
            },
            folder / f"{t.truth_id}.npz",
        )
    write_json(
        {
            "config": cfg,
            "stats": stats,
            "truths": [
                {
                    "truth_id": t.truth_id,
                    "design": t.design,
                    "margin": t.margin,
                    "fc_mean": t.fc_mean,
                    "sources": t.subject.inputs.sources["synthetic"],
                    "draw": t.draw,
                }
                for t in chosen
            ],
        },
        folder / "truths.json",
    )


def _select_truths(
    n: int,
    designs: Sequence[str],
    spaces: dict,
    rng: np.random.Generator,
    id_start: int,
    args: argparse.Namespace,
    sc: np.ndarray,
    mu_sd: tuple[float, float],
) -> tuple[list[Truth], dict[str, Any]]:
    """Draw pools, place margins, screen and simulate until ``n`` truths of ``designs`` are kept."""
    from delssome_norms.fit import Bounds, Parameterisation
    from delssome_norms.fit.synthetic import FIC_RATE_BAND

    t0 = time.perf_counter()
    scan, screen_t = _truth_timings(args.scan_length, args.truth_dt, args.tr)
    cells = [(d, b, f) for b in ("near", "far") for f in ("weak", "mid", "strong") for d in designs]
    chosen: list[Truth] = []
    stats = {"drawn": 0, "screened_ok": 0, "simulated": 0, "rejected_final": 0}
    rounds = 0
    while len(chosen) < n and rounds < 6:
        rounds += 1
        pool = draw_pool(max(48, 5 * n), rng, mu_sd, designs)
        stats["drawn"] += len(pool)
        place_margins(pool, spaces, sc, mu_sd)
        screen(pool, spaces, sc, screen_t, args.device)
        good = [d for d in pool if d.get("ok")]
        stats["screened_ok"] += len(good)
        by_cell: dict[tuple, list] = {c: [] for c in cells}
        for d in good:
            by_cell[(d["design"], boundary_stratum(d["margin"]), fc_stratum(d["screen_fc"]))].append(d)
        log(
            f"truths: round {rounds}, {len(good)}/{len(pool)} draws usable; cells "
            + ", ".join(f"{c[0][:3]}/{c[1]}/{c[2]}:{len(v)}" for c, v in by_cell.items())
        )
        order = []  # round-robin over the cells
        while any(by_cell.values()):
            for c in cells:
                if by_cell[c]:
                    order.append(by_cell[c].pop(0))
        need = n - len(chosen)
        batch = order[: max(need + 2, math.ceil(1.3 * need))]
        if not batch:
            continue
        seed = int(rng.integers(1 << 30))
        stats["simulated"] += len(batch)
        for d, subject in zip(batch, simulate_truths(batch, spaces, sc, scan, seed, args.device)):
            if len(chosen) >= n:
                break
            space = spaces[d["design"]]
            tid = f"cal-{id_start + len(chosen):02d}"
            if subject is None:
                stats["rejected_final"] += 1
                continue
            fc = subject.inputs.fc
            fc_mean = float(fc[np.triu_indices(fc.shape[0], 1)].mean())
            valid = Parameterisation(
                space.design, space.gradient, Bounds.from_fc(fc), myelin=space.myelin
            ).is_valid(d["coeffs"][None])[0]
            if not (subject.rates_within(FIC_RATE_BAND) and valid and fc_mean >= MIN_SCREEN_FC):
                stats["rejected_final"] += 1
                continue
            subject = replace(subject, inputs=replace(subject.inputs, subject_id=tid))
            p = space.to_regional(d["coeffs"][None])
            draw = {
                "target_margin": d["target_margin"],
                "screen_fc": d["screen_fc"],
                "batch_seed": seed,
                "coeffs": d["coeffs"].tolist(),
                "G": float(p.G[0]),
                "wEE_mean": float(p.wEE.mean()),
                "wEI_mean": float(p.wEI.mean()),
                "sigma_mean": float(p.sigma.mean()),
            }
            chosen.append(Truth(tid, d["design"], d["margin"], fc_mean, subject, draw))
            log(
                f"truths: {tid} {d['design']} margin {d['margin']:.2f}/s G {p.G[0]:.2f} "
                f"mean FC {fc_mean:.3f} ({len(chosen)}/{n})"
            )
    stats["wall_s"] = round(time.perf_counter() - t0, 1)
    return chosen, stats


def model_fc_gradient(truths: Sequence[Truth]) -> np.ndarray:
    """FC gradient of the group-average FC of ``truths`` (the model's own FC hierarchy)."""
    from delssome_norms.fit.lockstep import default_gradient
    from delssome_norms.io import fisher_z_mean

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return default_gradient(fisher_z_mean(np.stack([t.subject.inputs.fc for t in truths])))


def make_truths(args: argparse.Namespace, work: Path) -> tuple[list[Truth], dict[str, Any]]:
    """Draw, screen, select and simulate the truths (or load them from ``work/truths``).

    With ``--fc-truth-map hierarchy`` (default) the gradient-design truths are linear in the
    shipped (real-data) gradient. The model's simulated FC on the template SC does not reproduce
    that hierarchy (the cohort FC gradient correlates 0.04-0.34 with it; two halves of a cohort's
    FC gradients 0.76 with each other), so with ``--gradient-map fc`` a ``[1, FC gradient]`` fit
    cannot represent their pattern (regional r ~0.3): a test of the fc-gradient option when the
    E/I hierarchy is not the one FC shows. With ``model`` they are replaced by new gradient-design
    truths (ids continuing after the base set) linear in the FC gradient of the base set's
    default-design truths, the hierarchy the model itself produces (their own map for
    ``--gradient-map own``). Most such draws fail the screening (default seed: 19 of 510 usable;
    16 of the 17 wanted truths found, 14 with mean FC < 0.1 and 13 far from the boundary), and
    their own cohort FC gradient correlates only 0.54 with that map; fits of this variant were not
    completed on the CPU.
    """
    from delssome_norms.fit import Bounds, Parameterisation, design_matrix

    cfg = truth_config(args)
    key = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:12]
    folder = work / "truths" / key
    sc, spaces, mu_sd = truth_spaces()
    loaded = _load_truths(folder, args, sc)
    if loaded is None:
        chosen, stats = _select_truths(
            args.n_truths, DESIGNS, spaces, np.random.default_rng(args.seed), 0, args, sc, mu_sd
        )
        _save_truths(folder, cfg, stats, chosen)
    else:
        chosen, stats = loaded
    if args.fc_truth_map == "hierarchy":
        return chosen, stats
    base = [t for t in chosen if t.design == "default"]
    n_fc = len(chosen) - len(base)
    if not base or not n_fc:
        return chosen, stats
    mfolder = work / "truths" / f"{key}-model-map"
    extra = _load_truths(mfolder, args, sc)
    g = model_fc_gradient(base)
    if extra is None:
        space = Parameterisation(design_matrix(g, warn=False), g, Bounds(wEI=(0.0, 5.0)))
        new, mstats = _select_truths(
            n_fc,
            ("gradient",),
            {"gradient": space},
            np.random.default_rng(args.seed + 1),
            len(chosen),
            args,
            sc,
            mu_sd,
        )
        mstats["truth_map"] = "FC gradient of the base set's default-design truths"
        mstats["truth_map_vs_shipped_gradient_r"] = float(
            np.corrcoef(g, spaces["default"].gradient)[0, 1]
        )
        if len(new) > 1:  # how well the fit's cohort FC gradient finds the truths' map
            mstats["fit_gradient_vs_truth_map_r"] = float(np.corrcoef(model_fc_gradient(new), g)[0, 1])
        _save_truths(mfolder, {**cfg, "fc_truth_map": "model"}, mstats, new)
    else:
        new, mstats = extra
    new = [replace(t, own_map=g) for t in new]
    return base + new, {"base": stats, "model_map": mstats}


# ------------------------------------------------------------------------------------------- #
# fits
# ------------------------------------------------------------------------------------------- #
def budget_for(args: argparse.Namespace, mode: str) -> dict[str, int]:
    """The budget of ``mode``: explicit flags, else the preset (--quick / --cpu-budget), else the
    fit's defaults."""
    from delssome_norms.fit import FitSettings

    d = FitSettings()
    out = {
        "generations": d.cmaes.generations,
        "popsize": d.cmaes.popsize,
        "n_dup": d.n_dup,
        "test_top_k": d.test_top_k,
    }
    if args.quick:
        out.update(QUICK_BUDGET)
    elif args.cpu_budget:
        out.update(CPU_BUDGET[mode])
    for name in out:
        v = getattr(args, name)
        if v is not None:
            out[name] = int(v)
    for spec in args.mode_budget or []:
        m, _, rest = spec.partition("=")
        if m == mode:
            for item in rest.split(","):
                k, _, v = item.partition(":")
                out[k.replace("-", "_")] = int(v)
    return out


def make_settings(args: argparse.Namespace, mode: str, design: str, budget: dict[str, int]):
    """:class:`FitSettings` of one mode and design: defaults except the budget."""
    from delssome_norms.fit import CMAESSettings, FitSettings

    pop = budget["popsize"]
    return FitSettings(
        cmaes=CMAESSettings(
            generations=budget["generations"], popsize=pop, mu=min(CMAESSettings().mu, pop // 2)
        ),
        seed=args.seed,
        mode=mode,
        n_dup=budget["n_dup"],
        test_top_k=budget["test_top_k"],
        device=args.device,
        dtype=args.dtype,
        maps="fc-gradient" if design == "gradient" and args.gradient_map == "fc" else "default",
        **{k: budget[k] for k in ("searches", "val_per_generation") if k in budget},
        combine=args.combine if budget.get("searches", 1) > 1 else None,
    )


def budget_tag(
    mode: str,
    budget: dict[str, int],
    scan_length: float,
    single_group: bool = False,
    gradient_map: str = "own",
    combine: str | None = None,
    tr: float = TR,
) -> str:
    """Folder name of a mode's fits (a different budget, grouping, gradient map, way of
    combining searches or TR gets a different folder)."""
    tags = {"searches": "searches", "val_per_generation": "v"}
    extra = "".join(f"_{tags[k]}{v}" for k, v in sorted(budget.items()) if k in tags)
    if combine != "best" and budget.get("searches", 1) > 1:  # "mean", the default
        extra += "_mean"
    return (
        f"{mode}_g{budget['generations']}p{budget['popsize']}d{budget['n_dup']}"
        f"k{budget['test_top_k']}{extra}_s{scan_length:g}{'_1g' if single_group else ''}"
        f"{'_fcmap' if gradient_map == 'fc' else ''}{'' if tr == TR else f'_tr{tr:g}'}"
    )


def fc_gradient(truths: Sequence[Truth]) -> np.ndarray | None:
    """Gradient of the group-average FC of the gradient-design truths (what ``cohort`` would use
    with ``--maps fc-gradient``)."""
    from delssome_norms.fit.lockstep import default_gradient
    from delssome_norms.io import fisher_z_mean

    fcs = [t.subject.inputs.fc for t in truths if t.design == "gradient"]
    return default_gradient(fisher_z_mean(np.stack(fcs))) if fcs else None


def _fc_gradient_r(truths: Sequence[Truth]) -> float | None:
    """Correlation of the gradient-design truths' cohort FC gradient with the shipped gradient
    (their truths' map): how well a ``--gradient-map fc`` fit can represent them."""
    from delssome_norms.datasets import load_default_maps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = fc_gradient(truths)
    if g is None:
        return None
    return float(np.corrcoef(g, load_default_maps().gradient)[0, 1])


def fit_mode(
    args: argparse.Namespace,
    mode: str,
    truths: Sequence[Truth],
    budget: dict[str, int],
    folder: Path,
    grad: np.ndarray | None = None,
) -> dict[str, float]:
    """Fit every truth in ``mode``; returns wall seconds per lockstep group.

    ``grad`` is the gradient-design truths' cohort FC gradient (default: from ``truths``); pass
    the whole set's when fitting a subset, so the subset's fits are those of the whole run.

    ``--gradient-map own`` (default): a gradient-design truth is handed the map it is linear in as
    its own gradient (no myelin), so it is fitted in the ``[1, gradient]`` space that contains it.
    ``--gradient-map fc``: it is fitted as ``--maps fc-gradient`` would, with the cohort FC
    gradient, which differs from its map (a misspecified fit; see :func:`make_truths`).

    Default: one ``fit_group`` call per design, split into groups of at most K
    (:func:`~delssome_norms.fit.choose_group_size` or ``--group-size``). With ``--single-group``
    all truths of the mode share lockstep groups (with ``--gradient-map fc`` the gradient-design
    truths get the cohort FC gradient as their own map, the same space): fewer sequential calls,
    which is what a GPU needs.
    """
    from _cache import current_fits  # bench/ is on sys.path when the script runs

    from delssome_norms.datasets import load_default_maps
    from delssome_norms.fit import GroupProgress, choose_group_size, fit_group, plan_groups

    grad = fc_gradient(truths) if grad is None else grad
    shipped = np.asarray(load_default_maps().gradient, dtype=np.float64)
    own = args.gradient_map == "own"
    backend = None
    if mode == "surrogate":
        from delssome_norms.surrogate import SURROGATE_BACKEND

        backend = SURROGATE_BACKEND
    walls: dict[str, float] = {}
    if args.single_group or own:
        parts = [("all", list(truths))]
    else:
        parts = [(d, [t for t in truths if t.design == d]) for d in DESIGNS]
    for design, members in parts:
        if not members:
            continue
        settings = make_settings(args, mode, "default" if design == "all" else design, budget)

        def inputs_of(t: Truth, design=design):
            if t.design != "gradient":
                return t.subject.inputs
            if own:
                return replace(t.subject.inputs, gradient=shipped if t.own_map is None else t.own_map)
            return replace(t.subject.inputs, gradient=grad) if design == "all" else t.subject.inputs

        subjects_all = [inputs_of(t) for t in members]
        # every search of a truth adds a subject's worth of simulations to a lockstep call
        # (as in cohort); an explicit --group-size counts truths, so K x searches subjects run
        k = args.group_size or max(
            1,
            choose_group_size(
                subjects_all[0].n_regions,
                round(args.scan_length / args.tr),
                settings.cmaes.popsize,
                settings.n_dup,
                args.device,
                args.dtype,
                validation_sets=settings.cmaes.generations * settings.validated_per_generation,
            )
            // settings.searches,
        )
        groups = plan_groups([0] * len(members), k)
        for gi, idx in enumerate(groups):
            subjects = [subjects_all[i] for i in idx]
            dirs = [folder / members[i].truth_id for i in idx]
            label = f"{mode} {design} group {gi + 1}/{len(groups)} ({len(idx)} truths)"
            state = {"total": settings.cmaes.generations, "t0": time.perf_counter()}

            def on_gen(done: int, state=state, label=label) -> None:
                if done == state["total"] or done % max(1, state["total"] // 5) == 0:
                    el = time.perf_counter() - state["t0"]
                    log(f"{label}: generation {done}/{state['total']} ({el:.0f} s)")

            prog = GroupProgress(
                on_start=lambda total, state=state: state.update(total=total),
                on_generation=on_gen,
                on_subject_done=lambda o, label=label: log(f"{label}: {o.subject_id} {o.status}"),
            )
            t0 = time.perf_counter()
            fallback = grad if design == "gradient" else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                done = sum(current_fits(subjects, dirs, settings, fallback))  # drops stale fits
            log(f"{label}: start ({done} of {len(idx)} already fitted with these settings)")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcomes = fit_group(
                    subjects,
                    dirs,
                    settings,
                    fallback_gradient=fallback,
                    progress=prog,
                    surrogate=backend,
                )
            walls[f"{design}_{gi}"] = round(time.perf_counter() - t0, 1)
            for o in outcomes:
                if o.status == "failed":
                    log(f"{label}: {o.subject_id} failed at {o.stage}: {o.message}")
            log(f"{label}: done in {walls[f'{design}_{gi}']:.0f} s")
    return walls


def _number(value: Any) -> float:
    """A run.json number as a float (null: NaN)."""
    return math.nan if value is None else float(value)


def _get(run: dict[str, Any], key: str) -> Any:
    """An entry of run.json at the top level or under ``result``."""
    if key in run:
        return run[key]
    return (run.get("result") or {}).get(key)


def truth_row(t: Truth, folder: Path) -> dict[str, Any]:
    """Per-truth metrics of one mode's fit (status ``missing`` when the fit has no results)."""
    d = folder / t.truth_id
    true = np.asarray(t.subject.ei_ratio, float)
    base: dict[str, Any] = {
        "truth_id": t.truth_id,
        **t.strata,
        "margin": t.margin,
        "fc_mean": t.fc_mean,
        "G_true": t.draw["G"],
        "mean_ei_true": float(true.mean()),
        "rate_e_true_range": [float(t.subject.rate_e.min()), float(t.subject.rate_e.max())],
    }
    run_path = d / "run.json"
    if not (run_path.is_file() and (d / "EI_ratio.csv").is_file()):
        fail = d / "failure.json"
        msg = json.loads(fail.read_text()).get("error", "") if fail.is_file() else "no results"
        return {**base, "status": "missing", "message": msg}
    run = json.loads(run_path.read_text())
    table = pd.read_csv(d / "EI_ratio.csv")
    ei = table["EI_ratio"].to_numpy(float)
    mean_fit = float(ei.mean())
    row = {
        **base,
        "status": "done",
        "mean_ei_fit": mean_fit,
        "r": float(np.corrcoef(ei, true)[0, 1]),
        "mean_err_pct": float(100 * (mean_fit / true.mean() - 1)),
        "log_ratio_sd_regions": float(np.log(ei / true).std(ddof=1)),
        "ei_sd_median": float(np.median(table["EI_ratio_sd"])) if "EI_ratio_sd" in table else None,
        "ei_fit": ei.tolist(),
        "ei_true": true.tolist(),
    }
    interval = _get(run, "ei_interval")
    if interval and "EI_ratio_lo" in table and "EI_ratio_hi" in table:
        lo, hi = table["EI_ratio_lo"].to_numpy(float), table["EI_ratio_hi"].to_numpy(float)
        # null (no interval: a non-finite E/I or spread) reads as NaN, not a TypeError
        s_r = np.array([np.nan if v is None else v for v in interval["spread_log_region"]], float)
        s_m, mean_lo, mean_hi = (
            _number(interval.get(k)) for k in ("spread_log_mean", "mean_lo", "mean_hi")
        )
        mean_pt = _number(interval.get("mean", mean_fit))
        row.update(
            {
                "interval_method": interval.get("method"),
                "k_mean": float(interval["k_mean"]),
                "k_region": float(interval["k_region"]),
                "calibration_source": interval.get("calibration_source"),
                # the floors this fit's interval was computed with (a reused fit keeps its own)
                "floor_log_mean": _number(interval.get("floor_log_mean")),
                "floor_log_region": _number(interval.get("floor_log_region")),
                "mean_point": mean_pt,
                "mean_lo": mean_lo,
                "mean_hi": mean_hi,
                "spread_log_mean": s_m,
                "spread_log_region": s_r.tolist(),
                "score_mean": float(interval_scores(mean_pt, true.mean(), s_m)),
                "score_region": interval_scores(ei, true, s_r).tolist(),
                "floor_score_mean": float(
                    floor_scores(np.abs(np.log(mean_pt / true.mean())), np.array(s_m))
                ),
                "floor_score_region": floor_scores(np.abs(np.log(ei / true)), s_r).tolist(),
                "covered_mean_shipped": bool(mean_lo <= true.mean() <= mean_hi),  # NaN: False
                "covered_region_shipped": ((lo <= true) & (true <= hi)).tolist(),
                # regions / mean without an interval (counted as not covered above)
                "interval_missing_regions": len(
                    interval.get("missing_regions") or np.flatnonzero(~np.isfinite(s_r))
                ),
                "interval_mean_missing": not (math.isfinite(mean_lo) and math.isfinite(mean_hi)),
            }
        )
    quality = _get(run, "fit_quality")
    if quality:
        from delssome_norms.fit.quality import assess

        metrics = quality.get("metrics") or {}
        verdict = assess(metrics)  # today's rules on the stored metrics (fits are reused)
        row.update(
            {
                "flagged": verdict["flagged"],
                "flag_reasons": verdict["reasons"],
                "flag_reasons_as_written": list(quality.get("reasons") or []),
                "quality_metrics": {k: v for k, v in metrics.items() if np.isscalar(v)},
            }
        )
    fq = d / "fit_quality.csv"
    if fq.is_file():
        losses = pd.read_csv(fq).set_index("stage")["total_loss"]
        row["test_total_loss"] = float(losses.get("test", np.nan))
    row["wall_s"] = run.get("wall_time_s") or run.get("wall_seconds") or run.get("timings")
    return row


# ------------------------------------------------------------------------------------------- #
# calibration file
# ------------------------------------------------------------------------------------------- #
def round_up(x: float, decimals: int = 4) -> float:
    """``x`` rounded up to ``decimals`` places: a floor rounded down would lose part of the
    conformal quantile's coverage (a tiny tolerance keeps an already-rounded value as it is)."""
    scale = 10.0**decimals
    return math.ceil(x * scale - 1e-9) / scale


def write_calibration(
    summaries: dict[str, dict[str, Any]], budgets: dict[str, dict[str, int]], path: Path, args
) -> dict[str, Any]:
    """Write the factors fitted on all truths per mode (other modes' entries are kept)."""
    from delssome_norms.fit import FitSettings
    from delssome_norms.io import write_json
    from delssome_norms.surrogate.evaluate import weights_sha256

    doc: dict[str, Any] = {"format_version": 2, "level": LEVEL, "modes": {}}
    if path.is_file():
        old = json.loads(path.read_text())
        doc["modes"].update(old.get("modes", {}))
    for mode, s in summaries.items():
        c = s.get("calibrated_all_truths")
        if not c or not (math.isfinite(c["floor_mean"]) and math.isfinite(c["floor_region"])):
            log(f"calibration: {mode} has no finite floors, not written")
            continue
        b = budgets[mode]
        old_entry = doc["modes"].get(mode, {})
        floors = {k: round_up(float(c[k])) for k in ("floor_region", "floor_mean")}
        # checks at other timings were of the old floors and settings: kept only if both are
        # the same (compared below, once the new settings are known)
        doc["modes"][mode] = {
            "k_region": round(K_NORMAL, 4),
            "k_mean": round(K_NORMAL, 4),
            **floors,
            "n_truths": int(s["overall"]["n"]),
            "budget": (
                f"{b['generations']} x {b['popsize']}, n_dup {b['n_dup']}, "
                f"test_top_k {b['test_top_k']}, {args.scan_length:g}-s scans"
            ),
            "settings": {
                **{k: int(b[k]) for k in ("generations", "popsize", "n_dup", "test_top_k")},
                "val_per_generation": int(b.get("val_per_generation", 2 if mode == "surrogate" else 1)),
                "searches": int(b.get("searches", 1)),
                "scan_length": float(args.scan_length),
                "tr": float(getattr(args, "tr", TR)),
                # the defaults every calibration fit used (make_settings changes only the budget)
                "dt_train": FitSettings().dt_train,
                "dt_val": FitSettings().dt_val,
                **({"maps": "fc-gradient"} if getattr(args, "gradient_map", "own") == "fc" else {}),
                **(
                    {"surrogate_weights_sha256": weights_sha256()}  # the default weights
                    if mode == "surrogate"
                    else {}
                ),
            },
            "source": (
                f"bench/ei_calibration.py {getattr(args, 'command', '')} "
                f"(n-truths {args.n_truths}, seed {args.seed}; {time.strftime('%Y-%m-%d')})"
            ),
        }
        new = doc["modes"][mode]
        same = (
            all(old_entry.get(k) == v for k, v in floors.items())
            and old_entry.get("settings") == new["settings"]
        )
        if same and old_entry.get("tr_checks"):
            new["tr_checks"] = old_entry["tr_checks"]
        if old_entry.get("timing_floors") and old_entry.get("settings") == new["settings"]:
            new["timing_floors"] = old_entry["timing_floors"]  # measured on their own truths
    if doc["modes"]:  # never write a file without factors (the fit needs both modes)
        write_json(doc, path)
    return doc


def floors_of(rows: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    """The floors (``floor_mean``, ``floor_region``) every fitted truth's interval was computed
    with, read from its ``run.json`` (a fit reused from the work folder keeps the floors of its
    day); None when the truths' floors differ or some fit has none."""
    seen = {
        (r.get("floor_log_mean"), r.get("floor_log_region")) for r in rows if r.get("status") == "done"
    }
    if len(seen) != 1:
        return None
    ((mean, region),) = seen
    if mean is None or region is None or not (math.isfinite(mean) and math.isfinite(region)):
        return None
    return {"floor_mean": float(mean), "floor_region": float(region)}


def tr_check(summary: dict[str, Any], floors: dict[str, float], args) -> dict[str, Any]:
    """One ``tr_checks`` entry: how the floors the fits used (``floors``) covered at ``args.tr``.
    ``covered``: pooled coverage of mean and regions >= the target's lower end and no stratum
    below :data:`STRATUM_MIN` (wider than needed is conservative, not a failure here)."""
    cov = summary["overall"]["coverage"]
    strata = [x["coverage"] for x in summary.get("strata", {}).values() if x.get("coverage")]
    lowest = min((min(c["mean_shipped"], c["region_shipped"]) for c in strata), default=1.0)
    lo = COVERAGE_RANGE[0]
    return {
        "tr": float(args.tr),
        "scan_length": float(args.scan_length),
        "n_truths": int(summary["overall"]["n"]),
        "coverage_mean": round(float(cov["mean_shipped"]), 4),
        "coverage_region": round(float(cov["region_shipped"]), 4),
        "lowest_stratum": round(float(lowest), 4),
        "covered": bool(
            cov["mean_shipped"] >= lo and cov["region_shipped"] >= lo and lowest >= STRATUM_MIN
        ),
        "floor_mean": float(floors["floor_mean"]),
        "floor_region": float(floors["floor_region"]),
        **({"seed": int(args.seed)} if getattr(args, "seed", None) is not None else {}),
        "source": (
            f"bench/ei_calibration.py {getattr(args, 'command', '')} ({time.strftime('%Y-%m-%d')})"
        ),
    }


def _weights_sha() -> str:
    """SHA-256 of the default surrogate weights (those the calibration fits used)."""
    from delssome_norms.surrogate.evaluate import weights_sha256

    return weights_sha256()


def _entry_of_run(
    doc: dict[str, Any], mode: str, budget: dict[str, int], path: Path, what: str
) -> dict[str, Any] | None:
    """The calibration file's entry of ``mode`` (in ``doc``) when its budget and (surrogate
    mode) weights are those this run's fits used, else None with a line in the log saying why
    ``what`` (the record about to be written) is not written."""
    entry = doc.get("modes", {}).get(mode)
    ref = (entry or {}).get("settings", {})
    used = {k: int(budget[k]) for k in ("generations", "popsize", "n_dup", "test_top_k")}
    used["val_per_generation"] = int(budget.get("val_per_generation", 2 if mode == "surrogate" else 1))
    used["searches"] = int(budget.get("searches", 1))
    if entry is None or any(ref.get(k, v) != v for k, v in used.items()):
        log(f"{what}: {mode}'s calibration in {path} has another budget, not written")
        return None
    if mode == "surrogate" and ref.get("surrogate_weights_sha256") not in (None, _weights_sha()):
        log(f"{what}: {mode}'s calibration in {path} was made with other weights, not written")
        return None
    return entry


def write_tr_check(
    summaries: dict[str, dict[str, Any]],
    budgets: dict[str, dict[str, int]],
    floors: dict[str, dict[str, float]],
    path: Path,
    args,
) -> dict[str, Any]:
    """At another ``--tr``: record in ``path`` how each mode's floors covered at that timing
    (:func:`tr_check`, replacing an earlier check at the same TR and scan length). A mode whose
    file entry has other floors, another budget or (surrogate mode) other weights than the run
    used is not written (said in the log)."""
    from delssome_norms.fit.calibration_scope import floors_at
    from delssome_norms.io import write_json

    doc = json.loads(path.read_text())
    for mode, s in summaries.items():
        entry = _entry_of_run(doc, mode, budgets[mode], path, "tr check")
        if entry is None:
            continue
        now = floors_at(entry, args.tr)  # the floors a fit at this TR uses
        if floors.get(mode) is None or any(
            abs(now[k] - floors[mode][k]) > 1e-9 for k in ("floor_mean", "floor_region")
        ):
            log(
                f"tr check: the fits' intervals used other floors than {mode}'s in {path} at TR "
                f"{args.tr:g} s (or differ between truths: refit them with the file's floors), "
                "not written"
            )
            continue
        own = [e for e in entry.get("timing_floors") or [] if abs(e["tr"] - args.tr) < 1e-9]
        seed = getattr(args, "seed", None)
        if seed is not None and any(e.get("seed") == seed for e in own):
            log(
                f"tr check: {mode}'s floors at TR {args.tr:g} s were measured on these truths "
                f"(seed {seed}); check them on others (another --seed), not written"
            )
            continue
        kept = [  # a check at the same TR and scan length is replaced
            c
            for c in entry.get("tr_checks") or []
            if abs(c["tr"] - args.tr) > 1e-9 or c.get("scan_length") != float(args.scan_length)
        ]
        entry["tr_checks"] = sorted([*kept, tr_check(s, floors[mode], args)], key=lambda c: c["tr"])
    write_json(doc, path)
    return doc


def write_timing_floors(
    summaries: dict[str, dict[str, Any]], budgets: dict[str, dict[str, int]], path: Path, args
) -> dict[str, Any]:
    """At another ``--tr``: record in ``path`` the floors this run's truths need at that timing
    (the conformal floors of :func:`summarise`, rounded up) as the mode's ``timing_floors`` entry
    for ``args.tr`` (replacing an earlier one at the same TR); fits at that TR use them
    (``calibration_scope.floors_at``). Their coverage is then checked on other truths: a run
    with another ``--seed`` and ``--write-calibration`` (:func:`write_tr_check`). A mode whose
    file entry has another budget (or other surrogate weights) is not written."""
    from delssome_norms.io import write_json

    doc = json.loads(path.read_text())
    for mode, s in summaries.items():
        entry = _entry_of_run(doc, mode, budgets[mode], path, "timing floors")
        c = s.get("calibrated_all_truths") or {}
        if entry is None:
            continue
        if not all(math.isfinite(float(c.get(k, math.nan))) for k in ("floor_mean", "floor_region")):
            log(f"timing floors: {mode} has no finite floors, not written")
            continue
        kept = [e for e in entry.get("timing_floors") or [] if abs(e["tr"] - args.tr) > 1e-9]
        new = {
            "tr": float(args.tr),
            "scan_length": float(args.scan_length),
            "n_truths": int(s["overall"]["n"]),
            **{k: round_up(float(c[k])) for k in ("floor_mean", "floor_region")},
            "seed": int(args.seed),
            "source": (
                f"bench/ei_calibration.py {getattr(args, 'command', '')} ({time.strftime('%Y-%m-%d')})"
            ),
        }
        entry["timing_floors"] = sorted([*kept, new], key=lambda e: e["tr"])
    write_json(doc, path)
    return doc


# ------------------------------------------------------------------------------------------- #
# --vary (issue 22 item 3)
# ------------------------------------------------------------------------------------------- #
VARY_NAMES = (
    "searches",
    "n_dup",
    "test_top_k",
    "generations",
    "popsize",
    "scan_length",
    "val_per_generation",
)


def parse_vary(spec: str) -> tuple[str, list[float]]:
    """``NAME=V1,V2`` → (name, values); refuses unknown names."""
    name, _, vals = spec.partition("=")
    name = name.strip().replace("-", "_")
    if name not in VARY_NAMES or not vals:
        names = ", ".join(VARY_NAMES)
        raise SystemExit(f"--vary: expected NAME=V1,V2 with NAME in {names}; got {spec!r}")
    return name, [float(v) for v in vals.split(",")]


def rescan(truths: Sequence[Truth], scan_length: float, args: argparse.Namespace) -> list[Truth]:
    """The same truths (coefficients) with a new scan and true E/I at another scan length [s]."""
    sc, spaces, _ = truth_spaces()
    scan, _ = _truth_timings(scan_length, args.truth_dt, args.tr)
    batch = [{"design": t.design, "coeffs": t.subject.coeffs} for t in truths]
    subjects = simulate_truths(batch, spaces, sc, scan, args.seed + 7, args.device)
    out = []
    iu = np.triu_indices(sc.shape[0], 1)
    for t, s in zip(truths, subjects):
        if s is None:
            continue
        s = replace(s, inputs=replace(s.inputs, subject_id=t.truth_id))
        out.append(replace(t, subject=s, fc_mean=float(s.inputs.fc[iu].mean())))
    return out


def run_vary(
    args, mode: str, truths: list[Truth], budget: dict[str, int], work: Path, grad=None
) -> list[dict]:
    """Refit the first ``--vary-truths`` truths with each value of each ``--vary`` setting."""
    out = []
    for spec in args.vary:
        name, values = parse_vary(spec)
        for v in values:
            sub_args = argparse.Namespace(**vars(args))
            b = dict(budget)
            if name == "scan_length":
                sub_args.scan_length = float(v)
                subset = rescan(truths[: args.vary_truths], float(v), args)
            else:
                b[name] = int(v)
                subset = truths[: args.vary_truths]
            folder = (
                work
                / "vary"
                / budget_tag(
                    mode,
                    b,
                    sub_args.scan_length,
                    args.single_group,
                    args.gradient_map,
                    args.combine,
                    args.tr,
                )
            )
            t0 = time.perf_counter()
            fit_mode(sub_args, mode, subset, b, folder, grad)
            rows = [truth_row(t, folder) for t in subset]
            done = [r for r in rows if r["status"] == "done"]
            e = np.array([r["mean_err_pct"] for r in done])
            test = np.array([r["test_total_loss"] for r in done], dtype=float)  # None -> NaN
            covered_mean = [bool(r["covered_mean_shipped"]) for r in done]
            covered_region = [c for r in done for c in r["covered_region_shipped"]]
            out.append(
                {
                    "mode": mode,
                    "setting": name,
                    "value": v,
                    "n": len(done),
                    "truth_ids": [r["truth_id"] for r in done],
                    "mean_err_pct": e.tolist(),
                    "median_abs_mean_err_pct": float(np.median(np.abs(e))) if len(e) else None,
                    "median_mean_err_pct": float(np.median(e)) if len(e) else None,
                    "median_r": float(np.median([r["r"] for r in done])) if done else None,
                    "test_total_loss": test.tolist(),
                    "median_test_total_loss": float(np.nanmedian(test)) if len(test) else None,
                    "coverage_mean_shipped": float(np.mean(covered_mean)) if done else None,
                    "coverage_region_shipped": float(np.mean(covered_region)) if done else None,
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
            )
            log(f"vary {mode} {name}={v:g}: median |level error| {out[-1]['median_abs_mean_err_pct']}")
    return out


# ------------------------------------------------------------------------------------------- #
def _fmt(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def summary_line(mode: str, s: dict[str, Any], acc: dict[str, bool | None]) -> str:
    """One mode's part of the printed summary."""
    ov, inf = s.get("overall", {}), s.get("fc_ge_0.1", {})
    cov = ov.get("coverage") or {}
    fl = ov.get("flag") or {}

    def pf(key: str) -> str:
        v = acc.get(key)
        return "n/a" if v is None else ("PASS" if v else "FAIL")

    return (
        f"{mode}: n {ov.get('n', 0)} ({s.get('n_failed', 0)} failed); "
        f"FC>=0.1 (n {inf.get('n', 0)}) median r {_fmt(inf.get('median_r'))}"
        f", |level err| {_fmt(inf.get('median_abs_mean_err_pct'))} % {pf('recovery_fc_ge_0.1')}; "
        f"coverage mean/region LOO {_fmt(cov.get('mean_loo'))}/{_fmt(cov.get('region_loo'))} "
        f"{pf('coverage_loo')}, strata {pf('strata_coverage_loo')}; shipped "
        f"{_fmt(cov.get('mean_shipped'))}/{_fmt(cov.get('region_shipped'))} {pf('coverage_shipped')}; "
        f"flag poor {_fmt(fl.get('poor_flagged_share'))} good {_fmt(fl.get('good_flagged_share'))} "
        f"{pf('flag')}"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 truths, tiny budget")
    ap.add_argument("--n-truths", type=int, default=32)
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--scan-length", type=float, default=432.0, help="seconds")
    ap.add_argument(
        "--tr",
        type=float,
        default=TR,
        help="repetition time of the truths' scans, s (default 0.72, HCP; the shipped floors were "
        "calibrated there)",
    )
    ap.add_argument("--truth-dt", type=float, default=0.0005, help="step of the truths' scan and E/I, s")
    ap.add_argument(
        "--fc-truth-map",
        choices=("hierarchy", "model"),
        default="hierarchy",
        help="map of the gradient-design truths: the shipped hierarchy gradient (default) or "
        "the model's own FC gradient (see make_truths)",
    )
    ap.add_argument(
        "--gradient-map",
        choices=("own", "fc"),
        default="own",
        help="gradient the gradient-design truths are fitted with: the map they are linear in "
        "(default; the [1, gradient] design, exactly representable) or the cohort FC gradient "
        "(--maps fc-gradient; misspecified when FC does not show their hierarchy)",
    )
    ap.add_argument("--modes", default="euler,surrogate")
    ap.add_argument("--generations", type=int, default=None)
    ap.add_argument("--popsize", type=int, default=None)
    ap.add_argument("--n-dup", type=int, default=None)
    ap.add_argument("--test-top-k", type=int, default=None)
    ap.add_argument(
        "--combine",
        choices=("best", "mean"),
        default=None,
        help="how several searches (searches > 1 in the budget) give one estimate "
        "(FitSettings.combine; default: mean)",
    )
    ap.add_argument(
        "--mode-budget",
        action="append",
        metavar="MODE=KEY:V,...",
        help="per-mode budget, e.g. euler=generations:30,popsize:100 (repeatable)",
    )
    ap.add_argument("--cpu-budget", action="store_true", help=f"preset {CPU_BUDGET}")
    ap.add_argument(
        "--group-size",
        type=int,
        default=0,
        help="lockstep K, truths per group (0: choose_group_size, divided by the searches)",
    )
    ap.add_argument(
        "--single-group",
        action="store_true",
        help="both designs in the same lockstep groups (with --gradient-map fc the "
        "gradient-design truths get the cohort FC gradient as their own map; for a GPU)",
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--work-dir", type=Path, default=DEFAULT_WORK)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--truths-only", action="store_true", help="make (and cache) the truths, stop")
    ap.add_argument(
        "--first", type=int, default=0, help="fit only the first N truths (0: all; for timing)"
    )
    ap.add_argument("--write-calibration", action="store_true")
    ap.add_argument(
        "--write-timing-floors",
        action="store_true",
        help="at another --tr: record the floors these truths need at that timing (fits there "
        "use them); check them with another --seed and --write-calibration",
    )
    ap.add_argument("--calibration-file", type=Path, default=CALIBRATION_FILE)
    ap.add_argument("--vary", action="append", default=[], metavar="NAME=V1,V2")
    ap.add_argument("--vary-truths", type=int, default=8)
    args = ap.parse_args(argv)
    args.command = " ".join(sys.argv[1:] if argv is None else argv)
    if args.out == RESULTS:  # a smoke run, a misspecified map or another TR keep the shipped results
        suffix = (
            ("_quick" if args.quick else "")
            + ("_fcmap" if args.gradient_map == "fc" else "")
            + ("" if args.tr == TR else f"_tr{args.tr:g}")
        )
        args.out = RESULTS.with_name(f"ei_calibration{suffix}.json")
    if args.quick:
        args.n_truths = min(args.n_truths, 3)
        if args.work_dir == DEFAULT_WORK:
            args.work_dir = DEFAULT_WORK.with_name("ei_calibration_quick")
    if args.n_truths < 1:
        ap.error("--n-truths must be >= 1")
    if not 0 < args.tr <= 30:
        ap.error("--tr must be a positive number of seconds")
    if args.write_timing_floors and (args.tr == TR or args.write_calibration or args.first):
        ap.error(
            "--write-timing-floors: needs another --tr than the calibration's, all the truths "
            "(no --first) and no --write-calibration (check the floors on other truths after)"
        )
    if args.write_timing_floors and args.n_truths < MIN_TR_CHECK_TRUTHS:
        ap.error(f"--write-timing-floors needs at least {MIN_TR_CHECK_TRUTHS} truths (--n-truths)")
    if args.write_calibration and args.first:
        ap.error("--write-calibration: --first fits part of the truths; calibrate on all of them")
    if args.write_calibration and args.tr != TR and args.n_truths < MIN_TR_CHECK_TRUTHS:
        ap.error(
            f"--write-calibration at another --tr records a timing check, which needs at least "
            f"{MIN_TR_CHECK_TRUTHS} truths (--n-truths; --quick uses 3)"
        )
    if args.write_calibration and args.gradient_map != "own":
        ap.error(
            "--write-calibration: the shipped floors are for fits with the default maps; a "
            "misspecified gradient map is measured without writing them"
        )
    for m in args.modes.split(","):
        if m not in ("euler", "surrogate"):
            ap.error(f"--modes: unknown mode {m!r}")
    for spec in args.vary:
        parse_vary(spec)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from _options import machine_info  # bench/ is on sys.path when run as a script

    from delssome_norms.fit.outputs import package_versions
    from delssome_norms.io import write_json

    start = time.perf_counter()
    work = Path(args.work_dir)
    truths, truth_stats = make_truths(args, work)
    if args.truths_only:
        return 0
    cohort_grad = fc_gradient(truths)  # of the whole set, also when fitting --first N
    if args.first:
        truths = truths[: args.first]
    result: dict[str, Any] = {
        "benchmark": "ei_calibration",
        "quick": args.quick,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "versions": package_versions(),
        "machine": machine_info(args.device),
        "torch_threads": torch.get_num_threads(),
        "load_average": os.getloadavg(),
        "truth_stats": truth_stats,
        "fc_gradient_vs_shipped_gradient_r": _fc_gradient_r(truths),
        "truths": [
            {"truth_id": t.truth_id, **t.strata, "margin": t.margin, "fc_mean": t.fc_mean, **t.draw}
            for t in truths
        ],
        "modes": {},
        "targets": {
            "coverage": COVERAGE_RANGE,
            "stratum_coverage_min": STRATUM_MIN,
            "median_r_fc_ge_0.1": TARGET_R,
            "median_abs_mean_err_pct_fc_ge_0.1": TARGET_ERR,
            "poor_flagged_min": FLAG_POOR_MIN,
            "good_flagged_max": FLAG_GOOD_MAX,
        },
        "wall_s": {},
    }
    summaries, budgets, lines = {}, {}, []
    for mode in args.modes.split(","):
        budget = budget_for(args, mode)
        budgets[mode] = budget
        folder = work / budget_tag(
            mode, budget, args.scan_length, args.single_group, args.gradient_map, args.combine, args.tr
        )
        t0 = time.perf_counter()
        walls = fit_mode(args, mode, truths, budget, folder, cohort_grad)
        rows = [truth_row(t, folder) for t in truths]
        summ = summarise(rows)
        acc = acceptance(summ)
        summaries[mode] = summ
        floors_used = floors_of(rows)
        result["modes"][mode] = {
            "budget": budget,
            "floors_used": floors_used,  # read from the fits' run.json (None: they differ)
            "folder": str(folder),
            "rows": rows,
            "summary": summ,
            "acceptance": acc,
            "wall_s": {"fit": round(time.perf_counter() - t0, 1), "groups": walls},
        }
        if args.vary:
            result["modes"][mode]["vary"] = run_vary(args, mode, truths, budget, work, cohort_grad)
        lines.append(summary_line(mode, summ, acc))
        if args.write_timing_floors:  # the floors of this timing, checked by another run
            result["calibration_written"] = write_timing_floors(
                {mode: summ}, budgets, args.calibration_file, args
            )
        elif args.write_calibration and args.tr != TR:  # a check of the floors at this timing
            result["calibration_written"] = write_tr_check(
                {mode: summ}, budgets, {mode: floors_used}, args.calibration_file, args
            )
        elif args.write_calibration:
            result["calibration_written"] = write_calibration(
                {mode: summ}, budgets, args.calibration_file, args
            )
        result["wall_s"]["total"] = round(time.perf_counter() - start, 1)
        write_json(result, args.out)  # after every mode, so a partial run keeps its numbers
    result["wall_s"]["total"] = round(time.perf_counter() - start, 1)
    write_json(result, args.out)
    print(f"ei_calibration: {len(truths)} truths; " + " | ".join(lines) + f" -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
