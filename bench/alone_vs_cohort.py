"""Benchmark: is a subject's E/I the same fitted alone and inside a cohort, with the default maps?

Before the shipped DK68 maps, a subject without maps got the gradient of its own FC when fitted
alone and the gradient of the group FC inside a cohort, and the two fits' regional E/I correlated
at r 0.16. With the defaults both use the same maps, so only the lockstep group (and with it the
noise seeds of the validation and test simulations) differs.

The packaged SYNTHETIC controls (``materialise_subjects``) are written without map columns, so the
fitter's defaults apply; the first ``--subjects`` are fitted in one ``cohort`` run (one lockstep
group) and ``--alone`` of them again, each on its own (``estimate_ei``), with the same seed.
Reports per subject the Pearson r across regions between the two fits (target >= 0.9), their mean
E/I difference [%] and both fits' r against the truth.

Writes ``bench/results/alone_vs_cohort.json`` (``--quick``: ``alone_vs_cohort_quick.json``; or
``--out``) and prints one line. A subject whose fit fails is left out and listed under ``failed``.
Usage: ``python bench/alone_vs_cohort.py [--mode surrogate] [--subjects 10] [--alone 3] [--quick]``
(``--quick``: 2 subjects, 1 alone, 3 generations; about a minute on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _options import machine_info, results_file  # bench/ is on sys.path

from delssome_norms.cli.options import add_fit_options, fit_settings_from_args
from delssome_norms.datasets.reference import materialise_subjects
from delssome_norms.fit import estimate_ei, load_subject, run_cohort
from delssome_norms.io import write_json
from delssome_norms.surrogate import SURROGATE_BACKEND

RESULTS = Path(__file__).resolve().parent / "results" / "alone_vs_cohort.json"
R_MIN = 0.9


def _ei(folder: Path) -> np.ndarray:
    return pd.read_csv(folder / "EI_ratio.csv")["EI_ratio"].to_numpy()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_fit_options(ap, ("mode",), {"mode": {"default": "surrogate"}})
    ap.add_argument("--subjects", type=int, default=10, help="cohort size (one lockstep group)")
    ap.add_argument("--alone", type=int, default=3, help="of them, fitted again on their own")
    add_fit_options(ap, ("cmaes.generations", "seed"))
    ap.add_argument("--threads", type=int, default=2)
    add_fit_options(ap, ("device",))
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 subjects, 1 alone, 3 generations")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    args.out = results_file(RESULTS, args.out, args.quick)
    if args.quick:
        args.subjects, args.alone, args.generations = 2, 1, 3
    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="alone_vs_cohort_"))
    try:
        return _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> int:
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    settings = fit_settings_from_args(args)
    inputs = work / "subjects"
    table = pd.read_csv(materialise_subjects(inputs, kind="control"))
    table = table.iloc[: args.subjects].drop(columns=["myelin", "gradient"])
    for col in ("fc", "fcd_cdf", "sc"):
        table[col] = [str(inputs / v) for v in table[col]]
    manifest = work / "manifest.csv"
    table.to_csv(manifest, index=False)

    start = time.perf_counter()
    summary = run_cohort(
        manifest,
        work / "cohort",
        settings,
        group_size=args.subjects,
        quiet=True,
        surrogate=SURROGATE_BACKEND,
    )
    cohort_s = time.perf_counter() - start
    failed = {}
    if summary.failed:
        failed = {
            f"cohort: {r['subject_id']}": f"{r.get('stage')}: {r.get('error')}"
            for r in summary.failures.to_dict("records")
        }
    rows, alone_s = [], 0.0
    for row in table.iloc[: args.alone].itertuples():
        subject = load_subject(
            row.subject_id, row.tr, row.scan_length, fc=row.fc, fcd_cdf=row.fcd_cdf, sc=row.sc
        )
        start = time.perf_counter()
        try:
            estimate_ei(subject, work / "alone" / row.subject_id, settings, surrogate=SURROGATE_BACKEND)
        except Exception as exc:  # a failed fit is reported, not fatal
            failed[f"alone: {row.subject_id}"] = f"{type(exc).__name__}: {exc}"
        alone_s += time.perf_counter() - start
        if not all((work / w / row.subject_id / "EI_ratio.csv").is_file() for w in ("alone", "cohort")):
            continue
        a, c = _ei(work / "alone" / row.subject_id), _ei(work / "cohort" / row.subject_id)
        truth = pd.read_csv(inputs / "truth" / f"{row.subject_id}_EI_ratio.csv")["EI_ratio"].to_numpy()
        rows.append(
            {
                "subject_id": row.subject_id,
                "r_alone_vs_cohort": float(np.corrcoef(a, c)[0, 1]),
                "mean_ei_difference_pct": float(100 * (a.mean() / c.mean() - 1)),
                "r_alone_vs_truth": float(np.corrcoef(a, truth)[0, 1]),
                "r_cohort_vs_truth": float(np.corrcoef(c, truth)[0, 1]),
            }
        )
    r = [x["r_alone_vs_cohort"] for x in rows]
    truth_rows = []
    for row in table.itertuples():
        if not (work / "cohort" / row.subject_id / "EI_ratio.csv").is_file():
            continue
        c = _ei(work / "cohort" / row.subject_id)
        truth = pd.read_csv(inputs / "truth" / f"{row.subject_id}_EI_ratio.csv")["EI_ratio"].to_numpy()
        truth_rows.append(
            {
                "subject_id": row.subject_id,
                "r_vs_truth": float(np.corrcoef(c, truth)[0, 1]),
                "mean_ei_error_pct": float(100 * (c.mean() / truth.mean() - 1)),
            }
        )
    if not rows or not truth_rows:
        raise SystemExit(f"alone_vs_cohort: no subject fitted both ways: {failed}")
    result = {
        "benchmark": "alone_vs_cohort",
        "when": started,
        "quick": args.quick,
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": machine_info(args.device),
        "failed": failed,
        "mode": args.mode,
        "generations": args.generations,
        "cohort_subjects": args.subjects,
        "maps": "default DK68 maps (no maps in the manifest)",
        "subjects": rows,
        "cohort_vs_truth": truth_rows,
        "cohort_r_vs_truth_median": float(np.median([x["r_vs_truth"] for x in truth_rows])),
        "cohort_abs_mean_ei_error_median_pct": float(
            np.median([abs(x["mean_ei_error_pct"]) for x in truth_rows])
        ),
        "r_min": float(np.min(r)),
        "r_median": float(np.median(r)),
        "passes": bool(np.min(r) >= R_MIN),
        "wall_seconds": {"cohort": cohort_s, "alone": alone_s},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(result, args.out)
    print(
        f"alone vs cohort ({args.mode}, {args.generations} gen): regional E/I r "
        f"min {result['r_min']:.3f}, "
        f"median {result['r_median']:.3f} over {len(rows)} subjects (target >= {R_MIN}: "
        f"{'PASS' if result['passes'] else 'FAIL'}); cohort vs truth r median "
        f"{result['cohort_r_vs_truth_median']:.3f}, |mean E/I error| median "
        f"{result['cohort_abs_mean_ei_error_median_pct']:.1f} %"
        + (f"; {len(failed)} fit(s) FAILED" if failed else "")
        + f" -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
