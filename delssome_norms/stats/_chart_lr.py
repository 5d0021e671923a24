"""Penalised log-likelihoods of nested growth charts (for chart_sex_tests)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from delssome_norms.norms import GrowthChart


def penalised_fits(
    chart: GrowthChart, table: pd.DataFrame, targets: list[str]
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Penalised log-likelihoods of the full chart and of the charts without sex in mu / sigma.

    All three maximise ``loglik - sum_k lambda_k / 2 ||gamma_k||^2`` with the random-effect
    penalties ``lambda_k`` held at the full chart's estimates, so the reduced fits are constrained
    versions of the full one and ``2 (pl_full - pl_reduced) >= 0``; for a Gaussian mixed model
    at known variance components this is exactly the marginal likelihood ratio of the fixed effect.

    Parameters
    ----------
    chart : GrowthChart
        A chart fitted (with sex in mu and sigma) to ``table`` and ``targets``.
    table : DataFrame
        The cohort table the chart was fitted to.
    targets : list of str
        The chart's ``k`` target columns, in its order.

    Returns
    -------
    dict
        ``"full"``, ``"mu"`` (no sex in mu) and ``"sigma"`` (no sex in sigma), each a tuple
        ``(penalised_loglik, edf, converged)`` of arrays of shape (k,).
    """
    from delssome_norms.norms.chart_table import table_ages, table_sex, table_sites, table_targets
    from delssome_norms.norms.design import encode_sites
    from delssome_norms.norms.fitting import fit_gamlss

    fam = chart.family_
    params = list(fam.params)
    ages, female = table_ages(table, "table"), table_sex(table, "table")
    random = [p in chart.lambda_ for p in params]
    if any(random):
        codes, _ = encode_sites(table_sites(table, chart.site_column_, "table", True), chart.sites_)
        lam = np.column_stack([chart.lambda_.get(p, np.ones(len(targets))) for p in params])
    else:
        codes, lam = np.zeros(ages.size, dtype=np.int64), None
    y = table_targets(table, targets, "table")
    X = [d.matrix(ages, female) for d in chart.designs_]
    init = [chart.coef_[p] for p in params]
    out = {}
    for name, drop in (("full", None), ("mu", "mu"), ("sigma", "sigma")):
        Xr, start = list(X), list(init)
        if drop is not None:
            k = params.index(drop)
            j = chart.designs_[k].column_names().index("numeric_sex1")
            Xr[k], start[k] = np.delete(X[k], j, axis=1), np.delete(init[k], j, axis=1)
        res = fit_gamlss(
            y,
            fam,
            Xr,
            random,
            codes,
            max(len(chart.sites_), 1),
            init=start,
            max_iter=int(chart.max_iter) if chart.algorithm == "newton" else 200,
            tol=float(chart.tol),
            fixed_lambda=lam,
        )
        out[name] = (res.loglik - res.penalty(), res.edf, res.converged.astype(bool))
    return out
