"""Findings of an end-to-end BIDS-derivatives journey (prepare --bids-dir -> cohort -> collect ->
charts score / report -> simulate --from-run) that are bugs, reproduced without fitting.

The cohort's pre-run calibration warning showed at most 6 phrases. A cohort whose scans all differ
in length (frames x TR, the usual case for BIDS data: six subjects of 224-340 s) gave one
``scan_length`` phrase per distinct length after the budget's phrases, so the lengths past the
sixth phrase were dropped silently; the short scans are now one phrase with their range.
"""

from __future__ import annotations

import re
import warnings

from delssome_norms.errors import InputWarning
from delssome_norms.fit.cmaes import CMAESSettings
from delssome_norms.fit.settings import FitSettings
from delssome_norms.fit.uncertainty import warn_uncalibrated


def test_uncalibrated_warning_counts_every_short_scan() -> None:
    """Every subject whose scan [s] is shorter than the calibration's 432 s is counted once."""
    settings = FitSettings(
        mode="euler", cmaes=CMAESSettings(generations=3, popsize=16, mu=4), n_dup=2, test_top_k=2
    )
    scans = [300.0, 320.0, 340.0, 240.0, 224.0, 310.0]  # frames x TR of six BIDS subjects
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_uncalibrated(settings, scans)
    texts = [str(w.message) for w in caught if issubclass(w.category, InputWarning)]
    assert len(texts) == 1
    counted = sum(int(c) for c in re.findall(r"scan_length[^\[;]*\[(\d+) of 6\]", texts[0]))
    assert counted == 6, texts[0]
    assert "scan_length 224-340 s (calibrated at 432 s) [6 of 6]" in texts[0]
