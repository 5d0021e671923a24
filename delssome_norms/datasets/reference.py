"""The SYNTHETIC reference cohort shipped with the package: file format, writer and loaders.

The files live in ``delssome_norms/datasets/data/`` (installed as package data; one copy) and are
produced by ``reference_data/generate.py`` with
:func:`delssome_norms.datasets.synthetic.generate_reference_cohort`.
They are described in ``reference_data/README.md``. Every file says that it is synthetic.

==============================  ================================================================
file                            content
==============================  ================================================================
``reference_manifest.json``     label, format version, seed, the generator's full specification,
                                the E/I mapping, simulation settings, site effects, file hashes
``reference_cohort.npz``        12,005 people: id, age, sex, site, regional E/I (uint16, 1e-4
                                resolution) and their ground-truth wEI coefficients
``reference_subjects.npz``      end-to-end subjects and patients: FC upper triangles (float32),
                                FCD-CDFs (uint16, 1/65535 resolution), true parameters and the
                                simulated E/I at the truth
``reference_patients.csv``      patients in the cohort-table layout with their built-in deviation
``default_gradient.csv``        default gradient of the template, with each region's class
``reference_model.npz``         the SC of every simulation, the calibration points of the E/I
                                mapping and the group FC behind the default gradient
==============================  ================================================================

``.npz`` files are written with fixed zip timestamps so that regenerating gives identical bytes;
read them with ``allow_pickle=False``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from delssome_norms.datasets.atlas import DK68_REGIONS, SENSORY_REGIONS, region_classes
from delssome_norms.datasets.maps import load_default_maps
from delssome_norms.errors import InvalidInputError
from delssome_norms.io.digest import file_sha256
from delssome_norms.io.writers import atomic_path, write_json, write_matrix, write_table

if TYPE_CHECKING:
    from delssome_norms.datasets.synthetic import CohortSpec, EIMapping, ModelSetup, ReferenceCohort

MANIFEST_FILE = "reference_manifest.json"
TABLE_FILE = "reference_cohort.npz"
SUBJECTS_FILE = "reference_subjects.npz"
PATIENTS_FILE = "reference_patients.csv"
GRADIENT_FILE = "default_gradient.csv"
MODEL_FILE = "reference_model.npz"
DATA_FILES = (TABLE_FILE, SUBJECTS_FILE, PATIENTS_FILE, GRADIENT_FILE, MODEL_FILE)
"""Files listed (with SHA-256) in the manifest; the manifest itself is not listed."""

CDF_LEVELS = 65535
"""FCD-CDF values are stored as ``round(cdf * 65535)`` in uint16."""
REGION_CLASS_RULE = (
    "datasets.atlas.region_classes(): a DK68 region is 'sensory' if it contains or borders a primary "
    "sensory or motor area (visual: pericalcarine, cuneus, lingual, lateraloccipital; somatomotor: "
    "precentral, postcentral, paracentral; auditory: transversetemporal, superiortemporal), else "
    "'association'"
)


# --------------------------------------------------------------------------------------------------
# Locations and small helpers
# --------------------------------------------------------------------------------------------------


def data_dir() -> Path:
    """Folder of the packaged reference files (``delssome_norms/datasets/data``)."""
    return Path(str(importlib.resources.files("delssome_norms.datasets").joinpath("data")))


def _path(name: str, folder: str | Path | None) -> Path:
    path = Path(folder) / name if folder is not None else data_dir() / name
    if not path.is_file():
        raise InvalidInputError(
            "reference file not found; regenerate it with `python reference_data/generate.py`",
            str(path),
        )
    return path


def _load_npz(name: str, folder: str | Path | None) -> dict[str, np.ndarray]:
    with np.load(_path(name, folder), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def write_npz_deterministic(arrays: Mapping[str, np.ndarray], path: str | Path) -> Path:
    """Write named arrays to a compressed ``.npz`` with fixed zip timestamps, atomically.

    ``numpy.savez_compressed`` stamps each member with the current time, so two identical writes
    differ; this writes the same ``.npy`` members (readable with ``numpy.load``) with the zip epoch
    (1980-01-01) as their date, so the bytes depend only on the arrays.
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


# --------------------------------------------------------------------------------------------------
# Writer (used by reference_data/generate.py)
# --------------------------------------------------------------------------------------------------


def _table_arrays(cohort: ReferenceCohort) -> dict[str, np.ndarray]:
    from delssome_norms.datasets.synthetic import EI_QUANTUM, FORMAT_VERSION, SYNTHETIC_LABEL

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
    from delssome_norms.datasets.synthetic import FORMAT_VERSION, SYNTHETIC_LABEL

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
    from delssome_norms.datasets.synthetic import PATIENT_DEVIATIONS, ei_table

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
        From :func:`~delssome_norms.datasets.synthetic.generate_reference_cohort`; the subjects
        file is written only when it was generated with ``simulate=True``.
    folder : path
        Output folder (``delssome_norms/datasets/data`` for the committed files).
    simulation : mapping, optional
        Simulation settings recorded in the manifest (timing, engine, precision, seeds).

    Returns
    -------
    dict of file name -> path written (the manifest included).
    """
    from delssome_norms.datasets.synthetic import EI_QUANTUM, FORMAT_VERSION, SYNTHETIC_LABEL, myelin_map

    folder = Path(folder)
    setup = cohort.setup
    written: dict[str, Path] = {}
    written[TABLE_FILE] = write_npz_deterministic(_table_arrays(cohort), folder / TABLE_FILE)
    if cohort.subjects is not None:
        written[SUBJECTS_FILE] = write_npz_deterministic(_subject_arrays(cohort), folder / SUBJECTS_FILE)
    written[PATIENTS_FILE] = write_table(_patient_table(cohort), folder / PATIENTS_FILE)
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
    written[GRADIENT_FILE] = write_table(gradient, folder / GRADIENT_FILE)
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
        "generator": "delssome_norms.datasets.synthetic.generate_reference_cohort",
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


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------


def load_manifest(folder: str | Path | None = None) -> dict[str, Any]:
    """The manifest of the SYNTHETIC reference cohort (a dict; see ``reference_data/README.md``)."""
    return json.loads(_path(MANIFEST_FILE, folder).read_text(encoding="utf-8"))


def load_reference_spec(folder: str | Path | None = None) -> CohortSpec:
    """The :class:`~delssome_norms.datasets.synthetic.CohortSpec` the packaged cohort was made with."""
    from delssome_norms.datasets.synthetic import CohortSpec

    return CohortSpec.from_dict(load_manifest(folder)["spec"])


def load_ei_mapping(folder: str | Path | None = None) -> EIMapping:
    """The calibrated :class:`~delssome_norms.datasets.synthetic.EIMapping` of the packaged cohort."""
    from delssome_norms.datasets.synthetic import EIMapping

    return EIMapping.from_dict(load_manifest(folder)["ei_mapping"])


def load_simulation_sc(folder: str | Path | None = None) -> np.ndarray:
    """The (unscaled) SC every simulation of the reference cohort used, shape (68, 68).

    The tvb-data template transformed with
    :func:`~delssome_norms.datasets.synthetic.simulation_sc` (``log1p(w / min positive w)``).
    Fit the end-to-end subjects with this SC (:func:`materialise_subjects` writes it).
    """
    return _load_npz(MODEL_FILE, folder)["sc"]


def load_model_setup(folder: str | Path | None = None) -> ModelSetup:
    """The packaged :class:`~delssome_norms.datasets.synthetic.ModelSetup` (no simulation).

    Pass it to :func:`~delssome_norms.datasets.synthetic.generate_reference_cohort` to regenerate
    the table (or a null cohort) in seconds.
    """
    from delssome_norms.datasets.synthetic import ModelSetup, WEERule

    manifest = load_manifest(folder)
    model = _load_npz(MODEL_FILE, folder)
    calibration = {k[len("calibration_") :]: v for k, v in model.items() if k.startswith("calibration_")}
    return ModelSetup(
        sc=model["sc"],
        wee_rule=WEERule.from_dict(manifest["wee_rule"]),
        gradient=load_default_gradient(folder),
        mapping=load_ei_mapping(folder),
        group_fc=model.get("gradient_group_fc"),
        calibration=calibration or None,
    )


def load_myelin_map(folder: str | Path | None = None) -> np.ndarray:
    """The z-scored myelin map of the synthetic ground truth (the ``m`` of its design), shape (68,).

    The shipped default myelin map, standardised (see
    :func:`~delssome_norms.datasets.synthetic.myelin_map`).
    """
    return pd.read_csv(_path(GRADIENT_FILE, folder))["myelin_map"].to_numpy(dtype=np.float64)


def load_default_gradient(folder: str | Path | None = None) -> np.ndarray:
    """The gradient of the synthetic ground truth: the shipped default DK68 gradient.

    Equal to :func:`~delssome_norms.datasets.maps.load_default_maps`'s ``gradient`` (real HCP
    group data), z-scored, with sensory regions at its low end, as recorded with the cohort.

    Returns
    -------
    ndarray of shape (68,), float64, in :data:`~delssome_norms.datasets.DK68_REGIONS` order.
    """
    table = pd.read_csv(_path(GRADIENT_FILE, folder))
    return table["gradient"].to_numpy(dtype=np.float64)


def load_reference_table(folder: str | Path | None = None, include_truth: bool = False) -> pd.DataFrame:
    """The SYNTHETIC 12,005-person E/I table in the cohort-table layout of the charts.

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).
    include_truth : bool, default False
        Add the ground truth: the 10 coefficients of the ``[1, class map, gradient]`` design as
        ``true_wEE_1 .. true_sigma_g`` (:data:`~delssome_norms.datasets.synthetic.COEFFICIENT_NAMES`;
        regional parameter = coef_1 + coef_m * class map + coef_g * gradient, see
        :func:`load_myelin_map` and :func:`load_default_gradient`), and the person's site effects
        ``site_wei_offset`` and ``site_scale``.

    Returns
    -------
    pandas.DataFrame
        ``subject_id, age_in_years, sex, site, scanner, site_scanner, numeric_sex, ei_ratio_mean,
        ei_ratio_roi_0 .. ei_ratio_roi_67``; ``ei_ratio_mean`` is the mean of the 68 regional
        values (E/I is unitless).
    """
    d = _load_npz(TABLE_FILE, folder)
    ei = d["ei_ratio_q"].astype(np.float64) * float(d["ei_quantum"])
    site = d["site_index"].astype(np.int64)
    sites, scanners = d["site"].astype(str), d["scanner"].astype(str)
    female = d["numeric_sex"].astype(np.int64)
    table = pd.DataFrame(
        {
            "subject_id": d["subject_id"].astype(str),
            "age_in_years": d["age_in_years"],
            "sex": np.where(female == 1, "female", "male"),
            "site": sites[site],
            "scanner": scanners[site],
            "site_scanner": np.char.add(np.char.add(sites[site], "_"), scanners[site]),
            "numeric_sex": female,
            "ei_ratio_mean": ei.mean(axis=1),
        }
    )
    rois = pd.DataFrame(ei, columns=[f"ei_ratio_roi_{i}" for i in range(ei.shape[1])])
    table = pd.concat([table, rois], axis=1)
    if include_truth:
        from delssome_norms.datasets.synthetic import COEFFICIENT_NAMES, WEERule, coefficient_vectors

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


def load_patients(folder: str | Path | None = None) -> pd.DataFrame:
    """SYNTHETIC patients with a known deviation, in the cohort-table layout.

    Extra columns: ``deviation`` (label), ``deviation_group`` (``sensory``, ``association`` or
    ``all``) and ``deviation_sd`` (the built-in shift of the true E/I of that group, in SD of the
    normative distribution at the patient's age, sex and site). Their FC / FCD-CDF are in
    :func:`load_reference_subjects` (``kind == "patient"``).
    """
    return pd.read_csv(_path(PATIENTS_FILE, folder))


def patient_deviation_z(patients: pd.DataFrame, n_regions: int = 68) -> np.ndarray:
    """Per-region built-in deviation (normative SD) of each patient, shape (P, n_regions)."""
    classes = region_classes(DK68_REGIONS[:n_regions])
    out = np.zeros((len(patients), n_regions))
    for k, (group, z) in enumerate(zip(patients["deviation_group"], patients["deviation_sd"])):
        out[k, (classes == group) if group != "all" else slice(None)] = z
    return out


@dataclass(frozen=True)
class ReferenceSubjects:
    """SYNTHETIC end-to-end subjects and patients with simulated FC / FCD-CDF (K people).

    Attributes
    ----------
    demographics : pandas.DataFrame
        ``subject_id, kind (control/patient), table_index, age_in_years, sex, numeric_sex, site,
        scanner, site_scanner, TR, scan_length``.
    fc : ndarray of shape (K, N, N)
        Simulated FC (mean of 3 duplicates; stored as float32).
    fcd_cdf : ndarray of shape (K, 10000)
        Simulated FCD-CDF (1/65535 resolution; last value 1).
    true_params : dict of ndarray
        The ground truth: ``wEE``, ``wEI``, ``sigma`` (K, N), ``G`` (K,) and ``coefficients``
        (K, 10) of the ``[1, class map, gradient]`` design (patients: before their deviation).
    sim_ei_ratio, sim_s_e, sim_s_i, sim_r_e : ndarray of shape (K, N)
        Time-averaged E/I, S_E, S_I and r_E [Hz] of the ground-truth simulation.
    sim_valid : ndarray of shape (K,), bool
        Every duplicate of the ground-truth simulation stayed finite.
    """

    demographics: pd.DataFrame
    fc: np.ndarray
    fcd_cdf: np.ndarray
    true_params: dict[str, np.ndarray]
    sim_ei_ratio: np.ndarray
    sim_s_e: np.ndarray
    sim_s_i: np.ndarray
    sim_r_e: np.ndarray
    sim_valid: np.ndarray


def load_reference_subjects(folder: str | Path | None = None) -> ReferenceSubjects:
    """The SYNTHETIC end-to-end subjects (and patients) with simulated FC and FCD-CDF."""
    d = _load_npz(SUBJECTS_FILE, folder)
    manifest = load_manifest(folder)
    spec, sim = manifest["spec"], manifest["simulation"]
    sites = spec["sites"]
    site = d["site_index"].astype(np.int64)
    female = d["numeric_sex"].astype(np.int64)
    k = len(site)
    demo = pd.DataFrame(
        {
            "subject_id": d["subject_id"].astype(str),
            "kind": d["kind"].astype(str),
            "table_index": d["table_index"],
            "age_in_years": d["age_in_years"],
            "sex": np.where(female == 1, "female", "male"),
            "numeric_sex": female,
            "site": [sites[s]["name"] for s in site],
            "scanner": [sites[s]["scanner"] for s in site],
            "site_scanner": [f"{sites[s]['name']}_{sites[s]['scanner']}" for s in site],
            "TR": np.full(k, float(sim["tr"])),
            "scan_length": np.full(k, float(sim["scan_length"])),
        }
    )
    tri = d["fc_triu"].astype(np.float64)
    n = round((1 + np.sqrt(1 + 8 * tri.shape[1])) / 2)
    iu = np.triu_indices(n, 1)
    fc = np.repeat(np.eye(n)[None], k, axis=0)
    fc[:, iu[0], iu[1]] = tri
    fc[:, iu[1], iu[0]] = tri
    true_params = {
        "wEE": d["true_wEE"],
        "wEI": d["true_wEI"],
        "sigma": d["true_sigma"],
        "G": d["true_G"],
        "coefficients": d["true_coefficients"],
    }
    return ReferenceSubjects(
        demographics=demo,
        fc=fc,
        fcd_cdf=d["fcd_cdf_q"].astype(np.float64) / CDF_LEVELS,
        true_params=true_params,
        sim_ei_ratio=d["sim_ei_ratio"],
        sim_s_e=d["sim_s_e"],
        sim_s_i=d["sim_s_i"],
        sim_r_e=d["sim_r_e"],
        sim_valid=d["sim_valid"].astype(bool),
    )


def materialise_subjects(
    folder: str | Path,
    kind: str = "all",
    subject_ids: Sequence[str] | None = None,
    source: str | Path | None = None,
) -> Path:
    """Write SYNTHETIC subjects in the reference CSV layout, ready for the CLI.

    Creates in ``folder``: ``<id>_FC.csv`` (N x N) and ``<id>_FCD_CDF.csv`` (10000 x 1) per subject,
    ``manifest.csv`` (``subject_id, tr, scan_length, fc, fcd_cdf, sc, myelin, gradient``),
    ``demographics.csv``, ``sc.csv`` (the SC the subjects were simulated with, unscaled; see
    :func:`load_simulation_sc`), ``myelin.csv`` and ``gradient.csv`` (the shipped default maps,
    :func:`~delssome_norms.datasets.maps.load_default_maps`, whose span holds the ground truth;
    a fit without them uses the same maps by default), one value per row, and the ground
    truth in
    ``truth/<id>_best_parameters.csv`` and ``truth/<id>_EI_ratio.csv`` (the E/I of a simulation at
    the true parameters).

    Parameters
    ----------
    folder : path
        Output folder (created).
    kind : {"all", "control", "patient"}
        Which subjects to write.
    subject_ids : sequence of str, optional
        Only these subjects.
    source : path, optional
        Folder of the reference files (default: the packaged data).

    Returns
    -------
    Path of ``manifest.csv``.
    """
    from delssome_norms.io.writers import write_ei_ratio, write_parameters

    if kind not in ("all", "control", "patient"):
        raise InvalidInputError(f"kind must be 'all', 'control' or 'patient', got {kind!r}")
    subjects = load_reference_subjects(source)
    demo = subjects.demographics
    keep = np.ones(len(demo), bool) if kind == "all" else (demo["kind"] == kind).to_numpy()
    if subject_ids is not None:
        wanted = set(subject_ids)
        unknown = wanted - set(demo["subject_id"])
        if unknown:
            raise InvalidInputError(f"unknown subject ids: {sorted(unknown)}")
        keep = keep & demo["subject_id"].isin(wanted).to_numpy()
    folder = Path(folder)
    rows = []
    for k in np.flatnonzero(keep):
        sid = demo["subject_id"].iat[k]
        fc_name, cdf_name = f"{sid}_FC.csv", f"{sid}_FCD_CDF.csv"
        write_matrix(subjects.fc[k], folder / fc_name)
        write_matrix(subjects.fcd_cdf[k], folder / cdf_name)
        p = subjects.true_params
        write_parameters(
            folder / "truth" / f"{sid}_best_parameters.csv",
            p["wEE"][k],
            p["wEI"][k],
            p["sigma"][k],
            float(p["G"][k]),
        )
        write_ei_ratio(
            folder / "truth" / f"{sid}_EI_ratio.csv",
            subjects.sim_ei_ratio[k],
            subjects.sim_s_e[k],
            subjects.sim_s_i[k],
            subjects.sim_r_e[k],
        )
        row = (sid, demo["TR"].iat[k], demo["scan_length"].iat[k], fc_name, cdf_name)
        rows.append((*row, "sc.csv", "myelin.csv", "gradient.csv"))
    columns = ["subject_id", "tr", "scan_length", "fc", "fcd_cdf", "sc", "myelin", "gradient"]
    manifest = pd.DataFrame(rows, columns=columns)
    write_table(demo[keep].reset_index(drop=True), folder / "demographics.csv")
    write_matrix(load_simulation_sc(source), folder / "sc.csv")
    maps = load_default_maps()
    write_matrix(maps.gradient, folder / "gradient.csv")
    write_matrix(maps.myelin, folder / "myelin.csv")
    return write_table(manifest, folder / "manifest.csv")
