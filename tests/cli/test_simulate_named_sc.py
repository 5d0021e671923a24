"""``simulate`` matches a named SC (and FC) to the parameters' ``region`` column by name.

A fine atlas's ``best_parameters.csv`` names its regions; an SC of that atlas saved with its
names in another order was paired row by row with the parameters (a warning said only that the
names were not DK68's), so each region was simulated with another region's connections.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning

NAMES = [f"7Networks_{h}_Vis_{i}" for h in ("LH", "RH") for i in (1, 2, 3)]
SHORT = ["--tr", "0.72", "--scan-length", "14.4", "--dt", "0.005", "--burn-in", "1.44"]
SHORT += ["--fcd-window", "5", "--warmup-steps", "100", "--n-dup", "1", "--seed", "3"]


def _setup(tmp_path):
    rng = np.random.default_rng(0)
    sc = rng.random((6, 6))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    pd.DataFrame(
        {
            "region_index": range(6),
            "region": NAMES,
            "wEE": np.linspace(2.5, 4.0, 6),  # regions differ, so their order matters
            "wEI": np.linspace(2.0, 3.0, 6),
            "sigma": 0.005,
            "G": 1.5,
        }
    ).to_csv(tmp_path / "p.csv", index=False)
    return sc


def _sc_file(path, sc, order):
    names = [NAMES[i] for i in order]
    pd.DataFrame(sc[np.ix_(order, order)], index=names, columns=names).to_csv(path)
    return path


def _run(tmp_path, sc_path, out):
    argv = ["simulate", "--params", str(tmp_path / "p.csv"), "--sc", str(sc_path)]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        code = main([*argv, *SHORT, "--out-dir", str(tmp_path / out)])
    return code, [str(w.message) for w in record if issubclass(w.category, InputWarning)]


def test_named_sc_in_another_order_is_matched_by_name(tmp_path) -> None:
    sc = _setup(tmp_path)
    code, _ = _run(tmp_path, _sc_file(tmp_path / "sc.csv", sc, range(6)), "a")
    assert code == 0
    shuffled = [3, 0, 5, 1, 4, 2]
    code, said = _run(tmp_path, _sc_file(tmp_path / "sc_shuf.csv", sc, shuffled), "b")
    assert code == 0
    assert any("put in the order of the parameters' region column" in w for w in said)
    a, b = (pd.read_csv(tmp_path / d / "EI_ratio.csv") for d in ("a", "b"))
    np.testing.assert_array_equal(a["EI_ratio"].to_numpy(), b["EI_ratio"].to_numpy())
    # taken in file order, the same SC gives another simulation (the test can fail)
    np.savetxt(tmp_path / "plain.csv", sc[np.ix_(shuffled, shuffled)], delimiter=",")
    assert _run(tmp_path, tmp_path / "plain.csv", "c")[0] == 0
    c = pd.read_csv(tmp_path / "c" / "EI_ratio.csv")
    assert not np.array_equal(a["EI_ratio"].to_numpy(), c["EI_ratio"].to_numpy())


def test_sc_naming_other_regions_is_refused(tmp_path, capsys) -> None:
    sc = _setup(tmp_path)
    other = [n.replace("Vis", "Default") for n in NAMES]
    pd.DataFrame(sc, index=other, columns=other).to_csv(tmp_path / "sc.csv")
    code, _ = _run(tmp_path, tmp_path / "sc.csv", "a")
    assert code == 2
    err = capsys.readouterr().err
    assert "sc.csv" in err and "Traceback" not in err
    assert not (tmp_path / "a" / "EI_ratio.csv").exists()
