"""``surrogate generate`` into a data set of another number of regions is refused before any
simulation (it simulated every group, then refused the first shard). Expectation by
construction: the folder's manifest says N=5, this run's SC has N=6."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.surrogate import generate as gen
from delssome_norms.surrogate.dataset import MANIFEST, _new_manifest


def _sc(n: int) -> np.ndarray:
    rng = np.random.default_rng(5)
    sc = rng.uniform(0.2, 1.0, (n, n))
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def test_generate_into_a_data_set_of_another_n_is_refused_before_simulating(tmp_path: Path) -> None:
    out = tmp_path / "data"
    out.mkdir()
    (out / MANIFEST).write_text(json.dumps(_new_manifest(5, 10000, {"settings": {}})))
    start = time.perf_counter()
    with pytest.raises(InvalidInputError, match=r"N=5 regions; this run's SC .* has N=6"):
        gen.generate_dataset(
            out, gen.quick_settings(n_subjects=2, group_size=1), sc=_sc(6), progress=False
        )
    assert time.perf_counter() - start < 5  # nothing was simulated
    assert sorted(p.name for p in out.iterdir()) == [MANIFEST]
