"""``delssome-norms charts calibrate``: how well a chart's centiles hold on held-out people,
overall or per sex, age band and site (:mod:`delssome_norms.norms.calibration`)."""

from __future__ import annotations

import argparse
import itertools
import warnings
from pathlib import Path
from typing import Any

from delssome_norms.cli.main import add_command
from delssome_norms.errors import InputWarning, InvalidInputError

CALIBRATE_EXAMPLE = (
    "delssome-norms charts calibrate --chart chart/ --table heldout.csv --out calibration.csv "
    "--by sex age"
)
WORST_MIN_N = 30
"""Groups of fewer people are not named as the worst (their errors are mostly sampling noise:
the binomial sd of a fraction near 50 % from 30 people is 9 percentage points)."""


def register_calibrate(sub) -> None:
    """Add ``charts calibrate`` to the ``charts`` subcommands ``sub``."""
    from delssome_norms.cli.charts_cmd import _add_chart_argument

    cal = add_command(
        sub,
        "calibrate",
        help="calibration of the chart's centiles on held-out people, per sex, age band or site",
        example=CALIBRATE_EXAMPLE,
        description="Score held-out people (not used to fit the chart) and write, per target (and per "
        "group with --by): n, n_infinite_z, n_extreme_z (|z| beyond 40 or infinite: a value "
        "far outside the chart, e.g. a typo; left out of the z statistics), mace_pp (mean "
        "absolute calibration error over the centiles 1-99, percentage points), max_error_pp, "
        "z_mean, z_sd, shapiro_w and shapiro_p. A calibrated chart puts a fraction q of "
        "people below its q-th centile. Pooled over sexes and ages, errors of opposite sign "
        "cancel (a chart without sex terms on a cohort with a sex effect: 0.5-1.4 pp pooled, "
        "4.6 and 6.0 pp per sex), so --by sex age is worth a look. People of sites the chart "
        "does not know (flag unseen_site), and ages outside it, are left out and counted; "
        "adapt the chart to a site first to include it. The table the chart was fitted on (its "
        "SHA-256 is the one the chart records) is warned about: its calibration is in-sample and "
        "optimistic. Each output gets a <stem>.provenance.json (the chart's digests, the table's "
        "SHA-256 and provenance, the settings, whether the table was the chart's own), written "
        "together with it.",
    )
    _add_chart_argument(cal)
    cal.add_argument("--table", required=True, metavar="CSV", help="held-out people")
    cal.add_argument("--out", required=True, metavar="CSV", help="calibration summary to write")
    cal.add_argument(
        "--by",
        nargs="+",
        choices=("sex", "age", "site"),
        metavar="{sex,age,site}",
        help="report each sex, age band and/or site apart (default: everyone pooled)",
    )
    cal.add_argument(
        "--age-bands",
        metavar="LIST",
        help="comma-separated edges of the age bands of --by age, in years (default "
        "0,10,20,40,60,80,120)",
    )
    cal.add_argument(
        "--centiles-out",
        metavar="CSV",
        help="also write the empirical fraction below each centile (2.5, 5, 25, 50, 75, 95, "
        "97.5) per target and group",
    )
    cal.add_argument("--targets", metavar="LIST", help="comma-separated targets (default: all present)")
    cal.add_argument(
        "--allow-pipeline-mismatch",
        action="store_true",
        help="use a table whose atlas or pipeline differs from the chart's, with a warning",
    )
    cal.set_defaults(func=run_calibrate)


def _age_bands(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        edges = [float(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InvalidInputError(f"expected comma-separated ages, got {text!r}", "--age-bands") from None
    if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)):
        raise InvalidInputError(
            f"expected two or more increasing ages (years), got {text!r}", "--age-bands"
        )
    return edges


def _in_sample(chart: Any, table_sha256: str, table: str, chart_arg: str) -> bool | None:
    """Whether ``table`` (its SHA-256 ``table_sha256``) holds people the chart was fitted on: the
    table whose SHA-256 its provenance records (``collect``'s sidecar, stored by ``charts fit``)
    or the controls file of one of its adaptations (``controls_sha256``: the site offsets were
    fitted on them); None when the chart records neither (a chart fitted from a table without
    sidecar, the shipped one). The table is warned about: its calibration is in-sample and
    optimistic."""
    prov = getattr(chart, "provenance_", None) or {}
    recorded = prov.get("table_sha256") if isinstance(prov, dict) else None
    adapted = [
        a
        for a in getattr(chart, "adaptations_", None) or []
        if isinstance(a, dict) and a.get("controls_sha256")
    ]
    if not isinstance(recorded, str) and not adapted:
        return None
    sites = [
        str(site)
        for a in adapted
        if a["controls_sha256"] == table_sha256
        for site in (a.get("sites") or {})
    ]
    if recorded == table_sha256:
        what = "the table the chart {} was fitted on (its SHA-256 is the table_sha256 the chart records)"
    elif any(a["controls_sha256"] == table_sha256 for a in adapted):
        named = f" (site {', '.join(sites)})" if sites else ""
        what = "the controls file the chart {} was adapted with" + named + " (the SHA-256 its "
        what += "adaptation records): their site offsets were fitted on these people, so"
    else:
        return False
    warnings.warn(
        f"{table} is {what.format(chart_arg)}: its calibration is in-sample and optimistic, not a "
        "check on held-out people; calibrate on people the chart was not fitted on",
        InputWarning,
        stacklevel=3,
    )
    return True


def run_calibrate(args: argparse.Namespace) -> int:
    """Write the calibration summary of a chart on held-out people and print the worst group."""
    import numpy as np

    from delssome_norms.cli.charts_cmd import _table_and_provenance, load_chart
    from delssome_norms.cli.charts_helpers import csv_list
    from delssome_norms.cli.side_files import (
        chart_identity,
        check_other_tables_sidecars,
        check_spares_inputs,
        derived_provenance,
        table_writes,
    )
    from delssome_norms.io import (
        check_out_file,
        provenance_path,
        regions_path,
        write_table,
        write_together,
    )
    from delssome_norms.io.guard import TABLE_SUFFIXES
    from delssome_norms.norms.calibration import (
        Z_EXTREME,
        _calibration_rows,
        _group_keys,
        _scores,
        _summary_rows,
    )
    from delssome_norms.norms.chart_pipeline_check import TABLE_PROVENANCE_KEY, warn_unprovenanced_table
    from delssome_norms.norms.chart_table import CENTILES, FLAG_AGE, FLAG_UNSEEN_SITE

    outs = [args.out] + ([args.centiles_out] if args.centiles_out else [])
    for path, option in zip(outs, ("--out", "--centiles-out")):
        check_out_file(path, option, {"--table": args.table}, TABLE_SUFFIXES)
    if args.centiles_out and args.centiles_out == args.out:
        raise InvalidInputError("is the file of --out; give another file", "--centiles-out")
    if args.centiles_out and provenance_path(args.centiles_out) == provenance_path(args.out):
        raise InvalidInputError(
            f"has the name of --out {args.out} but for its ending: both would get the provenance "
            f"sidecar {provenance_path(args.out)}; give another file name",
            "--centiles-out",
        )
    check_spares_inputs(outs, {"--table": args.table})  # and the outputs' sidecars
    check_other_tables_sidecars(outs)
    bands = _age_bands(args.age_bands)
    if bands is not None and "age" not in (args.by or []):
        raise InvalidInputError("is used with --by age", "--age-bands")
    chart = load_chart(args.chart)
    table, provenance, regions = _table_and_provenance(args.table)
    settings = {"targets": args.targets, "by": args.by, "age_bands": bands}
    settings["allow_pipeline_mismatch"] = args.allow_pipeline_mismatch
    meta = derived_provenance("charts calibrate", settings, args.table, provenance)
    meta["chart"] = chart_identity(chart, args.chart)
    digest = meta["source"]["table_sha256"]
    in_sample = _in_sample(chart, digest, str(args.table), str(args.chart))
    # a table without its sidecar: its pipeline cannot be compared with the chart's (said once)
    meta[TABLE_PROVENANCE_KEY] = warn_unprovenanced_table(chart, args.table, "calibrated")
    meta["calibration"] = {
        "in_sample": in_sample,
        "meaning": "true: the table is the one the chart was fitted on, or the controls of one "
        "of its adaptations (the SHA-256 the chart records), so the calibration is in-sample and "
        "optimistic; false: another table; null: the chart records no table SHA-256",
        "summary": Path(args.out).name,
        "centiles": Path(args.centiles_out).name if args.centiles_out else None,
    }
    options = {
        "provenance": provenance,
        "regions": regions,
        "allow_pipeline_mismatch": args.allow_pipeline_mismatch,
    }
    scored = _scores(chart, table, csv_list(args.targets), str(args.table), **options)
    keys = _group_keys(scored, chart, args.by, bands)
    summary = _summary_rows(scored, None, keys)
    centiles = _calibration_rows(scored, CENTILES, keys) if args.centiles_out else None
    # each table with its provenance sidecar (and no stale regions sidecar), all replaced together
    writes = table_writes(args.out, lambda p: write_table(summary, p), meta)
    writes.append((regions_path(args.out), None))
    if centiles is not None:
        writes += table_writes(args.centiles_out, lambda p: write_table(centiles, p), meta)
        writes.append((regions_path(args.centiles_out), None))
    write_together(writes)
    big = summary[summary["n"] >= WORST_MIN_N]
    small = big.empty  # every group too small for its MACE to mean much: said so
    pool = summary if small else big
    worst = pool.loc[pool["mace_pp"].idxmax()]
    where = ", ".join(f"{k} {worst[k]}" for k in keys)
    left = scored.attrs["left_out"]
    n_used = int(summary.groupby("target")["n"].sum().max())
    parts = [
        f"{left.get(FLAG_UNSEEN_SITE, 0)} of a site the chart does not know ({FLAG_UNSEEN_SITE}"
        "; adapt the chart to include them)"
    ] * bool(left.get(FLAG_UNSEEN_SITE)) + [
        f"{left.get(FLAG_AGE, 0)} outside its ages ({FLAG_AGE})"
    ] * bool(left.get(FLAG_AGE))
    print(
        f"calibration of {len(summary['target'].unique())} target(s) on {n_used} "
        + (
            "people of the table the chart was fitted on (in-sample: optimistic)"
            if in_sample
            else "held-out people"
        )
        + (f" by {', '.join(args.by)}" if args.by else "")
        + f": median MACE {float(np.median(pool['mace_pp'])):.2f} pp"
        + (f" (every group has fewer than {WORST_MIN_N} people: noisy)" if small else "")
        + "; worst "
        + (f"group {where}, " if where else "")
        + f"{worst['target']}: MACE {worst['mace_pp']:.2f} pp, largest error "
        f"{worst['max_error_pp']:.2f} pp, z mean {worst['z_mean']:+.2f}, z sd {worst['z_sd']:.2f} "
        f"(n {int(worst['n'])}"
        + (
            f"; {int(worst['n_extreme_z'])} with |z| beyond {Z_EXTREME:g} or infinite, left "
            "out of z mean and sd: values far outside the chart, check them"
            if worst["n_extreme_z"]
            else ""
        )
        + ")"
        + (f"; left out {'; '.join(parts)}" if parts else "")
        + f"; written to {args.out}"
        + (f" and {args.centiles_out}" if centiles is not None else "")
        + f" (with {' and '.join(provenance_path(o).name for o in outs)})"
    )
    return 0
