"""People whose E/I fit is flagged as poor (``collect``'s ``fit_flagged`` column), in the tables
that growth charts and the cohort statistics are fitted to.

A flagged fit's E/I is not trusted (:mod:`delssome_norms.fit.quality`): charts and tests fitted
with such people are named in a warning (``exclude_flagged=False``, the default) or fitted without
them (``exclude_flagged=True``). :meth:`GrowthChart.fit <delssome_norms.norms.GrowthChart.fit>`,
the statistics of :mod:`delssome_norms.stats` and the CLI's ``--exclude-flagged`` all go through
:func:`handle_flagged`, whose result no longer has the ``fit_flagged`` column, so a table handed
on to another of them is not warned about twice.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.ei_table import FIT_FLAG_REASONS, FIT_FLAGGED
from delssome_norms.norms.chart_table import blank_cells, table_fit_flagged

KEYWORD = "exclude_flagged=True"
"""How the Python API's option is named in messages (the CLI names ``--exclude-flagged``)."""
SHOWN = 10
"""Flagged people named in a message; the rest are counted."""


def _named(rows: pd.DataFrame) -> str:
    """The flagged people of ``rows`` by ``subject_id`` (else row label), with their reasons."""
    from delssome_norms.fit.quality import describe  # lazy: only when someone is flagged

    ids = rows["subject_id"].astype(str) if "subject_id" in rows.columns else rows.index.astype(str)
    reasons = rows.get(FIT_FLAG_REASONS, pd.Series("", index=rows.index))
    reasons = reasons.astype(object).where(reasons.notna(), "").astype(str)  # NaN: no reasons
    named = [f"{sid} ({describe(r.split(';'))})" if r else sid for sid, r in zip(ids, reasons)]
    more = f" (and {len(named) - SHOWN} more)" if len(named) > SHOWN else ""
    return ", ".join(named[:SHOWN]) + more


def handle_flagged(
    table: pd.DataFrame,
    exclude: bool,
    source: str = "table",
    *,
    option: str = KEYWORD,
    report: Callable[[str], object] | None = None,
    stacklevel: int = 2,
) -> pd.DataFrame:
    """The people to fit: warn about (or, with ``exclude``, leave out) those whose fit is flagged.

    The flag is ``collect``'s ``fit_flagged`` column (True/False, as bool or as CSV text; reasons
    in ``fit_flag_reasons``). A table without the column is returned as it is (unless
    ``exclude``: then nothing says who to leave out, and it is refused).

    Parameters
    ----------
    table : DataFrame
        The cohort table, one row per person.
    exclude : bool
        Leave the flagged people out; otherwise keep them and warn, naming how many and who.
        Blank ``fit_flagged`` cells (rows added by hand or from another table) are kept as
        unflagged, with a warning when ``exclude``.
    source : str
        The table as messages name it.
    option : str
        The option that leaves them out, as messages name it (``--exclude-flagged`` in the CLI).
    report : callable, optional
        Called with the sentence saying how many people were left out (the CLI passes
        ``print``); default an :class:`~delssome_norms.errors.InputWarning`.
    stacklevel : int
        ``stacklevel`` of the warnings, as :func:`warnings.warn` counts it from this function (2:
        its caller; 3: the caller of its caller).

    Returns
    -------
    DataFrame
        ``table`` (with ``exclude``, its unflagged rows, new index) without the ``fit_flagged``
        column, whose verdicts have been dealt with; ``table`` itself without the column.

    Raises
    ------
    InvalidInputError
        ``exclude`` for a table without ``fit_flagged``, or one whose every person is flagged; a
        ``fit_flagged`` cell that is not True/False.
    """
    if not isinstance(exclude, (bool, np.bool_)):  # "False" would be truthy: refused
        raise InvalidInputError(f"must be True or False, got {exclude!r}", option.split("=")[0].strip())
    if FIT_FLAGGED not in table.columns:
        if exclude:
            raise InvalidInputError(
                f"{option} needs the fit_flagged column that collect writes, and the table has "
                "none; leave the option out for a table without fit-quality verdicts",
                source,
            )
        return table
    mask = table_fit_flagged(table, source)
    if exclude:  # a blank verdict (a merged table, a hand-made row) is kept: say so
        blank = blank_cells(table[FIT_FLAGGED])
        if blank.any():
            warnings.warn(
                f"{source}: {int(blank.sum())} of {len(table)} people have a blank fit_flagged "
                "cell: kept, as if unflagged, although their fit's verdict is unknown (rows added "
                "to collect's table by hand or from another table?); fill in True/False to decide",
                InputWarning,
                stacklevel=stacklevel,
            )
    rest = table.drop(columns=FIT_FLAGGED)
    n = int(mask.sum())
    if not n:
        return rest
    shown = _named(table.loc[mask])
    if not exclude:
        warnings.warn(
            f"{source}: {n} of {len(table)} people have a flagged E/I fit: {shown}; they are "
            f"kept (use {option} to leave them out)",
            InputWarning,
            stacklevel=stacklevel,
        )
        return rest
    if n == len(table):
        raise InvalidInputError(
            f"every person's E/I fit is flagged ({n} people); nothing is left to fit", source
        )
    kept = rest.loc[~mask].reset_index(drop=True)
    if report is not None:
        report(f"{option}: left out {n} of {len(table)} people: {shown}")
    else:
        warnings.warn(
            f"{source}: left out {n} of {len(table)} people whose E/I fit is flagged ({option}): "
            f"{shown}",
            InputWarning,
            stacklevel=stacklevel,
        )
    return kept
