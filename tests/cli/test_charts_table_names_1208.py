"""A table whose regions.csv names other regions than its provenance: ``charts`` reads it as
``read_ei_table`` and ``stats`` do (the regions.csv wins, with one warning), so a chart fitted on
the table scores that same table, and the scores record the names that were used."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import pandas as pd

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.io import ei_table as et
from delssome_norms.io.provenance import SIDECAR_KIND
from delssome_norms.io.regions import regions_sha256

SWAPPED = [DK68_REGIONS[1], DK68_REGIONS[0], *DK68_REGIONS[2:]]


def _table(folder: Path, n: int = 600) -> Path:
    """A collected table whose provenance lists the DK68 order (with the digest collect writes)
    and whose regions.csv names its first two columns the other way round."""
    from delssome_norms.datasets import load_reference_table

    folder.mkdir(parents=True, exist_ok=True)
    table = folder / "t.csv"
    load_reference_table().sample(n=n, random_state=1).to_csv(table, index=False)
    et.regions_frame(SWAPPED).to_csv(folder / "t.regions.csv", index=False)
    digest = regions_sha256(list(DK68_REGIONS))
    meta = {
        "kind": SIDECAR_KIND,
        "table": table.name,
        "format_version": 1,
        "pipeline": {"atlas": "DK68", "n_regions": 68, "regions_sha256": digest},
        "atlas": {
            "name": "DK68",
            "n_regions": 68,
            "regions": list(DK68_REGIONS),
            "regions_sha256": digest,
        },
        "table_sha256": hashlib.sha256(table.read_bytes()).hexdigest(),
    }
    (folder / "t.provenance.json").write_text(json.dumps(meta), encoding="utf-8")
    return table


def _run(argv: list[str], capsys) -> tuple[int, str, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    return code, capsys.readouterr().err, [str(w.message) for w in caught]


def test_a_chart_fitted_on_a_table_scores_that_same_table(tmp_path: Path, capsys) -> None:
    table = _table(tmp_path)
    targets = "ei_ratio_mean,ei_ratio_roi_0,ei_ratio_roi_1"
    code, err, said = _run(
        ["charts", "fit", "--table", str(table), "--out", str(tmp_path / "chart"), "--targets", targets],
        capsys,
    )
    assert code == 0, err
    assert sum("lists other regions than the table's provenance" in w for w in said) == 1
    chart_meta = json.loads((tmp_path / "chart" / "chart.json").read_text(encoding="utf-8"))
    assert regions_sha256(SWAPPED) in json.dumps(chart_meta)  # the names the columns carry

    out = tmp_path / "scores.csv"
    code, err, said = _run(
        [
            "charts",
            "score",
            "--chart",
            str(tmp_path / "chart"),
            "--table",
            str(table),
            "--out",
            str(out),
        ],
        capsys,
    )
    assert code == 0, err
    assert "regions_sha256" not in err
    assert sum("lists other regions than the table's provenance" in w for w in said) == 1
    scores = pd.read_csv(out)
    assert len(scores) == 600
    # the scores' sidecars describe the regions the chart and the table's columns use
    side = pd.read_csv(tmp_path / "scores.regions.csv")
    assert side["region"].tolist()[:2] == SWAPPED[:2]
    meta = json.loads((tmp_path / "scores.provenance.json").read_text(encoding="utf-8"))
    assert meta["pipeline"]["regions_sha256"] == regions_sha256(SWAPPED)


def test_the_regions_sidecar_is_checked_against_the_columns(tmp_path: Path, capsys) -> None:
    """As read_ei_table and stats read it: a regions.csv of another table is refused by charts
    too (before, charts took its names for whatever columns there were)."""
    table = _table(tmp_path, n=100)
    et.regions_frame(SWAPPED[:60]).to_csv(tmp_path / "t.regions.csv", index=False)
    code, err, _ = _run(
        [
            "charts",
            "score",
            "--chart",
            "reference",
            "--table",
            str(table),
            "--out",
            str(tmp_path / "s.csv"),
        ],
        capsys,
    )
    assert code != 0
    line = next(ln for ln in err.splitlines() if ": error:" in ln)
    assert "t.regions.csv" in line and "names 60 regions" in line and "ei_ratio_roi_67" in line
    assert not (tmp_path / "s.csv").exists()
