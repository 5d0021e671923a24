"""The TR a command uses for time series given by name: ``--tr`` against the runs' JSON
sidecars (:mod:`delssome_norms.io.sidecar` finds them; here the command-line rule of which wins
and what is refused, shared by ``prepare``, ``estimate-ei`` and ``validate``)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.sidecar import find_sidecar_tr


def runs_tr(paths: Sequence[str | Path], given: float | None, sid: str) -> float:
    """The TR of a subject's runs (BIDS): their sidecars' (``--tr`` only fills in where none
    gives one, with a warning where it differs from a sidecar's); runs of different TRs are
    refused."""
    from delssome_norms.model.timing import check_tr  # lazily: building the CLI imports no torch

    found = {p: find_sidecar_tr(p) for p in paths}
    values = sorted({round(v[0], 6) for v in found.values() if v is not None})
    if len(values) > 1:
        raise InvalidInputError(f"runs have different RepetitionTime {values} s in their sidecars", sid)
    if values:
        tr = check_tr(values[0], f"{sid} sidecar RepetitionTime")
        source = next(v[1] for v in found.values() if v is not None)
        missing = [str(p) for p, v in found.items() if v is None]
        if missing:  # runs of one session share a TR: a sidecar-less run may not differ
            if given is not None and abs(given - tr) > 0.01 * tr:
                raise InvalidInputError(
                    f"{missing[0]} has no sidecar RepetitionTime and --tr {given:g} s differs from "
                    f"its other runs' {tr:g} s",
                    sid,
                )
        if given is not None and abs(given - tr) > 0.01 * tr:
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
    if given is None:
        try:
            return runs_tr(paths, None, str(paths[0]))
        except InvalidInputError as err:
            if "give --tr" not in err.problem:
                raise
            raise InvalidInputError(
                "the TR (seconds) is needed for time series: no JSON sidecar with "
                f"RepetitionTime next to {paths[0]}",
                "--tr",
            ) from None
    for p in paths:
        found = find_sidecar_tr(p)
        if found is not None and abs(found[0] - given) > 0.01 * given:
            warnings.warn(
                f"{p}: its JSON sidecar {found[1]} gives RepetitionTime {found[0]:g} s but --tr is "
                f"{given:g} s; --tr is used (it sets the FCD window and, in a fit, the scan "
                "length): check which is right",
                InputWarning,
                stacklevel=2,
            )
    return given
