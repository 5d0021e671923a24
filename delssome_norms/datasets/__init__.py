"""Packaged data: the DK68 atlas description and the default structural-connectivity template."""

from delssome_norms.datasets.atlas import DK68_REGIONS, SENSORY_REGIONS, region_classes
from delssome_norms.datasets.template import Template, load_default_template

__all__ = ["DK68_REGIONS", "SENSORY_REGIONS", "Template", "load_default_template", "region_classes"]
