"""Fixtures of the model tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def template_sc() -> np.ndarray:
    """The packaged default SC (68 x 68), scaled to max 0.02."""
    from delssome_norms.datasets import load_default_template
    from delssome_norms.model import scale_sc

    return scale_sc(np.asarray(load_default_template().sc, dtype=np.float64))
