"""Per-subject output files and failure records of a fit.

Per subject (reference-code layout, docs/science.md §5, plus an uncertainty column):

* ``EI_ratio.csv`` — region_index, region, EI_ratio, S_E, S_I, r_E, EI_ratio_sd, EI_ratio_lo,
  EI_ratio_hi (the 90 % interval, :mod:`delssome_norms.fit.uncertainty`), fit_flagged,
  fit_flag_reasons (the subject's fit-quality verdict, the same in every row). EI_ratio is the
  estimate: the winner's test-stage E/I with its level centred in the near-optimal set
  (``run.json`` ``ei_interval.level_shift_log``); S_E, S_I and r_E are the winner's own
* ``best_parameters.csv`` — region_index, region, wEE, wEI, sigma, G
* ``fit_quality.csv`` — stage (train/val/test), corr_loss, l1_loss, ks_loss, total_loss
* ``run.json`` — versions, seed, settings, timing, search summary, wall times and the run
  fingerprint (:func:`run_fingerprint`: SHA-256 of the inputs, the settings, the version); written
  last, so its presence (with ``"status": "complete"``) marks a finished subject, and a finished
  subject is reused only when its fingerprint matches the current run (:func:`check_finished`).
  ``ei_interval`` (the mean's interval and the spreads) and ``fit_quality`` (flag, reasons,
  metrics; :mod:`delssome_norms.fit.quality`) are null/absent in results of older versions.

``region`` is the region's name as ``run.json`` records it (``provenance.atlas.regions``); a fit
without names, and results of versions before the column, have none (they are read and reused
as they are), and a file whose names differ from ``run.json``'s is refused
(:func:`check_region_names`).

Every file is written atomically through :mod:`delssome_norms.io`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import platform
import shlex
import shutil
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.datasets.maps import load_default_maps
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import calibration_scope
from delssome_norms.fit.checkpoint import flatten_keys
from delssome_norms.fit.group_lock import LOCK_DIR, live_holder
from delssome_norms.fit.settings import FitSettings
from delssome_norms.fit.stages import SubjectResult
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.io import (
    arrays_sha256,
    read_table,
    write_ei_ratio,
    write_fit_quality,
    write_json,
    write_parameters,
    write_table,
)
from delssome_norms.io import ei_table as et
from delssome_norms.io.writers import as_json_data, strict_json

RUN_FORMAT_VERSION = 1
"""Schema version of ``run.json``."""
PARAMETERS_FILE = "best_parameters.csv"
OUTPUT_FILES = (et.EI_RATIO_FILE, PARAMETERS_FILE, "fit_quality.csv", "run.json")
"""Files of a finished subject."""
FAILURE_FILE = "failure.json"
"""Written in a subject's folder when it failed (removed when it later succeeds)."""
FAILURES_TABLE = "failures.csv"
"""The cohort folder's table of every failed subject (:func:`write_failures`)."""
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
    if subject.uses_default_maps(settings.maps) or _given_default_maps(subject, names):
        # given maps equal to the shipped ones (the demo manifest's myelin.csv / gradient.csv)
        # make the same design: the same pipeline as leaving them out
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


def _given_default_maps(subject: SubjectInputs, names: list[str] | None) -> bool:
    """Whether a DK68 subject's given myelin and gradient maps are the shipped default maps,
    value for value, in DK68 order."""
    if subject.myelin is None or subject.gradient is None or names is None:
        return False
    if tuple(names) != DK68_REGIONS:
        return False
    default = load_default_maps()
    return bool(
        np.array_equal(np.asarray(subject.myelin, dtype=np.float64), default.myelin)
        and np.array_equal(np.asarray(subject.gradient, dtype=np.float64), default.gradient)
    )


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
    """``run.json`` of a finished subject (all output files present, status complete), or None.
    An interval written before the calibration compared the TR is judged by it
    (:func:`~delssome_norms.fit.calibration_scope.judge_timing_when_read`)."""
    d = Path(subject_dir)
    if not all((d / f).is_file() for f in OUTPUT_FILES):
        return None
    try:
        run = json.loads((d / "run.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(run, dict) or run.get("status") != "complete":
        return None
    return calibration_scope.judge_timing_when_read(run)


def read_result_values(subject_dir: str | Path, run: Mapping[str, Any]) -> np.ndarray:
    """Regional E/I of a finished subject's ``EI_ratio.csv``, checked against its ``run.json``.

    A file cut short (an interrupted copy of the folder) or edited is refused naming the file:
    its regions must be 0 .. N-1 with positive values, N must be the atlas size ``run.json``
    records, and their mean the recorded ``ei_ratio_mean`` (checks skipped for results of
    versions that did not record them). The ``region`` columns of ``EI_ratio.csv`` and
    ``best_parameters.csv``, where present, must name ``run.json``'s regions
    (:func:`check_region_names`).

    Raises
    ------
    InvalidInputError
        Naming the file and ``--overwrite`` (which rewrites it).
    """
    ei_path = Path(subject_dir) / et.EI_RATIO_FILE
    fix = "(damaged or edited file; rerun with --overwrite to rewrite it)"
    ei = read_table(ei_path, required=(et.REGION_INDEX, et.EI_RATIO))
    ei = ei.sort_values(et.REGION_INDEX)
    idx = pd.to_numeric(ei[et.REGION_INDEX], errors="coerce").to_numpy()
    values = pd.to_numeric(ei[et.EI_RATIO], errors="coerce").to_numpy(dtype=np.float64)
    if not np.array_equal(idx, np.arange(len(ei))):
        raise InvalidInputError(f"region_index must list 0 .. N-1 once each {fix}", str(ei_path))
    bad = np.flatnonzero(~np.isfinite(values) | (values <= 0))
    if bad.size:
        raise InvalidInputError(
            f"EI_ratio must be a positive number in every region; region(s) "
            f"{', '.join(str(int(i)) for i in bad[:5])} have {float(values[bad[0]])} {fix}",
            str(ei_path),
        )
    prov = run.get("provenance")
    atlas = prov.get("atlas") if isinstance(prov, Mapping) else None
    n = atlas.get("n_regions") if isinstance(atlas, Mapping) else None
    if isinstance(n, int) and not isinstance(n, bool) and n != len(values):
        raise InvalidInputError(
            f"has {len(values)} regions but run.json records a fit of {n} {fix}", str(ei_path)
        )
    result = run.get("result")
    mean = result.get(et.MEAN_TARGET) if isinstance(result, Mapping) else None
    if isinstance(mean, (int, float)) and not np.isclose(np.mean(values), mean, rtol=1e-9, atol=0):
        raise InvalidInputError(
            f"regional E/I values average {np.mean(values):.6g} but run.json records "
            f"{et.MEAN_TARGET} {mean:.6g} {fix}",
            str(ei_path),
        )
    check_region_names(subject_dir, run)
    return values


def check_region_names(subject_dir: str | Path, run: Mapping[str, Any]) -> None:
    """Refuse a subject's ``EI_ratio.csv`` or ``best_parameters.csv`` whose ``region`` column
    names other regions than its ``run.json`` (a folder holding files of different fits).

    Files without the column (results of earlier versions, fits without region names) and
    results whose ``run.json`` records no names pass; a missing file is left to its reader.

    Raises
    ------
    InvalidInputError
        Naming the file, the first row that differs (row 1 = the first after the header), its
        ``region_index`` and both names.
    """
    for name in (et.EI_RATIO_FILE, PARAMETERS_FILE):
        path = Path(subject_dir) / name
        if not path.is_file():
            continue
        try:
            cells = et.read_region_cells(path)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise InvalidInputError(f"is not a readable CSV table ({exc})", str(path)) from None
        names = None if cells is None else recorded_regions(run, len(cells))
        if names is None:
            continue
        indexed = [(row, et.region_index_cell(k), region) for row, k, region in cells]
        wrong = [
            (row, k, region)
            for row, k, region in indexed
            if k is None or k >= len(names) or region.strip() != names[k].strip()
        ]
        if wrong:
            row, k, region = wrong[0]
            more = f" (and {len(wrong) - 1} more row(s))" if len(wrong) > 1 else ""
            recorded = (
                f"{names[k]!r} for region_index {k}"
                if k is not None and k < len(names)
                else f"region_index 0..{len(names) - 1} only"
            )
            shown = cells[row - 1][1] if k is None else k
            raise InvalidInputError(
                f"row {row} (region_index {shown}) names region {region!r} but run.json records "
                f"{recorded}{more}: this file is not from the fit that "
                "run.json describes (files of different fits mixed in one folder?); put the "
                "subject's own files together, or refit it with --overwrite",
                str(path),
            )


def recorded_regions(run: Mapping[str, Any], n_regions: int) -> list[str] | None:
    """The ``n_regions`` region names a ``run.json`` records (``provenance.atlas.regions``, in
    the order of its ``EI_ratio.csv`` rows), if any."""
    prov = run.get("provenance")
    atlas = prov.get("atlas") if isinstance(prov, Mapping) else None
    names = atlas.get("regions") if isinstance(atlas, Mapping) else None
    if isinstance(names, list) and len(names) == n_regions and all(isinstance(n, str) for n in names):
        return names
    return None


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


PREVIOUS_DIR = "previous"
"""Subfolder that holds the finished results an ``--overwrite`` refit replaces, until the refit
has written its own (then it is removed); after a failed refit they are still there."""


def set_aside_previous(subject_dir: str | Path) -> None:
    """Clear a subject folder for a refit: set its finished results aside, drop the rest.

    Finished results (:data:`OUTPUT_FILES` with a readable ``run.json``) move to
    :data:`PREVIOUS_DIR` (replacing older ones there) rather than being deleted, so that a refit
    that fails loses nothing; they leave the subject folder's top level, so they are never read
    as the refit's result. Pieces of an interrupted write are deleted (an older complete result
    in :data:`PREVIOUS_DIR` stays), and so are the failure record and the checkpoint. Only files
    this package writes are touched.

    Parameters
    ----------
    subject_dir : path
        The subject's output folder (``--out-dir`` of ``estimate-ei``, one folder of a cohort).
    """
    subject_dir = Path(subject_dir)
    present = [n for n in OUTPUT_FILES if (subject_dir / n).is_file()]
    if present and read_run(subject_dir) is not None:  # a complete result: keep it aside
        previous = subject_dir / PREVIOUS_DIR
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir()
        for name in present:
            os.replace(subject_dir / name, previous / name)
    else:  # pieces of an interrupted write: an older complete result in previous/ stays
        for name in present:
            (subject_dir / name).unlink()
    (subject_dir / FAILURE_FILE).unlink(missing_ok=True)
    shutil.rmtree(subject_dir / "checkpoint", ignore_errors=True)


def _results_intact(subject_dir: Path, run: Mapping[str, Any], overwrite: bool) -> bool:
    """Whether finished results of this run may be reused: their ``EI_ratio.csv`` agrees with
    ``run.json`` (:func:`read_result_values`; e.g. not a copy cut short). With ``overwrite`` a
    damaged result loses its ``run.json`` (the subject is unfinished again and its checkpoint,
    written by this same run, rewrites every file); without, the damage is an error."""
    try:
        read_result_values(subject_dir, run)
    except InvalidInputError as err:
        if not overwrite:
            name = Path(err.source).name if err.source else et.EI_RATIO_FILE
            raise InvalidInputError(f"{name}: {err.problem}", str(subject_dir)) from None
        (subject_dir / "run.json").unlink(missing_ok=True)
        return False
    return True


def check_finished(
    subject_dir: str | Path,
    fingerprint: Mapping[str, Any],
    overwrite: bool = False,
    checkpoint_stale: Callable[[], str | None] | None = None,
    accept: Callable[[dict[str, Any], list[str]], bool] | None = None,
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
        Finished results are set aside in :data:`PREVIOUS_DIR` until the refit writes its own.
    checkpoint_stale : callable, optional
        Returns a message when the subject's checkpoint was written with other inputs/settings.
    accept : callable, optional
        ``accept(run, differences)``: finished results whose fingerprint differs (keys
        ``differences``) still count as finished (a cohort's check of a refit of the subject
        alone with another seed, :func:`~delssome_norms.fit.lone_refit.is_lone_refit`), with
        ``overwrite`` too: the user made that refit deliberately (a failed subject's documented
        way on), and its inputs and other settings are the cohort's (one whose inputs changed
        differs in more than the seed and is refitted).

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
            if not diff or (accept is not None and accept(run, diff)):
                return _results_intact(d, run, overwrite)
            what = f"with other inputs or settings ({', '.join(diff[:8])})"
        else:
            what = "by an older version without a run fingerprint (its inputs cannot be checked)"
        if not overwrite:
            raise InvalidInputError(
                f"holds finished results of subject {run.get('subject_id')!r} written {what}; "
                "use --overwrite to refit, or another output folder",
                str(d),
            )
        set_aside_previous(d)
        return False
    stale = checkpoint_stale() if checkpoint_stale is not None else None
    if stale:
        if not overwrite:
            raise InvalidInputError(
                f"holds a checkpoint that cannot be continued ({stale}); use --overwrite to "
                "start this subject again, or another output folder",
                str(d),
            )
        set_aside_previous(d)
    return False


def run_record(
    subject_id: str,
    ei_ratio: np.ndarray,
    coefficients: np.ndarray,
    run_info: Mapping[str, Any],
    result_info: Mapping[str, Any] | None = None,
    interval: Mapping[str, Any] | None = None,
    quality: Mapping[str, Any] | None = None,
    versions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``run.json`` record of a finished subject (before JSON normalisation).

    Parameters
    ----------
    subject_id : str
    ei_ratio : ndarray of shape (N,)
        Regional E/I (its mean is recorded as ``result.ei_ratio_mean``).
    coefficients : ndarray
        Winning coefficients of the design.
    run_info : mapping
        Settings, timing, seeds, provenance, fingerprint, wall times, ...
    result_info : mapping, optional
        Extra entries of the ``result`` block (they override the computed ones).
    interval, quality : mapping, optional
        The ``ei_interval`` and ``fit_quality`` blocks.
    versions : mapping, optional
        Package versions that produced the numbers (default: this environment's).
    """
    return {
        "format_version": RUN_FORMAT_VERSION,
        "status": "complete",
        "subject_id": subject_id,
        "versions": dict(versions) if versions else package_versions(),
        **dict(run_info),
        "result": {
            "coefficients": np.asarray(coefficients, dtype=np.float64).tolist(),
            et.MEAN_TARGET: float(np.mean(ei_ratio)),
            "ei_ratio_sd_definition": EI_SD_DEFINITION,
            **dict(result_info or {}),
        },
        "ei_interval": interval,
        "fit_quality": quality,
    }


def write_result_files(
    subject_dir: str | Path,
    *,
    columns: Mapping[str, np.ndarray | None],
    parameters: Mapping[str, Any],
    losses: Mapping[str, Mapping[str, float]],
    run: Mapping[str, Any],
) -> None:
    """Write the four output files of a finished subject from arrays (``run.json`` last).

    The one writer of a subject's results (:func:`write_subject_outputs` after a fit,
    :meth:`~delssome_norms.pipeline.EIResult.save` for a result in memory); each file is written
    atomically, and ``run.json`` (which marks the subject finished) only after the others.

    Parameters
    ----------
    subject_dir : path
    columns : mapping
        ``EI_ratio.csv`` columns: ``EI_ratio``, ``S_E``, ``S_I``, ``r_E`` (arrays of shape (N,))
        and the optional ``EI_ratio_sd``, ``EI_ratio_lo``, ``EI_ratio_hi`` (None: left out).
    parameters : mapping
        ``wEE``, ``wEI``, ``sigma`` (shape (N,)) and ``G`` (float).
    losses : mapping
        Stage name -> ``corr_loss``, ``l1_loss``, ``ks_loss``.
    run : mapping
        The ``run.json`` record (:func:`run_record`); its ``fit_quality`` also fills the
        ``fit_flagged`` / ``fit_flag_reasons`` columns, and the region names it records
        (:func:`recorded_regions`) the ``region`` column of ``EI_ratio.csv`` and
        ``best_parameters.csv`` (left out when it records none).
    """
    d = Path(subject_dir)
    names = recorded_regions(run, len(columns[et.EI_RATIO]))  # None: the column is left out
    write_ei_ratio(
        d / et.EI_RATIO_FILE,
        *(columns[k] for k in (et.EI_RATIO, et.S_E, et.S_I, et.R_E)),
        *(columns.get(k) for k in (et.EI_RATIO_SD, et.EI_RATIO_LO, et.EI_RATIO_HI)),
        run.get("fit_quality") or None,
        names,
    )
    p = parameters
    write_parameters(d / PARAMETERS_FILE, p["wEE"], p["wEI"], p["sigma"], float(p["G"]), names)
    write_fit_quality(d / "fit_quality.csv", losses)
    # strict JSON (NaN/inf as null) whatever a metric turned out to be: others' readers refuse NaN
    write_json(strict_json(as_json_data(run)), d / "run.json")
    failure = d / FAILURE_FILE
    if failure.exists():
        failure.unlink()
    shutil.rmtree(d / PREVIOUS_DIR, ignore_errors=True)  # the refit replaced them


def write_subject_outputs(
    subject_dir: str | Path, result: SubjectResult, run_info: Mapping[str, Any]
) -> None:
    """Write the four output files of a subject (``run.json`` last; :func:`write_result_files`).

    Parameters
    ----------
    subject_dir : path
    result : SubjectResult
    run_info : mapping
        Extra JSON-able entries for ``run.json`` (settings, timing, seeds, wall times, ...).
    """
    p = result.params
    write_result_files(
        subject_dir,
        columns={
            et.EI_RATIO: result.ei_ratio,
            et.S_E: result.s_e,
            et.S_I: result.s_i,
            et.R_E: result.r_e,
            et.EI_RATIO_SD: result.ei_ratio_sd,
            et.EI_RATIO_LO: result.ei_lo,
            et.EI_RATIO_HI: result.ei_hi,
        },
        parameters={"wEE": p.wEE[0], "wEI": p.wEI[0], "sigma": p.sigma[0], "G": float(p.G[0])},
        losses=result.losses,
        run=subject_run_record(result, run_info),
    )


def subject_run_record(result: SubjectResult, run_info: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`run_record` of a fit's :class:`~delssome_norms.fit.stages.SubjectResult`."""
    return run_record(
        result.subject_id,
        result.ei_ratio,
        result.coeffs,
        run_info,
        result.info,
        result.interval,
        result.quality,
    )


def previous_note(subject_dir: str | Path) -> str:
    """`` (the results ... are kept in DIR/previous)`` when a failed refit left them there."""
    previous = Path(subject_dir) / PREVIOUS_DIR
    if (previous / "run.json").is_file():
        return f" (the results this refit was to replace are kept in {previous})"
    return ""


def write_failure(subject_dir: str | Path, subject_id: str, stage: str, message: str) -> str:
    """Record that a subject failed (``failure.json`` in its folder); returns the message
    recorded (with :func:`previous_note`)."""
    error = message + previous_note(subject_dir)
    write_json(
        {"subject_id": subject_id, "stage": stage, "error": error}, Path(subject_dir) / FAILURE_FILE
    )
    return error


def read_failures(out_dir: str | Path, subject_ids: Iterable[str]) -> pd.DataFrame:
    """Failure records of ``subject_ids`` under ``out_dir`` (subject_id, stage, error); a
    subject whose fit lock a live process holds is left out (it is being refitted elsewhere)."""

    rows = []
    for sid in subject_ids:
        path = Path(out_dir) / str(sid) / FAILURE_FILE
        if path.is_file() and not is_complete(path.parent) and live_holder(out_dir, str(sid)) is None:
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
    write_table(table, Path(out_dir) / FAILURES_TABLE)
    return table


def in_cohort_folder(subject_dir: str | Path) -> bool:
    """Whether ``subject_dir`` is a subject folder of a cohort run (its parent has the group
    locks or ``failures.csv``)."""
    cohort = Path(subject_dir).parent
    return (cohort / LOCK_DIR).is_dir() or (cohort / FAILURES_TABLE).is_file()


def refit_alone_advice(subject_dir: Path, cohort_gradient: bool = False) -> str:
    """How to refit one subject of a cohort folder (its parent has the group locks or
    ``failures.csv``) with another seed: alone, since the cohort's options would refit
    (or refuse) every subject; "" for a folder of its own. A subject fitted with the cohort's
    FC gradient (``cohort_gradient``) is refitted with it (``--cohort-gradient``)."""
    cohort = subject_dir.parent
    if not in_cohort_folder(subject_dir):
        return ""
    with_gradient = f" --cohort-gradient {shlex.quote(str(cohort))}" if cohort_gradient else ""
    how = (
        f"estimate-ei --out-dir {shlex.quote(str(subject_dir))}{with_gradient} with its inputs "
        "and settings, --seed N and --overwrite (another budget would make another pipeline, "
        "which collect refuses)"
    )
    return (
        f"; for this subject of the cohort in {cohort} (whose --seed would refit every subject), "
        f"refit it alone: {how}; later cohort runs, --overwrite included, keep that refit while "
        "the subject's inputs are unchanged (docs/rerunning.md)"
    )


def update_cohort_failures(subject_dir: Path) -> None:
    """After a fit of one subject in a cohort's subject folder, the cohort's ``failures.csv`` is
    rewritten from the failure records of the subjects it lists and this one: a subject fitted
    (or found finished) leaves it, one whose refit alone failed is listed with that failure."""
    table = subject_dir.parent / FAILURES_TABLE
    if not table.is_file():
        return
    try:
        listed = pd.read_csv(table, dtype=str, keep_default_na=False)["subject_id"].tolist()
    except (OSError, ValueError, KeyError):  # not this package's table: left alone
        return
    failed = (subject_dir / FAILURE_FILE).is_file()
    if subject_dir.name in listed or failed:
        write_failures(subject_dir.parent, list(dict.fromkeys([*listed, subject_dir.name])))
