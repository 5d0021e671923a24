"""The shipped default DK68 maps: anatomy the maps must show, and how the fitter uses them."""

from __future__ import annotations

import json

import numpy as np
import pytest

from delssome_norms.datasets import DK68_REGIONS, load_default_maps
from delssome_norms.datasets.maps import MAPS_RECORD, _read_packaged
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.design import diffusion_gradient, dk68_hemisphere
from delssome_norms.fit.lockstep import build_space
from delssome_norms.fit.subject import SubjectInputs

SENSORIMOTOR_VISUAL = {
    "precentral", "postcentral", "paracentral", "pericalcarine", "cuneus", "lingual",
    "transversetemporal", "lateraloccipital",
}  # fmt: skip
DEFAULT_MODE = {
    "precuneus", "posteriorcingulate", "isthmuscingulate", "inferiorparietal",
    "medialorbitofrontal", "superiorfrontal", "middletemporal",
}  # fmt: skip
NAMES = np.array([r[3:] for r in DK68_REGIONS])


def _auc(low: np.ndarray, high: np.ndarray) -> float:
    """P(a value of ``low`` < a value of ``high``), ties counted half (Mann-Whitney)."""
    diff = low[:, None] - high[None, :]
    return float((diff < 0).mean() + 0.5 * (diff == 0).mean())


@pytest.mark.parametrize("name", ["myelin", "gradient"])
def test_maps_are_not_lateralised(name: str) -> None:
    values = getattr(load_default_maps(), name)
    assert values.shape == (68,) and np.isfinite(values).all()
    assert np.corrcoef(values[:34], values[34:])[0, 1] >= 0.8


def test_myelin_is_highest_in_sensory_and_motor_cortex() -> None:
    myelin = load_default_maps().myelin
    pooled = {n: myelin[NAMES == n].mean() for n in set(NAMES)}
    top5 = sorted(pooled, key=pooled.get, reverse=True)[:5]
    assert len(set(top5) & SENSORIMOTOR_VISUAL) >= 4, top5


def test_gradient_separates_sensory_from_default_mode_regions() -> None:
    g = load_default_maps().gradient
    sensory = g[np.isin(NAMES, list(SENSORIMOTOR_VISUAL))]
    dmn = g[np.isin(NAMES, list(DEFAULT_MODE))]
    assert _auc(sensory, dmn) >= 0.9
    assert g.mean() == pytest.approx(0.0, abs=1e-6) and g.std() == pytest.approx(1.0, abs=1e-5)


def test_maps_are_read_only_and_checksummed() -> None:
    maps = load_default_maps()
    with pytest.raises(ValueError):
        maps.myelin[0] = 0.0
    record = json.loads(_read_packaged(MAPS_RECORD))
    assert record["csv_sha256"] == maps.sha256
    assert record["check"]["myelin_r_between_labelings"] >= 0.95


def _subject(n: int = 68, **maps) -> SubjectInputs:
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((300, n)) + rng.standard_normal((300, 1))
    fc = np.corrcoef(ts.T)
    sc = np.abs(rng.standard_normal((n, n)))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0.0)
    cdf = np.linspace(0.0, 1.0, 10000)
    return SubjectInputs("s", fc, cdf, 0.72, 432.0, sc, **maps)


def test_a_subject_without_maps_gets_the_default_ten_coefficient_design() -> None:
    maps = load_default_maps()
    space, design = build_space(_subject())
    np.testing.assert_array_equal(
        space.design, np.column_stack([np.ones(68), maps.myelin, maps.gradient])
    )
    assert design == "[1, myelin, gradient]; gradient: default DK68 maps"
    own = np.linspace(-1.0, 1.0, 68)
    space, design = build_space(_subject(gradient=own))
    np.testing.assert_array_equal(space.design[:, -1], own)
    assert space.design.shape[1] == 2 and design.endswith("given")


def _lateralised_fc(hemi_weight: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """FC of 68 regions with a hierarchy axis (same in both hemispheres) and a left/right factor."""
    rng = np.random.default_rng(seed)
    axis = np.tile(np.linspace(-1.0, 1.0, 34), 2)
    side = np.repeat([-1.0, 1.0], 34)
    t = 2000
    ts = (
        np.outer(rng.standard_normal(t), axis)
        + hemi_weight * np.outer(rng.standard_normal(t), side)
        + 0.5 * rng.standard_normal((t, 68))
    )
    return np.corrcoef(ts.T), axis


def test_fc_gradient_skips_a_component_that_splits_the_hemispheres() -> None:
    fc, axis = _lateralised_fc(hemi_weight=1.0)
    fc[0, 34] = fc[34, 0] = 0.999  # one homotopic link: connected, but barely
    plain = diffusion_gradient(fc)
    assert abs(np.corrcoef(plain, dk68_hemisphere(68))[0, 1]) > 0.9  # the old behaviour
    with pytest.warns(InputWarning, match="separates the hemispheres"):
        g = diffusion_gradient(fc, hemisphere=dk68_hemisphere(68))
    assert abs(np.corrcoef(g, axis)[0, 1]) > 0.9
    assert abs(np.corrcoef(g, dk68_hemisphere(68))[0, 1]) < 0.5


def test_fc_gradient_of_hemispheres_that_fall_apart_is_aligned_per_hemisphere() -> None:
    fc, axis = _lateralised_fc(hemi_weight=2.0)
    with pytest.raises(InvalidInputError, match="disconnected"):
        diffusion_gradient(fc)  # without hemisphere labels: refused, not a silent split
    with pytest.warns(InputWarning, match="two hemispheres"):
        g = diffusion_gradient(fc, hemisphere=dk68_hemisphere(68))
    assert abs(np.corrcoef(g, axis)[0, 1]) > 0.95
    assert np.corrcoef(g[:34], g[34:])[0, 1] > 0.95
    assert abs(g[:34].mean() - g[34:].mean()) < 1e-9


def test_fc_gradient_refuses_a_graph_that_falls_apart_otherwise() -> None:
    fc = np.eye(68)
    fc[:20, :20] = fc[20:, 20:] = 0.5
    np.fill_diagonal(fc, 1.0)
    with pytest.raises(InvalidInputError, match="disconnected"):
        diffusion_gradient(fc, hemisphere=dk68_hemisphere(68))
