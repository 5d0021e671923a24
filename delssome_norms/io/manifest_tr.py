"""The TR of each cohort-manifest row with time series: its ``tr`` cell, else its runs' JSON
sidecars (:func:`delssome_norms.io.sidecar.given_or_sidecar_tr`, the rule of ``--tr`` against
sidecars on the command line). A row whose TR cannot be found fails that subject alone."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.checks import check_timing
from delssome_norms.io.sidecar import given_or_sidecar_tr

GIVEN_NAME = "its tr in the manifest"
"""How warnings and errors name a row's own ``tr`` cell."""


def _blank(value: Any) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return True
    return str(value).strip().lower() in ("", "nan", "n/a")


def positive_seconds(value: Any) -> float | None:
    """A manifest cell as a positive finite number of seconds, or None (empty, unreadable: left
    to ``check_timing`` to refuse)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def fill_manifest_tr(table: pd.DataFrame, name: str) -> dict[Any, str]:
    """Fill in, in place, the ``tr`` of rows with time series that leave it empty from their
    runs' JSON sidecars, and warn where a row's ``tr`` differs from its runs' sidecars.

    ``table`` holds resolved paths (``;``-separated runs) and a ``tr`` column (added, empty, by
    the reader when the manifest has none). A sidecar TR is checked here, with the row's
    ``scan_length`` if given, so that a wrong sidecar fails its subject alone.

    Returns
    -------
    dict
        Row index to the message of each row whose TR cannot be found (no ``tr`` and no sidecar
        RepetitionTime, runs whose sidecars disagree, an unreadable or implausible sidecar): the
        reader's ``input_problem`` for that subject; its ``tr`` is left empty (NaN).

    Raises
    ------
    InvalidInputError
        A row without ``tr`` and without time series (FC and FCD-CDF have no sidecars).
    """
    problems: dict[Any, str] = {}
    blank = [_blank(v) for v in table["tr"]]
    if any(blank):  # empty cells as NaN, in a column that takes a float (pandas 3 str does not)
        cells = [math.nan if b else v for b, v in zip(blank, table["tr"].astype(object))]
        table["tr"] = pd.Series(cells, index=table.index, dtype=object)
    has_runs = "timeseries" in table.columns
    for k, (i, row) in enumerate(table.iterrows()):
        where = f"{name} row {k + 1} ({row['subject_id']})"
        runs = row["timeseries"] if has_runs else None
        if runs is None or (isinstance(runs, float) and math.isnan(runs)):
            if blank[k]:
                raise InvalidInputError(
                    "no tr (seconds): a row with fc/fcd_cdf needs one (only time series have JSON "
                    "sidecars to take it from)",
                    where,
                )
            continue
        given = None if blank[k] else positive_seconds(row["tr"])
        if given is None and not blank[k]:
            continue  # not a number: refused with the other timing checks
        subject = str(row["subject_id"])
        try:
            tr, sidecar = given_or_sidecar_tr(str(runs).split(";"), given, GIVEN_NAME, subject)
            if sidecar is not None:
                scan = row.get("scan_length")
                scan = tr if _blank(scan) or positive_seconds(scan) is None else scan
                check_timing(tr, scan, f"RepetitionTime {tr:g} s in {sidecar}")
        except InvalidInputError as err:
            problems[i] = f"{where}: {err.problem if err.source == subject else err}"
            continue
        if sidecar is not None:
            table.loc[i, "tr"] = tr
    return problems
