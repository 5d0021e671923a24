"""The cost predictor: shapes, output range, batch independence, region-set invariance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delssome_norms.errors import InvalidInputError
from delssome_norms.surrogate.network import (
    CostPredictor,
    SubjectFeatures,
    SurrogateConfig,
    cdf_to_density,
    fc_upper_triangle,
    fcd_density,
    pool_density,
)


def _inputs(cfg: SurrogateConfig, b: int, k: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    n = cfg.n_regions
    regional = torch.stack(
        [
            1 + 9 * torch.rand(b, n, generator=g),
            5 * torch.rand(b, n, generator=g),
            0.0005 + 0.0095 * torch.rand(b, n, generator=g),
        ],
        dim=-1,
    )
    sc = torch.rand(k, n, n, generator=g) * 0.02
    cdf = torch.cumsum(torch.rand(k, cfg.cdf_bins, generator=g), dim=1)
    cdf = cdf / cdf[:, -1:]
    subjects = SubjectFeatures(
        fc_triu=torch.rand(k, cfg.n_pairs, generator=g) * 2 - 1,
        fcd_dens=fcd_density(cdf, cfg.fcd_bins),
        tr=torch.full((k,), 0.72),
        scan_length=torch.tensor([120.0, 300.0][:k] + [200.0] * max(0, k - 2)),
        sc=sc,
    )
    gg = 3 * torch.rand(b, generator=g)
    idx = torch.randint(0, k, (b,), generator=g)
    return subjects, regional, gg, idx


def test_output_shape_and_range(config_factory) -> None:
    cfg = config_factory()
    torch.manual_seed(0)
    net = CostPredictor(cfg).eval()
    subjects, regional, g, idx = _inputs(cfg, b=17)
    out = net.score(subjects, regional, g, idx)
    assert out.shape == (17, 3)
    assert torch.all(out >= 0) and torch.all(out <= 1)
    # extreme inputs saturate the sigmoid but stay inside [0, 1]
    out = net.score(subjects, regional * 1e4, g * 1e4, idx)
    assert torch.isfinite(out).all() and torch.all(out >= 0) and torch.all(out <= 1)


def test_output_scale_bounds(config_factory) -> None:
    cfg = config_factory(output_scale=(2.0, 1.0, 0.5))
    net = CostPredictor(cfg).eval()
    subjects, regional, g, idx = _inputs(cfg, b=9)
    with torch.no_grad():
        net.heads.bias.fill_(50.0)  # saturate: outputs equal the scales
    out = net.score(subjects, regional, g, idx)
    torch.testing.assert_close(out, torch.tensor([2.0, 1.0, 0.5]).expand(9, 3))


def test_candidates_are_scored_independently(config_factory) -> None:
    cfg = config_factory()
    torch.manual_seed(1)
    net = CostPredictor(cfg).eval()
    subjects, regional, g, idx = _inputs(cfg, b=12)
    full = net.score(subjects, regional, g, idx)
    perm = torch.randperm(12)
    permuted = net.score(subjects, regional[perm], g[perm], idx[perm])
    torch.testing.assert_close(permuted, full[perm], rtol=1e-5, atol=1e-6)
    single = net.score(subjects, regional[3:4], g[3:4], idx[3:4])
    torch.testing.assert_close(single, full[3:4], rtol=1e-5, atol=1e-6)


def test_region_tokens_form_a_set(config_factory) -> None:
    """No positional encoding: permuting regions with the rows of G·SC leaves the output unchanged."""
    cfg = config_factory()
    torch.manual_seed(2)
    net = CostPredictor(cfg).eval()
    subjects, regional, g, idx = _inputs(cfg, b=8)
    emb = net.encode_subject(subjects.fc_triu, subjects.fcd_dens, subjects.tr, subjects.scan_length)[idx]
    gsc = g[:, None, None] * subjects.sc[idx]
    ref = net(regional, gsc, emb)
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    same = net(regional[:, perm], gsc[:, perm, :], emb)
    torch.testing.assert_close(same, ref, rtol=1e-5, atol=1e-6)
    # permuting the columns as well is a different connectome as far as the network can tell
    other = net(regional[:, perm], gsc[:, perm][:, :, perm], emb)
    assert not torch.allclose(other, ref, atol=1e-6)


def test_subject_features_matter(config_factory) -> None:
    cfg = config_factory()
    torch.manual_seed(3)
    net = CostPredictor(cfg).eval()
    subjects, regional, g, _ = _inputs(cfg, b=5)
    a = net.score(subjects, regional, g, torch.zeros(5, dtype=torch.long))
    b = net.score(subjects, regional, g, torch.ones(5, dtype=torch.long))
    assert not torch.allclose(a, b)


def test_fcd_density_is_the_difference_of_the_cdf() -> None:
    rng = np.random.default_rng(0)
    mass = rng.uniform(0, 1, 10000)
    mass /= mass.sum()
    cdf = torch.as_tensor(np.cumsum(mass))
    np.testing.assert_allclose(cdf_to_density(cdf).numpy(), mass, atol=1e-15)
    pooled = fcd_density(cdf, 100).numpy()
    np.testing.assert_allclose(pooled, mass.reshape(100, 100).sum(axis=1) * 100, rtol=1e-10)
    assert abs(pooled.mean() - 1.0) < 1e-12
    with pytest.raises(InvalidInputError, match="do not divide"):
        pool_density(torch.ones(10), 3)


def test_fc_upper_triangle_order() -> None:
    fc = torch.arange(16.0).reshape(4, 4)
    assert fc_upper_triangle(fc).tolist() == [1.0, 2.0, 3.0, 6.0, 7.0, 11.0]


def test_config_round_trip_and_checks() -> None:
    cfg = SurrogateConfig(n_regions=10, d_model=32, n_heads=4)
    assert SurrogateConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InvalidInputError, match="must divide d_model"):
        SurrogateConfig(d_model=30, n_heads=4)
    with pytest.raises(InvalidInputError, match="fcd_bins"):
        SurrogateConfig(fcd_bins=300)
    with pytest.raises(InvalidInputError, match="unknown network settings"):
        SurrogateConfig.from_dict({"width": 3})


def test_default_network_is_small() -> None:
    net = CostPredictor(SurrogateConfig())
    assert net.n_parameters() < 1_000_000  # < 4 MB of float32 weights


def test_projected_forward_equals_explicit_g_sc(config_factory) -> None:
    """The fast path (SC projected once per subject) is the same function as Linear([x, G·SC])."""
    cfg = config_factory()
    torch.manual_seed(4)
    net = CostPredictor(cfg).eval()
    subjects, regional, g, idx = _inputs(cfg, b=11)
    emb = net.encode_subject(subjects.fc_triu, subjects.fcd_dens, subjects.tr, subjects.scan_length)
    explicit = net(regional, g[:, None, None] * subjects.sc[idx], emb[idx])
    fast = net.forward_projected(regional, g, net.project_sc(subjects.sc)[idx], emb[idx])
    torch.testing.assert_close(fast, explicit, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(net.score(subjects, regional, g, idx), explicit, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("n_layers", "n_heads"), [(1, 1), (2, 2), (3, 4)])
def test_inference_path_equals_the_encoder_module(config_factory, dtype, n_layers, n_heads) -> None:
    """Without autograd, the summary token is computed by the written-out layers (last layer on
    token 0 only, fused attention); it must equal torch's TransformerEncoder on every token path."""
    cfg = config_factory(n_layers=n_layers, n_heads=n_heads, d_model=8)
    torch.manual_seed(5)
    net = CostPredictor(cfg).to(dtype).eval()
    with torch.no_grad():  # non-trivial weights: random LayerNorm affine and biases
        for p in net.parameters():
            p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(13, cfg.n_regions + 1, cfg.d_model, dtype=dtype)
    with torch.no_grad():
        fast = net._summary_output(x)
        module = net.encoder(x)[:, 0]
    assert module.std() > 0.1  # not a degenerate comparison
    tol = {"rtol": 1e-5, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-12, "atol": 1e-12}
    torch.testing.assert_close(fast, module, **tol)
    subjects, regional, g, idx = _inputs(cfg, b=13)
    subjects = subjects.to("cpu", dtype)
    regional, g = regional.to(dtype), g.to(dtype)
    with_grad = net.score(subjects, regional, g, idx)  # autograd on: the module path
    with torch.no_grad():
        without = net.score(subjects, regional, g, idx)
    torch.testing.assert_close(without, with_grad.detach(), **tol)
