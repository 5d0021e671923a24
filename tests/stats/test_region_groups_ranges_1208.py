"""The sensory/association curves of each sex only over the ages that sex's people cover.

``region_group_trajectories`` evaluated both sexes' curves over the whole cohort's age range: with
women aged 5-40 and men 5-97 the female association curve was 47.7 at 90 years (95 % band -64 to
159; the values are near 3), with no warning, and both figures of ``stats groups`` were swamped by
that extrapolation. The cohort here: 150 women younger than 40 and 250 men of all ages from the
packaged SYNTHETIC reference table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.lines import Line2D

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.stats import region_group_scores, region_group_trajectories

WHO = "region_group_trajectories:"


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    from delssome_norms.datasets import load_reference_table

    return load_reference_table()


@pytest.fixture(scope="module")
def young_women(reference) -> pd.DataFrame:
    women = reference[(reference["sex"] == "female") & (reference["age_in_years"] < 40)]
    men = reference[reference["sex"] == "male"]
    people = [women.sample(n=150, random_state=0), men.sample(n=250, random_state=0)]
    return pd.concat(people).reset_index(drop=True)


def _span(table: pd.DataFrame, sex: str) -> tuple[float, float]:
    age = table.loc[table["sex"] == sex, "age_in_years"]
    return float(age.min()), float(age.max())


def _quiet_dk68(fn, *args, **kwargs):
    """``fn``'s result and its warnings, less the one about unnamed DK68 columns."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    said = [w for w in caught if "taken to be the DK68 regions" not in str(w.message)]
    return result, said


@pytest.fixture(scope="module")
def fitted(young_women):
    return _quiet_dk68(region_group_trajectories, young_women)


def test_each_sex_curve_is_given_only_over_its_own_ages(young_women, fitted) -> None:
    curves, _ = fitted
    f_lo, f_hi = _span(young_women, "female")
    assert f_hi < 40 < young_women["age_in_years"].max()
    grid = np.linspace(young_women["age_in_years"].min(), young_women["age_in_years"].max(), 100)
    for group in ("sensory", "association"):
        for sex in ("female", "male"):
            part = curves[(curves["group"] == group) & (curves["sex"] == sex)]
            np.testing.assert_allclose(part["age_in_years"], grid)  # one row per age, both sexes
        fem = curves[(curves["group"] == group) & (curves["sex"] == "female")]
        inside = fem["age_in_years"].between(f_lo, f_hi).to_numpy()
        assert inside.sum() > 30 and (~inside).sum() > 50
        values = fem[["mean", "ci_low", "ci_high"]].to_numpy()
        assert np.isnan(values[~inside]).all()
        assert np.isfinite(values[inside]).all()
        male = curves[(curves["group"] == group) & (curves["sex"] == "male")]
        m_lo, _ = _span(young_women, "male")
        assert np.isfinite(male.loc[male["age_in_years"] >= m_lo, "mean"]).all()
        # the female curve where she has data: near the women's own mean around 20 years
        # (independent: the raw group means of the women aged 15-25)
        at = int(np.argmin(np.abs(fem["age_in_years"].to_numpy() - 20.0)))
        scores = region_group_scores(young_women)
        near = scores.loc[(scores["sex"] == "female") & scores["age_in_years"].between(15, 25), group]
        band_se = (fem["ci_high"].iloc[at] - fem["ci_low"].iloc[at]) / (2 * 1.959964)
        se = np.hypot(near.std(ddof=1) / np.sqrt(len(near)), band_se)
        assert abs(fem["mean"].iloc[at] - near.mean()) < 3 * se
        assert 2.5 < fem["mean"].iloc[at] < 4.5
        # the same curve at explicit ages inside her range: the same values
        ages = fem["age_in_years"].to_numpy()[inside][::8]
        again, _ = _quiet_dk68(region_group_trajectories, young_women, ages=ages)
        again = again[(again["group"] == group) & (again["sex"] == "female")]
        np.testing.assert_allclose(again["mean"], fem["mean"].to_numpy()[inside][::8], rtol=1e-10)


def test_one_warning_names_the_sex_and_its_range(young_women, fitted) -> None:
    _, said = fitted
    ours = [str(w.message) for w in said if WHO in str(w.message)]
    assert len(ours) == 1
    assert all(w.category is InputWarning for w in said if WHO in str(w.message))
    f_lo, f_hi = _span(young_women, "female")
    assert f"the female people span {f_lo:.1f} to {f_hi:.1f} years" in ours[0]
    assert "male people span" not in ours[0].replace("female people span", "")
    assert "NaN" in ours[0]


def test_a_cohort_whose_sexes_span_its_ages_gets_no_warning(reference) -> None:
    """Each sex of nearly any cohort starts or ends a little inside the other's range: that end age
    is NaN for it, without a warning (here the youngest and the oldest of each sex are 4.500 and
    4.543 years, 98.046 and 98.400 years, less than one grid step apart)."""
    age = reference["age_in_years"]
    ends = [
        reference[reference["sex"] == sex]["age_in_years"].agg(["idxmin", "idxmax"])
        for sex in ("female", "male")
    ]
    extremes = reference.loc[np.concatenate([e.to_numpy() for e in ends])]
    assert extremes["age_in_years"].min() == age.min() and extremes["age_in_years"].max() == age.max()
    others = reference.drop(index=extremes.index).sample(n=296, random_state=2)
    table = pd.concat([others, extremes]).reset_index(drop=True)
    curves, said = _quiet_dk68(region_group_trajectories, table, site=None, df=3)
    assert not [w for w in said if WHO in str(w.message)]
    for sex in ("female", "male"):
        lo, hi = _span(table, sex)
        for group in ("sensory", "association"):
            part = curves[(curves["sex"] == sex) & (curves["group"] == group)]
            inside = part["age_in_years"].between(lo, hi)
            assert np.isfinite(part.loc[inside, "mean"]).all()
            assert part.loc[~inside, "mean"].isna().all() and (~inside).sum() == 1


def test_explicit_ages(young_women) -> None:
    _, f_hi = _span(young_women, "female")
    ages = [20.0, f_hi - 0.5, 60.0, 90.0]
    curves, said = _quiet_dk68(region_group_trajectories, young_women, ages=ages)
    assert len([w for w in said if WHO in str(w.message)]) == 1
    fem = curves[curves["sex"] == "female"].set_index(["group", "age_in_years"])["mean"]
    male = curves[curves["sex"] == "male"]
    assert np.isfinite(fem.xs(20.0, level=1)).all() and np.isfinite(fem.xs(f_hi - 0.5, level=1)).all()
    assert fem.xs(60.0, level=1).isna().all() and fem.xs(90.0, level=1).isna().all()
    assert np.isfinite(male["mean"]).all() and male["mean"].between(2.0, 5.0).all()
    _, said = _quiet_dk68(region_group_trajectories, young_women, ages=[10.0, 20.0, 30.0])
    assert not [w for w in said if WHO in str(w.message)]  # all within both sexes' ages
    oldest = young_women["age_in_years"].max()
    with pytest.raises(InvalidInputError, match=r"within the cohort's age range") as err:
        _quiet_dk68(region_group_trajectories, young_women, ages=[20.0, oldest + 5])
    assert err.value.source == "ages"
    with pytest.raises(InvalidInputError, match="finite"):
        _quiet_dk68(region_group_trajectories, young_women, ages=[20.0, np.nan])


def _drawn(line: Line2D) -> tuple[np.ndarray, np.ndarray]:
    """The points of a line that matplotlib draws (those with a finite y)."""
    x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
    return x[np.isfinite(y)], y[np.isfinite(y)]


def _band_extent(band) -> tuple[float, float, float]:
    """Largest age and the y range of the polygons of a fill_between band."""
    xy = np.vstack([path.vertices for path in band.get_paths()])
    return float(xy[:, 0].max()), float(xy[:, 1].min()), float(xy[:, 1].max())


def test_figures_draw_each_curve_only_over_its_sex_ages(young_women, fitted) -> None:
    from delssome_norms.plotting import plot_ei_vs_age_by_group, plot_region_group_trajectories

    curves, _ = fitted
    _, f_hi = _span(young_women, "female")
    m_hi = _span(young_women, "male")[1]
    fig = plot_region_group_trajectories(young_women, curves=curves)
    ax = fig.axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    bands = iter(ax.collections)  # fill_between, in drawing order: each group's female, male
    for group in ("sensory", "association"):
        (fx, fy), (mx, _) = _drawn(lines[f"{group}, female"]), _drawn(lines[f"{group}, male"])
        assert f_hi - 1.0 < fx.max() <= f_hi  # up to (a grid step from) her oldest age
        assert mx.max() == pytest.approx(m_hi)
        assert fy.max() < 4.5  # not the extrapolation (148 at 93 years)
        f_band, m_band = _band_extent(next(bands)), _band_extent(next(bands))
        assert f_band[0] <= f_hi and f_band[1] > 2.0 and f_band[2] < 5.0
        assert m_band[0] == pytest.approx(m_hi)
    assert ax.get_ylim()[1] < 5.0  # the axes fit the curves where they are defined
    fig, _ = _quiet_dk68(plot_ei_vs_age_by_group, young_women, curves=curves)
    for ax in fig.axes:
        drawn = {ln.get_label(): _drawn(ln) for ln in ax.get_lines()}
        assert f_hi - 1.0 < drawn["female"][0].max() <= f_hi
        assert drawn["male"][0].max() == pytest.approx(m_hi)
        assert ax.get_ylim()[1] < 7.0  # the axes fit the people, not an extrapolated curve


def test_stats_groups_writes_nan_where_a_sex_has_no_data(young_women, tmp_path, capsys) -> None:
    path, out = tmp_path / "femyoung.csv", tmp_path / "out"
    young_women.to_csv(path, index=False)
    argv = ["stats", "groups", "--table", str(path), "--out-dir", str(out), "--no-figures"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code = main(argv)
    capsys.readouterr()
    assert code == 0
    ours = [str(w.message) for w in caught if WHO in str(w.message)]
    assert len(ours) == 1 and "the female people span" in ours[0]
    written = pd.read_csv(out / "region_group_trajectories.csv")
    _, f_hi = _span(pd.read_csv(path), "female")
    fem = written[written["sex"] == "female"]
    assert fem.loc[fem["age_in_years"] > f_hi, "mean"].isna().all()
    assert (fem["age_in_years"] > f_hi).sum() > 50
    assert np.isfinite(fem.loc[fem["age_in_years"].between(10, f_hi), "mean"]).all()
    assert np.isfinite(written.loc[written["sex"] == "male", "mean"].iloc[1:]).all()
