"""The SYNTHETIC reference cohort shipped with the package: file format and loaders.

The files live in ``delssome_norms/datasets/data/`` (installed as package data; one copy) and are
produced by ``reference_data/generate.py`` with
:func:`delssome_norms.synthetic.generate_reference_cohort` and written by
:func:`delssome_norms.synthetic.packaged.write_reference_cohort` (the generator sits above
``datasets``; the loaders here need none of it, loaders of the generator's own types are in
:mod:`delssome_norms.synthetic.packaged`). They are described in ``reference_data/README.md``.
Every file says that it is synthetic.

==============================  ================================================================
file                            content
==============================  ================================================================
``reference_manifest.json``     label, format version, seed, the generator's full specification,
                                the E/I mapping, simulation settings, site effects, file hashes
``reference_cohort.npz``        12,005 people: id, age, sex, site, regional E/I (uint16, 2e-4
                                resolution) and their ground-truth wEI coefficients
``reference_subjects.npz``      end-to-end subjects and patients: FC upper triangles (float32),
                                FCD-CDFs (uint16, 1/65535 resolution), true parameters and the
                                simulated E/I at the truth
``reference_patients.csv``      patients in the cohort-table layout with their built-in deviation
``default_gradient.csv``        default gradient of the template, with each region's class
``reference_model.npz``         the SC of every simulation and the calibration points of the E/I
                                mapping (the regional maps are the shipped default maps)
==============================  ================================================================

``.npz`` files are written with fixed zip timestamps so that regenerating gives identical bytes;
read them with ``allow_pickle=False``.

Every loader marks what it returns as synthetic: tables carry ``DataFrame.attrs["synthetic"] =
True`` and the files' label (``attrs["label"]``), subject ids start with ``synth-`` or ``patient-``,
and :class:`ReferenceSubjects` has a ``label``.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from delssome_norms.datasets.atlas import DK68_REGIONS, region_classes
from delssome_norms.datasets.maps import load_default_maps
from delssome_norms.errors import InvalidInputError
from delssome_norms.io import ei_table as et
from delssome_norms.io.writers import write_matrix, write_table

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
SYNTHETIC_ATTR = "synthetic"
"""``DataFrame.attrs`` key set to True on every table these loaders return (with ``"label"``)."""
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
    """Folder of the packaged reference files (``delssome_norms/datasets/data``).

    Returns
    -------
    Path
    """
    return Path(str(importlib.resources.files("delssome_norms.datasets").joinpath("data")))


def _path(name: str, folder: str | Path | None) -> Path:
    path = Path(folder) / name if folder is not None else data_dir() / name
    if not path.is_file():
        raise InvalidInputError(
            "reference file not found; regenerate it with `python reference_data/generate.py`",
            str(path),
        )
    return path


def _mark_synthetic(table: pd.DataFrame, label: str) -> pd.DataFrame:
    """Label a loaded table as synthetic (``attrs``: ``synthetic`` True, ``label``, ``source``)."""
    table.attrs[SYNTHETIC_ATTR] = True
    table.attrs["label"] = str(label)
    table.attrs["source"] = "SYNTHETIC reference cohort of delssome_norms (reference_data/README.md)"
    return table


def load_npz(name: str, folder: str | Path | None) -> dict[str, np.ndarray]:
    """Every array of one packaged ``.npz`` file.

    Parameters
    ----------
    name : str
        File name, e.g. :data:`TABLE_FILE`.
    folder : path or None
        Folder with the reference files (``None``: the packaged data).

    Returns
    -------
    dict of str to ndarray
    """
    with np.load(_path(name, folder), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


# --------------------------------------------------------------------------------------------------
# Loaders
# --------------------------------------------------------------------------------------------------


def load_manifest(folder: str | Path | None = None) -> dict[str, Any]:
    """The manifest of the SYNTHETIC reference cohort (see ``reference_data/README.md``).

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    dict
        The parsed JSON.
    """
    return json.loads(_path(MANIFEST_FILE, folder).read_text(encoding="utf-8"))


def load_simulation_sc(folder: str | Path | None = None) -> np.ndarray:
    """The (unscaled) SC every simulation of the reference cohort used, shape (68, 68).

    The tvb-data template transformed with
    :func:`~delssome_norms.synthetic.simulation_sc` (``log1p(w / min positive w)``).
    Fit the end-to-end subjects with this SC (:func:`materialise_subjects` writes it).

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    ndarray of shape (68, 68)
    """
    return load_npz(MODEL_FILE, folder)["sc"]


def load_myelin_map(folder: str | Path | None = None) -> np.ndarray:
    """The z-scored myelin map of the synthetic ground truth (the ``m`` of its design), shape (68,).

    The shipped default myelin map, standardised (see
    :func:`~delssome_norms.synthetic.myelin_map`).

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    ndarray of shape (68,), float64, in :data:`~delssome_norms.datasets.DK68_REGIONS` order.
    """
    return pd.read_csv(_path(GRADIENT_FILE, folder))["myelin_map"].to_numpy(dtype=np.float64)


def load_default_gradient(folder: str | Path | None = None) -> np.ndarray:
    """The gradient of the synthetic ground truth: the shipped default DK68 gradient.

    Equal to :func:`~delssome_norms.datasets.maps.load_default_maps`'s ``gradient`` (real HCP
    group data), z-scored, with sensory regions at its low end, as recorded with the cohort.

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    ndarray of shape (68,), float64, in :data:`~delssome_norms.datasets.DK68_REGIONS` order.
    """
    table = pd.read_csv(_path(GRADIENT_FILE, folder))
    return table["gradient"].to_numpy(dtype=np.float64)


def load_reference_table(folder: str | Path | None = None) -> pd.DataFrame:
    """The SYNTHETIC 12,005-person E/I table in the cohort-table layout of the charts.

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    pandas.DataFrame
        ``subject_id, age_in_years, sex, site, scanner, site_scanner, numeric_sex, ei_ratio_mean,
        ei_ratio_roi_0 .. ei_ratio_roi_67``; ``ei_ratio_mean`` is the mean of the 68 regional
        values (E/I is unitless). ``attrs``: ``synthetic`` (True), ``label``, ``source``.
    """
    d = load_npz(TABLE_FILE, folder)
    ei = d["ei_ratio_q"].astype(np.float64) * float(d["ei_quantum"])
    site = d["site_index"].astype(np.int64)
    sites, scanners = d["site"].astype(str), d["scanner"].astype(str)
    table = et.cohort_table(
        d["subject_id"], d["age_in_years"], d["numeric_sex"], sites[site], scanners[site], ei
    )
    return _mark_synthetic(table, d["label"])


def write_reference_table(path: str | Path, folder: str | Path | None = None) -> Path:
    """Write the SYNTHETIC reference table (:func:`load_reference_table`) to ``path`` (CSV, or
    Parquet by suffix) with its ``<stem>.regions.csv`` (the DK68 name of each
    ``ei_ratio_roi_<k>``, as ``collect`` writes one), so that ``charts`` and ``stats`` read
    its regions by name, as they read a ``collect`` table; the two files are written together.

    Returns
    -------
    Path
        ``path``.
    """
    from delssome_norms.io.provenance import regions_path
    from delssome_norms.io.writers import write_together

    table = load_reference_table(folder)
    regions = et.regions_frame(DK68_REGIONS)
    write_together(
        [
            (path, lambda p: write_table(table, p)),
            (regions_path(path), lambda p: write_table(regions, p)),
        ]
    )
    return Path(path)


def load_patients(folder: str | Path | None = None) -> pd.DataFrame:
    """SYNTHETIC patients with a known deviation, in the cohort-table layout.

    Extra columns: ``deviation`` (label), ``deviation_group`` (``sensory``, ``association`` or
    ``all``) and ``deviation_sd`` (the built-in shift of the true E/I of that group, in SD of the
    normative distribution at the patient's age, sex and site). Their FC / FCD-CDF are in
    :func:`load_reference_subjects` (``kind == "patient"``).

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    pandas.DataFrame
        ``attrs`` as :func:`load_reference_table`'s.
    """
    table = pd.read_csv(_path(PATIENTS_FILE, folder))
    return _mark_synthetic(table, load_manifest(folder)["label"])


def patient_deviation_z(patients: pd.DataFrame, n_regions: int = 68) -> np.ndarray:
    """Per-region built-in deviation (normative SD) of each patient.

    Parameters
    ----------
    patients : pandas.DataFrame
        :func:`load_patients`' table (``deviation_group``, ``deviation_sd``), P rows.
    n_regions : int
        Number of DK68 regions (the first ``n_regions`` in DK68 order).

    Returns
    -------
    ndarray of shape (P, n_regions)
        Zero outside each patient's deviation group.
    """
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
        scanner, site_scanner, TR, scan_length`` (TR and scan length in seconds).
    fc : ndarray of shape (K, N, N)
        Simulated FC (mean of 3 duplicates; stored as float32).
    fcd_cdf : ndarray of shape (K, 10000)
        Simulated FCD-CDF (1/65535 resolution; last value 1).
    true_params : dict of ndarray
        The ground truth: ``wEE``, ``wEI``, ``sigma`` (K, N), ``G`` (K,) and ``coefficients``
        (K, 10) of the ``[1, myelin map, gradient]`` design (z-scored myelin,
        :func:`load_myelin_map`; patients: before their deviation).
    sim_ei_ratio, sim_s_e, sim_s_i, sim_r_e : ndarray of shape (K, N)
        Time-averaged E/I, S_E, S_I and r_E [Hz] of the ground-truth simulation.
    sim_valid : ndarray of shape (K,), bool
        Every duplicate of the ground-truth simulation stayed finite.
    label : str
        The files' SYNTHETIC label (``demographics.attrs`` carries it too).
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
    label: str = "SYNTHETIC"


def load_reference_subjects(folder: str | Path | None = None) -> ReferenceSubjects:
    """The SYNTHETIC end-to-end subjects (and patients) with simulated FC and FCD-CDF.

    Parameters
    ----------
    folder : path, optional
        Folder with the reference files (default: the packaged data).

    Returns
    -------
    ReferenceSubjects
        Fresh arrays on every call (float64; FC (K, 68, 68), FCD-CDF (K, 10000)).
    """
    d = load_npz(SUBJECTS_FILE, folder)
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
    _mark_synthetic(demo, d["label"])
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
        label=str(d["label"]),
    )


def materialise_subjects(
    folder: str | Path,
    kind: str = "all",
    subject_ids: str | Sequence[str] | None = None,
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
    subject_ids : str or sequence of str, optional
        Only these subjects (a single id may be given as a string). Unknown ids, or a selection
        that leaves no subject (e.g. control ids with ``kind="patient"``), raise
        :class:`~delssome_norms.errors.InvalidInputError`.
    source : path, optional
        Folder of the reference files (default: the packaged data).

    Returns
    -------
    Path
        The written ``manifest.csv`` (``tr`` and ``scan_length`` in seconds).
    """
    from delssome_norms.io.writers import write_ei_ratio, write_parameters

    if kind not in ("all", "control", "patient"):
        raise InvalidInputError(f"kind must be 'all', 'control' or 'patient', got {kind!r}", "kind")
    if subject_ids is not None and not isinstance(subject_ids, str):
        if not isinstance(subject_ids, Iterable) or isinstance(subject_ids, bytes):
            raise InvalidInputError(
                f"must be a subject id or a sequence of ids, got {type(subject_ids).__name__}",
                "subject_ids",
            )
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError("exists and is not a folder; name a folder to write into", str(folder))
    subjects = load_reference_subjects(source)
    demo = subjects.demographics
    keep = np.ones(len(demo), bool) if kind == "all" else (demo["kind"] == kind).to_numpy()
    if subject_ids is not None:
        # one id given as a string means that id (not its characters)
        wanted = {subject_ids} if isinstance(subject_ids, str) else {str(i) for i in subject_ids}
        unknown = wanted - set(demo["subject_id"])
        if unknown:
            raise InvalidInputError(f"unknown subject ids: {sorted(unknown)}", "subject_ids")
        keep = keep & demo["subject_id"].isin(wanted).to_numpy()
    if not keep.any():
        among = "" if subject_ids is None else f" among subject_ids {sorted(wanted)}"
        raise InvalidInputError(f"no subject of kind {kind!r}{among}; nothing to write")
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
