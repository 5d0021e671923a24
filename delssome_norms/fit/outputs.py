"""Per-subject output files, failure records, and the cohort table for the growth charts.

Per subject (reference-code layout, docs/science.md §5, plus an uncertainty column):

* ``EI_ratio.csv`` — region_index, EI_ratio, S_E, S_I, r_E, EI_ratio_sd, EI_ratio_lo, EI_ratio_hi
  (the 90 % interval, :mod:`delssome_norms.fit.uncertainty`), fit_flagged, fit_flag_reasons (the
  subject's fit-quality verdict, the same in every row)
* ``best_parameters.csv`` — region_index, wEE, wEI, sigma, G
* ``fit_quality.csv`` — stage (train/val/test), corr_loss, l1_loss, ks_loss, total_loss
* ``run.json`` — versions, seed, settings, timing, search summary, wall times and the run
  fingerprint (:func:`run_fingerprint`: SHA-256 of the inputs, the settings, the version); written
  last, so its presence (with ``"status": "complete"``) marks a finished subject, and a finished
  subject is reused only when its fingerprint matches the current run (:func:`check_finished`).
  ``ei_interval`` (the mean's interval and the spreads) and ``fit_quality`` (flag, reasons,
  metrics; :mod:`delssome_norms.fit.quality`) are null/absent in results of older versions.

Every file is written atomically through :mod:`delssome_norms.io`.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import warnings
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.datasets.maps import load_default_maps
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.checkpoint import flatten_keys
from delssome_norms.fit.settings import FitSettings
from delssome_norms.fit.stages import SubjectResult
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.io import (
    arrays_sha256,
    check_unique_ids,
    file_sha256,
    read_demographics,
    read_table,
    write_ei_ratio,
    write_fit_quality,
    write_json,
    write_parameters,
    write_table,
)
from delssome_norms.io import ei_table as et
from delssome_norms.io.provenance import pipeline_differences

RUN_FORMAT_VERSION = 1
"""Schema version of ``run.json``."""
OUTPUT_FILES = (et.EI_RATIO_FILE, "best_parameters.csv", "fit_quality.csv", "run.json")
"""Files of a finished subject."""
FAILURE_FILE = "failure.json"
"""Written in a subject's folder when it failed (removed when it later succeeds)."""
EI_SD_DEFINITION = (
    "sample SD (ddof=1) of S_E/S_I pooled over every valid (candidate, duplicate) test "
    "simulation of the test_top_k best validated candidates (and, with several searches "
    "averaged, of each search's best)"
)


def package_versions() -> dict[str, str]:
    """Versions of the packages that determine the numbers."""
    out = {"python": platform.python_version()}
    for name in ("delssome_norms", "torch", "numpy", "cma", "scipy", "pandas"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "unknown"
    return out


FINGERPRINT_IGNORED = ("version", "settings.surrogate_weights")
"""Fingerprint keys stored for the record but not compared: a newer version may reuse results,
and the surrogate weights are identified by their SHA-256, not by the folder they were read from."""
FINGERPRINT_LATER = ("settings.surrogate_weights_sha256",)
"""Fingerprint keys added later: compared only when the stored fingerprint has them."""


def run_fingerprint(
    subject: SubjectInputs, settings: FitSettings, fallback_gradient: np.ndarray | None = None
) -> dict[str, Any]:
    """Everything a finished subject's results depend on, stored in its ``run.json``.

    Parameters
    ----------
    subject : SubjectInputs
    settings : FitSettings
    fallback_gradient : ndarray of shape (N,), optional
        The cohort gradient used for subjects without maps.

    Returns
    -------
    dict
        ``subject_id``, SHA-256 of the FC/FCD-CDF/SC arrays and of the maps (of the shipped
        default maps when they are used), TR and scan length [s], the settings (without
        ``device``/``engine``) and the package version.
    """
    from delssome_norms import __version__

    settings_d = settings.to_dict()
    for key in ("device", "engine"):
        settings_d.pop(key, None)
    if settings_d.get("interval") is True:  # the default; results written before it existed
        settings_d.pop("interval")
    settings_d["val_per_generation"] = settings.val_per_generation_record()
    if settings_d.get("surrogate_weights_sha256") is None:  # Euler mode, or not resolved
        settings_d.pop("surrogate_weights_sha256", None)
    maps = None if subject.gradient is not None else fallback_gradient
    fp = {
        "subject_id": subject.subject_id,
        "inputs_sha256": arrays_sha256(subject.fc, subject.fcd_cdf, subject.sc),
        "maps_sha256": arrays_sha256(subject.myelin, subject.gradient, maps),
        "timing": [subject.tr, subject.scan_length],
        "settings": settings_d,
        "version": __version__,
    }
    if subject.uses_default_maps(settings.maps):
        fp["default_maps_sha256"] = load_default_maps().sha256
    return json.loads(json.dumps(fp))  # normalise tuples and numpy scalars


PROVENANCE_FORMAT_VERSION = 1
"""Schema version of the ``provenance`` block of ``run.json`` and of a table's sidecar."""
PIPELINE_SETTINGS_IGNORED = (
    "seed",
    "device",
    "engine",
    "dtype",
    "surrogate_weights",
    "surrogate_weights_sha256",
)
"""Settings that do not define a pipeline (a cohort may be fitted with several seeds/devices)."""
RECORDED_NOT_COMPARED = ("dtype", "surrogate_weights_sha256")
"""Of those, the ones ``collect`` warns about when a table mixes them (precision, surrogate)."""


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()


def subject_provenance(
    subject: SubjectInputs,
    settings: FitSettings,
    design: str,
    gradient: np.ndarray | None = None,
) -> dict[str, Any]:
    """What produced a subject's E/I: atlas, SC, maps, design, timing, mode, settings, version.

    Parameters
    ----------
    subject : SubjectInputs
    settings : FitSettings
    design : str
        The design description of the fit (e.g. ``"[1, myelin, gradient]; gradient: default DK68
        maps"``).
    gradient : ndarray of shape (N,), optional
        The gradient the fit used. For a subject without maps it is recorded (``maps.sha256``);
        when it is the cohort's FC gradient (design ``gradient: cohort FC``) its digest is part
        of the pipeline, so ``collect`` refuses subjects fitted with different cohort gradients
        (shards that read different subsets of the cohort). A subject's own FC gradient differs
        between subjects by construction and is not.

    Returns
    -------
    dict
        ``atlas`` (name, n_regions, regions, regions_sha256), ``sc`` (name, sha256 of the unscaled
        matrix), ``maps`` (name, sha256), ``design``, ``timing`` (tr, scan_length [s]), ``mode``,
        ``settings``, ``version`` and ``pipeline``: the fields that must agree between subjects
        of one cohort table and between a table and the chart it is scored against
        (:data:`PIPELINE_FIELDS`).
    """
    from delssome_norms import __version__
    from delssome_norms.datasets import load_default_template
    from delssome_norms.io.regions import regions_sha256

    n = subject.n_regions
    names = list(subject.regions) if subject.regions is not None else None
    atlas_name = "DK68" if names is not None and tuple(names) == DK68_REGIONS else f"custom-{n}"
    sc_sha = arrays_sha256(subject.sc)
    template = load_default_template()
    is_template = template.sc.shape == subject.sc.shape and arrays_sha256(template.sc) == sc_sha
    sc_source = subject.sources.get("sc", "")
    sc_name = template.source if is_template else Path(sc_source).name or "given"
    no_maps = subject.myelin is None and subject.gradient is None
    if subject.uses_default_maps(settings.maps):
        maps = {"name": "default DK68 maps", "sha256": load_default_maps().sha256}
    elif not no_maps:
        maps = {"name": "given", "sha256": arrays_sha256(subject.myelin, subject.gradient)}
    else:
        cohort = "gradient: cohort FC" in design
        maps = {
            "name": "cohort FC gradient" if cohort else "FC gradient",
            "sha256": arrays_sha256(gradient) if gradient is not None else None,
        }
    if maps["name"] == "given":
        pipeline_maps = "given"
    elif maps["name"] == "FC gradient":
        # a subject's own FC gradient is not shared between subjects: its digest stays out
        # (spelled as results of earlier versions spell it)
        pipeline_maps = "FC gradient None"
    else:
        pipeline_maps = f"{maps['name']} {maps['sha256']}"
    settings_d = settings.to_dict()
    pipeline_settings = settings.with_combine_recorded(
        {k: v for k, v in settings_d.items() if k not in PIPELINE_SETTINGS_IGNORED}
    )
    pipeline = {
        "atlas": atlas_name,
        "n_regions": n,
        "regions_sha256": regions_sha256(names) if names is not None else None,
        "sc": f"template {sc_sha}" if is_template else "subject SC",
        "maps": pipeline_maps,
        "design": design.split(";")[0].strip(),
        "mode": settings.mode,
        "settings_sha256": _sha256_json(pipeline_settings),
    }
    out = {
        "format_version": PROVENANCE_FORMAT_VERSION,
        "atlas": {
            "name": atlas_name,
            "n_regions": n,
            "regions": names,
            "regions_sha256": pipeline["regions_sha256"],
        },
        "sc": {"name": sc_name, "sha256": sc_sha},
        "maps": maps,
        "design": design,
        "timing": {"tr": subject.tr, "scan_length": subject.scan_length},
        "mode": settings.mode,
        "settings": settings_d,
        "version": __version__,
        "pipeline": pipeline,
    }
    return json.loads(json.dumps(out))


def fingerprint_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Keys (dotted, e.g. ``settings.seed``) whose values differ, ignoring ``FINGERPRINT_IGNORED``
    and, when the stored fingerprint predates them, ``FINGERPRINT_LATER``."""
    a = {k: v for k, v in flatten_keys(stored).items() if k not in FINGERPRINT_IGNORED}
    b = {
        k: v
        for k, v in flatten_keys(current).items()
        if k not in FINGERPRINT_IGNORED and (k in a or k not in FINGERPRINT_LATER)
    }
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def read_run(subject_dir: str | Path) -> dict[str, Any] | None:
    """``run.json`` of a finished subject (all output files present, status complete), or None."""
    d = Path(subject_dir)
    if not all((d / f).is_file() for f in OUTPUT_FILES):
        return None
    try:
        run = json.loads((d / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(run, dict) or run.get("status") != "complete":
        return None
    return run


def is_complete(subject_dir: str | Path, fingerprint: Mapping[str, Any] | None = None) -> bool:
    """True when ``subject_dir`` holds a finished subject's outputs.

    With ``fingerprint``, only when they were also written by a run with the same fingerprint.
    """
    run = read_run(subject_dir)
    if run is None:
        return False
    if fingerprint is None:
        return True
    stored = run.get("fingerprint")
    return isinstance(stored, dict) and not fingerprint_differences(stored, fingerprint)


def _discard(subject_dir: Path) -> None:
    """Remove a subject's outputs and checkpoint (only the files this package writes)."""
    for name in (*OUTPUT_FILES, FAILURE_FILE):
        (subject_dir / name).unlink(missing_ok=True)
    shutil.rmtree(subject_dir / "checkpoint", ignore_errors=True)


def check_finished(
    subject_dir: str | Path,
    fingerprint: Mapping[str, Any],
    overwrite: bool = False,
    checkpoint_stale: Callable[[], str | None] | None = None,
) -> bool:
    """Whether a subject is finished with this fingerprint; refuse (or discard) stale results.

    Parameters
    ----------
    subject_dir : path
    fingerprint : dict
        From :func:`run_fingerprint`.
    overwrite : bool
        Discard finished results and checkpoints written with other inputs or settings instead of
        refusing (matching ones are kept, so an interrupted ``--overwrite`` run still resumes).
    checkpoint_stale : callable, optional
        Returns a message when the subject's checkpoint was written with other inputs/settings.

    Returns
    -------
    bool
        True when the subject is finished with a matching fingerprint (skip it).

    Raises
    ------
    InvalidInputError
        Finished results or a checkpoint from another run, without ``overwrite``; names the
        differing keys and ``--overwrite``.
    """
    d = Path(subject_dir)
    run = read_run(d)
    if run is not None:
        stored = run.get("fingerprint")
        if isinstance(stored, dict):
            diff = fingerprint_differences(stored, fingerprint)
            if not diff:
                return True
            what = f"with other inputs or settings ({', '.join(diff[:8])})"
        else:
            what = "by an older version without a run fingerprint (its inputs cannot be checked)"
        if not overwrite:
            raise InvalidInputError(
                f"holds finished results of subject {run.get('subject_id')!r} written {what}; "
                "use --overwrite to refit, or another output folder",
                str(d),
            )
        _discard(d)
        return False
    stale = checkpoint_stale() if checkpoint_stale is not None else None
    if stale:
        if not overwrite:
            raise InvalidInputError(
                f"holds a checkpoint that cannot be continued ({stale}); use --overwrite to "
                "start this subject again, or another output folder",
                str(d),
            )
        _discard(d)
    return False


def write_subject_outputs(
    subject_dir: str | Path, result: SubjectResult, run_info: Mapping[str, Any]
) -> None:
    """Write the four output files of a subject (``run.json`` last).

    Parameters
    ----------
    subject_dir : path
    result : SubjectResult
    run_info : mapping
        Extra JSON-able entries for ``run.json`` (settings, timing, seeds, wall times, ...).
    """
    d = Path(subject_dir)
    write_ei_ratio(
        d / et.EI_RATIO_FILE,
        result.ei_ratio,
        result.s_e,
        result.s_i,
        result.r_e,
        result.ei_ratio_sd,
        result.ei_lo,
        result.ei_hi,
        result.quality or None,
    )
    p = result.params
    write_parameters(d / "best_parameters.csv", p.wEE[0], p.wEI[0], p.sigma[0], float(p.G[0]))
    write_fit_quality(d / "fit_quality.csv", result.losses)
    run = {
        "format_version": RUN_FORMAT_VERSION,
        "status": "complete",
        "subject_id": result.subject_id,
        "versions": package_versions(),
        **dict(run_info),
        "result": {
            "coefficients": result.coeffs.tolist(),
            et.MEAN_TARGET: float(np.mean(result.ei_ratio)),
            "ei_ratio_sd_definition": EI_SD_DEFINITION,
            **result.info,
        },
        "ei_interval": result.interval,
        "fit_quality": result.quality,
    }
    write_json(run, d / "run.json")
    failure = d / FAILURE_FILE
    if failure.exists():
        failure.unlink()


def write_failure(subject_dir: str | Path, subject_id: str, stage: str, message: str) -> None:
    """Record that a subject failed (``failure.json`` in its folder)."""
    write_json(
        {"subject_id": subject_id, "stage": stage, "error": message}, Path(subject_dir) / FAILURE_FILE
    )


def read_failures(out_dir: str | Path, subject_ids: Iterable[str]) -> pd.DataFrame:
    """Failure records of ``subject_ids`` under ``out_dir`` (subject_id, stage, error)."""
    rows = []
    for sid in subject_ids:
        path = Path(out_dir) / str(sid) / FAILURE_FILE
        if path.is_file() and not is_complete(path.parent):
            try:
                rows.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, json.JSONDecodeError):
                rows.append(
                    {"subject_id": sid, "stage": "unknown", "error": "unreadable failure record"}
                )
    return pd.DataFrame(rows, columns=["subject_id", "stage", "error"])


def write_failures(out_dir: str | Path, subject_ids: Iterable[str]) -> pd.DataFrame:
    """Write ``failures.csv`` (all current failures among ``subject_ids``); returns the table."""
    table = read_failures(out_dir, subject_ids)
    write_table(table, Path(out_dir) / "failures.csv")
    return table


CHART_COLUMNS = et.DEMOGRAPHIC_COLUMNS
"""Demographic columns of the cohort table (those present in the demographics)."""


INTERVAL_COLUMNS = (et.MEAN_LO, et.MEAN_HI, et.FIT_FLAGGED, et.FIT_FLAG_REASONS)
"""Columns of the cohort table from ``run.json``'s ``ei_interval`` and ``fit_quality`` blocks."""


def _interval_and_flag(run: Mapping[str, Any]) -> dict[str, Any]:
    """The interval of the mean E/I and the fit-quality flag of a subject's ``run.json``.

    Results of versions without them give NaN bounds, ``fit_flagged`` False and empty reasons.
    """
    block = run.get("ei_interval")
    verdict = run.get("fit_quality")
    lo = hi = float("nan")
    if isinstance(block, Mapping):
        lo, hi = (
            float(v) if isinstance(v, (int, float)) else float("nan")
            for v in (block.get("mean_lo"), block.get("mean_hi"))
        )
    flagged, reasons = False, []
    if isinstance(verdict, Mapping):
        flagged = bool(verdict.get("flagged", False))
        reasons = [str(r) for r in verdict.get("reasons") or []]
    return {
        "ei_ratio_mean_lo": lo,
        "ei_ratio_mean_hi": hi,
        "fit_flagged": flagged,
        "fit_flag_reasons": ";".join(reasons),
    }


def flagged_message(flagged: list[str], n_subjects: int) -> str:
    """Warning naming flagged subjects ("id (reason;reason)") and what to do about them."""
    shown = ", ".join(flagged[:10]) + (f" (and {len(flagged) - 10} more)" if len(flagged) > 10 else "")
    return (
        f"{len(flagged)} of {n_subjects} subject(s) have a poor fit-quality flag: {shown}; see "
        "README 'Reading the intervals and the flag' (charts fit --exclude-flagged leaves them out)"
    )


def collect(in_dir: str | Path, demographics: str | Path, out: str | Path) -> pd.DataFrame:
    """Build the growth-chart input table from per-subject results and demographics.

    Parameters
    ----------
    in_dir : path
        A cohort output folder (one sub-folder per subject with ``EI_ratio.csv``).
    demographics : path
        CSV with subject_id, age_in_years, sex (or numeric_sex) and optionally site, scanner,
        site_scanner (see :func:`delssome_norms.io.read_demographics`).
    out : path
        Output CSV: subject_id, age_in_years, sex, numeric_sex, site, scanner, site_scanner,
        ei_ratio_mean, ei_ratio_roi_0 .. ei_ratio_roi_{N-1}, ei_ratio_mean_lo, ei_ratio_mean_hi
        (the 90 % interval of the mean; NaN for results of older versions), fit_flagged (bool),
        fit_flag_reasons (";"-joined, :mod:`delssome_norms.fit.quality`). Next to it
        ``<stem>.provenance.json`` (the pipeline that produced every row: atlas, SC, maps, design,
        mode, settings, timing, versions, dropped subjects) and ``<stem>.regions.csv`` (region
        name of each ``ei_ratio_roi_k``).

    Returns
    -------
    DataFrame
        The table written. Subjects without finished results are skipped with an
        :class:`~delssome_norms.errors.InputWarning` (listed in the sidecar); flagged subjects
        are named in another.

    Raises
    ------
    InvalidInputError
        Subjects with different numbers of regions, settings, or pipelines (atlas, SC, maps,
        design, mode: the first differing field and both values are named).
    """
    from delssome_norms.io import provenance_path, regions_path
    from delssome_norms.io.provenance import SIDECAR_KIND
    from delssome_norms.io.regions import regions_sha256

    demo = read_demographics(demographics)
    try:
        check_unique_ids(demo["subject_id"], str(demographics), as_folders=True)
    except InvalidInputError as err:
        raise err.with_source(str(demographics)) from None
    in_dir = Path(in_dir)
    rows, missing, n_regions = [], [], None
    settings_seen: dict[str, list[str]] = {}
    recorded: dict[str, dict[str, list[str]]] = {}
    pipelines: dict[str, tuple[dict[str, Any], list[str]]] = {}
    provenances: dict[str, dict[str, Any]] = {}
    unfingerprinted, unprovenanced = [], []
    flagged: list[str] = []
    timing_mismatch: list[str] = []
    damaged: list[str] = []
    for _, person in demo.iterrows():
        sid = str(person["subject_id"])
        sdir = in_dir / sid
        run = read_run(sdir)
        if run is None:
            missing.append(sid)
            if all((sdir / f).is_file() for f in OUTPUT_FILES):
                damaged.append(sid)  # every file there, but run.json unreadable or incomplete
            continue
        run_path = str(sdir / "run.json")
        if str(run.get("subject_id")) != sid:
            raise InvalidInputError(
                f"holds the results of subject {run.get('subject_id')!r}, not {sid!r}; move it "
                "to the right folder or refit",
                run_path,
            )
        fp = run.get("fingerprint")
        if isinstance(fp, dict):
            # a seed (or device) does not define the method: a cohort may mix them
            fitted = fp.get("settings")
            if isinstance(fitted, dict):
                for name in RECORDED_NOT_COMPARED:
                    recorded.setdefault(name, {}).setdefault(str(fitted.get(name)), []).append(sid)
                fitted = {k: v for k, v in fitted.items() if k not in PIPELINE_SETTINGS_IGNORED}
            key = json.dumps(fitted, sort_keys=True)
            settings_seen.setdefault(key, []).append(sid)
        else:
            unfingerprinted.append(sid)
        _check_timing_columns(person, run, timing_mismatch)
        prov = run.get("provenance")
        if isinstance(prov, dict) and isinstance(prov.get("pipeline"), dict):
            key = json.dumps(prov["pipeline"], sort_keys=True)
            pipelines.setdefault(key, (prov["pipeline"], []))[1].append(sid)
            provenances[sid] = prov
        else:
            unprovenanced.append(sid)
        ei_path = sdir / et.EI_RATIO_FILE
        ei = read_table(ei_path, required=(et.REGION_INDEX, et.EI_RATIO))
        ei = ei.sort_values(et.REGION_INDEX)
        idx = pd.to_numeric(ei[et.REGION_INDEX], errors="coerce").to_numpy()
        values = pd.to_numeric(ei[et.EI_RATIO], errors="coerce").to_numpy(dtype=np.float64)
        if not np.array_equal(idx, np.arange(len(ei))):
            raise InvalidInputError("region_index must list 0 .. N-1 once each", str(ei_path))
        bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
        if bad.size:
            raise InvalidInputError(
                f"EI_ratio must be a positive number in every region; region(s) "
                f"{', '.join(str(int(i)) for i in bad[:5])} have {float(values[bad[0]])} "
                "(damaged or edited file; refit this subject with --overwrite)",
                str(ei_path),
            )
        if n_regions is None:
            n_regions = len(values)
        elif len(values) != n_regions:
            raise InvalidInputError(
                f"has {len(values)} regions but earlier subjects have {n_regions}",
                str(ei_path),
            )
        row = et.cohort_row(person, values)
        row.update(_interval_and_flag(run))
        if row["fit_flagged"]:
            flagged.append(f"{sid} ({row['fit_flag_reasons']})")
        rows.append(row)
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
        )
        warnings.warn(
            f"{len(missing)} subject(s) in {demographics} have no finished results in {in_dir}: "
            f"{shown} (left out of the table; see failures.csv of the cohort run)"
            + (
                f"; {len(damaged)} of them have all their files but a damaged or unfinished "
                f"run.json ({', '.join(damaged[:5])}): refit them with --overwrite"
                if damaged
                else ""
            ),
            InputWarning,
            stacklevel=2,
        )
    if not rows:
        raise InvalidInputError(
            "no finished subject results found for the people listed", str(demographics)
        )
    if flagged:
        warnings.warn(flagged_message(flagged, len(rows)), InputWarning, stacklevel=2)
    diff: list = []
    if len(pipelines) > 1:
        (ref, ref_ids), *others = sorted(pipelines.values(), key=lambda v: len(v[1]), reverse=True)
        other, other_ids = others[0]
        diff = pipeline_differences(ref, other) or [("pipeline", "?", "?")]
        if [d[0] for d in diff] == ["settings_sha256"] and len(settings_seen) > 1:
            diff = []  # the settings check below names the settings that differ
    if diff:
        field, a, b = diff[0]
        raise InvalidInputError(
            f"subjects were fitted with different pipelines: {field} is {a!r} for "
            f"{', '.join(ref_ids[:3])}{' ...' if len(ref_ids) > 3 else ''} but {b!r} for "
            f"{', '.join(other_ids[:3])}{' ...' if len(other_ids) > 3 else ''}"
            + (f" (and {len(diff) - 1} more field(s) differ)" if len(diff) > 1 else "")
            + "; collect each pipeline into its own table, or refit (cohort --overwrite)",
            str(in_dir),
        )
    if len(settings_seen) > 1:
        ranked = sorted(settings_seen.items(), key=lambda kv: len(kv[1]), reverse=True)
        groups = [ids for _, ids in ranked]
        shown = "; ".join(
            ", ".join(g[:3]) + (f" (+{len(g) - 3})" if len(g) > 3 else "") for g in groups[:4]
        )
        first, second = (json.loads(k) for k, _ in ranked[:2])
        differing = fingerprint_differences(
            first if isinstance(first, dict) else {}, second if isinstance(second, dict) else {}
        )
        raise InvalidInputError(
            f"subjects were fitted with {len(settings_seen)} different settings ({shown}; "
            f"differing: {', '.join(differing[:6]) or 'settings'}); refit them with one setting "
            "(cohort --overwrite) before building one table",
            str(in_dir),
        )
    for name, values in recorded.items():
        if len(values) > 1:  # allowed in one table, but worth knowing
            shown = "; ".join(
                f"{v if len(v) <= 16 else v[:12] + '...'} ({len(ids)}: {', '.join(ids[:2])}"
                f"{' ...' if len(ids) > 2 else ''})"
                for v, ids in values.items()
            )
            warnings.warn(
                f"subjects were fitted with different {name}: {shown}; their E/I may differ "
                "slightly by that alone",
                InputWarning,
                stacklevel=2,
            )
    if timing_mismatch:
        warnings.warn(
            f"{len(timing_mismatch)} subject(s) have a TR or scan length in {demographics} that "
            f"differs from the one they were fitted with: {'; '.join(timing_mismatch[:5])}"
            + (" ..." if len(timing_mismatch) > 5 else "")
            + " (check that each row describes the scan that was fitted)",
            InputWarning,
            stacklevel=2,
        )
    listed = set(demo["subject_id"].astype(str))
    unlisted = sorted(
        d.name for d in in_dir.iterdir() if d.is_dir() and d.name not in listed and read_run(d)
    )
    if unlisted:
        warnings.warn(
            f"{len(unlisted)} finished subject(s) in {in_dir} are not in {demographics} and are "
            f"left out of the table: {', '.join(unlisted[:10])}"
            + (f" (and {len(unlisted) - 10} more)" if len(unlisted) > 10 else ""),
            InputWarning,
            stacklevel=2,
        )
    if unfingerprinted:
        warnings.warn(
            f"{len(unfingerprinted)} subject(s) in {in_dir} were written by an older version "
            f"without a run fingerprint; their settings cannot be checked: "
            f"{', '.join(unfingerprinted[:5])}",
            InputWarning,
            stacklevel=2,
        )
    if unprovenanced and provenances:
        warnings.warn(
            f"{len(unprovenanced)} subject(s) in {in_dir} were written by an older version "
            f"without provenance; their pipeline cannot be checked: {', '.join(unprovenanced[:5])}",
            InputWarning,
            stacklevel=2,
        )
    table = pd.DataFrame(rows)
    sidecar = _table_provenance(
        provenances, n_regions, [str(r["subject_id"]) for r in rows], missing, unprovenanced
    )
    names = sidecar["atlas"]["regions"] or [f"region_{i}" for i in range(n_regions)]
    sidecar["atlas"]["regions_sha256"] = (
        regions_sha256(sidecar["atlas"]["regions"]) if sidecar["atlas"]["regions"] else None
    )
    sidecar = {"kind": SIDECAR_KIND, "table": Path(out).name, **sidecar}
    regions = et.regions_frame(names)
    write_table(table, out)
    sidecar["table_sha256"] = file_sha256(out)  # which table the sidecar describes
    write_table(regions, regions_path(out))
    write_json(sidecar, provenance_path(out))
    return table


TIMING_COLUMNS = {"TR": "tr", "tr": "tr", "scan_length": "scan_length"}
"""Demographics columns compared with the timing a subject was fitted with (``run.json``)."""


def _check_timing_columns(person: pd.Series, run: Mapping[str, Any], mismatches: list[str]) -> None:
    """Append ``"<id>: TR 2 vs 0.72 s fitted"`` to ``mismatches`` when the demographics row
    gives a TR or scan length [s] other than the fitted one (absent columns are not checked)."""
    timing = run.get("timing")
    if not isinstance(timing, Mapping):
        return
    for column, key in TIMING_COLUMNS.items():
        if column not in person.index or key not in timing:
            continue
        given = pd.to_numeric(pd.Series([person[column]]), errors="coerce").iloc[0]
        fitted = float(timing[key])
        if np.isfinite(given) and not np.isclose(given, fitted, rtol=1e-3, atol=1e-6):
            name = "TR" if key == "tr" else "scan length"
            mismatches.append(f"{person['subject_id']}: {name} {given:g} vs {fitted:g} s fitted")


def _table_provenance(
    provenances: Mapping[str, Mapping[str, Any]],
    n_regions: int,
    subjects: list[str],
    missing: list[str],
    unprovenanced: list[str],
) -> dict[str, Any]:
    """The sidecar of a cohort table from its subjects' ``run.json`` provenance blocks."""
    from delssome_norms.io.regions import regions_sha256

    if provenances:
        first = next(iter(provenances.values()))
        pipeline = dict(first["pipeline"])
        atlas = dict(first["atlas"])
    else:  # results of an older version: only the number of regions is known
        names = list(DK68_REGIONS) if n_regions == len(DK68_REGIONS) else None
        atlas = {
            "name": "DK68 (assumed from 68 regions)" if names else f"custom-{n_regions}",
            "n_regions": n_regions,
            "regions": names,
        }
        pipeline = {
            "n_regions": n_regions,
            "regions_sha256": regions_sha256(names) if names else None,
        }
    timings: dict[str, int] = {}
    scs: dict[str, str] = {}
    versions = set()
    for prov in provenances.values():
        t = prov.get("timing", {})
        key = f"TR {t.get('tr')} s, {t.get('scan_length')} s"
        timings[key] = timings.get(key, 0) + 1
        sc = prov.get("sc", {})
        scs[str(sc.get("sha256"))] = str(sc.get("name"))
        versions.add(str(prov.get("version")))
    first = next(iter(provenances.values()), {})
    return {
        "format_version": PROVENANCE_FORMAT_VERSION,
        "pipeline": pipeline,
        "atlas": atlas,
        "sc": [{"name": v, "sha256": k} for k, v in scs.items()],
        "maps": first.get("maps"),
        "design": first.get("design"),
        "mode": first.get("mode"),
        "settings": first.get("settings"),
        "timing": [{"timing": k, "subjects": v} for k, v in timings.items()],
        "versions": sorted(versions),
        "n_subjects": len(subjects),
        "subjects_without_provenance": unprovenanced,
        "dropped_subjects": missing,
    }
