"""Review (Python API vs files): pandas labels are read as the file readers read headers.

``subject_from_arrays`` given DataFrames/Series labelled with region names gives the same subject
(FC, SC, maps, region names) as ``load_subject`` given the same data written as CSV files whose
header rows carry those labels:

a. all 68 DK68 regions, shuffled, spelled ``ctx-lh-x`` on the FC and ``lh_x`` on the SC: DK68
   order, canonical names;
b. 34 DK68 regions (one hemisphere) in reverse order, spelled differently on FC and SC: those
   regions in DK68 order, canonical names (before: the given order and the raw labels, or a
   refusal for the other spelling);
c. another atlas's names (``NetA .. NetJ``) shuffled differently on every input: the FC's order
   and names, the others matched to it by name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InputWarning
from delssome_norms.fit.subject import load_subject
from delssome_norms.pipeline.estimator import subject_from_arrays

TR, SCAN = 0.72, 864.0


def _ctx(name: str) -> str:
    return "ctx-" + name.replace("_", "-", 1)  # lh_insula -> ctx-lh-insula


def _left(name: str) -> str:
    return name.replace("lh_", "L_").replace("rh_", "R_")  # lh_insula -> L_insula


def _fc(n: int, rng: np.random.Generator) -> np.ndarray:
    ts = rng.standard_normal((200, n)) + 0.5 * rng.standard_normal((200, 1))
    upper = np.corrcoef(ts.T)[np.triu_indices(n, 1)]
    # nudged by a few ulp to values that the Fisher-z mean of one run (load_subject) gives back
    # bit for bit, so that the two paths can be compared exactly
    changed = np.tanh(np.arctanh(upper)) != upper
    while changed.any():
        upper[changed] = np.nextafter(upper[changed], 1.0)
        changed = np.tanh(np.arctanh(upper)) != upper
    fc = np.zeros((n, n))
    fc[np.triu_indices(n, 1)] = upper
    return fc + fc.T + np.eye(n)


def _sc(n: int, rng: np.random.Generator) -> np.ndarray:
    sc = rng.random((n, n))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0.0)
    return sc


def _square(values: np.ndarray, names: list[str], perm: np.ndarray) -> pd.DataFrame:
    labels = [names[i] for i in perm]
    return pd.DataFrame(values[np.ix_(perm, perm)], index=labels, columns=labels)


def _map(values: np.ndarray, names: list[str], perm: np.ndarray) -> pd.Series:
    return pd.Series(values[perm], index=[names[i] for i in perm])


def _compare(tmp_path: Path, fc: pd.DataFrame, sc: pd.DataFrame, myelin: pd.Series, gradient: pd.Series):
    cdf = np.sort(np.random.default_rng(9).random(10_000))
    paths = {k: str(tmp_path / f"{k}.csv") for k in ("fc", "sc", "myelin", "gradient", "cdf")}
    fc.to_csv(paths["fc"], index=False)  # a header row of the labels above the matrix
    sc.to_csv(paths["sc"], index=False)
    myelin.to_frame().T.to_csv(paths["myelin"], index=False)  # names above one row of values
    gradient.to_frame().T.to_csv(paths["gradient"], index=False)
    np.savetxt(paths["cdf"], cdf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)  # "put in ...'s order by name" notes
        api = subject_from_arrays(
            "s", fc, cdf, tr=TR, scan_length=SCAN, sc=sc, myelin=myelin, gradient=gradient
        )
        files = load_subject(
            "s", TR, SCAN, fc=paths["fc"], fcd_cdf=paths["cdf"], sc=paths["sc"],
            myelin=paths["myelin"], gradient=paths["gradient"],
        )  # fmt: skip
    for field in ("fc", "sc", "myelin", "gradient", "fcd_cdf"):
        np.testing.assert_array_equal(getattr(api, field), getattr(files, field), err_msg=field)
    assert api.regions == files.regions
    return api


def test_full_dk68_shuffled_with_mixed_spellings(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = list(DK68_REGIONS)
    fc, sc, myelin, gradient = _fc(68, rng), _sc(68, rng), rng.normal(size=68), rng.normal(size=68)
    s = _compare(
        tmp_path,
        _square(fc, [_ctx(n) for n in names], rng.permutation(68)),
        _square(sc, names, rng.permutation(68)),
        _map(myelin, [_left(n) for n in names], rng.permutation(68)),
        _map(gradient, [n.upper() for n in names], rng.permutation(68)),
    )
    assert s.regions == DK68_REGIONS
    np.testing.assert_array_equal(s.fc, fc)
    np.testing.assert_array_equal(s.sc, sc)
    np.testing.assert_array_equal(s.myelin, myelin)


@pytest.mark.parametrize("fc_spelling", [str, _ctx], ids=["lh_x", "ctx-lh-x"])
def test_dk_subset_in_reverse_order(tmp_path: Path, fc_spelling) -> None:
    rng = np.random.default_rng(1)
    lh = [n for n in DK68_REGIONS if n.startswith("lh_")]
    back = np.arange(34)[::-1]
    fc, sc, myelin, gradient = _fc(34, rng), _sc(34, rng), rng.normal(size=34), rng.normal(size=34)
    s = _compare(
        tmp_path,
        _square(fc, [fc_spelling(n) for n in lh], back),
        _square(sc, lh, back),
        _map(myelin, lh, back),
        _map(gradient, [_ctx(n) for n in lh], back),
    )
    assert s.regions == tuple(lh)  # those regions, in DK68 order, canonical names
    np.testing.assert_array_equal(s.fc, fc)
    np.testing.assert_array_equal(s.gradient, gradient)


def test_another_atlas_shuffled_between_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    names = [f"Net{c}" for c in "ABCDEFGHIJ"]
    fc, sc, myelin, gradient = _fc(10, rng), _sc(10, rng), rng.normal(size=10), rng.normal(size=10)
    perm = rng.permutation(10)
    s = _compare(
        tmp_path,
        _square(fc, names, perm),
        _square(sc, names, rng.permutation(10)),
        _map(myelin, names, rng.permutation(10)),
        _map(gradient, names, rng.permutation(10)),
    )
    assert s.regions == tuple(names[i] for i in perm)  # the FC's order and names
    np.testing.assert_array_equal(s.sc, sc[np.ix_(perm, perm)])
    np.testing.assert_array_equal(s.myelin, myelin[perm])
