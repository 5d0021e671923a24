"""Benchmark: the FC the pFIC model can produce, and what global signal regression does to it.

Real FC is often computed after global signal regression (GSR; e.g. XCP-D's 36P), which centres
the correlations (mean FC ~0, many negative pairs). A model with positive SC produces almost only
positive correlations, so such data lie outside what the fit can reproduce. This script measures
the model's reachable range of FC summary statistics and the effect of GSR on its own BOLD, to set
the thresholds of :mod:`delssome_norms.fit.fc_regime`.

**Model range.** ``--n-sets`` parameter sets (default 96) on the default DK68 template SC with
the default ``[1, myelin, gradient]`` design (the shipped maps), drawn as the fitter's search
would see them: a level for wEE, wEI and sigma uniform inside the search bounds
(docs/science.md §5; wEI in its widest range 0-5) plus a random regional profile, projected onto
the design; G round-robin over weak (0-0.5), mid (0.5-2) and strong (2-3) coupling. A draw is
kept when it passes the search's validity rules (:meth:`Parameterisation.is_valid`) and has a
stable FIC fixed point (the default stability gate). Every second set (``near``) has its wEE
level shifted by bisection to a FIC stability margin in -1 ... -0.25 /s, as
``bench/ei_calibration.py``'s near stratum: random draws sit far from the boundary, where the
regions are practically uncoupled. Each set is simulated once (float32, fused CPU kernel;
``--scan-length`` 432 s at TR 0.72 s, dt 0.005 s, the default burn-in and warm-up) and the
BOLD's FC (the toolkit's :func:`~delssome_norms.model.bold_fc`) and FCD-CDF are summarised: mean
upper-triangle FC, share of negative pairs, share of pairs below -0.1, the 5th percentile, the SD
of the pairs, their correlation with the SC and the FCD-CDF's median; the set's mean E/I is
recorded. In-regime sets are split at the warning's threshold into ``uncoupled`` and
``coupled``. Sets whose r_E leaves the FIC band in more than 10 % of the regions (a state the
verdict flags anyway, ``rate_outside_fic``) are reported apart. The packaged synthetic subjects
(:func:`~delssome_norms.datasets.load_reference_subjects`, 68 subjects, FC averaged over 3
duplicates) are summarised the same way.

**GSR.** For every simulated set, the regional BOLD series are regressed on their global mean
(the regional average at each frame, with an intercept) and the residuals' FC and FCD-CDF
summarised likewise.

**Verdict.** :func:`delssome_norms.fit.fc_regime.check_fc_regime` is applied to every FC; PASS
when it warns about every GSR FC and about no coupled model FC and no packaged subject (the
uncoupled model FC are warned about by design: such FC does not constrain the E/I).

Writes ``bench/results/fc_regime.json`` (``--out``; ``--quick``: 6 sets, 144-s scans, written
beside it as ``fc_regime_quick.json``) and prints one summary line. Cost: ~0.15 core-s per
432-s simulation plus its FCD and the bisection; 40-55 s on 2 shared cores for the default 96.
Measured (seeds 0 and 1): see the docstring of :mod:`delssome_norms.fit.fc_regime`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _options import TR, result_header, results_file  # bench/ is on sys.path

from delssome_norms.datasets import load_default_maps, load_default_template
from delssome_norms.datasets.reference import load_reference_subjects
from delssome_norms.fit.design import design_matrix
from delssome_norms.fit.fc_regime import MEAN_FC_HIGH, MEAN_FC_LOW, check_fc_regime, fc_regime_stats
from delssome_norms.fit.parameterisation import (
    G_BOUNDS,
    SIGMA_BOUNDS,
    WEE_BOUNDS,
    Bounds,
    Parameterisation,
    RegionalParams,
)
from delssome_norms.io import write_json
from delssome_norms.model import PFICParams, SimulationTiming, bold_fc, bold_fcd_cdf, scale_sc, simulate
from delssome_norms.model.constants import FIC_RATE_BAND
from delssome_norms.model.stability import fic_stability_margin

RESULTS = Path(__file__).parent / "results" / "fc_regime.json"
G_STRATA = {"weak": (0.0, 0.5), "mid": (0.5, 2.0), "strong": (2.0, G_BOUNDS[1])}
"""Coupling strata [G units]: the sets are drawn round-robin over them."""
MARGIN_TARGET = (-1.0, -0.25)
"""FIC stability margins [1/s] of the ``near`` sets (as ``bench/ei_calibration.py``'s near
stratum; above -0.25 /s most draws leave the fixed point within a scan)."""
RATE_OUTSIDE_MAX = 0.1
"""Largest fraction of regions out of the FIC rate band for an in-regime set (as the verdict)."""


def _draw_sets(space: Parameterisation, n_sets: int, rng: np.random.Generator) -> np.ndarray:
    """Coefficients (n_sets, n_coeffs) of valid, FIC-stable sets, G round-robin over :data:`G_STRATA`."""
    n = space.n_regions
    wei_b = (0.0, 5.0)
    kept: dict[str, list[np.ndarray]] = {k: [] for k in G_STRATA}
    per = -(-n_sets // len(G_STRATA))
    for _ in range(200):
        if all(len(v) >= per for v in kept.values()):
            break
        k = 512
        draws = []
        for lo_hi, scale in ((WEE_BOUNDS, 1.5), (wei_b, 1.0), (SIGMA_BOUNDS, 0.002)):
            level = rng.uniform(*lo_hi, size=(k, 1))
            draws.append(level + scale * rng.standard_normal((k, 1)) * rng.standard_normal((1, n)))
        coeffs = space.to_coeffs(RegionalParams(draws[0], draws[1], draws[2], np.zeros(k)))
        p = space.design.shape[1]
        for name, (lo, hi) in G_STRATA.items():
            coeffs_g = coeffs.copy()
            coeffs_g[:, 2 * p] = rng.uniform(lo, hi, size=k)
            ok = space.is_valid(coeffs_g)
            if ok.any():
                ok[ok] = space.fic_stable(space.to_regional(coeffs_g[ok]))
            kept[name].extend(coeffs_g[ok][: per - len(kept[name])])
    rows = [kept[name][i] for i in range(per) for name in G_STRATA if i < len(kept[name])]
    return np.asarray(rows[:n_sets])


def _near_boundary(space: Parameterisation, coeffs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sets with their wEE level shifted (bisection) to a FIC stability margin drawn in
    :data:`MARGIN_TARGET` [1/s], inside the wEE bounds (where the bounds allow it)."""
    wee = space.to_regional(coeffs).wEE
    lo, hi = WEE_BOUNDS[0] - wee.min(axis=1), WEE_BOUNDS[1] - wee.max(axis=1)
    target = rng.uniform(*MARGIN_TARGET, size=len(coeffs))
    sc = torch.as_tensor(space.fic_sc, dtype=torch.float64)

    def margin(shift: np.ndarray) -> np.ndarray:
        c = coeffs.copy()
        c[:, 0] += shift
        r = space.to_regional(c)
        m = fic_stability_margin(
            *(torch.as_tensor(x, dtype=torch.float64) for x in (r.wEE, r.wEI, r.G)), sc
        ).numpy()
        return np.where(np.isfinite(m), m, np.inf)  # no FIC solution: treat as unstable

    for _ in range(30):  # the margin rises with wEE
        mid = 0.5 * (lo + hi)
        below = margin(mid) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    out = coeffs.copy()
    out[:, 0] += lo
    return out


def _gsr(bold: np.ndarray) -> np.ndarray:
    """Regional series (T, N) after regressing out the global mean signal (with an intercept)."""
    x = bold - bold.mean(axis=0)
    g = x.mean(axis=1)
    beta = (g @ x) / (g @ g)
    return x - np.outer(g, beta)


def _fcd_median(cdf: np.ndarray) -> float:
    """FCD value [correlation] at which the CDF (bins over (-1, 1)) reaches 0.5."""
    bins = cdf.shape[-1]
    k = int(np.argmax(cdf >= 0.5))
    return float(-1.0 + 2.0 * (k + 0.5) / bins)


def _summary(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for key in keys:
        v = np.array([r[key] for r in rows], dtype=np.float64)
        out[key] = (
            {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}
            if v.size
            else None
        )
    return out


STATS = ("mean_fc", "negative_fraction", "below_minus_0_1", "p5", "sd", "sc_corr", "fcd_median")


def _row(fc: np.ndarray, cdf: np.ndarray | None, sc_pairs: np.ndarray) -> dict[str, Any]:
    s = fc_regime_stats(fc)
    iu = np.triu_indices(fc.shape[0], 1)
    v = fc[iu]
    return {
        "mean_fc": s.mean_fc,
        "negative_fraction": s.negative_fraction,
        "below_minus_0_1": float((v < -0.1).mean()),
        "p5": float(np.percentile(v, 5)),
        "sd": float(v.std()),
        "sc_corr": float(np.corrcoef(v, sc_pairs)[0, 1]),
        "fcd_median": _fcd_median(cdf) if cdf is not None else float("nan"),
        "warned": check_fc_regime(fc) is not None,
    }


def _simulated_rows(args, space, coeffs, strata, sc_pairs):
    """(model rows, GSR rows) of one simulation per set."""
    p = space.to_regional(coeffs)
    timing = SimulationTiming(tr=TR, scan_length=args.scan_length, dt=args.dt)
    res = simulate(PFICParams(p.wEE, p.wEI, p.sigma, p.G), space.fic_sc, timing, n_dup=1, seed=args.seed)
    margin = fic_stability_margin(
        *(torch.as_tensor(x, dtype=torch.float64) for x in (p.wEE, p.wEI, p.G)),
        torch.as_tensor(space.fic_sc, dtype=torch.float64),
    ).numpy()
    lo, hi = FIC_RATE_BAND
    model_rows, gsr_rows = [], []
    for b in range(res.n_sets):
        r_e = res.r_e[b, 0].numpy()
        base = {
            "stratum": strata[b],
            "G": float(p.G[b]),
            "margin": float(margin[b]),
            "wEE_mean": float(p.wEE[b].mean()),
            "wEI_mean": float(p.wEI[b].mean()),
            "sigma_mean": float(p.sigma[b].mean()),
            "ei_mean": float(res.ei_ratio[b].mean()),
            "valid": bool(res.valid[b, 0]),
            "rate_outside_fraction": float(np.mean((r_e < lo) | (r_e > hi))),
        }
        if not base["valid"]:
            model_rows.append(base)
            continue
        bold = res.bold[b, 0].numpy().astype(np.float64)
        fc = bold_fc(bold).numpy()
        cdf = bold_fcd_cdf(bold, timing.fcd_window).numpy()
        model_rows.append(base | _row(fc, cdf, sc_pairs))
        clean = _gsr(bold)
        gsr_cdf = bold_fcd_cdf(clean, timing.fcd_window).numpy()
        gsr_rows.append(base | _row(bold_fc(clean).numpy(), gsr_cdf, sc_pairs))
    return model_rows, gsr_rows


def _in_regime(r: dict[str, Any]) -> bool:
    return r.get("valid", False) and r["rate_outside_fraction"] <= RATE_OUTSIDE_MAX


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-sets", type=int, default=96, help="parameter sets simulated (half near)")
    ap.add_argument("--scan-length", type=float, default=432.0, help="scan length, s")
    ap.add_argument("--dt", type=float, default=0.005, help="integration step, s")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 6 sets, 144-s scans")
    ap.add_argument("--out", default=None, help=f"results JSON (default {RESULTS})")
    args = ap.parse_args(argv)
    if args.quick:
        args.n_sets, args.scan_length = 6, 144.0
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    maps = load_default_maps()
    scaled = np.asarray(scale_sc(np.asarray(load_default_template().sc, dtype=np.float64)))
    space = Parameterisation(
        design=design_matrix(maps.gradient, maps.myelin, warn=False),
        gradient=maps.gradient,
        bounds=Bounds(wEI=(0.0, 5.0)),
        myelin=maps.myelin,
        fic_sc=scaled,
    )
    coeffs = _draw_sets(space, args.n_sets, rng)
    near = np.arange(len(coeffs)) % 2 == 1
    coeffs[near] = _near_boundary(space, coeffs[near], rng)
    keep = space.is_valid(coeffs)  # a shift can leave the wEE bounds
    coeffs, strata = coeffs[keep], np.where(near, "near", "far")[keep].tolist()
    sc_pairs = scaled[np.triu_indices(scaled.shape[0], 1)]
    model_rows, gsr_rows = _simulated_rows(args, space, coeffs, strata, sc_pairs)
    subjects = load_reference_subjects()
    packaged = [_row(fc, cdf, sc_pairs) for fc, cdf in zip(subjects.fc, subjects.fcd_cdf)]

    regime = [r for r in model_rows if _in_regime(r)]
    off = [r for r in model_rows if r.get("valid") and not _in_regime(r)]
    gsr_regime = [r for r in gsr_rows if _in_regime(r)]
    uncoupled = [r for r in regime if r["mean_fc"] < MEAN_FC_LOW]
    coupled = [r for r in regime if r["mean_fc"] >= MEAN_FC_LOW]
    by_g = {
        name: {"n": len(rows), **_summary(rows, STATS)}
        for name, (lo_g, hi_g) in G_STRATA.items()
        if (rows := [r for r in regime if lo_g <= r["G"] < hi_g or r["G"] == hi_g])
    }
    record = result_header("fc_regime", args) | {
        "settings": {
            "n_sets": args.n_sets,
            "scan_length": args.scan_length,
            "tr": TR,
            "dt": args.dt,
            "seed": args.seed,
            "n_simulated": len(model_rows),
            "thresholds": {"mean_fc_low": MEAN_FC_LOW, "mean_fc_high": MEAN_FC_HIGH},
        },
        "model_in_regime": {"n": len(regime), **_summary(regime, STATS), "by_G": by_g},
        "model_uncoupled": {"n": len(uncoupled), **_summary(uncoupled, (*STATS, "ei_mean"))},
        "model_coupled": {"n": len(coupled), **_summary(coupled, (*STATS, "ei_mean"))},
        "model_off_regime": {"n": len(off), **_summary(off, STATS)},
        "model_invalid": sum(not r["valid"] for r in model_rows),
        "gsr": {"n": len(gsr_regime), **_summary(gsr_regime, STATS)},
        "packaged_subjects": {"n": len(packaged), **_summary(packaged, STATS)},
        "warned": {
            "model_coupled": sum(r["warned"] for r in coupled),
            "model_uncoupled": sum(r["warned"] for r in uncoupled),
            "model_off_regime": sum(r["warned"] for r in off),
            "gsr": sum(r["warned"] for r in gsr_regime),
            "packaged_subjects": sum(r["warned"] for r in packaged),
        },
        "rows": {"model": model_rows, "gsr": gsr_rows, "packaged": packaged},
        "wall_s": time.perf_counter() - t0,
    }
    out = results_file(RESULTS, args.out, args.quick)
    write_json(record, out)
    m, g, w = record["model_in_regime"], record["gsr"], record["warned"]
    ok = w["packaged_subjects"] == 0 and w["gsr"] == len(gsr_regime) and w["model_coupled"] == 0
    print(
        f"fc_regime: model in FIC regime ({len(regime)} sets) mean FC "
        f"{m['mean_fc']['min']:.3f}-{m['mean_fc']['max']:.3f}, negative pairs "
        f"{m['negative_fraction']['min']:.0%}-{m['negative_fraction']['max']:.0%} "
        f"({len(uncoupled)} uncoupled, < {MEAN_FC_LOW:g}); after GSR mean FC "
        f"{g['mean_fc']['min']:.3f}-{g['mean_fc']['max']:.3f}, negative "
        f"{g['negative_fraction']['min']:.0%}-{g['negative_fraction']['max']:.0%}; warned: GSR "
        f"{w['gsr']}/{len(gsr_regime)}, packaged subjects {w['packaged_subjects']}/{len(packaged)}"
        f" {'PASS' if ok else 'FAIL'} -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
