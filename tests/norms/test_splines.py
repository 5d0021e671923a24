"""R-compatible bs(): knots, basis values (analytic Bernstein case, scipy), extrapolation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import BSpline

from delssome_norms.norms.splines import BSplineBasis, bs


def test_df3_is_the_cubic_bernstein_basis_without_the_first_column() -> None:
    # bs(x, df = 3) has no interior knots: the cubic Bernstein polynomials on range(x)
    x = np.array([5.0, 20.0, 51.0, 77.7, 98.0])
    basis, spec = bs(x, df=3)
    t = (x - 5.0) / 93.0
    expected = np.column_stack([3 * t * (1 - t) ** 2, 3 * t**2 * (1 - t), t**3])
    np.testing.assert_allclose(basis, expected, atol=1e-14)
    assert spec.interior_knots == () and spec.boundary_knots == (5.0, 98.0)


def test_interior_knots_are_type7_quantiles() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(5, 98, 101)
    spec = BSplineBasis.from_data(x, df=6)
    xs = np.sort(x)
    # R's quantile type 7 at 1/4, 2/4, 3/4: h = (n - 1) p, linear interpolation of order stats
    expected = []
    for p in (0.25, 0.5, 0.75):
        h = (x.size - 1) * p
        lo = int(np.floor(h))
        expected.append(xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo]))
    np.testing.assert_allclose(spec.interior_knots, expected, rtol=1e-14)
    assert spec.df == 6


def test_basis_matches_scipy_and_partition_of_unity() -> None:
    rng = np.random.default_rng(1)
    x = np.sort(rng.uniform(5, 98, 300))
    spec = BSplineBasis.from_data(x, df=7)
    ref = BSpline.design_matrix(x, spec.knots, 3).toarray()
    np.testing.assert_allclose(spec.transform(x), ref[:, 1:], atol=1e-14)
    full = BSplineBasis.from_data(x, df=8, intercept=True).transform(x)
    np.testing.assert_allclose(full.sum(1), 1.0, atol=1e-14)


def test_outside_values_continue_the_boundary_polynomials() -> None:
    x = np.linspace(5, 98, 50)
    spec = BSplineBasis.from_data(x, df=4)
    new = np.array([0.0, 4.0, 99.0, 110.0])
    n_full = spec.df + 1
    ref = np.column_stack(
        [BSpline(spec.knots, np.eye(n_full)[i], 3, extrapolate=True)(new) for i in range(n_full)]
    )[:, 1:]
    np.testing.assert_allclose(spec.transform(new), ref, atol=1e-12)
    assert spec.outside(new).tolist() == [True, True, True, True]
    assert not spec.outside(x).any()


def test_round_trip_through_dict_keeps_the_basis() -> None:
    spec = BSplineBasis.from_data(np.random.default_rng(2).uniform(5, 98, 40), df=5)
    back = BSplineBasis.from_dict(spec.to_dict())
    assert back == spec
    np.testing.assert_array_equal(back.transform([10.0, 50.0]), spec.transform([10.0, 50.0]))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="too small"):
        BSplineBasis.from_data([1.0, 2.0, 3.0], df=2)
    with pytest.raises(ValueError, match="distinct"):
        BSplineBasis.from_data([1.0, 1.0], df=3)
