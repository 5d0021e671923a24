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


@pytest.mark.parametrize("factor", [1e-9, 1e6])
def test_target_on_an_extreme_scale_is_refused(factor):
    # at these scales the fit "converged" to z-scores off by up to 1.6 (sd of z 0.53 at 1e-9)
    truth = make_truth(n_targets=1, n_sites=3, seed=0)
    table = simulate_cohort(truth, 300, seed=1)
    table[truth.targets[0]] *= factor
    with pytest.raises(InvalidInputError, match=rf"{truth.targets[0]} \(sd .*rescale"):
        GrowthChart().fit(table, targets=truth.targets)


def test_target_rescaled_within_the_range_gives_the_same_z_scores():
    truth = make_truth(n_targets=1, n_sites=3, seed=0)
    table = simulate_cohort(truth, 400, seed=1)
    target = truth.targets[0]
    z = GrowthChart().fit(table, targets=[target]).score(table)[f"{target}_z"].to_numpy()
    small = table.copy()
    small[target] *= 1e-5
    z_small = GrowthChart().fit(small, targets=[target]).score(small)[f"{target}_z"].to_numpy()
    assert abs(z_small - z).max() < 0.05
