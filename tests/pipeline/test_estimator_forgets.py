"""A refit whose inputs are refused leaves no earlier subject's result on the estimator."""

from __future__ import annotations

import numpy as np
import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.pipeline import EIEstimator


def test_refused_inputs_clear_the_previous_result() -> None:
    est = EIEstimator(generations=2)
    est.__dict__.update(result_="subject A's result", outcome_="A", settings_="A")  # a done fit
    fc = np.eye(68)
    fc[0, 1], fc[1, 0] = 0.5, 0.1  # asymmetric: refused before any fit
    with pytest.raises(InvalidInputError, match="symmetric"):
        est.fit(fc, np.linspace(0, 1, 10000), tr=0.72, scan_length=432.0)
    assert not hasattr(est, "result_") and not hasattr(est, "outcome_")
