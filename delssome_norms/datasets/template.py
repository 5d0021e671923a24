"""The default DK68 structural-connectivity template, loaded from the installed ``tvb-data`` package.

``tvb_data/connectivity/connectivity_68.zip`` (The Virtual Brain project; data under GPL-3) holds a
68-region Desikan-Killiany connectome: ``weights`` (tractography streamline weights),
``tract_lengths`` (mm) and ``centres`` (region names and MNI coordinates, mm). It is read from the
installed wheel, never from the network. The regions are reordered to :data:`DK68_REGIONS`, the
matrix is symmetrised and its diagonal zeroed (the model has no self-connections).

The default SC is the log transform ``log1p(w / min positive w)`` of the tvb-data weights, like the
paper's SC (log streamline counts): the raw weights span five orders of magnitude, and scaled to a
maximum of 0.02 (docs/science.md §1) their row sums are about 0.02 (the paper's SC: about 0.27), which
leaves simulated FC near 0 at every stable parameter set. The raw weights stay available as
:attr:`Template.weights`. The template holds no regional maps: the default DK68 myelin (T1w/T2w)
and RSFC-gradient maps ship separately (:func:`~delssome_norms.datasets.load_default_maps`, real
HCP group data), and a fit without maps of its own uses them in the ``[1, myelin, gradient]`` design.
"""

from __future__ import annotations

import bz2
import importlib.resources
import io
import zipfile
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from delssome_norms.datasets.atlas import DK68_REGIONS
from delssome_norms.errors import InvalidInputError

TVB_CONNECTIVITY = "connectivity_68.zip"
TEMPLATE_CITATION = (
    "Sanz Leon P. et al. (2013) The Virtual Brain: a simulator of primate brain network dynamics. "
    "Front. Neuroinform. 7:10; connectome from the tvb-data package (GPL-3)."
)


@dataclass(frozen=True)
class Template:
    """A structural template: SC weights, tract lengths, region names and centroids.

    Attributes
    ----------
    sc : ndarray of shape (68, 68)
        Default SC: ``log1p(weights / min positive weight)``; symmetric, non-negative, zero
        diagonal, unscaled (the model scales SC to max 0.02).
    weights : ndarray of shape (68, 68)
        The raw tvb-data weights (symmetrised, zero diagonal).
    tract_lengths : ndarray of shape (68, 68)
        Millimetres.
    regions : tuple of str
        Region names in :data:`DK68_REGIONS` order.
    centroids : ndarray of shape (68, 3)
        Region centres in RAS millimetres, approximately MNI (see :func:`_reorient_to_ras`).
    source : str
        Where the data came from.
    """

    sc: np.ndarray
    weights: np.ndarray
    tract_lengths: np.ndarray
    regions: tuple[str, ...]
    centroids: np.ndarray
    source: str


def _tvb_name_to_dk(name: str) -> str:
    hemi, _, region = name.partition("_")
    prefix = {"l": "lh", "r": "rh"}[hemi.lower()]
    return f"{prefix}_{region}".replace(" ", "")


def _read_member(archive: zipfile.ZipFile, stem: str) -> str:
    for member in archive.namelist():
        base = member.rsplit("/", 1)[-1]
        if base.startswith(stem):
            raw = archive.read(member)
            return (bz2.decompress(raw) if base.endswith(".bz2") else raw).decode("utf-8")
    raise InvalidInputError(f"{stem} not found in the tvb-data archive", TVB_CONNECTIVITY)


def log_weights(weights: np.ndarray) -> np.ndarray:
    """``log1p(w / min positive w)``: log-scaled SC that keeps zeros at zero (symmetric in, out).

    Parameters
    ----------
    weights : ndarray of shape (N, N)
        Non-negative SC weights with at least one positive entry.

    Returns
    -------
    ndarray of shape (N, N)
        Symmetrised, zero diagonal.
    """
    w = np.asarray(weights, dtype=np.float64)
    out = np.log1p(w / w[w > 0].min())
    out = 0.5 * (out + out.T)
    np.fill_diagonal(out, 0.0)
    return out


def _reorient_to_ras(raw: np.ndarray) -> np.ndarray:
    """Map tvb-data's centre coordinates to RAS millimetres, roughly aligned with MNI space.

    The file's columns run posterior (+ first column), left (+ second) and superior (+ third) in a
    voxel-like frame; this flips them to x right, y anterior, z superior, puts x = 0 on the midline,
    and shifts y and z so the cortical bounding box is centred at (y, z) = (-18, 15) mm, close to
    MNI152. Good enough for glass-brain marker plots, not for anatomical lookup.
    """
    x = -(raw[:, 1] - raw[:, 1].mean())
    y = -raw[:, 0]
    y = y - 0.5 * (y.min() + y.max()) - 18.0
    z = raw[:, 2] - 0.5 * (raw[:, 2].min() + raw[:, 2].max()) + 15.0
    return np.column_stack([x, y, z])


@lru_cache(maxsize=1)
def load_default_template() -> Template:
    """Load the packaged 68-region DK connectome from ``tvb-data``.

    Returns
    -------
    Template
        See :class:`Template`; arrays are read-only copies.
    """
    try:
        resource = importlib.resources.files("tvb_data.connectivity").joinpath(TVB_CONNECTIVITY)
        raw = resource.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise InvalidInputError(
            "the default template needs the 'tvb-data' package (pip install tvb-data), or pass "
            "your own SC with --sc",
            TVB_CONNECTIVITY,
        ) from None
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        centres = [ln.split() for ln in _read_member(archive, "centres").splitlines() if ln.strip()]
        weights = np.loadtxt(io.StringIO(_read_member(archive, "weights")))
        lengths = np.loadtxt(io.StringIO(_read_member(archive, "tract_lengths")))
    names = [_tvb_name_to_dk(row[0]) for row in centres]
    order = np.array([names.index(r) for r in DK68_REGIONS])
    xyz = _reorient_to_ras(np.array([[float(v) for v in row[1:4]] for row in centres])[order])
    raw = weights[np.ix_(order, order)]
    raw = 0.5 * (raw + raw.T)
    np.fill_diagonal(raw, 0.0)
    sc = log_weights(raw)
    tl = lengths[np.ix_(order, order)]
    for arr in (sc, raw, tl, xyz):
        arr.setflags(write=False)
    return Template(
        sc=sc,
        weights=raw,
        tract_lengths=tl,
        regions=DK68_REGIONS,
        centroids=xyz,
        source=f"tvb-data:{TVB_CONNECTIVITY}",
    )
