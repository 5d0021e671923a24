"""Intervals for a subject's E/I: noise floor, near-optimal set and a profile (docs/science.md §5).

What the fit can know about its own uncertainty
-----------------------------------------------
The E/I *pattern* across regions is well identified by FC and FCD, its *level* (the regional
mean) much less: ``bench/identifiability.py`` finds parameter sets ~11 % apart in mean E/I at
equal cost. Any candidate whose cost cannot be told apart from the winner's, given the noise of
the cost itself, is as plausible as the winner. The interval therefore measures how far the E/I
moves over such a **near-optimal set**:

1. **Noise floor of the cost.** The winner is re-simulated at ``dt_val`` with ``n_dup`` fresh
   duplicates (stage ``profile``, row 0; the profile points too). Each duplicate's own cost
   against the subject's data gives the spread of a single simulation's cost (pooled over the
   profile's points: :func:`noise_floor_sd`); divided by ``sqrt(n_dup)`` it is the
   standard deviation ``sd_floor`` of the duplicate-averaged cost that every stage compares
   (approximation: the averaged FC's cost is not the mean of the duplicates' costs, but its noise
   shrinks like the mean's). Two candidates whose costs differ by less than
   ``NEAR_OPTIMAL_Z * sqrt(2) * sd_floor`` cannot be ranked.
2. **Profile along the least-constrained direction.** From the winner the profile steps along
   the longest principal axis of the CMA-ES covariance that drew the winner (the strategy of
   its generation, unless a restart had left it barely adapted), taken in CMA-ES's scaled
   coordinates: ``sigma * sqrt(lambda_max) * D e_max`` (``D`` the per-coefficient scaling) is
   one standard deviation of the search distribution along that axis (Mahalanobis distance 1),
   by ``+-PROFILE_AXIS_STEPS`` (:mod:`~delssome_norms.fit.profile_points`) of those standard
   deviations (a geometric grid that brackets the
   floor from a step the search still explores to 8 x that), and along the known weak direction
   of the model, the wEI level (all wEI coefficients scaled by ``1 +- WEI_SCALE_STEPS``; wEE is
   *not* re-tuned, which would need a search per point: these points only enter the set when the
   data cannot see that change). Points outside the search space or, with the stability gate,
   with an unstable FIC fixed point are not simulated. All points of all subjects of a lockstep
   group are simulated in one call, with ``n_dup`` duplicates at ``dt_val``.
3. **Near-optimal set.** Profile points whose cost is within the tolerance of the winner's
   profile cost, and the tested candidates (``test_top_k``, at ``dt_test``) within it of the
   winner's test cost. Their log E/I deviations from the winner are taken within a stage (the
   profile's at ``dt_val`` from the profile's winner row, the test candidates' from the test
   winner), so the integration step's bias cancels.
4. **Point: the level at the centre of the set.** The winner is one member of a set the data
   cannot rank, and along the weak direction it often sits at one end of it. The estimate keeps
   the winner's regional pattern and moves its level to the midpoint of the members' mean
   levels: every region is multiplied by ``exp(c)``, ``c = (max_j d_j + min_j d_j) / 2`` with
   ``d_j = log mean EI_j - log mean EI_winner`` over the set, the winner's 0 included
   (``level_shift_log`` in ``run.json``). The midpoint is the estimate whose worst error over the
   set is smallest; on the 20 calibration truths with mean FC >= 0.1 (fits of 2026-12-07,
   bench/results/ei_calibration_{surrogate,euler}.json) it lowered the median |level error| from
   12.8 % to 10.3 % (surrogate mode) and from 12.4 % to 11.5 % (Euler mode, 30 x 50) without
   changing the pattern (docs/science.md, "Measured checks"). ``best_parameters.csv``,
   S_E, S_I and r_E stay the winner's. An ensemble of searches (``combine="mean"``) is centred
   by its own average instead.
5. **Spread.** Per region ``s_set = max |log EI_j - log EI_winner - c|`` over the set, the winner
   included (the interval is symmetric about the point, so its half-width must reach the
   farthest member; for the mean this is half the set's range) combined in
   quadrature with the winner's duplicate noise, the standard error of the mean of
   ``log(S_E/S_I)`` over its valid test duplicates: ``s_r = sqrt(s_set^2 + se^2)``; for the mean
   E/I the same with the regional mean of each member. A region's E/I is the level times the
   pattern, and the level is the weakly identified part, so ``s_r`` is at least ``s_mean``.
6. **Calibration.** The near-optimal set is what this fit can see; it misses the error the search
   cannot see at all (a level the data do not pin down, a winner that is the lucky draw of a
   noisy cost), which is why a spread alone under-covers and is sometimes near zero. The
   interval therefore adds a calibrated floor ``f`` in quadrature:
   ``point * exp(+-k sqrt(s^2 + f^2))`` with ``k = 1.645`` (the normal 90 % factor) and ``f``
   (``floor_region``, ``floor_mean`` per mode, log units) from
   ``fit/data/interval_calibration.json``. ``bench/ei_calibration.py`` measures ``f`` on
   synthetic truths fitted in each mode as a split-conformal quantile: each truth needs
   ``f_j = sqrt(max(0, (|log(est/true)| / k)^2 - s_j^2))`` to be covered, and ``f`` is the
   finite-sample 90 % quantile of the ``f_j`` (its coverage is reported leave-one-truth-out). A
   calibration holds for subjects like its truths, at its budget and scan length (both recorded);
   at a slower TR the floors measured there apply (``calibration_scope.floors_at``).

Extra cost
----------
Default settings (100 generations x 100 candidates, 3 duplicates, one validated candidate per
generation in Euler mode and two in surrogate mode, 5 tested at ``dt_test = dt_val / 10``):
the profile simulates ``1 + 2 * len(PROFILE_AXIS_STEPS) + 2 * len(WEI_SCALE_STEPS)`` = 13
points x 3 duplicates = 39 simulations at ``dt_val``. Euler mode: the fit simulates
30,000 (train) + 300 (val) + 15 x 10 (test, in ``dt_val``-step equivalents) = 30,450, so the
profile adds 0.13 %. Surrogate mode, where training is network inference: validation 600 + test
150 equivalents = 750 simulations, the profile adds 5.2 % of the simulated work (less of the
wall time, which includes the network's train stage). Both are far below the 2x budget (stage
wall times of a small fit: docs/science.md, "Measured checks").
"""

from __future__ import annotations

import json
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

import numpy as np
import torch

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import calibration_scope, quality
from delssome_norms.fit.evaluate import EulerEvaluator, simulated_candidates, stack_params
from delssome_norms.fit.profile_points import KIND_AXIS
from delssome_norms.model import SimulationTiming, cost, summarize
from delssome_norms.model.integrate import SimulationResult
from delssome_norms.model.summary import Summary

NEAR_OPTIMAL_Z = 1.645
"""Tolerance of the near-optimal set [standard deviations of a cost difference] (one-sided 95 %)."""
METHOD = "near-optimal-profile"
"""Name of the interval method in ``run.json``."""
CALIBRATION_FILE = "data/interval_calibration.json"
"""Calibration factors, relative to the ``delssome_norms.fit`` package."""
CALIBRATED_SETTINGS = ("generations", "popsize", "n_dup", "test_top_k", "scan_length")
"""Settings every calibration records (``settings`` of a mode in the calibration file): a fit with
other values of the budget's (less or more) or a shorter scan is not covered by the calibration."""
OPTIONAL_SETTINGS = ("val_per_generation", "searches", "dt_train", "dt_val")
"""Settings a calibration may record (checked the same way when present)."""
SCAN_LENGTH_SLACK = calibration_scope.SCAN_LENGTH_SLACK
"""A scan shorter than this fraction of the calibration's is a difference (one TR either way of
the same protocol is not)."""


# ------------------------------------------------------------------------------------------- #
# calibration
# ------------------------------------------------------------------------------------------- #
def _calibration_text() -> str:
    # read per subject (a few hundred bytes): a file rewritten by bench/ei_calibration.py
    # --write-calibration takes effect in the same process
    return files("delssome_norms.fit").joinpath(CALIBRATION_FILE).read_text(encoding="utf-8")


def load_calibration(mode: str) -> dict[str, Any]:
    """Calibration factors of ``mode`` ("euler" or "surrogate") from the shipped package data.

    Returns
    -------
    dict
        ``level``, ``k_region``, ``k_mean``, ``floor_region``, ``floor_mean`` (log units; 0
        when absent), ``source`` (and ``n_truths``, ``budget`` when measured).

    Raises
    ------
    InvalidInputError
        The file is unreadable, lacks the mode, or its factors are not positive numbers.
    """
    try:
        data = json.loads(_calibration_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"unreadable calibration ({exc})", CALIBRATION_FILE) from None
    modes = data.get("modes") if isinstance(data, dict) else None
    entry = modes.get(mode) if isinstance(modes, dict) else None
    if not isinstance(entry, dict):
        raise InvalidInputError(f"has no calibration for mode {mode!r}", CALIBRATION_FILE)
    for key in ("k_region", "k_mean"):
        v = entry.get(key)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise InvalidInputError(
                f"{mode}.{key} must be a positive number, got {v!r}", CALIBRATION_FILE
            )
    for key in ("floor_region", "floor_mean"):
        v = entry.get(key, 0.0)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise InvalidInputError(
                f"{mode}.{key} must be a non-negative number, got {v!r}", CALIBRATION_FILE
            )
    ref = entry.get("settings")
    if ref is not None and not (
        isinstance(ref, dict)
        and all(
            isinstance(ref.get(k), (int, float)) and math.isfinite(ref[k]) and ref[k] > 0
            for k in (*CALIBRATED_SETTINGS, *(o for o in OPTIONAL_SETTINGS if o in ref))
        )
    ):
        raise InvalidInputError(
            f"{mode}.settings must give positive numbers for {', '.join(CALIBRATED_SETTINGS)}",
            CALIBRATION_FILE,
        )
    _check_tr_checks(mode, entry)
    return {"level": float(data.get("level", 0.9)), **entry}


def _check_tr_checks(mode: str, entry: dict[str, Any]) -> None:
    """Refuse a calibration whose ``settings.tr`` or ``tr_checks`` (timings its floors were
    checked at: ``tr`` [s], ``covered``, ``coverage_mean``, ``coverage_region``, optionally
    ``scan_length`` [s] and the ``floor_mean``/``floor_region`` checked) are malformed."""

    def number(v: Any, low: float = 0.0, strict: bool = True) -> bool:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        return ok and (v > low if strict else v >= low)

    ref = entry.get("settings") or {}
    if "tr" in ref and not number(ref["tr"]):
        raise InvalidInputError(f"{mode}.settings.tr must be a positive number [s]", CALIBRATION_FILE)
    floors = entry.get("timing_floors") or []
    if not isinstance(floors, list) or not all(
        isinstance(e, dict)
        and number(e.get("tr"))
        and all(number(e.get(k), strict=False) for k in ("floor_mean", "floor_region"))
        and (e.get("scan_length") is None or number(e["scan_length"]))
        for e in floors
    ):
        raise InvalidInputError(
            f"{mode}.timing_floors must be a list of {{tr [s], floor_mean, floor_region (>= 0), "
            "optional scan_length [s]}",
            CALIBRATION_FILE,
        )
    checks = entry.get("tr_checks") or []
    if not isinstance(checks, list) or not all(
        isinstance(c, dict)
        and number(c.get("tr"))
        and isinstance(c.get("covered"), bool)
        and all(
            number(c.get(k), strict=False) and c[k] <= 1 for k in ("coverage_mean", "coverage_region")
        )
        and all(c.get(k) is None or number(c[k], strict=False) for k in ("floor_mean", "floor_region"))
        and (c.get("scan_length") is None or number(c["scan_length"]))
        for c in checks
    ):
        raise InvalidInputError(
            f"{mode}.tr_checks must be a list of {{tr [s], covered (true/false), coverage_mean, "
            "coverage_region (0-1), optional scan_length [s], floor_mean, floor_region (>= 0)}",
            CALIBRATION_FILE,
        )


def fit_budget(
    settings: Any, scan_length: float, subject: Any = None, design: str | None = None
) -> dict[str, Any]:
    """What :func:`calibration_differences` compares of a fit: its ``FitSettings`` budget and
    steps, the subject's scan length [s] and, with ``subject`` (``SubjectInputs``) and ``design``
    (``build_space``'s description), its atlas and maps
    (:func:`~delssome_norms.fit.calibration_scope.fit_scope`)."""
    return {
        **calibration_scope.fit_scope(settings, subject, design),
        "generations": settings.cmaes.generations,
        "popsize": settings.cmaes.popsize,
        "n_dup": settings.n_dup,
        "test_top_k": settings.test_top_k,
        "val_per_generation": settings.validated_per_generation,
        "searches": settings.searches,
        "combine": settings.combine_rule,
        "scan_length": float(scan_length),
        "stability_gate": bool(settings.stability_gate),
        "surrogate_weights_sha256": (
            getattr(settings, "surrogate_weights_sha256", None) if settings.mode == "surrogate" else None
        ),
    }


def warn_uncalibrated(
    settings: Any,
    scan_lengths: Sequence[float],
    stacklevel: int = 3,
    trs: Sequence[float | None] | None = None,
) -> None:
    """Before a cohort's work: one warning when the interval calibration will not cover some of
    its fits' budgets, steps, scans [s] or TRs [s] (``trs``, one per scan; None: not known) (the
    fits say so again in their results, also about their atlas and maps), so a long run can be
    set up again first. Nothing is said without intervals (``settings.interval`` False)."""
    if not settings.interval:
        return
    cal = load_calibration(settings.mode)
    found: dict[str, int] = {}
    short: list[float] = []  # scans shorter than the calibration's: one phrase for all of them
    by_reason: dict[str, Counter] = {}  # TRs outside the checked timings, per reason
    pairs = zip(scan_lengths, trs if trs is not None else [None] * len(scan_lengths), strict=True)
    for (scan, tr), count in Counter(pairs).items():
        fit = {**fit_budget(settings, scan), **({"tr": float(tr)} if tr is not None else {})}
        for phrase in calibration_differences(cal, fit) or []:
            if phrase.startswith("scan_length "):
                short += [float(scan)] * count
            elif phrase.startswith("tr ") and " s (" in phrase:  # TRs said once per reason
                said, _, reason = phrase[3:].partition(" s (")
                by_reason.setdefault(reason, Counter())[float(said)] += count
            else:
                found[phrase] = found.get(phrase, 0) + count
    for reason, counts in by_reason.items():
        found[f"tr {', '.join(f'{t:g}' for t in sorted(counts))} s ({reason}"] = sum(counts.values())
    if getattr(settings, "maps", None) == "fc-gradient":  # known before any subject is read
        found[
            "maps fc-gradient for 68-region subjects without maps (the calibration's truths were "
            "built on the maps they were fitted with; a gradient from FC is another map)"
        ] = len(scan_lengths)
    if short:
        ref = cal["settings"]["scan_length"]
        lo, hi = min(short), max(short)
        span = f"{lo:g} s" if lo == hi else f"{lo:g}-{hi:g} s"
        found[f"scan_length {span} (calibrated at {ref:g} s)"] = len(short)
    if found:
        n = len(scan_lengths)
        shown = "; ".join(f"{p} [{c} of {n}]" for p, c in found.items())
        measured = f" ({cal['budget']})" if cal.get("budget") else ""
        warnings.warn(
            f"the E/I intervals will not be calibrated for these fits ({shown}): their coverage "
            "is not measured and they may be too narrow; the calibration applies to the budget it "
            f"was measured at{measured}, on scans at least that long at the timings it was "
            "checked at "
            "(README 'Reading the intervals and the flag')",
            InputWarning,
            stacklevel=stacklevel,
        )


def calibration_differences(calibration: dict[str, Any], fit: dict[str, Any]) -> list[str] | None:
    """How a fit differs from the calibration fits its interval's floors come from.

    The floors were measured on truths fitted with the calibration's budget and scan length
    (``settings`` of the mode in the calibration file): they apply to that budget. A fit with
    fewer generations or candidates per generation, fewer duplicates, tested or validated
    candidates, a shorter scan [s], or the best of several searches (picking the lowest of
    several noisy minima, which the calibration's single search did not do) has a noisier winner
    than the floors allow for: its interval may be too narrow. A fit with more of any of them is
    not measured either: a longer search narrows the fit's own spread (the profile's grid scales
    with the final CMA-ES step size) while the floor stays, so its coverage may drop too. Each
    difference is returned as one phrase starting with the setting's name (a budget above the
    calibration's says that coverage at another budget is not measured). The scan is compared in
    seconds, not frames, and a longer one is not a difference: 32 truths at TR 2.0 s and 480 s (240
    frames, against the calibration's 600) were covered 0.91 / 0.88 (mean / regions) in surrogate
    mode (``bench/results/ei_calibration_tr2.json``). The TR is compared with the timings each
    mode was checked at (the file's ``tr_checks``;
    :func:`~delssome_norms.fit.calibration_scope.timing_difference`): Euler mode's intervals
    covered only 0.84 / 0.85 in that run (0.57 / 0.68 for strongly coupled truths:
    docs/accuracy.md, "The calibration at another timing") and 0.91 / 0.91 at TR 1.0 s, so an
    Euler fit at a TR above 1.1 s is a difference, a surrogate fit at 0.648-2.2 s is not
    (on scans of at least 456 s; 432-s scans up to 1.33 s). The
    truths' atlas (68 DK68 regions), maps (the shipped ones; a gradient from FC is another map)
    and steps (``dt_train``, ``dt_val``: a coarser one is a difference) are compared too
    (:func:`~delssome_norms.fit.calibration_scope.scope_differences`), as is an ensemble
    (``combine="mean"``) whose estimate fell back to the best search (``combined_by`` "best").
    A search that stopped early is judged by the budget asked for, as the calibration's were.
    So is a fit without the stability gate, and one scored by surrogate weights other than those
    the calibration recorded (``surrogate_weights_sha256``: another network ranks candidates
    differently). The test step is not compared: E/I moved by about 2e-5 (relative) between
    ``dt_test`` 0.005 and 0.0005 s.

    Parameters
    ----------
    calibration : dict
        From :func:`load_calibration`.
    fit : dict
        The fit's ``generations``, ``popsize``, ``n_dup``, ``test_top_k``, ``scan_length`` [s],
        and optionally ``val_per_generation``, ``searches``, ``combine``, ``stability_gate``,
        ``surrogate_weights_sha256``, ``dt_train``, ``dt_val``, ``tr`` [s], ``atlas``,
        ``fc_gradient`` and ``combined_by`` (:func:`fit_budget`; a calibration's
        ``settings`` may record ``searches``: made with averaged searches, it does not cover
        fewer).

    Returns
    -------
    list of str or None
        Empty when the calibration applies; None when the calibration records no settings
        (written before they were recorded), so nothing can be said.
    """
    ref = calibration.get("settings")
    if not isinstance(ref, dict):
        return None
    out = []
    for key in ("generations", "popsize", "n_dup", "test_top_k", "val_per_generation"):
        if fit.get(key) is None or ref.get(key) is None or fit[key] == ref[key]:
            continue
        more = "; coverage at another budget is not measured" if fit[key] > ref[key] else ""
        out.append(f"{key} {fit[key]:g} (calibrated at {ref[key]:g}{more})")
    searches, ref_searches = int(fit.get("searches") or 1), int(ref.get("searches") or 1)
    if searches < ref_searches:  # a calibration of averaged searches is less noisy than one
        out.append(f"searches {searches} (calibrated at {ref_searches}, combined by mean)")
    elif searches > 1 and fit.get("combine") == "best":
        out.append(
            f"searches {fit['searches']} with combine best (calibrated on one search; "
            "--combine mean is covered)"
        )
    if fit["scan_length"] < SCAN_LENGTH_SLACK * ref["scan_length"]:
        out.append(f"scan_length {fit['scan_length']:g} s (calibrated at {ref['scan_length']:g} s)")
    if fit.get("stability_gate") is False and ref.get("stability_gate", True):
        out.append("stability_gate off (calibrated with it on)")
    sha, ref_sha = fit.get("surrogate_weights_sha256"), ref.get("surrogate_weights_sha256")
    if sha and ref_sha and sha != ref_sha:  # other weights score the search differently
        out.append(f"surrogate weights {sha[:12]} (calibrated with the shipped {ref_sha[:12]})")
    timing = calibration_scope.timing_difference(calibration, fit.get("tr"), fit["scan_length"])
    return out + ([timing] if timing else []) + calibration_scope.scope_differences(ref, fit)


# ------------------------------------------------------------------------------------------- #
# simulation with per-duplicate costs
# ------------------------------------------------------------------------------------------- #
def simulate_with_duplicates(
    simulator: Any,
    regional: list,
    subject_index: np.ndarray,
    seed: int,
    timing: SimulationTiming,
) -> dict[str, np.ndarray]:
    """Simulate candidates and score each duplicate, and pairs of duplicates, besides their mean.

    Parameters
    ----------
    simulator : EulerEvaluator
        Any object with the evaluator's ``simulate`` works too; then the per-duplicate and
        pairwise costs are NaN (they need the simulated FC).
    regional : list of RegionalParams
    subject_index : ndarray of int, shape (B,)
    seed : int
    timing : SimulationTiming

    Returns
    -------
    dict
        ``corr``, ``l1``, ``ks`` (B,) of the duplicate-averaged FC/FCD (as every stage scores);
        ``s_e``, ``s_i``, ``r_e`` (B, D, N); ``valid`` (B, D); ``dup_total`` (B, D): each
        duplicate's total cost against the subject's data; ``pair_corr``, ``pair_l1``,
        ``pair_ks`` (B,): the mean over pairs of valid duplicates of the cost of one duplicate's
        FC/FCD against another's (the model's own floor at this scan length; NaN with one
        duplicate).
    """
    params = stack_params(regional)
    idx = torch.as_tensor(np.asarray(subject_index), dtype=torch.long)
    if not isinstance(simulator, EulerEvaluator):
        out = simulator.simulate(params, idx, seed=seed, timing=timing)
        b, d = out.valid.shape
        nan = np.full(b, np.nan)
        return {
            **{k: np.asarray(getattr(out, k)) for k in ("corr", "l1", "ks", "s_e", "s_i", "r_e")},
            "valid": np.asarray(out.valid, dtype=bool),
            "dup_total": np.full((b, d), np.nan),
            "pair_corr": nan,
            "pair_l1": nan.copy(),
            "pair_ks": nan.copy(),
        }
    res = simulator.run(params, idx, seed=seed, timing=timing)
    b, d, t, n = res.bold.shape
    flat = SimulationResult(
        bold=res.bold.reshape(b * d, 1, t, n),
        s_e=res.s_e.reshape(b * d, 1, n),
        s_i=res.s_i.reshape(b * d, 1, n),
        r_e=res.r_e.reshape(b * d, 1, n),
        valid=res.valid.reshape(b * d, 1),
        w_ie=res.w_ie.repeat_interleave(d, dim=0),
        ei_ratio=(res.s_e / res.s_i).reshape(b * d, n),
    )
    # one "set" per duplicate, with the FCD precision of the evaluator's other stages
    per = summarize(flat, timing, fcd_products=simulator.fcd_products)
    del flat, res.bold
    fc = per.fc.reshape(b, d, n, n)
    cdf = per.fcd_cdf.reshape(b, d, -1)
    valid = res.valid.to(fc.device)
    fc_emp, cdf_emp = simulator.empirical_for(idx, fc.device)
    mask = valid.to(fc.dtype)
    count = mask.sum(dim=1)
    fc_mean = (torch.where(valid[..., None, None], fc, 0.0).sum(dim=1)) / count[:, None, None]
    cdf_mean = (torch.where(valid[..., None], cdf, 0.0).sum(dim=1)) / count[:, None]
    mean_losses = cost(Summary(fc_mean, cdf_mean, valid.all(dim=1)), fc_emp, cdf_emp)
    dup_losses = cost(
        Summary(fc.reshape(b * d, n, n), cdf.reshape(b * d, -1), valid.reshape(b * d)),
        fc_emp.repeat_interleave(d, dim=0),
        cdf_emp.repeat_interleave(d, dim=0),
    )
    pair = np.full((3, b), np.nan)
    pairs = [(i, j) for i in range(d) for j in range(i + 1, d)]
    if pairs:
        terms = []
        for i, j in pairs:
            both = valid[:, i] & valid[:, j]
            # an invalid duplicate's FC is NaN: the subject's data stand in (its loss is masked)
            ref_fc = torch.where(both[:, None, None], fc[:, j], fc_emp.to(fc.dtype))
            ref_cdf = torch.where(both[:, None], cdf[:, j], cdf_emp.to(cdf.dtype))
            pair_losses = cost(Summary(fc[:, i], cdf[:, i], both), ref_fc, ref_cdf)
            terms.append(torch.stack(list(pair_losses)))
        stacked = torch.stack(terms).cpu().numpy()  # (pairs, 3, B)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are expected
            pair = np.nanmean(stacked, axis=0)
    out = simulated_candidates(mean_losses, res, simulator.rate_gate)
    dup_total = dup_losses.total.detach().cpu().numpy().astype(np.float64).reshape(b, d)
    dup_total = np.where(out.valid, dup_total, np.nan)
    return {
        "corr": out.corr,
        "l1": out.l1,
        "ks": out.ks,
        "s_e": out.s_e,
        "s_i": out.s_i,
        "r_e": out.r_e,
        "valid": out.valid,
        "dup_total": dup_total,
        "pair_corr": pair[0],
        "pair_l1": pair[1],
        "pair_ks": pair[2],
    }


# ------------------------------------------------------------------------------------------- #
# the spread
# ------------------------------------------------------------------------------------------- #
def _ratio(s_e: np.ndarray, s_i: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean over valid duplicates of S_E/S_I, (M, N); NaN where no duplicate is valid."""
    mask = valid[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mask, s_e / s_i, 0.0).sum(axis=1) / mask.sum(axis=1)


def _cost(stage: dict[str, np.ndarray]) -> np.ndarray:
    return stage["corr"] + stage["l1"] + stage["ks"]


def noise_floor_sd(dup_total: np.ndarray, valid: np.ndarray) -> float:
    """Standard deviation of a duplicate-averaged cost from the duplicates' own costs.

    The within-point variance of the duplicates' costs is pooled over every profile point with at
    least two valid duplicates (the points lie near the winner, so their noise is alike; three
    duplicates of one point alone would give an estimate with two degrees of freedom), and
    divided by the number of duplicates averaged.

    Parameters
    ----------
    dup_total : ndarray of shape (M, D)
        Each duplicate's total cost (NaN where invalid).
    valid : ndarray of bool, shape (M, D)

    Returns
    -------
    float
        NaN when no point has two valid duplicates.
    """
    ok = valid & np.isfinite(dup_total)
    n = ok.sum(axis=1)
    rows = np.flatnonzero(n >= 2)
    if rows.size == 0:
        return math.nan
    x = np.where(ok, dup_total, 0.0)[rows]
    mean = x.sum(axis=1) / n[rows]
    ss = np.where(ok[rows], (x - mean[:, None]) ** 2, 0.0).sum(axis=1)
    var = ss.sum() / (n[rows] - 1).sum()  # pooled within-point variance of one duplicate's cost
    return float(math.sqrt(var / dup_total.shape[1]))


def _log_devs(ratios: np.ndarray, ref: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, list]:
    """Log deviations of members' E/I ``ratios`` (M, N) from ``ref`` (N,): per region (NaN where
    a member's E/I is not finite and positive) and of the mean over ``regions`` (members with a
    finite positive E/I in all of them only)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isfinite(ratios) & (ratios > 0)
        dev = np.where(ok, np.log(np.where(ok, ratios, 1.0)) - np.log(ref), np.nan)
        whole = ok[:, regions].all(axis=1)
        means = np.log(ratios[whole][:, regions].mean(axis=1)) - math.log(ref[regions].mean())
    return dev, list(means)


def log_spread(
    test: dict[str, np.ndarray],
    winner: int,
    profile: dict[str, np.ndarray] | None,
    z: float = NEAR_OPTIMAL_Z,
    center: bool = True,
    eligible: np.ndarray | None = None,
) -> dict[str, Any]:
    """Per-region and mean spreads ``s`` on the log scale, about the centre of the near-optimal
    set's levels (see the module docstring).

    Non-finite values do not spread: a member (near-optimal candidate or profile point) whose
    E/I is not finite and positive in a region counts in the other regions (and not in the
    mean's spread), and is counted in ``near_optimal_partial``; a profile whose winner row has no
    finite cost or E/I is left out (``profile_used`` False). A region where the winner's own E/I
    is not finite and positive gets a NaN spread (its interval is then reported as missing by
    :func:`interval_block`); the mean's spread is then that of the mean over the other regions.

    Parameters
    ----------
    test : dict
        The ``test`` stage (``corr``, ``l1``, ``ks`` (k,), ``s_e``, ``s_i`` (k, D, N), ``valid``).
    winner : int
        Row of the winner in ``test``.
    profile : dict or None
        The ``profile`` stage (row 0 the winner); None: test candidates and duplicate noise only.
    z : float
        Tolerance of the near-optimal set [standard deviations of a cost difference].
    center : bool
        Centre the level (default): ``level_shift_log`` is the midpoint of the members' log
        mean-E/I deviations from the winner (the winner's 0 included) and the spreads are taken
        about it; False: about the winner (``level_shift_log`` 0).
    eligible : ndarray of bool, shape (k,), optional
        Test rows that may join the near-optimal set (default all): a candidate whose test
        simulation left the FIC regime was passed over as the estimate, and its E/I is no
        estimate of the subject's either, however low its cost.

    Returns
    -------
    dict
        ``region`` (N,), ``mean`` (float), ``level_shift_log`` (float: the estimate is the
        winner's E/I times ``exp(level_shift_log)`` in every region) and metrics:
        ``noise_floor_sd``, ``tolerance``,
        ``near_optimal_profile``, ``near_optimal_test``, ``near_optimal_pattern_r`` (lowest r
        of a near-optimal test candidate's regional E/I with the winner's), ``near_optimal_partial``,
        ``profile_used``, ``profile_open`` (an outermost axis point is still near-optimal: the
        set may extend further), ``dup_se_log_mean``, ``set_spread_log_mean``.
    """
    tv = test["valid"].astype(bool)
    t_ratio = _ratio(test["s_e"], test["s_i"], tv)
    t_cost = _cost(test)
    point = t_ratio[winner]
    with np.errstate(invalid="ignore"):
        regions = np.isfinite(point) & (point > 0)  # where the winner has an E/I
    tol, sd = 0.0, math.nan
    n = t_ratio.shape[1]
    devs_r = [np.where(regions, 0.0, np.nan)]
    devs_m = [0.0]
    info: dict[str, Any] = {
        "near_optimal_profile": 0,
        "near_optimal_partial": 0,
        "profile_used": False,
        "profile_open": False,
    }

    def add(ratios: np.ndarray, ref: np.ndarray) -> None:
        dev, means = _log_devs(ratios, ref, regions)
        devs_r.extend(dev)
        devs_m.extend(means)
        info["near_optimal_partial"] += int(np.isnan(dev[:, regions]).any(axis=1).sum())

    if profile is not None:
        pv = profile["valid"].astype(bool)
        sd = noise_floor_sd(profile["dup_total"], pv)
        if math.isfinite(sd):
            tol = z * math.sqrt(2.0) * sd
        p_ratio = _ratio(profile["s_e"], profile["s_i"], pv)
        p_cost = _cost(profile)
        with np.errstate(invalid="ignore"):
            p_ok = bool(np.all(np.isfinite(p_ratio[0][regions]) & (p_ratio[0][regions] > 0)))
        if np.isfinite(p_cost[0]) and p_ok and regions.any():
            info["profile_used"] = True
            near = np.isfinite(p_cost) & (p_cost <= p_cost[0] + tol)
            near[0] = False
            info["near_optimal_profile"] = int(near.sum())
            add(p_ratio[near], p_ratio[0])
            kind, pos = profile["kind"], profile["position"]
            axis = kind == KIND_AXIS
            for sign in (-1.0, 1.0):
                side = axis & (np.sign(pos) == sign)
                if side.any():
                    outer = np.flatnonzero(side)[np.argmax(np.abs(pos[side]))]
                    info["profile_open"] |= bool(near[outer])
    near_t = np.isfinite(t_cost) & (t_cost <= t_cost[winner] + tol)
    if eligible is not None:
        near_t &= np.asarray(eligible, dtype=bool)
    near_t[winner] = False
    info["near_optimal_test"] = int(near_t.sum())
    info["near_optimal_pattern_r"] = quality.min_pattern_r(point, t_ratio[near_t])
    add(t_ratio[near_t], point)
    # the estimate's level is the centre of the set's range of mean levels, not the winner's
    # (one member of a set the data cannot rank); spreads are taken about that centre
    shift = 0.5 * (max(devs_m) + min(devs_m)) if regions.any() and center else 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a region with no finite deviation
        set_r = np.nanmax(np.abs(np.stack(devs_r) - shift), axis=0)
    set_m = float(np.max(np.abs(np.asarray(devs_m) - shift))) if regions.any() else math.nan
    # duplicate noise of the winner's E/I (standard error of the mean over valid duplicates)
    ok = tv[winner]
    with np.errstate(invalid="ignore", divide="ignore"):
        dup = test["s_e"][winner][ok] / test["s_i"][winner][ok]  # (nv, N)
        logs = np.log(dup)
        logs_m = np.log(dup[:, regions].mean(axis=1)) if regions.any() else np.full(len(dup), np.nan)
    if ok.sum() >= 2:
        with np.errstate(invalid="ignore"):
            se_r = logs.std(axis=0, ddof=1) / math.sqrt(ok.sum())
            se_m = float(logs_m.std(ddof=1) / math.sqrt(ok.sum()))
    else:
        se_r, se_m = np.zeros(n), 0.0
    s_mean = math.sqrt(set_m**2 + se_m**2)
    region = np.sqrt(set_r**2 + se_r**2)
    region = np.where(regions & np.isfinite(region), np.fmax(region, s_mean), np.nan)
    return {
        "region": region,
        "mean": s_mean,
        "noise_floor_sd": sd,
        "tolerance": tol,
        "dup_se_log_mean": se_m,
        "set_spread_log_mean": set_m,
        "level_shift_log": shift,
        **info,
    }


def add_member_spread(spread: dict[str, Any], member_logs: np.ndarray) -> dict[str, Any]:
    """The spread of an estimate that averages several searches' candidates (``combine="mean"``).

    ``member_logs`` (M, N) holds each member's log E/I; the estimate is their mean. Each
    member's deviation from it (the largest per region, and of the mean E/I) is combined in
    quadrature with the winner-centred spread of :func:`log_spread`, so the interval covers the
    searches that were averaged as well as the near-optimal set (the regions' spread stays at
    least the mean's). Adds ``ensemble_spread_log_mean``.
    """
    centre = member_logs.mean(axis=0)
    dev_r = np.max(np.abs(member_logs - centre), axis=0)
    means = np.log(np.exp(member_logs).mean(axis=1))
    dev_m = float(np.max(np.abs(means - math.log(float(np.exp(centre).mean())))))
    s_mean = math.sqrt(spread["mean"] ** 2 + dev_m**2)
    region = np.maximum(np.sqrt(spread["region"] ** 2 + dev_r**2), s_mean)
    return {**spread, "region": region, "mean": s_mean, "ensemble_spread_log_mean": dev_m}


def interval_block(
    point: np.ndarray,
    spread: dict[str, Any],
    mode: str,
    calibration: dict[str, Any] | None = None,
    fit: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Regional bounds and the ``run.json`` ``ei_interval`` block.

    Parameters
    ----------
    point : ndarray of shape (N,)
        The E/I estimate.
    spread : dict
        From :func:`log_spread`.
    mode : str
        Fit mode (selects the calibration).
    calibration : dict, optional
        Overrides :func:`load_calibration` (``k_region``, ``k_mean``, optional
        ``floor_region``/``floor_mean`` [log units, default 0], ``level``, ``source``,
        ``settings``).
    fit : dict, optional
        The fit's budget and scan length (:func:`calibration_differences`); the block then
        records ``calibration_applies`` (None: unknown) and ``calibration_differences``. Its
        ``tr`` [s] selects the floors (``calibration_scope.floors_at``; the calibration's own
        are then recorded too, as ``base_floor_log_region``/``base_floor_log_mean``).

    Returns
    -------
    lo, hi : ndarray of shape (N,)
        ``point * exp(-+k_region sqrt(s_r^2 + f_r^2))``: ``lo <= point <= hi`` in every region
        whose E/I is finite and positive and whose spread is finite (equality only with a zero
        spread and floor); NaN in the others, which ``block["missing_regions"]`` lists.
    block : dict
        Strict JSON: every number is finite or None. ``mean`` is the regional mean of ``point``
        and ``mean_lo``/``mean_hi`` the interval of that mean (from the mean's own spread, not
        the mean of the regional bounds), None when the mean or its spread is not finite;
        ``missing_regions`` (0-based, empty when every region has an interval) and, when some
        interval is missing, ``missing_reason``.

    Raises
    ------
    InvalidInputError
        A calibration factor is not a positive number (a floor not a non-negative one).
    """
    cal = load_calibration(mode) if calibration is None else calibration
    k_r, k_m = float(cal["k_region"]), float(cal["k_mean"])
    base_r, base_m = float(cal.get("floor_region", 0.0)), float(cal.get("floor_mean", 0.0))
    tr = (fit or {}).get("tr")
    floors = calibration_scope.floors_at(cal, None if tr is None else float(tr))
    f_r, f_m = floors["floor_region"], floors["floor_mean"]
    same = (f_r, f_m) == (base_r, base_m)
    base = {} if same else {"base_floor_log_region": base_r, "base_floor_log_mean": base_m}
    for name, v in (("k_region", k_r), ("k_mean", k_m), ("floor_region", f_r), ("floor_mean", f_m)):
        if not (math.isfinite(v) and (v > 0 if name.startswith("k") else v >= 0)):
            need = "a positive" if name.startswith("k") else "a non-negative"
            raise InvalidInputError(f"{mode}.{name} must be {need} number, got {v!r}", "calibration")
    point = np.asarray(point, dtype=np.float64)
    s_r = np.asarray(spread["region"], dtype=np.float64)
    s_m = float(spread["mean"])
    with np.errstate(invalid="ignore", over="ignore"):
        half_r = k_r * np.sqrt(s_r**2 + f_r**2)
        ok = np.isfinite(point) & (point > 0) & np.isfinite(half_r)
        lo = np.where(ok, point * np.exp(-np.where(ok, half_r, 0.0)), np.nan)
        hi = np.where(ok, point * np.exp(np.where(ok, half_r, 0.0)), np.nan)
    mean = float(np.mean(point))
    mean_ok = math.isfinite(mean) and mean > 0 and math.isfinite(s_m)
    half_m = k_m * math.sqrt(s_m**2 + f_m**2) if mean_ok else math.nan
    missing = np.flatnonzero(~ok)
    block = {
        "level": float(cal.get("level", 0.9)),
        "method": METHOD,
        "mode": mode,
        "k_region": k_r,
        "k_mean": k_m,
        "floor_log_region": f_r,
        "floor_log_mean": f_m,
        **base,  # the calibration's own floors, when those of another timing apply
        "calibration_source": str(cal.get("source", "")),
        "calibration_budget": str(cal.get("budget", "")),
        "mean": mean if math.isfinite(mean) else None,
        "mean_lo": mean * math.exp(-half_m) if mean_ok else None,
        "mean_hi": mean * math.exp(half_m) if mean_ok else None,
        "spread_log_mean": s_m if math.isfinite(s_m) else None,
        "level_shift_log": float(spread.get("level_shift_log", 0.0)),
        "spread_log_region": [float(x) if math.isfinite(x) else None for x in s_r],
        "missing_regions": missing.tolist(),
    }
    reasons = []
    if missing.size:
        reasons.append(
            f"no interval for {missing.size} region(s) (0-based {missing[:10].tolist()}): their "
            "E/I is not finite and positive or their spread is not finite"
        )
    if not mean_ok:
        reasons.append("no interval for the mean: its E/I or its spread is not finite")
    if reasons:
        block["missing_reason"] = "; ".join(reasons)
    if fit is not None:
        differences = calibration_differences(cal, fit)
        block["calibration_applies"] = None if differences is None else not differences
        block["calibration_differences"] = differences or []
        if fit.get("tr") is not None:  # compared (a result without it is judged when read)
            block["calibration_tr"] = float(fit["tr"])
    return lo, hi, block
