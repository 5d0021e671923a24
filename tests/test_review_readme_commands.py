"""README review: the commands and files the README and docs/cli.md show exist as written.

* Every ``delssome-norms ...`` command of the command table (docs/cli.md, "Commands") parses with
  the real CLI parser (flags and subcommands exist; optional ``[...]`` parts are parsed too).
* Every ``--flag`` the docs name next to a command exists in that command's parser.
* ``materialise_subjects`` writes the files that docs/cli.md's "Trying the commands on the packaged
  data" and the README's step 0 name, with the 432-s scans at TR 0.72 s they tell the reader to pass.
* The README's "Your own data, step by step": every command parses, reads only files that step 0
  writes or an earlier step's ``--out``/``--out-dir`` produces, and (``slow``) the whole chain runs.
* The README's two set-up commands are the ones CI runs (``.ci/run`` execs ``scripts/test.sh``).

All but the chain run are parse-only or file-only: a few seconds in total, no fitting.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"
STEPS_HEADING = "## Your own data, step by step"


def _table_commands() -> list[str]:
    """The first-column commands of docs/cli.md's command table, as shell strings."""
    commands = []
    for line in CLI_DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `(delssome-norms [^`]*)` \|", line)
        if match:
            commands.append(match.group(1))
    return commands


def _step_lines() -> list[str]:
    """The shell lines of the ```bash blocks of the README's step-by-step section, in order."""
    text = README.read_text(encoding="utf-8")
    assert STEPS_HEADING in text, "README lost its step-by-step section"
    section = text[text.index(STEPS_HEADING) :]
    section = section[: section.index("\n## ", len(STEPS_HEADING))]
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        lines += [ln.strip() for ln in block.replace("\\\n", " ").splitlines() if ln.strip()]
    return lines


def _step_commands() -> list[list[str]]:
    """The step-by-step section's ``delssome-norms`` commands as argv (program name dropped)."""
    return [shlex.split(ln)[1:] for ln in _step_lines() if ln.startswith("delssome-norms ")]


def _concrete(command: str) -> list[str] | None:
    """The command as argv for the parser, optional parts included; None when not one command."""
    if "..." in command or " / " in command:  # "estimate-ei ... --mode", "generate / train / ..."
        return None
    text = command.replace("\\|", "|")
    text = re.sub(r"--value z\|centile\|ei", "--value z", text)
    text = text.replace("[", "").replace("]", "")
    return shlex.split(text)[1:]  # drop the program name


def test_cli_doc_has_the_command_table():
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
def test_cli_doc_table_command_parses(command):
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
        # flags the README and docs/cli.md name in prose next to these commands
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
    # the README and docs/cli.md tell the reader to pass --scan-length 432 with these subjects
    assert set(manifest["tr"]) == {0.72}
    assert set(manifest["scan_length"]) == {432.0}
    demographics = pd.read_csv(out / "demographics.csv", dtype={"subject_id": str})
    assert {"subject_id", "age_in_years", "sex"} <= set(demographics.columns)


# ---- the README's "Your own data, step by step" -----------------------------------------------
STEP_ORDER = [
    ("prepare",),
    ("validate",),
    ("estimate-ei",),
    ("cohort",),
    ("collect",),
    ("charts", "score"),
    ("charts", "report"),
    ("charts", "fit"),
    ("charts", "score"),
]
INPUT_OPTIONS = ("--fc", "--fcd-cdf", "--manifest", "--demographics", "--table", "--scores", "--in-dir")
OUTPUT_OPTIONS = ("--out", "--out-dir")
SMOKE_BUDGET = {"--generations", "--popsize", "--mu", "--n-dup", "--test-top-k", "--dt-test"}


def _value(argv: list[str], option: str) -> str | None:
    return argv[argv.index(option) + 1] if option in argv else None


def _write_own_timeseries(folder: Path, argv: list[str]) -> None:
    """The 'your own' BOLD runs ``prepare`` is shown with: frames x 68 regions, DK68 header."""
    from delssome_norms.datasets import DK68_REGIONS

    runs = argv[argv.index("--timeseries") + 1 :]
    runs = runs[: next((i for i, a in enumerate(runs) if a.startswith("--")), len(runs))]
    rng = np.random.default_rng(0)
    for run in runs:
        frame = pd.DataFrame(rng.standard_normal((600, len(DK68_REGIONS))), columns=list(DK68_REGIONS))
        frame.to_csv(folder / run, sep="\t", index=False)


def _run_shell_line(line: str, folder: Path) -> None:
    """A step's non-``delssome-norms`` line (``python -c ...``, ``head ...``) in ``folder``."""
    if line.startswith("python "):
        line = shlex.quote(sys.executable) + line[len("python") :]
    subprocess.run(["bash", "-c", line], cwd=folder, check=True, timeout=300)


@pytest.fixture(scope="module")
def step0(tmp_path_factory) -> Path:
    """A folder after the README's step 0 (the packaged files), as a reader would have it."""
    folder = tmp_path_factory.mktemp("readme_steps")
    for line in _step_lines():
        if not line.startswith("delssome-norms "):
            _run_shell_line(line, folder)
    return folder


def test_step_section_walks_the_documented_path():
    commands = [tuple(a for a in argv[:2] if not a.startswith("-")) for argv in _step_commands()]
    names = [c[:1] if c[0] != "charts" else c[:2] for c in commands]
    assert names == STEP_ORDER, names


@pytest.mark.parametrize("argv", _step_commands(), ids=lambda a: " ".join(a[:2]))
def test_step_command_parses(argv):
    args = build_parser().parse_args(argv)
    assert getattr(args, "func", None) is not None, argv


def test_step_commands_read_what_step0_or_an_earlier_step_wrote(step0):
    """Each command's inputs exist after step 0 or are an earlier command's output; ``prepare``
    alone reads the reader's own time series (none are packaged, as the README says)."""
    produced: set[str] = set()
    for argv in _step_commands():
        if argv[0] == "prepare":
            assert not (step0 / _value(argv, "--timeseries")).exists()
        for option in INPUT_OPTIONS:
            path = _value(argv, option)
            if path is not None:
                assert path.rstrip("/") in produced or (step0 / path).exists(), (argv[:2], path)
        chart = _value(argv, "--chart")
        if chart is not None and chart != "reference":
            assert chart in produced, (argv[:2], chart)
        for option in OUTPUT_OPTIONS:
            if _value(argv, option) is not None:
                produced.add(_value(argv, option).rstrip("/"))


def test_step_fits_use_only_the_smoke_budget_after_the_mode(step0):
    """The README says: for real estimates leave out every flag after ``--mode surrogate``."""
    fits = [argv for argv in _step_commands() if argv[0] in ("estimate-ei", "cohort")]
    assert len(fits) == 2
    for argv in fits:
        after = argv[argv.index("--mode") + 2 :]
        assert {a for a in after if a.startswith("--")} == SMOKE_BUDGET, argv
    # the reported person is one of the fitted cohort's subjects
    manifest = _value(next(a for a in fits if a[0] == "cohort"), "--manifest")
    ids = set(pd.read_csv(step0 / manifest, dtype={"subject_id": str})["subject_id"])
    report = next(a for a in _step_commands() if a[:2] == ["charts", "report"])
    assert _value(report, "--subject") in ids, ids
    assert len(ids) == 4  # "a 4-subject manifest"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_step_section_runs_end_to_end(step0, monkeypatch, capsys):
    """Every step's command, as written, in one folder (about a minute on 2 CPU cores)."""
    from delssome_norms.cli.main import main

    monkeypatch.chdir(step0)
    for argv in _step_commands():
        if argv[0] == "prepare":
            _write_own_timeseries(step0, argv)
        if argv[0] == "collect":  # "Here it warns that 64 people of the demographics have no results"
            with pytest.warns(Warning, match=r"^64 subject\(s\) .* have no finished results"):
                assert main(argv) == 0, argv
        else:
            assert main(argv) == 0, argv
        capsys.readouterr()
    assert (step0 / "prepared" / "sub-01_FC.csv").is_file()
    assert (step0 / "prepared" / "sub-01_FCD_CDF.csv").is_file()
    for name in ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv", "run.json"):
        assert (step0 / "synth-00187" / name).is_file(), name
    table = pd.read_csv(step0 / "cohort_ei.csv")
    assert len(table) == 4
    assert {"ei_ratio_mean_lo", "ei_ratio_mean_hi", "fit_flagged"} <= set(table.columns)
    for scores in ("scores.csv", "my_scores.csv"):
        scored = pd.read_csv(step0 / scores)
        assert len(scored) == 4
        # "Such a fit is flagged and its interval is marked uncalibrated"
        assert scored["flag"].str.contains("interval_uncalibrated").all(), scored["flag"]
    report = step0 / "report_synth-00187"
    assert {"report.md", "fan_chart.png"} <= {p.name for p in report.iterdir()}
    assert (step0 / "my_chart" / "chart.json").is_file()


# ---- the set-up commands and CI -------------------------------------------------------------
def test_setup_commands_are_the_ones_ci_runs():
    text = README.read_text(encoding="utf-8")
    block = re.search(r"## Set-up: two commands\n.*?```bash\n(.*?)```", text, re.S)
    assert block is not None, "README lost its set-up block"
    commands = [ln.split("#")[0].strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert commands == ["bash scripts/demo.sh", "bash scripts/test.sh"]
    # CI runs "the README's test command": .ci/run hands over to scripts/test.sh, nothing else
    ci = [
        ln.strip()
        for ln in (ROOT / ".ci" / "run").read_text().splitlines()
        if ln.strip() and not ln.lstrip().startswith("#")
    ]
    assert ci[-1] == "exec bash scripts/test.sh", ci
    assert not any("pytest" in ln for ln in ci), ci


# ---- links between the README and the docs pages ----------------------------------------------
def _anchors(page: Path) -> set[str]:
    """GitHub's heading anchors of a page: lower case, punctuation dropped, spaces to hyphens."""
    heads = re.findall(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", [README, *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name)
def test_relative_links_reach_a_page_and_heading(page):
    """The README moved its reference material to docs/: every relative link still lands."""
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8"))
    for link in links:
        if re.match(r"[a-z]+://", link):
            continue
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.is_file(), f"{page.name} links to {link}"
        if anchor:
            assert anchor in _anchors(path), f"{page.name} links to {link}: no such heading"
