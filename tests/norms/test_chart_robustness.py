"""Degenerate inputs to GrowthChart.fit give one clear error, not a silent unconverged chart."""

from __future__ import annotations

import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.norms import GrowthChart
from delssome_norms.norms.simulate import make_truth, simulate_cohort


def test_constant_target_is_refused():
    truth = make_truth(n_targets=2, n_sites=3, seed=0)
    table = simulate_cohort(truth, 300, seed=1)
    table[truth.targets[1]] = 1.25
    with pytest.raises(InvalidInputError, match=r"ei_ratio_roi_0 take one value only"):
        GrowthChart().fit(table, targets=truth.targets)
