"""Telling a table without a header row from one with the wrong columns: a header-less matrix
(an FC, an SC) given where a table with named columns is expected would otherwise be reported as
"missing required column(s) ...; found 1, 0.0554, 0.193, ..." (its first row of numbers)."""

from __future__ import annotations

import re
from pathlib import Path

_SPLIT = re.compile(r"[,;\t ]+")
MAX_SHOWN = 3
"""Numbers of the first line an error shows."""


def numbers_of_first_line(path: str | Path, limit: int = 1 << 16) -> list[str] | None:
    """The cells of the file's first line when every one of them is a number (the file has no
    header row), else None (a header, an unreadable or binary file)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit)
    except OSError:
        return None
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    if "\x00" in text:
        return None
    line = text.lstrip("\ufeff").split("\n", 1)[0].strip().rstrip("\r")
    cells = [c.strip().strip('"') for c in _SPLIT.split(line) if c.strip().strip('"')]
    if not cells:
        return None
    for cell in cells:
        try:
            float(cell)
        except ValueError:
            return None
    return cells


def headerless_problem(path: str | Path, expected: str) -> str | None:
    """``has no header row (its first line holds the numbers 1, 0.0554, ... of 69): ...`` for a
    file whose first line is all numbers, naming the ``expected`` columns; else None."""
    cells = numbers_of_first_line(path)
    if cells is None:
        return None
    shown = ", ".join(cells[:MAX_SHOWN]) + (" ..." if len(cells) > MAX_SHOWN else "")
    return (
        f"has no header row: its first line holds {len(cells)} number(s) ({shown}), as a "
        f"header-less matrix (an FC or SC) does; expected a table whose first line names the "
        f"columns {expected}"
    )
