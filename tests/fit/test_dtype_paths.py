"""Simulation dtype and FCD precision along every stage of a fit (train, val, test, profile), in both
modes: a ``dtype="float64"`` fit simulates in float64 and keeps float64 numbers to its result;
the surrogate network gets float32 inputs whatever the simulation dtype."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from fit_helpers import tiny_cdf, tiny_fc, tiny_sc, tiny_surrogate_weights, tiny_timing

from delssome_norms.fit import CMAESSettings, FitSettings, fit_group, uncertainty
from delssome_norms.fit import evaluate as fit_evaluate
from delssome_norms.fit.evaluate import EulerEvaluator
from delssome_norms.fit.parameterisation import RegionalParams
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.surrogate import SURROGATE_BACKEND
from delssome_norms.surrogate.network import CostPredictor

DT_TEST = 0.0025  # differs from the train/val step, so the test stage's simulation can be told apart


def _subject() -> SubjectInputs:
    return SubjectInputs(
        subject_id="a", fc=tiny_fc(level=0.2), fcd_cdf=tiny_cdf(0), tr=0.72, scan_length=14.4,
        sc=tiny_sc(),
    )  # fmt: skip


def _settings(mode: str, dtype: str, weights: Path | None) -> FitSettings:
    return FitSettings(
        cmaes=CMAESSettings(generations=2, popsize=6, mu=2),
        mode=mode,
        surrogate_weights=None if weights is None else str(weights),
        dtype=dtype,
        dt_train=0.005, dt_val=0.005, dt_test=DT_TEST, burn_in=0.72, fcd_window=5, warmup_steps=50,
        test_top_k=2, n_dup=2, stability_gate=True,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["euler", "surrogate"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fit_simulates_every_stage_in_its_dtype(tmp_path, monkeypatch, mode, dtype) -> None:
    calls = []
    simulate = fit_evaluate.simulate

    def spy(*args, **kwargs):
        res = simulate(*args, **kwargs)
        calls.append((kwargs["dtype"], args[2].dt, res.bold.dtype, res))  # (bold is dropped later)
        return res

    net_inputs = []
    forward = CostPredictor.forward_projected

    def spy_net(self, regional, g, sc_proj, emb):
        net_inputs.append({regional.dtype, g.dtype, sc_proj.dtype, emb.dtype})
        return forward(self, regional, g, sc_proj, emb)

    monkeypatch.setattr(fit_evaluate, "simulate", spy)
    monkeypatch.setattr(CostPredictor, "forward_projected", spy_net)
    weights = tiny_surrogate_weights(tmp_path / "w") if mode == "surrogate" else None
    (outcome,) = fit_group(
        [_subject()], [tmp_path / "a"], _settings(mode, dtype, weights), surrogate=SURROGATE_BACKEND
    )
    assert outcome.status == "done", outcome
    want = getattr(torch, dtype)
    # euler: 2 train generations, val, test, profile; surrogate: the train stage is predicted
    assert len(calls) == (5 if mode == "euler" else 3)
    for asked, _, bold_dtype, res in calls:
        assert asked == want
        assert bold_dtype == res.s_e.dtype == res.s_i.dtype == res.r_e.dtype == want
    if mode == "surrogate":
        assert len(net_inputs) == 2 and all(s == {torch.float32} for s in net_inputs)
    else:
        assert not net_inputs
    # the result carries the test simulation's numbers without a round trip through float32
    (test,) = [res for _, dt, _, res in calls if dt == DT_TEST]
    w = int(np.flatnonzero(test.valid.any(dim=1).numpy())[0])
    valid = test.valid[w]
    expected = {
        "s_e": test.s_e[w][valid].double().mean(dim=0),
        "r_e": test.r_e[w][valid].double().mean(dim=0),
        "ei_ratio": (test.s_e[w][valid].double() / test.s_i[w][valid].double()).mean(dim=0),
    }
    r = outcome.result
    # the estimate's level is centred in the near-optimal set: the E/I is the winner's times that
    expected["ei_ratio"] = expected["ei_ratio"] * math.exp(r.interval["level_shift_log"])
    for name, value in expected.items():
        got = getattr(r, name)
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, value.numpy(), rtol=1e-12, err_msg=name)


def test_profile_stage_uses_the_evaluators_fcd_precision(monkeypatch) -> None:
    """The profile simulations are scored with the evaluator's FCD products, as train, val and
    test are (an evaluator that fixes them, e.g. for data written out, must not get the CPU's
    default there: bfloat16 products on CPUs with AVX512-BF16)."""
    timing = tiny_timing()
    ev = EulerEvaluator(
        tiny_fc(level=0.2)[None], tiny_cdf(0)[None], tiny_sc(), timing, n_dup=2,
        dtype="float32", fcd_products=torch.float32,
    )  # fmt: skip
    seen = []
    summarize = uncertainty.summarize

    def spy(*args, **kwargs):
        seen.append(kwargs.get("fcd_products"))
        return summarize(*args, **kwargs)

    monkeypatch.setattr(uncertainty, "summarize", spy)
    n = tiny_sc().shape[0]
    regional = [
        RegionalParams(
            wEE=np.full((2, n), 2.0), wEI=np.full((2, n), 2.5), sigma=np.full((2, n), 0.005),
            G=np.array([0.5, 1.0]),
        )
    ]  # fmt: skip
    index = np.zeros(2, dtype=np.int64)
    out = uncertainty.simulate_with_duplicates(ev, regional, index, 7, timing)
    assert seen == [torch.float32]
    # the duplicate-averaged losses are those the evaluator gives the same simulation
    ref = ev.simulate(fit_evaluate.stack_params(regional), torch.from_numpy(index), seed=7)
    for name in ("corr", "l1", "ks"):
        np.testing.assert_allclose(out[name], getattr(ref, name), rtol=0, atol=1e-6, err_msg=name)
