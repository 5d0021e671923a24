"""``delssome-norms charts``: fit, score, adapt, plot, compare through the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning
from delssome_norms.io import read_table
from delssome_norms.norms.simulate import make_truth, simulate_cohort


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("charts_cli")
    truth = make_truth(n_targets=3, n_sites=5, seed=3)
    cohort = simulate_cohort(truth, 2500, seed=1)
    train = cohort[cohort["site"] != "NTU"]
    paths = {
        "train": folder / "cohort_ei.csv",
        "people": folder / "people.csv",
        "controls": folder / "site_controls.csv",
        "folder": folder,
    }
    train.iloc[:2000].to_csv(paths["train"], index=False)
    people = pd.concat([train.iloc[2000:], cohort[cohort["site"] == "NTU"].iloc[100:]])
    people.drop(columns=["numeric_sex"]).to_csv(paths["people"], index=False)
    cohort[cohort["site"] == "NTU"].iloc[:100].to_csv(paths["controls"], index=False)
    return paths


@pytest.fixture(scope="module")
def chart_dir(tables) -> Path:
    out = tables["folder"] / "chart"
    assert (
        main(
            [
                "charts",
                "fit",
                "--table",
                str(tables["train"]),
                "--out",
                str(out),
                "--centile-tables",
                "all",
            ]
        )
        == 0
    )
    return out


def test_fit_writes_chart_and_reference_layout_tables(chart_dir) -> None:
    meta = json.loads((chart_dir / "chart.json").read_text())
    assert meta["format_version"] == 1
    assert meta["targets"] == ["ei_ratio_mean", "ei_ratio_roi_0", "ei_ratio_roi_1"]
    for target in meta["targets"]:
        for sex in ("female", "male"):
            tab = pd.read_csv(chart_dir / target / f"{sex}_population_centiles.csv")
            assert list(tab.columns) == [
                "age_in_years",
                "sex",
                "mu",
                "sigma",
                "nu",
                "tau",
                "C2.5",
                "C5",
                "C25",
                "C50",
                "C75",
                "C95",
                "C97.5",
                "growth_rate",
            ]
            assert (tab["sex"] == sex).all()
    conv = pd.read_csv(chart_dir / "convergence.csv")
    assert conv["converged"].all()


def test_score_flags_unseen_sites_and_writes_reference_names(chart_dir, tables, capsys) -> None:
    out = tables["folder"] / "scores.csv"
    with pytest.warns(InputWarning, match="unknown to the chart"):
        code = main(
            [
                "charts",
                "score",
                "--chart",
                str(chart_dir),
                "--table",
                str(tables["people"]),
                "--out",
                str(out),
            ]
        )
    assert code == 0
    scores = pd.read_csv(out, keep_default_na=False)
    people = pd.read_csv(tables["people"])
    assert len(scores) == len(people)
    for col in (
        "ei_ratio_mean_centile",
        "ei_ratio_mean_z",
        "ei_ratio_mean_harmonised",
        "centile_with_site",
        "corrected_value",
        "flag",
    ):
        assert col in scores.columns
    ntu = (people["site"] == "NTU").to_numpy()
    flags = scores["flag"].str.replace(r";?age_extrapolated", "", regex=True)  # edge ages
    assert (flags[ntu] == "unseen_site").all()
    assert (flags[~ntu] == "").all()
    c = scores["ei_ratio_roi_0_centile"].astype(float)
    assert ((c > 0) & (c < 1)).all()
    long_out = tables["folder"] / "scores_long.csv"
    with pytest.warns(InputWarning):
        assert (
            main(
                [
                    "charts",
                    "score",
                    "--chart",
                    str(chart_dir),
                    "--table",
                    str(tables["people"]),
                    "--out",
                    str(long_out),
                    "--layout",
                    "long",
                    "--targets",
                    "ei_ratio_mean",
                ]
            )
            == 0
        )
    long = pd.read_csv(long_out, keep_default_na=False)
    assert list(long["target"].unique()) == ["ei_ratio_mean"]
    np.testing.assert_allclose(long["centile"], scores["ei_ratio_mean_centile"].astype(float))


def test_adapt_then_score_the_new_site(chart_dir, tables) -> None:
    new_dir = tables["folder"] / "chart_ntu"
    assert (
        main(
            [
                "charts",
                "adapt",
                "--chart",
                str(chart_dir),
                "--controls",
                str(tables["controls"]),
                "--out",
                str(new_dir),
            ]
        )
        == 0
    )
    meta = json.loads((new_dir / "chart.json").read_text())
    assert meta["sites"][-1] == "NTU_Siemens"
    assert meta["adapted_sites"]["NTU_Siemens"]["n_controls"] == 100
    out = tables["folder"] / "scores_adapted.csv"
    assert (
        main(
            [
                "charts",
                "score",
                "--chart",
                str(new_dir),
                "--table",
                str(tables["people"]),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    flags = pd.read_csv(out, keep_default_na=False)["flag"].str.replace("age_extrapolated", "")
    assert flags.eq("").all()


def test_plot_and_compare(chart_dir, tables) -> None:
    png = tables["folder"] / "fan.png"
    assert (
        main(
            [
                "charts",
                "plot",
                "--chart",
                str(chart_dir),
                "--table",
                str(tables["train"]),
                "--out",
                str(png),
                "--target",
                "ei_ratio_roi_1",
            ]
        )
        == 0
    )
    assert png.read_bytes()[:4] == b"\x89PNG"
    pdf = tables["folder"] / "fan.pdf"
    assert main(["charts", "plot", "--chart", str(chart_dir), "--out", str(pdf)]) == 0
    assert pdf.read_bytes()[:4] == b"%PDF"
    bic = tables["folder"] / "bic.csv"
    assert (
        main(
            [
                "charts",
                "compare",
                "--table",
                str(tables["train"]),
                "--out",
                str(bic),
                "--families",
                "SHASHo2,NO",
                "--mu-dfs",
                "3,4",
                "--targets",
                "ei_ratio_mean",
            ]
        )
        == 0
    )
    table = pd.read_csv(bic)
    assert len(table) == 4 and table["best"].sum() == 1


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "delssome_norms.cli.main", *args], capture_output=True, text=True
    )


def test_bad_inputs_give_one_line_errors(chart_dir, tables, capsys) -> None:
    bad = tables["folder"] / "bad_sex.csv"
    people = pd.read_csv(tables["people"]).iloc[:5]
    people.loc[people.index[1], "sex"] = "unknown"
    people.to_csv(bad, index=False)
    out = tables["folder"] / "x.csv"
    code = main(["charts", "score", "--chart", str(chart_dir), "--table", str(bad), "--out", str(out)])
    assert code == 2 and not out.exists()
    meta = json.loads((chart_dir / "chart.json").read_text())
    meta["format_version"] = 99
    other = tables["folder"] / "chart_v99"
    other.mkdir()
    (other / "chart.json").write_text(json.dumps(meta))
    proc = _run(
        "charts", "score", "--chart", str(other), "--table", str(tables["people"]), "--out", str(out)
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "format_version 99 is newer" in proc.stderr
    assert "upgrade delssome_norms" in proc.stderr
    capsys.readouterr()
    code = main(
        [
            "charts",
            "score",
            "--chart",
            str(chart_dir),
            "--table",
            str(tables["people"]),
            "--out",
            str(out),
            "--targets",
            "ei_ratio_roi_42",
        ]
    )
    assert code == 2 and "no target(s) ei_ratio_roi_42" in capsys.readouterr().err


def test_fit_matches_r_reference(cbig_dir, tmp_path) -> None:
    out = tmp_path / "chart"
    code = main(
        [
            "charts",
            "fit",
            "--table",
            str(cbig_dir / "input" / "gamlss_input.csv"),
            "--out",
            str(out),
            "--targets",
            "ei_ratio_mean",
            "--family",
            "SHASHo2",
            "--mu-df",
            "4",
            "--sigma-df",
            "3",
            "--site-column",
            "site_scanner",
        ]
    )
    assert code == 0
    cols = ["mu", "C2.5", "C5", "C25", "C50", "C75", "C95", "C97.5"]
    for sex in ("female", "male"):
        ours = pd.read_csv(out / "ei_ratio_mean" / f"{sex}_population_centiles.csv")
        ref = pd.read_csv(
            cbig_dir
            / "reference_output"
            / "gamlss"
            / "SHASHo2_bs_df4"
            / f"{sex}_population_centiles.csv"
        )
        diff = np.abs(ours[cols].to_numpy() - ref[cols].to_numpy())
        assert diff.max() <= 5e-3 and np.median(diff) <= 1e-3


def test_score_reads_and_writes_parquet_like_csv(chart_dir, tables, tmp_path) -> None:
    """Large tables can go through Parquet: the same scores as CSV, exactly."""
    people_csv = tables["people"]
    people_pq = tmp_path / "people.parquet"
    read_table(people_csv).to_parquet(people_pq, index=False)
    outs = {}
    for name, table, out in (
        ("csv", people_csv, tmp_path / "scores.csv"),
        ("parquet", people_pq, tmp_path / "scores_pq.parquet"),  # not scores.csv's sidecar
    ):
        with pytest.warns(InputWarning):
            argv = ["charts", "score", "--chart", str(chart_dir), "--table", str(table)]
            assert main([*argv, "--out", str(out)]) == 0
        outs[name] = out
    a = read_table(outs["csv"])  # its floats exactly, under pandas 2 as well
    b = pd.read_parquet(outs["parquet"])
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    num = a.select_dtypes("number").columns
    np.testing.assert_array_equal(a[num].to_numpy(), b[num].to_numpy())
    assert (a["subject_id"] == b["subject_id"]).all()


def test_damaged_parquet_table_is_one_line(chart_dir, tmp_path, capsys) -> None:
    bad = tmp_path / "people.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    out = tmp_path / "scores.parquet"
    code = main(["charts", "score", "--chart", str(chart_dir), "--table", str(bad), "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "people.parquet" in err[0] and "not a readable Parquet table" in err[0]
    assert not out.exists()


def test_refitting_into_a_chart_folder_leaves_no_stale_centile_tables(tables, tmp_path) -> None:
    out = tmp_path / "chart"
    base = ["charts", "fit", "--table", str(tables["train"]), "--out", str(out)]
    assert main([*base, "--centile-tables", "all"]) == 0
    assert (out / "ei_ratio_roi_1" / "male_population_centiles.csv").is_file()
    (out / "notes.txt").write_text("mine")  # the user's own file is left alone
    assert main([*base, "--targets", "ei_ratio_mean", "--centile-tables", "mean"]) == 0
    assert not (out / "ei_ratio_roi_1").exists() and not (out / "ei_ratio_roi_0").exists()
    assert (out / "ei_ratio_mean" / "female_population_centiles.csv").is_file()
    assert (out / "notes.txt").read_text() == "mine"


def test_adapt_does_not_overwrite_the_chart_it_adapts(tables, chart_dir, capsys) -> None:
    before = (chart_dir / "chart.json").read_bytes()
    argv = ["charts", "adapt", "--chart", str(chart_dir), "--controls", str(tables["controls"]),
            "--out", str(chart_dir)]  # fmt: skip
    assert main(argv) == 2
    assert "is the chart being adapted" in capsys.readouterr().err
    assert (chart_dir / "chart.json").read_bytes() == before
