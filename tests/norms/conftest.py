"""Shared fixtures of the growth-chart tests: synthetic cohorts with a known truth, fitted charts."""

from __future__ import annotations

import pandas as pd
import pytest

from delssome_norms.norms import GrowthChart
from delssome_norms.norms.simulate import make_truth, simulate_cohort


@pytest.fixture(scope="session")
def truth():
    """Generating model: 3 targets, 6 sites, SHASHo2 with skew and light tails."""
    return make_truth(n_targets=3, n_sites=6, seed=11)


@pytest.fixture(scope="session")
def train_table(truth) -> pd.DataFrame:
    return simulate_cohort(truth, 6000, seed=1, id_prefix="train")


@pytest.fixture(scope="session")
def heldout_table(truth) -> pd.DataFrame:
    return simulate_cohort(truth, 6000, seed=2, id_prefix="test")


@pytest.fixture(scope="session")
def fitted(train_table) -> GrowthChart:
    return GrowthChart().fit(train_table)


@pytest.fixture(scope="session")
def reference_input(cbig_dir) -> pd.DataFrame:
    return pd.read_csv(cbig_dir / "input" / "gamlss_input.csv")


@pytest.fixture(scope="session")
def reference_chart(reference_input) -> GrowthChart:
    """The paper's model on the 600-person reference input, all 69 targets."""
    return GrowthChart("SHASHo2", mu_df=4, sigma_df=3).fit(reference_input)
