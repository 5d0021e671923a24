"""Summary statistics of BOLD: FC, sliding-window FCD and its 10000-bin CDF (docs/science.md §3).

The same functions serve simulated and empirical data: :func:`bold_fc` and :func:`bold_fcd_cdf`
take one run (T, N) (or a batch (..., T, N)); :func:`summarize` turns a
:class:`~delssome_norms.model.integrate.SimulationResult` into one FC and one FCD-CDF per parameter
set (mean over valid duplicates, as the reference code does).

FCD is the memory hot spot. For one simulation with T frames, N regions, window w,
P = N (N − 1) / 2 region pairs, W = T − w + 1 windows and s bytes per value (4 in float32),
:func:`fcd_histogram` keeps

    s W P            bytes of standardised window-FC vectors (the FCD is their Gram matrix), and
    s W b            bytes for one block of b = ``block_rows`` rows of the FCD matrix,

so memory is linear in W·P and never holds the full W x W matrix. On CPU the window vectors come
from running window sums in a compiled helper; the portable torch path (CUDA, or no compiler)
additionally needs ``8 (T + 1) P + 24 W P`` bytes of float64 cumulative sums and temporaries.
For HCP (T = 1200, w = 83, N = 68): ≈ 16 MB per simulation on the CPU path, ≈ 100 MB on the
torch path. :func:`summarize` processes simulations in chunks sized so that this scratch memory
stays below ``memory_budget`` (default 512 MiB): peak memory is about ``memory_budget`` plus the
BOLD itself (``B D T N s`` bytes, 98 MB for one HCP generation of 300 simulations), whatever B.
Only FCD blocks on or above the diagonal are computed (≈ 56–61 % of the ``W² P`` multiply-adds).

Precision of the FCD products (:func:`fcd_product_dtype`): float64 BOLD uses float64 products.
Float32 BOLD on a CPU with AVX512-BF16 uses bfloat16 inputs with float32 sums, in a compiled
kernel that bins the products without storing them (2.6–3x the float32 matrix products, which
run at the CPU's float32 peak; written by hand because torch's CPU bfloat16 matrix product
rounds its output to bfloat16, 10 bins at FCD values near 0.5). Rounding the unit-norm window
vectors to bfloat16 moves an FCD value by ~5e-5 rms (bins are 2e-4 wide) and a simulated FCD-CDF
by ~1e-4 in KS distance, three orders of magnitude below the KS distance between two noise
realisations of the same parameters (0.1–0.2 at HCP length). ``DELSSOME_NORMS_FCD_PRODUCTS``
(``auto``, ``float32``, ``bfloat16``) overrides the choice; data that are written out pass
``summarize(..., fcd_products=bold.dtype)`` so that they do not depend on the CPU.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError
from delssome_norms.model.tensors import numeric_tensor
from delssome_norms.model.timing import MIN_FCD_WINDOW, SimulationTiming

FCD_BINS = 10000
"""Bins of the FCD histogram over (−1, 1) (docs/science.md §3)."""

FCD_PRODUCTS_ENV = "DELSSOME_NORMS_FCD_PRODUCTS"
"""Environment variable choosing the FCD products of float32 simulations: ``auto`` (default),
``float32`` or ``bfloat16`` (see :func:`fcd_product_dtype`)."""
DEFAULT_MEMORY_BUDGET = 1 << 29
"""Bytes the FCD computation may use for one chunk of simulations on CPU (512 MiB)."""
DEVICE_MEMORY_BUDGET_MAX = 8 << 30
"""Largest FCD scratch budget on an accelerator (8 GiB); also at most a quarter of free memory."""


def fcd_memory_budget(device: torch.device | str) -> int:
    """Default scratch budget of :func:`summarize` on ``device`` [bytes].

    CPU: :data:`DEFAULT_MEMORY_BUDGET`. CUDA: a quarter of the free device memory, at most
    :data:`DEVICE_MEMORY_BUDGET_MAX`, so that the FCD of a whole lockstep validation batch runs
    in a few large chunks (one HCP simulation needs ~100 MB of scratch on the torch path)
    instead of hundreds of 5-simulation chunks.
    """
    dev = torch.device(device)
    if dev.type != "cuda":
        return DEFAULT_MEMORY_BUDGET
    free, _ = torch.cuda.mem_get_info(dev)
    return int(max(DEFAULT_MEMORY_BUDGET, min(DEVICE_MEMORY_BUDGET_MAX, free // 4)))


class FCDScratch:
    """Reusable scratch buffers of :func:`fcd_histogram` (window vectors, product tiles).

    A fresh multi-hundred-megabyte tensor per chunk of simulations costs the operating system a
    page fault per 4 KiB on first touch: for an HCP generation on CPU that was ~60 % of the
    window-vector time. :func:`summarize` keeps one scratch for all its chunks.
    """

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def take(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device) -> Tensor:
        """A contiguous tensor of ``shape`` backed by buffer ``name`` (grown when too small)."""
        numel = math.prod(shape)
        buf = self._buffers.get(name)
        dev = torch.device(device)
        if buf is None or buf.numel() < numel or buf.dtype != dtype or buf.device != dev:
            buf = torch.empty(numel, dtype=dtype, device=dev)
            self._buffers[name] = buf
        return buf[:numel].view(shape)


class Summary(NamedTuple):
    """Per-parameter-set summary statistics.

    Attributes
    ----------
    fc : Tensor of shape (B, N, N)
        Mean over valid duplicates of the FC matrices (NaN where the set has no valid duplicate).
    fcd_cdf : Tensor of shape (B, bins)
        CDF of the mean FCD histogram over valid duplicates (NaN where none is valid).
    valid : Tensor of shape (B,), bool
        All duplicates of the set are valid (``SimulationResult.valid_set``).
    """

    fc: Tensor
    fcd_cdf: Tensor
    valid: Tensor


def _as_float_tensor(x, name: str = "bold") -> Tensor:
    return numeric_tensor(x, name)


def check_bins(bins: int) -> int:
    """``bins`` as an int >= 1 (the FCD-CDF's number of histogram bins over (-1, 1)).

    Raises
    ------
    InvalidInputError
        ``bins`` is not a whole number >= 1.
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InvalidInputError(f"bins must be an integer >= 1, got {bins!r}", "bins")
    return int(bins)


def upper_tri_indices(n: int, device: torch.device | None = None) -> tuple[Tensor, Tensor]:
    """Row and column indices of the strict upper triangle of an n x n matrix (row-major order)."""
    iu = torch.triu_indices(n, n, offset=1, device=device)
    return iu[0], iu[1]


def bold_fc(bold) -> Tensor:
    """Pearson FC of regional BOLD.

    Parameters
    ----------
    bold : Tensor or ndarray of shape (..., T, N)
        Time series, frames along the second-to-last axis.

    Returns
    -------
    Tensor of shape (..., N, N)
        Correlation matrices (computed in float64; returned in the dtype of a floating-point
        tensor input, float64 for arrays), unit diagonal; NaN rows for constant series.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0]])
    >>> bold_fc(x)
    tensor([[1., 1.],
            [1., 1.]])
    """
    x = _as_float_tensor(bold)
    if x.ndim < 2 or x.shape[-2] < 2:
        raise InvalidInputError(
            f"bold must have shape (..., T, N) with T >= 2 frames, got {tuple(x.shape)}"
        )
    out_dtype = x.dtype
    x = x.to(torch.float64)
    x = x - x.mean(dim=-2, keepdim=True)
    cov = x.transpose(-1, -2) @ x
    sd = torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1))
    fc = cov / (sd[..., :, None] * sd[..., None, :])
    n = fc.shape[-1]
    eye = torch.eye(n, dtype=torch.bool, device=fc.device)
    fc = torch.where(eye & torch.isfinite(fc), torch.ones((), dtype=fc.dtype, device=fc.device), fc)
    return fc.to(out_dtype)


def check_sliding_windows(bold: Tensor, window: int, min_windows: int = 1) -> None:
    """Refuse a BOLD batch that is not (S, T, N) or a window that leaves < ``min_windows`` windows.

    Raises
    ------
    InvalidInputError
        ``bold`` is not a 3-D tensor, ``window`` is not an integer >= ``MIN_FCD_WINDOW``, or the
        series is too short for ``min_windows`` sliding windows.
    """
    if not isinstance(bold, Tensor) or bold.ndim != 3:
        shape = tuple(bold.shape) if isinstance(bold, Tensor) else type(bold).__name__
        raise InvalidInputError(f"bold must be a tensor of shape (S, T, N), got {shape}", "bold")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < MIN_FCD_WINDOW:
        raise InvalidInputError(
            f"window must be an integer >= {MIN_FCD_WINDOW} frames, got {window!r}", "window"
        )
    if bold.shape[1] < window + min_windows - 1:
        raise InvalidInputError(
            f"a window of {window} frames leaves {max(bold.shape[1] - window + 1, 0)} sliding "
            f"window(s) in {bold.shape[1]} frames; at least {min_windows} needed",
            "window",
        )


def window_fc_vectors(bold: Tensor, window: int) -> Tensor:
    """Strict-upper-triangle FC of every sliding window (step 1 frame), from cumulative sums.

    Parameters
    ----------
    bold : Tensor of shape (S, T, N)
    window : int
        Window length w [frames].

    Returns
    -------
    Tensor of shape (S, P, W), float64
        Column ``a`` holds the FC of frames ``a .. a + w - 1`` for the ``P = N (N − 1) / 2`` region
        pairs in row-major upper-triangle order; ``W = T − w + 1``. Costs O(S T P) instead of
        O(S T w P): window sums are differences of cumulative sums of frame products (float64).

    Raises
    ------
    InvalidInputError
        ``bold`` is not (S, T, N), or ``window`` is not an integer in [3, T] frames.
    """
    check_sliding_windows(bold, window)
    x = bold.to(torch.float64)
    S, T, N = x.shape
    x = (x - x.mean(dim=1, keepdim=True)).transpose(1, 2).contiguous()  # (S, N, T), centred
    P = N * (N - 1) // 2
    w = float(window)

    def window_sums(c: Tensor) -> Tensor:  # cumulative sums (S, K, T + 1) -> (S, K, W)
        torch.cumsum(c, dim=2, out=c)
        return c[:, :, window:] - c[:, :, :-window]

    buf = torch.zeros((S, N, T + 1), dtype=torch.float64, device=x.device)
    buf[:, :, 1:] = x
    s1 = window_sums(buf)  # (S, N, W)
    buf[:, :, 0] = 0.0
    torch.mul(x, x, out=buf[:, :, 1:])
    inv_sd = (window_sums(buf) - s1 * s1 / w).rsqrt_()  # (S, N, W), 1 / sqrt(w var)
    del buf
    iu, ju = upper_tri_indices(N, x.device)
    prods = torch.zeros((S, P, T + 1), dtype=torch.float64, device=x.device)
    torch.mul(x.index_select(1, iu), x.index_select(1, ju), out=prods[:, :, 1:])
    cov = window_sums(prods)  # (S, P, W), w * covariance
    del prods
    cov.addcmul_(s1.index_select(1, iu), s1.index_select(1, ju), value=-1.0 / w)
    cov *= inv_sd.index_select(1, iu)
    cov *= inv_sd.index_select(1, ju)
    return cov


def _standardize_columns(v: Tensor, dtype: torch.dtype) -> Tensor:
    """Centre each column (over dim 1) and scale it to unit norm: inner products are correlations."""
    v = v - v.mean(dim=1, keepdim=True)
    v /= torch.linalg.vector_norm(v, dim=1, keepdim=True)
    return v.to(dtype)


def _bin_index(values: Tensor, bins: int) -> Tensor:
    """Bin of each value in ``bins`` equal bins over [−1, 1] (values at the edges clamped in)."""
    idx = torch.floor((values.to(torch.float64) + 1.0) * (bins / 2.0)).to(torch.int64)
    return idx.clamp_(0, bins - 1)


def _cpu_kernel():
    """The compiled CPU helpers, or None (then the torch implementation is used)."""
    from delssome_norms.model import _kernel

    return _kernel.load() if _kernel.available() else None


def standardized_window_vectors(
    bold: Tensor, window: int, dtype: torch.dtype, scratch: FCDScratch | None = None
) -> Tensor:
    """Window-FC vectors, centred and scaled to unit norm, so that their inner products are the FCD.

    Parameters
    ----------
    bold : Tensor of shape (S, T, N)
    window : int
    dtype : torch.dtype
        Output precision.
    scratch : FCDScratch, optional
        Buffers to write into (CPU helper path) instead of a new tensor.

    Returns
    -------
    Tensor of shape (S, W, P)
        Row ``a`` is the standardised upper-triangle FC of window ``a``. On CPU the fused C++
        helper computes it with running window sums (float64); elsewhere :func:`window_fc_vectors`.
    """
    lib = _cpu_kernel() if bold.device.type == "cpu" else None
    if lib is None:
        return _standardize_columns(window_fc_vectors(bold, window), dtype).transpose(1, 2)
    import ctypes

    S, T, N = bold.shape
    x = bold.to(dtype).contiguous()
    shape = (S, T - window + 1, N * (N - 1) // 2)
    if scratch is not None:
        out = scratch.take("v", shape, dtype, "cpu")
    else:
        out = torch.empty(shape, dtype=dtype)
    fn = lib.pfic_window_fc_f32 if dtype == torch.float32 else lib.pfic_window_fc_f64
    i64 = ctypes.c_int64
    fn(i64(S), i64(T), i64(N), i64(window), ctypes.c_void_p(x.data_ptr()),
       ctypes.c_void_p(out.data_ptr()), i64(torch.get_num_threads()))  # fmt: skip
    return out


def fcd_products_choice() -> str:
    """``auto``, ``float32`` or ``bfloat16``: the value of ``DELSSOME_NORMS_FCD_PRODUCTS``.

    Raises
    ------
    InvalidInputError
        Any other value (checked by the CLI before a command starts).
    """
    choice = os.environ.get(FCD_PRODUCTS_ENV, "").strip().lower() or "auto"
    if choice not in ("auto", "float32", "bfloat16"):
        from delssome_norms.errors import InvalidInputError

        raise InvalidInputError(
            f"must be 'auto', 'float32' or 'bfloat16', got {choice!r}", f"${FCD_PRODUCTS_ENV}"
        )
    return choice


def fcd_product_dtype(bold_dtype: torch.dtype, device: torch.device | str) -> torch.dtype:
    """Precision of the FCD products that :func:`summarize` uses for BOLD of ``bold_dtype``.

    Float64 BOLD: float64. Float32 BOLD, by ``DELSSOME_NORMS_FCD_PRODUCTS``: ``auto`` or unset
    gives ``torch.bfloat16`` (bfloat16 inputs, float32 sums; see the module docstring) on a CPU
    whose compiled kernel has AVX512-BF16 and float32 elsewhere; ``float32`` always float32;
    ``bfloat16`` always bfloat16 inputs (float32 products of rounded vectors where there is no
    such kernel: the same numbers, slower).

    Raises
    ------
    InvalidInputError
        Another value of ``DELSSOME_NORMS_FCD_PRODUCTS``.
    """
    if bold_dtype != torch.float32:
        return bold_dtype
    choice = fcd_products_choice()
    if choice != "auto":
        return torch.float32 if choice == "float32" else torch.bfloat16
    if torch.device(device).type != "cpu":
        return bold_dtype
    from delssome_norms.model import _kernel

    return torch.bfloat16 if _kernel.has_bf16_fcd() else bold_dtype


def fcd_products_name(bold_dtype: torch.dtype, device: torch.device | str) -> str:
    """:func:`fcd_product_dtype` as recorded in results: ``float32``, ``bfloat16`` or ``float64``."""
    return str(fcd_product_dtype(bold_dtype, device)).removeprefix("torch.")


def _bf16_kernel_histogram(v: Tensor, bins: int, lib, scratch: FCDScratch | None) -> Tensor | None:
    """Counts (S * bins,) of the strict upper FCD triangles from the compiled bfloat16 kernel
    ``lib``, or None when it was built without AVX512-BF16."""
    if v.device.type != "cpu" or v.dtype != torch.float32:
        return None
    import ctypes

    v = v.contiguous()
    S, W, P = v.shape
    i64 = ctypes.c_int64
    words = lib.pfic_fcd_bf16_scratch_words(i64(W), i64(P))
    if words < 0:
        return None
    layout = (scratch or FCDScratch()).take("bf16", (S, words), torch.int32, "cpu")
    counts = torch.zeros(S * bins, dtype=torch.int64)
    lib.pfic_fcd_hist_bf16(i64(S), i64(W), i64(P), ctypes.c_void_p(v.data_ptr()), i64(bins),
                           ctypes.c_void_p(counts.data_ptr()), ctypes.c_void_p(layout.data_ptr()),
                           i64(torch.get_num_threads()))  # fmt: skip
    return counts


def fcd_block_rows(device: torch.device | str) -> int:
    """Default FCD block height: 128 rows on CPU, 256 on accelerators.

    On CPU (HCP: W = 1118 windows) 128-row blocks do 56 % of the full product instead of 61 % at
    256, at the same matrix-multiply efficiency: the FCD histogram of a generation takes ~7 %
    less time (64 rows: no further gain). Accelerators keep larger, better-occupied products.
    """
    return 128 if torch.device(device).type == "cpu" else 256


def fcd_histogram(
    bold: Tensor,
    window: int,
    bins: int = FCD_BINS,
    dtype: torch.dtype = torch.float32,
    block_rows: int | None = None,
    scratch: FCDScratch | None = None,
) -> Tensor:
    """Histogram of the strict upper triangle of each simulation's FCD matrix.

    Parameters
    ----------
    bold : Tensor of shape (S, T, N)
    window : int
        FCD window [frames].
    bins : int, default 10000
        Equal bins over (−1, 1).
    dtype : torch.dtype, default float32
        Precision of the window-vector correlations (the FCD matrix products). ``torch.bfloat16``
        rounds the float32 window vectors to bfloat16 and sums the products in float32 (the
        compiled kernel on a CPU with AVX512-BF16; elsewhere float32 products of the rounded
        vectors, the same numbers up to summation order).
    block_rows : int, optional
        Rows of the FCD matrix computed at once; only blocks on or above the diagonal are formed,
        so ``1/2 + b / (2 W)`` of the full ``W² P`` multiply-adds are done. Default
        :func:`fcd_block_rows` of the BOLD's device.
    scratch : FCDScratch, optional
        Reused buffers for the window vectors and FCD blocks (as :func:`summarize` passes).

    Returns
    -------
    Tensor of shape (S, bins), float64 counts
        Each row sums to ``W (W − 1) / 2`` for a finite simulation. A non-finite simulation
        gives a NaN row.

    Raises
    ------
    InvalidInputError
        ``bold`` is not (S, T, N), ``window`` leaves fewer than 2 windows, or ``bins`` < 1.
    """
    check_sliding_windows(bold, window, min_windows=2)
    bins = check_bins(bins)
    block_rows = block_rows or fcd_block_rows(bold.device)
    bf16 = dtype == torch.bfloat16
    v = standardized_window_vectors(bold, window, torch.float32 if bf16 else dtype, scratch)  # (S, W, P)
    S, W = v.shape[:2]
    lib = _cpu_kernel() if v.device.type == "cpu" else None
    counts = _bf16_kernel_histogram(v, bins, lib, scratch) if bf16 and lib is not None else None
    if counts is None:
        if bf16:  # no bfloat16 kernel: float32 products of the rounded vectors
            v = v.to(torch.bfloat16).to(torch.float32)
        counts = _blocked_upper_counts(v, bins, block_rows, lib, scratch)
    counts = counts.reshape(S, bins).to(torch.float64)
    if lib is not None:  # the helpers skip NaN entries: a short total marks a non-finite run
        bad = counts.sum(dim=1) != W * (W - 1) // 2
    else:
        bad = ~torch.isfinite(v).all(dim=(1, 2))
    counts[bad] = torch.nan
    return counts


def _blocked_upper_counts(
    v: Tensor, bins: int, block_rows: int, lib, scratch: FCDScratch | None
) -> Tensor:
    """Counts (S * bins,) of the strict upper triangles of ``v vᵀ``, formed ``block_rows`` rows at
    a time (only blocks on or above the diagonal), binned by the compiled helper when ``lib``."""
    S, W = v.shape[:2]
    counts = torch.zeros(S * bins, dtype=torch.int64, device=v.device)
    offsets = (torch.arange(S, device=v.device) * bins)[:, None]
    for r0 in range(0, W, block_rows):
        r1 = min(W, r0 + block_rows)
        if scratch is not None:  # (S, b, W - r0)
            block = scratch.take("block", (S, r1 - r0, W - r0), v.dtype, v.device)
            torch.bmm(v[:, r0:r1], v[:, r0:].transpose(1, 2), out=block)
        else:
            block = v[:, r0:r1] @ v[:, r0:].transpose(1, 2)
        if lib is not None:
            import ctypes

            block = block.contiguous()
            fn = lib.pfic_hist_upper_f32 if block.dtype == torch.float32 else lib.pfic_hist_upper_f64
            i64 = ctypes.c_int64
            fn(i64(S), i64(r1 - r0), i64(W - r0), ctypes.c_void_p(block.data_ptr()), i64(bins),
               ctypes.c_void_p(counts.data_ptr()), i64(torch.get_num_threads()))  # fmt: skip
        else:
            keep = torch.ones((r1 - r0, W - r0), dtype=torch.bool, device=v.device).triu_(1)
            idx = _bin_index(block[:, keep], bins) + offsets  # strict upper entries of these rows
            counts += torch.bincount(idx.flatten(), minlength=S * bins)
    return counts


def histogram_to_cdf(counts: Tensor) -> Tensor:
    """Cumulative sum of a histogram (..., bins) normalised to end at 1."""
    c = torch.cumsum(counts, dim=-1)
    return c / c[..., -1:]


def bold_fcd_cdf(
    bold, window: int, bins: int = FCD_BINS, regions: Sequence[str] | None = None
) -> Tensor:
    """FCD-CDF of one run (or a batch of runs), as used for empirical data.

    Parameters
    ----------
    bold : Tensor or ndarray of shape (T, N) or (S, T, N)
    window : int
        FCD window [frames], ``round(60 / TR)`` by convention.
    bins : int, default 10000
    regions : sequence of str, optional
        Region names, for the message when a region is constant over a whole window (refused).

    Returns
    -------
    Tensor of shape (bins,) or (S, bins), float64
    """
    x = _as_float_tensor(bold)
    bins = check_bins(bins)
    if x.ndim not in (2, 3):
        raise InvalidInputError(f"bold must have shape (T, N) or (S, T, N), got {tuple(x.shape)}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < MIN_FCD_WINDOW:
        raise InvalidInputError(f"window must be an integer >= {MIN_FCD_WINDOW} frames, got {window!r}")
    if x.shape[-2] < window + 1:
        raise InvalidInputError(
            f"a window of {window} frames needs at least {window + 1} frames for two windows; "
            f"the series has {x.shape[-2]}"
        )
    single = x.ndim == 2
    x = x[None] if single else x
    _check_no_flat_window(x, window, regions)
    cdf = histogram_to_cdf(fcd_histogram(x, window, bins, dtype=torch.float64))
    if not bool(torch.isfinite(cdf).all()):  # constant regions were refused above
        raise InvalidInputError(
            "the FCD is undefined: a region is constant in a window (or the series holds "
            "NaN/inf), so its windowed correlations are NaN; drop or repair such regions or frames"
        )
    return cdf[0] if single else cdf


def _check_no_flat_window(x: Tensor, window: int, regions: Sequence[str] | None = None) -> None:
    """Refuse series in which a region stays constant for a whole FCD window.

    Such a window has no correlation for that region (it would enter the FCD as 0 and bias the
    CDF towards 0); a region constant for a stretch is a data problem (signal dropout, padding).
    """
    flat = (x[..., 1:, :] == x[..., :-1, :]).to(torch.int32)  # (S, T - 1, N)
    span = window - 1  # a window of `window` frames is constant when `window - 1` diffs are 0
    if flat.shape[-2] < span:
        return
    run = torch.cumsum(torch.nn.functional.pad(flat, (0, 0, 1, 0)), dim=-2)
    full = (run[..., span:, :] - run[..., :-span, :]) == span  # (S, T - window + 1, N)
    if bool(full.any()):
        s_idx, start, region = (int(v) for v in torch.nonzero(full)[0])
        label = f" ({regions[region]})" if regions is not None and region < len(regions) else ""
        raise InvalidInputError(
            f"region {region}{label} (counted from 0; column {region + 1} of a header-less run) "
            f"is constant over frames {start + 1}-"
            f"{start + window} (counted from 1){f' of run {s_idx + 1}' if x.shape[0] > 1 else ''}, "
            f"a whole FCD window of {window} frames: the FCD is undefined there; repair or drop "
            "those frames (signal dropout?)"
        )


def fcd_bytes_per_simulation(
    n_frames: int,
    n_regions: int,
    window: int,
    itemsize: int,
    block_rows: int = 256,
    fused: bool = True,
    bf16: bool = False,
) -> int:
    """Scratch bytes :func:`fcd_histogram` needs per simulation (see the module docstring).

    ``fused`` is the CPU path with the compiled helper (running window sums); otherwise the torch
    path with float64 cumulative sums of all frame products. ``bf16``: the compiled bfloat16
    products, which add a transposed bfloat16 copy of the window vectors (~``2 W P`` bytes) and
    need no blocks of the FCD matrix.
    """
    P = n_regions * (n_regions - 1) // 2
    W = n_frames - window + 1
    if bf16 and fused:
        layout = -(-W // 96) * 96 * (-(-((P + 1) // 2) // 16) * 16)  # words (pfic_cpu.cpp)
        return W * P * 4 + 4 * layout
    per = W * P * itemsize + block_rows * W * (itemsize + (0 if fused else 16))
    if not fused:
        per += 8 * (n_frames + 1) * P + 3 * 8 * W * P
    return per


def summarize(
    result,
    timing: SimulationTiming,
    bins: int = FCD_BINS,
    memory_budget: int | None = None,
    fcd_products: torch.dtype | None = None,
) -> Summary:
    """FC and FCD-CDF per parameter set, averaged over valid duplicates.

    Parameters
    ----------
    result : SimulationResult
        Output of :func:`~delssome_norms.model.simulate`.
    timing : SimulationTiming
        Provides the FCD window ``timing.fcd_window`` [frames].
    bins : int, default 10000
    memory_budget : int, optional
        Bytes of scratch memory for one chunk of simulations (see the module docstring);
        default :func:`fcd_memory_budget` of the BOLD's device (512 MiB on CPU).
    fcd_products : torch.dtype, optional
        Precision of the FCD products (see :func:`fcd_histogram`); default
        :func:`fcd_product_dtype`. Data that are stored or shipped pass the BOLD dtype, so that
        they do not depend on the CPU's instruction set.

    Returns
    -------
    Summary
        ``fc`` (B, N, N) and ``fcd_cdf`` (B, bins) in the BOLD dtype, ``valid`` (B,).
    """
    return summarize_duplicates(result, timing, bins, memory_budget, fcd_products)[0]


def summarize_duplicates(
    result,
    timing: SimulationTiming,
    bins: int = FCD_BINS,
    memory_budget: int | None = None,
    fcd_products: torch.dtype | None = None,
) -> tuple[Summary, Tensor, Tensor]:
    """:func:`summarize` and the FC and FCD histogram of every duplicate on their own.

    The duplicates' statistics are those the means are made of (computed once, chunk by chunk
    within ``memory_budget``), so a caller that also needs one duplicate's (e.g. the surrogate's
    training data) does no second FCD pass over the whole batch, whose memory would not be
    bounded.

    Returns
    -------
    summary : Summary
        As :func:`summarize` returns it.
    fc : Tensor of shape (B, D, N, N)
        Each duplicate's FC, in the BOLD dtype.
    fcd_histogram : Tensor of shape (B, D, bins)
        Each duplicate's FCD histogram (float64 counts; :func:`histogram_to_cdf` gives its CDF).
    """
    if not all(hasattr(result, a) for a in ("bold", "valid", "mean_over_valid")):
        raise InvalidInputError(
            f"result must be the SimulationResult of simulate(), got {type(result).__name__}", "result"
        )
    if not isinstance(timing, SimulationTiming):
        raise InvalidInputError(
            f"timing must be a SimulationTiming, got {type(timing).__name__}", "timing"
        )
    bins = check_bins(bins)
    bold = result.bold  # (B, D, T, N)
    B, D, T, N = bold.shape
    if T < timing.fcd_window + 1:
        raise InvalidInputError(
            f"the FCD window of {timing.fcd_window} frames needs at least {timing.fcd_window + 1} "
            f"frames, but the result has {T}: pass the timing the result was simulated with",
            "timing",
        )
    valid = result.valid
    flat = bold.reshape(B * D, T, N)
    # FC chunk by chunk like the FCD: bold_fc of the whole batch would hold two float64 copies
    # of the BOLD (4x the float32 BOLD) on top of it, breaking the memory bound documented above
    fc = torch.empty((B * D, N, N), dtype=bold.dtype, device=bold.device)
    fused = bold.device.type == "cpu" and _cpu_kernel() is not None
    products = fcd_products or fcd_product_dtype(bold.dtype, bold.device)
    per_sim = fcd_bytes_per_simulation(
        T, N, timing.fcd_window, bold.element_size(), fused=fused, bf16=products == torch.bfloat16
    )
    if memory_budget is None:
        memory_budget = fcd_memory_budget(bold.device)
    chunk = max(1, memory_budget // per_sim)
    hist = torch.empty((B * D, bins), dtype=torch.float64, device=bold.device)
    scratch = FCDScratch()  # one set of buffers for all chunks (no page faults per chunk)
    for s0 in range(0, B * D, chunk):
        fc[s0 : s0 + chunk] = bold_fc(flat[s0 : s0 + chunk])
        hist[s0 : s0 + chunk] = fcd_histogram(
            flat[s0 : s0 + chunk], timing.fcd_window, bins, dtype=products, scratch=scratch
        )
    hist = hist.reshape(B, D, bins)
    fc = fc.reshape(B, D, N, N)
    mask = valid[..., None]
    fc_mean = result.mean_over_valid(fc)
    hist_mean = torch.where(mask, hist, 0.0).sum(dim=1) / mask.sum(dim=1)
    cdf = histogram_to_cdf(hist_mean)
    summary = Summary(fc=fc_mean.to(bold.dtype), fcd_cdf=cdf.to(bold.dtype), valid=result.valid_set)
    return summary, fc, hist
