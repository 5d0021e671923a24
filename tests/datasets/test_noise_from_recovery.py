"""``reference_data/generate.py --recovery``: estimation-noise sizes from a recovery result."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

GENERATE = Path(__file__).resolve().parents[2] / "reference_data" / "generate.py"


@pytest.fixture(scope="module")
def generate():
    spec = importlib.util.spec_from_file_location("reference_generate", GENERATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(tmp_path: Path, subjects: list[dict]) -> Path:
    path = tmp_path / "recovery.json"
    result = {"median_r": 0.96, "median_abs_mean_err_pct": 4.0, "subjects": subjects}
    path.write_text(json.dumps(result), encoding="utf-8")
    return path


def test_sizes_come_from_the_log_ratios(generate, tmp_path: Path) -> None:
    subjects = [
        {"status": "done", "log_ratio_mean": m, "log_ratio_sd_regions": sd}
        for m, sd in ((-0.02, 0.05), (0.04, 0.07), (0.01, 0.02), (-0.03, 0.09))
    ]
    subjects.append({"status": "failed"})
    shared, regional, note = generate.noise_from_recovery(_write(tmp_path, subjects), 0.1)
    # median -0.005 (the common bias, not applied); |deviations| 0.015, 0.045, 0.015, 0.025
    assert shared == pytest.approx(1.4826 * 0.02)
    assert regional == pytest.approx(0.06)  # median of 0.05, 0.07, 0.02, 0.09
    assert "4 subjects" in note and "bias -0.0050" in note


def test_older_results_fall_back_to_r_and_mean_error(generate, tmp_path: Path) -> None:
    shared, regional, _ = generate.noise_from_recovery(_write(tmp_path, [{"status": "done"}]), 0.1)
    assert shared == pytest.approx(1.4826 * 0.04)
    assert regional == pytest.approx(0.1 * math.sqrt(1 / 0.96**2 - 1))
