"""Collected-table files and ``delssome-norms`` runs for the tests of ``stats``' region names."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from delssome_norms.cli.main import main


def write_table(
    folder: Path, table: pd.DataFrame, atlas: object = None, regions: Sequence[str] | None = None
) -> Path:
    """``folder/t.csv``, with a provenance sidecar whose ``atlas`` is ``atlas`` (None: no
    sidecar) and a regions sidecar naming ``regions`` in column order (None: none)."""
    from delssome_norms.io.provenance import SIDECAR_KIND

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "t.csv"
    table.to_csv(path, index=False)
    if atlas is not None:
        meta = {"kind": SIDECAR_KIND, "pipeline": {"atlas": "DK68"}, "atlas": atlas}
        (folder / "t.provenance.json").write_text(json.dumps(meta), encoding="utf-8")
    if regions is not None:
        pd.DataFrame(
            {
                "column": [f"ei_ratio_roi_{k}" for k in range(len(regions))],
                "region_index": range(len(regions)),
                "region": list(regions),
            }
        ).to_csv(folder / "t.regions.csv", index=False)
    return path


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Exit status, errors and the warnings' messages (one a line) of ``delssome-norms argv``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    said = "\n".join(str(w.message) for w in caught)
    return code, capsys.readouterr().err, said
