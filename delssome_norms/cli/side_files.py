"""Side files of what the commands write: the guard that keeps an output (and its side files) off
the inputs and theirs, the provenance sidecar of a derived table, and the identity of a chart
(``prepare``'s record is :mod:`delssome_norms.io.prepare_record`).

A table ``T.csv`` has beside it ``T.regions.csv`` (its region names: ``collect`` writes it,
``charts score`` copies it to the scores) and ``T.provenance.json`` (what produced it:
``collect``'s sidecar, and in the same format that of ``charts score``'s and ``stats``' tables,
which adds the command, its settings and the input table with its own sidecar).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from delssome_norms.errors import InvalidInputError
from delssome_norms.io import provenance_path, regions_path

PathLike = str | Path
SIDE_FILES: dict[str, Callable[[PathLike], Path]] = {
    "regions": regions_path,
    "provenance": provenance_path,
}
"""The side files of a table, by kind: ``<stem>.regions.csv`` and ``<stem>.provenance.json``."""


def _same(a: Path, b: Path) -> bool:
    """One file (or one place, for files not written yet)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return a.resolve() == b.resolve()


def check_spares_inputs(
    outputs: Iterable[PathLike],
    inputs: Mapping[str, PathLike | None],
    option: str = "--out",
    sides: Sequence[str] = tuple(SIDE_FILES),
) -> None:
    """Refuse outputs that would overwrite an input table or one of its side files.

    Parameters
    ----------
    outputs : paths
        The files the command writes; each also writes the side files named by ``sides``.
    inputs : mapping
        Option -> the table it reads (None: not given); the table and all its side files are
        protected.
    option : str
        Option named in the error.
    sides : sequence of str
        Kinds of :data:`SIDE_FILES` written beside each output ("regions", "provenance").

    Raises
    ------
    InvalidInputError
        Naming the output, what it would overwrite and the input it belongs to.
    """
    protected = []
    for name, source in inputs.items():
        if source is not None:
            protected.append((Path(source), f"the input given as {name}"))
            protected += [
                (side(source), f"the {kind} sidecar of {name} {source}")
                for kind, side in SIDE_FILES.items()
            ]
    for out in map(Path, outputs):
        written = [(out, None), *((SIDE_FILES[kind](out), kind) for kind in sides)]
        for path, kind in written:
            whose = next((w for p, w in protected if _same(path, p)), None)
            if whose is None:
                continue
            if kind is None:
                problem = f"{out} is {whose}; writing the output there would destroy it"
            else:
                problem = (
                    f"{out} comes with its {kind} sidecar {path}, which is {whose}: it would be "
                    "overwritten"
                )
            raise InvalidInputError(f"{problem}. Choose another output file name", option)


def derived_provenance(
    command: str,
    settings: Mapping[str, Any],
    source: PathLike,
    source_provenance: Mapping[str, Any] | None,
    **extra: Any,
) -> dict[str, Any]:
    """The provenance sidecar of a table a command derived from ``source`` (``collect``'s format:
    ``kind``, ``format_version``, ``pipeline``, ``atlas``; ``table`` and ``table_sha256`` are
    added when it is written, :func:`table_writes`).

    ``pipeline`` and ``atlas`` are the source's (empty when it has no sidecar);
    ``produced_by`` names the command, its settings and the package version; ``source`` the
    input table (absolute path, SHA-256) with its whole sidecar; ``extra`` adds blocks (e.g.
    ``chart``).
    """
    from delssome_norms import __version__
    from delssome_norms.fit.outputs import PROVENANCE_FORMAT_VERSION
    from delssome_norms.io import file_sha256
    from delssome_norms.io.provenance import SIDECAR_KIND

    prov = dict(source_provenance or {})
    return {
        "kind": SIDECAR_KIND,
        "format_version": PROVENANCE_FORMAT_VERSION,
        "pipeline": dict(prov.get("pipeline") or {}),
        "atlas": prov.get("atlas"),
        "produced_by": {
            "command": f"delssome-norms {command}",
            "delssome_norms_version": __version__,
            "settings": dict(settings),
        },
        "source": {
            "table": str(Path(source).absolute()),
            "table_sha256": file_sha256(source),
            "provenance": source_provenance,
        },
        **extra,
    }


def table_writes(
    path: PathLike, write: Callable[[Path], object] | None, meta: Mapping[str, Any] | None
) -> list[tuple[Path, Callable[[Path], object] | None]]:
    """The :func:`~delssome_norms.io.write_together` entries of a table (``write(path)``; None:
    an earlier one is removed, and its sidecar) and its provenance sidecar (``meta``,
    :func:`derived_provenance`; None: an earlier one is removed). The sidecar records the table's
    name and the SHA-256 of the table as written, as ``collect``'s does."""
    from delssome_norms.io import file_sha256, write_json

    path = Path(path)
    staged: list[Path] = []

    def write_table(p: Path) -> None:
        write(p)
        staged.append(Path(p))

    def write_sidecar(p: Path) -> None:
        digest = file_sha256(staged[-1])
        write_json({"kind": meta["kind"], "table": path.name, **meta, "table_sha256": digest}, p)

    if write is None:
        return [(path, None), (provenance_path(path), None)]
    return [(path, write_table), (provenance_path(path), None if meta is None else write_sidecar)]


def chart_identity(chart, arg: str) -> dict[str, Any]:
    """Which chart ``--chart arg`` loaded: its folder, the digests of its ``chart.json``
    (``content_sha256`` and ``arrays_sha256`` as it records them; ``chart_json_sha256`` of the
    file itself, also for charts saved before the content digest), family, label and pipeline."""
    from delssome_norms.io import file_sha256
    from delssome_norms.norms.reference import REFERENCE_CHART_NAME, reference_chart_path

    shipped = arg == REFERENCE_CHART_NAME and not Path(arg).exists()  # as load_chart decides
    folder = reference_chart_path() if shipped else Path(arg)
    prov = getattr(chart, "provenance_", None) or {}
    saved = getattr(chart, "_saved_sha256", None) or {}
    return {
        "chart": REFERENCE_CHART_NAME if shipped else str(folder.absolute()),
        "shipped_reference": shipped,
        "content_sha256": saved.get("content_sha256"),
        "arrays_sha256": saved.get("arrays_sha256"),
        "chart_json_sha256": file_sha256(folder / "chart.json"),
        "family": chart.family_.name,
        "label": prov.get("label"),
        "synthetic": bool(prov.get("synthetic", False)),
        "pipeline": prov.get("pipeline"),
        "adapted_sites": sorted(getattr(chart, "adapted_sites_", {}) or {}),
    }


def check_other_tables_sidecars(outs: Iterable[PathLike]) -> None:
    """Refuse an output whose provenance sidecar would replace (and regions sidecar replace or
    remove) those of another table of the same name with another ending (``cohort.parquet``
    next to ``cohort.csv``: both tables' sidecars are ``cohort.provenance.json``)."""
    from delssome_norms.io import provenance_path
    from delssome_norms.io.guard import TABLE_SUFFIXES

    for out in outs:
        path = Path(out)
        others = [
            path.with_suffix(suffix)
            for suffix in TABLE_SUFFIXES
            if suffix != path.suffix.lower() and path.with_suffix(suffix).is_file()
        ]
        if others and provenance_path(path).is_file():
            raise InvalidInputError(
                f"would replace the provenance sidecar {provenance_path(path).name} of "
                f"{others[0]} (the same name with another ending); give another file name",
                str(out),
            )
