"""What an interval calibration was measured on, besides its budget, and what a fit says about it.

The floors of ``fit/data/interval_calibration.json`` were measured on synthetic truths on the
68 DK68 regions of the default template, built on and fitted with the shipped maps, at the
default integration steps (``dt_train`` and ``dt_val`` 0.005 s). A fit of another atlas, with a
gradient taken from FC (another map than the truths were built on) or with a coarser step is
outside what was measured: :func:`scope_differences` names those, one phrase each, for
:func:`~delssome_norms.fit.uncertainty.calibration_differences`. The simulation dtype is not
compared. This module also builds the sentence a fit whose calibration does not apply says
(:func:`uncalibrated_note`, shared by ``fit.estimate_ei`` and :class:`~delssome_norms.pipeline.EIResult`)
and compares the calibrations of a cohort table's subjects (:func:`calibration_mix`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.errors import FitQualityWarning

CALIBRATION_ATLAS = "DK68"
"""Atlas of the calibration's truths (a calibration may record another as ``settings.atlas``)."""
CALIBRATION_DT = 0.005
"""Train and validation step [s] of a calibration that does not record ``dt_train``/``dt_val``."""
FC_GRADIENT_MAPS = {"subject FC": "subject FC gradient", "cohort FC": "cohort FC gradient"}
"""Design sources (``build_space``: ``"...; gradient: <source>"``) whose gradient comes from FC."""
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
    (``SubjectInputs``) its atlas and whether its gradient comes from FC (``design``: the
    description ``build_space`` gives; without it, from the subject's maps and ``settings.maps``)."""
    out: dict[str, Any] = {"dt_train": float(settings.dt_train), "dt_val": float(settings.dt_val)}
    if subject is not None:
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


def uncalibrated_note(interval: Mapping[str, Any], readme: str = "README") -> str:
    """The sentence of a fit whose interval's calibration does not apply (``interval``: the
    ``run.json`` ``ei_interval`` block, ``calibration_applies`` False)."""
    differences = "; ".join(interval.get("calibration_differences") or [])
    budget = str(interval.get("calibration_budget") or "").strip()
    measured = f" ({budget})" if budget else ""
    return (
        f"note: the interval is not calibrated for this fit ({differences}): its coverage is not "
        f"measured and it may be too narrow; the calibration applies to the budget it was measured "
        f"at{measured}, on scans at least that long, the DK68 regions and maps not taken from FC "
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
    import math

    from delssome_norms.fit.outputs import OUTPUT_FILES
    from delssome_norms.fit.uncertainty import warn_uncalibrated

    scans = []
    for row in rows:
        folder = Path(out_dir) / str(row["subject_id"])
        if not overwrite and all((folder / name).is_file() for name in OUTPUT_FILES):
            continue
        scan = row.get("scan_length")
        if scan is not None and math.isfinite(value := float(scan)):
            scans.append(value)
    warn_uncalibrated(settings, scans, stacklevel=4)


def calibration_key(run: Mapping[str, Any]) -> tuple | None:
    """The calibration a result's interval was computed with (source, floors, factors), or None
    without an interval. :func:`calibration_mix` compares the numbers; the source is shown."""
    block = run.get("ei_interval")
    if not isinstance(block, dict):
        return None
    return tuple(
        block.get(k)
        for k in ("calibration_source", "floor_log_region", "floor_log_mean", "k_region", "k_mean")
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
