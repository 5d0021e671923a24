"""Figures (the only subpackage that imports matplotlib).

Every function returns a :class:`matplotlib.figure.Figure` and takes an optional ``ax`` to draw
into; nothing calls ``pyplot.show``. Figures are built without pyplot where possible, so importing
this package does not choose a matplotlib backend.
"""

from delssome_norms.plotting.brain_map import plot_brain_map
from delssome_norms.plotting.charts import plot_chart_centiles
from delssome_norms.plotting.lifespan import plot_lifespan_centiles
from delssome_norms.plotting.person import centile_text, plot_person_brain_map
from delssome_norms.plotting.region_groups import (
    plot_ei_vs_age_by_group,
    plot_region_group_trajectories,
)
from delssome_norms.plotting.sex_differences import plot_sex_effects, plot_sex_gap

__all__ = [
    "centile_text",
    "plot_brain_map",
    "plot_chart_centiles",
    "plot_ei_vs_age_by_group",
    "plot_lifespan_centiles",
    "plot_person_brain_map",
    "plot_region_group_trajectories",
    "plot_sex_effects",
    "plot_sex_gap",
]
