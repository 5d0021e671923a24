"""Inputs of the public model functions: one clear InvalidInputError (or warning) per mistake."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
from delssome_norms.model.devices import check_device, parse_device

N = 6
TIMING = SimulationTiming(
    tr=0.72, scan_length=14.4, dt=0.005, burn_in=1.44, fcd_window=5, warmup_steps=50
)


@pytest.fixture(scope="module")
def sc() -> np.ndarray:
    rng = np.random.default_rng(0)
    m = rng.random((N, N))
    m = m + m.T
    np.fill_diagonal(m, 0)
    return scale_sc(m)


@pytest.fixture(scope="module")
def params() -> PFICParams:
    return PFICParams(np.full(N, 2.0), np.full(N, 1.5), np.full(N, 0.005), 0.5)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"n_dup": 1.7}, "n_dup must be an integer"),
        ({"n_dup": 0}, "n_dup must be an integer"),
        ({"seed": 1.5}, "seed must be an integer"),
        ({"seed": -1}, "seed must be an integer"),
        ({"device": "gpu"}, "unknown device"),
        ({"device": "mps"}, "not supported"),
        ({"dtype": torch.float16}, "dtype must be"),
    ],
)
def test_simulate_refuses_bad_options(sc, params, kwargs, words) -> None:
    with pytest.raises(InvalidInputError, match=words):
        simulate(params, sc, TIMING, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda_is_one_clear_error(sc, params) -> None:
    with pytest.raises(InvalidInputError, match="CUDA is not available"):
        simulate(params, sc, TIMING, device="cuda")
    assert parse_device("cuda:1") == torch.device("cuda:1")  # spelling alone is fine (run.json)
    with pytest.raises(InvalidInputError, match="CUDA is not available"):
        check_device("cuda:1")


def test_dtype_by_name_is_the_torch_dtype(sc, params) -> None:
    a = simulate(params, sc, TIMING, n_dup=1, seed=4, dtype="float64")
    b = simulate(params, sc, TIMING, n_dup=1, seed=4, dtype=torch.float64)
    assert a.bold.dtype == torch.float64 and torch.equal(a.bold, b.bold)


def test_bad_parameter_containers_and_sc(sc, params) -> None:
    with pytest.raises(InvalidInputError, match="PFICParams"):
        simulate((params.wEE, params.wEI, params.sigma, params.G), sc, TIMING)
    with pytest.raises(InvalidInputError, match="G of a single parameter set must be a scalar"):
        simulate(params._replace(G=np.ones(3)), sc, TIMING)
    with pytest.raises(InvalidInputError, match="non-negative"):
        simulate(params, -sc, TIMING)
    with pytest.warns(UserWarning, match="scale_sc"):
        simulate(params, sc / sc.max() * 10.0, TIMING, n_dup=1)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"tr": 720.0, "scan_length": 432000.0, "dt": 0.005}, "milliseconds"),
        ({"tr": 0.72, "scan_length": 864000.0, "dt": 0.0005}, "scan length 864000 s.*milliseconds"),
        ({"tr": 0.72, "scan_length": 144.0, "dt": 0.5}, "too coarse"),
        ({"tr": 0.1, "scan_length": 144.0, "dt": 0.0065}, "divides the TR"),
        ({"tr": True, "scan_length": 144.0, "dt": 0.005}, "positive number"),
    ],
)
def test_timing_refuses_implausible_steps(kwargs, words) -> None:
    with pytest.raises(InvalidInputError, match=words):
        SimulationTiming(**kwargs)


def test_fcd_window_of_two_frames_is_refused_and_the_default_never_goes_below_three() -> None:
    # a correlation over 2 frames is +-1 whatever the signal: the FCD would be a sign pattern
    with pytest.raises(InvalidInputError, match=r"fcd_window must be an integer >= 3 frames, got 2"):
        SimulationTiming(tr=0.72, scan_length=144.0, dt=0.005, fcd_window=2)
    rng = np.random.default_rng(0)
    with pytest.raises(InvalidInputError, match=">= 3 frames"):
        bold_fcd_cdf(torch.as_tensor(rng.standard_normal((40, 5))), 2)
    # round(60 / 24) = 2 frames: the default rule is held at 3 at the longest TRs
    t = SimulationTiming(tr=24.0, scan_length=24.0 * 40, dt=0.008)
    assert t.fcd_window == 3 and SimulationTiming(tr=2.0, scan_length=600.0, dt=0.005).fcd_window == 30


def test_timing_accepts_numpy_numbers() -> None:
    t = SimulationTiming(tr=np.float32(0.72), scan_length=np.int64(144), dt=np.float64(0.005))
    assert t == SimulationTiming(tr=float(np.float32(0.72)), scan_length=144.0, dt=0.005)
    assert type(t.tr) is float and t.steps_per_tr == 144


def test_summary_functions_refuse_wrong_shapes(sc, params) -> None:
    summ = summarize(simulate(params, sc, TIMING, n_dup=1, seed=0), TIMING)
    fc = np.eye(N)
    cdf = np.linspace(0, 1, 10001)[1:]
    with pytest.raises(InvalidInputError, match="fc_emp must have shape"):
        cost(summ, fc[:-1, :-1], cdf)
    with pytest.raises(InvalidInputError, match="fcd_cdf_emp must have shape"):
        cost(summ, fc, cdf[:-1])
    with pytest.raises(InvalidInputError, match="bold must have shape"):
        bold_fc(np.zeros(50))
    x = np.random.default_rng(0).standard_normal((50, 10))
    with pytest.raises(InvalidInputError, match="at least 61 frames"):
        bold_fcd_cdf(x, 60)
    with pytest.raises(InvalidInputError, match="window must be an integer >= 3"):
        bold_fcd_cdf(x, 1)
