"""Simulation timing: warm-up, burn-in, scan, TR sampling and FCD window (docs/science.md §2–§3).

:class:`SimulationTiming` holds the user-facing durations (seconds) and derives every index the
integrator and the summary statistics need, reproducing the reference code's indexing exactly:

* the recorded loop has ``L = len(arange(0, burn_in + scan_length + dt, dt))`` steps;
* a BOLD sample is taken after step ``t`` (0-based) when ``(t + 2) % round(tr / dt) == 0`` and once
  more after the loop;
* the first ``int(burn_in / tr) + 1`` samples are dropped.

This gives 83 frames for the demo configuration (TR 0.72 s, 60 s scan, 6 s burn-in, dt 0.006 s)
and 1200 frames for HCP (TR 0.72 s, 864 s scan, 72 s burn-in, dt 0.005 s).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.checks import MAX_SCAN_LENGTH, MAX_TR

MAX_DT = 0.02
"""Integration steps [s] from which the Euler step of S_I (tau_I = 0.01 s) is unstable (2 tau_I)."""
MIN_FCD_WINDOW = 3
"""Shortest FCD window [frames]: a correlation over 2 frames is always +-1, so every window FC
would be a sign pattern and the FCD would say nothing about the dynamics."""
TR_TOLERANCE = 0.01
"""Largest relative difference between ``round(tr / dt) * dt`` and the TR."""


FIT_OPTION_FIELDS = ("dt", "burn_in", "fcd_window", "warmup_steps")
"""Timing fields a fit sets with an option; TR and scan length come from the subject's inputs."""


def timing_option(field: str | None, stage: str | None = None) -> str | None:
    """The command-line option of the timing field ``field`` (``err.field`` of
    :func:`timing_error`): ``--fcd-window`` for ``fcd_window``, ``--dt-<stage>`` for the ``dt``
    of a fit's stage (``--dt`` without one); None without a field."""
    if not field:
        return None
    if field == "dt" and stage:
        return f"--dt-{stage}"
    return "--" + field.replace("_", "-")


def timing_error(problem: str, field: str) -> InvalidInputError:
    """An :class:`InvalidInputError` about the timing field ``field`` (``err.field``), so that a
    command can name its own option for it (``fcd_window`` is ``--fcd-window``)."""
    err = InvalidInputError(problem)
    err.field = field
    return err


def _seconds(value: object, what: str, source: str | None) -> float:
    """``float(value)`` [s], refused (naming ``source``) for non-numbers and truth values
    (``float(True)`` is 1.0 s)."""
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} must be a number of seconds, got {value!r}", source) from None


def check_tr(tr: float, source: str | None = "--tr") -> float:
    """The TR as a float [s], refused (naming ``source``) unless a positive number <= ``MAX_TR``.

    Run before anything is derived from the TR (the FCD window ``round(60 / tr)`` frames is 0
    for a TR given in milliseconds).
    """
    value = _seconds(tr, "TR", source)
    if not (math.isfinite(value) and value > 0):
        raise InvalidInputError(f"TR must be a positive number of seconds, got {tr!r}", source)
    if value > MAX_TR:
        raise InvalidInputError(
            f"TR = {value:g} s is implausible (at most {MAX_TR:g} s); TR and scan length "
            "are in seconds (given in milliseconds?)",
            source,
        )
    return value


def check_scan_length(scan_length: float, source: str | None = "--scan-length") -> float:
    """The scan length as a float [s], refused (naming ``source``) above ``MAX_SCAN_LENGTH``
    (a scan length in milliseconds would otherwise start a simulation of days)."""
    value = _seconds(scan_length, "scan length", source)
    if value > MAX_SCAN_LENGTH:
        raise InvalidInputError(
            f"scan length {value:g} s is implausible (at most {MAX_SCAN_LENGTH:g} s = "
            f"{MAX_SCAN_LENGTH / 3600:g} h); TR and scan length are in seconds (given in "
            "milliseconds?)",
            source,
        )
    return value


def default_burn_in(tr: float) -> float:
    """Default burn-in ``ceil(72 / tr) * tr`` seconds (a whole number of TRs, at least 72 s)."""
    return math.ceil(72.0 / tr) * tr


def default_fcd_window(tr: float) -> int:
    """Default FCD window ``round(60 / tr)`` frames (about 60 s), at least ``MIN_FCD_WINDOW``."""
    return max(MIN_FCD_WINDOW, round(60.0 / tr))


def fcd_window_frames(tr: float, fcd_window: int | None = None) -> int:
    """The FCD window [frames] a setting means at TR ``tr`` [s]: ``fcd_window``, or the default
    (:func:`default_fcd_window`) when it is None."""
    return default_fcd_window(float(tr)) if fcd_window is None else int(fcd_window)


def _is_number(value) -> bool:
    """A real number (not a bool, a string or None)."""
    number = isinstance(value, (int, float, np.integer, np.floating))
    return number and not isinstance(value, (bool, np.bool_))


def _is_whole(value) -> bool:
    """A finite whole number (``10`` or ``10.0``)."""
    return _is_number(value) and math.isfinite(value) and int(value) == value


@dataclass(frozen=True)
class SimulationTiming:
    """Durations of one simulation and the sampling indices derived from them.

    Parameters
    ----------
    tr : float
        Repetition time of the BOLD samples [s].
    scan_length : float
        Length of the recorded scan after the burn-in [s] (frames x TR).
    dt : float, default 0.005
        Integration step [s]; docs/science.md uses 0.005 s for search/validation and 0.0005 s for the
        final test simulation.
    burn_in : float, optional
        Simulated time recorded before the scan whose BOLD frames are dropped [s]; default
        ``ceil(72 / tr) * tr``.
    fcd_window : int, optional
        Sliding-window length for FCD [frames]; default ``round(60 / tr)``.
    warmup_steps : int, default 5000
        Integration steps run before recording (neural model only; not time-averaged, BOLD
        not integrated).

    Examples
    --------
    >>> t = SimulationTiming(tr=0.72, scan_length=60.0, dt=0.006, burn_in=6.0, fcd_window=10)
    >>> t.n_steps, t.steps_per_tr, t.n_samples, t.n_frames
    (11001, 120, 92, 83)
    >>> SimulationTiming(tr=0.72, scan_length=864.0, dt=0.005).n_frames
    1200
    """

    tr: float
    scan_length: float
    dt: float = 0.005
    burn_in: float | None = None
    fcd_window: int | None = None
    warmup_steps: int = 5000

    def __post_init__(self) -> None:
        for name in ("tr", "scan_length", "dt"):
            value = getattr(self, name)
            if not _is_number(value) or not (math.isfinite(value) and value > 0):
                raise timing_error(f"{name} must be a positive number of seconds, got {value!r}", name)
            object.__setattr__(self, name, float(value))
        for name, check in (("tr", check_tr), ("scan_length", check_scan_length)):
            try:
                check(getattr(self, name), None)
            except InvalidInputError as err:
                raise timing_error(err.problem, name) from None
        if self.dt >= MAX_DT:
            raise timing_error(
                f"dt = {self.dt:g} s is too coarse: the Euler step of S_I (tau_I = 0.01 s) is "
                f"unstable from {MAX_DT:g} s; the paper uses 0.005 s (search) and 0.0005 s (test)",
                "dt",
            )
        if self.burn_in is None:
            object.__setattr__(self, "burn_in", default_burn_in(float(self.tr)))
        elif not (_is_number(self.burn_in) and math.isfinite(self.burn_in) and self.burn_in >= 0):
            raise timing_error(f"burn_in must be >= 0 seconds, got {self.burn_in!r}", "burn_in")
        elif self.burn_in > MAX_SCAN_LENGTH:  # 1e300 s would size the simulation's arrays
            raise timing_error(
                f"burn_in of {self.burn_in:g} s is implausible (at most {MAX_SCAN_LENGTH:g} s); "
                "it is in seconds",
                "burn_in",
            )
        if self.fcd_window is None:
            object.__setattr__(self, "fcd_window", fcd_window_frames(self.tr))
        window = self.fcd_window
        if not _is_whole(window) or window < MIN_FCD_WINDOW:
            raise timing_error(
                f"fcd_window must be an integer >= {MIN_FCD_WINDOW} frames, got {window!r}",
                "fcd_window",
            )
        object.__setattr__(self, "fcd_window", int(self.fcd_window))
        warm = self.warmup_steps
        if not _is_whole(warm) or warm < 0:
            raise timing_error(f"warmup_steps must be an integer >= 0, got {warm!r}", "warmup_steps")
        object.__setattr__(self, "warmup_steps", int(self.warmup_steps))
        if self.steps_per_tr < 1:
            raise timing_error(f"dt = {self.dt} s is longer than TR = {self.tr} s", "dt")
        sampled = self.steps_per_tr * self.dt
        if abs(sampled - self.tr) > TR_TOLERANCE * self.tr:
            raise timing_error(
                f"BOLD is sampled every round(TR / dt) = {self.steps_per_tr} steps of {self.dt:g} s "
                f"= {sampled:g} s, not the TR of {self.tr:g} s; choose a dt that divides the TR",
                "dt",
            )
        if self.n_frames < 2:
            raise timing_error(
                f"scan of {self.scan_length} s at TR {self.tr} s leaves {self.n_frames} frame(s) "
                "after the burn-in; need at least 2",
                "scan_length",
            )
        if self.n_windows < 2:
            raise timing_error(
                f"FCD window of {self.fcd_window} frames leaves {max(self.n_windows, 0)} sliding "
                f"window(s) in the {self.n_frames}-frame scan; the FCD needs at least 2 "
                "(use a shorter window or a longer scan)",
                "fcd_window",
            )

    @cached_property
    def n_steps(self) -> int:
        """Recorded integration steps ``L`` (burn-in + scan), counted as the reference code does."""
        return len(np.arange(0.0, self.burn_in + self.scan_length + self.dt, self.dt))

    @cached_property
    def steps_per_tr(self) -> int:
        """Integration steps between BOLD samples, ``round(tr / dt)``."""
        return round(self.tr / self.dt)

    @cached_property
    def sample_steps(self) -> np.ndarray:
        """0-based recorded steps after which a BOLD sample is taken (int64, shape (n_samples - 1,)).

        The final sample, taken after the loop, is after step ``n_steps - 1`` as well and is not
        listed here.
        """
        # the steps t with (t + 2) % steps_per_tr == 0, without an array of every step
        return np.arange((-2) % self.steps_per_tr, self.n_steps, self.steps_per_tr, dtype=np.int64)

    @cached_property
    def n_samples(self) -> int:
        """BOLD samples taken, burn-in included (the samples at ``sample_steps`` plus the final one)."""
        return len(self.sample_steps) + 1

    @cached_property
    def n_drop(self) -> int:
        """Leading samples dropped as burn-in, ``int(burn_in / tr) + 1``."""
        return int(self.burn_in / self.tr) + 1

    @cached_property
    def n_frames(self) -> int:
        """BOLD frames kept after the burn-in (T)."""
        return self.n_samples - self.n_drop

    @cached_property
    def n_windows(self) -> int:
        """Sliding windows of the FCD, ``n_frames - fcd_window + 1``."""
        return self.n_frames - self.fcd_window + 1

    @property
    def total_steps(self) -> int:
        """Warm-up plus recorded steps."""
        return self.warmup_steps + self.n_steps

    def to_record(self) -> dict[str, float | int]:
        """The timing as a JSON record: ``tr``, ``scan_length``, ``dt``, ``burn_in`` [s],
        ``fcd_window`` [frames], ``warmup_steps`` and ``n_frames``."""
        return {
            "tr": self.tr,
            "scan_length": self.scan_length,
            "dt": self.dt,
            "burn_in": self.burn_in,
            "fcd_window": self.fcd_window,
            "warmup_steps": self.warmup_steps,
            "n_frames": self.n_frames,
        }
