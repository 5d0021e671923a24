"""The packaged default template (tvb-data) and the DK68 atlas."""

from __future__ import annotations

import numpy as np

from delssome_norms.datasets import DK68_REGIONS, load_default_template, region_classes


def test_template_is_valid_dk68_connectome() -> None:
    t = load_default_template()
    assert t.sc.shape == (68, 68) and t.regions == DK68_REGIONS
    np.testing.assert_array_equal(t.sc, t.sc.T)
    assert np.all(np.diag(t.sc) == 0) and t.sc.min() >= 0
    # homotopic/hemispheric structure: within-hemisphere connections dominate
    within = t.sc[:34, :34].sum() + t.sc[34:, 34:].sum()
    assert within > 3 * (t.sc[:34, 34:].sum() * 2)
    # left hemisphere centroids have negative x (MNI), right positive
    assert np.all(t.centroids[:34, 0] < t.centroids[34:, 0].min())


def test_region_classes() -> None:
    classes = region_classes()
    assert classes.shape == (68,)
    assert (classes == "sensory").sum() == 18
    assert classes[DK68_REGIONS.index("lh_pericalcarine")] == "sensory"
    assert classes[DK68_REGIONS.index("rh_superiorfrontal")] == "association"


def test_default_sc_is_log_of_raw_weights() -> None:
    t = load_default_template()
    w = np.asarray(t.weights)
    expected = np.log1p(w / w[w > 0].min())
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(t.sc, expected, rtol=1e-12)
    # scaled to max 0.02, the log SC gives realistic total coupling (paper's SC: row sums ~0.27)
    assert 0.1 < (t.sc / t.sc.max() * 0.02).sum(axis=1).mean() < 0.4
