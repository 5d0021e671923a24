"""Benchmark: growth charts recover the paper's lifespan findings from the SYNTHETIC reference cohort.

Issue 8 acceptance. The committed 12,005-person table (effects built in) and a null cohort made by
the same generator with the effects switched off (same people, sites and noise draws; flat
trajectory, no sex difference, no regional pattern; regenerated here in seconds from the packaged
model set-up) are each fitted with ``GrowthChart(family="SHASHo2", mu_df=4, sigma_df=3)`` (the
paper's model: mu ~ bs(age, 4) + sex + random(site), sigma ~ bs(age, 3) + sex + random(site)) on
``ei_ratio_mean`` and the 68 regional columns, and every built-in effect is tested on the
population curves (fixed effects, 0.1-year grid from floor(min age) to ceil(max age)).

Effects and decision rules (``SD`` = the chart's robust spread (C75 - C25) / 1.349 of
``ei_ratio_mean``, averaged over ages and sexes; slopes = mean growth rate of the median over
the window, per year; each rule must hold for both sexes):

1. childhood fall:      slope(5-15) < 0 and |slope| * 10 y >= 0.25 SD
2. plateau in the 20s:  |slope(20-30)| <= 0.3 min(|slope(5-15)|, |slope(40-65)|), with both
                        neighbouring falls detected (a plateau *between* two falls)
3. mid-life fall:       slope(40-65) < 0 and |slope| * 25 y >= 0.25 SD
4. old-age rise:        slope(80-max) > 0 and slope * (max - 80) y >= 0.25 SD
5. sensory > association at every decade: at ages 5, 15, ..., 95 the mean of the sensory regions'
                        medians exceeds that of the association regions by >= 0.1 SD
6. female > male median: F - M median of ``ei_ratio_mean`` averaged over ages >= 0.1 SD and
                        positive at >= 90 % of ages
7. female sigma > male sigma: (C75 - C25) ratio F / M averaged over ages >= 1.05 and > 1 at
                        >= 90 % of ages

Pass: every effect detected in the effect cohort and none in the null cohort.
Writes ``bench/results/reference_effects.json`` (or ``--out``) and prints one line.
Usage: ``python bench/reference_effects.py [--out FILE]`` (about 20 s on 2 CPU cores; no quicker mode)
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _options import machine_info  # bench/ is on sys.path

from delssome_norms.datasets import region_classes
from delssome_norms.datasets.reference import load_reference_table
from delssome_norms.io import write_json
from delssome_norms.norms import GrowthChart
from delssome_norms.synthetic import (
    DEFAULT_SEED,
    generate_reference_cohort,
    load_model_setup,
    load_reference_spec,
)

RESULTS = Path(__file__).resolve().parent / "results" / "reference_effects.json"
WINDOWS = {
    "childhood": (5.0, 15.0),
    "twenties": (20.0, 30.0),
    "midlife": (40.0, 65.0),
    "old_age": (80.0, None),
}
DECADES = tuple(float(a) for a in range(5, 100, 10))
MIN_TREND_SD = 0.25
PLATEAU_RATIO = 0.3
MIN_DIFF_SD = 0.1
MIN_SIGMA_RATIO = 1.05
MIN_FRACTION = 0.9


def _window_slope(
    ages: np.ndarray, rate: np.ndarray, lo: float, hi: float | None
) -> tuple[float, float]:
    hi = float(ages.max()) if hi is None else hi
    m = (ages >= lo) & (ages <= hi)
    return float(rate[m].mean()), hi - lo


def fit_chart(table: pd.DataFrame) -> GrowthChart:
    """The paper's chart (SHASHo2, mu df 4, sigma df 3, sex and site terms) on every E/I column."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GrowthChart(family="SHASHo2", mu_df=4, sigma_df=3).fit(table)


def assess(chart: GrowthChart) -> dict[str, Any]:
    """Apply the seven decision rules to a fitted chart (see the module docstring)."""
    sensory = region_classes() == "sensory"
    rois = [f"ei_ratio_roi_{i}" for i in range(68)]
    curves = {sex: chart.population_centiles(sex) for sex in ("female", "male")}
    ages = curves["female"]["ei_ratio_mean"]["age_in_years"].to_numpy()
    spread = {
        s: (c["ei_ratio_mean"]["C75"] - c["ei_ratio_mean"]["C25"]).to_numpy() for s, c in curves.items()
    }
    sd = float(np.mean([spread["female"].mean(), spread["male"].mean()]) / 1.349)
    out: dict[str, Any] = {"robust_sd": sd}

    phases: dict[str, Any] = {}
    for sex, c in curves.items():
        rate = c["ei_ratio_mean"]["growth_rate"].to_numpy()
        slopes = {name: _window_slope(ages, rate, lo, hi) for name, (lo, hi) in WINDOWS.items()}
        child, child_len = slopes["childhood"]
        mid, mid_len = slopes["midlife"]
        old, old_len = slopes["old_age"]
        twen, _ = slopes["twenties"]
        child_ok = child < 0 and abs(child) * child_len >= MIN_TREND_SD * sd
        mid_ok = mid < 0 and abs(mid) * mid_len >= MIN_TREND_SD * sd
        phases[sex] = {
            "slope_per_year": {k: v[0] for k, v in slopes.items()},
            "childhood_fall": bool(child_ok),
            "plateau_20s": bool(
                child_ok and mid_ok and abs(twen) <= PLATEAU_RATIO * min(abs(child), abs(mid))
            ),
            "midlife_fall": bool(mid_ok),
            "old_age_rise": bool(old > 0 and old * old_len >= MIN_TREND_SD * sd),
        }
    out["phases"] = phases

    decade = {}
    for sex in ("female", "male"):
        long = chart.centiles(np.array(DECADES), sex, q=[50.0], targets=rois)
        med = long.pivot(index="age_in_years", columns="target", values="C50")[rois].to_numpy()
        diff = med[:, sensory].mean(axis=1) - med[:, ~sensory].mean(axis=1)
        decade[sex] = {"ages": list(DECADES), "sensory_minus_association": diff.tolist()}
    out["sensory_minus_association"] = decade
    out["sensory_gt_association_every_decade"] = bool(
        all(min(decade[s]["sensory_minus_association"]) >= MIN_DIFF_SD * sd for s in decade)
    )

    med_f = curves["female"]["ei_ratio_mean"]["C50"].to_numpy()
    med_m = curves["male"]["ei_ratio_mean"]["C50"].to_numpy()
    d = med_f - med_m
    out["female_minus_male_median"] = {
        "mean": float(d.mean()),
        "fraction_positive": float((d > 0).mean()),
    }
    out["female_gt_male_median"] = bool(d.mean() >= MIN_DIFF_SD * sd and (d > 0).mean() >= MIN_FRACTION)
    ratio = spread["female"] / spread["male"]
    out["female_over_male_spread"] = {
        "mean": float(ratio.mean()),
        "fraction_above_1": float((ratio > 1).mean()),
    }
    out["female_gt_male_sigma"] = bool(
        ratio.mean() >= MIN_SIGMA_RATIO and (ratio > 1).mean() >= MIN_FRACTION
    )

    out["detected"] = {
        "childhood_fall": all(phases[s]["childhood_fall"] for s in phases),
        "plateau_20s": all(phases[s]["plateau_20s"] for s in phases),
        "midlife_fall": all(phases[s]["midlife_fall"] for s in phases),
        "old_age_rise": all(phases[s]["old_age_rise"] for s in phases),
        "sensory_gt_association": out["sensory_gt_association_every_decade"],
        "female_gt_male_median": out["female_gt_male_median"],
        "female_gt_male_sigma": out["female_gt_male_sigma"],
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", type=Path, default=RESULTS, help="JSON path (default %(default)s)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    effect_table = load_reference_table()
    spec = load_reference_spec()
    null = generate_reference_cohort(DEFAULT_SEED, effects=False, spec=spec, setup=load_model_setup())
    null_table = null.table
    results: dict[str, Any] = {"benchmark": "reference_effects", "n_people": len(effect_table)}
    timings = {}
    for name, table in (("effect", effect_table), ("null", null_table)):
        t = time.perf_counter()
        chart = fit_chart(table)
        results[name] = assess(chart)
        results[name]["all_converged"] = bool(np.all(chart.converged_))
        timings[name] = round(time.perf_counter() - t, 1)
    eff, nul = results["effect"]["detected"], results["null"]["detected"]
    results["pass"] = bool(all(eff.values()) and not any(nul.values()))
    results["wall_s"] = {"fits": timings, "total": round(time.perf_counter() - t0, 1)}
    results["load_average"] = os.getloadavg()
    results["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    results["settings"] = {"family": "SHASHo2", "mu_df": 4, "sigma_df": 3, "null_seed": DEFAULT_SEED}
    results["machine"] = machine_info()
    write_json(results, args.out)
    n_eff = sum(eff.values())
    n_nul = sum(nul.values())
    print(
        f"reference_effects: effect cohort {n_eff}/{len(eff)} effects recovered, null cohort "
        f"{n_nul}/{len(nul)} detected; {'PASS' if results['pass'] else 'FAIL'} -> {args.out}"
    )
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
