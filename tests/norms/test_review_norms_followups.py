"""Follow-ups of the chart-scoring review: warning-free offset fills, missing site labels,
infinite z-scores in calibration, extreme offsets of adapted sites, and ages between the
training ages and the chart's range.

Numbers are compared with independent computations: numpy's own means, the chart's population
parameters, and the SHASHo2 z-score written out from docs/science.md §7.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import special

from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError
from delssome_norms.norms import load_reference_chart
from delssome_norms.norms.calibration import calibration_summary, calibration_table
from delssome_norms.norms.distributions import get_family
from delssome_norms.norms.fitting import column_fill, fit_site_offsets

MEAN = "ei_ratio_mean"


@pytest.fixture(scope="module")
def chart():
    return load_reference_chart()


def _draws(chart, n, seed, site=None, site_name="New", ages=(10.0, 80.0)):
    """People drawn from the chart's curves (a training site's when ``site`` is given)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(*ages, n)
    female = rng.integers(0, 2, n)
    kw = {} if site is None else {"site": [site] * n}
    par = chart.predict_parameters(age, female, **kw)
    theta = [par[p] for p in chart.family_.params]
    values = chart.family_.ppf(rng.uniform(size=(n, len(chart.targets_))), *theta)
    table = pd.DataFrame(values, columns=chart.targets_)
    table.insert(0, "subject_id", [f"{site_name}-{seed}-{i}" for i in range(n)])
    table.insert(1, "age_in_years", age)
    table.insert(2, "numeric_sex", female)
    table.insert(3, "site_scanner", site if site is not None else site_name)
    return table, theta


# -- 1. the fill of an all-missing column -----------------------------------------------------
def test_offset_fill_of_all_missing_column_is_warning_free_and_equals_nanmean() -> None:
    rng = np.random.default_rng(3)
    y = np.c_[rng.normal(2.0, 0.5, 25), np.full(25, np.nan), rng.normal(size=25)]
    y[[1, 4, 9], 2] = np.nan
    mask = np.isfinite(y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "Mean of empty slice" would raise here
        fill = column_fill(y, mask)
        fam = get_family("NO")
        res = fit_site_offsets(y, fam, [np.zeros_like(y)] * 2, [True, True], np.zeros(25, int), 1)
    # identical to nanmean (the former fill) where a column has values, 1.0 where it has none
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        before = np.nanmean(y, axis=0)
    np.testing.assert_array_equal(fill[[0, 2]], before[[0, 2]])
    np.testing.assert_allclose(fill[[0, 2]], [y[:, 0].mean(), y[mask[:, 2], 2].mean()], rtol=1e-14)
    assert fill[1] == 1.0
    # normal ML offsets from a zero linear predictor: the sample mean and log of the ML sd
    for j in (0, 2):
        v = y[mask[:, j], j]
        assert res.offsets[j, 0, 0] == pytest.approx(v.mean(), abs=1e-7)
        assert res.offsets[j, 0, 1] == pytest.approx(np.log(v.std()), abs=1e-7)
    np.testing.assert_array_equal(res.offsets[1, 0], [0.0, 0.0])  # nothing observed: stays 0


def test_adapt_with_a_target_without_values_raises_no_runtime_warning(chart) -> None:
    controls, _ = _draws(chart, 30, seed=5)
    controls["ei_ratio_roi_0"] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        with pytest.warns(InputWarning, match="no control value for ei_ratio_roi_0 at New"):
            new = chart.adapt(controls, method="map")
    assert new.site_effects_["mu"][chart.targets_.index("ei_ratio_roi_0"), -1] == 0.0


# -- 2. missing site labels ---------------------------------------------------------------------
@pytest.mark.parametrize("missing", [np.nan, None, pd.NA, "  "])
def test_missing_site_in_predict_parameters_is_no_site(chart, missing) -> None:
    ages = np.array([20.0, 30.0, 40.0])
    known = chart.sites_[0]
    with pytest.warns(InputWarning) as record:
        got = chart.predict_parameters(ages, "f", site=[missing, known, missing])
    msg = " ".join(str(w.message) for w in record)
    assert "2 age(s) without a site" in msg and "nan" not in msg.replace("NaN", "")
    pop = chart.predict_parameters(ages, "f")
    own = chart.predict_parameters(ages[1:2], "f", site=known)
    for p in chart.family_.params:
        shape = (3, len(chart.targets_))  # nu, tau come as (1, T): constant over people
        g, q = np.broadcast_to(got[p], shape), np.broadcast_to(pop[p], shape)
        np.testing.assert_allclose(g[[0, 2]], q[[0, 2]], rtol=1e-13)
        np.testing.assert_allclose(g[1], own[p][0], rtol=1e-13)


def test_missing_site_cells_are_scored_as_no_site_with_a_clear_message(chart) -> None:
    table, _ = _draws(chart, 3, seed=7, site=chart.sites_[1])
    table["site_scanner"] = [np.nan, chart.sites_[1], None]
    with pytest.warns(InputWarning) as record:
        scores = chart.score(table, targets=[MEAN], layout="long")
    msg = " ".join(str(w.message) for w in record)
    assert "2 row(s) without a site (2: empty site_scanner cell)" in msg
    assert "no site_scanner column" not in msg and "site(s) nan" not in msg
    assert scores["flag"].tolist() == ["unseen_site", "", "unseen_site"]
    assert scores["site_scanner"].tolist() == ["", chart.sites_[1], ""]
    pop = chart.predict_parameters(table["age_in_years"], table["numeric_sex"], targets=[MEAN])
    centile = chart.family_.cdf(table[MEAN].to_numpy(), *[pop[p][:, 0] for p in chart.family_.params])
    np.testing.assert_allclose(scores["centile"].to_numpy()[[0, 2]], centile[[0, 2]], rtol=1e-12)


# -- 3. infinite z in calibration ---------------------------------------------------------------
def test_calibration_keeps_people_with_infinite_z(chart, monkeypatch) -> None:
    chart = copy.deepcopy(chart)
    chart.provenance_ = {}  # a chart of another quantity: an E/I chart refuses E/I <= 0
    monkeypatch.setattr("delssome_norms.norms.chart_adapt.NO_MASS_Z", -np.inf)
    site = chart.sites_[2]
    held, theta = _draws(chart, 200, seed=11, site=site)
    held = held[["subject_id", "age_in_years", "numeric_sex", "site_scanner", MEAN]]
    extreme = held.iloc[:3].copy()
    extreme["subject_id"] = ["hi", "lo", "hi2"]
    extreme[MEAN] = [1e308, -1e308, 1e308]  # beyond the chart's numerical range: z = +-inf
    table = pd.concat([held, extreme], ignore_index=True)
    z = chart.score(extreme, targets=[MEAN], layout="long")["z"].to_numpy()
    np.testing.assert_array_equal(z, [np.inf, -np.inf, np.inf])

    j = chart.targets_.index(MEAN)
    c = chart.family_.cdf(held[MEAN].to_numpy(), *[t[:, j] for t in theta])  # independent
    q = np.array([1.0, 2.5, 50.0, 97.5, 99.0])
    cal = calibration_table(chart, table, q=q, targets=[MEAN])
    # +inf is above every centile, -inf below every one
    expected = ((c[:, None] < q / 100).sum(0) + 1) / 203
    np.testing.assert_allclose(cal["empirical"], expected, rtol=1e-12)
    assert (cal["n"] == 203).all()

    summary = calibration_summary(chart, table, targets=[MEAN]).iloc[0]
    assert summary["n"] == 203 and summary["n_infinite_z"] == 3
    zf = special.ndtri(c)
    assert summary["z_mean"] == pytest.approx(zf.mean(), abs=1e-6)
    assert summary["z_sd"] == pytest.approx(zf.std(ddof=1), abs=1e-6)


# -- 4. extreme offsets of an adapted site ------------------------------------------------------
def _shasho2_z(y, mu, sigma, nu, tau):
    """docs/science.md §7: z = sinh(tau asinh((y - mu) / (sigma tau)) - nu)."""
    return np.sinh(tau * np.arcsinh((y - mu) / (sigma * tau)) - nu)


@pytest.fixture(scope="module")
def flat_controls(chart):
    """Site "Flat": 30 controls whose mean E/I sits on the population median (sd 1e-4);
    site "Good": 30 ordinary controls."""
    flat, theta = _draws(chart, 30, seed=21, site_name="Flat")
    rng = np.random.default_rng(22)
    j = chart.targets_.index(MEAN)
    flat[MEAN] = chart.family_.ppf(0.5, *[t[:, j] for t in theta]) + 1e-4 * rng.standard_normal(30)
    good, _ = _draws(chart, 30, seed=23, site_name="Good")
    return pd.concat([flat, good], ignore_index=True)


def test_adapting_a_site_with_near_constant_controls_warns_and_flags(chart, flat_controls) -> None:
    with pytest.warns(ConvergenceWarning, match=r"Flat: ei_ratio_mean \(e\.g\. ei_ratio_mean"):
        new = chart.adapt(flat_controls)
    # the site's tail check, recomputed from the formula on the site's curves
    lo, hi = chart.chart_range_
    ages = np.concatenate([np.arange(lo, hi, 1.0), [hi]])
    j = chart.targets_.index(MEAN)
    zs = []
    for sex in ("f", "m"):
        own, pop = (
            [par[p][:, 0] for p in chart.family_.params]
            for par in (
                new.predict_parameters(ages, sex, site="Flat", targets=[MEAN]),
                new.predict_parameters(ages, sex, targets=[MEAN]),
            )
        )
        for th in (pop, own):
            q25, q75 = (chart.family_.ppf(np.full(ages.shape, q), *th) for q in (0.25, 0.75))
            for bound in (q75 + 3 * (q75 - q25), q25 - 3 * (q75 - q25)):
                zs.append(np.abs(_shasho2_z(bound, *own)))
    expected = np.max(np.concatenate(zs))
    got = new.site_tail_z(["Flat", "Good"])
    assert got[0, j] == pytest.approx(expected, rel=1e-8)
    assert expected > 100  # sigma shrunk ~100-fold
    assert got[1].max() < 20  # the ordinary site passes every target
    assert (np.delete(got[0], j) < 20).all()

    people, _ = _draws(chart, 4, seed=31, site_name="Flat")
    good_people, _ = _draws(chart, 4, seed=32, site_name="Good")
    both = pd.concat([people, good_people], ignore_index=True)
    with pytest.warns(ConvergenceWarning, match="4 row\\(s\\) from site\\(s\\) Flat, adapted"):
        long = new.score(both, targets=[MEAN, "ei_ratio_roi_0"], layout="long")
    flat_mean = (long["site_scanner"] == "Flat") & (long["target"] == MEAN)
    assert (long.loc[flat_mean, "flag"] == "chart_unreliable").all()
    assert (long.loc[~flat_mean, "flag"] == "").all()
    with pytest.warns(ConvergenceWarning):
        wide = new.score(both, targets=[MEAN, "ei_ratio_roi_0"])
    assert wide["flag"].tolist() == ["chart_unreliable"] * 4 + [""] * 4
    # without a site column nobody uses the site's curves: population prediction, no such flag
    with pytest.warns(InputWarning, match="no site_scanner column"):
        nosite = new.score(both.drop(columns="site_scanner"), targets=[MEAN])
    assert (nosite["flag"] == "unseen_site").all()


def test_strict_chart_refuses_extreme_site_offsets(chart, flat_controls) -> None:
    strict = copy.deepcopy(chart)
    strict.strict = True
    with pytest.raises(InvalidInputError, match="Flat: ei_ratio_mean"):
        strict.adapt(flat_controls)
    assert strict.sites_ == chart.sites_


# -- 5. ages inside the chart's range but outside the training ages ----------------------------
def test_ages_beyond_the_training_ages_are_scored_and_flagged(chart) -> None:
    assert chart.chart_range_ == (4.0, 99.0)
    lo, hi = chart.age_range_
    assert (lo, hi) == pytest.approx((4.5, 98.4), abs=0.05)
    site = chart.sites_[0]
    ages = np.array([4.0, 4.2, 50.0, 98.9, 99.0])
    table = pd.DataFrame(
        {"age_in_years": ages, "sex": "m", "site_scanner": site, MEAN: [2.9, 3.0, 3.1, 3.2, 3.3]}
    )
    inside = r"4 row\(s\) have ages inside the chart's range 4-99 years but beyond its reference"
    with pytest.warns(InputWarning, match=inside):  # inside the chart's range: said, and flagged
        scores = chart.score(table, targets=[MEAN])
    assert scores["flag"].tolist() == ["age_extrapolated"] * 2 + [""] + ["age_extrapolated"] * 2
    par = chart.predict_parameters(ages, "m", site=site, targets=[MEAN])
    centile = chart.family_.cdf(table[MEAN].to_numpy(), *[par[p][:, 0] for p in chart.family_.params])
    np.testing.assert_allclose(scores[f"{MEAN}_centile"], centile, rtol=1e-12)
    # outside the chart's range: the existing flag only
    out = table.assign(age_in_years=[3.5, 4.2, 50.0, 98.9, 99.5])
    with pytest.warns(InputWarning, match="outside the chart's range"):
        flags = chart.score(out, targets=[MEAN], layout="long")["flag"].tolist()
    assert flags == ["age_out_of_range", "age_extrapolated", "", "age_extrapolated", "age_out_of_range"]
