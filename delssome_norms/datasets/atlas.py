"""The 68-region Desikan-Killiany (DK68) cortical atlas: region order and region classes.

The region order (:data:`DK68_REGIONS`) is defined in :mod:`delssome_norms.io.regions` (``io``
reads region-named files and sits below ``datasets``) and re-exported here. Region order is
FreeSurfer's ``aparc`` colour-table order without "unknown" and "corpuscallosum", left hemisphere
(``lh``) then right (``rh``): the order of the paper's reference inputs (``myelin_DK68.csv``,
``SC_group_DK68.csv``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.regions import DK68_REGIONS

__all__ = ["DK68_REGIONS", "SENSORY_REGIONS", "region_classes"]

SENSORY_REGIONS: frozenset[str] = frozenset(
    f"{h}_{r}"
    for h in ("lh", "rh")
    for r in (
        "pericalcarine", "cuneus", "lingual", "lateraloccipital",  # visual
        "precentral", "postcentral", "paracentral",  # somatomotor
        "transversetemporal", "superiortemporal",  # auditory
    )
)  # fmt: skip
"""Primary and unimodal sensory/motor regions (visual, somatomotor, auditory cortex).

Rule: a DK68 region is *sensory* if it contains or borders a primary sensory or motor area
(Mesulam 1998's primary and unimodal zones: calcarine/occipital visual cortex, pre/postcentral and
paracentral sensorimotor cortex, Heschl's gyrus and superior temporal auditory cortex). All other
regions are *association* regions. These regions lie at the unimodal end of the principal RSFC
gradient (Margulies et al. 2016).
"""


def region_classes(regions: Sequence[str] = DK68_REGIONS) -> np.ndarray:
    """Return ``"sensory"`` or ``"association"`` for each region name, as an array of str.

    ``regions`` is a sequence of DK68 names (``lh_cuneus``, ...); names outside
    :data:`SENSORY_REGIONS` are ``"association"``. A single string is refused (it would be read
    character by character).

    Parameters
    ----------
    regions : sequence of str
        Region names (default the DK68 order).

    Returns
    -------
    ndarray of str, shape (len(regions),)
    """
    if isinstance(regions, str):
        raise InvalidInputError(
            f"regions must be a sequence of region names, not one string ({regions!r}); "
            f"use region_classes([{regions!r}])",
            "regions",
        )
    return np.array(["sensory" if r in SENSORY_REGIONS else "association" for r in regions])
