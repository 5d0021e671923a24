"""Host-side cost of a cohort at the paper's scale (12,005 people), without fitting anyone.

Builds ``--n`` synthetic subjects under a temporary folder (default under /tmp, removed at the
end unless ``--keep``): header-less ``<id>_FC.csv`` (68 x 68) and ``<id>_FCD_CDF.csv`` (10000 x
1) as ``prepare`` writes them, a manifest and demographics. One real tiny Euler fit (1
generation, 68 regions, short scan) gives a finished result folder; every subject gets a clone
of it written by the package's own writer (:func:`delssome_norms.fit.outputs.write_result_files`)
with its own id, its run fingerprint (digests of its inputs and the cohort FC gradient, so that
the resume check accepts it as finished) and its own E/I values (the template's times a factor).

Then times, in this process, the steps around the GPU fit:

* ``rerun``: :func:`~delssome_norms.fit.cohort.run_cohort` on the manifest with every subject
  finished (it must skip all and fit none): pure overhead of a rerun;
* ``collect``: :func:`~delssome_norms.fit.collect.collect` of every result folder into the
  growth-chart table;
* ``start``: ``run_cohort`` into an empty folder up to the first lockstep group (reading and
  checking the manifest, the cohort FC gradient from every subject's FC, the resume check,
  planning): stopped there by replacing the group runner with one that stops the run.

``--maps fc-gradient`` (the default here) makes every step read each subject's FC for the cohort
FC gradient (the heavier path); ``--maps default`` uses the shipped DK68 maps. ``--profile K``
adds the K top cProfile entries (by cumulative time) of each step. Targets (a researcher's
patience on a 2-core machine): rerun and collect of 12,005 people under 60 s each.

Writes ``bench/results/cohort_scale.json`` (``--quick``: ``cohort_scale_quick.json``; or
``--out``) and prints one summary line.

Usage: ``python bench/cohort_scale.py [--n 12005] [--maps fc-gradient|default] [--profile 25]
[--tmp /tmp] [--keep] [--quick]`` (``--quick``: 50 subjects unless ``--n`` is given; ``--tmp`` is
created when missing)
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from _options import result_header, results_file  # bench/ is on sys.path

from delssome_norms.errors import InputWarning
from delssome_norms.fit import CMAESSettings, FitSettings
from delssome_norms.fit import cohort as cohort_mod
from delssome_norms.fit.cohort import plan_cohort, run_cohort
from delssome_norms.fit.cohort_fc import GRADIENT_FILE, folder_gradient
from delssome_norms.fit.collect import collect
from delssome_norms.fit.outputs import (
    PARAMETERS_FILE,
    run_fingerprint,
    write_result_files,
)
from delssome_norms.io import ei_table as et
from delssome_norms.io import read_manifest, read_table, write_json, write_matrix

RESULTS = Path(__file__).parent / "results" / "cohort_scale.json"
TARGET_S = {"rerun": 60.0, "collect": 60.0}
"""Acceptance at 12,005 subjects on the 2-core CPU [s]."""
N_REGIONS, TR, SCAN = 68, 0.72, 28.8
"""Atlas size and the synthetic scans' TR and length [s] (only the fit's timing uses them)."""


def tiny_settings(maps: str, seed: int = 0) -> FitSettings:
    """The fastest real Euler fit: 1 generation of 8 candidates, 1 duplicate, a 28.8-s scan."""
    return FitSettings(
        cmaes=CMAESSettings(generations=1, popsize=8, mu=2),
        dt_train=0.005,
        dt_val=0.005,
        dt_test=0.005,
        burn_in=7.2,
        fcd_window=10,
        warmup_steps=200,
        n_dup=1,
        test_top_k=3,
        seed=seed,
        stability_gate=False,  # the paper's protocol; the gate rejects all 8 at random
        maps=maps,
    )


def make_inputs(root: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """``n`` subjects' FC and FCD-CDF files, the manifest and demographics; their paths."""
    data = root / "data"
    data.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((150, N_REGIONS))
    edges = np.linspace(-1, 1, 10001)[1:]
    rows, demo = [], []
    for i in range(n):
        sid = f"sub-{i:05d}"
        common = rng.standard_normal((150, 1))  # a shared signal: mean FC about 0.2-0.3
        ts = base + common + rng.standard_normal((150, N_REGIONS)) * (1.0 + 0.5 * rng.random())
        write_matrix(np.corrcoef(ts.T), data / f"{sid}_FC.csv")
        corr = np.sort(np.clip(rng.normal(0.2, 0.2, 400), -0.99, 0.99))  # FCD values
        cdf = np.searchsorted(corr, edges, side="right") / 400
        write_matrix(cdf, data / f"{sid}_FCD_CDF.csv")
        rows.append(
            {
                "subject_id": sid,
                "tr": TR,
                "scan_length": SCAN,
                "fc": f"data/{sid}_FC.csv",
                "fcd_cdf": f"data/{sid}_FCD_CDF.csv",
            }
        )
        demo.append(
            {
                "subject_id": sid,
                "age_in_years": round(float(rng.uniform(5, 90)), 2),
                "sex": "F" if i % 2 else "M",
                "site": f"site{i % 7}",
            }
        )
    manifest, demographics = root / "manifest.csv", root / "demographics.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    pd.DataFrame(demo).to_csv(demographics, index=False)
    return manifest, demographics


def template_fit(
    root: Path, manifest: Path, maps: str, gradient_file: Path | None, tries: int = 10
) -> tuple[Path, FitSettings]:
    """One real fit of the manifest's first subject (with the whole cohort's FC gradient, when
    the settings use one): its result folder and settings (the first of seeds 0, 1, ... whose
    tiny fit finishes: 8 candidates of one generation may all leave the model's regime)."""
    one = root / "manifest_one.csv"
    pd.read_csv(manifest).iloc[:1].to_csv(one, index=False)
    failures = None
    for seed in range(tries):
        settings = tiny_settings(maps, seed)
        out = root / f"template_{seed}"
        out.mkdir()
        if gradient_file is not None:
            shutil.copy(gradient_file, out / GRADIENT_FILE)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the stored gradient averages others: on purpose
            summary = run_cohort(one, out, settings, group_size=1, quiet=True)
        if summary.done == 1:
            return out / pd.read_csv(one)["subject_id"].iloc[0], settings
        failures = summary.failures
    raise RuntimeError(f"no tiny template fit of {tries} seeds finished: {failures}")


def clone_results(template: Path, out: Path, manifest: Path, settings: FitSettings) -> None:
    """Every manifest subject finished in ``out``: the template's files with the subject's id,
    fingerprint and E/I (times a factor), through :func:`write_result_files`."""
    run0 = json.loads((template / "run.json").read_text())
    ei = read_table(template / et.EI_RATIO_FILE)
    par = read_table(template / PARAMETERS_FILE)
    quality = read_table(template / "fit_quality.csv")
    losses = {
        str(r["stage"]): {k: float(r[k]) for k in ("corr_loss", "l1_loss", "ks_loss")}
        for _, r in quality.iterrows()
    }
    parameters = {k: par[k].to_numpy() for k in ("wEE", "wEI", "sigma")}
    parameters["G"] = float(par["G"].iloc[0])
    plan = plan_cohort(read_manifest(manifest), settings, group_size=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputWarning)
        gradient = folder_gradient(plan, settings.maps, out, False)  # the folder's (if needed)
    for i, row in enumerate(plan.rows):
        subject = cohort_mod._load_row(row, plan.n_regions, settings)
        factor = 1.0 + 0.2 * np.sin(i)
        run = json.loads(json.dumps(run0))
        run["subject_id"] = subject.subject_id
        run["fingerprint"] = run_fingerprint(subject, settings, gradient)
        run["result"][et.MEAN_TARGET] = float(np.mean(ei[et.EI_RATIO].to_numpy() * factor))
        block = run.get("ei_interval")
        if isinstance(block, dict):
            for key in ("mean_lo", "mean_hi"):
                if isinstance(block.get(key), (int, float)):
                    block[key] = block[key] * factor
        columns = {
            k: (ei[k].to_numpy() * (factor if k.startswith(et.EI_RATIO) else 1.0))
            if k in ei.columns
            else None
            for k in (
                et.EI_RATIO, et.S_E, et.S_I, et.R_E, et.EI_RATIO_SD, et.EI_RATIO_LO, et.EI_RATIO_HI
            )
        }  # fmt: skip
        sdir = out / subject.subject_id
        sdir.mkdir(exist_ok=True)
        write_result_files(sdir, columns=columns, parameters=parameters, losses=losses, run=run)


class _Stop(Exception):
    """Raised by the stand-in group runner: the cohort has reached its first group."""


def _stop_at_first_group(*args, **kwargs):
    raise _Stop


def _timed(step, profile: int):
    """(seconds, result, profile text or None) of ``step()``."""
    prof = cProfile.Profile() if profile else None
    t0 = time.perf_counter()
    if prof is not None:
        prof.enable()
    try:
        result = step()
    finally:
        if prof is not None:
            prof.disable()
    seconds = time.perf_counter() - t0
    text = None
    if prof is not None:
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(profile)
        text = buf.getvalue()
    return seconds, result, text


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--n", type=int, default=None, help="subjects (default: the paper's 12,005; --quick: 50)"
    )
    ap.add_argument("--maps", choices=("fc-gradient", "default"), default="fc-gradient")
    ap.add_argument("--profile", type=int, default=0, metavar="K", help="top K cProfile entries")
    ap.add_argument(
        "--tmp", default=tempfile.gettempdir(), help="where the subjects go (created if missing)"
    )
    ap.add_argument("--keep", action="store_true", help="keep the synthetic folders")
    ap.add_argument(
        "--reuse",
        default=None,
        metavar="DIR",
        help="time the steps on the folder a --keep run left (same --n and --maps; no setup)",
    )
    ap.add_argument("--quick", action="store_true", help="smoke run: --n 50 unless --n is given")
    ap.add_argument("--out", default=None, help=f"results JSON (default {RESULTS})")
    args = ap.parse_args(argv)
    n = args.n if args.n is not None else (50 if args.quick else 12005)
    if n < 1:
        ap.error("--n must be at least 1")
    settings = tiny_settings(args.maps)
    reuse = args.reuse is not None
    if reuse and not (Path(args.reuse) / "manifest.csv").is_file():
        ap.error(f"--reuse {args.reuse}: no manifest.csv there; give the folder a --keep run left")
    if not reuse:
        try:
            Path(args.tmp).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            ap.error(f"--tmp {args.tmp}: cannot create the folder ({exc.strerror}); give another")
    root = Path(args.reuse) if reuse else Path(tempfile.mkdtemp(prefix="cohort_scale_", dir=args.tmp))
    record = {**result_header("cohort_scale", args), "n_subjects": n, "maps": args.maps}
    manifest, demographics, out = root / "manifest.csv", root / "demographics.csv", root / "cohort"
    steps: dict[str, dict] = {}
    try:
        if reuse:
            record["setup_inputs_s"] = record["setup_clone_s"] = 0.0
            if len(pd.read_csv(manifest)) != n:
                ap.error(f"--reuse {root} holds another number of subjects than --n {n}")
            shutil.rmtree(root / "cohort_fresh", ignore_errors=True)
            # the seed of the template fit that finished (the last one tried)
            seed = max(int(p.name.split("_")[1]) for p in root.glob("template_*"))
            settings = tiny_settings(args.maps, seed)
            record["seed"] = seed
        else:
            t0 = time.perf_counter()
            make_inputs(root, n)
            record["setup_inputs_s"] = time.perf_counter() - t0
            out.mkdir()
            plan = plan_cohort(read_manifest(manifest), settings, group_size=1)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InputWarning)
                stored = folder_gradient(plan, settings.maps, out, False)
            t0 = time.perf_counter()
            gradient_file = out / GRADIENT_FILE if stored is not None else None
            template, settings = template_fit(root, manifest, args.maps, gradient_file)
            record["seed"] = settings.seed
            record["template_fit_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            clone_results(template, out, manifest, settings)
            record["setup_clone_s"] = time.perf_counter() - t0

        def rerun():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InputWarning)
                return run_cohort(manifest, out, settings, quiet=True)

        seconds, summary, prof = _timed(rerun, args.profile)
        if summary.skipped != n or summary.done or summary.failed:
            raise RuntimeError(
                f"the rerun did not skip every subject: {summary.skipped} skipped, "
                f"{summary.done} fitted, {summary.failed} failed"
            )
        steps["rerun"] = {"seconds": seconds, "skipped": summary.skipped, "groups": summary.n_groups,
                          "group_size": summary.group_size, "profile": prof}  # fmt: skip

        def gather():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InputWarning)
                return collect(out, demographics, root / "ei_table.csv")

        seconds, table, prof = _timed(gather, args.profile)
        if len(table) != n:
            raise RuntimeError(f"collect gave {len(table)} rows for {n} subjects")
        steps["collect"] = {"seconds": seconds, "rows": len(table), "profile": prof}

        fresh = root / "cohort_fresh"
        fresh.mkdir()

        def start():
            original = cohort_mod.run_group_task
            cohort_mod.run_group_task = _stop_at_first_group
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", InputWarning)
                    run_cohort(manifest, fresh, settings, quiet=True)
            except _Stop:
                return True
            finally:
                cohort_mod.run_group_task = original
            return False

        seconds, reached, prof = _timed(start, args.profile)
        if not reached:
            raise RuntimeError("the fresh cohort run never reached its first group")
        steps["start"] = {"seconds": seconds, "profile": prof}
        record["steps"] = steps
        record["targets_s"] = TARGET_S
        full = n >= 12005
        record["passed"] = all(steps[k]["seconds"] < v for k, v in TARGET_S.items()) if full else None
    finally:
        if not (args.keep or reuse):
            shutil.rmtree(root, ignore_errors=True)
        else:
            record["kept"] = str(root)
    path = results_file(RESULTS, args.out, args.quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(record, path)
    for name, step in steps.items():
        if step.get("profile") and args.profile:
            print(f"--- {name} ---\n{step['profile']}", file=sys.stderr)
    print(
        f"cohort_scale n={n} maps={args.maps}: rerun {steps['rerun']['seconds']:.1f} s, "
        f"collect {steps['collect']['seconds']:.1f} s, start {steps['start']['seconds']:.1f} s "
        f"(setup {record['setup_inputs_s']:.0f}+{record['setup_clone_s']:.0f} s; "
        f"passed {record['passed']}) -> {path}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
