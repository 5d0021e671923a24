"""Fused GPU kernel (Triton): one program integrates one whole simulation, every step in registers.

Why hand-written: on a GPU the per-step work of one simulation (a 68 x 68 matrix-vector product
and ~100 flops per region) is far too small for one kernel launch per operation — the torch
engine needs ~60 launches per step even when replayed as a CUDA graph — and no library fuses an
Euler–Maruyama loop with a coupling matvec. Here program ``m`` (one per simulation of the folded
batch, ``M = B * D``) keeps the state of its N regions (one lane per region, padded to a power of
two), its row block of SC and its coefficients in registers for a whole chunk of steps, so the
launch count is one per chunk and thousands of simulations (many subjects) share each launch.

The noise is the counter-based Philox4x32-10 stream of the CPU kernel
(``delssome_norms/model/kernels/pfic_cpu.cpp``): for step ``s``, simulation ``m`` and flattened element
``e = population * N + region``, counter ``(s, e // 4, m, 0x5eed)`` with the seed as key gives four
uniforms, and Box–Muller turns them into four normals of which element ``e`` takes number
``e % 4``. The GPU kernel and the CPU kernel therefore integrate the same noise path for the same
seed, and agree up to floating-point rounding (tested).

Triton ships with PyTorch's CUDA builds on Linux; without it (or without CUDA) the torch engine
is used. ``TRITON_INTERPRET=1`` runs the kernel on CPU tensors through Triton's interpreter, which is
how the CPU-only test suite checks it.
"""

from __future__ import annotations

import math
import os
import warnings

import torch
from torch import Tensor

from delssome_norms.model.balloon import BalloonState, balloon_init, bold_signal
from delssome_norms.model.constants import (
    BALLOON_CONSTANTS,
    PFIC_CONSTANTS,
    BalloonConstants,
    PFICConstants,
    balloon_derived,
)
from delssome_norms.model.devices import device_guard
from delssome_norms.model.timing import SimulationTiming

try:  # optional: only the GPU engine needs it
    import triton
    import triton.language as tl
    from triton.language.random import philox_impl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None


MAX_REGIONS = 256
"""Largest N the kernel takes: a program holds its N x N block of SC in registers (padded to a
power of two; 256 regions = 128 values per thread at 16 warps). Larger atlases use the torch engine."""


WARPS = {16: 2, 32: 2, 64: 4, 128: 4, 256: 16}
"""Warps per program by padded region count (chosen by measurement on an H100: docs/science.md,
"Measured checks"; a program of 128 threads leaves room for more programs per SM)."""


def interpreted() -> bool:
    """Whether Triton runs in interpreter mode (``TRITON_INTERPRET=1``; CPU tensors)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


_PROBED: dict[tuple[str, torch.dtype, int], bool] = {}


def block_size(n_regions: int) -> int:
    """Padded region count of the kernel variant that runs ``n_regions`` regions (its BLOCK)."""
    return max(16, 1 << (max(1, int(n_regions)) - 1).bit_length())


def available(device: torch.device, dtype: torch.dtype = torch.float32, n_regions: int = 4) -> bool:
    """Whether the fused Triton kernel can run on ``device`` (CUDA with Triton installed) in
    ``dtype`` for ``n_regions`` regions.

    On the first call for a CUDA device, dtype and padded region count (each is a kernel variant
    of its own) a tiny simulation of that variant is compiled and run, so a variant that does not
    compile fails here, before any work, not in the middle of a fit; if it fails (an unsupported
    GPU, a broken Triton installation) a warning names the error and the CUDA-graph torch engine
    is used instead. Set ``DELSSOME_NORMS_NO_TRITON=1`` to always use that engine.
    """
    if triton is None or os.environ.get("DELSSOME_NORMS_NO_TRITON"):
        return False
    if device.type == "cpu":
        return interpreted()
    if device.type != "cuda":
        return False
    # "cuda" is the current CUDA device (not always cuda:0: torch.cuda.set_device)
    index = device.index
    if index is None:
        index = torch.cuda.current_device() if torch.cuda.is_available() else 0
    name = str(torch.device("cuda", index))
    dtype = torch.float64 if dtype == torch.float64 else torch.float32
    n = min(max(1, int(n_regions)), MAX_REGIONS)
    key = (name, dtype, block_size(n))  # the variant: device, dtype, BLOCK
    if key not in _PROBED:
        _PROBED[key] = _probe(torch.device(name), dtype, n)
    return _PROBED[key]


def _probe(device: torch.device, dtype: torch.dtype = torch.float32, n: int = 4) -> bool:
    """Compile and run the kernel once on an ``n``-region network (a few steps) on ``device``."""
    from delssome_norms.model.batch import PFICParams, prepare_batch

    try:
        params = PFICParams(
            torch.full((1, n), 3.0), torch.full((1, n), 3.0), torch.full((1, n), 0.005), torch.ones(1)
        )
        p = prepare_batch(params, 0.01 * (1 - torch.eye(n)), 0.005, 1, device, dtype)
        timing = SimulationTiming(
            tr=0.02, scan_length=0.12, dt=0.005, burn_in=0.02, fcd_window=3, warmup_steps=2
        )
        bold, _, finite = run_triton(p, timing, seed=0)
        return bool(finite.all()) and bool(torch.isfinite(bold).all())
    except Exception as exc:  # any failure means: do not use this engine here
        warnings.warn(
            f"the fused Triton kernel does not run on {device} in {dtype} for {n} regions "
            f"({type(exc).__name__}: {exc}); "
            "using the CUDA-graph torch engine",
            RuntimeWarning,
            stacklevel=3,
        )
        return False


def _constants(
    dtype: torch.dtype, dt: float, const: PFICConstants, balloon: BalloonConstants, device
) -> Tensor:
    """The constants vector, in the order _pfic_chunk loads it (k_ptr + 0 ... k_ptr + 28).

    It is kept in the compute dtype, so float64 runs get float64 constants (Triton would round
    Python float literals in a kernel to float32).
    """
    c, b, d = const, balloon, balloon_derived(balloon)
    u_scale = 2.0**-24 if dtype == torch.float32 else 2.0**-32  # uniform resolution of Box–Muller
    values = {
        "dt": dt, "c_e0": c.W_E * c.I0, "c_i0": c.W_I * c.I0, "a_E": c.a_E, "b_E": c.b_E,
        "d_E": c.d_E, "a_I": c.a_I, "b_I": c.b_I, "d_I": c.d_I, "inv_tau_E": 1.0 / c.tau_E,
        "inv_tau_I": 1.0 / c.tau_I, "gamma_kin": c.gamma_kin, "kappa": b.kappa,
        "gamma_h": b.gamma_h, "inv_tau_h": 1.0 / b.tau_h, "inv_alpha": 1.0 / b.alpha,
        "inv_rho": 1.0 / b.rho, "log_one_minus_rho": math.log(1.0 - b.rho), "k1": d.k1,
        "k2": d.k2, "k3": d.k3, "bold_scale": d.scale, "two_pi": 2.0 * math.pi,
        "u_scale": u_scale, "c12": 1.0 / 12.0, "c720": 1.0 / 720.0, "c30240": 1.0 / 30240.0,
        "c1209600": 1.0 / 1209600.0, "c47900160": 1.0 / 47900160.0,
    }  # fmt: skip
    return torch.tensor(list(values.values()), dtype=dtype, device=device)


if triton is not None:

    @triton.jit
    def _rate(x, a, b, d, c12, c720, c30240, c1209600, c47900160):
        """H(x) = y / (1 − exp(−d y)), y = a x − b; Bernoulli series where |d y| < 0.35."""
        y = a * x - b
        u = d * y
        small = (u < 0.35) & (u > -0.35)
        us = tl.where(small, u, 0.0)
        u2 = us * us
        ser = c47900160
        ser = ser * u2 - c1209600
        ser = ser * u2 + c30240
        ser = ser * u2 - c720
        ser = ser * u2 + c12
        ser = (ser * us + 0.5) * us + 1.0
        ys = tl.where(small, 1.0, y)
        h = ys / (1.0 - tl.exp(-d * ys))
        return tl.where(small, ser / d, h)

    @triton.jit
    def _normal(c0, kq, c2, comp, k0, k1, two_pi, u_scale, FP64: tl.constexpr):
        """Standard normal number ``comp`` (0..3) of Philox block ``(c0, kq, c2, 0x5eed)``."""
        c3 = tl.full(kq.shape, 0x5EED, tl.uint32)
        o0, o1, o2, o3 = philox_impl(c0, kq, c2, c3, k0, k1, 10)
        first = comp < 2
        a = tl.where(first, o0, o2)
        b = tl.where(first, o1, o3)
        if FP64:
            u1 = (a.to(tl.float64) + 1.0) * u_scale
            turn = b.to(tl.float64) * u_scale - 0.5
        else:
            u1 = ((a >> 8).to(tl.float32) + 1.0) * u_scale
            turn = (b >> 8).to(tl.float32) * u_scale - 0.5
        r = tl.sqrt(-2.0 * tl.log(u1))
        ang = two_pi * turn
        return tl.where((comp % 2) == 0, r * tl.cos(ang), r * tl.sin(ang))

    # integer arguments are not specialised (Triton would otherwise compile a variant per value
    # class of each, e.g. per chunk length divisible by 16)
    @triton.jit(
        do_not_specialize=[
            "M", "N", "n_dup", "sc_batched", "first_step", "n_steps", "warmup_steps",
            "steps_per_tr", "n_drop", "n_frames", "seed_lo", "seed_hi",
        ]
    )  # fmt: skip
    def _pfic_chunk(
        state_ptr,  # (6, M, N): S_E, S_I, z, f, v, q (updated in place)
        sums_ptr,  # (3, M, N) float64: running sums of S_E, S_I, r_E (updated in place)
        bold_ptr,  # (n_frames, M, N)
        wee_ptr, wei_ptr, wie_ptr, noise_ptr,  # (M, N)
        gj_ptr,  # (M,)
        sct_ptr,  # SC transposed: (N, N), or (B, N, N) with sc_batched
        k_ptr,  # constants vector
        M, N, n_dup, sc_batched,
        first_step, n_steps, warmup_steps, steps_per_tr, n_drop, n_frames,
        seed_lo, seed_hi,
        REC: tl.constexpr, FP64: tl.constexpr, BLOCK: tl.constexpr,
    ):  # fmt: skip
        m = tl.program_id(0).to(tl.int64)
        j = tl.arange(0, BLOCK)
        lane = j < N
        MN = M.to(tl.int64) * N
        row = m * N + j
        dt = tl.load(k_ptr + 0)
        c_e0 = tl.load(k_ptr + 1)
        c_i0 = tl.load(k_ptr + 2)
        a_E = tl.load(k_ptr + 3)
        b_E = tl.load(k_ptr + 4)
        d_E = tl.load(k_ptr + 5)
        a_I = tl.load(k_ptr + 6)
        b_I = tl.load(k_ptr + 7)
        d_I = tl.load(k_ptr + 8)
        inv_tau_E = tl.load(k_ptr + 9)
        inv_tau_I = tl.load(k_ptr + 10)
        gam = tl.load(k_ptr + 11)
        kappa = tl.load(k_ptr + 12)
        gh = tl.load(k_ptr + 13)
        inv_tau_h = tl.load(k_ptr + 14)
        inv_alpha = tl.load(k_ptr + 15)
        inv_rho = tl.load(k_ptr + 16)
        lomr = tl.load(k_ptr + 17)
        k1 = tl.load(k_ptr + 18)
        k2 = tl.load(k_ptr + 19)
        k3 = tl.load(k_ptr + 20)
        bscale = tl.load(k_ptr + 21)
        two_pi = tl.load(k_ptr + 22)
        u_scale = tl.load(k_ptr + 23)
        c12 = tl.load(k_ptr + 24)
        c720 = tl.load(k_ptr + 25)
        c30240 = tl.load(k_ptr + 26)
        c1209600 = tl.load(k_ptr + 27)
        c47900160 = tl.load(k_ptr + 28)

        wee = tl.load(wee_ptr + row, mask=lane, other=0.0)
        wei = tl.load(wei_ptr + row, mask=lane, other=0.0)
        wie = tl.load(wie_ptr + row, mask=lane, other=0.0)
        ns = tl.load(noise_ptr + row, mask=lane, other=0.0)
        gj = tl.load(gj_ptr + m)
        sc_base = (m // n_dup) * N * N * sc_batched
        # SC comes transposed (sct[k, i] = SC[i, k], contiguous along i), so that the lanes of a
        # warp run along the output region i and the coupling is a reduction over axis 0: its
        # result, and with it all per-region work, is then spread over the lanes (reducing across
        # the lanes instead would leave every thread holding, and computing, many regions)
        kk = j[:, None]
        ii = j[None, :]
        sc_t = tl.load(sct_ptr + sc_base + kk * N + ii, mask=(ii < N) & (kk < N), other=0.0)

        se = tl.load(state_ptr + row, mask=lane, other=0.0)
        si = tl.load(state_ptr + MN + row, mask=lane, other=0.0)
        z = tl.load(state_ptr + 2 * MN + row, mask=lane, other=0.0)
        f = tl.load(state_ptr + 3 * MN + row, mask=lane, other=1.0)
        v = tl.load(state_ptr + 4 * MN + row, mask=lane, other=1.0)
        q = tl.load(state_ptr + 5 * MN + row, mask=lane, other=1.0)
        acc_se = tl.zeros([BLOCK], dtype=tl.float64)
        acc_si = tl.zeros([BLOCK], dtype=tl.float64)
        acc_re = tl.zeros([BLOCK], dtype=tl.float64)

        # Philox counters: word 1 is the quad of the flattened element, word 2 the simulation
        kq_e = (j // 4).to(tl.uint32)
        kq_i = ((N + j) // 4).to(tl.uint32)
        comp_e = j % 4
        comp_i = (N + j) % 4
        c2 = tl.full([BLOCK], 0, tl.uint32) + m.to(tl.uint32)
        k0 = tl.full([BLOCK], 0, tl.uint32) + seed_lo.to(tl.uint32)
        k1_ = tl.full([BLOCK], 0, tl.uint32) + seed_hi.to(tl.uint32)

        step = first_step
        end = first_step + n_steps
        while step < end:  # (a while loop: Triton's interpreter cannot take range() of an argument)
            c0 = tl.full([BLOCK], 0, tl.uint32) + step.to(tl.uint32)
            xe = _normal(c0, kq_e, c2, comp_e, k0, k1_, two_pi, u_scale, FP64)
            xi = _normal(c0, kq_i, c2, comp_i, k0, k1_, two_pi, u_scale, FP64)
            coup = tl.sum(sc_t * se[:, None], axis=0)
            i_e = c_e0 + wee * se + gj * coup - wie * si
            i_i = c_i0 + wei * se - si
            r_e = _rate(i_e, a_E, b_E, d_E, c12, c720, c30240, c1209600, c47900160)
            r_i = _rate(i_i, a_I, b_I, d_I, c12, c720, c30240, c1209600, c47900160)
            de = -se * inv_tau_E + (1.0 - se) * gam * r_e
            di = -si * inv_tau_I + r_i
            en = tl.where(lane, se + dt * de + ns * xe, 0.0)
            hn = tl.where(lane, si + dt * di + ns * xi, 0.0)
            if REC:
                # Balloon–Windkessel, driven by S_E at the start of the step
                vpow = tl.exp(tl.log(v) * inv_alpha)
                extraction = 1.0 - tl.exp(lomr / f)
                dz = se - kappa * z - gh * (f - 1.0)
                dv = (f - vpow) * inv_tau_h
                dq = (f * extraction * inv_rho - q * vpow / v) * inv_tau_h
                z_new = z + dt * dz
                f = f + dt * z
                v = v + dt * dv
                q = q + dt * dq
                z = z_new
                acc_se += en.to(tl.float64)
                acc_si += hn.to(tl.float64)
                acc_re += r_e.to(tl.float64)
                t = step - warmup_steps
                frame = (t + 2) // steps_per_tr - 1 - n_drop
                take = ((t + 2) % steps_per_tr == 0) & (frame >= 0) & (frame < n_frames)
                bold = bscale * (k1 * (1.0 - q) + k2 * (1.0 - q / v) + k3 * (1.0 - v))
                tl.store(bold_ptr + frame.to(tl.int64) * MN + row, bold, mask=lane & take)
            se = en
            si = hn
            step += 1

        tl.store(state_ptr + row, se, mask=lane)
        tl.store(state_ptr + MN + row, si, mask=lane)
        if REC:
            tl.store(state_ptr + 2 * MN + row, z, mask=lane)
            tl.store(state_ptr + 3 * MN + row, f, mask=lane)
            tl.store(state_ptr + 4 * MN + row, v, mask=lane)
            tl.store(state_ptr + 5 * MN + row, q, mask=lane)
            old = tl.load(sums_ptr + row, mask=lane, other=0.0)
            tl.store(sums_ptr + row, old + acc_se, mask=lane)
            old = tl.load(sums_ptr + MN + row, mask=lane, other=0.0)
            tl.store(sums_ptr + MN + row, old + acc_si, mask=lane)
            old = tl.load(sums_ptr + 2 * MN + row, mask=lane, other=0.0)
            tl.store(sums_ptr + 2 * MN + row, old + acc_re, mask=lane)


def run_triton(
    p,
    timing: SimulationTiming,
    seed: int,
    const: PFICConstants = PFIC_CONSTANTS,
    balloon: BalloonConstants = BALLOON_CONSTANTS,
    progress=None,
    initial_state: str = "reference",
    chunk_steps: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the fused Triton kernel on a :class:`~delssome_norms.model.batch.PreparedBatch`.

    Returns the same triple as :func:`~delssome_norms.model.integrate.run_torch`: BOLD
    (T, M, N), time sums (3, M, N) float64 and a finite flag (M,). The run is split into launches
    of ``chunk_steps`` steps (default: about 1 % of the run, at least 2000) for progress reports.
    """
    from delssome_norms.model.batch import initial_neural_state

    if triton is None:
        raise RuntimeError("the Triton engine needs the 'triton' package (bundled with CUDA PyTorch)")
    dtype = p.wee_j.dtype
    device = p.wee_j.device
    M, N = p.wee_j.shape
    x0 = initial_neural_state(p, initial_state, const)
    state = torch.stack((x0[0], x0[1], *balloon_init(x0[0]))).contiguous()  # (6, M, N)
    sums = torch.zeros((3, M, N), dtype=torch.float64, device=device)
    bold = torch.full((timing.n_frames, M, N), torch.nan, dtype=dtype, device=device)
    k = _constants(dtype, timing.dt, const, balloon, device)
    gj = p.g_j.reshape(M).contiguous()
    sct = p.sc.transpose(-1, -2).contiguous()
    batched = int(sct.ndim == 3)
    seed = int(seed) & 0xFFFFFFFFFFFFFFFF
    block = block_size(N)
    if N > MAX_REGIONS:
        raise ValueError(f"the Triton kernel takes at most {MAX_REGIONS} regions, got {N}")
    warps = WARPS[block]

    total, warm = timing.total_steps, timing.warmup_steps
    chunk = chunk_steps or max(2000, -(-total // 100))
    done = 0
    while done < total:
        rec = done >= warm
        n = min(chunk, total - done, total if rec else warm - done)
        # Triton launches on the current CUDA device: make it the tensors' device (cuda:1 ...)
        with device_guard(device):
            _pfic_chunk[(M,)](
                state, sums, bold, p.wee_j, p.wei_j, p.w_ie, p.noise, gj, sct, k,
                M, N, p.n_dup, batched,
                done, n, warm, timing.steps_per_tr, timing.n_drop, timing.n_frames,
                seed & 0xFFFFFFFF, seed >> 32,
                REC=rec, FP64=dtype == torch.float64, BLOCK=block, num_warps=warps,
            )  # fmt: skip
        done += n
        if progress is not None:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            progress(done, total)

    bold[-1] = bold_signal(BalloonState(*state[2:]), balloon)  # the sample after the loop
    finite = torch.isfinite(state).all(dim=(0, 2))
    return bold, sums, finite
