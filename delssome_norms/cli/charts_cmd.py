"""``delssome-norms charts``: lifespan growth charts of E/I (fit, score, adapt, plot, compare)."""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from delssome_norms.cli import options
from delssome_norms.cli.charts_calibrate_cmd import register_calibrate
from delssome_norms.cli.charts_helpers import (
    COMPARE_MODEL_OPTIONS,
    FIT_OPTIONS,
    _check_models,
    _check_scored_by,
    _figure_format,
    _fit_model_options,
    _named,
    _person_mark,
    _person_row,
    _person_value,
    _random_sites,
    _save_figure,
    _site,
    _subtitle,
    check_scores_chart,
    csv_list,
    handle_flagged,
)
from delssome_norms.cli.main import add_command
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import ei_table as et

FIT_EXAMPLE = (
    "delssome-norms charts fit --table cohort_ei.csv --out chart/ --family SHASHo2 "
    "--mu-df 4 --sigma-df 3"
)
SCORE_EXAMPLE = "delssome-norms charts score --chart chart/ --table people.csv --out scores.csv"
ADAPT_EXAMPLE = (
    "delssome-norms charts adapt --chart chart/ --controls site_controls.csv --out chart_new_site/"
)
PLOT_EXAMPLE = (
    "delssome-norms charts plot --chart chart/ --table cohort_ei.csv --target ei_ratio_mean "
    "--out ei_ratio_mean.png"
)
PERSON_PLOT_EXAMPLE = (
    "delssome-norms charts plot --chart reference --scores scores.csv --subject sub-01 "
    "--out sub-01_ei_ratio_mean.png"
)
BRAINMAP_EXAMPLE = (
    "delssome-norms charts brainmap --scores scores.csv --subject sub-01 --value z "
    "--out sub-01_brainmap.png"
)
REPORT_EXAMPLE = (
    "delssome-norms charts report --chart reference --scores scores.csv --subject sub-01 "
    "--out report_sub-01/"
)
COMPARE_EXAMPLE = (
    "delssome-norms charts compare --table cohort_ei.csv --out bic.csv "
    "--families SHASHo2,JSU,GG,NO --mu-dfs 3,4,5"
)


def _int_list(text: str, option: str) -> list[int]:
    try:
        items = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise InvalidInputError(f"expected comma-separated integers, got {text!r}", option) from None
    if not items:
        raise InvalidInputError(f"expected at least one integer, got {text!r}", option)
    return items


def load_chart(arg: str, quiet: bool = False):
    """A chart folder, or the shipped SYNTHETIC chart for ``reference``."""
    from delssome_norms.norms import GrowthChart
    from delssome_norms.norms.reference import (
        REFERENCE_CHART_LABEL,
        REFERENCE_CHART_NAME,
        load_reference_chart,
    )

    if arg == REFERENCE_CHART_NAME and not Path(arg).exists():
        if not quiet:
            print(f"using the {REFERENCE_CHART_LABEL}")
        return load_reference_chart()
    return GrowthChart.load(arg)


def _check_chart_out(out: str) -> None:
    """Refuse, before the work, a ``charts fit``/``adapt --out`` named like the shipped chart's
    keyword (``--chart reference`` would then silently read that folder instead of the shipped
    chart), a file, a subject's fit folder, or a folder of other files than a chart's."""
    from delssome_norms.cli.out_folders import check_chart_out_folder
    from delssome_norms.norms.chart_io import check_save_folder
    from delssome_norms.norms.reference import REFERENCE_CHART_NAME

    if Path(out).resolve() == Path(REFERENCE_CHART_NAME).resolve():  # also $PWD/reference
        raise InvalidInputError(
            f"a chart folder named {REFERENCE_CHART_NAME!r} here would take the place of the "
            f"shipped chart in every later --chart {REFERENCE_CHART_NAME}; choose another name",
            "--out",
        )
    check_save_folder(out, overwrite=True)  # a file, a subject's fit folder
    check_chart_out_folder(out)  # a folder of other files (a chart there is replaced)


def _table_and_provenance(path: str):
    """The table, its provenance sidecar (or None) and its region names (its
    ``<stem>.regions.csv``; None without one), as :func:`~delssome_norms.io.read_ei_table`
    reads them: the provenance lists the sidecar's names, its ``regions_sha256`` describing
    them (a sidecar that names other regions than the provenance is warned about once and
    wins), so that a chart fitted on a table scores that same table."""
    from delssome_norms.io import provenance_path, read_ei_table, regions_path
    from delssome_norms.norms.chart_regions import table_region_names

    table = read_ei_table(path)
    provenance = table.attrs.pop(et.PROVENANCE_ATTR, None)
    names = table_region_names(provenance) if regions_path(path).is_file() else None
    if not provenance_path(path).is_file():  # only a regions.csv: no provenance to compare
        provenance = None
    return table, provenance, names


def register(subparsers) -> None:
    """Add the ``charts`` command and its subcommands."""
    p = add_command(
        subparsers,
        "charts",
        help="lifespan growth charts of E/I: fit, score new people, adapt to new sites, plot, "
        "compare models",
        example=FIT_EXAMPLE,
        description="GAMLSS growth charts of the mean and regional E/I ratio (SHASHo2 by default, "
        "R gamlss-compatible). Subcommands: fit, score, adapt, plot, brainmap, report, compare, "
        "calibrate.",
    )
    sub = p.add_subparsers(dest="charts_command", metavar="<subcommand>")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    f = add_command(
        sub,
        "fit",
        help="fit the charts of every target at once and write the population centiles",
        example=FIT_EXAMPLE,
        description="Fit one GAMLSS chart per target (ei_ratio_mean and every ei_ratio_roi_* "
        "column by default) in one batched fit; write the chart folder (chart.json + arrays.npz, with "
        "the table's provenance sidecar, the table file's name, SHA-256, rows and --exclude-flagged) "
        "and <out>/<target>/female_population_centiles.csv and male_population_centiles.csv (the "
        "sexes in the table; for ei_ratio_mean; --centile-tables all for every target), and "
        "convergence.csv (per target: converged, tail_z, reliable). Exit status 1 when a target did "
        "not converge or has a degenerate tail (its scores are flagged chart_unreliable), or a site's "
        "fitted offsets are extreme (its people's scores are flagged site_unreliable).",
    )
    f.add_argument("--table", required=True, metavar="CSV", help="cohort E/I table (one row per person)")
    f.add_argument("--out", required=True, metavar="DIR", help="chart folder to write")
    f.add_argument("--targets", metavar="LIST", help="comma-separated target columns")
    f.add_argument(
        "--centile-tables",
        choices=("all", "mean", "none"),
        default="mean",
        help="which targets get <target>/<sex>_population_centiles.csv (7 significant digits): "
        "ei_ratio_mean only (default; 0.2 MB each), all (about 0.25 MB per target) or none; the "
        "chart itself (chart.json + arrays.npz, ~0.1 MB for 69 targets) is all scoring needs",
    )
    f.add_argument(
        "--exclude-flagged",
        action="store_true",
        help="leave out people whose E/I fit carries the fit-quality flag (collect's "
        "fit_flagged column); without it they are kept and named in a warning",
    )
    options.defer(f, _fit_model_options)
    f.set_defaults(func=run_fit)

    s = add_command(
        sub,
        "score",
        help="centile, z-score and harmonised value of new people",
        example=SCORE_EXAMPLE,
        description="Score each person and target: centile (0-1) on their own site's chart, "
        "z = Phi^-1(centile), harmonised = the same centile on the site-free chart, and a flag "
        "column (unseen_site, unseen_sex, few_site_controls, age_out_of_range, age_extrapolated, "
        "missing_value, poor_fit, interval_uncalibrated, chart_unreliable, site_unreliable; "
        "README 'Reading a score'). For ei_ratio_mean "
        "also the reference names centile_with_site and corrected_value. The table's regions "
        "sidecar (<stem>.regions.csv, from collect) is copied next to the scores (for a table "
        "naming no regions, the chart's region names are written), where report and brainmap "
        "read the region names; <stem>.provenance.json beside them names the chart "
        "(its digests) and the scored table (SHA-256, provenance; table_provenance 'missing': "
        "no sidecar, the pipeline was not checked).",
    )
    _add_chart_argument(s)
    s.add_argument("--table", required=True, metavar="CSV", help="people to score")
    s.add_argument(
        "--allow-pipeline-mismatch",
        action="store_true",
        help="score a table whose atlas or pipeline (collect's provenance sidecar) differs from "
        "the chart's, with a warning (experts only)",
    )
    s.add_argument("--out", required=True, metavar="CSV", help="scores to write")
    s.add_argument("--targets", metavar="LIST", help="comma-separated targets (default: all present)")
    s.add_argument(
        "--layout",
        choices=("wide", "long"),
        default="wide",
        help="one row per person (wide, default) or per person and target (long)",
    )
    s.add_argument(
        "--extrapolate",
        action="store_true",
        help="score ages outside the chart's range too (still flagged)",
    )
    s.set_defaults(func=run_score)

    a = add_command(
        sub,
        "adapt",
        help="estimate new sites' offsets from their controls (population fit frozen)",
        example=ADAPT_EXAMPLE,
        description="Bethlehem et al. (2022): for each site in the controls table that the chart "
        "has not seen, estimate its mu and sigma offsets by maximum likelihood with the "
        "population model frozen; write a new chart folder that knows the site.",
    )
    _add_chart_argument(a)
    a.add_argument("--controls", required=True, metavar="CSV", help="controls of the new site(s)")
    a.add_argument(
        "--allow-pipeline-mismatch",
        action="store_true",
        help="adapt with controls whose atlas or pipeline differs from the chart's (warning)",
    )
    a.add_argument("--out", required=True, metavar="DIR", help="new chart folder to write")
    a.add_argument(
        "--method",
        choices=("ml", "map"),
        default="ml",
        help="ml (default; needs 10 or more controls per site, 30 recommended) or map (shrunk "
        "like the training random effects; for sites with few controls)",
    )
    a.set_defaults(func=run_adapt)

    pl = add_command(
        sub,
        "plot",
        help="centile fan chart of one target per sex, with data points (PNG, PDF or SVG)",
        example=PLOT_EXAMPLE,
        description="Draw the population centiles (2.5-97.5) of one target, one panel per sex, "
        "with the table's people as points (harmonised values by default). With --subject ID, "
        "that person (from --scores, or scored from --table) is marked as a large labelled star "
        f"with their centile, e.g. 'sub-01: 93rd centile'. Example: {PERSON_PLOT_EXAMPLE}",
    )
    _add_chart_argument(pl)
    pl.add_argument("--out", required=True, metavar="FILE", help="figure to write (.png, .pdf or .svg)")
    pl.add_argument("--table", metavar="CSV", help="people to draw as points")
    pl.add_argument("--target", default=et.MEAN_TARGET, help="target to draw (default ei_ratio_mean)")
    pl.add_argument(
        "--points",
        choices=("harmonised", "raw"),
        default="harmonised",
        help="draw --table's people at their harmonised values (default, site effects removed) "
        "or their raw values",
    )
    pl.add_argument(
        "--crosscheck",
        action="store_true",
        help="add the non-parametric (pygam quantile GAM) centiles as dashed lines (needs --table)",
    )
    pl.add_argument(
        "--subject",
        metavar="ID",
        help="mark this subject_id as a labelled point with their centile (needs --scores or --table)",
    )
    pl.add_argument(
        "--scores",
        metavar="CSV",
        help="wide score table of `charts score` with the person's centile and harmonised value",
    )
    pl.set_defaults(func=run_plot)

    bm = add_command(
        sub,
        "brainmap",
        help="one person's DK68 regional z-scores (or centiles, E/I) on a glass brain (PNG)",
        example=BRAINMAP_EXAMPLE,
        description="Draw one person's regional scores from a wide score table (`charts score`) "
        "at the DK68 region centroids on a glass brain: z-scores (default; diverging colours "
        "centred at 0), centiles (percent, centred at 50) or harmonised E/I ratios. Regions the "
        "table has no score for (a chart fitted on some regions) are left out; the title counts "
        "those drawn. Scores of another atlas (named by the scores' <stem>.regions.csv, else by "
        "the chart's provenance, as in report) are refused. Regions whose chart is unreliable "
        "(flag chart_unreliable) are drawn grey, without a score; which they are, --chart says "
        "(default: the chart named by the scores' provenance sidecar, while unchanged).",
    )
    bm.add_argument("--scores", required=True, metavar="CSV", help="wide score table")
    bm.add_argument(
        "--chart",
        metavar="DIR",
        help="the chart that scored them ('reference' for the shipped one): tells which regions' "
        "charts are unreliable (default: the one the scores' provenance sidecar names)",
    )
    bm.add_argument("--subject", required=True, metavar="ID", help="subject_id to draw")
    bm.add_argument(
        "--value", choices=("z", "centile", "ei"), default="z", help="what to show (default z)"
    )
    bm.add_argument("--out", required=True, metavar="FILE", help="figure to write (.png, .pdf or .svg)")
    bm.set_defaults(func=run_brainmap)

    rp = add_command(
        sub,
        "report",
        help="one-page Markdown report of one person: demographics, centiles, deviant regions, figures",
        example=REPORT_EXAMPLE,
        description="Write <out>/report.md with the person's age, sex, site, mean E/I centile "
        "and z, the most deviant regions by name, and two PNG figures next to it: the fan chart "
        "of ei_ratio_mean with the person marked and the glass-brain map of regional z-scores.",
    )
    _add_chart_argument(rp)
    rp.add_argument("--scores", required=True, metavar="CSV", help="wide score table")
    rp.add_argument("--subject", required=True, metavar="ID", help="subject_id to report")
    rp.add_argument("--out", required=True, metavar="DIR", help="folder to write")
    rp.add_argument(
        "--top", type=int, default=5, help="number of most deviant regions listed (default 5)"
    )
    rp.set_defaults(func=run_report)

    c = add_command(
        sub,
        "compare",
        help="BIC table over families and mu spline df",
        example=COMPARE_EXAMPLE,
        description="Compare chart models (not people): fit every family x mu df combination "
        "on --table (each a batched fit of all targets, or of --targets) and write one row per "
        "model and target: loglik, edf (effective degrees of freedom), aic = -2 loglik + 2 edf, "
        "bic = -2 loglik + log(n_obs) edf, delta_bic (bic minus the smallest bic among the "
        "target's reliable models: 0 marks the best, lower is better, 10 or more is strong "
        "evidence against a model), best, converged, tail_z, reliable and note. A model with a "
        "degenerate tail is listed but never best.",
    )
    c.add_argument("--table", required=True, metavar="CSV", help="cohort E/I table")
    c.add_argument("--out", required=True, metavar="CSV", help="BIC table to write")
    c.add_argument(
        "--families",
        default="SHASHo2,JSU,GG,NO",
        help="comma-separated families (default SHASHo2,JSU,GG,NO)",
    )
    c.add_argument(
        "--mu-dfs", default="3,4,5", help="comma-separated mu df values, 3-30 (default 3,4,5)"
    )
    c.add_argument("--targets", metavar="LIST", help="comma-separated target columns")
    c.add_argument(
        "--exclude-flagged",
        action="store_true",
        help="leave out people whose E/I fit carries the fit-quality flag (collect's "
        "fit_flagged column), as charts fit --exclude-flagged does; without it they are kept "
        "and named in a warning",
    )
    options.defer(c, lambda p: _fit_model_options(p, COMPARE_MODEL_OPTIONS))
    c.set_defaults(func=run_compare)
    register_calibrate(sub)  # charts calibrate: delssome_norms.cli.charts_calibrate_cmd


def _add_chart_argument(parser: argparse.ArgumentParser) -> None:
    """The ``--chart`` option of the commands that read a fitted chart."""
    parser.add_argument(
        "--chart",
        required=True,
        metavar="DIR",
        help="chart folder, or 'reference' for the shipped SYNTHETIC chart (mean + 68 DK68 regions)",
    )


def run_fit(args: argparse.Namespace) -> int:
    """Fit the charts and write the chart folder and population centile tables."""
    from delssome_norms.cli.charts_fit_outputs import save_chart_and_tables
    from delssome_norms.norms import GrowthChart
    from delssome_norms.norms.chart_pipeline_check import record_fitted_table

    _check_chart_out(args.out)  # before the fit, which can take minutes
    random_sites = _random_sites(args.random_sites)
    options = {
        "sigma_df": args.sigma_df,
        "nu_df": args.nu_df,
        "tau_df": args.tau_df,
        "site_column": args.site_column,
        "max_iter": args.max_iter,
        "random_sites": random_sites,
    }
    _check_models([args.family], [args.mu_df], FIT_OPTIONS, **options)  # errors name the option
    table, provenance, regions = _table_and_provenance(args.table)
    n_rows = len(table)
    table = handle_flagged(table, args.exclude_flagged, str(args.table))
    chart = GrowthChart(
        args.family,
        mu_df=args.mu_df,
        mu_sex=not args.no_mu_sex,
        sigma_sex=not args.no_sigma_sex,
        algorithm=args.algorithm,
        **options,
    ).fit(
        table,
        targets=csv_list(args.targets),
        source=str(args.table),
        provenance=provenance,
        regions=regions,
    )
    n_out = n_rows - len(table)  # recorded with the table file itself, a stale sidecar apart
    record_fitted_table(chart.provenance_, args.table, n_rows, args.exclude_flagged, n_out, provenance)
    out = Path(args.out)
    # the chart, convergence.csv and the centile tables replace an earlier chart's together
    save_chart_and_tables(chart, out, args.centile_tables)
    n_ok = int(chart.converged_.sum())
    n_wild = int((chart.converged_ & ~chart.reliable_).sum())
    sites = chart.unreliable_sites_  # training sites with extreme offsets: flagged site_unreliable
    print(
        f"fitted {chart.family_.name} charts of {len(chart.targets_)} target(s) on "
        f"{int(chart.n_obs_.max())} people from {len(chart.sites_)} site(s); "
        f"{n_ok}/{len(chart.targets_)} converged"
        + (f", {n_wild} with a degenerate tail" if n_wild else "")
        + (f", site(s) {', '.join(sites)} with extreme offsets (site_unreliable)" if sites else "")
        + f"; written to {out}"
    )
    return 0 if chart.reliable_.all() and not sites else 1


def run_score(args: argparse.Namespace) -> int:
    """Score a table of people against a saved chart; write the scores, their regions sidecar
    and their provenance sidecar (chart and table identity) together."""
    import warnings

    import numpy as np

    from delssome_norms.cli.side_files import (
        chart_identity,
        check_other_tables_sidecars,
        check_spares_inputs,
        derived_provenance,
        table_writes,
    )
    from delssome_norms.io import check_out_file, regions_path, write_table, write_together
    from delssome_norms.io.guard import TABLE_SUFFIXES
    from delssome_norms.norms.chart_pipeline_check import TABLE_PROVENANCE_KEY, warn_unprovenanced_table
    from delssome_norms.norms.chart_regions import align_table_regions, table_region_names
    from delssome_norms.norms.chart_table import FLAG_POOR_FIT, FLAG_UNCALIBRATED

    check_out_file(args.out, "--out", {"--table": args.table}, TABLE_SUFFIXES)
    check_spares_inputs([args.out], {"--table": args.table})
    check_other_tables_sidecars([args.out])  # another table's sidecars of the same name
    chart = load_chart(args.chart)
    table, provenance, regions = _table_and_provenance(args.table)
    had_sidecar = warn_unprovenanced_table(chart, args.table)  # its pipeline cannot be checked
    scores = chart.score(
        table,
        targets=csv_list(args.targets),
        extrapolate=args.extrapolate,
        layout=args.layout,
        source=str(args.table),
        provenance=provenance,
        allow_pipeline_mismatch=args.allow_pipeline_mismatch,
        regions=regions,
    )
    settings = {k: getattr(args, k) for k in ("targets", "layout", "extrapolate")}
    settings["allow_pipeline_mismatch"] = args.allow_pipeline_mismatch
    meta = derived_provenance("charts score", settings, args.table, provenance)
    meta[TABLE_PROVENANCE_KEY] = had_sidecar  # "missing": the pipeline was not compared
    if provenance is not None:  # the scores' regional columns are in the chart's region order
        with warnings.catch_warnings():  # a reordered table was warned about by score()
            warnings.simplefilter("ignore")
            aligned = align_table_regions(chart, table, provenance, regions, str(args.table))[1]
        meta.update(pipeline=dict(aligned.get("pipeline") or {}), atlas=aligned.get("atlas"))
    meta["chart"] = chart_identity(chart, args.chart)
    side = _scores_regions(args.table, chart, regions or table_region_names(provenance))
    scores_file, sidecar = table_writes(args.out, lambda p: write_table(scores, p), meta)
    write_together([scores_file, (regions_path(args.out), side), sidecar])
    n = len(table)  # long layout: one row per person and target, person by person

    def people(mask) -> int:
        return int(np.asarray(mask, dtype=bool).reshape(n, -1).any(axis=1).sum())

    flagged = people(scores["flag"] != "")
    poor = people(scores["flag"].str.contains(FLAG_POOR_FIT))
    uncalibrated = people(scores["flag"].str.contains(FLAG_UNCALIBRATED))
    notes = [
        f"{poor} from fits flagged as poor: their centiles rest on an unreliable E/I; charts fit "
        "--exclude-flagged leaves such people out of a reference"
    ] * bool(poor) + [
        f"{uncalibrated} with E/I intervals the calibration does not cover (a budget, scan, "
        "TR, atlas, maps or step other than it was measured at: collect's warning and the "
        "subject's run.json calibration_differences say which): their centile intervals may be "
        "too narrow"
    ] * bool(uncalibrated)
    note = f" ({'; '.join(notes)})" if notes else ""
    print(f"scored {n} people; {flagged} with a flag{note}; written to {args.out}")
    return 0


def _scores_regions(table: str, chart=None, names=None):
    """The writer of the scores' ``<stem>.regions.csv`` (where ``charts report``/``brainmap``
    read the region names): the table's sidecar (collect's), or the chart's names when the
    table's (``names``, in another order than the chart's) were matched to them by name, or the
    table names none (the scores' regional columns are the chart's targets, in its order; else
    ``brainmap`` would draw another atlas's scores at the DK68 centroids); None when neither
    names regions (a legacy chart: DK68; an earlier sidecar is removed)."""
    from delssome_norms.io import regions_path, write_table, write_text
    from delssome_norms.norms.chart_regions import chart_region_names

    source = regions_path(table)
    ours = chart_region_names(chart) if chart is not None else None
    copy = source.is_file() and (names is None or list(names) == ours or ours is None)
    if ours is not None and not copy and (names is None or len(names) == len(ours)):
        frame = et.regions_frame(ours)  # matched by name, or taken in the chart's order
        return lambda p: write_table(frame, p)
    if source.is_file():
        text = source.read_text(encoding="utf-8")
        return lambda p: write_text(text, p)
    return None


def run_adapt(args: argparse.Namespace) -> int:
    """Adapt a saved chart to new sites and write the new chart."""
    _check_chart_out(args.out)
    out, source = Path(args.out), Path(args.chart)
    if out.exists() and source.exists() and out.resolve() == source.resolve():
        raise InvalidInputError(
            f"{args.out} is the chart being adapted; write the adapted chart to another "
            "folder (the original stays the reference of its sites)",
            "--out",
        )
    from delssome_norms.norms.chart_pipeline_check import warn_unprovenanced_table

    chart = load_chart(args.chart)
    controls, provenance, regions = _table_and_provenance(args.controls)
    had_sidecar = warn_unprovenanced_table(chart, args.controls, "used")
    new = chart.adapt(
        controls,
        method=args.method,
        source=str(args.controls),
        provenance=provenance,
        allow_pipeline_mismatch=args.allow_pipeline_mismatch,
        regions=regions,
    )
    from delssome_norms.io import file_sha256

    new.adaptations_[-1]["controls_sha256"] = file_sha256(args.controls)  # which controls, exactly
    new.adaptations_[-1]["controls_provenance"] = had_sidecar  # "missing": pipeline not compared
    new.save(args.out, overwrite=True)  # a rerun replaces the adapted chart of its --out
    added = [s for s in new.sites_ if s not in chart.sites_]
    counts = ", ".join(f"{s} ({new.adapted_sites_[s]['n_controls']} controls)" for s in added)
    print(f"adapted to {len(added)} new site(s): {counts}; written to {args.out}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    """Draw the centile fan chart of one target."""
    from delssome_norms.cli.person_report import check_drawable, unreliable_targets
    from delssome_norms.io import read_table
    from delssome_norms.plotting.charts import plot_chart_centiles
    from delssome_norms.plotting.person import person_label

    out = Path(args.out)
    _figure_format(out)
    if args.scores and args.subject is None:
        raise InvalidInputError("--scores is used with --subject ID", "--scores")
    if args.subject is not None and not (args.scores or args.table):
        raise InvalidInputError("--subject needs --scores or --table", "--subject")
    chart = load_chart(args.chart)
    if args.target not in chart.targets_:
        some = ", ".join(chart.targets_[:4]) + (" ..." if len(chart.targets_) > 4 else "")
        raise InvalidInputError(f"the chart has no target {args.target!r} (it has {some})", "--target")
    table_source = _named(args.table, "--table")
    data = provenance = None
    if args.table:  # regions listed in another order than the chart's: matched by name
        data, provenance = _plot_table(chart, args.table, table_source)
    person = None
    if args.subject is not None:
        raw = None
        if args.points == "raw":
            if data is None:
                raise InvalidInputError("--points raw with --subject needs --table", "--points")
            row = _person_row(data, args.subject, table_source)
            raw = _person_value(row, args.target, table_source)
        if args.scores:
            source = _named(args.scores, "--scores")
            row = _person_row(read_table(args.scores), args.subject, source)
        else:
            source = table_source
            one = data.loc[[_person_row(data, args.subject, source).name]]
            with warnings.catch_warnings():  # the table's scoring below says them, once
                warnings.simplefilter("ignore", InputWarning)
                row = chart.score(one, targets=[args.target], source=source).iloc[0]
        # the flags of the drawn target: a wide row's are the union over all its targets
        flags = check_drawable(row, source, args.target, unreliable_targets(chart, row))
        if args.scores:
            _check_scored_by(chart, _person_mark(row, args.target, source), source, args.target, row=row)
            check_scores_chart(chart, args.scores, source)  # a chart too close for the check above
        person = _person_mark(row, args.target, source, value=raw)
        person["flag"] = flags
    crosscheck = None
    if args.crosscheck:
        if data is None:
            raise InvalidInputError("--crosscheck needs --table", "--crosscheck")
        from delssome_norms.norms.crosscheck import quantile_crosscheck

        with warnings.catch_warnings():  # the table's own scoring says its warnings once
            warnings.simplefilter("ignore", InputWarning)
            crosscheck = quantile_crosscheck(chart, data, args.target, source=table_source)
    fig = plot_chart_centiles(
        chart,
        args.target,
        data,
        points=args.points,
        crosscheck=crosscheck,
        person=person,
        source=table_source,
        provenance=provenance,
    )
    _save_figure(fig, out)
    if person is not None:
        print(
            f"marked {person_label(person['subject_id'], person['centile'])} "
            f"(z = {person['z']:+.2f}) on {args.target}"
        )
    print(f"wrote {out}")
    return 0


def _plot_table(chart, path: str, source: str):
    """The table of ``charts plot --table`` with its regional columns in the chart's order, and
    its provenance (with its sidecar's region names, then in the chart's order; None without
    sidecars), also kept in the table's ``attrs``: every later ``chart.score`` of it (the
    points, the person, the crosscheck) reads them, so none warns that it names no regions."""
    from delssome_norms.io import read_ei_table, regions_path
    from delssome_norms.norms.chart_pipeline_check import warn_unprovenanced_table
    from delssome_norms.norms.chart_regions import align_table_regions, table_region_names
    from delssome_norms.norms.dk68_by_position import DK68_WARNED_ATTR

    warn_unprovenanced_table(chart, path, "drawn")  # once: its scorings below do not say it
    data = read_ei_table(path)  # the regions sidecar's names in attrs, as the provenance's
    provenance = data.attrs.get(et.PROVENANCE_ATTR)
    regions = table_region_names(provenance) if regions_path(path).is_file() else None
    data, provenance = align_table_regions(chart, data, provenance, regions, source)
    said = {k: v for k, v in data.attrs.items() if k == DK68_WARNED_ATTR}  # said here: once
    data.attrs = said if provenance is None else {**said, et.PROVENANCE_ATTR: provenance}
    return data, provenance


def run_brainmap(args: argparse.Namespace) -> int:
    """Draw one person's regional scores on a glass brain."""
    from delssome_norms.cli import person_report as pr
    from delssome_norms.io import read_table
    from delssome_norms.plotting.person import VALUE_KINDS, plot_person_brain_map

    out = Path(args.out)
    _figure_format(out)
    source = _named(args.scores, "--scores")
    chart = load_chart(args.chart) if args.chart is not None else None
    made = pr._scores_provenance(args.scores).get("chart") if chart is None else None
    if isinstance(made, dict) and (made.get("shipped_reference") or made.get("synthetic")):
        from delssome_norms.norms.reference import REFERENCE_CHART_LABEL

        shipped = made.get("shipped_reference")  # the chart that made the scores, by their sidecar
        name = f"the {REFERENCE_CHART_LABEL}" if shipped else f"{made.get('chart')} (SYNTHETIC data)"
        print(f"scores made with {name}")
    atlas = pr.scores_atlas(args.scores, chart)  # as report reads it: never DK68 by default
    if not atlas.is_dk68:  # the markers would sit at DK68 centroids: wrong places
        raise InvalidInputError(
            f"the scores are of {atlas.describe()}: brain maps draw at the DK68 region "
            "centroids, and there are no centroids or surfaces of this atlas; plot it with "
            "delssome_norms.plotting.plot_brain_map(values, regions=..., coords=...) and its "
            "own centroids, or read the regions by name in `charts report`",
            source,
        )
    row = _person_row(read_table(args.scores), args.subject, source)
    unreliable = pr.scores_unreliable(args.scores, args.chart, row, source, chart)  # which
    flags = pr.check_drawable(row, source, unreliable=unreliable)
    values = pr.regional_values(row, VALUE_KINDS[args.value][0], source, atlas)
    grey = pr.grey_regions(values, unreliable, atlas, row, source)
    fig = plot_person_brain_map(
        values, str(args.subject), value=args.value, subtitle=_subtitle(row, flags), unreliable=grey
    )
    _save_figure(fig, out)
    print(f"wrote {out}")
    return 0


def run_report(args: argparse.Namespace) -> int:
    """Write a one-page Markdown report of one person with two figures."""
    from delssome_norms.cli.person_report import (
        _row_flags,
        check_drawable,
        grey_regions,
        regional_values,
        report_markdown,
        scores_atlas,
        unreliable_targets,
    )
    from delssome_norms.cli.side_files import check_spares_inputs
    from delssome_norms.io import normalise_sex, read_table, write_text
    from delssome_norms.norms.reference import REFERENCE_CHART_LABEL, REFERENCE_CHART_NAME
    from delssome_norms.plotting.charts import plot_chart_centiles
    from delssome_norms.plotting.person import plot_person_brain_map

    if args.top < 1:
        raise InvalidInputError("must be at least 1", "--top")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} exists and is a file, not a folder", "--out")
    written = [out / name for name in ("report.md", "fan_chart.png", "brain_map_z.png")]
    check_spares_inputs(written, {"--scores": args.scores}, sides=())
    source = _named(args.scores, "--scores")
    row = _person_row(read_table(args.scores), args.subject, source)
    chart = load_chart(args.chart, quiet=True)
    unreliable = unreliable_targets(chart, row)  # a row's flag is the union over its targets
    flags = check_drawable(row, source, et.MEAN_TARGET, unreliable)  # the mean's own flags
    mark = _person_mark(row, et.MEAN_TARGET, source)
    mark["flag"] = flags
    atlas = scores_atlas(args.scores, chart)  # another atlas: named by the sidecar or by index
    z = regional_values(row, "z", source, atlas)
    centiles = regional_values(row, "centile", source, atlas)
    grey = grey_regions(z, unreliable, atlas, row, source)  # drawn grey, and listed apart
    _check_scored_by(chart, mark, source, row=row)
    check_scores_chart(chart, args.scores, source)  # a chart too close for the check above
    reference = args.chart == REFERENCE_CHART_NAME and not Path(args.chart).exists()
    chart_label = f"the {REFERENCE_CHART_LABEL}" if reference else f"the chart `{args.chart}`"
    prov = getattr(chart, "provenance_", None) or {}
    if not reference and prov.get("synthetic"):  # e.g. the shipped chart adapted to a new site
        chart_label += f", derived from: {prov['label']}" if prov.get("label") else " (SYNTHETIC data)"
    if reference or prov.get("synthetic"):  # said where the user looks, not only in report.md
        print(f"using {chart_label}")
    # both figures are drawn before any file is written: a failure leaves no half report
    known = [str(s) for s in getattr(chart, "sexes_", ("female", "male"))]
    if len(known) == 1 and str(normalise_sex([mark["sex"]], source)[0]) not in known:
        mark = {**mark, "sex": known[0]}  # scored on those curves (flag unseen_sex): drawn there
    fan = plot_chart_centiles(chart, et.MEAN_TARGET, None, person=mark)
    brain = None  # no DK68 centroids of another atlas: no brain map
    if atlas.is_dk68:
        subtitle = _subtitle(row, _row_flags(row))  # the regions' flags: the row's
        brain = plot_person_brain_map(
            z, mark["subject_id"], value="z", subtitle=subtitle, unreliable=grey
        )
    text = report_markdown(
        row, mark, z, centiles, args.top, chart_label, str(args.scores), _site(row), atlas, unreliable
    )
    _save_figure(fan, out / "fan_chart.png")
    if brain is not None:
        _save_figure(brain, out / "brain_map_z.png")
    else:  # a map of an earlier report in this folder would not belong to this one
        (out / "brain_map_z.png").unlink(missing_ok=True)
    write_text(text, out / "report.md")
    figures = "fan_chart.png and brain_map_z.png" if brain is not None else "fan_chart.png"
    print(f"wrote {out / 'report.md'} with {figures}")
    return 0


def run_compare(args: argparse.Namespace) -> int:
    """Write the BIC table over families and mu df."""
    from delssome_norms.cli.side_files import check_spares_inputs
    from delssome_norms.io import check_out_file, read_table, write_table
    from delssome_norms.io.guard import TABLE_SUFFIXES
    from delssome_norms.norms.selection import best_models, compare_models

    check_out_file(args.out, "--out", {"--table": args.table}, TABLE_SUFFIXES)  # before the fits
    check_spares_inputs([args.out], {"--table": args.table}, sides=())  # its sidecars too
    families = list(dict.fromkeys(csv_list(args.families, "--families")))  # each model once
    mu_dfs = list(dict.fromkeys(_int_list(args.mu_dfs, "--mu-dfs")))
    names = ("sigma_df", "nu_df", "tau_df", "site_column", "algorithm", "max_iter")
    shared = {k: getattr(args, k) for k in names}
    shared.update(
        mu_sex=not args.no_mu_sex,
        sigma_sex=not args.no_sigma_sex,
        random_sites=_random_sites(args.random_sites),
    )
    _check_models(families, mu_dfs, **shared)
    table = handle_flagged(read_table(args.table), args.exclude_flagged, str(args.table))
    result = compare_models(
        table,
        families=families,
        mu_dfs=mu_dfs,
        targets=csv_list(args.targets),
        source=str(args.table),
        **shared,
    )
    write_table(result, args.out)
    best = best_models(result)
    counts = best.groupby(["family", "mu_df"]).size().sort_values(ascending=False)
    summary = ", ".join(f"{fam} df {df}: {n}" for (fam, df), n in counts.items())
    missing = sorted(set(result["target"]) - set(best["target"]))
    note = (
        f"; no reliable model for {len(missing)} target(s): {', '.join(missing[:5])}" if missing else ""
    )
    print(f"best BIC per target among reliable models -> {summary}{note}; table written to {args.out}")
    return 0
