"""README review: the commands and files the README shows exist as written.

* Every ``delssome-norms ...`` command of the README's "What you can do" table parses with the
  real CLI parser (flags and subcommands exist; optional ``[...]`` parts are parsed too).
* Every ``--flag`` the README names next to a command exists in that command's parser.
* ``materialise_subjects`` writes the files the README's "Trying the commands on the packaged
  data" paragraph names, with the 432-s scans at TR 0.72 s it tells the reader to pass.

All parse-only or file-only: a few seconds in total, no fitting.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest

from delssome_norms.cli.main import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _table_commands() -> list[str]:
    """The first-column commands of the README's command table, as shell strings."""
    commands = []
    for line in README.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `(delssome-norms [^`]*)` \|", line)
        if match:
            commands.append(match.group(1))
    return commands


def _concrete(command: str) -> list[str] | None:
    """The command as argv for the parser, optional parts included; None when not one command."""
    if "..." in command or " / " in command:  # "estimate-ei ... --mode", "generate / train / ..."
        return None
    text = command.replace("\\|", "|")
    text = re.sub(r"--value z\|centile\|ei", "--value z", text)
    text = text.replace("[", "").replace("]", "")
    return shlex.split(text)[1:]  # drop the program name


def test_readme_has_the_command_table():
    commands = _table_commands()
    assert len(commands) >= 14, commands
    names = {c.split()[1] for c in commands}
    assert {
        "demo",
        "validate",
        "info",
        "simulate",
        "prepare",
        "estimate-ei",
        "cohort",
        "collect",
        "charts",
        "surrogate",
    } <= names


@pytest.mark.parametrize("command", [c for c in _table_commands() if _concrete(c) is not None])
def test_readme_table_command_parses(command):
    argv = _concrete(command)
    args = build_parser().parse_args(argv)
    assert getattr(args, "func", None) is not None, command


def _help_text(path: list[str], capsys) -> str:
    """``delssome-norms <path> --help`` as printed (the parsers add their options when used)."""
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*path, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("path", "flags"),
    [
        # flags the README names in prose next to these commands
        (
            ["estimate-ei"],
            [
                "--searches",
                "--combine",
                "--mode",
                "--weights",
                "--seed",
                "--overwrite",
                "--n-dup",
                "--no-interval",
                "--rate-gate",
                "--no-stability-gate",
                "--maps",
                "--generations",
                "--popsize",
                "--mu",
                "--test-top-k",
                "--dt-train",
                "--dt-val",
                "--dt-test",
                "--device",
                "--drop-na-frames",
                "--val-per-generation",
            ],
        ),
        (["cohort"], ["--shard", "--executor", "--scheduler", "--batch-subjects", "--overwrite"]),
        (["simulate"], ["--seed", "--params", "--sc", "--dt", "--n-dup", "--fc", "--fcd-cdf"]),
        (
            ["prepare"],
            [
                "--bids-dir",
                "--task",
                "--aparc-stats",
                "--map-name",
                "--drop-na-frames",
                "--subject-id",
                "--tr",
            ],
        ),
        (["surrogate", "generate"], ["--tr", "--scan-lengths", "--sc"]),
        (["charts", "fit"], ["--exclude-flagged", "--algorithm", "--centile-tables"]),
        (["charts", "score"], ["--allow-pipeline-mismatch", "--layout"]),
        (["charts", "plot"], ["--target", "--table", "--scores"]),
        (["charts", "adapt"], ["--method", "--controls"]),
        (["info"], ["--json"]),
    ],
)
def test_readme_named_flags_exist(path, flags, capsys):
    shown = set(re.findall(r"--[a-z0-9][a-z0-9-]*", _help_text(path, capsys)))
    missing = sorted(set(flags) - shown)
    assert not missing, f"{' '.join(path)}: {missing}"


def test_materialised_subjects_are_what_the_readme_says(tmp_path):
    from delssome_norms.datasets import materialise_subjects

    out = tmp_path / "demo_subjects"
    materialise_subjects(str(out))
    for name in ("manifest.csv", "demographics.csv", "sc.csv", "myelin.csv", "gradient.csv"):
        assert (out / name).is_file(), name
    manifest = pd.read_csv(out / "manifest.csv", dtype={"subject_id": str})
    assert {"subject_id", "tr", "scan_length", "fc", "fcd_cdf"} <= set(manifest.columns)
    first = manifest.iloc[0]
    assert (out / f"{first.subject_id}_FC.csv").is_file()
    assert (out / f"{first.subject_id}_FCD_CDF.csv").is_file()
    # the README tells the reader to pass --scan-length 432 with these subjects
    assert set(manifest["tr"]) == {0.72}
    assert set(manifest["scan_length"]) == {432.0}
    demographics = pd.read_csv(out / "demographics.csv", dtype={"subject_id": str})
    assert {"subject_id", "age_in_years", "sex"} <= set(demographics.columns)
