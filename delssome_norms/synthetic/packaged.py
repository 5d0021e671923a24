"""The packaged SYNTHETIC reference cohort, generator side: writer and loaders of generator types.

:func:`write_reference_cohort` writes a :class:`~delssome_norms.synthetic.cohort.ReferenceCohort`
in the layout of ``delssome_norms/datasets/data/`` (described in
:mod:`delssome_norms.datasets.reference`, which reads the files back without the generator;
``reference_data/generate.py`` calls this writer). The loaders here return the generator's own
types (:class:`~delssome_norms.synthetic.spec.CohortSpec`,
:class:`~delssome_norms.synthetic.ei_mapping.EIMapping`,
:class:`~delssome_norms.synthetic.simulation.ModelSetup`) and the table's ground truth.
"""

from __future__ import annotations

import importlib.metadata
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.datasets import reference
from delssome_norms.datasets.atlas import DK68_REGIONS, SENSORY_REGIONS, region_classes
from delssome_norms.datasets.reference import (
    CDF_LEVELS,
    GRADIENT_FILE,
    MANIFEST_FILE,
    MODEL_FILE,
    PATIENTS_FILE,
    REGION_CLASS_RULE,
    SUBJECTS_FILE,
    TABLE_FILE,
    load_default_gradient,
    load_manifest,
    load_npz,
)
from delssome_norms.io.digest import file_sha256
from delssome_norms.io.writers import atomic_path, write_json, write_table
from delssome_norms.synthetic.cohort import COEFFICIENT_NAMES, ReferenceCohort, coefficient_vectors
from delssome_norms.synthetic.demographics import PATIENT_DEVIATIONS, ei_table, myelin_map
from delssome_norms.synthetic.ei_mapping import EIMapping, WEERule
from delssome_norms.synthetic.simulation import ModelSetup
from delssome_norms.synthetic.spec import EI_QUANTUM, FORMAT_VERSION, SYNTHETIC_LABEL, CohortSpec

PACKAGED_FLOAT_FORMAT = "%.17g"
"""Float format of the shipped CSV files (fixed: they are compared byte for byte)."""


def write_npz_deterministic(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write named arrays to a compressed ``.npz`` with fixed zip timestamps, atomically.

    ``numpy.savez_compressed`` stamps each member with the current time, so two identical writes
    differ; this writes the same ``.npy`` members (readable with ``numpy.load``) with the zip epoch
    (1980-01-01) as their date, so the bytes depend only on the arrays.

    Parameters
    ----------
    arrays : mapping of str to ndarray
        Member names (without ``.npy``) and arrays.
    path : path
        Output file.

    Returns
    -------
    Path
        The file written.
    """
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, value in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(value), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)
    return Path(path)


def _package_version() -> str:
    try:
        return importlib.metadata.version("delssome_norms")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - source checkout
        return "unknown"


def _table_arrays(cohort: ReferenceCohort) -> dict[str, np.ndarray]:
    people = cohort.people
    q = np.round(people.ei / EI_QUANTUM)
    if q.min() < 0 or q.max() > np.iinfo(np.uint16).max:
        raise ValueError(f"E/I outside the storable range 0 - {np.iinfo(np.uint16).max * EI_QUANTUM}")
    return {
        "label": np.array(SYNTHETIC_LABEL),
        "format_version": np.array(FORMAT_VERSION),
        "subject_id": people.subject_id.astype("U"),
        "age_in_years": people.age.astype(np.float64),
        "numeric_sex": people.female.astype(np.int8),
        "site_index": people.site.astype(np.int8),
        "site": np.array([s.name for s in cohort.spec.sites]),
        "scanner": np.array([s.scanner for s in cohort.spec.sites]),
        "ei_ratio_q": q.astype(np.uint16),
        "ei_quantum": np.array(EI_QUANTUM),
        "true_wei_intercept": people.wei_intercept.astype(np.float64),
        "true_wei_slope": people.wei_slope.astype(np.float64),
        "site_mean_offset": cohort.site_mean_offset,
        "site_scale": cohort.site_scale,
        "regions": np.array(DK68_REGIONS[: people.ei.shape[1]]),
    }


def _subject_arrays(cohort: ReferenceCohort) -> dict[str, np.ndarray]:
    if cohort.subjects is None:
        raise ValueError("the cohort was generated without simulate=True")
    people, patients, sim, truth = cohort.people, cohort.patients, cohort.subjects, cohort.truth
    idx = cohort.subject_index
    n_pat = len(patients.age)
    iu = np.triu_indices(sim.fc.shape[1], 1)
    cdf_q = np.round(np.clip(sim.fcd_cdf, 0.0, 1.0) * CDF_LEVELS).astype(np.uint16)
    return {
        "label": np.array(SYNTHETIC_LABEL),
        "format_version": np.array(FORMAT_VERSION),
        "subject_id": np.concatenate([people.subject_id[idx], patients.subject_id]).astype("U"),
        "kind": np.array(["control"] * len(idx) + ["patient"] * n_pat),
        "table_index": np.concatenate([idx, np.full(n_pat, -1)]).astype(np.int64),
        "age_in_years": np.concatenate([people.age[idx], patients.age]),
        "numeric_sex": np.concatenate([people.female[idx], patients.female]).astype(np.int8),
        "site_index": np.concatenate([people.site[idx], patients.site]).astype(np.int8),
        "fc_triu": sim.fc[:, iu[0], iu[1]].astype(np.float32),
        "fcd_cdf_q": cdf_q,
        "true_wEE": truth.wee,
        "true_wEI": truth.wei,
        "true_sigma": truth.sigma,
        "true_G": truth.g,
        "true_coefficients": truth.coefficients,
        "sim_ei_ratio": sim.ei_ratio,
        "sim_s_e": sim.s_e,
        "sim_s_i": sim.s_i,
        "sim_r_e": sim.r_e,
        "sim_valid": sim.valid,
    }


def _patient_table(cohort: ReferenceCohort) -> pd.DataFrame:
    table = ei_table(cohort.patients, cohort.spec)
    groups = {label: (group, z) for group, label, z in PATIENT_DEVIATIONS}
    table.insert(7, "deviation", cohort.patient_labels)
    table.insert(8, "deviation_group", [groups[lab][0] for lab in cohort.patient_labels])
    table.insert(9, "deviation_sd", [groups[lab][1] for lab in cohort.patient_labels])
    return table


def write_reference_cohort(
    cohort: ReferenceCohort, folder: str | Path, simulation: Mapping[str, Any] | None = None
) -> dict[str, Path]:
    """Write a generated cohort in the packaged layout (see the module docstring).

    Parameters
    ----------
    cohort : ReferenceCohort
        From :func:`~delssome_norms.synthetic.generate_reference_cohort`; the subjects
        file is written only when it was generated with ``simulate=True``.
    folder : path
        Output folder (``delssome_norms/datasets/data`` for the committed files).
    simulation : mapping, optional
        Simulation settings recorded in the manifest (timing, engine, precision, seeds).

    Returns
    -------
    dict of file name -> path written (the manifest included).
    """
    folder = Path(folder)
    setup = cohort.setup
    written: dict[str, Path] = {}
    written[TABLE_FILE] = write_npz_deterministic(_table_arrays(cohort), folder / TABLE_FILE)
    if cohort.subjects is not None:
        written[SUBJECTS_FILE] = write_npz_deterministic(_subject_arrays(cohort), folder / SUBJECTS_FILE)
    # the shipped CSV files keep their byte layout (17 significant digits), so that a
    # regeneration can be compared with them byte for byte
    written[PATIENTS_FILE] = write_table(
        _patient_table(cohort), folder / PATIENTS_FILE, float_format=PACKAGED_FLOAT_FORMAT
    )
    n = len(setup.gradient)
    gradient = pd.DataFrame(
        {
            "region_index": np.arange(n),
            "region": DK68_REGIONS[:n],
            "gradient": setup.gradient,
            "region_class": region_classes(DK68_REGIONS[:n]),
            "myelin_map": myelin_map(DK68_REGIONS[:n]),
        }
    )
    written[GRADIENT_FILE] = write_table(
        gradient, folder / GRADIENT_FILE, float_format=PACKAGED_FLOAT_FORMAT
    )
    model = {"label": np.array(SYNTHETIC_LABEL), "sc": np.asarray(setup.sc, dtype=np.float64)}
    if setup.group_fc is not None:
        model["gradient_group_fc"] = np.asarray(setup.group_fc, dtype=np.float64)
    model.update({f"calibration_{k}": np.asarray(v) for k, v in (setup.calibration or {}).items()})
    written[MODEL_FILE] = write_npz_deterministic(model, folder / MODEL_FILE)
    spec = cohort.spec
    n_subjects = len(cohort.subject_index) if cohort.subjects is not None else 0
    manifest: dict[str, Any] = {
        "label": SYNTHETIC_LABEL,
        "synthetic": True,
        "format_version": FORMAT_VERSION,
        "generator": "delssome_norms.synthetic.generate_reference_cohort",
        "delssome_norms_version": _package_version(),
        "seed": cohort.seed,
        "effects": spec.effects,
        "counts": {
            "people": len(cohort.people.age),
            "sites": len(spec.sites),
            "regions": n,
            "end_to_end_subjects": n_subjects,
            "patients": len(cohort.patients.age),
        },
        "ei_quantum": EI_QUANTUM,
        "cdf_levels": CDF_LEVELS,
        "spec": spec.to_dict(),
        "ei_mapping": setup.mapping.to_dict(),
        "wee_rule": setup.wee_rule.to_dict(),
        "simulation": dict(simulation or {}),
        "site_effects": [
            {
                "site_scanner": s.site_scanner,
                "n": s.n,
                "age_range": [s.age_min, s.age_max],
                "wEI_mean_offset": float(cohort.site_mean_offset[k]),
                "scale": float(cohort.site_scale[k]),
            }
            for k, s in enumerate(spec.sites)
        ],
        "region_classes": {
            "rule": REGION_CLASS_RULE,
            "sensory": sorted(r for r in DK68_REGIONS[:n] if r in SENSORY_REGIONS),
        },
        "files": {
            name: {"bytes": path.stat().st_size, "sha256": file_sha256(path)}
            for name, path in sorted(written.items())
        },
    }
    written[MANIFEST_FILE] = write_json(manifest, folder / MANIFEST_FILE)
    return written


# -------------------------------------------------------------------------------------------------
# Loaders of the generator's types
# -------------------------------------------------------------------------------------------------


def load_reference_spec(folder: str | Path | None = None) -> CohortSpec:
    """The :class:`~delssome_norms.synthetic.CohortSpec` the packaged cohort was made with.

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    CohortSpec
    """
    return CohortSpec.from_dict(load_manifest(folder)["spec"])


def load_ei_mapping(folder: str | Path | None = None) -> EIMapping:
    """The calibrated :class:`~delssome_norms.synthetic.EIMapping` of the packaged cohort.

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    EIMapping
    """
    return EIMapping.from_dict(load_manifest(folder)["ei_mapping"])


def load_model_setup(folder: str | Path | None = None) -> ModelSetup:
    """The packaged :class:`~delssome_norms.synthetic.ModelSetup` (no simulation).

    Pass it to :func:`~delssome_norms.synthetic.generate_reference_cohort` to regenerate
    the table (or a null cohort) in seconds.

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    ModelSetup
    """
    manifest = load_manifest(folder)
    model = load_npz(MODEL_FILE, folder)
    calibration = {k[len("calibration_") :]: v for k, v in model.items() if k.startswith("calibration_")}
    return ModelSetup(
        sc=model["sc"],
        wee_rule=WEERule.from_dict(manifest["wee_rule"]),
        gradient=load_default_gradient(folder),
        mapping=load_ei_mapping(folder),
        group_fc=model.get("gradient_group_fc"),
        calibration=calibration or None,
    )


def load_reference_table(folder: str | Path | None = None, include_truth: bool = False) -> pd.DataFrame:
    """The SYNTHETIC 12,005-person E/I table, optionally with its ground truth.

    :func:`delssome_norms.datasets.load_reference_table` plus, with ``include_truth``, the truth
    that only the generator can compute.

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).
    include_truth : bool, default False
        Add the ground truth: the 10 coefficients of the ``[1, myelin map, gradient]`` design as
        ``true_wEE_1 .. true_sigma_g`` (:data:`~delssome_norms.synthetic.cohort.COEFFICIENT_NAMES`;
        regional parameter = coef_1 + coef_m * myelin map + coef_g * gradient, see
        :func:`~delssome_norms.datasets.reference.load_myelin_map` and
        :func:`~delssome_norms.datasets.load_default_gradient`), and the person's site effects
        ``site_wei_offset`` and ``site_scale``.

    Returns
    -------
    pandas.DataFrame
        The cohort table (see :func:`delssome_norms.datasets.load_reference_table`) and, with
        ``include_truth``, ``true_wEE_1 .. true_sigma_g``, ``site_wei_offset`` and ``site_scale``.
    """
    table = reference.load_reference_table(folder)
    if not include_truth:
        return table
    d = load_npz(TABLE_FILE, folder)
    site = d["site_index"].astype(np.int64)
    manifest = load_manifest(folder)
    coef = coefficient_vectors(
        d["true_wei_intercept"],
        d["true_wei_slope"],
        load_reference_spec(folder),
        WEERule.from_dict(manifest["wee_rule"]),
    )
    for j, name in enumerate(COEFFICIENT_NAMES):
        table[f"true_{name}"] = coef[:, j]
    table["site_wei_offset"] = d["site_mean_offset"][site]
    table["site_scale"] = d["site_scale"][site]
    return table
