"""``delssome-norms stats sex|groups``: the written numbers are the Python API's, the synthetic
cohort's built-in effects are found, and bad inputs end with one line (exit 2), nothing written.

The packaged SYNTHETIC reference cohort has women +0.05 E/I in every region and sensory regions
well above association regions at every age (reference_data/README.md); a 1500-person subsample
is used here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import stats
from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, SENSORY_REGIONS

TARGETS = ["ei_ratio_mean", *(f"ei_ratio_roi_{k}" for k in range(0, 68, 7))]
"""The mean and 10 regions: enough to check the FDR and the names, fast to fit."""
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    from delssome_norms.datasets import load_reference_table

    d = tmp_path_factory.mktemp("stats")
    table = load_reference_table().sample(n=1500, random_state=0).reset_index(drop=True)
    path = d / "cohort_ei.csv"
    table.to_csv(path, index=False)
    return path, pd.read_csv(path, dtype={"subject_id": str})


@pytest.fixture(scope="module")
def sex_run(cohort, tmp_path_factory):
    path, _ = cohort
    out = tmp_path_factory.mktemp("sex_out") / "stats"
    argv = ["stats", "sex", "--table", str(path), "--out-dir", str(out)]
    argv += ["--targets", ",".join(TARGETS), "--n-boot", "40", "--seed", "3"]
    return out, main(argv)


def _run(argv: list[str], capsys) -> tuple[int, list[str], str]:
    code = main(argv)
    cap = capsys.readouterr()
    errors = [ln for ln in cap.err.splitlines() if not ln.startswith("delssome-norms: warning")]
    return code, errors, cap.out


def test_sex_tables_are_the_python_apis(cohort, sex_run) -> None:
    _, table = cohort
    out, code = sex_run
    assert code == 0
    written = pd.read_csv(out / "sex_difference_tests.csv")
    expected = stats.sex_difference_tests(table, TARGETS)
    assert list(written["target"]) == list(expected["target"])
    assert list(written["test"]) == list(expected["test"])
    for col in ("effect", "ci_low", "ci_high", "p", "p_fdr", "cohens_d"):
        np.testing.assert_allclose(written[col], expected[col], rtol=1e-9, equal_nan=True)
    assert (written["significant"] == expected["significant"]).all()
    gap = pd.read_csv(out / "sex_gap.csv")
    expected_gap = stats.sex_gap(table, "ei_ratio_mean", n_boot=40, seed=3)
    for col in ("age_in_years", "gap", "ci_low", "ci_high"):
        np.testing.assert_allclose(gap[col], expected_gap[col], rtol=1e-9)
    summary = pd.read_csv(out / "sex_difference_summary.csv")
    assert summary.set_index(["test", "family"]).loc[("mu_lr", "regional"), "n_targets"] == 10


def test_sex_finds_the_built_in_female_excess(sex_run) -> None:
    out, _ = sex_run
    tests = pd.read_csv(out / "sex_difference_tests.csv")
    mean = tests[(tests["target"] == "ei_ratio_mean") & (tests["test"] == "mu_lr")].iloc[0]
    assert mean["ci_low"] < 0.05 < mean["ci_high"] and mean["ci_low"] > 0  # built in: +0.05
    assert mean["p"] < 1e-3 and mean["direction"] == "female > male"
    regional = tests[(tests["family"] == "regional") & (tests["test"] == "mu_lr")]
    assert (regional["effect"] > 0).all() and regional["significant"].sum() >= 8
    # DK68 names of the 68 columns (the table has no regions sidecar), by column index
    index = regional["target"].str.removeprefix("ei_ratio_roi_").astype(int)
    assert list(regional["region"]) == [DK68_REGIONS[k] for k in index]
    assert pd.isna(mean["region"])
    for name in ("sex_gap.png", "sex_effects_mean.png", "sex_effects_sd.png"):
        assert (out / name).read_bytes()[:8] == PNG, name


def test_sex_prints_the_mean_difference_and_the_count(cohort, tmp_path, capsys) -> None:
    path, table = cohort
    argv = ["stats", "sex", "--table", str(path), "--out-dir", str(tmp_path / "o")]
    code, errors, text = _run([*argv, "--targets", ",".join(TARGETS), "--n-boot", "0"], capsys)
    assert code == 0, errors
    tests = stats.sex_difference_tests(table, TARGETS)
    row = tests[(tests["target"] == "ei_ratio_mean") & (tests["test"] == "mu_lr")].iloc[0]
    n_sig = int(tests[(tests["family"] == "regional") & (tests["test"] == "mu_lr")]["significant"].sum())
    line = next(ln for ln in text.splitlines() if "female - male" in ln)
    assert f"female - male {row['effect']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]" in line
    assert f"{n_sig} of 10 regions significant (FDR 5 %" in line
    assert "no band (--n-boot 0)" in text
    assert (tmp_path / "o" / "sex_gap.png").read_bytes()[:8] == PNG


def test_groups_tables_are_the_python_apis_and_sensory_is_higher(cohort, tmp_path, capsys) -> None:
    path, table = cohort
    out = tmp_path / "g"
    code, errors, text = _run(["stats", "groups", "--table", str(path), "--out-dir", str(out)], capsys)
    assert code == 0, errors
    summary = pd.read_csv(out / "region_group_summary.csv")
    expected = stats.region_group_summary(table)
    np.testing.assert_allclose(summary["mean"], expected["mean"], rtol=1e-9)
    np.testing.assert_allclose(summary["p_fdr"], expected["p_fdr"], rtol=1e-9, equal_nan=True)
    curves = pd.read_csv(out / "region_group_trajectories.csv")
    np.testing.assert_allclose(curves["mean"], stats.region_group_trajectories(table)["mean"], rtol=1e-9)
    # independent: each person's sensory mean over the DK68 sensory columns
    sensory = [f"ei_ratio_roi_{k}" for k, r in enumerate(DK68_REGIONS) if r in SENSORY_REGIONS]
    scores = pd.read_csv(out / "region_group_scores.csv")
    np.testing.assert_allclose(scores["sensory"], table[sensory].mean(axis=1), rtol=1e-12)
    diff = summary[(summary["group"] == "difference") & (summary["sex"] == "all")]
    assert len(diff) == 11 and (diff["mean"] > 0.3).all() and diff["significant"].all()
    assert "sensory > association in 11, < in 0 of 11 bins" in text
    for name in ("region_group_trajectories.png", "region_group_people.png"):
        assert (out / name).read_bytes()[:8] == PNG


def test_groups_bins_option(cohort, tmp_path, capsys) -> None:
    path, _ = cohort
    out = tmp_path / "g"
    argv = ["stats", "groups", "--table", str(path), "--out-dir", str(out), "--no-figures"]
    code, errors, _ = _run([*argv, "--bins", "0,20,50,120"], capsys)
    assert code == 0, errors
    summary = pd.read_csv(out / "region_group_summary.csv")
    assert list(summary["age_bin"].unique()) == ["[0, 20)", "[20, 50)", "[50, 120)"]
    code, errors, _ = _run([*argv, "--bins", "30,20"], capsys)
    assert code == 2 and len(errors) == 1 and "--bins" in errors[0]


def _small(cohort, tmp_path: Path, name: str, edit) -> Path:
    _, table = cohort
    path = tmp_path / f"{name}.csv"
    edit(table.iloc[:400].copy()).to_csv(path, index=False)
    return path


BAD_TABLES = {
    "one_sex": (lambda t: t[t["sex"] == "male"], "got 0 female and"),
    "repeated_id": (lambda t: pd.concat([t, t.iloc[:3]]), "subject_id listed more than once"),
    "no_age": (lambda t: t.drop(columns="age_in_years"), "missing column 'age_in_years'"),
    "few_women": (
        lambda t: pd.concat([t[t["sex"] == "female"].iloc[:12], t[t["sex"] == "male"]]),
        "12 female and",
    ),
}


BAD_CASES = [(c, cmd) for c in sorted(BAD_TABLES) for cmd in ("sex", "groups")]
BAD_CASES.remove(("few_women", "groups"))  # 12 women are enough for the groups' curves
BAD_CASES.remove(("few_women", "sex"))  # tests written, gap not (exit 1; test_stats_people_figure)


@pytest.mark.parametrize(("case", "command"), BAD_CASES)
def test_bad_table_is_one_line_and_nothing_is_written(cohort, tmp_path, capsys, case, command) -> None:
    edit, words = BAD_TABLES[case]
    path = _small(cohort, tmp_path, case, edit)
    out = tmp_path / "out"
    argv = ["stats", command, "--table", str(path), "--out-dir", str(out)]
    if command == "sex":
        argv += ["--targets", "ei_ratio_mean", "--n-boot", "0"]
    code, errors, _ = _run(argv, capsys)
    if (case, command) == ("one_sex", "groups"):
        words = "got 0 female and"
    assert code == 2 and len(errors) == 1, errors
    assert errors[0].startswith(f"delssome-norms: error: {path} (--table): ")
    assert words in errors[0] and "Traceback" not in errors[0]
    assert not out.exists()


def test_unreadable_table_and_foreign_folder_are_refused(cohort, tmp_path, capsys) -> None:
    path, _ = cohort
    binary = tmp_path / "t.csv"
    binary.write_bytes(b"\x00\x01\x02 not a table")
    code, errors, _ = _run(
        ["stats", "sex", "--table", str(binary), "--out-dir", str(tmp_path / "o")], capsys
    )
    assert code == 2 and len(errors) == 1 and str(binary) in errors[0]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    code, errors, _ = _run(["stats", "groups", "--table", str(path), "--out-dir", str(foreign)], capsys)
    assert code == 2 and len(errors) == 1 and "--out-dir" in errors[0] and "not empty" in errors[0]
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]


def test_rerun_replaces_its_own_files(cohort, tmp_path, capsys) -> None:
    """An earlier stats folder is written again; --no-figures leaves no earlier figure behind,
    and the other subcommand's files stay."""
    path, _ = cohort
    out = tmp_path / "o"
    base = ["--table", str(path), "--out-dir", str(out)]
    assert _run(["stats", "groups", *base], capsys)[0] == 0
    assert (out / "region_group_people.png").exists()
    sex = ["stats", "sex", *base, "--targets", "ei_ratio_mean", "--n-boot", "0", "--no-figures"]
    assert _run(sex, capsys)[0] == 0
    assert _run(["stats", "groups", *base, "--no-figures"], capsys)[0] == 0
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == [
        "region_group_scores.csv",
        "region_group_scores.provenance.json",
        "region_group_summary.csv",
        "region_group_summary.provenance.json",
        "region_group_trajectories.csv",
        "region_group_trajectories.provenance.json",
        "sex_difference_summary.csv",
        "sex_difference_summary.provenance.json",
        "sex_difference_tests.csv",
        "sex_difference_tests.provenance.json",
        "sex_gap.csv",
        "sex_gap.provenance.json",
    ]


def test_another_atlas_is_named_by_its_regions_sidecar(cohort, tmp_path, capsys) -> None:
    _, table = cohort
    keep = [c for c in table.columns if not c.startswith("ei_ratio_roi_")]
    other = table[keep].copy()
    for k in range(30):  # a 30-region atlas: its columns 0..29 are not DK68's first 30
        other[f"ei_ratio_roi_{k}"] = table[f"ei_ratio_roi_{k}"]
    path = tmp_path / "other.csv"
    other.iloc[:400].to_csv(path, index=False)
    argv = ["stats", "sex", "--table", str(path), "--targets", "ei_ratio_roi_3,ei_ratio_roi_29"]
    argv += ["--n-boot", "0", "--no-figures"]
    assert _run([*argv, "--out-dir", str(tmp_path / "a")], capsys)[0] == 0
    unnamed = pd.read_csv(tmp_path / "a" / "sex_difference_tests.csv")
    assert unnamed["region"].isna().all()  # no sidecar: not named after DK68
    names = [f"Net{k}_parcel" for k in range(30)]
    pd.DataFrame(
        {"column": [f"ei_ratio_roi_{k}" for k in range(30)], "region_index": range(30), "region": names}
    ).to_csv(tmp_path / "other.regions.csv", index=False)
    assert _run([*argv, "--out-dir", str(tmp_path / "b")], capsys)[0] == 0
    named = pd.read_csv(tmp_path / "b" / "sex_difference_tests.csv")
    assert set(named["region"]) == {"Net3_parcel", "Net29_parcel"}
    code, errors, _ = _run(
        ["stats", "groups", "--table", str(path), "--out-dir", str(tmp_path / "c")], capsys
    )
    assert code == 2 and len(errors) == 1 and "other.regions.csv" in errors[0]
    assert "DK68 sensory regions" in errors[0] and not (tmp_path / "c").exists()


def test_table_without_site_column_is_one_site(cohort, tmp_path, capsys) -> None:
    _, table = cohort
    path = tmp_path / "nosite.csv"
    nosite = table.drop(columns=["site", "scanner", "site_scanner"]).iloc[:400]
    nosite.to_csv(path, index=False)
    out = tmp_path / "o"
    argv = ["stats", "sex", "--table", str(path), "--out-dir", str(out), "--targets", "ei_ratio_mean"]
    with pytest.warns(UserWarning, match="has no site column .* fitted without site effects"):
        code = main([*argv, "--n-boot", "0", "--no-figures"])
    assert code == 0
    tests = pd.read_csv(out / "sex_difference_tests.csv")
    expected = stats.sex_difference_tests(nosite.reset_index(drop=True), ["ei_ratio_mean"], site=None)
    np.testing.assert_allclose(tests["p"], expected["p"], rtol=1e-9)


def test_building_the_parser_imports_no_torch_or_matplotlib() -> None:
    code = (
        "import sys; from delssome_norms.cli.main import build_parser; p = build_parser(); "
        "p.parse_args(['stats', 'sex', '--table', 't.csv', '--out-dir', 'o']); "
        "print('torch' in sys.modules, 'matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"
