"""Numeric text tables written with a decimal comma (``0,25``), as spreadsheet programs in many
locales save CSV: cells separated by semicolons or tabs (or spaces), with ``,`` as the decimal
mark. :func:`with_decimal_point` turns their decimal commas into points so that the numeric
readers (:mod:`delssome_norms.io.readers`) read the values written, not a comma-split of them.
"""

from __future__ import annotations

import re

_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?")
_NUMBER_PIECE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_MISSING = ("nan", "na", "n/a", "inf", "-inf", "+inf")


def _is_header(line: str) -> bool:
    """A line with a cell that is neither a number (decimal point or comma) nor a missing-value
    mark (``nan``, ``n/a``, ...): a BIDS ``n/a`` frame is data, not a header of region names."""
    pieces = [p.strip().strip('"') for p in re.split(r"[;\t\s,]+", line.strip())]
    return any(p and not _NUMBER_PIECE.fullmatch(p) and p.lower() not in _MISSING for p in pieces)


def with_decimal_point(text: str, first_line: str, sep: str) -> tuple[str, str]:
    """The text with decimal points, and its separator, where its numbers use a decimal comma.

    The decision is taken on the first of the first data lines that holds a comma:
    split at semicolons, tabs or, failing those, whitespace, every numeric cell must be a number
    with a decimal comma or an integer, and at least one must carry a comma. A comma-separated
    file never passes (its cells hold no commas once split at another separator), except a line
    of integers separated by a comma and a space (``1, 2``), which is kept as it is.

    Returns
    -------
    text : str
        Unchanged when the numbers use a decimal point.
    sep : str
        The separator to read the (converted) text with.
    """
    if "," not in text:
        return text, sep
    lines = [ln for ln in text.split("\n", 3)[:3] if ln.strip()]
    header = bool(lines) and _is_header(lines[0])
    data = next((ln for ln in lines[int(header) :] if "," in ln), "")  # a numbered header: next
    if not data:
        return text, sep
    for cand in (";", "\t", r"\s+"):
        if cand != r"\s+" and cand not in data:
            continue
        cells = [c.strip().strip('"') for c in re.split(cand, data.strip())]
        cells = [c for c in cells if c]
        if len(cells) < (1 if cand != r"\s+" else 2):
            continue
        if cand == r"\s+" and any(c.endswith(",") for c in cells):
            return text, sep  # "1, 2, 3": a comma-separated line with spaces
        commas = [bool(_DECIMAL_COMMA.fullmatch(c)) for c in cells]
        plain = [bool(re.fullmatch(r"[-+]?\d+", c)) or c.lower() in ("nan", "n/a", "na") for c in cells]
        if any(commas) and all(a or b for a, b in zip(commas, plain)):
            if header:
                head, body = text.split("\n", 1)
                return head + "\n" + body.replace(",", "."), cand
            return text.replace(",", "."), cand
    return text, sep


_SPLIT_COMMA_LINE = re.compile(r'"?[-+]?\d+,\d+(?:[eE][-+]?\d+)?"?')
_THOUSANDS_LINE = re.compile(r'"?[-+]?\d{1,3},\d{3}"?')
_DECIMAL_EVIDENCE = re.compile(r'"?[-+]?\d+,(?:0\d+|\d+[eE][-+]?\d+)"?')


def comma_reading(text: str) -> tuple[str, str] | None:
    """``(first data line, reading)`` of a one-column table written with a comma in its numbers
    (``0,25``), which a comma-separated reader splits into two columns; None for other text.

    Every data line (after an optional header line) must be one number of the form
    ``integer,digits`` (an exponent allowed: ``2,5e-05``). :func:`with_decimal_point` leaves such
    text as it is (two columns of integers read the same), so readers that expect one column
    only name the likely cause. ``reading`` says what the commas can be:

    ``"thousands"``
        every line is ``d,ddd`` (1 to 3 digits, a comma, 3 digits): a thousands separator
        (``24,533``: 24533) as much as a decimal comma (24.533), which only the user can tell;
    ``"decimal"``
        a cell is quoted (one cell, not two columns) or a line can only be a decimal number
        (an exponent, ``2,5e-05``, or digits after the comma that start with 0, ``1,05``);
    ``"either"``
        lines of two integers (``1001,3``): decimal commas or two columns of integers.
    """
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines and not _SPLIT_COMMA_LINE.fullmatch(lines[0]) and "," not in lines[0]:
        lines = lines[1:]  # a one-cell header
    if not lines or not all(_SPLIT_COMMA_LINE.fullmatch(ln) for ln in lines):
        return None
    if all(_THOUSANDS_LINE.fullmatch(ln) for ln in lines):
        return lines[0], "thousands"
    if any(ln.startswith('"') or _DECIMAL_EVIDENCE.fullmatch(ln) for ln in lines):
        return lines[0], "decimal"
    return lines[0], "either"
