"""``stats`` reads a collected table's region names as ``read_ei_table`` and ``charts`` do.

Its names come from ``<stem>.regions.csv``, else from the provenance sidecar's
``atlas.regions``, else (68 columns only) DK68 by position with a warning; a regions sidecar that
names other regions than the provenance sidecar is warned about once and wins, and the output
provenance records the names the output tables use. A regions sidecar naming one region twice
is refused by the shared reader; ``stats groups`` speaks in CLI words.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from stats_table_helpers import run_cli, write_table

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import InvalidInputError

SWAP = "lists other regions than the table's provenance sidecar"
UNNAMED = "name no regions"


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    from delssome_norms.datasets import load_reference_table

    return load_reference_table().sample(n=300, random_state=1).reset_index(drop=True)


def _write(folder: Path, table: pd.DataFrame, *, provenance=None, regions=None) -> Path:
    """``folder/t.csv`` with a provenance sidecar naming ``provenance`` (collect's format) and
    a regions sidecar naming ``regions`` (None: no such file)."""
    atlas = None
    if provenance is not None:
        atlas = {"name": "DK68", "n_regions": len(provenance), "regions": list(provenance)}
    return write_table(folder, table, atlas, regions)


def _sex(path: Path, out: Path, targets: str = "ei_ratio_roi_0,ei_ratio_roi_1") -> list[str]:
    argv = ["stats", "sex", "--table", str(path), "--out-dir", str(out), "--n-boot", "0"]
    return [*argv, "--no-figures", "--targets", targets]


def _regions_of(csv: Path) -> dict[str, str]:
    frame = pd.read_csv(csv)
    return dict(zip(frame["target"], frame["region"], strict=False))


def _atlas(sidecar: Path) -> list[str]:
    return json.loads(sidecar.read_text(encoding="utf-8"))["atlas"]["regions"]


# ------------------------------------------------------------------------ 1: swapped sidecar
def test_swapped_regions_sidecar_names_tables_and_provenance_with_one_warning(
    people, tmp_path, capsys
) -> None:
    swapped = [DK68_REGIONS[1], DK68_REGIONS[0], *DK68_REGIONS[2:]]
    path = _write(tmp_path / "d", people, provenance=DK68_REGIONS, regions=swapped)
    code, _err, said = run_cli(_sex(path, tmp_path / "sex"), capsys)
    assert code == 0
    assert said.count(SWAP) == 1 and UNNAMED not in said
    regions = _regions_of(tmp_path / "sex" / "sex_difference_tests.csv")
    assert regions == {"ei_ratio_roi_0": "lh_caudalanteriorcingulate", "ei_ratio_roi_1": "lh_bankssts"}
    recorded = _atlas(tmp_path / "sex" / "sex_difference_tests.provenance.json")
    assert recorded[:3] == ["lh_caudalanteriorcingulate", "lh_bankssts", DK68_REGIONS[2]]
    assert recorded == swapped

    argv = ["stats", "groups", "--table", str(path), "--out-dir", str(tmp_path / "grp")]
    code, _err, said = run_cli([*argv, "--no-trajectories"], capsys)
    assert code == 0 and said.count(SWAP) == 1
    assert _atlas(tmp_path / "grp" / "region_group_scores.provenance.json") == swapped


# ------------------------------------------------------------------- 2: provenance-only names
def test_provenance_names_without_a_regions_sidecar_are_used(people, tmp_path, capsys) -> None:
    reverse = list(reversed(DK68_REGIONS))
    path = _write(tmp_path / "b", people, provenance=reverse)
    code, _err, said = run_cli(_sex(path, tmp_path / "sex", "ei_ratio_roi_0,ei_ratio_roi_67"), capsys)
    assert code == 0 and UNNAMED not in said and SWAP not in said
    regions = _regions_of(tmp_path / "sex" / "sex_difference_tests.csv")
    assert regions == {"ei_ratio_roi_0": "rh_insula", "ei_ratio_roi_67": "lh_bankssts"}
    assert _atlas(tmp_path / "sex" / "sex_difference_tests.provenance.json")[0] == "rh_insula"


def test_a_table_of_100_named_regions_is_named_by_its_provenance(people, tmp_path, capsys) -> None:
    other = [c for c in people.columns if not c.startswith("ei_ratio_roi_")]
    wide = pd.concat(
        [people[other]]
        + [people[f"ei_ratio_roi_{k % 68}"].rename(f"ei_ratio_roi_{k}") for k in range(100)],
        axis=1,
    )
    names = [f"Net_{k}" for k in range(100)]
    path = _write(tmp_path / "j", wide, provenance=names)
    code, _err, said = run_cli(_sex(path, tmp_path / "sex", "ei_ratio_roi_0,ei_ratio_roi_99"), capsys)
    assert code == 0 and UNNAMED not in said
    regions = _regions_of(tmp_path / "sex" / "sex_difference_tests.csv")
    assert regions == {"ei_ratio_roi_0": "Net_0", "ei_ratio_roi_99": "Net_99"}
    code, err, _said = run_cli(
        ["stats", "groups", "--table", str(path), "--out-dir", str(tmp_path / "g")], capsys
    )
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "t.provenance.json" in lines[0] and "Net_0" in lines[0] and "DK68 sensory" in lines[0]
    assert "is missing" not in lines[0]


def test_provenance_names_that_do_not_name_every_column_are_refused(people, tmp_path, capsys) -> None:
    path = _write(tmp_path / "short", people, provenance=DK68_REGIONS[:34])
    code, err, _said = run_cli(_sex(path, tmp_path / "sex"), capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and not (tmp_path / "sex").exists()
    assert "t.provenance.json" in lines[0] and "names 34 regions" in lines[0]
    assert "ei_ratio_roi_67" in lines[0] and "t.regions.csv" in lines[0]
    twice = [*DK68_REGIONS[:67], DK68_REGIONS[3]]
    path = _write(tmp_path / "twice", people, provenance=twice)
    code, err, _said = run_cli(_sex(path, tmp_path / "sex2"), capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "t.provenance.json" in lines[0] and f"{DK68_REGIONS[3]} more than once" in lines[0]


# ---------------------------------------------------------------- 3: a name given twice
def test_a_regions_sidecar_naming_a_region_twice_is_refused(people, tmp_path, capsys) -> None:
    from delssome_norms.io import read_ei_table, read_regions_sidecar

    twice = [*DK68_REGIONS[:5], DK68_REGIONS[2], *DK68_REGIONS[6:]]
    path = _write(tmp_path / "z", people, regions=twice)
    sidecar = tmp_path / "z" / "t.regions.csv"
    with pytest.raises(InvalidInputError) as err:
        read_regions_sidecar(sidecar)
    assert err.value.source == str(sidecar)
    assert "names region lh_caudalmiddlefrontal more than once" in err.value.problem
    assert "ei_ratio_roi_2, ei_ratio_roi_5" in err.value.problem
    with pytest.raises(InvalidInputError, match="lh_caudalmiddlefrontal more than once"):
        read_ei_table(path)
    code, out, _said = run_cli(_sex(path, tmp_path / "sex"), capsys)
    lines = out.strip().splitlines()
    assert code == 2 and len(lines) == 1 and not (tmp_path / "sex").exists()
    assert str(sidecar) in lines[0] and "lh_caudalmiddlefrontal more than once" in lines[0]


# ------------------------------------------------------------------------- 4: CLI wording
def test_groups_missing_columns_speak_cli_words(people, tmp_path, capsys) -> None:
    from delssome_norms import stats

    table = people.drop(columns=["ei_ratio_roi_5"])
    path = _write(tmp_path / "m", table, regions=DK68_REGIONS)
    argv = ["stats", "groups", "--table", str(path), "--out-dir", str(tmp_path / "g")]
    code, err, _said = run_cli([*argv, "--no-trajectories"], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "1 of the 68 regional columns are missing (ei_ratio_roi_5)" in lines[0]
    assert "regions=" not in lines[0] and "the table's <stem>.regions.csv" in lines[0]
    with pytest.raises(InvalidInputError) as api:  # Python keeps both words
        stats.region_group_scores(table, regions=DK68_REGIONS)
    assert "regions.csv / regions=" in api.value.problem and "pass regions=" not in api.value.problem
