"""`charts calibrate` on groups all smaller than 30 people says its worst group is noisy (it named
a one-person group as the worst without a word)."""

from __future__ import annotations

from pathlib import Path

from delssome_norms.cli.charts_calibrate_cmd import WORST_MIN_N
from delssome_norms.cli.main import main
from delssome_norms.datasets import load_reference_table


def test_small_groups_are_said_to_be_noisy(tmp_path: Path, capsys) -> None:
    table = load_reference_table().sample(40, random_state=0)
    path = tmp_path / "held.csv"
    table.to_csv(path, index=False)
    argv = ["charts", "calibrate", "--chart", "reference", "--table", str(path)]
    argv += ["--out", str(tmp_path / "cal.csv"), "--targets", "ei_ratio_mean", "--by", "sex", "age"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert f"(every group has fewer than {WORST_MIN_N} people: noisy)" in printed
