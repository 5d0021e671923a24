"""A surrogate-mode cohort's timing warning, given before any work, names the subjects of each TR
and scan length outside the weights' range (it only counted them), and a subject whose scan
length is unknown does not shift the ids of the others.

Expectation built by hand: the manifest gives sub-01 and sub-03 a TR of 0.8 s, outside the
tiny weights' trained range [0.72, 0.72] s.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from fit_helpers import analytic_cohort_settings, tiny_surrogate_weights, write_manifest

from delssome_norms.errors import InvalidInputError, SurrogateTimingWarning
from delssome_norms.fit import run_cohort
from delssome_norms.surrogate import SURROGATE_BACKEND


def test_cohort_timing_warning_names_the_subjects_outside(tmp_path: Path) -> None:
    manifest = write_manifest(tmp_path, 4)
    table = pd.read_csv(manifest)
    table.loc[[1, 3], "tr"] = 0.8  # 14.4 s = 18 frames at 0.8 s
    table.to_csv(manifest, index=False)
    weights = tiny_surrogate_weights(tmp_path / "weights")
    settings = replace(analytic_cohort_settings(), mode="surrogate", surrogate_weights=str(weights))
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")  # the run stops at --out-dir, right after the check before any work
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InvalidInputError):
            run_cohort(manifest, blocker, settings, quiet=True, surrogate=SURROGATE_BACKEND)
    timing = [str(c.message) for c in caught if issubclass(c.category, SurrogateTimingWarning)]
    assert len(timing) == 1
    assert (
        "TR 0.8 s is outside the trained range [0.72, 0.72] s (2 subjects: sub-01, sub-03)"
        in (timing[0])
    )
