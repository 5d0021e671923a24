"""``estimate-ei``/``cohort``: ``--threads``, and which surrogate weights a fit uses.

A researcher comparing weights, or reading an old ``run.json``, needs to know which weights
scored a fit: the command prints the folder (absolute), the digest and the timing they were
trained for, and the recorded settings name the folder absolutely (a relative path meant nothing
once read from another folder). ``--threads`` sets the CPU threads as the ``surrogate`` commands do.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from delssome_norms.cli.estimate_cmd import settings_from_args
from delssome_norms.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "pretrained" / "delssome_dk68"


def _args(command: str, *extra: str):
    required = {
        "estimate-ei": ["--fc", "fc.csv", "--fcd-cdf", "cdf.csv", "--out-dir", "o"],
        "cohort": ["--manifest", "m.csv", "--out-dir", "o"],
    }[command]
    return build_parser().parse_args([command, *required, *extra])


@pytest.mark.parametrize("command", ["estimate-ei", "cohort"])
def test_threads_sets_torch_threads(command, monkeypatch) -> None:
    import torch

    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    settings_from_args(_args(command, "--threads", "1"))
    assert seen == [1]
    seen.clear()
    settings_from_args(_args(command))
    assert seen == []  # not given: torch's own count is left alone


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_threads_is_one_line(value, capsys) -> None:
    argv = ["estimate-ei", "--fc", "a", "--fcd-cdf", "b", "--out-dir", "o", "--threads", value]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()[-1:]
    assert (
        f"argument --threads: expected a whole number of CPU threads, at least 1; got {value!r}" in line
    )
    assert "_threads" not in line


def test_surrogate_fit_names_its_weights_absolutely(tmp_path, monkeypatch, capsys) -> None:
    copy = tmp_path / "runs" / "my_weights"
    shutil.copytree(WEIGHTS, copy)
    monkeypatch.chdir(tmp_path / "runs")
    settings = settings_from_args(_args("estimate-ei", "--mode", "surrogate", "--weights", "my_weights"))
    digest = hashlib.sha256((copy / "model.safetensors").read_bytes()).hexdigest()
    assert settings.surrogate_weights == str(copy.resolve())
    assert settings.surrogate_weights_sha256 == digest
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"surrogate weights ({copy.resolve()}): sha256 {digest[:12]}")
    assert "trained for TR 0.72 s, scans 432 s, 68 regions (DK68)" in line


def test_default_weights_are_named_as_default(capsys) -> None:
    settings = settings_from_args(_args("estimate-ei", "--mode", "surrogate"))
    assert settings.surrogate_weights is None  # the default, resolved where the fit runs
    assert "surrogate weights (default " in capsys.readouterr().out


def test_euler_fit_prints_no_weights(capsys) -> None:
    settings_from_args(_args("estimate-ei"))
    assert "surrogate weights" not in capsys.readouterr().out
