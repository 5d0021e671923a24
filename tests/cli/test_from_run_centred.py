"""``simulate --from-run`` against a fit whose E/I level was centred in its near-optimal set.

The fit writes the winner's S_E, S_I and r_E and the E/I times ``exp(level_shift_log)``; a
re-simulation of ``best_parameters.csv`` gives the winner's own E/I, so the comparison must say
the two agree up to that recorded factor, and still warn when they do not.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from delssome_norms.cli.simulate_cmd import _compare_with_fit


@dataclass
class _Record:
    folder: Path
    level_shift_log: float
    combined: bool = False


def _fit(folder: Path, s_e, s_i, ei) -> None:
    folder.mkdir()
    pd.DataFrame({"region_index": range(len(ei)), "EI_ratio": ei, "S_E": s_e, "S_I": s_i}).to_csv(
        folder / "EI_ratio.csv", index=False, float_format="%.17g"
    )


def test_centred_fit_agrees_up_to_its_recorded_factor(tmp_path) -> None:
    s_e, s_i = np.array([0.16, 0.17, 0.15]), np.array([0.05, 0.04, 0.06])
    winner = s_e / s_i + np.array([0.01, -0.02, 0.0])  # mean over duplicates, not S_E / S_I
    shift = -0.0734
    _fit(tmp_path / "fit", s_e, s_i, winner * math.exp(shift))
    means = {"S_E": s_e, "S_I": s_i, "EI_ratio": winner}
    said = _compare_with_fit(_Record(tmp_path / "fit", shift), means)
    assert said.startswith("; S_E and S_I identical to the fit's")
    assert f"times {math.exp(shift):.4g}" in said
    # another simulation (other noise): a warning, not agreement
    other = {**means, "S_E": s_e * 1.01}
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        said = _compare_with_fit(_Record(tmp_path / "fit", shift), other)
    assert "differs from the fit's" in said and record


def test_uncentred_fit_is_identical(tmp_path) -> None:
    s_e, s_i = np.array([0.16, 0.17]), np.array([0.05, 0.04])
    _fit(tmp_path / "fit", s_e, s_i, s_e / s_i)
    means = {"S_E": s_e, "S_I": s_i, "EI_ratio": s_e / s_i}
    said = _compare_with_fit(_Record(tmp_path / "fit", 0.0), means)
    assert said.startswith("; S_E, S_I and E/I identical to the fit's")
