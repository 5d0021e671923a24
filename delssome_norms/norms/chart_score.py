"""Centiles and scores of a fitted :class:`~delssome_norms.norms.chart.GrowthChart` (docs/science.md §7).

Population curves use the fixed effects only (site term dropped). Scoring a person gives
``centile = F(y | age, sex, own site)``, ``z = Phi^-1(centile)`` and the harmonised value
``F^-1(centile | age, sex, no site)``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from scipy import special

from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError
from delssome_norms.io import ei_table as et
from delssome_norms.io import normalise_sex
from delssome_norms.norms.chart_regions import align_table_regions
from delssome_norms.norms.chart_table import (
    CENTILES,
    FEW_SITE_CONTROLS,
    FLAG_AGE,
    FLAG_AGE_EXTRAPOLATED,
    FLAG_FEW_CONTROLS,
    FLAG_MISSING,
    FLAG_POOR_FIT,
    FLAG_SITE_UNRELIABLE,
    FLAG_UNCALIBRATED,
    FLAG_UNRELIABLE,
    FLAG_UNSEEN_SEX,
    FLAG_UNSEEN_SITE,
    GRID_STEP,
    MEAN_TARGET,
    SCORE_CHUNK,
    _join_flags,
    _rows,
    age_grid,
    centile_label,
    check_table_frame,
    check_unique_people,
    fitted_on_ei,
    growth_rate,
    missing_site_text,
    table_ages,
    table_fit_flagged,
    table_interval_uncalibrated,
    table_sex,
    table_sites,
    table_targets,
)
from delssome_norms.norms.design import encode_sites
from delssome_norms.norms.score_flags import unseen_sex_rows, warn_age_extrapolated, warn_unseen_sites


def _refuse_numeric_sex(sex: Any) -> None:
    """Refuse numbers (not bools, not NaN) given as ``sex`` where labels are expected: datasets
    differ on what 0/1/2 mean, as :func:`~delssome_norms.io.checks.table_sex_labels` says."""
    values = [sex] if np.ndim(sex) == 0 else list(np.ravel(np.asarray(sex, dtype=object)))
    number = (int, float, np.integer, np.floating)
    codes = {f"{float(v):g}" for v in values if isinstance(v, number) and not isinstance(v, bool)}
    codes.discard("nan")
    if codes:
        raise InvalidInputError(
            f"got the numeric sex code(s) {', '.join(sorted(codes)[:4])}; datasets differ on what "
            "they mean (UK Biobank: 0 = female; ABCD: 2 = female), so give labels (female/male "
            "or F/M)",
            "sex",
        )


class ChartScoringMixin:
    """Prediction, centiles and scoring of :class:`~delssome_norms.norms.chart.GrowthChart`."""

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
        extrapolate: bool = False,
    ) -> dict[str, np.ndarray]:
        """Distribution parameters at given ages (population, or for known sites).

        Parameters
        ----------
        ages : array-like of shape (n,), years
        sex : str or array-like of shape (n,)
            female/male/f/m or 1/0 (1 = female).
        site : str or array-like of shape (n,), optional
            Site of each age; None gives the population (fixed effects only). Unknown sites, and
            missing ones (None, NaN, blank: "no site", as an empty cell of a scored table), get
            the population prediction, with an :class:`InputWarning`.
        targets : sequence of str, optional
        extrapolate : bool
            Allow ages outside ``chart_range_`` (the boundary polynomial pieces are continued);
            default: refuse them.

        Returns
        -------
        dict mapping parameter name to ndarray of shape (n, T)
            Every parameter, also one constant over ages (T: the targets, in ``targets`` order).

        Raises
        ------
        InvalidInputError
            Ages that are not a finite 1-D array, or (without ``extrapolate``) outside the range.
        """
        self._check_fitted()
        ages = self._checked_ages(ages, extrapolate)
        female = self._female(sex, ages.size)
        tidx = self._target_index(targets)
        codes = None
        if site is not None:
            labels = [site] * ages.size if np.ndim(site) == 0 else list(site)
            if len(labels) != ages.size:
                raise InvalidInputError(f"expected {ages.size} site labels, got {len(labels)}", "site")
            labels = [missing_site_text(v) for v in labels]
            codes, _ = encode_sites(labels, self.sites_)
            codes[np.asarray([s == "" for s in labels], dtype=bool)] = -1
            unknown = sorted({str(labels[i]) for i in np.flatnonzero(codes < 0)} - {""})
            blank = sum(s == "" for s in labels)
            if (unknown or blank) and self.site_effects_:
                what = [f"site(s) {', '.join(unknown[:6])} unknown to the chart"] if unknown else []
                if blank:
                    what.append(f"{blank} age(s) without a site (missing site label)")
                warnings.warn(
                    f"{' and '.join(what)} get the population-average curves (known sites: "
                    f"{', '.join(map(str, self.sites_[:6]))}{' ...' if len(self.sites_) > 6 else ''})",
                    InputWarning,
                    stacklevel=3,
                )
        etas = self._etas(ages, female, tidx, codes)
        shape = (ages.size, len(tidx))  # parameters constant over people come as (1, T)
        return {
            p: np.array(np.broadcast_to(v, shape))
            for p, v in zip(self.family_.params, self.family_.to_params(etas))
        }

    def _checked_ages(self, ages, extrapolate: bool) -> np.ndarray:
        """``ages`` [years] as a finite 1-D float array, inside ``chart_range_`` unless
        ``extrapolate``."""
        try:
            a = np.asarray(ages, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(f"ages must be numbers (years), got {ages!r}", "ages") from None
        if a.ndim > 1:
            raise InvalidInputError(f"ages must be one-dimensional, got shape {a.shape}", "ages")
        a = np.atleast_1d(a)
        if a.size == 0 or not np.all(np.isfinite(a)):
            raise InvalidInputError("ages must be a non-empty array of finite numbers (years)", "ages")
        lo, hi = self.chart_range_
        outside = (a < lo) | (a > hi)
        if outside.any() and not extrapolate:
            raise InvalidInputError(
                f"age(s) {', '.join(f'{v:g}' for v in a[outside][:5])} lie outside the chart's "
                f"range {lo:g}-{hi:g} years; pass extrapolate=True to continue the curves",
                "ages",
            )
        return a

    @staticmethod
    def _female(sex, n: int, numeric: bool = True) -> np.ndarray:
        """Female indicator (1/0) of ``n`` people from ``sex`` labels; ``numeric``: 1/0 codes
        (1 = female) too, else refused (:func:`_refuse_numeric_sex`)."""
        if not numeric:
            _refuse_numeric_sex(sex)
        if np.ndim(sex) == 0:  # one value for every age: checked once, named once
            labels = np.repeat(normalise_sex([sex], "sex"), n)
        else:
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
        extrapolate: bool = False,
    ) -> pd.DataFrame:
        """Centile curves at given ages.

        Parameters
        ----------
        ages : array-like of shape (n,), years
        sex : str or array-like of shape (n,)
            female/male/f/m (any case). Numeric codes are refused: datasets differ on what
            they mean (UK Biobank: 0 = female; ABCD: 2 = female).
        q : sequence of float
            Centiles in percent (0 < q < 100).
        targets : sequence of str, optional
        site : str, optional
            A known site (default: population curves, fixed effects only; an unknown site gets
            them too, with an :class:`InputWarning`).
        extrapolate : bool
            Allow ages outside ``chart_range_``; default: refuse them.

        Returns
        -------
        pandas.DataFrame
            Long format: ``target, age_in_years, sex, mu, sigma, [nu, tau], C<q>...``.
        """
        q = self._check_q(q)
        self._check_fitted()
        ages = self._checked_ages(ages, extrapolate)
        female = self._female(sex, ages.size, numeric=False)
        tidx = self._target_index(targets)
        params = self.predict_parameters(
            ages,
            female,
            site=site,
            targets=[self.targets_[i] for i in tidx],
            extrapolate=extrapolate,
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
        reference code's finite-difference derivative of the median, per year). ``sex``:
        female/male/f/m (any case); numeric codes are refused, as by :meth:`centiles`.

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
    def _warn_no_regions(self, table: pd.DataFrame, targets: list, source: str) -> None:
        """Warn when the chart has regional targets but the table none of their columns.

        A table whose region columns are named otherwise (``roi_0``, region names, another
        atlas's labels) would otherwise be scored on the mean alone without a word."""
        regional = [t for t in self.targets_ if str(t).startswith(et.REGION_PREFIX)]
        if not regional or any(str(t).startswith(et.REGION_PREFIX) for t in targets):
            return
        other = [str(c) for c in table.columns if str(c) not in self.targets_]
        warnings.warn(
            f"{source}: none of the chart's {len(regional)} regional columns "
            f"({regional[0]} ... {regional[-1]}) is in the table, so only "
            f"{', '.join(map(str, targets))} is scored"
            + (
                f" (other columns: {', '.join(other[:6])}{' ...' if len(other) > 6 else ''})"
                if other
                else ""
            )
            + "; name the regional E/I columns as collect writes them to score them",
            InputWarning,
            stacklevel=3,
        )

    def _mean_interval_centiles(
        self, table: pd.DataFrame, targets: list, ages, female, codes, source: str
    ) -> np.ndarray | None:
        """Centiles of the bounds of the mean E/I's 90 % interval, (n, 2); None without them.

        The chart's centile is monotone in the value, so the centiles of the interval's bounds
        are the 90 % interval of the person's centile (NaN where a bound is missing)."""
        if MEAN_TARGET not in targets or not {et.MEAN_LO, et.MEAN_HI} <= set(table.columns):
            return None
        lo_hi = table_targets(table, [et.MEAN_LO, et.MEAN_HI], source)
        point = table_targets(table, [MEAN_TARGET], source)[:, 0]
        ok = np.isfinite(lo_hi).all(axis=1) & np.isfinite(point)
        if np.any((lo_hi[ok, 0] > point[ok]) | (point[ok] > lo_hi[ok, 1])):
            bad = np.flatnonzero(ok & ((lo_hi[:, 0] > point) | (point > lo_hi[:, 1])))
            raise InvalidInputError(
                f"{et.MEAN_LO} <= {MEAN_TARGET} <= {et.MEAN_HI} does not hold in row(s) {_rows(bad)}",
                source,
            )
        out = np.empty((len(table), 2))
        for k in range(2):
            c, _, _ = self.score_arrays(ages, female, codes, lo_hi[:, k : k + 1], [MEAN_TARGET])
            out[:, k] = c[:, 0]
        return out

    def _site_unreliable_rows(
        self, labels: np.ndarray | None, n: int, targets: list, source: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """Two (n, T) bool arrays: the row's site is an adapted site (first) or a training site
        (second) whose curves of the target fail the tail check (:meth:`site_tail_z`); warns
        about them."""
        adapted = np.zeros((n, len(targets)), dtype=bool)
        training = np.zeros((n, len(targets)), dtype=bool)
        if labels is None or not self.site_effects_:
            return adapted, training
        present = [s for s in set(map(str, labels)) if s in self.sites_]
        col = {t: j for j, t in enumerate(targets)}
        for out, bad in (
            (adapted, self._unreliable_sites(present)),
            (training, self._unreliable_training_sites(present)),
        ):
            for site, names in bad.items():
                cols = [col[t] for t in names if t in col]
                if cols:
                    out[np.ix_(labels == site, cols)] = True
        if adapted.any():
            sites = sorted({str(s) for s in labels[adapted.any(1)]})
            warnings.warn(
                f"{source}: {int(adapted.any(1).sum())} row(s) from site(s) {', '.join(sites[:6])}, "
                "adapted with extreme offsets (a value 3 interquartile ranges beyond the "
                "quartiles gets |z| > 20 on their curves), have unreliable scores, flagged "
                f"{FLAG_UNRELIABLE}; re-adapt those sites from more varied controls",
                ConvergenceWarning,
                stacklevel=3,
            )
        if training.any():
            people = getattr(self, "site_n_", None) or {}
            rows = training.any(1)
            sites = sorted({str(s) for s in labels[rows]})
            named = [f"{s} ({people[s]} people)" if s in people else s for s in sites]
            names = [t for t, bad in zip(targets, training.any(0)) if bad]
            warnings.warn(
                f"{source}: {int(rows.sum())} row(s) from training site(s) "
                f"{', '.join(named[:6])}{' ...' if len(named) > 6 else ''} have unreliable "
                f"scores of {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}, flagged "
                f"{FLAG_SITE_UNRELIABLE}: the chart's fitted offsets of the site are extreme (a "
                "value 3 interquartile ranges beyond the quartiles gets |z| > 20 on its curves; "
                "typically a site of very few people); refit the chart with site terms of mu "
                "only (charts fit --random-sites mu), or with the site pooled or left out",
                ConvergenceWarning,
                stacklevel=3,
            )
        return adapted, training

    def _few_controls_rows(self, labels: np.ndarray | None, n: int, source: str) -> np.ndarray:
        """(n,) bool: the row's site was adapted from fewer than :data:`FEW_SITE_CONTROLS`
        controls (its offsets are uncertain); one warning naming those sites and their counts."""
        out = np.zeros(n, dtype=bool)
        adapted = getattr(self, "adapted_sites_", None) or {}
        if labels is None or not adapted:
            return out
        few = {}
        for site in sorted({str(s) for s in labels} & set(adapted)):
            count = (adapted[site] or {}).get("n_controls")
            if isinstance(count, (int, np.integer)) and count < FEW_SITE_CONTROLS:
                few[site] = int(count)
                out |= labels == site
        if few:
            named = [f"{s} ({c} controls)" for s, c in few.items()]
            warnings.warn(
                f"{source}: {int(out.sum())} row(s) from site(s) {', '.join(named[:6])}"
                f"{' ...' if len(named) > 6 else ''}, adapted from fewer than "
                f"{FEW_SITE_CONTROLS} controls: these sites' offsets are uncertain, so their "
                "centiles are less accurate (on simulated sites adapted by ML from 10 controls, "
                "11 % of people fell outside the 2.5-97.5 centiles, up to 30 %, where 5 % belong); "
                f"flagged {FLAG_FEW_CONTROLS}; adapt the chart from {FEW_SITE_CONTROLS} or more "
                "controls of each site to score them with confidence",
                InputWarning,
                stacklevel=3,
            )
        return out

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
        regions: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Centile, z-score and harmonised value of each person for each target.

        Parameters
        ----------
        table : pandas.DataFrame
            ``age_in_years``, ``numeric_sex`` and/or ``sex``, the site column (optional: missing
            sites are scored as unseen) and the target columns.
        targets : sequence of str, optional
            Default: the chart's targets present in the table (at least one). A table with only
            some of the chart's regional columns is scored on targets that are not regional
            (e.g. ``["ei_ratio_mean"]``); regional targets need all of them (:meth:`check_pipeline`).
        extrapolate : bool
            Score ages outside ``chart_range_`` by continuing the boundary polynomial pieces
            (still flagged). By default such rows get NaN.

            The scoring range ``chart_range_`` runs from floor(youngest) to ceil(oldest)
            training age, as the population curves do (docs/science.md §7; 4-99 years for the
            reference chart, fitted on 4.5-98.4). Ages inside it but outside the training ages
            ``age_range_`` are scored as usual, with one :class:`InputWarning` counting them:
            there the ``bs()`` age curves continue the polynomial piece of their boundary
            interval (as R's ``bs()`` does) with no data behind them, and the row is flagged
            ``age_extrapolated``.
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
        regions : sequence of str, optional
            Names of the table's regions (``ei_ratio_roi_<j>`` is ``regions[j]``, as in its
            ``<stem>.regions.csv``); default: the provenance's ``atlas.regions``. When the chart
            records its region names too and these are the same regions in another order, the
            table's regional columns are matched to the chart's by name (with an
            :class:`InputWarning`); other regions, and names that are not one per regional
            column, are refused even with ``allow_pipeline_mismatch``
            (:func:`~delssome_norms.norms.chart_regions.align_table_regions`). A row of
            :meth:`EIResult.to_table <delssome_norms.pipeline.EIResult.to_table>` names its
            fit's regions (and pipeline) in its ``attrs``, used when neither ``regions`` nor
            ``provenance`` is given.

        Returns
        -------
        pandas.DataFrame
            Indexed as ``table`` (``wide``: one row per row of ``table``, with its index label,
            so ``table["c"] = chart.score(table)["ei_ratio_mean_centile"]`` puts each score on
            its person's row, also for a filtered table; ``long``: each row's index label
            repeated once per target, person by person). ``flag`` lists ``;``-separated
            problems of the row: ``unseen_site`` (population
            prediction used: a site unknown to the chart, or an empty site cell),
            ``unseen_sex`` (the person's sex is absent from the chart's training table: a
            chart fitted on one sex scores them on that sex's curves),
            ``age_out_of_range`` (outside ``chart_range_``), ``age_extrapolated`` (inside
            ``chart_range_`` but outside the training ages ``age_range_``, see below),
            ``missing_value``, ``poor_fit`` (the
            table's ``fit_flagged``: the E/I comes from a fit flagged as poor),
            ``interval_uncalibrated`` (the table's ``ei_interval_calibrated`` is False: the
            E/I's interval, and the centile's, may be too narrow),
            ``chart_unreliable`` (a scored target's chart did not converge or has a degenerate
            tail, :attr:`reliable_`, or the person's site was adapted with extreme offsets,
            :meth:`site_tail_z`; in ``wide``, any of the row's targets), ``site_unreliable``
            (the person's training site has extreme fitted offsets of a scored target, e.g. a
            site of a handful of people: :attr:`unreliable_sites_`; ``wide``: any target),
            ``few_site_controls`` (the person's site was adapted from fewer than 30 controls:
            its offsets, and so the centiles, are uncertain). A table from
            ``collect`` also gives ``fit_flagged``, ``fit_flag_reasons`` and
            ``ei_interval_calibrated`` back and, from its
            ``ei_ratio_mean_lo``/``_hi``, ``ei_ratio_mean_centile_lo``/``_hi`` (``centile_lo``/
            ``centile_hi`` on the mean's rows of ``long``): the 90 % interval of the person's
            centile (the centiles of the bounds of the E/I's interval).
        """
        self._check_fitted()
        if layout not in ("wide", "long"):
            raise InvalidInputError(f"layout must be 'wide' or 'long'; got {layout!r}", "layout")
        check_table_frame(table, source)
        if provenance is None:  # a row of EIResult.to_table carries its fit's pipeline and regions
            provenance = table.attrs.get(et.PROVENANCE_ATTR)
        table, provenance = align_table_regions(self, table, provenance, regions, source)
        self.check_pipeline(
            table, provenance, allow_mismatch=allow_pipeline_mismatch, source=source, targets=targets
        )
        check_unique_people(table, source)
        if targets is None:
            targets = [t for t in self.targets_ if t in table.columns]
            if not targets:
                raise InvalidInputError(
                    f"none of the chart's targets ({', '.join(self.targets_[:4])} ...) is a column "
                    f"of the table",
                    source,
                )
            self._warn_no_regions(table, targets, source)
        else:
            targets = [targets] if isinstance(targets, str) else list(targets)
            self._target_index(targets, source="targets")
        ages = table_ages(table, source)
        female = table_sex(table, source)
        labels = table_sites(table, self.site_column_, source, required=False)
        ei_positive = provenance is not None or fitted_on_ei(self.provenance_)
        y = table_targets(table, targets, source, ei_positive=ei_positive)
        if not ei_positive:  # a chart without provenance: its own curves tell
            self._refuse_impossible_ei(table, ages, female, y, targets, source)
        n = ages.size
        if labels is None:
            codes = np.full(n, -1, dtype=np.int64)
        else:
            codes, _ = encode_sites(labels, self.sites_)
        lo, hi = self.chart_range_
        outside = (ages < lo) | (ages > hi)
        # inside the chart's range but beyond the training ages: the spline's boundary pieces
        extrapolated = ~outside & ((ages < self.age_range_[0]) | (ages > self.age_range_[1]))
        # a chart without site terms has no site offsets: nobody is "unseen", unless it was
        # fitted on a single site, whose norms are then applied to people from elsewhere
        single_site = not self.site_effects_ and len(self.sites_) == 1 and labels is not None
        unseen = codes < 0 if (self.site_effects_ or single_site) else np.zeros(n, dtype=bool)
        missing = ~np.isfinite(y)
        if unseen.any():
            warn_unseen_sites(self, labels, unseen, source)
        other_sex = unseen_sex_rows(self, female, source)
        warn_age_extrapolated(self, extrapolated, source)
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
        reliable = self.reliable_[self._target_index(targets)]
        if not reliable.all():
            names = [t for t, ok in zip(targets, reliable) if not ok]
            warnings.warn(
                f"{source}: the chart of target(s) {', '.join(names[:8])}"
                f"{' ...' if len(names) > 8 else ''} did not converge or has a degenerate tail "
                f"(the chart's convergence_ table: converged, tail_z); their scores are "
                f"unreliable and flagged {FLAG_UNRELIABLE}",
                ConvergenceWarning,
                stacklevel=2,
            )
        # (n, T): the row's chart of the target is unreliable (the target's or its adapted site's),
        # or its training site's curves of the target are
        site_bad, training_bad = self._site_unreliable_rows(labels, n, targets, source)
        unreliable = ~reliable[None, :] | site_bad
        poor = table_fit_flagged(table, source)
        flag_parts = [
            np.where(unseen, FLAG_UNSEEN_SITE, ""),
            np.where(other_sex, FLAG_UNSEEN_SEX, ""),
            np.where(self._few_controls_rows(labels, n, source), FLAG_FEW_CONTROLS, ""),
            np.where(outside, FLAG_AGE, ""),
            np.where(extrapolated, FLAG_AGE_EXTRAPOLATED, ""),
            np.where(poor, FLAG_POOR_FIT, ""),
            np.where(table_interval_uncalibrated(table, source), FLAG_UNCALIBRATED, ""),
        ]
        bounds = self._mean_interval_centiles(table, targets, ages, female, codes, source)
        if bounds is not None and not extrapolate and outside.any():
            bounds[outside] = np.nan
        base: dict[str, Any] = {}
        if "subject_id" in table.columns:
            base["subject_id"] = table["subject_id"].astype(str).to_numpy()
        fit_columns = {
            c: table[c].to_numpy()
            for c in (et.INTERVAL_CALIBRATED, et.FIT_FLAGGED, et.FIT_FLAG_REASONS)
            if c in table
        }
        base["age_in_years"] = ages
        base["sex"] = np.where(female == 1, "female", "male")
        base[self.site_column_] = labels if labels is not None else np.full(n, "", dtype=object)
        if layout == "wide":
            flags = _join_flags(
                [
                    *flag_parts,
                    np.where(missing.any(1), FLAG_MISSING, ""),
                    np.where(unreliable.any(1), FLAG_UNRELIABLE, ""),
                    np.where(training_bad.any(1), FLAG_SITE_UNRELIABLE, ""),
                ]
            )
            names = [f"{t}_{kind}" for t in targets for kind in ("centile", "z", "harmonised")]
            values = pd.DataFrame(block.reshape(3 * T, n).T, columns=names, copy=False)
            extra: dict[str, Any] = {}
            if MEAN_TARGET in targets:
                j = targets.index(MEAN_TARGET)
                extra["centile_with_site"] = centile[:, j]
                extra["corrected_value"] = harm[:, j]
            if bounds is not None:
                extra[f"{MEAN_TARGET}_centile_lo"] = bounds[:, 0]
                extra[f"{MEAN_TARGET}_centile_hi"] = bounds[:, 1]
            extra.update(fit_columns)
            extra["flag"] = flags
            out = pd.concat([pd.DataFrame(base), values, pd.DataFrame(extra)], axis=1)
            out.index = table.index  # row k is the table's row k: assigning back aligns
            return out
        frame = {
            k: np.repeat(np.asarray(v, dtype=object if k != "age_in_years" else None), T)
            for k, v in base.items()
        }
        frame["target"] = np.tile(np.asarray(targets, dtype=object), n)
        frame["value"] = y.ravel()
        frame["centile"] = centile.ravel()
        frame["z"] = z.ravel()
        frame["harmonised"] = harm.ravel()
        if bounds is not None:  # the mean's rows only: the interval is the mean E/I's
            is_mean = np.tile(np.asarray(targets) == MEAN_TARGET, n)
            for k, name in enumerate(("centile_lo", "centile_hi")):
                frame[name] = np.where(is_mean, np.repeat(bounds[:, k], T), np.nan)
        for c, v in fit_columns.items():
            frame[c] = np.repeat(v, T)
        frame["flag"] = _join_flags(
            [np.repeat(f, T) for f in flag_parts]
            + [
                np.where(missing.ravel(), FLAG_MISSING, ""),
                np.where(unreliable.ravel(), FLAG_UNRELIABLE, ""),
                np.where(training_bad.ravel(), FLAG_SITE_UNRELIABLE, ""),
            ]
        )
        # each person's index once per target, person by person
        return pd.DataFrame(frame, index=table.index.repeat(T))
