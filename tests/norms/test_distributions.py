"""Distributions against scipy (where scipy has them) and numerical integration of the density."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate, special, stats

from delssome_norms.norms import distributions as d
from delssome_norms.norms.distributions import FAMILIES, get_family

# (family, parameters on the parameter scale) covering skew both ways and light/heavy tails
CASES = [
    ("SHASHo2", (0.3, 0.8, 0.4, 0.7)),
    ("SHASHo2", (-1.0, 0.2, -0.6, 1.6)),
    ("SHASHo", (0.3, 0.8, -0.4, 1.7)),
    ("SHASHo", (2.0, 1.5, 0.5, 0.6)),
    ("SHASH", (0.3, 0.8, 0.4, 0.7)),
    ("SHASH", (0.0, 1.2, 1.5, 0.8)),
    ("JSU", (0.5, 1.3, 0.7, 1.8)),
    ("JSU", (-2.0, 0.4, -1.2, 3.0)),
    ("NO", (1.5, 0.3)),
    ("GG", (2.0, 0.4, 0.7)),
    ("GG", (1.2, 0.3, -1.3)),
    ("GG", (1.2, 0.3, 0.0)),
]


def _support(name: str) -> tuple[float, float]:
    return (0.0, np.inf) if name == "GG" else (-np.inf, np.inf)


@pytest.mark.parametrize(("name", "theta"), CASES)
def test_density_integrates_to_one_and_cdf_is_its_integral(name, theta) -> None:
    fam = get_family(name)
    lo, hi = _support(name)
    pdf = lambda t: np.exp(fam.logpdf(np.array(t), *theta))  # noqa: E731
    total = integrate.quad(pdf, lo, hi, limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-7)
    for p in (0.01, 0.2, 0.5, 0.9, 0.995):
        x = float(fam.ppf(p, *theta))
        area = integrate.quad(pdf, lo, x, limit=200)[0]
        assert float(fam.cdf(x, *theta)) == pytest.approx(area, abs=2e-7)
        assert float(fam.cdf(x, *theta)) == pytest.approx(p, abs=1e-10)


def test_jsu_matches_scipy_johnsonsu() -> None:
    mu, sigma, nu, tau = 0.5, 1.3, 0.7, 1.8
    rtau = 1.0 / tau
    w = np.exp(rtau**2)
    omega = -nu * rtau
    c = (0.5 * (w - 1) * (w * np.cosh(2 * omega) + 1)) ** -0.5
    ref = stats.johnsonsu(
        a=-nu, b=tau, loc=mu + c * sigma * np.sqrt(w) * np.sinh(omega), scale=c * sigma
    )
    y = np.linspace(-4, 6, 41)
    np.testing.assert_allclose(d.jsu_logpdf(y, mu, sigma, nu, tau), ref.logpdf(y), atol=1e-12)
    np.testing.assert_allclose(d.jsu_cdf(y, mu, sigma, nu, tau), ref.cdf(y), atol=1e-13)
    p = np.linspace(0.01, 0.99, 21)
    np.testing.assert_allclose(d.jsu_ppf(p, mu, sigma, nu, tau), ref.ppf(p), atol=1e-10)
    # gamlss.dist's JSU is parameterised by its mean and standard deviation
    assert ref.mean() == pytest.approx(mu, abs=1e-10)
    assert ref.std() == pytest.approx(sigma, abs=1e-10)


def test_normal_matches_scipy() -> None:
    y = np.linspace(-2, 4, 13)
    ref = stats.norm(1.5, 0.3)
    np.testing.assert_allclose(d.no_logpdf(y, 1.5, 0.3), ref.logpdf(y), atol=1e-12)
    np.testing.assert_allclose(d.no_cdf(y, 1.5, 0.3), ref.cdf(y), atol=1e-14)
    np.testing.assert_allclose(d.no_ppf([0.1, 0.5, 0.9], 1.5, 0.3), ref.ppf([0.1, 0.5, 0.9]), atol=1e-12)


@pytest.mark.parametrize("nu", [0.7, -1.3, 2.5])
def test_gg_matches_scipy_gengamma(nu: float) -> None:
    mu, sigma = 2.0, 0.4
    theta = 1.0 / (sigma * nu) ** 2
    ref = stats.gengamma(a=theta, c=nu, scale=mu * theta ** (-1.0 / nu))
    y = np.linspace(0.3, 6.0, 25)
    np.testing.assert_allclose(d.gg_logpdf(y, mu, sigma, nu), ref.logpdf(y), atol=1e-10)
    np.testing.assert_allclose(d.gg_cdf(y, mu, sigma, nu), ref.cdf(y), atol=1e-12)
    p = np.array([0.025, 0.5, 0.975])
    np.testing.assert_allclose(d.gg_ppf(p, mu, sigma, nu), ref.ppf(p), rtol=1e-10)


def test_gg_lognormal_limit_matches_scipy_lognorm() -> None:
    ref = stats.lognorm(s=0.3, scale=1.2)
    y = np.linspace(0.3, 3.0, 10)
    np.testing.assert_allclose(d.gg_logpdf(y, 1.2, 0.3, 0.0), ref.logpdf(y), atol=1e-12)
    np.testing.assert_allclose(d.gg_cdf(y, 1.2, 0.3, 0.0), ref.cdf(y), atol=1e-13)


def test_shasho2_is_the_sinh_arcsinh_transform_of_a_normal() -> None:
    # docs/science.md §7: y = mu + sigma tau sinh((asinh(z) + nu) / tau) with z ~ N(0, 1)
    mu, sigma, nu, tau = 2.0, 0.05, 0.3, 1.2
    z = np.linspace(-3, 3, 13)
    y = mu + sigma * tau * np.sinh((np.arcsinh(z) + nu) / tau)
    np.testing.assert_allclose(d.shasho2_cdf(y, mu, sigma, nu, tau), special.ndtr(z), atol=1e-14)
    np.testing.assert_allclose(d.shasho2_ppf(special.ndtr(z), mu, sigma, nu, tau), y, atol=1e-12)
    # SHASHo is the same without the factor tau on sigma
    np.testing.assert_allclose(
        d.shasho_cdf(y, mu, sigma * tau, nu, tau), d.shasho2_cdf(y, mu, sigma, nu, tau), atol=1e-14
    )
    # nu = 0, tau = 1 is the normal distribution
    np.testing.assert_allclose(
        d.shasho2_logpdf(y, mu, sigma, 0.0, 1.0), stats.norm(mu, sigma).logpdf(y), atol=1e-10
    )


@pytest.mark.parametrize(("name", "theta"), CASES)
def test_quantile_inverts_cdf_and_zscore_inverts(name, theta) -> None:
    fam = get_family(name)
    p = np.array([1e-6, 0.025, 0.3, 0.5, 0.8, 0.975, 1 - 1e-6])
    x = fam.ppf(p, *theta)
    np.testing.assert_allclose(fam.cdf(x, *theta), p, rtol=1e-8, atol=1e-13)
    z = fam.zscore(x, *theta)
    np.testing.assert_allclose(z, special.ndtri(p), atol=1e-6)
    np.testing.assert_allclose(fam.from_zscore(z, *theta), x, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(("name", "theta"), CASES[::2])
def test_random_draws_follow_the_cdf(name, theta) -> None:
    fam = get_family(name)
    draws = fam.rvs(*theta, size=20000, rng=3)
    res = stats.kstest(draws, lambda v: fam.cdf(v, *theta))
    assert res.pvalue > 1e-3


@pytest.mark.parametrize(("name", "theta"), CASES)
def test_torch_log_density_equals_numpy(name, theta) -> None:
    fam = get_family(name)
    y = np.asarray(fam.ppf(np.linspace(0.02, 0.98, 9), *theta))
    tt = [torch.tensor(float(v), dtype=torch.float64) for v in theta]
    got = fam.logpdf(torch.tensor(y), *tt).numpy()
    np.testing.assert_allclose(got, fam.logpdf(y, *theta), atol=1e-12)


@pytest.mark.parametrize("name", ["SHASHo2", "SHASHo", "NO"])
def test_closed_form_derivatives_equal_autograd(name) -> None:
    fam = get_family(name)
    rng = np.random.default_rng(0)
    y = rng.normal(size=200) * 2.0
    etas = [rng.normal(size=200) * 0.5 for _ in range(fam.n_params)]
    ll, g, h = fam.derivatives(y, etas)
    leaves = [torch.tensor(e, requires_grad=True) for e in etas]
    L = fam.logpdf(torch.tensor(y), *fam.to_params(leaves))
    G = torch.autograd.grad(L.sum(), leaves, create_graph=True)
    np.testing.assert_allclose(ll, L.detach().numpy(), rtol=1e-12, atol=1e-12)
    for k in range(fam.n_params):
        np.testing.assert_allclose(g[k], G[k].detach().numpy(), rtol=1e-9, atol=1e-9)
        row = torch.autograd.grad(G[k].sum(), leaves, retain_graph=True)
        for j in range(fam.n_params):
            np.testing.assert_allclose(h[k][j], row[j].numpy(), rtol=1e-8, atol=1e-8)


def test_family_registry_and_links() -> None:
    assert set(FAMILIES) == {"SHASHo2", "SHASHo", "SHASH", "JSU", "NO", "GG"}
    assert get_family("shasho2").links == ("identity", "log", "identity", "log")
    assert get_family("GG").links == ("log", "log", "identity")
    with pytest.raises(ValueError, match="unknown family"):
        get_family("BCPE")


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES}))
def test_logpdf_needs_no_numpy2_only_names(name, monkeypatch) -> None:
    """numpy < 2 (the declared range starts at 1.24) has no ``np.asinh``/``np.acosh``/... aliases:
    the shared numpy/torch code must use the names both have (``arcsinh``)."""
    theta = dict(CASES)[name]
    y = np.linspace(0.2, 3.0, 7)
    expected = get_family(name).logpdf(y, *theta)
    for alias in ("asinh", "acosh", "atanh", "asin", "acos", "atan", "atan2", "pow", "concat"):
        monkeypatch.delattr(np, alias, raising=False)
    got = get_family(name).logpdf(y, *theta)
    np.testing.assert_array_equal(got, expected)
    got_t = get_family(name).logpdf(torch.as_tensor(y), *theta)
    np.testing.assert_allclose(got_t.numpy(), expected, rtol=1e-12)
