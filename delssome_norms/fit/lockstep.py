"""Lockstep fitting: K subjects advance their CMA-ES generations together (one batched simulation).

All candidates of the K subjects of a group (K x popsize x n_dup simulations) go into one simulator
call, which fills a GPU and amortises the per-step overhead of the integrator on a CPU. Subjects
of one group share TR, scan length and N (:func:`plan_groups`); K is chosen from the device's
memory unless given (:func:`choose_group_size`).

**Determinism and resume.** The noise of a simulation call depends on the call's seed and on the
batch it is in, so a group's results depend on its members. Groups are therefore formed
deterministically from the manifest order (never from what is left to do), each call's seed is
derived from the run seed, the members, the stage and the generation, and a restarted group
recomputes exactly the calls an uninterrupted run makes: after a kill between two members'
checkpoint writes, the members that are one generation ahead are rewound (replayed one generation
less) and the generation is simulated again for the whole group, giving the same numbers.
Finished subjects (complete outputs) are never recomputed.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from delssome_norms.datasets import region_classes
from delssome_norms.datasets.hemispheres import hemisphere_from_names
from delssome_norms.datasets.maps import load_default_maps
from delssome_norms.errors import InputWarning, InvalidInputError, MembersChangedWarning
from delssome_norms.fit import calibration_scope, uncertainty
from delssome_norms.fit.atlas_checks import infeasible_maps, no_maps_message
from delssome_norms.fit.checkpoint import Checkpoint, fingerprint_arrays, replay
from delssome_norms.fit.cmaes import CMAESSearch
from delssome_norms.fit.design import design_matrix, diffusion_gradient, dk68_hemisphere
from delssome_norms.fit.evaluate import (
    EulerEvaluator,
    SurrogateBackend,
    identified_settings,
    make_evaluator,
)
from delssome_norms.fit.lone_refit import record_refit_alone
from delssome_norms.fit.outputs import (
    check_finished,
    in_cohort_folder,
    refit_alone_advice,
    run_fingerprint,
    subject_provenance,
    update_cohort_failures,
    write_failure,
    write_subject_outputs,
)
from delssome_norms.fit.parameterisation import Bounds, Parameterisation
from delssome_norms.fit.seeding import group_seed, subject_seed
from delssome_norms.fit.settings import FitSettings, check_fit_settings
from delssome_norms.fit.stages import (
    Member,
    SubjectFailure,
    SubjectResult,
    no_valid_candidate_message,
    run_profile,
    run_test,
    run_train,
    run_validation,
    subject_result,
)
from delssome_norms.fit.subject import SubjectInputs, check_fit_arguments
from delssome_norms.io.writers import remove_dead_temporaries
from delssome_norms.model import FCD_BINS, scale_sc
from delssome_norms.model.batch import device_total_memory, simulation_bytes
from delssome_norms.model.devices import check_device
from delssome_norms.model.summary import fcd_products_name

MAX_GROUP_SIZE = {"cpu": 8, "cuda": 64}
"""Largest automatic K per device type (a bigger batch no longer helps once compute-bound)."""
MEMORY_FRACTION = 0.5
"""Fraction of the device's total memory the automatic K may plan for."""


# ------------------------------------------------------------------------------------------- #
# group size and grouping
# ------------------------------------------------------------------------------------------- #
def device_memory(device: str) -> tuple[int | None, str | None]:
    """Total memory [bytes] of ``device`` on the machine that runs this, or the reason it cannot
    be used (``(None, message)``; run on a Dask worker, it needs no exception to travel back)."""
    try:
        check_device(device, "--device")
        return _total_memory(device), None
    except InvalidInputError as exc:
        return None, exc.problem


def _total_memory(device: str) -> int:
    total = device_total_memory(torch.device(device))
    return 8 << 30 if total is None else total  # unknown (non-POSIX): assume 8 GiB


def subject_memory_bytes(
    n_regions: int, n_frames: int, popsize: int, n_dup: int, itemsize: int = 4
) -> int:
    """Rough peak memory of one subject's simulation call of ``popsize`` sets [bytes]: what
    :func:`~delssome_norms.model.batch.simulation_bytes` counts (one SC per set, as in lockstep),
    plus per simulation two float64 FC and the float64 FCD histogram that ``summarize`` keeps
    (FCD scratch and noise blocks have fixed budgets of their own)."""
    m = popsize * n_dup
    sims = simulation_bytes(m, n_regions, n_frames, itemsize, per_set_sc=True)
    return int(sims + m * (2 * 8 * n_regions**2 + 8 * FCD_BINS))


def choose_group_size(
    n_regions: int,
    n_frames: int,
    popsize: int,
    n_dup: int,
    device: str = "cpu",
    dtype: str = "float32",
    validation_sets: int = 0,
    total_memory: int | None = None,
) -> int:
    """K from the device's *total* memory (stable on a machine, so runs are reproducible).

    ``total_memory`` [bytes] replaces this machine's (the Dask executor passes a worker's).

    ``K = min(MAX_GROUP_SIZE[device type], MEMORY_FRACTION * total / per-subject bytes)``, at
    least 1, where a subject's bytes are those of its largest simulation call: a train
    generation (``popsize`` sets) or, when ``validation_sets`` is given (train generations x
    candidates validated per generation), the validation stage, which simulates every subject's
    validated candidates of the group in one call. Pass K explicitly (``--batch-subjects``) to
    reproduce numbers on another machine.
    """
    itemsize = 4 if dtype == "float32" else 8
    sets = max(int(popsize), int(validation_sets))
    per = subject_memory_bytes(n_regions, n_frames, sets, n_dup, itemsize)
    total = _total_memory(device) if total_memory is None else int(total_memory)
    fits = int(MEMORY_FRACTION * total // max(per, 1))
    cap = MAX_GROUP_SIZE.get(torch.device(device).type, 8)
    return max(1, min(cap, fits))


def plan_groups(keys: Sequence[Any], k: int) -> list[list[int]]:
    """Split items into lockstep groups of at most ``k`` with equal keys, in first-seen order.

    Parameters
    ----------
    keys : sequence
        One hashable key per item (e.g. ``(tr, scan_length)``).
    k : int
        Group size.

    Returns
    -------
    list of lists of item indices

    Examples
    --------
    >>> plan_groups(["a", "b", "a", "a", "b"], 2)
    [[0, 2], [3], [1, 4]]
    """
    by_key: dict[Any, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    groups = []
    for idx in by_key.values():
        groups.extend(idx[s : s + k] for s in range(0, len(idx), k))
    return groups


# ------------------------------------------------------------------------------------------- #
# maps and search space of a subject
# ------------------------------------------------------------------------------------------- #
def sensory_mask(n_regions: int) -> np.ndarray | None:
    """Sensory regions of the DK68 atlas (orientation of FC gradients), None for other atlases."""
    classes = region_classes()
    return classes == "sensory" if len(classes) == n_regions else None


def default_gradient(fc: np.ndarray, regions: Sequence[str] | None = None) -> np.ndarray:
    """FC gradient of the ``"fc-gradient"`` maps option (DK68-oriented, hemisphere-checked).

    The hemisphere guard of :func:`~delssome_norms.fit.design.diffusion_gradient` gets each
    region's hemisphere from ``regions`` (the FC's region names, in its row order) when every
    name says it (:func:`~delssome_norms.datasets.hemispheres.hemisphere_from_names`), else
    from the DK68 order for 68 regions; otherwise the gradient is not hemisphere-checked.
    """
    n = fc.shape[0]
    hemi = None if regions is None or len(regions) != n else hemisphere_from_names(regions)
    if hemi is None:
        hemi = dk68_hemisphere(n)
    names = regions if regions is not None and len(regions) == n else None  # to name its parts
    return diffusion_gradient(fc, sensory_mask(n), hemisphere=hemi, regions=names)


def build_space(
    subject: SubjectInputs,
    fallback_gradient: np.ndarray | None = None,
    stability_gate: bool = False,
    maps: str = "default",
) -> tuple[Parameterisation, str]:
    """Search space of a subject and a description of its design.

    A 68-region subject without maps gets the shipped default myelin and gradient maps (the
    paper's ``[1, myelin, gradient]`` design) unless ``maps="fc-gradient"``; then, and for other
    atlases, the design is ``[1, gradient]`` with ``fallback_gradient`` (cohort FC) or the
    gradient of the subject's own FC. With ``stability_gate`` the initial CMA-ES mean is drawn
    with a stable FIC fixed point on the subject's SC.
    """
    myelin = subject.myelin
    if subject.uses_default_maps(maps):
        default = load_default_maps()
        gradient, myelin, source = default.gradient, default.myelin, "default DK68 maps"
    elif subject.gradient is not None:
        gradient, source = subject.gradient, "given"
    elif fallback_gradient is not None:
        gradient, source = fallback_gradient, "cohort FC"
    else:
        gradient, source = default_gradient(subject.fc, subject.regions), "subject FC"
    x = design_matrix(gradient, myelin, warn=False)
    fic_sc = np.asarray(scale_sc(np.asarray(subject.sc, dtype=np.float64)))
    space = Parameterisation(
        design=x,
        gradient=gradient,
        bounds=Bounds.from_fc(subject.fc),
        myelin=myelin,
        fic_sc=fic_sc if stability_gate else None,
    )
    design = "[1, myelin, gradient]" if myelin is not None else "[1, gradient]"
    return space, f"{design}; gradient: {source}"


# ------------------------------------------------------------------------------------------- #
# one lockstep group
# ------------------------------------------------------------------------------------------- #
@dataclass
class SubjectOutcome:
    """What happened to one subject of a group.

    Attributes
    ----------
    subject_id : str
    status : str
        ``"done"``, ``"skipped"`` (already finished in its folder) or ``"failed"``.
    stage, message : str
        Where and why a subject failed.
    result : SubjectResult or None
        The in-memory estimate of a subject fitted in this call (``"done"``).
    run_info : dict or None
        What ``run.json`` records besides the result (settings, timing, provenance, search).
    """

    subject_id: str
    status: str  # "done", "skipped" (already finished) or "failed"
    stage: str = ""
    message: str = ""
    result: SubjectResult | None = field(default=None, repr=False)
    run_info: dict[str, Any] | None = field(default=None, repr=False)


@dataclass
class GroupProgress:
    """Callbacks for progress reporting (all optional)."""

    on_start: Callable[[int], None] | None = None  # total generations
    on_generation: Callable[[int], None] | None = None  # generations done
    on_subject_done: Callable[[SubjectOutcome], None] | None = None
    on_stage: Callable[[str], None] | None = None  # before "val", "test", "profile", "write"
    timings: dict[str, float] = field(default_factory=dict)


def _fingerprint(subject: SubjectInputs, space: Parameterisation, settings: FitSettings) -> dict:
    fp = {
        "subject_id": subject.subject_id,
        "settings": settings.fingerprint(),
        "inputs": fingerprint_arrays(subject.fc, subject.fcd_cdf, subject.sc),
        "design": fingerprint_arrays(space.design, np.asarray(space.bounds.wEI)),
        "timing": [subject.tr, subject.scan_length],
    }
    if settings.surrogate_weights_sha256 is not None:  # which weights scored the train stage
        fp["weights_sha256"] = settings.surrogate_weights_sha256
    return fp


def _resume(members: list[Member], settings: FitSettings) -> None:
    """Replay stored train generations; rewind members that are ahead of the group."""
    stored = {}
    for m in members:
        records = m.checkpoint.load_train(limit=settings.cmaes.generations)
        replay(m.search, records, str(m.checkpoint.state_path))
        m.records = records
        stored[m.subject_id, m.search_index] = records
    lagging = [len(m.records) for m in members if not m.search.done]
    if not lagging:
        return
    t0 = min(lagging)
    for m in members:
        if len(m.records) > t0:
            m.search = CMAESSearch(m.space, settings.cmaes, m.search.seed)
            m.records = stored[m.subject_id, m.search_index][:t0]
            replay(m.search, m.records, str(m.checkpoint.state_path))


RESTARTED_NOTE = (
    "fitted again from the start: its checkpoint was written in a lockstep batch of other members"
)
"""Message of a done outcome whose checkpoint of another batch was discarded."""


def _nothing_to_simulate(subjects: list[list[Member]], settings: FitSettings) -> bool:
    """Whether the replayed searches and stored stages leave no simulation to run (conservative:
    False when in doubt)."""
    generations = settings.cmaes.generations
    for searches in subjects:
        for m in searches:
            if not m.search.done or m.checkpoint.stages_generations() not in (None, generations):
                return False
            if m.checkpoint.load_stage("val") is None:
                return False
        lead = searches[0].checkpoint
        if lead.load_stage("test") is None:
            return False
        if settings.interval and lead.load_stage("profile") is None:
            return False
    return True


def _restart_other_batches(subjects: list[list[Member]], settings: FitSettings) -> list[str]:
    """Discard the checkpoints of subjects written in a batch of other members (call after
    :func:`_resume`; then resume again).

    A simulation's noise depends on its row in the batch, so train generations or stages stored
    with other members (one failed its input checks in one run and not the other) cannot be
    continued with this batch without giving numbers of neither run. When something is left to
    simulate, such subjects restart from scratch; the others are then rewound with them by
    :func:`_resume`, so the group's numbers are those of an uninterrupted run with these members.
    When all stages are stored, nothing is simulated and the stored results are kept.

    Returns
    -------
    list of str
        Subject ids whose checkpoints were discarded (every search rebuilt when non-empty).
    """
    other = []
    for searches in subjects:
        stored = [m.checkpoint.stored_members() for m in searches]
        if any(s is not None and s != m.checkpoint.members for s, m in zip(stored, searches)):
            other.append((searches, next(s for s in stored if s is not None)))
    if not other:
        return []
    if _nothing_to_simulate(subjects, settings):  # the stored stages are kept, and with them
        for searches in subjects:  # the batch they were simulated in (run.json's simulated_with)
            for m in searches:
                m.checkpoint.members = m.checkpoint.stored_members() or m.checkpoint.members
        return []
    for searches, _ in other:
        for m in searches:
            m.checkpoint.discard()
    for searches in subjects:
        for m in searches:
            m.search = CMAESSearch(m.space, settings.cmaes, m.search.seed)
            m.records = []
    ids = [searches[0].subject_id for searches, _ in other]
    was, now = other[0][1], subjects[0][0].checkpoint.members or []
    warnings.warn(
        f"{len(ids)} subject(s) ({', '.join(ids[:5])}{', ...' if len(ids) > 5 else ''}) had "
        f"checkpoints of a lockstep batch of other members ({', '.join(was[:8])}; now "
        f"{', '.join(now[:8])}): a simulation's noise depends on its batch row, so they are fitted "
        "again from the start, as an uninterrupted run of these members would be",
        MembersChangedWarning,
        stacklevel=3,
    )
    return ids


def fit_group(
    subjects: Sequence[SubjectInputs],
    out_dirs: Sequence[str | Path],
    settings: FitSettings,
    group_ids: Sequence[str] | None = None,
    fallback_gradient: np.ndarray | None = None,
    progress: GroupProgress | None = None,
    surrogate: SurrogateBackend | None = None,
) -> list[SubjectOutcome]:
    """Fit K subjects in lockstep (train → validation → test → profile) and write their outputs.

    Parameters
    ----------
    subjects : sequence of SubjectInputs
        Subjects sharing TR, scan length and N.
    out_dirs : sequence of paths
        One output folder per subject (checkpoints go to ``<out_dir>/checkpoint``).
    settings : FitSettings
    group_ids : sequence of str, optional
        The planned group's subject ids (default: those of ``subjects``); seeds of the group's
        simulation calls derive from them, so a resumed group reproduces the same numbers.
    fallback_gradient : ndarray of shape (N,), optional
        Gradient for subjects without maps (cohort FC); default: each subject's own FC gradient.
    progress : GroupProgress, optional
    surrogate : SurrogateBackend, optional
        Required for ``settings.mode == "surrogate"``
        (``delssome_norms.surrogate.SURROGATE_BACKEND``).

    A subject whose maps no candidate can satisfy (its gradient dominated by a few regions,
    :meth:`~delssome_norms.fit.parameterisation.Parameterisation.check_feasible`) fails alone at
    stage ``"input"`` before any simulation; the rest of the group is fitted.

    Returns
    -------
    list of SubjectOutcome, one per subject.
    """
    settings = identified_settings(check_fit_settings(settings), surrogate)  # which weights too
    check_device(settings.device)
    progress = progress or GroupProgress()
    keys = {(s.tr, s.scan_length, s.n_regions) for s in subjects}
    if len(keys) > 1:
        raise InvalidInputError(
            f"subjects of one lockstep group must share TR, scan length and N; got {sorted(keys)}"
        )
    group_ids = [s.subject_id for s in subjects] if group_ids is None else list(group_ids)
    gseed = group_seed(settings.seed, group_ids)
    outcomes: dict[str, SubjectOutcome] = {}
    todo: list[tuple[SubjectInputs, Path]] = []
    run_fps = {s.subject_id: run_fingerprint(s, settings, fallback_gradient) for s in subjects}
    for s, d in zip(subjects, out_dirs, strict=True):
        remove_dead_temporaries(d)  # half-written files of a killed run, finished folder or not
        if check_finished(d, run_fps[s.subject_id]):  # refuses results of another run
            outcomes[s.subject_id] = SubjectOutcome(s.subject_id, "skipped")
        else:
            todo.append((s, Path(d)))
    subjects_searches: list[list[Member]] = []
    extras = {}
    feasible: list[tuple[SubjectInputs, Path]] = []
    for s, d in todo:
        space, design = build_space(s, fallback_gradient, settings.stability_gate, settings.maps)
        problem = infeasible_maps(space, design)
        if problem is not None:  # no candidate could be valid: fails alone, before any simulation
            message = write_failure(d, s.subject_id, "input", problem)
            outcomes[s.subject_id] = SubjectOutcome(s.subject_id, "failed", "input", message)
            if progress.on_subject_done is not None:
                progress.on_subject_done(outcomes[s.subject_id])
            continue
        i = len(feasible)  # the subject's index in the group's batched simulations
        feasible.append((s, d))
        # the group's simulation noise derives from its members: a checkpoint continues only
        # in the group that wrote it
        fingerprint = {**_fingerprint(s, space, settings), "group": group_ids}
        searches = []
        for r in range(settings.searches):
            # the first search keeps the single-search seed and folder (same numbers with 1 search)
            seed = subject_seed(settings.seed, s.subject_id if r == 0 else f"{s.subject_id}/search{r}")
            folder = d / "checkpoint" if r == 0 else d / "checkpoint" / f"search_{r}"
            ckpt = Checkpoint(folder, fingerprint if r == 0 else {**fingerprint, "search": r})
            search = CMAESSearch(space, settings.cmaes, seed)
            searches.append(Member(s.subject_id, i, space, search, ckpt, search_index=r))
        subjects_searches.append(searches)
        extras[s.subject_id] = {
            "design": design,
            "subject_seed": searches[0].search.seed,
            "dir": d,
            "inputs": s,
            "searches": searches,
        }
    batch_ids = [s.subject_id for s, _ in feasible]  # the batch rows' subjects, in row order
    for searches in subjects_searches:
        for m in searches:
            m.checkpoint.members = batch_ids
    restarted: list[str] = []
    if subjects_searches:
        restarted = _run_members(subjects_searches, feasible, settings, gseed, progress, surrogate)
        _stage(progress, "write")
    for searches in subjects_searches:
        m = searches[0]  # holds the subject's test stage
        extra = extras[m.subject_id]
        # a subject fails when every one of its searches failed
        failure = None if any(x.active for x in searches) else searches[0].failure
        if failure is None:
            try:
                result = subject_result(
                    m,
                    searches,
                    extra["inputs"].fc,
                    settings.mode,
                    settings.interval,
                    settings.combine_rule,
                    uncertainty.fit_budget(
                        settings, extra["inputs"].scan_length, extra["inputs"], extra["design"]
                    ),
                )
            except SubjectFailure as exc:
                failure = str(exc)
            else:
                info = _run_info(m, extra, settings, group_ids, progress)
                # who shared the batches (noise rows) of its stages with it: the batch of this
                # call, or the stored one when all stages were stored (a kill during the writes)
                info["simulated_with"] = m.checkpoint.members or batch_ids
                info["fingerprint"] = run_fps[m.subject_id]
                write_subject_outputs(extra["dir"], result, info)
                note = RESTARTED_NOTE if m.subject_id in restarted else ""
                outcomes[m.subject_id] = SubjectOutcome(
                    m.subject_id, "done", message=note, result=result, run_info=info
                )
        if failure is not None:
            stage = failure.split(":", 1)[0]
            if "another --seed" in failure:
                failure += refit_alone_advice(extra["dir"], "cohort FC" in extra["design"])
            message = write_failure(extra["dir"], m.subject_id, stage, failure)
            outcomes[m.subject_id] = SubjectOutcome(m.subject_id, "failed", stage, message)
        if progress.on_subject_done is not None:
            progress.on_subject_done(outcomes[m.subject_id])
    return [outcomes[s.subject_id] for s in subjects]


def _run_members(
    subjects: list[list[Member]],
    todo: list[tuple[SubjectInputs, Path]],
    settings: FitSettings,
    gseed: int,
    progress: GroupProgress,
    surrogate: SurrogateBackend | None = None,
) -> list[str]:
    """Run the stages for every search of every subject (``subjects[k]``: subject k's searches).

    Returns the ids of subjects whose checkpoints of another batch were discarded
    (:func:`_restart_other_batches`)."""
    members = [m for searches in subjects for m in searches]
    first = todo[0][0]
    fc = np.stack([s.fc for s, _ in todo])
    cdf = np.stack([s.fcd_cdf for s, _ in todo])
    sc = np.stack([s.sc for s, _ in todo])
    train_timing = settings.timing(first.tr, first.scan_length, "train")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        _resume(members, settings)
        restarted = _restart_other_batches(subjects, settings)
        if restarted:
            _resume(members, settings)
    rebuilt = sorted(
        {m.subject_id for m in members if m.checkpoint.align_stages(settings.cmaes.generations)}
    )
    if rebuilt:
        warnings.warn(
            f"{len(rebuilt)} subject(s) ({', '.join(rebuilt[:5])}"
            f"{', ...' if len(rebuilt) > 5 else ''}) had validation/test results of another "
            f"number of generations: they are recomputed for --generations "
            f"{settings.cmaes.generations} from the stored train generations",
            InputWarning,
            stacklevel=2,
        )
    timings = progress.timings
    t = time.perf_counter()
    if progress.on_start is not None:
        progress.on_start(settings.cmaes.generations)
    if progress.on_generation is not None:
        progress.on_generation(max(len(m.records) for m in members))
    needs_val = any(m.checkpoint.load_stage("val") is None for m in members)
    simulated_dt = settings.dt_train if settings.mode == "euler" else None  # surrogate: not simulated
    if needs_val:
        evaluator = make_evaluator(
            settings.mode,
            fc,
            cdf,
            sc,
            train_timing,
            settings.n_dup,
            settings.device,
            settings.dtype,
            settings.engine,
            settings.rate_gate,
            weights=settings.surrogate_weights,
            stability_gate=settings.stability_gate,
            surrogate=surrogate,
        )
        run_train(members, evaluator, gseed, progress.on_generation, simulated_dt)
    else:
        for m in members:
            if not any(np.isfinite(r.total).any() for r in m.records):
                m.failure = no_valid_candidate_message(m.records, simulated_dt)
    timings["train_s"] = time.perf_counter() - t
    simulator = EulerEvaluator(
        fc,
        cdf,
        sc,
        train_timing,
        settings.n_dup,
        settings.device,
        settings.dtype,
        settings.engine,
        settings.rate_gate,
    )
    t = time.perf_counter()
    _stage(progress, "val")
    active = [m for m in members if m.active]
    if any(m.checkpoint.load_stage("val") is None for m in active):
        run_validation(
            active,
            simulator,
            settings.timing(first.tr, first.scan_length, "val"),
            gseed,
            settings.validated_per_generation,
        )
    timings["val_s"] = time.perf_counter() - t
    t = time.perf_counter()
    _stage(progress, "test")
    active = [searches for searches in subjects if any(m.active for m in searches)]
    if any(searches[0].checkpoint.load_stage("test") is None for searches in active):
        run_test(
            active,
            simulator,
            settings.timing(first.tr, first.scan_length, "test"),
            gseed,
            settings.test_top_k,
            _validation_hint(settings),
            settings.combine_rule,
        )
    timings["test_s"] = time.perf_counter() - t
    if settings.interval:
        t = time.perf_counter()
        _stage(progress, "profile")
        leads = [searches[0].checkpoint for searches in subjects]
        if any(c.load_stage("test") is not None and c.load_stage("profile") is None for c in leads):
            run_profile(
                subjects,
                simulator,
                settings.timing(first.tr, first.scan_length, "val"),
                gseed,
                settings.stability_gate,
            )
        timings["profile_s"] = time.perf_counter() - t
    return restarted


@contextlib.contextmanager
def noting_input_warnings(notes: list[str], *ignored: type[Warning]) -> Iterator[None]:
    """Append the text of every InputWarning of the block to ``notes`` instead of showing it
    (``cohort`` shows each distinct one once for all groups); warnings of the ``ignored``
    categories are dropped, others shown as usual once the block ends.

    ``warnings.catch_warnings`` swaps process-wide state, so outside the main thread (a Dask
    worker running groups on several threads) the block only drops the ``ignored`` categories
    and InputWarnings, as before notes were collected: recording there could hand one group's
    warnings to another or leave the process's warnings going into a dead list."""
    if threading.current_thread() is not threading.main_thread():
        with warnings.catch_warnings():
            for category in (InputWarning, *ignored):
                warnings.simplefilter("ignore", category)
            yield
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputWarning)
        for category in ignored:
            warnings.simplefilter("ignore", category)
        yield
    for w in caught:
        if issubclass(w.category, InputWarning):
            notes.append(str(w.message))
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _stage(progress: GroupProgress, stage: str) -> None:
    if progress.on_stage is not None:
        progress.on_stage(stage)


def _validation_hint(settings: FitSettings) -> str:
    """What to try when validation leaves a subject without a valid candidate."""
    if settings.rate_gate is None:
        return ""
    lo, hi = settings.rate_gate
    scored = "the surrogate cannot see r_E, so " if settings.mode == "surrogate" else ""
    return (
        f" ({scored}every validated candidate may have left the r_E gate {lo:g}-{hi:g} Hz; "
        "validate more per generation with --val-per-generation, or fit without --rate-gate)"
    )


def _best_total(m: Member) -> float | None:
    """Lowest finite train-stage total loss of a search (None if it has none)."""
    totals = [r.total[np.isfinite(r.total)] for r in m.records]
    return min((float(t.min()) for t in totals if t.size), default=None)


def _engine_used(settings: FitSettings, n_regions: int) -> str:
    """The engine the simulations of a fit ran on (``settings.engine`` as "auto" resolves it)."""
    from delssome_norms.model.integrate import _choose_engine

    dtype = getattr(torch, settings.dtype)
    return _choose_engine(settings.engine, check_device(settings.device), n_regions, dtype)


def _run_info(
    m: Member, extra: dict, settings: FitSettings, group_ids: list[str], progress: GroupProgress
) -> dict[str, Any]:
    s: SubjectInputs = extra["inputs"]
    timing = settings.timing(s.tr, s.scan_length, "train")
    k = len(group_ids)
    return {
        "seed": settings.seed,
        "subject_seed": extra["subject_seed"],
        # engine_used: what "auto" chose for this run's simulations (simulate --from-run uses it)
        "settings": {**settings.to_dict(), "engine_used": _engine_used(settings, s.sc.shape[0])},
        "timing": {
            "tr": s.tr,
            "scan_length": s.scan_length,
            "burn_in": timing.burn_in,
            "fcd_window": timing.fcd_window,
            "warmup_steps": timing.warmup_steps,
            "n_frames": timing.n_frames,
            "dt": {"train": settings.dt_train, "val": settings.dt_val, "test": settings.dt_test},
            "fcd_products": fcd_products_name(getattr(torch, settings.dtype), settings.device),
        },
        "inputs": s.sources,
        "design": extra["design"],
        "provenance": subject_provenance(s, settings, extra["design"], m.space.gradient),
        "wEI_range": list(m.space.bounds.wEI),
        "search": {
            "generations_done": m.search.generation,
            "restarts": m.search.restarts,
            "events": m.search.events,
            "stopped": m.search.stopped,
        },
        "searches": [
            {
                "search": x.search_index,
                "seed": x.search.seed,
                "generations_done": x.search.generation,
                "restarts": x.search.restarts,
                "stopped": x.search.stopped,
                "failure": x.failure,
                "best_train_total": _best_total(x),
            }
            for x in extra["searches"]
        ],
        "lockstep_group": group_ids,
        "wall_time_s": {
            **{key: round(v, 3) for key, v in progress.timings.items()},
            "per_subject_estimate": round(sum(progress.timings.values()) / max(k, 1), 3),
            "note": "stage times of the whole lockstep group in this run (stored stages take ~0 s)",
        },
    }


# ------------------------------------------------------------------------------------------- #
# single subject
# ------------------------------------------------------------------------------------------- #
def estimate_ei(
    subject: SubjectInputs,
    out_dir: str | Path | None = None,
    settings: FitSettings | None = None,
    progress: GroupProgress | None = None,
    surrogate: SurrogateBackend | None = None,
    fallback_gradient: np.ndarray | None = None,
) -> SubjectOutcome:
    """Estimate one subject's regional E/I ratio; optionally write its outputs to ``out_dir``.

    A folder holding a finished fit is left untouched; an interrupted one is resumed.

    Parameters
    ----------
    subject : SubjectInputs
        From :func:`~delssome_norms.fit.subject.load_subject`.
    out_dir : path, optional
        Gets ``EI_ratio.csv``, ``best_parameters.csv``, ``fit_quality.csv``, ``run.json`` and a
        ``checkpoint/`` folder. None: the fit checkpoints to a temporary folder that is deleted
        afterwards (no resume); the estimate is in the returned outcome only.
    settings : FitSettings, optional
        Defaults: 100 generations x 100 candidates, dt 0.005 / 0.005 / 0.0005 s.
    progress : GroupProgress, optional
    surrogate : SurrogateBackend, optional
        Required for ``settings.mode == "surrogate"``
        (``delssome_norms.surrogate.SURROGATE_BACKEND``).
    fallback_gradient : ndarray of shape (N,), optional
        A cohort's FC gradient for a subject without maps (its refit alone, :func:`build_space`).

    Returns
    -------
    SubjectOutcome
        With ``result`` (:class:`~delssome_norms.fit.stages.SubjectResult`) and ``run_info`` when
        the subject was fitted in this call (``status == "done"``).
    """
    settings = identified_settings(check_fit_arguments(subject, settings), surrogate)
    no_maps = subject.myelin is None and subject.gradient is None
    if no_maps and not subject.uses_default_maps(settings.maps):
        whose = "the subject's FC" if fallback_gradient is None else "the cohort's FC"
        warnings.warn(no_maps_message(subject.n_regions, whose), InputWarning, stacklevel=2)
    fit = dict(fallback_gradient=fallback_gradient, progress=progress, surrogate=surrogate)
    if out_dir is not None:
        if in_cohort_folder(out_dir):  # a refit alone: a later cohort run keeps it (lone_refit)
            record_refit_alone(out_dir, run_fingerprint(subject, settings, fallback_gradient))
        outcome = fit_group([subject], [out_dir], settings, **fit)[0]
        update_cohort_failures(Path(out_dir))  # e.g. refitted alone with another seed
    else:
        with tempfile.TemporaryDirectory(prefix="delssome_norms_fit_") as tmp:
            outcome = fit_group([subject], [tmp], settings, **fit)[0]
    calibration_scope.warn_uncalibrated_fit(outcome, out_dir)  # as EIEstimator says it
    return outcome
