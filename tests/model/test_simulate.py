"""The batched simulator: shapes, reproducibility, duplicates, invalid sets, dtypes and engines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from model_helpers import random_params

from delssome_norms.errors import InvalidInputError
from delssome_norms.model import PFICParams, SimulationTiming, cost, scale_sc, simulate, summarize

TIMING = SimulationTiming(
    tr=0.72, scan_length=14.4, dt=0.005, burn_in=1.44, fcd_window=5, warmup_steps=100
)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(0)
    N = 6
    sc = rng.random((N, N))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    params = random_params(rng, 3, N, stable=True)
    return scale_sc(sc), params


def test_shapes_and_finiteness(small):
    sc, params = small
    res = simulate(params, sc, TIMING, n_dup=2, seed=0, engine="torch")
    B, D, T, N = 3, 2, TIMING.n_frames, 6
    assert res.bold.shape == (B, D, T, N) and T == 20
    assert res.s_e.shape == res.s_i.shape == res.r_e.shape == (B, D, N)
    assert res.valid.shape == (B, D) and res.valid.all() and res.valid_set.all()
    assert res.ei_ratio.shape == (B, N) and torch.isfinite(res.ei_ratio).all()
    np.testing.assert_allclose(res.ei_ratio.numpy(), (res.s_e / res.s_i).mean(1).numpy(), rtol=1e-6)
    summ = summarize(res, TIMING)
    assert summ.fc.shape == (B, N, N) and summ.fcd_cdf.shape == (B, 10000)
    np.testing.assert_allclose(summ.fcd_cdf[:, -1].numpy(), 1.0)


@pytest.mark.parametrize("engine", ["torch", "auto"])
def test_seeded_noise_is_reproducible_and_duplicates_differ(small, engine):
    sc, params = small
    a = simulate(params, sc, TIMING, n_dup=2, seed=5, engine=engine)
    b = simulate(params, sc, TIMING, n_dup=2, seed=5, engine=engine)
    c = simulate(params, sc, TIMING, n_dup=2, seed=6, engine=engine)
    assert torch.equal(a.bold, b.bold) and torch.equal(a.s_e, b.s_e)
    assert not torch.equal(a.bold, c.bold)
    assert not torch.allclose(a.bold[:, 0], a.bold[:, 1])


def test_a_blown_up_set_is_invalid_and_does_not_poison_the_others(small):
    sc, params = small
    sigma_bad = params.sigma.copy()
    sigma_bad[1] = 20.0  # noise of 1.4 per step in S_E, S_I: the rates overflow
    bad = params._replace(sigma=sigma_bad)
    good_run = simulate(params, sc, TIMING, n_dup=2, seed=3, engine="torch")
    bad_run = simulate(bad, sc, TIMING, n_dup=2, seed=3, engine="torch")
    assert not bad_run.valid[1].any() and bad_run.valid[[0, 2]].all()
    assert torch.isnan(bad_run.ei_ratio[1]).all()
    for b in (0, 2):  # same noise draws, so the other sets are bit-identical
        assert torch.equal(bad_run.bold[b], good_run.bold[b])
        assert torch.equal(bad_run.ei_ratio[b], good_run.ei_ratio[b])
    summ = summarize(bad_run, TIMING)
    emp_fc = np.corrcoef(np.random.default_rng(0).standard_normal((6, 30)))
    loss = cost(summ, emp_fc, np.linspace(0, 1, 10000))
    assert np.isnan(loss.total[1].item()) and torch.isfinite(loss.total[[0, 2]]).all()


def test_float32_and_float64_agree_statistically(small):
    sc, params = small
    r32 = simulate(params, sc, TIMING, n_dup=4, seed=1, dtype=torch.float32, engine="torch")
    r64 = simulate(params, sc, TIMING, n_dup=4, seed=1, dtype=torch.float64, engine="torch")
    assert r32.bold.dtype == torch.float32 and r64.bold.dtype == torch.float64
    np.testing.assert_allclose(r32.ei_ratio.double().numpy(), r64.ei_ratio.numpy(), rtol=0.05)


def test_per_set_sc_equals_shared_sc(small):
    sc, params = small
    shared = simulate(params, sc, TIMING, n_dup=1, seed=2, dtype=torch.float64, engine="torch")
    batched = simulate(
        params, np.stack([sc] * 3), TIMING, n_dup=1, seed=2, dtype=torch.float64, engine="torch"
    )
    torch.testing.assert_close(shared.bold, batched.bold)


def test_bad_inputs_raise_invalid_input_error(small):
    sc, params = small
    with pytest.raises(InvalidInputError, match="sigma"):
        simulate(params._replace(sigma=params.sigma[:, :3]), sc, TIMING)
    with pytest.raises(InvalidInputError, match="sc"):
        simulate(params, sc[:5, :5], TIMING)
    with pytest.raises(InvalidInputError, match="NaN"):
        simulate(params._replace(wEE=np.full((3, 6), np.nan)), sc, TIMING)
    with pytest.raises(InvalidInputError):
        SimulationTiming(tr=0.72, scan_length=3.6, fcd_window=10)
    with pytest.raises(InvalidInputError, match="engine must be one of"):
        simulate(params, sc, TIMING, engine="fast")


def test_the_gpu_kernel_is_refused_on_cpu_tensors_with_a_clear_error(small, monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    sc, params = small
    with pytest.raises(InvalidInputError, match="'triton' engine needs a CUDA device"):
        simulate(params, sc, TIMING, engine="triton")


def test_single_parameter_set_may_be_given_without_batch_axis(small):
    sc, params = small
    one = PFICParams(params.wEE[0], params.wEI[0], params.sigma[0], float(params.G[0]))
    res = simulate(one, sc, TIMING, n_dup=1, seed=0, engine="torch")
    assert res.bold.shape[:2] == (1, 1)


def test_timing_reproduces_the_reference_indexing():
    demo = SimulationTiming(tr=0.72, scan_length=60.0, dt=0.006, burn_in=6.0, fcd_window=10)
    assert (demo.n_steps, demo.steps_per_tr, demo.n_drop, demo.n_frames) == (11001, 120, 9, 83)
    assert demo.sample_steps[0] == 118
    hcp = SimulationTiming(tr=0.72, scan_length=864.0, dt=0.005)
    assert (hcp.burn_in, hcp.fcd_window, hcp.n_steps, hcp.n_frames) == (72.0, 83, 187201, 1200)
    assert SimulationTiming(tr=0.72, scan_length=864.0, dt=0.0005).n_frames == 1200


def _noise_source(timing, M, N, dtype):
    g = torch.Generator().manual_seed(11)
    xi = torch.randn(timing.total_steps, 2, M, N, generator=g, dtype=dtype)
    return lambda first, n: xi[first : first + n]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("per_set_sc", [False, True])
def test_fused_cpu_kernel_matches_the_torch_loop_on_identical_noise(small, dtype, per_set_sc):
    from delssome_norms.model import _kernel
    from delssome_norms.model.integrate import prepare_batch, run_torch

    if not _kernel.available():
        pytest.skip("no C++ compiler for the fused kernel")
    sc, params = small
    p = prepare_batch(params, np.stack([sc] * 3) if per_set_sc else sc, TIMING.dt, 7, "cpu", dtype)
    noise = _noise_source(TIMING, 21, 6, dtype)  # 21 simulations: two SIMD groups, one padded
    b1, s1, f1 = run_torch(p, TIMING, 0, dtype, torch.device("cpu"), noise_fn=noise, block_steps=97)
    b2, s2, f2 = _kernel.run_kernel(p, TIMING, 0, noise_fn=noise, chunk_steps=150)
    tol = 1e-11 if dtype == torch.float64 else 2e-5
    assert f1.all() and f2.all()
    torch.testing.assert_close(b2, b1, rtol=tol, atol=tol * b1.abs().max().item())
    torch.testing.assert_close(s2, s1, rtol=tol, atol=0.0)


def test_static_block_engine_matches_the_torch_loop(small):
    from delssome_norms.model.graphed import run_torch_graphed
    from delssome_norms.model.integrate import prepare_batch, run_torch

    sc, params = small
    timing = SimulationTiming(
        tr=0.72, scan_length=14.4, dt=0.005, burn_in=1.44, fcd_window=5, warmup_steps=170
    )
    p = prepare_batch(params, sc, timing.dt, 2, "cpu", torch.float64)
    noise = _noise_source(timing, 6, 6, torch.float64)
    b1, s1, _ = run_torch(p, timing, 0, torch.float64, torch.device("cpu"), noise_fn=noise)
    # blocks of 2 TRs: 170 warm-up steps = 2 blocks + 26 plain steps; the recorded tail is plain
    b2, s2, _ = run_torch_graphed(p, timing, 0, noise_fn=noise, capture=False, block_steps=144)
    torch.testing.assert_close(b2, b1, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s2, s1, rtol=1e-12, atol=1e-12)


def test_kernel_noise_is_standard_normal():
    import ctypes

    from scipy import stats

    from delssome_norms.model import _kernel

    if not _kernel.available():
        pytest.skip("no C++ compiler for the fused kernel")
    lib = _kernel.load()
    n = 20000
    out = np.empty(n * 64, dtype=np.float32)
    lib.pfic_normals_f32(ctypes.c_uint64(3), ctypes.c_int64(n), out.ctypes.data_as(ctypes.c_void_p))
    assert abs(out.mean()) < 0.01 and abs(out.std() - 1) < 0.01
    assert stats.kstest(out, "norm").pvalue > 1e-3
    assert abs(np.corrcoef(out[:-1], out[1:])[0, 1]) < 0.01


def test_kernel_math_functions_are_accurate():
    import ctypes

    from delssome_norms.model import _kernel

    if not _kernel.available():
        pytest.skip("no C++ compiler for the fused kernel")
    lib = _kernel.load()
    x = np.concatenate([np.linspace(-80, 80, 20001), np.linspace(-1e-3, 1e-3, 1001)])
    x = np.concatenate([x, [0.0, np.inf, -np.inf, np.nan, -1.0, 1e3, -1e3]])
    for dtype, fn, rtol in (
        (np.float32, lib.pfic_math_f32, 3e-7),
        (np.float64, lib.pfic_math_f64, 2e-15),
    ):
        xs = x.astype(dtype)
        e, m, lg = (np.empty_like(xs) for _ in range(3))
        ptrs = [a.ctypes.data_as(ctypes.c_void_p) for a in (xs, e, m, lg)]
        fn(ctypes.c_int64(len(xs)), *ptrs)
        xd = xs.astype(np.float64)
        with np.errstate(all="ignore"):
            want_e, want_m, want_l = np.exp(xd), np.expm1(xd), np.log(xd)
        ok = np.isfinite(want_e) & (want_e > 1e-30) & (want_e < 1e30)
        np.testing.assert_allclose(e[ok], want_e[ok], rtol=rtol)
        np.testing.assert_allclose(m[ok], want_m[ok], rtol=3 * rtol)
        pos = (xd > 1e-30) & np.isfinite(xd)
        np.testing.assert_allclose(lg[pos], want_l[pos], rtol=rtol, atol=rtol)
        # IEEE special values: overflow to inf, underflow to 0, NaN stays NaN
        assert np.isposinf(e[-6]) and e[-5] == 0 and np.isnan(e[-4]) and np.isnan(m[-4])
        assert np.isnan(lg[-3]) and np.isneginf(lg[-7])
        if dtype == np.float32:  # the minimax polynomials: within ~1 ulp (exp) and ~3 ulp (log)
            ulp = lambda want: np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)  # noqa: E731
            assert np.max(np.abs(e[ok] - want_e[ok]) / ulp(want_e[ok])) <= 1.5
            assert np.max(np.abs(lg[pos] - want_l[pos]) / ulp(want_l[pos])) <= 3.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_graph_engine_matches_the_cuda_loop(small):
    from delssome_norms.model.graphed import run_torch_graphed
    from delssome_norms.model.integrate import prepare_batch, run_torch

    sc, params = small
    p = prepare_batch(params, sc, TIMING.dt, 2, "cuda", torch.float64)
    xi = _noise_source(TIMING, 6, 6, torch.float64)
    noise = lambda first, n: xi(first, n).cuda()  # noqa: E731
    b1, s1, _ = run_torch(p, TIMING, 0, torch.float64, torch.device("cuda"), noise_fn=noise)
    b2, s2, _ = run_torch_graphed(p, TIMING, 0, noise_fn=noise, capture=True, block_steps=72)
    torch.testing.assert_close(b2, b1, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(s2, s1, rtol=1e-10, atol=1e-10)
    res = simulate(params, sc, TIMING, n_dup=2, seed=0, device="cuda")
    assert res.bold.is_cuda and res.valid.all()
    loss = cost(
        summarize(res, TIMING),
        np.corrcoef(np.random.default_rng(0).random((6, 20))),
        np.linspace(0, 1, 10000),
    )
    assert torch.isfinite(loss.total).all()


# Random123 known-answer vectors for Philox4x32-10: counter, key -> output
PHILOX_KAT = (
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
)


def _philox16(lib, counter, key, generic: bool) -> np.ndarray:
    import ctypes

    out = np.empty((4, 16), dtype=np.uint32)
    u32 = ctypes.c_uint32
    lib.pfic_philox16(*(u32(c) for c in counter), *(u32(k) for k in key), ctypes.c_int32(generic),
                      out.ctypes.data_as(ctypes.c_void_p))  # fmt: skip
    return out


def test_kernel_philox_matches_known_answers_in_every_code_path():
    from delssome_norms.model import _kernel

    if not _kernel.available():
        pytest.skip("no C++ compiler for the fused kernel")
    lib = _kernel.load()
    for counter, key, want in PHILOX_KAT:
        for generic in (True, False):  # lane 0 carries the counter as given
            assert tuple(_philox16(lib, counter, key, generic)[:, 0]) == want
    rng = np.random.default_rng(0)
    for _ in range(50):  # the vectorised path (AVX-512/AVX2 where built) equals the reference loop
        counter, key = rng.integers(0, 2**32, 4), rng.integers(0, 2**32, 2)
        np.testing.assert_array_equal(
            _philox16(lib, counter, key, False), _philox16(lib, counter, key, True)
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kernel_results_do_not_depend_on_the_lane_width(small, monkeypatch, dtype):
    from delssome_norms.model import _kernel

    if not _kernel.available():
        pytest.skip("no C++ compiler for the fused kernel")
    sc, params = small
    timing = SimulationTiming(
        tr=0.72, scan_length=14.4, dt=0.005, burn_in=1.44, fcd_window=5, warmup_steps=50
    )
    outs = []
    for width in _kernel.LANE_CHOICES[dtype]:
        monkeypatch.setattr(_kernel, "lanes", lambda *a, w=width, **k: w)
        res = simulate(params, sc, timing, n_dup=3, seed=4, engine="kernel", dtype=dtype)
        outs.append((res.bold, res.s_e, res.s_i))
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_lane_width_fills_the_threads():
    from delssome_norms.model._kernel import lanes

    assert lanes(torch.float32, 300, 2) == 32  # 10 groups, 5 per thread
    assert lanes(torch.float32, 96, 2) == 16  # 6 groups of 16 beat 3 of 32 (one thread idles)
    assert lanes(torch.float32, 64, 1) == 32
    assert lanes(torch.float64, 300, 2) == 16
    assert lanes(torch.float64, 9, 2) == 16  # one group of 16 run by a team of 2 threads
    assert lanes(torch.float64, 9, 2, n_regions=10) == 8  # too few regions for a team
    assert lanes(torch.float32) == 16 and lanes(torch.float64) == 8


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("teams", ["always", "probed"])
def test_kernel_thread_teams_give_the_one_thread_results(monkeypatch, dtype, teams):
    """A small batch on 2 threads runs as a team splitting the regions (always, or probed
    against one thread per group block by block; blocks of an odd number of steps): every
    number equals the one-thread run."""
    from delssome_norms.model import _kernel
    from delssome_norms.model.integrate import prepare_batch

    if not _kernel.available():
        pytest.skip("no C++ compiler for the fused kernel")
    rng = np.random.default_rng(3)
    N = 20  # >= 16: two members of >= 8 regions
    sc = rng.random((N, N))
    sc = scale_sc(sc + sc.T)
    params = random_params(rng, 1, N, stable=True)
    timing = SimulationTiming(
        tr=0.72, scan_length=28.8, dt=0.005, burn_in=1.44, fcd_window=5, warmup_steps=10
    )
    assert _kernel._TeamChoice(1, 2, N).possible and not _kernel._TeamChoice(2, 2, N).possible
    if teams == "always":
        monkeypatch.setattr(_kernel._TeamChoice, "next_block", lambda self: self.possible)
    p = prepare_batch(params, sc, timing.dt, 3, "cpu", dtype)
    one = _kernel.run_kernel(p, timing, 9, chunk_steps=777, n_threads=1)
    two = _kernel.run_kernel(p, timing, 9, chunk_steps=777, n_threads=2)
    for a, b in zip(one, two):
        torch.testing.assert_close(b, a, rtol=0, atol=0)


def test_summarize_duplicates_gives_each_duplicates_own_statistics_in_bounded_chunks(small):
    """The per-duplicate FC and FCD histogram (the surrogate's first-duplicate training data) are
    those of the duplicate computed alone, also when a tiny memory budget forces one simulation
    per chunk; the summary is summarize()'s."""
    from delssome_norms.model import bold_fc, fcd_histogram, histogram_to_cdf, summarize_duplicates

    sc, params = small
    res = simulate(params, sc, TIMING, n_dup=2, seed=5, engine="torch", dtype=torch.float64)
    summ, fc, hist = summarize_duplicates(res, TIMING, bins=50, memory_budget=1)
    ref = summarize(res, TIMING, bins=50)
    torch.testing.assert_close(summ.fc, ref.fc, rtol=0, atol=0)
    torch.testing.assert_close(summ.fcd_cdf, ref.fcd_cdf, rtol=0, atol=0)
    assert fc.shape == (3, 2, 6, 6) and hist.shape == (3, 2, 50)
    for d in range(2):
        alone = res.bold[:, d]
        torch.testing.assert_close(fc[:, d], bold_fc(alone), rtol=1e-12, atol=1e-12)
        own = fcd_histogram(alone, TIMING.fcd_window, 50, dtype=torch.float64)
        torch.testing.assert_close(hist[:, d], own.to(hist.dtype), rtol=0, atol=0)
    # the mean's CDF is the CDF of the duplicates' pooled histogram
    pooled = histogram_to_cdf(hist.sum(dim=1))
    torch.testing.assert_close(summ.fcd_cdf, pooled, rtol=1e-12, atol=1e-12)
