"""Simulated cohorts with known sex and region-group effects for the statistics tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import region_classes


def lifespan_curve(age: np.ndarray) -> np.ndarray:
    """E/I-like mean curve: steep fall in childhood, plateau, mid-life fall, late rise."""
    return (
        1.0
        + 0.5 * np.exp(-(age - 5.0) / 6.0)
        - 0.15 * np.clip((age - 35.0) / 30.0, 0.0, 1.0)
        + 0.2 * np.clip((age - 75.0) / 20.0, 0.0, None) ** 2
    )


def simulate_cohort(
    n: int = 1200,
    n_rois: int = 4,
    *,
    mean_gap: float | Callable[[np.ndarray], np.ndarray] = 0.0,
    sigma_ratio: float = 1.0,
    sensory_offset: float = 0.0,
    n_sites: int = 5,
    noise: str = "normal",
    seed: int = 0,
) -> pd.DataFrame:
    """Cohort table with ``ei_ratio_roi_0..n_rois-1`` and ``ei_ratio_mean``.

    Each target is ``curve(age) + site offset + female * mean_gap(age) + sd * e`` with
    ``sd = 0.08 (1 + age/100) * site_scale * (sigma_ratio if female)``. ``e`` is standard normal
    (regions correlated through a shared person effect), or for ``noise="skewed"`` a centred,
    unit-variance lognormal (same shape for both sexes). Sensory regions get ``sensory_offset``.
    """
    rng = np.random.default_rng(seed)
    age = rng.uniform(5.0, 95.0, n)
    site = rng.integers(0, n_sites, n)
    female = rng.random(n) < rng.uniform(0.35, 0.65, n_sites)[site]
    offset = rng.normal(0.0, 0.05, n_sites)[site]
    scale = np.exp(rng.normal(0.0, 0.15, n_sites))[site]
    sd = 0.08 * (1.0 + age / 100.0) * scale * np.where(female, sigma_ratio, 1.0)
    gap = mean_gap(age) if callable(mean_gap) else np.full(n, float(mean_gap))
    shared = rng.standard_normal(n)
    classes = region_classes()
    table = {
        "subject_id": [f"sub-{i:05d}" for i in range(n)],
        "age_in_years": age,
        "sex": np.where(female, "female", "male"),
        "site": [f"site{j}" for j in site],
    }
    for j in range(n_rois):
        if noise == "skewed":
            s = 0.5
            e = (np.exp(s * rng.standard_normal(n)) - np.exp(s * s / 2)) / np.sqrt(
                (np.exp(s * s) - 1.0) * np.exp(s * s)
            )
        else:
            e = np.sqrt(0.5) * shared + np.sqrt(0.5) * rng.standard_normal(n)
        bump = sensory_offset if classes[j % 68] == "sensory" else 0.0
        table[f"ei_ratio_roi_{j}"] = lifespan_curve(age) + bump + offset + female * gap + sd * e
    frame = pd.DataFrame(table)
    frame["ei_ratio_mean"] = frame[[f"ei_ratio_roi_{j}" for j in range(n_rois)]].mean(axis=1)
    return frame


@pytest.fixture(scope="session")
def make_cohort() -> Callable[..., pd.DataFrame]:
    """The :func:`simulate_cohort` factory."""
    return simulate_cohort
