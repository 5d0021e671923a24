"""Review of the growth charts (12-08): hand-edited charts without their checksums, a damaged
arrays.npz's file handle, scoring the mean of a table with some regional columns, and z-scores
of values far outside the chart in the calibration."""

from __future__ import annotations

import gc
import json
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from delssome_norms.cli.main import main
from delssome_norms.datasets import load_reference_table
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.ei_table import MEAN_TARGET
from delssome_norms.norms import GrowthChart, load_reference_chart
from delssome_norms.norms.calibration import Z_EXTREME, calibration_summary
from delssome_norms.norms.reference import reference_chart_path


@pytest.fixture(scope="module")
def chart() -> GrowthChart:
    return load_reference_chart()


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    """200 people of the reference cohort (sites known to the chart, ages inside it)."""
    return load_reference_table().iloc[:200].reset_index(drop=True)


def _copy(tmp_path: Path, edit=None, drop=("content_sha256",)) -> Path:
    """The shipped chart copied, ``chart.json`` edited by ``edit`` and its ``drop`` keys removed."""
    folder = tmp_path / "chart"
    shutil.copytree(reference_chart_path(), folder)
    meta = json.loads((folder / "chart.json").read_text())
    if edit is not None:
        edit(meta)
    for key in drop:
        meta.pop(key)
    (folder / "chart.json").write_text(json.dumps(meta, indent=1))
    return folder


def _load(folder: Path) -> tuple[GrowthChart, list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chart = GrowthChart.load(folder)
    return chart, [w for w in caught if issubclass(w.category, InputWarning)]


# -- 1. a chart without its checksums -----------------------------------------------------------
def test_the_shipped_chart_loads_without_a_warning() -> None:
    _, caught = _load(reference_chart_path())
    assert caught == []


@pytest.mark.parametrize(
    ("drop", "named"),
    [
        (("content_sha256",), "(content_sha256;"),
        (("arrays_sha256", "content_sha256"), "(content_sha256, arrays_sha256;"),
    ],
)
def test_a_chart_without_checksum_loads_with_one_warning(chart, tmp_path, drop, named) -> None:
    folder = _copy(tmp_path, drop=drop)
    old, caught = _load(folder)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert text.startswith(f"{folder / 'chart.json'}: has no checksum {named}")
    assert "edits to the chart cannot be detected" in text and "re-save it" in text
    np.testing.assert_array_equal(old.coef_["mu"], chart.coef_["mu"])
    assert old.sites_ == chart.sites_ and old.chart_range_ == chart.chart_range_
    # re-saved as the warning says: checksums again, no warning
    old.save(folder, overwrite=True)
    again, caught = _load(folder)
    assert caught == [] and again._saved_sha256["content_sha256"] is not None


def _site_people_then(edit):
    """The chart as this version saves it (its training sites' counts in site_people), then
    ``edit``."""

    def both(meta: dict) -> None:
        meta["site_people"] = {s: 100 for s in meta["sites"]}
        edit(meta)

    return both


def _set(*path_and_value):
    *path, value = path_and_value

    def edit(meta: dict) -> None:
        for key in path[:-1]:
            meta = meta[key]
        meta[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (_site_people_then(lambda m: m.__setitem__("sites", m["sites"][::-1])), "sites ("),
        (_set("family", "JSU"), "family JSU is not the one the chart was fitted with"),
        (_set("links", "nu", "log"), "links {"),
        (_set("links", None), "links None"),
        (
            lambda m: m.update(chart_range=[0.0, 120.0], age_range=[0.0, 120.0]),
            "age_range [0, 120] is not the training ages of the age curves "
            "(parameters.mu.basis.boundary_knots [4.5, 98.4])",
        ),
        (_set("chart_range", [0.0, 120.0]), "chart_range [0, 120] is not the training ages"),
        (
            _set("parameters", "mu", "basis", "interior_knots", [2.0]),
            "parameters.mu.basis.interior_knots [2.0] are not increasing inside",
        ),
    ],
    ids=["sites_reversed", "family", "links", "no_links", "age_range", "chart_range", "knot"],
)
def test_an_edited_chart_without_checksum_is_refused(tmp_path, edit, field) -> None:
    folder = _copy(tmp_path, edit)
    with pytest.raises(InvalidInputError) as err:
        _load(folder)
    text = str(err.value)
    assert text.startswith(f"{folder / 'chart.json'}: {field}"), text
    assert "refit or restore the chart" in text


def test_the_checks_apply_to_a_chart_with_its_checksums(tmp_path) -> None:
    """A consistent chart (site_people added, checksum recomputed) loads; its sites reordered
    and the checksum recomputed by hand are refused all the same."""
    from delssome_norms.io.digest import content_sha256

    def rehash(meta: dict) -> None:
        meta["content_sha256"] = content_sha256(meta, "content_sha256")

    good = _copy(tmp_path, _site_people_then(rehash), drop=())
    loaded, caught = _load(good)
    assert caught == [] and list(loaded.site_n_) == loaded.sites_
    bad = _copy(
        tmp_path / "b",
        _site_people_then(lambda m: (m.__setitem__("sites", m["sites"][::-1]), rehash(m))),
        drop=(),
    )
    with pytest.raises(InvalidInputError, match=r"chart\.json: sites \(14: SiteN_GE"):
        _load(bad)


def test_a_cli_score_names_the_edited_field(tmp_path, people, capsys) -> None:
    folder = _copy(tmp_path, _set("family", "JSU"))
    people.iloc[:5].to_csv(tmp_path / "t.csv", index=False)
    args = ["charts", "score", "--chart", str(folder), "--table", str(tmp_path / "t.csv")]
    assert main([*args, "--out", str(tmp_path / "s.csv")]) == 2
    err = capsys.readouterr().err
    assert "chart.json: family JSU is not the one the chart was fitted with ('SHASHo2'" in err
    assert not (tmp_path / "s.csv").exists()


# -- 2. a truncated arrays.npz -----------------------------------------------------------------
def test_a_truncated_npz_leaves_no_file_open(tmp_path) -> None:
    folder = _copy(tmp_path, drop=("content_sha256", "arrays_sha256"))
    data = (folder / "arrays.npz").read_bytes()
    (folder / "arrays.npz").write_bytes(data[: len(data) // 2])
    message = ""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            GrowthChart.load(folder)
        except InvalidInputError as exc:
            message = str(exc)
        gc.collect()
    assert message.startswith(f"{folder / 'arrays.npz'}: cannot be read")
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


# -- 3. the mean of a table with some of the regional columns ------------------------------------
def _some_regions(people: pd.DataFrame) -> pd.DataFrame:
    keep = ["subject_id", "age_in_years", "sex", "site_scanner", MEAN_TARGET]
    return people.iloc[:8][[*keep, "ei_ratio_roi_0", "ei_ratio_roi_33"]]


def test_the_mean_of_a_table_with_some_regional_columns_is_scored(chart, people) -> None:
    table = _some_regions(people)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        got = chart.score(table, targets=[MEAN_TARGET])
        full = chart.score(people.iloc[:8], targets=[MEAN_TARGET])  # every column there
    np.testing.assert_array_equal(got[f"{MEAN_TARGET}_z"], full[f"{MEAN_TARGET}_z"])
    assert np.isfinite(got[f"{MEAN_TARGET}_z"]).all()


@pytest.mark.parametrize("targets", [None, ["ei_ratio_roi_0"], [MEAN_TARGET, "ei_ratio_roi_33"]])
def test_regional_targets_name_the_missing_columns(chart, people, targets) -> None:
    with pytest.raises(InvalidInputError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        chart.score(_some_regions(people), targets=targets, source="t.csv")
    text = str(err.value)
    assert text.startswith("t.csv: the table's regions differ from the chart's: n_regions is 2")
    assert (
        "the table lacks ei_ratio_roi_1, ei_ratio_roi_2, ei_ratio_roi_3 ... (66 of the chart's "
        "68 regional columns): regional targets need every regional column of the chart"
    ) in text
    assert "or name the targets to score (--targets ei_ratio_mean;" in text
    assert "describe other regions" not in text


def test_adapt_is_not_told_to_name_targets(chart, people) -> None:
    controls = _some_regions(people).assign(site_scanner="NewSite")
    with pytest.raises(InvalidInputError, match="the table lacks ei_ratio_roi_1") as err:
        chart.adapt(controls)
    assert "--targets" not in str(err.value)


@pytest.mark.parametrize(
    ("columns", "fragment"),
    [
        ([f"ei_ratio_roi_{k}" for k in range(100)], "n_regions is 100 in the table but 68"),
        (["ei_ratio_roi_0", "ei_ratio_roi_68"], "n_regions is 2 in the table but 68"),
        ([f"ei_ratio_roi_{k}" for k in range(60, 75)], "describe other regions"),
    ],
    ids=["100_regions", "index_68", "indices_beyond"],
)
def test_a_table_of_another_atlas_is_refused_for_the_mean_too(chart, people, columns, fragment):
    table = people.iloc[:8][["subject_id", "age_in_years", "sex", "site_scanner", MEAN_TARGET]]
    table = pd.concat([table, pd.DataFrame(3.0, index=table.index, columns=columns)], axis=1)
    for allow in (False, True):
        with pytest.raises(InvalidInputError, match=re.escape(fragment)), warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            chart.score(table, targets=[MEAN_TARGET], allow_pipeline_mismatch=allow)


def test_cli_scores_the_mean_of_a_table_with_some_regions(people, tmp_path, capsys) -> None:
    _some_regions(people).to_csv(tmp_path / "two.csv", index=False)
    args = ["charts", "score", "--chart", "reference", "--table", str(tmp_path / "two.csv")]
    out = tmp_path / "s.csv"
    assert main([*args, "--targets", MEAN_TARGET, "--out", str(out)]) == 0
    assert len(pd.read_csv(out)) == 8
    assert main([*args, "--out", str(tmp_path / "all.csv")]) == 2
    assert "the table lacks ei_ratio_roi_1" in capsys.readouterr().err


# -- 4. a z far outside the chart in the calibration ---------------------------------------------
def _with_huge_value(people: pd.DataFrame) -> pd.DataFrame:
    table = people.copy()
    table.loc[0, MEAN_TARGET] = 1e300
    return table


def test_calibration_counts_an_extreme_z_apart(chart, people) -> None:
    table = _with_huge_value(people)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        z0 = chart.score(table.iloc[:1], targets=[MEAN_TARGET], layout="long")["z"].iloc[0]
        z = chart.score(table.iloc[1:], targets=[MEAN_TARGET], layout="long")["z"].to_numpy()
    assert np.isfinite(z0) and z0 > 1e100  # huge but finite: not counted as infinite
    assert np.abs(z).max() < Z_EXTREME
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        warnings.simplefilter("error", RuntimeWarning)  # no raw numpy overflow warning
        row = calibration_summary(chart, table, targets=[MEAN_TARGET]).iloc[0]
    assert row["n"] == 200 and row["n_extreme_z"] == 1 and row["n_infinite_z"] == 0
    assert row["z_mean"] == pytest.approx(z.mean(), rel=1e-12)
    assert row["z_sd"] == pytest.approx(z.std(ddof=1), rel=1e-12)
    assert row["shapiro_w"] == pytest.approx(stats.shapiro(z).statistic, rel=1e-12)


@pytest.mark.filterwarnings("ignore::delssome_norms.errors.InputWarning")
def test_cli_calibrate_prints_no_huge_number(chart, people, tmp_path, capsys) -> None:
    _with_huge_value(people).to_csv(tmp_path / "held.csv", index=False)
    out = tmp_path / "cal.csv"
    args = ["charts", "calibrate", "--chart", "reference", "--table", str(tmp_path / "held.csv")]
    assert main([*args, "--targets", MEAN_TARGET, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "overflow" not in printed.err and not re.search(r"\d{12}", printed.out), printed.out
    assert "(n 200; 1 with |z| beyond 40 or infinite, left out of z mean and sd" in printed.out
    summary = pd.read_csv(out)
    assert summary[["n", "n_infinite_z", "n_extreme_z"]].iloc[0].tolist() == [200, 0, 1]
    assert abs(summary["z_mean"].iloc[0]) < 1 and 0.5 < summary["z_sd"].iloc[0] < 2
