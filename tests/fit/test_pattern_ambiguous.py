"""``pattern_ambiguous``: an equally good tested candidate with another regional pattern.

The near-optimal test candidates (test cost within the noise tolerance of the winner's) are
compared with the winner by the Pearson r of their regional E/I; below
``quality.PATTERN_R_MIN`` the fit is flagged, since it cannot tell which pattern is the
subject's. A candidate costing more than the tolerance does not count.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from fit_helpers import stage_rows

from delssome_norms.fit import profile_points
from delssome_norms.fit import quality as q
from delssome_norms.fit import uncertainty as unc

N = 8
RISING = np.linspace(2.5, 3.5, N)
FALLING = RISING[::-1].copy()


_stage = stage_rows


def _profile(tol_sd: float) -> dict:
    """A profile of the winner alone whose duplicate costs have standard deviation ``tol_sd``."""
    prof = _stage([1.0], [RISING], n_dup=4)
    prof["dup_total"] = np.array([[1.0 - tol_sd, 1.0 + tol_sd, 1.0 - tol_sd, 1.0 + tol_sd]])
    prof["kind"] = np.array([profile_points.KIND_WINNER])
    prof["position"] = np.array([0.0])
    return prof


def test_min_pattern_r_is_the_lowest_pearson_r() -> None:
    members = np.stack([RISING + 0.1, FALLING, np.where(np.arange(N) < 4, 3.0, 3.2)])
    expected = min(np.corrcoef(RISING, m)[0, 1] for m in members)
    assert q.min_pattern_r(RISING, members) == pytest.approx(expected) == pytest.approx(-1.0)
    assert math.isnan(q.min_pattern_r(RISING, np.empty((0, N))))
    assert math.isnan(q.min_pattern_r(RISING, np.full((1, N), 3.0)))  # a flat map has no r


def test_an_equally_good_reversed_pattern_flags_the_fit() -> None:
    test = _stage([1.0, 1.01], [RISING, FALLING])
    spread = unc.log_spread(test, 0, _profile(0.05))
    assert spread["near_optimal_test"] == 1
    assert spread["near_optimal_pattern_r"] == pytest.approx(-1.0)
    verdict = q.assess({k: v for k, v in spread.items() if k not in ("region", "mean")})
    assert verdict["reasons"] == ["pattern_ambiguous"]


def test_a_worse_reversed_candidate_or_an_alike_one_does_not() -> None:
    worse = unc.log_spread(_stage([1.0, 2.0], [RISING, FALLING]), 0, _profile(0.05))
    assert worse["near_optimal_test"] == 0 and math.isnan(worse["near_optimal_pattern_r"])
    alike = unc.log_spread(_stage([1.0, 1.01], [RISING, RISING * 1.2]), 0, _profile(0.05))
    assert alike["near_optimal_pattern_r"] == pytest.approx(1.0)
    for spread in (worse, alike):
        metrics = {k: v for k, v in spread.items() if k not in ("region", "mean")}
        assert "pattern_ambiguous" not in q.assess(metrics)["reasons"]


@pytest.mark.parametrize(("r", "flagged"), [(q.PATTERN_R_MIN - 0.01, True), (q.PATTERN_R_MIN, False)])
def test_threshold(r, flagged) -> None:
    assert ("pattern_ambiguous" in q.assess({"near_optimal_pattern_r": r})["reasons"]) is flagged
