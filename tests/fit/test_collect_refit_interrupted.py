"""``collect`` names a subject whose ``--overwrite`` refit stopped before its result: its earlier
results wait in ``previous/`` (not "not started"), and the way forward is to rerun the cohort."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import analytic_cohort_settings, use_analytic_simulator, write_manifest

from delssome_norms.errors import InputWarning
from delssome_norms.fit import collect, run_cohort
from delssome_norms.fit.outputs import set_aside_previous


def test_a_stopped_refit_is_named_with_its_previous_results(tmp_path: Path, monkeypatch) -> None:
    use_analytic_simulator(monkeypatch)
    manifest = write_manifest(tmp_path, 2)
    out = tmp_path / "out"
    run_cohort(manifest, out, analytic_cohort_settings(), group_size=2, quiet=True)
    set_aside_previous(out / "sub-01")  # what --overwrite does before it refits; then stopped
    demo = tmp_path / "demo.csv"
    pd.DataFrame(
        {"subject_id": ["sub-00", "sub-01"], "age_in_years": [30, 40], "sex": ["F", "M"]}
    ).to_csv(demo, index=False)
    with pytest.warns(InputWarning, match="have no finished results") as record:
        collect(out, demo, tmp_path / "table.csv")
    text = next(str(w.message) for w in record if "have no finished results" in str(w.message))
    assert "1 refit interrupted (sub-01: an --overwrite refit stopped" in text
    assert "previous/ folder; rerun the cohort command" in text and "not started" not in text
    assert (out / "sub-01" / "previous" / "run.json").is_file()
