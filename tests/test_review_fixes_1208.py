"""Fixes from the review of 2026-12-08's changes: one label per site whichever columns hold it,
site columns read as text under any accepted header spelling, which family a compare option does
not fit, site-like columns, and the settings check of fit_group."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.io import read_table
from delssome_norms.io.demographics import site_like_unused
from delssome_norms.io.ei_table import join_site_scanner, site_text


@pytest.mark.parametrize(
    ("site", "scanner"), [("02", "007"), ("1", "A"), ("Site 3", "01"), ("7.0", "B"), ("x", "0")]
)
def test_a_site_scanner_label_reads_as_its_joined_columns(site: str, scanner: str) -> None:
    joined = join_site_scanner(pd.Series([site]), pd.Series([scanner]))[0]
    assert site_text(f"{site}_{scanner}") == joined == site_text(joined)


def test_site_text_by_parts() -> None:
    assert site_text("02_007") == "2_7" and site_text("SiteA_01") == "SiteA_1"
    assert site_text("A6") == "A6" and site_text("1.50") == "1.50" and site_text(" 3.0 ") == "3"


@pytest.mark.parametrize("header", ["Site", "SCANNER", "Site-Scanner", "site"])
def test_site_columns_are_text_under_every_accepted_spelling(tmp_path: Path, header: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(f"subject_id,age_in_years,sex,{header}\ns1,20,female,01\ns2,30,male,1.50\n")
    assert read_table(path)[header].tolist() == ["01", "1.50"]


def test_site_like_columns_are_words_not_substrings() -> None:
    found = site_like_unused(["website", "Scanner Site", "site_id", "SiteID", "age", "Websites"])
    assert found == ["Scanner Site", "site_id", "SiteID"]


def test_compare_names_the_family_an_option_does_not_fit(tmp_path: Path, capsys) -> None:
    from delssome_norms.cli.main import main
    from delssome_norms.datasets import load_reference_table

    table = tmp_path / "t.csv"
    load_reference_table().sample(n=200, random_state=0).to_csv(table, index=False)
    argv = ["charts", "compare", "--table", str(table), "--out", str(tmp_path / "b.csv")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([*argv, "--families", "NO,SHASHo2", "--random-sites", "mu,nu"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--random-sites" in err and "family NO:" in err


def test_fit_group_refuses_settings_dict(tmp_path: Path) -> None:
    from delssome_norms.fit.lockstep import fit_group

    with pytest.raises(InvalidInputError, match="must be a FitSettings, not dict") as err:
        fit_group([], tmp_path / "out", {"seed": 1})
    assert err.value.source == "settings"
