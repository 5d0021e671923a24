"""Cohort statistics: sex differences in E/I, region-group summaries, FDR, bootstrap.

Every public function takes a cohort table (one row per person: ``age_in_years``, ``sex``,
``site``, ``ei_ratio_*``) and returns a tidy :class:`pandas.DataFrame`.
"""

from delssome_norms.stats.bootstrap import (
    percentile_interval,
    stratified_bootstrap_counts,
    weighted_median,
)
from delssome_norms.stats.effect_sizes import cohens_d
from delssome_norms.stats.location_scale import (
    LocationScaleFit,
    SplineBasis,
    fit_location_scale,
    sum_to_zero,
)
from delssome_norms.stats.multiple_testing import add_fdr, fdr_bh
from delssome_norms.stats.region_groups import (
    region_group_scores,
    region_group_summary,
    region_group_trajectories,
)
from delssome_norms.stats.sex_differences import (
    chart_sex_tests,
    sex_difference_tests,
    sex_gap,
)
from delssome_norms.stats.sex_summary import sex_difference_summary
from delssome_norms.stats.variability import brown_forsythe

__all__ = [
    "LocationScaleFit",
    "SplineBasis",
    "add_fdr",
    "brown_forsythe",
    "chart_sex_tests",
    "cohens_d",
    "fdr_bh",
    "fit_location_scale",
    "percentile_interval",
    "region_group_scores",
    "region_group_summary",
    "region_group_trajectories",
    "sex_difference_summary",
    "sex_difference_tests",
    "sex_gap",
    "stratified_bootstrap_counts",
    "sum_to_zero",
    "weighted_median",
]
