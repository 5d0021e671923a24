"""New sites and pipeline checks of a :class:`~delssome_norms.norms.chart.GrowthChart`.

See docs/science.md §7.

:meth:`ChartAdaptMixin.adapt` estimates a new site's offsets from its controls with the
population fit frozen (Bethlehem et al. 2022).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError
from delssome_norms.io.ei_table import MEAN_TARGET, REGION_PREFIX, region_index, site_labels, site_text
from delssome_norms.norms.chart_fit import TAIL_IQR, TAIL_Z_MAX
from delssome_norms.norms.chart_regions import ALLOW_MISMATCH, align_table_regions
from delssome_norms.norms.chart_table import (
    FEW_SITE_CONTROLS,
    FLAG_SITE_UNRELIABLE,
    _n_roi_columns,
    _rows,
    check_unique_people,
    fitted_on_ei,
    no_site_column_text,
    table_ages,
    table_sex,
    table_sites,
    table_targets,
)
from delssome_norms.norms.design import encode_sites
from delssome_norms.norms.fitting import fit_site_offsets

if TYPE_CHECKING:
    from delssome_norms.norms.chart import GrowthChart


KIND_COLUMN = "kind"
"""Optional column of a controls table telling controls (``control``) from patients (any other
value), as in the package's reference subjects; only controls are used to adapt."""
MIN_ML_CONTROLS = 10
"""Fewest controls per site for maximum-likelihood offsets (``method="ml"``). On simulated new
sites, ML offsets from 10 controls left the site's z-scores with sd 1.23 (1.20 without adapting at
all), from 5 with a median sd 1.55 and from 2 with 2.17 (up to 48): below 10 they do more harm
than good, while ``method="map"`` shrinks few controls' offsets towards 0."""


NO_MASS_Z = -6.0
"""A chart whose curves give the value 0 a z below this (centile < 1e-9) for a person puts no
E/I ratio at or below 0: a chart of E/I ratios (z of 0 is about -9 to -27 on the reference chart),
not of a quantity that may be negative or zero."""


class ChartAdaptMixin:
    """``adapt`` (new sites) and ``check_pipeline`` of a growth chart."""

    # -- new sites ----------------------------------------------------------------------------
    def adapt(
        self,
        controls: pd.DataFrame,
        *,
        method: str = "ml",
        min_controls: int = FEW_SITE_CONTROLS,
        source: str = "controls",
        provenance: dict[str, Any] | None = None,
        allow_pipeline_mismatch: bool = False,
        regions: Sequence[str] | None = None,
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
            Controls with age (years), sex, site and every target column of the chart, one row
            per person (a repeated ``subject_id`` is refused). With a ``kind`` column only the
            rows whose kind is ``control`` are used (patients are left out with a warning).
        method : {"ml", "map"}
        min_controls : int
            Sites with fewer controls than this (default :data:`FEW_SITE_CONTROLS`, 30) are
            adapted with a warning (:meth:`score` flags their people ``few_site_controls``
            whenever they have fewer than 30, whatever ``min_controls``); ``method="ml"``
            refuses sites with fewer than :data:`MIN_ML_CONTROLS` (10). On simulated new
            sites whose offsets were drawn like the training sites', the z-scores of the new
            site's people had sd 1.23 with 10 controls and ``method="ml"`` (1.20 without adapting
            at all), 1.05 with 30; ``method="map"`` gave 1.07 and 1.04 (but leaves part of an
            extreme offset: z mean +0.5 with 10 controls where ``ml`` gave 0.0).
        provenance : dict, optional
            The controls table's provenance sidecar (:meth:`check_pipeline`).
        allow_pipeline_mismatch : bool
            Warn instead of refusing controls whose atlas or pipeline differs from the chart's.
        regions : sequence of str, optional
            Names of the controls table's regions; the same regions in another order than the
            chart's are matched by name, other regions refused (as in :meth:`score`).

        Returns
        -------
        GrowthChart
            A new chart that knows the new sites (this chart is unchanged).

        Warns
        -----
        ConvergenceWarning
            A new site whose offsets make its curves unreliable: the chart's tail check
            (:attr:`tail_z_`, as at fit time) applied to the site's curves (:meth:`site_tail_z`)
            gives |z| above 20 for a value 3 interquartile ranges beyond the quartiles of the
            population's or of the site's curves. As a fitted target with a degenerate tail,
            the site is adapted but its people's scores of those targets are flagged
            ``chart_unreliable``; with ``strict=True`` the chart refuses instead (nothing is
            adapted). Typical cause: controls with near-constant values, whose sigma offset
            shrinks the site's spread many times over.

        Raises
        ------
        InvalidInputError
            No new site, no control in the chart's age range, no row of ``kind`` ``control``,
            a repeated ``subject_id``, fewer than :data:`MIN_ML_CONTROLS` controls of a site (or
            non-missing values of a target at a site) with ``method="ml"``, offsets that did
            not converge, or (``strict=True``) extreme offsets (see Warns); nothing is adapted
            then.
        """
        self._check_fitted()
        if method not in ("ml", "map"):
            raise InvalidInputError(f"method must be 'ml' or 'map'; got {method!r}", "method")
        if not self.site_effects_:
            raise InvalidInputError(
                "the chart has no site terms, so there are no site offsets to adapt", source
            )
        controls, provenance = align_table_regions(self, controls, provenance, regions, source)
        self.check_pipeline(
            controls,
            provenance,
            allow_mismatch=allow_pipeline_mismatch,
            source=source,
            targets=self.targets_,  # every target is adapted
        )
        check_unique_people(controls, source, sessions=True)  # a repeated person would count twice
        controls = _controls_only(controls, source)
        ages = table_ages(controls, source)
        female = table_sex(controls, source)
        # before table_sites' advice, --site-column, an option adapt does not have
        if site_labels(controls, self.site_column_) is None:
            raise InvalidInputError(
                f"the controls have no site ({no_site_column_text(self.site_column_)}), and "
                "adapt estimates each new site's offsets from that site's controls; add each "
                "control's site to the demographics (a site column) and collect again",
                source,
            )
        labels = table_sites(controls, self.site_column_, source, required=True)
        targets = [t for t in self.targets_ if t in controls.columns]
        if len(targets) != len(self.targets_):
            absent = [t for t in self.targets_ if t not in controls.columns]
            raise InvalidInputError(
                f"controls lack target column(s) {', '.join(absent[:5])}"
                f"{' ...' if len(absent) > 5 else ''}; every target of the chart is needed",
                source,
            )
        ei_positive = provenance is not None or fitted_on_ei(self.provenance_)
        y = table_targets(controls, targets, source, ei_positive=ei_positive)
        if not ei_positive:  # a chart without provenance: its own curves tell
            self._refuse_impossible_ei(controls, ages, female, y, targets, source)
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
            if not keep.any():
                raise InvalidInputError(
                    f"no controls of the new site(s) have ages inside the chart's range "
                    f"{lo:g}-{hi:g} years; nothing to adapt",
                    source,
                )
        codes, new_sites = encode_sites(labels[keep])
        counts = np.bincount(codes, minlength=len(new_sites))
        too_few = [f"{s} ({c})" for s, c in zip(new_sites, counts) if c < MIN_ML_CONTROLS]
        if method == "ml" and too_few:
            raise InvalidInputError(
                f"site(s) {', '.join(too_few[:8])}{' ...' if len(too_few) > 8 else ''} have "
                f"fewer than {MIN_ML_CONTROLS} controls in the chart's age range: maximum-"
                "likelihood offsets from so few people spread z-scores more than not adapting "
                "(sd ~1.5 with 5 controls, ~2.2 with 2); use method 'map' (charts adapt --method "
                "map), which shrinks them towards the training sites, or gather more controls",
                source,
            )
        small = [s for s, c in zip(new_sites, counts) if c < min_controls]
        if small:
            warnings.warn(
                f"{source}: site(s) {', '.join(small)} have fewer than {min_controls} controls; "
                "their offsets are uncertain"
                + (
                    ""
                    if method == "map"
                    else " (with 10 controls ML offsets spread their z-scores ~1.2x too wide; "
                    "method='map' shrinks them)"
                ),
                InputWarning,
                stacklevel=2,
            )
        _check_observed(y[keep], codes, new_sites, targets, method, source)
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
            raise InvalidInputError(
                f"the offsets of site(s) {', '.join(bad[:8])}{' ...' if len(bad) > 8 else ''} did "
                "not converge, so no site was adapted"
                + (
                    "; method 'map' (charts adapt --method map) shrinks uncertain offsets"
                    if method == "ml"
                    else "; check the controls' values against the chart's targets"
                ),
                source,
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
        out.adaptations_ = [*getattr(self, "adaptations_", []), self._adaptation_record(
            controls.loc[keep], ages[keep], female[keep], labels[keep], method, source
        )]  # fmt: skip
        out._saved_sha256 = {}  # not the saved chart any more
        out._site_tail_z = None  # new sites: recompute
        out._report_site_tails(new_sites, source)
        return out

    def _adaptation_record(
        self, used: pd.DataFrame, ages: np.ndarray, female: np.ndarray, labels, method: str, source: str
    ) -> dict[str, Any]:
        """What :meth:`adapt` saves with the chart (``adaptations_``): the chart it started from
        (the ``content_sha256``/``arrays_sha256`` of its ``chart.json`` when it was loaded or
        saved, else None; its provenance label), the controls' source, and per new site the
        controls used (count, sexes, age range in years, ids)."""
        from delssome_norms import __version__

        prov = getattr(self, "provenance_", None) or {}
        sites: dict[str, Any] = {}
        for site in dict.fromkeys(labels):
            rows = np.asarray(labels) == site
            entry: dict[str, Any] = {
                "n_controls": int(rows.sum()),
                "n_female": int(female[rows].sum()),
                "n_male": int((1 - female[rows]).sum()),
                "age_range": [float(ages[rows].min()), float(ages[rows].max())],
            }
            if "subject_id" in used.columns:
                entry["subject_ids"] = [str(v) for v in used["subject_id"].to_numpy()[rows]]
            sites[str(site)] = entry
        return {
            "method": method,
            "controls": source,
            "adapted_from": {
                **dict.fromkeys(("content_sha256", "arrays_sha256")),
                **getattr(self, "_saved_sha256", {}),
                "label": prov.get("label"),
                "synthetic": bool(prov.get("synthetic", False)),
            },
            "delssome_norms_version": __version__,
            "sites": sites,
        }

    # -- reliability of sites' curves ----------------------------------------------------------
    def site_tail_z(self, sites) -> np.ndarray:
        """Tail check of known sites' curves, per site and target: the largest |z| on the site's
        own curves of a value :data:`~delssome_norms.norms.chart_fit.TAIL_IQR` interquartile
        ranges beyond the quartiles, of the population's curves and of the site's own.

        The chart's :attr:`tail_z_` check applied to a site: over the chart's ages (1-year grid)
        and both sexes, the four values ``q25 - 3 IQR`` and ``q75 + 3 IQR`` of the population
        and of the site are scored on the site's curves. A site whose offsets agree with the
        training sites' gives little more than :attr:`tail_z_` (4.72 for a normal distribution;
        5.3-6.6 for the training sites of the reference chart, 10-15 over its 69 targets for
        sites adapted by ML from 10 controls drawn from the chart itself); a
        site whose sigma offset shrinks its spread many times over (controls with near-constant
        values) puts ordinary values of the population hundreds of z-units out, and its people
        get absurd z-scores. Above :data:`~delssome_norms.norms.chart_fit.TAIL_Z_MAX` (20) the
        site's curves of that target are unreliable (:meth:`adapt` warns, :meth:`score` flags
        ``chart_unreliable``). The same holds for a training site of very few people, whose
        fitted sigma offset can shrink its spread as much (6 people: log-sigma offset -1.5 where
        the truth was -0.06): :meth:`fit` warns, :meth:`score` flags ``site_unreliable``
        (:attr:`unreliable_sites_`). For a family of positive values (GG) only the upper side
        is checked, as in :attr:`tail_z_`.

        The values of the sites a chart knows are saved with it (``arrays.npz``,
        ``tail_z_by_site``); charts saved before that compute them when first needed.

        Parameters
        ----------
        sites : sequence of str
            Sites known to the chart.

        Returns
        -------
        ndarray of shape (len(sites), T)
        """
        self._check_fitted()
        sites = [site_text(v) for v in sites]  # "01", 1 and "1" are one site, as everywhere
        cache = getattr(self, "_site_tail_z", None)
        if cache is None:
            cache = self._site_tail_z = {}
        todo = [v for v in dict.fromkeys(sites) if v not in cache]
        if todo:
            codes, _ = encode_sites(todo, self.sites_)
            if (codes < 0).any():
                raise InvalidInputError(
                    f"site(s) {', '.join(v for v, c in zip(todo, codes) if c < 0)} unknown to the chart",
                    "sites",
                )
            fam = self.family_
            lo, hi = self.chart_range_
            ages = np.concatenate([np.arange(lo, hi, 1.0), [hi]])
            ages2 = np.concatenate([ages, ages])
            female = np.repeat([1.0, 0.0], ages.size)
            tidx = np.arange(len(self.targets_))
            shape = (ages2.size, len(self.targets_))
            pop = fam.to_params(self._etas(ages2, female, tidx, None))
            pop = [np.broadcast_to(v, shape) for v in pop]
            for site, code in zip(todo, codes):
                own_codes = np.full(ages2.size, code, dtype=np.int64)
                own = fam.to_params(self._etas(ages2, female, tidx, own_codes))
                own = [np.broadcast_to(v, shape) for v in own]
                z = []
                with np.errstate(all="ignore"):
                    for theta in (pop, own):
                        q25 = fam.ppf(np.full(shape, 0.25), *theta)
                        q75 = fam.ppf(np.full(shape, 0.75), *theta)
                        z.append(fam.zscore(q75 + TAIL_IQR * (q75 - q25), *own))
                        if not fam.positive_y:
                            z.append(fam.zscore(q25 - TAIL_IQR * (q75 - q25), *own))
                z = np.abs(np.concatenate(z))
                cache[site] = np.where(np.isnan(z), np.inf, z).max(axis=0)
        return np.array([cache[v] for v in sites]).reshape(len(sites), len(self.targets_))

    def _failing_sites(self, sites) -> dict[str, list[str]]:
        """Known sites among ``sites`` whose curves fail :meth:`site_tail_z`, with the targets
        that fail (not those whose population chart already fails it: :attr:`reliable_`)."""
        if not self.site_effects_:
            return {}
        known = [s for s in dict.fromkeys(map(site_text, sites)) if s in self.sites_]
        if not known:
            return {}
        fails = (self.site_tail_z(known) > TAIL_Z_MAX) & self.reliable_[None, :]
        return {
            s: [t for t, bad in zip(self.targets_, row) if bad]
            for s, row in zip(known, fails)
            if row.any()
        }

    def _unreliable_sites(self, sites) -> dict[str, list[str]]:
        """Adapted sites among ``sites`` whose curves fail :meth:`site_tail_z`, with the targets
        that fail (their people's scores are flagged ``chart_unreliable``)."""
        return self._failing_sites(s for s in map(site_text, sites) if s in self.adapted_sites_)

    def _unreliable_training_sites(self, sites=None) -> dict[str, list[str]]:
        """Training sites (all, or those among ``sites``) whose fitted curves fail
        :meth:`site_tail_z`, with the targets that fail (flagged ``site_unreliable``)."""
        pool = self.sites_ if sites is None else list(map(site_text, sites))
        return self._failing_sites(s for s in pool if s not in self.adapted_sites_)

    @property
    def unreliable_sites_(self) -> dict[str, list[str]]:
        """Known sites whose curves fail the tail check (:meth:`site_tail_z` above
        :data:`~delssome_norms.norms.chart_fit.TAIL_Z_MAX`), with the failing targets: training
        sites (their people's scores are flagged ``site_unreliable``) and adapted ones (flagged
        ``chart_unreliable``). Targets whose population chart fails (:attr:`reliable_`) are not
        listed. Empty for a chart without site terms."""
        self._check_fitted()
        return self._failing_sites(self.sites_)

    def _report_site_tails(self, sites, source: str, training: bool = False) -> None:
        """Warn (raise with ``strict``), as a fit with a degenerate tail does, about new sites
        (``training``: training sites of a new fit) whose offsets make their curves unreliable."""
        bad = self._unreliable_training_sites(sites) if training else self._unreliable_sites(sites)
        if not bad:
            return
        z = self.site_tail_z(list(bad))
        fam = self.family_
        log_sigma = "sigma" in self.site_effects_ and fam.links[fam.params.index("sigma")] == "log"
        people = getattr(self, "site_n_", None) or {}
        parts = []
        for (site, targets), row in zip(bad.items(), z):
            j = self.targets_.index(targets[0])
            scale = (
                f", sigma x{np.exp(self.site_effects_['sigma'][j, self.sites_.index(site)]):.3g}"
                if log_sigma
                else ""
            )
            n = f" ({people[site]} people)" if training and site in people else ""
            parts.append(
                f"{site}{n}: {', '.join(targets[:5])}{' ...' if len(targets) > 5 else ''} "
                f"(e.g. {targets[0]}: tail |z| {row[j]:.3g}{scale})"
            )
        what = "fitted offsets of {} training site(s)" if training else "adapted offsets of {} site(s)"
        msg = (
            f"{source}: the {what.format(len(bad))} are extreme: "
            + "; ".join(parts[:6])
            + f"{' ...' if len(parts) > 6 else ''}. A value {TAIL_IQR:g} interquartile ranges "
            f"beyond the quartiles gets |z| > {TAIL_Z_MAX:g} on these sites' curves (4.7 for a "
            "normal distribution), so their people get meaningless z-scores; "
        )
        if training:
            msg += (
                f"their scores are flagged {FLAG_SITE_UNRELIABLE}. A site of few people leaves "
                f"its sigma offset poorly determined: refit with site terms of mu only "
                "(random_sites=['mu'], charts fit --random-sites mu), or pool the site with a "
                "similar one or leave it out"
            )
        else:
            msg += (
                "their scores are flagged chart_unreliable. Check the site's controls "
                "(near-constant values, wrong units or columns?) or use method 'map'"
            )
        if getattr(self, "strict", False):
            raise InvalidInputError(msg, source)
        warnings.warn(msg, ConvergenceWarning, stacklevel=3)

    # -- provenance ---------------------------------------------------------------------------
    def _refuse_impossible_ei(
        self, table: pd.DataFrame, ages, female, y: np.ndarray, targets: list, source: str
    ) -> None:
        """Refuse E/I ratios <= 0 (``ei_ratio_mean``, ``ei_ratio_roi_<j>``) in a table scored
        (:meth:`score`) or adapted to (:meth:`adapt`) on a chart whose provenance does not say
        what its targets are (fitted on a table without ``collect``'s sidecar) when the chart's
        own curves put no value at or below 0 for that person (the z of 0 on their population
        curves below :data:`NO_MASS_Z`, as on every chart of E/I ratios, which are positive):
        such a value is a corrupted table, not a person at an extreme centile. A chart of
        another quantity under these names (e.g. centred values, whose curves cover 0) takes
        any value.

        Raises
        ------
        InvalidInputError
            Naming the column, the rows and their ``subject_id``.
        """
        for j, t in enumerate(targets):
            if t != MEAN_TARGET and not str(t).startswith(REGION_PREFIX):
                continue
            rows = np.flatnonzero(y[:, j] <= 0)
            if not rows.size:
                continue
            zero = np.zeros((rows.size, 1))
            _, z0, _ = self.score_arrays(ages[rows], female[rows], None, zero, [t])
            bad = rows[z0[:, 0] < NO_MASS_Z]
            if not bad.size:
                continue
            who = ""
            if "subject_id" in table.columns:
                ids = table["subject_id"].astype(str).to_numpy()[bad]
                who = f" (subject_id {', '.join(ids[:5])}{' ...' if bad.size > 5 else ''})"
            raise InvalidInputError(
                f"column {t} has E/I ratio(s) <= 0 in row(s) {_rows(bad)}{who}: an E/I ratio "
                f"S_E/S_I is positive, and the chart's curves of {t} put no value at or below 0 "
                "(a chart of E/I ratios); fix or remove these values (an empty cell is scored "
                "as missing_value)",
                source,
            )

    def check_pipeline(
        self,
        table: pd.DataFrame,
        provenance: dict[str, Any] | None = None,
        *,
        allow_mismatch: bool = False,
        source: str = "table",
        targets: Sequence[str] | None = None,
    ) -> list[tuple[str, Any, Any]]:
        """Refuse a table whose atlas or pipeline differs from the one the chart was fitted on.

        Compared: the number of regional columns (``ei_ratio_roi_*``) of the table with the
        chart's atlas, and, where both the table's provenance sidecar and the chart record them,
        the pipeline fields (atlas and region names, SC, maps, design, mode, settings; see
        :data:`delssome_norms.io.provenance.PIPELINE_FIELDS`). A table with only some of the
        chart's regional columns (``ei_ratio_roi_<k>``, ``k`` below the chart's number of
        regions) is refused when regional targets are used (they need all of them, named in the
        message) and taken as it is when none is; more regional columns than the chart's, or
        higher indices, are another atlas: refused either way.

        Parameters
        ----------
        table : pandas.DataFrame
        provenance : dict, optional
            The table's sidecar (``collect``'s ``<stem>.provenance.json``).
        allow_mismatch : bool
            Warn (:class:`~delssome_norms.errors.InputWarning`) instead of raising; a different
            number of regional columns is refused all the same (those charts describe other
            regions).
        source : str
            Name of the table in messages.
        targets : sequence of str, optional
            The targets to be used (:meth:`score`'s ``targets``); default: the chart's targets
            that are columns of the table.

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
        if "n_regions" not in chart_pipe:
            n_chart = _n_roi_columns(self.targets_)
            if n_chart:
                chart_pipe["n_regions"] = n_chart
        if targets is None:
            targets = [t for t in self.targets_ if t in table.columns]
        targets = [targets] if isinstance(targets, str) else list(targets)
        lacks = _lacking_region_columns(table.columns, chart_pipe.get("n_regions"))
        n_table = _n_roi_columns(table.columns)
        # only some of the chart's regional columns: their count matters to regional targets only
        if n_table and (not lacks or any(region_index(t) is not None for t in targets)):
            table_pipe["n_regions"] = n_table
        diffs = pipeline_differences(table_pipe, chart_pipe)
        if not diffs:
            return []
        field, a, b = diffs[0]
        what = "regions" if field == "n_regions" else field
        detail = f"{field} is {short(a)} in the table but {short(b)} in the chart"
        if field == "settings_sha256":  # both sides' settings, where recorded: name what differs
            from delssome_norms.norms.chart_pipeline_check import settings_differences as sd
            from delssome_norms.norms.chart_pipeline_check import settings_message

            named = sd(provenance, getattr(self, "provenance_", None))
            what, detail = ("settings", settings_message(named)) if named else (what, detail)
        msg = (
            f"the table's {what} differ{'' if what in ('regions', 'settings') else 's'} from the "
            f"chart's: {detail}"
            + (f" (also {', '.join(d[0] for d in diffs[1:])})" if len(diffs) > 1 else "")
        )
        other_regions = "n_regions" in {d[0] for d in diffs}
        if allow_mismatch and not other_regions:
            warnings.warn(f"{source}: {msg}; used anyway ({ALLOW_MISMATCH})", InputWarning, stacklevel=3)
            return diffs
        gaps = _region_column_gaps(table.columns, self.targets_) if other_regions else ""
        if other_regions and lacks:  # some of the chart's columns (deleted), for regional targets
            plain = [t for t in self.targets_ if region_index(t) is None and t in table.columns]
            advice = (
                f"the table lacks {', '.join(lacks[:3])}{' ...' if len(lacks) > 3 else ''} "
                f"({len(lacks)} of the chart's {chart_pipe['n_regions']} regional columns): "
                f"regional targets need every regional column of the chart, also with "
                f"{ALLOW_MISMATCH}; restore the table's columns as collect wrote them"
                + (
                    f", or name the targets to score (--targets {','.join(plain)}; targets=... in "
                    "Python)"
                    if plain and set(targets) != set(self.targets_)
                    else ""
                )
            )
        elif gaps:  # a column deleted or added by hand, not another atlas
            advice = (
                f"{gaps}: every regional column of the chart, and no other, is needed, also with "
                f"{ALLOW_MISMATCH}; restore the table's columns as collect wrote them"
            )
        elif other_regions:  # regional charts of other regions cannot score these columns
            advice = (
                "the regional charts describe other regions, so the table cannot be used even "
                f"with {ALLOW_MISMATCH}: fit a chart on tables of this atlas"
            )
        else:
            advice = (
                "use a chart fitted with the same atlas and pipeline, or "
                f"{ALLOW_MISMATCH} to use the table anyway"
            )
        raise InvalidInputError(f"{msg}; {advice}", source)


def _controls_only(controls: pd.DataFrame, source: str) -> pd.DataFrame:
    """The rows of ``controls`` whose :data:`KIND_COLUMN` is ``control`` (all without the column).

    A patient's offset from the norm is what the chart is to measure: used to adapt a site, it
    would be absorbed into the site's offsets and hidden from every person of that site.
    """
    if KIND_COLUMN not in controls.columns:
        return controls
    kind = controls[KIND_COLUMN].astype(object).where(controls[KIND_COLUMN].notna(), "")
    is_control = kind.astype(str).str.strip().str.lower().eq("control").to_numpy()
    if is_control.all():
        return controls
    values = sorted({str(v) for v in kind[~is_control]})
    if not is_control.any():
        raise InvalidInputError(
            f"no row of column {KIND_COLUMN} is 'control' (found {', '.join(values[:5])}): a "
            "site's offsets are estimated from its controls only, and a site with only patients "
            "cannot be adapted (score its people without adapting: they are flagged unseen_site)",
            source,
        )
    warnings.warn(
        f"{source}: {int((~is_control).sum())} row(s) whose {KIND_COLUMN} is not 'control' "
        f"({', '.join(values[:5])}; rows {_rows(np.flatnonzero(~is_control))}) are not used: "
        "only controls estimate a site's offsets",
        InputWarning,
        stacklevel=3,
    )
    return controls.loc[is_control].reset_index(drop=True)


def _check_observed(
    y: np.ndarray, codes: np.ndarray, sites: list, targets: list, method: str, source: str
) -> None:
    """Refuse ML offsets of a target with fewer than :data:`MIN_ML_CONTROLS` values at a site.

    The per-site count of controls says nothing about a target whose values are mostly missing:
    its ML offsets would rest on those few values (or, with none, silently stay 0). With
    ``method="map"`` such offsets shrink towards 0; targets without any value are named in a
    warning.
    """
    observed = np.zeros((len(sites), y.shape[1]), dtype=np.int64)
    np.add.at(observed, codes, np.isfinite(y).astype(np.int64))
    limit = MIN_ML_CONTROLS if method == "ml" else 1
    bad = np.argwhere(observed < limit)
    if not bad.size:
        return
    shown = ", ".join(f"{targets[t]} at {sites[s]} ({observed[s, t]})" for s, t in bad[:6])
    more = f" (and {len(bad) - 6} more)" if len(bad) > 6 else ""
    if method == "ml":
        raise InvalidInputError(
            f"too few non-missing control values for maximum-likelihood offsets (fewer than "
            f"{MIN_ML_CONTROLS}): {shown}{more}; use method 'map' (charts adapt --method map), "
            "which shrinks them towards the training sites, or fill in the missing values",
            source,
        )
    warnings.warn(
        f"{source}: no control value for {shown}{more}: these offsets stay 0 (population "
        "curves for that site and target)",
        InputWarning,
        stacklevel=3,
    )


def _lacking_region_columns(columns: Sequence[str], n_chart: Any) -> list[str]:
    """The chart's regional columns (``ei_ratio_roi_0`` .. ``ei_ratio_roi_<n_chart - 1>``) that
    the table lacks, when its own are some of them (none beyond); empty otherwise."""
    have = {region_index(c) for c in columns} - {None}
    if not isinstance(n_chart, int) or not have or max(have) >= n_chart:
        return []
    return [f"{REGION_PREFIX}{k}" for k in range(n_chart) if k not in have]


def _region_column_gaps(columns: Sequence[str], targets: Sequence[str]) -> str:
    """For a region-count mismatch: the chart's regional columns the table lacks and the
    table's it has beyond them (a deleted or added column, rather than another atlas), e.g.
    ``"the table lacks ei_ratio_roi_5"``; empty when more than 3 differ (another atlas)."""
    ours = [t for t in targets if region_index(t) is not None]
    theirs = [str(c) for c in columns if region_index(c) is not None]
    lacks = [t for t in ours if t not in set(theirs)]
    extra = [c for c in theirs if c not in set(ours)]
    if len(lacks) > 3 or len(extra) > 3 or not (lacks or extra):
        return ""
    parts = []
    if lacks:
        parts.append(f"lacks {', '.join(lacks)}")
    if extra:
        parts.append(f"has {', '.join(extra)} beyond the chart's regions")
    return f"the table {' and '.join(parts)}"
