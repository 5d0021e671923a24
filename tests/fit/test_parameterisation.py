"""Design matrix, FC gradient, coefficient ↔ regional mapping, bounds and validity rules."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.design import design_matrix, diffusion_gradient
from delssome_norms.fit.parameterisation import (
    Bounds,
    Parameterisation,
    RegionalParams,
    coeffs_to_regional,
    regional_to_coeffs,
    wei_range,
)

N = 20


def _maps(n: int = N) -> tuple[np.ndarray, np.ndarray]:
    x = np.linspace(-1.0, 1.0, n)
    myelin = 1.4 - 0.1 * x + 0.2 * np.sin(5 * x)  # partly aligned with -gradient
    gradient = (x - x.mean()) / x.std()
    return myelin, gradient


def _space(with_myelin: bool = True, wei: tuple[float, float] = (0.4, 3.2)) -> Parameterisation:
    myelin, gradient = _maps()
    x = design_matrix(gradient, myelin if with_myelin else None, warn=False)
    return Parameterisation(
        design=x, gradient=gradient, bounds=Bounds(wEI=wei), myelin=myelin if with_myelin else None
    )


def _fc_from_coordinate(coord: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """FC decaying with distance along a latent axis (a chain-like graph), plus symmetric noise."""
    rng = np.random.default_rng(seed)
    fc = np.exp(-np.abs(coord[:, None] - coord[None, :]) / 0.3)
    e = noise * rng.standard_normal(fc.shape)
    fc = np.clip(fc + 0.5 * (e + e.T), -1, 1)
    np.fill_diagonal(fc, 1.0)
    return fc


def test_round_trip_coefficients_regional() -> None:
    space = _space()
    rng = np.random.default_rng(0)
    c = rng.normal(size=(5, space.n_coeffs))
    back = regional_to_coeffs(coeffs_to_regional(c, space.design), space.design)
    np.testing.assert_allclose(back, c, rtol=0, atol=1e-11)
    # regional parameters in the span of X come back exactly
    p = coeffs_to_regional(c, space.design)
    again = space.to_regional(space.to_coeffs(p))
    for a, b in zip(p, again):
        np.testing.assert_allclose(a, b, atol=1e-11)


def test_coefficient_layout_matches_science_md() -> None:
    myelin, gradient = _maps()
    x = design_matrix(gradient, myelin, warn=False)
    c = np.arange(10, dtype=float)
    p = coeffs_to_regional(c, x)
    np.testing.assert_allclose(p.wEE[0], 0 + 1 * myelin + 2 * gradient)
    np.testing.assert_allclose(p.wEI[0], 3 + 4 * myelin + 5 * gradient)
    assert p.G[0] == 6
    np.testing.assert_allclose(p.sigma[0], 7 + 8 * myelin + 9 * gradient)


@pytest.mark.parametrize(
    ("mean_fc", "expected"),
    [(0.0, (0.4, 3.2)), (0.2, (0.4, 3.2)), (0.4, (2.8, 4.4)), (0.6, (3.5, 5.0)), (-0.3, (0.4, 3.2))],
)
def test_wei_range(mean_fc: float, expected: tuple[float, float]) -> None:
    fc = np.full((6, 6), mean_fc)
    np.fill_diagonal(fc, 1.0)
    np.testing.assert_allclose(wei_range(fc), expected, atol=1e-12)


def _coeffs(
    space: Parameterisation, wee=(5.0, 0.0, 0.0), wei=(2.2, -0.5, 0.5), g=1.0, sig=(0.005, 0, 0)
):
    p = space.design.shape[1]
    sel = [0, 1, 2] if p == 3 else [0, 2]
    return np.concatenate([np.take(wee, sel), np.take(wei, sel), [g], np.take(sig, sel)])[None, :]


def test_validity_rules_each_reject() -> None:
    space = _space()
    good = _coeffs(space)
    assert space.is_valid(good).tolist() == [True]
    cases = {
        "wEE above 10": _coeffs(space, wee=(10.5, 0, 0)),
        "wEE below 1": _coeffs(space, wee=(0.9, 0, 0)),
        "wEI above max": _coeffs(space, wei=(3.0, 0, 0.5)),
        "G negative": _coeffs(space, g=-0.01),
        "G above 3": _coeffs(space, g=3.01),
        "sigma too small": _coeffs(space, sig=(0.0004, 0, 0)),
        "wEI too uniform": _coeffs(space, wei=(2.0, 0.0, 0.05)),
        "wEI anti-correlated with gradient": _coeffs(space, wei=(2.0, 0.0, -0.5)),
        "wEI correlated with myelin": _coeffs(space, wei=(-1.0, 2.0, 0.4)),
    }
    for name, c in cases.items():
        assert space.is_valid(c).tolist() == [False], name
    # the correlation cases each break only their own rule
    wei_m = space.to_regional(cases["wEI correlated with myelin"]).wEI[0]
    assert np.corrcoef(wei_m, space.myelin)[0, 1] > 0 and np.corrcoef(wei_m, space.gradient)[0, 1] > 0
    assert 0.4 <= wei_m.min() and wei_m.max() <= 3.2 and wei_m.std(ddof=1) >= 0.3
    wei_g = space.to_regional(cases["wEI anti-correlated with gradient"]).wEI[0]
    assert np.corrcoef(wei_g, space.gradient)[0, 1] < 0 and 0.4 <= wei_g.min() and wei_g.max() <= 3.2


def test_myelin_rule_skipped_without_myelin() -> None:
    with_m = _space(with_myelin=True)
    without = _space(with_myelin=False)
    c = _coeffs(without, wei=(2.0, 0.0, 0.5))
    assert without.n_coeffs == 7
    assert without.is_valid(c).tolist() == [True]
    assert with_m.n_coeffs == 10


def test_design_fallback_warns() -> None:
    _, gradient = _maps()
    with pytest.warns(InputWarning, match="no myelin map"):
        x = design_matrix(gradient)
    assert x.shape == (N, 2)
    with pytest.raises(InvalidInputError, match="regions"):
        design_matrix(gradient, np.ones(N + 1))


def test_initial_mean_and_stds() -> None:
    space = _space()
    m1 = space.initial_mean(np.random.default_rng(3))
    m2 = space.initial_mean(np.random.default_rng(3))
    np.testing.assert_array_equal(m1, m2)
    p = space.to_regional(m1)
    # the projected mean of uniform draws stays near the middle of each range
    assert 1.0 < p.wEE.mean() < 10.0 and 0.0 <= p.G[0] <= 3.0
    stds = space.initial_stds(m1)
    assert stds.shape == (10,)
    assert np.all(stds[0:3] == max(abs(m1[0]), 9 / 4)) and np.all(stds[3:6] == max(abs(m1[3]), 2.8 / 4))
    assert stds[6] == 0.4 and np.all(stds[7:] == 0.0005)


def test_diffusion_gradient_recovers_latent_axis() -> None:
    coord = np.linspace(-1.0, 1.0, 68)
    fc = _fc_from_coordinate(coord, noise=0.05, seed=1)
    g = diffusion_gradient(fc)
    assert abs(np.corrcoef(g, coord)[0, 1]) > 0.9
    assert g.shape == (68,) and abs(g.mean()) < 1e-12 and abs(g.std() - 1) < 1e-12
    # orientation: the "sensory" regions (low coordinate) sit at the low end
    sensory = coord < -0.5
    g2 = diffusion_gradient(fc, sensory_mask=sensory)
    assert g2[sensory].mean() < g2[~sensory].mean()
    g3 = diffusion_gradient(fc, sensory_mask=~sensory)
    np.testing.assert_allclose(g3, -g2)


def test_regional_params_namedtuple_roundtrip_shapes() -> None:
    space = _space(with_myelin=False)
    p = RegionalParams(
        wEE=np.full((2, N), 3.0),
        wEI=np.tile(np.linspace(1, 2, N), (2, 1)),
        sigma=np.full((2, N), 0.004),
        G=np.array([1.0, 2.0]),
    )
    c = space.to_coeffs(p)
    assert c.shape == (2, 7)
    back = space.to_regional(c)
    np.testing.assert_allclose(back.G, [1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert space.is_valid(c).tolist() == [True, True]
