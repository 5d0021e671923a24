"""What a chart and the tables it fits, scores or adapts to record of their pipelines.

- :func:`settings_differences`: the fit settings (dotted names, e.g. ``cmaes.generations``) in
  which a table's provenance and a chart's differ, for messages that would otherwise name only
  their ``settings_sha256`` digests.
- :func:`warn_unprovenanced_table`: a table without ``collect``'s provenance sidecar, scored or
  used to adapt a chart fitted on a known pipeline, cannot have its pipeline checked: said once
  (the table is still used; a user's own table has no sidecar).
- :func:`record_fitted_table`: the chart's record of the table file it was fitted on (its real
  SHA-256 and row count, whatever a stale sidecar says) and of ``--exclude-flagged``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from delssome_norms.errors import InputWarning

FIT_PIPELINE_FIELDS = ("sc", "maps", "design", "mode", "settings_sha256")
"""Pipeline fields of how E/I was fitted (beyond the atlas): a chart recording any of them was
fitted on a table whose provenance ``collect`` wrote."""
SHOWN_SETTINGS = 3
"""Differing settings named in a message; more are marked ``...``."""
TABLE_PROVENANCE_KEY = "table_provenance"
"""Key of a derived sidecar (the scores') saying whether the input table had its provenance
sidecar: ``"sidecar"`` or ``"missing"``."""


def settings_differences(
    table_provenance: Mapping[str, Any] | None, chart_provenance: Mapping[str, Any] | None
) -> list[tuple[str, Any, Any]]:
    """``(setting, value in the table, value in the chart)`` for each fit setting of the
    pipeline (those its ``settings_sha256`` digests: not the seed, device, engine, dtype or
    surrogate weights' file) that the two provenances' ``settings`` record differently; empty
    when either does not record its settings."""
    from delssome_norms.fit.checkpoint import flatten_keys
    from delssome_norms.fit.outputs import PIPELINE_SETTINGS_IGNORED

    a = (table_provenance or {}).get("settings")
    b = (chart_provenance or {}).get("settings")
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return []
    fa, fb = flatten_keys(dict(a)), flatten_keys(dict(b))
    missing = object()
    out = []
    for key in dict.fromkeys([*fa, *fb]):
        if key.split(".")[0] in PIPELINE_SETTINGS_IGNORED:
            continue
        va, vb = fa.get(key, missing), fb.get(key, missing)
        if va != vb:
            out.append((key, None if va is missing else va, None if vb is missing else vb))
    return out


def settings_message(diffs: list[tuple[str, Any, Any]]) -> str:
    """``"cmaes.generations is 4 in the table but 3 in the chart, seed ..."`` (at most
    :data:`SHOWN_SETTINGS` settings, then ``...``)."""
    from delssome_norms.io.provenance import short

    shown = [
        f"{k} is {short(a)} in the table but {short(b)} in the chart"
        for k, a, b in diffs[:SHOWN_SETTINGS]
    ]
    return ", ".join(shown) + (", ..." if len(diffs) > SHOWN_SETTINGS else "")


def records_fit_pipeline(chart: Any) -> bool:
    """Whether the chart records how the E/I of its table was fitted (SC, maps, design, mode,
    settings: :data:`FIT_PIPELINE_FIELDS`), which a table's provenance sidecar is compared with."""
    pipeline = (getattr(chart, "provenance_", None) or {}).get("pipeline") or {}
    return any(pipeline.get(f) is not None for f in FIT_PIPELINE_FIELDS)


def warn_unprovenanced_table(chart: Any, table: str | Path, used: str = "scored") -> str:
    """Warn once when ``table`` has no provenance sidecar and the chart records its fit pipeline.

    The table is used all the same (a table written by a user's own script has no sidecar).

    Parameters
    ----------
    chart : GrowthChart
    table : path
        The table file (``--table``, ``--controls``).
    used : str
        What is done with the table anyway, for the message (``"scored"``, ``"used"``).

    Returns
    -------
    str
        ``"sidecar"`` when the table has its ``<stem>.provenance.json``, else ``"missing"``
        (recorded in what is derived from the table, :data:`TABLE_PROVENANCE_KEY`).
    """
    from delssome_norms.io import provenance_path

    sidecar = provenance_path(table)
    if sidecar.is_file():
        return "sidecar"
    if records_fit_pipeline(chart):
        fitted_on = (getattr(chart, "provenance_", None) or {}).get("table")
        on = f" (fitted on {fitted_on})" if isinstance(fitted_on, str) and fitted_on else ""
        warnings.warn(
            f"{table}: there is no provenance sidecar {sidecar.name} next to the table, so its "
            "pipeline (fit settings, SC, maps, surrogate weights) cannot be compared with the "
            f"chart's{on}; {used} without that check: keep the {sidecar.name} that collect "
            "writes next to the table (copy or move both together)",
            InputWarning,
            stacklevel=2,
        )
    return "missing"


def record_fitted_table(
    provenance: dict[str, Any],
    table: str | Path | None,
    n_rows: int,
    exclude_flagged: bool = False,
    n_excluded: int = 0,
    sidecar: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record in a chart's ``provenance`` (in place; also returned) the table file it was fitted
    on: ``table`` (file name), ``table_sha256`` and ``n_subjects`` (rows) of the file itself.

    The values of the table's ``sidecar`` (its provenance as read) that differ (a table edited
    after ``collect``: a stale sidecar, warned about when read) are kept as ``sidecar_table``,
    ``sidecar_table_sha256`` and ``sidecar_n_subjects``. ``exclude_flagged`` and
    ``n_excluded_flagged`` record whether the people with a flagged E/I fit were left out
    (``--exclude-flagged``) and how many, also when ``table`` is None (``GrowthChart.fit``, whose
    frame need not be a file's rows: nothing else is recorded then).
    """
    from delssome_norms.io import file_sha256

    provenance["exclude_flagged"] = bool(exclude_flagged)
    provenance["n_excluded_flagged"] = int(n_excluded)
    if table is None:
        return provenance
    path = Path(table)
    actual = {"table": path.name, "table_sha256": file_sha256(path), "n_subjects": int(n_rows)}
    for key, value in actual.items():
        recorded = (sidecar or {}).get(key)
        if recorded is not None and recorded != value:
            provenance[f"sidecar_{key}"] = recorded
        provenance[key] = value
    return provenance
