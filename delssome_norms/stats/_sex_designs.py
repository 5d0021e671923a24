"""Checks of the options and the designs shared by the sex-difference tests and the sex gap.

Moved out of :mod:`delssome_norms.stats.sex_differences` (which re-exports what it used to
define): the spline bases and site coding of one cohort's mean and log-sd designs, the checks of
the spline df, alpha and level, and the refusal of sites too small for their own scale effects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from delssome_norms.errors import InvalidInputError
from delssome_norms.stats._cohort import Cohort
from delssome_norms.stats.location_scale import SplineBasis, sum_to_zero


def _check_options(mu_df: int, sigma_df: int, alpha: float, level: float) -> None:
    for name, df in (("mu_df", mu_df), ("sigma_df", sigma_df)):
        if not isinstance(df, (int, np.integer)) or not 3 <= df <= 12:
            raise InvalidInputError(f"{name} must be an integer between 3 and 12, got {df!r}", name)
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must lie in (0, 1), got {alpha}", "alpha")
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must lie in (0, 1), got {level}", "level")


MIN_PER_SITE_SCALE = 5
"""Fewest people per site when sites get their own scale effect (below it the likelihood can be
unbounded: a site's mean and scale terms fit its few people exactly)."""


def _check_site_sizes(cohort: Cohort, scale_site: bool) -> None:
    """Refuse sites too small for per-site scale effects, naming them and the ways out."""
    if not scale_site or len(cohort.site_names) < 2:
        return
    counts = np.bincount(cohort.site, minlength=len(cohort.site_names))
    small_idx = np.flatnonzero(counts < MIN_PER_SITE_SCALE)
    small = [f"{cohort.site_names[j]} ({counts[j]})" for j in small_idx]
    if small:
        raise InvalidInputError(
            f"site(s) with fewer than {MIN_PER_SITE_SCALE} people: {', '.join(small[:8])}"
            f"{' ...' if len(small) > 8 else ''}; their scale effects cannot be estimated. Drop or "
            "merge them, or pass scale_site=False (site effects in the mean only)",
            "site",
        )


SMALL_SITE_CAUSE = 5
"""Sites with fewer people than this are named as a likely cause of a fit that did not converge."""


def _site_ways(cohort: Cohort, scale_site: bool) -> list[str]:
    """The site-related ways out of a fit that did not converge, less any already taken."""
    n_sites = len(cohort.site_names)
    if n_sites < 2:
        return []
    small = int((np.bincount(cohort.site, minlength=n_sites) < SMALL_SITE_CAUSE).sum())
    ways = [f"merge or leave out the {small} site(s) with fewer than {SMALL_SITE_CAUSE} people"]
    ways = ways if small else []
    if scale_site:
        ways.append("scale_site=False")
    return [*ways, "pass site=None to fit no site terms"]


def _check_choice(value: str, allowed: Sequence[str], name: str) -> None:
    if value not in allowed:
        raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}; got {value!r}", name)


# ----------------------------------------------------------------------------- designs
@dataclass(frozen=True)
class _Designs:
    """Spline bases and site coding shared by the mean and scale designs of one cohort."""

    basis_mu: SplineBasis
    basis_sigma: SplineBasis
    n_sites: int

    @classmethod
    def from_cohort(cls, cohort: Cohort, mu_df: int, sigma_df: int) -> _Designs:
        return cls(
            basis_mu=SplineBasis.from_data(cohort.age, mu_df),
            basis_sigma=SplineBasis.from_data(cohort.age, sigma_df),
            n_sites=len(cohort.site_names),
        )

    def _block(
        self,
        basis: SplineBasis,
        age: np.ndarray,
        female: np.ndarray,
        site: np.ndarray | None,
        *,
        sex: bool,
        interaction: bool,
    ) -> np.ndarray:
        spline = basis(age)
        f = female.astype(np.float64)[:, None]
        cols = [np.ones((age.size, 1)), spline]
        if sex:
            cols.append(f)
        if interaction:
            cols.append(spline * f)
        if site is None:
            cols.append(np.zeros((age.size, max(self.n_sites - 1, 0))))
        else:
            cols.append(sum_to_zero(site, self.n_sites))
        return np.hstack(cols)

    def mean(
        self,
        age: np.ndarray,
        female: np.ndarray,
        site: np.ndarray | None,
        *,
        sex: bool = True,
        interaction: bool = False,
    ) -> np.ndarray:
        """Mean design; ``site=None`` gives the population (average-site) rows. Sex column at 1 + df."""
        return self._block(self.basis_mu, age, female, site, sex=sex, interaction=interaction)

    def scale(
        self,
        age: np.ndarray,
        female: np.ndarray,
        site: np.ndarray | None,
        *,
        sex: bool = True,
        interaction: bool = False,
        site_terms: bool = True,
    ) -> np.ndarray:
        """Log-sd design; without ``site_terms`` it has no site columns."""
        block = self._block(self.basis_sigma, age, female, site, sex=sex, interaction=interaction)
        if not site_terms:
            block = block[:, : block.shape[1] - max(self.n_sites - 1, 0)]
        return block
