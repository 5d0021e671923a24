"""The CLI shell: help with examples, one-line errors with exit status 2, --debug tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from delssome_norms.cli.main import build_parser, main


def _subcommands() -> list[str]:
    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


def test_top_level_help_shows_example(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert "example" in capsys.readouterr().out


@pytest.mark.parametrize("command", _subcommands())
def test_each_subcommand_help_shows_example(command: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"delssome-norms {command}" in out


def test_user_error_is_one_line_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "sub_FC.csv"
    bad.write_text("1,0.5\n0.4,1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "delssome_norms.cli.main", "validate", "--fc", str(bad)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "sub_FC.csv" in lines[0] and "symmetric" in lines[0]
    assert "Traceback" not in proc.stderr


def test_debug_flag_shows_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "delssome_norms.cli.main",
            "--debug",
            "validate",
            "--sc",
            str(tmp_path / "x.csv"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0 and "Traceback" in proc.stderr


def test_validate_accepts_reference_inputs(cbig_dir: Path, capsys) -> None:
    inp = cbig_dir / "input"
    code = main(
        ["validate", "--fc", str(inp / "sub-000_FC.csv"), "--fcd-cdf", str(inp / "sub-000_FCD_CDF.csv"),
         "--sc", str(inp / "SC_group_DK68.csv"), "--myelin", str(inp / "myelin_DK68.csv"),
         "--gradient", str(inp / "rsfc_gradient_DK68.csv"), "--tr", "0.72", "--scan-length", "864"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == 7  # six files, then the subject as estimate-ei reads it
    assert "ok  subject as estimate-ei reads it: 68 regions" in out


def test_validate_reads_files_as_the_fit_will(tmp_path: Path, capsys) -> None:
    """A 67-region FC passes on its own but not against the 68-region default SC; a manifest
    row whose FC file is missing is found before the cohort runs."""
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((300, 67)) + rng.standard_normal((300, 1))
    fc = np.corrcoef(ts.T)
    np.savetxt(tmp_path / "fc.csv", fc, delimiter=",")
    cdf = np.linspace(0, 1, 10001)[1:]
    np.savetxt(tmp_path / "cdf.csv", cdf)
    argv = ["validate", "--fc", str(tmp_path / "fc.csv"), "--fcd-cdf", str(tmp_path / "cdf.csv")]
    assert main(argv) == 0  # the files alone
    assert main([*argv, "--tr", "0.72", "--scan-length", "432"]) == 2
    assert "67 regions but the default SC template has 68" in capsys.readouterr().err
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "subject_id,tr,scan_length,fc,fcd_cdf\n"
        f"s1,0.72,432,{tmp_path / 'nope.csv'},{tmp_path / 'cdf.csv'}\n"
    )
    assert main(["validate", "--manifest", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert "1 of 1 subject(s) cannot be fitted: s1" in err and "nope.csv" in err


def test_misspelt_fcd_products_variable_is_one_line_error(tmp_path: Path, monkeypatch, capsys) -> None:
    good = tmp_path / "sub_FC.csv"
    good.write_text("1,0.5\n0.5,1\n")
    monkeypatch.setenv("DELSSOME_NORMS_FCD_PRODUCTS", "fp16")
    assert main(["validate", "--fc", str(good)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "DELSSOME_NORMS_FCD_PRODUCTS" in err[0] and "'fp16'" in err[0]
    monkeypatch.setenv("DELSSOME_NORMS_FCD_PRODUCTS", "float32")
    assert main(["validate", "--fc", str(good)]) == 0


def test_errors_of_an_atomic_write_name_the_output_not_its_temporary() -> None:
    from delssome_norms.cli.main import _user_path

    assert _user_path("out/.FC.csv.e5a46696ccd0.tmp", None) == "out/FC.csv"
    assert _user_path("/x/.a.json.0123456789ab.tmp", "/x/a.json") == "/x/a.json"
    assert _user_path("plain.csv", None) == "plain.csv" and _user_path(None, None) is None


def test_ctrl_c_while_the_commands_load_is_one_line(monkeypatch, capsys) -> None:
    """A Ctrl-C before any command runs (the parser and its modules are loading) gave a raw
    traceback: it is the same one line and exit status 130 as during the work."""
    import delssome_norms.cli.main as cli_main

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_main, "build_parser", interrupted)
    assert main(["info"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "delssome-norms: interrupted; rerun the same command to resume"


def test_sigterm_ends_a_command_with_one_line_and_143(monkeypatch, capsys) -> None:
    """A batch system's time limit (SIGTERM) killed the process silently (status -15); it now
    gets the Ctrl-C treatment, and main leaves the previous SIGTERM handler in place."""
    import os
    import signal
    import time

    import delssome_norms.cli.main as cli_main

    def killed_mid_command():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler interrupts the sleep
        raise AssertionError("SIGTERM was not handled")

    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(cli_main, "build_parser", killed_mid_command)
    assert main(["info"]) == 143
    assert "terminated (SIGTERM); rerun the same command to resume" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_failed_fit_and_an_unexpected_error_are_one_line_with_exit_1(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """The demo let a fit's EIFitError through as a traceback; any unforeseen exception did too."""
    import delssome_norms.cli.info_cmd as info_cmd
    import delssome_norms.demo as demo
    from delssome_norms.fit.lockstep import SubjectOutcome
    from delssome_norms.pipeline import EIFitError

    outcome = SubjectOutcome("synth-1", "failed", "train", "train: the gates rejected 16 of 16")

    def failing_demo(*_a, **_k):
        raise EIFitError(outcome)

    monkeypatch.setattr(demo, "run_demo", failing_demo)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "delssome-norms: error: synth-1 failed: train: the gates rejected 16 of 16"

    def broken():
        raise RuntimeError("a bug")

    monkeypatch.setattr(info_cmd, "collect_info", broken)
    assert main(["info"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("delssome-norms: error: info stopped on an unexpected RuntimeError: a bug")
    assert "\n" not in err and "--debug info" in err
    with pytest.raises(RuntimeError, match="a bug"):
        main(["--debug", "info"])


def test_estimate_ei_reports_fit_errors_in_command_line_words(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """estimate-ei fits through EIEstimator, whose errors name Python arguments; the CLI showed
    '(in Python: EIEstimator argument(s) overwrite)' after '--overwrite'."""
    from delssome_norms.datasets import load_reference_subjects
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.lockstep import SubjectOutcome
    from delssome_norms.pipeline import EIEstimator, EIFitError

    s = load_reference_subjects()
    np.savetxt(tmp_path / "fc.csv", s.fc[0], delimiter=",")
    np.savetxt(tmp_path / "cdf.csv", s.fcd_cdf[0][:, None])
    argv = ["estimate-ei", "--fc", str(tmp_path / "fc.csv"), "--fcd-cdf", str(tmp_path / "cdf.csv")]
    argv += ["--tr", "0.72", "--scan-length", "432", "--out-dir", str(tmp_path / "sub01")]

    def other_run(self, subject, progress, *rest):
        raise InvalidInputError("holds another run's results; use --overwrite to refit", "--out-dir")

    monkeypatch.setattr(EIEstimator, "_fit_subject", other_run)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    expected = "--out-dir: holds another run's results; use --overwrite to refit"
    assert err == f"delssome-norms: error: {expected}"

    def failed(self, subject, progress, *rest):
        outcome = SubjectOutcome("sub01", "failed", "train", "train: try more --generations")
        raise EIFitError(outcome)

    monkeypatch.setattr(EIEstimator, "_fit_subject", failed)
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "sub01 failed: train: try more --generations" in err and "in Python" not in err


def test_the_cli_warning_format_applies_while_it_runs_and_is_restored(monkeypatch, capsys) -> None:
    """main() left its one-line format and "default" filter on the caller (a notebook, a test)."""
    import warnings

    import delssome_norms.cli.info_cmd as info_cmd

    def warning_info():
        warnings.warn("a note for the user", UserWarning, stacklevel=1)
        return {}

    def show(message, category, filename, lineno, file=None, line=None):  # as Python's own
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    monkeypatch.setattr(info_cmd, "collect_info", warning_info)
    monkeypatch.setattr(warnings, "showwarning", show)  # pytest records warnings otherwise
    before_format, before_filters = warnings.formatwarning, list(warnings.filters)
    assert main(["info", "--json"]) == 0
    assert "delssome-norms: warning: a note for the user\n" in capsys.readouterr().err
    assert warnings.formatwarning is before_format
    assert warnings.filters == before_filters
