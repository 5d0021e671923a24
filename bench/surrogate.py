"""DELSSOME surrogate acceptance benchmark (issue 6): ranking quality, per-candidate cost, end to end.

On K held-out synthetic subjects (drawn like the training subjects but with another seed, so none
of them was seen in training, and kept only when every region's simulated r_E stays in 2.7–3.3 Hz,
the FIC regime: a truth outside it is a parameter set no fit at the FIC fixed point reproduces,
and two fits of it disagree with each other), in one process on one CPU:

1. **End to end.** The fitter runs train → validation → test twice on the same lockstep group:
   ``mode="euler"`` (every train candidate simulated) and ``mode="surrogate"`` (train candidates
   scored by the shipped weights; validation and test simulated). Reported: wall time per subject
   of each mode and their ratio, as run and at the fitter's default 100 generations (train and
   validation stage times scaled linearly, test and profile once: the figure the check uses,
   since at a short search the stages every mode simulates dominate), test-stage total cost of
   each mode (mean over subjects and per subject), the Pearson correlation across regions of the
   two modes' E/I per subject, and each mode's r and mean-E/I error against the true E/I.
2. **Ranking.** Every candidate of the Euler run (simulated losses) is also predicted by the
   surrogate: Pearson and Spearman per cost term and for the total, pooled over the held-out
   subjects and per subject, and the top-10 overlap per generation.
3. **Per-candidate cost.** The same 100 x K candidates evaluated by the Euler evaluator (dt 0.005 s,
   3 duplicates, batched) and by the surrogate evaluator (batched); ratio of the times.

Settings (generations, timing) default to those of the weights' training data. Each subject gets
four independent searches per mode whose answers are averaged (``--searches 4``, the toolkit's
protocol for one person's regional pattern): with one search the regional pattern depends on the
seed in either mode (two Euler-mode seeds disagree below r 0.9 for 4 of 10 of these subjects,
``bench/reproducibility.py``), so the between-mode r would measure that, not the surrogate;
``--searches 1`` runs the single-search comparison. The test stage re-simulates the validation
winner (``test_top_k = 1``, the protocol of docs/science.md §5) and each search's best. Both
modes use the FIC stability gate, as the fitter does by default (``--no-stability-gate``: the
paper's protocol); its per-candidate cost is reported next to the network's.
Writes ``bench/results/surrogate.json`` (``--quick``: ``surrogate_quick.json``) and prints one
summary line with PASS/FAIL; ``--quick`` is a smoke run the targets are not set for and gives no
verdict (``passed`` None, "smoke run, no verdict"). ``--work DIR`` keeps the held-out
subjects and the fits there for a later run with the same request (other subjects, seed or scan
length stop the run with a message: use another folder); without it they go to a temporary
folder that is deleted at the end, also when the run fails.

Usage: ``python bench/surrogate.py [--subjects N] [--generations G] [--quick] [--weights DIR]``
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _cache import current_fits, discard  # bench/ is on sys.path
from _options import add_truth_rate_band, machine_info, results_file, truth_rate_band

from delssome_norms.cli.options import add_fit_options
from delssome_norms.datasets import load_default_template
from delssome_norms.errors import InputWarning
from delssome_norms.fit import CMAESSettings, EulerEvaluator, FitSettings, SubjectInputs, fit_group
from delssome_norms.fit.evaluate import StabilityGatedEvaluator
from delssome_norms.fit.lockstep import build_space
from delssome_norms.fit.synthetic import FIC_RATE_BAND
from delssome_norms.io import write_arrays, write_json
from delssome_norms.surrogate import (
    SURROGATE_BACKEND,
    SurrogateEvaluator,
    load_pretrained,
    prediction_metrics,
)
from delssome_norms.surrogate.generate import GenerateSettings, synthetic_subjects, truth_maps

SPEARMAN_MIN, SPEEDUP_CANDIDATE_MIN, SPEEDUP_E2E_MIN = 0.8, 1000.0, 10.0
TEST_COST_TOLERANCE, EI_R_MIN = 0.05, 0.9
RESULTS = Path(__file__).resolve().parent / "results" / "surrogate.json"
BENCH_SEARCHES = 4
"""Searches per subject (averaged, ``FitSettings.combine="mean"``): the protocol whose regional
pattern is reproducible, so the two modes' agreement measures the surrogate, not seed noise."""
QUICK_GENERATIONS, QUICK_POPSIZE = 3, 40
"""Budget of ``--quick`` (a smoke test, no acceptance figure)."""


# ------------------------------------------------------------------------------ helpers
def run_mode(
    mode: str,
    subjects,
    work: Path,
    settings: FitSettings,
    weights: str | None,
    allow_failed: bool = False,
) -> dict:
    """Fit the group in ``mode``; returns wall time and per-subject outputs.

    A finished run in ``work`` is reused only when every subject's fit is current (same inputs,
    settings and version); otherwise the whole group is refitted. A failed subject stops the
    benchmark, or with ``allow_failed`` is left out of ``quality`` and ``ei`` and listed in
    ``failed`` (id: message).
    """
    out = work / mode
    timing_file = out / "timing.json"
    dirs = [out / s.subject_id for s in subjects]
    mode_settings = dataclasses.replace(
        settings, mode=mode, surrogate_weights=weights if mode == "surrogate" else None
    )
    if timing_file.is_file() and all(current_fits(subjects, dirs, mode_settings)):
        stored = json.loads(timing_file.read_text())
        seconds, cpu_seconds = stored["seconds"], stored["cpu_seconds"]
        reused, failed = True, []
    else:
        discard(dirs)  # the wall time is that of the whole group: refit every subject
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InputWarning)
            outcomes = fit_group(subjects, dirs, mode_settings, surrogate=SURROGATE_BACKEND)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        failed = [o for o in outcomes if o.status == "failed"]
        if failed and not allow_failed:
            raise RuntimeError(f"{mode}: {failed}")
        write_json({"seconds": seconds, "cpu_seconds": cpu_seconds}, timing_file)
        reused = False
    failed_ids = {o.subject_id: _failure(o) for o in failed}
    done = [(s, d) for s, d in zip(subjects, dirs) if s.subject_id not in failed_ids]
    quality = {s.subject_id: pd.read_csv(d / "fit_quality.csv").set_index("stage") for s, d in done}
    ei = {s.subject_id: pd.read_csv(d / "EI_ratio.csv")["EI_ratio"].to_numpy() for s, d in done}
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "reused": reused,
        "quality": quality,
        "ei": ei,
        "dirs": dirs,
        "failed": failed_ids,
    }


def _failure(outcome) -> str:
    """A failed subject's stage and message (the message may already name the stage)."""
    msg = str(outcome.message)
    return msg if msg.startswith(str(outcome.stage)) else f"{outcome.stage}: {msg}"


def euler_candidates(subjects, dirs, settings: FitSettings):
    """Every train candidate of the Euler run as regional parameters, with its simulated losses."""
    regional, g, subj, gen, losses = [], [], [], [], []
    for k, (s, d) in enumerate(zip(subjects, dirs)):
        space, _ = build_space(s)
        ck = d / "checkpoint"
        for t in range(settings.cmaes.generations):
            path = ck / f"train_{t:05d}.npz"
            if not path.is_file():
                break
            with np.load(path, allow_pickle=False) as z:
                p = space.to_regional(z["candidates"])
                regional.append(np.stack([p.wEE, p.wEI, p.sigma], axis=-1))
                g.append(p.G)
                losses.append(np.stack([z["corr"], z["l1"], z["ks"]], axis=1))
            subj.append(np.full(len(p.G), k))
            gen.append(np.full(len(p.G), t))
    return (
        np.concatenate(regional),
        np.concatenate(g),
        np.concatenate(subj),
        np.concatenate(gen),
        np.concatenate(losses),
    )


def per_candidate_cost(subjects, regional, g, subj, timing, weights, repeats: int) -> dict:
    """Seconds per candidate of Euler (batched) and surrogate (batched) evaluation."""
    fc = np.stack([s.fc for s in subjects])
    cdf = np.stack([s.fcd_cdf for s in subjects])
    sc = np.stack([s.sc for s in subjects])
    from delssome_norms.model import PFICParams

    params = PFICParams(
        *(torch.as_tensor(regional[..., j], dtype=torch.float64) for j in range(3)),
        G=torch.as_tensor(g, dtype=torch.float64),
    )
    idx = torch.as_tensor(subj, dtype=torch.long)
    euler = EulerEvaluator(fc, cdf, sc, timing, n_dup=3)
    w0, c0 = time.perf_counter(), time.process_time()
    euler(params, idx, seed=1)
    euler_wall, euler_cpu = time.perf_counter() - w0, time.process_time() - c0
    sur = SurrogateEvaluator(load_pretrained(weights), fc, cdf, sc, timing.tr, timing.scan_length)
    sur(params, idx)  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        sur(params, idx)
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    gate = StabilityGatedEvaluator(sur, sc)  # the fitter's pre-check of every train candidate
    gate.stable(params, idx)  # warm-up
    gate_cpus = []
    for _ in range(repeats):
        c0 = time.process_time()
        gate.stable(params, idx)
        gate_cpus.append(time.process_time() - c0)
    b = len(g)
    sur_wall, sur_cpu = float(np.median(walls)), float(np.median(cpus))
    return {
        "candidates": b,
        "note": "one batched call each way, one process, torch threads as in 'machine'; CPU time is "
        "the process time (robust to other jobs on the machine), wall time is affected by them",
        "euler_cpu_per_candidate_s": euler_cpu / b,
        "surrogate_cpu_per_candidate_s": sur_cpu / b,
        "ratio_cpu": euler_cpu / sur_cpu,
        "euler_wall_per_candidate_s": euler_wall / b,
        "surrogate_wall_per_candidate_s": sur_wall / b,
        "ratio_wall": euler_wall / sur_wall,
        "stability_gate_cpu_per_candidate_s": float(np.median(gate_cpus)) / b,
        "ratio_cpu_with_stability_gate": euler_cpu / (sur_cpu + float(np.median(gate_cpus))),
        "euler_timing": {
            "dt": timing.dt,
            "scan_length": timing.scan_length,
            "n_steps": timing.total_steps,
        },
    }


def subjects_request(settings: GenerateSettings) -> dict:
    """What the held-out subjects are drawn from: stored beside them, compared on reuse."""
    return {
        "n_subjects": int(settings.n_subjects),
        "seed": int(settings.seed),
        "tr": float(settings.tr),
        "scan_lengths": [float(x) for x in settings.scan_lengths],
        "dt": float(settings.dt),
        "burn_in": None if settings.burn_in is None else float(settings.burn_in),
        "fcd_window": None if settings.fcd_window is None else int(settings.fcd_window),
        "warmup_steps": int(settings.warmup_steps),
        "n_dup": int(settings.n_dup),
    }


def request_difference(stored: dict, wanted: dict) -> str | None:
    """``"seed 1000 (stored) vs 7 (asked), ..."`` for the entries that differ, else None."""
    diff = [
        f"{k} {stored.get(k)!r} (stored) vs {wanted[k]!r} (asked)"
        for k in wanted
        if stored.get(k) != wanted[k]
    ]
    return ", ".join(diff) or None


def held_out_subjects(
    settings: GenerateSettings, path: Path, rate_band: tuple[float, float] | None = FIC_RATE_BAND
) -> tuple[list[SubjectInputs], np.ndarray | None]:
    """Simulate the held-out subjects once and keep them in ``path`` (a reused work folder then
    compares both modes on exactly the same inputs, even if the simulator changed meanwhile).

    With ``rate_band`` [Hz] every truth keeps each region's simulated r_E in the band (the FIC
    regime); a truth outside it is drawn again.

    The request (:func:`subjects_request`: number of subjects, seed, TR, scan lengths, steps) is
    stored with them; a stored file is reused only for the same request and r_E band, otherwise
    the run stops with one line naming the folder and the difference (it never redraws into a
    folder whose fits belong to other subjects: use another ``--work`` folder or delete it). A
    file written before the request was stored is reused when the subjects drawn for this
    request have its FC (the request is then added); otherwise the run stops the same way.

    Returns the subjects and their true regional E/I, shape (K, N). A folder written before the
    truth was stored gets it by drawing the subjects again; it is kept only when the redrawn
    FC equals the stored one (otherwise None: the simulator changed since).
    """
    band = np.asarray(rate_band if rate_band is not None else (np.nan, np.nan), dtype=float)
    request = subjects_request(settings)
    stored_arrays: dict[str, np.ndarray] | None = None
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            stored = z["rate_band"] if "rate_band" in z.files else np.array([np.nan, np.nan])
            if not np.array_equal(stored, band, equal_nan=True):
                raise SystemExit(
                    f"{path}: held-out subjects were drawn with r_E band {stored.tolist()}, not "
                    f"{band.tolist()}; use another --work folder"
                )
            stored_arrays = {k: z[k] for k in z.files}
        if "request" in stored_arrays:
            diff = request_difference(json.loads(str(stored_arrays["request"])), request)
            if diff:
                raise SystemExit(
                    f"{path.parent}: its held-out subjects were drawn for another request ({diff});"
                    " use another --work folder or delete this one"
                )
            if "ei_true" in stored_arrays:
                return _subjects_from_arrays(stored_arrays), stored_arrays["ei_true"]
    template = load_default_template()
    myelin, gradient, _ = truth_maps(np.asarray(template.sc))
    subjects, _, _, ei_true = synthetic_subjects(
        settings,
        0,
        np.asarray(template.sc),
        gradient,
        prefix="bench",
        rate_band=rate_band,
        myelin=myelin,
    )
    arrays = {
        "rate_band": band,
        "request": np.array(json.dumps(request, sort_keys=True)),
        "ids": np.array([s.subject_id for s in subjects]),
        "fc": np.stack([s.fc for s in subjects]),
        "fcd_cdf": np.stack([s.fcd_cdf for s in subjects]),
        "tr": np.array([s.tr for s in subjects]),
        "scan_length": np.array([s.scan_length for s in subjects]),
        "sc": np.stack([s.sc for s in subjects]),
        "gradient": np.stack([s.gradient for s in subjects]),
        "myelin": np.stack([s.myelin for s in subjects]),
        "ei_true": ei_true,
    }
    if stored_arrays is not None:  # an older folder: keep its subjects if they are this request's
        same = arrays["fc"].shape == stored_arrays["fc"].shape and np.allclose(
            arrays["fc"], stored_arrays["fc"], rtol=0, atol=1e-6
        )
        if "request" not in stored_arrays and not same:
            raise SystemExit(
                f"{path.parent}: its held-out subjects (stored without their request) differ from "
                f"those drawn for {request}; use another --work folder or delete this one"
            )
        if not same:  # same request, simulator changed since: keep the stored subjects
            return _subjects_from_arrays(stored_arrays), None
        arrays = {**stored_arrays, "request": arrays["request"], "ei_true": ei_true}
    write_arrays(arrays, path)
    return _subjects_from_arrays(arrays), ei_true


def _subjects_from_arrays(z: dict[str, np.ndarray]) -> list[SubjectInputs]:
    return [
        SubjectInputs(
            subject_id=str(z["ids"][i]),
            fc=z["fc"][i],
            fcd_cdf=z["fcd_cdf"][i],
            tr=float(z["tr"][i]),
            scan_length=float(z["scan_length"][i]),
            sc=z["sc"][i],
            gradient=z["gradient"][i],
            myelin=z["myelin"][i] if "myelin" in z else None,
            sources={"synthetic": "bench/surrogate.py held-out subject"},
        )
        for i in range(len(z["ids"]))
    ]


def bench_settings(
    meta: dict,
    n_subjects: int,
    generations: int | None,
    scan_length: float | None,
    seed: int,
    quick: bool = False,
) -> tuple[GenerateSettings, FitSettings]:
    """Held-out subject settings and fit settings of the benchmark, from the weights' metadata.

    Timing and generations default to those of the weights' training data (the held-out truths are
    simulated with its step too); the fits use the fitter's default steps (dt 0.005 s in train and
    validation). The scan length defaults to the middle of the trained range. The test stage
    re-simulates only the validation winner.
    """
    gen_settings = meta["training_data"].get("generation_settings", {})
    # quick: ~1-2 % of a first generation's draws have a stable FIC fixed point (the gate rejects
    # the rest; the search moves into the stable region over the next generations), so a smoke
    # test needs a few generations of 40 to have valid candidates for every subject
    generations = (
        QUICK_GENERATIONS if quick else (generations or int(gen_settings.get("generations", 12)))
    )
    trained_scans = sorted({*meta["timing"]["scan_length_range"], *gen_settings.get("scan_lengths", [])})
    gsettings = GenerateSettings(
        n_subjects=n_subjects,
        group_size=n_subjects,
        generations=generations,
        tr=float(meta["timing"]["tr_range"][0]),
        scan_lengths=(scan_length or float(trained_scans[len(trained_scans) // 2]),),
        dt=float(gen_settings.get("dt", 0.005)),
        burn_in=gen_settings.get("burn_in"),
        fcd_window=gen_settings.get("fcd_window"),
        warmup_steps=int(gen_settings.get("warmup_steps", 5000)),
        n_dup=int(gen_settings.get("n_dup", 3)),
        seed=seed,
    )
    popsize = QUICK_POPSIZE if quick else 100
    fit_settings = FitSettings(
        cmaes=CMAESSettings(generations=generations, popsize=popsize, mu=min(10, popsize // 2)),
        seed=seed,
        n_dup=gsettings.n_dup,
        # the fitter's own steps (0.005 s), not the training data's 0.006 s, which is beyond the
        # Euler stability limit for wEI above ~3.4 (such candidates would be marked invalid)
        burn_in=gsettings.burn_in,
        fcd_window=gsettings.fcd_window,
        warmup_steps=gsettings.warmup_steps,
        test_top_k=1,
    )
    return gsettings, fit_settings


def default_budget_seconds(
    stages: dict, n_subjects: int, generations_run: int, generations_full: int
) -> float:
    """Per-subject wall time [s] of a fit at ``generations_full`` generations, from a run of
    ``generations_run``: train and validation cost the same per generation (linear in the number
    of generations), test and the interval's profile run once per fit.

    ``stages`` is a lockstep group's ``run.json`` ``wall_time_s`` (stage times of the whole group).
    """
    per_generation = sum(float(stages.get(k, 0.0)) for k in ("train_s", "val_s"))
    once = sum(
        float(v)
        for k, v in stages.items()
        if k.endswith("_s") and k not in ("train_s", "val_s") and isinstance(v, (int, float))
    )
    return (per_generation * generations_full / generations_run + once) / n_subjects


def truth_agreement(
    ei_true: np.ndarray | None, ei_euler: list[np.ndarray], ei_surrogate: list[np.ndarray]
) -> dict | None:
    """How well each mode recovers the held-out truths, to read the between-mode r against.

    Per subject: Pearson r across regions of each mode's E/I with the truth, the error of the
    mean E/I [%], and the truth's regional coefficient of variation (a truth with little
    regional spread bounds every r, between modes as well as against the truth).
    """
    if ei_true is None:
        return None
    out: dict = {"truth_regional_cv": [float(t.std() / t.mean()) for t in ei_true]}
    for mode, fits in (("euler", ei_euler), ("surrogate", ei_surrogate)):
        r = [float(np.corrcoef(t, f)[0, 1]) for t, f in zip(ei_true, fits)]
        err = [float(100 * (f.mean() / t.mean() - 1)) for t, f in zip(ei_true, fits)]
        out[mode] = {
            "r": r,
            "r_median": float(np.median(r)),
            "mean_err_pct": err,
            "abs_mean_err_pct_median": float(np.median(np.abs(err))),
        }
    return out


def truth_summary(vs_truth: dict | None) -> str:
    """One phrase for the summary line (empty without a stored truth)."""
    if vs_truth is None:
        return ""
    e, s = vs_truth["euler"], vs_truth["surrogate"]
    return (
        f"[vs truth: r median {e['r_median']:.3f} Euler / {s['r_median']:.3f} surrogate, "
        f"|mean err| median {e['abs_mean_err_pct_median']:.1f} / "
        f"{s['abs_mean_err_pct_median']:.1f} %] "
    )


def surrogate_verdict(checks: dict[str, bool], quick: bool) -> tuple[bool | None, str | None]:
    """(passed, note): all acceptance checks, or None with the reason for a ``--quick`` smoke run
    (2 subjects, a few generations of a small population: not the run the targets are set for)."""
    if quick:
        return None, (
            f"smoke run, no verdict (2 subjects, {QUICK_GENERATIONS} generations of "
            f"{QUICK_POPSIZE} candidates)"
        )
    return bool(all(checks.values())), None


def verdict_text(passed: bool | None, note: str | None, checks: dict[str, bool]) -> str:
    """The verdict of the summary line: PASS, FAIL with the failed checks, or the note."""
    if passed is None:
        return str(note)
    if passed:
        return "PASS"
    return f"FAIL ({', '.join(k for k, ok in checks.items() if not ok)})"


# ------------------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None, help="pretrained folder (default: shipped weights)")
    parser.add_argument("--subjects", type=int, default=5, help="held-out subjects (default 5)")
    parser.add_argument("--generations", type=int, default=None, help="default: training data's")
    parser.add_argument(
        "--scan-length", type=float, default=None, help="default: middle of trained range"
    )
    add_fit_options(
        parser,
        ("seed", "val_per_generation", "searches", "combine"),
        overrides={
            "seed": {"default": 1000, "help": "seed of the held-out subjects"},
            "searches": {
                "default": BENCH_SEARCHES,
                "help": "independent CMA-ES searches per subject in both modes, averaged "
                "(default %(default)s; 1: one search per mode)",
            },
        },
    )
    add_truth_rate_band(
        parser, "held-out truths keep every region's r_E in this band, Hz (0 0: no check)"
    )
    add_fit_options(parser, ("stability_gate",))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--work", default=None, help="folder for the fits (reused if complete)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: 2 subjects, {QUICK_GENERATIONS} generations of {QUICK_POPSIZE} candidates",
    )
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    args.out = str(results_file(RESULTS, args.out, args.quick))
    torch.set_num_threads(args.threads)

    surrogate = load_pretrained(args.weights)
    n_subjects = 2 if args.quick else args.subjects
    gsettings, fit_settings = bench_settings(
        surrogate.metadata, n_subjects, args.generations, args.scan_length, args.seed, args.quick
    )
    fit_settings = dataclasses.replace(
        fit_settings,
        searches=args.searches,
        combine=args.combine,
        stability_gate=not args.no_stability_gate,
    )
    temporary = args.work is None
    work = Path(args.work or tempfile.mkdtemp(prefix="delssome_bench_surrogate_"))
    try:
        return compare_modes(args, surrogate, gsettings, fit_settings, n_subjects, work, temporary)
    finally:
        if temporary:  # without --work the fits are not kept (also when the run fails)
            shutil.rmtree(work, ignore_errors=True)


def compare_modes(args, surrogate, gsettings, fit_settings, n_subjects, work, temporary) -> int:
    """Steps 1-3 of the module docstring in ``work``; writes the JSON and the summary line."""
    generations = gsettings.generations
    t0 = time.perf_counter()
    band = truth_rate_band(args)
    subjects, ei_true = held_out_subjects(gsettings, work / "subjects.npz", band)
    t_subjects = time.perf_counter() - t0

    sur_settings = dataclasses.replace(
        fit_settings, mode="surrogate", val_per_generation=args.val_per_generation
    )
    euler = run_mode("euler", subjects, work, fit_settings, args.weights)
    sur = run_mode("surrogate", subjects, work, sur_settings, args.weights)

    ids = [s.subject_id for s in subjects]
    test_e = np.array([euler["quality"][i].loc["test", "total_loss"] for i in ids])
    test_s = np.array([sur["quality"][i].loc["test", "total_loss"] for i in ids])
    ei_r = np.array([np.corrcoef(euler["ei"][i], sur["ei"][i])[0, 1] for i in ids])
    vs_truth = truth_agreement(ei_true, [euler["ei"][i] for i in ids], [sur["ei"][i] for i in ids])

    regional, g, subj, gen, losses = euler_candidates(subjects, euler["dirs"], fit_settings)
    ev = SurrogateEvaluator(
        surrogate,
        np.stack([s.fc for s in subjects]),
        np.stack([s.fcd_cdf for s in subjects]),
        np.stack([s.sc for s in subjects]),
        subjects[0].tr,
        subjects[0].scan_length,
    )
    from delssome_norms.model import PFICParams

    pred = ev.predict(
        PFICParams(*(regional[..., j] for j in range(3)), G=g), torch.as_tensor(subj)
    ).numpy()
    ranking = prediction_metrics(pred, losses, subj, gen)

    last = gen == gen.max()
    cost = per_candidate_cost(
        subjects,
        regional[last],
        g[last],
        subj[last],
        dataclasses.replace(fit_settings, dt_train=0.005).timing(
            subjects[0].tr, subjects[0].scan_length, "train"
        ),
        args.weights,
        repeats=5 if args.quick else 20,
    )

    per_subject_e = euler["seconds"] / n_subjects
    per_subject_s = sur["seconds"] / n_subjects
    stage_seconds = {  # per subject; the times are those of the whole lockstep group
        mode: {
            i: json.loads((d / "run.json").read_text()).get("wall_time_s", {})
            for i, d in zip(ids, r["dirs"])
        }
        for mode, r in (("euler", euler), ("surrogate", sur))
    }
    stages = {mode: per_subject[ids[0]] for mode, per_subject in stage_seconds.items()}
    full = CMAESSettings().generations  # the fitter's default budget
    at_full = {
        mode: default_budget_seconds(stages[mode], n_subjects, generations, full) for mode in stages
    }
    ratio_full = at_full["euler"] / at_full["surrogate"]
    checks = {
        "spearman_total_pooled": ranking["pooled"]["total"]["spearman"] >= SPEARMAN_MIN,
        "per_candidate_ratio": cost["ratio_cpu"] >= SPEEDUP_CANDIDATE_MIN,
        "wall_time_ratio": ratio_full >= SPEEDUP_E2E_MIN,
        "test_cost": float(test_s.mean()) <= (1 + TEST_COST_TOLERANCE) * float(test_e.mean()),
        "ei_correlation": bool(np.all(ei_r >= EI_R_MIN)),
    }
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": {
            **machine_info(),
            "cpu_count": os.cpu_count(),
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "torch_threads": torch.get_num_threads(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "weights": str(surrogate.path),
        "weights_training_seconds": surrogate.metadata.get("training", {}).get("seconds"),
        "setup": {
            "subjects": ids,
            "tr": subjects[0].tr,
            "scan_length": subjects[0].scan_length,
            "generations": generations,
            "popsize": fit_settings.cmaes.popsize,
            "burn_in": gsettings.burn_in,
            "warmup_steps": gsettings.warmup_steps,
            "dt": {
                "train": fit_settings.dt_train,
                "val": fit_settings.dt_val,
                "test": fit_settings.dt_test,
            },
            "test_top_k": fit_settings.test_top_k,
            "searches": fit_settings.searches,
            "stability_gate": fit_settings.stability_gate,
            "truth_rate_band": band,
            "val_per_generation": {
                "euler": fit_settings.validated_per_generation,
                "surrogate": sur_settings.validated_per_generation,
            },
            "subject_simulation_seconds": t_subjects,
            "work": None if temporary else str(work),
        },
        "end_to_end": {
            "euler_seconds_per_subject": per_subject_e,
            "surrogate_seconds_per_subject": per_subject_s,
            "wall_time_ratio": per_subject_e / per_subject_s,
            "default_budget": {
                "generations": full,
                "note": "stage times of this run, train and validation scaled from "
                f"{generations} to {full} generations (the check uses this ratio)",
                "euler_seconds_per_subject": at_full["euler"],
                "surrogate_seconds_per_subject": at_full["surrogate"],
                "wall_time_ratio": ratio_full,
            },
            "cpu_seconds_per_subject": {
                "euler": euler["cpu_seconds"] / n_subjects,
                "surrogate": sur["cpu_seconds"] / n_subjects,
            },
            "cpu_time_ratio": euler["cpu_seconds"] / sur["cpu_seconds"],
            "reused_runs": {"euler": euler["reused"], "surrogate": sur["reused"]},
            "test_total_loss_euler": test_e.tolist(),
            "test_total_loss_surrogate": test_s.tolist(),
            "test_total_loss_mean": {"euler": float(test_e.mean()), "surrogate": float(test_s.mean())},
            "test_cost_relative_difference": float(test_s.mean() / test_e.mean() - 1),
            "test_cost_relative_difference_per_subject": (test_s / test_e - 1).tolist(),
            "ei_pearson_across_regions": ei_r.tolist(),
            "ei_pearson_median": float(np.median(ei_r)),
            "ei_vs_truth": vs_truth,
            "stage_seconds": stage_seconds,
        },
        "ranking_on_held_out_subjects": ranking,
        "per_candidate": cost,
        "limits": {
            "spearman_total_min": SPEARMAN_MIN,
            "per_candidate_ratio_min": SPEEDUP_CANDIDATE_MIN,
            "wall_time_ratio_min": SPEEDUP_E2E_MIN,
            "test_cost_tolerance": TEST_COST_TOLERANCE,
            "ei_r_min": EI_R_MIN,
        },
        "checks": checks,  # recorded also for a smoke run, which gives no verdict
    }
    result["passed"], result["verdict_note"] = surrogate_verdict(checks, args.quick)
    write_json(result, args.out)
    print(
        f"surrogate: Spearman(total) {ranking['pooled']['total']['spearman']:.3f} on {n_subjects} "
        f"held-out subjects, per-candidate {cost['ratio_cpu']:.0f}x cheaper (CPU time; "
        f"{cost['ratio_wall']:.0f}x wall), end-to-end {per_subject_e / per_subject_s:.1f}x faster "
        f"({ratio_full:.1f}x at {full} generations), "
        f"test cost {test_s.mean():.3f} vs {test_e.mean():.3f} (Euler), "
        f"E/I r min {ei_r.min():.3f} (median {np.median(ei_r):.3f}) "
        f"{truth_summary(vs_truth)}"
        f"-> {verdict_text(result['passed'], result['verdict_note'], checks)} ({args.out})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
