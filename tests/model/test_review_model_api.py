"""The public model API as a modeller calls it: input forms, dtypes, engines, summaries and errors.

Every number is checked against an independent recomputation (numpy Pearson correlations and
histograms) or an exact expectation; every refusal against its specific error.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import delssome_norms
from delssome_norms.errors import InvalidInputError
from delssome_norms.model import (
    PFICParams,
    SimulationTiming,
    bold_fc,
    bold_fcd_cdf,
    cost,
    scale_sc,
    simulate,
    summarize,
)
from delssome_norms.model import batch as batch_module
from delssome_norms.model.batch import simulation_bytes

N = 6
TIMING = SimulationTiming(tr=0.72, scan_length=14.4, dt=0.006, burn_in=0.72, fcd_window=5,
                          warmup_steps=50)  # fmt: skip


def _sc() -> np.ndarray:
    rng = np.random.default_rng(3)
    a = rng.random((N, N))
    a = a + a.T
    np.fill_diagonal(a, 0.0)
    return scale_sc(a)


def _params(n_sets: int = 2, sigma: float = 0.01) -> PFICParams:
    wee = np.linspace(2.0, 4.0, N)[None].repeat(n_sets, 0)
    wei = np.linspace(1.5, 2.5, N)[None].repeat(n_sets, 0)
    return PFICParams(wee, wei, np.full((n_sets, N), sigma), np.linspace(1.0, 0.5, n_sets))


# --------------------------------------------------------------------------------------------- #
# input forms
# --------------------------------------------------------------------------------------------- #
def test_single_set_lists_and_devices_give_the_batch_numbers() -> None:
    sc = _sc()
    p = _params()
    ref = simulate(p, sc, TIMING, n_dup=2, seed=4, engine="kernel")
    # one set as (N,) lists and a scalar G: the kernel's noise depends on (seed, simulation), so
    # set 0 alone is bit-identical to set 0 of the batch
    one = PFICParams(p.wEE[0].tolist(), p.wEI[0].tolist(), p.sigma[0].tolist(), float(p.G[0]))
    alone = simulate(one, sc.tolist(), TIMING, n_dup=2, seed=4, engine="kernel")
    assert alone.bold.shape == (1, 2, TIMING.n_frames, N)
    assert torch.equal(alone.bold[0], ref.bold[0])
    # G as a list, (B, 1) array; the device as a string, a torch.device or None
    for G in (list(p.G), p.G[:, None]):
        other = simulate(p._replace(G=G), sc, TIMING, n_dup=2, seed=4, engine="kernel")
        assert torch.equal(other.bold, ref.bold)
    for device in ("cpu", torch.device("cpu"), None):
        again = simulate(p, sc, TIMING, n_dup=2, seed=4, engine="kernel", device=device)
        assert torch.equal(again.bold, ref.bold)
    # float64 tensors carry the same values as the float64 arrays
    as_t = PFICParams(*(torch.as_tensor(np.asarray(x)) for x in p))
    assert torch.equal(simulate(as_t, torch.as_tensor(sc), TIMING, n_dup=2, seed=4).bold, ref.bold)


@pytest.mark.parametrize("dtype", [torch.float64, "float64", "torch.float64", np.float64])
def test_dtype_by_torch_dtype_name_or_numpy(dtype) -> None:
    r = simulate(_params(1), _sc(), TIMING, n_dup=1, seed=0, dtype=dtype)
    assert r.bold.dtype == torch.float64 and r.s_e.dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.float16, "float16", np.int32, "double precision"])
def test_other_dtypes_are_refused(dtype) -> None:
    with pytest.raises(InvalidInputError, match=re.escape("float32 or torch.float64")):
        simulate(_params(1), _sc(), TIMING, n_dup=1, dtype=dtype)


# --------------------------------------------------------------------------------------------- #
# seeds, duplicates, precision
# --------------------------------------------------------------------------------------------- #
def test_float32_and_float64_give_the_same_ei_ratio_for_the_same_seed() -> None:
    p, sc = _params(), _sc()
    r32 = simulate(p, sc, TIMING, n_dup=2, seed=9, engine="kernel", dtype=torch.float32)
    r64 = simulate(p, sc, TIMING, n_dup=2, seed=9, engine="kernel", dtype=torch.float64)
    a = r32.ei_ratio.double().flatten().numpy()
    b = r64.ei_ratio.flatten().numpy()
    assert np.corrcoef(a, b)[0, 1] >= 0.999
    np.testing.assert_allclose(a, b, rtol=1e-4)
    # the same Philox draws: BOLD agrees to float32 rounding, far below the noise's effect
    dup_spread = float((r64.bold[:, 0] - r64.bold[:, 1]).abs().max())
    assert float((r32.bold.double() - r64.bold).abs().max()) < 1e-3 * dup_spread


@pytest.mark.parametrize("engine", ["kernel", "torch"])
def test_seeds_and_duplicates(engine) -> None:
    p, sc = _params(1), _sc()
    a = simulate(p, sc, TIMING, n_dup=3, seed=5, engine=engine)
    b = simulate(p, sc, TIMING, n_dup=3, seed=5, engine=engine)
    c = simulate(p, sc, TIMING, n_dup=3, seed=6, engine=engine)
    assert torch.equal(a.bold, b.bold) and torch.equal(a.s_e, b.s_e)
    assert float((a.bold - c.bold).abs().max()) > 1e-3
    assert a.n_dup == 3 and a.valid.shape == (1, 3)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert float((a.bold[0, i] - a.bold[0, j]).abs().max()) > 1e-3
    # E/I is the mean over duplicates of the per-duplicate ratio of time averages
    np.testing.assert_allclose(a.ei_ratio.numpy(), (a.s_e / a.s_i).mean(dim=1).numpy(), rtol=1e-6)


def test_torch_engine_uses_other_noise_with_the_same_statistics() -> None:
    """Documented: the torch engine's stream differs from the kernel's; E/I is a time average
    that the noise barely moves (both engines stay within 1 % of each other)."""
    p, sc = _params(), _sc()
    k = simulate(p, sc, TIMING, n_dup=2, seed=1, engine="kernel")
    t = simulate(p, sc, TIMING, n_dup=2, seed=1, engine="torch")
    assert not torch.equal(k.bold, t.bold)
    np.testing.assert_allclose(t.ei_ratio.numpy(), k.ei_ratio.numpy(), rtol=1e-2)
    np.testing.assert_allclose(t.r_e.mean().item(), 3.0, rtol=0.05)  # FIC target rate [Hz]


# --------------------------------------------------------------------------------------------- #
# summaries and cost against numpy
# --------------------------------------------------------------------------------------------- #
def _numpy_fcd_histogram(x: np.ndarray, window: int, bins: int = 10000) -> np.ndarray:
    iu = np.triu_indices(x.shape[1], 1)
    vecs = np.array([np.corrcoef(x[a : a + window].T)[iu] for a in range(len(x) - window + 1)])
    fcd = np.corrcoef(vecs)
    values = fcd[np.triu_indices(len(vecs), 1)]
    return np.histogram(values, bins=bins, range=(-1.0, 1.0))[0]


def test_summarize_and_cost_equal_an_independent_numpy_computation() -> None:
    timing = SimulationTiming(tr=0.72, scan_length=28.8, dt=0.006, burn_in=0.72, fcd_window=5,
                              warmup_steps=50)  # fmt: skip
    r = simulate(_params(sigma=0.02), _sc(), timing, n_dup=3, seed=1, dtype=torch.float64)
    assert bool(r.valid.all())
    s = summarize(r, timing)
    bold = r.bold.numpy()
    B, D = bold.shape[:2]
    fc = np.array([[np.corrcoef(bold[b, d].T) for d in range(D)] for b in range(B)]).mean(axis=1)
    np.testing.assert_allclose(s.fc.numpy(), fc, atol=1e-12)
    hist = np.array([[_numpy_fcd_histogram(bold[b, d], 5) for d in range(D)] for b in range(B)])
    cdf = np.cumsum(hist.mean(axis=1), axis=1)
    cdf /= cdf[:, -1:]
    np.testing.assert_allclose(s.fcd_cdf.numpy(), cdf, atol=1e-12)
    # an "empirical" run: FC and FCD-CDF from the public single-run functions
    emp_fc = bold_fc(bold[0, 0]).numpy()
    emp_cdf = bold_fcd_cdf(bold[1, 2], 5).numpy()
    h = _numpy_fcd_histogram(bold[1, 2], 5)
    np.testing.assert_allclose(emp_cdf, np.cumsum(h) / h.sum(), atol=1e-12)
    losses = cost(s, emp_fc, emp_cdf)
    iu = np.triu_indices(N, 1)
    for b in range(B):
        sim, emp = fc[b][iu], emp_fc[iu]
        assert losses.corr[b].item() == pytest.approx(1 - np.corrcoef(sim, emp)[0, 1], abs=1e-12)
        assert losses.l1[b].item() == pytest.approx(abs(sim.mean() - emp.mean()), abs=1e-12)
        assert losses.ks[b].item() == pytest.approx(np.abs(cdf[b] - emp_cdf).max(), abs=1e-12)
    total = losses.corr + losses.l1 + losses.ks
    assert torch.equal(losses.total, total)


def test_summarize_gives_the_same_numbers_in_any_chunking() -> None:
    r = simulate(_params(3), _sc(), TIMING, n_dup=2, seed=2)
    whole = summarize(r, TIMING, fcd_products=torch.float32)
    one_by_one = summarize(r, TIMING, memory_budget=1, fcd_products=torch.float32)
    assert torch.equal(whole.fc, one_by_one.fc)
    assert torch.equal(whole.fcd_cdf, one_by_one.fcd_cdf)
    fc = bold_fc(r.bold.reshape(-1, TIMING.n_frames, N)).reshape(3, 2, N, N).mean(dim=1)
    torch.testing.assert_close(whole.fc, fc, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------------------------- #
# errors
# --------------------------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"block_steps": 0}, "block_steps must be an integer >= 1"),
        ({"block_steps": -3}, "block_steps must be an integer >= 1"),
        ({"block_steps": 2.5}, "block_steps must be an integer >= 1"),
        ({"n_dup": 0}, "n_dup must be an integer >= 1"),
        ({"seed": -1}, "seed must be an integer"),
        ({"engine": "numba"}, "engine must be one of"),
    ],
)
def test_bad_options_are_refused(kwargs, words) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        simulate(_params(1), _sc(), TIMING, engine=kwargs.pop("engine", "torch"), **kwargs)


def test_timing_must_be_a_simulation_timing() -> None:
    with pytest.raises(InvalidInputError, match="timing must be a SimulationTiming, got float"):
        simulate(_params(1), _sc(), 0.72)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"wEE": np.full((2, N), np.nan)}, "wEE contains NaN or inf"),
        ({"sigma": np.full((2, N), -0.01)}, "sigma must be >= 0"),
        ({"wEE": np.full((2, N), -1.0)}, "wEE must be >= 0 (got -1)"),
        ({"wEI": np.full((2, N), -0.5)}, "wEI must be >= 0 (got -0.5)"),
        ({"G": np.array([1.0, -2.0])}, "G must be >= 0 (got -2)"),
        ({"wEI": np.full((2, N - 1), 2.0)}, f"wEE has (2, {N}) but wEI has (2, {N - 1})"),
        ({"G": 1.0}, "G must have shape (2,)"),
    ],
)
def test_bad_parameters_are_refused(change, words) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        simulate(_params()._replace(**change), _sc(), TIMING, n_dup=1)


@pytest.mark.parametrize(
    ("sc", "words"),
    [
        (-_sc(), "sc must be non-negative"),
        (_sc()[:, :5], f"sc must have shape ({N}, {N})"),
        (_sc()[:5, :5], f"sc must have shape ({N}, {N})"),
        (np.stack([_sc()] * 3), f"or (2, {N}, {N}), got (3, {N}, {N})"),
    ],
)
def test_bad_sc_is_refused(sc, words) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        simulate(_params(), sc, TIMING, n_dup=1)


@pytest.mark.parametrize(
    ("sc", "kwargs", "words"),
    [
        (np.zeros((3, 3)), {}, "no positive entry"),
        (np.full((3, 3), np.nan), {}, "NaN or inf"),
        (np.ones((3, 2)), {}, "shape (N, N) or (B, N, N)"),
        (np.ones((3, 3)), {"max_value": 0.0}, "max_value must be a positive number"),
    ],
)
def test_scale_sc_refuses_what_it_cannot_scale(sc, kwargs, words) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(words)):
        scale_sc(sc, **kwargs)


def test_scale_sc_keeps_the_type_and_scales_each_matrix() -> None:
    m = np.array([[[0.0, 4.0], [2.0, 0.0]], [[0.0, 1.0], [0.5, 0.0]]])
    out = scale_sc(m)
    assert isinstance(out, np.ndarray)
    np.testing.assert_allclose(out, m / np.array([4.0, 1.0])[:, None, None] * 0.02)
    t = scale_sc(torch.tensor(m, dtype=torch.float32), max_value=1.0)
    assert t.dtype == torch.float32
    torch.testing.assert_close(t, torch.tensor(m / np.array([4.0, 1.0])[:, None, None]).float())
    assert isinstance(scale_sc([[0, 1], [1, 0]]), np.ndarray)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
@pytest.mark.parametrize("device", ["cuda", torch.device("cuda:0")])
def test_cuda_without_cuda_is_one_clear_error(device) -> None:
    with pytest.raises(InvalidInputError, match="CUDA is not available on this machine"):
        simulate(_params(1), _sc(), TIMING, device=device)


def test_no_hard_coded_cuda_calls_in_the_package() -> None:
    root = Path(delssome_norms.__file__).parent
    hits = [
        f"{path.relative_to(root)}:{i}"
        for path in root.rglob("*.py")
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.cuda\(\s*\)", line)
    ]
    assert hits == []


# --------------------------------------------------------------------------------------------- #
# memory
# --------------------------------------------------------------------------------------------- #
def test_simulation_bytes_covers_the_outputs() -> None:
    T = TIMING.n_frames
    need = simulation_bytes(12, N, T, 4)
    assert need >= 2 * 12 * T * N * 4  # engine output + assembled (B, D, T, N) BOLD
    assert simulation_bytes(12, N, T, 8) > need
    assert simulation_bytes(12, N, T, 4, per_set_sc=True) == need + 12 * N * N * 4


def test_a_batch_larger_than_memory_is_refused_before_allocating() -> None:
    # 1e9 duplicates of 6 regions need terabytes; refused from the shapes alone (instantly)
    with pytest.raises(InvalidInputError, match=r"needs at least .* GiB, more than the") as err:
        simulate(_params(1), _sc(), TIMING, n_dup=10**9)
    assert "fewer duplicates" in str(err.value)


def test_the_memory_check_names_a_batch_that_fits(monkeypatch) -> None:
    per_set = simulation_bytes(2, N, TIMING.n_frames, 4)
    monkeypatch.setattr(batch_module, "device_total_memory", lambda device: 10 * per_set)
    with pytest.raises(InvalidInputError, match="simulate at most about 5 parameter set"):
        simulate(_params(11), _sc(), TIMING, n_dup=2)
    r = simulate(_params(10), _sc(), TIMING, n_dup=2)  # exactly the total: allowed
    assert r.bold.shape == (10, 2, TIMING.n_frames, N)
