"""Benchmark: how reproducible is a subject's fitted E/I across seeds, with 1 or several searches?

The same held-out synthetic subjects as ``bench/surrogate.py`` (same subject seed, same timing and
generations, from the shipped weights' training data) are fitted twice with different fit seeds,
for each number of independent CMA-ES searches per subject in ``--searches`` (``FitSettings.
searches``: the test stage takes the best validated candidate over all searches). Reported per
setting: per subject the Pearson r across regions between the two seeds' E/I, the difference of
their mean E/I [%] and both test-stage total costs; across subjects the median and minimum r, the
number of subjects below r 0.9 (issue 6's agreement threshold, which two runs of one mode must
meet for two modes to meet it), and the wall time per subject; per seed, each fit against the
held-out truth (r across regions, |mean E/I error| [%]). A subject whose fit fails in either seed
is left out of the comparison and listed under ``failed``.

Writes ``bench/results/reproducibility.json`` (``--quick``: ``reproducibility_quick.json``; or
``--out``) and prints one summary line (one progress line per setting on stderr). Without
``--work`` the fits go to a temporary folder that is deleted at the end. A ``--work`` folder keeps
its held-out subjects for later runs of the same request only: another ``--subjects``,
``--subject-seed`` or ``--scan-length`` stops the run with one line naming the folder and the
difference (``bench/surrogate.py``'s ``held_out_subjects``); use another folder for them.
Usage: ``python bench/reproducibility.py [--mode surrogate] [--searches 1 4] [--subjects 10]
[--scan-length 864 --mode euler]`` (how a longer scan changes the agreement).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _options import machine_info, results_file  # bench/ is on sys.path
from surrogate import (
    QUICK_GENERATIONS,
    QUICK_POPSIZE,
    bench_settings,
    held_out_subjects,
    run_mode,
)

from delssome_norms.cli.options import add_fit_options
from delssome_norms.fit.synthetic import FIC_RATE_BAND
from delssome_norms.io import write_json
from delssome_norms.surrogate import load_pretrained

RESULTS = Path(__file__).resolve().parent / "results" / "reproducibility.json"
R_MIN = 0.9


def versus_truth(fit: dict, ids: list[str], ei_true: np.ndarray | None, all_ids: list[str]):
    """One fit against the held-out truths: r across regions and |mean E/I error| [%] per subject."""
    if ei_true is None:
        return None
    truth = {i: ei_true[all_ids.index(i)] for i in ids}
    r = [float(np.corrcoef(fit["ei"][i], truth[i])[0, 1]) for i in ids]
    err = [float(100 * abs(fit["ei"][i].mean() / truth[i].mean() - 1)) for i in ids]
    return {
        "r": r,
        "r_median": float(np.median(r)) if r else None,
        "below_r_min": int(sum(x < R_MIN for x in r)),
        "abs_mean_err_pct": err,
        "abs_mean_err_pct_median": float(np.median(err)) if err else None,
    }


def compare(a: dict, b: dict, ids: list[str]) -> dict:
    """Per-subject agreement of two fits of the same subjects (``run_mode`` outputs)."""
    if not ids:
        return {"ei_r": [], "ei_r_median": None, "ei_r_min": None, "below_r_min": 0}
    r = [float(np.corrcoef(a["ei"][i], b["ei"][i])[0, 1]) for i in ids]
    level = [float(100 * (b["ei"][i].mean() / a["ei"][i].mean() - 1)) for i in ids]
    test = [[float(x["quality"][i].loc["test", "total_loss"]) for i in ids] for x in (a, b)]
    return {
        "ei_r": r,
        "ei_r_median": float(np.median(r)),
        "ei_r_min": float(np.min(r)),
        "below_r_min": int(sum(x < R_MIN for x in r)),
        "mean_ei_difference_pct": level,
        "mean_ei_abs_difference_median_pct": float(np.median(np.abs(level))),
        "test_total_loss": test,
        "test_total_loss_mean": [float(np.mean(t)) for t in test],
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_fit_options(ap, ("mode",), {"mode": {"default": "surrogate"}})
    ap.add_argument("--searches", type=int, nargs="+", default=[1, 4])
    ap.add_argument(
        "--combine",
        choices=("best", "mean"),
        default=None,
        help="how several searches give one estimate (FitSettings.combine; default: mean)",
    )
    ap.add_argument("--fit-seeds", type=int, nargs=2, default=[1000, 2000])
    ap.add_argument("--subjects", type=int, default=10)
    ap.add_argument("--generations", type=int, default=None, help="default: training data's")
    ap.add_argument("--subject-seed", type=int, default=1000, help="as bench/surrogate.py's --seed")
    ap.add_argument(
        "--scan-length",
        type=float,
        default=None,
        help="seconds (default: the weights' trained length, as bench/surrogate.py; another length "
        "is for --mode euler: the surrogate is trained at one length)",
    )
    add_fit_options(ap, ("stability_gate", "device"))
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--work", default=None, help="folder for the fits (finished fits are reused)")
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"2 subjects, {QUICK_GENERATIONS} generations of {QUICK_POPSIZE}",
    )
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()
    args.out = str(results_file(RESULTS, args.out, args.quick))
    if args.threads:
        torch.set_num_threads(args.threads)
    meta = load_pretrained(None).metadata
    n_subjects = 2 if args.quick else args.subjects
    gsettings, settings = bench_settings(
        meta, n_subjects, args.generations, args.scan_length, args.subject_seed, args.quick
    )
    temporary = args.work is None
    work = Path(args.work or tempfile.mkdtemp(prefix="delssome_bench_reproducibility_"))
    try:
        return _run(args, gsettings, settings, work, n_subjects, temporary)
    finally:
        if temporary:
            shutil.rmtree(work, ignore_errors=True)


def _run(args, gsettings, settings, work: Path, n_subjects: int, temporary: bool) -> int:
    subjects, ei_true = held_out_subjects(gsettings, work / "subjects.npz")
    all_ids = [s.subject_id for s in subjects]
    rows = []
    for n_search in args.searches:
        fits = []
        for seed in args.fit_seeds:
            s = dataclasses.replace(
                settings,
                seed=seed,
                searches=n_search,
                combine=args.combine if n_search > 1 else None,
                device=args.device,
                stability_gate=not args.no_stability_gate,
            )
            t = time.perf_counter()
            tag = f"searches{n_search}" + ("_mean" if s.combine_rule == "mean" else "")
            fit = run_mode(args.mode, subjects, work / f"{tag}_seed{seed}", s, None, allow_failed=True)
            fit["wall_s"] = time.perf_counter() - t
            fits.append(fit)
        failed = {
            f"seed {seed}: {i}": m
            for seed, f in zip(args.fit_seeds, fits)
            for i, m in f["failed"].items()
        }
        ids = [i for i in all_ids if all(i in f["ei"] for f in fits)]
        row = {
            "searches": n_search,
            "combine": s.combine_rule,
            "seconds_per_subject": [f["seconds"] / n_subjects for f in fits],
            "reused": [f["reused"] for f in fits],
            "subjects_compared": ids,
            "failed": failed,
            **compare(fits[0], fits[1], ids),
            "vs_truth": [versus_truth(f, ids, ei_true, all_ids) for f in fits],
        }
        rows.append(row)
        if not ids:
            msg = f"reproducibility[{args.mode}, searches {n_search}]: no subject fitted in both seeds"
            print(f"{msg}: {failed}", file=sys.stderr, flush=True)
            continue
        print(
            f"reproducibility[{args.mode}, searches {n_search}, {s.combine_rule}]: E/I r between seeds "
            f"median "
            f"{row['ei_r_median']:.3f}, min {row['ei_r_min']:.3f}, {row['below_r_min']}/{len(ids)} "
            f"below {R_MIN}; mean E/I differs by a median "
            f"{row['mean_ei_abs_difference_median_pct']:.1f} %; test cost "
            f"{row['test_total_loss_mean'][0]:.3f} / {row['test_total_loss_mean'][1]:.3f}; "
            f"{np.mean(row['seconds_per_subject']):.1f} s per subject"
            + (f"; {len(failed)} fit(s) FAILED" if failed else ""),
            file=sys.stderr,
            flush=True,
        )
    write_json(
        {
            "benchmark": "reproducibility",
            "when": time.strftime("%Y-%m-%d %H:%M:%S"),
            "quick": args.quick,
            "config": vars(args),
            "machine": machine_info(args.device),
            "subjects": all_ids,
            "generations": gsettings.generations,
            "scan_length": gsettings.scan_lengths[0],
            "device": args.device,
            "truth_rate_band": list(FIC_RATE_BAND),
            "torch_threads": torch.get_num_threads(),
            "work": None if temporary else str(work),
            "fit_settings": {
                "popsize": settings.cmaes.popsize,
                "n_dup": settings.n_dup,
                "dt": {"train": settings.dt_train, "val": settings.dt_val, "test": settings.dt_test},
                "test_top_k": settings.test_top_k,
            },
            "settings": rows,
        },
        args.out,
    )
    parts = []
    for row in rows:
        text = f"searches {row['searches']} ({row['combine']}): "
        if row["subjects_compared"]:
            truth = row["vs_truth"]
            text += (
                f"r between seeds median {row['ei_r_median']:.3f}, min {row['ei_r_min']:.3f}, "
                f"{row['below_r_min']}/{len(row['subjects_compared'])} below {R_MIN}; level "
                f"{row['mean_ei_abs_difference_median_pct']:.1f} %; "
                f"{np.mean(row['seconds_per_subject']):.1f} s/subject"
            )
            if truth[0]:
                text += (
                    f"; vs truth r median {truth[0]['r_median']:.3f} / {truth[1]['r_median']:.3f}, "
                    f"|level err| {truth[0]['abs_mean_err_pct_median']:.1f} / "
                    f"{truth[1]['abs_mean_err_pct_median']:.1f} %"
                )
        else:
            text += "no subject fitted in both seeds"
        if row["failed"]:
            text += f"; {len(row['failed'])} fit(s) FAILED"
        parts.append(text)
    print(
        f"reproducibility[{args.mode}, {n_subjects} subjects]: " + " | ".join(parts) + f" -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
