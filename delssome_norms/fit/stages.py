"""The train → validation → test stages, run for a group of subjects at once (docs/science.md §5).

Every stage takes a list of :class:`Member` (one per subject of a lockstep group) and puts all their
candidates into one simulation call:

* **train** — one CMA-ES generation per call: each member asks ``popsize`` valid candidates, the
  evaluator scores all of them, each member tells its losses and checkpoints the generation.
* **validation** — each member's best candidate of every train generation (lowest finite total
  loss) is re-simulated at ``dt_val`` with fresh noise; the lowest validation total wins.
* **test** — each subject's ``test_top_k`` best validated candidates are re-simulated at
  ``dt_test`` (with several searches per subject, the best over all of its searches: their
  validated candidates are pooled into a ``val_pooled`` stage of the first search's checkpoint).
  The validation winner's test simulation gives the E/I ratio (mean over valid duplicates of
  time-averaged ``S_E / S_I``), S_E, S_I and r_E; if it has no valid duplicate the next
  validated candidate with one is used (``test_fallback``), and if its test simulation leaves
  the FIC regime (more than :data:`~delssome_norms.fit.quality.RATE_OUTSIDE_MAX` of the regions
  with a mean r_E outside 2.7-3.3 Hz at the test step) the next validated candidate that stays
  in it (``test_regime_fallback``; none does: the validation winner, flagged
  ``rate_outside_fic``). The E/I is defined at the FIC fixed point: a state that leaves it is
  not the subject's E/I, however well its FC fits.

* **profile** — each subject's winner is re-simulated at ``dt_val`` with fresh duplicates, with
  points along its search's least-constrained direction and the wEI level
  (:mod:`delssome_norms.fit.uncertainty`): the noise floor of the cost, the near-optimal set and
  the interval ``EI_ratio_lo`` .. ``EI_ratio_hi``; with the fit-quality verdict
  (:mod:`delssome_norms.fit.quality`).

``EI_ratio_sd`` (per region) is the sample standard deviation (ddof = 1) of ``S_E / S_I`` pooled over
every valid (candidate, duplicate) test simulation of the ``test_top_k`` best validated
candidates (those with a finite, positive E/I in every region), times the factor that centres
the level (``exp(level_shift_log)``, as ``EI_ratio``), so ``EI_ratio_sd / EI_ratio`` is the
simulations' relative spread: it combines the noise spread (duplicates) and the spread over
near-equally good parameter sets.

**Reproducing the test stage.** ``run.json``'s result records ``seeds`` (``test``, ``profile``),
``test_batch_row`` and ``test_batch_size`` (:func:`_noise_record`): the noise of a simulation
depends on the call's seed and on its row in the call's batch: ``simulate --from-run run.json``
reproduces the winner bit for bit (:mod:`delssome_norms.fit.reproduce`); ``simulate --seed`` alone
does so only when ``test_batch_row`` is 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch

from delssome_norms.fit import profile_points, quality, uncertainty
from delssome_norms.fit.checkpoint import Checkpoint, GenerationRecord
from delssome_norms.fit.cmaes import CMAESSearch
from delssome_norms.fit.evaluate import EulerEvaluator, Evaluator, stack_params
from delssome_norms.fit.parameterisation import Parameterisation, RegionalParams
from delssome_norms.fit.seeding import call_seed
from delssome_norms.model import SimulationTiming

STAGES = ("train", "val", "test")
"""Stage names as written in ``fit_quality.csv``."""


class SubjectFailure(Exception):
    """A subject cannot be fitted (no valid simulation in a stage); the message says why."""


@dataclass
class Member:
    """One subject inside a lockstep group.

    Attributes
    ----------
    subject_id : str
    index : int
        Position of the subject in the evaluator's subject axis.
    space : Parameterisation
    search : CMAESSearch
    checkpoint : Checkpoint
    records : list of GenerationRecord
        Train generations evaluated so far.
    failure : str or None
        Why the subject failed, if it did.
    search_index : int
        Which of the subject's independent searches this member is (0 for the first or only one).
    """

    subject_id: str
    index: int
    space: Parameterisation
    search: CMAESSearch
    checkpoint: Checkpoint
    records: list[GenerationRecord] = field(default_factory=list)
    failure: str | None = None
    search_index: int = 0

    @property
    def active(self) -> bool:
        """Still in the run (not failed)."""
        return self.failure is None


# ------------------------------------------------------------------------------------------- #
# train
# ------------------------------------------------------------------------------------------- #
class CheckpointWriter:
    """Writes the members' train checkpoints of a generation in background threads.

    Each checkpoint write is two atomic file replacements with ``fsync`` (~2-10 ms per member
    and generation, most of the host time of a lockstep train generation); the threads overlap
    them with the next generation's sampling and evaluation (``fsync`` releases the GIL). At most
    one generation is in flight: :meth:`submit` first waits for the previous one, so after a
    crash every member has its checkpoint of the last or the second-to-last generation, the
    situation :func:`~delssome_norms.fit.lockstep.fit_group`'s resume already handles (members
    ahead are rewound). A failed write raises in :meth:`submit` or :meth:`close`.
    """

    def __init__(self, threads: int = 8) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="checkpoint")
        self._pending: list[Future] = []

    def wait(self) -> None:
        """Block until the generation in flight is written (re-raising a failed write)."""
        pending, self._pending = self._pending, []
        for f in pending:
            f.result()

    def submit(self, jobs: list[Callable[[], None]]) -> None:
        """Write a generation (one callable per member) after the previous one is written."""
        self.wait()
        self._pending = [self._pool.submit(job) for job in jobs]

    def close(self) -> None:
        """Wait for the last generation and stop the threads."""
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def train_generation(
    members: list[Member],
    evaluator: Evaluator,
    group_seed: int,
    writer: CheckpointWriter | None = None,
) -> int:
    """Advance every unfinished member by one CMA-ES generation in one evaluator call.

    With a ``writer`` the checkpoints are written in the background (see
    :class:`CheckpointWriter`), otherwise before returning.

    Returns
    -------
    int
        Number of members that took part (0 when all are done).
    """
    batch: list[tuple[Member, np.ndarray]] = []
    for m in members:
        if not m.active or m.search.done:
            continue
        cands = m.search.ask()
        if cands is not None:
            batch.append((m, cands))
    if not batch:
        return 0
    generation = min(m.search.generation for m, _ in batch)
    regional = [m.space.to_regional(c) for m, c in batch]
    index = np.concatenate([np.full(len(c), m.index) for m, c in batch])
    losses = evaluator(
        stack_params(regional), torch.from_numpy(index), seed=call_seed(group_seed, "train", generation)
    )
    corr, l1, ks = (t.detach().cpu().numpy().astype(np.float64) for t in losses[:3])
    viol = getattr(losses, "violation", None)
    viol = None if viol is None else np.asarray(viol, dtype=np.float64)
    start = 0
    jobs = []
    for m, c in batch:
        sl = slice(start, start + len(c))
        start += len(c)
        v = None if viol is None else viol[sl].copy()
        rec = GenerationRecord(c, corr[sl].copy(), l1[sl].copy(), ks[sl].copy(), v)
        jobs.append(partial(m.checkpoint.save_generation, m.search.generation, rec))
        m.records.append(rec)
        m.search.tell(rec.total, rec.violation)
    if writer is None:
        for job in jobs:
            job()
    else:
        writer.submit(jobs)
    return len(batch)


def run_train(
    members: list[Member],
    evaluator: Evaluator,
    group_seed: int,
    on_generation: Callable[[int], None] | None = None,
    dt_train: float | None = None,
) -> None:
    """Run train generations until every member's search is done.

    Members without any finite train loss afterwards are marked failed.
    """
    writer = CheckpointWriter()
    try:
        while train_generation(members, evaluator, group_seed, writer):
            if on_generation is not None:
                on_generation(max(m.search.generation for m in members if m.active))
    finally:
        writer.close()
    for m in members:
        if m.active and not any(np.isfinite(r.total).any() for r in m.records):
            m.failure = no_valid_candidate_message(m.records, dt_train) + (
                f" ({m.search.stopped})" if m.search.stopped else ""
            )


def no_valid_candidate_message(records: list[GenerationRecord], dt_train: float | None = None) -> str:
    """Why a train stage ended without one valid candidate, with the count and what to try.

    When gates rejected the candidates (``GenerationRecord.violation > 0``), the message says how
    many of how many and names the options that change it. ``dt_train`` (simulated searches):
    a step above 0.005 s is named, since it makes candidates with a high wEI invalid.
    """
    n = sum(len(r.total) for r in records)
    gated = sum(int((np.asarray(r.violation) > 0).sum()) for r in records if r.violation is not None)
    if n and gated:
        return (
            f"train: the gates rejected {gated} of the {n} candidates of {len(records)} "
            "generation(s) (FIC fixed point unstable, or r_E outside --rate-gate) and none of the "
            "others produced a valid simulation; try more generations or candidates "
            "(--generations, --popsize), another --seed, or the paper's protocol "
            "(--no-stability-gate; check the SC: it is scaled to max 0.02)"
        )
    coarse = dt_train is not None and dt_train > 0.005
    return (
        f"train: none of the {n} candidates of {len(records)} generation(s) produced a valid "
        "simulation"
        + (
            f" (--dt-train {dt_train:g} s: above 0.005 s the Euler step is unstable for high wEI)"
            if coarse
            else ""
        )
    )


def generation_bests(records: list[GenerationRecord], per_generation: int = 1) -> dict[str, np.ndarray]:
    """The ``per_generation`` best candidates (lowest finite totals) of every train generation.

    Returns
    -------
    dict with ``candidates`` (G', n_coeffs), ``generation`` (G',) and ``train_corr``,
    ``train_l1``, ``train_ks`` (G',); rows in generation order, best first within a generation.
    """
    rows = []
    for g, r in enumerate(records):
        total = r.total
        finite = np.flatnonzero(np.isfinite(total))
        for i in finite[np.argsort(total[finite], kind="stable")][:per_generation]:
            rows.append((g, r.candidates[i], r.corr[i], r.l1[i], r.ks[i]))
    n_coeffs = records[0].candidates.shape[1] if records else 0
    if not rows:
        return {
            "candidates": np.empty((0, n_coeffs)),
            "generation": np.empty(0, dtype=np.int64),
            **{k: np.empty(0) for k in ("train_corr", "train_l1", "train_ks")},
        }
    return {
        "candidates": np.stack([r[1] for r in rows]),
        "generation": np.array([r[0] for r in rows], dtype=np.int64),
        "train_corr": np.array([r[2] for r in rows]),
        "train_l1": np.array([r[3] for r in rows]),
        "train_ks": np.array([r[4] for r in rows]),
    }


# ------------------------------------------------------------------------------------------- #
# validation and test
# ------------------------------------------------------------------------------------------- #
def _simulate_groups(
    members: list[Member],
    candidates: list[np.ndarray],
    simulator: EulerEvaluator,
    timing: SimulationTiming,
    seed: int,
):
    regional = [m.space.to_regional(c) for m, c in zip(members, candidates)]
    index = np.concatenate([np.full(len(c), m.index) for m, c in zip(members, candidates)])
    out = simulator.simulate(stack_params(regional), torch.from_numpy(index), seed=seed, timing=timing)
    parts, start = [], 0
    for c in candidates:
        sl = slice(start, start + len(c))
        start += len(c)
        parts.append({k: getattr(out, k)[sl] for k in out._fields if getattr(out, k) is not None})
    return parts


def run_validation(
    members: list[Member],
    simulator: EulerEvaluator,
    timing: SimulationTiming,
    group_seed: int,
    per_generation: int = 1,
) -> None:
    """Re-simulate each member's ``per_generation`` best candidates of every train generation and
    store ``val`` checkpoints."""
    active = [m for m in members if m.active]
    bests = [generation_bests(m.records, per_generation) for m in active]
    if not active:
        return
    parts = _simulate_groups(
        active, [b["candidates"] for b in bests], simulator, timing, call_seed(group_seed, "val")
    )
    for m, b, p in zip(active, bests, parts):
        arrays = {**b, "corr": p["corr"], "l1": p["l1"], "ks": p["ks"]}
        m.checkpoint.save_stage("val", arrays)


def _top_k(val: dict[str, np.ndarray], k: int) -> np.ndarray:
    total = val["corr"] + val["l1"] + val["ks"]
    finite = np.flatnonzero(np.isfinite(total))
    order = finite[np.argsort(total[finite], kind="stable")]
    return order[:k]


def pooled_validation(searches: list[Member]) -> dict[str, np.ndarray]:
    """The validated candidates of all active searches of one subject, concatenated, with a
    ``search`` array (the member's ``search_index``)."""
    parts = [(m.search_index, m.checkpoint.load_stage("val")) for m in searches if m.active]
    parts = [(r, v) for r, v in parts if v is not None]
    out = {k: np.concatenate([v[k] for _, v in parts]) for k in parts[0][1]}
    out["search"] = np.concatenate([np.full(len(v["generation"]), r, dtype=np.int64) for r, v in parts])
    return out


def _best_per_search(search: np.ndarray, total: np.ndarray) -> list[int]:
    """Position of each search's lowest finite ``total``, in search order (searches without a
    finite total are left out)."""
    rows = []
    for r in np.unique(search):
        own = np.flatnonzero((search == r) & np.isfinite(total))
        if own.size:
            rows.append(int(own[np.argmin(total[own])]))
    return rows


def search_bests(val: dict[str, np.ndarray]) -> np.ndarray:
    """Row of each search's best validated candidate in a pooled validation stage."""
    if "search" not in val:
        return np.empty(0, dtype=np.int64)
    total = val["corr"] + val["l1"] + val["ks"]
    return np.array(_best_per_search(val["search"], total), dtype=np.int64)


def run_test(
    subjects: list[list[Member]],
    simulator: EulerEvaluator,
    timing: SimulationTiming,
    group_seed: int,
    top_k: int,
    failure_hint: str = "",
    combine: str = "best",
) -> None:
    """Re-simulate each subject's ``top_k`` validated candidates and store ``test`` checkpoints.

    ``subjects`` holds each subject's searches (first search first); results go to the first
    search's checkpoint, with the pooled validation stage when there are several searches.
    With ``combine="mean"`` every search's own best validated candidate is tested too (after the
    ``top_k``; :func:`subject_result` averages them). ``failure_hint`` is appended to the
    message of a subject none of whose validated candidates is valid.
    """
    chosen, cands = [], []
    for searches in subjects:
        if not any(m.active for m in searches):
            continue
        lead = searches[0]
        if len(searches) == 1:
            val = lead.checkpoint.load_stage("val")
        else:
            val = pooled_validation(searches)
            lead.checkpoint.save_stage("val_pooled", val)
        order = _top_k(val, top_k)
        if combine == "mean" and order.size:
            tested = set(order.tolist())
            extra = [i for i in search_bests(val) if i not in tested]
            order = np.concatenate([order, np.array(extra, dtype=order.dtype)])
        if order.size == 0:
            for m in searches:
                m.failure = (
                    "validation: no per-generation best produced a valid simulation" + failure_hint
                )
            continue
        chosen.append((lead, order))
        cands.append(val["candidates"][order])
    if not chosen:
        return
    seed = call_seed(group_seed, "test")
    parts = _simulate_groups([m for m, _ in chosen], cands, simulator, timing, seed)
    for (m, order), p, start in zip(chosen, parts, _batch_starts(cands)):
        where = _batch_record(seed, start, sum(len(c) for c in cands))
        m.checkpoint.save_stage("test", {"order": order.astype(np.int64), **p, **where})


def _batch_starts(candidates: list[np.ndarray]) -> list[int]:
    """First row of each member's candidates in the batch of one simulation call."""
    return np.concatenate([[0], np.cumsum([len(c) for c in candidates])[:-1]]).astype(int).tolist()


def _batch_record(seed: int, start: int, size: int) -> dict[str, np.ndarray]:
    """What reproduces a stage's noise (stored with the stage): the call's ``seed``, the member's
    first row ``batch_start`` and the call's ``batch_size`` (rows).

    The noise of a simulation depends on the seed and on its index in the batch
    (``m = row * n_dup + d``): the Philox engines ("kernel", "triton") draw by that index only,
    the "torch" engine draws a block for the whole batch, so there the batch size matters too.
    """
    return {
        "seed": np.array(seed, dtype=np.int64),
        "batch_start": np.array(start, dtype=np.int64),
        "batch_size": np.array(size, dtype=np.int64),
    }


def usable_rows(test: dict[str, np.ndarray]) -> np.ndarray:
    """Test rows that can give the E/I: a valid duplicate, and a finite positive mean ``S_E/S_I``
    over the valid duplicates in every region (a region whose S_I fell to 0, or a non-finite
    duplicate, would otherwise write NaN or inf into the results)."""
    valid = test["valid"].astype(bool)
    ratio = uncertainty._ratio(test["s_e"], test["s_i"], valid)
    with np.errstate(invalid="ignore"):
        finite = np.all(np.isfinite(ratio) & (ratio > 0), axis=1)
    return np.flatnonzero(valid.any(axis=1) & finite)


def in_fic_regime(test: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Whether each of ``rows`` stays in the FIC regime at the test step: at most
    :data:`~delssome_norms.fit.quality.RATE_OUTSIDE_MAX` of its regions have a mean r_E [Hz]
    (over the valid duplicates) outside the FIC band."""
    rows = np.asarray(rows, dtype=np.int64)
    valid = test["valid"].astype(bool)[rows][:, :, None]  # (rows, D, 1)
    r_e = np.where(valid, np.asarray(test["r_e"], dtype=np.float64)[rows], 0.0)
    mean_rate = r_e.sum(axis=1) / valid.sum(axis=1)  # (rows, N): over the valid duplicates
    outside = np.array([quality.rate_outside_fraction(m) for m in mean_rate])  # k <= test_top_k
    return outside <= quality.RATE_OUTSIDE_MAX


def _winner(test: dict[str, np.ndarray]) -> int | None:
    """Row of the test winner: the first usable tested candidate (:func:`usable_rows`) that
    stays in the FIC regime (:func:`in_fic_regime`), else the first usable one (None: none)."""
    usable = usable_rows(test)
    return _first_inside(usable, usable[in_fic_regime(test, usable)]) if usable.size else None


def _first_inside(usable: np.ndarray, inside: np.ndarray) -> int:
    """The first row in the FIC regime, else the first usable one."""
    return int(inside[0]) if inside.size else int(usable[0])


def run_profile(
    subjects: list[list[Member]],
    simulator: EulerEvaluator,
    timing: SimulationTiming,
    group_seed: int,
    stability_gate: bool,
) -> None:
    """Simulate each subject's winner and its profile points; store ``profile`` checkpoints.

    ``subjects`` holds each subject's searches (first search first, holding the test stage);
    the step direction comes from the search that found the winner. All points of all subjects
    go into one simulation call (see :mod:`delssome_norms.fit.uncertainty`).
    """
    chosen, cands, extra = [], [], []
    for searches in subjects:
        lead = searches[0]
        test = lead.checkpoint.load_stage("test")
        if test is None:
            continue
        w = _winner(test)
        if w is None:
            continue
        val = lead.checkpoint.load_stage("val_pooled")
        if val is None:
            val = lead.checkpoint.load_stage("val")
        vi = int(test["order"][w])
        r = int(val["search"][vi]) if "search" in val else 0
        search = next((m for m in searches if m.search_index == r), lead)
        step = profile_points.principal_step(search.search, int(val["generation"][vi]))
        c, kind, pos, dropped = profile_points.profile_candidates(
            val["candidates"][vi], step, lead.space, stability_gate
        )
        chosen.append(lead)
        cands.append(c)
        extra.append({"kind": kind, "position": pos, "dropped": np.array(dropped, dtype=np.int64)})
    if not chosen:
        return
    regional = [m.space.to_regional(c) for m, c in zip(chosen, cands)]
    index = np.concatenate([np.full(len(c), m.index) for m, c in zip(chosen, cands)])
    out = uncertainty.simulate_with_duplicates(
        simulator, regional, index, call_seed(group_seed, "profile"), timing
    )
    seed, size = call_seed(group_seed, "profile"), len(index)
    for m, c, e, start in zip(chosen, cands, extra, _batch_starts(cands)):
        sl = slice(start, start + len(c))
        rows = {k: v[sl] for k, v in out.items()}
        m.checkpoint.save_stage(
            "profile", {"candidates": c, **e, **rows, **_batch_record(seed, start, size)}
        )


# ------------------------------------------------------------------------------------------- #
# result of one subject
# ------------------------------------------------------------------------------------------- #
@dataclass
class SubjectResult:
    """Final estimate of one subject.

    Attributes
    ----------
    subject_id : str
    ei_ratio, ei_ratio_sd, s_e, s_i, r_e : ndarray of shape (N,)
        E/I ratio (winner, mean over valid duplicates), its spread (see module docstring), and
        the time-averaged S_E, S_I and r_E [Hz] of the winner.
    params : RegionalParams
        Winner's regional parameters (arrays (1, N), G (1,)).
    coeffs : ndarray of shape (n_coeffs,)
    losses : dict
        ``{"train"|"val"|"test": {"corr_loss", "l1_loss", "ks_loss"}}`` of the winner.
    info : dict
        Winner's train generation, test fallback, number of sets/duplicates in the spread.
    ei_lo, ei_hi : ndarray of shape (N,)
        Bounds of the regional E/I intervals (NaN without a ``profile`` stage).
    interval : dict or None
        The ``run.json`` ``ei_interval`` block (:func:`uncertainty.interval_block`).
    quality : dict
        The fit-quality verdict (:func:`quality.assess`): ``flagged``, ``reasons``, ``metrics``.
    """

    subject_id: str
    ei_ratio: np.ndarray
    ei_ratio_sd: np.ndarray
    s_e: np.ndarray
    s_i: np.ndarray
    r_e: np.ndarray
    params: RegionalParams
    coeffs: np.ndarray
    losses: dict[str, dict[str, float]]
    info: dict[str, Any]
    ei_lo: np.ndarray | None = None
    ei_hi: np.ndarray | None = None
    interval: dict[str, Any] | None = None
    quality: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nan = np.full(np.shape(self.ei_ratio), np.nan)
        if self.ei_lo is None:
            self.ei_lo = nan
        if self.ei_hi is None:
            self.ei_hi = nan.copy()


def _ensemble_rows(val: dict[str, np.ndarray], order: np.ndarray, usable: np.ndarray) -> list[int]:
    """Test rows of the searches' own best candidates: per search (in search order), its usable
    tested row with the lowest validation total (none for a search without one)."""
    if "search" not in val:
        return []
    total = val["corr"] + val["l1"] + val["ks"]
    tested = order[usable]
    return [int(usable[i]) for i in _best_per_search(val["search"][tested], total[tested])]


def _noise_record(
    test: dict[str, np.ndarray],
    w: int,
    profile: dict[str, np.ndarray] | None,
    ensemble_rows: list[int] | None = None,
) -> dict[str, Any]:
    """What reproduces the winner's test (and profile) simulations, for ``run.json``'s result.

    ``seeds.test`` is the noise seed of the test call and ``test_batch_row`` the winner's row in
    that call's batch (its duplicate ``d`` is simulation ``test_batch_row * n_dup + d``), of
    ``test_batch_size`` rows; ``seeds.profile`` and ``profile_batch_row`` the same for the
    winner's re-simulation in the profile stage (at ``dt_val``). With the Philox engines
    ("kernel" on CPU, "triton" on CUDA, the defaults) the noise of a simulation depends only on
    the seed and that index, so simulating the winner's ``best_parameters.csv`` at ``dt_test``
    with ``n_dup``, the fit's dtype, device and ``seeds.test`` as row ``test_batch_row`` of a
    batch (rows ``0 .. test_batch_row`` all holding it) gives its S_E, S_I, r_E and E/I bit for
    bit; the "torch" engine draws noise for the whole batch, so it needs all
    ``test_batch_size`` rows. ``delssome-norms simulate --from-run run.json`` does this
    (:mod:`delssome_norms.fit.reproduce`; ``--seed`` with ``--batch-row`` / ``--batch-size``
    without the run.json; ``--seed`` alone is row 0). Stages stored before these were
    recorded give nothing.
    """
    out: dict[str, Any] = {}
    seeds: dict[str, int] = {}
    if "seed" in test:
        start = int(test["batch_start"])
        seeds["test"] = int(test["seed"])
        out["test_batch_row"] = start + int(w)
        out["test_batch_size"] = int(test["batch_size"])
        if ensemble_rows is not None:
            out["ensemble_test_batch_rows"] = [start + int(j) for j in ensemble_rows]
    if profile is not None and "seed" in profile:
        seeds["profile"] = int(profile["seed"])
        out["profile_batch_row"] = int(profile["batch_start"])
    return {"seeds": seeds, **out} if seeds else {}


def _ratio_or_nan(a: float | None, b: float | None) -> float:
    return a / b if a is not None and b is not None else math.nan


def _loss_dict(corr: float, l1: float, ks: float) -> dict[str, float]:
    return {"corr_loss": float(corr), "l1_loss": float(l1), "ks_loss": float(ks)}


def subject_result(
    member: Member,
    searches: list[Member] | None = None,
    fc_emp: np.ndarray | None = None,
    mode: str = "euler",
    interval: bool = True,
    combine: str = "best",
    budget: dict[str, float] | None = None,
) -> SubjectResult:
    """Assemble the final estimate from the stored validation, test and profile stages of a
    subject's first (or only) search.

    Parameters
    ----------
    member : Member
        The subject's first search (holds the later stages).
    searches : list of Member, optional
        All of the subject's searches (default: ``[member]``): the winner's search's train
        generations give the gate-rejection metric.
    fc_emp : ndarray of shape (N, N), optional
        The subject's empirical FC (weak-coupling metric).
    mode : str
        Fit mode (selects the interval calibration).
    interval : bool
        Use the stored ``profile`` stage (False: no interval, as with ``FitSettings.interval``).
    combine : {"best", "mean"}
        ``FitSettings.combine``: with "mean" and two or more searches whose best validated
        candidate has a valid test simulation, E/I is the geometric mean of theirs (S_E and S_I
        geometric means as well, so S_E / S_I matches it; r_E the arithmetic mean), the interval
        is centred on it and widened by their spread
        (:func:`uncertainty.add_member_spread`); parameters and losses stay the winner's.
    budget : dict, optional
        The fit's budget and scan length [s] (:func:`uncertainty.calibration_differences`): the
        interval block then says whether the calibration applies (not for an ensemble that fell
        back to the best search: fewer than two searches had a usable test row).

    Raises
    ------
    SubjectFailure
        If none of the tested candidates has a valid duplicate.
    """
    val = member.checkpoint.load_stage("val_pooled")
    if val is None:
        val = member.checkpoint.load_stage("val")
    test = member.checkpoint.load_stage("test")
    order, valid = test["order"], test["valid"].astype(bool)
    usable = usable_rows(test)
    if usable.size == 0:
        if valid.any():
            raise SubjectFailure(
                f"test: none of the {len(order)} best validated candidates has a finite, positive "
                "E/I in every region (S_E/S_I of a valid simulation was NaN, infinite or 0)"
            )
        raise SubjectFailure(f"test: none of the {len(order)} best validated candidates stayed finite")
    inside = usable[in_fic_regime(test, usable)]
    w = _first_inside(usable, inside)
    first = int(usable[0])  # the validation winner, or the next one when it failed the test
    vi = int(order[w])
    with np.errstate(divide="ignore", invalid="ignore"):  # invalid rows: masked out below
        ratio = test["s_e"] / test["s_i"]  # (k, D, N)
    mask = valid[:, :, None]

    def mean_valid(x: np.ndarray, row: int = w) -> np.ndarray:
        return np.where(mask[row], x[row], 0.0).sum(axis=0) / mask[row].sum()

    pooled = ratio[valid]  # (n_valid, N)
    pooled = pooled[np.all(np.isfinite(pooled) & (pooled > 0), axis=1)]  # S_I -> 0: left out
    sd = pooled.std(axis=0, ddof=1) if pooled.shape[0] >= 2 else np.full(ratio.shape[-1], np.nan)
    coeffs = val["candidates"][vi]
    ei_ratio = mean_valid(ratio)
    s_e, s_i, r_e = (mean_valid(test[k]) for k in ("s_e", "s_i", "r_e"))
    profile = member.checkpoint.load_stage("profile") if interval else None
    pool = inside if inside.size else usable  # searches' bests in the FIC regime, if any
    members = _ensemble_rows(val, order, pool) if combine == "mean" else None
    # one search's estimate: the level at the centre of the near-optimal set (the winner is one
    # member the data cannot rank); an ensemble's is the searches' mean, centred by itself;
    # without the interval (no profile, no noise floor) the winner's own E/I
    centre = profile is not None and (members is None or len(members) < 2)
    in_regime = np.isin(np.arange(len(order)), inside) if inside.size else None
    spread = uncertainty.log_spread(test, w, profile, center=centre, eligible=in_regime)
    ei_ratio = ei_ratio * math.exp(spread["level_shift_log"])
    sd = sd * math.exp(spread["level_shift_log"])  # on the estimate's scale: sd / E/I unchanged
    ensemble_info: dict[str, Any] = {}
    if members is not None:
        ensemble_info = {
            "combine": "mean",
            "ensemble_searches": [int(val["search"][order[j]]) for j in members],
            "ensemble_test_total": [
                float(test["corr"][j] + test["l1"][j] + test["ks"][j]) for j in members
            ],
        }
        if len(members) >= 2:
            logs = np.log(np.stack([mean_valid(ratio, j) for j in members]))
            ei_ratio = np.exp(logs.mean(axis=0))
            # S_E and S_I as geometric means too, so that S_E / S_I is the combined E/I (up to the
            # duplicates' noise); arithmetic means of searches with different parameters gave
            # S_E / S_I up to 31 % away from the E/I of the same row
            s_e, s_i = (
                np.exp(np.mean([np.log(mean_valid(test[k], j)) for j in members], axis=0))
                for k in ("s_e", "s_i")
            )
            r_e = np.mean([mean_valid(test["r_e"], j) for j in members], axis=0)
            spread = uncertainty.add_member_spread(spread, logs)
    lo = hi = block = None
    metrics: dict[str, Any] = {
        "test_total": float(test["corr"][w] + test["l1"][w] + test["ks"][w]),
        "valid_test_duplicates": int(valid[w].sum()),
        "n_dup": int(valid.shape[1]),
        "test_fallback": first > 0,
        "test_regime_fallback": w != first,
        "empirical_mean_fc": quality.mean_fc(fc_emp) if fc_emp is not None else None,
        "rate_outside_fraction": quality.rate_outside_fraction(r_e),
    }
    winner_search = int(val["search"][vi]) if "search" in val else 0
    for m in searches or [member]:
        if m.search_index == winner_search:
            metrics["gate_rejected_fraction"] = quality.gate_rejected_fraction(m.records)
    if profile is not None:
        if members is not None and len(members) < 2 and budget and budget.get("searches", 1) > 1:
            budget = {**budget, "combined_by": "best"}  # fell back: not the averaged ensemble
        lo, hi, block = uncertainty.interval_block(ei_ratio, spread, mode, fit=budget)
        metrics.update(
            {
                "self_floor_total": float(
                    profile["pair_corr"][0] + profile["pair_l1"][0] + profile["pair_ks"][0]
                ),
                "profile_winner_total": float(profile["corr"][0] + profile["l1"][0] + profile["ks"][0]),
                "interval_ratio_mean": _ratio_or_nan(block["mean_hi"], block["mean_lo"]),
                "spread_ratio_mean": math.exp(2.0 * block["k_mean"] * block["spread_log_mean"])
                if block["spread_log_mean"] is not None
                else math.nan,
                "interval_missing_regions": len(block["missing_regions"]),
                "interval_mean_missing": block["mean_lo"] is None,
                "profile_points": int(len(profile["kind"]) - 1),
                "profile_dropped": int(profile["dropped"]),
            }
        )
    metrics.update({k: v for k, v in spread.items() if k not in ("region", "mean")})
    return SubjectResult(
        subject_id=member.subject_id,
        ei_ratio=ei_ratio,
        ei_ratio_sd=sd,
        s_e=s_e,
        s_i=s_i,
        r_e=r_e,
        params=member.space.to_regional(coeffs),
        coeffs=coeffs,
        losses={
            "train": _loss_dict(val["train_corr"][vi], val["train_l1"][vi], val["train_ks"][vi]),
            "val": _loss_dict(val["corr"][vi], val["l1"][vi], val["ks"][vi]),
            "test": _loss_dict(test["corr"][w], test["l1"][w], test["ks"][w]),
        },
        info={
            "winner_train_generation": int(val["generation"][vi]),
            "winner_search": int(val["search"][vi]) if "search" in val else 0,
            "winner_validation_rank": w,
            "test_fallback": first > 0,
            "test_regime_fallback": w != first,
            "valid_test_duplicates": int(valid[w].sum()),
            "ei_ratio_sd_sets": int(valid.any(axis=1).sum()),
            "ei_ratio_sd_simulations": int(pooled.shape[0]),
            "validated_candidates": len(val["generation"]),
            **ensemble_info,
            **_noise_record(test, w, profile, members),
        },
        ei_lo=lo,
        ei_hi=hi,
        interval=block,
        quality=quality.assess(metrics),
    )
