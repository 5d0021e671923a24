"""Progress of long fits: tqdm bars on a terminal, plain timestamped lines in logs.

A cluster job's log is not a terminal, where a progress bar prints nothing useful until the end;
there :class:`LineProgress` writes one line when a tenth of the work is done (and at least every
``every_s`` seconds of progress), with the elapsed time and an estimate of the time left. It has
the small part of tqdm's interface the fitter uses (``update``, ``reset``, ``close``, ``n``).
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class LineProgress:
    """Line-per-step progress for non-interactive output (see the module docstring).

    Parameters
    ----------
    total : int
        Units of work (0 until :meth:`reset` gives it).
    desc : str
        What is counted, e.g. ``"subjects"``.
    stream : file, optional
        Default ``sys.stderr``.
    every_s : float, default 60
        Also write a line when this many seconds passed since the last one and work progressed.
    """

    def __init__(
        self, total: int = 0, desc: str = "", stream: TextIO | None = None, every_s: float = 60.0
    ):
        self.desc, self.stream, self.every_s = desc, stream or sys.stderr, every_s
        self.reset(total)

    def reset(self, total: int = 0) -> None:
        """Start counting again towards ``total``."""
        self.total, self.n = int(total), 0
        self._start = self._last_time = time.monotonic()
        self._last_tenth = 0

    def update(self, k: int = 1) -> None:
        """Add ``k`` finished units; write a line at each tenth (or after ``every_s`` seconds)."""
        if k <= 0:
            return
        self.n += k
        now = time.monotonic()
        tenth = int(10 * self.n / self.total) if self.total else 0
        if tenth > self._last_tenth or now - self._last_time >= self.every_s or self.n == self.total:
            self._last_tenth, self._last_time = tenth, now
            self.stream.write(self._line(now) + "\n")
            self.stream.flush()

    def _line(self, now: float) -> str:
        elapsed = now - self._start
        stamp = time.strftime("%H:%M:%S")
        if not self.total:
            return f"[{stamp}] {self.desc}: {self.n} done, {elapsed:.0f} s"
        left = elapsed / self.n * (self.total - self.n) if self.n else float("nan")
        return (
            f"[{stamp}] {self.desc}: {self.n}/{self.total} ({100 * self.n / self.total:.0f} %), "
            f"{elapsed:.0f} s elapsed, ~{left:.0f} s left"
        )

    def close(self) -> None:
        """Nothing to release (kept for tqdm compatibility)."""


def progress_bar(total: int, desc: str, unit: str, quiet: bool, **tqdm_kwargs: Any) -> Any:
    """A tqdm bar on a terminal, :class:`LineProgress` lines otherwise, nothing when ``quiet``."""
    from tqdm.auto import tqdm

    if quiet:
        return tqdm(total=total, desc=desc, unit=unit, disable=True)
    if not sys.stderr.isatty():
        return LineProgress(total, desc)
    return tqdm(total=total, desc=desc, unit=unit, **tqdm_kwargs)
