"""``delssome-norms stats``: the paper's cohort statistics of an E/I table from the command line.

``stats sex`` tests sex differences in the mean and the variability of every target
(:func:`~delssome_norms.stats.sex_difference_tests`, FDR across regions) and gives the female −
male gap across age with its bootstrap band (:func:`~delssome_norms.stats.sex_gap`);
``stats groups`` compares sensory and association regions per age bin
(:func:`~delssome_norms.stats.region_group_summary`) and across age
(:func:`~delssome_norms.stats.region_group_trajectories`). Both write CSV tables and PNG figures
into ``--out-dir`` and print a short summary. Region names come from the table's
``<stem>.regions.csv`` (written by ``collect``), else its provenance sidecar's ``atlas.regions``,
as :func:`~delssome_norms.io.read_ei_table` reads them; 68 columns named by neither are read as
DK68. People whose E/I fit is flagged (``fit_flagged``) are named in a warning, or left out with
``--exclude-flagged``. When the curves of ``stats groups`` do not converge (e.g. many small
sites) the other tables are still written, and the figure of the people without curves, with a
warning and exit status 1; so are the tests of ``stats sex`` and their figures when its sex-gap
curves do not converge.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
from pathlib import Path

from delssome_norms.cli.charts_helpers import csv_list, handle_flagged
from delssome_norms.cli.main import add_command
from delssome_norms.errors import InvalidInputError
from delssome_norms.io import ei_table as et

SEX_EXAMPLE = "delssome-norms stats sex --table cohort_ei.csv --out-dir stats_out/"
GROUPS_EXAMPLE = "delssome-norms stats groups --table cohort_ei.csv --out-dir stats_out/"

MARKER = ".delssome-norms-stats"
"""Written into every stats folder: a folder holding it may be written again by ``stats``; any
other non-empty folder is refused, so no file the command did not write is overwritten."""

SEX_FILES = (
    "sex_difference_tests.csv",
    "sex_difference_summary.csv",
    "sex_gap.csv",
    "sex_gap.png",
    "sex_effects_mean.png",
    "sex_effects_sd.png",
)
"""What ``stats sex`` writes (the first three always, the figures unless ``--no-figures``)."""
GROUP_FILES = (
    "region_group_summary.csv",
    "region_group_scores.csv",
    "region_group_trajectories.csv",
    "region_group_trajectories.png",
    "region_group_people.png",
)
"""What ``stats groups`` writes: the first two always; the curves and their figure unless
``--no-trajectories``, ``--no-figures`` or a curve fit that does not converge; the people's figure
unless ``--no-figures`` (without curves after ``--no-trajectories`` or a fit that did not converge)."""
CURVE_FILES = ("region_group_trajectories.csv", "region_group_trajectories.png")
"""What ``stats groups`` leaves out when its curves do not converge."""
GAP_FILES = ("sex_gap.csv", "sex_gap.png")
"""What ``stats sex`` leaves out when its sex-gap curves do not converge."""


def _left_out(files: tuple[str, ...], no_figures: bool) -> tuple[str, ...]:
    """Which of ``files`` a failed fit leaves out: with ``--no-figures`` no PNG was asked for."""
    return tuple(f for f in files if not (no_figures and f.endswith(".png")))


NOT_CONVERGED = "did not converge"
"""How :func:`~delssome_norms.stats.region_group_trajectories` words a fit that did not converge
(``stats._converged.require_converged``)."""
CURVES_FAILED = 1
"""Exit status of ``stats groups`` (``stats sex``) when its curves (the sex gap) did not converge
and the rest is written, as ``charts fit`` exits 1 for a chart that did not converge."""

VARIABILITY_TESTS = {"lr": "sigma_lr", "robust": "sigma_robust_wald", "brown-forsythe": "brown_forsythe"}
"""``--variability-test`` choices and the rows of the tests they name."""

MAX_BOOT = 100_000
"""Most bootstrap resamples ``--n-boot`` accepts (1000 already give stable 95 % band ends)."""

OPTION_WORDS = (
    (r"\bmu_df/sigma_df\b", "--mu-df/--sigma-df"),
    (r"\bmu_df=", "--mu-df "),
    (r"\bsigma_df=", "--sigma-df "),
    (r"\bscale_site=False\b", "--no-scale-site"),
    (r"pass site=None to fit no site terms", "drop the site columns to fit no site terms"),
    (r"\bsite=None\b", "a table without site columns"),
    (r"\ba smaller df \(3\)", "--df 3"),
    (r"\bdf=(\d+)", r"--df \1"),
    (r", e\.g\. table\.drop_duplicates\('subject_id'\)", " in the table"),
    (r"the brown_forsythe rows or method='robust_wald'", "--variability-test brown-forsythe or robust"),
    (r"\bmethod='robust_wald'", "--variability-test robust"),
    (r"the table's regions\.csv / regions=", "the table's <stem>.regions.csv"),
)
"""Python argument names in the statistics' messages, as the CLI spells them."""
SOURCE_OPTIONS = {
    "alpha": "--alpha",
    "mu_df": "--mu-df",
    "sigma_df": "--sigma-df",
    "n_boot": "--n-boot",
    "targets": "--targets",
    "age_bins": "--bins",
    "df": "--df",
}
LEVEL_CAUTION = (
    "caution: FC and FCD identify the level of one person's E/I only weakly (README, \"What a fit "
    'can and cannot tell you"): read a sex difference in the level of fitted E/I with that in mind'
)
"""Printed once by ``stats sex`` under its summary."""


# ------------------------------------------------------------------------------------ parser
def register(subparsers) -> None:
    """Add the ``stats`` command with its ``sex`` and ``groups`` subcommands."""
    p = add_command(
        subparsers,
        "stats",
        help="cohort statistics of an E/I table: sex differences, sensory vs association regions",
        example=SEX_EXAMPLE,
        description="The paper's statistics of a cohort E/I table (collect's output: one row per "
        "person with age_in_years, sex, site_scanner and the ei_ratio_* columns). Subcommands: "
        "sex, groups.",
    )
    sub = p.add_subparsers(dest="stats_command", metavar="<subcommand>")
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])

    s = add_command(
        sub,
        "sex",
        help="sex differences in mean and variability per target (FDR) and the sex gap across age",
        example=SEX_EXAMPLE,
        description="Per target, likelihood-ratio tests of sex in the mean and in the log-sd of a "
        "location-scale model (bs(age) + sex + site) and the Brown-Forsythe test, with "
        "Benjamini-Hochberg FDR across the regions (docs/science.md). Writes "
        "sex_difference_tests.csv (effect, confidence interval, p, p_fdr, significant, Cohen's d "
        "per target and test), sex_difference_summary.csv (significant targets per test and "
        "direction), sex_gap.csv (female - male median of ei_ratio_mean, or of the first of "
        "--targets, at every year of age that both sexes cover, with its bootstrap band) and the "
        "figures sex_gap.png, "
        "sex_effects_mean.png and sex_effects_sd.png. One row per person (a repeated subject_id, "
        "or several sessions of one person such as sub-01_ses-1 and sub-01_ses-2, is refused); "
        "at least 10 people of each sex. When the sex gap's fit does not converge (too few "
        "people of a sex, or many small sites) the tests, their summary and their figures are "
        "still written, sex_gap.csv and sex_gap.png are not, and the exit status is 1.",
    )
    _add_common(s)
    s.add_argument(
        "--targets",
        metavar="LIST",
        help="comma-separated target columns (default ei_ratio_mean and every ei_ratio_roi_*)",
    )
    s.add_argument(
        "--n-boot",
        type=int,
        default=500,
        help="bootstrap resamples of the sex gap's band, 0 for no band (default 500; about 1000 "
        "give stable ends of a 95 %% band)",
    )
    s.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    s.add_argument("--mu-df", type=int, default=4, help="df of the mean's bs(age), 3-12 (default 4)")
    s.add_argument(
        "--sigma-df", type=int, default=3, help="df of the log-sd's bs(age), 3-12 (default 3)"
    )
    s.add_argument(
        "--no-scale-site",
        action="store_true",
        help="site effects in the mean only (needed when a site has fewer than 5 people)",
    )
    s.add_argument(
        "--variability-test",
        choices=tuple(VARIABILITY_TESTS),
        default="lr",
        help="the test of variability printed first and drawn in sex_effects_sd.png: lr "
        "(likelihood ratio of sex in the log-sd; default, the most powerful with normal "
        "residuals but it rejects too often when they are heavy-tailed or skewed: 10 %% of "
        "true nulls at excess kurtosis 1, 25-38 %% with t5 or t3 noise, at alpha 0.05), robust "
        "(Wald test with a sandwich covariance, also written as sigma_robust_wald rows) or "
        "brown-forsythe (median-centred Levene test, the most robust to the residuals' shape). "
        "The Brown-Forsythe result is printed beside the chosen one",
    )
    s.set_defaults(func=run_sex)

    g = add_command(
        sub,
        "groups",
        help="sensory vs association E/I per age bin and across age",
        example=GROUPS_EXAMPLE,
        description="Each person's mean E/I over sensory and over association regions "
        "(region_group_scores.csv), their summary per age bin and sex with a paired t test of "
        "sensory - association and FDR across bins (region_group_summary.csv), and the "
        "population curves of each group and sex across age with 95 % bands "
        "(region_group_trajectories.csv, figures region_group_trajectories.png and "
        "region_group_people.png). Regions are classed by their DK68 names: the table's "
        "<stem>.regions.csv, else its provenance sidecar, names them (68 columns named by neither "
        "are read as DK68); other regions (e.g. subcortical) are refused. One row per person, "
        "as for stats sex. When the curves' fit does not converge (too few people of a sex, or "
        "many small sites) the scores, the per-bin summary and region_group_people.png (the "
        "people without curves, as its title says) are still written, the curves and their "
        "figure are not, and the exit status is 1.",
    )
    _add_common(g)
    g.add_argument(
        "--bins",
        metavar="EDGES",
        help="comma-separated age-bin edges in years, bins [low, high) (default "
        "0,10,15,20,30,40,50,60,70,80,90,120)",
    )
    g.add_argument(
        "--df",
        type=int,
        default=5,
        help="spline degrees of freedom of each sex's curve across age, 3-12 (default 5; 3 "
        "needs fewer people)",
    )
    g.add_argument(
        "--no-trajectories",
        action="store_true",
        help="skip the curves across age (region_group_trajectories.csv/.png; "
        "region_group_people.png shows the people without them); the scores and the per-bin "
        "summary do not need them",
    )
    g.set_defaults(func=run_groups)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--table", required=True, metavar="CSV", help="cohort E/I table")
    parser.add_argument(
        "--out-dir",
        required=True,
        metavar="DIR",
        help="output folder: new, empty, or written by an earlier stats command (its files "
        "are replaced); other folders are refused",
    )
    parser.add_argument(
        "--alpha", type=float, default=0.05, help="FDR level of 'significant' (default 0.05)"
    )
    parser.add_argument("--no-figures", action="store_true", help="write the tables only")
    parser.add_argument(
        "--exclude-flagged",
        action="store_true",
        help="leave out people whose E/I fit carries the fit-quality flag (collect's "
        "fit_flagged column); without it they are kept and named in a warning",
    )


# ------------------------------------------------------------------------------------ checks
def _check_alpha(alpha: float) -> None:
    if not (math.isfinite(alpha) and 0.0 < alpha < 1.0):
        raise InvalidInputError(f"must lie strictly between 0 and 1, got {alpha:g}", "--alpha")


def _check_sex_options(args: argparse.Namespace) -> None:
    _check_alpha(args.alpha)
    if args.n_boot < 0 or args.n_boot == 1 or args.n_boot > MAX_BOOT:
        raise InvalidInputError(
            f"must be 0 (no band) or from 2 to {MAX_BOOT}, got {args.n_boot}", "--n-boot"
        )
    if args.seed < 0:
        raise InvalidInputError(f"must be a non-negative integer, got {args.seed}", "--seed")
    _check_df(args.mu_df, "--mu-df")
    _check_df(args.sigma_df, "--sigma-df")


def _parse_bins(text: str | None) -> tuple[float, ...]:
    from delssome_norms.stats.region_groups import DEFAULT_AGE_BINS

    if text is None:
        return DEFAULT_AGE_BINS
    try:
        edges = tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise InvalidInputError(
            f"expected comma-separated ages in years, got {text!r}", "--bins"
        ) from None
    if len(edges) < 2 or not all(map(math.isfinite, edges)):
        raise InvalidInputError(f"expected at least two finite ages in years, got {text!r}", "--bins")
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise InvalidInputError(f"the edges must increase strictly, got {text!r}", "--bins")
    return edges


def _is_stats_folder(out: Path) -> bool:
    return (out / MARKER).is_file()


def _check_out(out_dir: str, table: str, files: tuple[str, ...]) -> Path:
    """Refuse a folder that is neither new, empty nor an earlier stats output, and outputs that
    would overwrite the table or its side files (each table's provenance sidecar included);
    nothing is made."""
    from delssome_norms.cli.side_files import check_spares_inputs
    from delssome_norms.io import check_out_dir

    out = check_out_dir(out_dir, "--out-dir", create=False)
    if out.is_dir():
        entries = sorted(e.name for e in out.iterdir())
        if entries and not _is_stats_folder(out):
            shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
            raise InvalidInputError(
                f"{out} is not empty ({len(entries)} entries: {shown}) and holds no earlier "
                "stats output; give a new or empty folder",
                "--out-dir",
            )
        for name in files:
            target = out / name
            if target.is_file() and Path(table).is_file() and target.samefile(table):
                raise InvalidInputError(
                    f"{table} is the {name} that this command writes; copy it elsewhere or "
                    "choose another --out-dir",
                    "--table",
                )
    for csv in (True, False):  # tables come with their provenance sidecar, figures alone
        written = [out / f for f in files if f.endswith(".csv") == csv]
        sides = ("provenance",) * csv
        check_spares_inputs(written, {"--table": table}, "--out-dir", sides=sides)
    return out


# ------------------------------------------------------------------------------------ inputs
def _read(path: str):
    """The table as :func:`~delssome_norms.io.read_ei_table` reads it (its provenance sidecar in
    ``attrs``, ``atlas.regions`` from ``<stem>.regions.csv`` when there is one, with one warning
    when the two name other regions), its region names (the regions sidecar's, else the
    provenance sidecar's ``atlas.regions``, else DK68 by position for exactly the 68 columns
    ``ei_ratio_roi_0..67``, with a warning; None otherwise) and the site column to use (None: no
    site terms)."""
    import warnings

    from delssome_norms.io import provenance_path, read_ei_table, regions_path
    from delssome_norms.stats._cohort import DK68_WARNED_ATTR, attrs_regions, table_regions

    table = read_ei_table(path)  # the regions sidecar checked against the columns and provenance
    sidecar = regions_path(path)
    how = f"{sidecar.name} beside it, with the columns column, region_index, region"
    # the names the statistics read from attrs, refused as they refuse them (naming the file)
    names = table_regions(table, None, path, provenance_file=str(provenance_path(path)), how=how)
    if names is not None and attrs_regions(table) is None:
        table.attrs[DK68_WARNED_ATTR] = True  # DK68 by position, said once, here
    site = et.SITE_COLUMN
    if et.site_labels(table, site) is None:
        warnings.warn(
            f"{path} has no site column ({et.SITE_SCANNER} or {et.SITE}): fitted without site "
            "effects, as one site",
            stacklevel=2,
        )
        site = None
    return table, names, site


def _words(text: str) -> str:
    """Python argument names in a statistics message replaced by the CLI's options."""
    for pattern, words in OPTION_WORDS:
        text = re.sub(pattern, words, text)
    return text


def _in_cli_words(err: InvalidInputError, table: str) -> InvalidInputError:
    """A statistics error as the CLI says it: the table by its path, options by their flags."""
    source = SOURCE_OPTIONS.get(err.source or "")
    if source is None:
        source = f"{table} (--table)" if err.source in (None, "table", "site") else err.source
        # "table: column sex" (a column of the table, e.g. an unknown sex label): the file too
        source = re.sub(r"^table(?=:)", lambda _: f"{table} (--table)", source)
    return InvalidInputError(_words(err.problem), source)


def _call(table_path: str, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` with its errors and warnings in the CLI's words."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        try:
            result = fn(*args, **kwargs)
        except InvalidInputError as err:
            raise _in_cli_words(err, table_path) from None
    for w in caught:
        warnings.warn(_words(str(w.message)), w.category, stacklevel=2)
    return result


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", disable=None, leave=False)


# ------------------------------------------------------------------------------------ writing
SIDECARS = " (each table with its <stem>.provenance.json)"
"""Printed after the count of files written: the tables' provenance sidecars."""


def _provenance(command: str, args: argparse.Namespace, settings: dict, site, table, names) -> dict:
    """The provenance sidecar of each table (:func:`~delssome_norms.cli.side_files.derived_provenance`):
    ``source.provenance`` is the input table's sidecar file as it is, as ``charts score`` records
    it; ``atlas`` lists the region names that the tables use (``names``: its regions sidecar's,
    else its provenance's, else DK68 by position; :func:`~delssome_norms.stats._cohort.names_atlas`)
    and ``pipeline`` is the sidecar's as :func:`_read` read it; then the command's settings, the
    site column used (None: no site terms) and the people used (``table``, after
    ``--exclude-flagged``)."""
    import warnings

    from delssome_norms.cli.side_files import derived_provenance
    from delssome_norms.io import read_table_provenance
    from delssome_norms.stats._cohort import names_atlas

    settings = {**settings, "alpha": args.alpha, "exclude_flagged": args.exclude_flagged}
    settings.update(site_column=site, n_people=len(table))
    with warnings.catch_warnings():  # read_ei_table warned of an edited table already (_read)
        warnings.simplefilter("ignore")
        raw = read_table_provenance(args.table)
    read = table.attrs.get(et.PROVENANCE_ATTR)
    meta = derived_provenance(command, settings, args.table, raw)
    meta["pipeline"] = dict((read or {}).get("pipeline") or {})
    meta["atlas"] = names_atlas(read, names)
    return meta


def _write(out: Path, tables: dict, figures: dict, all_files: tuple[str, ...], meta: dict) -> list[Path]:
    """Write the tables, each with its provenance sidecar (``meta``), and the figures together
    (an earlier run's files of this command that this run does not write, e.g. figures after
    ``--no-figures``, are removed); returns the paths of the tables and figures."""
    from functools import partial

    from delssome_norms.cli.side_files import table_writes
    from delssome_norms.io import write_table, write_text, write_together

    out.mkdir(parents=True, exist_ok=True)
    if not _is_stats_folder(out):
        write_text("written by `delssome-norms stats`; it may rewrite this folder\n", out / MARKER)
    writes = []
    for name in all_files:
        if name.endswith(".csv"):
            table = tables.get(name)
            write = None if table is None else (lambda p, t=table: write_table(t, p))
            writes += table_writes(out / name, write, meta)  # not written: both removed
        else:
            fig = figures.get(name)
            save = None
            if fig is not None:
                save = partial(fig.savefig, format="png", dpi=150, bbox_inches="tight")
            writes.append((out / name, save))
    written = write_together(writes)
    return [p for p in written if p.name in tables or p.name in figures]


def _figures(pairs) -> dict:
    """``{file name: figure}`` from ``(file name, function, args, kwargs)``, drawn with Agg."""
    import matplotlib

    matplotlib.use("Agg")
    return {name: fn(*a, **kw) for name, fn, a, kw in pairs}


def _close(figures: dict) -> None:
    if figures:
        import matplotlib.pyplot as plt

        for fig in figures.values():
            plt.close(fig)


# ------------------------------------------------------------------------------------ sex
def _region_column(targets, names) -> list:
    """The ``region`` column of the tests: the table's own region names (None: unknown)."""
    index = [et.region_index(str(t)) for t in targets]
    return [None if k is None or names is None or k >= len(names) else names[k] for k in index]


def run_sex(args: argparse.Namespace) -> int:
    """Write the sex-difference tests, their summary, the sex gap and its figures (exit status
    :data:`CURVES_FAILED` when the sex gap's fit does not converge: the rest is written)."""
    _check_sex_options(args)
    targets = csv_list(args.targets)
    out = _check_out(args.out_dir, args.table, SEX_FILES)
    table, names, site = _read(args.table)
    table = handle_flagged(table, args.exclude_flagged, f"{args.table} (--table)")
    settings = {k: getattr(args, k) for k in ("targets", "n_boot", "seed", "mu_df", "sigma_df")}
    settings["scale_site"] = not args.no_scale_site
    settings["variability_test"] = args.variability_test
    meta = _provenance("stats sex", args, settings, site, table, names)

    steps = _progress(2 + (not args.no_figures), "stats sex")
    try:
        tests = _sex_tests(args, table, targets, site)
        tests["region"] = _region_column(tests["target"], names)
        from delssome_norms.stats import sex_difference_summary

        summary = sex_difference_summary(tests)
        steps.update()
        listed = list(dict.fromkeys(tests["target"]))
        gap_target = et.MEAN_TARGET if et.MEAN_TARGET in listed else listed[0]
        steps.set_description(f"stats sex: bootstrap of the sex gap ({args.n_boot} resamples)")
        from tqdm.auto import tqdm

        with tqdm(total=args.n_boot, desc="resamples", disable=None, leave=False) as resampled:
            gap, why = _gap(args, table, site, gap_target, resampled.update)
        if gap is not None:  # named as the tests are (the sidecar's names)
            gap["region"] = _region_column(gap["target"], names)
        steps.update()
        figures = {}
        if not args.no_figures:
            steps.set_description("stats sex: figures")
            figures = _sex_figures(tests, gap, gap_target, names, args.variability_test)
            steps.update()
    finally:
        steps.close()
    tables = {"sex_difference_tests.csv": tests, "sex_difference_summary.csv": summary}
    if gap is not None:
        tables["sex_gap.csv"] = gap
    try:
        written = _write(out, tables, figures, SEX_FILES, meta)
    finally:
        _close(figures)
    n_f, n_m = int(tests["n_female"].iloc[0]), int(tests["n_male"].iloc[0])
    print(f"{n_f} female and {n_m} male people, {len(listed)} target(s)")
    import pandas as pd

    ages = pd.to_numeric(table[et.AGE], errors="coerce")
    ages = (float(ages.min()), float(ages.max())) if ages.notna().any() else None
    from delssome_norms.stats._sex_lines import sex_lines

    test = VARIABILITY_TESTS[args.variability_test]
    for line in sex_lines(tests, summary, gap, args.alpha, args.n_boot, test, ages, why):
        print(line)
    print(LEVEL_CAUTION)
    print(f"wrote {len(written)} files to {out}{SIDECARS}")
    if gap is None:
        print(
            f"not written: {', '.join(_left_out(GAP_FILES, args.no_figures))}: the sex gap's "
            f"curves across age {'were not fitted: ' + why if why else 'did not converge'}"
            " (the warning names the cause)"
        )
    return CURVES_FAILED if gap is None else 0


def _sex_tests(args: argparse.Namespace, table, targets, site):
    """The tests of ``stats sex``: likelihood ratio and Brown-Forsythe, plus the sigma_robust_wald
    rows with ``--variability-test robust``. The warning that the residuals are too heavy-tailed
    for the likelihood-ratio test of variability is left out when another test was chosen."""
    import warnings

    import pandas as pd

    from delssome_norms import stats
    from delssome_norms.stats._residual_shape import HeavyTailWarning

    kwargs = {"site": site, "mu_df": args.mu_df, "sigma_df": args.sigma_df}
    kwargs |= {"scale_site": not args.no_scale_site, "alpha": args.alpha}
    with warnings.catch_warnings():
        if args.variability_test != "lr":
            warnings.simplefilter("ignore", HeavyTailWarning)
        tests = _call(args.table, stats.sex_difference_tests, table, targets, **kwargs)
        if args.variability_test == "robust":
            robust = _call(
                args.table, stats.sex_difference_tests, table, targets, method="robust_wald", **kwargs
            )
            robust = robust[robust["test"] == "sigma_robust_wald"]
            order = {t: i for i, t in enumerate(dict.fromkeys(tests["target"]))}
            tests = pd.concat([tests, robust], ignore_index=True)
            rank = tests["test"].map({"mu_lr": 0, "sigma_lr": 1, "sigma_robust_wald": 2}).fillna(3)
            tests = tests.assign(_t=tests["target"].map(order), _r=rank)
            tests = tests.sort_values(["_t", "_r"], kind="stable").drop(columns=["_t", "_r"])
            tests = tests.reset_index(drop=True)
    return tests


def _gap(args: argparse.Namespace, table, site, target: str, progress):
    """The sex gap across age and None, or None and why not (with a one-line warning) when its
    fit did not converge or the two sexes cover no common ages: the tests do not depend on it.
    Another refusal of the table stays an error."""
    import warnings

    from delssome_norms import stats
    from delssome_norms.errors import ConvergenceWarning
    from delssome_norms.stats.sex_differences import NO_COMMON_AGES

    try:
        gap = _call(
            args.table, stats.sex_gap, table, target, site=site, mu_df=args.mu_df,
            sigma_df=args.sigma_df, scale_site=not args.no_scale_site, n_boot=args.n_boot,
            seed=args.seed, progress=progress,
        )  # fmt: skip
        return gap, None
    except InvalidInputError as err:
        apart = NO_COMMON_AGES in err.problem
        if NOT_CONVERGED not in err.problem and not apart:
            raise
        written = "the tests and their summary are"
        if not args.no_figures:
            written = "the tests, their summary and sex_effects_mean.png/sex_effects_sd.png are"
        warnings.warn(
            f"sex gap across age not written ({' and '.join(_left_out(GAP_FILES, args.no_figures))}; "
            f"{written}): {err.problem}",
            UserWarning if apart else ConvergenceWarning,
            stacklevel=2,
        )
        return None, ("the two sexes cover no common ages" if apart else None)


def _sex_figures(tests, gap, gap_target: str, names, variability: str = "lr") -> dict:
    """The figures of ``stats sex`` (the tests' alone when the gap is None: its fit failed);
    sex_effects_sd.png shows the ``--variability-test``."""
    from delssome_norms.plotting import plot_sex_effects, plot_sex_gap

    family = "regional" if (tests["family"] == "regional").any() else None
    sd_test = VARIABILITY_TESTS[variability]
    pairs = [
        ("sex_effects_mean.png", plot_sex_effects, (tests, "mu_lr"), {"family": family}),
        ("sex_effects_sd.png", plot_sex_effects, (tests, sd_test), {"family": family}),
    ]
    if gap is not None:
        named = gap["region"].dropna() if "region" in gap.columns else ()
        label = "mean cortical E/I" if gap_target == et.MEAN_TARGET else gap_target
        label = str(named.iloc[0]) if len(named) else label
        level = float(gap["level"].iloc[0])
        band = f"{100 * level:g} % bootstrap band" if gap["n_boot"].iloc[0] >= 2 else "no band"
        title = f"Sex gap in {label}: female − male median ({band})"
        pairs.insert(0, ("sex_gap.png", plot_sex_gap, (gap.assign(target=label),), {"title": title}))
    return _figures(pairs)


# ------------------------------------------------------------------------------------ groups
def _group_regions(names, path: str) -> list[str]:
    """The region names to class as sensory/association, refused when they cannot be classed."""
    from delssome_norms.datasets import SENSORY_REGIONS
    from delssome_norms.io import provenance_path, regions_path

    if names is None:
        raise InvalidInputError(
            f"its regional columns are not the 68 DK68 ones and {regions_path(path).name} (the "
            "region names that collect writes beside the table) is missing: the "
            "sensory/association groups need the regions' names",
            f"{path} (--table)",
        )
    sidecar = regions_path(path)
    if not sidecar.is_file() and provenance_path(path).is_file():
        sidecar = provenance_path(path)  # it named them (_read)
    if not any(n in SENSORY_REGIONS for n in names):
        shown = ", ".join(names[:3])
        raise InvalidInputError(
            f"names none of the DK68 sensory regions (e.g. lh_precentral; it lists {shown}, ...): "
            "the sensory/association groups are defined on DK68 region names",
            str(sidecar),
        )
    from delssome_norms.stats.region_groups import dk68_region_classes

    dk68_region_classes(names, str(sidecar))  # e.g. subcortical regions beside DK68 are refused
    return names


def _group_lines(summary, scores, alpha: float) -> list[str]:
    diff = scores["difference"]
    lines = [
        f"sensory - association E/I: mean {diff.mean():+.3f} over {len(scores)} people; "
        f"sensory higher in {100 * (diff > 0).mean():.0f} % of people"
    ]
    rows = summary[(summary["sex"] == "all") & (summary["group"] == "difference")]
    higher = int((rows["significant"] & (rows["mean"] > 0)).sum())
    lower = int((rows["significant"] & (rows["mean"] < 0)).sum())
    lines.append(
        f"per age bin: sensory > association in {higher}, < in {lower} of {len(rows)} bins "
        f"(paired t, FDR {100 * alpha:g} %)"
    )
    return lines


def _check_df(df: int, flag: str = "--df") -> None:
    """A spline's degrees of freedom: 3 to 12."""
    if not 3 <= df <= 12:
        raise InvalidInputError(f"must be an integer from 3 to 12, got {df}", flag)


def _curves(args: argparse.Namespace, table, site, regions):
    """The curves across age, or None (with a one-line warning) when their fit did not converge:
    the scores and the per-bin summary do not depend on it. Another refusal of the table (e.g.
    one sex only) stays an error, naming ``--no-trajectories``."""
    import warnings

    from delssome_norms import stats
    from delssome_norms.errors import ConvergenceWarning

    try:
        return _call(
            args.table, stats.region_group_trajectories, table, site=site, df=args.df,
            regions=regions,
        )  # fmt: skip
    except InvalidInputError as err:
        if NOT_CONVERGED not in err.problem:
            raise InvalidInputError(
                f"{err.problem}; --no-trajectories writes the scores and the per-bin summary "
                "without the curves across age",
                err.source,
            ) from None
        written = "the scores and the per-bin summary are"
        if not args.no_figures:
            written = "the scores, the per-bin summary and region_group_people.png, without curves, are"
        warnings.warn(
            "curves across age not written "
            f"({' and '.join(_left_out(CURVE_FILES, args.no_figures))}; {written}): "
            f"{err.problem}; --no-trajectories skips them without this warning",
            ConvergenceWarning,
            stacklevel=2,
        )
        return None


def run_groups(args: argparse.Namespace) -> int:
    """Write the region-group scores, per-bin summary, trajectories and their figures (exit status
    :data:`CURVES_FAILED` when the curves' fit is refused: the rest is written)."""
    import warnings

    _check_alpha(args.alpha)
    _check_df(args.df)
    bins = _parse_bins(args.bins)
    out = _check_out(args.out_dir, args.table, GROUP_FILES)
    table, names, site = _read(args.table)
    table = handle_flagged(table, args.exclude_flagged, f"{args.table} (--table)")
    settings = {"bins": list(bins), "df": args.df, "trajectories": not args.no_trajectories}
    meta = _provenance("stats groups", args, settings, site, table, names)
    regions = _group_regions(names, args.table)
    from delssome_norms import stats

    scores = _call(args.table, stats.region_group_scores, table, regions=regions)
    age = scores["age_in_years"]
    inside = (age >= bins[0]) & (age < bins[-1])
    if not inside.any():
        raise InvalidInputError(
            f"no person's age lies in [{bins[0]:g}, {bins[-1]:g}) (ages {age.min():g} to {age.max():g})",
            "--bins",
        )
    if not inside.all():
        warnings.warn(
            f"{int((~inside).sum())} people are outside the --bins range [{bins[0]:g}, "
            f"{bins[-1]:g}) and left out of region_group_summary.csv",
            stacklevel=2,
        )
    summary = _call(
        args.table, stats.region_group_summary, table, age_bins=bins, alpha=args.alpha,
        regions=regions,
    )  # fmt: skip
    curves = None if args.no_trajectories else _curves(args, table, site, regions)
    failed = curves is None and not args.no_trajectories
    figures = {}
    if not args.no_figures:
        figures = _call(args.table, _figures, _group_figures(args, table, site, regions, curves))
    tables = {"region_group_summary.csv": summary, "region_group_scores.csv": scores}
    if curves is not None:
        tables["region_group_trajectories.csv"] = curves
    try:
        written = _write(out, tables, figures, GROUP_FILES, meta)
    finally:
        _close(figures)
    for line in _group_lines(summary, scores, args.alpha):
        print(line)
    print(f"wrote {len(written)} files to {out}{SIDECARS}")
    if failed:
        drawn = "" if args.no_figures else "; region_group_people.png shows the people without them"
        print(
            f"not written: {', '.join(_left_out(CURVE_FILES, args.no_figures))}: the curves "
            f"across age did not converge (the warning names the cause){drawn}"
        )
    return CURVES_FAILED if failed else 0


def _group_figures(args: argparse.Namespace, table, site, regions, curves) -> list:
    """The figures of ``stats groups`` as ``_figures`` pairs: both with the curves, or the people
    alone (saying why in the figure) when the curves did not converge."""
    from delssome_norms.plotting import plot_ei_vs_age_by_group, plot_region_group_trajectories

    if curves is not None:
        style = {"site": site, "df": args.df, "regions": regions, "curves": curves}
        return [
            ("region_group_trajectories.png", plot_region_group_trajectories, (table,), style),
            ("region_group_people.png", plot_ei_vs_age_by_group, (table,), style),
        ]
    model = f"--df {args.df} per sex" + (" with site offsets" if site is not None else "")
    why = (
        "--no-trajectories"
        if args.no_trajectories
        else f"their fit ({model}) did not converge for these people"
    )
    note = (
        f"No curves: {why}, so region_group_trajectories.csv/.png are not written"
        + ("" if args.no_trajectories else "; stats groups' warning names the cause")
        + ". Points: each person's mean E/I over the group's regions."
    )
    kwargs = {"regions": regions, "with_curves": False, "note": note}
    return [("region_group_people.png", plot_ei_vs_age_by_group, (table,), kwargs)]
