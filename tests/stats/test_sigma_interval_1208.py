"""The sd ratio's interval (``sigma_lr`` rows) inverts the REML likelihood-ratio test.

Review 1208: the interval of the female / male sd ratio was a Wald interval from the ML
information while the p-value came from a REML likelihood-ratio test, so the interval could
exclude 1 with p > 0.05 (``sd female / male 1.501 [1.028, 2.191], p 0.1``).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from delssome_norms.stats import sex_difference_tests
from delssome_norms.stats._cohort import prepare_cohort
from delssome_norms.stats._sex_designs import _Designs
from delssome_norms.stats.location_scale import fit_location_scale


def _make(n: int, n_sites: int, k: int, ratio: float, seed: int) -> pd.DataFrame:
    """The reviewer's generator (/tmp/y4/sim.py ``make``, no mean difference, no confounding)."""
    rng = np.random.default_rng(seed)
    age = rng.uniform(5, 90, n)
    site = rng.integers(0, n_sites, n)
    female = rng.random(n) < 0.5
    site_eff = np.linspace(-0.5, 0.5, n_sites)[site]
    mean = 3 + 0.8 * np.exp(-age / 10) - 0.004 * (age - 40) + site_eff
    sd = 0.3 * (1 + 0.005 * age) * np.where(female, ratio, 1.0)
    Y = mean[:, None] + sd[:, None] * rng.standard_normal((n, k))
    df = pd.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(n)],
            "age_in_years": age,
            "sex": np.where(female, "female", "male"),
            "site_scanner": [f"S{s}" for s in site],
        }
    )
    return pd.concat([df, pd.DataFrame(Y, columns=[f"ei_ratio_roi_{j}" for j in range(k)])], axis=1)


def _sigdemo() -> pd.DataFrame:
    """The reviewer's c_sigdemo.csv: column 29 of ``make(60, 3, 200, 0, 1.0, 4)``."""
    tab = _make(60, 3, 200, 1.0, 4)
    return tab[["subject_id", "age_in_years", "sex", "site_scanner", "ei_ratio_roi_29"]].rename(
        columns={"ei_ratio_roi_29": "ei_ratio_mean"}
    )


def _tests(table: pd.DataFrame, **kwargs) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sex_difference_tests(table, **kwargs)


def _reml_loglik(gamma, y, X, Z, offset):
    """Restricted log-likelihood of ``log sd = Z gamma + offset``, the mean profiled out by GLS
    (written out here, independently of :mod:`location_scale`)."""
    eta = Z @ gamma + offset
    w = np.exp(-2.0 * eta)
    A = X.T @ (w[:, None] * X)
    beta = np.linalg.solve(A, X.T @ (w * y))
    r = y - X @ beta
    ll = np.sum(-0.5 * np.log(2 * np.pi) - eta - 0.5 * r * r * w)
    h = w * np.einsum("ij,ij->i", X @ np.linalg.inv(A), X)
    grad = Z.T @ (r * r * w - 1.0 + h)
    return ll - 0.5 * np.linalg.slogdet(A)[1], grad


def _max_reml(y, X, Z, offset):
    start = np.zeros(Z.shape[1])
    start[0] = np.log(np.std(y))
    res = optimize.minimize(
        lambda g: tuple(-v for v in _reml_loglik(g, y, X, Z, offset)),
        start,
        jac=True,
        method="BFGS",
        options={"gtol": 1e-10, "maxiter": 2000},
    )
    return -res.fun


def _designs(table: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = prepare_cohort(table)
    d = _Designs.from_cohort(c, 4, 3)
    X = d.mean(c.age, c.female, c.site, sex=True)
    Z = d.scale(c.age, c.female, c.site, sex=True)
    return c, X, Z, 1 + d.basis_sigma.df


def test_reviewer_sigdemo_interval_contains_one_when_p_above_alpha():
    res = _tests(_sigdemo())
    row = res[res.test == "sigma_lr"].iloc[0]
    assert row.effect == pytest.approx(1.501, abs=5e-4)
    assert row.p == pytest.approx(0.1, abs=0.005) and row.p > 0.05
    # before: the ML-information Wald interval [1.028, 2.191], which excluded 1
    assert row.ci_low < 1.0 < row.ci_high
    assert row.ci_low == pytest.approx(0.920, abs=5e-4)
    assert row.ci_high == pytest.approx(2.378, abs=5e-4)


@pytest.mark.parametrize("level", [0.95, 0.9])
def test_interval_ends_give_lr_p_equal_to_alpha(level):
    """Plugged back into an independent REML likelihood-ratio test, each end has p = 1 - level."""
    table = _sigdemo()
    res = _tests(table, level=level)
    row = res[res.test == "sigma_lr"].iloc[0]
    c, X, Z, i = _designs(table)
    y = c.y[:, 0]
    Z_nosex = np.delete(Z, i, axis=1)
    female = c.female.astype(float)
    ll_full = _max_reml(y, X, Z, np.zeros(len(y)))
    # the reported p-value is that of the same test at ratio 1
    ll0 = _max_reml(y, X, Z_nosex, np.zeros(len(y)))
    assert stats.chi2.sf(2 * (ll_full - ll0), 1) == pytest.approx(row.p, abs=1e-6)
    for end in (row.ci_low, row.ci_high):
        ll_c = _max_reml(y, X, Z_nosex, np.log(end) * female)
        assert stats.chi2.sf(2 * (ll_full - ll_c), 1) == pytest.approx(1 - level, abs=1e-6)


@pytest.mark.parametrize(
    ("n", "sites", "ratio", "seed"),
    [(60, 3, 1.0, 4), (60, 3, 1.0, 11), (60, 3, 1.4, 5), (120, 4, 1.0, 21), (120, 4, 1.25, 8)],
)
def test_interval_excludes_one_iff_p_below_alpha(n, sites, ratio, seed):
    res = _tests(_make(n, sites, 120, ratio, seed))
    s = res[(res.test == "sigma_lr") & res.converged]
    assert len(s) >= 110
    excludes = (s.ci_low > 1.0) | (s.ci_high < 1.0)
    assert ((s.ci_low < s.effect) & (s.effect < s.ci_high)).all()
    assert (excludes == (s.p < 0.05)).all()


def test_robust_wald_row_keeps_the_wald_interval_of_its_sandwich_variance():
    table = _make(120, 3, 20, 1.2, 3)
    res = _tests(table, method="robust_wald")
    s = res[res.test == "sigma_robust_wald"]
    c, X, Z, i = _designs(table)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = fit_location_scale(c.y, X, Z, reml=True)
    g, se = fit.gamma[:, i], np.sqrt(fit.robust_cov_gamma[:, i, i])
    z = stats.norm.ppf(0.975)
    np.testing.assert_allclose(s.ci_low, np.exp(g - z * se), rtol=1e-10)
    np.testing.assert_allclose(s.ci_high, np.exp(g + z * se), rtol=1e-10)
    np.testing.assert_allclose(s.p, stats.chi2.sf((g / se) ** 2, 1), rtol=1e-8)
    assert (((s.ci_low > 1) | (s.ci_high < 1)) == (s.p < 0.05)).all()


def test_scale_offset_holds_a_coefficient_fixed():
    """A fit without the sex column but with ``gamma_sex * female`` as offset is the full fit."""
    table = _make(80, 3, 4, 1.3, 2)
    c, X, Z, i = _designs(table)
    Z_nosex = np.delete(Z, i, axis=1)
    for reml in (False, True):
        full = fit_location_scale(c.y, X, Z, reml=reml)
        off = c.female.astype(float)[:, None] * full.gamma[:, i][None, :]
        held = fit_location_scale(c.y, X, Z_nosex, reml=reml, scale_offset=off)
        warm = fit_location_scale(
            c.y, X, Z_nosex, reml=reml, scale_offset=off, start_gamma=np.delete(full.gamma, i, 1)
        )
        np.testing.assert_allclose(held.loglik, full.loglik, rtol=1e-10)
        np.testing.assert_allclose(held.gamma, np.delete(full.gamma, i, axis=1), atol=1e-5)
        np.testing.assert_allclose(warm.loglik, full.loglik, rtol=1e-10)
        assert warm.n_iter < full.n_iter
        quick = fit_location_scale(c.y, X, Z, reml=reml, robust=False)
        np.testing.assert_allclose(quick.loglik, full.loglik, rtol=1e-12)
        assert np.isnan(quick.robust_cov_gamma).all()


def test_brentq_finishes_the_targets_the_batched_search_leaves_open(monkeypatch):
    """With one batched step every target is finished by brentq on its bracket: same ends."""
    from delssome_norms.stats import _sigma_interval

    table = _make(60, 3, 6, 1.3, 7)
    before = _tests(table)
    monkeypatch.setattr(_sigma_interval, "VECTOR_STEPS", 1)
    after = _tests(table)
    s0, s1 = before[before.test == "sigma_lr"], after[after.test == "sigma_lr"]
    np.testing.assert_allclose(s1.ci_low, s0.ci_low, rtol=1e-5)
    np.testing.assert_allclose(s1.ci_high, s0.ci_high, rtol=1e-5)
    np.testing.assert_array_equal(s1.p, s0.p)
