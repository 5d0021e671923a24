"""Warnings and row flags of :meth:`GrowthChart.score <delssome_norms.norms.chart.GrowthChart.score>`
about people the chart has no reference people like: an unknown site, the other sex, an age
beyond the reference people's (docs/science.md §7)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from delssome_norms.errors import InputWarning
from delssome_norms.norms.chart_table import (
    FLAG_AGE_EXTRAPOLATED,
    FLAG_UNSEEN_SEX,
    FLAG_UNSEEN_SITE,
    _rows,
    near_site_names,
    no_site_column_text,
)


def unseen_sex_rows(chart: Any, female: np.ndarray, source: str) -> np.ndarray:
    """(n,) bool: the person's sex is absent from the chart's training table (a chart fitted on
    one sex, without sex terms, gives them that sex's curves); one warning per such sex."""
    known = getattr(chart, "sexes_", ["female", "male"])
    out = np.zeros(np.shape(female), dtype=bool)
    for sex, code in (("female", 1.0), ("male", 0.0)):
        rows = np.flatnonzero(female == code)
        if rows.size and sex not in known:
            out[rows] = True
            warnings.warn(
                f"{source}: {rows.size} row(s) are {sex} (rows {_rows(rows)}) but the chart "
                f"was fitted on {' and '.join(known)} people only: they are scored on those "
                f"curves (flag {FLAG_UNSEEN_SEX}); score them on a chart fitted on {sex} people",
                InputWarning,
                stacklevel=3,
            )
    return out


def warn_age_extrapolated(chart: Any, extrapolated: np.ndarray, source: str) -> None:
    """One warning for rows aged inside the chart's range (floor/ceil of the training ages) but
    beyond its reference people's ages (``age_range_``), where the curves continue the spline."""
    n = int(np.count_nonzero(extrapolated))
    if not n:
        return
    lo, hi = chart.chart_range_
    young, old = chart.age_range_
    warnings.warn(
        f"{source}: {n} row(s) have ages inside the chart's range {lo:g}-{hi:g} years but beyond "
        f"its reference people's ages {young:.2f}-{old:.2f} (rows "
        f"{_rows(np.flatnonzero(extrapolated))}): the curves there continue the spline past the "
        f"data; scored and flagged {FLAG_AGE_EXTRAPOLATED}",
        InputWarning,
        stacklevel=3,
    )


def warn_unseen_sites(chart: Any, labels: np.ndarray | None, unseen: np.ndarray, source: str) -> None:
    """Warn about rows scored on the population curves: sites unknown to the chart, rows
    without a site (an empty cell is "no site", never a site named "nan"), or a table
    without the site column."""
    n = int(unseen.sum())
    if labels is None:  # only a chart with site offsets marks such rows unseen
        warnings.warn(
            f"{source}: the table has no site ({no_site_column_text(chart.site_column_)})"
            f": its {n} {'person is' if n == 1 else 'people are'} scored on the "
            f"population-average curves, without a site offset (flag {FLAG_UNSEEN_SITE}); "
            "add each person's site to the demographics (a site column) and collect again, "
            "then `delssome-norms charts adapt` can estimate the site's offsets from its "
            "controls",
            InputWarning,
            stacklevel=3,
        )
        return
    names = sorted({str(s) for s in labels[unseen]} - {""})
    blank = int((labels[unseen] == "").sum())
    parts = [f"from site(s) {', '.join(names[:6])} unknown to the chart"] if names else []
    if blank:
        parts.append(f"without a site ({blank}: empty {chart.site_column_} cell)")
    head = f"{n} row(s) {', or '.join(parts)}"
    advice = (
        "estimate the site's offsets from its controls with `delssome-norms charts adapt "
        "--chart CHART --controls CONTROLS.csv --out NEW_CHART` (Python: GrowthChart.adapt)"
        if chart.site_effects_
        else f"the chart was fitted on one site ({chart.sites_[0]}) and has no site "
        "offsets to adapt: these people are scored against that site's norms"
    )
    if not names and chart.site_effects_:
        advice = f"fill in their {chart.site_column_} to use their site's offsets"
    warnings.warn(
        f"{source}: {head}{near_site_names(names, chart.sites_)} get the population-average "
        f"prediction (flag {FLAG_UNSEEN_SITE}); {advice}",
        InputWarning,
        stacklevel=3,
    )
