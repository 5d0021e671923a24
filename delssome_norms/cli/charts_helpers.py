"""Helpers of ``charts plot``, ``brainmap``, ``report`` and ``compare`` (and of ``stats``):
finding a person in a score table, checking the scores came from the chart, figure files, model
options (the chart-model options of ``charts fit``/``compare``), comma-separated option lists,
a table's regions sidecar and the people whose E/I fit is flagged (``--exclude-flagged``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from delssome_norms.errors import InvalidInputError
from delssome_norms.io import ei_table as et

if TYPE_CHECKING:
    from delssome_norms.cli.person_report import Atlas

SITE_COLUMNS = (et.SITE_SCANNER, et.SITE)


def csv_list(text: str | None, option: str = "--targets") -> list[str] | None:
    """The items of a comma-separated option (``None`` when the option was not given)."""
    if text is None:
        return None
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise InvalidInputError(f"expected a comma-separated list, got {text!r}", option)
    return items


def sidecar_atlas(path: str | Path) -> Atlas:
    """The atlas named by a ``<table>.regions.csv`` sidecar (``column, region_index, region``,
    as ``collect`` writes it)."""
    from delssome_norms.cli.person_report import Atlas
    from delssome_norms.io import read_regions_sidecar

    names = read_regions_sidecar(path)
    return Atlas(len(names), names, str(path))


def _figure_format(out: Path, option: str = "--out") -> str:
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in ("png", "pdf", "svg"):
        raise InvalidInputError("the figure must end in .png, .pdf or .svg", option)
    return fmt


def _save_figure(fig, out: Path) -> None:
    from delssome_norms.io import atomic_path

    with atomic_path(out) as tmp:
        fig.savefig(tmp, format=_figure_format(out), dpi=150, bbox_inches="tight", pad_inches=0.1)


def _named(path, option: str) -> str:
    """An input file as errors name it: ``scores.csv (--scores)``."""
    return f"{path} ({option})"


def _person_row(table, subject: str, source: str):
    """The one row of ``table`` whose ``subject_id`` is ``subject`` (InvalidInputError otherwise)."""
    if "subject_id" not in table.columns:
        raise InvalidInputError("has no subject_id column to find --subject in", source)
    ids = table["subject_id"].astype(str)
    hits = table[ids.str.strip() == str(subject).strip()]  # "pat-00 " is pat-00 (as in scoring)
    if hits.empty:
        some = ", ".join(map(str, ids.iloc[:3]))  # a missing ID is NaN under pandas 3
        raise InvalidInputError(
            f"has no subject_id {subject!r} ({len(table)} people, e.g. {some})", source
        )
    if len(hits) > 1:
        long = "target" in table.columns  # `charts score --layout long`: a row per target
        hint = "; pass the wide score table (`charts score`, default --layout wide)" * long
        raise InvalidInputError(f"has {len(hits)} rows with subject_id {subject!r}{hint}", source)
    row = hits.iloc[0]
    _check_numbers(row, source)
    return row


SCORE_SUFFIXES = ("_centile", "_z", "_harmonised")
"""Suffixes of the numeric columns of a wide score table (``<target>_centile`` ...)."""


def _numeric_column(column: str) -> bool:
    """A column of a score or E/I table that holds numbers: the age, an E/I target or a score."""
    return column == et.AGE or column.startswith(et.TARGET_PREFIX) or column.endswith(SCORE_SUFFIXES)


def _check_numbers(row, source: str) -> None:
    """Refuse a person's row whose age, E/I or score cell is text that is not a number (a decimal
    comma, ``9,662``, as a spreadsheet in many locales writes it), naming the column and the
    value: the report would stop on it with a bare ValueError."""
    from delssome_norms.io.decimal_comma import _DECIMAL_COMMA

    for column, value in row.items():
        if not isinstance(value, str) or not _numeric_column(str(column)):
            continue
        text = value.strip()
        try:
            float(text)
            continue
        except ValueError:
            pass
        if not text:  # an empty cell: missing (each use says so)
            continue
        who = f"subject {row.get(et.SUBJECT_ID, '?')!s}"
        if _DECIMAL_COMMA.fullmatch(text):
            raise InvalidInputError(
                f"column {column} of {who} holds {text!r}, written with a decimal comma: write "
                f"the table's numbers with a decimal point ({text.replace(',', '.')}), as "
                "`charts score` and `collect` write them",
                source,
            )
        raise InvalidInputError(f"column {column} of {who} holds {text!r}, not a number", source)


def _person_value(row, column: str, source: str) -> float:
    from delssome_norms.cli.person_report import flag_note

    if column not in row.index:
        raise InvalidInputError(
            f"has no column {column}; pass the wide score table of `charts score`", source
        )
    value = float(row[column])
    if value != value:  # NaN
        raise InvalidInputError(
            f"subject {row['subject_id']!s} has no {column} value{flag_note(row)}", source
        )
    return value


def _person_mark(row, target: str, source: str, value: float | None = None) -> dict:
    """What ``plot_chart_centiles(person=...)`` needs from a wide score row."""
    for col in ("age_in_years", "sex"):
        if col not in row.index:
            raise InvalidInputError(f"has no {col} column", source)
    centile = _person_value(row, f"{target}_centile", source)
    if value is None:
        value = _person_value(row, f"{target}_harmonised", source)
    return {
        "subject_id": str(row["subject_id"]),
        "sex": str(row["sex"]),
        "age_in_years": float(row["age_in_years"]),
        "value": value,
        "centile": centile,
        "z": _person_value(row, f"{target}_z", source),
    }


NO_SITE = "not recorded"
"""What a report says for a person whose scored table gives no site."""


def _site(row) -> str:
    for col in SITE_COLUMNS:
        if col in row.index and str(row[col]) not in ("", "nan"):
            return str(row[col])
    return NO_SITE


def _subtitle(row, flags: str = "") -> str:
    from delssome_norms.cli.person_report import _age_text

    age = _age_text(row).removesuffix(" years")  # a table without the column: "unknown"
    text = f"age {age}, {row.get('sex', 'sex unknown')}, site {_site(row)}"
    return text + (f" [flag: {flags.replace(';', ', ')}]" if flags else "")


def _check_scored_by(chart, mark: dict, source: str, target: str = et.MEAN_TARGET, row=None) -> None:
    """Refuse scores made with another chart: the report would put them on this chart's fan.

    The harmonised value of a score is this chart's population quantile at the person's centile,
    so the chart must give that value back the same centile (to rounding of the score file).
    That cannot tell a chart from the same chart adapted to new sites (their population curves
    are one), so the person's site (``row``, the score row) must be known to the chart exactly
    when the scores are not flagged ``unseen_site``.
    """
    import warnings

    if target not in chart.targets_:
        raise InvalidInputError(f"the chart has no {target} target", "--chart")
    if row is not None:
        _check_scored_site(chart, row, source)
    with warnings.catch_warnings():  # ages outside the chart were flagged when scored
        warnings.simplefilter("ignore")
        params = chart.predict_parameters(
            [mark["age_in_years"]], mark["sex"], targets=[target], extrapolate=True
        )
    theta = [params[p][:, 0] for p in chart.family_.params]
    again = float(chart.family_.cdf(mark["value"], *theta)[0])
    if abs(again - mark["centile"]) > 1e-4:
        raise InvalidInputError(
            f"the scores of {mark['subject_id']} were not made with this chart: it puts their "
            f"harmonised {target} at centile {again:.4f}, the scores say {mark['centile']:.4f}; "
            "give --chart the chart that scored them",
            source,
        )


def check_scores_chart(chart, scores: str | Path, source: str) -> None:
    """Refuse scores whose provenance sidecar (``charts score`` writes it) names, by its content
    digest, another chart than ``chart``. Two charts fitted alike (the shipped chart and one
    fitted on the reference table) give centiles too close for :func:`_check_scored_by` to tell
    apart, and the report would name the wrong chart. Scores without a readable sidecar, and a
    chart or sidecar without the digest (charts saved before it), are left to that check."""
    import json

    from delssome_norms.io import provenance_path

    try:
        meta = json.loads(provenance_path(scores).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return
    made = meta.get("chart") if isinstance(meta, dict) else None
    recorded = made.get("content_sha256") if isinstance(made, dict) else None
    ours = (getattr(chart, "_saved_sha256", None) or {}).get("content_sha256")
    if isinstance(recorded, str) and ours and recorded != ours:
        raise InvalidInputError(
            f"were not made with this chart: {provenance_path(scores).name} says the chart "
            f"{made.get('chart')} scored them (content_sha256 {recorded[:12]}...), --chart has "
            f"content_sha256 {ours[:12]}...; give --chart the chart that scored them, or score "
            "the table again with this chart",
            source,
        )


def _check_scored_site(chart, row, source: str) -> None:
    """Refuse a score row whose site the chart knows but that was scored without it (flag
    ``unseen_site``: made with the chart before ``charts adapt``), or that was scored on a site's
    curves the chart does not have (made with an adapted chart): the report would describe the
    person's centile against curves that did not make it."""
    from delssome_norms.cli.person_report import _row_flags
    from delssome_norms.norms.chart_table import FLAG_UNSEEN_SITE, missing_site_text

    column = chart.site_column_
    if column not in row.index or not chart.site_effects_:
        return
    site = missing_site_text(row[column])
    if not site:
        return  # no site: population curves whatever the chart
    unseen = FLAG_UNSEEN_SITE in _row_flags(row).split(";")
    known = site in chart.sites_
    who = f"the scores of {row['subject_id']!s} (site {site})"
    if known and unseen:
        how = " (adapted from its controls)" if site in chart.adapted_sites_ else ""
        raise InvalidInputError(
            f"{who} were made with a chart that did not know the site (flag {FLAG_UNSEEN_SITE}), "
            f"but this chart knows it{how}; score them again with this chart (charts score "
            "--chart)",
            source,
        )
    if not known and not unseen:
        raise InvalidInputError(
            f"{who} were made on that site's curves, which this chart does not have; give "
            "--chart the chart that scored them (e.g. the one charts adapt wrote for the site)",
            source,
        )


def _random_sites(text: str) -> tuple[str, ...]:
    """``--random-sites``: ``mu,sigma`` -> ("mu", "sigma"); ``none`` -> ()."""
    if text.strip().lower() == "none":
        return ()
    items = [v.strip() for v in text.split(",") if v.strip()]
    bad = [v for v in items if v not in ("mu", "sigma", "nu", "tau")]
    if bad or not items:
        raise InvalidInputError(
            f"unknown parameter(s) {', '.join(bad) or repr(text)}: list mu, sigma, nu, tau "
            "(comma-separated) or give none",
            "--random-sites",
        )
    return tuple(dict.fromkeys(items))


COMPARE_OPTIONS = {
    "family": "--families",
    "mu_df": "--mu-dfs",
    "sigma_df": "--sigma-df",
    "nu_df": "--nu-df",
    "tau_df": "--tau-df",
    "site_column": "--site-column",
    "max_iter": "--max-iter",
    "random_sites": "--random-sites",
}


FIT_OPTIONS = {
    "family": "--family",
    "mu_df": "--mu-df",
    "sigma_df": "--sigma-df",
    "nu_df": "--nu-df",
    "tau_df": "--tau-df",
    "site_column": "--site-column",
    "max_iter": "--max-iter",
    "random_sites": "--random-sites",
}


def _check_models(
    families: list[str], mu_dfs: list[int], flags: dict = COMPARE_OPTIONS, **options
) -> None:
    """Refuse an unknown family or a bad df before any fit, naming the option (the chart's own
    check names only ``GrowthChart``, and came after the fits of the models listed before)."""
    from delssome_norms.norms import GrowthChart

    for family in families:
        for df in mu_dfs:
            try:
                GrowthChart(family, mu_df=df, **options)._validate_params()
            except InvalidInputError as err:
                name = err.problem.split(" ", 1)[0]
                named = name != "family" and _fits_another(families, family, df, options)
                which = f"family {family}: " if named else ""
                raise InvalidInputError(which + err.problem, flags.get(name, err.source)) from None


def _fits_another(families: list[str], family: str, df: int, options: dict) -> bool:
    """Whether the options that ``family`` refuses suit another family of the list (compare's
    --families): then the error names the family (e.g. --random-sites nu and NO)."""
    from delssome_norms.norms import GrowthChart

    for other in families:
        if other == family:
            continue
        try:
            GrowthChart(other, mu_df=df, **options)._validate_params()
        except InvalidInputError:
            continue
        return True
    return False


CHART_OPTION_HELP = {
    "family": ("--family", "distribution family: {choices}"),
    "mu_df": ("--mu-df", "df of mu's bs(age) term"),
    "sigma_df": ("--sigma-df", "df of sigma's bs(age) term"),
    "nu_df": ("--nu-df", "df of nu's bs(age) term (skewness changing with age; 3-30)"),
    "tau_df": ("--tau-df", "df of tau's bs(age) term (tail weight changing with age; 3-30)"),
    "site_column": ("--site-column", "site column"),
    "mu_sex": ("--no-mu-sex", "fit mu without the sex term"),
    "sigma_sex": ("--no-sigma-sex", "fit sigma without the sex term"),
    "algorithm": (
        "--algorithm",
        "newton: exact penalised-likelihood optimum; rs: R gamlss's RS algorithm step by step "
        "(reproduces R's output, slower)",
    ),
    "max_iter": ("--max-iter", "maximum iterations"),
}
"""GrowthChart parameters offered as ``charts fit``/``compare`` options: flag and help."""


COMPARE_MODEL_OPTIONS = tuple(n for n in CHART_OPTION_HELP if n not in ("family", "mu_df"))
"""The chart-model options of ``charts compare`` (its --families and --mu-dfs list several)."""


def _fit_model_options(
    parser: argparse.ArgumentParser, names: tuple[str, ...] = tuple(CHART_OPTION_HELP)
) -> None:
    """The chart-model options ``names`` (default: all, as ``charts fit`` has them) and
    ``--random-sites``: ``charts compare`` compares models of the design ``charts fit`` would
    fit with the same options (one sex, a site model for small sites)."""
    group = _chart_model_options(parser, names)
    group.add_argument(
        "--random-sites",
        default="mu,sigma",
        metavar="LIST",
        help="parameters with a site random intercept: comma-separated mu, sigma, nu, tau "
        "(those of the family), or none (default mu,sigma). With few people per site (e.g. "
        "16-43) sigma's site variance can be poorly determined and the fit not converge: try mu",
    )


def _chart_model_options(
    parser: argparse.ArgumentParser, names: tuple[str, ...] = tuple(CHART_OPTION_HELP)
) -> argparse._ArgumentGroup:
    """Add GrowthChart options to ``parser``, their defaults read from ``GrowthChart()``.

    ``--no-mu-sex``/``--no-sigma-sex`` turn the default-on sex terms off. Deferred
    (:func:`~delssome_norms.cli.options.defer`) because the chart package imports torch.
    """
    from delssome_norms.norms import FAMILIES, GrowthChart

    defaults = GrowthChart().get_params()
    names_of = {"family": tuple(FAMILIES), "algorithm": ("newton", "rs")}
    choices = {"algorithm": names_of["algorithm"]}
    group = parser.add_argument_group("chart model (defaults: GrowthChart's)")
    for name in names:
        flag, text = CHART_OPTION_HELP[name]
        default = defaults[name]
        if isinstance(default, bool):
            group.add_argument(flag, dest=f"no_{name}", action="store_true", help=text)
            continue
        kwargs = {"choices": choices[name]} if name in choices else {}
        kind = type(default) if isinstance(default, (int, float)) else str
        if default is None:  # nu_df, tau_df: no age term (constant) unless a df is given
            kind, shown = int, "none: constant over age"
        else:
            shown = default
        help_text = text.format(choices=", ".join(names_of.get(name, ())))
        group.add_argument(
            flag, type=kind, default=default, help=f"{help_text} (default {shown})", **kwargs
        )
    return group


def handle_flagged(table, exclude: bool, source: str):
    """Warn about (or, with ``exclude``, drop and count) people whose E/I fit is flagged.

    The CLI's wording of :func:`delssome_norms.norms.flagged_rows.handle_flagged` (the same
    handling as ``exclude_flagged`` of ``GrowthChart.fit`` and the statistics): shared by
    ``charts fit`` and ``stats sex``/``groups`` (their ``--exclude-flagged``), which print how
    many people were left out.

    Parameters
    ----------
    table : DataFrame
        The cohort table, one row per person.
    exclude : bool
        Leave the flagged people out (``--exclude-flagged``); otherwise keep them and warn.
    source : str
        The table as errors name it.

    Returns
    -------
    DataFrame
        ``table``, or its unflagged rows (new index) with ``exclude``, without the
        ``fit_flagged`` column (dealt with here: the library does not warn about it again).
    """
    from delssome_norms.norms.flagged_rows import handle_flagged as handle

    return handle(table, exclude, source, option="--exclude-flagged", report=print, stacklevel=3)
