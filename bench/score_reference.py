"""Scoring with the shipped SYNTHETIC reference chart: ``charts score --chart reference``.

Scores 100,000 people x 69 targets (``ei_ratio_mean`` + 68 regions; ages 5-95, both sexes, half
from sites the chart knows, half from an unseen site) and measures

* the whole command (``delssome-norms charts score --chart reference``, in-process: chart load,
  CSV read, checks, scoring, CSV write) and
* :meth:`GrowthChart.score` alone on the loaded table,

best of ``--repeats`` runs each, plus the shipped chart's size on disk. Target: the command in
<= 2 s on this CPU with Parquet tables (CSV is reported beside it; it is I/O-bound and slower);
the chart <= 5 MB. Writes ``bench/results/score_reference.json`` (``--quick``: 10,000 people, one
repeat, ``score_reference_quick.json``; or ``--out``) and prints one summary line with PASS/FAIL
(the command's own messages are kept out of stdout). The target is for 100,000 people: a run with
fewer (``--quick`` included) reports no verdict (``pass`` None).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _options import machine_info, results_file  # bench/ is on sys.path

from delssome_norms.cli.main import main as cli
from delssome_norms.io import write_json
from delssome_norms.norms import load_reference_chart, reference_chart_path

TARGET_S = 2.0
TARGET_MB = 5.0
TARGET_PEOPLE = 100_000
"""The people the 2-s target is set for; a smaller run gives no verdict."""
RESULTS = Path(__file__).parent / "results" / "score_reference.json"


def people(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` people with plausible E/I values drawn around the chart's medians."""
    chart = load_reference_chart()
    rng = np.random.default_rng(seed)
    ages = rng.uniform(5.0, 95.0, n)
    sex = np.where(rng.random(n) < 0.5, "female", "male")
    sites = np.where(rng.random(n) < 0.5, rng.choice(chart.sites_, n), "NEW_SITE")
    params = chart.predict_parameters(ages, sex)
    values = params["mu"] * (1.0 + 0.05 * rng.standard_normal(params["mu"].shape))
    table = pd.DataFrame({"subject_id": [f"p{i:06d}" for i in range(n)], "age_in_years": ages})
    table["sex"] = sex
    table["site_scanner"] = sites
    return pd.concat([table, pd.DataFrame(values, columns=chart.targets_)], axis=1)


def score_verdict(parquet_s: float, chart_mb: float, n_people: int) -> tuple[bool | None, str | None]:
    """(pass, note) of the target; None with the reason for a run it does not apply to."""
    if n_people < TARGET_PEOPLE:
        return None, f"the target is for {TARGET_PEOPLE:,} people, this run scored {n_people:,}"
    return bool(parquet_s <= TARGET_S and chart_mb <= TARGET_MB), None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON result."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=None, help="default 100,000 (--quick: 10,000)")
    ap.add_argument("--repeats", type=int, default=None, help="default 3 (--quick: 1)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10,000 people, one repeat")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args(argv)
    args.out = str(results_file(RESULTS, args.out, args.quick))
    args.people = args.people or (10_000 if args.quick else 100_000)
    args.repeats = args.repeats or (1 if args.quick else 3)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    folder = reference_chart_path()
    chart_mb = sum(f.stat().st_size for f in folder.iterdir() if f.is_file()) / 1e6
    table = people(args.people)
    api_s: list[float] = []
    formats = {"csv": ("people.csv", "scores.csv"), "parquet": ("people.parquet", "scores.parquet")}
    cli_s: dict[str, list[float]] = {k: [] for k in formats}
    sizes = {}
    with tempfile.TemporaryDirectory() as tmp:
        table.to_csv(Path(tmp) / "people.csv", index=False)
        table.to_parquet(Path(tmp) / "people.parquet", index=False)
        quiet = io.StringIO()  # the command's messages: not the benchmark's one line
        with (
            warnings.catch_warnings(),
            contextlib.redirect_stdout(quiet),
            contextlib.redirect_stderr(quiet),
        ):
            warnings.simplefilter("ignore")
            for fmt, (src, dst) in formats.items():
                path, out = Path(tmp) / src, Path(tmp) / dst
                sizes[fmt] = path.stat().st_size / 1e6
                for _ in range(args.repeats):
                    t0 = time.perf_counter()
                    code = cli(["charts", "score", "--chart", "reference", "--table", str(path),
                                "--out", str(out)])  # fmt: skip
                    cli_s[fmt].append(time.perf_counter() - t0)
                    if code != 0:
                        raise SystemExit(f"charts score failed ({code}):\n{quiet.getvalue()}")
            n_out = len(pd.read_parquet(Path(tmp) / "scores.parquet", columns=["subject_id"]))
            chart = load_reference_chart()
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                scores = chart.score(table)
                api_s.append(time.perf_counter() - t0)
    assert n_out == args.people and len(scores) == args.people
    best = {k: min(v) for k, v in cli_s.items()}
    passed, note = score_verdict(best["parquet"], chart_mb, args.people)
    result = {
        "benchmark": "score_reference",
        "when": started,
        "quick": args.quick,
        "settings": {"people": args.people, "repeats": args.repeats, "seed": 0},
        "machine": machine_info(),
        "people": args.people,
        "targets": len(chart.targets_),
        "chart_mb": round(chart_mb, 4),
        "input_mb": {k: round(v, 1) for k, v in sizes.items()},
        "cli_seconds": {k: [round(t, 3) for t in v] for k, v in cli_s.items()},
        "cli_best_s": {k: round(v, 3) for k, v in best.items()},
        "score_seconds": [round(t, 3) for t in api_s],
        "score_best_s": round(min(api_s), 3),
        "target_s": TARGET_S,
        "target_mb": TARGET_MB,
        "meets_target_parquet": best["parquet"] <= TARGET_S and chart_mb <= TARGET_MB,
        "meets_target_csv": best["csv"] <= TARGET_S and chart_mb <= TARGET_MB,
        "target_people": TARGET_PEOPLE,
        "pass": passed,
        "verdict_note": note,
    }
    write_json(result, args.out)
    print(
        f"charts score --chart reference: {args.people} people x {len(chart.targets_)} targets: "
        f"Parquet in/out {best['parquet']:.2f} s, CSV in/out {best['csv']:.2f} s (command, best of "
        f"{args.repeats}; GrowthChart.score alone {min(api_s):.2f} s); shipped chart "
        f"{chart_mb:.2f} MB; target <= {TARGET_S:g} s: Parquet "
        f"{'met' if result['meets_target_parquet'] else 'MISSED'}, CSV "
        f"{'met' if result['meets_target_csv'] else 'MISSED'}; "
        f"{'PASS' if passed else 'FAIL' if passed is not None else f'no verdict ({note})'} "
        f"-> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
