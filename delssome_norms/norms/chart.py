"""Lifespan growth charts of E/I: the :class:`GrowthChart` estimator (docs/science.md §7).

A chart is one GAMLSS model per target (the mean cortical E/I ratio and each region), all fitted
together::

    mu    ~ bs(age, df = mu_df)    + sex + random(site)
    sigma ~ bs(age, df = sigma_df) + sex + random(site)
    nu ~ 1, tau ~ 1

Population curves use the fixed effects only (site term dropped). Scoring a person gives
``centile = F(y | age, sex, own site)``, ``z = Phi^-1(centile)`` and the harmonised value
``F^-1(centile | age, sex, no site)``. Sites that the chart has not seen get the population
prediction with a warning (the reference code's behaviour); :meth:`GrowthChart.adapt` estimates a
new site's offsets from its controls instead (Bethlehem et al. 2022).

Input tables are pandas DataFrames with ``age_in_years``, ``numeric_sex`` (1 = female) and/or
``sex`` (female/male/f/m), a site column (default ``site_scanner``) and one column per target.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import warnings
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import special

from delssome_norms.errors import (
    ConvergenceWarning,
    InputWarning,
    InvalidInputError,
    NotFittedError,
)
from delssome_norms.io import check_ages, file_sha256, normalise_sex, write_arrays, write_json
from delssome_norms.norms.design import ParameterDesign, ParameterTerms, encode_sites
from delssome_norms.norms.distributions import FAMILIES, Family, get_family
from delssome_norms.norms.fitting import fit_gamlss, fit_site_offsets
from delssome_norms.norms.rs import fit_gamlss_rs

FORMAT_VERSION = 1
"""Schema version of a saved chart folder (``chart.json`` + ``arrays.npz``)."""
CENTILES: tuple[float, ...] = (2.5, 5.0, 25.0, 50.0, 75.0, 95.0, 97.5)
"""Centiles (percent) of the population curves, as in the reference code."""
GRID_STEP = 0.1
"""Age step (years) of the population curves."""
MEAN_TARGET = "ei_ratio_mean"
REGION_PREFIX = "ei_ratio_roi_"
FLAG_UNSEEN_SITE = "unseen_site"
FLAG_AGE = "age_out_of_range"
FLAG_MISSING = "missing_value"
SCORE_CHUNK = 8192
"""People scored per block (blocks run in a few threads; numpy releases the GIL)."""
MIN_OBS_PER_PARAMETER = 5
"""A target needs at least this many observations per estimated parameter."""


# ---------------------------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------------------------
def _rows(idx, limit: int = 5) -> str:
    """Row numbers for messages, 0-based data rows as in :mod:`delssome_norms.io` messages."""
    idx = [int(i) for i in idx]
    more = f" (and {len(idx) - limit} more)" if len(idx) > limit else ""
    return ", ".join(map(str, idx[:limit])) + more


def _sex_labels(values: pd.Series, name: str) -> np.ndarray:
    """normalise_sex on the distinct values only (fast for long tables), row-exact on errors."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    try:
        labels = normalise_sex(list(uniques), name)
    except InvalidInputError:
        normalise_sex(values.tolist(), name)  # raises with the row numbers
        raise
    return np.asarray(labels, dtype=object)[codes].astype(str)


def table_sex(table: pd.DataFrame, source: str) -> np.ndarray:
    """Female indicator (1 = female, 0 = male) from ``numeric_sex`` and/or ``sex``.

    When both columns are present they must agree.

    Returns
    -------
    ndarray of float64, shape (n,)
    """
    labels = None
    if "numeric_sex" in table.columns:
        labels = _sex_labels(table["numeric_sex"], f"{source}: column numeric_sex")
    if "sex" in table.columns:
        from_sex = _sex_labels(table["sex"], f"{source}: column sex")
        if labels is not None:
            differ = np.flatnonzero(from_sex != labels)
            if differ.size:
                raise InvalidInputError(
                    f"columns sex and numeric_sex disagree in row(s) {_rows(differ)} "
                    f"(numeric_sex: 1 = female, 0 = male)",
                    source,
                )
        labels = from_sex
    if labels is None:
        raise InvalidInputError("missing column 'numeric_sex' (1 = female) or 'sex'", source)
    return (labels == "female").astype(np.float64)


def table_ages(table: pd.DataFrame, source: str) -> np.ndarray:
    """Ages in years from ``age_in_years`` (present, numeric, 0 to 120)."""
    if "age_in_years" not in table.columns:
        raise InvalidInputError("missing column 'age_in_years'", source)
    return check_ages(table["age_in_years"].tolist(), f"{source}: column age_in_years")


def table_sites(table: pd.DataFrame, site_column: str, source: str, required: bool) -> np.ndarray | None:
    """Site labels (str) from ``site_column``; ``site_scanner`` may be built from site + scanner."""
    if site_column in table.columns:
        values = table[site_column]
    elif site_column == "site_scanner" and "site" in table.columns:
        values = table["site"].astype(str)
        if "scanner" in table.columns:
            values = values + "_" + table["scanner"].astype(str)
    elif required:
        raise InvalidInputError(
            f"missing site column {site_column!r}; name another column with --site-column "
            f"(site_column=...) or fit without site terms",
            source,
        )
    else:
        return None
    missing = np.flatnonzero(values.isna().to_numpy())
    if missing.size and required:
        raise InvalidInputError(f"column {site_column} is empty in row(s) {_rows(missing)}", source)
    out = values.astype(str).to_numpy(dtype=object)
    out[missing] = ""
    return out


def default_targets(columns: Sequence[str]) -> list[str]:
    """``ei_ratio_mean`` and every ``ei_ratio_roi_*`` column, in table order."""
    out = [c for c in columns if c == MEAN_TARGET]
    out += [c for c in columns if str(c).startswith(REGION_PREFIX)]
    return out


def table_targets(table: pd.DataFrame, targets: Sequence[str], source: str) -> np.ndarray:
    """Target values as float64 (N, T); NaN for empty cells; errors for text or infinities."""
    missing = [t for t in targets if t not in table.columns]
    if missing:
        raise InvalidInputError(
            f"target column(s) {', '.join(missing)} not found; table has "
            f"{', '.join(map(str, table.columns[:12]))}{' ...' if len(table.columns) > 12 else ''}",
            source,
        )
    block = table[list(targets)]
    if all(
        pd.api.types.is_numeric_dtype(dt) and not pd.api.types.is_bool_dtype(dt) for dt in block.dtypes
    ):
        out = block.to_numpy(dtype=np.float64, na_value=np.nan)
        if not np.isinf(out).any():
            return out
    out = np.empty((len(table), len(targets)))
    for j, t in enumerate(targets):
        col = table[t]
        vals = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.flatnonzero(np.isnan(vals) & col.notna().to_numpy())
        if bad.size:
            raise InvalidInputError(
                f"column {t} has non-numeric value(s) in row(s) {_rows(bad)}", source
            )
        inf = np.flatnonzero(np.isinf(vals))
        if inf.size:
            raise InvalidInputError(f"column {t} has infinite value(s) in row(s) {_rows(inf)}", source)
        out[:, j] = vals
    return out


def growth_rate(ages: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Derivative of a curve on an age grid, as the reference code computes it.

    Central differences ``(v[i+1] - v[i-1]) / (a[i+1] - a[i-1])`` inside, one-sided differences at
    the two ends.

    Parameters
    ----------
    ages : ndarray of shape (n,), years
    values : ndarray of shape (n, ...)

    Returns
    -------
    ndarray of the shape of ``values``, per year.
    """
    ages = np.asarray(ages, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    if ages.size < 2:
        out[...] = np.nan
        return out
    a = ages.reshape((-1,) + (1,) * (values.ndim - 1))
    out[1:-1] = (values[2:] - values[:-2]) / (a[2:] - a[:-2])
    out[0] = (values[1] - values[0]) / (a[1] - a[0])
    out[-1] = (values[-1] - values[-2]) / (a[-1] - a[-2])
    return out


def age_grid(lo: float, hi: float, step: float = GRID_STEP) -> np.ndarray:
    """Ages from ``lo`` to ``hi`` every ``step`` years (both ends included), rounded to 1e-10."""
    n = round((hi - lo) / step) + 1
    return np.round(lo + step * np.arange(n), 10)


# ---------------------------------------------------------------------------------------------
# the estimator
# ---------------------------------------------------------------------------------------------
_PARAM_NAMES = ("mu", "sigma", "nu", "tau")


class GrowthChart:
    """GAMLSS growth charts of many targets, fitted at once (scikit-learn style).

    Parameters
    ----------
    family : str
        gamlss.dist family: ``"SHASHo2"`` (paper), ``"SHASHo"``, ``"SHASH"``, ``"JSU"``, ``"NO"``,
        ``"GG"``.
    mu_df, sigma_df : int or None
        Degrees of freedom of the cubic ``bs(age)`` terms of mu and sigma (>= 3); None drops the
        age term.
    nu_df, tau_df : int or None
        Same for nu and tau (default constant, as in the paper).
    mu_sex, sigma_sex : bool
        Whether mu / sigma have the sex fixed effect (turn off to test sex effects by likelihood
        ratio).
    random_sites : sequence of str
        Parameters with a site random intercept (default ``("mu", "sigma")``).
    site_column : str
        Column naming each person's site (default ``site_scanner``).
    algorithm : {"newton", "rs"}
        ``"newton"`` (default): batched damped Newton to the exact penalised-likelihood optimum
        (:func:`~delssome_norms.norms.fitting.fit_gamlss`). ``"rs"``: R gamlss's RS algorithm
        reproduced step by step (:func:`~delssome_norms.norms.rs.fit_gamlss_rs`), which matches R's
        output to ~1e-5 but stops where R stops and is several times slower.
    max_iter : int
        Maximum Newton iterations (``"newton"``) or RS cycles (``"rs"``).
    tol : float
        Convergence tolerance of ``"newton"`` (Newton decrement per observation); ``"rs"`` uses
        gamlss's criterion (global deviance change < 0.001).
    strict : bool
        Raise instead of warning when a target's fit does not converge.

    Attributes
    ----------
    targets_ : list of str
    family_ : Family
    designs_ : list of ParameterDesign
        Terms and frozen ``bs()`` knots of each parameter.
    coef_ : dict of str -> ndarray of shape (T, p_k)
        Fixed effects per parameter (linear-predictor scale), columns as ``designs_[k].column_names()``.
    site_effects_ : dict of str -> ndarray of shape (T, S)
        Site intercepts of the parameters with a site term.
    sites_ : list of str
        Sites known to the chart (training sites, then adapted ones).
    lambda_ : dict of str -> ndarray of shape (T,)
        Random-effect penalties (working-scale residual / random-effect variance).
    age_range_ : tuple of float
        Youngest and oldest training age.
    chart_range_ : tuple of float
        ``(floor(min age), ceil(max age))``: the age range of the population curves and of scoring.
    loglik_, edf_, n_obs_ : ndarray of shape (T,)
        Log-likelihood, effective number of parameters (gamlss's df) and observations per target.
    converged_ : ndarray of bool, shape (T,)
    convergence_ : pandas.DataFrame
        Per-target convergence report.
    adapted_sites_ : dict of str -> dict
        Sites added by :meth:`adapt` (number of controls, method).

    Examples
    --------
    >>> chart = GrowthChart(family="SHASHo2", mu_df=4, sigma_df=3).fit(table)  # doctest: +SKIP
    >>> chart.population_centiles("female")["ei_ratio_mean"].head()  # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict[str, str]] = {
        "family": f"one of {', '.join(FAMILIES)}",
        "mu_df": "an integer >= 3 or None",
        "sigma_df": "an integer >= 3 or None",
        "nu_df": "an integer >= 3 or None",
        "tau_df": "an integer >= 3 or None",
        "mu_sex": "True or False",
        "sigma_sex": "True or False",
        "random_sites": "a subset of the family's parameters",
        "site_column": "a non-empty column name",
        "algorithm": "'newton' or 'rs'",
        "max_iter": "an integer >= 1",
        "tol": "a positive number",
        "strict": "True or False",
    }

    def __init__(
        self,
        family: str = "SHASHo2",
        *,
        mu_df: int | None = 4,
        sigma_df: int | None = 3,
        nu_df: int | None = None,
        tau_df: int | None = None,
        mu_sex: bool = True,
        sigma_sex: bool = True,
        random_sites: Sequence[str] = ("mu", "sigma"),
        site_column: str = "site_scanner",
        algorithm: str = "newton",
        max_iter: int = 200,
        tol: float = 1e-9,
        strict: bool = False,
    ) -> None:
        self.family = family
        self.mu_df = mu_df
        self.sigma_df = sigma_df
        self.nu_df = nu_df
        self.tau_df = tau_df
        self.mu_sex = mu_sex
        self.sigma_sex = sigma_sex
        self.random_sites = random_sites
        self.site_column = site_column
        self.algorithm = algorithm
        self.max_iter = max_iter
        self.tol = tol
        self.strict = strict

    # -- parameters ---------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def _validate_params(self) -> Family:
        def bad(name: str) -> InvalidInputError:
            return InvalidInputError(
                f"{name} must be {self._parameter_constraints[name]}; got {getattr(self, name)!r}",
                "GrowthChart",
            )

        try:
            fam = get_family(self.family)
        except ValueError:
            raise bad("family") from None
        for name in ("mu_df", "sigma_df", "nu_df", "tau_df"):
            v = getattr(self, name)
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 3 or v > 30
            ):
                raise bad(name)
        for name in ("mu_sex", "sigma_sex", "strict"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise bad(name)
        if isinstance(self.random_sites, str) or not set(self.random_sites) <= set(fam.params):
            raise bad("random_sites")
        if not isinstance(self.site_column, str) or not self.site_column.strip():
            raise bad("site_column")
        if isinstance(self.max_iter, bool) or not isinstance(self.max_iter, (int, np.integer)):
            raise bad("max_iter")
        if self.max_iter < 1:
            raise bad("max_iter")
        if not isinstance(self.tol, (int, float)) or not self.tol > 0:
            raise bad("tol")
        if self.algorithm not in ("newton", "rs"):
            raise bad("algorithm")
        return fam

    def _terms(self, fam: Family) -> list[ParameterTerms]:
        dfs = {"mu": self.mu_df, "sigma": self.sigma_df, "nu": self.nu_df, "tau": self.tau_df}
        sex = {"mu": self.mu_sex, "sigma": self.sigma_sex, "nu": False, "tau": False}
        return [ParameterTerms(dfs[p], bool(sex[p]), p in set(self.random_sites)) for p in fam.params]

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                "this GrowthChart is not fitted yet; call fit(table) or GrowthChart.load(path)",
                "GrowthChart",
            )

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        table: pd.DataFrame,
        targets: Sequence[str] | None = None,
        source: str = "table",
        provenance: dict[str, Any] | None = None,
    ) -> GrowthChart:
        """Fit the chart of every target at once.

        Parameters
        ----------
        table : pandas.DataFrame
            One row per person: ``age_in_years``, ``numeric_sex`` and/or ``sex``, the site column,
            and the target columns (empty cells are skipped for that target).
        targets : sequence of str, optional
            Target columns; default ``ei_ratio_mean`` and every ``ei_ratio_roi_*`` column.
        source : str
            Name of the table in error messages (e.g. its file name).
        provenance : dict, optional
            The table's provenance (its ``collect`` sidecar); stored as ``provenance_`` with the
            number of regional columns, and compared with tables scored later.

        Returns
        -------
        self
        """
        fam = self._validate_params()
        terms = self._terms(fam)
        if not isinstance(table, pd.DataFrame) or table.empty:
            raise InvalidInputError("expected a non-empty table", source)
        targets = list(targets) if targets is not None else default_targets(list(table.columns))
        if not targets:
            raise InvalidInputError(
                "no target columns: expected ei_ratio_mean and/or ei_ratio_roi_* (or pass targets)",
                source,
            )
        if len(set(targets)) != len(targets):
            raise InvalidInputError("targets are listed more than once", source)
        ages = table_ages(table, source)
        female = table_sex(table, source)
        any_random = any(t.random_site for t in terms)
        labels = table_sites(table, self.site_column, source, required=any_random)
        y = table_targets(table, targets, source)
        if fam.positive_y and np.any(y[np.isfinite(y)] <= 0):
            raise InvalidInputError(f"family {fam.name} needs positive values of every target", source)
        if np.ptp(ages) <= 0:
            raise InvalidInputError("all ages are equal; an age curve needs a range of ages", source)
        if any(t.sex for t in terms) and np.unique(female).size < 2:
            raise InvalidInputError(
                "only one sex in the table; fit with mu_sex=False, sigma_sex=False", source
            )
        if labels is not None:
            codes, sites = encode_sites(labels)
        else:
            codes, sites = np.zeros(ages.size, dtype=np.int64), []
        if any_random and len(sites) < 2:
            warnings.warn(
                f"{source}: only {len(sites)} site; site random effects dropped",
                InputWarning,
                stacklevel=2,
            )
            terms = [ParameterTerms(t.age_df, t.sex, False) for t in terms]
        designs = [ParameterDesign.from_training(t, ages) for t in terms]
        n_par = sum(d.n_fixed for d in designs)
        n_obs = np.isfinite(y).sum(0)
        few = [t for t, n in zip(targets, n_obs) if n < MIN_OBS_PER_PARAMETER * n_par]
        if few:
            raise InvalidInputError(
                f"too few values to fit {n_par} parameters for target(s) {', '.join(few[:5])} "
                f"(need at least {MIN_OBS_PER_PARAMETER * n_par})",
                source,
            )
        X = [d.matrix(ages, female) for d in designs]
        random = [t.random_site for t in terms]
        if self.algorithm == "rs":
            res = fit_gamlss_rs(y, fam, X, random, codes, len(sites), n_cyc=int(self.max_iter))
        else:
            res = fit_gamlss(
                y, fam, X, random, codes, len(sites), max_iter=int(self.max_iter), tol=float(self.tol)
            )
        self.family_ = fam
        self.targets_ = list(targets)
        self.designs_ = designs
        self.sites_ = list(sites)
        self.site_column_ = self.site_column
        self.coef_ = {p: res.beta[k] for k, p in enumerate(fam.params)}
        self.site_effects_ = {
            p: res.gamma[k] for k, p in enumerate(fam.params) if res.gamma[k] is not None
        }
        self.lambda_ = {p: res.lam[k] for k, p in enumerate(fam.params) if res.lam[k] is not None}
        self.edf_random_ = {
            p: res.edf_random[k] for k, p in enumerate(fam.params) if res.edf_random[k] is not None
        }
        self.loglik_ = res.loglik
        self.edf_ = res.edf
        self.n_obs_ = res.n_obs
        self.converged_ = res.converged.astype(bool)
        self.n_iter_ = res.n_iter
        self.decrement_ = res.decrement
        self.age_range_ = (float(ages.min()), float(ages.max()))
        self.chart_range_ = (float(math.floor(ages.min())), float(math.ceil(ages.max())))
        self.adapted_sites_: dict[str, dict[str, Any]] = {}
        self.provenance_ = _chart_provenance(table, provenance)
        self._report_convergence(source)
        return self

    @property
    def convergence_(self) -> pd.DataFrame:
        """Per-target convergence report (one row per target)."""
        self._check_fitted()
        out = pd.DataFrame(
            {
                "target": self.targets_,
                "converged": self.converged_,
                "n_iter": self.n_iter_,
                "decrement": self.decrement_,
                "loglik": self.loglik_,
                "edf": self.edf_,
                "n_obs": self.n_obs_,
            }
        )
        for p, lam in self.lambda_.items():
            out[f"lambda_{p}"] = lam
        return out

    def _report_convergence(self, source: str) -> None:
        bad = [t for t, ok in zip(self.targets_, self.converged_) if not ok]
        if bad:
            msg = (
                f"{source}: the fit did not converge for {len(bad)} of {len(self.targets_)} "
                f"target(s): {', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}; see "
                f"convergence_ (try more iterations, another family or fewer df)"
            )
            if self.strict:
                raise InvalidInputError(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)

    # -- model summaries ----------------------------------------------------------------------
    @property
    def formulas_(self) -> dict[str, str]:
        """Formula of each parameter in R syntax."""
        self._check_fitted()
        return {
            p: d.terms.formula(self.site_column_) for p, d in zip(self.family_.params, self.designs_)
        }

    @property
    def bic_(self) -> np.ndarray:
        """BIC per target: ``-2 loglik + log(n) * edf`` (gamlss's GAIC with k = log n)."""
        self._check_fitted()
        return -2.0 * self.loglik_ + np.log(self.n_obs_) * self.edf_

    @property
    def aic_(self) -> np.ndarray:
        """AIC per target: ``-2 loglik + 2 edf``."""
        self._check_fitted()
        return -2.0 * self.loglik_ + 2.0 * self.edf_

    def _target_index(self, targets: Sequence[str] | None, source: str = "targets") -> np.ndarray:
        if targets is None:
            return np.arange(len(self.targets_))
        lookup = {t: i for i, t in enumerate(self.targets_)}
        unknown = [t for t in targets if t not in lookup]
        if unknown:
            raise InvalidInputError(
                f"the chart has no target(s) {', '.join(unknown)}; it has "
                f"{', '.join(self.targets_[:6])}{' ...' if len(self.targets_) > 6 else ''}",
                source,
            )
        return np.array([lookup[t] for t in targets], dtype=np.int64)

    # -- prediction ---------------------------------------------------------------------------
    def _etas(
        self, ages: np.ndarray, female: np.ndarray, tidx: np.ndarray, site_codes: np.ndarray | None
    ) -> list[np.ndarray]:
        """Linear predictors, each (n, T); (1, T) for a parameter that is constant over people.

        Site intercepts enter through a one-hot block appended to the design, so each parameter
        costs one matrix product (rows with site code -1 get none).
        """
        out = []
        n = np.size(ages)
        for p, d in zip(self.family_.params, self.designs_):
            coef = self.coef_[p][tidx]
            with_site = site_codes is not None and p in self.site_effects_
            if d.n_fixed == 1 and not with_site:
                out.append(np.ascontiguousarray(coef.T))  # intercept only: (1, T)
                continue
            X = d.matrix(ages, female)
            if with_site:
                known = site_codes >= 0
                onehot = np.zeros((n, len(self.sites_)))
                onehot[np.flatnonzero(known), site_codes[known]] = 1.0
                X = np.hstack([X, onehot])
                coef = np.hstack([coef, self.site_effects_[p][tidx]])
            out.append(X @ coef.T)
        return out

    def predict_parameters(
        self,
        ages,
        sex,
        site: str | Sequence[str] | None = None,
        targets: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Distribution parameters at given ages (population, or for known sites).

        Parameters
        ----------
        ages : array-like of shape (n,), years
        sex : str or array-like of shape (n,)
            female/male/f/m or 1/0 (1 = female).
        site : str or array-like of shape (n,), optional
            Site of each age; None gives the population (fixed effects only). Unknown sites get the
            population prediction.
        targets : sequence of str, optional

        Returns
        -------
        dict mapping parameter name to ndarray of shape (n, T)
        """
        self._check_fitted()
        ages = np.atleast_1d(np.asarray(ages, dtype=np.float64))
        female = self._female(sex, ages.size)
        tidx = self._target_index(targets)
        codes = None
        if site is not None:
            labels = [site] * ages.size if isinstance(site, str) else list(site)
            codes, _ = encode_sites(labels, self.sites_)
        etas = self._etas(ages, female, tidx, codes)
        return dict(zip(self.family_.params, self.family_.to_params(etas)))

    @staticmethod
    def _female(sex, n: int) -> np.ndarray:
        if isinstance(sex, (str, int, np.integer)):
            sex = [sex] * n
        labels = normalise_sex(list(sex), "sex")
        if labels.size != n:
            raise InvalidInputError(f"expected {n} sex values, got {labels.size}", "sex")
        return (labels == "female").astype(np.float64)

    def centiles(
        self,
        ages,
        sex,
        q: Sequence[float] = CENTILES,
        targets: Sequence[str] | None = None,
        site: str | None = None,
    ) -> pd.DataFrame:
        """Centile curves at given ages.

        Parameters
        ----------
        ages : array-like of shape (n,), years
        sex : str or array-like of shape (n,)
        q : sequence of float
            Centiles in percent (0 < q < 100).
        targets : sequence of str, optional
        site : str, optional
            A known site (default: population curves, fixed effects only).

        Returns
        -------
        pandas.DataFrame
            Long format: ``target, age_in_years, sex, mu, sigma, [nu, tau], C<q>...``.
        """
        q = self._check_q(q)
        self._check_fitted()
        ages = np.atleast_1d(np.asarray(ages, dtype=np.float64))
        female = self._female(sex, ages.size)
        tidx = self._target_index(targets)
        params = self.predict_parameters(
            ages, female, site=site, targets=[self.targets_[i] for i in tidx]
        )
        frames = []
        for j, ti in enumerate(tidx):
            theta = [np.broadcast_to(params[p][:, j], ages.shape) for p in self.family_.params]
            cols: dict[str, Any] = {
                "target": self.targets_[ti],
                "age_in_years": ages,
                "sex": np.where(female == 1, "female", "male"),
            }
            for p, v in zip(self.family_.params, theta):
                cols[p] = v
            for qq in q:
                cols[f"C{centile_label(qq)}"] = self.family_.ppf(qq / 100.0, *theta)
            frames.append(pd.DataFrame(cols))
        return pd.concat(frames, ignore_index=True)

    @staticmethod
    def _check_q(q) -> list[float]:
        q = [float(v) for v in np.atleast_1d(q)]
        if not q or any(not (0 < v < 100) for v in q):
            raise InvalidInputError(f"centiles must lie strictly between 0 and 100; got {q}", "q")
        return q

    def population_centiles(
        self,
        sex: str,
        q: Sequence[float] = CENTILES,
        targets: Sequence[str] | None = None,
        step: float = GRID_STEP,
    ) -> dict[str, pd.DataFrame]:
        """Population curves in the reference layout, on the chart's age grid.

        Ages run from ``floor(min age)`` to ``ceil(max age)`` every ``step`` years; columns are
        ``age_in_years, sex, mu, sigma, nu, tau, C2.5 ... C97.5, growth_rate`` (growth rate = the
        reference code's finite-difference derivative of the median, per year).

        Returns
        -------
        dict mapping target to pandas.DataFrame
        """
        self._check_fitted()
        ages = age_grid(*self.chart_range_, step=step)
        long = self.centiles(ages, sex, q=q, targets=targets)
        out = {}
        for target, frame in long.groupby("target", sort=False):
            frame = frame.drop(columns="target").reset_index(drop=True)
            median = self.family_.ppf(0.5, *[frame[p].to_numpy() for p in self.family_.params])
            frame["growth_rate"] = growth_rate(frame["age_in_years"].to_numpy(), median)
            out[str(target)] = frame
        return out

    # -- scoring ------------------------------------------------------------------------------
    def score_arrays(
        self,
        ages: np.ndarray,
        female: np.ndarray,
        site_codes: np.ndarray | None,
        y: np.ndarray,
        targets: Sequence[str] | None = None,
        out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Core of :meth:`score` on validated arrays (no flags, no checks).

        Parameters
        ----------
        ages, female : ndarray of shape (n,)
        site_codes : ndarray of int, shape (n,), or None
            Index into ``sites_`` (-1 = unseen: population prediction).
        y : ndarray of shape (n, T)
            Values of the targets, in the order of ``targets``.
        out : tuple of three ndarrays of shape (n, T), optional
            Arrays (possibly strided views) to write centile, z and harmonised into.

        Returns
        -------
        centile, z, harmonised : ndarray of shape (n, T)
        """
        tidx = self._target_index(targets)
        n = np.shape(y)[0]
        T = tidx.size
        # computations run on (T, people) blocks, contiguous along people
        yt = np.ascontiguousarray(np.asarray(y, dtype=np.float64).T)
        if out is None:
            out = tuple(np.empty((T, n)).T for _ in range(3))
        c_t, z_t, h_t = (o.T for o in out)
        use_site = site_codes is not None and bool(self.site_effects_) and bool(np.any(site_codes >= 0))
        # site intercepts per parameter, (T, S + 1) with a zero column for unseen sites (code -1)
        effects = {
            p: np.hstack([self.site_effects_[p][tidx], np.zeros((T, 1))]) for p in self.site_effects_
        }
        codes = None if not use_site else np.where(site_codes >= 0, site_codes, len(self.sites_))
        linear_harmonisation = self.family_.location_scale and set(self.site_effects_) <= {
            "mu",
            "sigma",
        }
        fam = self.family_

        def work(rows: slice) -> None:
            etas = []
            for p, d in zip(fam.params, self.designs_):
                coef = self.coef_[p][tidx]
                if d.n_fixed == 1:
                    etas.append(coef.copy())  # (T, 1): constant over people
                else:
                    etas.append(coef @ d.matrix(ages[rows], female[rows]).T)
            pop = fam.to_params(etas)
            if use_site:
                own = fam.to_params(
                    [
                        e + effects[p][:, codes[rows]] if p in effects else e
                        for p, e in zip(fam.params, etas)
                    ]
                )
            else:
                own = pop
            yy = yt[:, rows]
            with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
                zz = fam.zscore(yy, *own)
                z_t[:, rows] = zz
                c_t[:, rows] = special.ndtr(zz)
                if linear_harmonisation and use_site:
                    # same centile on the site-free chart of a location-scale family
                    h = yy - own[0]
                    h *= pop[1] / own[1]
                    h += pop[0]
                    h_t[:, rows] = h
                elif use_site:
                    h_t[:, rows] = fam.from_zscore(zz, *pop)
                else:
                    h_t[:, rows] = yy

        chunks = [slice(i, min(i + SCORE_CHUNK, n)) for i in range(0, n, SCORE_CHUNK)]
        workers = min(len(chunks), max(1, min(4, os.cpu_count() or 1)))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                list(pool.map(work, chunks))
        else:
            for rows in chunks:
                work(rows)
        return out

    def score(
        self,
        table: pd.DataFrame,
        targets: Sequence[str] | None = None,
        *,
        extrapolate: bool = False,
        layout: str = "wide",
        source: str = "table",
        provenance: dict[str, Any] | None = None,
        allow_pipeline_mismatch: bool = False,
    ) -> pd.DataFrame:
        """Centile, z-score and harmonised value of each person for each target.

        Parameters
        ----------
        table : pandas.DataFrame
            ``age_in_years``, ``numeric_sex`` and/or ``sex``, the site column (optional: missing
            sites are scored as unseen) and the target columns.
        targets : sequence of str, optional
            Default: the chart's targets present in the table (at least one).
        extrapolate : bool
            Score ages outside ``chart_range_`` by continuing the boundary polynomial pieces
            (still flagged). By default such rows get NaN.
        layout : {"wide", "long"}
            ``wide``: one row per person with ``<target>_centile``, ``<target>_z``,
            ``<target>_harmonised`` (plus the reference names ``centile_with_site`` and
            ``corrected_value`` for ``ei_ratio_mean``) and ``flag``. ``long``: one row per
            person and target with ``target, centile, z, harmonised, flag``.
        source : str
            Name of the table in messages.
        provenance : dict, optional
            The table's provenance sidecar, compared with the chart's (:meth:`check_pipeline`).
        allow_pipeline_mismatch : bool
            Warn instead of refusing a table whose atlas or pipeline differs from the chart's.

        Returns
        -------
        pandas.DataFrame
            ``flag`` lists ``;``-separated problems of the row: ``unseen_site`` (population
            prediction used), ``age_out_of_range``, ``missing_value``.
        """
        self._check_fitted()
        if layout not in ("wide", "long"):
            raise InvalidInputError(f"layout must be 'wide' or 'long'; got {layout!r}", "layout")
        if not isinstance(table, pd.DataFrame) or table.empty:
            raise InvalidInputError("expected a non-empty table", source)
        self.check_pipeline(table, provenance, allow_mismatch=allow_pipeline_mismatch, source=source)
        if targets is None:
            targets = [t for t in self.targets_ if t in table.columns]
            if not targets:
                raise InvalidInputError(
                    f"none of the chart's targets ({', '.join(self.targets_[:4])} ...) is a column "
                    f"of the table",
                    source,
                )
        else:
            targets = list(targets)
            self._target_index(targets, source="targets")
        ages = table_ages(table, source)
        female = table_sex(table, source)
        labels = table_sites(table, self.site_column_, source, required=False)
        y = table_targets(table, targets, source)
        n = ages.size
        if labels is None:
            codes = np.full(n, -1, dtype=np.int64)
        else:
            codes, _ = encode_sites(labels, self.sites_)
        lo, hi = self.chart_range_
        outside = (ages < lo) | (ages > hi)
        # a chart without site terms has no site offsets: nobody is "unseen"
        unseen = codes < 0 if self.site_effects_ else np.zeros(n, dtype=bool)
        missing = ~np.isfinite(y)
        if unseen.any():
            names = sorted({str(s) for s in (labels[unseen] if labels is not None else [])} - {""})
            what = f"site(s) {', '.join(names[:6])}" if names else f"no {self.site_column_} column"
            warnings.warn(
                f"{source}: {int(unseen.sum())} row(s) from {what} unknown to the chart get the "
                f"population-average prediction (flag {FLAG_UNSEEN_SITE}); estimate the site's "
                f"offsets from its controls with `delssome-norms charts adapt --chart CHART "
                f"--controls CONTROLS.csv --out NEW_CHART` (Python: GrowthChart.adapt)",
                InputWarning,
                stacklevel=2,
            )
        if outside.any():
            warnings.warn(
                f"{source}: {int(outside.sum())} row(s) have ages outside the chart's range "
                f"{lo:g}-{hi:g} years (rows {_rows(np.flatnonzero(outside))}); "
                + ("extrapolated and " if extrapolate else "scores set to NaN and ")
                + f"flagged {FLAG_AGE}",
                InputWarning,
                stacklevel=2,
            )
        T = len(targets)
        block = np.empty((T, 3, n))  # pandas' column-block layout: one row per output column
        centile, z, harm = (block[:, k, :].T for k in range(3))
        self.score_arrays(ages, female, codes, y, targets, out=(centile, z, harm))
        if not extrapolate and outside.any():
            block[:, :, outside] = np.nan
        unconverged = [t for t in targets if not self.converged_[self.targets_.index(t)]]
        if unconverged:
            warnings.warn(
                f"target(s) {', '.join(unconverged)} did not converge when the chart was fitted; "
                f"their scores are unreliable",
                ConvergenceWarning,
                stacklevel=2,
            )
        flag_parts = [
            np.where(unseen, FLAG_UNSEEN_SITE, ""),
            np.where(outside, FLAG_AGE, ""),
        ]
        base: dict[str, Any] = {}
        if "subject_id" in table.columns:
            base["subject_id"] = table["subject_id"].astype(str).to_numpy()
        base["age_in_years"] = ages
        base["sex"] = np.where(female == 1, "female", "male")
        base[self.site_column_] = labels if labels is not None else np.full(n, "", dtype=object)
        if layout == "wide":
            flags = _join_flags([*flag_parts, np.where(missing.any(1), FLAG_MISSING, "")])
            names = [f"{t}_{kind}" for t in targets for kind in ("centile", "z", "harmonised")]
            values = pd.DataFrame(block.reshape(3 * T, n).T, columns=names, copy=False)
            extra: dict[str, Any] = {}
            if MEAN_TARGET in targets:
                j = targets.index(MEAN_TARGET)
                extra["centile_with_site"] = centile[:, j]
                extra["corrected_value"] = harm[:, j]
            extra["flag"] = flags
            return pd.concat([pd.DataFrame(base), values, pd.DataFrame(extra)], axis=1)
        frame = {
            k: np.repeat(np.asarray(v, dtype=object if k != "age_in_years" else None), T)
            for k, v in base.items()
        }
        frame["target"] = np.tile(np.asarray(targets, dtype=object), n)
        frame["value"] = y.ravel()
        frame["centile"] = centile.ravel()
        frame["z"] = z.ravel()
        frame["harmonised"] = harm.ravel()
        frame["flag"] = _join_flags(
            [np.repeat(f, T) for f in flag_parts] + [np.where(missing.ravel(), FLAG_MISSING, "")]
        )
        return pd.DataFrame(frame)

    # -- new sites ----------------------------------------------------------------------------
    def adapt(
        self,
        controls: pd.DataFrame,
        *,
        method: str = "ml",
        min_controls: int = 10,
        source: str = "controls",
        provenance: dict[str, Any] | None = None,
        allow_pipeline_mismatch: bool = False,
    ) -> GrowthChart:
        """Estimate offsets of new sites from their controls, with the population fit frozen.

        Bethlehem et al. (2022): for each site in ``controls`` that the chart has not seen, the
        site's intercepts of the parameters with a site term (mu and sigma by default) are
        estimated by maximum likelihood from its controls (``method="ml"``), or shrunk towards 0 as
        the training sites' random effects were (``method="map"``, posterior mode with the fitted
        random-effect variance). Fixed effects, nu and tau are unchanged.

        Parameters
        ----------
        controls : pandas.DataFrame
            Controls with age, sex, site and target columns (the chart's targets that are present).
        method : {"ml", "map"}
        min_controls : int
            Sites with fewer controls than this are adapted with a warning.
        provenance : dict, optional
            The controls table's provenance sidecar (:meth:`check_pipeline`).
        allow_pipeline_mismatch : bool
            Warn instead of refusing controls whose atlas or pipeline differs from the chart's.

        Returns
        -------
        GrowthChart
            A new chart that knows the new sites (this chart is unchanged).
        """
        self._check_fitted()
        if method not in ("ml", "map"):
            raise InvalidInputError(f"method must be 'ml' or 'map'; got {method!r}", "method")
        if not self.site_effects_:
            raise InvalidInputError(
                "the chart has no site terms, so there are no site offsets to adapt", source
            )
        self.check_pipeline(controls, provenance, allow_mismatch=allow_pipeline_mismatch, source=source)
        ages = table_ages(controls, source)
        female = table_sex(controls, source)
        labels = table_sites(controls, self.site_column_, source, required=True)
        targets = [t for t in self.targets_ if t in controls.columns]
        if len(targets) != len(self.targets_):
            absent = [t for t in self.targets_ if t not in controls.columns]
            raise InvalidInputError(
                f"controls lack target column(s) {', '.join(absent[:5])}"
                f"{' ...' if len(absent) > 5 else ''}; every target of the chart is needed",
                source,
            )
        y = table_targets(controls, targets, source)
        known = [s for s in sorted(set(labels)) if s in self.sites_]
        if known:
            warnings.warn(
                f"{source}: site(s) {', '.join(known)} are already in the chart; their fitted "
                f"offsets are kept and their rows ignored",
                InputWarning,
                stacklevel=2,
            )
        keep = ~np.isin(labels, self.sites_)
        if not keep.any():
            raise InvalidInputError("no controls from sites new to the chart", source)
        lo, hi = self.chart_range_
        outside = keep & ((ages < lo) | (ages > hi))
        if outside.any():
            warnings.warn(
                f"{source}: {int(outside.sum())} control(s) outside the chart's age range "
                f"{lo:g}-{hi:g} are not used",
                InputWarning,
                stacklevel=2,
            )
            keep &= ~outside
        codes, new_sites = encode_sites(labels[keep])
        counts = np.bincount(codes, minlength=len(new_sites))
        small = [s for s, c in zip(new_sites, counts) if c < min_controls]
        if small:
            warnings.warn(
                f"{source}: site(s) {', '.join(small)} have fewer than {min_controls} controls; "
                f"their offsets are uncertain"
                + ("" if method == "map" else " (method='map' shrinks them)"),
                InputWarning,
                stacklevel=2,
            )
        tidx = np.arange(len(self.targets_))
        etas = self._etas(ages[keep], female[keep], tidx, None)
        random = [p in self.site_effects_ for p in self.family_.params]
        penalty = None
        if method == "map":
            penalty = np.stack([self.lambda_[p] for p in self.family_.params if p in self.lambda_], 1)
        res = fit_site_offsets(
            y[keep], self.family_, etas, random, codes, len(new_sites), penalty=penalty
        )
        if not res.converged.all():
            bad = sorted({new_sites[j] for j in np.nonzero(~res.converged)[1]})
            warnings.warn(
                f"{source}: offset estimation did not converge for site(s) {', '.join(bad)}",
                ConvergenceWarning,
                stacklevel=2,
            )
        out = copy.deepcopy(self)
        r = 0
        for p in self.family_.params:
            if p in out.site_effects_:
                out.site_effects_[p] = np.concatenate([out.site_effects_[p], res.offsets[:, :, r]], 1)
                r += 1
        out.sites_ = list(self.sites_) + list(new_sites)
        for s, c in zip(new_sites, counts):
            out.adapted_sites_[s] = {"n_controls": int(c), "method": method}
        return out

    # -- provenance ---------------------------------------------------------------------------
    def check_pipeline(
        self,
        table: pd.DataFrame,
        provenance: dict[str, Any] | None = None,
        *,
        allow_mismatch: bool = False,
        source: str = "table",
    ) -> list[tuple[str, Any, Any]]:
        """Refuse a table whose atlas or pipeline differs from the one the chart was fitted on.

        Compared: the number of regional columns (``ei_ratio_roi_*``) of the table with the
        chart's atlas, and, where both the table's provenance sidecar and the chart record them,
        the pipeline fields (atlas and region names, SC, maps, design, mode, settings; see
        :data:`delssome_norms.io.provenance.PIPELINE_FIELDS`).

        Parameters
        ----------
        table : pandas.DataFrame
        provenance : dict, optional
            The table's sidecar (``collect``'s ``<stem>.provenance.json``).
        allow_mismatch : bool
            Warn (:class:`~delssome_norms.errors.InputWarning`) instead of raising.
        source : str
            Name of the table in messages.

        Returns
        -------
        list of (field, table value, chart value)
            The differences (empty when none).

        Raises
        ------
        InvalidInputError
            One line naming the first differing field and both values.
        """
        from delssome_norms.io.provenance import pipeline_differences, short

        chart_pipe = dict((getattr(self, "provenance_", None) or {}).get("pipeline") or {})
        table_pipe = dict((provenance or {}).get("pipeline") or {})
        n_table = _n_roi_columns(table.columns)
        if n_table:
            table_pipe["n_regions"] = n_table
        if "n_regions" not in chart_pipe:
            n_chart = _n_roi_columns(self.targets_)
            if n_chart:
                chart_pipe["n_regions"] = n_chart
        diffs = pipeline_differences(table_pipe, chart_pipe)
        if not diffs:
            return []
        field, a, b = diffs[0]
        what = "regions" if field == "n_regions" else field
        msg = (
            f"the table's {what} differ(s) from the chart's: {field} is {short(a)} in the table "
            f"but {short(b)} in the chart"
            + (f" (also {', '.join(d[0] for d in diffs[1:])})" if len(diffs) > 1 else "")
        )
        if allow_mismatch:
            warnings.warn(
                f"{source}: {msg}; scored anyway (--allow-pipeline-mismatch)", InputWarning, stacklevel=3
            )
            return diffs
        raise InvalidInputError(
            f"{msg}; use a chart fitted with the same atlas and pipeline, or "
            "--allow-pipeline-mismatch to score anyway",
            source,
        )

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the chart to a folder: ``chart.json`` (readable) and ``arrays.npz`` (numbers).

        ``chart.json`` holds the format version, the package version, family, formulas, knots,
        sites, targets, ranges, convergence and a readable copy of the coefficients; ``arrays.npz``
        holds the coefficient and site-effect matrices and per-target diagnostics (read back with
        ``allow_pickle=False``). No pickle.

        Returns
        -------
        Path of the folder.
        """
        self._check_fitted()
        from delssome_norms import __version__

        folder = Path(path)
        fam = self.family_
        arrays: dict[str, np.ndarray] = {}
        for p in fam.params:
            arrays[f"coef_{p}"] = self.coef_[p]
            if p in self.site_effects_:
                arrays[f"site_{p}"] = self.site_effects_[p]
                arrays[f"lambda_{p}"] = self.lambda_[p]
                arrays[f"edf_random_{p}"] = self.edf_random_[p]
        for name in ("loglik_", "edf_", "n_obs_", "converged_", "n_iter_", "decrement_"):
            arrays[name.rstrip("_")] = np.asarray(getattr(self, name))
        meta = {
            "format_version": FORMAT_VERSION,
            "delssome_norms_version": __version__,
            "kind": "GrowthChart",
            "family": fam.name,
            "links": dict(zip(fam.params, fam.links)),
            "formulas": self.formulas_,
            "parameters": {p: d.to_dict() for p, d in zip(fam.params, self.designs_)},
            "sex_coding": {"numeric_sex": {"female": 1, "male": 0}},
            "site_column": self.site_column_,
            "sites": list(self.sites_),
            "adapted_sites": self.adapted_sites_,
            "targets": list(self.targets_),
            "age_range": list(self.age_range_),
            "chart_range": list(self.chart_range_),
            "options": {k: v for k, v in self.get_params().items()},
            "provenance": getattr(self, "provenance_", None),
            "convergence": {
                "all_converged": bool(self.converged_.all()),
                "unconverged_targets": [t for t, ok in zip(self.targets_, self.converged_) if not ok],
            },
            "arrays": {k: list(np.shape(v)) for k, v in arrays.items()},
            "coefficients": {
                t: {
                    p: dict(zip(d.column_names(), self.coef_[p][i].tolist()))
                    for p, d in zip(fam.params, self.designs_)
                }
                for i, t in enumerate(self.targets_)
            },
        }
        meta["options"]["random_sites"] = list(self.random_sites)
        folder.mkdir(parents=True, exist_ok=True)
        write_arrays(arrays, folder / "arrays.npz")
        meta["arrays_sha256"] = file_sha256(folder / "arrays.npz")
        write_json(meta, folder / "chart.json")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> GrowthChart:
        """Read a chart folder written by :meth:`save`.

        Refuses other format versions, incomplete folders, and folders whose readable
        coefficients (``chart.json``) disagree with ``arrays.npz``.
        """
        folder = Path(path)
        meta_path = folder / "chart.json"
        if not folder.is_dir():
            raise InvalidInputError("chart folder does not exist", str(folder))
        if not meta_path.is_file():
            raise InvalidInputError("not a chart folder: chart.json is missing", str(folder))
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"cannot be read as JSON ({exc})", str(meta_path)) from None
        if not isinstance(meta, dict) or meta.get("kind") != "GrowthChart":
            raise InvalidInputError("is not a GrowthChart file", str(meta_path))
        version = meta.get("format_version")
        if version != FORMAT_VERSION:
            raise InvalidInputError(
                f"chart format_version {version!r} is not supported: this delssome_norms reads "
                f"format_version {FORMAT_VERSION} (the chart was written by delssome_norms "
                f"{meta.get('delssome_norms_version', 'unknown')}); refit the chart with this "
                f"version",
                str(meta_path),
            )
        arr_path = folder / "arrays.npz"
        expected = meta.get("arrays_sha256")  # charts saved before checksums were added lack it
        if expected is not None and arr_path.is_file() and file_sha256(arr_path) != expected:
            raise InvalidInputError(
                "does not match the sha256 recorded in chart.json (damaged or edited); refit or "
                "restore the chart",
                str(arr_path),
            )
        try:
            with np.load(arr_path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise InvalidInputError(f"cannot be read ({exc})", str(arr_path)) from None
        try:
            opts = dict(meta["options"])
            chart = cls(**{k: v for k, v in opts.items() if k in cls._parameter_constraints})
            fam = get_family(meta["family"])
            chart.family_ = fam
            chart.targets_ = list(meta["targets"])
            chart.designs_ = [ParameterDesign.from_dict(meta["parameters"][p]) for p in fam.params]
            chart.sites_ = list(meta["sites"])
            chart.site_column_ = meta["site_column"]
            chart.coef_ = {p: arrays[f"coef_{p}"] for p in fam.params}
            chart.site_effects_ = {p: arrays[f"site_{p}"] for p in fam.params if f"site_{p}" in arrays}
            chart.lambda_ = {p: arrays[f"lambda_{p}"] for p in chart.site_effects_}
            chart.edf_random_ = {p: arrays[f"edf_random_{p}"] for p in chart.site_effects_}
            chart.loglik_ = arrays["loglik"]
            chart.edf_ = arrays["edf"]
            chart.n_obs_ = arrays["n_obs"]
            chart.converged_ = arrays["converged"].astype(bool)
            chart.n_iter_ = arrays["n_iter"]
            chart.decrement_ = arrays["decrement"]
            chart.age_range_ = tuple(float(v) for v in meta["age_range"])
            chart.chart_range_ = tuple(float(v) for v in meta["chart_range"])
            chart.adapted_sites_ = dict(meta.get("adapted_sites", {}))
            prov = meta.get("provenance")
            chart.provenance_ = dict(prov) if isinstance(prov, dict) else None
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"incomplete or inconsistent chart ({exc!r})", str(folder)) from None
        _check_finite_chart(meta, arrays, chart, folder, arr_path, meta_path)
        T = len(chart.targets_)
        for p, d in zip(fam.params, chart.designs_):
            if chart.coef_[p].shape != (T, d.n_fixed):
                raise InvalidInputError(
                    f"coef_{p} has shape {chart.coef_[p].shape}, expected {(T, d.n_fixed)}",
                    str(arr_path),
                )
        readable = meta.get("coefficients", {})
        for i, t in enumerate(chart.targets_):
            for p in fam.params:
                listed = readable.get(t, {}).get(p)
                if listed is None or list(listed.values()) != chart.coef_[p][i].tolist():
                    raise InvalidInputError(
                        f"the coefficients of {t} ({p}) in chart.json and arrays.npz disagree; "
                        f"was one of them edited? Refit or restore the chart",
                        str(folder),
                    )
        for p, eff in chart.site_effects_.items():
            if eff.shape != (T, len(chart.sites_)):
                raise InvalidInputError(
                    f"site_{p} has shape {eff.shape}, expected {(T, len(chart.sites_))}",
                    str(arr_path),
                )
        return chart


def _n_roi_columns(columns: Sequence[str]) -> int:
    """Number of ``ei_ratio_roi_<k>`` names in ``columns``."""
    return sum(bool(re.fullmatch(r"ei_ratio_roi_\d+", str(c))) for c in columns)


def _chart_provenance(table: pd.DataFrame, provenance: dict[str, Any] | None) -> dict[str, Any]:
    """The chart's record of what its table came from (the sidecar, with the table's atlas size)."""
    out = json.loads(json.dumps(provenance, default=str)) if provenance else {}
    pipe = dict(out.get("pipeline") or {})
    n = _n_roi_columns(table.columns)
    if n:
        pipe["n_regions"] = n
    out["pipeline"] = pipe
    return out


def _non_finite_numbers(obj: Any, where: str = "") -> list[str]:
    """Dotted paths of every NaN/inf number inside a JSON-like structure."""
    if isinstance(obj, dict):
        return [
            x
            for k, v in obj.items()
            for x in _non_finite_numbers(v, f"{where}.{k}" if where else str(k))
        ]
    if isinstance(obj, (list, tuple)):
        return [x for i, v in enumerate(obj) for x in _non_finite_numbers(v, f"{where}[{i}]")]
    if isinstance(obj, float) and not np.isfinite(obj):
        return [where]
    return []


def _check_finite_chart(
    meta: dict[str, Any],
    arrays: dict[str, np.ndarray],
    chart: GrowthChart,
    folder: Path,
    arr_path: Path,
    meta_path: Path,
) -> None:
    """Refuse a chart whose numbers (coefficients, site effects, knots, ranges) are not finite.

    A hand-edited or damaged chart would otherwise score silently: NaN offsets or knots give
    all-NaN scores, an infinite site sigma gives centile 0.5 for everyone, a NaN age range turns
    the age flags off.
    """
    for name, arr in arrays.items():
        if not (name.startswith(("coef_", "site_", "lambda_"))):
            continue
        a = np.asarray(arr)
        if not np.issubdtype(a.dtype, np.number):
            raise InvalidInputError(f"{name} is not numeric ({a.dtype})", str(arr_path))
        bad = ~np.isfinite(a)
        if bad.any():
            raise InvalidInputError(
                f"{name} contains {int(bad.sum())} non-finite value(s) (NaN/inf); the chart was "
                "damaged or edited: refit or restore it",
                str(arr_path),
            )
    bad_meta = _non_finite_numbers({k: meta.get(k) for k in ("parameters", "age_range", "chart_range")})
    if bad_meta:
        raise InvalidInputError(
            f"non-finite number(s) at {', '.join(bad_meta[:5])}; the chart was damaged or edited: "
            "refit or restore it",
            str(meta_path),
        )
    for name, (lo, hi) in (("age_range", chart.age_range_), ("chart_range", chart.chart_range_)):
        if not lo < hi:
            raise InvalidInputError(
                f"{name} [{lo:g}, {hi:g}] is empty or reversed; refit or restore the chart",
                str(meta_path),
            )


def centile_label(q: float) -> str:
    """Centile label as in the reference files: 2.5 -> '2.5', 50.0 -> '50'."""
    return f"{q:g}"


def _join_flags(parts: list[np.ndarray]) -> np.ndarray:
    """Join per-row flag strings with ';', skipping empty ones."""
    out = np.asarray(parts[0], dtype=object)
    for p in parts[1:]:
        p = np.asarray(p, dtype=object)
        both = (out != "") & (p != "")
        out = np.where(both, out + ";" + p, np.where(out != "", out, p))
    return out.astype(str)
