"""``write_reference_table`` writes the SYNTHETIC reference table with its regions.csv, so the
README's table is read by name (no "68 unnamed columns" warning, charts record DK68 names)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from delssome_norms.datasets import DK68_REGIONS, load_reference_table, write_reference_table
from delssome_norms.io import read_ei_table, regions_path


def test_the_table_and_its_region_names_are_written(tmp_path: Path) -> None:
    path = write_reference_table(tmp_path / "reference_table.csv")
    regions = pd.read_csv(regions_path(path))
    assert list(regions["region"]) == list(DK68_REGIONS)
    assert list(regions["column"]) == [f"ei_ratio_roi_{k}" for k in range(68)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = read_ei_table(path)
    assert table.attrs["delssome_norms_provenance"]["atlas"]["regions"] == list(DK68_REGIONS)
    packaged = load_reference_table()
    assert len(table) == len(packaged) == 12005
    pd.testing.assert_series_equal(
        table["ei_ratio_roi_40"], packaged["ei_ratio_roi_40"], check_exact=False, rtol=1e-12
    )
    assert table["subject_id"].tolist() == packaged["subject_id"].tolist()


def test_the_statistics_read_its_names_without_a_warning(tmp_path: Path) -> None:
    from delssome_norms.cli.stats_cmd import _read

    path = write_reference_table(tmp_path / "ref.parquet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table, names, _ = _read(str(path))
    assert names == list(DK68_REGIONS) and len(table) == 12005
