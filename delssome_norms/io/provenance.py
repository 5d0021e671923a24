"""Sidecar files of a cohort E/I table: its provenance (JSON) and its regions (CSV).

``collect`` writes, next to ``cohort_ei.csv``, ``cohort_ei.provenance.json`` (what produced the
table: atlas, SC, maps, design, mode, settings, timing, versions) and ``cohort_ei.regions.csv``
(``column, region_index, region``: which region each ``ei_ratio_roi_k`` is). ``charts fit``
stores the provenance in the chart; ``charts score``/``adapt`` compare it with the chart's.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.digest import file_sha256

PIPELINE_FIELDS = (
    "n_regions",
    "atlas",
    "regions_sha256",
    "sc",
    "maps",
    "design",
    "mode",
    "settings_sha256",
)
"""Fields of a pipeline that must agree between the subjects of one table, and between a table
and the chart it is scored against (a field recorded on one side only is not compared)."""
SIDECAR_KIND = "delssome_norms cohort table provenance"
"""Value of ``kind`` in a table's provenance sidecar."""


def provenance_path(table: str | Path) -> Path:
    """``<table stem>.provenance.json`` next to the table."""
    p = Path(table)
    return p.with_name(p.stem + ".provenance.json")


def regions_path(table: str | Path) -> Path:
    """``<table stem>.regions.csv`` next to the table."""
    p = Path(table)
    return p.with_name(p.stem + ".regions.csv")


def set_region_names(provenance: dict[str, Any], names: list[str]) -> None:
    """Put ``names`` into ``provenance`` (in place) as ``atlas.regions``, with the
    ``regions_sha256`` it records (atlas and pipeline) describing them."""
    from delssome_norms.io.regions import regions_sha256

    atlas = provenance.get("atlas")
    if not isinstance(atlas, dict):  # e.g. the sidecar of charts score's output: "atlas": null
        atlas = provenance["atlas"] = {}
    atlas["regions"] = names
    pipeline = provenance.get("pipeline")
    for block in (atlas, pipeline if isinstance(pipeline, dict) else {}):
        if block.get("regions_sha256") is not None:
            block["regions_sha256"] = regions_sha256(names)


def read_table_provenance(table: str | Path) -> dict[str, Any] | None:
    """The provenance sidecar of a table, or None when there is none.

    A sidecar records the SHA-256 of the table ``collect`` wrote with it; a table that no longer
    matches it gets an :class:`~delssome_norms.errors.InputWarning`.

    Raises
    ------
    InvalidInputError
        A sidecar that is not a readable provenance JSON (naming the sidecar).
    """
    path = provenance_path(table)
    if not path.is_file():
        return None
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInputError(f"cannot be read as JSON ({exc})", str(path)) from None
    if not isinstance(meta, dict) or meta.get("kind") != SIDECAR_KIND:
        raise InvalidInputError(
            f"is not a provenance sidecar (kind {SIDECAR_KIND!r} expected); remove or rename it",
            str(path),
        )
    if not isinstance(meta.get("pipeline"), dict):
        raise InvalidInputError("has no 'pipeline' object (damaged or edited)", str(path))
    recorded = meta.get("table_sha256")
    if isinstance(recorded, str) and Path(table).is_file() and file_sha256(table) != recorded:
        warnings.warn(
            f"{path} was written for another version of {Path(table).name} (the table was "
            "edited or replaced after collect, or collect was interrupted between its files): "
            "its provenance may not describe these rows; rerun collect to rebuild both",
            InputWarning,
            stacklevel=2,
        )
    return meta


def pipeline_differences(
    a: Mapping[str, Any], b: Mapping[str, Any], fields: tuple[str, ...] = PIPELINE_FIELDS
) -> list[tuple[str, Any, Any]]:
    """``(field, value in a, value in b)`` for every pipeline field recorded in both that differs.

    A field whose value is None on either side (unknown) is not compared.
    """
    return [
        (f, a[f], b[f]) for f in fields if a.get(f) is not None and b.get(f) is not None and a[f] != b[f]
    ]


def short(value: Any) -> str:
    """A value for a one-line message: SHA-256 digests cut to 12 hex digits."""
    return re.sub(r"\b([0-9a-f]{12})[0-9a-f]{52}\b", r"\1...", repr(value))
