"""Scoring candidates: the evaluator interface and the Euler (simulation) evaluator.

The train stage scores candidates through an *evaluator*: a callable

    evaluate(params: PFICParams, subject_index: Tensor (B,), *, seed: int) -> Losses

that returns corr/l1/ks losses of shape (B,) (NaN for invalid candidates) for candidates of
several subjects at once; ``subject_index[b]`` says whose empirical FC/FCD-CDF candidate ``b`` is
compared with. ``seed`` fixes the simulation noise of the call (a surrogate may ignore it).
:class:`EulerEvaluator` simulates (``simulate`` → ``summarize`` → ``cost``); the DELSSOME surrogate
plugs in with the same signature (``mode="surrogate"``). ``fit`` does not import the surrogate
package (it sits above ``fit``): callers pass a :class:`SurrogateBackend` (the package's
``delssome_norms.surrogate.SURROGATE_BACKEND``) as ``surrogate=`` to the fit entry points, which
hand it down to :func:`make_evaluator`. Validation and test are always simulated, with
:meth:`EulerEvaluator.simulate`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError
from delssome_norms.model import (
    Losses,
    PFICParams,
    SimulationTiming,
    cost,
    fic_fixed_point_stable,
    scale_sc,
    simulate,
    summarize,
)
from delssome_norms.model.integrate import DTYPES, SimulationResult
from delssome_norms.model.timing import fcd_window_frames

if TYPE_CHECKING:
    from delssome_norms.fit.settings import FitSettings

MODES = ("euler", "surrogate")
"""Train-stage evaluators."""
PRETRAINED_ENV_VAR = "DELSSOME_NORMS_PRETRAINED"
"""Where the package's surrogate looks for its default weights first
(``delssome_norms.surrogate.pretrained.ENV_VAR``): a fit without ``surrogate_weights`` records
that folder."""


class Evaluator(Protocol):
    """Scores candidates of several subjects in one call (see the module docstring)."""

    def __call__(self, params: PFICParams, subject_index: Tensor, *, seed: int) -> Losses: ...


class SurrogateBackend(Protocol):
    """What ``mode="surrogate"`` needs from the surrogate package (passed as ``surrogate=``).

    ``delssome_norms.surrogate.SURROGATE_BACKEND`` implements it. An implementation must pickle
    (the Dask executor ships it to workers with the settings). Optional: ``weights_regions(weights)
    -> (N, atlas, where)``, with which a cohort refuses weights of another atlas before any work
    (:func:`~delssome_norms.fit.atlas_checks.check_surrogate_run`).
    """

    def check_available(self, weights: str | None = None) -> None:
        """Raise unless usable weights exist at ``weights`` (default: the shipped weights)."""
        ...

    def weights_sha256(self, weights: str | None = None) -> str:
        """SHA-256 of the weights at ``weights`` (what fits record to tell weights apart)."""
        ...

    def make_evaluator(
        self,
        fc_emp: np.ndarray,
        fcd_cdf_emp: np.ndarray,
        sc: np.ndarray,
        timing: SimulationTiming,
        n_dup: int = 3,
        device: str = "cpu",
        dtype: str = "float32",
        engine: str = "auto",
        *,
        weights: str | None = None,
    ) -> Evaluator:
        """The train-stage evaluator (argument list of :func:`make_evaluator`)."""
        ...


def check_surrogate_cover(
    settings: FitSettings,
    tr: Sequence[float] | np.ndarray,
    scan_length: Sequence[float] | np.ndarray,
    surrogate: SurrogateBackend | None,
    subject_ids: Sequence[str] | None = None,
) -> None:
    """Before any work of a surrogate-mode run: compare every subject's TR and scan length [s]
    (NaN: unknown, not checked) with the range the weights were trained on, and its FCD window
    with theirs, in one warning that names a few ``subject_ids`` (aligned with ``tr``) of each
    value outside (the evaluator of each lockstep group checks again when its train stage
    starts, on a Dask worker where nobody sees it).

    A backend without ``check_timing(weights, tr, scan_length)`` is not checked; one without the
    ``fcd_window`` or ``subject_ids`` keywords is checked without them. Euler mode needs no check.
    """
    check = getattr(surrogate, "check_timing", None)
    if settings.mode != "surrogate" or check is None:
        return
    trs = np.asarray(tr, dtype=np.float64)
    windows = np.array([fcd_window_frames(t, settings.fcd_window) for t in trs], dtype=np.int64)
    scans = np.asarray(scan_length, dtype=np.float64)
    params = inspect.signature(check).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    extra: dict[str, Any] = {}
    if "fcd_window" in params or takes_any:  # backends written before it was checked lack it
        extra["fcd_window"] = windows
    if subject_ids is not None and ("subject_ids" in params or takes_any):
        extra["subject_ids"] = list(subject_ids)
    check(settings.surrogate_weights, trs, scans, **extra)


def require_surrogate(mode: str, surrogate: SurrogateBackend | None) -> None:
    """Raise unless ``mode`` is ``"euler"`` or a surrogate backend was passed for ``"surrogate"``.

    Raises
    ------
    InvalidInputError
        ``mode="surrogate"`` with ``surrogate=None``.
    """
    if mode == "surrogate" and surrogate is None:
        raise InvalidInputError(
            "mode 'surrogate' needs the surrogate backend: pass "
            "surrogate=delssome_norms.surrogate.SURROGATE_BACKEND",
            "mode",
        )


class SimulatedCandidates(NamedTuple):
    """Losses and time averages of simulated candidates (numpy, float64).

    Attributes
    ----------
    corr, l1, ks : ndarray of shape (B,)
        Losses (NaN where a duplicate was invalid).
    s_e, s_i, r_e : ndarray of shape (B, D, N)
        Time-averaged S_E, S_I and excitatory rate [Hz] per duplicate.
    valid : ndarray of bool, shape (B, D)
        Duplicate stayed finite (and, with a rate gate, the candidate passed it).
    violation : ndarray of shape (B,)
        r_E-gate violation [Hz]: mean over regions of the distance of the regional rate from the
        band (0 when inside or without a gate).
    """

    corr: np.ndarray
    l1: np.ndarray
    ks: np.ndarray
    s_e: np.ndarray
    s_i: np.ndarray
    r_e: np.ndarray
    valid: np.ndarray
    violation: np.ndarray | None = None


class Scores(NamedTuple):
    """Train-stage scores: the three losses plus the r_E-gate violation (``Losses``-compatible)."""

    corr: Tensor
    l1: Tensor
    ks: Tensor
    violation: Tensor

    @property
    def total(self) -> Tensor:
        """``corr + l1 + ks``, shape (B,)."""
        return self.corr + self.l1 + self.ks


def _dtype(name: str | torch.dtype) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    if name not in DTYPES:
        raise InvalidInputError(f"dtype must be 'float32' or 'float64', got {name!r}", "--dtype")
    return DTYPES[name]


def simulated_candidates(
    losses: Losses, res: Any, rate_gate: tuple[float, float] | None = None
) -> SimulatedCandidates:
    """Host copies of a simulation's losses and time averages, with the r_E gate applied.

    ``losses``: the three loss terms (B,); ``res``: the simulation result (``s_e``, ``s_i``,
    ``r_e`` (B, D, N), ``valid`` (B, D)).
    """
    out = SimulatedCandidates(
        *(t.detach().cpu().numpy().astype(np.float64) for t in losses),
        *(t.detach().cpu().to(torch.float64).numpy() for t in (res.s_e, res.s_i, res.r_e)),
        res.valid.detach().cpu().numpy(),
    )
    return out if rate_gate is None else apply_rate_gate(out, rate_gate)


class EulerEvaluator:
    """Evaluate candidates of K subjects by Euler–Maruyama simulation in one batched call.

    Parameters
    ----------
    fc_emp : ndarray of shape (K, N, N)
        Empirical FC per subject.
    fcd_cdf_emp : ndarray of shape (K, bins)
        Empirical FCD-CDF per subject.
    sc : ndarray of shape (K, N, N) or (N, N)
        Unscaled SC per subject (or one shared); scaled to max 0.02 here.
    timing : SimulationTiming
        Timing of the train stage (the subjects of one evaluator share TR and scan length).
    n_dup : int, default 3
        Noise duplicates per candidate.
    device : str, default "cpu"
    dtype : str or torch.dtype, default "float32"
    engine : str, default "auto"
        Simulator engine (see :func:`~delssome_norms.model.simulate`).
    rate_gate : (float, float), optional
        Band [Hz] for the time-averaged excitatory rate of every region (mean over valid
        duplicates); candidates outside it get NaN losses and no valid duplicate.
    fcd_products : torch.dtype, optional
        Precision of the FCD products (default: :func:`~delssome_norms.model.fcd_product_dtype`,
        bfloat16 inputs for float32 simulations on a CPU with AVX512-BF16).
    """

    def __init__(
        self,
        fc_emp: np.ndarray,
        fcd_cdf_emp: np.ndarray,
        sc: np.ndarray,
        timing: SimulationTiming,
        n_dup: int = 3,
        device: str = "cpu",
        dtype: str | torch.dtype = "float32",
        engine: str = "auto",
        rate_gate: tuple[float, float] | None = None,
        fcd_products: torch.dtype | None = None,
    ) -> None:
        self.rate_gate = rate_gate
        self.fcd_products = fcd_products
        self.fc_emp = torch.as_tensor(np.asarray(fc_emp, dtype=np.float64))
        self.fcd_cdf_emp = torch.as_tensor(np.asarray(fcd_cdf_emp, dtype=np.float64))
        sc = np.asarray(sc, dtype=np.float64)
        scaled = scale_sc(sc)
        if scaled.ndim == 3 and all(np.array_equal(scaled[0], s) for s in scaled[1:]):
            scaled = scaled[0]
        self.sc = torch.as_tensor(scaled)
        self.timing = timing
        self.n_dup = int(n_dup)
        self.device = device
        self.dtype = _dtype(dtype)
        self.engine = engine
        self._emp_on: dict[str, tuple[Tensor, Tensor]] = {}

    def empirical_for(self, subject_index: Tensor, device: torch.device) -> tuple[Tensor, Tensor]:
        """Empirical FC (B, N, N) and FCD-CDF (B, bins) of each candidate's subject, on ``device``.

        The subjects' statistics are moved to ``device`` once and gathered there, so a lockstep
        batch does not copy a subject's FC and 10,000-bin CDF from host memory per candidate.
        """
        key = str(device)
        if key not in self._emp_on:
            self._emp_on[key] = (self.fc_emp.to(device), self.fcd_cdf_emp.to(device))
        fc, cdf = self._emp_on[key]
        idx = subject_index.to(device)
        return fc[idx], cdf[idx]

    def sc_for(self, subject_index: Tensor) -> Tensor:
        """Unscaled SC of each candidate's subject (the shared SC when there is one)."""
        return self.sc if self.sc.ndim == 2 else self.sc[subject_index]

    def run(
        self, params: PFICParams, subject_index: Tensor, *, seed: int, timing: SimulationTiming
    ) -> SimulationResult:
        """The raw simulation (BOLD and time averages per duplicate) of candidates with this
        evaluator's SC, duplicates, device, dtype and engine."""
        return simulate(
            params,
            self.sc_for(subject_index),
            timing,
            n_dup=self.n_dup,
            seed=int(seed),
            device=self.device,
            dtype=self.dtype,
            engine=self.engine,
        )

    def simulate(
        self,
        params: PFICParams,
        subject_index: Tensor,
        *,
        seed: int,
        timing: SimulationTiming | None = None,
    ) -> SimulatedCandidates:
        """Simulate candidates and return losses plus time averages (for validation and test).

        Parameters
        ----------
        params : PFICParams
            Regional parameters, arrays of shape (B, N), G (B,).
        subject_index : Tensor of shape (B,), int64
            Subject (0..K-1) of each candidate.
        seed : int
            Noise seed of this call.
        timing : SimulationTiming, optional
            Overrides the evaluator's timing (e.g. the test stage's dt).

        Returns
        -------
        SimulatedCandidates
        """
        timing = self.timing if timing is None else timing
        idx = torch.as_tensor(subject_index, dtype=torch.long)
        res = self.run(params, idx, seed=seed, timing=timing)
        summ = summarize(res, timing, fcd_products=self.fcd_products)
        del res.bold
        losses = cost(summ, *self.empirical_for(idx, summ.fc.device))
        return simulated_candidates(losses, res, self.rate_gate)

    def __call__(self, params: PFICParams, subject_index: Tensor, *, seed: int) -> Losses | Scores:
        """Losses of candidates (the train-stage evaluator interface).

        With a rate gate, returns :class:`Scores` (the losses plus each candidate's gate
        violation), which the train stage uses to steer the search into the gate.
        """
        out = self.simulate(params, subject_index, seed=seed)
        losses = [torch.from_numpy(a) for a in (out.corr, out.l1, out.ks)]
        if self.rate_gate is None:
            return Losses(*losses)
        return Scores(*losses, torch.from_numpy(out.violation))


class StabilityGatedEvaluator:
    """Train-stage evaluator that scores only candidates with a stable FIC fixed point.

    Candidates whose FIC fixed point is linearly unstable (:mod:`delssome_norms.model.stability`)
    are neither simulated nor predicted: they get NaN losses and their stability margin [1/s] as
    ``violation`` (inf where the FIC solve did not converge), so the CMA-ES ranks them after
    every scored candidate, the less unstable first, and moves towards stable parameters (a
    penalty rather than resampling: around a typical search mean only ~1 % of the draws are
    stable, too few to resample; one whose FIC did not converge ranks as a failed simulation).
    The others go to ``inner`` in one call. Returns :class:`Scores` (float64, CPU).

    Parameters
    ----------
    inner : Evaluator
        The mode's evaluator.
    sc : ndarray of shape (K, N, N) or (N, N)
        Unscaled SC per subject (scaled to max 0.02 here, as for simulation).
    device : str, default "cpu"
        Where the stability check runs (float64).
    """

    def __init__(self, inner: Evaluator, sc: np.ndarray, device: str = "cpu") -> None:
        self.inner = inner
        scaled = np.asarray(scale_sc(np.asarray(sc, dtype=np.float64)))
        self.device = torch.device(device)
        self.sc = torch.as_tensor(
            scaled.reshape((-1, *scaled.shape[-2:])), dtype=torch.float64, device=self.device
        )
        self.symmetric = bool(np.allclose(scaled, np.swapaxes(scaled, -1, -2), rtol=1e-10, atol=1e-12))

    def stable(self, params: PFICParams, subject_index: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """``(stable (B,) bool, margin (B,) [1/s])`` of the candidates (margin 0 when stable)."""
        p = [torch.as_tensor(np.asarray(x), dtype=torch.float64, device=self.device) for x in params]
        if len(self.sc) == 1:
            sc = self.sc[0]
        else:
            idx = torch.as_tensor(np.asarray(subject_index), dtype=torch.long, device=self.device)
            sc = self.sc[idx.reshape(-1)]
        ok, margin = fic_fixed_point_stable(p[0], p[1], p[3], sc, symmetric=self.symmetric)
        return ok.cpu().numpy(), margin.cpu().numpy()

    def __call__(self, params: PFICParams, subject_index: Tensor, *, seed: int) -> Scores:
        """Losses of the stable candidates; NaN and the margin as violation for the others."""
        stable, margin = self.stable(params, subject_index)
        losses = np.full((3, len(stable)), np.nan)
        # where FIC did not converge there is no margin: infinitely far from the gate, so the
        # candidate counts as gated (fit quality, train summary); the CMA-ES scores a
        # non-finite violation as a plain invalid candidate (``CMAESSearch.tell``)
        violation = np.where(stable, 0.0, np.nan_to_num(margin, nan=np.inf))
        keep = np.flatnonzero(stable)
        if len(keep):
            sub = PFICParams(*(np.asarray(x)[keep] for x in params))
            out = self.inner(sub, torch.as_tensor(np.asarray(subject_index)[keep]), seed=seed)
            for j in range(3):
                losses[j, keep] = out[j].detach().cpu().to(torch.float64).numpy()
            inner_violation = getattr(out, "violation", None)
            if inner_violation is not None:
                violation[keep] = np.asarray(inner_violation, dtype=np.float64)
        return Scores(*(torch.from_numpy(x) for x in losses), torch.from_numpy(violation))


def apply_rate_gate(out: SimulatedCandidates, band: tuple[float, float]) -> SimulatedCandidates:
    """Invalidate candidates whose regional mean r_E (over valid duplicates) leaves ``band`` [Hz].

    Returns
    -------
    SimulatedCandidates
        Gated candidates have NaN losses, ``valid`` all False and ``violation`` > 0 (mean over
        regions of the distance of the rate from the band, Hz).
    """
    lo, hi = band
    mask = out.valid[:, :, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(mask, out.r_e, 0.0).sum(axis=1) / mask.sum(axis=1)  # (B, N)
    inside = np.all((rate >= lo) & (rate <= hi), axis=1)
    distance = np.maximum(np.maximum(lo - rate, rate - hi), 0.0).mean(axis=1)
    violation = np.where(inside | ~np.isfinite(distance), 0.0, distance)
    nan = np.full_like(out.corr, np.nan)
    return out._replace(
        corr=np.where(inside, out.corr, nan),
        l1=np.where(inside, out.l1, nan),
        ks=np.where(inside, out.ks, nan),
        valid=out.valid & inside[:, None],
        violation=violation,
    )


def with_weights_identity(settings: FitSettings, surrogate: SurrogateBackend | None) -> FitSettings:
    """``settings`` with ``surrogate_weights_sha256`` filled in for ``mode="surrogate"`` and the
    weights folder as an absolute path.

    Results and checkpoints record the weights by content: a weights folder retrained in place
    keeps its name, and results of the old weights must not be reused for the new ones.
    Without ``surrogate_weights``, the folder ``$DELSSOME_NORMS_PRETRAINED`` names, when set, is
    recorded (``None`` stays only for the shipped weights); the folder is never part of a fit's
    fingerprint, so this changes no fingerprint.
    """
    if settings.mode != "surrogate" or surrogate is None:
        return settings
    weights = settings.surrogate_weights
    sha = surrogate.weights_sha256(weights)  # first: a missing default is told as the default
    folder = weights or os.environ.get(PRETRAINED_ENV_VAR) or None
    return replace(
        settings,
        # run.json names the folder wherever the command ran (None: the shipped weights)
        surrogate_weights=str(Path(folder).resolve()) if folder else None,
        surrogate_weights_sha256=sha,
    )


def identified_settings(settings: FitSettings, surrogate: SurrogateBackend | None) -> FitSettings:
    """:func:`require_surrogate`, then ``settings`` with the weights' identity filled in
    (:func:`with_weights_identity`) when ``mode="surrogate"`` and ``surrogate_weights_sha256`` is
    missing: what ``fit.estimate_ei``, ``fit.fit_group`` and ``fit.run_cohort`` fit with, as the
    command line and ``EIEstimator`` do, so results record (and the interval calibration compares)
    which weights scored the search. A backend without ``weights_sha256`` leaves it missing."""
    require_surrogate(settings.mode, surrogate)
    if settings.mode != "surrogate" or settings.surrogate_weights_sha256 is not None:
        return settings
    if not callable(getattr(surrogate, "weights_sha256", None)):
        return settings
    return with_weights_identity(settings, surrogate)


def check_mode(mode: str, weights: str | None = None, surrogate: SurrogateBackend | None = None) -> str:
    """Validate ``mode``; for ``"surrogate"`` also check that usable weights exist.

    Parameters
    ----------
    mode : {"euler", "surrogate"}
    weights : str, optional
        Pretrained surrogate folder (default: the shipped weights).
    surrogate : SurrogateBackend, optional
        Required for ``"surrogate"`` (``delssome_norms.surrogate.SURROGATE_BACKEND``).

    Raises
    ------
    InvalidInputError
        Unknown mode, ``"surrogate"`` without ``surrogate``, or weights at ``weights`` that
        cannot be read.
    NotYetAvailableError
        ``"surrogate"`` without weights at the default location.
    """
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", "--mode")
    require_surrogate(mode, surrogate)
    if surrogate is not None and mode == "surrogate":
        surrogate.check_available(weights)
    return mode


def make_evaluator(
    mode: str,
    fc_emp: np.ndarray,
    fcd_cdf_emp: np.ndarray,
    sc: np.ndarray,
    timing: SimulationTiming,
    n_dup: int = 3,
    device: str = "cpu",
    dtype: str = "float32",
    engine: str = "auto",
    rate_gate: tuple[float, float] | None = None,
    weights: str | None = None,
    stability_gate: bool = False,
    surrogate: SurrogateBackend | None = None,
) -> Evaluator:
    """The train-stage evaluator of ``mode`` for K subjects.

    ``"euler"``: :class:`EulerEvaluator`. ``"surrogate"``: ``surrogate.make_evaluator(...)``, the
    DELSSOME cost predictor loaded from ``weights`` (default: the shipped weights), checked
    against the subjects' N, FCD bins and SC; ``n_dup``, ``dtype``, ``engine`` and ``rate_gate``
    concern simulation and do not apply to it. With ``stability_gate`` either is wrapped in
    :class:`StabilityGatedEvaluator`.

    Raises
    ------
    InvalidInputError
        Unknown mode, or ``"surrogate"`` without ``surrogate``.
    """
    if mode not in MODES:
        raise InvalidInputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}", "--mode")
    require_surrogate(mode, surrogate)
    if mode == "surrogate":
        evaluator = surrogate.make_evaluator(
            fc_emp, fcd_cdf_emp, sc, timing, n_dup, device, dtype, engine, weights=weights
        )
    else:
        evaluator = EulerEvaluator(
            fc_emp, fcd_cdf_emp, sc, timing, n_dup, device, dtype, engine, rate_gate
        )
    return StabilityGatedEvaluator(evaluator, sc, device) if stability_gate else evaluator


def stack_params(regional: Sequence) -> PFICParams:
    """Concatenate :class:`~delssome_norms.fit.parameterisation.RegionalParams` into PFICParams."""
    return PFICParams(
        wEE=np.concatenate([r.wEE for r in regional]),
        wEI=np.concatenate([r.wEI for r in regional]),
        sigma=np.concatenate([r.sigma for r in regional]),
        G=np.concatenate([r.G for r in regional]),
    )
