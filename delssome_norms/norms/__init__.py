"""Lifespan growth charts of E/I (docs/science.md §7): GAMLSS in Python, matching R gamlss.

- :mod:`.distributions`: SHASHo2, SHASHo, SHASH, JSU, NO and GG in gamlss.dist's
  parameterisations (log-density, CDF, quantiles, draws).
- :mod:`.splines`: R-compatible ``bs()`` with knots frozen at training time.
- :mod:`.design`: formulas and design matrices.
- :mod:`.fitting`: batched penalised-likelihood fit of all targets at once, site random effects.
- :mod:`.rs`: R gamlss's RS algorithm reproduced step by step (batched), for R-identical fits.
- :mod:`.chart`: the :class:`GrowthChart` estimator (fit, centiles, score, adapt, save/load).
- :mod:`.selection`: BIC table over families and spline df.
- :mod:`.calibration`: calibration of centiles on held-out data.
- :mod:`.crosscheck`: non-parametric (pygam expectile/quantile) cross-check of the centiles.
- :mod:`.reference`: the shipped SYNTHETIC reference chart (:func:`load_reference_chart`).
- :mod:`.simulate`: synthetic cohorts drawn from a known model (tests, benchmarks).
"""

from delssome_norms.norms.chart import CENTILES, FORMAT_VERSION, GrowthChart, growth_rate
from delssome_norms.norms.distributions import FAMILIES, Family, get_family
from delssome_norms.norms.reference import (
    REFERENCE_CHART_LABEL,
    load_reference_chart,
    reference_chart_path,
)
from delssome_norms.norms.splines import BSplineBasis, bs

__all__ = [
    "CENTILES",
    "FAMILIES",
    "FORMAT_VERSION",
    "REFERENCE_CHART_LABEL",
    "BSplineBasis",
    "Family",
    "GrowthChart",
    "bs",
    "get_family",
    "growth_rate",
    "load_reference_chart",
    "reference_chart_path",
]
