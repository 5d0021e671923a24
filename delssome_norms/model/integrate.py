"""Batched Euler–Maruyama integration of pFIC and Balloon–Windkessel BOLD (docs/science.md §2).

B parameter sets x D noise duplicates are folded into one batch of ``M = B * D`` simulations
(simulation ``m = b * D + d``), each with N regions. The neural state is one tensor ``x`` of shape
(2, M, N) (``x[0] = S_E``, ``x[1] = S_I``), so both populations share every elementwise operation;
the structural coupling is one (batched) matmul per step.

Three engines run the same equations:

* ``"torch"`` — plain PyTorch ops on any device (CPU or CUDA), the obviously-correct reference.
  Noise is drawn in blocks of many steps from a seeded :class:`torch.Generator` on the target
  device. On CUDA each block of steps is captured once as a CUDA graph and replayed, so the loop
  is not bound by per-step kernel launches (``cuda_graph=True``, the default there).
* ``"kernel"`` — a fused C++/OpenMP kernel for CPU (:mod:`delssome_norms.model._kernel`) that runs
  the whole block of steps per group of simulations with inline counter-based (Philox) noise. It is
  tested against the torch engine with identical noise.
* ``"triton"`` — a fused GPU kernel (:mod:`delssome_norms.model._triton`): one program per
  simulation keeps its whole state in registers for thousands of steps per launch, with the same
  Philox noise stream as the CPU kernel (so the two agree up to rounding for the same seed).

Timing and indexing follow :class:`~delssome_norms.model.timing.SimulationTiming` (reference code):
warm-up steps integrate the neural model only; in the recorded loop the Balloon–Windkessel state is
advanced with the S_E at the start of each step, the time averages accumulate the state after each
step (r_E is the rate computed during the step), and BOLD is sampled after the steps listed by
``timing.sample_steps`` and once after the loop.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError
from delssome_norms.model.balloon import balloon_init, bold_signal
from delssome_norms.model.batch import (
    ArrayLike,
    Monitors,
    PFICParams,
    PreparedBatch,
    ProgressCallback,
    as_real_tensor,
    initial_neural_state,
    pfic_dfun,
    prepare_batch,
    quarantine,
    sc_coupling,
    torch_block,
)
from delssome_norms.model.constants import (
    BALLOON_CONSTANTS,
    PFIC_CONSTANTS,
    BalloonConstants,
    PFICConstants,
)
from delssome_norms.model.devices import check_device
from delssome_norms.model.timing import SimulationTiming

__all__ = [
    "ENGINES",
    "ArrayLike",
    "PFICParams",
    "PreparedBatch",
    "ProgressCallback",
    "SimulationResult",
    "initial_neural_state",
    "pfic_dfun",
    "prepare_batch",
    "run_torch",
    "sc_coupling",
    "scale_sc",
    "simulate",
]


@dataclass
class SimulationResult:
    """Output of :func:`simulate` (all tensors on the simulation's device).

    Attributes
    ----------
    bold : Tensor of shape (B, D, T, N)
        Simulated BOLD [% signal change] after the burn-in, T = ``timing.n_frames``.
    s_e, s_i : Tensor of shape (B, D, N)
        Time-averaged excitatory / inhibitory gating over the recorded steps (burn-in included).
    r_e : Tensor of shape (B, D, N)
        Time-averaged excitatory firing rate [Hz].
    valid : Tensor of shape (B, D), bool
        Duplicate stayed finite (no NaN/inf in its state, averages or BOLD) and FIC converged.
    w_ie : Tensor of shape (B, N)
        FIC-derived inhibitory-to-excitatory weight (float64).
    ei_ratio : Tensor of shape (B, N)
        E/I ratio: mean over valid duplicates of ``s_e / s_i``; NaN where no duplicate is valid.
    """

    bold: Tensor
    s_e: Tensor
    s_i: Tensor
    r_e: Tensor
    valid: Tensor
    w_ie: Tensor
    ei_ratio: Tensor

    @property
    def valid_set(self) -> Tensor:
        """Tensor of shape (B,), bool: every duplicate of the parameter set is valid."""
        return self.valid.all(dim=1)

    @property
    def n_sets(self) -> int:
        """Number of parameter sets B."""
        return self.bold.shape[0]

    @property
    def n_dup(self) -> int:
        """Number of noise duplicates D."""
        return self.bold.shape[1]

    def ei_ratio_sd(self) -> Tensor:
        """Standard deviation of ``s_e / s_i`` over valid duplicates, shape (B, N) (NaN if < 2)."""
        ratio = torch.where(self.valid[..., None], self.s_e / self.s_i, torch.nan)
        return _nanstd(ratio, dim=1)

    def mean_over_valid(self, values: Tensor) -> Tensor:
        """Mean of a (B, D, ...) tensor over the valid duplicates, shape (B, ...)."""
        mask = self.valid.reshape(self.valid.shape + (1,) * (values.ndim - 2))
        return _masked_mean(values, mask, dim=1)


def _masked_mean(values: Tensor, mask: Tensor, dim: int) -> Tensor:
    filled = torch.where(mask, values, 0.0)
    count = mask.to(values.dtype).sum(dim=dim)
    return filled.sum(dim=dim) / count  # NaN where count == 0


def _nanstd(values: Tensor, dim: int) -> Tensor:
    mask = ~torch.isnan(values)
    mean = _masked_mean(values, mask, dim).unsqueeze(dim)
    dev = torch.where(mask, (values - mean) ** 2, 0.0)
    count = mask.to(values.dtype).sum(dim=dim)
    return (dev.sum(dim=dim) / (count - 1)).sqrt()


DTYPES = {"float32": torch.float32, "float64": torch.float64}
"""The simulation dtypes by name (``dtype`` may be given either way)."""


def scale_sc(sc: ArrayLike, max_value: float = 0.02) -> ArrayLike:
    """Scale structural connectivity so that its largest entry is ``max_value`` (docs/science.md §1).

    Parameters
    ----------
    sc : Tensor or ndarray of shape (N, N) or (B, N, N)
        Non-negative SC; batched matrices are scaled each by its own maximum.
    max_value : float, default 0.02
        Target maximum.

    Returns
    -------
    Tensor or ndarray
        Same type and shape as ``sc`` (an ndarray, float64, for any other array-like).

    Raises
    ------
    InvalidInputError
        ``sc`` is not numeric, holds NaN/inf or negative entries, a matrix has no positive entry
        (all zero: nothing to scale), or ``max_value`` is not a positive number.

    Examples
    --------
    >>> import numpy as np
    >>> float(scale_sc(np.array([[0.0, 4.0], [4.0, 0.0]])).max())
    0.02
    """
    if not (
        isinstance(max_value, (int, float, np.number)) and math.isfinite(max_value) and max_value > 0
    ):
        raise InvalidInputError(f"max_value must be a positive number, got {max_value!r}")
    t = as_real_tensor(sc, "sc")
    if t.ndim not in (2, 3) or t.shape[-1] != t.shape[-2]:
        raise InvalidInputError(f"sc must have shape (N, N) or (B, N, N), got {tuple(t.shape)}")
    if bool((t < 0).any()):
        raise InvalidInputError("sc must be non-negative (connection strengths)", "sc")
    if t.numel() and not bool((t.amax(dim=(-2, -1)) > 0).all()):
        raise InvalidInputError("sc has no positive entry (all zero?): it cannot be scaled")
    if isinstance(sc, Tensor):  # the tensor's own arithmetic (an integer tensor gives float32)
        peak = sc.amax(dim=(-2, -1), keepdim=True)
        return sc / peak * max_value
    arr = t.numpy()
    return arr / arr.max(axis=(-2, -1), keepdims=True) * max_value


# --------------------------------------------------------------------------------------------- #
# The torch engine
# --------------------------------------------------------------------------------------------- #
def _draw_noise(
    n_steps: int, M: int, N: int, gen: torch.Generator, dtype: torch.dtype, device: torch.device
) -> Tensor:
    return torch.randn((n_steps, 2, M, N), generator=gen, dtype=dtype, device=device)


def _default_block(M: int, N: int, budget_bytes: int = 64 * 2**20, itemsize: int = 4) -> int:
    # max(1, ...): an empty batch (M = 0) has no noise to budget, not a division by zero
    return int(max(1, min(2000, budget_bytes // max(1, 2 * M * N * itemsize))))


def run_torch(
    p: PreparedBatch,
    timing: SimulationTiming,
    seed: int,
    dtype: torch.dtype,
    device: torch.device,
    const: PFICConstants = PFIC_CONSTANTS,
    balloon: BalloonConstants = BALLOON_CONSTANTS,
    block_steps: int | None = None,
    noise_fn: Callable[[int, int], Tensor] | None = None,
    progress: ProgressCallback | None = None,
    initial_state: str = "reference",
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the torch engine; returns (bold (T, M, N), sums (3, M, N) float64, finite (M,) bool).

    ``noise_fn(first_step, n_steps)`` may supply the standard-normal draws of shape
    (n_steps, 2, M, N) (used by tests to run two engines on identical noise).
    """
    M, N = p.wee_j.shape
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    x = initial_neural_state(p, initial_state, const)
    bw = balloon_init(x[0])
    mon = Monitors(M, N, timing, x)
    finite = torch.ones(M, dtype=torch.bool, device=device)
    total = timing.total_steps
    K = block_steps or _default_block(M, N, itemsize=x.element_size())
    done = 0
    while done < total:
        k = min(K, total - done)
        xi = noise_fn(done, k) if noise_fn is not None else _draw_noise(k, M, N, gen, dtype, device)
        x, bw = torch_block(x, bw, xi, done, p, timing, mon, const, balloon)
        mon.flush()
        finite, x, bw = quarantine(x, bw, finite, p, const)
        done += k
        if progress is not None:
            progress(done, total)
    mon.bold[-1] = bold_signal(bw, balloon)  # the sample after the loop
    return mon.bold, mon.sums, finite


# --------------------------------------------------------------------------------------------- #
# Public entry point
# --------------------------------------------------------------------------------------------- #
def simulate(
    params: PFICParams,
    sc: ArrayLike,
    timing: SimulationTiming,
    n_dup: int = 3,
    seed: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    engine: str = "auto",
    const: PFICConstants = PFIC_CONSTANTS,
    balloon: BalloonConstants = BALLOON_CONSTANTS,
    progress: ProgressCallback | None = None,
    block_steps: int | None = None,
    initial_state: str = "reference",
    cuda_graph: bool = True,
) -> SimulationResult:
    """Simulate B pFIC parameter sets x ``n_dup`` noise duplicates in one batch.

    FIC solves ``w_IE`` for every region of every set (vectorised Newton, float64), then the
    model is integrated with Euler–Maruyama (docs/science.md §2; Zhang et al. 2024, Zeng et al. 2026):
    ``timing.warmup_steps`` unrecorded steps, then ``timing.n_steps`` recorded steps with
    Balloon–Windkessel BOLD sampled every TR and the burn-in frames dropped.

    Parameters
    ----------
    params : PFICParams
        ``wEE, wEI, sigma`` of shape (B, N) and ``G`` of shape (B,) (tensors or arrays; a single
        set may be given as (N,) and scalar G).
    sc : Tensor or ndarray of shape (N, N) or (B, N, N)
        Structural connectivity, already scaled (:func:`scale_sc`).
    timing : SimulationTiming
        TR, scan length, dt, burn-in, warm-up (seconds / steps).
    n_dup : int, default 3
        Independent noise realisations per parameter set.
    seed : int, default 0
        Seed of the noise, an integer in [0, 2**63). Results are reproducible for the same seed,
        engine, device, dtype and batch shape (and, in float32, the same input dtype: float32
        tensors and float64 arrays of the same values round the coefficients differently, ~1e-6
        relative); every simulation of the batch gets its own independent draws.
    device : torch.device or str, optional
        ``None`` means CPU; ``"cuda"`` on a machine without CUDA raises InvalidInputError.
    dtype : torch.dtype or str, default float32
        ``torch.float32`` (search) or ``torch.float64`` (or their names, or numpy float dtypes).
    engine : {"auto", "torch", "kernel", "triton"}
        ``"auto"`` uses the fused C++ kernel on CPU when it can be built (else the torch engine)
        and the fused Triton kernel on CUDA when Triton is installed (else the torch engine with
        CUDA graphs). ``"kernel"`` (CPU) and ``"triton"`` (CUDA, or CPU tensors under
        ``TRITON_INTERPRET=1``) draw the same Philox noise, so the same seed gives the same
        simulation on both up to rounding. The ``"torch"`` engine draws its noise from a
        :class:`torch.Generator` instead: for the same seed it gives other noise realisations
        than the kernels (same statistics; identical equations, tested on identical noise).
    const, balloon : constants records
        Model constants (defaults from docs/science.md §2).
    progress : callable, optional
        ``progress(steps_done, steps_total)`` after each block of steps.
    block_steps : int, optional
        Steps per block of the torch engine (noise drawn per block); chosen from a 64 MiB noise
        budget by default (on CUDA with graphs: rounded to a multiple of the steps per TR, default
        from a 512 MiB budget).
    initial_state : {"reference", "fixed_point"}
        Start at ``S_E = S_E*, S_I = 0.1433408985`` as the reference code (default) or at the
        exact FIC fixed point ``(S_E*, S_I*)`` of every region.
    cuda_graph : bool, default True
        On CUDA, run the torch engine in static blocks replayed as CUDA graphs
        (:mod:`delssome_norms.model.graphed`); False uses the plain loop.

    Returns
    -------
    SimulationResult
        BOLD (B, D, T, N), time averages (B, D, N), validity (B, D), E/I (B, N).

    Raises
    ------
    InvalidInputError
        Wrong shapes, NaN/inf or negative sigma/SC, a bad option, a CUDA device this machine
        lacks, or a batch whose outputs alone would not fit in the device's memory
        (:func:`~delssome_norms.model.batch.simulation_bytes`; split the parameter sets over
        several calls).

    Notes
    -----
    A duplicate whose state becomes NaN/inf is marked invalid and reset, so it cannot poison
    other simulations of the batch (the simulations share no reduction).
    """
    dtype = _simulation_dtype(dtype)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise InvalidInputError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    if block_steps is not None and (
        isinstance(block_steps, bool)
        or not isinstance(block_steps, (int, np.integer))
        or block_steps < 1
    ):
        raise InvalidInputError(f"block_steps must be an integer >= 1 or None, got {block_steps!r}")
    if not isinstance(timing, SimulationTiming):
        raise InvalidInputError(f"timing must be a SimulationTiming, got {type(timing).__name__}")
    if progress is not None and not callable(progress):
        raise InvalidInputError(
            f"progress must be a callable progress(done, total) or None, got {type(progress).__name__}"
        )
    if not (isinstance(cuda_graph, (bool, np.bool_)) or cuda_graph in (0, 1)):
        raise InvalidInputError(f"cuda_graph must be True or False, got {cuda_graph!r}")
    dev = check_device(device)
    p = prepare_batch(params, sc, timing.dt, n_dup, dev, dtype, const, n_frames=timing.n_frames)
    chosen = _choose_engine(engine, dev, p.wee_j.shape[1], p.wee_j.dtype)
    if chosen == "kernel":
        from delssome_norms.model import _kernel

        bold, sums, finite = _kernel.run_kernel(
            p, timing, seed, const, balloon, progress=progress, initial_state=initial_state
        )
    elif chosen == "triton":
        from delssome_norms.model import _triton

        bold, sums, finite = _triton.run_triton(
            p, timing, seed, const, balloon, progress=progress, initial_state=initial_state
        )
    elif dev.type == "cuda" and cuda_graph:
        from delssome_norms.model.graphed import run_torch_graphed

        bold, sums, finite = run_torch_graphed(
            p,
            timing,
            seed,
            const,
            balloon,
            progress=progress,
            initial_state=initial_state,
            block_steps=block_steps,
        )
    else:
        bold, sums, finite = run_torch(
            p,
            timing,
            seed,
            dtype,
            dev,
            const,
            balloon,
            block_steps=block_steps,
            progress=progress,
            initial_state=initial_state,
        )
    return _assemble(p, timing, bold, sums, finite)


def is_numpy_dtype(value: object) -> bool:
    """Whether ``value`` is a numpy dtype or scalar type (``np.dtype("float32")``, ``np.float64``).

    ``np.dtype`` also converts None (to float64) and Python ``float``: those are not numpy's
    spellings of a simulation dtype and are left for the caller to refuse.
    """
    return isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic))


def _simulation_dtype(dtype: torch.dtype | str | np.dtype) -> torch.dtype:
    """``dtype`` (a torch dtype, its name, or a numpy float dtype) as torch.float32/float64."""
    if isinstance(dtype, str):
        dtype = DTYPES.get(dtype.removeprefix("torch."), dtype)
    elif is_numpy_dtype(dtype):  # not np.dtype(None): that is float64
        dtype = DTYPES.get(np.dtype(dtype).name, dtype)
    if dtype not in (torch.float32, torch.float64):
        raise InvalidInputError(
            f"dtype must be torch.float32 or torch.float64 (or 'float32' / 'float64'), got {dtype!r}"
        )
    return dtype


ENGINES = ("auto", "torch", "kernel", "triton")
"""Integration engines accepted by :func:`simulate`."""


def _choose_engine(
    engine: str, device: torch.device, n_regions: int = 68, dtype: torch.dtype = torch.float32
) -> str:
    if engine not in ENGINES:
        raise InvalidInputError(f"engine must be one of {', '.join(map(repr, ENGINES))}, got {engine!r}")
    if engine == "kernel" and device.type != "cpu":
        raise InvalidInputError("the 'kernel' engine runs on CPU only")
    from delssome_norms.model import _triton

    if engine == "triton" and n_regions > _triton.MAX_REGIONS:
        raise InvalidInputError(
            f"the 'triton' engine holds at most {_triton.MAX_REGIONS} regions per simulation in "
            f"registers, got {n_regions}; use engine='torch'"
        )
    if engine == "triton" and not _triton.available(device, dtype, n_regions):
        raise InvalidInputError(
            "the 'triton' engine needs a CUDA device and the 'triton' package "
            f"(or TRITON_INTERPRET=1 for CPU tensors), and its {dtype} kernel for {n_regions} "
            "regions must compile there (see the warning above, if any); use engine='torch'"
        )
    if engine == "auto":
        if device.type != "cpu":
            usable = n_regions <= _triton.MAX_REGIONS and _triton.available(device, dtype, n_regions)
            return "triton" if usable else "torch"
        from delssome_norms.model import _kernel

        return "kernel" if _kernel.available() else "torch"
    return engine


def _assemble(
    p: PreparedBatch, timing: SimulationTiming, bold: Tensor, sums: Tensor, finite: Tensor
) -> SimulationResult:
    B, D = p.n_sets, p.n_dup
    N = p.wee_j.shape[1]
    dtype = bold.dtype
    means = (sums / timing.n_steps).to(dtype)
    bold_m = bold.permute(1, 0, 2)  # (M, T, N)
    ok = finite & torch.isfinite(means).all(dim=(0, 2)) & torch.isfinite(bold_m).all(dim=(1, 2))
    ok &= p.euler_ok.to(ok.device).repeat_interleave(D)  # FIC converged, Euler step stable
    # gating variables are fractions: a time average outside (0, 1) is a numerical blow-up
    # (e.g. an Euler step too coarse for the inhibitory population), not a state of the model
    ok &= ((means[:2] > 0) & (means[:2] < 1)).all(dim=2).all(dim=0)
    s_e, s_i, r_e = (m.reshape(B, D, N) for m in means)
    valid = ok.reshape(B, D)
    ratio = torch.where(valid[..., None], s_e / s_i, torch.nan)
    ei = _masked_mean(ratio, valid[..., None], dim=1)
    return SimulationResult(
        bold=bold_m.reshape(B, D, timing.n_frames, N).contiguous(),
        s_e=s_e,
        s_i=s_i,
        r_e=r_e,
        valid=valid,
        w_ie=p.fic.w_ie.to(bold.device),
        ei_ratio=ei,
    )
