"""Cohort estimation: manifest → lockstep groups → shards → local or Dask execution.

1. **Plan** (:func:`plan_cohort`): manifest rows are grouped into lockstep groups of K subjects with
   the same TR and scan length, in manifest order. The plan depends only on the manifest and K, so
   every shard, worker and restart sees the same groups (and therefore the same numbers).
2. **Shard** (:func:`shard_groups`): ``--shard k/n`` takes every n-th group starting at the k-th;
   the n shards together cover every group, hence every subject, exactly once.
3. **Execute**: each group is one task (:func:`run_group_task`) that loads its subjects (a bad
   file fails only that subject, with a message in ``failures.csv``), skips finished ones and
   resumes unfinished ones. ``executor="local"`` runs the groups one after the other in this
   process; ``executor="dask"`` submits them to an existing Dask cluster (``dask.distributed``;
   ``dask-jobqueue`` starts them on SLURM/PBS), each worker running whole lockstep groups.
   Output folders must be on a file system the workers share.

Subjects without maps use the ``[1, gradient]`` design with the principal gradient of the
cohort's group-average FC (Fisher-z mean over every readable subject of the manifest), written to
``<out_dir>/cohort_gradient.csv``. The first run into a folder stores it (``cohort_gradient.json``,
:func:`~delssome_norms.fit.cohort_fc.folder_gradient`); reruns and the other shards use the stored
one, so one folder's subjects share one design (``overwrite`` recomputes it).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.datasets import load_default_template
from delssome_norms.errors import InputWarning, InvalidInputError, SurrogateTimingWarning, out_of_space
from delssome_norms.fit import dask_executor, group_lock, verified
from delssome_norms.fit.atlas_checks import check_surrogate_run, no_maps_message
from delssome_norms.fit.calibration_scope import warn_uncalibrated_cohort
from delssome_norms.fit.checkpoint import Checkpoint
from delssome_norms.fit.cohort_fc import (
    MAP_COLUMNS,
    cohort_gradient,  # noqa: F401  (imported from here by `validate` and tests)
    folder_gradient,
    folder_gradient_now,
    in_cohort_order,
)
from delssome_norms.fit.evaluate import SurrogateBackend, identified_settings
from delssome_norms.fit.lockstep import (
    RESTARTED_NOTE,
    GroupProgress,
    MembersChangedWarning,
    SubjectOutcome,
    _fingerprint,
    build_space,
    choose_group_size,
    fit_group,
    noting_input_warnings,
    plan_groups,
)
from delssome_norms.fit.lone_refit import is_lone_refit, kept_seed, refit_alone_checkpoint, warn_kept
from delssome_norms.fit.manifest_checks import check_manifest_columns
from delssome_norms.fit.outputs import (
    check_finished,
    run_fingerprint,
    write_failure,
    write_failures,
)
from delssome_norms.fit.progress import progress_bar
from delssome_norms.fit.settings import FitSettings, check_fit_settings
from delssome_norms.fit.shard_plan import agree_group_size, refuse_unknown_timing
from delssome_norms.fit.subject import SubjectInputs, load_subject
from delssome_norms.io import (
    OutDirLock,
    check_not_locked,
    check_out_dir,
    read_manifest,
    read_sc,
    write_matrix,
)
from delssome_norms.io.readers import INPUT_PROBLEM
from delssome_norms.io.tidy_lock import TidyOutDirLock, missing_folders
from delssome_norms.io.writers import remove_dead_temporaries
from delssome_norms.model.devices import parse_device
from delssome_norms.model.timing import FIT_OPTION_FIELDS, timing_option

DASK_CONNECT_TIMEOUT_S = 10
"""Seconds to wait for a Dask scheduler before giving up."""
EXECUTORS = ("local", "dask")
"""Ways to run the groups."""
MAX_NOTES = 5
"""Distinct input warnings of the groups' fits that a cohort run shows (the others counted)."""


def parse_shard(text: str | None) -> tuple[int, int]:
    """Parse ``"k/n"`` (1 <= k <= n); None means ``(1, 1)``."""
    if text is None:
        return 1, 1
    try:
        k_s, n_s = str(text).split("/")
        k, n = int(k_s), int(n_s)
    except ValueError:
        raise InvalidInputError(f"expected k/n such as 1/4, got {text!r}", "--shard") from None
    if not 1 <= k <= n:
        raise InvalidInputError(f"shard k/n needs 1 <= k <= n, got {text!r}", "--shard")
    return k, n


def _cell(row: pd.Series, col: str) -> Any:
    v = row.get(col)
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return v


@dataclass(frozen=True)
class CohortPlan:
    """Lockstep groups of a manifest.

    Attributes
    ----------
    rows : list of dict
        Manifest rows (paths resolved), in manifest order.
    groups : list of list of int
        Row indices of each lockstep group.
    group_size : int
        K.
    n_regions : int
        N every subject must have.
    """

    rows: list[dict[str, Any]]
    groups: list[list[int]]
    group_size: int
    n_regions: int

    @property
    def subject_ids(self) -> list[str]:
        """All subject ids of the manifest."""
        return [r["subject_id"] for r in self.rows]


def _cohort_n_regions(rows: list[dict[str, Any]]) -> int:
    """N of the cohort: of the first readable SC file of the manifest, else (no row gives an SC)
    the default template's. A row without an SC in a cohort of another atlas then fails alone,
    with the message that it needs one (``cohort`` and ``validate`` refuse such a manifest
    before planning it: :func:`~delssome_norms.fit.manifest_checks.check_partly_filled`)."""
    given = [r["sc"] for r in rows if r.get("sc") is not None]
    if not given:
        return int(load_default_template().sc.shape[0])
    for path in given:
        try:
            with warnings.catch_warnings():  # only N is read here: the SC is matched by name,
                warnings.simplefilter("ignore", InputWarning)  # and warned about, when loaded
                return int(read_sc(path).shape[0])
        except InvalidInputError:
            continue
    if len(given) < len(rows):
        return int(load_default_template().sc.shape[0])
    raise InvalidInputError("no readable SC file in the manifest", "manifest")


def plan_cohort(
    manifest: pd.DataFrame,
    settings: FitSettings,
    group_size: int | None = None,
    n_regions: int | None = None,
    total_memory: int | None = None,
) -> CohortPlan:
    """Group a manifest (from :func:`delssome_norms.io.read_manifest`) into lockstep groups.

    Parameters
    ----------
    manifest : DataFrame
    settings : FitSettings
    group_size : int, optional
        K; default from the device's memory (:func:`~delssome_norms.fit.lockstep.choose_group_size`).
    n_regions : int, optional
        N; default 68 (the template) when a row has no SC, else the first readable SC's size.
    total_memory : int, optional
        Memory [bytes] of the device the groups run on (default: this machine's).
    """
    rows = []
    for _, r in manifest.iterrows():
        rows.append({c: _cell(r, c) for c in manifest.columns})
    n = n_regions or _cohort_n_regions(rows)
    if group_size is None:
        frames = max(_train_frames(r, settings) for r in rows)  # the longest scan sets the memory
        # every search of a subject adds a subject's worth of simulations to the lockstep batch
        group_size = max(
            1,
            choose_group_size(
                n,
                frames,
                settings.cmaes.popsize,
                settings.n_dup,
                settings.device,
                settings.dtype,
                validation_sets=settings.cmaes.generations * settings.validated_per_generation,
                total_memory=total_memory,
            )
            // settings.searches,
        )
    if not isinstance(group_size, int) or group_size < 1:
        raise InvalidInputError(f"must be a positive integer, got {group_size!r}", "--batch-subjects")
    # a row whose scan length is unknown (INPUT_PROBLEM) is planned like the others, so that the
    # shard plan (its subjects) does not depend on which files are readable today; it fails when run
    keys = [
        (
            round(float(r["tr"]), 9) if r["tr"] is not None else -1.0,  # None: TR not found
            round(float(r["scan_length"]), 9) if not r.get(INPUT_PROBLEM) else -1.0,
        )
        for r in rows
    ]
    return CohortPlan(
        rows=rows, groups=plan_groups(keys, group_size), group_size=group_size, n_regions=n
    )


def _train_frames(row: dict[str, Any], settings: FitSettings) -> int:
    """Simulated frames of a manifest row (0 where its timing is refused: reported later, per
    subject, by :func:`run_cohort`; also where its TR or scan length is unknown: it fails alone)."""
    if row.get(INPUT_PROBLEM) or row.get("tr") is None or row.get("scan_length") is None:
        return 0
    try:
        return settings.timing(row["tr"], row["scan_length"], "train").n_frames
    except InvalidInputError:
        return 0


def shard_groups(plan: CohortPlan, shard: tuple[int, int]) -> list[int]:
    """Indices of the groups of shard ``(k, n)``: groups k-1, k-1+n, k-1+2n, ..."""
    k, n = shard
    return list(range(k - 1, len(plan.groups), n))


def _load_row(row: dict[str, Any], n_regions: int, settings: FitSettings) -> SubjectInputs:
    if row.get(INPUT_PROBLEM):  # read_manifest could not even count its frames
        raise InvalidInputError(str(row[INPUT_PROBLEM]))
    subject = load_subject(
        row["subject_id"],
        row["tr"],
        row["scan_length"],
        fc=row.get("fc"),
        fcd_cdf=row.get("fcd_cdf"),
        timeseries=row.get("timeseries"),
        sc=row.get("sc"),
        myelin=row.get("myelin"),
        gradient=row.get("gradient"),
        n_regions=n_regions,
        fcd_window=settings.fcd_window,
    )
    return in_cohort_order(subject, row)  # the cohort FC gradient's region order, if fitted with it


def subject_finished(
    subject: SubjectInputs,
    subject_dir: str | Path,
    settings: FitSettings,
    fallback_gradient: np.ndarray | None = None,
    overwrite: bool = False,
    group_ids: Sequence[str] | None = None,
) -> bool:
    """Whether ``subject`` is finished in ``subject_dir`` with the current inputs and settings.

    Results or a checkpoint written with other inputs or settings, or a checkpoint of another
    lockstep group (``group_ids``, the planned group's subject ids; default the subject alone),
    are refused (:class:`~delssome_norms.errors.InvalidInputError` naming ``--overwrite``), or
    discarded with ``overwrite``.
    """
    group = [subject.subject_id] if group_ids is None else [str(g) for g in group_ids]
    fingerprint = run_fingerprint(subject, settings, fallback_gradient)

    def checkpoint_stale() -> str | None:
        if not (Path(subject_dir) / "checkpoint" / "state.json").exists():
            return None
        space, _ = build_space(subject, fallback_gradient, settings.stability_gate, settings.maps)
        folder = Path(subject_dir) / "checkpoint"
        ckpt = Checkpoint(folder, {**_fingerprint(subject, space, settings), "group": group})
        stale = ckpt.stale()
        if stale:
            return refit_alone_checkpoint(subject_dir, subject.subject_id, fingerprint) or stale
        try:  # damaged files are found now, not after hours of work
            ckpt.load_train()
            for stage in ("val", "val_pooled", "test"):
                ckpt.load_stage(stage)
        except InvalidInputError as err:
            name = Path(err.source).name if err.source else "checkpoint"
            return f"{name}: {err.problem.split('; use --overwrite')[0]}"
        return None

    accept = partial(is_lone_refit, subject_dir) if group_ids is not None else None  # a cohort's
    return check_finished(subject_dir, fingerprint, overwrite, checkpoint_stale, accept)


def run_group_task(
    rows: list[dict[str, Any]],
    out_dir: str,
    settings: FitSettings,
    n_regions: int,
    fallback_gradient: np.ndarray | None,
    progress: GroupProgress | None = None,
    surrogate: SurrogateBackend | None = None,
) -> list[dict[str, str]]:
    """Load, fit and write one lockstep group (the unit of work of every executor).

    The group's subject locks (:mod:`delssome_norms.fit.group_lock`) are held throughout; when
    another live process holds one (a Dask task that outlived its client, another run or shard
    on the folder), the group is skipped: every subject's status is ``"busy"``. A subject is
    skipped only when it is finished with the same run fingerprint (inputs, settings); one with
    results or a checkpoint of another run fails with a message naming ``--overwrite``
    (:func:`run_cohort` discards those before the work when asked to).

    Returns
    -------
    list of dict
        One ``{"subject_id", "status", "stage", "message"}`` per row.
    """
    group_ids = [str(r["subject_id"]) for r in rows]
    extra, gone = dask_executor.worker_lock_hooks()  # on a Dask worker: its address
    lock = group_lock.GroupLock(out_dir, group_ids, extra=extra, gone=gone)
    with lock:  # released on success, failure and Ctrl-C (also one during acquire)
        try:
            busy = lock.acquire()
        except OSError as exc:  # the lock folder cannot be written: this group fails alone
            return group_lock.failed_outcomes(group_ids, Path(out_dir), exc)
        if busy:
            return group_lock.busy_outcomes(group_ids, busy, lock.stale_after_s)
        fallback_gradient, problem = folder_gradient_now(Path(out_dir), fallback_gradient)
        if problem is not None:  # two cohort gradients must not be used in one folder
            for sid in group_ids:
                write_failure(Path(out_dir) / sid, sid, "input", problem)
            return [
                {"subject_id": s, "status": "failed", "stage": "input", "message": problem}
                for s in group_ids
            ]

        def check(done: int) -> None:  # between generations: stop if the lock was taken over
            lock.check()
            if progress is not None and progress.on_generation is not None:
                progress.on_generation(done)

        def check_stage(stage: str) -> None:  # and before each later stage and the writes
            lock.check()
            if progress is not None and progress.on_stage is not None:
                progress.on_stage(stage)

        checked = replace(progress or GroupProgress(), on_generation=check, on_stage=check_stage)
        return _run_group(
            rows, Path(out_dir), settings, n_regions, fallback_gradient, checked, surrogate
        )


def _run_group(
    rows: list[dict[str, Any]],
    out: Path,
    settings: FitSettings,
    n_regions: int,
    fallback_gradient: np.ndarray | None,
    progress: GroupProgress,
    surrogate: SurrogateBackend | None,
) -> list[dict[str, str]]:
    group_ids = [str(r["subject_id"]) for r in rows]
    outcomes: dict[str, SubjectOutcome] = {}
    subjects, dirs = [], []
    for r in rows:
        sid = str(r["subject_id"])
        sdir = out / sid
        remove_dead_temporaries(sdir, held=True)  # its lock is ours: a temporary is a dead one's
        if verified.still_verified(r, sdir):  # found finished before the work, files unchanged
            outcomes[sid] = SubjectOutcome(sid, "skipped")
            continue
        try:
            subject = _load_row(r, n_regions, settings)
        except InvalidInputError as exc:
            write_failure(sdir, sid, "input", str(exc))
            outcomes[sid] = SubjectOutcome(sid, "failed", "input", str(exc))
            continue
        try:
            finished = subject_finished(subject, sdir, settings, fallback_gradient, False, group_ids)
        except InvalidInputError as exc:
            outcomes[sid] = SubjectOutcome(sid, "failed", "stale", str(exc))
            continue
        if finished:
            outcomes[sid] = SubjectOutcome(sid, "skipped")
            continue
        subjects.append(subject)
        dirs.append(sdir)
    notes: list[str] = []  # the group's input warnings: run_cohort shows each once
    if subjects:
        ignored: list[type[Warning]] = [MembersChangedWarning]  # run_cohort sums them up
        if settings.mode == "surrogate":  # warned for all subjects before the work
            ignored.append(SurrogateTimingWarning)
        try:
            with noting_input_warnings(notes, *ignored):
                done = fit_group(
                    subjects, dirs, settings, group_ids, fallback_gradient, progress, surrogate
                )
        except group_lock.GroupLockLost as exc:  # another process fits the group now
            return [
                {"subject_id": s, "status": "busy", "stage": "locked", "message": str(exc)}
                for s in group_ids
            ]
        except Exception as exc:  # one broken group must not stop the cohort
            if out_of_space(exc):  # a full disk would: stop, and resume once there is room
                raise
            message = f"{type(exc).__name__}: {exc}"
            done = []
            for s, d in zip(subjects, dirs):
                write_failure(d, s.subject_id, "fit", message)
                done.append(SubjectOutcome(s.subject_id, "failed", "fit", message))
        outcomes.update({o.subject_id: o for o in done})
    extra = {"input_warnings": list(dict.fromkeys(notes))} if notes else {}
    return [{**vars(outcomes[sid]), **extra} for sid in group_ids]


def check_stale_subjects(
    plan: CohortPlan,
    groups: list[int],
    out: Path,
    settings: FitSettings,
    fallback_gradient: np.ndarray | None,
    overwrite: bool,
) -> list[tuple[str, Any]]:
    """Before the work: refuse (listing them) or discard subjects of another run's results.

    Only subjects whose folder already holds a ``run.json`` or a checkpoint are read; a subject
    whose inputs cannot be read fails later, with its message. Returns the refits alone kept.
    """
    stale, kept = [], []
    for g in groups:
        members = [str(plan.rows[i]["subject_id"]) for i in plan.groups[g]]
        for i in plan.groups[g]:
            row = plan.rows[i]
            sdir = out / str(row["subject_id"])
            check_not_locked(sdir, "--out-dir")  # e.g. an estimate-ei run writing into it
            if group_lock.live_holder(out, str(row["subject_id"])) is not None:
                continue  # being fitted elsewhere: its group is skipped, its files left alone
            if not ((sdir / "run.json").exists() or (sdir / "checkpoint" / "state.json").exists()):
                continue
            taken = verified.signatures(row, sdir)  # before the check reads the files
            try:
                subject = _load_row(row, plan.n_regions, settings)
            except InvalidInputError:
                continue
            try:
                if subject_finished(subject, sdir, settings, fallback_gradient, overwrite, members):
                    verified.mark_verified(row, taken)  # its group skips it without a re-read
                    if (seed := kept_seed(sdir, settings.seed)) is not None:
                        kept.append((str(row["subject_id"]), seed))
            except InvalidInputError as exc:
                stale.append((str(row["subject_id"]), exc.problem.split("; use --overwrite")[0]))
    if stale:
        shown = ", ".join(sid for sid, _ in stale[:10])
        more = f" (and {len(stale) - 10} more)" if len(stale) > 10 else ""
        first, why = stale[0]
        raise InvalidInputError(
            f"{len(stale)} subject folder(s) hold results or checkpoints of another run, or "
            f"damaged ones: {shown}{more} ({first}: {why}); use --overwrite to refit them, or "
            "another output folder",
            str(out),
        )
    return warn_kept(kept, overwrite)  # (subject_id, seed) of each, named before the work


@dataclass
class CohortSummary:
    """Counts of a cohort run and the failures table."""

    done: int
    skipped: int
    failed: int
    failures: pd.DataFrame
    group_size: int
    n_groups: int
    flagged: list[str] = field(default_factory=list)
    """Subjects fitted in this run whose fit carries the fit-quality flag."""
    busy: list[str] = field(default_factory=list)
    """Subjects skipped because another live process is fitting them (their lock is held)."""
    lone_refits: list[str] = field(default_factory=list)  # of skipped: refits alone, kept


def _progress_bars(total: int, quiet: bool):
    subjects = progress_bar(total, "subjects", "subj", quiet, position=0)
    generations = progress_bar(
        0, "generations of the current group", "gen", quiet, position=1, leave=False
    )
    return subjects, generations


def run_cohort(
    manifest: str | Path | pd.DataFrame,
    out_dir: str | Path,
    settings: FitSettings | None = None,
    shard: tuple[int, int] | str | None = None,
    executor: str = "local",
    scheduler: Any = None,
    group_size: int | None = None,
    quiet: bool = False,
    on_subject: Callable[[dict[str, str]], None] | None = None,
    overwrite: bool = False,
    surrogate: SurrogateBackend | None = None,
) -> CohortSummary:
    """Estimate E/I for every subject of a manifest (or of one shard of it).

    Parameters
    ----------
    manifest : path or DataFrame
        Manifest CSV (see :func:`delssome_norms.io.read_manifest`) or its table.
    out_dir : path
        One sub-folder per subject, plus ``failures.csv`` and ``cohort_gradient.csv`` (and
        ``cohort_gradient.json``: the stored gradient that reruns and other shards reuse).
    settings : FitSettings, optional
    shard : (k, n) or "k/n", optional
        Run only shard k of n.
    executor : {"local", "dask"}
    scheduler : str or dask.distributed.Client, optional
        Address of an existing Dask scheduler (or a connected client); required for ``"dask"``.
    group_size : int, optional
        K (subjects per lockstep group); default from the device's memory.
    quiet : bool
        No progress bars.
    on_subject : callable, optional
        Called with each subject's outcome dict as it finishes.
    overwrite : bool
        Refit subjects whose folders hold results or checkpoints of other inputs or settings
        (default: refuse before any work, listing them).
    surrogate : SurrogateBackend, optional
        Required for ``settings.mode == "surrogate"`` (``surrogate.SURROGATE_BACKEND``); shipped
        to Dask workers with the work.

    The out-dir is locked for the run (shards take a shared lock plus one per shard), so a
    second run stops at once, before reading the manifest, naming the first one's PID.

    Returns
    -------
    CohortSummary
    """
    settings = identified_settings(check_fit_settings(settings), surrogate)
    if executor not in EXECUTORS:
        raise InvalidInputError(f"must be one of {', '.join(EXECUTORS)}, got {executor!r}", "--executor")
    if executor == "dask" and scheduler is None:
        raise InvalidInputError(
            "the dask executor needs the address of a running scheduler (e.g. tcp://HOST:8786, "
            "as `dask scheduler` or dask-jobqueue's cluster.scheduler_address prints it; "
            "docs/dask_slurm.md), or use --executor local",
            "--scheduler",
        )
    shard_kn = parse_shard(shard) if isinstance(shard, str) or shard is None else tuple(shard)
    if shard_kn == (1, 1) and Path(out_dir).is_dir():  # a second run stops before reading anything
        check_not_locked(out_dir, "--out-dir")  # (a probe; the run's own lock is taken below)
    table = read_manifest(manifest) if not isinstance(manifest, pd.DataFrame) else manifest
    where = "manifest" if isinstance(manifest, pd.DataFrame) else str(manifest)
    check_manifest_columns(table, where, settings.maps)  # partial sc/map columns refused, before work
    scheduler_client = (
        dask_executor.connect(scheduler, DASK_CONNECT_TIMEOUT_S) if executor == "dask" else None
    )
    try:
        if scheduler_client is not None:  # before any task: a worker of another version
            dask_executor.check_workers(scheduler_client)
        # with Dask the groups run on the workers: their device is checked and sized there
        memory = _worker_memory(scheduler_client, settings.device) if scheduler_client else None
        return _run_cohort(
            table,
            out_dir,
            settings,
            shard_kn,
            executor,
            scheduler_client,
            group_size,
            quiet,
            on_subject,
            overwrite,
            surrogate,
            memory,
        )
    finally:
        if scheduler_client is not None and scheduler_client is not scheduler:
            scheduler_client.close()


def _worker_memory(client: Any, device: str) -> int | None:
    """Memory [bytes] of ``device`` on a Dask worker (None on CPU: the groups' K then follows
    this machine, as before); refuses a device the worker lacks."""
    from delssome_norms.fit.lockstep import device_memory

    if parse_device(device, "--device").type == "cpu":
        return None
    if dask_executor.no_workers(client):  # the sizing task below waits for a worker
        dask_executor.warn_no_workers(client)
    memory, problem = client.submit(device_memory, device, pure=False).result()
    if problem is not None:
        raise InvalidInputError(f"on a Dask worker: {problem}", "--device")
    return memory


def _run_cohort(
    table: pd.DataFrame,
    out_dir: str | Path,
    settings: FitSettings,
    shard_kn: tuple[int, int],
    executor: str,
    scheduler_client: Any,
    group_size: int | None,
    quiet: bool,
    on_subject: Callable[[dict[str, str]], None] | None,
    overwrite: bool,
    surrogate: SurrogateBackend | None,
    memory: int | None,
) -> CohortSummary:
    plan = plan_cohort(table, settings, group_size, total_memory=memory)
    for r in plan.rows:
        if r.get(INPUT_PROBLEM):  # fails alone when its group runs (its scan length is unknown)
            continue
        for stage in ("train", "val", "test"):  # timing problems (dt vs TR) before any work
            try:
                settings.timing(r["tr"], r["scan_length"], stage)
            except InvalidInputError as err:
                field = getattr(err, "field", None)  # the option that sets it, if any
                where = f"{stage} timing"
                if field in FIT_OPTION_FIELDS:  # TR and scan length come from the manifest
                    where += f", {timing_option(field, stage)}"
                raise err.with_source(f"subject {r['subject_id']} ({where})") from None
    if shard_kn[1] > 1:  # the groups must not depend on which files this node can read
        refuse_unknown_timing(plan.rows)
    known = [r for r in plan.rows if r["tr"] is not None]  # None: fails alone
    scans = [np.nan if r["scan_length"] is None else float(r["scan_length"]) for r in known]
    # surrogate weights of another N, once and before the timing warning (every fit would fail)
    timing = ([float(r["tr"]) for r in known], scans, [str(r["subject_id"]) for r in known])
    sc_files = [r.get("sc") for r in plan.rows if not r.get(INPUT_PROBLEM)]
    check_surrogate_run(
        settings, plan.n_regions, *timing[:2], surrogate, subject_ids=timing[2], sc_files=sc_files
    )
    created = missing_folders(out_dir)  # removed again if refused before anything is written
    out = check_out_dir(out_dir, "--out-dir")
    if shard_kn != (1, 1):
        plan = agree_group_size(
            out,
            plan.subject_ids,
            plan.group_size,
            group_size is not None,
            lambda k: plan_cohort(table, settings, k, plan.n_regions, memory),
            plan,
        )
    mine = [plan.rows[i] for g in shard_groups(plan, shard_kn) for i in plan.groups[g]]
    warn_uncalibrated_cohort(settings, mine, out_dir, overwrite)  # before any work: to be fitted
    with contextlib.ExitStack() as locks:
        whole = shard_kn == (1, 1)  # shards share the folder: its lock file stays
        locks.enter_context(TidyOutDirLock(out, created) if whole else OutDirLock(out, shared=True))
        if shard_kn != (1, 1):
            name = f".delssome-norms.shard-{shard_kn[0]}-of-{shard_kn[1]}.lock"
            locks.enter_context(OutDirLock(out, "--out-dir", name=name))
        return _run_locked(
            plan,
            out,
            settings,
            shard_kn,
            executor,
            scheduler_client,
            quiet,
            on_subject,
            overwrite,
            surrogate,
        )


def _run_locked(
    plan: CohortPlan,
    out: Path,
    settings: FitSettings,
    shard_kn: tuple[int, int],
    executor: str,
    client: Any,
    quiet: bool,
    on_subject: Callable[[dict[str, str]], None] | None,
    overwrite: bool,
    surrogate: SurrogateBackend | None = None,
) -> CohortSummary:
    gradient = folder_gradient(plan, settings.maps, out, overwrite)
    mine = shard_groups(plan, shard_kn)
    kept = check_stale_subjects(plan, mine, out, settings, gradient, overwrite) or []
    if gradient is not None:
        n_nomaps = sum(not any(r.get(c) for c in MAP_COLUMNS) for r in plan.rows)
        warnings.warn(
            no_maps_message(plan.n_regions, "the cohort's group-average FC", n_nomaps),
            InputWarning,
            stacklevel=2,
        )
        write_matrix(gradient, out / "cohort_gradient.csv")
    if not mine:
        warnings.warn(
            f"shard {shard_kn[0]}/{shard_kn[1]} has no work: the manifest makes "
            f"{len(plan.groups)} lockstep group(s) of up to {plan.group_size} subjects and shards "
            "take whole groups (use fewer shards, or a smaller --batch-subjects)",
            InputWarning,
            stacklevel=2,
        )
    total = sum(len(plan.groups[g]) for g in mine)
    bars = _progress_bars(total, quiet)
    counts = {"done": 0, "skipped": 0, "failed": 0, "busy": 0}
    flagged: list[str] = []
    busy: list[tuple[str, str]] = []
    statuses: dict[str, str] = {}
    restarted: list[str] = []
    notes: dict[str, None] = {}  # input warnings of the groups' fits, each shown once

    def record(outcome: dict[str, Any]) -> None:
        notes.update(dict.fromkeys(outcome.get("input_warnings") or ()))
        counts[outcome["status"]] += 1
        statuses[str(outcome["subject_id"])] = outcome["status"]
        if outcome["status"] == "done" and outcome.get("message") == RESTARTED_NOTE:
            restarted.append(str(outcome["subject_id"]))
        if outcome["status"] == "busy":
            busy.append((str(outcome["subject_id"]), str(outcome["message"])))
        result = outcome.get("result")  # a SubjectResult of a subject fitted now
        if result is not None and result.quality.get("flagged"):
            flagged.append(str(outcome["subject_id"]))
        bars[0].update(1)
        if on_subject is not None:
            on_subject(outcome)

    try:
        if executor == "local":
            gen_bar = bars[1]

            def start(total_gen: int) -> None:
                gen_bar.reset(total=total_gen)

            def gen(done: int) -> None:
                gen_bar.update(max(0, done - gen_bar.n))

            for g in mine:
                rows = [plan.rows[i] for i in plan.groups[g]]
                progress = GroupProgress(on_start=start, on_generation=gen)
                for o in run_group_task(
                    rows, str(out), settings, plan.n_regions, gradient, progress, surrogate
                ):
                    record(o)
        else:
            _run_dask(plan, mine, out, settings, gradient, client, record, surrogate)
    finally:
        for b in bars:
            b.close()
    failures = write_failures(out, plan.subject_ids)
    more = [f"{len(notes) - MAX_NOTES} more such input warnings of other lockstep groups"]
    for text in [*list(notes)[:MAX_NOTES], *(more if len(notes) > MAX_NOTES else [])]:
        warnings.warn(text, InputWarning, stacklevel=2)
    if restarted:
        warnings.warn(
            f"{len(restarted)} subject(s) ({', '.join(restarted[:10])}"
            f"{' ...' if len(restarted) > 10 else ''}) were {RESTARTED_NOTE} (a subject of their "
            "group failed or was fitted in one run and not the other)",
            MembersChangedWarning,
            stacklevel=2,
        )
    if busy:
        ids = [sid for sid, _ in busy]
        warnings.warn(
            f"{len(ids)} subject(s) skipped, being fitted elsewhere: {', '.join(ids[:10])}"
            f"{' ...' if len(ids) > 10 else ''} ({ids[0]}: {busy[0][1]})",
            group_lock.GroupLockWarning,
            stacklevel=2,
        )
    return CohortSummary(
        done=counts["done"],
        skipped=counts["skipped"],
        failed=counts["failed"],
        failures=failures,
        group_size=plan.group_size,
        n_groups=len(mine),
        flagged=flagged,
        busy=[sid for sid, _ in busy],
        lone_refits=[sid for sid, _ in kept if statuses.get(sid) == "skipped"],
    )


def _run_dask(
    plan: CohortPlan,
    groups: list[int],
    out: Path,
    settings: FitSettings,
    gradient: np.ndarray | None,
    client: Any,
    record: Callable[[dict[str, str]], None],
    surrogate: SurrogateBackend | None = None,
) -> None:
    # workers run in folders of their own: every path they get must be absolute
    out = out.resolve()
    weights = settings.surrogate_weights
    if weights is not None and not Path(weights).is_absolute():
        settings = replace(settings, surrogate_weights=str(Path(weights).resolve()))
    jobs = [
        (
            [plan.rows[i] for i in plan.groups[g]],
            (str(out), settings, plan.n_regions, gradient, None, surrogate),
        )
        for g in groups
    ]
    extra = [settings.surrogate_weights] if settings.surrogate_weights else []
    dask_executor.run_groups(client, out, jobs, record, extra)
