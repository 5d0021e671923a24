"""``EIEstimator``: one subject's regional E/I ratio, scikit-learn style (docs/science.md §5).

The estimator takes arrays (or file paths) and keeps the estimate in memory
(:attr:`EIEstimator.result_`, an :class:`~delssome_norms.pipeline.result.EIResult`). With
``out_dir`` it also writes the subject's files (``EI_ratio.csv``, ``best_parameters.csv``,
``fit_quality.csv``, ``run.json``, ``checkpoint/``) exactly as ``delssome-norms estimate-ei``
does, resumes an interrupted fit, and reuses a finished one. Without ``out_dir`` the fit
checkpoints to a temporary folder that is deleted when it ends (no resume).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import FitQualityWarning, InvalidInputError, NotFittedError
from delssome_norms.fit import CMAESSettings, FitSettings, check_mode
from delssome_norms.fit.cohort import subject_finished
from delssome_norms.fit.cohort_fc import with_cohort_gradient
from delssome_norms.fit.evaluate import with_weights_identity
from delssome_norms.fit.fc_regime import warn_fc_regime
from delssome_norms.fit.lockstep import GroupProgress, SubjectOutcome, estimate_ei
from delssome_norms.fit.subject import SubjectInputs, split_paths, template_sc
from delssome_norms.io import (
    check_fc,
    check_fcd_cdf,
    check_map,
    check_map_pair,
    check_sc,
    check_subject_id,
    check_timing,
    read_fcd_cdf_runs,
)
from delssome_norms.io.named_inputs import full_dk, named_pandas, read_named, warn_reordered
from delssome_norms.io.named_regions import Named, align_names, labelled_names, take_regions
from delssome_norms.io.prepare_record import check_prepared_timing
from delssome_norms.model.devices import check_device
from delssome_norms.model.timing import fcd_window_frames
from delssome_norms.pipeline.result import DEFAULT_SUBJECT_ID, EIResult
from delssome_norms.surrogate import SURROGATE_BACKEND

PathLike = str | Path

_CMAES_OVERRIDES = ("generations", "popsize", "mu")
_SETTINGS_OVERRIDES = (
    "mode",
    "seed",
    "n_dup",
    "dt_train",
    "dt_val",
    "dt_test",
    "burn_in",
    "fcd_window",
    "warmup_steps",
    "test_top_k",
    "searches",
    "combine",
    "stability_gate",
    "maps",
    "surrogate_weights",
    "device",
    "dtype",
    "interval",
)
_TIMING_FIELDS = ("burn_in", "fcd_window", "warmup_steps")


_FITTED = ("result_", "settings_", "outcome_")
_FLAG = re.compile(r"--([a-z][a-z0-9-]*)")


def _python_spelling(flag: str) -> str | None:
    """The estimator argument for a command-line option named in a message of the fit layer
    (``--dt-train`` -> ``dt_train``, ``--no-stability-gate`` -> ``stability_gate=False``,
    a setting without its own argument -> ``settings=FitSettings(rate_gate=...)``), or None."""
    negated = flag.startswith("no-")
    name = flag.removeprefix("no-").replace("-", "_")
    name = "surrogate_weights" if name == "weights" else name
    if name in _CMAES_OVERRIDES or name in _SETTINGS_OVERRIDES or name in ("out_dir", "overwrite"):
        return f"{name}=False" if negated else name
    if name in {f.name for f in dataclasses.fields(FitSettings)}:
        return f"settings=FitSettings({name}={'False' if negated else '...'})"
    return None


def _with_python_hint(message: str) -> str:
    """``message`` and, when it names command-line options, the estimator arguments to use."""
    spelled = [_python_spelling(f) for f in dict.fromkeys(_FLAG.findall(message))]
    spelled = [s for s in spelled if s is not None]
    if not spelled:
        return message
    return f"{message} (in Python: EIEstimator argument(s) {', '.join(spelled)})"


def _pythonic(err: InvalidInputError) -> InvalidInputError:
    """An input error of the fit layer spelled for a Python caller (same type, source, text +
    hint); the error as the fit layer spelled it stays in ``cli_error`` (``estimate-ei`` and the
    demo, which fit through this class, report that one)."""
    source = err.source
    if source and source.startswith("--"):
        source = source.removeprefix("--").replace("-", "_")
    problem = _with_python_hint(err.problem)
    if type(err) is not InvalidInputError or (problem, source) == (err.problem, err.source):
        return err
    spelled = InvalidInputError(problem, source)
    spelled.cli_error = err
    return spelled


def _timing_error(
    err: InvalidInputError, stage: str, settings: FitSettings, tr: float
) -> InvalidInputError:
    """A stage-timing error of the fit (:class:`~delssome_norms.model.timing.SimulationTiming`)
    naming the estimator argument that sets the value it is about, in its unit."""
    field = getattr(err, "field", None)
    if field == "fcd_window":
        given = settings.fcd_window
        now = (
            f"default round(60 / TR) = {fcd_window_frames(tr)} frames"
            if given is None
            else f"now {given} frames"
        )
        hint, source = f"fcd_window=<frames> ({now})", "fcd_window"
    elif field == "burn_in":
        hint, source = "burn_in=<seconds>", "burn_in"
    elif field == "warmup_steps":
        hint, source = "warmup_steps=<steps>", "warmup_steps"
    elif field == "dt":
        hint, source = f"dt_{stage}=<seconds>", f"dt_{stage}"
    else:
        return err.with_source(f"tr/scan_length ({stage} stage: dt_{stage}, timing)")
    return InvalidInputError(
        f"{err.problem} [{stage} stage; in Python: EIEstimator argument {hint}]", source
    )


class EIFitError(RuntimeError):
    """The subject could not be fitted (every candidate of a stage failed); ``outcome`` says why."""

    def __init__(self, outcome: SubjectOutcome) -> None:
        super().__init__(_with_python_hint(f"{outcome.subject_id} failed: {outcome.message}"))
        self.outcome = outcome

    @property
    def cli_message(self) -> str:
        """The failure as the command line reports it (its options, no Python hint)."""
        return f"{self.outcome.subject_id} failed: {self.outcome.message}"


def _host(value: Any) -> Any:
    """A torch tensor (on any device, with or without grad, any float dtype) as a float64 NumPy
    array; anything else unchanged."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float64).numpy()
    return value


def _scalar(value: Any) -> Any:
    """A one-number float32/float16 torch tensor as a NumPy scalar of its dtype (which
    :func:`~delssome_norms.io.check_timing` reads as the decimal it was made from); anything else
    unchanged."""
    if (
        isinstance(value, torch.Tensor)
        and value.numel() == 1
        and value.dtype in (torch.float32, torch.float16)
    ):
        return value.detach().to("cpu").reshape(()).numpy()[()]
    return value


def _required(value: Any, name: str) -> Any:
    if value is None:
        raise InvalidInputError(
            "is required (an array, a pandas object, a torch tensor or a file path), got None", name
        )
    return _host(value)


def _is_paths(value: Any) -> bool:
    if isinstance(value, (str, Path)):
        return True
    return (
        isinstance(value, (list, tuple))
        and len(value) > 0
        and all(isinstance(v, (str, Path)) for v in value)
    )


def _check_mixed_order(orders: dict[str, str], reference: str | None = None) -> None:
    """Refuse unlabelled arrays next to an input that was reordered by its region labels
    (``reference``: the input whose labelled order another atlas's inputs were put in)."""
    reordered = [k for k, v in orders.items() if v == "reordered"]
    plain = [k for k, v in orders.items() if v == "plain"]
    if reordered and plain:
        atlas = "the DK68 regions" if reference is None else f"the regions of {reference}"
        order = (
            "atlas order (datasets.atlas.DK68_REGIONS)" if reference is None else f"{reference}'s order"
        )
        raise InvalidInputError(
            f"{' and '.join(reordered)} name(s) {atlas} in another order and was put in "
            f"{order.split(' (')[0]}, but {', '.join(plain)} came without region labels, so their "
            f"order cannot be checked; label them too (pandas objects indexed by region name) or "
            f"give every input in {order}",
            reordered[0],
        )


def _matched_inputs(
    given: dict[str, Any], read: dict[str, Named], files: dict[str, list[str]]
) -> tuple[dict[str, Any], tuple[str, ...] | None, str | None]:
    """The inputs matched by their region names as ``load_subject`` matches files' headers.

    Files are read by name (``read``); pandas objects by their labels as the file readers read
    headers (:func:`~delssome_norms.io.named_inputs.named_pandas`): DK68 names in any spelling
    put in DK68 order (a subset of DK68: those regions, in DK68 order), another atlas's names
    kept as given. The inputs' names are then matched (``align_names``): one listing the first
    named input's regions in another order is put in its order (a file, with a warning), one
    naming other regions is refused, and so is an input without labels next to one that was
    reordered (:func:`_check_mixed_order`). Returns the values, the region names (None where no
    input names its regions) and the input that set them.
    """
    entries: dict[str, Named] = {}
    for k, v in given.items():
        if v is not None:
            entries[k] = read[k] if k in read else named_pandas(v, k, k.upper()) or Named(v)
    labelled = labelled_names(entries)
    names, ref, orders = align_names(labelled) if labelled else (None, None, {})
    warn_reordered([k for k in files if orders.get(k) is not None], files, ref)
    how = {}
    for k, e in entries.items():
        moved = e.moved and not (k in read and full_dk(e))  # a file of all 68: DK68 order
        if orders.get(k) is not None or moved:
            how[k] = "reordered"
        else:
            how[k] = "labelled" if k in labelled else "plain"
    own = ref is not None and entries[ref].kind != "dk"
    _check_mixed_order(how, ref if own else None)
    values = {
        k: take_regions(e.values, orders[k]) if orders.get(k) is not None else e.values
        for k, e in entries.items()
    }
    return {k: values.get(k) for k in given}, names, ref


def subject_from_arrays(
    subject_id: str,
    fc: np.ndarray | PathLike | Sequence[PathLike],
    fcd_cdf: np.ndarray | PathLike | Sequence[PathLike],
    *,
    tr: float,
    scan_length: float,
    sc: np.ndarray | PathLike | None = None,
    myelin: np.ndarray | PathLike | None = None,
    gradient: np.ndarray | PathLike | None = None,
) -> SubjectInputs:
    """Checked inputs of one subject from arrays or files (each input may be either).

    Parameters
    ----------
    subject_id : str
    fc : array-like of shape (N, N), or path(s)
        Empirical FC (Pearson r). Arrays, nested lists, torch tensors (any device, with or
        without grad) and pandas objects are accepted; several files: one per run, Fisher-z
        averaged. A pandas DataFrame (or, for the maps, a Series) labelled with region names is
        read as ``load_subject`` (the command line) reads the same names in a file's header:
        DK68 names in any spelling are put in DK68 order under the canonical names (some DK68
        regions only, e.g. one hemisphere: those regions, in DK68 order), another atlas's names
        are kept as given; 68 labels that are not all DK68 names are refused. Files are read by
        their region-name headers. The inputs' names are then matched: listed in another order,
        put in the first's; naming other regions, refused.
    fcd_cdf : array-like of shape (10000,) or (10000, 1), or path(s)
        Empirical FCD-CDF (several files: averaged).
    tr, scan_length : float
        Repetition time and scan length [s]. A float32 value (NumPy, pandas or torch) counts as
        the decimal it was made from (``np.float32(0.72)``: 0.72 s).
    sc : array-like of shape (N, N) or path, optional
        Unscaled SC; default the packaged DK68 template.
    myelin, gradient : array-like of shape (N,) or path, optional
        Regional maps (both or neither).

    Returns
    -------
    SubjectInputs

    Raises
    ------
    InvalidInputError
        Naming the input and the problem.
    """
    sid = check_subject_id(subject_id, "subject_id")
    fc, fcd_cdf = _required(fc, "fc"), _required(fcd_cdf, "fcd_cdf")
    sc, myelin, gradient = _host(sc), _host(myelin), _host(gradient)
    given = {"fc": fc, "sc": sc, "myelin": myelin, "gradient": gradient}
    files = {k: split_paths(v) for k, v in given.items() if v is not None and _is_paths(v)}
    # files by their region names, as load_subject reads them; then matched with the labelled
    # pandas inputs (and one another) by one rule
    read = {k: read_named(v, k) for k, v in files.items()}
    matched, names, named_by = _matched_inputs(given, read, files)
    fc, sc, myelin, gradient = (matched[k] for k in ("fc", "sc", "myelin", "gradient"))
    sources = {k: ";".join(v) for k, v in files.items()}
    fc_arr = np.asarray(fc, dtype=np.float64) if "fc" in files else check_fc(fc)
    sources.setdefault("fc", "array")
    warn_fc_regime(fc_arr, f"{sid} ({sources['fc']})")  # as load_subject does for files
    n = fc_arr.shape[0]
    if _is_paths(fcd_cdf):
        cdf_arr = read_fcd_cdf_runs(split_paths(fcd_cdf))
        sources["fcd_cdf"] = ";".join(split_paths(fcd_cdf))
    else:
        cdf_arr = check_fcd_cdf(fcd_cdf)
        sources["fcd_cdf"] = "array"
    tr_f, scan_f = check_timing(_scalar(tr), _scalar(scan_length), "tr/scan_length")
    if sc is None:
        sc_arr, sources["sc"] = template_sc(n, "sc")
    else:
        sc_arr = check_sc(sc, n, input_name=sources.get("sc", "SC"))
        sources.setdefault("sc", "array")
    try:
        check_map_pair(myelin, gradient)
    except InvalidInputError as err:
        raise _pythonic(err) from None
    maps = []
    for name, value in (("myelin", myelin), ("gradient", gradient)):
        if value is None:
            maps.append(None)
        else:
            maps.append(check_map(value, n, sources.get(name, name)))
            sources.setdefault(name, "array")
    return SubjectInputs(
        subject_id=sid,
        fc=fc_arr,
        fcd_cdf=cdf_arr,
        tr=tr_f,
        scan_length=scan_f,
        sc=sc_arr,
        myelin=maps[0],
        gradient=maps[1],
        sources=sources,
        regions=_region_names(names, named_by, n),
    )


def _region_names(names: tuple[str, ...] | None, named_by: str | None, n: int):
    """The subject's region names: DK68 for 68 regions, the names its inputs carry (some DK68
    regions, another atlas's), else None (results say ``region_0`` ...)."""
    if n == len(DK68_REGIONS):
        return DK68_REGIONS
    if names is not None and len(names) != n:
        raise InvalidInputError(f"has {len(names)} region labels but FC has {n} regions", named_by)
    return names


def check_fit_possible(
    subject: SubjectInputs,
    settings: FitSettings,
    names: dict[str, str] | None = None,
    fallback_gradient: np.ndarray | None = None,
) -> None:
    """Refuse, before any output folder or simulation, a fit that cannot succeed.

    Surrogate weights trained on another atlas (``mode="surrogate"``), and maps with which no
    candidate can pass the search's validity rules
    (:meth:`~delssome_norms.fit.parameterisation.Parameterisation.check_feasible`).
    ``names`` spells the inputs for the message: ``"given"`` (the gradient map) and
    ``"subject FC"`` (the FC its gradient came from); ``fallback_gradient`` is a cohort's FC
    gradient the subject is refitted with.
    """
    import warnings

    from delssome_norms.fit.atlas_checks import check_maps_feasible
    from delssome_norms.fit.lockstep import build_space

    names = {"given": "gradient", "subject FC": "fc", **(names or {})}
    if settings.mode == "surrogate":
        from delssome_norms.surrogate.pretrained import load_pretrained

        load_pretrained(settings.surrogate_weights).check(
            subject.n_regions, int(np.shape(subject.fcd_cdf)[0])
        )
    with warnings.catch_warnings():  # the fit itself warns about the design
        warnings.simplefilter("ignore")
        space, design = build_space(subject, fallback_gradient, False, settings.maps)
    check_maps_feasible(space, design, names)


class EIEstimator(BaseEstimator):
    """Estimate one subject's regional E/I ratio (pFIC model, CMA-ES train → validation → test).

    Every argument is stored unchanged (scikit-learn convention); ``None`` means "from
    ``settings``" (or :class:`~delssome_norms.fit.FitSettings`' defaults, docs/science.md §5).

    Parameters
    ----------
    settings : FitSettings, optional
        Base settings; the other arguments override single fields of it.
    mode : {"euler", "surrogate"}, optional
        Train-stage evaluator (validation and test always simulate).
    generations, popsize, mu : int, optional
        CMA-ES generations, candidates per generation, selected candidates.
    seed : int, optional
        Seed of the run (per-subject seeds derive from it and the subject id).
    n_dup : int, optional
        Noise duplicates per simulated candidate.
    dt_train, dt_val, dt_test : float, optional
        Integration steps of the three stages [s].
    burn_in : float, optional
        Simulated time before the scan whose BOLD frames are dropped [s] (default
        ``ceil(72 / tr) * tr``: 72.0 s at TR 0.72 s).
    fcd_window : int, optional
        Sliding-window length of the FCD [frames of TR] (default ``round(60 / tr)``: 83 frames,
        about 60 s, at TR 0.72 s). The FCD needs at least 2 windows, so the scan must hold at
        least ``fcd_window + 1`` frames: a scan shorter than about a minute needs a shorter
        window (e.g. ``fcd_window=30``).
    warmup_steps : int, optional
        Unrecorded integration steps before the burn-in [steps of ``dt_*``] (default 5000:
        25 s at ``dt`` 0.005 s).
    test_top_k : int, optional
        Validated sets re-simulated in the test stage.
    searches : int, optional
        Independent CMA-ES searches (default 1; 4 make the regional pattern much less
        seed-dependent, README "Seed dependence").
    combine : {"mean", "best"}, optional
        How several searches give one estimate (default "mean": the geometric mean of every
        search's best candidate's E/I).
    stability_gate : bool, optional
        Reject candidates with an unstable FIC fixed point before simulating them.
    maps : {"default", "fc-gradient"}, optional
        Maps of 68-region subjects given none.
    surrogate_weights : str, optional
        Folder of surrogate weights (``mode="surrogate"``; default the packaged ones).
    device : str or torch.device, optional
        Torch device (``"cpu"``, ``"cuda:0"``); a CUDA device this machine lacks is refused when
        ``fit`` starts.
    dtype : {"float32", "float64"} or torch/numpy dtype, optional
        Simulation dtype.
    interval : bool, optional
        Compute the 90 % interval of the E/I (default True); ``False`` skips the profile stage
        (39 extra simulations at ``dt_val`` with the defaults) and leaves ``ei_lo``/``ei_hi`` NaN.
    out_dir : path, optional
        Write the subject's files here (and checkpoint, resume, reuse a finished fit).
    overwrite : bool, default False
        With ``out_dir``: discard results or checkpoints written with other inputs or settings
        instead of refusing them (``True`` or ``False`` only).

    Attributes
    ----------
    result_ : EIResult
        The estimate (E/I per region as a pandas Series indexed by region name, S_E, S_I, r_E,
        spread, parameters, coefficients, losses, provenance).
    settings_ : FitSettings
        The settings the fit ran with.
    outcome_ : SubjectOutcome
        ``status`` ``"done"`` (fitted now) or ``"skipped"`` (finished results in ``out_dir``);
        after an :class:`EIFitError`, ``"failed"`` (and there is no ``result_``).

    Reading a fitted attribute before ``fit`` raises
    :class:`~delssome_norms.errors.NotFittedError` (an ``AttributeError``).

    Examples
    --------
    >>> est = EIEstimator(mode="surrogate", generations=10, seed=1)  # doctest: +SKIP
    >>> est.fit(fc, fcd_cdf, tr=0.72, scan_length=864.0).result_.ei.head()  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: FitSettings | None = None,
        *,
        mode: str | None = None,
        generations: int | None = None,
        popsize: int | None = None,
        mu: int | None = None,
        seed: int | None = None,
        n_dup: int | None = None,
        dt_train: float | None = None,
        dt_val: float | None = None,
        dt_test: float | None = None,
        burn_in: float | None = None,
        fcd_window: int | None = None,
        warmup_steps: int | None = None,
        test_top_k: int | None = None,
        searches: int | None = None,
        combine: str | None = None,
        stability_gate: bool | None = None,
        maps: str | None = None,
        surrogate_weights: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        interval: bool | None = None,
        out_dir: str | Path | None = None,
        overwrite: bool = False,
    ) -> None:
        self.settings = settings
        self.mode = mode
        self.generations = generations
        self.popsize = popsize
        self.mu = mu
        self.seed = seed
        self.n_dup = n_dup
        self.dt_train = dt_train
        self.dt_val = dt_val
        self.dt_test = dt_test
        self.burn_in = burn_in
        self.fcd_window = fcd_window
        self.warmup_steps = warmup_steps
        self.test_top_k = test_top_k
        self.searches = searches
        self.combine = combine
        self.stability_gate = stability_gate
        self.maps = maps
        self.surrogate_weights = surrogate_weights
        self.device = device
        self.dtype = dtype
        self.interval = interval
        self.out_dir = out_dir
        self.overwrite = overwrite

    def resolved_settings(self) -> FitSettings:
        """The :class:`~delssome_norms.fit.FitSettings` of a fit with these arguments.

        Raises
        ------
        InvalidInputError
            A bad value (naming the argument), or surrogate mode without usable weights.
        """
        base = FitSettings() if self.settings is None else self.settings
        if not isinstance(base, FitSettings):
            raise InvalidInputError(
                f"settings must be a FitSettings, got {type(base).__name__}", "EIEstimator"
            )
        cmaes = {k: getattr(self, k) for k in _CMAES_OVERRIDES if getattr(self, k) is not None}
        for name, value in cmaes.items():
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}", name)
        fields = {k: getattr(self, k) for k in _SETTINGS_OVERRIDES if getattr(self, k) is not None}
        if "dtype" in fields and not isinstance(fields["dtype"], (str, torch.dtype)):
            try:  # numpy's spellings (np.float64, np.dtype("float32")) as their names
                fields["dtype"] = np.dtype(fields["dtype"]).name
            except TypeError:
                pass  # FitSettings names the bad value
        # burn_in / fcd_window: FitSettings refuses values that cannot be a duration or a window
        if "mode" in fields and fields["mode"] not in ("euler", "surrogate"):
            raise InvalidInputError(
                f"mode must be 'euler' or 'surrogate', got {fields['mode']!r}", "mode"
            )
        cmaes = {k: int(v) for k, v in cmaes.items()}
        if "mu" not in cmaes and cmaes.get("popsize", base.cmaes.popsize) // 2 < base.cmaes.mu:
            cmaes["mu"] = None  # a smaller popsize alone: the default mu for it
        settings = dataclasses.replace(
            base,
            cmaes=dataclasses.replace(base.cmaes, **cmaes),
            **fields,
        )
        if not isinstance(settings.cmaes, CMAESSettings):  # pragma: no cover - FitSettings guards
            raise InvalidInputError("settings.cmaes must be a CMAESSettings", "settings")
        check_mode(settings.mode, settings.surrogate_weights, surrogate=SURROGATE_BACKEND)
        return with_weights_identity(settings, SURROGATE_BACKEND)

    def fit(
        self,
        fc: np.ndarray | PathLike | Sequence[PathLike],
        fcd_cdf: np.ndarray | PathLike | Sequence[PathLike],
        *,
        tr: float,
        scan_length: float,
        sc: np.ndarray | PathLike | None = None,
        myelin: np.ndarray | PathLike | None = None,
        gradient: np.ndarray | PathLike | None = None,
        subject_id: str = DEFAULT_SUBJECT_ID,
        progress: GroupProgress | None = None,
        cohort_gradient: str | Path | None = None,
    ) -> EIEstimator:
        """Fit one subject from arrays or files.

        Parameters
        ----------
        fc : array-like of shape (N, N), or path(s)
            Empirical FC (see :func:`subject_from_arrays` for the accepted forms).
        fcd_cdf : array-like of shape (10000,), or path(s)
            Empirical FCD-CDF.
        tr, scan_length : float
            Repetition time and scan length [s].
        sc : array-like of shape (N, N) or path, optional
            Unscaled SC (default: the DK68 template).
        myelin, gradient : array-like of shape (N,) or path, optional
            Regional maps (both or neither).
        subject_id : str
            Name of the subject (its seed derives from it and ``seed``).
        progress : GroupProgress, optional
            Progress callbacks.
        cohort_gradient : path, optional
            Refit a subject of a cohort run alone with the cohort's FC gradient (a subject without
            maps of another atlas, or with ``maps="fc-gradient"``): the cohort's output folder
            (its ``cohort_gradient.json``); see :meth:`fit_subject`.

        Returns
        -------
        self

        Raises
        ------
        InvalidInputError
            An input (named) or argument that is unusable.
        EIFitError
            No valid candidate survived a stage.
        """
        self._forget_fit()  # an input refused below leaves no earlier subject's result
        subject = subject_from_arrays(
            subject_id,
            fc,
            fcd_cdf,
            tr=tr,
            scan_length=scan_length,
            sc=sc,
            myelin=myelin,
            gradient=gradient,
        )
        if _is_paths(fc):  # FC files from prepare: the timing they were computed with
            window = fcd_window_frames(subject.tr, self.resolved_settings().fcd_window)
            timing = (subject.tr, subject.scan_length, window)
            try:
                cdfs = split_paths(fcd_cdf) if _is_paths(fcd_cdf) else None
                check_prepared_timing(split_paths(fc), *timing, str(subject_id), fcd_cdf=cdfs)
            except InvalidInputError as err:
                raise _pythonic(err) from None
        return self._fit_and_say(subject, progress, cohort_gradient)

    def _forget_fit(self) -> None:
        for name in _FITTED:  # a failed refit keeps no old result
            self.__dict__.pop(name, None)

    def fit_subject(
        self,
        subject: SubjectInputs,
        *,
        progress: GroupProgress | None = None,
        cohort_gradient: str | Path | None = None,
    ) -> EIEstimator:
        """Fit already checked inputs (:func:`~delssome_norms.fit.load_subject`).

        ``cohort_gradient`` (a cohort's output folder) refits one of its subjects without maps
        alone with the cohort's FC gradient, in its region order
        (:func:`~delssome_norms.fit.cohort_fc.with_cohort_gradient`): the cohort's design, so
        that ``collect`` and a later cohort run take the result as the cohort's (with
        ``out_dir`` = the subject's folder there, another ``seed`` and ``overwrite``;
        docs/rerunning.md).

        Returns
        -------
        self

        Raises
        ------
        EIFitError
            No valid candidate survived a stage (the message says which and what to try).
        InvalidInputError
            Bad settings, stage timing that does not fit the subject's TR/scan length, or (with
            ``out_dir``) results of another run in the folder without ``overwrite``.
        """
        return self._fit_and_say(subject, progress, cohort_gradient)

    def __getattr__(self, name: str) -> Any:
        # only called for attributes that are missing: the fitted ones before (or after a
        # failed) fit get a clear error, still an AttributeError (hasattr is False)
        if name in _FITTED:
            outcome = self.__dict__.get("outcome_")
            if outcome is not None and outcome.status == "failed":
                raise NotFittedError(
                    f"the last fit failed ({outcome.message}), so there is no {name}; see outcome_",
                    type(self).__name__,
                )
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet, so there is no {name}; call "
                "fit(fc, fcd_cdf, tr=..., scan_length=...) first",
                type(self).__name__,
            )
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _fit_subject(
        self,
        subject: SubjectInputs,
        progress: GroupProgress | None,
        cohort_gradient: str | Path | None = None,
    ) -> EIEstimator:
        settings = self.resolved_settings()
        if not isinstance(self.overwrite, (bool, np.bool_)):  # "no" would be truthy: discard
            raise InvalidInputError(
                f"overwrite must be True or False, got {self.overwrite!r}", "overwrite"
            )
        if self.out_dir is not None and not isinstance(self.out_dir, (str, Path)):
            raise InvalidInputError(
                f"out_dir must be a folder path (str or pathlib.Path), got "
                f"{type(self.out_dir).__name__}",
                "out_dir",
            )
        check_device(settings.device)
        for stage in ("train", "val", "test"):
            try:
                settings.timing(subject.tr, subject.scan_length, stage)
            except InvalidInputError as err:
                raise _timing_error(err, stage, settings, subject.tr) from None
        fallback = None
        if cohort_gradient is not None:
            subject, fallback = with_cohort_gradient(subject, cohort_gradient, settings.maps)
        check_fit_possible(subject, settings, None, fallback)
        out = None
        if self.out_dir is not None:
            out = Path(self.out_dir)
            if out.exists() and not out.is_dir():
                raise InvalidInputError(f"{out} exists and is not a folder", "out_dir")
            subject_finished(subject, out, settings, fallback, overwrite=bool(self.overwrite))
        outcome = self._estimate(subject, out, settings, progress, fallback)
        self.settings_ = settings
        self.outcome_ = outcome
        if outcome.status == "failed":
            raise EIFitError(outcome)
        if outcome.result is not None:
            self.result_ = EIResult.from_subject_result(
                outcome.result, outcome.run_info, subject.regions
            )
        else:  # finished results in out_dir, reused
            self.result_ = EIResult.from_dir(out, subject.regions)
        return self

    def _fit_and_say(
        self, subject: SubjectInputs, progress: GroupProgress | None, cohort_gradient
    ) -> EIEstimator:
        """The fit of :meth:`fit` and :meth:`fit_subject`, then its quality notes (what
        ``estimate-ei`` prints) as warnings that point at the user's call of either."""
        self._forget_fit()
        try:
            self._fit_subject(subject, progress, cohort_gradient)
        except InvalidInputError as err:
            raise _pythonic(err) from None
        for note in self.result_.quality_notes():
            note = _with_python_hint(note).replace("(README ", "(README.md ")
            warnings.warn(f"{subject.subject_id}: {note}", FitQualityWarning, stacklevel=3)
        return self

    @staticmethod
    def _estimate(
        subject: SubjectInputs,
        out_dir: Path | None,
        settings: FitSettings,
        progress: GroupProgress | None,
        fallback_gradient: np.ndarray | None = None,
    ) -> SubjectOutcome:
        """The one call into the fit (surrogate wiring goes here). Its fit-quality notes are
        silenced here: :meth:`fit_subject` emits them once, in their Python spelling."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitQualityWarning)
            return estimate_ei(
                subject, out_dir, settings, progress, SURROGATE_BACKEND, fallback_gradient
            )
