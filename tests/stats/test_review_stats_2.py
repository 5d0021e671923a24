"""Second review of the sex-difference statistics: degrees of freedom, edge cases, batched work."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from delssome_norms.errors import ConvergenceWarning, InvalidInputError
from delssome_norms.stats import (
    SplineBasis,
    fit_location_scale,
    location_scale,
    sex_difference_tests,
    sex_gap,
)


def _cohort(n: int = 160, n_regions: int = 2, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.uniform(5, 90, n)
    female = np.arange(n) % 2 == 0
    sd = 0.1 * np.where(female, 1.3, 1.0)
    rois = (1.0 - 0.003 * age)[:, None] + sd[:, None] * rng.standard_normal((n, n_regions))
    table = pd.DataFrame(rois, columns=[f"ei_ratio_roi_{i}" for i in range(n_regions)])
    table.insert(0, "site", np.where(rng.random(n) < 0.5, "A", "B"))
    table.insert(0, "sex", np.where(female, "female", "male"))
    table.insert(0, "age_in_years", age)
    return table


def test_brown_forsythe_rows_give_their_denominator_df() -> None:
    """The Brown-Forsythe F has (1, n - rank) degrees of freedom: n less the scale's intercept,
    age and site columns and sex (a regression of the absolute deviations)."""
    table = _cohort()
    bf = sex_difference_tests(table).query("test == 'brown_forsythe'")
    assert (bf["df_resid"] == len(table) - 6).all()
    np.testing.assert_allclose(
        bf["p"], stats.f.sf(bf["statistic"], 1, bf["df_resid"]), rtol=1e-10, atol=0
    )


def test_hat_diagonal_is_the_statsmodels_wls_leverage() -> None:
    """The batched quadratic forms x_i' (X' W X)^-1 x_i w_i are WLS leverages (statsmodels)."""
    rng = np.random.default_rng(4)
    n = 150
    age = rng.uniform(5, 90, n)
    f = (rng.random(n) < 0.5).astype(float)
    X = np.column_stack([np.ones(n), SplineBasis.from_data(age, 4)(age), f])
    w = np.exp(rng.normal(0, 0.3, (n, 3)))
    inv = np.linalg.inv(np.einsum("ik,ip,iq->kpq", w, X, X))
    hat = w * location_scale._quad_forms(location_scale._outer(X), inv)
    for k in range(3):
        root = np.sqrt(w[:, k])
        ols = sm.OLS(rng.normal(size=n) * root, X * root[:, None]).fit()
        ref = ols.get_influence().hat_matrix_diag  # leverage of WLS = OLS on sqrt(w)-scaled rows
        np.testing.assert_allclose(hat[:, k], ref, rtol=1e-10)


def test_a_reml_fit_builds_the_mean_information_once_per_log_sd(monkeypatch) -> None:
    """The beta step, the REML term and the leverage of one log-sd share X' W X (was 4 per step)."""
    table = _cohort(300, 3, seed=2)
    y = table.filter(like="ei_ratio").to_numpy()
    age, f = table["age_in_years"].to_numpy(), (table["sex"] == "female").to_numpy(float)
    X = np.column_stack([np.ones(age.size), SplineBasis.from_data(age, 4)(age), f])
    Z = np.column_stack([np.ones(age.size), SplineBasis.from_data(age, 3)(age), f])
    reference = fit_location_scale(y, X, Z, reml=True)
    calls = []
    original = location_scale._gram

    def counting(A, w, outer=None):
        calls.append(A.shape[1])
        return original(A, w, outer)

    monkeypatch.setattr(location_scale, "_gram", counting)
    fit = fit_location_scale(y, X, Z, reml=True)
    n_mean = calls.count(X.shape[1])  # Gram matrices of X (6 columns; Z has 5)
    # one per accepted step, one per step-halving trial, plus the start and the sandwich
    assert n_mean <= 2 * fit.n_iter + 6
    np.testing.assert_array_equal(fit.gamma, reference.gamma)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": -3}, "batch_size"),
        ({"n_boot": 2.5}, "n_boot"),
        ({"n_boot": 1}, "n_boot"),
    ],
)
def test_sex_gap_refuses_bad_resampling_options_clearly(kwargs, name) -> None:
    with pytest.raises(InvalidInputError, match=name):
        sex_gap(_cohort(), "ei_ratio_roi_0", **kwargs)


def test_empty_target_list_is_refused_clearly() -> None:
    with pytest.raises(InvalidInputError, match="targets is empty"):
        sex_difference_tests(_cohort(), targets=[])


def test_a_target_constant_within_one_sex_is_named_in_one_warning() -> None:
    """A zero female sd makes the likelihood unbounded: its model tests are NaN, and the one
    warning names the target and the cause (before: three anonymous "1 of 3 column(s)")."""
    table = _cohort(n_regions=3)
    table.loc[table["sex"] == "female", "ei_ratio_roi_1"] = 1.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = sex_difference_tests(table)
    conv = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(conv) == 1
    assert "ei_ratio_roi_1" in str(conv[0].message) and "constant within one sex" in str(conv[0].message)
    bad = res[(res["target"] == "ei_ratio_roi_1") & res["test"].isin(["mu_lr", "sigma_lr"])]
    assert bad["p"].isna().all() and not bad["significant"].any()
    good = res[res["target"] != "ei_ratio_roi_1"]
    assert good["p"].notna().all()
