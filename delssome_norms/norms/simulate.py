"""Synthetic cohorts drawn from a known growth-chart model (for tests, calibration and benchmarks).

The truth is inside the model class that :class:`~delssome_norms.norms.chart.GrowthChart` fits:
mu is a cubic B-spline of age with one interior knot (``bs(df = 4)``) plus a sex effect and a
site offset, log sigma a cubic polynomial of age (``bs(df = 3)``) plus sex and site offsets, and nu,
tau are constants. Each target (``ei_ratio_mean``, ``ei_ratio_roi_0`` ...) has its own
coefficients; site offsets share a common part across targets, as scanner effects do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from delssome_norms.io.ei_table import MEAN_TARGET, region_columns
from delssome_norms.norms.distributions import Family, get_family
from delssome_norms.norms.splines import BSplineBasis

_SITES = ("WashU", "MGH", "UPenn", "NUS", "NTU", "LMU", "HCP", "CamCAN", "PNC", "UKB")


@dataclass(frozen=True)
class SyntheticTruth:
    """The generating model of a synthetic cohort.

    Attributes
    ----------
    family : Family
    targets : list of str
    sites : list of str
    mu_basis, sigma_basis : BSplineBasis
        Age bases of mu (df 4) and log sigma (df 3).
    mu_coef : ndarray of shape (T, 4 + 2)
        Intercept, spline coefficients and female effect of mu per target.
    sigma_coef : ndarray of shape (T, 3 + 2)
        Same for log sigma.
    nu, tau : ndarray of shape (T,)
        Constant shape parameters (parameter scale).
    site_mu, site_sigma : ndarray of shape (T, S)
        Site offsets of mu and log sigma.
    """

    family: Family
    targets: list[str]
    sites: list[str]
    mu_basis: BSplineBasis
    sigma_basis: BSplineBasis
    mu_coef: np.ndarray
    sigma_coef: np.ndarray
    nu: np.ndarray
    tau: np.ndarray
    site_mu: np.ndarray
    site_sigma: np.ndarray

    def parameters(self, ages, female, site_codes: np.ndarray | None = None) -> list[np.ndarray]:
        """True distribution parameters, each of shape (n, T).

        Parameters
        ----------
        ages : array-like of shape (n,), years
        female : array-like of shape (n,), 1 = female
        site_codes : ndarray of int, shape (n,), optional
            Index into ``sites`` (None = population, no site offset).
        """
        ages = np.asarray(ages, dtype=np.float64)
        female = np.asarray(female, dtype=np.float64)
        xm = np.column_stack([np.ones_like(ages), self.mu_basis.transform(ages), female])
        xs = np.column_stack([np.ones_like(ages), self.sigma_basis.transform(ages), female])
        mu = xm @ self.mu_coef.T
        log_sigma = xs @ self.sigma_coef.T
        if site_codes is not None:
            mu = mu + self.site_mu[:, site_codes].T
            log_sigma = log_sigma + self.site_sigma[:, site_codes].T
        params = [mu, np.exp(log_sigma)]
        if self.family.n_params > 2:
            params.append(np.broadcast_to(self.nu, mu.shape))
        if self.family.n_params > 3:
            params.append(np.broadcast_to(self.tau, mu.shape))
        return params

    def centiles(self, q: float, ages, female, site_codes=None) -> np.ndarray:
        """True ``q``-th centile (q in percent) of every target, shape (n, T)."""
        return self.family.ppf(q / 100.0, *self.parameters(ages, female, site_codes))


def make_truth(
    n_targets: int = 69,
    n_sites: int = 6,
    family: str = "SHASHo2",
    seed: int = 0,
    age_range: tuple[float, float] = (5.0, 98.0),
    site_sd_mu: float = 0.05,
    site_sd_log_sigma: float = 0.08,
) -> SyntheticTruth:
    """Draw a generating model: E/I-like curves that fall with age and rise late in life.

    Parameters
    ----------
    n_targets : int
        ``ei_ratio_mean`` plus ``n_targets - 1`` regions.
    n_sites : int
        Number of sites (<= 10 named sites, then ``site<k>``).
    family : str
        ``SHASHo2`` (default) or another family with mu identity and sigma log links.
    seed : int
    age_range : (float, float)
        Ages are drawn uniformly in this range (years).
    site_sd_mu, site_sd_log_sigma : float
        Spread of the site offsets of mu and log sigma.
    """
    fam = get_family(family)
    if fam.links[0] != "identity" or fam.links[1] != "log":
        raise ValueError("make_truth needs a family with an identity mu link and a log sigma link")
    rng = np.random.default_rng(seed)
    lo, hi = age_range
    mu_basis = BSplineBasis((0.5 * (lo + hi),), (lo, hi), 3, False)
    sigma_basis = BSplineBasis((), (lo, hi), 3, False)
    T = n_targets
    targets = [MEAN_TARGET, *region_columns(T - 1)]
    sites = [_SITES[i] if i < len(_SITES) else f"site{i}" for i in range(n_sites)]
    base = 1.4 + rng.normal(0.0, 0.1, T)
    # shape of the curve (B-spline coefficients relative to the value at the youngest age)
    shape = np.array([-0.3, -0.9, -1.4, -1.2])
    mu_coef = np.column_stack([base, shape[None, :] * rng.uniform(0.8, 1.2, (T, 1)), np.full(T, 0.05)])
    sigma_coef = np.column_stack(
        [
            np.log(0.08) + rng.normal(0.0, 0.1, T),
            np.tile([0.25, -0.1, 0.15], (T, 1)) * rng.uniform(0.5, 1.5, (T, 1)),
            np.full(T, -0.03),
        ]
    )
    nu = rng.uniform(0.1, 0.4, T)
    tau = rng.uniform(0.9, 1.4, T)
    common_mu = rng.normal(0.0, site_sd_mu, n_sites)
    common_sigma = rng.normal(0.0, site_sd_log_sigma, n_sites)
    site_mu = common_mu[None, :] + rng.normal(0.0, 0.3 * site_sd_mu, (T, n_sites))
    site_sigma = common_sigma[None, :] + rng.normal(0.0, 0.3 * site_sd_log_sigma, (T, n_sites))
    site_mu -= site_mu.mean(1, keepdims=True)
    site_sigma -= site_sigma.mean(1, keepdims=True)
    return SyntheticTruth(
        fam, targets, sites, mu_basis, sigma_basis, mu_coef, sigma_coef, nu, tau, site_mu, site_sigma
    )


def simulate_cohort(
    truth: SyntheticTruth, n: int, seed: int = 0, id_prefix: str = "syn"
) -> pd.DataFrame:
    """Draw people from ``truth``: ages uniform over its range, sexes and sites at random.

    Returns
    -------
    pandas.DataFrame
        ``subject_id, age_in_years, sex, numeric_sex, site, scanner, site_scanner`` and one
        column per target.
    """
    rng = np.random.default_rng(seed)
    lo, hi = truth.mu_basis.boundary_knots
    ages = rng.uniform(lo, hi, n)
    female = rng.integers(0, 2, n).astype(np.float64)
    codes = rng.integers(0, len(truth.sites), n)
    params = truth.parameters(ages, female, codes)
    y = truth.family.ppf(rng.uniform(size=params[0].shape), *params)
    cols = {
        "subject_id": [f"{id_prefix}-{i:06d}" for i in range(n)],
        "age_in_years": ages,
        "sex": np.where(female == 1, "female", "male"),
        "numeric_sex": female.astype(int),
        "site": np.asarray(truth.sites, dtype=object)[codes],
        "scanner": "Siemens",
    }
    table = pd.DataFrame(cols)
    table["site_scanner"] = table["site"] + "_Siemens"
    values = pd.DataFrame(y, columns=truth.targets)
    return pd.concat([table, values], axis=1)
