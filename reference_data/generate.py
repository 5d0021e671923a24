"""Regenerate the SYNTHETIC reference cohort shipped in ``delssome_norms/datasets/data/``.

Usage (from the repository root, in the project's virtual environment)::

    python reference_data/generate.py                      # reuse packaged simulations where valid
    python reference_data/generate.py --recovery bench/results/recovery.json   # size the noise
    python reference_data/generate.py --rebuild-model      # redo SC / wEE rule / gradient / mapping
    python reference_data/generate.py --check              # regenerate into a temporary folder and
                                                           # compare with the committed files

Steps (see ``reference_data/README.md``):

1. Model set-up (SC, wEE rule, calibrated E/I mapping): read from the packaged
   ``reference_model.npz`` / manifest unless ``--rebuild-model`` (simulations, ~4 CPU minutes);
   the regional maps are always the shipped default DK68 maps (``datasets/maps.py``).
2. The 12,005-person table, the patients and the end-to-end subjects' ground truth (seconds).
3. Simulations of the end-to-end subjects and patients: each part (controls, patients) is reused
   from the packaged ``reference_subjects.npz`` when its ground truth, timing and SC are unchanged
   (the simulations are deterministic, so reuse gives identical files), otherwise simulated
   (~6 CPU minutes for the 60 controls and 8 patients).

Everything is seeded (``--seed``, default the committed seed); rerunning reproduces the files.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from delssome_norms import synthetic
from delssome_norms.datasets import reference
from delssome_norms.datasets.maps import load_default_maps

DATA = reference.data_dir()


def noise_from_recovery(path: Path, spatial_cv: float) -> tuple[float, float, str]:
    """Estimation-error sizes from the fitter's recovery benchmark (``bench/recovery.py``).

    The cohort's error model is multiplicative, ``fitted = true * exp(shared + regional)``, so the
    benchmark's per-subject ``log(fitted / true)`` gives both parts directly:

    * shared (per-person) error: robust SD over subjects of the mean log ratio about its median,
      ``1.4826 * MAD`` (the scatter that spreads people apart; the median itself, a bias common to
      everybody that moves no one's centile, is recorded in the source note but not applied);
    * regional error: median over subjects of the across-region SD of the log ratio.

    Results written before those fields existed fall back to ``1.4826 * median |mean error| / 100``
    and ``spatial_cv * sqrt(1 / r^2 - 1)`` (``spatial_cv``: the cohort's typical within-person CV
    of the true regional E/I).
    """
    result = json.loads(path.read_text(encoding="utf-8"))
    r = float(result["median_r"])
    err = float(result["median_abs_mean_err_pct"])
    done = [s for s in result.get("subjects", []) if s.get("status") == "done"]
    if done and all("log_ratio_mean" in s for s in done):
        shared = np.array([s["log_ratio_mean"] for s in done], dtype=float)
        bias = float(np.median(shared))
        global_cv = 1.4826 * float(np.median(np.abs(shared - bias)))
        regional_cv = float(np.median([s["log_ratio_sd_regions"] for s in done]))
        how = f"from log(fitted/true) per subject; median shared bias {bias:+.4f} not applied"
    else:
        global_cv = 1.4826 * err / 100.0
        regional_cv = spatial_cv * float(np.sqrt(max(1.0 / r**2 - 1.0, 0.0)))
        how = f"from median r and mean error (spatial CV {spatial_cv:.4f})"
    source = (
        f"{path.name} ({result.get('when', '?')}, quick={result.get('quick')}, "
        f"pass={result.get('pass')}, {len(done)} subjects): median r {r:.3f}, median |mean E/I "
        f"error| {err:.2f} % -> shared CV {global_cv:.4f}, regional CV {regional_cv:.4f} ({how})"
    )
    return global_cv, regional_cv, source


def _spatial_cv(cohort: synthetic.ReferenceCohort) -> float:
    true = cohort.people.ei_true
    return float(np.median(true.std(axis=1) / true.mean(axis=1)))


def _previous(folder: Path) -> tuple[synthetic.SubjectTruth, synthetic.SimulatedSet, dict] | None:
    try:
        subjects = reference.load_reference_subjects(folder)
        manifest = reference.load_manifest(folder)
        sc = reference.load_simulation_sc(folder)
    except Exception:  # anything missing or unreadable means "simulate again"
        return None
    p = subjects.true_params
    truth = synthetic.SubjectTruth(p["wEE"], p["wEI"], p["sigma"], p["G"], p["coefficients"])
    sims = synthetic.SimulatedSet(
        fc=subjects.fc,
        fcd_cdf=subjects.fcd_cdf,
        ei_ratio=subjects.sim_ei_ratio,
        s_e=subjects.sim_s_e,
        s_i=subjects.sim_s_i,
        r_e=subjects.sim_r_e,
        valid=subjects.sim_valid,
    )
    return truth, sims, {"simulation": manifest.get("simulation", {}), "sc": sc}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seed", type=int, default=synthetic.DEFAULT_SEED)
    ap.add_argument("--out", type=Path, default=DATA, help="output folder (default: package data)")
    ap.add_argument(
        "--spec",
        choices=("packaged", "default"),
        default="packaged",
        help="effect sizes etc. from the packaged manifest (default) or from CohortSpec() in the code",
    )
    ap.add_argument("--rebuild-model", action="store_true", help="recompute the model set-up")
    ap.add_argument("--resimulate", action="store_true", help="simulate subjects even if reusable")
    ap.add_argument("--recovery", type=Path, help="bench/results/recovery.json to size the noise")
    ap.add_argument("--noise-global-cv", type=float, help="override the shared estimation error")
    ap.add_argument("--noise-regional-cv", type=float, help="override the regional estimation error")
    ap.add_argument(
        "--check", action="store_true", help="regenerate into a temporary folder and compare"
    )
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    packaged = (DATA / reference.MANIFEST_FILE).is_file() and (DATA / reference.MODEL_FILE).is_file()
    spec = synthetic.CohortSpec()
    if args.spec == "packaged" and packaged:
        spec = synthetic.load_reference_spec(DATA)
    if args.rebuild_model or not packaged:
        print("building the model set-up (simulations, minutes) ...", flush=True)
        setup = synthetic.build_model_setup(spec, args.seed)
    else:
        setup = synthetic.load_model_setup(DATA)
        shipped = np.array(load_default_maps().gradient)
        if not np.array_equal(setup.gradient, shipped):
            # the E/I mapping depends on wEI and sigma only; its calibration runs are kept
            print("using the shipped default gradient (the packaged set-up had another)", flush=True)
            setup = dataclasses.replace(setup, gradient=shipped, group_fc=None)
    if args.recovery or args.noise_global_cv is not None or args.noise_regional_cv is not None:
        probe = synthetic.generate_reference_cohort(args.seed, spec=spec, setup=setup)
        g_cv, r_cv, note = spec.noise_global_cv, spec.noise_regional_cv, spec.noise_source
        if args.recovery:
            g_cv, r_cv, note = noise_from_recovery(args.recovery, _spatial_cv(probe))
        if args.noise_global_cv is not None:
            g_cv, note = args.noise_global_cv, f"{note}; shared CV set on the command line"
        if args.noise_regional_cv is not None:
            r_cv, note = args.noise_regional_cv, f"{note}; regional CV set on the command line"
        spec = dataclasses.replace(spec, noise_global_cv=g_cv, noise_regional_cv=r_cv, noise_source=note)
        print(f"estimation noise: shared {g_cv:.4f}, regional {r_cv:.4f} ({note})", flush=True)

    cohort = synthetic.generate_reference_cohort(args.seed, spec=spec, setup=setup)
    timing = synthetic.subject_timing()
    simulation = {
        **timing.to_record(),
        "n_dup": synthetic.N_DUPLICATES,
        "engine": synthetic.SIMULATION_ENGINE,
        "dtype": synthetic.SIMULATION_DTYPE,
        "sc": "tvb-data connectivity_68 weights -> log1p(w / min positive w) (simulation_sc); "
        "the simulator scales it to max 0.02",
        "seeds": {
            p: synthetic.simulation_seed(args.seed, p)
            for p in ("gradient", "calibration", "subjects", "patients")
        },
    }
    previous = None if args.resimulate else _previous(DATA)
    n_pat = len(cohort.patients.age)
    reuse = synthetic.reusable_parts(cohort.truth, n_pat, setup.sc, simulation, previous)
    print(
        f"simulating subjects (reusing: {sorted(k for k, v in reuse.items() if v) or 'nothing'}) ...",
        flush=True,
    )
    sims = synthetic.simulate_subjects(
        cohort.truth,
        n_pat,
        setup,
        args.seed,
        timing,
        reuse=previous[1] if previous else None,
        reuse_parts=reuse,
    )
    cohort = dataclasses.replace(cohort, subjects=sims)
    out = Path(tempfile.mkdtemp(prefix="reference_check_")) if args.check else args.out
    written = synthetic.write_reference_cohort(cohort, out, simulation=simulation)
    sizes = {name: path.stat().st_size for name, path in written.items()}
    total = sum(sizes.values()) / 1e6
    print(f"wrote {len(written)} files to {out} ({total:.2f} MB) in {time.perf_counter() - t0:.0f} s")
    if args.check:
        same = {
            name: (DATA / name).is_file() and (DATA / name).read_bytes() == path.read_bytes()
            for name, path in written.items()
        }
        for name, ok in sorted(same.items()):
            print(f"  {name}: {'identical' if ok else 'DIFFERENT'}")
        return 0 if all(same.values()) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
