"""Progress in logs: one line per tenth of the work, with elapsed time and time left."""

from __future__ import annotations

import io
import re

from delssome_norms.fit.progress import LineProgress, progress_bar


def test_line_progress_writes_a_line_per_tenth_with_eta() -> None:
    out = io.StringIO()
    bar = LineProgress(total=20, desc="subjects", stream=out, every_s=1e9)
    for _ in range(20):
        bar.update(1)
    lines = out.getvalue().splitlines()
    assert len(lines) == 10  # 2, 4, ..., 20 of 20
    assert re.search(r"subjects: 2/20 \(10 %\), \d+ s elapsed, ~\d+ s left$", lines[0])
    assert "20/20 (100 %)" in lines[-1] and lines[-1].endswith("~0 s left")
    bar.reset(total=4)
    bar.update(4)
    assert out.getvalue().splitlines()[-1].count("4/4") == 1


def test_progress_bar_is_plain_lines_when_stderr_is_not_a_terminal(capsys) -> None:
    bar = progress_bar(3, "generations", "gen", quiet=False)  # pytest's stderr is no terminal
    assert isinstance(bar, LineProgress)
    bar.update(3)
    assert "generations: 3/3 (100 %)" in capsys.readouterr().err
    quiet = progress_bar(3, "generations", "gen", quiet=True)
    quiet.update(3)
    assert capsys.readouterr().err == ""
