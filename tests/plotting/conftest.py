"""Fixtures of the figure tests: a small simulated cohort and its statistics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import region_classes


@pytest.fixture(scope="session")
def cohort_table() -> pd.DataFrame:
    """600 people, 68 regions, 4 sites; sensory regions +0.08, women +0.03."""
    rng = np.random.default_rng(0)
    n = 600
    age = rng.uniform(5, 95, n)
    female = rng.random(n) < 0.5
    site = rng.integers(0, 4, n)
    base = 1.0 + 0.5 * np.exp(-(age - 5) / 6) + 0.03 * female + rng.normal(0, 0.05, 4)[site]
    person = 0.08 * rng.standard_normal(n)
    bump = np.where(region_classes() == "sensory", 0.08, 0.0)
    rois = base[:, None] + bump[None, :] + person[:, None] + 0.05 * rng.standard_normal((n, 68))
    table = pd.DataFrame(rois, columns=[f"ei_ratio_roi_{i}" for i in range(68)])
    table.insert(0, "site", [f"s{k}" for k in site])
    table.insert(0, "sex", np.where(female, "female", "male"))
    table.insert(0, "age_in_years", age)
    table.insert(0, "subject_id", [f"sub-{i}" for i in range(n)])
    table["ei_ratio_mean"] = rois.mean(axis=1)
    return table
