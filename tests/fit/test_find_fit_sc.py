"""``find_fit_sc``: the SC a fit read is found by its digest, in the fit's region order.

The fit digests its SC after putting it in its FC's region order; an SC file of another atlas
that names its regions in another order has that digest only once reordered by name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.fit.reproduce import WinnerRecord, find_fit_sc
from delssome_norms.io.digest import arrays_sha256

NAMES = ("alpha", "beta", "gamma", "delta", "epsilon")


def _sc(seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).uniform(0.1, 1.0, (5, 5))
    a = (a + a.T) / 2
    np.fill_diagonal(a, 0.0)
    return a


def _write(values: np.ndarray, names, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(values, columns=list(names)).to_csv(path, index=False)


def _record(run_dir: Path, sha: str, regions) -> WinnerRecord:
    return WinnerRecord(
        path=run_dir / "run.json", seed=0, row=0, batch_size=1, n_dup=1, dtype="float32",
        device="cpu", engine="auto", timing={}, sc="sc.csv", sc_sha256=sha, sc_template=False,
        combined=False, regions=regions,
    )  # fmt: skip


def test_the_file_with_the_fits_digest_in_another_order_is_chosen(tmp_path, monkeypatch) -> None:
    fit_sc = _sc(1)
    perm = np.array([3, 0, 4, 1, 2])  # the file lists the fit's regions in this order
    _write(fit_sc[np.ix_(perm, perm)], [NAMES[i] for i in perm], tmp_path / "study" / "sc.csv")
    _write(_sc(2), NAMES, tmp_path / "study" / "out" / "sub-01" / "sc.csv")  # another SC, nearer
    monkeypatch.chdir(tmp_path)
    rec = _record(tmp_path / "study" / "out" / "sub-01", arrays_sha256(fit_sc), NAMES)
    assert find_fit_sc(rec) == tmp_path / "study" / "sc.csv"


def test_without_recorded_regions_the_file_order_is_compared(tmp_path, monkeypatch) -> None:
    fit_sc = _sc(1)
    _write(_sc(2), NAMES, tmp_path / "study" / "out" / "sc.csv")
    _write(fit_sc, NAMES, tmp_path / "study" / "sc.csv")
    monkeypatch.chdir(tmp_path)
    rec = _record(tmp_path / "study" / "out", arrays_sha256(fit_sc), None)
    assert find_fit_sc(rec) == tmp_path / "study" / "sc.csv"


def test_no_candidate_is_one_clear_error(tmp_path, monkeypatch) -> None:
    from delssome_norms.errors import InvalidInputError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInputError, match="is not a file here"):
        find_fit_sc(_record(tmp_path / "out", "0" * 64, NAMES))
