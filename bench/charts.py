"""Growth-chart speed: fit 69 targets x 12,005 people (6 sites), score 100,000 people x 69 targets.

Targets (issue 7): fit <= 60 s, score <= 2 s on the development CPU. Writes
``bench/results/charts.json`` and prints one summary line. The scoring time is that of
:meth:`GrowthChart.score` (validation, flags and the wide output table included); the core array
computation (``score_arrays``) is reported separately. Wall-clock times depend on what else runs on
the machine (the 1-minute load average is recorded); process CPU time is reported beside them.

Usage: ``python bench/charts.py [--repeats 3]``
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from _options import machine_info  # bench/ is on sys.path

from delssome_norms.io import write_json
from delssome_norms.norms import GrowthChart
from delssome_norms.norms.simulate import make_truth, simulate_cohort

N_FIT, N_SCORE, N_TARGETS, N_SITES = 12005, 100_000, 69, 6
FIT_LIMIT_S, SCORE_LIMIT_S = 60.0, 2.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (best is reported)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "charts.json"))
    args = parser.parse_args()

    truth = make_truth(N_TARGETS, N_SITES, seed=1)
    train = simulate_cohort(truth, N_FIT, seed=2)
    people = simulate_cohort(truth, N_SCORE, seed=3)

    fit_times, fit_cpu, chart = [], [], None
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        chart = GrowthChart("SHASHo2", mu_df=4, sigma_df=3).fit(train)
        fit_times.append(time.perf_counter() - t0)
        fit_cpu.append(time.process_time() - c0)
    assert chart is not None

    score_times, score_cpu, core_times = [], [], []
    for _ in range(args.repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0, c0 = time.perf_counter(), time.process_time()
            scores = chart.score(people)
            score_times.append(time.perf_counter() - t0)
            score_cpu.append(time.process_time() - c0)
        ages = people["age_in_years"].to_numpy()
        female = people["numeric_sex"].to_numpy(dtype=np.float64)
        codes = np.array([chart.sites_.index(s) for s in people["site_scanner"]])
        y = people[chart.targets_].to_numpy()
        t0 = time.perf_counter()
        chart.score_arrays(ages, female, codes, y)
        core_times.append(time.perf_counter() - t0)

    centile = scores[[f"{t}_centile" for t in chart.targets_]].to_numpy()
    q = np.array([2.5, 5, 25, 50, 75, 95, 97.5])
    frac = (centile[..., None] < q / 100).mean((0, 1)) * 100
    result = {
        "benchmark": "charts",
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "repeats": args.repeats,
            "chart": {"family": "SHASHo2", "mu_df": 4, "sigma_df": 3},
            "seeds": {"truth": 1, "fit": 2, "score": 3},
        },
        "machine": {
            **machine_info(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "processor": platform.processor() or platform.machine(),
        },
        "fit": {
            "n_people": N_FIT,
            "n_targets": N_TARGETS,
            "n_sites": N_SITES,
            "seconds_best": min(fit_times),
            "seconds_all": fit_times,
            "cpu_seconds_best": min(fit_cpu),
            "limit_s": FIT_LIMIT_S,
            "all_converged": bool(chart.converged_.all()),
            "max_iterations": int(chart.n_iter_.max()),
        },
        "score": {
            "n_people": N_SCORE,
            "n_targets": N_TARGETS,
            "seconds_best": min(score_times),
            "seconds_all": score_times,
            "cpu_seconds_best": min(score_cpu),
            "core_seconds_best": min(core_times),
            "limit_s": SCORE_LIMIT_S,
            "heldout_percent_below_centiles": dict(zip(map(str, q), frac.round(3).tolist())),
        },
        "pass": bool(min(fit_times) <= FIT_LIMIT_S and min(score_times) <= SCORE_LIMIT_S),
    }
    write_json(result, args.out)
    print(
        f"charts: fit {N_TARGETS} targets x {N_FIT} people {min(fit_times):.1f} s "
        f"(cpu {min(fit_cpu):.1f} s, limit {FIT_LIMIT_S:g}), score {N_SCORE} x {N_TARGETS} "
        f"{min(score_times):.2f} s (cpu {min(score_cpu):.2f} s, core {min(core_times):.2f} s, "
        f"limit {SCORE_LIMIT_S:g}); "
        f"load {result['machine']['load_average_1min']:.2f}; "
        f"{'PASS' if result['pass'] else 'FAIL'} -> {args.out}"
    )
    return 0 if result["pass"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
