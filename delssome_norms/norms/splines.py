"""B-spline bases compatible with R's ``splines::bs(x, df, degree = 3)``.

R's ``bs(x, df = df, degree = 3)`` (no intercept) places ``df - degree`` interior knots at the
quantiles ``(1, ..., k) / (k + 1)`` of x (R's default quantile type 7, numpy's ``"linear"``),
boundary knots at ``range(x)``, builds the B-spline basis of order ``degree + 1`` on the knot
sequence with the boundary knots repeated ``degree + 1`` times, and drops the first basis column.
Values outside the boundary knots continue the polynomial piece of the nearest boundary interval
(R's Taylor expansion about a point inside that interval gives the same cubic).

The knots are part of the fitted model (:class:`BSplineBasis`), so a saved chart evaluates new ages
in the training basis. The basis functions are scipy's (:class:`scipy.interpolate.BSpline`); this
module adds R's knot placement. It is the toolkit's only B-spline implementation: the growth
charts (:mod:`delssome_norms.norms`) and the cohort statistics
(:class:`delssome_norms.stats.location_scale.SplineBasis`) both use it.

Examples
--------
>>> import numpy as np
>>> basis = BSplineBasis.from_data(np.linspace(5, 95, 11), df=4)
>>> basis.interior_knots, basis.boundary_knots
((50.0,), (5.0, 95.0))
>>> basis.transform([5.0, 50.0, 95.0]).round(4)
array([[0.  , 0.  , 0.  , 0.  ],
       [0.25, 0.5 , 0.25, 0.  ],
       [0.  , 0.  , 0.  , 1.  ]])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.interpolate import BSpline


def _basis_functions(x: np.ndarray, knots: np.ndarray, degree: int) -> np.ndarray:
    """All B-spline basis functions of ``degree`` on the full knot sequence at ``x``.

    :meth:`scipy.interpolate.BSpline.design_matrix` with ``extrapolate=True``: x at the right
    boundary belongs to the last interval and x outside the boundary knots evaluates the
    polynomial piece of the boundary interval, as R's ``bs()``. Non-finite x give rows of NaN.

    Returns
    -------
    ndarray of shape (len(x), len(knots) - degree - 1)
    """
    finite = np.isfinite(x)
    if finite.all():
        return BSpline.design_matrix(x, knots, degree, extrapolate=True).toarray()
    out = np.full((x.shape[0], len(knots) - degree - 1), np.nan)
    out[finite] = BSpline.design_matrix(x[finite], knots, degree, extrapolate=True).toarray()
    return out


@dataclass(frozen=True)
class BSplineBasis:
    """A fixed B-spline basis: R's ``bs()`` with its knots frozen at training time.

    Attributes
    ----------
    interior_knots : tuple of float
        Interior knots (years).
    boundary_knots : tuple of float
        (lower, upper) boundary knots (years).
    degree : int
        Polynomial degree (3 = cubic).
    intercept : bool
        Whether the first basis column is kept (R's default ``intercept = FALSE`` drops it).
    """

    interior_knots: tuple[float, ...]
    boundary_knots: tuple[float, float]
    degree: int = 3
    intercept: bool = False

    @classmethod
    def from_data(cls, x, df: int, degree: int = 3, intercept: bool = False) -> BSplineBasis:
        """Choose knots from data as R's ``bs(x, df = df, degree = degree)`` does.

        Parameters
        ----------
        x : array-like of shape (n,)
            Covariate values (e.g. ages in years); must be finite with a positive range.
        df : int
            Number of basis columns; ``df - degree - intercept`` interior knots (at least 0).
        """
        x = np.asarray(x, dtype=np.float64).ravel()
        if x.size < 2 or not np.all(np.isfinite(x)) or np.ptp(x) <= 0:
            raise ValueError("bs() needs at least two distinct finite values")
        n_interior = int(df) - degree - int(intercept)
        if n_interior < 0:
            raise ValueError(f"df = {df} is too small for degree {degree} (need df >= {degree})")
        probs = np.linspace(0.0, 1.0, n_interior + 2)[1:-1]
        interior = np.quantile(x, probs, method="linear") if n_interior else np.empty(0)
        return cls(
            interior_knots=tuple(float(k) for k in interior),
            boundary_knots=(float(x.min()), float(x.max())),
            degree=int(degree),
            intercept=bool(intercept),
        )

    @property
    def df(self) -> int:
        """Number of basis columns."""
        return len(self.interior_knots) + self.degree + int(self.intercept)

    @property
    def knots(self) -> np.ndarray:
        """Full knot sequence (boundary knots repeated ``degree + 1`` times)."""
        lo, hi = self.boundary_knots
        return np.concatenate(
            [np.full(self.degree + 1, lo), self.interior_knots, np.full(self.degree + 1, hi)]
        )

    def transform(self, x) -> np.ndarray:
        """Evaluate the basis at ``x``.

        Parameters
        ----------
        x : array-like of shape (n,)

        Returns
        -------
        ndarray of shape (n, df), float64. Rows outside the boundary knots continue the boundary
        polynomial pieces (callers flag such rows; see ``GrowthChart.score``).
        """
        x = np.asarray(x, dtype=np.float64).ravel()
        basis = _basis_functions(x, self.knots, self.degree)
        return basis if self.intercept else basis[:, 1:]

    def outside(self, x) -> np.ndarray:
        """Boolean mask of values outside the boundary knots."""
        x = np.asarray(x, dtype=np.float64)
        lo, hi = self.boundary_knots
        return (x < lo) | (x > hi)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (knots as lists of floats)."""
        return {
            "interior_knots": list(self.interior_knots),
            "boundary_knots": list(self.boundary_knots),
            "degree": self.degree,
            "intercept": self.intercept,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BSplineBasis:
        """Inverse of :meth:`to_dict`."""
        lo, hi = data["boundary_knots"]
        return cls(
            interior_knots=tuple(float(k) for k in data["interior_knots"]),
            boundary_knots=(float(lo), float(hi)),
            degree=int(data["degree"]),
            intercept=bool(data["intercept"]),
        )


def bs(x, df: int, degree: int = 3, intercept: bool = False) -> tuple[np.ndarray, BSplineBasis]:
    """R's ``splines::bs(x, df, degree)``: the basis matrix and the frozen basis.

    Returns
    -------
    basis : ndarray of shape (n, df)
    spec : BSplineBasis
        Evaluate new values in the same basis with ``spec.transform(x_new)``.
    """
    spec = BSplineBasis.from_data(x, df=df, degree=degree, intercept=intercept)
    return spec.transform(x), spec
