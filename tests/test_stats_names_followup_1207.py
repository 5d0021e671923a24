"""Follow-ups of the review of ``stats``' region names (commit 9b9179f).

1. A provenance sidecar whose ``atlas`` is a string (``"DK68"``), or whose ``atlas.regions``
   is not a list, names no regions: no ``AttributeError`` from the command line or from Python.
2. Provenance names that name a region twice, or leave regional columns unnamed, are refused by
   the Python API (``table_regions``, hence ``sex_difference_tests`` and
   ``region_group_scores``) as by the command line, which names the sidecar.
3. The output provenance keeps the input's sidecar file as it is under ``source.provenance``;
   its top-level ``atlas`` lists the names the tables use (DK68 by position included).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pandas as pd
import pytest
from stats_table_helpers import run_cli, write_table

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError

REVERSED = list(reversed(DK68_REGIONS))
TWICE = [*DK68_REGIONS[:67], DK68_REGIONS[3]]  # lh_cuneus names ei_ratio_roi_3 and _67


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    from delssome_norms.datasets import load_reference_table

    return load_reference_table().sample(n=300, random_state=2).reset_index(drop=True)


def _sex(path: Path, out: Path) -> list[str]:
    return [
        "stats", "sex", "--table", str(path), "--out-dir", str(out), "--n-boot", "0",
        "--no-figures", "--targets", "ei_ratio_roi_0,ei_ratio_roi_9",
    ]  # fmt: skip


def _groups(path: Path, out: Path) -> list[str]:
    return ["stats", "groups", "--table", str(path), "--out-dir", str(out), "--no-trajectories"]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _sidecar(path: Path) -> dict:
    return json.loads(path.with_suffix(".provenance.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------- 1
@pytest.mark.parametrize(
    "atlas", ["DK68", {"name": "X", "regions": "lh_bankssts"}, {"regions": {"a": 1}}]
)
def test_an_atlas_that_lists_no_names_is_no_names(atlas) -> None:
    from delssome_norms.norms.chart_regions import chart_region_names, table_region_names

    assert table_region_names({"atlas": atlas}) is None

    from types import SimpleNamespace

    chart = SimpleNamespace(provenance_={"atlas": atlas}, targets_=["ei_ratio_roi_0"])
    assert chart_region_names(chart) is None


def test_a_string_atlas_stops_neither_stats_nor_the_api(people, tmp_path, capsys) -> None:
    from delssome_norms import stats
    from delssome_norms.io import read_ei_table

    path = write_table(tmp_path / "s", people, atlas="DK68")
    code, err, said = run_cli(_sex(path, tmp_path / "sex"), capsys)
    assert code == 0, err
    assert "AttributeError" not in err and "name no regions" in said  # DK68 by position
    tests = pd.read_csv(tmp_path / "sex" / "sex_difference_tests.csv")
    assert dict(zip(tests["target"], tests["region"], strict=False)) == {
        "ei_ratio_roi_0": "lh_bankssts",
        "ei_ratio_roi_9": "lh_lateraloccipital",
    }
    code, err, _ = run_cli(_groups(path, tmp_path / "grp"), capsys)
    assert code == 0, err
    table = read_ei_table(path)
    res = _quiet(stats.sex_difference_tests, table, ["ei_ratio_roi_9"], site=None)
    assert set(res["region"]) == {"lh_lateraloccipital"}
    scores = _quiet(stats.region_group_scores, table)
    assert len(scores) == len(people)
    # 10 columns and a string atlas: no names at all (not DK68 by position)
    few = people.drop(columns=[f"ei_ratio_roi_{k}" for k in range(10, 68)])
    short = read_ei_table(write_table(tmp_path / "few", few, atlas="DK68"))
    res = _quiet(stats.sex_difference_tests, short, ["ei_ratio_roi_9"], site=None)
    assert res["region"].isna().all()


# --------------------------------------------------------------------------------- 2
def test_the_api_refuses_provenance_names_as_the_cli_does(people, tmp_path, capsys) -> None:
    from delssome_norms import stats
    from delssome_norms.io import read_ei_table
    from delssome_norms.stats._cohort import table_regions

    twice = write_table(tmp_path / "u", people, atlas={"name": "OTHER", "regions": TWICE})
    table = read_ei_table(twice)
    with pytest.raises(InvalidInputError) as err:
        table_regions(table)
    assert err.value.source == "table"
    assert "names region lh_cuneus more than once" in err.value.problem
    assert "pass regions=" in err.value.problem
    with pytest.raises(InvalidInputError, match="lh_cuneus more than once"):
        _quiet(stats.sex_difference_tests, table, ["ei_ratio_roi_3"], site=None)
    with pytest.raises(InvalidInputError, match="lh_cuneus more than once"):
        _quiet(stats.region_group_scores, table)  # was: classed by the repeated name
    code, err_text, _ = run_cli(_sex(twice, tmp_path / "o1"), capsys)
    assert code == 2
    assert f"{tmp_path / 'u' / 't.provenance.json'}: names region lh_cuneus more than once" in err_text

    few = write_table(tmp_path / "t", people, atlas={"name": "DK68", "regions": list(DK68_REGIONS[:34])})
    table = read_ei_table(few)
    with pytest.raises(InvalidInputError) as err:
        _quiet(stats.sex_difference_tests, table, ["ei_ratio_roi_40"], site=None)
    # was: DK68 by position (rh_* for ei_ratio_roi_40) with a warning
    assert "names 34 regions" in err.value.problem
    assert "regional columns up to ei_ratio_roi_67" in err.value.problem
    with pytest.raises(InvalidInputError, match="names 34 regions"):
        _quiet(stats.region_group_scores, table)
    code, err_text, _ = run_cli(_groups(few, tmp_path / "o2"), capsys)
    assert code == 2
    assert f"{tmp_path / 't' / 't.provenance.json'}: names 34 regions (atlas.regions)" in err_text
    # more names than columns name the columns the table has (its first 10)
    sub = people.drop(columns=[f"ei_ratio_roi_{k}" for k in range(10, 68)])
    table = read_ei_table(write_table(tmp_path / "f", sub, atlas={"regions": REVERSED}))
    assert table_regions(table) == REVERSED


# --------------------------------------------------------------------------------- 3
def test_output_provenance_keeps_the_input_sidecar_and_lists_the_names_used(
    people, tmp_path, capsys
) -> None:
    dk = {"name": "DK68", "n_regions": 68, "regions": list(DK68_REGIONS)}
    path = write_table(tmp_path / "c", people, atlas=dk, regions=REVERSED)  # regions.csv wins
    raw = json.loads((tmp_path / "c" / "t.provenance.json").read_text(encoding="utf-8"))
    for argv, name in (
        (_sex(path, tmp_path / "sex"), "sex/sex_difference_tests.csv"),
        (_groups(path, tmp_path / "grp"), "grp/region_group_scores.csv"),
    ):
        code, err, _ = run_cli(argv, capsys)
        assert code == 0, err
        meta = _sidecar(tmp_path / name)
        assert meta["source"]["provenance"] == raw  # the file as it is (DK68 order)
        assert meta["atlas"]["regions"] == REVERSED  # the names the tables use
        assert meta["atlas"]["n_regions"] == 68
    tests = pd.read_csv(tmp_path / "sex" / "sex_difference_tests.csv")
    assert set(tests.loc[tests["target"] == "ei_ratio_roi_0", "region"]) == {REVERSED[0]}

    bare = write_table(tmp_path / "e", people)  # no sidecars: DK68 by position
    code, err, said = run_cli(_sex(bare, tmp_path / "sex_e"), capsys)
    assert code == 0, err
    assert said.count("name no regions") == 1
    meta = _sidecar(tmp_path / "sex_e" / "sex_difference_tests.csv")
    assert meta["source"]["provenance"] is None
    assert meta["atlas"]["regions"] == list(DK68_REGIONS)
    assert meta["atlas"]["name"] == "DK68" and meta["atlas"]["n_regions"] == 68


def test_the_output_atlas_counts_the_names_its_tables_use() -> None:
    """n_regions follows the names used, not the input provenance's count (a 34-column table
    named by its regions.csv next to a 68-region provenance)."""
    from delssome_norms.datasets import DK68_REGIONS
    from delssome_norms.stats._cohort import names_atlas

    provenance = {"atlas": {"name": "DK68", "n_regions": 68, "regions": list(DK68_REGIONS)}}
    left = list(DK68_REGIONS[:34])
    block = names_atlas(provenance, left)
    assert block["n_regions"] == 34 and block["regions"] == left
