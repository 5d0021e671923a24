"""Training data for the surrogate: Euler CMA-ES runs on synthetic subjects, every candidate kept.

For each lockstep group of K synthetic subjects:

1. **Subjects.** Ground-truth coefficients are drawn in the subjects' parameterisation
   (``[1, myelin, gradient]`` with the default DK68 maps, else ``[1, gradient]``;
   :func:`sample_truth`), turned into regional parameters on the default template SC and
   simulated once (:func:`delssome_norms.fit.synthetic_subject`); the simulated scan's FC and
   FCD-CDF are the subject's "empirical" statistics. A draw whose scan does not stay finite is
   redrawn. Any other :class:`~delssome_norms.fit.SubjectInputs` (e.g. the packaged reference
   cohort) can be used instead through :func:`generate_group`.
2. **Search.** The fitter's own train stage runs (:func:`delssome_norms.fit.stages.run_train`: the
   same search space, CMA-ES, seeds, lockstep batching and :class:`~delssome_norms.fit.EulerEvaluator`
   as ``estimate-ei --mode euler``), with checkpoints in ``<out>/work/<subject>/checkpoint``, so an
   interrupted generation resumes without repeating any simulation.
3. **Recording.** Every evaluated candidate of every generation, with its losses, is read from the
   search history the fitter keeps (the same records it checkpoints), converted to regional
   parameters and appended to the data set as one shard (:mod:`delssome_norms.surrogate.dataset`).
   Groups already in the data set are skipped, so rerunning the command continues a data set.

The default scans are shorter than an HCP run so that data can be generated on a CPU (TR 0.72 s,
scans of 172.8 and 259.2 s); dt (0.005 s), burn-in (72 s) and warm-up (5000 steps) are the
fitter's defaults. The timing range is stored in the manifest and, after training, in the weights'
metadata. Use ``device="cuda"`` and larger groups for big data sets.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delssome_norms.datasets import load_default_template
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit import (
    Checkpoint,
    CMAESSearch,
    CMAESSettings,
    EulerEvaluator,
    FitSettings,
    SubjectInputs,
)
from delssome_norms.fit.checkpoint import fingerprint_arrays, replay
from delssome_norms.fit.lockstep import build_space
from delssome_norms.fit.seeding import check_seed, group_seed, subject_seed
from delssome_norms.fit.stages import Member, run_train
from delssome_norms.io import write_arrays
from delssome_norms.model import (
    Losses,
    PFICParams,
    SimulationTiming,
    cost,
    histogram_to_cdf,
    scale_sc,
    simulate,
    summarize_duplicates,
)
from delssome_norms.model.devices import check_device, parse_device
from delssome_norms.surrogate.dataset import (
    SurrogateDataset,
    append_shard,
    coarse_cdf,
    list_shards,
    record_generated_subjects,
)
from delssome_norms.surrogate.network import fc_upper_triangle
from delssome_norms.surrogate.truths import (  # re-exported: callers import them from here
    TRUTH_PRIOR,
    TRUTH_PRIOR_MYELIN,
    draw_prior,
    sample_truth,
    synthetic_subjects,
    truth_maps,
)

__all__ = [  # what callers import from this module (truths re-exported from surrogate.truths)
    "DEFAULT_SCAN_LENGTHS",
    "TRUTH_PRIOR",
    "TRUTH_PRIOR_MYELIN",
    "GenerateReport",
    "GenerateSettings",
    "RecordingEvaluator",
    "draw_prior",
    "generate_dataset",
    "generate_group",
    "quick_settings",
    "records_to_dataset",
    "sample_truth",
    "synthetic_subjects",
    "truth_maps",
]

DEFAULT_SCAN_LENGTHS = (172.8, 259.2)
"""Scan lengths [s] of the default synthetic subjects (240 and 360 frames at TR 0.72 s)."""


@dataclass(frozen=True)
class GenerateSettings:
    """Settings of training-data generation.

    Parameters
    ----------
    n_subjects : int
        Synthetic subjects in total.
    group_size : int
        Subjects searched in lockstep (one simulation batch of ``group_size * popsize``).
    generations, popsize : int
        CMA-ES generations per subject and candidates per generation.
    tr : float
        Repetition time [s].
    scan_lengths : tuple of float
        Scan lengths [s]; group ``g`` uses ``scan_lengths[g % len(scan_lengths)]``.
    dt : float
        Integration step of the search simulations [s].
    burn_in : float or None
        Burn-in [s] (None: the model default ``ceil(72 / TR) TR``).
    fcd_window : int or None
        FCD window [frames] (None: ``round(60 / TR)``).
    warmup_steps : int
        Unrecorded steps before the burn-in.
    n_dup : int
        Noise duplicates per candidate.
    seed : int
        Seed of the truths, the synthetic scans, the searches and their noise.
    device, dtype, engine : str
        Simulation device, dtype and engine (see :func:`~delssome_norms.model.simulate`).
    give_maps : bool
        Give the fitter the true gradient map (else it uses each subject's FC gradient).
    record_summaries : bool
        Also store each candidate's simulated FC and FCD-CDF (:class:`RecordingEvaluator`).
    """

    n_subjects: int = 32
    group_size: int = 4
    generations: int = 20
    popsize: int = 100
    tr: float = 0.72
    scan_lengths: tuple[float, ...] = DEFAULT_SCAN_LENGTHS
    dt: float = 0.005
    burn_in: float | None = None
    fcd_window: int | None = None
    warmup_steps: int = 5000
    n_dup: int = 3
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    engine: str = "auto"
    give_maps: bool = True
    record_summaries: bool = True

    def __post_init__(self) -> None:
        for name in ("n_subjects", "group_size", "generations", "popsize", "n_dup"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {v!r}", name)
        check_seed(self.seed)
        object.__setattr__(self, "device", str(parse_device(self.device, "device")))
        object.__setattr__(self, "scan_lengths", tuple(float(s) for s in self.scan_lengths))
        if not self.scan_lengths:
            raise InvalidInputError("need at least one scan length", "scan_lengths")
        for scan in self.scan_lengths:
            try:
                self.timing(scan)  # raises for impossible timings
            except InvalidInputError as err:  # name the field (a scan length of the list)
                field = getattr(err, "field", None)
                if field is None or err.source is not None:
                    raise
                if field == "fcd_window" and self.fcd_window is None:  # the default window
                    problem = f"scan length {scan:g} s is too short for the FCD window: {err.problem}"
                    raise InvalidInputError(problem, "scan_lengths") from None
                raise InvalidInputError(
                    err.problem, "scan_lengths" if field == "scan_length" else field
                ) from None

    def timing(self, scan_length: float) -> SimulationTiming:
        """Simulation timing of a subject with ``scan_length`` [s].

        Parameters
        ----------
        scan_length : float
            Seconds.

        Returns
        -------
        SimulationTiming
            With the settings' TR, dt and burn-in [s], FCD window and warm-up.
        """
        return SimulationTiming(
            tr=self.tr,
            scan_length=scan_length,
            dt=self.dt,
            burn_in=self.burn_in,
            fcd_window=self.fcd_window,
            warmup_steps=self.warmup_steps,
        )

    def fit_settings(self) -> FitSettings:
        """The fitter settings of the search (mode euler; only the train stage is run)."""
        return FitSettings(
            cmaes=CMAESSettings(
                generations=self.generations, popsize=self.popsize, mu=min(10, self.popsize // 2)
            ),
            seed=self.seed,
            mode="euler",
            n_dup=self.n_dup,
            dt_train=self.dt,
            burn_in=self.burn_in,
            fcd_window=self.fcd_window,
            warmup_steps=self.warmup_steps,
            device=self.device,
            dtype=self.dtype,
            engine=self.engine,
            # the data cover unstable candidates too (as the shipped weights' data do): the
            # network is then also right about parameters a gated search never asks for
            stability_gate=False,
        )

    def n_groups(self) -> int:
        """Number of lockstep groups."""
        return -(-self.n_subjects // self.group_size)

    def group_numbers(self, group: int) -> range:
        """Numbers ``i`` of the subjects of lockstep group ``group`` (``syn-<i:05d>``).

        Parameters
        ----------
        group : int

        Returns
        -------
        range
        """
        first = group * self.group_size
        return range(first, min(first + self.group_size, self.n_subjects))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        d = asdict(self)
        d["scan_lengths"] = list(self.scan_lengths)
        return d


# ------------------------------------------------------------------------------ recording


class RecordingEvaluator:
    """The Euler evaluator's computation, also keeping every candidate's simulated summaries.

    ``__call__`` does what :class:`~delssome_norms.fit.EulerEvaluator` does (``simulate`` →
    ``summarize`` → ``cost`` with the same arguments, so the search is unchanged) and writes, per
    call (one CMA-ES generation of the group), ``<folder>/gen_<t>.npz`` with the subject index,
    the losses, each candidate's FC upper triangle and FCD-CDF (mean over duplicates) and those of
    its first duplicate. Files are written before the fitter checkpoints the generation, so a
    resumed run finds the summaries of every stored generation.

    Parameters
    ----------
    euler : EulerEvaluator
        Provides the empirical statistics, SC, timing and simulation settings.
    folder : path
        Where the per-generation files go.
    first_generation : int
        Index of the first generation this object will see (generations already stored).
    """

    def __init__(self, euler: EulerEvaluator, folder: str | Path, first_generation: int = 0) -> None:
        self.euler = euler
        self.folder = Path(folder)
        self.generation = int(first_generation)

    def __call__(self, params: PFICParams, subject_index: torch.Tensor, *, seed: int) -> Losses:
        e = self.euler
        idx = torch.as_tensor(subject_index, dtype=torch.long)
        sc = e.sc if e.sc.ndim == 2 else e.sc[idx]
        res = simulate(
            params,
            sc,
            e.timing,
            n_dup=e.n_dup,
            seed=int(seed),
            device=e.device,
            dtype=e.dtype,
            engine=e.engine,
        )
        # the first duplicate's statistics come from the same memory-bounded pass as the means
        summ, fc_dup, hist_dup = summarize_duplicates(res, e.timing, fcd_products=e.fcd_products)
        losses = cost(summ, *e.empirical_for(idx, summ.fc.device))
        fc0 = fc_dup[:, 0]
        cdf0 = histogram_to_cdf(hist_dup[:, 0])
        write_arrays(
            {
                "subject_index": idx.numpy(),
                "losses": torch.stack([t.detach().cpu() for t in losses], dim=1).numpy(),
                "sim_fc_triu": fc_upper_triangle(summ.fc.detach().cpu().float()).numpy(),
                "sim_fcd_cdf": coarse_cdf(summ.fcd_cdf.detach().cpu().double().numpy()),
                "dup0_fc_triu": fc_upper_triangle(fc0.detach().cpu().float()).numpy(),
                "dup0_fcd_cdf": coarse_cdf(cdf0.detach().cpu().double().numpy()),
            },
            self.folder / f"gen_{self.generation:05d}.npz",
        )
        self.generation += 1
        return losses


def _load_summaries(folder: Path, members: Sequence[Member]) -> dict[str, np.ndarray]:
    """Per-candidate summaries in ``records_to_dataset`` order, checked against the records."""
    out: dict[str, list[np.ndarray]] = {}
    per_gen = {}
    for k, m in enumerate(members):
        for t, rec in enumerate(m.records):
            if t not in per_gen:
                with np.load(folder / f"gen_{t:05d}.npz", allow_pickle=False) as z:
                    per_gen[t] = {key: z[key] for key in z.files}
            z = per_gen[t]
            rows = np.flatnonzero(z["subject_index"] == k)
            stored = z["losses"][rows]
            expected = np.stack([rec.corr, rec.l1, rec.ks], axis=1)
            if stored.shape != expected.shape or not np.allclose(stored, expected, equal_nan=True):
                raise InvalidInputError(
                    f"summaries of generation {t} do not match the checkpoint of {m.subject_id}; "
                    "delete the work folder of this group to regenerate it",
                    str(folder),
                )
            for key in ("sim_fc_triu", "sim_fcd_cdf", "dup0_fc_triu", "dup0_fcd_cdf"):
                out.setdefault(key, []).append(z[key][rows])
    return {key: np.concatenate(v) for key, v in out.items()}


# ------------------------------------------------------------------------------ one group


def _members(subjects: Sequence[SubjectInputs], work: Path, settings: GenerateSettings) -> list[Member]:
    fit = settings.fit_settings()
    members = []
    for i, s in enumerate(subjects):
        space, _ = build_space(s)
        seed = subject_seed(settings.seed, s.subject_id)
        fingerprint = {
            "purpose": "surrogate training data",
            "subject_id": s.subject_id,
            "settings": fit.fingerprint(),
            "inputs": fingerprint_arrays(s.fc, s.fcd_cdf, s.sc),
        }
        ckpt = Checkpoint(work / s.subject_id / "checkpoint", fingerprint)
        search = CMAESSearch(space, fit.cmaes, seed)
        members.append(Member(s.subject_id, i, space, search, ckpt))
    return members


def _resume(members: list[Member], generations: int) -> None:
    records = {m.subject_id: m.checkpoint.load_train(limit=generations) for m in members}
    done = min(len(r) for r in records.values())
    for m in members:
        m.records = records[m.subject_id][:done]
        replay(m.search, m.records, str(m.checkpoint.state_path))


def records_to_dataset(
    subjects: Sequence[SubjectInputs],
    members: Sequence[Member],
    true_regional: np.ndarray | None = None,
    true_g: np.ndarray | None = None,
    info: dict[str, Any] | None = None,
    summaries: str | Path | None = None,
) -> SurrogateDataset:
    """Every evaluated candidate of ``members`` as a :class:`SurrogateDataset`.

    Parameters
    ----------
    subjects : sequence of SubjectInputs
        The K subjects (same order as ``members``).
    members : sequence of Member
        Their searches, with ``records`` holding each generation's candidates and losses.
    true_regional : ndarray of shape (K, N, 3), optional
        True wEE, wEI, sigma (synthetic subjects).
    true_g : ndarray of shape (K,), optional
        True G.
    info : dict, optional
    summaries : path, optional
        Folder of a :class:`RecordingEvaluator`: adds the candidates' simulated summaries.

    Returns
    -------
    SurrogateDataset
    """
    regional, g, subj, gen, losses = [], [], [], [], []
    for k, m in enumerate(members):
        for t, rec in enumerate(m.records):
            p = m.space.to_regional(rec.candidates)
            regional.append(np.stack([p.wEE, p.wEI, p.sigma], axis=-1))
            g.append(p.G)
            subj.append(np.full(len(p.G), k))
            gen.append(np.full(len(p.G), t))
            losses.append(np.stack([rec.corr, rec.l1, rec.ks], axis=1))
    n = subjects[0].n_regions
    fc = torch.as_tensor(np.stack([s.fc for s in subjects]))
    cdf = np.stack([s.fcd_cdf for s in subjects]).astype(np.float64)
    density = np.diff(cdf, axis=1, prepend=0.0)
    sc = np.stack([scale_sc(np.asarray(s.sc, dtype=np.float64)) for s in subjects])
    extra = _load_summaries(Path(summaries), members) if summaries is not None else {}
    return SurrogateDataset(
        subject_id=[s.subject_id for s in subjects],
        fc_triu=fc_upper_triangle(fc).numpy(),
        fcd_density=density,
        tr=[s.tr for s in subjects],
        scan_length=[s.scan_length for s in subjects],
        sc=sc,
        regional=np.concatenate(regional) if regional else np.zeros((0, n, 3)),
        g=np.concatenate(g) if g else np.zeros(0),
        subject=np.concatenate(subj) if subj else np.zeros(0),
        generation=np.concatenate(gen) if gen else np.zeros(0),
        losses=np.concatenate(losses) if losses else np.zeros((0, 3)),
        true_regional=true_regional,
        true_g=true_g,
        **extra,
        info=dict(info or {}),
    )


def generate_group(
    subjects: Sequence[SubjectInputs],
    work: str | Path,
    settings: GenerateSettings,
    true_regional: np.ndarray | None = None,
    true_g: np.ndarray | None = None,
    on_generation: Callable[[int], None] | None = None,
) -> SurrogateDataset:
    """Run the Euler train stage on K subjects in lockstep and return every candidate.

    Parameters
    ----------
    subjects : sequence of SubjectInputs
        Subjects sharing TR, scan length and N.
    work : path
        Folder for the searches' checkpoints (resumable).
    settings : GenerateSettings
    true_regional, true_g : ndarray of shape (K, N, 3) and (K,), optional
        Known true parameters, stored with the data.
    on_generation : callable, optional
        Called with the number of generations done.

    Returns
    -------
    SurrogateDataset
        One shard: the K subjects and ``K x generations x popsize`` candidates.
    """
    if len({(s.tr, s.scan_length, s.n_regions) for s in subjects}) != 1:
        raise InvalidInputError("a lockstep group needs one TR, scan length and N", "surrogate generate")
    work = Path(work)
    fit = settings.fit_settings()
    members = _members(subjects, work, settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        _resume(members, settings.generations)
    timing = settings.timing(subjects[0].scan_length)
    evaluator = EulerEvaluator(
        np.stack([s.fc for s in subjects]),
        np.stack([s.fcd_cdf for s in subjects]),
        np.stack([s.sc for s in subjects]),
        timing,
        fit.n_dup,
        fit.device,
        fit.dtype,
        fit.engine,
        fcd_products=getattr(torch, fit.dtype),  # training data that do not depend on the CPU
    )
    gseed = group_seed(settings.seed, [s.subject_id for s in subjects])
    folder = work / "summaries" / "_".join(s.subject_id for s in subjects)
    recorder = RecordingEvaluator(evaluator, folder, first_generation=len(members[0].records))
    run_train(members, recorder if settings.record_summaries else evaluator, gseed, on_generation)
    _warn_without_candidates(subjects, members, true_regional)
    summaries = folder if settings.record_summaries else None
    return records_to_dataset(subjects, members, true_regional, true_g, summaries=summaries)


def _no_candidate_reason(subject: SubjectInputs, member: Member, true_wei: np.ndarray | None) -> str:
    """Why a search left its subject without a valid candidate, with the wEI range of the search
    (from the subject's mean FC, :func:`~delssome_norms.fit.parameterisation.wei_range`) and,
    for a synthetic subject, whether its true wEI lies outside that range."""
    n = sum(len(r.total) for r in member.records)
    search = member.search
    if n == 0:
        reason = f"its CMA-ES search stopped at generation {search.generation} without a candidate"
        reason += f" ({search.stopped})" if search.stopped else ""
    else:
        reason = f"none of its {n} candidates gave a valid simulation"
    lo, hi = member.space.bounds.wEI
    fc = np.asarray(subject.fc, dtype=np.float64)
    mean_fc = float(fc[np.triu_indices(fc.shape[0], 1)].mean())
    reason += f"; the search's wEI range from its FC (mean FC {mean_fc:.2f}) is [{lo:.3g}, {hi:.3g}]"
    if true_wei is not None:
        t_lo, t_hi = float(np.min(true_wei)), float(np.max(true_wei))
        if t_hi < lo or t_lo > hi:
            where = "outside"
        else:
            where = "inside" if lo <= t_lo and t_hi <= hi else "partly outside"
        reason += f", and its true wEI ({t_lo:.2f} to {t_hi:.2f}) lies {where} it"
    return reason


def _warn_without_candidates(
    subjects: Sequence[SubjectInputs], members: Sequence[Member], true_regional: np.ndarray | None
) -> None:
    """Warn, naming each subject and why, when a group's searches left subjects without a valid
    candidate (``surrogate train`` leaves them out; the group line names them from the shard)."""
    empty = [k for k, m in enumerate(members) if not any(np.isfinite(r.total).any() for r in m.records)]
    if not empty:
        return
    truths = [None] * len(members) if true_regional is None else [t[:, 1] for t in true_regional]
    why = "; ".join(
        f"{members[k].subject_id}: {_no_candidate_reason(subjects[k], members[k], truths[k])}"
        for k in empty
    )
    warnings.warn(
        f"{len(empty)} of {len(members)} subject(s) of this group have no valid candidate and "
        f"add nothing to the data set (surrogate train leaves them out): {why}. Generate more "
        "subjects (--subjects) to make up for them",
        InputWarning,
        stacklevel=3,
    )


# ------------------------------------------------------------------------------ the whole data set


@dataclass
class GenerateReport:
    """What :func:`generate_dataset` did."""

    groups_done: list[int] = field(default_factory=list)
    groups_skipped: list[int] = field(default_factory=list)
    seconds: float = 0.0
    candidates: int = 0
    without_candidates: list[str] = field(default_factory=list)
    """Ids of the subjects generated now whose search gave no valid candidate (named with the
    reason in an :class:`~delssome_norms.errors.InputWarning`)."""


def generate_dataset(
    out: str | Path,
    settings: GenerateSettings | None = None,
    sc: np.ndarray | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    sc_source: str | None = None,
) -> GenerateReport:
    """Generate (or continue) a surrogate training data set of synthetic subjects in ``out``.

    Parameters
    ----------
    out : path
        Data-set folder (``manifest.json`` + shards; checkpoints under ``out/work``).
    settings : GenerateSettings, optional
    sc : ndarray of shape (N, N), optional
        Unscaled SC (default: the packaged DK68 template).
    progress : bool
        tqdm bar over generations of each group.
    log : callable, optional
        One line per group.
    sc_source : str, optional
        Where ``sc`` came from (e.g. its file), recorded as the manifest's ``sc_file`` (the
        ``template`` is ``"user SC"``) and then in the weights' ``template.source``; ignored
        without ``sc``.

    Returns
    -------
    GenerateReport

    Raises
    ------
    InvalidInputError
        ``out`` is a file, or holds a data set of other settings or another SC.
    """
    from tqdm.auto import tqdm

    settings = settings or GenerateSettings()
    check_device(settings.device, "device")  # a missing GPU before any work, not in group 1
    out = Path(out)
    if out.exists() and not out.is_dir():  # before the subjects are simulated, not after
        raise InvalidInputError("exists and is not a folder; give a data-set folder", str(out))
    sc_file = None
    if sc is None:
        template = load_default_template()
        sc, sc_source = np.asarray(template.sc), template.source
    else:
        sc, sc_file, sc_source = np.asarray(sc, dtype=np.float64), sc_source, "user SC"
    myelin, gradient, gradient_source = truth_maps(sc)
    info = {
        "generator": "delssome_norms.surrogate.generate",
        "settings": settings.to_dict(),
        "template": sc_source,
        **({"sc_file": sc_file} if sc_file else {}),
        "sc_sha256": fingerprint_arrays(sc),
        "truth_maps": gradient_source,
        "truth_prior": _prior_record(myelin is not None),
        "note": "SYNTHETIC subjects; losses from the fitter's Euler train stage",
    }
    if sc_file:
        this_sc = sc_file
    elif sc_source == "user SC":  # an array given to the Python API without naming it
        this_sc = "an SC array given without a name"
    else:
        this_sc = f"no --sc: the default template, {sc_source}"
    _check_same_generation(out, settings, info["sc_sha256"], this_sc, n_regions=sc.shape[0])
    existing = {sid for shard in list_shards(out) for sid in shard.get("subject_ids", [])}
    report = GenerateReport()
    start = time.perf_counter()
    for group in range(settings.n_groups()):
        numbers = settings.group_numbers(group)
        # a data set generated with fewer subjects may hold part of this group (its last group
        # was partial): only the missing subjects are generated, in a shard of their own
        missing = [i for i in numbers if f"syn-{i:05d}" not in existing]
        if not missing:
            report.groups_skipped.append(group)
            continue
        ids = [f"syn-{i:05d}" for i in missing]
        name = f"group_{group:05d}" + ("" if len(missing) == len(numbers) else f"_from_{missing[0]:05d}")
        t0 = time.perf_counter()
        subjects, true_regional, true_g, _ = synthetic_subjects(
            settings, group, sc, gradient, myelin=myelin, only=set(missing)
        )
        bar = tqdm(
            total=settings.generations,
            desc=f"group {group + 1}/{settings.n_groups()}",
            disable=not progress,
            unit="gen",
        )

        def advance(done: int, bar: tqdm = bar) -> None:
            bar.update(done - bar.n)

        try:  # closed on an interruption too: its message then starts on a line of its own
            shard = generate_group(subjects, out / "work", settings, true_regional, true_g, advance)
        finally:
            bar.close()
        shard.info = info
        append_shard(shard, out, name=f"{name}.npz", info=info)
        _remove_group_work(out / "work", ids)
        report.groups_done.append(group)
        report.candidates += shard.n_candidates
        counts = np.bincount(shard.subject[shard.valid()].astype(np.int64), minlength=len(ids))
        empty = [str(shard.subject_id[k]) for k in np.flatnonzero(counts == 0)]
        report.without_candidates += empty
        if log:
            log(
                f"group {group + 1}/{settings.n_groups()}: {len(ids)} subjects, scan "
                f"{subjects[0].scan_length:g} s, {shard.n_candidates} candidates "
                f"({int(shard.valid().sum())} valid) in {time.perf_counter() - t0:.0f} s"
                + (
                    f"; {len(empty)} subject(s) without a valid candidate, left out by surrogate "
                    f"train: {', '.join(empty)} (why: the warning above)"
                    if empty
                    else ""
                )
            )
    if settings.n_groups():  # also after a run that died between its last shard and here
        record_generated_subjects(out, settings.n_subjects)
    report.seconds = time.perf_counter() - start
    return report


def _remove_group_work(work: Path, ids: Sequence[str]) -> None:
    """Delete the checkpoints and candidate summaries of a group whose shard is saved: the shard
    holds all of it and a rerun skips the group, so they would only double the data set's size
    (an interruption before this leaves them; nothing reads them again). ``work`` goes when
    empty."""
    import shutil

    for folder in [work / sid for sid in ids] + [work / "summaries" / "_".join(ids)]:
        shutil.rmtree(folder, ignore_errors=True)
    for folder in (work / "summaries", work):
        try:
            folder.rmdir()  # only when empty: other groups' work stays
        except OSError:
            pass


def _prior_record(with_myelin: bool) -> dict[str, Any]:
    """The truth prior actually drawn from, for the data set's manifest."""
    if with_myelin:
        names = ["wEE_1", "wEE_m", "wEE_g", "wEI_1", "wEI_m", "wEI_g", "G", "sigma_1", "sigma_m",
                 "sigma_g"]  # fmt: skip
        ranges = TRUTH_PRIOR_MYELIN
    else:
        names = ["wEE_1", "wEE_g", "wEI_1", "wEI_g", "G", "sigma_1", "sigma_g"]
        ranges = TRUTH_PRIOR
    return {
        "design": "[1, myelin, gradient]" if with_myelin else "[1, gradient]",
        "uniform_ranges": {n: list(r) for n, r in zip(names, ranges)},
    }


def _check_same_generation(
    out: Path,
    settings: GenerateSettings,
    sc_sha256: str,
    sc_source: str = "?",
    n_regions: int | None = None,
) -> None:
    """Refuse to add groups to a data set generated with other settings, another SC or another
    number of regions (its manifest would describe data it does not hold; a data set of another N
    was refused only after every group had been simulated). More subjects may be added: groups
    already present are kept. ``sc_source`` names this run's SC (``--sc FILE`` or the template)
    in the error, beside the one the manifest records."""
    from delssome_norms.surrogate.dataset import MANIFEST, _read_manifest

    if not (out / MANIFEST).is_file():
        return
    manifest = _read_manifest(out)
    if n_regions is not None and manifest["n_regions"] != int(n_regions):
        raise InvalidInputError(
            f"holds a data set of N={manifest['n_regions']} regions; this run's SC ({sc_source}) "
            f"has N={int(n_regions)}: generate into another folder",
            str(out),
        )
    info = manifest.get("info", {})
    if info.get("sc_sha256") not in (None, sc_sha256):
        stored = info.get("sc_file") or info.get("template", "?")  # "--sc FILE" or the template
        if info.get("sc_file"):
            how = str(info["sc_file"])  # as recorded: "--sc FILE", or the name given in Python
        elif info.get("template") == "user SC":
            how = "the same SC array"
        else:
            how = "no --sc"
        raise InvalidInputError(
            f"holds a data set generated on another SC ({stored}) than this run's ({sc_source}); "
            f"generate into another folder, or continue it with the SC it was generated on "
            f"({how}; a file of the same content)",
            str(out),
        )
    stored = info.get("settings")
    if not isinstance(stored, dict):
        return
    current = settings.to_dict()
    differ = sorted(
        k
        for k in set(stored) | set(current)
        if k != "n_subjects" and json.dumps(stored.get(k)) != json.dumps(current.get(k))
    )
    if differ:

        def values(d: dict[str, Any]) -> str:
            return ", ".join(f"{k} {json.dumps(d.get(k))}" for k in differ)

        raise InvalidInputError(
            f"holds a data set generated with other settings ({', '.join(differ)}): it has "
            f"{values(stored)}, this run {values(current)}; generate into another folder, or "
            "continue it with its settings (adding subjects with --subjects is allowed)",
            str(out),
        )


def quick_settings(**overrides: Any) -> GenerateSettings:
    """Tiny settings for tests and smoke runs (2 subjects, 2 generations of 8, 30 s scans).

    Parameters
    ----------
    **overrides
        :class:`GenerateSettings` fields to change.

    Returns
    -------
    GenerateSettings
    """
    base = GenerateSettings(
        n_subjects=2,
        group_size=2,
        generations=2,
        popsize=8,
        scan_lengths=(30.0,),
        burn_in=2.16,
        fcd_window=10,
        warmup_steps=100,
        n_dup=1,
    )
    return replace(base, **overrides)
