"""Non-parametric cross-check of the parametric centile curves (pygam quantile GAMs).

The SHASH growth chart assumes a distribution family; if the family or the spline df is wrong the
centiles can be off even when the median looks right. Here each centile is re-estimated without a
distributional assumption: a pygam ``ExpectileGAM`` with a penalised spline of age is fitted per
sex, and its expectile level is tuned so that the curve is the requested quantile
(``ExpectileGAM.fit_quantile``). The data are the harmonised values (site effects removed by the
chart), so both curves describe the same site-free population.

The result is reported next to the parametric curves: the difference in the target's units and in
z units on the parametric chart (``difference_z = Phi^-1(F(nonparametric)) - Phi^-1(q)``); |
``difference_z`` | above ~0.1-0.2 over a wide age range means the parametric fit is off there.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import special

from delssome_norms.errors import InvalidInputError
from delssome_norms.norms.chart import CENTILES, FLAG_AGE, GrowthChart, age_grid, centile_label

MAX_POINTS_PER_SEX = 3000
"""Larger samples are thinned to this many people per sex (fixed random subset) for speed."""


def quantile_crosscheck(
    chart: GrowthChart,
    table: pd.DataFrame,
    target: str,
    q: Sequence[float] = CENTILES,
    sexes: Sequence[str] = ("female", "male"),
    n_splines: int = 10,
    step: float = 1.0,
    source: str = "table",
) -> pd.DataFrame:
    """Quantile-GAM centiles next to the chart's parametric centiles.

    Parameters
    ----------
    chart : GrowthChart
        A fitted chart.
    table : pandas.DataFrame
        People to re-estimate the centiles from (usually the training table).
    target : str
        One target of the chart.
    q : sequence of float
        Centiles in percent.
    sexes : sequence of str
    n_splines : int
        Basis size of pygam's penalised spline of age.
    step : float
        Age step (years) of the reported grid.

    Returns
    -------
    pandas.DataFrame
        ``target, sex, age_in_years, centile, parametric, nonparametric, difference,
        difference_z``.
    """
    try:
        from pygam import ExpectileGAM, s
    except ImportError as exc:  # pragma: no cover - pygam is a dependency
        raise InvalidInputError(f"pygam is needed for the cross-check ({exc})") from None
    chart._target_index([target], source="target")
    q = chart._check_q(q)
    scored = chart.score(table, targets=[target], layout="long", source=source)
    keep = np.isfinite(scored["harmonised"].to_numpy()) & ~scored["flag"].str.contains(FLAG_AGE)
    scored = scored[keep]
    ages = age_grid(*chart.chart_range_, step=step)
    rng = np.random.default_rng(0)
    frames = []
    for sex in sexes:
        grp = scored[scored["sex"] == sex]
        if len(grp) < 50:
            raise InvalidInputError(
                f"only {len(grp)} {sex} values of {target}; the cross-check needs at least 50",
                source,
            )
        if len(grp) > MAX_POINTS_PER_SEX:
            grp = grp.iloc[np.sort(rng.choice(len(grp), MAX_POINTS_PER_SEX, replace=False))]
        x = grp["age_in_years"].to_numpy()[:, None]
        yv = grp["harmonised"].to_numpy()
        par = chart.centiles(ages, sex, q=q, targets=[target])
        theta = [par[p].to_numpy() for p in chart.family_.params]
        for qq in q:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gam = ExpectileGAM(s(0, n_splines=n_splines)).fit_quantile(x, yv, quantile=qq / 100.0)
            nonpar = gam.predict(ages[:, None])
            param = par[f"C{centile_label(qq)}"].to_numpy()
            frames.append(
                pd.DataFrame(
                    {
                        "target": target,
                        "sex": sex,
                        "age_in_years": ages,
                        "centile": qq,
                        "parametric": param,
                        "nonparametric": nonpar,
                        "difference": nonpar - param,
                        "difference_z": chart.family_.zscore(nonpar, *theta) - special.ndtri(qq / 100.0),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def crosscheck_summary(crosscheck: pd.DataFrame) -> pd.DataFrame:
    """Largest and mean |difference_z| per sex and centile of a :func:`quantile_crosscheck`."""
    g = crosscheck.assign(abs_z=crosscheck["difference_z"].abs()).groupby(["target", "sex", "centile"])
    return g["abs_z"].agg(max_abs_difference_z="max", mean_abs_difference_z="mean").reset_index()
