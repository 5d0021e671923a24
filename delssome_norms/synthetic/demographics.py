"""People of the synthetic cohort: trajectories, regional pattern, sites, E/I table, patients.

See :mod:`delssome_norms.synthetic` (docs/science.md §8).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from delssome_norms.datasets.atlas import DK68_REGIONS, region_classes
from delssome_norms.datasets.maps import load_default_maps, standardised
from delssome_norms.io import ei_table as et
from delssome_norms.synthetic.ei_mapping import EIMapping
from delssome_norms.synthetic.spec import EI_QUANTUM, CohortSpec, TrajectorySpec

# --------------------------------------------------------------------------------------------------
# Population ground truth
# --------------------------------------------------------------------------------------------------


def target_trajectory(age: np.ndarray, trajectory: TrajectorySpec) -> np.ndarray:
    """A man's population regional-mean E/I at ``age`` [years] (see :class:`TrajectorySpec`).

    Parameters
    ----------
    age : ndarray
        Ages in years, any shape.
    trajectory : TrajectorySpec

    Returns
    -------
    ndarray of the shape of ``age``
        E/I (unitless).

    Examples
    --------
    >>> t = target_trajectory(np.array([5.0, 25.0, 75.0, 98.0]), TrajectorySpec())
    >>> bool(t[0] > t[1] > t[2] < t[3])
    True
    """
    t = trajectory
    a = np.asarray(age, dtype=np.float64)
    child = t.child_drop * np.exp(-(a - 4.5) / t.child_tau)
    midlife = t.midlife_drop / (1.0 + np.exp(-(a - t.midlife_centre) / t.midlife_width))
    late = t.late_rise_rate * t.late_width * np.logaddexp(0.0, (a - t.late_onset) / t.late_width)
    return t.plateau + child - midlife + late


def myelin_map(regions: Sequence[str] = DK68_REGIONS) -> np.ndarray:
    """The shipped default T1w/T2w myelin map, z-scored: the ``m`` of the ground truth.

    :func:`~delssome_norms.datasets.maps.load_default_maps` (real HCP group data reduced to the
    DK68 regions); highest in sensory and motor cortex.

    Parameters
    ----------
    regions : sequence of str
        Must be :data:`~delssome_norms.datasets.DK68_REGIONS` (others raise ``ValueError``).

    Returns
    -------
    ndarray of shape (68,)
        Mean 0, SD 1 (ddof 0).
    """
    if tuple(regions) != DK68_REGIONS:
        raise ValueError("the default myelin map covers the 68 DK regions only")
    return standardised(load_default_maps().myelin)


def regional_pattern(gradient: np.ndarray, spec: CohortSpec) -> np.ndarray:
    """The population's regional wEI pattern ``k m + b g`` (shape (N,); zero in the null cohort).

    ``m`` is :func:`myelin_map` (DK68 only; ``k`` must be 0 for other atlases).

    Parameters
    ----------
    gradient : ndarray of shape (N,)
        The regional gradient ``g``.
    spec : CohortSpec
        Gives ``k`` (``myelin_slope``) and ``b`` (``gradient_slope``).

    Returns
    -------
    ndarray of shape (N,)
    """
    g = np.asarray(gradient, dtype=np.float64)
    pattern = spec.gradient_slope * g
    if spec.myelin_slope != 0.0:
        if len(g) != len(DK68_REGIONS):
            raise ValueError("the class term needs the 68 DK regions")
        pattern = pattern + spec.myelin_slope * myelin_map()
    return pattern


def population_intercept(
    target_ei: np.ndarray, pattern: np.ndarray, sigma: float, mapping: EIMapping
) -> np.ndarray:
    """wEI intercept ``a`` such that ``mean_i E/I(a + pattern_i) = target_ei``.

    Parameters
    ----------
    target_ei : ndarray of shape (K,)
        Target regional-mean E/I values.
    pattern : ndarray of shape (N,)
        Regional wEI pattern added to the intercept.
    sigma : float
        Noise amplitude.
    mapping : EIMapping

    Returns
    -------
    ndarray of shape (K,), accurate to 1e-10 wEI.
    """
    target = np.asarray(target_ei, dtype=np.float64)
    low = np.full(target.shape, -1.0)
    high = np.full(target.shape, 6.0)
    for _ in range(50):
        mid = 0.5 * (low + high)
        mean_ei = mapping(mid[:, None] + pattern[None, :], sigma).mean(axis=1)
        too_high = mean_ei > target
        low = np.where(too_high, mid, low)
        high = np.where(too_high, high, mid)
    return 0.5 * (low + high)


def intercept_curve(
    ages: np.ndarray, female: np.ndarray, gradient: np.ndarray, spec: CohortSpec, mapping: EIMapping
) -> np.ndarray:
    """Population wEI intercept ``a(age, sex)`` for each person (smooth in age).

    Solved exactly on a 0.05-year grid per sex (:func:`population_intercept`) and interpolated
    linearly (error < 1e-6 wEI).

    Parameters
    ----------
    ages : ndarray of shape (P,)
        Years.
    female : ndarray of shape (P,)
        1 for women, 0 for men.
    gradient : ndarray of shape (N,)
        The regional gradient.
    spec : CohortSpec
    mapping : EIMapping

    Returns
    -------
    ndarray of shape (P,)
    """
    grid, curves = _intercept_grid(spec, mapping, np.asarray(gradient, dtype=np.float64).tobytes())
    out = np.empty(len(ages))
    for sex in (0, 1):
        mask = np.asarray(female) == sex
        out[mask] = np.interp(np.asarray(ages)[mask], grid, curves[sex])
    return out


@lru_cache(maxsize=8)
def _intercept_grid(
    spec: CohortSpec, mapping: EIMapping, gradient: bytes
) -> tuple[np.ndarray, np.ndarray]:
    """``a(age, sex)`` on the 0.05-year grid, shape (2, n_ages) (men, women); cached."""
    grid = np.arange(spec.age_min, spec.age_max + 0.05, 0.05)
    pattern = regional_pattern(np.frombuffer(gradient, dtype=np.float64), spec)
    base = target_trajectory(grid, spec.trajectory)
    curves = np.stack(
        [
            population_intercept(base + spec.female_shift * sex, pattern, spec.sigma, mapping)
            for sex in (0, 1)
        ]
    )
    grid.setflags(write=False)  # cached: shared by every later call
    curves.setflags(write=False)
    return grid, curves


# --------------------------------------------------------------------------------------------------
# People, sites and the E/I table
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class People:
    """Demographics and ground truth of a set of synthetic people (arrays of length P).

    Attributes
    ----------
    subject_id : ndarray of str
    age : ndarray of float
        Years, rounded to 0.001.
    female : ndarray of int
        1 for women (``numeric_sex``).
    site : ndarray of int
        Index into the spec's sites.
    wei_intercept, wei_slope : ndarray of float
        Ground-truth wEI coefficients ``a_p`` and ``b_p``: wEI = a_p + k m + b_p g, with ``k``
        the spec's ``myelin_slope`` and ``m`` the :func:`myelin_map`.
    ei_true : ndarray of shape (P, N)
        E/I of the model at the ground truth (:class:`EIMapping`).
    ei : ndarray of shape (P, N)
        Reported E/I: ``ei_true`` with estimation error, quantised to :data:`EI_QUANTUM`.
    """

    subject_id: np.ndarray
    age: np.ndarray
    female: np.ndarray
    site: np.ndarray
    wei_intercept: np.ndarray
    wei_slope: np.ndarray
    ei_true: np.ndarray
    ei: np.ndarray


def sample_demographics(
    rng: np.random.Generator, spec: CohortSpec
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ages, sexes and sites of the normative cohort.

    Each site's ages follow a scaled Beta distribution over its range; the first person of the
    youngest-starting site is placed at ``age_min`` and the first of the oldest-ending site at
    ``age_max`` (the second, if one site starts youngest and ends oldest; :class:`CohortSpec`
    checks that these are its sites' extreme ages). Sex is female with probability 1/2.

    Parameters
    ----------
    rng : numpy.random.Generator
    spec : CohortSpec

    Returns
    -------
    age : ndarray of shape (n_people,), years rounded to 0.001
    female : ndarray of shape (n_people,), int 0/1
    site : ndarray of shape (n_people,), int site index
    """
    ages, sites = [], []
    for k, s in enumerate(spec.sites):
        ages.append(s.age_min + (s.age_max - s.age_min) * rng.beta(s.beta_a, s.beta_b, s.n))
        sites.append(np.full(s.n, k))
    age = np.concatenate(ages)
    site = np.concatenate(sites)
    starts = np.cumsum([0] + [s.n for s in spec.sites])[:-1]
    youngest = int(np.argmin([s.age_min for s in spec.sites]))
    oldest = int(np.argmax([s.age_max for s in spec.sites]))
    age[starts[youngest]] = spec.age_min
    # one site holding both ends (CohortSpec guarantees it has two people): its second person
    age[starts[oldest] + int(oldest == youngest)] = spec.age_max
    age = np.clip(np.round(age, 3), spec.age_min, spec.age_max)
    female = (rng.random(spec.n_people) < 0.5).astype(np.int64)
    return age, female, site


def sample_site_effects(rng: np.random.Generator, spec: CohortSpec) -> tuple[np.ndarray, np.ndarray]:
    """Random site offsets: wEI mean shifts (centred) and scale factors (geometric mean 1).

    Parameters
    ----------
    rng : numpy.random.Generator
    spec : CohortSpec
        Gives the sites and ``site_mean_sd``/``site_log_scale_sd``.

    Returns
    -------
    mean_offset : ndarray of shape (n_sites,), wEI units
    scale : ndarray of shape (n_sites,), unitless
    """
    n = len(spec.sites)
    offset = rng.normal(0.0, spec.site_mean_sd, n)
    log_scale = rng.normal(0.0, spec.site_log_scale_sd, n)
    return offset - offset.mean(), np.exp(log_scale - log_scale.mean())


def quantise_ei(ei: np.ndarray) -> np.ndarray:
    """Round E/I to :data:`EI_QUANTUM` (the stored resolution).

    Parameters
    ----------
    ei : ndarray

    Returns
    -------
    ndarray of the shape of ``ei``
    """
    return np.round(np.asarray(ei, dtype=np.float64) / EI_QUANTUM) * EI_QUANTUM


def make_people(
    rng_person: np.random.Generator,
    rng_noise: np.random.Generator,
    ages: np.ndarray,
    female: np.ndarray,
    site: np.ndarray,
    site_effects: tuple[np.ndarray, np.ndarray],
    gradient: np.ndarray,
    spec: CohortSpec,
    mapping: EIMapping,
    id_prefix: str = "synth-",
) -> People:
    """Draw ground truth and reported E/I for given demographics.

    Parameters
    ----------
    rng_person, rng_noise : numpy.random.Generator
        Streams for the person-level deviations and for the estimation error (kept separate so the
        null cohort gets the same draws).
    ages, female, site : ndarray of shape (P,)
    site_effects : (mean_offset, scale)
        From :func:`sample_site_effects`.
    gradient : ndarray of shape (N,)
    spec : CohortSpec
    mapping : EIMapping
    id_prefix : str
        Subject ids are ``f"{id_prefix}{k:05d}"``, k from 1.

    Returns
    -------
    People
    """
    p = len(ages)
    n = len(gradient)
    u = rng_person.standard_normal(p)
    v = rng_person.standard_normal(p)
    e_global = rng_noise.standard_normal(p)
    e_regional = rng_noise.standard_normal((p, n))
    offset, scale = site_effects
    sd = spec.person_sd * np.where(female == 1, spec.female_sd_ratio, 1.0)
    a = intercept_curve(ages, female, gradient, spec, mapping) + offset[site] + scale[site] * sd * u
    b = spec.gradient_slope * np.exp(spec.gradient_slope_log_sd * v)
    wei = a[:, None] + b[:, None] * np.asarray(gradient)[None, :] + class_term(len(gradient), spec)
    ei_true = mapping(wei, spec.sigma)
    error = spec.noise_global_cv * e_global[:, None] + spec.noise_regional_cv * e_regional
    ei = quantise_ei(ei_true * np.exp(error))
    ids = np.array([f"{id_prefix}{k:05d}" for k in range(1, p + 1)])
    return People(ids, np.asarray(ages, float), np.asarray(female), np.asarray(site), a, b, ei_true, ei)


def class_term(n: int, spec: CohortSpec) -> np.ndarray:
    """Regional wEI offset of the myelin (class) map, ``myelin_slope * m``.

    Parameters
    ----------
    n : int
        Number of regions; used only for the zeros returned when ``myelin_slope`` is 0.
    spec : CohortSpec

    Returns
    -------
    ndarray of shape (n,)

    Raises
    ------
    ValueError
        A non-zero ``spec.myelin_slope`` with ``n`` other than 68 (the myelin map is DK68 only,
        as in :func:`regional_pattern`).
    """
    if spec.myelin_slope == 0.0:
        return np.zeros(n)
    if n != len(DK68_REGIONS):
        raise ValueError(f"the class term needs the 68 DK regions, got n = {n}")
    return spec.myelin_slope * myelin_map()


def ei_table(people: People, spec: CohortSpec) -> pd.DataFrame:
    """The cohort table of the charts (docs/science.md §5) for a set of people.

    Columns: ``subject_id, age_in_years, sex, site, scanner, site_scanner, numeric_sex,
    ei_ratio_mean, ei_ratio_roi_0 .. ei_ratio_roi_{N-1}``; ``ei_ratio_mean`` is the mean of the
    regional values.

    Parameters
    ----------
    people : People
        Their reported E/I (``people.ei``) goes into the table.
    spec : CohortSpec
        Gives the site and scanner names.

    Returns
    -------
    pandas.DataFrame
    """
    sites = spec.sites
    return et.cohort_table(
        people.subject_id,
        people.age,
        people.female,
        [sites[k].name for k in people.site],
        [sites[k].scanner for k in people.site],
        people.ei,
    )


# --------------------------------------------------------------------------------------------------
# Patients
# --------------------------------------------------------------------------------------------------

PATIENT_DEVIATIONS: tuple[tuple[str, str, float], ...] = (
    ("sensory", "sensory regions +2 SD", 2.0),
    ("association", "association regions -2 SD", -2.0),
    ("all", "all regions +2 SD", 2.0),
)
"""Deviation kinds of the patients: (region group, label, shift in normative SD)."""


def normative_sd(
    rng: np.random.Generator,
    age: float,
    female: int,
    site: int,
    site_effects: tuple[np.ndarray, np.ndarray],
    gradient: np.ndarray,
    spec: CohortSpec,
    mapping: EIMapping,
    n_draws: int = 4000,
) -> np.ndarray:
    """Monte Carlo SD of the reported regional E/I of people like this one (shape (N,)).

    Draws ``n_draws`` virtual people with the same age, sex and site from the generator itself.

    Parameters
    ----------
    rng : numpy.random.Generator
        Used for both the person-level and the estimation-error draws.
    age : float
        Years.
    female : int
        1 for a woman, 0 for a man.
    site : int
        Site index into ``spec.sites``.
    site_effects : (mean_offset, scale)
        From :func:`sample_site_effects`.
    gradient : ndarray of shape (N,)
    spec : CohortSpec
    mapping : EIMapping
    n_draws : int
        Virtual people drawn.

    Returns
    -------
    ndarray of shape (N,)
        SD (ddof 1) of the reported E/I per region.
    """
    draws = make_people(
        rng,
        rng,
        np.full(n_draws, age),
        np.full(n_draws, female),
        np.full(n_draws, site),
        site_effects,
        gradient,
        spec,
        mapping,
    )
    return draws.ei.std(axis=0, ddof=1)


def make_patients(
    rng: np.random.Generator,
    n_patients: int,
    site_effects: tuple[np.ndarray, np.ndarray],
    gradient: np.ndarray,
    spec: CohortSpec,
    mapping: EIMapping,
) -> tuple[People, np.ndarray, list[str]]:
    """People from the normative population with a known deviation in a region group.

    Each patient is drawn like a control (random age in 8-85 years, sex, a site whose range covers
    the age), then the true E/I of the deviating regions is shifted by ``z`` times the normative SD
    of the reported E/I at the patient's age, sex and site (:func:`normative_sd`), the wEI that
    gives it is found with :meth:`EIMapping.inverse`, and the estimation error is applied. The
    patient's expected z-score in those regions is therefore their control z-score plus ``z``.

    Parameters
    ----------
    rng : numpy.random.Generator
    n_patients : int
        Patients drawn; the deviation kinds of :data:`PATIENT_DEVIATIONS` are assigned in turn.
    site_effects : (mean_offset, scale)
        From :func:`sample_site_effects`.
    gradient : ndarray of shape (N,)
    spec : CohortSpec
    mapping : EIMapping

    Returns
    -------
    patients : People
        ``wei_intercept``/``wei_slope`` are the coefficients before the deviation.
    deviation_z : ndarray of shape (n_patients, N)
        The built-in shift in normative SD (0 outside the deviating group).
    labels : list of str
    """
    classes = region_classes(DK68_REGIONS[: len(gradient)]) if len(gradient) == 68 else None
    ages = np.round(rng.uniform(8.0, 85.0, n_patients), 3)
    female = (rng.random(n_patients) < 0.5).astype(np.int64)
    site = np.array(
        [rng.choice([k for k, s in enumerate(spec.sites) if s.age_min <= a <= s.age_max]) for a in ages]
    )
    base = make_people(
        rng, rng, ages, female, site, site_effects, gradient, spec, mapping, id_prefix="patient-"
    )
    n = len(gradient)
    deviation = np.zeros((n_patients, n))
    labels = []
    ei_true = base.ei_true.copy()
    for k in range(n_patients):
        group, label, z = PATIENT_DEVIATIONS[k % len(PATIENT_DEVIATIONS)]
        mask = np.ones(n, bool) if (group == "all" or classes is None) else classes == group
        sd = normative_sd(rng, ages[k], female[k], site[k], site_effects, gradient, spec, mapping)
        deviation[k, mask] = z
        ei_true[k] = ei_true[k] + deviation[k] * sd
        labels.append(label)
    error = spec.noise_global_cv * rng.standard_normal((n_patients, 1))
    error = error + spec.noise_regional_cv * rng.standard_normal((n_patients, n))
    ei = quantise_ei(ei_true * np.exp(error))
    patients = dataclasses.replace(base, ei_true=ei_true, ei=ei)
    return patients, deviation, labels
