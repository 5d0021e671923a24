"""Zero-padded site labels ("01") are one site with "1", 1 and 1.0, whatever a file's column held.

pandas read a site column as numbers only where every label of that file looked numeric ("01"
became 1) and kept "01" where the column also held a text label, so one site had two spellings
across files: known people were flagged ``unseen_site`` and ``charts adapt`` fitted a known site
again as a new one.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.datasets import load_reference_table
from delssome_norms.errors import InputWarning
from delssome_norms.io import read_table
from delssome_norms.io.digest import content_sha256
from delssome_norms.io.ei_table import join_site_scanner, site_text
from delssome_norms.norms.chart import GrowthChart

COLUMNS = ["subject_id", "age_in_years", "sex", "site_scanner", "ei_ratio_mean"]
PADDED = ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("01", "1"),
        ("007", "7"),
        ("0", "0"),
        ("00", "0"),
        (" 02 ", "2"),
        ("03.0", "3"),
        ("3.0", "3"),
        ("10", "10"),
        ("+3", "3"),
        ("-03", "-3"),
        ("-0", "0"),
        (1, "1"),
        (1.0, "1"),
        (np.int64(7), "7"),
        (np.float64(2.0), "2"),
        ("A6", "A6"),
        ("0A", "0A"),
        ("SiteA_01", "SiteA_1"),
        ("1.5", "1.5"),
        (" S1 ", "S1"),
    ],
)
def test_site_text_drops_leading_zeros_of_digit_labels(value, expected) -> None:
    assert site_text(value) == expected


def test_site_text_makes_every_spelling_of_a_site_one_label() -> None:
    assert {site_text(v) for v in ("01", "1", 1, 1.0, "1.0", "001", " 01")} == {"1"}


def test_join_site_scanner_joins_canonical_site_labels() -> None:
    site = pd.Series(["01", 1, "A6"])
    scanner = pd.Series(["GE", "GE", "007"])
    assert join_site_scanner(site, scanner).tolist() == ["1_GE", "1_GE", "A6_7"]


def test_read_table_keeps_padded_site_columns_as_text(tmp_path) -> None:
    path = tmp_path / "sites.csv"
    path.write_text(
        "subject_id,site,scanner,site_scanner,ei_ratio_mean\n"
        "001,01,002,01_002,1.5\n"
        "002,02,003,02_003,1.7\n"
        "003,,004,03_004,1.9\n"
    )
    table = read_table(path)
    assert table["site"].tolist()[:2] == ["01", "02"]
    assert pd.isna(table["site"].iloc[2])  # an empty cell stays missing, not "nan"
    assert table["scanner"].tolist() == ["002", "003", "004"]
    assert table["site_scanner"].tolist() == ["01_002", "02_003", "03_004"]
    assert table["ei_ratio_mean"].dtype == np.float64


# -- end to end through the command line -----------------------------------------------------------


def _padded(table: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    out = table[COLUMNS].copy().reset_index(drop=True)
    out["site_scanner"] = [labels[i % len(labels)] for i in range(len(out))]
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("site_labels")
    ref = load_reference_table().sample(n=420, random_state=5).reset_index(drop=True)
    paths = {k: folder / f"{k}.csv" for k in ("train", "digits", "mixed", "controls")}
    _padded(ref.iloc[:300], [*PADDED, "A6"]).to_csv(paths["train"], index=False)  # text column
    _padded(ref.iloc[300:360], PADDED).to_csv(paths["digits"], index=False)  # digits only
    _padded(ref.iloc[360:400], ["01", "A6"]).to_csv(paths["mixed"], index=False)
    controls = _padded(ref.iloc[360:420], ["2", "X9"])  # site 2 already in the chart
    controls.to_csv(paths["controls"], index=False)
    paths["folder"] = folder
    return paths


def _fit(table: Path, out: Path) -> Path:
    args = ["charts", "fit", "--table", str(table), "--out", str(out), "--family", "NO"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main([*args, "--mu-df", "3", "--centile-tables", "none"]) in (0, 1)
    return out


def _score(chart: Path, table: Path, out: Path) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        main(["charts", "score", "--chart", str(chart), "--table", str(table), "--out", str(out)])
    return pd.read_csv(out, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def chart_text(files) -> Path:
    """A chart fitted on the file whose site column also holds the text label A6."""
    return _fit(files["train"], files["folder"] / "chart_text")


@pytest.fixture(scope="module")
def chart_digits(files) -> Path:
    """A chart fitted on a file whose site column holds digit labels only."""
    return _fit(files["digits"], files["folder"] / "chart_digits")


def test_fitted_charts_store_one_spelling_of_each_site(chart_text, chart_digits) -> None:
    assert json.loads((chart_text / "chart.json").read_text())["sites"] == [
        "1",
        "2",
        "3",
        "4",
        "5",
        "A6",
    ]
    assert json.loads((chart_digits / "chart.json").read_text())["sites"] == ["1", "2", "3", "4", "5"]


def test_chart_of_a_text_site_column_knows_the_sites_of_a_digits_only_file(files, chart_text) -> None:
    scores = _score(chart_text, files["digits"], files["folder"] / "scores_digits.csv")
    assert len(scores) == 60
    assert not scores["flag"].str.contains("unseen_site").any()
    # scored on their site's curves: the harmonised value moves off the person's own value
    raw = pd.read_csv(files["digits"])["ei_ratio_mean"].to_numpy()
    assert np.abs(scores["ei_ratio_mean_harmonised"].astype(float).to_numpy() - raw).min() > 1e-6


def test_chart_of_a_digits_only_file_knows_the_padded_sites_of_a_text_column(
    files, chart_digits
) -> None:
    with pytest.warns(InputWarning, match=r"20 row\(s\) from site\(s\) A6 unknown") as caught:
        main(
            [
                "charts",
                "score",
                "--chart",
                str(chart_digits),
                "--table",
                str(files["mixed"]),
                "--out",
                str(files["folder"] / "scores_mixed.csv"),
            ]
        )
    assert not any("unknown" in str(w.message) and "01" in str(w.message) for w in caught)
    scores = pd.read_csv(files["folder"] / "scores_mixed.csv", dtype=str, keep_default_na=False)
    unseen = scores["flag"].str.contains("unseen_site").to_numpy()
    # only the people of A6, a site this chart has not seen, are unseen: those of "01" are site 1
    assert unseen.tolist() == [i % 2 == 1 for i in range(40)]


def test_chart_storing_padded_labels_scores_a_file_of_plain_labels(files, chart_text, tmp_path) -> None:
    old = tmp_path / "chart_old"  # a chart written before: it stored "01" .. "05"
    old.mkdir()
    for f in chart_text.iterdir():
        if f.is_file():
            (old / f.name).write_bytes(f.read_bytes())
    meta = json.loads((old / "chart.json").read_text())
    meta["sites"] = [*PADDED, "A6"]
    meta["site_people"] = {("0" + k if k.isdigit() else k): v for k, v in meta["site_people"].items()}
    meta["content_sha256"] = content_sha256(meta, "content_sha256")  # as that version saved it
    (old / "chart.json").write_text(json.dumps(meta))
    plain = tmp_path / "plain.csv"
    _padded(pd.read_csv(files["digits"]), ["1", "2", "3", "4", "5"]).to_csv(plain, index=False)
    chart = GrowthChart.load(old)
    assert chart.sites_ == ["1", "2", "3", "4", "5", "A6"]
    scores = _score(old, plain, tmp_path / "scores_plain.csv")
    assert not scores["flag"].str.contains("unseen_site").any()


def test_adapt_does_not_add_a_known_site_written_without_its_zero(files, chart_text) -> None:
    out = files["folder"] / "chart_adapted"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(
            [
                "charts",
                "adapt",
                "--chart",
                str(chart_text),
                "--controls",
                str(files["controls"]),
                "--out",
                str(out),
            ]
        )
    assert code in (0, 1)
    sites = json.loads((out / "chart.json").read_text())["sites"]
    assert sites == ["1", "2", "3", "4", "5", "A6", "X9"]
    assert "02" not in sites
    assert any("site(s) 2 are already in the chart" in str(w.message) for w in caught)


def test_calibrate_keeps_the_people_of_a_site_written_without_padding(files, chart_text) -> None:
    out = files["folder"] / "calibration.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(
            [
                "charts",
                "calibrate",
                "--chart",
                str(chart_text),
                "--table",
                str(files["digits"]),
                "--out",
                str(out),
                "--by",
                "site",
            ]
        )
    assert code == 0
    table = pd.read_csv(out, dtype={"site_scanner": str})
    assert table["site_scanner"].tolist() == ["1", "2", "3", "4", "5"]
    assert table["n"].tolist() == [12] * 5  # all 60 people, none left out as unseen_site


def test_site_tail_z_takes_any_spelling_of_a_known_site(chart_text) -> None:
    chart = GrowthChart.load(chart_text)
    want = chart.site_tail_z(["1", "A6"])
    for spelling in (["01", "A6"], [1, "A6"], [1.0, " A6 "]):
        np.testing.assert_array_equal(chart.site_tail_z(spelling), want)
    assert chart._unreliable_training_sites(["01"]) == chart._unreliable_training_sites(["1"])


def test_a_chart_storing_one_site_written_two_ways_is_refused(chart_text, tmp_path) -> None:
    """A chart saved by a version that compared labels as written could hold "01" and "1" as two
    sites; read as one label now, their offsets could not be told apart."""
    from delssome_norms.errors import InvalidInputError

    old = tmp_path / "two_ways"
    old.mkdir()
    for f in chart_text.iterdir():
        if f.is_file():
            (old / f.name).write_bytes(f.read_bytes())
    meta = json.loads((old / "chart.json").read_text())
    meta["sites"] = ["01" if s == "2" else s for s in meta["sites"]]
    meta["sites"] = ["1" if s == "01" else s for s in meta["sites"]]  # "1" twice
    meta["sites"][meta["sites"].index("1")] = "01"  # the first written "01", the other "1"
    meta["content_sha256"] = content_sha256(meta, "content_sha256")
    (old / "chart.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match=r"one site written two ways \(01 and 1\)") as err:
        GrowthChart.load(old)
    assert "incomplete or inconsistent" not in str(err.value)  # its own message, not wrapped
