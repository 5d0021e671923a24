"""Review of the day's chart/statistics changes (2026-12-07, second pass):

* ``stats sex`` on a table with its regions.csv does not claim its columns name no regions;
* a chart with 68 unnamed regional columns scores a table of another 68-region atlas by position
  with a warning (as before the DK68 reading), and still matches a reordered DK68 table by name;
* ``read_ei_table`` reads the sidecar of ``charts score``'s output (``"atlas": null``) and refuses
  a regions.csv naming more regions than the table has columns;
* ``--subject`` finds a person whose id carries spaces;
* ``charts report`` of a person of the sex a one-sex chart lacks is written (flag unseen_sex).
"""

from __future__ import annotations

import copy
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.charts_helpers import _person_row
from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, load_reference_table
from delssome_norms.errors import InvalidInputError
from delssome_norms.io import provenance_path, read_ei_table, regions_path
from delssome_norms.io.ei_table import regions_frame
from delssome_norms.io.provenance import SIDECAR_KIND
from delssome_norms.norms import GrowthChart, load_reference_chart

ROI = [f"ei_ratio_roi_{k}" for k in range(68)]


def _caught(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args, **kwargs)
    return out, [str(w.message) for w in caught]


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    table = load_reference_table()
    return table[table["age_in_years"].between(20, 70)].head(200).reset_index(drop=True)


def test_stats_sex_on_a_table_with_its_regions_file_says_nothing_of_unnamed_columns(
    people, tmp_path: Path, capsys
) -> None:
    path = tmp_path / "cohort_ei.csv"
    people.to_csv(path, index=False)
    regions_frame(DK68_REGIONS).to_csv(regions_path(path), index=False)
    argv = ["stats", "sex", "--table", str(path), "--n-boot", "0", "--no-figures"]
    argv += ["--targets", "ei_ratio_mean,ei_ratio_roi_3", "--out-dir", str(tmp_path / "out")]
    code, said = _caught(main, argv)
    assert code in (0, 1)
    assert not [w for w in said if "name no regions" in w]
    tests = pd.read_csv(tmp_path / "out" / "sex_difference_tests.csv")
    assert set(tests["region"].dropna()) == {DK68_REGIONS[3]}


def test_an_unnamed_68_column_chart_scores_another_atlas_by_position_with_a_warning(people) -> None:
    chart = copy.deepcopy(load_reference_chart())
    chart.provenance_ = {"pipeline": {"n_regions": 68}}  # fitted on a table without regions.csv
    custom = [f"Custom_{h}_{k}" for h in ("LH", "RH") for k in range(34)]
    table = people.head(20)
    scores, said = _caught(chart.score, table, regions=custom)
    assert any("records no region names" in w for w in said)
    plain = chart.score(table)  # the same columns, no names: position
    pd.testing.assert_frame_equal(scores, plain)
    # DK68 names in another order are still matched by name
    perm = np.random.default_rng(0).permutation(68)
    shuffled = table.copy()
    for j in range(68):
        shuffled[ROI[j]] = table[ROI[perm[j]]].to_numpy()
    names = [DK68_REGIONS[perm[j]] for j in range(68)]
    matched, said = _caught(chart.score, shuffled, regions=names)
    assert any("another order than the chart" in w for w in said)
    z = [f"{c}_z" for c in ROI]
    np.testing.assert_allclose(matched[z].to_numpy(), plain[z].to_numpy())


def test_read_ei_table_reads_a_score_tables_sidecar_and_refuses_longer_names(
    people, tmp_path: Path
) -> None:
    path = tmp_path / "scores.csv"
    people.head(5).to_csv(path, index=False)
    sidecar = {"kind": SIDECAR_KIND, "table": "scores.csv", "pipeline": {}, "atlas": None}
    provenance_path(path).write_text(json.dumps(sidecar))
    regions_frame(DK68_REGIONS).to_csv(regions_path(path), index=False)
    table, _ = _caught(read_ei_table, path)  # was AttributeError: 'NoneType' ... 'get'
    assert table.attrs["delssome_norms_provenance"]["atlas"]["regions"] == list(DK68_REGIONS)
    half = tmp_path / "half.csv"
    people.head(5).drop(columns=ROI[34:]).to_csv(half, index=False)
    regions_frame(DK68_REGIONS).to_csv(regions_path(half), index=False)
    with pytest.raises(InvalidInputError, match=r"half\.regions\.csv: names 68 regions, but .*roi_33"):
        read_ei_table(half)


def test_subject_ids_are_found_without_their_surrounding_spaces() -> None:
    table = pd.DataFrame({"subject_id": ["pat-00 ", "pat-01"], "age_in_years": [30.0, 40.0]})
    assert _person_row(table, "pat-00", "scores.csv")["age_in_years"] == 30.0
    assert _person_row(table, " pat-01", "scores.csv")["age_in_years"] == 40.0


def test_report_of_a_person_the_one_sex_chart_lacks_is_written(tmp_path: Path, capsys) -> None:
    table = load_reference_table()
    women = table[table["sex"] == "female"].head(300)
    men = table[table["sex"] == "male"].head(1)
    chart, _ = _caught(
        GrowthChart("NO", mu_sex=False, sigma_sex=False, mu_df=3, sigma_df=3, random_sites=["mu"]).fit,
        women,
    )
    chart.save(tmp_path / "chart")
    men.to_csv(tmp_path / "man.csv", index=False)
    man = str(men["subject_id"].iloc[0])
    argv = ["charts", "score", "--chart", str(tmp_path / "chart"), "--table"]
    code, _ = _caught(main, [*argv, str(tmp_path / "man.csv"), "--out", str(tmp_path / "s.csv")])
    assert code == 0
    assert "unseen_sex" in pd.read_csv(tmp_path / "s.csv")["flag"].iloc[0]
    report = ["charts", "report", "--chart", str(tmp_path / "chart"), "--scores"]
    report += [str(tmp_path / "s.csv"), "--subject", man, "--out", str(tmp_path / "rep")]
    code, _ = _caught(main, report)
    assert code == 0, capsys.readouterr().err  # was: "it has no male curves to place them on"
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "unseen_sex" in text and "fitted on people of the other sex only" in text
    assert (tmp_path / "rep" / "fan_chart.png").is_file()
