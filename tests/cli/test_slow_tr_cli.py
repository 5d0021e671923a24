"""``validate`` and ``prepare`` with non-HCP timing (TR 2 s)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from delssome_norms.cli.main import main


def _run(tmp_path: Path, frames: int = 240) -> Path:
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((frames, 6)) + 0.5 * rng.standard_normal((frames, 1))
    path = tmp_path / "run1.tsv"
    np.savetxt(path, ts, delimiter="\t")
    return path


def test_validate_time_series_without_scan_length(tmp_path: Path, capsys) -> None:
    """The scan length defaults to frames x TR (docs/inputs.md); validate refused it as 'None'."""
    n = 6
    sc = np.ones((n, n)) - np.eye(n)
    np.savetxt(tmp_path / "sc.csv", sc, delimiter=",")
    args = ["validate", "--timeseries", str(_run(tmp_path)), "--tr", "2.0"]
    assert main([*args, "--sc", str(tmp_path / "sc.csv")]) == 0
    out = capsys.readouterr().out
    assert "TR 2 s, 480 s scan" in out  # 240 frames x 2 s, read as estimate-ei reads it
    assert "240 frames; FCD window 30 frames (60 s), 211 windows" in out  # the timing checks too


def test_validate_timing_checks_the_fcd_window(capsys) -> None:
    """40 s at TR 2 s is 20 frames, fewer than the default FCD window of round(60 / 2) = 30
    frames: the fit refuses it, so validate must not print 'ok'."""
    assert main(["validate", "--tr", "2", "--scan-length", "40"]) == 2
    err = capsys.readouterr().err
    assert "FCD window of 30 frames" in err and "20-frame scan" in err
    assert main(["validate", "--tr", "2", "--scan-length", "480"]) == 0
    out = capsys.readouterr().out
    assert "240 frames; FCD window 30 frames (60 s), 211 windows" in out


def test_tr_in_milliseconds_is_refused_clearly(tmp_path: Path, capsys) -> None:
    run = str(_run(tmp_path))
    assert main(["prepare", "--timeseries", run, "--tr", "2000", "--out-dir", str(tmp_path / "o")]) == 2
    assert "milliseconds" in capsys.readouterr().err
    assert main(["validate", "--tr", "2000", "--scan-length", "480000"]) == 2
    assert "milliseconds" in capsys.readouterr().err
    # only one of the two in milliseconds: named before any frame arithmetic (no hour-long
    # simulation plan for an 864000-s scan, no "not a whole number of frames of TR 720 s")
    assert main(["validate", "--tr", "0.72", "--scan-length", "864000"]) == 2
    assert "milliseconds" in capsys.readouterr().err
    assert main(["validate", "--tr", "720", "--scan-length", "864"]) == 2
    assert "milliseconds" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_prepare_names_a_non_default_fcd_window(tmp_path: Path, capsys) -> None:
    """The FCD-CDF written with --fcd-window 20 at TR 2 s (40 s) must be fitted with the same
    window; estimate-ei's default there is round(60 / 2) = 30 frames."""
    run = str(_run(tmp_path))
    assert main(["prepare", "--timeseries", run, "--tr", "2", "--out-dir", str(tmp_path / "a")]) == 0
    assert "FCD window 30 frames (60 s at TR 2 s), the default" in capsys.readouterr().out
    args = ["prepare", "--timeseries", run, "--tr", "2", "--fcd-window", "20"]
    assert main([*args, "--out-dir", str(tmp_path / "b")]) == 0
    assert "give --fcd-window 20 to estimate-ei and cohort" in capsys.readouterr().out
