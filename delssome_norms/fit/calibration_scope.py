"""What an interval calibration was measured on, besides its budget, and what a fit says about it.

The floors of ``fit/data/interval_calibration.json`` were measured on synthetic truths on the
68 DK68 regions of the default template, built on and fitted with the shipped maps, at the
default integration steps (``dt_train`` and ``dt_val`` 0.005 s), on scans at the HCP timing (TR
0.72 s). A fit of another atlas, with a gradient taken from FC (another map than the truths were
built on) or with a coarser step is outside what was measured: :func:`scope_differences` names
those, one phrase each, for :func:`~delssome_norms.fit.uncertainty.calibration_differences`. The
simulation dtype is not compared.

The TR is compared against the timings at which a mode's floors were checked
(:func:`timing_difference`): the calibration's own TR and the reruns at other TRs recorded in
the file's ``tr_checks`` (``bench/ei_calibration.py --tr T --write-calibration``), each with
the coverage the shipped floors reached there and the scan length [s] it was made on. A fit's
TR is covered within :data:`TR_SLACK` of a check that covered (a rerun only for scans at least
:data:`SCAN_LENGTH_SLACK` as long as its own), or between the nearest checks on either side when
both covered, for scans at least as long as the shortest the two cover, interpolated linearly
in TR (taken as covered on the assumption that coverage changes smoothly with the sampling, not
measured there); anything else, and above all a TR near a check that under-covered, is a
difference. So surrogate mode, checked at TR 0.72 s (432-s scans) and 2.0 s (480-s scans),
covers 0.648-2.2 s (scans of at least 410-456 s); Euler mode, checked at TR 1.0 s as well
(covered 0.91 / 0.91) and whose intervals covered only 0.84 / 0.85 at TR 2.0 s, covers
0.648-1.1 s. A result written before the TR was compared
is judged by it when read (:func:`judge_timing_when_read`).

This module also builds the sentence a fit whose calibration does not apply says
(:func:`uncalibrated_note`, shared by ``fit.estimate_ei`` and
:class:`~delssome_norms.pipeline.EIResult`) and compares the calibrations of a cohort table's
subjects (:func:`calibration_mix`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import FitQualityWarning
from delssome_norms.io.manifest_tr import positive_seconds

CALIBRATION_ATLAS = "DK68"
"""Atlas of the calibration's truths (a calibration may record another as ``settings.atlas``)."""
CALIBRATION_DT = 0.005
"""Train and validation step [s] of a calibration that does not record ``dt_train``/``dt_val``."""
FC_GRADIENT_MAPS = {"subject FC": "subject FC gradient", "cohort FC": "cohort FC gradient"}
"""Design sources (``build_space``: ``"...; gradient: <source>"``) whose gradient comes from FC."""
CALIBRATION_TR = 0.72
"""TR [s] of a calibration that does not record ``tr`` (the shipped floors are for HCP timing)."""
TR_SLACK = 0.1
"""A TR within this fraction of a checked one counts as that timing (0.72 s: 0.648-0.792 s)."""
SCAN_LENGTH_SLACK = 0.95
"""A scan shorter than this fraction of a calibration's (or a timing check's) is not covered by
it (one TR either way of the same protocol is not a difference)."""
FALLBACK_PHRASE = "searches combined by best (fewer than two searches had a usable test row)"
"""Difference of a ``combine="mean"`` fit whose estimate fell back to the best search."""


def atlas_name(n_regions: int, regions: Sequence[str] | None) -> str:
    """ "DK68" for the DK68 regions (68 regions without names are taken in DK68 order, as the
    shipped maps are), else ``custom-<N>``."""
    if regions is None:
        return CALIBRATION_ATLAS if n_regions == len(DK68_REGIONS) else f"custom-{n_regions}"
    return CALIBRATION_ATLAS if tuple(regions) == DK68_REGIONS else f"custom-{n_regions}"


def fit_scope(settings: Any, subject: Any = None, design: str | None = None) -> dict[str, Any]:
    """What :func:`scope_differences` compares of a fit: its steps [s], and with ``subject``
    (``SubjectInputs``) its TR [s] (:func:`timing_difference`), atlas and whether its gradient
    comes from FC (``design``: the description ``build_space`` gives; without it, from the
    subject's maps and ``settings.maps``)."""
    out: dict[str, Any] = {"dt_train": float(settings.dt_train), "dt_val": float(settings.dt_val)}
    if subject is not None:
        out["tr"] = float(subject.tr)
        out["atlas"] = atlas_name(subject.n_regions, subject.regions)
        if design is not None:
            source = design.split("gradient: ", 1)[-1].strip() if "gradient: " in design else ""
            out["fc_gradient"] = FC_GRADIENT_MAPS.get(source)
        elif subject.uses_default_maps(settings.maps) or subject.gradient is not None:
            out["fc_gradient"] = None
        else:
            out["fc_gradient"] = FC_GRADIENT_MAPS["subject FC"]
    return out


def scope_differences(ref: Mapping[str, Any], fit: Mapping[str, Any]) -> list[str]:
    """Phrases for what the calibration's truths were not (``ref``: a mode's ``settings`` in the
    calibration file; ``fit``: :func:`fit_scope`, and ``combined_by`` from the estimate); a key
    the fit lacks is not compared."""
    out = []
    if fit.get("combined_by") == "best":
        out.append(FALLBACK_PHRASE)
    ref_atlas = str(ref.get("atlas") or CALIBRATION_ATLAS)
    if fit.get("atlas") is not None and fit["atlas"] != ref_atlas:
        out.append(f"atlas {fit['atlas']} (calibrated on {ref_atlas})")
    if fit.get("fc_gradient") and ref.get("maps") != "fc-gradient":
        out.append(
            f"maps {fit['fc_gradient']} (calibrated with the maps its truths were built on; a "
            "gradient from FC is another map)"
        )
    for key in ("dt_train", "dt_val"):
        step, ref_step = fit.get(key), float(ref.get(key) or CALIBRATION_DT)
        if step is not None and step > ref_step * (1 + 1e-9):
            out.append(
                f"{key} {step:g} s (calibrated at {ref_step:g} s; a coarser step is not measured)"
            )
    return out


def timing_floors(calibration: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The floors [log units] a mode's intervals use at each timing, sorted by TR [s]: the
    calibration's own (``floor_mean``, ``floor_region`` at its TR) and those measured at other
    TRs (the file's ``timing_floors``: ``bench/ei_calibration.py --tr T
    --write-timing-floors``). Each is a dict with ``tr``, ``floor_mean`` and ``floor_region``."""
    ref = calibration.get("settings") or {}
    own = {
        "tr": float(ref.get("tr") or CALIBRATION_TR),
        "floor_mean": float(calibration.get("floor_mean", 0.0)),
        "floor_region": float(calibration.get("floor_region", 0.0)),
    }
    others = [
        {k: float(e[k]) for k in ("tr", "floor_mean", "floor_region")}
        for e in calibration.get("timing_floors") or []
        if abs(float(e["tr"]) - own["tr"]) > 1e-9
    ]
    return sorted([own, *others], key=lambda e: e["tr"])


def floors_at(calibration: Mapping[str, Any], tr: float | None) -> dict[str, float]:
    """The floors (``floor_mean``, ``floor_region`` [log units]) of a fit at TR ``tr`` [s].

    The irreducible error the floors stand for grows as frames get sparser: at TR 2.0 s (480-s
    scans) Euler mode's own floors, measured at TR 0.72 s, covered 0.84 / 0.85 (mean /
    regions) where 0.90 was asked for (``bench/results/ei_calibration_tr2.json``). Floors
    measured at other TRs (:func:`timing_floors`) are therefore interpolated linearly in TR
    between the nearest measured timings on either side, held constant beyond the first and
    the last, and never below the calibration's own floors (a floor measured on another set of
    truths only widens). ``tr`` None (unknown) gives the own floors."""
    entries = timing_floors(calibration)
    own = {k: float(calibration.get(k, 0.0)) for k in ("floor_mean", "floor_region")}
    if tr is None or len(entries) == 1:
        return own
    below = [e for e in entries if e["tr"] <= tr]
    above = [e for e in entries if e["tr"] >= tr]
    lo = below[-1] if below else above[0]
    hi = above[0] if above else below[-1]
    weight = 0.0 if hi["tr"] == lo["tr"] else (tr - lo["tr"]) / (hi["tr"] - lo["tr"])
    return {
        k: max(own[k], (1 - weight) * lo[k] + weight * hi[k]) for k in ("floor_mean", "floor_region")
    }


def _check_applies(calibration: Mapping[str, Any], check: Mapping[str, Any]) -> bool:
    """Whether a timing check still says something of the intervals now made at its TR: coverage
    only grows with the floor, so a check that covered counts when its floors were at most
    those now in force there (:func:`floors_at`), one that under-covered when they were at
    least those (within :data:`SAME_CALIBRATION_TOL`); a check without floors counts."""
    now = floors_at(calibration, float(check["tr"]))
    for key in ("floor_mean", "floor_region"):
        if check.get(key) is None:
            continue
        gap = float(check[key]) - now[key]
        if (gap > SAME_CALIBRATION_TOL) if check.get("covered") else (gap < -SAME_CALIBRATION_TOL):
            return False
    return True


def tr_checks(calibration: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The timings a mode's floors were checked at, the calibration's own TR first: dicts with
    ``tr`` [s], ``covered`` (bool) and, for a rerun, ``coverage_mean``/``coverage_region`` and
    ``scan_length`` [s]. A rerun made with other floors than those now used at its TR
    (:func:`floors_at`; the floors were refitted since) is left out unless its verdict still
    holds for them (:func:`_check_applies`)."""
    ref = calibration.get("settings") or {}
    own = {"tr": float(ref.get("tr") or CALIBRATION_TR), "covered": True}
    same = [dict(c) for c in calibration.get("tr_checks") or [] if _check_applies(calibration, c)]
    return [own, *same]


def timing_difference(
    calibration: Mapping[str, Any], tr: float | None, scan_length: float | None = None
) -> str | None:
    """The phrase for a fit at TR ``tr`` [s] with ``scan_length`` [s] scans outside the timings
    ``calibration`` (a mode's entry of the calibration file) was checked at, or None when it is
    covered or ``tr`` is unknown (rule: module docstring).

    A covered rerun counts for scans at least :data:`SCAN_LENGTH_SLACK` as long as its own; the
    calibration's own scan length is compared separately (``scan_length`` phrase), so near its
    own TR any scan counts here. Between two covered checks the shortest scan covered is
    interpolated linearly in TR between the two checks' (the own one's: the calibration's scan).
    The phrase does not name the subject's scan, so a cohort's subjects group by reason.
    """
    if tr is None:
        return None
    own, *reruns = tr_checks(calibration)
    ref_scan = float((calibration.get("settings") or {}).get("scan_length") or 0.0)
    own = {**own, "min_scan": 0.0, "bracket_scan": SCAN_LENGTH_SLACK * ref_scan}
    for c in reruns:
        c["min_scan"] = c["bracket_scan"] = SCAN_LENGTH_SLACK * float(c.get("scan_length") or 0.0)
    checks = sorted([own, *reruns], key=lambda c: c["tr"])
    near = [c for c in checks if abs(tr - c["tr"]) <= TR_SLACK * c["tr"] + 1e-9]
    failed = [c for c in near if not c["covered"]]
    need = None  # the shortest scan a covering check would have covered
    if near and not failed:
        need = min(c["min_scan"] for c in near)
    below = [c for c in checks if c["tr"] < tr]
    above = [c for c in checks if c["tr"] > tr]
    if not near and below and above and below[-1]["covered"] and above[0]["covered"]:
        lo, hi = below[-1], above[0]  # the nearest checks on either side both covered
        weight = (tr - lo["tr"]) / (hi["tr"] - lo["tr"])
        need = (1 - weight) * lo["bracket_scan"] + weight * hi["bracket_scan"]
    if need is not None and (scan_length is None or scan_length >= need - 1e-9):
        return None
    good = [
        f"{c['tr']:g} s" + (f" ({c['scan_length']:g}-s scans)" if c.get("scan_length") else "")
        for c in reruns
        if c["covered"]
    ]
    said = f"TR {own['tr']:g} s" + (f", checked at {', '.join(good)}" if good else "")
    if need is not None:
        measured = f"; at this timing coverage is measured on scans of at least {need:.0f} s"
    else:
        measured = "" if failed else "; coverage at this timing is not measured"
    bad = failed or ([c for c in checks if not c["covered"]] if need is None else [])
    if bad:  # the nearest timing where this mode's intervals were too narrow (not for a short scan)
        c = min(bad, key=lambda c: abs(c["tr"] - tr))
        measured += (
            f"; at TR {c['tr']:g} s this mode's intervals covered {c['coverage_mean']:.2f} / "
            f"{c['coverage_region']:.2f} (mean / regions), too narrow"
        )
    return f"tr {tr:g} s (calibrated at {said}{measured})"


def judge_timing_when_read(run: dict[str, Any]) -> dict[str, Any]:
    """``run`` (a finished ``run.json``) with its interval judged by the TR when it was written
    before the calibration compared the TR (its ``ei_interval`` block has no ``calibration_tr``
    and no ``tr`` phrase): a TR outside the timings the current calibration of its mode was
    checked at (only its own TR when the result's floors are not the current ones) makes
    ``calibration_applies`` False, with the phrase added, ``calibration_tr`` set and
    ``calibration_tr_judged_on_read`` True (so a saved copy is not judged twice). The file on
    disk is not changed: ``collect``, ``EIResult`` and ``estimate-ei`` show the verdict."""
    block = run.get("ei_interval")
    if not isinstance(block, dict) or "calibration_tr" in block:
        return run
    differences = block.get("calibration_differences") or []
    differences = [str(d) for d in differences] if isinstance(differences, list) else [str(differences)]
    if block.get("calibration_applies") is None or any(d.startswith("tr ") for d in differences):
        return run
    timing = run.get("timing") if isinstance(run.get("timing"), Mapping) else {}
    tr, scan = positive_seconds(timing.get("tr")), positive_seconds(timing.get("scan_length"))
    if tr is None:
        return run
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.fit.uncertainty import load_calibration

    try:
        cal = dict(load_calibration(str(block.get("mode"))))
    except InvalidInputError:
        return run
    now = floors_at(cal, tr)
    try:
        same = _same_numbers(
            (None, now["floor_region"], now["floor_mean"]),
            (None, block.get("floor_log_region"), block.get("floor_log_mean")),
        )
    except (TypeError, ValueError):  # damaged floors: not those the checks were made with
        same = False
    if not same:  # those checks and floors are of other intervals than this result's
        cal.pop("tr_checks", None)
        cal.pop("timing_floors", None)
    phrase = timing_difference(cal, tr, scan)
    if phrase is None:
        return run
    judged = {
        **block,
        "calibration_applies": False,
        "calibration_differences": [*differences, phrase],
        "calibration_tr": tr,
        "calibration_tr_judged_on_read": True,
    }
    return {**run, "ei_interval": judged}


def uncalibrated_note(interval: Mapping[str, Any], readme: str = "README") -> str:
    """The sentence of a fit whose interval's calibration does not apply (``interval``: the
    ``run.json`` ``ei_interval`` block, ``calibration_applies`` False)."""
    differences = "; ".join(interval.get("calibration_differences") or [])
    budget = str(interval.get("calibration_budget") or "").strip()
    measured = f" ({budget})" if budget else ""
    return (
        f"note: the interval is not calibrated for this fit ({differences}): its coverage is not "
        f"measured and it may be too narrow; the calibration applies to the budget it was measured "
        f"at{measured}, on scans at least that long at the timings it was checked at, the DK68 "
        f"regions and maps not taken from FC "
        f"({readme} 'Reading the intervals and the flag')"
    )


NOISE_FLOOR_UNCHECKED = (
    "note: the test cost was not compared with the model's own noise floor (it needs "
    "--n-dup >= 2, the interval stage and a valid test cost of the winner), so a poor "
    "fit of the data may go unflagged"
)


def fit_notes(
    interval: Mapping[str, Any] | None, quality: Mapping[str, Any] | None, readme: str = "README"
) -> list[str]:
    """What a user must know before using an estimate, one sentence each (``interval``, ``quality``:
    the ``run.json`` ``ei_interval`` and ``fit_quality`` blocks): the flag's reasons, an interval
    whose calibration does not apply, a noise-floor check that could not be made."""
    quality = quality or {}
    notes = []
    if quality.get("flagged"):
        notes.append(f"fit flagged as poor: {'; '.join(quality.get('reasons', []))}")
    if isinstance(interval, Mapping) and interval.get("calibration_applies") is False:
        notes.append(uncalibrated_note(interval, readme=readme))
    if "cost_above_floor" in (quality.get("unchecked") or []):
        notes.append(NOISE_FLOOR_UNCHECKED)
    return notes


def warn_uncalibrated_fit(outcome: Any, out_dir: str | Path | None) -> None:
    """``fit.estimate_ei``: the :class:`~delssome_norms.errors.FitQualityWarning` notes EIEstimator
    gives (:func:`fit_notes`; a fit reused from ``out_dir`` too)."""
    from delssome_norms.fit.outputs import read_run

    block = quality = None
    if outcome.status == "done" and outcome.result is not None:
        block, quality = outcome.result.interval, outcome.result.quality
    elif outcome.status == "skipped" and out_dir is not None:
        run = read_run(out_dir) or {}
        block, quality = run.get("ei_interval"), run.get("fit_quality")
    for note in fit_notes(block, quality, readme="README.md"):
        warnings.warn(f"{outcome.subject_id}: {note}", FitQualityWarning, stacklevel=3)


SAME_CALIBRATION_TOL = 1e-3
"""Floors and factors closer than this (log units) are one calibration: the shipped floors are
rounded up to 4 decimals, and a rerun or a reworded source changes nothing a width shows."""


def warn_uncalibrated_cohort(
    settings: Any, rows: Sequence[Mapping[str, Any]], out_dir: str | Path, overwrite: bool
) -> None:
    """Before a cohort's work: :func:`~delssome_norms.fit.uncertainty.warn_uncalibrated` about
    the manifest ``rows`` this run will fit (a rerun of finished subjects says nothing; their
    results said it when they were fitted)."""
    from delssome_norms.fit.outputs import OUTPUT_FILES
    from delssome_norms.fit.uncertainty import warn_uncalibrated

    scans, trs = [], []
    for row in rows:
        folder = Path(out_dir) / str(row["subject_id"])
        if not overwrite and all((folder / name).is_file() for name in OUTPUT_FILES):
            continue
        scan = row.get("scan_length")
        if scan is not None and math.isfinite(value := float(scan)):
            scans.append(value)
            trs.append(positive_seconds(row.get("tr")))  # None: not compared
    warn_uncalibrated(settings, scans, stacklevel=4, trs=trs)


def calibration_key(run: Mapping[str, Any]) -> tuple | None:
    """The calibration a result's interval was computed with (source, floors, factors), or None
    without an interval. :func:`calibration_mix` compares the numbers; the source is shown."""
    block = run.get("ei_interval")
    if not isinstance(block, dict):
        return None
    # floors taken at the subject's TR (base_floor_log_*: the calibration's own) are one
    # calibration with those of the subjects at its own TR
    base = {k: block.get(f"base_{k}", block.get(k)) for k in ("floor_log_region", "floor_log_mean")}
    return (
        block.get("calibration_source"),
        base["floor_log_region"],
        base["floor_log_mean"],
        block.get("k_region"),
        block.get("k_mean"),
    )


def calibration_mix(keys: Mapping[str, tuple | None]) -> tuple[list[dict[str, Any]], str | None]:
    """The calibrations of a table's subjects (``keys``: subject id -> :func:`calibration_key`):
    the sidecar's ``interval_calibrations`` (most subjects first) and, when they differ, the
    warning's text."""
    groups: dict[tuple, list[str]] = {}
    for sid, key in keys.items():
        if key is None:
            continue
        same = next((g for g in groups if _same_numbers(g, key)), key)  # the first one seen
        groups.setdefault(same, []).append(sid)
    ranked = sorted(groups.items(), key=lambda kv: len(kv[1]), reverse=True)
    names = ("source", "floor_log_region", "floor_log_mean", "k_region", "k_mean")
    record = [{**dict(zip(names, key)), "subjects": len(ids)} for key, ids in ranked]
    if len(ranked) < 2:
        return record, None
    shown = "; ".join(
        f"{len(ids)} with floors {key[1]}/{key[2]} ({key[0] or 'no source'}: {', '.join(ids[:3])}"
        f"{' ...' if len(ids) > 3 else ''})"
        for key, ids in ranked
    )
    message = (
        f"the subjects' E/I intervals come from {len(ranked)} different calibrations ({shown}): "
        "their widths are not comparable; refit the subjects of the older one (move their folders "
        "aside and run the cohort again) so that one calibration applies to the whole table"
    )
    return record, message


def _same_numbers(a: tuple, b: tuple) -> bool:
    """Whether two :func:`calibration_key` give the same floors and factors (within
    :data:`SAME_CALIBRATION_TOL`; the source text is not compared)."""
    for x, y in zip(a[1:], b[1:], strict=True):
        if x is None or y is None:
            if x is not y:
                return False
        elif abs(float(x) - float(y)) > SAME_CALIBRATION_TOL:
            return False
    return True
