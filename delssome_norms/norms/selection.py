"""Model choice: BIC over response families and spline degrees of freedom (docs/science.md §7).

The paper compared SHASHo2, JSU, the generalised gamma (GG) and the normal (NO), with mu spline
df 3-5, by BIC. :func:`compare_models` fits every combination (each one a batched fit of all
targets) and returns a tidy table with one row per model and target.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.errors import ConvergenceWarning, InputWarning, InvalidInputError
from delssome_norms.norms.chart import GrowthChart
from delssome_norms.norms.chart_table import check_table_frame
from delssome_norms.norms.flagged_rows import handle_flagged

DEFAULT_FAMILIES: tuple[str, ...] = ("SHASHo2", "JSU", "GG", "NO")
DEFAULT_MU_DFS: tuple[int, ...] = (3, 4, 5)


def compare_models(
    table: pd.DataFrame,
    families: Sequence[str] = DEFAULT_FAMILIES,
    mu_dfs: Sequence[int] = DEFAULT_MU_DFS,
    targets: Sequence[str] | None = None,
    source: str = "table",
    exclude_flagged: bool = False,
    **chart_options: Any,
) -> pd.DataFrame:
    """BIC table over families and mu spline df.

    Parameters
    ----------
    table : pandas.DataFrame
        Training table (as for :meth:`GrowthChart.fit`).
    families : sequence of str
        gamlss.dist family names.
    mu_dfs : sequence of int
        Degrees of freedom of mu's ``bs(age)`` term.
    targets : sequence of str, optional
    source : str
        Name of the table in messages.
    exclude_flagged : bool
        Leave out the people whose E/I fit is flagged as poor (``collect``'s ``fit_flagged``
        column, then required), with an :class:`~delssome_norms.errors.InputWarning` saying how
        many; by default they are kept and named in one, as by :meth:`GrowthChart.fit`
        (``charts compare --exclude-flagged``). Either way once, not once per model.
    **chart_options
        Other :class:`GrowthChart` arguments (``sigma_df``, ``site_column`` ...), shared by all
        models.

    Returns
    -------
    pandas.DataFrame
        One row per (family, mu_df, target): ``family, mu_df, sigma_df, nu_df, tau_df,
        formula_mu, target,
        n_obs, loglik, edf, aic, bic, delta_bic, best, converged, tail_z, reliable``.
        ``delta_bic`` is the BIC minus the smallest BIC among that target's reliable models
        (converged, tail not degenerate: :attr:`GrowthChart.reliable_`); ``best`` marks that
        model. A degenerate fit can have the smallest BIC of all (its likelihood is high by
        construction), so it is listed (negative ``delta_bic``) but never best. A family that
        cannot be fitted to the data (e.g. GG with non-positive values) gets one row per target
        with NaN and the reason in ``note``.

    Warns
    -----
    InputWarning
        About the table (flagged people, missing values, small sites ...): each distinct one
        that the fits give, once, after them (a fit's ConvergenceWarning goes to ``note``).
    """
    check_table_frame(table, source)
    table = handle_flagged(table, exclude_flagged, source, stacklevel=3)  # once, not per model
    rows = []
    others: dict[tuple[type[Warning], str], None] = {}
    for family in families:
        for df in mu_dfs:
            chart = GrowthChart(family, mu_df=int(df), **chart_options)
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    chart.fit(table, targets=targets, source=source)
            except InvalidInputError as err:
                if "GrowthChart" in str(err.source or "") or "needs positive" not in err.problem:
                    raise
                names = list(targets) if targets is not None else None
                for t in names or ["(all)"]:
                    rows.append({"family": family, "mu_df": int(df), "target": t, "note": err.problem})
                continue
            note = "; ".join(str(w.message) for w in caught if w.category is ConvergenceWarning)
            said = [w for w in caught if issubclass(w.category, InputWarning)]  # about the table
            others.update({(w.category, str(w.message)): None for w in said})
            frame = pd.DataFrame(
                {
                    "family": family,
                    "mu_df": int(df),
                    "sigma_df": chart.sigma_df,
                    "nu_df": chart.nu_df,
                    "tau_df": chart.tau_df,
                    "formula_mu": chart.formulas_["mu"],
                    "target": chart.targets_,
                    "n_obs": np.asarray(chart.n_obs_).astype(np.int64),  # people, a count
                    "loglik": chart.loglik_,
                    "edf": chart.edf_,
                    "aic": chart.aic_,
                    "bic": chart.bic_,
                    "converged": chart.converged_,
                    "tail_z": chart.tail_z_,
                    "reliable": chart.reliable_,
                    "note": note,
                }
            )
            rows.extend(frame.to_dict("records"))
    for category, message in others:  # the same for every model: said once
        warnings.warn(message, category, stacklevel=2)
    out = pd.DataFrame(rows)
    for c in ("bic", "reliable"):
        if c not in out.columns:
            out[c] = np.nan if c == "bic" else False
    out["reliable"] = out["reliable"].eq(True).to_numpy(dtype=bool)
    # degenerate fits have a high likelihood by construction: choose among reliable ones
    trusted = out["bic"].where(out["reliable"])
    best = trusted.groupby(out["target"]).transform("min")
    out["delta_bic"] = out["bic"] - best
    out["best"] = out["reliable"] & (out["delta_bic"] == 0)
    cols = [
        "family",
        "mu_df",
        "sigma_df",
        "nu_df",
        "tau_df",
        "formula_mu",
        "target",
        "n_obs",
        "loglik",
        "edf",
        "aic",
        "bic",
        "delta_bic",
        "best",
        "converged",
        "tail_z",
        "reliable",
        "note",
    ]
    for c in cols:
        if c not in out.columns:
            out[c] = np.nan
    return out[cols].sort_values(["target", "bic"], kind="stable").reset_index(drop=True)


def best_models(comparison: pd.DataFrame) -> pd.DataFrame:
    """The reliable row with the smallest BIC for each target of a :func:`compare_models` table
    (targets without a reliable model are left out)."""
    ok = comparison.dropna(subset=["bic"])
    if "reliable" in ok.columns:
        ok = ok[ok["reliable"].astype(bool)]
    return ok.loc[ok.groupby("target")["bic"].idxmin()].reset_index(drop=True)
