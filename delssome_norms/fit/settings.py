"""Settings of an E/I estimation run (everything its numbers depend on besides the inputs)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np
import torch

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.cmaes import CMAESSettings
from delssome_norms.fit.seeding import check_seed
from delssome_norms.model import SimulationTiming
from delssome_norms.model.devices import parse_device
from delssome_norms.model.integrate import ENGINES as ENGINE_CHOICES
from delssome_norms.model.integrate import is_numpy_dtype
from delssome_norms.model.timing import MAX_SCAN_LENGTH, MIN_FCD_WINDOW

MAP_CHOICES = ("default", "fc-gradient")
"""Where a 68-region subject without maps gets them (:attr:`FitSettings.maps`)."""
MODE_CHOICES = ("euler", "surrogate")
"""Train-stage evaluators (:attr:`FitSettings.mode`)."""
DTYPE_CHOICES = ("float32", "float64")
"""Simulation dtypes (:attr:`FitSettings.dtype`)."""
COMBINE_CHOICES = ("best", "mean")
"""How several searches give one estimate (:attr:`FitSettings.combine`)."""


def _cli(help: str, flag: str | None = None, group: str = "fit", **argparse_kwargs: Any) -> dict:
    """Field metadata naming the field's command-line option (read by ``cli/options.py``).

    ``flag`` defaults to ``--<field-name>``; the default value always comes from the field, and
    ``help`` gets " (default <value>)" appended unless it already says its default.
    """
    return {"cli": {"help": help, "flag": flag, "group": group, **argparse_kwargs}}


def _plain_python_numbers(obj: Any) -> None:
    """Replace NumPy scalars in a frozen dataclass's fields by Python ones (``np.int64(3)`` is a
    valid seed; JSON records need plain numbers), one-element tensors too (``torch.tensor(0.006)``
    as a step size, as ``tr`` accepts)."""
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, torch.Tensor) and v.numel() == 1 and not v.is_complex():
            v = v.detach().cpu().reshape(()).numpy()[()]  # a NumPy scalar, handled below
        if isinstance(v, np.bool_):
            object.__setattr__(obj, f.name, bool(v))
        elif isinstance(v, np.integer):
            object.__setattr__(obj, f.name, int(v))
        elif isinstance(v, np.floating):  # float32 0.006 is kept as 0.006, not 0.006000000052
            object.__setattr__(obj, f.name, float(str(v)) if v.itemsize < 8 else float(v))


def _check_timing_fields(settings: Any) -> None:
    """Refuse a burn-in or FCD window that cannot be one, naming the field (every path that
    builds :class:`FitSettings` gets the same message): ``burn_in`` None or a finite number of
    seconds >= 0 (kept as a float); ``fcd_window`` None or a whole number of frames >=
    :data:`~delssome_norms.model.timing.MIN_FCD_WINDOW` (kept as an int). Whether they fit a
    subject's scan is checked per stage by :meth:`FitSettings.timing`."""
    burn_in = settings.burn_in
    if burn_in is not None:
        number = isinstance(burn_in, (int, float)) and not isinstance(burn_in, bool)
        if not number or not math.isfinite(burn_in) or burn_in < 0:
            raise InvalidInputError(
                f"burn_in must be a number of seconds >= 0, got {burn_in!r}", "burn_in"
            )
        if burn_in > MAX_SCAN_LENGTH:  # 1e300 s would size the simulation's arrays
            raise InvalidInputError(
                f"burn_in of {burn_in:g} s is implausible (at most {MAX_SCAN_LENGTH:g} s); it is "
                "in seconds",
                "burn_in",
            )
        object.__setattr__(settings, "burn_in", float(burn_in))
    window = settings.fcd_window
    if window is not None:
        number = isinstance(window, (int, float)) and not isinstance(window, bool)
        if not number or not math.isfinite(window) or window != int(window) or window < MIN_FCD_WINDOW:
            raise InvalidInputError(
                f"fcd_window must be a whole number of frames >= {MIN_FCD_WINDOW}, got {window!r}",
                "fcd_window",
            )
        object.__setattr__(settings, "fcd_window", int(window))


def _call_text(cls_name: str, values: dict) -> str:
    """``values`` written as a call of ``cls_name`` (``{"n_dup": 1}``: ``FitSettings(n_dup=1)``;
    a nested ``cmaes`` dict as ``CMAESSettings(...)``), for a message saying what to pass."""
    args = []
    for key, value in values.items():
        if not (isinstance(key, str) and key.isidentifier()):
            continue
        if key == "cmaes" and isinstance(value, dict):
            args.append(f"cmaes={_call_text(CMAESSettings.__name__, value)}")
        else:
            args.append(f"{key}={value!r}")
    return f"{cls_name}({', '.join(args)})"


def _wrong_type(
    cls: type, value: object, argument: str, default: str, wrap: str, names: str, tail: str = ""
) -> InvalidInputError:
    """The error for ``value`` given where a ``cls`` is needed (a dict of its fields failed later
    with a bare AttributeError): the call to write, built from the dict when one was given
    (``default`` otherwise), inside ``wrap`` (a format string with ``{}``)."""
    example = _call_text(cls.__name__, value) if isinstance(value, dict) and value else default
    return InvalidInputError(
        f"must be a {cls.__name__}, not {type(value).__name__}: pass {wrap.format(example)} "
        f"(from delssome_norms.fit import {names}){tail}",
        argument,
    )


def _check_cmaes_field(cmaes: object) -> None:
    """Refuse a ``cmaes`` that is not a :class:`~delssome_norms.fit.cmaes.CMAESSettings`."""
    if not isinstance(cmaes, CMAESSettings):
        raise _wrong_type(
            CMAESSettings, cmaes, "cmaes", "CMAESSettings(generations=3)",
            "FitSettings(cmaes={})", "CMAESSettings",
        )  # fmt: skip


def check_fit_settings(settings: object, argument: str = "settings") -> FitSettings:
    """``settings`` if it is a :class:`FitSettings` (None: the defaults), else an
    :class:`~delssome_norms.errors.InvalidInputError` naming ``argument`` and what to pass
    (a dict of fields failed later with a bare AttributeError; an empty one silently meant the
    defaults)."""
    if settings is None:
        return FitSettings()
    if isinstance(settings, FitSettings):
        return settings
    raise _wrong_type(
        FitSettings, settings, argument, "FitSettings(cmaes=CMAESSettings(generations=3))",
        "{}", "FitSettings, CMAESSettings", ", or None for the defaults",
    )  # fmt: skip


@dataclass(frozen=True)
class FitSettings:
    """Settings of the train → validation → test fit (defaults: docs/science.md §2, §5).

    Parameters
    ----------
    cmaes : CMAESSettings
        Search settings (defaults: :class:`~delssome_norms.fit.cmaes.CMAESSettings`).
    seed : int, default 0
        The run's seed; per-subject and per-call seeds are derived from it.
    mode : {"euler", "surrogate"}
        Train-stage evaluator (validation and test are always simulated).
    n_dup : int, default 3
        Noise duplicates per simulated candidate.
    dt_train, dt_val, dt_test : float
        Integration steps of the three stages [s] (defaults: the fields below).
    burn_in : float, optional
        Burn-in [s], a finite number >= 0; default ``ceil(72 / TR) * TR``.
    fcd_window : int, optional
        FCD window [frames], a whole number >= ``MIN_FCD_WINDOW`` (3); default
        ``round(60 / TR)``.
    warmup_steps : int, default 5000
        Unrecorded integration steps before the burn-in.
    test_top_k : int, default 5
        Validated parameter sets re-simulated in the test stage (the best gives the E/I; all of
        them give ``EI_ratio_sd``).
    val_per_generation : int, optional
        Best train candidates of every generation re-simulated in the validation stage. Default:
        1 in Euler mode (the paper's protocol) and 2 in surrogate mode, where the network's ranking
        is approximate (its held-out top-10 overlap: ``pretrained/README.md``) and validating more
        than its best per generation recovers candidates it misranks. 2 rather than 3: on the 32
        truths of ``bench/ei_calibration.py`` the two gave the same test costs (paired median
        difference -0.001) and level errors, and 2 costs a third less validation, the dominant
        stage of a surrogate-mode fit (docs/science.md §9).
    searches : int, default 1
        Independent CMA-ES searches per subject (seeds derived from ``seed``), run in lockstep.
        Validation re-simulates the generation bests of every search; the test stage re-simulates
        the best validated candidates over all of them and, with ``combine="mean"`` (the default
        here), every search's own best, whose E/I are averaged. How far more searches make the
        estimate less seed-dependent is measured by ``bench/reproducibility.py`` (figures:
        ``README.md``, "Seed dependence"). 1 is the paper's protocol. Costs ``searches`` times
        the train and validation simulations.
    combine : {"best", "mean"}, optional
        How several searches give one estimate (default: "mean" with ``searches`` > 1;
        :attr:`combine_rule`). ``"best"``: the E/I of the best validated candidate over all
        searches. ``"mean"``: the test stage also re-simulates every search's
        own best validated candidate, and the E/I is the geometric mean (per region) of those
        candidates' E/I; ``best_parameters.csv`` and the test losses stay the best one's, and the
        interval widens by the searches' spread about the mean. Picking the lowest of several
        noisy costs selects candidates that fit the noise, and a 432-s scan's cost has several
        near-equal minima with different regional patterns; averaging the searches' answers
        instead makes the pattern markedly more reproducible (``bench/reproducibility.py``,
        figures in ``README.md``, "Seed dependence"). Needs ``searches`` >= 2.
    stability_gate : bool, default True
        Train stage: a candidate whose FIC fixed point is linearly unstable
        (:func:`~delssome_norms.model.fic_stability_margin` >= 0) is neither simulated nor
        predicted; it counts as invalid and its margin [1/s] ranks it (after every scored
        candidate), which steers the search to stable parameters; the initial mean is drawn
        stable. At an unstable fixed point the simulated state leaves r_E = 3 Hz, outside the
        regime FIC describes, and such fits give E/I maps unrelated to (often anti-correlated
        with) the subject's in-regime fits: the main cause of disagreement between two fits of
        one subject and between Euler and surrogate mode (``bench/surrogate.py``). ``False`` is
        the paper's protocol.
    rate_gate : (float, float), optional
        Excitatory-rate gate [Hz] (Zhang et al. 2024 use 2.7–3.3): a simulated candidate whose
        time-averaged r_E leaves this band in any region counts as invalid in every simulated
        stage. Off by default, as in the paper's final code.
    surrogate_weights_sha256 : str, optional
        SHA-256 of the surrogate weights file, filled in by the entry points for
        ``mode="surrogate"`` (:func:`~delssome_norms.fit.evaluate.with_weights_identity`); results
        and checkpoints compare it, so weights retrained in the same folder are not mistaken for
        the old ones. Not an option.
    surrogate_weights : str, optional
        Pretrained surrogate folder for ``mode="surrogate"`` (default: the shipped weights,
        ``pretrained/delssome_dk68`` or ``$DELSSOME_NORMS_PRETRAINED``).
    device : str, default "cpu"
    dtype : {"float32", "float64"}
    engine : str, default "auto"
        Simulator engine.
    interval : bool, default True
        Run the ``profile`` stage after the test stage and report a 90 % interval for every
        regional E/I and for the mean (``EI_ratio_lo``/``EI_ratio_hi``, ``run.json``
        ``ei_interval``; :mod:`delssome_norms.fit.uncertainty`: 39 extra simulations at
        ``dt_val`` per subject with the defaults). ``False`` skips it (NaN bounds); the
        fit-quality verdict then lacks the cost-floor and width reasons, and ``EI_ratio`` is the
        winner's own E/I, not centred in the near-optimal set (the level differs from a default
        fit's; the accuracy figures of docs/accuracy.md are for the centred estimate).
    maps : {"default", "fc-gradient"}
        Regional maps of a 68-region subject given none: ``"default"`` uses the shipped DK68
        myelin and gradient maps (:func:`delssome_norms.datasets.maps.load_default_maps`) and the
        full ``[1, myelin, gradient]`` design; ``"fc-gradient"`` the ``[1, gradient]`` design
        with the principal gradient of the cohort's (or the subject's) FC, refusing FC whose
        gradient would only separate the hemispheres. Subjects with their own maps use them.
    """

    cmaes: CMAESSettings = field(default_factory=CMAESSettings)
    seed: int = field(default=0, metadata=_cli("seed of the whole run"))
    mode: str = field(default="euler", metadata=_cli("train-stage evaluator", choices=MODE_CHOICES))
    n_dup: int = field(default=3, metadata=_cli("noise duplicates per candidate", group="simulation"))
    dt_train: float = field(default=0.005, metadata=_cli("train step, s", group="simulation"))
    dt_val: float = field(default=0.005, metadata=_cli("validation step, s", group="simulation"))
    dt_test: float = field(default=0.0005, metadata=_cli("test step, s", group="simulation"))
    burn_in: float | None = field(
        default=None,
        metadata=_cli("burn-in, s (default ceil(72/TR) TR)", type=float, group="simulation"),
    )
    fcd_window: int | None = field(
        default=None,
        metadata=_cli("FCD window, frames (default round(60/TR))", type=int, group="simulation"),
    )
    warmup_steps: int = field(
        default=5000, metadata=_cli("unrecorded warm-up steps", group="simulation")
    )
    test_top_k: int = field(
        default=5, metadata=_cli("validated sets re-simulated in test", group="simulation")
    )
    val_per_generation: int | None = field(
        default=None,
        metadata=_cli(
            "best train candidates per generation re-simulated in validation "
            "(default 1 in euler mode, 2 in surrogate mode)",
            type=int,
            group="simulation",
        ),
    )
    rate_gate: tuple[float, float] | None = field(
        default=None,
        metadata=_cli(
            "reject candidates whose regional mean r_E leaves LOW..HIGH Hz (e.g. 2.7 3.3); default off",
            type=float,
            nargs=2,
            metavar=("LOW", "HIGH"),
            group="simulation",
        ),
    )
    stability_gate: bool = field(
        default=True,
        metadata=_cli(
            "also search parameters whose FIC fixed point is unstable (r_E leaves 3 Hz); the "
            "paper's protocol. Default: such candidates are rejected before simulation",
            flag="--no-stability-gate",
            action="store_true",
            group="simulation",
        ),
    )
    searches: int = field(
        default=1,
        metadata=_cli(
            "independent CMA-ES searches per subject, combined as --combine says (default "
            "%(default)s, the paper's protocol; 4 averaged make a person's regional pattern much "
            "less seed-dependent, at 4x the search and validation cost)"
        ),
    )
    combine: str | None = field(
        default=None,
        metadata=_cli(
            "how several --searches give one estimate: 'mean' = the geometric mean of the E/I "
            "of every search's best validated candidate (default with --searches > 1: a more "
            "reproducible regional pattern); 'best' = the E/I of the best validated candidate "
            "over all searches",
            choices=COMBINE_CHOICES,
        ),
    )
    surrogate_weights: str | None = field(
        default=None,
        metadata=_cli(
            "surrogate weights for --mode surrogate (default: pretrained/delssome_dk68)",
            flag="--weights",
            metavar="DIR",
        ),
    )
    device: str = field(
        default="cpu", metadata=_cli("torch device, e.g. cpu or cuda:0 (default %(default)s)")
    )
    surrogate_weights_sha256: str | None = None
    dtype: str = field(default="float32", metadata=_cli("simulation dtype", choices=DTYPE_CHOICES))
    engine: str = field(
        default="auto",
        metadata=_cli(
            "simulator engine: auto, torch, kernel (CPU) or triton (CUDA)",
            choices=ENGINE_CHOICES,
            group="simulation",
        ),
    )
    maps: str = field(
        default="default",
        metadata=_cli(
            "maps of 68-region subjects given none: 'default' = the shipped DK68 myelin and "
            "gradient maps, design [1, myelin, gradient]; 'fc-gradient' = the principal gradient "
            "of the cohort's (or subject's) FC, design [1, gradient]",
            choices=MAP_CHOICES,
            group="simulation",
        ),
    )
    interval: bool = field(
        default=True,
        metadata=_cli(
            "skip the profile stage: no 90 %% E/I interval (EI_ratio_lo/hi), no "
            "interval-based quality check, and EI_ratio is the winner's own instead of the "
            "centre of the near-optimal set (another level than a default fit's). Default: "
            "intervals are computed",
            flag="--no-interval",
            action="store_true",
            group="simulation",
        ),
    )

    def __post_init__(self) -> None:
        _check_cmaes_field(self.cmaes)
        _plain_python_numbers(self)
        # a torch.device is kept by name (settings are recorded in JSON); CUDA's presence is
        # checked when a fit starts, so that settings read back on another machine still load
        object.__setattr__(self, "device", str(parse_device(self.device, "device")))
        if isinstance(self.dtype, torch.dtype):  # torch.float64 is kept by name, as recorded
            object.__setattr__(self, "dtype", str(self.dtype).removeprefix("torch."))
        elif is_numpy_dtype(self.dtype):  # np.float64, np.dtype("float32"); None is refused
            object.__setattr__(self, "dtype", np.dtype(self.dtype).name)
        check_seed(self.seed)
        for name in ("dt_train", "dt_val", "dt_test"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise InvalidInputError(f"{name} must be a positive number of seconds, got {v!r}", name)
        for name, low in (("n_dup", 1), ("test_top_k", 1), ("warmup_steps", 0), ("searches", 1)):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < low:
                raise InvalidInputError(f"{name} must be an integer >= {low}, got {v!r}", name)
        _check_timing_fields(self)
        v = self.val_per_generation
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise InvalidInputError(
                f"val_per_generation must be an integer >= 1, got {v!r}", "val_per_generation"
            )
        if not isinstance(self.stability_gate, bool):
            raise InvalidInputError(
                f"stability_gate must be True or False, got {self.stability_gate!r}", "stability_gate"
            )
        if not isinstance(self.interval, bool):
            raise InvalidInputError(f"interval must be True or False, got {self.interval!r}", "interval")
        if self.rate_gate is not None:
            lo, hi = (float(v) for v in self.rate_gate)
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo < hi):
                raise InvalidInputError(
                    f"needs 0 <= low < high (Hz), got {self.rate_gate!r}", "rate_gate"
                )
            object.__setattr__(self, "rate_gate", (lo, hi))
        if self.combine is not None and self.combine not in COMBINE_CHOICES:
            raise InvalidInputError(
                f"combine must be one of {', '.join(COMBINE_CHOICES)}, got {self.combine!r}",
                "combine",
            )
        if self.combine == "mean" and self.searches < 2:
            raise InvalidInputError(
                f"'mean' averages the estimates of several searches; it needs --searches >= 2, "
                f"got {self.searches}",
                "combine",
            )
        if not isinstance(self.mode, str) or self.mode not in MODE_CHOICES:
            raise InvalidInputError(
                f"mode must be one of {', '.join(MODE_CHOICES)}, got {self.mode!r}", "mode"
            )
        if self.maps not in MAP_CHOICES:
            raise InvalidInputError(
                f"maps must be one of {', '.join(MAP_CHOICES)}, got {self.maps!r}", "maps"
            )
        if self.engine not in ENGINE_CHOICES:  # before any folder is made, not at the first step
            raise InvalidInputError(
                f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {self.engine!r}", "engine"
            )
        needs = {"kernel": "cpu", "triton": "cuda"}.get(self.engine)
        if needs is not None and parse_device(self.device).type != needs:
            raise InvalidInputError(
                f"engine {self.engine!r} runs on {needs} only, but the device is {self.device!r}",
                "engine",
            )
        if self.dtype not in DTYPE_CHOICES:
            raise InvalidInputError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}", "dtype")

    @property
    def combine_rule(self) -> str:
        """``combine`` with its default resolved: "mean" with several searches, else "best"."""
        if self.combine is not None:
            return self.combine
        return "mean" if self.searches > 1 else "best"

    def with_combine_recorded(self, d: dict[str, Any]) -> dict[str, Any]:
        """``d`` (a :meth:`to_dict`) with ``combine`` as results record it: the resolved rule,
        left out when it is "best" (one search, or several before "mean" existed), so records
        written before the setting existed still match."""
        d = {**d, "combine": self.combine_rule}
        if d["combine"] == "best":
            d.pop("combine")
        return d

    @property
    def validated_per_generation(self) -> int:
        """``val_per_generation`` with its mode-dependent default resolved."""
        if self.val_per_generation is not None:
            return self.val_per_generation
        return 2 if self.mode == "surrogate" else 1

    def val_per_generation_record(self) -> int | None:
        """``val_per_generation`` as results and checkpoints record it.

        A value given is recorded as given. The default is recorded as None (how results of
        earlier versions recorded their default) only where it is still that default, 1 in Euler
        mode; the surrogate-mode default, 3 before and 2 now, is recorded as 2, so results and
        checkpoints of the old protocol are not silently reused or continued with the new one.
        """
        if self.val_per_generation is not None:
            return self.val_per_generation
        legacy = 3 if self.mode == "surrogate" else 1
        resolved = self.validated_per_generation
        return None if resolved == legacy else resolved

    def timing(self, tr: float, scan_length: float, stage: str) -> SimulationTiming:
        """Simulation timing of ``stage`` ("train", "val" or "test") for a subject's TR/scan."""
        dt = {"train": self.dt_train, "val": self.dt_val, "test": self.dt_test}[stage]
        return SimulationTiming(
            tr=float(tr),
            scan_length=float(scan_length),
            dt=float(dt),
            burn_in=self.burn_in,
            fcd_window=self.fcd_window,
            warmup_steps=self.warmup_steps,
        )

    def with_generations(self, generations: int) -> FitSettings:
        """A copy with another number of train generations."""
        return replace(self, cmaes=replace(self.cmaes, generations=int(generations)))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (``run.json``)."""
        return asdict(self)

    def fingerprint(self) -> dict[str, Any]:
        """What a checkpoint must agree on to be continued.

        ``generations`` is left out so a search can be extended, and ``device``/``engine`` so an
        interrupted run can be continued elsewhere (the stored generations stay valid; only the
        numbers of the remaining ones depend on the device). ``val_per_generation`` is left out
        when it is the old default (:meth:`val_per_generation_record`), ``searches`` when it is 1,
        ``combine`` when it is "best" and ``stability_gate`` when it is off, so checkpoints
        written before they existed stay valid (with the gate off, as they were run).
        """
        d = self.to_dict()
        d["cmaes"] = {k: v for k, v in d["cmaes"].items() if k != "generations"}
        for key in ("device", "engine"):
            d.pop(key)
        d["val_per_generation"] = self.val_per_generation_record()
        if d["val_per_generation"] is None:  # the old default; checkpoints written before it existed
            d.pop("val_per_generation")
        if d["searches"] == 1:  # likewise
            d.pop("searches")
        d = self.with_combine_recorded(d)  # likewise
        if not d["stability_gate"]:
            d.pop("stability_gate")
        d.pop("maps")  # the design itself is part of a checkpoint's fingerprint
        d.pop("surrogate_weights_sha256")  # a top-level key of the checkpoint's fingerprint
        d.pop("interval")  # runs after the stored stages; checkpoints without it resume
        return d
