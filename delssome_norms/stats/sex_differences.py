"""Sex differences in E/I: tests in the median (location) and in the variability (scale).

For every target (``ei_ratio_mean`` and the 68 ``ei_ratio_roi_*`` columns) a Gaussian
location–scale model (:mod:`delssome_norms.stats.location_scale`) is fitted::

    mean    ~ bs(age, mu_df) + female + site          (site: sum-to-zero effects)
    log sd  ~ bs(age, sigma_df) + female [+ site]

and the sex terms are tested with likelihood-ratio tests (or, with ``method="robust_wald"``, Wald
tests with a sandwich covariance that stays valid when the errors are not normal). Variability is
also compared with a Brown–Forsythe test on standardised residuals, adjusted for the scale's age
and site terms (robust to the residuals' shape, which the likelihood-ratio scale test is not). P-values
are corrected with Benjamini–Hochberg within each test, separately for the regional targets and
for the global ones. The age-resolved female − male gap in the median comes from a model with
sex-specific age curves in both mean and scale, with stratified bootstrap bands.

All outputs are tidy :class:`pandas.DataFrame` s.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from delssome_norms.errors import ConvergenceWarning, InvalidInputError
from delssome_norms.stats._chart_lr import penalised_fits
from delssome_norms.stats._cohort import (  # noqa: F401 - NO_COMMON_AGES is re-exported
    NO_COMMON_AGES,
    SITE_COLUMN,
    Cohort,
    cohort_people,
    gap_ages,
    prepare_cohort,
    target_family,
)
from delssome_norms.stats._converged import quiet_fit, require_converged
from delssome_norms.stats._mean_interval import LR_INTERVAL_MAX_DF, lr_interval
from delssome_norms.stats._residual_shape import residual_shape, warn_heavy_tails
from delssome_norms.stats._sex_designs import (  # noqa: F401 - the constants are re-exported
    MIN_PER_SITE_SCALE,
    SMALL_SITE_CAUSE,
    _check_choice,
    _check_options,
    _check_site_sizes,
    _Designs,
    _site_ways,
)
from delssome_norms.stats._sigma_interval import sigma_lr_interval
from delssome_norms.stats.bootstrap import (
    percentile_interval,
    resample_generators,
    stratified_bootstrap_counts,
    weighted_median,
)
from delssome_norms.stats.location_scale import LocationScaleFit, fit_location_scale
from delssome_norms.stats.multiple_testing import add_fdr
from delssome_norms.stats.sex_summary import sex_difference_summary as sex_difference_summary
from delssome_norms.stats.variability import brown_forsythe_adjusted, spread_ratio

if TYPE_CHECKING:
    from delssome_norms.norms import GrowthChart

METHODS = ("lr", "robust_wald")
"""Ways to test the sex terms: likelihood ratio (default) or Wald with sandwich covariance."""
GAP_STATISTICS = ("median", "mean")
"""What :func:`sex_gap` compares between the sexes."""
RESULT_COLUMNS = (
    "target",
    "region",
    "family",
    "test",
    "statistic",
    "df",
    "p",
    "p_fdr",
    "significant",
    "effect_name",
    "effect",
    "ci_low",
    "ci_high",
    "cohens_d",
    "direction",
    "n_female",
    "n_male",
    "model",
)
"""Columns of :func:`sex_difference_tests`, in order."""
UNFIT_NAN = (
    "statistic",
    "effect",
    "ci_low",
    "ci_high",
    "cohens_d",
    "cohens_d_ci_low",
    "cohens_d_ci_high",
)
"""Columns set to NaN in the rows of :func:`sex_difference_tests` whose fits did not converge."""


# ----------------------------------------------------------------------------- per-target tests
def _warn_unconverged(cohort: Cohort, fits: Sequence[LocationScaleFit], scale_site: bool = True) -> None:
    """One :class:`ConvergenceWarning` naming the targets whose fits did not converge, with a cause."""
    bad = np.flatnonzero(~np.logical_and.reduce([fit.converged for fit in fits]))
    if bad.size == 0:
        return
    names = [cohort.targets[k] for k in bad]
    flat = [
        cohort.targets[k]
        for k in bad
        if np.ptp(cohort.y[cohort.female, k]) == 0 or np.ptp(cohort.y[~cohort.female, k]) == 0
    ]
    cause = (
        f"{', '.join(flat[:8])} {'is' if len(flat) == 1 else 'are'} constant within one sex (a "
        "zero sd: the likelihood is unbounded); check those values"
        if flat
        else "e.g. a target constant or nearly so within a site, or sites too small for their "
        "own terms" + (f" (try: {'; '.join(ways)})" if (ways := _site_ways(cohort, scale_site)) else "")
    )
    warnings.warn(
        f"sex_difference_tests: the fits of {len(names)} target(s) did not converge "
        f"({', '.join(names[:8])}{' ...' if len(names) > 8 else ''}); tests that need them have "
        f"p = NaN (column converged = False). Cause: {cause}",
        ConvergenceWarning,
        stacklevel=3,
    )


def _direction(effect: float, null: float) -> str:
    if not np.isfinite(effect) or effect == null:
        return "none"
    return "female > male" if effect > null else "female < male"


def _rows_for_targets(
    cohort: Cohort,
    full: LocationScaleFit,
    full_r: LocationScaleFit,
    no_mu: LocationScaleFit,
    no_sigma: LocationScaleFit,
    sd_resid: np.ndarray,
    bf: tuple[np.ndarray, np.ndarray, np.ndarray, int],
    *,
    i_mu: int,
    i_sigma: int,
    method: str,
    level: float,
    df_resid: int,
    mean_interval: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    sigma_interval: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> list[dict]:
    z = stats.norm.ppf(0.5 + level / 2.0)
    t_q = stats.t.ppf(0.5 + level / 2.0, df_resid)
    n = cohort.y.shape[0]
    # the mean difference: the ML fit of the likelihood ratio, its interval the inverted F-calibrated
    # LR test for "lr"; the ML fit with its sandwich covariance for "robust_wald"
    cov_b = full.robust_cov_beta if method == "robust_wald" else full.cov_beta
    cov_g = full_r.robust_cov_gamma if method == "robust_wald" else full_r.cov_gamma
    # which fits each test needs: the LR tests compare two fits, a Wald test reads the full fit
    # alone, Brown-Forsythe the residuals of the full (REML) fit
    lr = method == "lr"
    ok_mu = full.converged & (no_mu.converged if lr else True)
    ok_sigma = full_r.converged & (no_sigma.converged if lr else True)
    ok_bf = full_r.converged & no_sigma.converged
    bf_stat, bf_p, spread, bf_df = bf
    rows = []
    for k, target in enumerate(cohort.targets):
        base = {
            "target": target,
            "region": cohort.regions[k],
            "family": target_family(target),
            "n_female": cohort.n_female,
            "n_male": cohort.n_male,
            "model": "location_scale",
        }
        b, se_b = full.beta[k, i_mu], np.sqrt(cov_b[k, i_mu, i_mu])
        if mean_interval is None:
            b_lo, b_hi = b - t_q * se_b, b + t_q * se_b
        else:
            # where a profile fit did not converge (rare, tiny sites): the REML Wald t interval
            se_r = np.sqrt(full_r.cov_beta[k, i_mu, i_mu])
            good = mean_interval[2][k]
            b_lo = mean_interval[0][k] if good else full_r.beta[k, i_mu] - t_q * se_r
            b_hi = mean_interval[1][k] if good else full_r.beta[k, i_mu] + t_q * se_r
        g, se_g = full_r.gamma[k, i_sigma], np.sqrt(cov_g[k, i_sigma, i_sigma])
        if method == "lr":
            stat_mu = max(2.0 * (full.loglik[k] - no_mu.loglik[k]), 0.0)
            stat_sigma = max(2.0 * (full_r.loglik[k] - no_sigma.loglik[k]), 0.0)
            # small-sample calibration of the mean test: (n - p) (exp(LR / n) - 1) is exactly
            # F(1, n - p) for a normal linear model with one variance; the q - 1 estimated
            # variance terms take further degrees of freedom (df_resid = n - p - q + 1)
            f_mu = df_resid * np.expm1(stat_mu / n) if ok_mu[k] else np.nan  # diverged: no p
        else:
            stat_mu, stat_sigma = (b / se_b) ** 2, (g / se_g) ** 2
            f_mu = stat_mu
        # Cohen's d: the adjusted difference over the full model's residual sd (residuals of a
        # model without sex, compared between the sexes, lose the part of the difference that
        # age or site terms absorb when sex is confounded with them); se: that of b over the sd,
        # plus the sd's own uncertainty (Hedges & Olkin 1985)
        d = b / sd_resid[k]
        se_d = np.sqrt((se_b / sd_resid[k]) ** 2 + d * d / (2.0 * df_resid))
        d_lo, d_hi = d - z * se_d, d + z * se_d
        rows.append(
            base
            | {
                "test": f"mu_{method}",
                "statistic": stat_mu,
                "df": 1,
                "df_resid": df_resid,
                "p": float(stats.f.sf(f_mu, 1, df_resid)) if ok_mu[k] else np.nan,
                "converged": bool(ok_mu[k]),
                "effect_name": "mean_difference_female_minus_male",
                "effect": b,
                "ci_low": b_lo,
                "ci_high": b_hi,
                "cohens_d": d,
                "cohens_d_ci_low": d_lo,
                "cohens_d_ci_high": d_hi,
                "direction": _direction(b, 0.0),
            }
        )
        ratio = float(np.exp(g))
        # "lr": the inverted REML LR test (its Wald interval where a profile fit did not converge);
        # "robust_wald": the Wald interval of the sandwich variance, as its test
        s_lo, s_hi = float(np.exp(g - z * se_g)), float(np.exp(g + z * se_g))
        if sigma_interval is not None and sigma_interval[2][k]:
            s_lo, s_hi = float(sigma_interval[0][k]), float(sigma_interval[1][k])
        rows.append(
            base
            | {
                "test": f"sigma_{method}",
                "statistic": stat_sigma,
                "df": 1,
                "p": float(stats.chi2.sf(stat_sigma, 1)) if ok_sigma[k] else np.nan,
                "converged": bool(ok_sigma[k]),
                "effect_name": "sigma_ratio_female_over_male",
                "effect": ratio,
                "ci_low": s_lo,
                "ci_high": s_hi,
                "direction": _direction(ratio, 1.0),
            }
        )
        rows.append(
            base
            | {
                "test": "brown_forsythe",
                "statistic": bf_stat[k],
                "df": 1,
                "df_resid": bf_df,
                "p": bf_p[k] if ok_bf[k] else np.nan,
                "converged": bool(ok_bf[k]),
                "effect_name": "spread_ratio_female_over_male",
                "effect": spread[k],
                "ci_low": np.nan,
                "ci_high": np.nan,
                "direction": _direction(spread[k], 1.0),
            }
        )
    return rows


def sex_difference_tests(
    table: pd.DataFrame,
    targets: Sequence[str] | str | None = None,
    *,
    site: str | None = SITE_COLUMN,
    mu_df: int = 4,
    sigma_df: int = 3,
    scale_site: bool = True,
    method: str = "lr",
    alpha: float = 0.05,
    level: float = 0.95,
    exclude_flagged: bool = False,
    regions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Test, per target, whether females and males differ in the mean and in the variability of E/I.

    Parameters
    ----------
    table : DataFrame
        One row per person: ``age_in_years``, ``sex`` (or ``numeric_sex``, female = 1), ``site``
        (unless ``site=None``) and the targets.
    targets : str or sequence of str, optional
        Target columns; default ``ei_ratio_mean`` and every ``ei_ratio_roi_<k>`` column (not
        ``ei_ratio_mean_lo``/``_hi`` or other ``ei_ratio_*`` columns).
    site : str or None
        Site column (fixed, sum-to-zero site effects; default ``site_scanner``, built from
        ``site`` [+ ``scanner``] when absent); ``None`` for a single-site cohort.
    mu_df, sigma_df : int
        Degrees of freedom of the age B-splines in the mean and in the log-sd.
    scale_site : bool
        Include site effects in the log-sd too (default; sites differ in noise).
    method : {"lr", "robust_wald"}
        Likelihood-ratio tests (asymptotically exact for normal errors; the scale test compares
        REML fits, which keeps its size near nominal in small samples, but heavy tails or
        skewness inflate it: see Warns) or Wald tests with sandwich standard errors (robust to
        heavy tails: 5.6-12 % at alpha 0.05 with t3/t5/lognormal noise and 600 people). The
        mean tests are referred to F(1, ``df_resid``), ``df_resid`` = n − p − (q − 1) for p mean
        and q scale parameters: the likelihood ratio through ``df_resid (exp(LR / n) − 1)``
        (exactly F for a normal linear model with one variance), the Wald statistic directly.
        On 2000 null targets (200 cohorts of 60 people at 3 sites, ages uniform 5-90, site effects
        in the mean, sd rising with age) the mean LR test rejected 13.5 % against chi-square(1) at
        alpha 0.05, 8.7 % with this calibration (4 sites: 14.9 %, 9.1 %; 120 people at 3 / 4
        sites: 5.75 % / 5.15 %); the REML scale test 5.4 % (4 sites 4.7 %; the ML one 11.1 %,
        12.3 %; 120 people 5.0 % / 5.7 %). The sandwich needs larger cohorts, its scale test
        most: at 4 sites the robust Wald tests rejected 11 % (mean) and 38 % (scale) of null
        cohorts of 60 people, 6.7 % and 9.3 % at 200.
    alpha : float
        FDR level for ``significant``.
    level : float
        Confidence level of the intervals.
    exclude_flagged : bool
        Leave out the people whose E/I fit is flagged as poor (``collect``'s ``fit_flagged``, then
        required), with an ``InputWarning`` saying how many; by default they are kept and named in
        one (as by :meth:`GrowthChart.fit <delssome_norms.norms.GrowthChart.fit>`).
    regions : sequence of str, optional
        Names of the table's regions in column order (``regions[k]`` names ``ei_ratio_roi_<k>``:
        e.g. the ``region`` column of its ``<stem>.regions.csv``), for the ``region`` column.
        Default: the names the table carries in ``attrs`` (``EIResult.to_table``,
        ``results_table``), else DK68 names for exactly the 68 columns ``ei_ratio_roi_0..67``,
        else None (a table of one hemisphere or another atlas is never given DK68 names).

    Returns
    -------
    DataFrame
        Three rows per target, tests ``mu_<method>`` (effect: mean difference female − male, in
        the target's units; ``cohens_d``: that difference over the residual sd of the full model,
        so that age or site terms confounded with sex do not shrink it), ``sigma_<method>``
        (effect: ratio of the model sd, female / male) and ``brown_forsythe`` (effect: ratio of the
        mean absolute deviation of the full model's residuals, each divided by the age and site
        part of its fitted sd; test: sex in a regression of the absolute deviations of residuals
        standardised without sex in the scale on the scale's age and site terms, see
        :func:`~delssome_norms.stats.variability.brown_forsythe_adjusted`). Columns
        :data:`RESULT_COLUMNS` plus ``cohens_d_ci_low``/``cohens_d_ci_high`` and
        ``resid_skewness``/``resid_excess_kurtosis`` (of the target's standardised residuals).
        ``p_fdr``/``significant`` are BH-adjusted within each test and family (``"regional"`` for
        ``ei_ratio_roi_*``, ``"global"`` otherwise). ``df_resid`` is the denominator degrees of
        freedom of the F p-value (mean tests; Brown–Forsythe: n − the scale's age and site terms
        − 2). With ``method="lr"`` the mean difference is the ML estimate and its
        ``level`` interval inverts the F-calibrated LR test (the differences it does not reject;
        it then excludes 0 exactly when ``p < 1 - level``). Measured coverage of the 95 %
        interval (4 sites, site- and sex-specific scale, 2000 targets per size): 90.0 % at
        n = 60, 94.2 % at 120, 94.3 % at 300 (the REML Wald t interval it replaces: 84.6 %,
        91.9 %, 92.9 %). Where a profile fit does not converge the REML Wald t interval is
        given instead, and from :data:`LR_INTERVAL_MAX_DF` residual degrees of freedom on the
        ML Wald t interval. The sd ratio's interval (``sigma_lr``) inverts the REML LR test, so
        it excludes 1 exactly when ``p < 1 - level`` (:mod:`~delssome_norms.stats._sigma_interval`;
        95 % coverage 94.6 % / 95.3 % at n = 60, 3 / 4 sites, 95.0 % / 94.3 % at 120, design
        above; the ML-information Wald interval it replaces, still given where a profile fit does
        not converge: 87 % at 60 and 3 sites, 91 % at 120 and 4); ``sigma_robust_wald`` has the
        Wald interval of its sandwich variance, as its test. ``converged`` says whether the fits
        a test needs converged (both fits of a likelihood ratio, the full fit of a Wald test, the
        REML fits with and without the sex term of the scale for Brown-Forsythe); where they did
        not, ``p``, ``statistic``, the effect, its
        interval and ``cohens_d`` are NaN, ``direction`` is ``"none"`` and the test is never
        ``significant``.

    Warns
    -----
    HeavyTailWarning
        With ``method="lr"``, when at least 10 % of the targets have standardised residuals with
        excess kurtosis above 1 or skewness beyond ±1: there ``sigma_lr`` rejects too often
        (10 % of true nulls at excess kurtosis 1, 25-38 % with t5 or t3 noise, at alpha 0.05;
        :mod:`delssome_norms.stats._residual_shape`), while ``brown_forsythe`` stays near 5 %.
    ConvergenceWarning
        Naming the targets whose fits did not converge.

    Raises
    ------
    InvalidInputError
        A bad table or option; with ``scale_site``, a site with fewer than
        :data:`MIN_PER_SITE_SCALE` people.

    Examples
    --------
    >>> res = sex_difference_tests(cohort_table)  # doctest: +SKIP
    >>> res.query("test == 'mu_lr' and significant")[["region", "effect", "p_fdr"]]  # doctest: +SKIP
    """
    _check_options(mu_df, sigma_df, alpha, level)
    _check_choice(method, METHODS, "method")
    cohort = prepare_cohort(cohort_people(table, exclude_flagged), targets, site=site, regions=regions)
    _check_site_sizes(cohort, scale_site)
    _warn_disjoint_ages(cohort)
    designs = _Designs.from_cohort(cohort, mu_df, sigma_df)
    age, female, site_idx = cohort.age, cohort.female, cohort.site
    X_full = designs.mean(age, female, site_idx, sex=True)
    X_nosex = designs.mean(age, female, site_idx, sex=False)
    Z_full = designs.scale(age, female, site_idx, sex=True, site_terms=scale_site)
    Z_nosex = designs.scale(age, female, site_idx, sex=False, site_terms=scale_site)
    i_sex = 1 + designs.basis_mu.df
    i_sex_sigma = 1 + designs.basis_sigma.df
    df_resid = len(cohort.y) - X_full.shape[1] - (Z_full.shape[1] - 1)
    if df_resid < 5:
        raise InvalidInputError(
            f"{len(cohort.y)} people are too few for {X_full.shape[1]} mean and {Z_full.shape[1]} "
            "scale parameters (fewer than 5 degrees of freedom left); lower mu_df/sigma_df or "
            "pass scale_site=False",
            "table",
        )
    with warnings.catch_warnings():  # one warning below, naming the targets
        warnings.simplefilter("ignore", ConvergenceWarning)
        full = fit_location_scale(cohort.y, X_full, Z_full)
        # (the reduced fits' log-likelihoods are used, not their sandwich covariances)
        no_mu = fit_location_scale(cohort.y, X_nosex, Z_full, robust=False)
        # the scale tests compare REML fits (same mean design): ML variances ignore the mean
        # parameters, which makes the ML likelihood ratio of a scale term anti-conservative when
        # the people per parameter are few (docs: Verbyla 1993)
        full_r = fit_location_scale(cohort.y, X_full, Z_full, reml=True)
        no_sigma = fit_location_scale(cohort.y, X_full, Z_nosex, reml=True, robust=False)
    _warn_unconverged(cohort, (full, no_mu, full_r, no_sigma), scale_site)
    n, p = X_full.shape
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged fit: its rows are NaN below
        sd_resid = np.sqrt(np.sum((cohort.y - full.mean(X_full)) ** 2, axis=0) / (n - p))
        # Brown-Forsythe: the spread ratio compares the sexes' full-model residuals, each divided
        # by the age and site part of the fitted sd; the sex term, fitted beside those (so they do
        # not absorb the part of the difference that goes with age or site when sex is confounded
        # with them: the ratio was 1.09 for a true 1.2), is left out of the divisor. The test is
        # that of sex in a regression of the absolute deviations of the residuals standardised
        # under the null (no sex in the scale) on the scale's age and site terms and sex, which
        # allows for that overlap (the two-group test of the former residuals rejected 12-29 % of
        # null cohorts so confounded, of the latter 0.7-2.4 %; this one 4.4-5.8 %)
        resid = cohort.y - full_r.mean(X_full)
        no_sex = full_r.gamma.copy()
        no_sex[:, i_sex_sigma] = 0.0
        spread = spread_ratio(resid / np.exp(Z_full @ no_sex.T), female)
        null_std = (cohort.y - no_sigma.mean(X_full)) / no_sigma.sigma(Z_nosex)
        bf_stat, bf_p, bf_df = brown_forsythe_adjusted(null_std, female, Z_nosex)
        skew, kurt = residual_shape(resid / full_r.sigma(Z_full))
    rows = _rows_for_targets(
        cohort,
        full,
        full_r,
        no_mu,
        no_sigma,
        sd_resid,
        (bf_stat, bf_p, spread, bf_df),
        i_mu=i_sex,
        i_sigma=i_sex_sigma,
        method=method,
        level=level,
        df_resid=df_resid,
        mean_interval=lr_interval(
            cohort.y, female, full, X_nosex, Z_full, i_mu=i_sex, level=level, df_resid=df_resid
        )
        if method == "lr" and df_resid < LR_INTERVAL_MAX_DF
        else None,
        sigma_interval=sigma_lr_interval(
            cohort.y, female, full_r, no_sigma, X_full, Z_nosex, i_sigma=i_sex_sigma, level=level
        )
        if method == "lr"
        else None,
    )
    out = pd.DataFrame(rows)
    # a fit that did not converge has no test, and no estimate either: NaN, not a precise-looking
    # number (a diverged scale gave a mean difference of 2e-18 with interval [-9e-16, 8.7e-16])
    unfit = ~out["converged"].astype(bool)
    out.loc[unfit, [c for c in UNFIT_NAN if c in out.columns]] = np.nan
    out.loc[unfit, "direction"] = "none"
    out["resid_skewness"] = out["target"].map(dict(zip(cohort.targets, skew)))
    out["resid_excess_kurtosis"] = out["target"].map(dict(zip(cohort.targets, kurt)))
    if method == "lr":
        converged = full_r.converged & no_sigma.converged
        keep = np.flatnonzero(converged)
        warn_heavy_tails(
            [cohort.targets[k] for k in keep],
            skew[keep],
            kurt[keep],
            "sigma_lr",
            of_total=len(cohort.targets),
        )
    out = add_fdr(out, by=("test", "family"), alpha=alpha)
    cols = [c for c in RESULT_COLUMNS if c in out.columns]
    rest = [c for c in out.columns if c not in cols]
    return out[cols + rest].reset_index(drop=True)


# ----------------------------------------------------------------------------- chart-based tests
def _coef(chart: GrowthChart, param: str, column: str = "numeric_sex1") -> np.ndarray:
    k = list(chart.family_.params).index(param)
    names = chart.designs_[k].column_names()
    return chart.coef_[param][:, names.index(column)]


def chart_sex_tests(
    table: pd.DataFrame,
    targets: Sequence[str] | str | None = None,
    *,
    family: str = "SHASHo2",
    mu_df: int = 4,
    sigma_df: int = 3,
    site: str | None = SITE_COLUMN,
    alpha: float = 0.05,
    exclude_flagged: bool = False,
    regions: Sequence[str] | None = None,
    **chart_kwargs: Any,
) -> pd.DataFrame:
    """Likelihood-ratio tests of sex in mu and in sigma of the growth charts (GAMLSS).

    The full :class:`~delssome_norms.norms.GrowthChart` (sex in mu and sigma) is fitted to all
    targets at once; the models without sex in mu and without sex in sigma are then fitted with
    the site random-effect penalties held at the full chart's estimates, so that all three
    maximise the same penalised log-likelihood ``pl = loglik - sum_k lambda_k / 2 ||gamma_k||^2``
    and the reduced fits are nested in the full one. ``LR = 2 (pl_full - pl_reduced)`` is referred
    to chi² with 1 degree of freedom (one fixed-effect column dropped; the change in the effective
    parameter count is reported as ``edf_difference``). Comparing the unpenalised log-likelihoods
    of three fits that each re-estimate their penalties (as before) is not a likelihood ratio of
    nested models: with null cohorts of 400 people at 8 sites 17 % of its mu statistics were
    negative (clipped to 0) and its upper tail was heavier than chi²(1). With the penalties held,
    no statistic is negative and the rejection rates at alpha 0.05 were 4.7 % (mu) and 4.3 %
    (sigma) over 300 such cohorts (6.7 % and 5.3 % over another 300). Slower than
    :func:`sex_difference_tests` but uses the charts' own family (e.g. SHASHo2 with skewness and
    kurtosis), so the two are a cross-check of each other.

    Parameters
    ----------
    table, targets, exclude_flagged, regions : see :func:`sex_difference_tests`.
    family, mu_df, sigma_df : chart family and spline df (docs/science.md §7).
    site : str or None
        Site column of the charts' random site effects (``None``: no site effects).
    alpha : float
        FDR level.
    **chart_kwargs
        Other :class:`~delssome_norms.norms.GrowthChart` arguments (``max_iter``, ``tol``, ...).

    Returns
    -------
    DataFrame
        Two rows per target, tests ``mu_chart_lr`` (effect: the sex coefficient of mu, female −
        male, in the target's units) and ``sigma_chart_lr`` (effect: ``exp`` of the sex coefficient
        of log sigma, the sigma ratio female / male); columns :data:`RESULT_COLUMNS` (no CIs: the
        charts give no covariance) plus ``edf_difference`` and ``converged`` (all fits
        converged; otherwise ``p`` is NaN).
    """
    from delssome_norms.norms import GrowthChart  # fitted lazily: torch is only needed here

    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must lie in (0, 1), got {alpha}", "alpha")
    table = cohort_people(table, exclude_flagged)  # the charts are fitted to these rows too
    cohort = prepare_cohort(table, targets, site=site, regions=regions)
    targets = list(cohort.targets)
    common = {"family": family, "mu_df": mu_df, "sigma_df": sigma_df} | chart_kwargs
    if site is None:
        common["random_sites"] = ()
    else:
        common["site_column"] = site
    full = GrowthChart(**common).fit(table, targets=targets)
    fits = penalised_fits(full, table, targets)
    pl_full, edf_full, ok_full = fits["full"]
    ok_full = ok_full & full.converged_
    rows = []
    for param in ("mu", "sigma"):
        pl_red, edf_red, ok_red = fits[param]
        lr = np.maximum(2.0 * (pl_full - pl_red), 0.0)
        ok = ok_full & ok_red
        coef = _coef(full, param)
        effect = coef if param == "mu" else np.exp(coef)
        for k, target in enumerate(targets):
            rows.append(
                {
                    "target": target,
                    "region": cohort.regions[k],
                    "family": target_family(target),
                    "test": f"{param}_chart_lr",
                    "statistic": float(lr[k]),
                    "df": 1,
                    "p": float(stats.chi2.sf(lr[k], 1)) if ok[k] else np.nan,
                    "effect_name": "mu_difference_female_minus_male"
                    if param == "mu"
                    else "sigma_ratio_female_over_male",
                    "effect": float(effect[k]),
                    "ci_low": np.nan,
                    "ci_high": np.nan,
                    "cohens_d": np.nan,
                    "direction": _direction(float(effect[k]), 0.0 if param == "mu" else 1.0),
                    "n_female": cohort.n_female,
                    "n_male": cohort.n_male,
                    "model": f"growth_chart_{family}",
                    "edf_difference": float(edf_full[k] - edf_red[k]),
                    "converged": bool(ok[k]),
                }
            )
    out = add_fdr(pd.DataFrame(rows), by=("test", "family"), alpha=alpha)
    cols = [c for c in RESULT_COLUMNS if c in out.columns]
    return out[cols + [c for c in out.columns if c not in cols]].reset_index(drop=True)


# ----------------------------------------------------------------------------- age-resolved gap
def _gap_curves(
    fit: LocationScaleFit,
    y: np.ndarray,
    X: np.ndarray,
    Z: np.ndarray,
    weights: np.ndarray,
    female: np.ndarray,
    grid: dict[str, np.ndarray],
    statistic: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Female and male curves on the grid for each fitted column: arrays of shape (n_ages, k)."""
    curves, sds = {}, {}
    for sex, is_f in (("female", True), ("male", False)):
        centre = fit.mean(grid[f"X_{sex}"])
        sd = fit.sigma(grid[f"Z_{sex}"])
        if statistic == "median":
            rows = female if is_f else ~female
            std = (y[rows] - fit.mean(X[rows])) / fit.sigma(Z[rows])
            centre = centre + sd * weighted_median(std, weights[rows])[None, :]
        curves[sex], sds[sex] = centre, sd
    return curves["female"], curves["male"], sds["female"], sds["male"]


def _warn_disjoint_ages(cohort: Cohort) -> None:
    """Warn when the two sexes' age ranges do not overlap: sex is then confounded with age, and
    a "sex" effect is whatever the shared age curve fails to fit where one range meets the other."""
    try:
        gap_ages(cohort, None)
    except InvalidInputError as err:
        warnings.warn(
            f"sex_difference_tests: {err.problem.split(', so ')[0]}: sex is confounded with age, "
            "so the sex effects compare people of different ages, not the sexes; use a table in "
            "which both sexes span the ages to compare",
            UserWarning,
            stacklevel=3,
        )


def sex_gap(
    table: pd.DataFrame,
    target: str = "ei_ratio_mean",
    *,
    ages: Sequence[float] | np.ndarray | None = None,
    site: str | None = SITE_COLUMN,
    mu_df: int = 4,
    sigma_df: int = 3,
    scale_site: bool = True,
    statistic: str = "median",
    n_boot: int = 500,
    level: float = 0.95,
    seed: int | None = 0,
    batch_size: int = 100,
    progress: Callable[[int], None] | None = None,
    exclude_flagged: bool = False,
    regions: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Female − male gap in the median (or mean) of a target across age, with bootstrap bands.

    A location–scale model with a separate age curve per sex in both mean and log-sd (plus site
    effects) is fitted; the median of each sex at age ``a`` is ``mean_sex(a) + sd_sex(a) * m_sex``,
    where ``m_sex`` is the median of that sex's standardised residuals (so skewness is allowed for).
    Curves are population-level (average site). Bands are pointwise percentile intervals from
    ``n_boot`` resamples of people, stratified by sex and site, with knots held fixed.

    The gap is given only at ages that both sexes cover (see ``ages``). The bands carry the
    sampling variability of the fitted curves, not their smoothing bias: a gap that changes with
    age faster than ``bs(age, mu_df)`` can follow is flattened, and the band can miss it where it
    peaks (a gap peaking at 60 years, sd 12 years, 1000 people: 52 % coverage of the 95 % band at
    the peak with ``mu_df=4``, 97.5 % with ``mu_df=8``). Raise ``mu_df`` when the gap may change
    sharply with age.

    Parameters
    ----------
    table : DataFrame
        As for :func:`sex_difference_tests`.
    target : str
        One target column.
    ages : array-like, optional
        Age grid (years) within the ages that both sexes cover (from the larger of the two
        youngest ages to the smaller of the two oldest); default every whole year in that overlap.
        Outside it one sex has no data and its curve would be an extrapolation of its spline (with
        females aged 5-40 and males 5-90 the female curve reached -5 at 86 and gaps of -0.9 at 61
        were "significant"), so such ages are refused, as a chart refuses ages outside its range.
    site, mu_df, sigma_df, scale_site, exclude_flagged, regions : see
        :func:`sex_difference_tests` (``regions`` names the target's region in the ``region``
        column, which :func:`~delssome_norms.plotting.plot_sex_gap` labels the line with).
    statistic : {"median", "mean"}
    n_boot : int
        Bootstrap resamples: 0 for none (bands are NaN), else at least 2 (percentile ends of
        a 95 % band need about 1000 to be stable; Efron & Tibshirani 1993, ch. 19).
    level : float
        Band coverage (pointwise).
    seed : int or None
        Seed of the bootstrap.
    batch_size : int
        Resamples fitted together, at least 1 (memory ~ n_people x batch_size x 8 bytes per
        array); it does not change the resamples, only the time and memory.
    progress : callable, optional
        Called with the number of resamples fitted after each batch (e.g. ``tqdm.update``).

    Returns
    -------
    DataFrame
        One row per age (of ``ages``, or every whole year that both sexes cover): ``target``,
        ``age_in_years``, ``statistic``, ``gap`` (female − male),
        ``ci_low``, ``ci_high``, ``se`` (bootstrap sd), ``std_gap`` (gap / sqrt of the mean of the
        two sexes' variances at that age), ``female``, ``male`` (the two curves),
        ``excludes_zero`` (the band lies on one side of 0), ``level``, ``n_boot`` (resamples
        used: those whose fit did not converge are left out, with a :class:`ConvergenceWarning`).

    Raises
    ------
    InvalidInputError
        A bad table or option, ``ages`` outside the ages both sexes cover, two sexes whose age
        ranges do not overlap, or a fit to the whole table that does not converge (too few
        people of one sex for its own curves: e.g. 10 women among 200 men).
    """
    _check_options(mu_df, sigma_df, 0.05, level)
    _check_choice(statistic, GAP_STATISTICS, "statistic")
    if not isinstance(target, str):
        raise InvalidInputError(f"target must be one column name, got {target!r}", "target")
    for name, value, least in (("n_boot", n_boot, 0), ("batch_size", batch_size, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise InvalidInputError(f"{name} must be an integer >= {least}, got {value!r}", name)
    if n_boot == 1:
        raise InvalidInputError("n_boot must be 0 (no bands) or at least 2, got 1", "n_boot")
    cohort = prepare_cohort(cohort_people(table, exclude_flagged), [target], site=site, regions=regions)
    _check_site_sizes(cohort, scale_site)
    designs = _Designs.from_cohort(cohort, mu_df, sigma_df)
    grid_ages = gap_ages(cohort, ages)
    age, female, site_idx = cohort.age, cohort.female, cohort.site
    X = designs.mean(age, female, site_idx, interaction=True)
    Z = designs.scale(age, female, site_idx, interaction=True, site_terms=scale_site)
    grid = {}
    for sex, value in (("female", True), ("male", False)):
        fem = np.full(grid_ages.size, value)
        grid[f"X_{sex}"] = designs.mean(grid_ages, fem, None, interaction=True)
        grid[f"Z_{sex}"] = designs.scale(grid_ages, fem, None, interaction=True, site_terms=scale_site)
    y = cohort.y
    ones = np.ones_like(y)
    with quiet_fit():  # a fit that does not converge is refused below, with its cause
        fit = fit_location_scale(y, X, Z)
    require_converged(
        fit,
        [target],
        what="sex_gap: the model with its own age curves per sex",
        cause=f"{cohort.n_female} female and {cohort.n_male} male people are too few (or too "
        f"unevenly spread over age) for each sex's own curves with mu_df={mu_df}, "
        f"sigma_df={sigma_df}: "
        + "; ".join(
            ["use more people of each sex", "lower mu_df/sigma_df (3)", *_site_ways(cohort, scale_site)]
        ),
    )
    f_curve, m_curve, f_sd, m_sd = _gap_curves(fit, y, X, Z, ones, female, grid, statistic)
    gap = (f_curve - m_curve)[:, 0]
    std_gap = gap / np.sqrt(0.5 * (f_sd**2 + m_sd**2))[:, 0]

    ci_low = ci_high = se = np.full(grid_ages.size, np.nan)
    n_used = 0
    if n_boot > 0:
        generators = resample_generators(seed, n_boot)  # the same resamples for any batch_size
        strata = 2 * site_idx + female.astype(int)
        boot = []
        for start in range(0, n_boot, batch_size):
            b = min(batch_size, n_boot - start)
            counts = stratified_bootstrap_counts(strata, b, generators[start : start + b])
            yb = np.repeat(y, b, axis=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                fb = fit_location_scale(yb, X, Z, counts)
            fc, mc, _, _ = _gap_curves(fb, yb, X, Z, counts, female, grid, statistic)
            # a resample whose fit did not converge (a site x sex cell drawn with too few distinct
            # people) gives NaN or meaningless curves: it is left out, not propagated into the bands
            keep = fb.converged & np.all(np.isfinite(fc - mc), axis=0)
            boot.append((fc - mc)[:, keep])
            if progress is not None:
                progress(b)
        samples = np.concatenate(boot, axis=1)
        n_used = samples.shape[1]
        if n_used < n_boot:
            warnings.warn(
                f"sex_gap: {n_boot - n_used} of {n_boot} bootstrap fits did not converge and were "
                "left out of the bands"
                + ("; fewer than 2 are left, so the bands are NaN" if n_used < 2 else ""),
                ConvergenceWarning,
                stacklevel=2,
            )
        if n_used >= 2:
            ci_low, ci_high = percentile_interval(samples, level, axis=1)
            se = samples.std(axis=1, ddof=1)
    return pd.DataFrame(
        {
            "target": target,
            "region": cohort.regions[0],
            "age_in_years": grid_ages,
            "statistic": statistic,
            "gap": gap,
            "ci_low": ci_low,
            "ci_high": ci_high,
            "se": se,
            "std_gap": std_gap,
            "female": f_curve[:, 0],
            "male": m_curve[:, 0],
            "excludes_zero": (ci_low > 0) | (ci_high < 0),
            "level": level,
            "n_boot": n_used,
        }
    )
