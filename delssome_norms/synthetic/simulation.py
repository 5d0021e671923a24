"""Simulations behind the synthetic cohort: SC, timing, E/I-mapping calibration, model set-up.

Also the selection of the end-to-end subjects the fitter can represent. See
:mod:`delssome_norms.synthetic` (docs/science.md §8).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from delssome_norms.datasets.atlas import DK68_REGIONS
from delssome_norms.datasets.maps import load_default_maps
from delssome_norms.datasets.template import load_default_template, log_weights
from delssome_norms.model import PFICParams, SimulationTiming, scale_sc, simulate, summarize
from delssome_norms.synthetic.demographics import People, myelin_map
from delssome_norms.synthetic.ei_mapping import EIMapping, WEERule, fit_wee_rule, fixed_point_ei
from delssome_norms.synthetic.spec import (
    N_DUPLICATES,
    SUBJECT_DT,
    SUBJECT_SCAN_LENGTH,
    SUBJECT_TR,
    CohortSpec,
    simulation_seed,
)

# --------------------------------------------------------------------------------------------------
# Simulation set-up: SC, wEE rule, default gradient, E/I-mapping calibration
# --------------------------------------------------------------------------------------------------


def simulation_sc(sc: np.ndarray | None = None) -> np.ndarray:
    """The SC every simulation of the cohort uses: ``log1p(w / min positive w)`` of the template.

    The tvb-data weights are normalised streamline counts spanning five orders of magnitude;
    scaled to a maximum of 0.02 (docs/science.md §1) their row sums are about 0.02, against about 0.27
    for the paper's log-count SC, and the simulated FC is then close to 0 for every stable
    parameter set. A log transform like the paper's (log streamline counts) restores realistic
    coupling. Zeros stay zero; the result is symmetric with a zero diagonal, unscaled.

    Parameters
    ----------
    sc : ndarray of shape (N, N), optional
        Raw SC; default the packaged template
        (:func:`~delssome_norms.datasets.load_default_template`).

    Returns
    -------
    ndarray of shape (N, N), float64.
    """
    return log_weights(load_default_template().weights if sc is None else sc)


def subject_timing(scan_length: float = SUBJECT_SCAN_LENGTH, dt: float = SUBJECT_DT) -> SimulationTiming:
    """:class:`~delssome_norms.model.SimulationTiming` of the simulations (TR 0.72 s).

    Parameters
    ----------
    scan_length : float
        Scan length in seconds.
    dt : float
        Integration step in seconds.

    Returns
    -------
    SimulationTiming
    """
    return SimulationTiming(tr=SUBJECT_TR, scan_length=scan_length, dt=dt)


@dataclass(frozen=True)
class SimulatedSet:
    """Summaries of simulated parameter sets (numpy arrays; K sets, N regions).

    Attributes
    ----------
    fc : ndarray of shape (K, N, N)
        Mean FC over the duplicates (empty if summaries were not computed).
    fcd_cdf : ndarray of shape (K, bins)
        Mean FCD-CDF over the duplicates (empty if summaries were not computed).
    ei_ratio, s_e, s_i, r_e : ndarray of shape (K, N)
        Time-averaged E/I, gating variables and excitatory rate [Hz] (mean over valid duplicates).
    valid : ndarray of shape (K,), bool
        Every duplicate finite.
    """

    fc: np.ndarray
    fcd_cdf: np.ndarray
    ei_ratio: np.ndarray
    s_e: np.ndarray
    s_i: np.ndarray
    r_e: np.ndarray
    valid: np.ndarray


SIMULATION_ENGINE = "torch"
"""Simulator engine of every cohort simulation (results depend on the engine; pinned)."""
SIMULATION_DTYPE = "float32"
"""Simulator precision of every cohort simulation (the search precision)."""


def simulate_sets(
    wee: np.ndarray,
    wei: np.ndarray,
    sigma: np.ndarray,
    g: np.ndarray,
    sc: np.ndarray,
    timing: SimulationTiming,
    seed: int,
    chunk: int = 12,
    summaries: bool = True,
) -> SimulatedSet:
    """Simulate parameter sets with the package's Euler simulator, ``chunk`` sets per call.

    Chunk ``j`` (sets ``j*chunk .. (j+1)*chunk - 1``) uses the torch seed ``seed + j``, so any
    chunk can be regenerated on its own. Engine :data:`SIMULATION_ENGINE`, precision
    :data:`SIMULATION_DTYPE`, CPU, :data:`N_DUPLICATES` duplicates.

    Parameters
    ----------
    wee, wei, sigma : ndarray of shape (K, N)
    g : ndarray of shape (K,)
    sc : ndarray of shape (N, N)
        Unscaled SC (scaled here with :func:`~delssome_norms.model.scale_sc`).
    timing : SimulationTiming
    seed : int
        Torch seed of the first chunk.
    chunk : int
        Parameter sets per simulator call.
    summaries : bool
        Compute FC and FCD-CDF (False: only time averages).

    Returns
    -------
    SimulatedSet
    """
    dtype = getattr(torch, SIMULATION_DTYPE)
    sc_t = scale_sc(torch.as_tensor(np.array(sc, dtype=np.float64)))
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("fc", "fcd", "ei", "se", "si", "re", "ok")}
    for j, start in enumerate(range(0, len(g), chunk)):
        sl = slice(start, start + chunk)
        params = PFICParams(
            wEE=torch.as_tensor(np.array(wee[sl]), dtype=dtype),
            wEI=torch.as_tensor(np.array(wei[sl]), dtype=dtype),
            sigma=torch.as_tensor(np.array(sigma[sl]), dtype=dtype),
            G=torch.as_tensor(np.array(g[sl]), dtype=dtype),
        )
        res = simulate(
            params,
            sc_t.to(dtype),
            timing,
            n_dup=N_DUPLICATES,
            seed=seed + j,
            device="cpu",
            dtype=dtype,
            engine=SIMULATION_ENGINE,
        )
        mask = res.valid.to(torch.float64)[..., None]
        count = mask.sum(dim=1).clamp(min=1)
        out["ei"].append(res.ei_ratio.double().numpy())
        for key, arr in (("se", res.s_e), ("si", res.s_i), ("re", res.r_e)):
            out[key].append(((arr.double() * mask).sum(dim=1) / count).numpy())
        out["ok"].append(res.valid.all(dim=1).numpy())
        if summaries:
            summ = summarize(res, timing, fcd_products=res.bold.dtype)  # shipped: CPU-independent
            out["fc"].append(summ.fc.double().numpy())
            out["fcd"].append(summ.fcd_cdf.double().numpy())
    n = np.asarray(sc).shape[0]
    return SimulatedSet(
        fc=np.concatenate(out["fc"]) if summaries else np.empty((0, n, n)),
        fcd_cdf=np.concatenate(out["fcd"]) if summaries else np.empty((0, 0)),
        ei_ratio=np.concatenate(out["ei"]),
        s_e=np.concatenate(out["se"]),
        s_i=np.concatenate(out["si"]),
        r_e=np.concatenate(out["re"]),
        valid=np.concatenate(out["ok"]),
    )


CALIBRATION_SIGMAS = (0.003, 0.005, 0.007)
"""Noise amplitudes of the E/I-mapping calibration runs."""
CALIBRATION_INTERCEPTS = (1.2, 1.8, 2.4, 3.0)
"""wEI intercepts of the E/I-mapping calibration runs."""


def calibration_design(
    rng: np.random.Generator, gradient: np.ndarray, spec: CohortSpec, rule: WEERule
) -> dict[str, np.ndarray]:
    """Parameter sets of the E/I-mapping calibration: person-like, every intercept x sigma.

    Each set has wEI = a + b g with the gradient's values assigned to regions in a random order
    (so network position and wEI are not confounded), b = ``max(spec.gradient_slope, 0.3)``,
    wEE from ``rule`` and the cohort's G.

    Parameters
    ----------
    rng : numpy.random.Generator
        Draws the regional orders of the gradient.
    gradient : ndarray of shape (N,)
    spec : CohortSpec
    rule : WEERule

    Returns
    -------
    dict with ``wee``, ``wei``, ``sigma`` of shape (K, N) and ``G`` of shape (K,).
    """
    b = max(spec.gradient_slope, 0.3)
    rows_a, rows_w, rows_s = [], [], []
    for a in CALIBRATION_INTERCEPTS:
        for s in CALIBRATION_SIGMAS:
            rows_a.append(a)
            rows_w.append(a + b * rng.permutation(gradient))
            rows_s.append(np.full(len(gradient), s))
    wei = np.array(rows_w)
    return {
        "wee": rule.regional(np.array(rows_a), wei),
        "wei": wei,
        "sigma": np.array(rows_s),
        "G": np.full(len(wei), spec.G),
    }


def fit_ei_mapping(
    wei: np.ndarray, sigma: np.ndarray, ei_sim: np.ndarray, g: float, margin: float, source: str
) -> EIMapping:
    """Least-squares fit of the :class:`EIMapping` coefficients to simulated E/I.

    Parameters
    ----------
    wei, sigma, ei_sim : ndarray of the same shape
        Regional wEI, noise amplitude and simulated time-averaged E/I (NaNs are dropped).
    g, margin : float
        The cohort's G and stability margin (recorded).
    source : str
        Description of the calibration runs (recorded).

    Returns
    -------
    EIMapping
    """
    w, s, e = (np.asarray(x, dtype=np.float64).ravel() for x in (wei, sigma, ei_sim))
    ok = np.isfinite(e)
    w, s, e = w[ok], s[ok], e[ok]
    rel = e / fixed_point_ei(w) - 1.0
    x = w - 2.0
    s2 = (s / 0.005) ** 2
    design = np.column_stack([s2, s2 * x, s2 * x * x])
    coef, *_ = np.linalg.lstsq(design, rel, rcond=None)
    resid = rel - design @ coef
    return EIMapping(
        coefficients=tuple(float(c) for c in coef),
        G=float(g),
        margin=float(margin),
        residual_sd=float(resid.std()),
        n_points=len(rel),
        source=source,
    )


def calibrate_ei_mapping(
    spec: CohortSpec,
    sc: np.ndarray,
    rule: WEERule,
    gradient: np.ndarray,
    timing: SimulationTiming,
    seed: int,
) -> tuple[EIMapping, dict[str, np.ndarray]]:
    """Calibrate the noise correction of the E/I mapping with real simulations.

    Runs the sets of :func:`calibration_design` (4 intercepts x 3 noise amplitudes) and fits
    :func:`fit_ei_mapping`.

    Parameters
    ----------
    spec : CohortSpec
    sc : ndarray of shape (N, N)
        Unscaled SC.
    rule : WEERule
    gradient : ndarray of shape (N,)
    timing : SimulationTiming
    seed : int
        Seed of the design's draws and torch seed of the simulations.

    Returns
    -------
    mapping : EIMapping
    points : dict
        ``wee``, ``wei``, ``sigma``, ``ei_sim``, ``ei_fixed_point``: the calibration data, (K, N).
    """
    design = calibration_design(np.random.default_rng(seed), gradient, spec, rule)
    sim = simulate_sets(
        design["wee"], design["wei"], design["sigma"], design["G"], sc, timing, seed, summaries=False
    )
    k, n = design["wei"].shape
    source = (
        f"simulate: {k} person-like parameter sets x {n} regions (wEI intercepts "
        f"{list(CALIBRATION_INTERCEPTS)}, sigma {list(CALIBRATION_SIGMAS)}), G {spec.G}, wEE rule "
        f"margin {rule.margin} 1/s, TR {timing.tr} s, scan {timing.scan_length} s, dt {timing.dt} s, "
        f"{N_DUPLICATES} duplicates, {SIMULATION_ENGINE} engine, {SIMULATION_DTYPE}, seed {seed}"
    )
    mapping = fit_ei_mapping(design["wei"], design["sigma"], sim.ei_ratio, spec.G, rule.margin, source)
    points = {
        "wee": design["wee"],
        "wei": design["wei"],
        "sigma": design["sigma"],
        "ei_sim": sim.ei_ratio,
        "ei_fixed_point": fixed_point_ei(design["wei"]),
    }
    return mapping, points


@dataclass(frozen=True)
class ModelSetup:
    """The model-derived inputs of the generator (all computed by simulation, minutes).

    Attributes
    ----------
    sc : ndarray of shape (N, N)
        Unscaled SC of every simulation (:func:`simulation_sc`).
    wee_rule : WEERule
    gradient : ndarray of shape (N,)
        The shipped default gradient (:func:`~delssome_norms.datasets.maps.load_default_maps`).
    mapping : EIMapping
        Calibrated E/I mapping (:func:`calibrate_ei_mapping`).
    group_fc : ndarray of shape (N, N) or None
        Group FC a simulated gradient was computed from (None: the shipped maps are used).
    calibration : dict of ndarray or None
        Calibration points of the mapping.
    """

    sc: np.ndarray
    wee_rule: WEERule
    gradient: np.ndarray
    mapping: EIMapping
    group_fc: np.ndarray | None = None
    calibration: dict[str, np.ndarray] | None = None


def build_model_setup(
    spec: CohortSpec, seed: int, timing: SimulationTiming | None = None, sc: np.ndarray | None = None
) -> ModelSetup:
    """Compute the SC, wEE rule and calibrated E/I mapping (simulations); the gradient is shipped.

    Parameters
    ----------
    spec : CohortSpec
        Its G, sigma, stability margin and gradient slope are used.
    seed : int
        Master seed (torch seeds from :func:`simulation_seed`).
    timing : SimulationTiming, optional
        Default :func:`subject_timing`.
    sc : ndarray of shape (N, N), optional
        Raw SC; default the packaged template (transformed with :func:`simulation_sc`).

    Returns
    -------
    ModelSetup
    """
    timing = timing or subject_timing()
    sc_sim = simulation_sc(sc)
    rule = fit_wee_rule(spec.G, spec.stability_margin, sc_sim)
    gradient = np.array(load_default_maps().gradient)
    mapping, points = calibrate_ei_mapping(
        spec, sc_sim, rule, gradient, timing, simulation_seed(seed, "calibration")
    )
    return ModelSetup(sc_sim, rule, gradient, mapping, None, points)


FIT_WEI_RANGE = (0.45, 3.15)
"""wEI range the end-to-end subjects' truth must lie in: the fitter's wEI bounds for a subject whose
FC mean is below 0.29 (``[0.4, 3.2]``, docs/science.md §5), less a 0.05 margin."""


def fitter_valid(
    wei: np.ndarray, gradient: np.ndarray, wei_range: tuple[float, float] = FIT_WEI_RANGE
) -> np.ndarray:
    """Whether regional wEI rows satisfy the fitter's validity rules (docs/science.md §5).

    Every region inside ``wei_range``, ``std(wEI) >= 0.3`` (ddof 1), ``corr(wEI, myelin) <= 0``
    (checked only when N = 68: the myelin map is DK68) and ``corr(wEI, gradient) >= 0``.

    Parameters
    ----------
    wei : ndarray of shape (P, N)
    gradient : ndarray of shape (N,)
    wei_range : (float, float)
        Allowed regional wEI, inclusive.

    Returns
    -------
    ndarray of bool, shape (P,)
    """
    wei = np.atleast_2d(wei)

    def corr(v: np.ndarray) -> np.ndarray:
        wc = wei - wei.mean(axis=1, keepdims=True)
        vc = v - v.mean()
        return (wc @ vc) / np.sqrt((wc**2).sum(axis=1) * (vc**2).sum())

    ok = (wei.min(axis=1) >= wei_range[0]) & (wei.max(axis=1) <= wei_range[1])
    ok &= wei.std(axis=1, ddof=1) >= 0.3
    if wei.shape[1] == len(DK68_REGIONS):
        ok &= corr(myelin_map()) <= 0
    return ok & (corr(np.asarray(gradient, dtype=np.float64)) >= 0)


def select_subjects(
    rng: np.random.Generator,
    people: People,
    eligible: np.ndarray | None = None,
    per_cell: int = 3,
    edges: Sequence[float] | None = None,
) -> np.ndarray:
    """Indices of an age x sex stratified subset of the cohort (``per_cell`` people per cell).

    Default age bins: 4.5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 98.4 years (10 bins x 2 sexes);
    only ``eligible`` people are drawn (default: everybody).

    Parameters
    ----------
    rng : numpy.random.Generator
    people : People
    eligible : ndarray of bool, shape (P,), optional
    per_cell : int
        People drawn per cell (fewer where the cell has fewer).
    edges : sequence of float, optional
        Age-bin edges in years; bins are [low, high).

    Returns
    -------
    ndarray of int
        Sorted indices into ``people``.
    """
    edges = np.array(edges if edges is not None else (4.5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 98.41))
    eligible = np.ones(len(people.age), bool) if eligible is None else np.asarray(eligible, bool)
    chosen = []
    for lo, hi in itertools.pairwise(edges):
        for sex in (0, 1):
            cell = (people.age >= lo) & (people.age < hi) & (people.female == sex) & eligible
            pool = np.flatnonzero(cell)
            chosen.extend(rng.choice(pool, size=min(per_cell, len(pool)), replace=False).tolist())
    return np.sort(np.array(chosen))
