"""Per-subject output files, failure records, and the cohort table for the growth charts.

Per subject (reference-code layout, SCIENCE.md §5, plus an uncertainty column):

* ``EI_ratio.csv`` — region_index, EI_ratio, S_E, S_I, r_E, EI_ratio_sd
* ``best_parameters.csv`` — region_index, wEE, wEI, sigma, G
* ``fit_quality.csv`` — stage (train/val/test), corr_loss, l1_loss, ks_loss, total_loss
* ``run.json`` — versions, seed, settings, timing, search summary and wall times; written last,
  so its presence (with ``"status": "complete"``) marks a finished subject.

Every file is written atomically through :mod:`delssome_norms.io`.
"""

from __future__ import annotations

import json
import platform
import warnings
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.stages import SubjectResult
from delssome_norms.io import (
    read_demographics,
    read_table,
    write_ei_ratio,
    write_fit_quality,
    write_json,
    write_parameters,
    write_table,
)

RUN_FORMAT_VERSION = 1
"""Schema version of ``run.json``."""
OUTPUT_FILES = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv", "run.json")
"""Files of a finished subject."""
FAILURE_FILE = "failure.json"
"""Written in a subject's folder when it failed (removed when it later succeeds)."""
EI_SD_DEFINITION = (
    "sample SD (ddof=1) of S_E/S_I pooled over every valid (candidate, duplicate) test "
    "simulation of the test_top_k best validated candidates"
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


def is_complete(subject_dir: str | Path) -> bool:
    """True when ``subject_dir`` holds a finished subject's outputs."""
    d = Path(subject_dir)
    if not all((d / f).is_file() for f in OUTPUT_FILES):
        return False
    try:
        return json.loads((d / "run.json").read_text(encoding="utf-8")).get("status") == "complete"
    except (OSError, json.JSONDecodeError):
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
        d / "EI_ratio.csv", result.ei_ratio, result.s_e, result.s_i, result.r_e, result.ei_ratio_sd
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
            "ei_ratio_mean": float(np.mean(result.ei_ratio)),
            "ei_ratio_sd_definition": EI_SD_DEFINITION,
            **result.info,
        },
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


CHART_COLUMNS = ("subject_id", "age_in_years", "sex", "numeric_sex", "site", "scanner", "site_scanner")
"""Demographic columns of the cohort table (those present in the demographics)."""


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
        ei_ratio_mean, ei_ratio_roi_0 .. ei_ratio_roi_{N-1}.

    Returns
    -------
    DataFrame
        The table written. Subjects without finished results are skipped with an
        :class:`~delssome_norms.errors.InputWarning`; all subjects must have the same N.
    """
    demo = read_demographics(demographics)
    in_dir = Path(in_dir)
    rows, missing, n_regions = [], [], None
    for _, person in demo.iterrows():
        sid = str(person["subject_id"])
        sdir = in_dir / sid
        if not is_complete(sdir):
            missing.append(sid)
            continue
        ei = read_table(sdir / "EI_ratio.csv", required=("region_index", "EI_ratio"))
        values = ei.sort_values("region_index")["EI_ratio"].to_numpy(dtype=np.float64)
        if n_regions is None:
            n_regions = len(values)
        elif len(values) != n_regions:
            raise InvalidInputError(
                f"has {len(values)} regions but earlier subjects have {n_regions}",
                str(sdir / "EI_ratio.csv"),
            )
        row = {c: person[c] for c in CHART_COLUMNS if c in demo.columns}
        row["ei_ratio_mean"] = float(values.mean())
        row.update({f"ei_ratio_roi_{i}": float(v) for i, v in enumerate(values)})
        rows.append(row)
    if missing:
        shown = ", ".join(missing[:10]) + (
            f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
        )
        warnings.warn(
            f"{len(missing)} subject(s) in {demographics} have no finished results in {in_dir}: {shown}",
            InputWarning,
            stacklevel=2,
        )
    if not rows:
        raise InvalidInputError(
            "no finished subject results found for the people listed", str(demographics)
        )
    table = pd.DataFrame(rows)
    write_table(table, out)
    return table
