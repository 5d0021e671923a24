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
``sex`` (female/male/f/m), a site column (default ``site_scanner``) and one column per target
(:mod:`delssome_norms.io.ei_table`).

The class is assembled from one module per job: :mod:`.chart_fit` (fitting),
:mod:`.chart_score` (centiles, scores), :mod:`.chart_adapt` (new sites, pipeline checks),
:mod:`.chart_io` (save/load) and :mod:`.chart_table` (reading the input table).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator

from delssome_norms.errors import InvalidInputError, NotFittedError
from delssome_norms.io.ei_table import SITE_COLUMN
from delssome_norms.norms.chart_adapt import ChartAdaptMixin
from delssome_norms.norms.chart_fit import ChartFitMixin
from delssome_norms.norms.chart_io import FORMAT_VERSION, ChartPersistenceMixin
from delssome_norms.norms.chart_score import ChartScoringMixin
from delssome_norms.norms.chart_table import (
    CENTILES,
    FLAG_AGE,
    FLAG_AGE_EXTRAPOLATED,
    FLAG_FEW_CONTROLS,
    FLAG_MISSING,
    FLAG_SITE_UNRELIABLE,
    FLAG_UNSEEN_SEX,
    FLAG_UNSEEN_SITE,
    GRID_STEP,
    MEAN_TARGET,
    MIN_OBS_PER_PARAMETER,
    REGION_PREFIX,
    SCORE_CHUNK,
    age_grid,
    centile_label,
    default_targets,
    growth_rate,
    table_ages,
    table_sex,
    table_sites,
    table_targets,
)
from delssome_norms.norms.design import ParameterTerms
from delssome_norms.norms.distributions import FAMILIES, Family, get_family

__all__ = [
    "CENTILES",
    "FLAG_AGE",
    "FLAG_AGE_EXTRAPOLATED",
    "FLAG_FEW_CONTROLS",
    "FLAG_MISSING",
    "FLAG_SITE_UNRELIABLE",
    "FLAG_UNSEEN_SEX",
    "FLAG_UNSEEN_SITE",
    "FORMAT_VERSION",
    "GRID_STEP",
    "MEAN_TARGET",
    "MIN_OBS_PER_PARAMETER",
    "REGION_PREFIX",
    "SCORE_CHUNK",
    "GrowthChart",
    "age_grid",
    "centile_label",
    "default_targets",
    "growth_rate",
    "table_ages",
    "table_sex",
    "table_sites",
    "table_targets",
]

# ---------------------------------------------------------------------------------------------
_PARAM_NAMES = ("mu", "sigma", "nu", "tau")


class GrowthChart(
    ChartFitMixin, ChartScoringMixin, ChartAdaptMixin, ChartPersistenceMixin, BaseEstimator
):
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
        Youngest and oldest training age (the ``bs()`` boundary knots).
    chart_range_ : tuple of float
        ``(floor(min age), ceil(max age))``: the age range of the population curves and of scoring
        (docs/science.md §7). Scores of ages inside it but outside ``age_range_`` continue the
        boundary polynomial pieces and are flagged ``age_extrapolated``.
    loglik_, edf_, n_obs_ : ndarray of shape (T,)
        Log-likelihood, effective number of parameters (gamlss's df) and observations per target.
    converged_ : ndarray of bool, shape (T,)
    tail_z_ : ndarray of shape (T,)
        |z| of a value three interquartile ranges beyond the quartiles (4.72 for a normal
        distribution); far above it the fitted tail is degenerate (docs/science.md §7).
    reliable_ : ndarray of bool, shape (T,)
        Converged and ``tail_z_ <= 20``; scores of other targets are flagged ``chart_unreliable``
        (so are those of an adapted site whose curves fail the same check,
        :meth:`site_tail_z`). It checks the population curves only: a training site whose
        fitted offsets fail the check is listed in :attr:`unreliable_sites_`.
    unreliable_sites_ : dict of str -> list of str
        Known sites whose own curves fail the tail check (:meth:`site_tail_z` above 20), with
        the failing targets. :meth:`fit` warns about such training sites (typically a site of a
        handful of people whose sigma offset shrinks its spread many times over) and
        :meth:`score` flags their people ``site_unreliable`` (an adapted site's,
        ``chart_unreliable``).
    site_n_ : dict of str -> int
        People per training site (with a value of some target); empty for charts saved before
        it was recorded. :meth:`fit` warns about sites of fewer than 10 people when a parameter
        other than mu has a site term.
    convergence_ : pandas.DataFrame
        Per-target convergence report (with ``tail_z`` and ``reliable``).
    adapted_sites_ : dict of str -> dict
        Sites added by :meth:`adapt` (number of controls, method). :meth:`score` flags people
        of a site adapted from fewer than 30 controls ``few_site_controls``.
    adaptations_ : list of dict
        One record per :meth:`adapt` that made this chart: method, the controls' source (and,
        from ``charts adapt``, their file's ``controls_sha256``), the chart adapted
        (``adapted_from``: its saved ``content_sha256`` and ``arrays_sha256``, provenance label,
        whether synthetic) and
        per new site the controls used (``n_controls``, ``n_female``, ``n_male``, ``age_range`` in
        years, ``subject_ids``). Saved in ``chart.json`` as ``adaptations``.

    Examples
    --------
    >>> chart = GrowthChart(family="SHASHo2", mu_df=4, sigma_df=3).fit(table)  # doctest: +SKIP
    >>> chart.population_centiles("female")["ei_ratio_mean"].head()  # doctest: +SKIP
    """

    _parameter_constraints: ClassVar[dict[str, str]] = {
        "family": f"one of {', '.join(FAMILIES)}",
        "mu_df": "an integer from 3 to 30, or None",
        "sigma_df": "an integer from 3 to 30, or None",
        "nu_df": "an integer from 3 to 30, or None",
        "tau_df": "an integer from 3 to 30, or None",
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
        site_column: str = SITE_COLUMN,
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

    def __repr__(self, N_CHAR_MAX: int = 700) -> str:
        """scikit-learn's repr (the parameters set) until fitted; then one line saying what the
        chart is: ``GrowthChart(SHASHo2, fitted: 69 targets, 600 people, ages 5.2-89.7 years)``."""
        if not hasattr(self, "coef_"):
            return super().__repr__(N_CHAR_MAX)
        n_targets = len(self.targets_)
        n_people = int(np.max(self.n_obs_)) if np.size(self.n_obs_) else 0
        lo, hi = self.age_range_
        return (
            f"GrowthChart({self.family_.name}, fitted: {n_targets} target"
            f"{'s' if n_targets != 1 else ''}, {n_people} people, ages {lo:.1f}-{hi:.1f} years)"
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError(
                "this GrowthChart is not fitted yet; call fit(table) or GrowthChart.load(path)",
                "GrowthChart",
            )

    def _target_index(self, targets: Sequence[str] | None, source: str = "targets") -> np.ndarray:
        if targets is None:
            return np.arange(len(self.targets_))
        if isinstance(targets, str):  # one name, not its characters
            targets = [targets]
        lookup = {t: i for i, t in enumerate(self.targets_)}
        unknown = [t for t in targets if t not in lookup]
        if unknown:
            raise InvalidInputError(
                f"the chart has no target(s) {', '.join(unknown)}; it has "
                f"{', '.join(self.targets_[:6])}{' ...' if len(self.targets_) > 6 else ''}",
                source,
            )
        return np.array([lookup[t] for t in targets], dtype=np.int64)
