"""Euler steps too coarse for the inhibitory population are marked invalid, not silently used."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delssome_norms.datasets.template import load_default_template
from delssome_norms.errors import ConvergenceWarning
from delssome_norms.model import PFICParams, SimulationTiming, scale_sc, simulate
from delssome_norms.model.batch import euler_stable
from delssome_norms.model.constants import PFIC_CONSTANTS as C
from delssome_norms.model.fic import rate, solve_fic


@pytest.fixture(scope="module")
def sc() -> np.ndarray:
    return scale_sc(load_default_template().sc)


def _uniform(w_ee: float, w_ei: float, n: int = 68) -> PFICParams:
    return PFICParams(
        np.full((1, n), w_ee), np.full((1, n), w_ei), np.full((1, n), 1e-4), np.array([1.0])
    )


def test_the_step_limit_is_the_inhibitory_relaxation_rate(sc) -> None:
    w_ei = torch.tensor([[0.5] * 68, [3.0] * 68, [5.0] * 68], dtype=torch.float64)
    fic = solve_fic(
        torch.full_like(w_ei, 3.0), w_ei, torch.ones(3, dtype=torch.float64), torch.as_tensor(sc)
    )
    # independent: dS_I'/dS_I = -1/tau_I - H_I'(I_I*), H_I' by central differences of the rate
    h = 1e-7
    slope = (rate(fic.i_i + h, C.a_I, C.b_I, C.d_I) - rate(fic.i_i - h, C.a_I, C.b_I, C.d_I)) / (2 * h)
    limit = (2.0 / (1.0 / C.tau_I + slope)).min(dim=1).values  # (3,) seconds
    assert limit[0] > limit[1] > limit[2] > 0.005  # the paper's search step is stable up to wEI 5
    for k in range(3):
        for dt in (0.98 * float(limit[k]), 1.02 * float(limit[k])):
            assert bool(euler_stable(fic, dt)[k]) == (dt < float(limit[k]))


def test_a_coarse_step_is_invalid_and_the_paper_step_keeps_3_hz(sc) -> None:
    params = _uniform(3.5, 4.5)  # step limit ~0.0054 s
    kw = {"n_dup": 1, "seed": 0, "dtype": torch.float64}
    coarse = SimulationTiming(tr=0.72, scan_length=14.4, dt=0.006, burn_in=2.88, fcd_window=5)
    with pytest.warns(ConvergenceWarning, match="unstable at the fixed point"):
        bad = simulate(params, sc, coarse, **kw)
    assert not bool(bad.valid.any()) and torch.isnan(bad.ei_ratio).all()
    # r_E left the FIC target there: what "invalid" protects against
    assert float(bad.r_e.mean()) > 3.5
    fine = SimulationTiming(tr=0.72, scan_length=14.4, dt=0.005, burn_in=2.88, fcd_window=5)
    good = simulate(params, sc, fine, **kw)
    assert bool(good.valid.all())
    assert float(good.r_e.mean()) == pytest.approx(3.0, abs=0.1)


def test_public_fic_and_stability_functions_take_numpy_and_one_set(sc) -> None:
    from delssome_norms.model.stability import fic_fixed_point_stable, fic_stability_margin

    w_ee, w_ei = np.full(68, 3.0), np.full(68, 3.8)
    as_tensors = fic_stability_margin(
        torch.tensor(w_ee[None]), torch.tensor(w_ei[None]), torch.tensor([1.0], dtype=torch.float64),
        torch.as_tensor(sc),
    )  # fmt: skip
    one_set = fic_stability_margin(w_ee, w_ei, 1.0, sc)
    torch.testing.assert_close(one_set, as_tensors)
    stable, _ = fic_fixed_point_stable(w_ee[None], w_ei[None], np.array([1.0]), sc)
    assert bool(stable[0]) == bool(as_tensors[0] < 0)
    assert bool(solve_fic(w_ee, w_ei, 1.0, sc).converged[0])
    with pytest.raises(Exception, match=r"shape \(B, N\)"):
        fic_stability_margin(w_ee[None], w_ei[None, :10], [1.0], sc)
