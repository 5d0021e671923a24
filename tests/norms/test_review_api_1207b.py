"""Review 1207b (Python API): a chart fitted on a table of fits keeps its pipeline and region
names from ``attrs``; saving never mixes a chart into other files nor replaces one silently; E/I
charts refuse E/I <= 0; an unnamed table scored on a chart of named regions is warned about; a
site label without its scanner is hinted; a row cannot take another person's demographics."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.ei_table import PROVENANCE_ATTR
from delssome_norms.io.regions import regions_sha256
from delssome_norms.norms import GrowthChart, load_reference_chart
from tests.norms.test_review_score_regions_1207 import (
    CHART_ORDER,
    PERSON,
    PIPELINE,
    RESULT_ORDER,
    _cohort,
    _result,
)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def attrs_chart() -> GrowthChart:
    """Fitted on a table whose ``attrs`` (as results_table writes them) name its regions and
    pipeline, no ``provenance=`` given."""
    table = _cohort(CHART_ORDER)
    pipe = {**PIPELINE, "regions_sha256": regions_sha256(CHART_ORDER)}
    table.attrs[PROVENANCE_ATTR] = {"pipeline": pipe, "atlas": {"regions": CHART_ORDER}}
    return _quiet(GrowthChart(family="NO", mu_df=3, sigma_df=3).fit, table)


def test_fit_takes_the_pipeline_and_regions_from_attrs(attrs_chart) -> None:
    assert attrs_chart.provenance_["pipeline"]["mode"] == "euler"
    assert attrs_chart.provenance_["atlas"]["regions"] == CHART_ORDER
    # so a row of another pipeline is refused, and a row in another order is matched by name
    other = _result(CHART_ORDER, np.full(6, 2.0))
    pipe = {**other.provenance["pipeline"], "mode": "surrogate"}
    other = dataclasses.replace(other, provenance={**other.provenance, "pipeline": pipe})
    with pytest.raises(InvalidInputError, match="mode"):
        attrs_chart.score(other.to_table(PERSON))
    with pytest.warns(InputWarning, match="another order than the chart"):
        attrs_chart.score(_result(RESULT_ORDER, np.full(6, 2.0)).to_table(PERSON))


def test_unnamed_table_on_a_chart_of_named_regions_is_warned(attrs_chart) -> None:
    plain = _cohort(RESULT_ORDER, n=3, seed=5)
    with pytest.warns(InputWarning, match=r"names none of its 6 regions.*R_bravo is ei_ratio_roi_0"):
        attrs_chart.score(plain)
    # the DK68 chart reads unnamed columns in the DK68 order, and says so once, as stats says it
    reference = load_reference_chart()
    row = pd.DataFrame([{**PERSON, "site_scanner": reference.sites_[0], "ei_ratio_mean": 3.0}])
    for k in range(68):
        row[f"ei_ratio_roi_{k}"] = 3.0
    with pytest.warns(InputWarning, match=r"68 regional columns name no regions, so they are taken"):
        reference.score(row)


def test_save_refuses_an_existing_chart_and_other_files(attrs_chart, tmp_path) -> None:
    folder = attrs_chart.save(tmp_path / "chart")
    before = (folder / "chart.json").read_bytes()
    with pytest.raises(InvalidInputError, match="holds a saved chart; give overwrite=True"):
        attrs_chart.save(folder)
    (folder / "notes.txt").write_text("mine")
    attrs_chart.save(folder, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"
    assert (folder / "chart.json").read_bytes() == before  # the same chart, the same bytes
    assert sorted(p.name for p in folder.iterdir()) == ["arrays.npz", "chart.json", "notes.txt"]
    fit = tmp_path / "sub-01"
    fit.mkdir()
    (fit / "EI_ratio.csv").write_text("region,EI_ratio\n")
    with pytest.raises(InvalidInputError, match=r"holds a subject's fit \(EI_ratio.csv\)"):
        attrs_chart.save(fit, overwrite=True)
    assert sorted(p.name for p in fit.iterdir()) == ["EI_ratio.csv"]
    # a folder the user made, with their notes and the OS's litter: the chart goes beside them
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    (mine / ".DS_Store").write_bytes(b"\0")
    attrs_chart.save(mine)
    assert GrowthChart.load(mine).targets_ == attrs_chart.targets_


def test_charts_fit_refuses_a_fit_folder_before_fitting(tmp_path, capsys) -> None:
    from delssome_norms.cli.main import main

    table = tmp_path / "t.csv"
    _cohort(CHART_ORDER, n=300).to_csv(table, index=False)
    fit = tmp_path / "sub-01"
    fit.mkdir()
    (fit / "run.json").write_text("{}")
    argv = ["charts", "fit", "--table", str(table), "--out", str(fit), "--family", "NO"]
    assert main(argv) == 2
    err = capsys.readouterr()
    assert "holds a subject's fit (run.json)" in err.err and "fitted" not in err.out
    assert sorted(p.name for p in fit.iterdir()) == ["run.json"]


def test_unnamed_table_on_a_one_region_chart(tmp_path) -> None:
    table = _cohort(CHART_ORDER, n=300)[["subject_id", "age_in_years", "sex", "site_scanner"]]
    table["ei_ratio_roi_0"] = _cohort(CHART_ORDER, n=300)["ei_ratio_roi_0"]
    chart = _quiet(GrowthChart(family="NO", mu_df=3, sigma_df=3).fit, table, regions=["L_alpha"])
    with pytest.warns(InputWarning, match=r"\(L_alpha is ei_ratio_roi_0\)"):
        chart.score(table.iloc[:3])


def test_format_version_as_text_is_named(attrs_chart, tmp_path) -> None:
    folder = attrs_chart.save(tmp_path / "c")
    meta = json.loads((folder / "chart.json").read_text())
    meta["format_version"] = "1"
    (folder / "chart.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match=r"format_version must be an integer .*'1' \(str\)"):
        GrowthChart.load(folder)


@pytest.mark.parametrize("table", [np.ones((3, 4)), {"ei_ratio_mean": [3.0]}, pd.DataFrame()])
def test_score_and_fit_name_what_is_not_a_table(attrs_chart, table) -> None:
    words = "has no rows" if isinstance(table, pd.DataFrame) else "expected a pandas DataFrame"
    with pytest.raises(InvalidInputError, match=words):
        attrs_chart.score(table)
    with pytest.raises(InvalidInputError, match=words):
        GrowthChart().fit(table)


def test_an_ei_chart_refuses_ei_at_or_below_zero_without_provenance() -> None:
    reference = load_reference_chart()
    row = pd.DataFrame(
        [{**PERSON, "site_scanner": reference.sites_[0], "ei_ratio_mean": v} for v in (3.0, -1.0)]
    )
    row["subject_id"] = ["a", "b"]
    with pytest.raises(InvalidInputError, match=r"ei_ratio_mean has E/I ratio\(s\) <= 0 in row"):
        reference.score(row, targets=["ei_ratio_mean"])
    # a chart of another quantity under these names (no pipeline) takes any value
    plain = _cohort(CHART_ORDER, n=300)
    plain["ei_ratio_mean"] -= plain["ei_ratio_mean"].mean()
    chart = _quiet(GrowthChart(family="NO", mu_df=3, sigma_df=3).fit, plain, ["ei_ratio_mean"])
    z = _quiet(chart.score, plain.iloc[:5], targets=["ei_ratio_mean"])["ei_ratio_mean_z"]
    assert np.isfinite(z).all()


def test_a_site_without_its_scanner_is_hinted() -> None:
    reference = load_reference_chart()
    full = reference.sites_[0]
    site = full.split("_")[0]
    row = pd.DataFrame([{**PERSON, "site_scanner": site, "ei_ratio_mean": 3.0}])
    with pytest.warns(InputWarning, match=rf"{site} may be {full}.*give the scanner too"):
        reference.score(row, targets=["ei_ratio_mean"])


def test_to_table_refuses_another_persons_demographics() -> None:
    result = _result(CHART_ORDER, np.full(6, 2.0))  # subject sub-1
    with pytest.raises(InvalidInputError, match="demographics are of subject 'sub-2'"):
        result.to_table({**PERSON, "subject_id": "sub-2"})
    assert result.to_table({**PERSON, "subject_id": "sub-1"})["subject_id"].iloc[0] == "sub-1"
    # a fit given no subject_id takes the demographics' (the README's example)
    unnamed = dataclasses.replace(result, subject_id="subject")
    assert unnamed.to_table({**PERSON, "subject_id": "sub-9"})["subject_id"].iloc[0] == "sub-9"
