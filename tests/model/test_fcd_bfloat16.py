"""FCD products with bfloat16 inputs: the compiled kernel and its fallback against numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delssome_norms.errors import InvalidInputError
from delssome_norms.model import FCD_BINS, _kernel, fcd_histogram
from delssome_norms.model import summary as summary_mod

HAS_BF16_KERNEL = _kernel.has_bf16_fcd()


def _bold(rng, T, N):
    """Regional BOLD with slowly changing coupling, so that the FCD spreads over many bins."""
    x = rng.standard_normal((T, N))
    drift = np.sin(np.linspace(0, 6 * np.pi, T))[:, None] * rng.standard_normal(N)
    return x + 1.5 * drift


def _rounded_numpy_counts(x, w, bins=FCD_BINS):
    """Strict-upper FCD counts from window-FC vectors built in numpy, standardised, rounded to
    bfloat16 (round to nearest even) and multiplied in float64."""
    T, N = x.shape
    iu = np.triu_indices(N, 1)
    vecs = np.array([np.corrcoef(x[t : t + w].T)[iu] for t in range(T - w + 1)])
    vecs -= vecs.mean(axis=1, keepdims=True)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    bits = vecs.astype(np.float32).view(np.uint32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16 << 16).astype(np.uint32).view(np.float32)
    fcd = rounded.astype(np.float64) @ rounded.astype(np.float64).T
    vals = fcd[np.triu_indices(len(vecs), 1)]
    idx = np.clip(np.floor((vals + 1.0) * (bins / 2)).astype(np.int64), 0, bins - 1)
    return np.bincount(idx, minlength=bins)


def _paths():
    kernel = pytest.param(
        "kernel",
        marks=pytest.mark.skipif(not HAS_BF16_KERNEL, reason="CPU kernel without AVX512-BF16 here"),
    )
    return [kernel, "fallback"]


@pytest.mark.parametrize("path", _paths())
@pytest.mark.parametrize(("T", "N", "w"), [(250, 12, 20), (160, 11, 15), (130, 3, 9)])
def test_bfloat16_fcd_matches_rounded_inputs(path, T, N, w, monkeypatch):
    # W = 231, 146, 122 windows (several 96-row blocks, partial tiles); P = 66, 55, 3 (odd P)
    if path == "fallback":
        monkeypatch.setattr(summary_mod, "_bf16_kernel_histogram", lambda *a: None)
    rng = np.random.default_rng(T + N)
    x = np.stack([_bold(rng, T, N) for _ in range(3)])
    x[1, T // 2, 1] = np.nan
    got = fcd_histogram(torch.tensor(x, dtype=torch.float32), w, dtype=torch.bfloat16)
    assert torch.isnan(got[1]).all()  # a non-finite simulation is flagged, the others are not
    for s in (0, 2):
        want = _rounded_numpy_counts(x[s], w)
        assert got[s].sum().item() == want.sum()
        # the same rounded values land in the same bins; float32 sums may move a value that
        # lies within ~1e-7 of a bin edge by one bin
        moved = np.abs(np.cumsum(got[s].numpy()) - np.cumsum(want)).max()
        assert moved <= max(2, 2e-4 * want.sum())


def test_bfloat16_fcd_cdf_is_within_1e_3_of_float64():
    rng = np.random.default_rng(7)
    x = torch.tensor(_bold(rng, 400, 20))[None]
    c64 = torch.cumsum(fcd_histogram(x, 30, dtype=torch.float64)[0], 0)
    cb = torch.cumsum(fcd_histogram(x.float(), 30, dtype=torch.bfloat16)[0], 0)
    assert (c64 - cb).abs().max().item() / c64[-1].item() < 1e-3


def test_fcd_product_dtype(monkeypatch):
    pick = summary_mod.fcd_product_dtype
    assert pick(torch.float64, "cpu") == torch.float64
    assert pick(torch.float32, "cuda") == torch.float32  # only a device type, nothing runs
    monkeypatch.delenv(summary_mod.FCD_PRODUCTS_ENV, raising=False)
    assert pick(torch.float32, "cpu") == (torch.bfloat16 if HAS_BF16_KERNEL else torch.float32)
    monkeypatch.setenv(summary_mod.FCD_PRODUCTS_ENV, "float32")
    assert pick(torch.float32, "cpu") == torch.float32
    monkeypatch.setenv(summary_mod.FCD_PRODUCTS_ENV, " BFloat16 ")
    assert pick(torch.float32, "cpu") == pick(torch.float32, "cuda") == torch.bfloat16
    assert pick(torch.float64, "cpu") == torch.float64  # float64 simulations stay float64
    monkeypatch.setenv(summary_mod.FCD_PRODUCTS_ENV, "fp16")
    with pytest.raises(InvalidInputError, match=r"DELSSOME_NORMS_FCD_PRODUCTS.*'fp16'"):
        pick(torch.float32, "cpu")
    monkeypatch.setenv("DELSSOME_NORMS_NO_KERNEL", "1")
    monkeypatch.delenv(summary_mod.FCD_PRODUCTS_ENV)
    assert pick(torch.float32, "cpu") == torch.float32


@pytest.mark.skipif(not HAS_BF16_KERNEL, reason="CPU kernel without AVX512-BF16 here")
def test_memory_estimate_matches_the_kernel_layout():
    import ctypes

    lib = _kernel.load()
    lib.pfic_fcd_bf16_scratch_words.restype = ctypes.c_int64
    for T, N, w in [(1200, 68, 83), (250, 12, 20), (130, 3, 9)]:
        W, P = T - w + 1, N * (N - 1) // 2
        extra = summary_mod.fcd_bytes_per_simulation(T, N, w, 4, bf16=True) - W * P * 4
        assert extra == 4 * lib.pfic_fcd_bf16_scratch_words(W, P)


def test_summarize_uses_the_requested_fcd_products():
    from model_helpers import random_params

    from delssome_norms.model import SimulationTiming, histogram_to_cdf, scale_sc, simulate, summarize

    rng = np.random.default_rng(0)
    sc = rng.random((8, 8))
    sc = scale_sc(sc + sc.T - 2 * np.diag(np.diag(sc)))
    timing = SimulationTiming(
        tr=0.72, scan_length=72.0, dt=0.005, burn_in=1.44, fcd_window=10, warmup_steps=100
    )
    res = simulate(random_params(rng, 2, 8, stable=True), sc, timing, n_dup=1, seed=0)
    bold = res.bold[:, 0]
    for products in (torch.float32, torch.bfloat16):
        want = histogram_to_cdf(fcd_histogram(bold, timing.fcd_window, dtype=products))
        got = summarize(res, timing, fcd_products=products).fcd_cdf
        torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-6)
    default = summarize(res, timing).fcd_cdf
    chosen = summary_mod.fcd_product_dtype(torch.float32, "cpu")
    want = histogram_to_cdf(fcd_histogram(bold, timing.fcd_window, dtype=chosen))
    torch.testing.assert_close(default.double(), want, rtol=0, atol=1e-6)


@pytest.mark.skipif(not HAS_BF16_KERNEL, reason="CPU kernel without AVX512-BF16 here")
def test_kernel_counts_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(11)
    x = torch.tensor(np.stack([_bold(rng, 300, 14) for _ in range(5)]), dtype=torch.float32)
    before = torch.get_num_threads()
    try:
        counts = []
        for n in (1, 3, 8):
            torch.set_num_threads(n)
            counts.append(fcd_histogram(x, 25, dtype=torch.bfloat16))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(counts[0], counts[1]) and torch.equal(counts[0], counts[2])
    assert (counts[0].sum(dim=1) == (276 * 275) // 2).all()
