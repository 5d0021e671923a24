"""Maps given as files that equal the shipped default maps (the demo manifest's myelin.csv and
gradient.csv) are the same pipeline as no maps: ``collect`` may combine such fits with fits that
left the maps out. Other maps stay ``given``."""

from __future__ import annotations

import numpy as np

from delssome_norms.datasets import DK68_REGIONS, load_default_maps, load_default_template
from delssome_norms.fit import FitSettings
from delssome_norms.fit.outputs import subject_provenance
from delssome_norms.fit.subject import SubjectInputs


def _subject(myelin=None, gradient=None) -> SubjectInputs:
    fc = np.full((68, 68), 0.2)
    np.fill_diagonal(fc, 1.0)
    return SubjectInputs(
        subject_id="s", fc=fc, fcd_cdf=np.linspace(0, 1, 10000), tr=0.72, scan_length=432.0,
        sc=np.asarray(load_default_template().sc), myelin=myelin, gradient=gradient,
        regions=DK68_REGIONS,
    )  # fmt: skip


def test_given_maps_equal_to_the_defaults_are_the_default_pipeline() -> None:
    maps = load_default_maps()
    design = "[1, myelin, gradient]"
    none = subject_provenance(_subject(), FitSettings(), design)
    same = subject_provenance(_subject(maps.myelin.copy(), maps.gradient.copy()), FitSettings(), design)
    assert same["maps"] == none["maps"] == {"name": "default DK68 maps", "sha256": maps.sha256}
    assert same["pipeline"] == none["pipeline"]
    other = subject_provenance(_subject(maps.myelin[::-1].copy(), maps.gradient), FitSettings(), design)
    assert other["maps"]["name"] == "given" and other["pipeline"] != none["pipeline"]
