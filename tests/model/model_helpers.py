"""Helpers shared by the model tests (imported by name; not fixtures)."""

from __future__ import annotations

import numpy as np


def rate_numpy(x, a: float, b: float, d: float):
    """H(x; a, b, d) = (a x - b) / (1 - exp(-d (a x - b))) [Hz] in numpy (docs/science.md §2)."""
    y = a * x - b
    return y / (1.0 - np.exp(-d * y))


def random_params(rng: np.random.Generator, B: int, N: int, stable: bool = False, sigma: float = 0.005):
    """Random in-bounds regional parameters (docs/science.md §5 bounds).

    ``stable=True`` draws only from the region where the FIC fixed point of an isolated node is
    linearly stable (wEI >= 0.6 wEE + 0.2, wEE <= 6), which the noise-free FIC test needs.
    """
    from delssome_norms.model import PFICParams

    if stable:
        wee = rng.uniform(1.0, 6.0, (B, N))
        wei = rng.uniform(np.minimum(0.6 * wee + 0.2, 5.0), 5.0)
        G = rng.uniform(0.0, 1.5, B)
    else:
        wee = rng.uniform(1.0, 10.0, (B, N))
        wei = rng.uniform(0.0, 5.0, (B, N))
        G = rng.uniform(0.0, 3.0, B)
    return PFICParams(wee, wei, np.full((B, N), sigma), G)
