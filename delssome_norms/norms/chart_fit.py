"""Fitting a :class:`~delssome_norms.norms.chart.GrowthChart`, and its fit summaries.

See docs/science.md §7.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError
from delssome_norms.io.checks import sites_mix_sexes
from delssome_norms.io.ei_table import PROVENANCE_ATTR
from delssome_norms.norms.chart_pipeline_check import record_fitted_table
from delssome_norms.norms.chart_regions import refuse_single_string
from delssome_norms.norms.chart_table import (
    MIN_OBS_PER_PARAMETER,
    MIN_SITE_PEOPLE,
    _chart_provenance,
    _n_roi_columns,
    check_table_frame,
    check_unique_people,
    default_targets,
    table_ages,
    table_sex,
    table_sites,
    table_targets,
    warn_case_variant_sites,
)
from delssome_norms.norms.design import ParameterDesign, ParameterTerms, encode_sites
from delssome_norms.norms.fitting import fit_gamlss
from delssome_norms.norms.flagged_rows import handle_flagged
from delssome_norms.norms.rs import fit_gamlss_rs

if TYPE_CHECKING:
    from delssome_norms.norms.chart import GrowthChart


TAIL_IQR = 3.0
"""How far beyond the central half the tail check looks: ``TAIL_IQR`` interquartile ranges below
the lower and above the upper quartile (|z| 4.72 for a normal distribution)."""
TAIL_Z_MAX = 20.0
"""Largest |z| at :data:`TAIL_IQR` of a trusted chart. Shape parameters of SHASH/JSU fits on small
cohorts can run to a degenerate limit (e.g. nu -26 with log sigma -9 on 80 people) whose
likelihood is high in the sample but whose tail is a wall: on held-out people from the same
normal model such charts gave z with sd 1.5 to 1e18. Over 36 charts per family of 80-200
simulated people, every chart with held-out z sd above 1.6 had a tail |z| above 20; normal charts
give 4.72, well-fitted SHASHo2 charts up to ~10."""

TARGET_SD_RANGE = (1e-6, 1e4)
"""Standard deviations of a target (its units) that identity-link charts fit reliably. The fit's
numerical constants are absolute: rescaling a simulated E/I target (sd 0.37) changed no z-score
by more than 0.03 for sds from 4e-8 to 4e4, but by up to 6.2 at sd 4e-9 and 1.4 at 4e-10 (both
"converged") and by 0.17 at 1.1e5."""


def _check_target_scale(targets, y: np.ndarray, fam, source: str) -> None:
    """Refuse targets whose spread lies outside :data:`TARGET_SD_RANGE` (identity-link families;
    a log link, e.g. GG, is scale-free)."""
    if fam.links[0] != "identity":
        return
    lo, hi = TARGET_SD_RANGE
    bad = []
    for t, col in zip(targets, y.T):
        sd = float(np.std(col[np.isfinite(col)])) if np.isfinite(col).sum() > 1 else np.nan
        if np.isfinite(sd) and sd > 0 and not lo <= sd <= hi:
            bad.append(f"{t} (sd {sd:.3g})")
    if bad:
        raise InvalidInputError(
            f"target(s) {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''} vary on a scale the "
            f"chart cannot fit reliably (sd between {lo:g} and {hi:g} needed); rescale them, e.g. "
            "multiply by a power of 10",
            source,
        )


def _check_region_names(regions: Sequence[str], n_columns: int, source: str) -> None:
    """Refuse region names that are not one per regional column of the table (a single string
    is not a list of names, however many characters it has)."""
    refuse_single_string(regions, source)
    if len(regions) == 0 or len(regions) != n_columns:
        raise InvalidInputError(
            f"names {len(regions)} regions but the table has {n_columns} regional columns", source
        )


def _record_regions(prov: dict[str, Any], regions: Sequence[str], source: str) -> None:
    """Put the table's region names into the chart's provenance ``prov`` (in place), with the
    digests it records (they describe the names given; checked by :func:`_check_region_names`)."""
    from delssome_norms.io.provenance import set_region_names

    names = [str(v).strip() for v in regions]
    if (prov.get("atlas") or {}).get("regions") != names:
        set_region_names(prov, names)


def _warn_small_sites(sites: list, counts: np.ndarray, fam, terms, source: str) -> None:
    """Warn about training sites of fewer than :data:`MIN_SITE_PEOPLE` people when a parameter
    other than mu (sigma, nu, tau) has a site term: its offset there rests on a handful of
    values and can shrink or widen the site's spread many times over."""
    others = [p for p, t in zip(fam.params, terms) if t.random_site and p != "mu"]
    small = [f"{s} ({int(n)})" for s, n in zip(sites, counts) if n < MIN_SITE_PEOPLE]
    if not others or not small:
        return
    keep = "mu" if terms[0].random_site else "none"  # mu is every family's first parameter
    py = ["mu"] if keep == "mu" else []
    warnings.warn(
        f"{source}: site(s) {', '.join(small[:8])}{' ...' if len(small) > 8 else ''} have fewer "
        f"than {MIN_SITE_PEOPLE} people, and the chart fits site offsets of {', '.join(others)}: "
        "from so few people a sigma offset can shrink or widen the site's spread several times "
        "over (on simulated cohorts a 6-person site's new people got z-scores with sd 7), so "
        f"its people's z-scores may be far off; fit with random_sites={py!r} "
        f"(charts fit --random-sites {keep}), or pool such sites with a similar one or leave "
        "them out",
        InputWarning,
        stacklevel=3,
    )


class ChartFitMixin:
    """``fit`` and the fitted-model summaries of :class:`~delssome_norms.norms.chart.GrowthChart`."""

    # -- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        table: pd.DataFrame,
        targets: Sequence[str] | None = None,
        source: str = "table",
        provenance: dict[str, Any] | None = None,
        regions: Sequence[str] | None = None,
        *,
        exclude_flagged: bool = False,
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
        regions : sequence of str, optional
            Names of the table's regions (``ei_ratio_roi_<j>`` is ``regions[j]``, as in its
            ``<stem>.regions.csv``); default: the provenance's ``atlas.regions``. Recorded in
            ``provenance_``, so that tables listing the regions in another order are scored by
            name (:meth:`score`).
        exclude_flagged : bool
            Leave out the people whose E/I fit is flagged as poor (``collect``'s ``fit_flagged``
            column; a table without it is refused), with an
            :class:`~delssome_norms.errors.InputWarning` saying how many. By default they are
            kept and named in an ``InputWarning``: their E/I is not to be trusted, and a chart
            fitted with them carries it into every centile (``charts fit --exclude-flagged``).

        Returns
        -------
        self
        """
        fam = self._validate_params()
        terms = self._terms(fam)
        check_table_frame(table, source)
        if provenance is None:  # rows of EIResult.to_table / results_table carry their pipeline
            provenance = table.attrs.get(PROVENANCE_ATTR)
        n_rows = len(table)
        table = handle_flagged(table, exclude_flagged, source, stacklevel=3)
        if isinstance(targets, str):  # one column name, not its characters
            targets = [targets]
        targets = list(targets) if targets is not None else default_targets(list(table.columns))
        if not targets:
            raise InvalidInputError(
                "no target columns: expected ei_ratio_mean and/or ei_ratio_roi_* (or pass targets)",
                source,
            )
        if len(set(targets)) != len(targets):
            raise InvalidInputError("targets are listed more than once", source)
        check_unique_people(table, source, sessions=True)
        n_roi = _n_roi_columns(list(table.columns))
        if regions is not None and n_roi:  # before the fit, which can take minutes
            _check_region_names(regions, n_roi, source)
        ages = table_ages(table, source)
        female = table_sex(table, source)
        any_random = any(t.random_site for t in terms)
        labels = table_sites(table, self.site_column, source, required=any_random)
        y = table_targets(table, targets, source, ei_positive=provenance is not None)
        if fam.positive_y and np.any(y[np.isfinite(y)] <= 0):
            raise InvalidInputError(f"family {fam.name} needs positive values of every target", source)
        finite = np.isfinite(y)
        constant = [
            t
            for t, col, ok in zip(targets, y.T, finite.T)
            if ok.any() and np.nanmax(col[ok]) == np.nanmin(col[ok])
        ]
        if constant:
            raise InvalidInputError(
                f"target(s) {', '.join(constant[:5])}{' ...' if len(constant) > 5 else ''} take one "
                "value only; a centile chart needs values that vary",
                source,
            )
        _check_target_scale(targets, y, fam, source)
        if np.ptp(ages) <= 0:
            raise InvalidInputError("all ages are equal; an age curve needs a range of ages", source)
        if any(t.sex for t in terms) and np.unique(female).size < 2:
            raise InvalidInputError(
                f"only one sex ({'female' if female[0] else 'male'}) in the table; fit without "
                "the sex terms: mu_sex=False, sigma_sex=False (--no-mu-sex "
                "--no-sigma-sex)",
                source,
            )
        if labels is not None:
            warn_case_variant_sites(labels, source)
            codes, sites = encode_sites(labels)
        else:
            codes, sites = np.zeros(ages.size, dtype=np.int64), []
        if any(t.sex for t in terms) and len(sites) >= 2:
            if not sites_mix_sexes(codes, female, len(sites)):
                warnings.warn(
                    f"{source}: sex is confounded with site (each site has people of one sex "
                    "only): the chart's sex terms and site offsets are not separately identified, "
                    "so its sex effect means nothing; its centiles hold only for these sites",
                    InputWarning,
                    stacklevel=2,
                )
        if any_random and len(sites) < 2:
            warnings.warn(
                f"{source}: only {len(sites)} site; site random effects dropped",
                InputWarning,
                stacklevel=2,
            )
            terms = [ParameterTerms(t.age_df, t.sex, False) for t in terms]
        site_n = np.bincount(codes[finite.any(1)], minlength=len(sites)) if sites else np.zeros(0)
        _warn_small_sites(sites, site_n, fam, terms, source)
        designs = [ParameterDesign.from_training(t, ages) for t in terms]
        n_par = sum(d.n_fixed for d in designs)
        n_obs = np.isfinite(y).sum(0)
        if n_obs.min() < len(table):
            gaps = [f"{t} ({len(table) - n})" for t, n in zip(targets, n_obs) if n < len(table)]
            warnings.warn(
                f"{source}: people with no value are left out of that target's chart: "
                f"{', '.join(gaps[:5])}{' ...' if len(gaps) > 5 else ''}",
                InputWarning,
                stacklevel=2,
            )
        few = [t for t, n in zip(targets, n_obs) if n < MIN_OBS_PER_PARAMETER * n_par]
        if few:
            more = f" and {len(few) - 5} more" if len(few) > 5 else ""
            raise InvalidInputError(
                f"too few values to fit {n_par} parameters for target(s) {', '.join(few[:5])}"
                f"{more} (fewest {int(n_obs.min())} values; need at least "
                f"{MIN_OBS_PER_PARAMETER * n_par}: a chart needs a cohort; fewer df or the NO "
                "family need fewer)",
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
        self.sexes_ = [s for s, k in (("female", 1.0), ("male", 0.0)) if (female == k).any()]
        self.age_range_ = (float(ages.min()), float(ages.max()))
        self.chart_range_ = (float(math.floor(ages.min())), float(math.ceil(ages.max())))
        self.site_n_ = {s: int(n) for s, n in zip(sites, site_n)}
        self.adapted_sites_: dict[str, dict[str, Any]] = {}
        self.adaptations_: list[dict[str, Any]] = []
        self._saved_sha256: dict[str, Any] = {}  # set when saved or loaded
        self.provenance_ = _chart_provenance(table, provenance)
        # who was left out (charts fit records the table file too: `source` is only a name here)
        record_fitted_table(self.provenance_, None, n_rows, exclude_flagged, n_rows - len(table))
        if regions is not None:
            _record_regions(self.provenance_, regions, source)
        self._report_convergence(source)
        self._site_tail_z = None  # a new fit: recompute
        self._report_site_tails(self.sites_, source, training=True)
        return self

    @property
    def convergence_(self) -> pd.DataFrame:
        """Per-target convergence report (one row per target)."""
        self._check_fitted()
        out = pd.DataFrame(
            {
                "target": self.targets_,
                "converged": self.converged_,
                "tail_z": self.tail_z_,
                "reliable": self.reliable_,
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

    @property
    def tail_z_(self) -> np.ndarray:
        """Largest |z| of a value :data:`TAIL_IQR` interquartile ranges beyond the quartiles, per
        target, over the chart's ages (1-year grid) and both sexes (population curves).

        A z-score far above a normal distribution's 4.72 there means a degenerate tail: values
        just beyond the training data get absurd z (see :data:`TAIL_Z_MAX`). For a family of
        positive values (GG) only the upper side is checked: its lower side is bounded by 0.
        """
        self._check_fitted()
        cached = getattr(self, "_tail_z", None)
        if cached is not None:
            return cached
        fam = self.family_
        lo, hi = self.chart_range_
        ages = np.concatenate([np.arange(lo, hi, 1.0), [hi]])
        ages2 = np.concatenate([ages, ages])
        female = np.repeat([1.0, 0.0], ages.size)
        etas = self._etas(ages2, female, np.arange(len(self.targets_)), None)
        theta = [np.broadcast_to(v, (ages2.size, len(self.targets_))) for v in fam.to_params(etas)]
        with np.errstate(all="ignore"):
            q25 = fam.ppf(np.full(theta[0].shape, 0.25), *theta)
            q75 = fam.ppf(np.full(theta[0].shape, 0.75), *theta)
            upper = q75 + TAIL_IQR * (q75 - q25)
            lower = q25 - TAIL_IQR * (q75 - q25)
            # a family of positive values has a bounded lower side: near 0 its thin left tail
            # is the shape, not a runaway, so only its upper side is checked
            z_lower = np.zeros_like(lower) if fam.positive_y else fam.zscore(lower, *theta)
            z = np.abs(np.concatenate([fam.zscore(upper, *theta), z_lower]))
        z = np.where(np.isnan(z), np.inf, z)  # an undefined tail is not a trusted one
        self._tail_z = z.max(axis=0)
        return self._tail_z

    @property
    def reliable_(self) -> np.ndarray:
        """Per target: converged and with a tail that is not degenerate (:attr:`tail_z_`)."""
        return np.asarray(self.converged_, dtype=bool) & (self.tail_z_ <= TAIL_Z_MAX)

    def _report_convergence(self, source: str) -> None:
        self._tail_z = None  # a new fit: recompute
        bad = [t for t, ok in zip(self.targets_, self.converged_) if not ok]
        wild = [
            t for t, ok, z in zip(self.targets_, self.converged_, self.tail_z_) if ok and z > TAIL_Z_MAX
        ]
        msgs = []
        if bad:
            msgs.append(
                f"{source}: the fit did not converge for {len(bad)} of {len(self.targets_)} "
                f"target(s): {', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''}; see "
                f"the chart's convergence_ table (convergence.csv next to a chart that charts fit "
                f"saved; try more iterations, another family, fewer df{self._fewer_random_hint()})"
            )
        if wild:
            n = int(np.max(self.n_obs_))
            msgs.append(
                f"{source}: the fitted {self.family_.name} distribution of {len(wild)} of "
                f"{len(self.targets_)} target(s) has a degenerate tail: "
                f"{', '.join(wild[:8])}{' ...' if len(wild) > 8 else ''} (a value "
                f"{TAIL_IQR:g} interquartile ranges beyond the quartiles gets |z| > {TAIL_Z_MAX:g}; "
                f"a normal distribution gives 4.7), so people beyond the training values get "
                f"meaningless z-scores. With {n} people the shape parameters are poorly determined: "
                "use a family with fewer shape parameters (family NO), or more people; their "
                "scores are flagged chart_unreliable"
            )
        for msg in msgs:
            if self.strict:
                raise InvalidInputError(msg)
            warnings.warn(msg, ConvergenceWarning, stacklevel=3)

    def _fewer_random_hint(self) -> str:
        """Advice to drop the site random effects of the parameters other than mu (few people
        per site, e.g. an ageing cohort of 16-43 per site, leave sigma's site variance poorly
        determined: such fits that did not converge converged with mu's alone)."""
        others = [p for p in self.site_effects_ if p != "mu"]
        if not others:
            return ""
        keep = ",".join(p for p in self.site_effects_ if p == "mu") or "none"
        py = [p for p in self.site_effects_ if p == "mu"]
        return (
            f" or no site random effect of {', '.join(others)}: random_sites={py!r} "
            f"(charts fit --random-sites {keep})"
        )

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
