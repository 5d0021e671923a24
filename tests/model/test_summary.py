"""FC, FCD and the losses against direct numpy computations on hand-built BOLD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delssome_norms.model import (
    FCD_BINS,
    Summary,
    bold_fc,
    bold_fcd_cdf,
    cost,
    fcd_histogram,
    window_fc_vectors,
)


def _structured_bold(rng, T=120, N=6):
    """Two regimes: regions 0-2 co-fluctuate in the first half, regions 3-5 in the second."""
    x = rng.standard_normal((T, N))
    common = rng.standard_normal(T)
    x[: T // 2, :3] += 2 * common[: T // 2, None]
    x[T // 2 :, 3:] += 2 * common[T // 2 :, None]
    return x


def _numpy_fcd_counts(x, w, bins=FCD_BINS):
    T, N = x.shape
    iu = np.triu_indices(N, 1)
    vecs = np.array([np.corrcoef(x[t : t + w].T)[iu] for t in range(T - w + 1)])
    fcd = np.corrcoef(vecs)
    vals = fcd[np.triu_indices(len(vecs), 1)]
    counts, _ = np.histogram(vals, bins=bins, range=(-1.0, 1.0))
    return vecs, fcd, counts


def test_fc_matches_numpy_corrcoef():
    x = _structured_bold(np.random.default_rng(0))
    np.testing.assert_allclose(bold_fc(torch.tensor(x)).numpy(), np.corrcoef(x.T), atol=1e-12)
    batch = np.stack([x, x[::-1] * 2 + 1])
    np.testing.assert_allclose(bold_fc(batch)[1].numpy(), np.corrcoef(x.T), atol=1e-12)


def test_window_fc_from_cumulative_sums_matches_direct_windows():
    x = _structured_bold(np.random.default_rng(1))
    vecs, _, _ = _numpy_fcd_counts(x, 15)
    got = window_fc_vectors(torch.tensor(x)[None], 15)[0].T.numpy()
    np.testing.assert_allclose(got, vecs, atol=1e-10)


@pytest.mark.parametrize("block_rows", [512, 7])
def test_fcd_histogram_and_cdf_match_numpy(block_rows):
    x = _structured_bold(np.random.default_rng(2))
    _, fcd, counts = _numpy_fcd_counts(x, 20)
    # the structure is visible: windows of the same half correlate, across halves they do not
    assert fcd[0, 10] > 0.5 > fcd[0, -1]
    got = fcd_histogram(torch.tensor(x)[None], 20, dtype=torch.float64, block_rows=block_rows)[0]
    assert got.sum().item() == counts.sum()
    # the same values land in the same bins (a value within 1e-12 of an edge may move one bin)
    assert np.abs(np.cumsum(got.numpy()) - np.cumsum(counts)).max() <= 1
    cdf = bold_fcd_cdf(x, 20).numpy()
    np.testing.assert_allclose(cdf, np.cumsum(counts) / counts.sum(), atol=1.0 / counts.sum())
    assert cdf[-1] == 1.0


def test_float32_fcd_is_close_to_float64():
    x = torch.tensor(_structured_bold(np.random.default_rng(3), T=200, N=10))
    c64 = torch.cumsum(fcd_histogram(x[None], 30, dtype=torch.float64)[0], 0)
    c32 = torch.cumsum(fcd_histogram(x[None].float(), 30, dtype=torch.float32)[0], 0)
    assert (c64 - c32).abs().max().item() / c64[-1].item() < 1e-3


def test_losses_match_a_direct_computation_and_invalid_sets_are_nan():
    rng = np.random.default_rng(4)
    N = 6
    fcs = np.stack([np.corrcoef(_structured_bold(rng, N=N).T) for _ in range(3)])
    emp = np.corrcoef(_structured_bold(rng, N=N).T)
    cdfs = np.sort(rng.random((3, FCD_BINS)), axis=1)
    cdfs /= cdfs[:, -1:]
    emp_cdf = np.linspace(0, 1, FCD_BINS)
    summ = Summary(torch.tensor(fcs), torch.tensor(cdfs), torch.tensor([True, False, True]))
    loss = cost(summ, emp, emp_cdf)
    iu = np.triu_indices(N, 1)
    for b in (0, 2):
        assert loss.corr[b].item() == pytest.approx(1 - np.corrcoef(fcs[b][iu], emp[iu])[0, 1])
        assert loss.l1[b].item() == pytest.approx(abs(fcs[b][iu].mean() - emp[iu].mean()))
        assert loss.ks[b].item() == pytest.approx(np.abs(cdfs[b] - emp_cdf).max())
    assert np.isnan(loss.total[1].item()) and np.isfinite(loss.total[[0, 2]].numpy()).all()
    # per-set empirical statistics (K subjects sharing a batch)
    loss_b = cost(summ, np.stack([emp] * 3), np.stack([emp_cdf] * 3))
    np.testing.assert_allclose(loss_b.total.numpy(), loss.total.numpy())


def test_cpu_helper_and_torch_paths_agree_and_flag_non_finite_runs(monkeypatch):
    rng = np.random.default_rng(5)
    x = torch.tensor(np.stack([_structured_bold(rng, T=90, N=8) for _ in range(3)]))
    x[1, 40, 2] = np.nan
    fast = fcd_histogram(x, 12)
    monkeypatch.setenv("DELSSOME_NORMS_NO_KERNEL", "1")
    slow = fcd_histogram(x, 12)
    for h in (fast, slow):
        assert torch.isnan(h[1]).all() and torch.isfinite(h[[0, 2]]).all()
    c_fast, c_slow = torch.cumsum(fast[[0, 2]], 1), torch.cumsum(slow[[0, 2]], 1)
    assert (c_fast - c_slow).abs().max().item() <= 1  # a value on a bin edge may move one bin


def test_fcd_of_a_series_with_a_constant_region_is_refused() -> None:
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.model.summary import bold_fcd_cdf

    x = np.random.default_rng(0).standard_normal((200, 6))
    assert float(bold_fcd_cdf(x, 20)[-1]) == 1.0
    x[:, 2] = 1.0
    with pytest.raises(
        InvalidInputError,
        match=r"region 2 \(counted from 0; column 3 of a header-less run\) is constant over frames 1-20",
    ):
        bold_fcd_cdf(x, 20)
    # constant for one window only (signal dropout): still refused, with the frames
    y = np.random.default_rng(1).standard_normal((200, 6))
    y[50:75, 4] = 0.3
    assert torch.isfinite(bold_fcd_cdf(y, 30)).all()  # 25 flat frames < a 30-frame window
    with pytest.raises(InvalidInputError, match=r"region 4 .* frames 51-70"):
        bold_fcd_cdf(y, 20)
