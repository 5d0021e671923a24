"""Batch types and per-step helpers shared by the simulation engines (docs/science.md §2).

:mod:`.integrate` (the public :func:`~delssome_norms.model.integrate.simulate` and the torch
engine) and the backends :mod:`.graphed`, :mod:`._kernel` and :mod:`._triton` all import from
here; no backend imports :mod:`.integrate`, so the engines form no import circle.

B parameter sets x D noise duplicates are folded into one batch of ``M = B * D`` simulations
(simulation ``m = b * D + d``), each with N regions; the neural state is one tensor ``x`` of shape
(2, M, N) (``x[0] = S_E``, ``x[1] = S_I``).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError
from delssome_norms.model.balloon import BalloonState, balloon_init, balloon_step, bold_signal
from delssome_norms.model.constants import PFIC_CONSTANTS, BalloonConstants, PFICConstants
from delssome_norms.model.devices import check_device
from delssome_norms.model.fic import FICSolution, rate, rate_derivative, solve_fic
from delssome_norms.model.tensors import numeric_tensor
from delssome_norms.model.timing import SimulationTiming

ArrayLike = Tensor | np.ndarray
ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(steps_done, steps_total)`` after each block of integration steps."""


class PFICParams(NamedTuple):
    """Regional pFIC parameters of B parameter sets (``w_IE`` is derived by FIC).

    Attributes
    ----------
    wEE : Tensor or ndarray of shape (B, N)
        Recurrent excitatory weight per region.
    wEI : Tensor or ndarray of shape (B, N)
        Excitatory-to-inhibitory weight per region.
    sigma : Tensor or ndarray of shape (B, N)
        Noise amplitude per region [nA]; the Euler–Maruyama increment is ``sigma sqrt(dt) xi``.
    G : Tensor or ndarray of shape (B,)
        Global coupling scale of the structural connectivity.
    """

    wEE: ArrayLike
    wEI: ArrayLike
    sigma: ArrayLike
    G: ArrayLike


class PreparedBatch(NamedTuple):
    """Per-simulation coefficients of the folded batch (M = B * D), on the target device/dtype.

    ``wee_j = wEE J_NMDA``, ``wei_j = wEI J_NMDA``, ``w_ie``, ``noise = sigma sqrt(dt)`` are (M, N);
    ``g_j = G J_NMDA`` is (M, 1); ``sc`` is (N, N) or (B, N, N) (row i = inputs of region i).
    """

    n_sets: int
    n_dup: int
    wee_j: Tensor
    wei_j: Tensor
    w_ie: Tensor
    g_j: Tensor
    noise: Tensor
    sc: Tensor
    fic: FICSolution
    euler_ok: Tensor
    """(B,) bool: FIC converged and the Euler step ``dt`` is stable at the set's fixed point
    (:func:`euler_stable`)."""


def euler_stable(fic: FICSolution, dt: float, const: PFICConstants = PFIC_CONSTANTS) -> Tensor:
    """Whether an Euler step of ``dt`` seconds is stable at each parameter set's FIC fixed point.

    The fastest local time scale is the inhibitory population's: linearised, S_I relaxes at
    ``lam = 1 / tau_I + H_I'(I_I*)`` [1/s] (I_I falls by one unit per unit of S_I), and the Euler
    step amplifies rather than damps deviations once ``dt * lam >= 2``. ``H_I'`` grows with wEI
    (about 115 /s at wEI 0.5, 288 /s at wEI 5 with the template SC), so the limit falls from
    ~0.009 s to ~0.0052 s: the paper's 0.005-s search step is inside it for every wEI <= 5, a
    0.006-s step is not for wEI above ~3.4 (there r_E left 3 Hz and E/I was 7 % off, yet every
    value stayed finite). Returns a (B,) bool tensor; sets whose FIC did not converge are False.
    """
    return dt < euler_dt_limit(fic, const)  # NaN (FIC not converged) compares False


def euler_dt_limit(fic: FICSolution, const: PFICConstants = PFIC_CONSTANTS) -> Tensor:
    """Largest stable Euler step at each parameter set's FIC fixed point [s], shape (B,).

    ``2 / max_i lam_i`` with ``lam = 1 / tau_I + H_I'(I_I*)`` (see :func:`euler_stable`: a step
    is stable when it is strictly below this); NaN where FIC did not converge.
    """
    slope = rate_derivative(fic.i_i, const.a_I, const.b_I, const.d_I)
    lam = 1.0 / const.tau_I + slope
    limit = 2.0 / lam.amax(dim=-1)
    return torch.where(fic.converged.to(limit.device), limit, torch.full_like(limit, math.nan))


def dt_advice(limit: float) -> str:
    """What to do when an Euler step is unstable: a step below ``limit`` [s]."""
    if not math.isfinite(limit) or limit <= 0:
        return "no Euler step is stable there (check wEE, wEI, G)"
    unit = 10.0 ** (math.floor(math.log10(limit)) - 2)  # 3 significant digits, rounded down
    shown = math.floor(limit / unit * (1 + 1e-12)) * unit
    return f"these parameters need dt < {shown:.3g} s (the paper's test stage uses 0.0005 s)"


def simulation_bytes(
    n_sims: int, n_regions: int, n_frames: int, itemsize: int, per_set_sc: bool = False
) -> int:
    """Lower bound of the memory one :func:`~delssome_norms.model.simulate` call holds [bytes].

    ``M = n_sims`` simulations (parameter sets x duplicates) of N regions and T frames: the BOLD
    twice (the engine's output and the (B, D, T, N) result are both alive when the result is
    assembled), a validity mask of it, and ~64 (M, N) float64 state, coefficient and average
    tensors; with one SC per parameter set the kernel also holds one (N, N) copy per simulation.
    Noise blocks and FCD scratch have fixed budgets of their own and are not counted.
    """
    m, n, t = int(n_sims), int(n_regions), int(n_frames)
    per = 2 * t * n * itemsize + t * n + 64 * n * 8
    if per_set_sc:
        per += n * n * itemsize
    return m * per


def device_total_memory(device: torch.device) -> int | None:
    """Total memory of ``device`` [bytes] (physical RAM for the CPU), or None if unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.get_device_properties(device).total_memory)
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError, RuntimeError):  # pragma: no cover - non-POSIX
        return None


def check_simulation_memory(
    n_sets: int, n_dup: int, n_regions: int, n_frames: int, dtype: torch.dtype,
    device: torch.device, per_set_sc: bool = False,
) -> None:  # fmt: skip
    """Refuse, before anything is allocated, a batch whose outputs exceed the device's memory.

    Raises
    ------
    InvalidInputError
        :func:`simulation_bytes` is above the total memory of ``device``.
    """
    itemsize = torch.empty((), dtype=dtype).element_size()
    need = simulation_bytes(n_sets * n_dup, n_regions, n_frames, itemsize, per_set_sc)
    total = device_total_memory(device)
    if total is not None and need > total:
        per_set = simulation_bytes(n_dup, n_regions, n_frames, itemsize, per_set_sc)
        fit = total // (2 * max(per_set, 1))  # leave half of the memory for everything else
        advice = (
            f"simulate at most about {fit} parameter set(s) per call"
            if fit >= 1
            else "even one parameter set does not fit: use fewer duplicates or a shorter scan"
        )
        raise InvalidInputError(
            f"a batch of {n_sets} parameter set(s) x {n_dup} duplicate(s) of {n_regions} regions "
            f"and {n_frames} frames needs at least {need / 2**30:.3g} GiB, more than the "
            f"{total / 2**30:.3g} GiB of the {device.type} device; {advice}"
        )


UNSCALED_SC_MAX = 1.0
"""Largest SC entry accepted without a warning (scaled SC peaks at 0.02: :func:`scale_sc`)."""


SC_SYMMETRY_TOL = 1e-6
"""Largest |SC - SC.T|, relative to the SC's largest entry, taken as a symmetric SC."""
_SC_CHECKED: dict[tuple[int, float, float, float], bool] = {}
"""The SCs checked in this process, by a fingerprint that does not depend on their scaling (N,
and the sum, row-sum and column-sum moments relative to the largest entry), each with whether
it was warned about (not symmetric)."""


def _sc_fingerprints(t: Tensor) -> list[tuple[int, float, float, float]]:
    """The fingerprint of each SC of ``t`` (B, N, N), in the input's dtype: reductions of
    (B, N) and (B,) values, no copy of the batch."""
    n = t.shape[-1]
    weights = torch.linspace(1.0, 2.0, n, dtype=torch.float64, device=t.device)
    peak = t.amax(dim=(1, 2)).to(torch.float64)
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))  # an empty SC: its sums, 0
    rows = t.sum(dim=2).to(torch.float64)
    cols = t.sum(dim=1).to(torch.float64)
    moments = torch.stack([rows.sum(dim=1), rows @ weights, cols @ weights]) / peak
    return [(n, *(float(f"{v:.6g}") for v in m)) for m in moments.T.cpu().tolist()]


def _sc_asymmetry(m: Tensor) -> tuple[float, float]:
    """``(largest |SC - SC.T|, that relative to the largest entry)`` of one SC (N, N), in its
    own dtype (one N x N temporary)."""
    peak = float(m.amax())
    diff = float((m - m.T).abs().amax())
    return diff, (diff / peak if peak > 0 else 0.0)


def warn_asymmetric_sc(sc: ArrayLike, name: str = "sc", stacklevel: int = 2) -> None:
    """Warn (:class:`~delssome_norms.errors.InputWarning`) when an SC (N, N) or (B, N, N) is not
    symmetric (a directed SC may be meant: it is used, not refused): the model takes row ``i``
    as the inputs to region ``i`` (``sum_j SC[i, j] S_E[j]``). Each SC is checked and warned
    about once per process, whatever its scaling (a fit passes the same SC to every simulation):
    only the distinct SCs of a batch (a fit's holds each subject's many times) not checked before
    are checked, one at a time in the input's dtype, so the check costs no copy of the batch.
    A batch's SC is named as one of the batch (its row says nothing of the subject)."""
    with warnings.catch_warnings():  # a read-only array (a packaged SC): it is only read here
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        t = torch.as_tensor(sc)
    single = t.ndim == 2
    if t.ndim not in (2, 3) or t.shape[-1] != t.shape[-2] or t.numel() == 0:
        return  # the shape checks name it
    if not (t.is_floating_point() and t.dtype not in (torch.float16, torch.bfloat16)):
        t = t.to(torch.float32 if t.is_floating_point() else torch.float64)  # small inputs
    t = t.reshape(-1, t.shape[-1], t.shape[-1])
    first: dict[tuple[int, float, float, float], int] = {}
    for k, key in enumerate(_sc_fingerprints(t)):
        if key not in _SC_CHECKED:
            first.setdefault(key, k)
    if not first:
        return
    if len(_SC_CHECKED) > 10_000:  # a long-lived process with ever new SCs
        _SC_CHECKED.clear()
    new = []
    for key, k in first.items():
        diff, rel = _sc_asymmetry(t[k])
        _SC_CHECKED[key] = rel > SC_SYMMETRY_TOL
        if rel > SC_SYMMETRY_TOL:
            new.append((rel, diff))
    if not new:
        return
    r, diff = max(new)
    which = name if single else "an SC of the batch"
    if len(new) > 1:
        which += f" (and {len(new) - 1} more distinct SC(s) of the batch)"
    warnings.warn(
        f"{which} is not symmetric (largest |SC - SC.T| is {diff:.3g}, {100 * r:.3g} % of its "
        "largest entry): row i is taken as the inputs to region i (SC[i, j] couples region j "
        "into region i); transpose the SC if its rows hold each region's outputs, or "
        "symmetrise it ((SC + SC.T) / 2) if it should be undirected",
        InputWarning,
        stacklevel=stacklevel + 1,
    )


def as_real_tensor(x: ArrayLike, name: str) -> Tensor:
    """``x`` as a real floating-point tensor without NaN/inf (integers become float64)."""
    t = numeric_tensor(x, name)
    if not torch.isfinite(t).all():
        raise InvalidInputError(f"{name} contains NaN or inf")
    return t


def check_param_shapes(
    wEE: Tensor, wEI: Tensor, sigma: Tensor, G: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The shape and sign rules of parameter sets, shared by the simulation
    (:func:`prepare_batch`) and the surrogate's evaluator: ``wEE, wEI, sigma`` of one shape
    (B sets, N >= 1 regions) and ``G`` of shape (B,), or one set of shape (N,) with a scalar
    ``G`` (returned with B = 1); every value >= 0 (the model has no negative couplings or
    noise). Returns ``(wEE, wEI, sigma, G)`` as (B, N), (B, N), (B, N), (B,)."""
    if wEE.ndim == 1:  # a single parameter set
        if G.numel() != 1:
            raise InvalidInputError(
                f"G of a single parameter set must be a scalar, got {G.numel()} values"
            )
        wEE, wEI, sigma, G = wEE[None], wEI[None], sigma[None], G.reshape(1)
    if wEE.ndim != 2:
        raise InvalidInputError(f"wEE must have shape (B, N), got {tuple(wEE.shape)}")
    B, N = wEE.shape
    if N == 0:
        raise InvalidInputError("wEE has no regions (shape (B, 0)): a network needs N >= 1")
    for name, t in (("wEI", wEI), ("sigma", sigma)):
        if tuple(t.shape) != (B, N):
            raise InvalidInputError(
                f"wEE, wEI and sigma must have one shape (B sets, N regions): wEE has "
                f"{tuple(wEE.shape)} but {name} has {tuple(t.shape)}"
            )
    G = G.reshape(-1)
    if G.shape[0] != B:
        raise InvalidInputError(f"G must have shape ({B},), got {tuple(G.shape)}")
    for name, t in (("wEE", wEE), ("wEI", wEI), ("sigma", sigma), ("G", G)):
        if (t < 0).any():  # negative couplings or noise have no meaning in the model
            raise InvalidInputError(f"{name} must be >= 0 (got {float(t.min()):g})")
    return wEE, wEI, sigma, G


def prepare_batch(
    params: PFICParams,
    sc: ArrayLike,
    dt: float,
    n_dup: int,
    device: torch.device | str | None,
    dtype: torch.dtype,
    const: PFICConstants = PFIC_CONSTANTS,
    n_frames: int | None = None,
) -> PreparedBatch:
    """Check shapes, solve FIC (float64) and fold duplicates into the batch.

    With ``n_frames`` (the BOLD frames to be recorded), a batch whose outputs cannot fit in the
    device's memory is refused first (:func:`check_simulation_memory`).
    """
    device = check_device(device)
    if not all(hasattr(params, name) for name in ("wEE", "wEI", "sigma", "G")):
        raise InvalidInputError(
            f"params must be a PFICParams(wEE, wEI, sigma, G), got {type(params).__name__}"
        )
    # every input is moved to the simulation device, so CPU and CUDA inputs can be mixed. A
    # float64 simulation forms its coefficients (wEE J_NMDA, sigma sqrt(dt), ...) in float64, as
    # the FIC solve does, whatever the inputs' dtype (float32 tensors lost ~5e-8 there); a float32
    # simulation keeps forming them in the inputs' dtype, so that it reproduces earlier results
    # and the packaged reference simulations bit for bit
    # (half-precision inputs are promoted to float32 first: coefficients formed in float16 were
    # ~1e-3 off, which moved E/I by 0.07 %)
    work = torch.float64 if dtype == torch.float64 else None

    def load(x: ArrayLike, name: str, to: torch.dtype | None = work) -> Tensor:
        t = as_real_tensor(x, name)
        if t.dtype in (torch.float16, torch.bfloat16):
            t = t.to(torch.float32)
        return t.to(device=device, dtype=to)

    wEE = load(params.wEE, "wEE")
    wEI = load(params.wEI, "wEI")
    sigma = load(params.sigma, "sigma")
    G = load(params.G, "G")
    wEE, wEI, sigma, G = check_param_shapes(wEE, wEI, sigma, G)
    B, N = wEE.shape
    sc_t = load(sc, "sc", None)
    if sc_t.shape[-2:] != (N, N) or sc_t.ndim not in (2, 3) or (sc_t.ndim == 3 and sc_t.shape[0] != B):
        raise InvalidInputError(
            f"sc must have shape ({N}, {N}) or ({B}, {N}, {N}), got {tuple(sc_t.shape)}"
        )
    if (sc_t < 0).any():
        raise InvalidInputError("sc must be non-negative (connection strengths)")
    warn_asymmetric_sc(sc_t, "sc", stacklevel=3)  # the caller of simulate()
    if float(sc_t.max()) > UNSCALED_SC_MAX:
        warnings.warn(
            f"sc has entries up to {float(sc_t.max()):.3g}; the model expects SC scaled to a "
            "maximum of 0.02 (pass scale_sc(sc)), unscaled SC drives the FIC solution out of range",
            UserWarning,
            stacklevel=3,
        )
    if isinstance(n_dup, bool) or not isinstance(n_dup, (int, np.integer)) or n_dup < 1:
        raise InvalidInputError(f"n_dup must be an integer >= 1, got {n_dup!r}")
    if n_frames is not None:
        check_simulation_memory(B, int(n_dup), N, n_frames, dtype, device, sc_t.ndim == 3)
    fic = solve_fic(wEE, wEI, G, sc_t, const)
    if not bool(fic.converged.all()):
        bad = (~fic.converged).nonzero().flatten().tolist()
        warnings.warn(
            f"FIC did not converge for parameter set(s) {bad[:10]}; they are marked invalid",
            ConvergenceWarning,
            stacklevel=3,
        )
    euler_ok = euler_stable(fic, dt, const)
    unstable = fic.converged.to(euler_ok.device) & ~euler_ok
    if bool(unstable.any()):
        bad = unstable.nonzero().flatten().tolist()
        limit = float(euler_dt_limit(fic, const)[unstable].min())
        warnings.warn(
            f"an Euler step of dt = {dt:g} s is unstable at the fixed point of parameter set(s) "
            f"{bad[:10]}{' ...' if len(bad) > 10 else ''} (the inhibitory population relaxes "
            f"faster than 2 / dt): they are marked invalid; {dt_advice(limit)}",
            ConvergenceWarning,
            stacklevel=3,
        )

    def fold(t: Tensor) -> Tensor:
        return t.to(device=device, dtype=dtype).repeat_interleave(n_dup, dim=0).contiguous()

    J = const.J_NMDA
    return PreparedBatch(
        n_sets=B,
        n_dup=n_dup,
        wee_j=fold(wEE * J),
        wei_j=fold(wEI * J),
        w_ie=fold(torch.nan_to_num(fic.w_ie, nan=0.0)),
        g_j=fold((G * J)[:, None]),
        noise=fold(sigma * math.sqrt(dt)),
        sc=sc_t.to(device=device, dtype=dtype).contiguous(),
        fic=fic,
        euler_ok=euler_ok,
    )


def pfic_dfun(
    x: Tensor, coupling: Tensor, p: PreparedBatch, const: PFICConstants = PFIC_CONSTANTS
) -> tuple[Tensor, Tensor]:
    """Drift of the neural state and the excitatory rate.

    Parameters
    ----------
    x : Tensor of shape (2, M, N)
        ``x[0] = S_E``, ``x[1] = S_I``.
    coupling : Tensor of shape (M, N)
        ``SC · S_E`` per simulation.
    p : PreparedBatch
    const : PFICConstants

    Returns
    -------
    (dx, r_e) : Tensor of shape (2, M, N) [1/s], Tensor of shape (M, N) [Hz]
    """
    c = const
    s_e, s_i = x[0], x[1]
    i_e = c.W_E * c.I0 + p.wee_j * s_e + p.g_j * coupling - p.w_ie * s_i
    i_i = c.W_I * c.I0 + p.wei_j * s_e - s_i
    r_e = rate(i_e, c.a_E, c.b_E, c.d_E)
    r_i = rate(i_i, c.a_I, c.b_I, c.d_I)
    ds_e = -s_e / c.tau_E + (1.0 - s_e) * c.gamma_kin * r_e
    ds_i = -s_i / c.tau_I + r_i
    return torch.stack((ds_e, ds_i)), r_e


def sc_coupling(s_e: Tensor, p: PreparedBatch) -> Tensor:
    """``SC · S_E`` for every simulation: (M, N) → (M, N) with one (batched) matmul."""
    B, D = p.n_sets, p.n_dup
    N = s_e.shape[-1]
    return torch.matmul(s_e.reshape(B, D, N), p.sc.transpose(-1, -2)).reshape(B * D, N)


class Monitors:
    """Time averages of S_E, S_I, r_E and BOLD samples, fed by the integration loop."""

    def __init__(self, M: int, N: int, timing: SimulationTiming, like: Tensor) -> None:
        self.timing = timing
        self.sums = torch.zeros((3, M, N), dtype=torch.float64, device=like.device)
        self.block_sums = torch.zeros((3, M, N), dtype=like.dtype, device=like.device)
        self.bold = torch.full((timing.n_frames, M, N), torch.nan, dtype=like.dtype, device=like.device)
        self.sample_set = {int(t): i for i, t in enumerate(timing.sample_steps)}

    def frame_of_step(self, t: int) -> int | None:
        """Index in ``bold`` of the sample taken after recorded step t, or None."""
        i = self.sample_set.get(t)
        if i is None:
            return None
        k = i - self.timing.n_drop
        return k if k >= 0 else None

    def flush(self) -> None:
        self.sums += self.block_sums
        self.block_sums.zero_()


def torch_block(
    x: Tensor,
    bw: BalloonState,
    xi: Tensor,
    first_step: int,
    p: PreparedBatch,
    timing: SimulationTiming,
    mon: Monitors,
    const: PFICConstants,
    balloon: BalloonConstants,
) -> tuple[Tensor, BalloonState]:
    """Integrate ``xi.shape[0]`` steps starting at global step ``first_step`` (warm-up counted)."""
    dt = timing.dt
    warm = timing.warmup_steps
    for k in range(xi.shape[0]):
        step = first_step + k
        coupling = sc_coupling(x[0], p)
        dx, r_e = pfic_dfun(x, coupling, p, const)
        if step >= warm:
            bw = balloon_step(bw, x[0], dt, balloon)
        x = x + dt * dx + p.noise * xi[k]
        if step >= warm:
            mon.block_sums[:2] += x
            mon.block_sums[2] += r_e
            frame = mon.frame_of_step(step - warm)
            if frame is not None:
                mon.bold[frame] = bold_signal(bw, balloon)
    return x, bw


def initial_neural_state(
    p: PreparedBatch, initial_state: str = "reference", const: PFICConstants = PFIC_CONSTANTS
) -> Tensor:
    """Initial (2, M, N) state: ``S_E = S_E*`` and ``S_I = 0.1433408985`` (``"reference"``, as the
    reference code) or ``S_I = S_I*`` of each region (``"fixed_point"``, the exact FIC fixed point)."""
    M, N = p.wee_j.shape
    x = torch.empty((2, M, N), dtype=p.wee_j.dtype, device=p.wee_j.device)
    x[0] = p.fic.s_e
    if initial_state == "reference":
        x[1] = const.s_i_init
    elif initial_state == "fixed_point":
        x[1] = p.fic.s_i.to(x).repeat_interleave(p.n_dup, dim=0)
    else:
        raise InvalidInputError(
            f"initial_state must be 'reference' or 'fixed_point', got {initial_state!r}"
        )
    return x


def quarantine(
    x: Tensor, bw: BalloonState, finite: Tensor, p: PreparedBatch, const: PFICConstants
) -> tuple[Tensor, Tensor, BalloonState]:
    """Mark simulations whose state stopped being finite and reset them to a harmless state.

    A blown-up simulation would otherwise keep producing NaN/inf (slow on CPUs) for the rest of
    the run; its results are discarded through ``finite`` either way.
    """
    ok = torch.isfinite(x).all(dim=(0, 2))
    for s in bw:
        ok &= torch.isfinite(s).all(dim=1)
    finite = finite & ok
    if not bool(ok.all()):
        bad = ~ok
        x = torch.where(bad[None, :, None], initial_neural_state(p, "reference", const), x)
        rest = balloon_init(x[0])
        bw = BalloonState(*(torch.where(bad[:, None], r, s) for r, s in zip(rest, bw)))
    return finite, x, bw
