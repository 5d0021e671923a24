"""``simulate`` with parameters that name their regions writes an FC that names them too.

The FC is then matched by name wherever it is read back (as a fit's ``--fc``), so a reordered
SC or FC cannot be silently taken in the wrong order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning
from delssome_norms.io import read_fc

NAMES = ["north", "east", "south", "west"]
SHORT = ["--tr", "0.72", "--scan-length", "14.4", "--dt", "0.005", "--burn-in", "1.44"]
SHORT += ["--fcd-window", "5", "--warmup-steps", "100", "--n-dup", "1", "--seed", "3"]


def _inputs(d, names) -> list[str]:
    rng = np.random.default_rng(0)
    sc = rng.random((4, 4))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    np.savetxt(d / "sc.csv", sc, delimiter=",")
    table = {"region_index": range(4), "wEE": 3.0, "wEI": 2.5, "sigma": 0.005, "G": 1.0}
    if names is not None:
        table = {
            "region_index": range(4),
            "region": names,
            **{k: v for k, v in table.items() if k != "region_index"},
        }
    pd.DataFrame(table).to_csv(d / "p.csv", index=False)
    return ["simulate", "--params", str(d / "p.csv"), "--sc", str(d / "sc.csv"), *SHORT]


def test_named_parameters_give_a_named_fc_with_the_same_values(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main([*_inputs(tmp_path / "a", NAMES), "--out-dir", str(tmp_path / "a" / "sim")]) == 0
    assert main([*_inputs(tmp_path / "b", None), "--out-dir", str(tmp_path / "b" / "sim")]) == 0
    named = pd.read_csv(tmp_path / "a" / "sim" / "FC.csv", index_col=0)
    assert list(named.columns) == NAMES and list(named.index) == NAMES
    plain = np.loadtxt(tmp_path / "b" / "sim" / "FC.csv", delimiter=",")
    np.testing.assert_array_equal(named.to_numpy(), plain)  # same seed: same simulation
    with pytest.warns(InputWarning, match="file order"):  # another atlas: named, read as written
        back = read_fc(tmp_path / "a" / "sim" / "FC.csv")
    np.testing.assert_array_equal(back, plain)
