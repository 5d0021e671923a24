"""A surrogate-mode cohort whose manifest names an SC other than the weights' is refused before
any work (each subject failed alone at the start of its fit before, after the out-dir was made);
the weights' own SC passes the check. Expectation by construction: the tiny weights were
trained on ``tiny_sc()``; ``tiny_sc(seed=7)`` is another matrix."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import analytic_cohort_settings, tiny_sc, tiny_surrogate_weights, write_manifest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import run_cohort
from delssome_norms.io import write_matrix
from delssome_norms.surrogate import SURROGATE_BACKEND


def _settings(tmp_path: Path):
    weights = tiny_surrogate_weights(tmp_path / "weights")
    return replace(analytic_cohort_settings(), mode="surrogate", surrogate_weights=str(weights))


def test_a_cohort_with_another_sc_is_refused_before_the_out_dir(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 2)
    write_matrix(tiny_sc(seed=7), tmp_path / "data" / "other_sc.csv")
    table = pd.read_csv(manifest)
    table["sc"] = "data/other_sc.csv"
    table.to_csv(manifest, index=False)
    out = tmp_path / "fits"
    with pytest.raises(InvalidInputError, match=r"cohort SC \S*other_sc\.csv: .*differs from"):
        run_cohort(manifest, out, _settings(tmp_path), quiet=True, surrogate=SURROGATE_BACKEND)
    assert not out.exists()


def test_the_weights_own_sc_passes_the_check(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 2)  # data/sc.csv is tiny_sc(): the weights' SC
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")  # stops right after the checks before any work
    with pytest.raises(InvalidInputError, match=r"not a folder|exists"):
        run_cohort(manifest, blocker, _settings(tmp_path), quiet=True, surrogate=SURROGATE_BACKEND)


def test_an_unreadable_sc_fails_its_subject_not_the_cohort(tmp_path: Path, monkeypatch) -> None:
    """A missing SC file is its subject's input failure (failures.csv), as in Euler mode; only
    an SC that reads and differs from the weights' refuses the cohort."""
    from fit_helpers import use_analytic_simulator

    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 3)
    table = pd.read_csv(manifest)
    table.loc[1, "sc"] = "data/missing_sc.csv"
    table.to_csv(manifest, index=False)
    out = tmp_path / "fits"
    run_cohort(manifest, out, _settings(tmp_path), quiet=True, surrogate=SURROGATE_BACKEND)
    failures = pd.read_csv(out / "failures.csv", dtype=str)
    assert failures["subject_id"].tolist() == ["sub-01"]
    assert (out / "sub-00" / "EI_ratio.csv").is_file() and (out / "sub-02" / "EI_ratio.csv").is_file()
