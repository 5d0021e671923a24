"""Python API review: region names of the statistics come from the table (not DK68 by position),
``exclude_flagged`` reaches ``compare_models`` and the region-group figures (one warning), a
fitted ``GrowthChart`` says what it is, and the docs say what the code does.

The tables are small simulated cohorts (:func:`simulate_cohort`); every fit is tiny.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.datasets import DK68_REGIONS, region_classes
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.ei_table import PROVENANCE_ATTR
from delssome_norms.stats import (
    chart_sex_tests,
    region_group_scores,
    region_group_trajectories,
    sex_difference_tests,
)

ROOT = Path(__file__).resolve().parents[2]
RH = list(DK68_REGIONS[34:])
"""The right hemisphere's 34 DK68 regions, in DK68 order."""


def simulate_cohort(n: int, n_rois: int, *, seed: int, n_sites: int = 2) -> pd.DataFrame:
    """``n`` people at ``n_sites`` sites with ``ei_ratio_roi_0..n_rois-1`` and their mean."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(5.0, 90.0, n)
    female = np.arange(n) % 2 == 0
    site = rng.integers(0, n_sites, n)
    shared = rng.standard_normal(n)
    rois = 1.2 - 0.003 * age[:, None] + 0.05 * (shared[:, None] + rng.standard_normal((n, n_rois)))
    table = pd.DataFrame(
        {
            "subject_id": [f"sub-{i:05d}" for i in range(n)],
            "age_in_years": age,
            "sex": np.where(female, "female", "male"),
            "site": [f"site{j}" for j in site],
        }
    )
    regional = pd.DataFrame(rois, columns=[f"ei_ratio_roi_{k}" for k in range(n_rois)])
    table = pd.concat([table, regional], axis=1)
    table["ei_ratio_mean"] = rois.mean(axis=1)
    return table


def _rh_table(n: int = 160, seed: int = 1, attrs: bool = True) -> pd.DataFrame:
    """A table of the right hemisphere only: DK68 regions 34..67 as ``ei_ratio_roi_0..33``
    (the column numbers of a 34-region table), named in ``attrs`` as the package's readers do."""
    full = simulate_cohort(n, 68, seed=seed, n_sites=2)
    keep = [c for c in full.columns if not c.startswith("ei_ratio_roi_")]
    rh = full[[f"ei_ratio_roi_{k}" for k in range(34, 68)]]
    rh.columns = [f"ei_ratio_roi_{k}" for k in range(34)]
    table = pd.concat([full[keep], rh], axis=1)
    table.attrs = {}
    if attrs:
        table.attrs[PROVENANCE_ATTR] = {"atlas": {"regions": list(RH)}}
    return table


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def _mu_regions(res: pd.DataFrame) -> list:
    rows = res[res["test"] == "mu_lr"]
    return [None if pd.isna(v) else v for v in rows["region"]]


# ------------------------------------------------------------------------- region names (F3)
def test_a_right_hemisphere_table_is_named_by_its_own_regions() -> None:
    table = _rh_table()
    targets = ["ei_ratio_mean", "ei_ratio_roi_0", "ei_ratio_roi_5"]
    res = _quiet(sex_difference_tests, table, targets, site=None)
    # its attrs name the columns: rh_bankssts is column 0, not lh_bankssts
    assert _mu_regions(res) == [None, "rh_bankssts", RH[5]]
    # the same names given as regions= (e.g. a regions.csv), and other names given win
    bare = _rh_table(attrs=False)
    given = _quiet(sex_difference_tests, bare, targets, site=None, regions=RH)
    assert _mu_regions(given) == [None, "rh_bankssts", RH[5]]
    own = [f"parcel_{k}" for k in range(34)]
    assert _mu_regions(_quiet(sex_difference_tests, table, targets, site=None, regions=own)) == [
        None,
        "parcel_0",
        "parcel_5",
    ]
    # the tests themselves do not depend on the names
    cols = ["target", "test", "statistic", "p", "effect"]
    pd.testing.assert_frame_equal(res[cols], given[cols])


def test_a_table_that_is_not_the_68_dk68_columns_gets_no_dk68_names() -> None:
    bare = _rh_table(attrs=False)
    res = _quiet(sex_difference_tests, bare, ["ei_ratio_mean", "ei_ratio_roi_0"], site=None)
    assert _mu_regions(res) == [None, None]  # was lh_bankssts: the left hemisphere's name
    full = simulate_cohort(160, 68, seed=1, n_sites=2)
    dk = _quiet(sex_difference_tests, full, ["ei_ratio_roi_0", "ei_ratio_roi_40"], site=None)
    assert _mu_regions(dk) == ["lh_bankssts", DK68_REGIONS[40]]


def test_names_that_do_not_cover_the_columns_are_refused_or_not_used() -> None:
    bare = _rh_table(attrs=False)
    with pytest.raises(InvalidInputError) as err:
        sex_difference_tests(bare, ["ei_ratio_roi_0"], site=None, regions=RH[:10])
    assert err.value.source == "regions"
    assert "names 10 regions but table has regional columns up to ei_ratio_roi_33" in str(err.value)
    with pytest.raises(InvalidInputError, match="not the single string"):
        sex_difference_tests(bare, ["ei_ratio_roi_0"], site=None, regions="rh_bankssts")
    stale = _rh_table()
    stale.attrs[PROVENANCE_ATTR] = {"atlas": {"regions": RH[:3]}}
    # refused as the stats CLI refuses them (2026-12-07: they used to be dropped with a warning)
    with pytest.raises(
        InvalidInputError, match=r"names 3 regions \(atlas.regions of the provenance in its attrs\)"
    ):
        sex_difference_tests(stale, ["ei_ratio_roi_0"], site=None)


def test_chart_sex_tests_names_the_regions_alike() -> None:
    table = _rh_table(n=120)
    res = _quiet(
        chart_sex_tests,
        table,
        ["ei_ratio_roi_1"],
        family="NO",
        mu_df=3,
        site=None,
    )
    assert set(res["region"]) == {RH[1]}


def test_the_cli_still_names_regions_from_the_sidecar(tmp_path: Path) -> None:
    """``stats sex`` reads ``<stem>.regions.csv`` (as before); Python now gives the same names."""
    from delssome_norms.cli.main import main

    table = _rh_table(n=120)
    path = tmp_path / "rh.csv"
    table.to_csv(path, index=False)
    argv = ["stats", "sex", "--table", str(path), "--targets", "ei_ratio_mean,ei_ratio_roi_2"]
    argv += ["--n-boot", "0", "--no-figures"]
    assert _quiet(main, [*argv, "--out-dir", str(tmp_path / "a")]) == 0
    unnamed = pd.read_csv(tmp_path / "a" / "sex_difference_tests.csv")
    assert unnamed["region"].isna().all()  # no sidecar: unnamed, as before
    pd.DataFrame(
        {"column": [f"ei_ratio_roi_{k}" for k in range(34)], "region_index": range(34), "region": RH}
    ).to_csv(tmp_path / "rh.regions.csv", index=False)
    assert _quiet(main, [*argv, "--out-dir", str(tmp_path / "b")]) == 0
    named = pd.read_csv(tmp_path / "b" / "sex_difference_tests.csv")
    py = _quiet(sex_difference_tests, table, ["ei_ratio_mean", "ei_ratio_roi_2"])
    assert list(named["region"].fillna("-")) == list(py["region"].fillna("-"))
    assert set(named["region"].dropna()) == {RH[2]}


def test_region_groups_read_the_tables_own_names() -> None:
    table = _rh_table()
    scores = _quiet(region_group_scores, table)
    classes = region_classes()
    sensory = [f"ei_ratio_roi_{k - 34}" for k in range(34, 68) if classes[k] == "sensory"]
    other = [f"ei_ratio_roi_{k - 34}" for k in range(34, 68) if classes[k] != "sensory"]
    np.testing.assert_allclose(scores["sensory"], table[sensory].mean(axis=1))
    np.testing.assert_allclose(scores["association"], table[other].mean(axis=1))
    # without names the 34 columns are read as DK68's first 34, and refused as incomplete
    with pytest.raises(InvalidInputError, match="34 of the 68 regional columns are missing"):
        region_group_scores(_rh_table(attrs=False))


def test_default_targets_are_the_mean_and_the_regions_as_documented() -> None:
    table = simulate_cohort(120, 2, seed=4, n_sites=2)
    table["ei_ratio_mean_lo"] = table["ei_ratio_mean"] - 0.1
    table["ei_ratio_mean_hi"] = table["ei_ratio_mean"] + 0.1
    res = _quiet(sex_difference_tests, table, site=None)
    assert list(dict.fromkeys(res["target"])) == ["ei_ratio_mean", "ei_ratio_roi_0", "ei_ratio_roi_1"]
    doc = re.sub(r"\s+", " ", sex_difference_tests.__doc__)
    assert "default every ``ei_ratio_*`` column" not in doc
    assert "default ``ei_ratio_mean`` and every ``ei_ratio_roi_<k>`` column" in doc


# ------------------------------------------------------------------------- flagged people
def _flagged(n: int = 120, seed: int = 2, n_flagged: int = 7) -> pd.DataFrame:
    table = simulate_cohort(n, 68, seed=seed, n_sites=2)
    table["fit_flagged"] = np.arange(n) < n_flagged
    table["fit_flag_reasons"] = np.where(table["fit_flagged"], "cost_above_floor", "")
    return table


def _input_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, InputWarning)]


def test_compare_models_warns_once_about_flagged_people_and_can_leave_them_out() -> None:
    from delssome_norms.norms.selection import compare_models

    table = _flagged()
    kwargs = {"families": ("NO",), "mu_dfs": (3, 4), "targets": ["ei_ratio_mean"], "sigma_df": 3}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        kept = compare_models(table, random_sites=(), **kwargs)
    flagged = [m for m in _input_warnings(caught) if "flagged E/I fit" in m]
    assert len(flagged) == 1  # was none: swallowed by each fit's catch_warnings
    assert flagged[0].startswith("table: 7 of 120 people have a flagged E/I fit: sub-00000")
    assert (kept["n_obs"] == 120).all()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compare_models(table, random_sites=(), exclude_flagged=True, **kwargs)
    left = [m for m in _input_warnings(caught) if "left out" in m]
    assert len(left) == 1 and "left out 7 of 120 people" in left[0]
    assert (out["n_obs"] == 113).all() and len(out) == 2
    with pytest.raises(InvalidInputError, match="needs the fit_flagged column"):
        compare_models(table.drop(columns="fit_flagged"), exclude_flagged=True, **kwargs)


def test_region_group_figures_take_exclude_flagged() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from delssome_norms.plotting import plot_ei_vs_age_by_group, plot_region_group_trajectories

    table = _flagged(n=160)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_region_group_trajectories(table, site=None, df=3, exclude_flagged=True)
    assert sum("left out 7 of 160" in m for m in _input_warnings(caught)) == 1
    expected = _quiet(region_group_trajectories, table, site=None, df=3, exclude_flagged=True)
    line = fig.axes[0].lines[0]  # sensory, female
    part = expected[(expected["group"] == "sensory") & (expected["sex"] == "female")]
    np.testing.assert_allclose(line.get_ydata(), part["mean"])
    plt.close(fig)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = plot_ei_vs_age_by_group(table, site=None, df=3, exclude_flagged=True)
    assert sum("left out 7 of 160" in m for m in _input_warnings(caught)) == 1
    from matplotlib.collections import PathCollection

    points = [c for c in fig.axes[0].collections if isinstance(c, PathCollection)]  # scatter
    drawn = sum(len(c.get_offsets()) for c in points)
    assert drawn == 153
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig2 = plot_ei_vs_age_by_group(table, site=None, df=3)
    # kept: named once (the points and the curves used to warn once each)
    assert sum("7 of 160 people have a flagged E/I fit" in m for m in _input_warnings(caught)) == 1
    plt.close(fig)
    plt.close(fig2)


# ------------------------------------------------------------------------- GrowthChart repr
def test_a_fitted_chart_says_what_it_is() -> None:
    from delssome_norms.norms import GrowthChart

    assert repr(GrowthChart(mu_df=5)) == "GrowthChart(mu_df=5)"  # scikit-learn's, unfitted
    table = simulate_cohort(150, 1, seed=3, n_sites=2)
    chart = _quiet(GrowthChart("NO", mu_df=3, sigma_df=3, random_sites=()).fit, table)
    age = table["age_in_years"]
    expected = (
        f"GrowthChart(NO, fitted: 2 targets, 150 people, ages {age.min():.1f}-{age.max():.1f} years)"
    )
    assert repr(chart) == expected
    one = _quiet(GrowthChart("NO", mu_df=3, random_sites=()).fit, table, targets="ei_ratio_mean")
    assert repr(one).startswith("GrowthChart(NO, fitted: 1 target, 150 people")


# ------------------------------------------------------------------------- docs
def _text(path: str) -> str:
    return re.sub(r"\s+", " ", (ROOT / path).read_text(encoding="utf-8"))


def test_docs_say_what_the_code_does() -> None:
    python = _text("docs/python.md")
    assert "the DK68 order; 68 labels that are not DK68 names are refused" not in python
    assert "other sets of 68 labels that are not DK68 names are refused" in python
    assert "labels that only number the regions (`r0` ... `r67`, `0` ... `67`" in python
    assert "numbered in another order: put in numeric order, with a warning" in python
    assert "a table of one hemisphere is not given the left hemisphere's names" in python
    cli = _text("docs/cli.md")
    assert "`--site-column`, and `--exclude-flagged` as for `charts fit`)" in cli
    readme = _text("README.md")
    assert "`GrowthChart().fit(table, exclude_flagged=True)`" in readme
    assert "`exclude_flagged=True` of the `stats` functions, do the same" in readme


def test_regions_longer_than_the_columns_or_repeated_are_refused() -> None:
    """Review of 2026-12-07: 68 DK68 names for a 34-column table labelled it lh_* again."""
    from delssome_norms.datasets import DK68_REGIONS
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.stats._cohort import table_regions

    table = pd.DataFrame({f"ei_ratio_roi_{k}": [1.0] for k in range(34)})
    with pytest.raises(InvalidInputError, match=r"names 68 regions .*k = 0 \.\.\. 33"):
        table_regions(table, list(DK68_REGIONS))
    with pytest.raises(InvalidInputError, match="more than once"):
        table_regions(table, ["x"] * 34)
    assert table_regions(table, list(DK68_REGIONS[34:])) == list(DK68_REGIONS[34:])
