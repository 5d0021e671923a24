"""Packaged data and its loaders: DK68 atlas, default maps and SC template, SYNTHETIC reference cohort.

Loaders only; the cohort's generator is :mod:`delssome_norms.synthetic` (a higher layer).
"""

from delssome_norms.datasets.atlas import DK68_REGIONS, SENSORY_REGIONS, region_classes
from delssome_norms.datasets.maps import RegionalMaps, load_default_maps
from delssome_norms.datasets.reference import (
    load_default_gradient,
    load_patients,
    load_reference_subjects,
    load_reference_table,
    materialise_subjects,
    write_reference_table,
)
from delssome_norms.datasets.template import Template, load_default_template

__all__ = [
    "DK68_REGIONS",
    "SENSORY_REGIONS",
    "RegionalMaps",
    "Template",
    "load_default_gradient",
    "load_default_maps",
    "load_default_template",
    "load_patients",
    "load_reference_subjects",
    "load_reference_table",
    "materialise_subjects",
    "region_classes",
    "write_reference_table",
]
