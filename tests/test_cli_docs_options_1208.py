"""docs/cli.md names every option of every command, and the README states what the code does.

The option list is read from the live parser (``delssome_norms.cli.main.build_parser``, with each
subcommand's deferred options added as ``--help`` adds them), so an option added to any command
later must be documented in docs/cli.md too. The README's numbers are computed here from the
calibration JSONs they quote (``bench/results/ei_calibration_*.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import re
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = ROOT / "docs" / "cli.md"
README = ROOT / "README.md"
SETS = ("surrogate", "surrogate_oos", "euler", "euler_oos")
ALLOWED_UNDOCUMENTED = frozenset({"--help"})
"""Options every command has and docs/cli.md need not name (``-h/--help``)."""


def _text(path: Path) -> str:
    """A doc with every run of whitespace made one space."""
    return re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))


def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(command path, long option) for the parser and every sub-command below it."""
    parser.format_help()  # a DeferredParser adds its settings-derived options here
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))
        else:
            for option in action.option_strings:
                if option.startswith("--"):
                    yield path, option


@cache
def _options() -> tuple[tuple[tuple[str, ...], str], ...]:
    from delssome_norms.cli.main import build_parser

    return tuple(_walk(build_parser()))


def test_the_walk_sees_every_command_and_the_deferred_options() -> None:
    found = _options()
    commands = {" ".join(p) for p, _ in found}
    for command in ("", "demo", "estimate-ei", "cohort", "prepare", "charts score", "surrogate train"):
        assert command in commands, f"the parser walk missed {command or 'the top level'!r}"
    # options added only when a command's parser is used (FitSettings fields)
    assert (("estimate-ei",), "--no-stability-gate") in found
    assert (("cohort",), "--val-per-generation") in found
    assert ((), "--version") in found


def test_every_option_of_every_command_is_in_cli_md() -> None:
    doc = CLI_DOC.read_text(encoding="utf-8")
    missing = sorted(
        f"{' '.join(path) or 'delssome-norms'} {option}"
        for path, option in _options()
        if option not in ALLOWED_UNDOCUMENTED
        and re.search(re.escape(option) + r"(?![\w-])", doc) is None
    )
    assert not missing, "docs/cli.md does not name these options:\n" + "\n".join(missing)


def test_cli_md_describes_the_options_the_review_found_missing() -> None:
    text = _text(CLI_DOC)
    for phrase in (
        "`--rate-gate LOW HIGH`",
        "`--no-stability-gate`",
        "`--no-interval`",
        "`cohort --batch-subjects K`",
        "`--layout wide|long`",
        "`--algorithm newton|rs`",
        "`delssome-norms --version`",
    ):
        assert phrase in text, phrase


# ---- README numbers from the kept calibration runs ----------------------------------------------
@cache
def _block(name: str) -> dict:
    data = json.loads((ROOT / "bench" / "results" / f"ei_calibration_{name}.json").read_text())
    ((_, block),) = data["modes"].items()
    return block


def _minus(text: str) -> str:
    return text.replace("-", "−")


def test_readme_level_r_range_is_that_of_the_four_runs() -> None:
    r = [_block(n)["summary"]["overall"]["level_r"] for n in SETS]
    low, high = _minus(f"{min(r):.2f}"), _minus(f"{max(r):.2f}")
    assert (low, high) == ("−0.02", "0.36")  # 0.171, -0.024, 0.317, 0.362
    assert f"(Pearson r {low} to {high})" in _text(README)
    assert "0.37)" not in _text(README)


def test_readme_interval_widths_are_those_of_each_mode() -> None:
    w = {n: _block(n)["summary"]["overall"]["width_hi_over_lo"]["mean_shipped"] for n in SETS}
    quoted = (
        f"{w['surrogate']:.2f} and {w['surrogate_oos']:.2f} surrogate, "
        f"{w['euler']:.2f} and {w['euler_oos']:.2f} Euler"
    )
    assert quoted == "1.58 and 1.53 surrogate, 1.47 and 1.44 Euler"
    text = _text(README)
    assert quoted in text
    assert "1.5–1.6 from low to high in surrogate mode and about 1.45 in Euler mode" in text


def test_level_centring_factor_range_is_that_of_the_calibration_fits() -> None:
    shifts = [
        math.exp(row["quality_metrics"]["level_shift_log"])
        for n in SETS
        for row in _block(n)["rows"]
        if row["status"] == "done"
    ]
    phrase = f"{min(shifts):.2f}–{max(shifts):.2f} in the {len(shifts)} calibration fits"
    assert phrase == "0.87–1.18 in the 128 calibration fits"
    assert phrase in _text(README)
    assert "0.87–1.18 in the 128 calibration fits" in _text(CLI_DOC)


def test_readme_says_the_reported_ei_ratio_is_level_centred() -> None:
    text = _text(README)
    intro = text[text.index("**What the number is.**") : text.index("## Set-up")]
    assert "level-centred" in intro and "level_shift_log" in intro
    assert "differs from the ratio of the `S_E` and `S_I` columns" in intro


def test_readme_lists_every_uncalibrating_difference_the_code_counts() -> None:
    from delssome_norms.fit.uncertainty import calibration_differences, load_calibration

    cal = load_calibration("surrogate")
    ref = dict(cal["settings"])
    base = {k: ref[k] for k in ("generations", "popsize", "n_dup", "test_top_k", "scan_length")}
    base.update(tr=0.72, stability_gate=True, surrogate_weights_sha256=ref["surrogate_weights_sha256"])
    assert calibration_differences(cal, base) == []
    no_gate = calibration_differences(cal, {**base, "stability_gate": False})
    other = calibration_differences(cal, {**base, "surrogate_weights_sha256": "0" * 64})
    assert any("stability_gate" in d for d in no_gate), no_gate
    assert any("surrogate weights" in d for d in other), other
    text = _text(README)
    bullet = text[text.index("**Where the calibration applies.**") : text.index("**The flag.**")]
    assert "`--no-stability-gate`" in bullet
    assert "other surrogate weights than the calibration's" in bullet


def test_readme_setup_says_what_each_script_installs() -> None:
    test_sh = (ROOT / "scripts" / "test.sh").read_text()
    extras = re.search(r'bootstrap\.sh" "([^"]*)"', test_sh).group(1).split(",")
    triton = re.search(r'"(triton==[\d.]+)"', test_sh).group(1)
    torch = re.search(r"TORCH_SPEC:-(torch==[\d.]+)", (ROOT / "scripts" / "bootstrap.sh").read_text())
    demo_sh = (ROOT / "scripts" / "demo.sh").read_text()
    assert 'bootstrap.sh" ""' in demo_sh  # the demo installs no extras
    text = _text(README)
    setup = text[text.index("## Set-up") : text.index("```bash")]
    assert "nothing else to install" not in setup
    assert f"`{torch.group(1)}`" in setup
    for extra in extras:
        assert f"`{extra}`" in setup, extra
    assert f"`{triton}`" in setup
    assert "`demo.sh` then installs the package," in setup


# ---- cohort's exit status ---------------------------------------------------------------------
def test_cohort_exits_1_when_a_subject_fails_and_the_docs_say_so(tmp_path: Path) -> None:
    from delssome_norms.cli.main import main

    manifest = tmp_path / "subjects.csv"
    manifest.write_text(
        "subject_id,tr,scan_length,fc,fcd_cdf\nsub-bad,0.72,432,missing_FC.csv,missing_CDF.csv\n"
    )
    out = tmp_path / "fits"
    # the Euler calibration's budget (no uncalibrated-interval warning); the input fails first
    budget = ["--generations", "30", "--popsize", "50", "--n-dup", "2", "--test-top-k", "3"]
    status = main(["cohort", "--manifest", str(manifest), "--out-dir", str(out), *budget, "--quiet"])
    assert status == 1
    assert "sub-bad" in (out / "failures.csv").read_text()
    assert "It exits with status 1 when any subject of the run failed" in _text(README)
    assert "exits with status 1 when any subject of the run (or shard) failed" in _text(CLI_DOC)
