"""The TR a command uses for time series given by name: ``--tr`` against the runs' JSON
sidecars (:mod:`delssome_norms.io.sidecar` finds them and holds the rule that a given TR wins,
shared with cohort manifests and ``load_subject``; here the command-line side, shared by
``prepare``, ``estimate-ei`` and ``validate``, and the ``prepare --bids-dir`` rule)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.sidecar import given_or_sidecar_tr, runs_sidecar_tr


def runs_tr(paths: Sequence[str | Path], given: float | None, sid: str) -> float:
    """The TR of a subject's runs (BIDS): their sidecars' (``--tr`` only fills in where none
    gives one, with a warning where it differs from a sidecar's); runs of different TRs are
    refused."""
    from delssome_norms.model.timing import check_tr  # lazily: building the CLI imports no torch

    found = runs_sidecar_tr(paths, sid)
    if found is not None:
        value, source, missing = found
        tr = check_tr(value, f"{sid} sidecar RepetitionTime")
        differs = given is not None and abs(given - tr) > 0.01 * tr
        if differs and missing:  # runs of one session share a TR: a sidecar-less run may not differ
            raise InvalidInputError(
                f"{missing[0]} has no sidecar RepetitionTime and --tr {given:g} s differs from "
                f"its other runs' {tr:g} s",
                sid,
            )
        if differs:
            warnings.warn(
                f"{sid}: its sidecar RepetitionTime {tr:g} s is used, not --tr {given:g} s (--tr "
                f"fills in only where a sidecar lacks it; from {source})",
                InputWarning,
                stacklevel=2,
            )
        return tr
    if given is None:
        raise InvalidInputError(
            "no sidecar JSON with RepetitionTime next to its time series; give --tr (seconds)", sid
        )
    return given


def timeseries_tr(paths: Sequence[str | Path], given: float | None) -> float:
    """The TR of runs given by name (``--timeseries``): ``--tr``, checked against the runs' JSON
    sidecars (a sidecar that gives another RepetitionTime gets a warning: one of the two is
    wrong, and the TR sets the FCD window and the scan length); without ``--tr``, the sidecars'
    own (runs of different sidecar TRs are refused).

    Raises
    ------
    InvalidInputError
        Without ``--tr``, no run has a sidecar with RepetitionTime (attributed to ``--tr``).
    """
    from delssome_norms.model.timing import check_tr  # lazily: building the CLI imports no torch

    tr, sidecar = given_or_sidecar_tr(paths, given, "--tr")
    if sidecar is not None:
        return check_tr(tr, f"{paths[0]} sidecar RepetitionTime")
    return tr
