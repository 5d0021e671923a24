"""The lines that ``delssome-norms stats sex`` prints: its tests' results and the sex gap."""

from __future__ import annotations

import math

import pandas as pd

from delssome_norms.io.ei_table import MEAN_TARGET

TEST_WORDS = {
    "sigma_lr": ("likelihood-ratio test", "sd female / male"),
    "sigma_robust_wald": ("robust (sandwich) Wald test", "sd female / male"),
    "brown_forsythe": ("Brown-Forsythe test", "spread female / male"),
}
"""How each variability test and its effect are printed."""


def _fmt_p(p: float) -> str:
    return "NaN" if p != p else f"{p:.2g}"


def _tested(row) -> bool:
    """Whether a row of the sex tests has a test (its fits converged)."""
    return bool(row.get("converged", True)) and row["p"] == row["p"]


def _test_line(
    tests, summary, test: str, what: str, effect: str, alpha: float, how: str = ""
) -> str | None:
    """One printed line: the test's (``how``) result for ei_ratio_mean and its count of regions."""
    rows = tests[(tests["test"] == test) & (tests["target"] == MEAN_TARGET)]
    parts = []
    if len(rows):
        r = rows.iloc[0]
        ci = f" [{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r["ci_low"] == r["ci_low"] else ""
        parts.append(
            f"{effect} {r['effect']:.3f}{ci}, p {_fmt_p(r['p'])}"
            if _tested(r)
            else "not tested (its fit did not converge)"
        )
    reg = summary[(summary["test"] == test) & (summary["family"] == "regional")]
    if len(reg):
        s = reg.iloc[0]
        regional = tests[(tests["test"] == test) & (tests["family"] == "regional")]
        untested = sum(not _tested(r) for _, r in regional.iterrows())
        parts.append(
            f"{s['n_significant']} of {s['n_targets']} regions significant (FDR "
            f"{100 * alpha:g} %; {s['n_female_greater']} female > male, "
            f"{s['n_male_greater']} female < male"
            + (f"; {untested} not tested: their fits did not converge)" if untested else ")")
        )
    if not parts:
        return None
    where = f" ({MEAN_TARGET})" if len(rows) else ""
    return f"sex difference in {what}{where}{how}: " + "; ".join(parts)


def _gap_ages_said(gap, ages) -> str:
    """`` (ages A to B, ...)`` when the gap covers fewer whole years than the table's ages: the
    gap is given only at ages that both sexes cover."""
    lo, hi = float(gap["age_in_years"].min()), float(gap["age_in_years"].max())
    if ages is None or (lo <= math.ceil(ages[0]) and hi >= math.floor(ages[1])):
        return ""
    return (
        f" (ages {lo:g} to {hi:g} only, those that both sexes cover; the table's ages run "
        f"{ages[0]:.3g} to {ages[1]:.3g})"
    )


def sex_lines(
    tests: pd.DataFrame,
    summary: pd.DataFrame,
    gap: pd.DataFrame | None,
    alpha: float,
    n_boot: int,
    variability: str = "sigma_lr",
    ages: tuple[float, float] | None = None,
    why: str | None = None,
) -> list[str]:
    """The printed summary of ``stats sex``: the mean test, the chosen variability test with the
    Brown-Forsythe test beside it (the one robust to the residuals' shape), and the sex gap.

    Parameters
    ----------
    tests, summary : DataFrame
        :func:`~delssome_norms.stats.sex_difference_tests` (with the ``variability`` rows) and
        :func:`~delssome_norms.stats.sex_difference_summary` of it.
    gap : DataFrame or None
        :func:`~delssome_norms.stats.sex_gap`, or None when it was not estimated (``why``).
    alpha, n_boot : float, int
        FDR level and the bootstrap resamples asked for.
    variability : str
        The variability test printed first: a key of :data:`TEST_WORDS`.
    ages : (float, float), optional
        The table's youngest and oldest ages: the gap's line says when it covers fewer.
    why : str, optional
        Why the gap was not estimated (default: its fit did not converge).

    Returns
    -------
    list of str
    """
    lines = [_test_line(tests, summary, "mu_lr", "E/I", "female - male", alpha)]
    for test in [variability] + ["brown_forsythe"] * (variability != "brown_forsythe"):
        name, effect = TEST_WORDS[test]
        lines.append(_test_line(tests, summary, test, "E/I variability", effect, alpha, f", {name}"))
    lines = [ln for ln in lines if ln is not None]
    if gap is None:
        lines.append(f"sex gap across age: not estimated ({why or 'its fit did not converge'})")
        return lines
    target, used = gap["target"].iloc[0], int(gap["n_boot"].iloc[0])
    target += " across age" + _gap_ages_said(gap, ages)
    if used >= 2:
        above, below = int((gap["ci_low"] > 0).sum()), int((gap["ci_high"] < 0).sum())
        of = "" if used == n_boot else f" (from the {used} of {n_boot} resamples that converged)"
        lines.append(
            f"sex gap in {target}: the {100 * gap['level'].iloc[0]:g} % band{of} lies "
            f"above zero at {above} and below zero at {below} of {len(gap)} ages"
        )
    elif n_boot == 0:
        lines.append(f"sex gap in {target}: no band (--n-boot 0)")
    else:
        lines.append(f"sex gap in {target}: no band ({used} of {n_boot} resamples converged)")
    return lines
