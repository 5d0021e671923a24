"""Fused CPU kernel for the batched pFIC integration (C++, compiled on first use).

The torch engine spends most of its time in per-step operator overhead and in drawing normal
numbers (``torch.randn`` on CPU is ~25 ns per draw). This kernel runs a whole block of steps per
group of simulations with everything fused: the SC coupling, the pFIC drift, Euler–Maruyama, the
Balloon–Windkessel update, the time averages and BOLD sampling, with the noise generated inline.

Layout and parallelism
    Simulations are processed in groups of L lanes (L = 16 or 32 in float32, 8 or 16 in
    float64, chosen per batch by :func:`lanes`); every per-region quantity is stored as
    [group][region][lane], so the lane loop is SIMD across simulations and the SC coupling is a
    broadcast multiply-add (SC row entry x L simulations).
    Groups are split between ``torch.get_num_threads()`` worker threads; a group never waits for
    another, so there is no per-step synchronisation. A batch with fewer groups than threads
    (one subject's validation or test simulations) can instead run each group as a thread team
    that splits its regions and meets at a barrier every step (:class:`_TeamChoice` times both
    ways and keeps the faster); the results are the same bit for bit.
Noise
    Philox4x32-10 (Salmon et al. 2011), counter = (step, quad of (population, region), simulation
    index, constant), key = seed, then Box–Muller; the 32 x 32 → 64-bit products use explicit
    AVX-512/AVX2 instructions where the build has them (checked against the reference loop and
    the published known-answer vectors). The draws do not depend on the thread count, lane width
    or block size, so results are reproducible for the same seed, dtype and batch shape.
Maths
    exp, expm1, log and sin/cos are short polynomials after range reduction (float32 exp and log:
    near-minimax, ``scripts/minimax_coefficients.py``; otherwise Taylor/atanh series; ≤ 3 ulp in
    float32, ≤ 4 ulp in float64, IEEE behaviour for inf/NaN), so the compiler vectorises them
    without fast-math. Denormals are flushed to zero in the worker threads.

The C++ source is ``kernels/pfic_cpu.cpp`` (package data). The shared library is built with the
system C++ compiler (``$CXX``, else ``c++``/``g++``) into
``$DELSSOME_NORMS_CACHE`` (default ``~/.cache/delssome_norms``), keyed by a hash of the source and
flags. If no compiler works, :func:`available` is False and the torch engine is used.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import importlib.resources
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor

from delssome_norms.io.digest import file_sha256
from delssome_norms.model.balloon import balloon_init
from delssome_norms.model.constants import (
    BALLOON_CONSTANTS,
    PFIC_CONSTANTS,
    BalloonConstants,
    PFICConstants,
    balloon_derived,
)
from delssome_norms.model.timing import SimulationTiming

_FLAG_SETS = (
    [
        "-O3",
        "-march=native",
        "-fopenmp-simd",
        "-fno-math-errno",
        "-fno-trapping-math",
        "-std=c++17",
        "-pthread",
        "-fPIC",
        "-shared",
    ],
    ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=c++17", "-pthread", "-fPIC", "-shared"],
)

_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_failed: str | None = None
_warned = False


class _Args(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_int64)
        for name in (
            "n_groups",
            "n_regions",
            "n_sims",
            "first_step",
            "n_steps",
            "warmup_steps",
            "steps_per_tr",
            "n_drop",
            "n_frames",
            "final_step",
            "shared_sc",
            "n_threads",
            "allow_team",
        )
    ] + [("seed", ctypes.c_uint64)]
    _fields_ += [
        (name, ctypes.c_void_p)
        for name in ("wee_j", "wei_j", "w_ie", "noise", "g_j", "sc", "se", "si", "z", "f", "v", "q")
    ]
    _fields_ += [(name, ctypes.c_void_p) for name in ("acc_se", "acc_si", "acc_re", "bold", "xi")]


class _Consts(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_double)
        for name in (
            "I0",
            "W_E",
            "W_I",
            "J_NMDA",
            "gamma_kin",
            "a_E",
            "b_E",
            "d_E",
            "tau_E",
            "a_I",
            "b_I",
            "d_I",
            "tau_I",
            "kappa",
            "gamma_h",
            "tau_h",
            "alpha",
            "rho",
            "k1",
            "k2",
            "k3",
            "bold_scale",
            "log_one_minus_rho",
            "dt",
        )
    ]


def _cache_dir() -> Path:
    root = os.environ.get("DELSSOME_NORMS_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "delssome_norms"


def _checksum_path(library: Path) -> Path:
    """Sidecar holding the SHA-256 of a cached library (written when it is built)."""
    return library.with_name(library.name + ".sha256")


def _cache_intact(library: Path) -> bool:
    """Whether a cached library matches the checksum recorded when it was built."""
    try:
        expected = _checksum_path(library).read_text().strip()
        return len(expected) == 64 and file_sha256(library) == expected
    except OSError:
        return False


def _compilers() -> list[str]:
    names = [os.environ["CXX"]] if os.environ.get("CXX") else []
    names += ["c++", "g++", "clang++"]
    return [n for n in dict.fromkeys(names) if shutil.which(n)]


def kernel_source() -> str:
    """C++ source of the fused kernel, ``kernels/pfic_cpu.cpp`` (package data)."""
    return (
        importlib.resources.files("delssome_norms.model")
        .joinpath("kernels", "pfic_cpu.cpp")
        .read_text(encoding="utf-8")
    )


def cpu_identity() -> str:
    """The CPU's model name and instruction-set flags (``/proc/cpuinfo``; else ``platform``).

    Part of the cache key: ``-march=native`` builds for the CPU it runs on, so a library built on
    one CPU must not be loaded on another that shares the cache folder and the host name (VMs and
    containers named alike, a home folder shared by the nodes of a cluster).
    """
    keep = ("model name", "flags", "features", "cpu model", "isa")
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    first = text.split("\n\n", 1)[0]  # the first processor's block
    lines = [ln.strip() for ln in first.splitlines() if ln.split(":", 1)[0].strip().lower() in keep]
    return "\n".join(lines) or platform.processor()


def cache_tag(source: str, cxx: str, flags: Sequence[str]) -> str:
    """Cache key of a built library: a hash of the C++ source, compiler, flags and machine
    (architecture, host name and :func:`cpu_identity`)."""
    machine = platform.machine() + platform.node() + cpu_identity()
    return hashlib.sha256((source + cxx + " ".join(flags) + machine).encode()).hexdigest()[:16]


def _build() -> ctypes.CDLL:
    errors = []
    source = kernel_source()
    for cxx in _compilers():
        for flags in _FLAG_SETS:
            tag = cache_tag(source, cxx, flags)
            target = _cache_dir() / f"pfic_kernel_{tag}.so"
            if target.exists() and not _cache_intact(target):
                # a damaged or replaced library is never loaded: rebuild it
                for stale in (target, _checksum_path(target)):
                    with contextlib.suppress(OSError):
                        stale.unlink()
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
                    src = Path(tmp) / "pfic_kernel.cpp"
                    src.write_text(source, encoding="utf-8")
                    out = Path(tmp) / target.name
                    proc = subprocess.run(
                        [cxx, *flags, "-o", str(out), str(src)],
                        capture_output=True,
                        text=True,
                        check=False,
                    )
                    if proc.returncode != 0:
                        errors.append(f"{cxx} {' '.join(flags)}: {proc.stderr.strip()[-300:]}")
                        continue
                    # checksum first, then the library: a reader never sees one without the other
                    sidecar = Path(tmp) / "checksum"
                    sidecar.write_text(file_sha256(out) + "\n")
                    os.replace(sidecar, _checksum_path(target))
                    os.replace(out, target)
            try:
                lib = ctypes.CDLL(str(target))
            except OSError as exc:
                errors.append(f"{target}: {exc}")
                continue
            if lib.pfic_abi_version() != 5:
                errors.append(f"{target}: unexpected ABI version")
                continue
            for fn in (lib.pfic_run_f32, lib.pfic_run_f64):
                fn.argtypes = [ctypes.POINTER(_Args), ctypes.POINTER(_Consts), ctypes.c_int64]
                fn.restype = ctypes.c_int
            lib.pfic_fcd_bf16_scratch_words.restype = ctypes.c_int64
            return lib
    raise RuntimeError("; ".join(errors) or "no C++ compiler found (set $CXX)")


def load() -> ctypes.CDLL:
    """The compiled kernel library (built on first use); raises RuntimeError if it cannot be built."""
    global _lib, _failed
    with _lock:
        if _lib is None and _failed is None:
            try:
                _lib = _build()
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                _failed = str(exc)
        if _lib is None:
            raise RuntimeError(f"the pFIC CPU kernel could not be built: {_failed}")
        return _lib


def has_bf16_fcd() -> bool:
    """Whether the kernel computes FCD products in bfloat16 (built with AVX512-BF16).

    False when the kernel is unavailable or was compiled without the instructions (then
    :func:`~delssome_norms.model.summary.fcd_histogram` rounds the inputs and multiplies in
    float32: the same numbers, slower).
    """
    if not available():
        return False
    return load().pfic_fcd_bf16_scratch_words(ctypes.c_int64(1), ctypes.c_int64(1)) > 0


def available() -> bool:
    """Whether the fused CPU kernel can be used (builds it on the first call).

    Set ``DELSSOME_NORMS_NO_KERNEL=1`` to always use the torch engine.
    """
    if os.environ.get("DELSSOME_NORMS_NO_KERNEL"):
        return False
    global _warned
    try:
        load()
    except RuntimeError as exc:
        if not _warned:
            _warned = True
            warnings.warn(f"{exc}; using the slower torch engine", RuntimeWarning, stacklevel=3)
        return False
    return True


LANE_CHOICES = {torch.float32: (16, 32), torch.float64: (8, 16)}
"""Group widths the kernel is compiled for, per dtype."""
_LANE_COST = {torch.float32: {16: 1.0, 32: 0.95}, torch.float64: {8: 1.0, 16: 0.77}}
"""Relative time per simulation-step of a group of L lanes (measured on a 2-core AVX-512 CPU)."""


def lanes(dtype: torch.dtype, n_sims: int | None = None, n_threads: int = 1, n_regions: int = 68) -> int:
    """Simulations per SIMD group for a batch of ``n_sims`` run on ``n_threads`` threads.

    Wider groups give the core more independent work per instruction (per simulation, 32 lanes
    run ~5 % faster than 16 in float32 and 16 ~23 % faster than 8 in float64), but a thread
    without a group idles, unless groups are run by thread teams (fewer groups than threads:
    the threads split a group's regions, ~15 % overhead). The width minimising the estimated
    wall time is chosen (ties: the wider one). Without ``n_sims``: 16 in float32, 8 in float64.
    The choice never changes the results: lane ``l`` of group ``g`` is simulation ``g L + l``
    and draws its own noise stream.
    """
    key = torch.float32 if dtype == torch.float32 else torch.float64
    choices, cost = LANE_CHOICES[key], _LANE_COST[key]
    if n_sims is None:
        return choices[0]
    threads = max(1, int(n_threads))

    def wall(L: int) -> float:
        groups = -(-max(1, n_sims) // L)
        team = _team_size(groups, threads, n_regions)
        if team >= 2:
            return L * cost[L] * 1.15 / team
        return -(-groups // threads) * L * cost[L]

    return min(reversed(choices), key=wall)


def _team_size(n_groups: int, n_threads: int, n_regions: int) -> int:
    """Threads per team when groups are run as teams (the rule of ``run`` in ``pfic_cpu.cpp``):
    only with fewer groups than threads, at least 8 regions per member; < 2 means no teams."""
    if n_groups >= n_threads:
        return 1
    return min(n_threads // max(n_groups, 1), n_regions // 8)


class _TeamChoice:
    """Whether the next block of steps runs groups as thread teams (see ``pfic_cpu.cpp``, ``run``).

    Teams apply when a batch has fewer groups than threads (e.g. the 15 test-stage simulations
    of one subject on 2 or more cores): the threads then split each group's regions and meet at
    a barrier every step. That is ~1.7x faster on an idle 2-core machine but slower when other
    processes hold the cores (a member waits for a descheduled partner at every step). Results
    are identical either way, so both are timed on the first blocks and the faster is used,
    re-timed every ``reprobe`` blocks in case the machine's load changes.
    """

    def __init__(self, n_groups: int, n_threads: int, n_regions: int, reprobe: int = 16) -> None:
        self.possible = _team_size(n_groups, n_threads, n_regions) >= 2
        self.reprobe = reprobe
        self.block = 0
        self.time = {True: None, False: None}
        self.current = self.possible

    def next_block(self) -> bool:
        if not self.possible:
            return False
        phase = self.block % self.reprobe
        if phase == 0:
            self.current = True
        elif phase == 1:
            self.current = False
        else:
            self.current = self.time[True] <= self.time[False]
        return self.current

    def record(self, seconds_per_step: float) -> None:
        if self.possible and self.block % self.reprobe < 2:
            self.time[self.current] = seconds_per_step
        self.block += 1


def _to_groups(t: Tensor, L: int) -> Tensor:
    """(M, ...) → (G, ..., L): pad M to a multiple of L with copies of the last row, lanes last."""
    M = t.shape[0]
    G = -(-M // L)
    if G * L > M:
        t = torch.cat((t, t[-1:].expand(G * L - M, *t.shape[1:])), dim=0)
    t = t.reshape(G, L, *t.shape[1:])
    return t.movedim(1, -1).contiguous()


def _from_groups(t: Tensor, M: int) -> Tensor:
    """(G, ..., L) → (M, ...)."""
    t = t.movedim(-1, 1)
    return t.reshape(t.shape[0] * t.shape[1], *t.shape[2:])[:M]


def run_kernel(
    p,
    timing: SimulationTiming,
    seed: int,
    const: PFICConstants = PFIC_CONSTANTS,
    balloon: BalloonConstants = BALLOON_CONSTANTS,
    progress=None,
    initial_state: str = "reference",
    noise_fn=None,
    chunk_steps: int | None = None,
    n_threads: int | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Run the fused kernel on a :class:`~delssome_norms.model.batch.PreparedBatch` (CPU).

    Returns the same triple as :func:`~delssome_norms.model.integrate.run_torch`:
    BOLD (T, M, N), time sums (3, M, N) float64 and a finite flag (M,). ``noise_fn(first, n)``
    may supply the normal draws (n, 2, M, N) instead of the inline Philox generator (tests).
    """
    from delssome_norms.model.batch import initial_neural_state

    lib = load()
    dtype = p.wee_j.dtype
    M, N = p.wee_j.shape
    threads = n_threads or torch.get_num_threads()
    L = lanes(dtype, M, threads, N)
    grp = lambda t: _to_groups(t.to(dtype), L)  # noqa: E731
    x0 = initial_neural_state(p, initial_state, const)
    bw = balloon_init(x0[0])
    state = [grp(x0[0]), grp(x0[1]), *(grp(s) for s in bw)]
    coeffs = [grp(p.wee_j), grp(p.wei_j), grp(p.w_ie), grp(p.noise), grp(p.g_j[:, 0])]
    shared = p.sc.ndim == 2
    if shared:
        sc = p.sc.to(dtype).contiguous()
    else:
        sc = grp(p.sc.repeat_interleave(p.n_dup, dim=0))  # (G, N, N, L)
    G = state[0].shape[0]
    accs = [torch.zeros((G, N, L), dtype=torch.float64) for _ in range(3)]
    bold = torch.full((G, timing.n_frames, N, L), torch.nan, dtype=dtype)

    d = balloon_derived(balloon)
    c, b = const, balloon
    consts = _Consts(
        c.I0, c.W_E, c.W_I, c.J_NMDA, c.gamma_kin, c.a_E, c.b_E, c.d_E, c.tau_E,
        c.a_I, c.b_I, c.d_I, c.tau_I, b.kappa, b.gamma_h, b.tau_h, b.alpha, b.rho,
        d.k1, d.k2, d.k3, d.scale, d.log_one_minus_rho, timing.dt,
    )  # fmt: skip
    ptr = lambda t: ctypes.c_void_p(t.data_ptr())  # noqa: E731
    args = _Args(
        n_groups=G,
        n_regions=N,
        n_sims=M,
        warmup_steps=timing.warmup_steps,
        steps_per_tr=timing.steps_per_tr,
        n_drop=timing.n_drop,
        n_frames=timing.n_frames,
        final_step=timing.total_steps - 1,
        shared_sc=int(shared),
        n_threads=threads,
        seed=int(seed) & 0xFFFFFFFFFFFFFFFF,
    )
    for name, t in zip(("wee_j", "wei_j", "w_ie", "noise", "g_j"), coeffs):
        setattr(args, name, ptr(t))
    args.sc = ptr(sc)
    for name, t in zip(("se", "si", "z", "f", "v", "q"), state):
        setattr(args, name, ptr(t))
    for name, t in zip(("acc_se", "acc_si", "acc_re"), accs):
        setattr(args, name, ptr(t))
    args.bold = ptr(bold)
    run = lib.pfic_run_f32 if dtype == torch.float32 else lib.pfic_run_f64

    total = timing.total_steps
    chunk = chunk_steps or max(2000, -(-total // 100))
    teams = _TeamChoice(G, threads, N)
    done = 0
    while done < total:
        k = min(chunk, total - done)
        xi = None
        if noise_fn is not None:
            xi = noise_fn(done, k).to(dtype).contiguous()
            args.xi = ptr(xi)
        args.first_step, args.n_steps = done, k
        args.allow_team = int(teams.next_block())
        t0 = time.perf_counter()
        if run(ctypes.byref(args), ctypes.byref(consts), L) != 0:
            raise RuntimeError(f"the pFIC CPU kernel has no {L}-lane build for {dtype}")
        teams.record((time.perf_counter() - t0) / k)
        done += k
        if progress is not None:
            progress(done, total)

    bold_m = _from_groups(bold, M).permute(1, 0, 2)  # (T, M, N)
    sums = torch.stack([_from_groups(a, M) for a in accs])
    finite = torch.ones(M, dtype=torch.bool)
    for s in state:
        finite &= torch.isfinite(_from_groups(s, M)).all(dim=1)
    return bold_m.contiguous(), sums, finite
