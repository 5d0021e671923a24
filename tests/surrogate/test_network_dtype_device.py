"""Dtype and device of the surrogate's inputs: the network gets its own dtype and device, whatever
the dtype of the candidates (a float64 fit) and wherever the weights were loaded."""

from __future__ import annotations

import copy

import pytest
import torch
from surrogate_helpers import random_subjects

from delssome_norms.model import PFICParams
from delssome_norms.surrogate import train as train_module
from delssome_norms.surrogate.evaluate import SurrogateEvaluator
from delssome_norms.surrogate.network import CostPredictor


def _params(n: int, b: int, dtype: torch.dtype) -> PFICParams:
    g = torch.Generator().manual_seed(1)
    return PFICParams(
        wEE=1 + 9 * torch.rand(b, n, generator=g, dtype=dtype),
        wEI=1 + 3 * torch.rand(b, n, generator=g, dtype=dtype),
        sigma=0.001 + 0.008 * torch.rand(b, n, generator=g, dtype=dtype),
        G=3 * torch.rand(b, generator=g, dtype=dtype),
    )


@pytest.fixture
def net(config_factory) -> CostPredictor:
    torch.manual_seed(0)
    return CostPredictor(config_factory()).eval()


def test_a_float64_network_gets_float64_inputs(net) -> None:
    """A float64 network (e.g. for a float64 fit) is fed its own dtype, not float32: the subject
    features and the candidates are cast to the network's dtype, and it predicts what the float32
    network does up to float32 rounding."""
    fc, cdf, sc = random_subjects(net.config.n_regions, net.config.cdf_bins, k=3)
    f32 = SurrogateEvaluator(net, fc, cdf, sc, 0.72, 120.0)
    f64 = SurrogateEvaluator(copy.deepcopy(net).double(), fc, cdf, sc, 0.72, 120.0)
    idx = torch.tensor([0, 1, 2, 0, 1])
    for dtype in (torch.float32, torch.float64):  # the candidates' dtype does not matter
        p = _params(net.config.n_regions, 5, dtype)
        a, b = f32.predict(p, idx), f64.predict(p, idx)
        assert a.dtype == torch.float32 and b.dtype == torch.float64
        torch.testing.assert_close(b.float(), a, rtol=1e-5, atol=1e-6)
        assert f64(p, idx).total.dtype == torch.float64
    empty = PFICParams(*(x[:0] for x in _params(net.config.n_regions, 1, torch.float64)))
    assert f64.predict(empty, idx[:0]).dtype == torch.float64


def test_evaluate_model_runs_the_network_where_the_data_are(net, data_factory, monkeypatch) -> None:
    """``evaluate_model(model, data, device)`` puts the data on ``device``; weights loaded on the
    CPU must run there too (on a GPU machine: ``surrogate evaluate --device cuda``). The "meta"
    device stands in for the GPU: the network has to be on the data's device when it predicts."""
    seen = []

    def predict(model, tensors, batch_size=1024):
        devices = {p.device for p in model.parameters()} | {b.device for b in model.buffers()}
        seen.append((devices, tensors.regional.device))
        return torch.zeros(tensors.regional.shape[0], 3)

    monkeypatch.setattr(train_module, "predict_dataset", predict)
    data = data_factory(n_subjects=3, per_gen=4, generations=2)
    metrics = train_module.evaluate_model(net, data, device="meta")
    assert metrics["n_candidates"] == len(data.losses)
    assert seen == [({torch.device("meta")}, torch.device("meta"))]
    assert all(p.device.type == "cpu" for p in net.parameters())  # the caller's model is not moved
