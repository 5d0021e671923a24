"""The shipped SYNTHETIC reference chart: mean and 68 regional E/I growth charts, ready to score.

Fitted by ``reference_data/reference_chart.py`` on the SYNTHETIC reference cohort
(:func:`delssome_norms.datasets.load_reference_table`, 12,005 simulated people, 14 sites) with the
demo's model ``GrowthChart(family="SHASHo2", mu_df=4, sigma_df=3)``. No real participant data went
into it: use it to try the toolkit and to score people relative to the synthetic cohort, not as
clinical norms.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

from delssome_norms.norms.chart import GrowthChart

REFERENCE_CHART_NAME = "reference"
"""What ``charts score --chart`` accepts in place of a folder to use the shipped chart."""
REFERENCE_CHART_LABEL = (
    "SYNTHETIC reference chart (fitted on the package's simulated reference cohort; no real "
    "participants): for trying the toolkit, not clinical norms"
)
"""One-line description printed whenever the shipped chart is used."""


def reference_chart_path() -> Path:
    """Folder of the shipped chart (package data: ``delssome_norms/datasets/data/reference_chart``)."""
    return Path(
        str(importlib.resources.files("delssome_norms.datasets").joinpath("data", "reference_chart"))
    )


def load_reference_chart() -> GrowthChart:
    """The shipped SYNTHETIC reference chart (``ei_ratio_mean`` and ``ei_ratio_roi_0..67``).

    Returns
    -------
    GrowthChart
        SHASHo2, ``mu ~ bs(age, df=4) + sex + random(site)``, ``sigma ~ bs(age, df=3) + sex +
        random(site)``; sites of the synthetic cohort; ``provenance_["synthetic"]`` is True.

    Examples
    --------
    >>> from delssome_norms.norms import load_reference_chart
    >>> chart = load_reference_chart()
    >>> len(chart.targets_)
    69
    """
    return GrowthChart.load(reference_chart_path())
