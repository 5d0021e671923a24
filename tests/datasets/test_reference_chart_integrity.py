"""The shipped reference chart records the SHA-256 of its own content, so an edited copy (a
renamed site, another chart range) is refused as every chart saved by ``charts fit`` is; it was
scored without complaint before (docs/rerunning.md promised the check)."""

from __future__ import annotations

import json
import shutil
from importlib.resources import files
from pathlib import Path

import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.digest import content_sha256
from delssome_norms.norms import GrowthChart, load_reference_chart

SHIPPED = Path(str(files("delssome_norms.datasets").joinpath("data", "reference_chart")))


def test_the_shipped_chart_records_its_content_digest() -> None:
    meta = json.loads((SHIPPED / "chart.json").read_text())
    assert meta["content_sha256"] == content_sha256(meta, "content_sha256")
    assert load_reference_chart()._saved_sha256["content_sha256"] == meta["content_sha256"]


@pytest.mark.parametrize("edit", ["site", "range"])
def test_an_edited_copy_of_the_shipped_chart_is_refused(tmp_path: Path, edit: str) -> None:
    copy = tmp_path / "refcopy"
    shutil.copytree(SHIPPED, copy)
    meta = json.loads((copy / "chart.json").read_text())
    if edit == "site":
        meta["sites"][0] = "renamed"
    else:
        meta["chart_range"] = [0, 120]
    (copy / "chart.json").write_text(json.dumps(meta, indent=2))
    with pytest.raises(InvalidInputError, match="was edited after the chart was saved"):
        GrowthChart.load(copy)
