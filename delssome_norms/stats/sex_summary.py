"""Counts of significant targets in a table of sex-difference tests."""

from __future__ import annotations

import pandas as pd

from delssome_norms.errors import InvalidInputError


def sex_difference_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Count significant targets per test, family and direction in a table of sex-difference tests.

    Parameters
    ----------
    results : DataFrame
        Output of :func:`~delssome_norms.stats.sex_difference_tests` or
        :func:`~delssome_norms.stats.chart_sex_tests` (needs ``test``,
        ``family``, ``significant``, ``direction`` and ``effect``).

    Returns
    -------
    DataFrame
        Columns ``test``, ``family``, ``n_targets``, ``n_significant``, ``n_female_greater``,
        ``n_male_greater`` (significant ones in each direction), ``median_effect``.
    """
    if not isinstance(results, pd.DataFrame):
        raise InvalidInputError(f"expected a pandas DataFrame, got {type(results).__name__}", "results")
    need = {"test", "family", "significant", "direction", "effect"}
    missing = need - set(results.columns)
    if missing:
        raise InvalidInputError(f"missing column(s) {', '.join(sorted(missing))}", "results")
    rows = []
    for (test, family), grp in results.groupby(["test", "family"], sort=False):
        sig = grp["significant"].astype(bool)
        rows.append(
            {
                "test": test,
                "family": family,
                "n_targets": len(grp),
                "n_significant": int(sig.sum()),
                "n_female_greater": int((sig & (grp["direction"] == "female > male")).sum()),
                "n_male_greater": int((sig & (grp["direction"] == "female < male")).sum()),
                "median_effect": float(grp["effect"].median()),
            }
        )
    return pd.DataFrame(rows)
