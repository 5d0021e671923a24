"""Torch engine in static blocks, replayed as CUDA graphs on GPUs.

The default CUDA engine is the fused Triton kernel (:mod:`delssome_norms.model._triton`, ~7x the
throughput of this one at 3000 simulations on an H100 and far more for small batches); this engine
is used on CUDA when Triton is not installed or ``engine="torch"`` is asked for.

On a GPU the per-step work of one simulation is tiny, so an eager loop is bound by kernel
launches (~40 per step). Here the integration runs in blocks of ``K`` steps (``K`` a multiple of the
steps per TR) that read and write only preallocated ("static") tensors: the state, the noise of the
block, the block's time sums and its BOLD samples. On CUDA the block is captured once as a
:class:`torch.cuda.CUDAGraph` and replayed for every block, which removes the Python and launch
overhead and lets thousands of simulations (many subjects at once) share each kernel. On other
devices the same static blocks run eagerly, which is how the tests check this path against the
plain loop of :func:`~delssome_norms.model.integrate.run_torch`.

Warm-up steps that do not fill a whole block and the recorded steps after the last whole block
run through the plain loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from delssome_norms.model.balloon import BalloonState, balloon_init, balloon_step, bold_signal
from delssome_norms.model.batch import (
    Monitors,
    PreparedBatch,
    ProgressCallback,
    initial_neural_state,
    pfic_dfun,
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
from delssome_norms.model.devices import device_guard
from delssome_norms.model.timing import SimulationTiming

NOISE_BUDGET = 512 * 2**20
"""Bytes of pre-drawn noise per block (the block length is chosen from it)."""

MAX_BLOCK_STEPS = 640
"""Upper bound on the steps per captured block.

A captured block holds ~60 kernels per step, so a long block makes a graph of hundreds of thousands
of nodes whose capture and instantiation cost more than the launches they save (the block
length used in measurements: docs/science.md, "Measured checks").
"""


class _Static:
    """Preallocated tensors that a captured block reads and writes in place."""

    def __init__(self, x: Tensor, bw: BalloonState, K: int, samples: int) -> None:
        _, M, N = x.shape
        self.x = x.clone()
        self.bw = BalloonState(*(s.clone() for s in bw))
        self.xi = torch.empty((K, 2, M, N), dtype=x.dtype, device=x.device)
        self.block_sums = torch.zeros((3, M, N), dtype=x.dtype, device=x.device)
        self.sums = torch.zeros((3, M, N), dtype=torch.float64, device=x.device)
        self.samples = torch.zeros((max(samples, 1), M, N), dtype=x.dtype, device=x.device)

    def set_state(self, x: Tensor, bw: BalloonState) -> None:
        self.x.copy_(x)
        for s, v in zip(self.bw, bw):
            s.copy_(v)


def _block(
    st: _Static,
    p: PreparedBatch,
    dt: float,
    record: bool,
    steps_per_tr: int,
    const: PFICConstants,
    balloon: BalloonConstants,
) -> None:
    """``K`` steps on the static tensors (no host synchronisation, no data-dependent control)."""
    x, bw = st.x, st.bw
    if record:
        st.block_sums.zero_()
    k = 0
    for j in range(st.xi.shape[0]):
        dx, r_e = pfic_dfun(x, sc_coupling(x[0], p), p, const)
        if record:
            new_bw = balloon_step(bw, x[0], dt, balloon)
        x.copy_(x + dt * dx + p.noise * st.xi[j])
        if record:
            for s, v in zip(bw, new_bw):
                s.copy_(v)
            st.block_sums[:2] += x
            st.block_sums[2] += r_e
            if (j + 2) % steps_per_tr == 0:
                st.samples[k].copy_(bold_signal(bw, balloon))
                k += 1
    if record:
        st.sums += st.block_sums


class _Runner:
    """Runs a block eagerly, or captures it once as a CUDA graph and replays it."""

    def __init__(self, fn: Callable[[], None], capture: bool, device: torch.device) -> None:
        self.fn = fn
        self.capture = capture
        self.device = device
        self.graph = None

    def __call__(self) -> None:
        if not self.capture:
            self.fn()
            return
        # everything on the simulation's device: torch.cuda.graph's default capture stream is
        # one per process, made on whichever device was current first (cuda:0), and a capture
        # on it would miss every kernel of tensors on another device (they would run once, and
        # the replays would do nothing)
        with device_guard(self.device):
            if self.graph is None:
                # The first block runs for real on a side stream (CUDA's required warm-up), then
                # the same block is captured (capture records kernels without running them).
                side = torch.cuda.Stream(self.device)
                side.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(side):
                    self.fn()
                torch.cuda.current_stream(self.device).wait_stream(side)
                self.graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(self.graph, stream=side):
                    self.fn()
            else:
                self.graph.replay()


def run_torch_graphed(
    p: PreparedBatch,
    timing: SimulationTiming,
    seed: int,
    const: PFICConstants = PFIC_CONSTANTS,
    balloon: BalloonConstants = BALLOON_CONSTANTS,
    progress: ProgressCallback | None = None,
    initial_state: str = "reference",
    noise_fn: Callable[[int, int], Tensor] | None = None,
    capture: bool | None = None,
    block_steps: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Torch engine in static blocks (CUDA graphs on CUDA); same outputs as ``run_torch``.

    Parameters
    ----------
    p : PreparedBatch
    timing : SimulationTiming
    seed : int
        Seed of the device generator that fills each block's noise.
    const, balloon : constants records
    progress : callable, optional
    initial_state : {"reference", "fixed_point"}
    noise_fn : callable, optional
        ``noise_fn(first_step, n_steps)`` returns normal draws (n_steps, 2, M, N) (tests).
    capture : bool, optional
        Capture CUDA graphs; default True on CUDA devices (False elsewhere).
    block_steps : int, optional
        Approximate steps per block (rounded to a multiple of the steps per TR); default from
        :data:`NOISE_BUDGET`.

    Returns
    -------
    (bold (T, M, N), sums (3, M, N) float64, finite (M,) bool)
    """
    x0 = initial_neural_state(p, initial_state, const)
    device = x0.device
    _, M, N = x0.shape
    capture = (device.type == "cuda") if capture is None else capture
    spt = timing.steps_per_tr
    if block_steps is None:
        per_tr = max(1, spt * 2 * M * N * x0.element_size())  # M = 0: an empty batch
        K = spt * max(1, min(NOISE_BUDGET // per_tr, MAX_BLOCK_STEPS // spt))
    else:
        K = spt * max(1, round(block_steps / spt))
    K = min(K, spt * max(1, timing.n_steps // spt))
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    mon = Monitors(M, N, timing, x0)
    st = _Static(x0, balloon_init(x0[0]), K, K // spt)
    finite = torch.ones(M, dtype=torch.bool, device=device)
    total, warm = timing.total_steps, timing.warmup_steps
    done = 0

    def fill(first: int, n: int) -> None:
        if noise_fn is not None:
            st.xi[:n].copy_(noise_fn(first, n))
        else:
            torch.randn(st.xi[:n].shape, generator=gen, out=st.xi[:n])

    def plain(n: int) -> None:  # steps outside whole blocks, through the plain loop
        nonlocal done
        fill(done, n)
        x, bw = torch_block(st.x, st.bw, st.xi[:n], done, p, timing, mon, const, balloon)
        st.set_state(x, bw)
        done += n

    def after_block() -> None:
        nonlocal finite
        finite, x, bw = quarantine(st.x, st.bw, finite, p, const)
        st.set_state(x, bw)
        if progress is not None:
            progress(done, total)

    warm_block = _Runner(lambda: _block(st, p, timing.dt, False, spt, const, balloon), capture, device)
    rec_block = _Runner(lambda: _block(st, p, timing.dt, True, spt, const, balloon), capture, device)
    while warm - done >= K:
        fill(done, K)
        warm_block()
        done += K
        after_block()
    if done < warm:
        plain(warm - done)
        mon.flush()
    n_blocks = timing.n_steps // K
    per_block = K // spt
    for blk in range(n_blocks):
        fill(done, K)
        rec_block()
        first_sample = blk * per_block
        lo = max(first_sample, timing.n_drop)
        hi = min(first_sample + per_block, timing.n_drop + timing.n_frames)
        if hi > lo:
            mon.bold[lo - timing.n_drop : hi - timing.n_drop] = st.samples[
                lo - first_sample : hi - first_sample
            ]
        done += K
        after_block()
    mon.sums += st.sums
    if done < total:
        plain(total - done)
        mon.flush()
        after_block()
    mon.bold[-1] = bold_signal(st.bw, balloon)  # the sample after the loop
    return mon.bold, mon.sums, finite
