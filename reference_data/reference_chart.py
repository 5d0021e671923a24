"""Regenerate the SYNTHETIC reference chart shipped in ``delssome_norms/datasets/data/reference_chart``.

Usage (from the repository root, in the project's virtual environment)::

    python reference_data/reference_chart.py           # refit and write the shipped chart (~5 s)
    python reference_data/reference_chart.py --check   # refit into a temporary folder and compare
                                                       # its centiles with the shipped chart

The chart is the demo's model, ``GrowthChart(family="SHASHo2", mu_df=4, sigma_df=3)`` (mu and
sigma: B-spline of age + sex + site random intercept), fitted on
:func:`delssome_norms.datasets.load_reference_table` (the SYNTHETIC 12,005-person cohort) for
``ei_ratio_mean`` and the 68 ``ei_ratio_roi_*`` targets. The fit is deterministic (Newton
iterations from fixed starting values) and the arrays are written with fixed zip timestamps, so
a rerun gives the same numbers. Only what scoring needs is stored: ``chart.json`` (format version,
knots, sites, targets, readable coefficients, provenance, SHA-256 of the arrays) and
``arrays.npz`` (coefficients, site effects, per-target diagnostics): about 0.1 MB.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from delssome_norms.datasets import DK68_REGIONS, load_reference_table
from delssome_norms.io.regions import regions_sha256
from delssome_norms.norms import GrowthChart
from delssome_norms.norms.reference import REFERENCE_CHART_LABEL, reference_chart_path

MODEL = {"family": "SHASHo2", "mu_df": 4, "sigma_df": 3}
"""The demo's growth-chart model."""
CHECK_AGES = np.arange(5.0, 98.0, 0.5)
"""Ages [years] at which ``--check`` compares centiles."""
CHECK_TOL = 1e-6
"""Largest accepted relative difference of a centile between the shipped and a fresh fit."""


def reference_provenance() -> dict:
    """Provenance stored in the shipped chart (atlas of the synthetic cohort, SYNTHETIC label)."""
    return {
        "synthetic": True,
        "label": REFERENCE_CHART_LABEL,
        "table": "delssome_norms.datasets.load_reference_table() (SYNTHETIC, 12,005 people)",
        "model": MODEL,
        "atlas": {"name": "DK68", "n_regions": len(DK68_REGIONS), "regions": list(DK68_REGIONS)},
        # only the atlas is compared with scored tables: the synthetic E/I values were not fitted
        # by a pipeline (they are drawn from the model), so any pipeline's DK68 table may be scored
        "pipeline": {
            "atlas": "DK68",
            "n_regions": len(DK68_REGIONS),
            "regions_sha256": regions_sha256(DK68_REGIONS),
        },
    }


def fit_reference_chart() -> GrowthChart:
    """Fit the reference chart on the synthetic cohort (deterministic)."""
    table = load_reference_table()
    return GrowthChart(**MODEL).fit(table, source="reference table", provenance=reference_provenance())


def centile_difference(a: GrowthChart, b: GrowthChart) -> float:
    """Largest relative difference of the 2.5-97.5 centiles of two charts (both sexes, all targets)."""
    worst = 0.0
    for sex in ("female", "male"):
        ca = a.centiles(CHECK_AGES, sex).filter(like="C").to_numpy()
        cb = b.centiles(CHECK_AGES, sex).filter(like="C").to_numpy()
        worst = max(worst, float(np.max(np.abs(ca - cb) / np.abs(cb))))
    return worst


def main(argv: list[str] | None = None) -> int:
    """Write (or ``--check``) the shipped reference chart."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare a fresh fit with the shipped chart")
    ap.add_argument("--out", type=Path, default=None, help="folder to write (default: package data)")
    args = ap.parse_args(argv)
    chart = fit_reference_chart()
    if args.check:
        shipped = GrowthChart.load(reference_chart_path())
        with tempfile.TemporaryDirectory() as tmp:
            fresh = GrowthChart.load(chart.save(Path(tmp) / "chart"))
        diff = centile_difference(fresh, shipped)
        ok = diff <= CHECK_TOL and fresh.targets_ == shipped.targets_
        print(json.dumps({"max_relative_centile_difference": diff, "ok": ok}))
        return 0 if ok else 1
    out = args.out or reference_chart_path()
    chart.save(out)
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    print(f"wrote {out} ({len(chart.targets_)} targets, {size / 1e6:.3f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
