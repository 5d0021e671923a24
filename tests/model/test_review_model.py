"""Timing, FIC inputs, Euler-step advice and the cost, checked against independent numbers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr

from delssome_norms.errors import ConvergenceWarning, InvalidInputError
from delssome_norms.model import PFICParams, SimulationTiming, cost, scale_sc, simulate, summarize
from delssome_norms.model.batch import prepare_batch
from delssome_norms.model.constants import PFIC_CONSTANTS as C
from delssome_norms.model.fic import rate_derivative, solve_fic

N = 6


def _sc() -> np.ndarray:
    rng = np.random.default_rng(1)
    sc = rng.random((N, N))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    return scale_sc(sc)


def _params(w_ei: float = 2.5) -> PFICParams:
    return PFICParams(
        np.full((1, N), 3.0), np.full((1, N), w_ei), np.full((1, N), 0.005), np.array([1.0])
    )


TIMING = SimulationTiming(tr=0.72, scan_length=30.0, dt=0.005, burn_in=1.44, fcd_window=5,
                          warmup_steps=100)  # fmt: skip


def test_cost_equals_an_independent_numpy_recomputation() -> None:
    res = simulate(_params(), _sc(), TIMING, n_dup=2, seed=4, dtype=torch.float64)
    summary = summarize(res, TIMING, fcd_products=torch.float64)
    iu = np.triu_indices(N, 1)
    fcs, hists = [], []
    for bold in res.bold[0].numpy():  # (T, N) per duplicate
        fcs.append(np.corrcoef(bold.T))
        n_win = bold.shape[0] - TIMING.fcd_window + 1
        vectors = [np.corrcoef(bold[k : k + TIMING.fcd_window].T)[iu] for k in range(n_win)]
        fcd = np.corrcoef(np.array(vectors))
        hists.append(np.histogram(fcd[np.triu_indices(n_win, 1)], 10000, (-1.0, 1.0))[0])
    fc = np.mean(fcs, axis=0)  # docs/science.md §2: mean of the duplicates' FCs and histograms
    hist = np.mean(hists, axis=0)
    cdf = np.cumsum(hist) / hist.sum()
    assert np.abs(summary.fc[0].numpy() - fc).max() < 1e-12
    assert np.abs(summary.fcd_cdf[0].numpy() - cdf).max() < 1e-12

    rng = np.random.default_rng(2)
    fc_emp = np.corrcoef(rng.standard_normal((50, N)).T)
    cdf_emp = np.cumsum(np.histogram(np.tanh(rng.standard_normal(3000)), 10000, (-1.0, 1.0))[0])
    cdf_emp = cdf_emp / cdf_emp[-1]
    losses = cost(summary, fc_emp, cdf_emp).as_dict(0)
    corr = 1.0 - pearsonr(fc[iu], fc_emp[iu])[0]
    l1 = abs(fc[iu].mean() - fc_emp[iu].mean())
    ks = np.abs(cdf - cdf_emp).max()
    assert losses["corr_loss"] == pytest.approx(corr, abs=1e-12)
    assert losses["l1_loss"] == pytest.approx(l1, abs=1e-12)
    assert losses["ks_loss"] == pytest.approx(ks, abs=1e-12)
    assert losses["total_loss"] == pytest.approx(corr + l1 + ks, abs=1e-12)


def test_same_seed_same_numbers_other_seed_other_numbers() -> None:
    a, b, c = (simulate(_params(), _sc(), TIMING, n_dup=1, seed=s) for s in (7, 7, 8))
    assert torch.equal(a.bold, b.bold) and torch.equal(a.ei_ratio, b.ei_ratio)
    assert not torch.equal(a.bold, c.bold)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("burn_in", "6"),
        ("burn_in", float("inf")),
        ("warmup_steps", None),
        ("fcd_window", True),
        ("fcd_window", float("nan")),
        ("warmup_steps", float("inf")),
    ],
)
def test_timing_refuses_non_numbers_and_names_the_field(field, value) -> None:
    with pytest.raises(InvalidInputError) as info:
        SimulationTiming(tr=0.72, scan_length=60.0, **{field: value})
    assert info.value.field == field


def test_timing_errors_carry_their_field() -> None:
    with pytest.raises(InvalidInputError, match="sliding window") as info:
        SimulationTiming(tr=0.72, scan_length=60.0, fcd_window=83)
    assert info.value.field == "fcd_window"
    with pytest.raises(InvalidInputError, match="choose a dt") as info:
        SimulationTiming(tr=0.72, scan_length=60.0, dt=0.0197)
    assert info.value.field == "dt"


def test_an_unstable_step_warning_gives_the_stable_step() -> None:
    params = _params(w_ei=40.0)
    sc = torch.as_tensor(_sc())
    w = torch.as_tensor(params.wEI)
    fic = solve_fic(torch.as_tensor(params.wEE), w, torch.ones(1, dtype=torch.float64), sc)
    lam = 1.0 / C.tau_I + rate_derivative(fic.i_i, C.a_I, C.b_I, C.d_I)
    limit = float((2.0 / lam).min())  # independent: the fastest region's relaxation
    assert limit < 0.005
    with pytest.warns(ConvergenceWarning, match="need dt < ") as record:
        prepare_batch(params, sc, 0.005, 1, "cpu", torch.float32)
    text = str(record[0].message)
    shown = float(text.split("need dt < ")[1].split(" s")[0])
    assert 0.99 * limit <= shown <= limit
    assert "use dt <= 0.005" not in text


def test_fic_accepts_read_only_arrays_without_a_torch_warning() -> None:
    # pandas 3 hands out read-only arrays (best_parameters.csv columns): torch warned that
    # "the given NumPy array is not writable" on every simulate run
    code = (
        "import numpy as np\n"
        "from delssome_norms.model.fic import solve_fic\n"
        "from delssome_norms.model import fic_stability_margin\n"
        "w = np.full((1, 3), 3.0); w.setflags(write=False)\n"
        "sc = np.full((3, 3), 0.01); np.fill_diagonal(sc, 0); sc.setflags(write=False)\n"
        "g = np.array([1.0]); g.setflags(write=False)\n"
        "assert bool(solve_fic(w, w * 0.8, g, sc).converged.all())\n"
        "fic_stability_margin(w, w * 0.8, g, sc)\n"
    )
    run = subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-c", code], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
