"""Sensory versus association regions: per-person group means, age-bin summaries, trajectories.

Regions are classed by :func:`delssome_norms.datasets.region_classes` (sensory = primary and
unimodal visual, somatomotor and auditory cortex; all other DK68 regions association); names
that are not DK68 cortical regions are refused (:func:`dk68_region_classes`). The paper's finding to
reproduce (docs/science.md §8): E/I is higher in sensory than in association regions at every age.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from delssome_norms.datasets import DK68_REGIONS, region_classes
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.ei_table import site_labels
from delssome_norms.stats._cohort import (
    ROI_PATTERN,
    SITE_COLUMN,
    attrs_regions,
    checked_ages,
    cohort_people,
    listing,
    prepare_cohort,
    sex_labels,
    warn_dk68_by_position,
)
from delssome_norms.stats._converged import quiet_fit, require_converged
from delssome_norms.stats.location_scale import SplineBasis, fit_location_scale, sum_to_zero
from delssome_norms.stats.multiple_testing import fdr_bh

GROUPS = ("sensory", "association")
"""Region groups, in plotting order."""
DEFAULT_AGE_BINS = (0.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 120.0)
"""Edges (years) of the age bins of :func:`region_group_summary`; bins are [low, high)."""
_DEMOGRAPHIC_COLUMNS = ("subject_id", "age_in_years", "sex", "site")


def _roi_columns(table: pd.DataFrame, n_regions: int) -> dict[int, str]:
    cols = {}
    for c in table.columns:
        m = ROI_PATTERN.match(str(c))
        if m is not None and int(m.group(1)) < n_regions:
            cols[int(m.group(1))] = str(c)
    return cols


def dk68_region_classes(regions: Sequence[str], input_name: str = "regions") -> np.ndarray:
    """``"sensory"`` or ``"association"`` per region, refusing names that are not DK68 regions.

    The classes (:func:`delssome_norms.datasets.region_classes`) are defined for the DK68
    cortical regions only: another name (e.g. ``Left-Thalamus``) would be classed as association
    and bias the association mean.

    Parameters
    ----------
    regions : sequence of str
        Region names in column order.
    input_name : str
        Name of ``regions`` in error messages.

    Returns
    -------
    ndarray of str, shape (len(regions),)
    """
    if isinstance(regions, str):
        raise InvalidInputError("must be a sequence of region names, not one string", input_name)
    known = set(DK68_REGIONS)
    other = [str(r) for r in regions if r not in known]
    if other:
        raise InvalidInputError(
            f"{len(other)} of the {len(regions)} region names are not DK68 cortical regions "
            f"({listing(other)}): the sensory/association classes are defined for DK68 cortical "
            "regions only (e.g. lh_precentral), and another region would be counted as "
            "association; use a table of the DK68 cortical regions only",
            input_name,
        )
    return region_classes(tuple(regions))


def region_group_scores(
    table: pd.DataFrame,
    *,
    regions: Sequence[str] | None = None,
    input_name: str = "table",
    exclude_flagged: bool = False,
) -> pd.DataFrame:
    """Mean E/I of each person's sensory and association regions.

    Parameters
    ----------
    table : DataFrame
        One row per person with ``age_in_years``, ``sex`` (or ``numeric_sex``) and the regional
        columns ``ei_ratio_roi_<i>``, where ``i`` indexes ``regions``.
    regions : sequence of str, optional
        DK68 region names in column order (``regions[i]`` names ``ei_ratio_roi_<i>``); other
        names (e.g. subcortical regions) are refused. Default: the names the table carries in
        its ``attrs`` (``EIResult.to_table``, ``results_table``), else the DK68 order.
    input_name : str
        Name of ``table`` in error messages.
    exclude_flagged : bool
        Leave out the people whose E/I fit is flagged as poor (``collect``'s ``fit_flagged``
        column, then required), with an ``InputWarning`` saying how many; by default they are
        kept and named in an ``InputWarning`` (``stats groups --exclude-flagged``).

    Returns
    -------
    DataFrame
        One row per person: ``subject_id``/``site`` when present, ``age_in_years``, ``sex``
        (female/male), ``sensory``, ``association`` and ``difference`` (sensory − association).
    """
    if not isinstance(table, pd.DataFrame):
        raise InvalidInputError(f"expected a pandas DataFrame, got {type(table).__name__}", input_name)
    if regions is None:  # the table's own names (a table of one hemisphere), else DK68
        regions = attrs_regions(table, input_name)
        present = sorted(_roi_columns(table, np.iinfo(np.int64).max))
        if regions is None and present == list(range(len(DK68_REGIONS))):
            warn_dk68_by_position(input_name, "regions=", table=table, stacklevel=2)
        regions = regions or DK68_REGIONS
        if max(present, default=-1) >= len(regions):
            regions = DK68_REGIONS  # names not of these columns: refused below as DK68 would be
    table = cohort_people(table, exclude_flagged, input_name)
    cols = _roi_columns(table, len(regions))
    beyond = [i for i in _roi_columns(table, np.iinfo(np.int64).max) if i >= len(regions)]
    if beyond:  # ei_ratio_roi_<i> indexes `regions`: a column past its end is another atlas
        raise InvalidInputError(
            f"the table has regional columns up to ei_ratio_roi_{max(beyond)} but regions lists "
            f"{len(regions)} regions ({len(beyond)} column(s) beyond them); the "
            "sensory/association classes would be read from the wrong region names: give the "
            "names of the table's atlas (the table's regions.csv / regions=)",
            input_name,
        )
    classes = dk68_region_classes(regions)
    present = {g: [cols[i] for i in sorted(cols) if classes[i] == g] for g in GROUPS}
    empty = [g for g in GROUPS if not present[g]]
    if empty:
        raise InvalidInputError(
            f"no ei_ratio_roi_* columns of the {' and '.join(empty)} region group(s); "
            f"found {len(cols)} regional column(s)",
            input_name,
        )
    absent = [f"ei_ratio_roi_{i}" for i in range(len(regions)) if i not in cols]
    if cols and absent:
        raise InvalidInputError(
            f"{len(absent)} of the {len(regions)} regional columns are missing "
            f"({', '.join(absent[:4])}{' ...' if len(absent) > 4 else ''}); group means over a "
            "subset of regions would not compare with other people's (a table of another atlas: "
            "give its names, the table's regions.csv / regions=)",
            input_name,
        )
    cohort = prepare_cohort(
        table,
        present["sensory"] + present["association"],
        site=None,
        input_name=input_name,
        min_per_sex=0,
        label_regions=False,
    )
    n_s = len(present["sensory"])
    out = pd.DataFrame(
        {c: table[c].to_numpy() for c in _DEMOGRAPHIC_COLUMNS if c in table.columns and c != "sex"}
    )
    out["age_in_years"] = cohort.age
    out["sex"] = sex_labels(table, input_name)
    out["sensory"] = cohort.y[:, :n_s].mean(axis=1)
    out["association"] = cohort.y[:, n_s:].mean(axis=1)
    out["difference"] = out["sensory"] - out["association"]
    order = [c for c in _DEMOGRAPHIC_COLUMNS if c in out.columns]
    return out[[*order, "sensory", "association", "difference"]]


def _describe(values: np.ndarray, level: float) -> dict:
    n = values.size
    mean = float(values.mean()) if n else np.nan
    sd = float(values.std(ddof=1)) if n > 1 else np.nan
    sem = sd / np.sqrt(n) if n > 1 else np.nan
    t = stats.t.ppf(0.5 + level / 2.0, n - 1) if n > 1 else np.nan
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "sem": sem,
        "median": float(np.median(values)) if n else np.nan,
        "ci_low": mean - t * sem,
        "ci_high": mean + t * sem,
    }


def region_group_summary(
    table: pd.DataFrame,
    *,
    age_bins: Sequence[float] = DEFAULT_AGE_BINS,
    by_sex: bool = True,
    alpha: float = 0.05,
    level: float = 0.95,
    regions: Sequence[str] | None = None,
    exclude_flagged: bool = False,
) -> pd.DataFrame:
    """Sensory and association E/I per age bin (and sex), with a paired test of their difference.

    Parameters
    ----------
    table : DataFrame
        As for :func:`region_group_scores`.
    age_bins : sequence of float
        Increasing bin edges in years; bins are [low, high). Empty bins are left out.
    by_sex : bool
        Also summarise females and males separately (rows with ``sex`` female/male besides "all").
    alpha : float
        FDR level for ``significant`` (BH across the bins of each sex).
    level : float
        Confidence level of ``ci_low``/``ci_high`` (t interval of the mean).
    regions : sequence of str, optional
        See :func:`region_group_scores`.
    exclude_flagged : bool
        See :func:`region_group_scores`.

    Returns
    -------
    DataFrame
        One row per (age bin, sex, group), groups ``sensory``, ``association`` and ``difference``
        (sensory − association, within person). Columns ``age_bin``, ``age_low``, ``age_high``,
        ``sex``, ``group``, ``n``, ``mean``, ``sd``, ``sem``, ``median``, ``ci_low``, ``ci_high``;
        ``difference`` rows also carry ``statistic`` (paired t), ``p``, ``p_fdr``, ``significant``
        and ``fraction_positive`` (share of people with sensory > association); NaN elsewhere.
    """
    edges = np.asarray(age_bins, dtype=np.float64)
    if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
        raise InvalidInputError("age_bins must be at least two strictly increasing edges", "age_bins")
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must lie in (0, 1), got {level}", "level")
    table = cohort_people(table, exclude_flagged)
    scores = region_group_scores(table, regions=regions)
    sexes = ["all", "female", "male"] if by_sex else ["all"]
    rows = []
    for lo, hi in itertools.pairwise(edges):
        in_bin = (scores["age_in_years"] >= lo) & (scores["age_in_years"] < hi)
        for sex in sexes:
            sel = scores[in_bin if sex == "all" else in_bin & (scores["sex"] == sex)]
            if len(sel) == 0:
                continue
            label = f"[{lo:g}, {hi:g})"
            for group in (*GROUPS, "difference"):
                values = sel[group].to_numpy(dtype=np.float64)
                row = {"age_bin": label, "age_low": lo, "age_high": hi, "sex": sex, "group": group}
                row |= _describe(values, level)
                if group == "difference":
                    if values.size > 1 and np.ptp(values) > 0:
                        res = stats.ttest_1samp(values, 0.0)
                        row |= {"statistic": float(res.statistic), "p": float(res.pvalue)}
                    else:
                        row |= {"statistic": np.nan, "p": np.nan}
                    row["fraction_positive"] = float(np.mean(values > 0))
                rows.append(row)
    out = pd.DataFrame(rows)
    for col in ("statistic", "p", "fraction_positive"):
        if col not in out.columns:
            out[col] = np.nan
    out["p_fdr"] = np.nan
    out["significant"] = False
    for sex in sexes:
        idx = out.index[(out["group"] == "difference") & (out["sex"] == sex)]
        if len(idx):
            reject, adjusted = fdr_bh(out.loc[idx, "p"].to_numpy(), alpha)
            out.loc[idx, "p_fdr"] = adjusted
            out.loc[idx, "significant"] = reject
    out["significant"] = out["significant"].astype(bool)
    return out


SMALL_SITE = 5
"""Sites with fewer people than this are named as a likely cause when the curves do not converge."""
N_GRID = 100
"""Ages of the default grid of :func:`region_group_trajectories` (spanning the cohort's ages)."""


def _trajectory_ages(cohort, ages) -> tuple[np.ndarray, dict[str, np.ndarray], list[str]]:
    """The grid of :func:`region_group_trajectories`; per sex, which of its ages that sex's people
    cover (its curve is NaN at the others); and the sexes (with their ranges) whose range leaves
    out ages of the grid more than one step of the default grid beyond it, for the warning."""
    age = cohort.age
    lo, hi = float(age.min()), float(age.max())
    if ages is None:
        grid = np.linspace(lo, hi, N_GRID)
    else:
        range_text = f"the cohort's age range [{lo:g}, {hi:g}],"
        grid = checked_ages(ages, lo, hi, range_text, "no one has data and the curves")
    step = (hi - lo) / (N_GRID - 1)
    inside, short = {}, []
    for sex, rows in (("female", cohort.female), ("male", ~cohort.female)):
        s_lo, s_hi = float(age[rows].min()), float(age[rows].max())
        inside[sex] = (grid >= s_lo) & (grid <= s_hi)
        if np.any((grid < s_lo - step) | (grid > s_hi + step)):
            short.append(f"the {sex} people span {s_lo:.1f} to {s_hi:.1f} years")
    if short:
        short[-1] += f", less than the cohort's {lo:.1f} to {hi:.1f}"
    return grid, inside, short


def _trajectory_cause(cohort, df: int) -> str:
    """Why the curves of :func:`region_group_trajectories` did not converge, and the ways out."""
    n_sites = len(cohort.site_names)
    beside, ways = "", ["use more people of each sex"]
    if n_sites > 1:
        small = int((np.bincount(cohort.site, minlength=n_sites) < SMALL_SITE).sum())
        beside = (
            f" beside the offsets of {n_sites} sites, {small} of them with fewer than "
            f"{SMALL_SITE} people (a small site's offset can fit its people exactly, often the "
            "few at the ends of the age range)"
        )
        site_ways = ["merge or leave out the small sites", "pass site=None to fit no site terms"]
        ways = site_ways + ways if small else ways + site_ways
    if df > 3:
        ways.append("use a smaller df (3)")
    return (
        f"{cohort.n_female} female and {cohort.n_male} male people are too few (or too unevenly "
        f"spread over age) for each sex's own curve with df={df}{beside}: "
        + ", ".join(ways[:-1])
        + f" or {ways[-1]}"
    )


def region_group_trajectories(
    table: pd.DataFrame,
    *,
    ages: Sequence[float] | np.ndarray | None = None,
    site: str | None = SITE_COLUMN,
    df: int = 5,
    level: float = 0.95,
    regions: Sequence[str] | None = None,
    exclude_flagged: bool = False,
) -> pd.DataFrame:
    """Population curves of sensory and association E/I against age, per sex.

    For each group the mean is modelled as ``bs(age, df) x sex + site`` (sex-specific curves,
    sum-to-zero site effects) with log-sd ``bs(age, 3) + sex``, fitted by maximum likelihood
    (:func:`~delssome_norms.stats.location_scale.fit_location_scale`); curves are at the average
    site, with pointwise Wald intervals.

    Parameters
    ----------
    table : DataFrame
        As for :func:`region_group_scores`, plus the site column (default ``site_scanner``, or
        ``site`` [+ ``scanner``]) unless ``site=None``.
    ages : array-like, optional
        Age grid (years) within the cohort's age range (others are refused); default 100 points
        spanning it. Each sex's curves are given only at the ages its own people cover, NaN at
        the others: beyond them a curve is an extrapolation of its spline (with women aged 5-40
        and men 5-97 the female association curve reached 48 at 90 years, band -64 to 159, for
        values near 3). An ``InputWarning`` names a sex whose range leaves out ages of the grid
        more than 1/99 of the cohort's range (one step of the default grid) beyond it; the end
        age where only the other sex's youngest or oldest people are is left out silently. Ages
        outside one sex's range are not refused, unlike :func:`~delssome_norms.stats.sex_gap`'s
        (which compares the sexes): the other sex's curves are defined there.
    site : str or None
        Site column (sum-to-zero site effects in the mean); ``None`` for a single-site cohort.
    df : int
        Spline degrees of freedom of the mean curves (3 to 12).
    level : float
        Confidence level of the pointwise intervals.
    regions : sequence of str, optional
        See :func:`region_group_scores`.
    exclude_flagged : bool
        See :func:`region_group_scores`.

    Returns
    -------
    DataFrame
        Columns ``age_in_years``, ``sex``, ``group``, ``mean``, ``ci_low``, ``ci_high``: one
        row per age, sex and group, ``mean``/``ci_low``/``ci_high`` NaN at the ages outside that
        sex's range (see ``ages``).

    Raises
    ------
    InvalidInputError
        A bad table or option, or a fit that does not converge (too few people of one sex for
        its own curve: e.g. a cohort of 15-20 people with the default ``df``; or many small
        sites, e.g. 80 people in 14 sites).
    """
    if not isinstance(df, (int, np.integer)) or not 3 <= df <= 12:
        raise InvalidInputError(f"df must be an integer between 3 and 12, got {df!r}", "df")
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"level must lie in (0, 1), got {level}", "level")
    table = cohort_people(table, exclude_flagged)  # the site labels are read from these rows too
    scores = region_group_scores(table, regions=regions)
    if site is not None:
        labels = site_labels(table, site)
        if labels is None:
            raise InvalidInputError(f"missing site column {site!r} (pass site=None)", "table")
        scores[site] = labels.to_numpy()
    cohort = prepare_cohort(scores, list(GROUPS), site=site, min_per_sex=2)
    age, f = cohort.age, cohort.female.astype(np.float64)[:, None]
    grid, inside, short = _trajectory_ages(cohort, ages)
    basis, basis_s = SplineBasis.from_data(age, df), SplineBasis.from_data(age, 3)
    n_sites = len(cohort.site_names)
    spline = basis(age)
    X = np.hstack([np.ones((age.size, 1)), spline, f, spline * f, sum_to_zero(cohort.site, n_sites)])
    Z = np.hstack([np.ones((age.size, 1)), basis_s(age), f])
    with quiet_fit():  # a fit that does not converge is refused below, with its cause
        fit = fit_location_scale(cohort.y, X, Z)
    require_converged(
        fit,
        GROUPS,
        what="region_group_trajectories: the model with its own age curve per sex",
        cause=_trajectory_cause(cohort, df),
    )
    if short:  # after the fit: a refused fit says why, not this as well
        warnings.warn(
            f"region_group_trajectories: {' and '.join(short)}, so each sex's curves are given "
            "only at the ages its people cover (NaN at the others: beyond them a curve would be "
            "an extrapolation of its spline, with no data)",
            InputWarning,
            stacklevel=2,
        )
    z = stats.norm.ppf(0.5 + level / 2.0)
    g_spline = basis(grid)
    rows = []
    for sex, value in (("female", 1.0), ("male", 0.0)):
        fg = np.full((grid.size, 1), value)
        Xg = np.hstack(
            [np.ones((grid.size, 1)), g_spline, fg, g_spline * fg, np.zeros((grid.size, n_sites - 1))]
        )
        mean = np.where(inside[sex][:, None], fit.mean(Xg), np.nan)
        for k, group in enumerate(GROUPS):
            se = np.sqrt(np.einsum("mi,ij,mj->m", Xg, fit.cov_beta[k], Xg))
            se[~inside[sex]] = np.nan
            rows.append(
                pd.DataFrame(
                    {
                        "age_in_years": grid,
                        "sex": sex,
                        "group": group,
                        "mean": mean[:, k],
                        "ci_low": mean[:, k] - z * se,
                        "ci_high": mean[:, k] + z * se,
                    }
                )
            )
    return pd.concat(rows, ignore_index=True)
