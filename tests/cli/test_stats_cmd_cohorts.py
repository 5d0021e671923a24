"""``stats sex`` / ``stats groups`` on cohorts as researchers have them: many small sites, fits
flagged as poor, and how a sex difference in the fitted E/I level is to be read.

80 people of the packaged SYNTHETIC reference table (``random_state=0``: 39 female, 41 male, 14
sites, 5 of them with fewer than 5 people) are a cohort whose sensory/association curves do not
converge with site offsets, while the per-person scores and the per-bin tests need no curve.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import stats
from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS, SENSORY_REGIONS
from delssome_norms.errors import InvalidInputError

CURVE_FILES = (
    "region_group_trajectories.csv",
    "region_group_trajectories.png",
    "region_group_people.png",
)
FLAGGED = [3, 11, 25, 40, 58, 77, 101]
"""Rows of the flagged table whose fit is flagged."""


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    from delssome_norms.datasets import load_reference_table

    return load_reference_table()


@pytest.fixture(scope="module")
def many_sites(reference, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """80 people in 14 sites; the CSV and the table as read back."""
    path = tmp_path_factory.mktemp("mixed") / "mixed80.csv"
    reference.sample(n=80, random_state=0).reset_index(drop=True).to_csv(path, index=False)
    return path, pd.read_csv(path, dtype={"subject_id": str})


@pytest.fixture(scope="module")
def one_site(many_sites) -> Path:
    """The same 80 people with one site label."""
    path, table = many_sites
    single = table.assign(site="SiteA", scanner="Siemens", site_scanner="SiteA_Siemens")
    out = path.with_name("onesite80.csv")
    single.to_csv(out, index=False)
    return out


@pytest.fixture(scope="module")
def flagged(reference, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """200 people, 7 of them with a flagged fit (collect's fit_flagged / fit_flag_reasons)."""
    table = reference.sample(n=200, random_state=1).reset_index(drop=True)
    table["fit_flagged"] = False
    table.loc[FLAGGED, "fit_flagged"] = True
    table["fit_flag_reasons"] = ""
    table.loc[FLAGGED, "fit_flag_reasons"] = "cost_above_floor"
    path = tmp_path_factory.mktemp("flagged") / "flagged_ei.csv"
    table.to_csv(path, index=False)
    return path, pd.read_csv(path, dtype={"subject_id": str}, keep_default_na=False)


def _run(argv: list[str], capsys) -> tuple[int, list[str], list[str], str]:
    """Exit status, warnings, error lines and stdout of one CLI run (without the warning that
    the tables' 68 unnamed columns are read as DK68: tests/fit/test_atlas_messages.py)."""
    with warnings.catch_warnings(record=True) as caught:
        code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    errors = [ln for ln in cap.err.splitlines() if ln.startswith("delssome-norms: error:")]
    said = [str(w.message) for w in caught]
    return code, [w for w in said if "taken to be the DK68 regions" not in w], errors, cap.out


def _group_means(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Sensory and association means per person, from the DK68 names (independent of the code)."""
    sensory = [f"ei_ratio_roi_{k}" for k, n in enumerate(DK68_REGIONS) if n in SENSORY_REGIONS]
    other = [f"ei_ratio_roi_{k}" for k, n in enumerate(DK68_REGIONS) if n not in SENSORY_REGIONS]
    return table[sensory].mean(axis=1).to_numpy(), table[other].mean(axis=1).to_numpy()


# ------------------------------------------------------------------- stats groups, many sites
def test_many_small_sites_write_scores_and_summary_and_skip_the_curves(
    many_sites, one_site, tmp_path, capsys
) -> None:
    """The curves of 80 people in 14 sites do not converge: the command exited 2 and wrote
    nothing. Now the scores, the per-bin tests (which need no curve) and the people's figure
    without curves are written, the curves' files are not (an earlier run's are removed, not left
    beside the new tables), one warning names the sites, the sexes and the options, and the exit
    status is 1."""
    path, table = many_sites
    out = tmp_path / "groups"
    code, warns, errors, _ = _run(
        ["stats", "groups", "--table", one_site, "--out-dir", out, "--no-figures"], capsys
    )
    assert (code, errors) == (0, [])  # one site: the same people's curves converge
    assert (out / "region_group_trajectories.csv").is_file()

    code, warns, errors, stdout = _run(["stats", "groups", "--table", path, "--out-dir", out], capsys)
    assert (code, errors) == (1, [])
    assert len(warns) == 1
    for words in ("39 female and 41 male", "14 sites, 5 of them with fewer than 5 people",
                  "merge or leave out the small sites", "--df 3", "--no-trajectories"):  # fmt: skip
        assert words in warns[0], words
    assert "site=None" not in warns[0] and "df=" not in warns[0]  # the CLI's words
    assert not any((out / name).exists() for name in CURVE_FILES[:2])
    assert (out / "region_group_people.png").is_file()  # the people, without curves
    assert "wrote 3 files" in stdout

    scores = pd.read_csv(out / "region_group_scores.csv", dtype={"subject_id": str})
    sensory, association = _group_means(table)
    assert list(scores["subject_id"]) == list(table["subject_id"])
    np.testing.assert_allclose(scores["sensory"], sensory, rtol=1e-12)
    np.testing.assert_allclose(scores["difference"], sensory - association, rtol=1e-12)
    summary = pd.read_csv(out / "region_group_summary.csv")
    row = summary[(summary["age_bin"] == "[20, 30)") & (summary["sex"] == "all")]
    row = row[row["group"] == "difference"].iloc[0]
    age = table["age_in_years"]
    in_bin = ((age >= 20) & (age < 30)).to_numpy()
    assert row["n"] == in_bin.sum()
    assert row["mean"] == pytest.approx((sensory - association)[in_bin].mean(), rel=1e-12)


def test_no_trajectories_writes_the_tables_without_a_warning(many_sites, tmp_path, capsys) -> None:
    path, _ = many_sites
    out = tmp_path / "groups"
    code, warns, errors, stdout = _run(
        ["stats", "groups", "--table", path, "--out-dir", out, "--no-trajectories"], capsys
    )
    assert (code, warns, errors) == (0, [], [])
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "region_group_people.png",  # the people need no curves
        "region_group_scores.csv",
        "region_group_scores.provenance.json",
        "region_group_summary.csv",
        "region_group_summary.provenance.json",
    ]
    assert "wrote 3 files" in stdout


def test_df_reaches_the_curves(one_site, tmp_path, capsys) -> None:
    """``--df 3`` gives the API's df-3 curves, which differ from the default df-5 ones."""
    table = pd.read_csv(one_site, dtype={"subject_id": str})
    out = tmp_path / "groups"
    argv = ["stats", "groups", "--table", one_site, "--out-dir", out, "--no-figures", "--df", "3"]
    code, _, errors, _ = _run(argv, capsys)
    assert (code, errors) == (0, [])
    written = pd.read_csv(out / "region_group_trajectories.csv")
    df3 = stats.region_group_trajectories(table, df=3)
    df5 = stats.region_group_trajectories(table, df=5)
    np.testing.assert_allclose(written["mean"], df3["mean"], rtol=1e-9)
    np.testing.assert_allclose(written["ci_high"], df3["ci_high"], rtol=1e-9)
    assert np.abs(written["mean"] - df5["mean"]).max() > 1e-4


@pytest.mark.parametrize("value", ["2", "13"])
def test_df_outside_3_to_12_is_refused(many_sites, tmp_path, capsys, value) -> None:
    path, _ = many_sites
    out = tmp_path / "groups"
    code, _, errors, _ = _run(
        ["stats", "groups", "--table", path, "--out-dir", out, "--df", value], capsys
    )
    assert code == 2 and len(errors) == 1 and "--df" in errors[0] and value in errors[0]
    assert not out.exists()


def test_one_sex_is_still_refused_and_no_trajectories_gets_its_tables(
    many_sites, tmp_path, capsys
) -> None:
    """Only the curves need both sexes: the refusal of a one-sex table (not a fit that did not
    converge) stays an error, and names --no-trajectories, which writes the other tables."""
    path, table = many_sites
    men = path.with_name("men80.csv")
    table[table["sex"] == "male"].to_csv(men, index=False)
    out = tmp_path / "groups"
    code, _, errors, _ = _run(["stats", "groups", "--table", men, "--out-dir", out], capsys)
    assert code == 2 and len(errors) == 1 and "0 female" in errors[0]
    assert "--no-trajectories" in errors[0] and not out.exists()
    code, _, errors, _ = _run(
        ["stats", "groups", "--table", men, "--out-dir", out, "--no-trajectories"], capsys
    )
    assert (code, errors) == (0, [])
    scores = pd.read_csv(out / "region_group_scores.csv")
    assert len(scores) == 41 and set(scores["sex"]) == {"male"}


def test_the_refusal_names_the_small_sites_and_only_useful_ways_out(many_sites) -> None:
    """The API's refusal said only "too few people of each sex" although the same people without
    site terms converge; it now names the sites, and a smaller df only where there is one."""
    _, table = many_sites
    with pytest.raises(InvalidInputError, match="did not converge") as err:
        stats.region_group_trajectories(table, df=3)
    text = err.value.problem
    assert "14 sites, 5 of them with fewer than 5 people" in text
    assert "pass site=None" in text and "smaller df" not in text  # df is 3 already
    curves = stats.region_group_trajectories(table, site=None)  # the cause is the sites
    span = table.groupby("sex")["age_in_years"].agg(["min", "max"])
    pairs = zip(curves["sex"], curves["age_in_years"])  # each sex's curves only over its ages
    inside = np.array([span.loc[s, "min"] <= a <= span.loc[s, "max"] for s, a in pairs])
    assert np.isfinite(curves.loc[inside, "mean"]).all() and curves.loc[~inside, "mean"].isna().all()


# ------------------------------------------------------------------- flagged fits
@pytest.mark.parametrize("command", ["sex", "groups"])
def test_flagged_fits_are_named_or_left_out(flagged, tmp_path, capsys, command) -> None:
    """A table with flagged fits ran without a word; now a warning names them, and
    ``--exclude-flagged`` leaves them out, saying how many."""
    path, table = flagged
    extra = ["--targets", "ei_ratio_mean", "--n-boot", "0", "--no-scale-site"] * (command == "sex")
    base = ["stats", command, "--table", path, "--no-figures", *extra]
    if command == "groups":
        base.append("--no-trajectories")
    flagged_ids = table.loc[FLAGGED, "subject_id"].tolist()

    code, warns, errors, _ = _run([*base, "--out-dir", tmp_path / "kept"], capsys)
    assert (code, errors) == (0, [])
    flag_warns = [w for w in warns if "flagged E/I fit" in w]
    assert len(flag_warns) == 1 and "7 of 200 people" in flag_warns[0]
    assert flagged_ids[0] in flag_warns[0] and "--exclude-flagged" in flag_warns[0]

    code, warns, errors, stdout = _run(
        [*base, "--out-dir", tmp_path / "left", "--exclude-flagged"], capsys
    )
    assert (code, errors) == (0, [])
    assert "left out 7 of 200 people" in stdout
    assert not [w for w in warns if "flagged E/I fit" in w]
    kept = table.drop(index=FLAGGED).reset_index(drop=True)
    if command == "sex":
        written = pd.read_csv(tmp_path / "left" / "sex_difference_tests.csv")
        expected = stats.sex_difference_tests(kept, ["ei_ratio_mean"], scale_site=False)
        assert written["n_female"].iloc[0] + written["n_male"].iloc[0] == 193
        np.testing.assert_allclose(written["effect"], expected["effect"], rtol=1e-9)
    else:
        scores = pd.read_csv(tmp_path / "left" / "region_group_scores.csv", dtype={"subject_id": str})
        assert len(scores) == 193 and not set(flagged_ids) & set(scores["subject_id"])
        sensory, association = _group_means(kept)
        np.testing.assert_allclose(scores["difference"], sensory - association, rtol=1e-12)


def test_exclude_flagged_needs_the_column(many_sites, tmp_path, capsys) -> None:
    path, _ = many_sites
    out = tmp_path / "groups"
    code, _, errors, _ = _run(
        ["stats", "groups", "--table", path, "--out-dir", out, "--exclude-flagged"], capsys
    )
    assert code == 2 and len(errors) == 1 and "fit_flagged" in errors[0]
    assert not out.exists()


# ------------------------------------------------------------------- the level of E/I
def test_sex_summary_cautions_once_about_the_fitted_level(flagged, tmp_path, capsys) -> None:
    """The printed sex difference in ei_ratio_mean comes with one line saying that one person's
    E/I level is only weakly identified by FC and FCD (README)."""
    path, _ = flagged
    argv = ["stats", "sex", "--table", path, "--out-dir", tmp_path / "s", "--targets",
            "ei_ratio_mean", "--n-boot", "0", "--no-scale-site", "--no-figures"]  # fmt: skip
    code, _, errors, stdout = _run(argv, capsys)
    assert (code, errors) == (0, [])
    lines = stdout.splitlines()
    caution = [ln for ln in lines if "only weakly" in ln]
    assert len(caution) == 1
    assert "FC and FCD" in caution[0] and "What a fit can and cannot tell you" in caution[0]
    said = next(i for i, ln in enumerate(lines) if ln.startswith("sex difference in E/I "))
    assert said < lines.index(caution[0])
