"""Near-minimax polynomial coefficients of the fused CPU kernel's float32 exp and log.

The kernel (``delssome_norms/model/kernels/pfic_cpu.cpp``) evaluates exp(r) on [-ln2/2, ln2/2]
and atanh(s)/s as a polynomial in s^2 on [0, ((sqrt2 - 1)/(sqrt2 + 1))^2] (the log's reduced
range). Taylor series need degree 8 and 4 (in s^2) for float32 accuracy; polynomials that
minimise the maximum *relative* error reach it with degree 6 and 3, two and one fewer
multiply-adds per call in the simulator's innermost loop. This script computes them with
Lawson's iteratively reweighted least squares (which converges to the minimax solution) on a
dense Chebyshev-distributed grid, in float64, and prints them with 9 significant digits (enough
to round-trip float32) and their maximum relative error.

Usage: ``python scripts/minimax_coefficients.py``
"""

from __future__ import annotations

import numpy as np

LN2_HALF = float(np.log(2.0) / 2.0)
S_MAX = float((np.sqrt(2.0) - 1.0) / (np.sqrt(2.0) + 1.0))


def minimax_relative(f, a: float, b: float, degree: int, n: int = 6000, iterations: int = 300):
    """Coefficients (increasing powers) minimising max |p(x) / f(x) - 1| on [a, b] (Lawson)."""
    x = (a + b) / 2 + (b - a) / 2 * np.cos(np.linspace(0.0, np.pi, n))
    y = f(x)
    a_mat = np.vander(x, degree + 1, increasing=True) / y[:, None]  # rows: p(x) / f(x)
    w = np.full(n, 1.0 / n)
    for _ in range(iterations):
        sw = np.sqrt(w)
        c, *_ = np.linalg.lstsq(a_mat * sw[:, None], sw, rcond=None)
        err = np.abs(a_mat @ c - 1.0)
        w = w * err
        w /= w.sum()
    return c, float(np.abs(a_mat @ c - 1.0).max())


def atanh_over_s(u: np.ndarray) -> np.ndarray:
    """atanh(s) / s as a function of u = s^2 (1 at u = 0)."""
    s = np.sqrt(np.maximum(u, 1e-300))
    return np.where(u > 1e-300, np.arctanh(s) / s, 1.0)


def main() -> None:
    for name, f, a, b, deg in (
        ("exp(r), r in [-ln2/2, ln2/2]", np.exp, -LN2_HALF, LN2_HALF, 6),
        ("atanh(s)/s in u = s^2", atanh_over_s, 0.0, S_MAX**2, 3),
    ):
        c, err = minimax_relative(f, a, b, deg)
        print(f"{name}: degree {deg}, max relative error {err:.2e} (float64)")
        print("  {" + ", ".join(f"{v:.9g}f" for v in c) + "}")


if __name__ == "__main__":
    main()
