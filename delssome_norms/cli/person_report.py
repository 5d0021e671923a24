"""The one-page Markdown report of a scored person (``charts report``)."""

from __future__ import annotations

from delssome_norms.cli.charts_helpers import NO_SITE, sidecar_atlas
from delssome_norms.errors import InvalidInputError
from delssome_norms.io import ei_table as et
from delssome_norms.norms.chart_table import (
    FLAG_AGE,
    FLAG_AGE_EXTRAPOLATED,
    FLAG_FEW_CONTROLS,
    FLAG_MISSING,
    FLAG_SITE_UNRELIABLE,
    FLAG_UNRELIABLE,
    FLAG_UNSEEN_SEX,
    FLAG_UNSEEN_SITE,
    table_fit_flagged,
    table_interval_uncalibrated,
)


def interval_lines(row) -> list[str]:
    """Report rows for the centile's 90 % interval and the fit-quality flag (scores of a table
    from ``collect``; nothing for tables without them)."""
    import math

    lines = []
    lo, hi = row.get(f"{et.MEAN_TARGET}_centile_lo"), row.get(f"{et.MEAN_TARGET}_centile_hi")
    try:
        lo_f, hi_f = float(lo), float(hi)
    except (TypeError, ValueError):
        lo_f = hi_f = math.nan
    if math.isfinite(lo_f) and math.isfinite(hi_f):
        lines.append(
            f"| 90 % interval of the centile | {100 * lo_f:.1f}-{100 * hi_f:.1f} % (from the "
            "interval of the fitted E/I; read the centile with it) |"
        )
    frame = row.to_frame().T
    if table_interval_uncalibrated(frame, "scores")[0]:
        lines.append(
            "| interval calibration | **not covered**: the fit's settings (budget, scan length, "
            "TR, searches, atlas, maps or steps) are not those the intervals were calibrated at, "
            "so both intervals may be too narrow; collect's warning (and the person's run.json "
            "`calibration_differences`, or `EIResult.interval`) says which |"
        )
    if table_fit_flagged(frame, "scores")[0]:  # False without the column
        reasons = str(row.get(et.FIT_FLAG_REASONS, "") or "").replace(";", ", ")
        if "fc_outside_model_range" in reasons:  # the data, not the fit: nothing to read
            lines.append(
                f"| fit quality | **E/I not interpretable** ({reasons}): the person's mean FC "
                "(`empirical_mean_fc` in run.json) lies outside what the model reproduces "
                "(global signal regression, or heavy smoothing), so the fitted E/I, and this "
                "centile, do not measure this person's E/I; refit with FC computed without "
                "global signal regression (docs/results.md, 'Reading the intervals and the "
                "flag') |"
            )
        else:
            lines.append(
                f"| fit quality | **flagged as poor** ({reasons or 'no reason recorded'}): this "
                "person's E/I, and so the centile, may be wrong; see the README, 'Reading the "
                "intervals and the flag' |"
            )
    return lines


NO_SITE_MEANING = (
    "the scored table has no site for this person, so the scores use the population average "
    "without a site offset; add a site column to the demographics and run `collect` again, then "
    "`delssome-norms charts adapt` can estimate the site from its controls; score again"
)


def _flag_meaning(flag: str, no_site: bool) -> str:
    return NO_SITE_MEANING if flag == FLAG_UNSEEN_SITE and no_site else FLAG_MEANING[flag]


FLAG_MEANING = {
    FLAG_UNSEEN_SEX: "the chart was fitted on people of the other sex only: the scores use that "
    "sex's curves, which may not describe this person; score them on a chart fitted on both sexes",
    FLAG_UNSEEN_SITE: "the person's site is not in the chart, so the scores use the population "
    "average without a site offset; a site effect then shifts every centile. Estimate the "
    "site's offsets from its controls with `delssome-norms charts adapt` and score again",
    FLAG_AGE: "the person's age lies outside the ages the chart was fitted on: the scores are "
    "extrapolated (`charts score --extrapolate`) and may be far off",
    FLAG_AGE_EXTRAPOLATED: "the person's age lies inside the chart's range but beyond the ages "
    "of its reference people (the range runs from the youngest's whole year to the oldest's): "
    "the curves there continue the spline past the data",
    FLAG_MISSING: "some of the person's E/I values are missing: those targets have no score",
    FLAG_UNRELIABLE: "the chart of some target (or its offsets for the person's site) did not "
    "converge or has a degenerate tail: those scores are not trustworthy",
    FLAG_SITE_UNRELIABLE: "the chart's fitted offsets of the person's training site (typically a "
    "site of very few people) make that site's curves degenerate for some targets: those scores "
    "are not trustworthy; refit the chart with `--random-sites mu`, or pool or drop the site",
    FLAG_FEW_CONTROLS: "the person's site was adapted from fewer than 30 controls: its offsets, "
    "and so the centiles, are uncertain",
}
"""What a score flag means for the reader of a report (poor_fit and interval_uncalibrated have
their own rows, :func:`interval_lines`)."""


def report_markdown(
    row,
    mark: dict,
    z,
    centiles,
    top: int,
    chart_label: str,
    source: str,
    site: str,
    atlas: Atlas | None = None,
    unreliable: set[str] | frozenset[str] = frozenset(),
) -> str:
    """The Markdown of ``charts report`` for one scored person (``site``: their site label;
    ``atlas``: the scores' regions, default DK68; for another atlas no brain map is shown;
    ``unreliable``: the targets whose charts are unreliable for the person,
    :func:`unreliable_targets`: their regions are listed apart and left out of the counts and
    the ranking)."""
    import numpy as np

    from delssome_norms.plotting.person import centile_text

    atlas = atlas or Atlas.dk68()
    flags = [f for f in _row_flags(row).split(";") if f]
    bad = [k for k in unreliable_regions(set(unreliable), atlas) if k < len(z)]
    z = np.array(z, dtype=np.float64)
    z[bad] = np.nan  # their z can be 1e20: neither deviant nor counted
    finite = np.isfinite(z)
    order = [k for k in np.argsort(-np.abs(z), kind="stable") if finite[k]][:top]
    absent = set(unscored_regions(row, n=atlas.n))
    missing = [atlas.name(k) for k in np.flatnonzero(~finite) if k not in absent and k not in bad]
    where = "; grey on the brain map" if atlas.is_dk68 else ""
    n_deviant = int((np.abs(z[finite]) > 1.96).sum())
    unseen = FLAG_UNSEEN_SITE in flags
    no_site = site == NO_SITE
    why = "the scored table gives no site for this person" if no_site else f"{site} is not in the chart"
    whose, median_of = (
        (f"the chart's population average, without a site offset ({why})", "age and sex")
        if unseen
        else ("the person's own site's chart", "age, sex and site")
    )  # fmt: skip
    lines = [
        f"# E/I report: {mark['subject_id']}",
        "",
        f"Scores from `{source}` against {chart_label}. Centiles (0-100 %) are on {whose}; "
        f"z = Phi^-1(centile), so 0 is the chart median for their {median_of}; the "
        "harmonised E/I is the same centile on the site-free chart.",
        "",
        "| | |",
        "|---|---|",
        f"| age | {mark['age_in_years']:.1f} years |",
        f"| sex | {mark['sex']} |",
        f"| site | {site} |",
        f"| mean E/I (harmonised) | {mark['value']:.4f} |",
        f"| mean E/I centile | {centile_text(mark['centile'])} ({100 * mark['centile']:.1f} %) |",
        *interval_lines(row),
        f"| mean E/I z | {mark['z']:+.2f} |",
        f"| regions with abs(z) > 1.96 | {n_deviant} of {int(finite.sum())} |",
        f"| expected by chance | about {0.05 * finite.sum():.1f} (5 % of a typical person's "
        "regions lie beyond +-1.96) |",
        *(
            [f"| regions without a score | {len(missing)}: {', '.join(missing[:6])} |"]
            if missing
            else []
        ),
        *(
            [
                f"| regions with an unreliable chart | {len(bad)}: "
                f"{', '.join(atlas.name(k) for k in bad[:6])}{' ...' if len(bad) > 6 else ''} "
                "(their chart did not converge or has a degenerate tail: no score to read; left "
                f"out of the counts and the ranking{where}) |"
            ]
            if bad
            else []
        ),
        *(
            [
                f"| regions not in the scores | {len(absent)} of {atlas.n} (the chart has no "
                "target for them) |"
            ]
            if absent
            else []
        ),
        *([f"| atlas | {atlas.describe()} |"] if not atlas.is_dk68 else []),
        f"| flags | {', '.join(flags) if flags else 'none'} |",
        *[f"| {f} | {_flag_meaning(f, no_site)} |" for f in flags if f in FLAG_MEANING],
        "",
        f"## The {len(order)} most deviant regions (largest abs(z))",
        "",
        "| rank | region | z | centile |",
        "|---|---|---|---|",
    ]
    for rank, k in enumerate(order, start=1):
        lines.append(f"| {rank} | {atlas.name(k)} | {z[k]:+.2f} | {centile_text(centiles[k])} |")
    lines += [
        "",
        "## Figures",
        "",
        "Mean E/I on the lifespan growth chart (bands: 2.5-97.5, 5-95, 25-75th centiles):",
        "",
        "![mean E/I on the growth chart](fan_chart.png)",
        "",
    ]
    if atlas.is_dk68:
        lines += [
            "Regional z-scores at the DK68 region centroids (glass brain; red above, blue below "
            "the median"
            + ("; grey, hatched: regions whose chart is unreliable, without a score" if bad else "")
            + "):",
            "",
            "![regional z-scores](brain_map_z.png)",
            "",
        ]
    else:
        lines += [
            f"No brain map: the scores are of {atlas.describe()}, and brain maps draw at the "
            "DK68 region centroids only (the package has no centroids or surfaces of this atlas).",
            "",
        ]
    return "\n".join(lines)


N_DK68 = 68
"""Regions brain maps and reports draw (the DK68 centroids and names)."""


class Atlas:
    """The regions of a score table: their names (None: unknown, named by index), how many, and
    where that was read (the table's regions sidecar, or the chart's provenance)."""

    def __init__(self, n: int, names: list[str] | None = None, where: str = "") -> None:
        self.n, self.names, self.where = int(n), names, where

    @classmethod
    def dk68(cls) -> Atlas:
        from delssome_norms.datasets import DK68_REGIONS

        return cls(N_DK68, list(DK68_REGIONS), "DK68")

    @property
    def is_dk68(self) -> bool:
        from delssome_norms.datasets import DK68_REGIONS

        if self.names is None:
            return self.n == N_DK68  # a chart that recorded only its size (no names)
        return self.names == list(DK68_REGIONS)

    def name(self, k: int) -> str:
        """Region ``k`` by name, or by index when the names are unknown."""
        return self.names[k] if self.names is not None else f"region {k} ({et.region_column(k)})"

    def describe(self) -> str:
        names = f"region names from {self.where}" if self.names else f"size from {self.where}"
        return f"an atlas of {self.n} regions, not DK68 ({names})"


def scores_atlas(scores, chart=None) -> Atlas:
    """The atlas of a score table: its ``<stem>.regions.csv`` sidecar (as ``collect`` writes one,
    and ``charts score`` copies it next to the scores) when present, else the atlas ``chart``
    (the one that scored them: ``--chart``) records in its provenance, else, without ``chart``,
    that of the chart the scores' provenance sidecar names (or, when that chart changed since,
    the atlas and size the sidecar recorded), else DK68 (older tables and charts)."""
    from pathlib import Path

    from delssome_norms.io import regions_path

    sidecar = regions_path(scores)
    if Path(sidecar).is_file():
        return sidecar_atlas(sidecar)
    if chart is None:
        chart = _sidecar_chart(scores, same_scores=False)
    found = _provenance_atlas(getattr(chart, "provenance_", None), "the chart's provenance")
    if found is None and chart is None:  # the chart is gone or changed: what the scores recorded
        meta = _scores_provenance(scores)
        recorded = {"atlas": meta.get("atlas"), "pipeline": (meta.get("chart") or {}).get("pipeline")}
        found = _provenance_atlas(recorded, "the scores' provenance sidecar")
    return found or Atlas.dk68()


def _provenance_atlas(prov, where: str) -> Atlas | None:
    """The atlas a provenance (a chart's, or the one a score table recorded) names: its
    ``atlas.regions``, else its size when not 68 (None: nothing recorded, or only 68 regions)."""
    prov = prov if isinstance(prov, dict) else {}
    atlas, pipe = prov.get("atlas") or {}, prov.get("pipeline") or {}
    atlas = atlas if isinstance(atlas, dict) else {}
    pipe = pipe if isinstance(pipe, dict) else {}
    names = atlas.get("regions")
    if isinstance(names, list) and names:
        return Atlas(len(names), [str(v) for v in names], where)
    n = pipe.get("n_regions") or atlas.get("n_regions")
    if isinstance(n, int) and n > 0 and n != N_DK68:
        return Atlas(n, None, where)
    return None


def _scores_provenance(scores) -> dict:
    """The provenance sidecar of ``scores`` (``charts score`` writes it); {} without one."""
    import json

    from delssome_norms.io.provenance import provenance_path

    try:
        meta = json.loads(provenance_path(scores).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def regional_values(row, suffix: str, source: str, atlas: Atlas | None = None):
    """The person's regional ``ei_ratio_roi_<k>_<suffix>`` values of ``atlas`` (default DK68),
    in region order (NaN where a region has none, or is not in the table: a chart fitted on some
    regions only; refused when none has one, or for scores of more regions than the atlas)."""
    import re

    import numpy as np

    atlas = atlas or Atlas.dk68()
    n = atlas.n
    pattern = re.compile(rf"{et.REGION_PREFIX}(\d+)_{re.escape(suffix)}$")
    indices = [int(m.group(1)) for c in row.index if (m := pattern.match(str(c)))]
    if indices and max(indices) >= n:
        if atlas.is_dk68:
            raise InvalidInputError(
                f"has {max(indices) + 1} regional columns, but brain maps and reports draw the "
                f"{N_DK68} DK68 regions (their centroids and names); plot another atlas with "
                "delssome_norms.plotting.plot_brain_map and its own coordinates, or put the "
                "table's regions sidecar (<scores stem>.regions.csv) next to it",
                source,
            )
        raise InvalidInputError(
            f"has {max(indices) + 1} regional columns, but {atlas.where} names {n} regions",
            source,
        )
    cols = [f"{et.region_column(k)}_{suffix}" for k in range(n)]
    missing = [c for c in cols if c not in row.index]
    if len(missing) == n:
        raise InvalidInputError(
            f"lacks {len(missing)} of the {n} regional columns (e.g. {missing[0]}); "
            "score the regions with `charts score` (wide layout)",
            source,
        )
    values = np.array([_number(row[c]) if c in row.index else np.nan for c in cols], dtype=np.float64)
    if not np.isfinite(values).any():
        raise InvalidInputError(
            f"subject {row['subject_id']!s} has no {suffix} for any region{flag_note(row)}", source
        )
    return values


def _number(cell) -> float:
    """A score cell as a number (NaN when empty or not a number)."""
    try:
        return float(cell)
    except (TypeError, ValueError):
        return float("nan")


def unscored_regions(row, suffix: str = "z", n: int = N_DK68) -> list[int]:
    """Indices of the ``n`` regions (default DK68's) whose ``<suffix>`` column is not in the
    score table (the chart that scored them has no such target)."""
    return [k for k in range(n) if f"{et.region_column(k)}_{suffix}" not in row.index]


def flag_note(row) -> str:
    flag = _row_flags(row)
    return f" (flag: {flag})" if flag else ""


def _row_flags(row) -> str:
    flag = str(row.get("flag", "") or "")
    return "" if flag == "nan" else flag


def _has_any_centile(row) -> bool:
    """Whether any ``*_centile`` column of ``row`` holds a finite number (extrapolated scores)."""
    import math

    for column in row.index:
        if str(column).endswith("_centile"):
            try:
                if math.isfinite(float(row[column])):
                    return True
            except (TypeError, ValueError):
                continue
    return False


def _age_text(row) -> str:
    try:
        return f"{float(row.get('age_in_years')):.1f} years"
    except (TypeError, ValueError):
        return "unknown"


def unreliable_targets(chart, row) -> set[str]:
    """The targets whose curves are unreliable for the person of the score ``row`` (the flag
    ``chart_unreliable`` of a wide score row is the union over its targets): those of ``chart``
    that did not converge or have a degenerate tail (:attr:`reliable_`), and, for a person of a
    site adapted with extreme offsets, that site's failing targets (as ``charts score`` flags)."""
    import numpy as np

    from delssome_norms.norms.chart_table import missing_site_text

    bad = {t for t, ok in zip(chart.targets_, np.asarray(chart.reliable_, dtype=bool)) if not ok}
    column = chart.site_column_
    site = missing_site_text(row[column]) if column and column in row.index else ""
    if site and site in (getattr(chart, "adapted_sites_", None) or {}):
        bad.update(chart._unreliable_sites([site]).get(site, []))
    return bad


def unreliable_regions(unreliable: set[str], atlas: Atlas) -> list[int]:
    """Indices of the ``atlas`` regions among the ``unreliable`` targets."""
    return [k for k in range(atlas.n) if et.region_column(k) in unreliable]


def target_flags(row, target: str, unreliable: set[str]) -> str:
    """The flags of ``target``'s score in a wide score ``row``: the row's, less ``missing_value``
    when the target has a score and ``chart_unreliable`` when its chart is not among the
    ``unreliable`` targets (both are the union over the row's targets)."""
    own = []
    for flag in _row_flags(row).split(";"):
        if flag == FLAG_MISSING and _finite(row.get(f"{target}_centile")):
            continue
        if flag == FLAG_UNRELIABLE and target not in unreliable:
            continue
        if flag:
            own.append(flag)
    return ";".join(own)


def _finite(cell) -> bool:
    import math

    return math.isfinite(_number(cell))


def check_drawable(
    row, source: str, target: str | None = None, unreliable: set[str] | None = None
) -> str:
    """Refuse scores from an unreliable chart (their z can be 1e20); warn about other flags.

    ``target``: the target drawn (its own flags are judged; None: the person's regions, drawn
    without those of ``unreliable``); ``unreliable``: the targets whose charts are unreliable
    for the person (:func:`unreliable_targets`; None when no chart is at hand, which then tells
    nothing apart: a row flagged ``chart_unreliable`` is refused).

    Returns the flags for the figure's subtitle ("" when none): the target's own, or the row's."""
    import warnings

    from delssome_norms.errors import InputWarning

    flags = _row_flags(row)
    who = f"{row['subject_id']!s}"
    if FLAG_AGE in flags.split(";") and not _has_any_centile(row):
        raise InvalidInputError(
            f"{who} (age {_age_text(row)}) lies outside the ages of the chart "
            f"that scored them (flag {FLAG_AGE}), so they have no centile or z to draw; score "
            "them with `charts score --extrapolate` to draw extrapolated scores",
            source,
        )
    if FLAG_UNRELIABLE in flags.split(";"):
        if unreliable is None:
            raise InvalidInputError(
                f"the scores of {who} are flagged {FLAG_UNRELIABLE}: the chart of some target "
                "did not converge or has a degenerate tail, and without that chart it is not "
                "known which; give --chart the chart that scored them (the other targets are "
                "drawn), or refit the chart (another family, or more people) and score again",
                source,
            )
        if not unreliable:
            raise InvalidInputError(
                f"the scores of {who} are flagged {FLAG_UNRELIABLE}, but every target of the "
                "given chart is reliable for them: they were scored with another chart; give "
                "--chart the chart that scored them",
                source,
            )
        if target is not None and target in unreliable:
            raise InvalidInputError(
                f"the {target} score of {who} is flagged {FLAG_UNRELIABLE}: the chart of "
                f"{target} did not converge or has a degenerate tail (or their site was adapted "
                "with extreme offsets), so its centile and z mean nothing to draw; draw another "
                "target, or refit the chart (another family, or more people) and score again",
                source,
            )
    if target is not None:
        flags = target_flags(row, target, unreliable or set())
    if flags:
        warnings.warn(
            f"{source}: {who} is flagged {flags}; the figure says so",
            InputWarning,
            stacklevel=3,
        )
    return flags


def scores_unreliable(scores: str, arg: str | None, row, source: str, chart=None) -> set[str] | None:
    """The targets whose charts are unreliable for the person of ``row`` (:func:`unreliable_targets`)
    by the chart that scored them: ``--chart`` (``arg``; refused when it did not make the
    scores), else, for a row flagged ``chart_unreliable``, the chart the scores' provenance
    sidecar names (``charts score`` writes it) while its ``chart.json`` and the scores are those
    of the sidecar; None without a chart (nothing is known of the targets). ``chart``: the
    chart ``arg`` names, when already loaded."""
    from delssome_norms.cli.charts_cmd import load_chart
    from delssome_norms.cli.charts_helpers import _check_scored_by, _person_mark, check_scores_chart

    if arg is not None:
        chart = chart if chart is not None else load_chart(arg, quiet=True)
        bad = unreliable_targets(chart, row)
        for target in chart.targets_:  # one reliable target the scores have: made by this chart?
            if target not in bad and _finite(row.get(f"{target}_centile")):
                _check_scored_by(chart, _person_mark(row, target, source), source, target, row=row)
                break
        check_scores_chart(chart, scores, source)  # a chart too close for the check above
        return bad
    if FLAG_UNRELIABLE not in _row_flags(row).split(";"):
        return None
    chart = _sidecar_chart(scores)
    return None if chart is None else unreliable_targets(chart, row)


def _sidecar_chart(scores: str, same_scores: bool = True):
    """The chart named by the provenance sidecar of ``scores``, when its ``chart.json`` is
    unchanged since ``charts score`` wrote the sidecar, and (``same_scores``) so are the scores
    (None otherwise: the row is then judged without a chart)."""
    from pathlib import Path

    from delssome_norms.io import file_sha256
    from delssome_norms.norms import GrowthChart
    from delssome_norms.norms.reference import load_reference_chart, reference_chart_path

    try:
        meta = _scores_provenance(scores)
        made = meta["chart"]
        folder = reference_chart_path() if made["shipped_reference"] else Path(made["chart"])
        if same_scores and meta["table_sha256"] != file_sha256(scores):
            return None
        if made["chart_json_sha256"] != file_sha256(folder / "chart.json"):
            return None
        return load_reference_chart() if made["shipped_reference"] else GrowthChart.load(folder)
    except (OSError, ValueError, KeyError, TypeError, InvalidInputError):
        return None


def grey_regions(values, unreliable: set[str] | None, atlas: Atlas, row, source: str):
    """The ``atlas`` regions to draw grey (their chart is unreliable for the person), or None when
    there are none; refused when no other region has a value to draw."""
    import numpy as np

    bad = unreliable_regions(unreliable or set(), atlas)
    if not bad:
        return None
    grey = np.isin(np.arange(atlas.n), bad)
    if not np.isfinite(np.asarray(values, dtype=np.float64)[~grey]).any():
        raise InvalidInputError(
            f"subject {row['subject_id']!s} has scores only of regions whose chart is unreliable "
            f"(flag {FLAG_UNRELIABLE}: {len(bad)} region(s)), so there is nothing to draw; refit "
            "the chart (another family, or more people) and score again",
            source,
        )
    return grey
