"""Sex-difference statistics against independent expectations (statsmodels, known truths)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.multitest import multipletests

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.stats import (
    SplineBasis,
    add_fdr,
    fit_location_scale,
    sex_difference_tests,
)


def _cohort(n: int, delta: float, ratio: float, n_regions: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(5, 90, n)
    female = rng.random(n) < 0.5
    mu = 3.0 - 0.01 * age + delta * female
    sd = 0.2 * np.where(female, ratio, 1.0)
    rois = mu[:, None] + sd[:, None] * rng.standard_normal((n, n_regions))
    table = pd.DataFrame(rois, columns=[f"ei_ratio_roi_{i}" for i in range(n_regions)])
    table.insert(0, "sex", np.where(female, "female", "male"))
    table.insert(0, "age_in_years", age)
    return table


def test_robust_wald_matches_statsmodels_wls_hc3() -> None:
    """Given the fitted scale, the mean difference and its sandwich SE are WLS with HC3."""
    table = _cohort(400, 0.08, 1.2, 1, seed=5)
    y = table["ei_ratio_roi_0"].to_numpy()
    age, f = table["age_in_years"].to_numpy(), (table["sex"] == "female").to_numpy()
    res = sex_difference_tests(table, site=None, method="robust_wald").set_index("test")
    X = np.column_stack([np.ones(age.size), SplineBasis.from_data(age, 4)(age), f])
    Z = np.column_stack([np.ones(age.size), SplineBasis.from_data(age, 3)(age), f])
    sigma = fit_location_scale(y[:, None], X, Z).sigma(Z)[:, 0]
    wls = sm.WLS(y, X, weights=1.0 / sigma**2).fit(cov_type="HC3")
    row = res.loc["mu_robust_wald"]
    assert row["effect"] == pytest.approx(wls.params[-1], rel=1e-8)
    assert row["statistic"] == pytest.approx((wls.params[-1] / wls.bse[-1]) ** 2, rel=1e-6)


def test_known_mean_difference_and_sd_ratio_are_recovered_and_covered() -> None:
    """40 regions of 600 people with female - male = 0.1 and SD ratio 1.3."""
    res = sex_difference_tests(_cohort(600, 0.1, 1.3, 40, seed=11), site=None)
    mu = res[res["test"] == "mu_lr"]
    sigma = res[res["test"] == "sigma_lr"]
    assert mu["effect"].mean() == pytest.approx(0.1, abs=0.01)
    assert sigma["effect"].mean() == pytest.approx(1.3, abs=0.03)
    # 95 % intervals: at least 34 of 40 cover the truth (binomial(40, 0.95) >= 34: p > 0.99)
    assert ((mu["ci_low"] <= 0.1) & (mu["ci_high"] >= 0.1)).sum() >= 34
    assert ((sigma["ci_low"] <= 1.3) & (sigma["ci_high"] >= 1.3)).sum() >= 34
    assert mu["significant"].all() and (mu["direction"] == "female > male").all()


def test_fdr_of_the_results_is_statsmodels_bh_per_test() -> None:
    res = sex_difference_tests(_cohort(200, 0.02, 1.0, 30, seed=2), site=None)
    for test, rows in res.groupby("test"):
        reject, adjusted, _, _ = multipletests(rows["p"], alpha=0.05, method="fdr_bh")
        np.testing.assert_allclose(rows["p_fdr"], adjusted, rtol=1e-12, err_msg=test)
        assert (rows["significant"].to_numpy() == reject).all()
    # NaN p-values are left out of m and never significant
    table = pd.DataFrame({"test": "t", "family": "regional", "p": [0.01, np.nan, 0.02, 0.5]})
    out = add_fdr(table)
    _, adjusted, _, _ = multipletests([0.01, 0.02, 0.5], method="fdr_bh")
    np.testing.assert_allclose(out["p_fdr"].dropna(), adjusted)
    assert not out["significant"].iloc[1]


def test_regions_of_another_atlas_are_not_given_dk68_names() -> None:
    """With 100 regional columns, ``ei_ratio_roi_0`` is not ``lh_bankssts``."""
    res = sex_difference_tests(_cohort(120, 0.0, 1.0, 100, seed=3), site=None)
    assert res["region"].isna().all()
    dk = sex_difference_tests(_cohort(120, 0.0, 1.0, 3, seed=3), site=None, regions=DK68_REGIONS[:3])
    assert list(dk.loc[dk["test"] == "mu_lr", "region"]) == list(DK68_REGIONS[:3])
