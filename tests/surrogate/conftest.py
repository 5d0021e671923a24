"""Small synthetic surrogate data sets with a known cost function (no simulation needed)."""

from __future__ import annotations

import numpy as np
import pytest

from delssome_norms.surrogate.dataset import SurrogateDataset
from delssome_norms.surrogate.network import SurrogateConfig

N_SMALL = 6
BINS_SMALL = 100


def small_config(**kw) -> SurrogateConfig:
    """A tiny network for N = 6 regions and 100-bin FCD-CDFs."""
    base = dict(
        n_regions=N_SMALL,
        cdf_bins=BINS_SMALL,
        fcd_bins=10,
        d_model=16,
        n_heads=2,
        n_layers=1,
        d_ff=32,
        d_subject=32,
    )
    base.update(kw)
    return SurrogateConfig(**base)


def known_losses(regional: np.ndarray, g: np.ndarray, fc_mean: np.ndarray) -> np.ndarray:
    """A smooth, known cost function of the parameters and the subject's mean FC, in [0, 1].

    corr depends on wEE and G, l1 on the gap between a wEI-derived FC level and the subject's mean
    FC, ks on sigma.
    """
    wee = regional[..., 0].mean(axis=1)
    wei = regional[..., 1].mean(axis=1)
    sig = regional[..., 2].mean(axis=1)
    corr = 1.0 / (1.0 + np.exp(-(wee - 5.5) / 1.5 + (g - 1.5)))
    l1 = np.clip(np.abs(0.1 * wei - fc_mean), 0, 1)
    ks = (sig - 0.0005) / 0.0095
    return np.stack([corr, l1, ks], axis=1)


def make_synthetic(n_subjects: int = 10, per_gen: int = 40, generations: int = 5, seed: int = 0):
    """A data set whose losses are :func:`known_losses` of the candidates."""
    rng = np.random.default_rng(seed)
    n = N_SMALL
    sc = rng.uniform(0, 1, (n, n))
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0)
    sc = sc / sc.max() * 0.02
    fc_triu, dens, fc_means = [], [], []
    for _ in range(n_subjects):
        level = rng.uniform(0.05, 0.45)
        fc = np.full((n, n), level) + rng.normal(0, 0.02, (n, n))
        fc = 0.5 * (fc + fc.T)
        np.fill_diagonal(fc, 1)
        iu = np.triu_indices(n, 1)
        fc_triu.append(fc[iu])
        fc_means.append(fc[iu].mean())
        h = rng.uniform(0, 1, BINS_SMALL)
        dens.append(h / h.sum())
    c = n_subjects * per_gen * generations
    subject = np.repeat(np.arange(n_subjects), per_gen * generations)
    generation = np.tile(np.repeat(np.arange(generations), per_gen), n_subjects)
    regional = np.stack(
        [
            rng.uniform(1, 10, (c, 1)) + rng.normal(0, 0.3, (c, n)),
            rng.uniform(0.5, 4.5, (c, 1)) + rng.normal(0, 0.3, (c, n)),
            rng.uniform(0.0006, 0.0099, (c, 1)) + rng.normal(0, 1e-5, (c, n)),
        ],
        axis=-1,
    )
    g = rng.uniform(0, 3, c)
    losses = known_losses(regional, g, np.asarray(fc_means)[subject])
    losses[3] = np.nan  # one invalid simulation
    return SurrogateDataset(
        subject_id=[f"sub-{i:03d}" for i in range(n_subjects)],
        fc_triu=np.asarray(fc_triu),
        fcd_density=np.asarray(dens),
        tr=np.full(n_subjects, 0.72),
        scan_length=rng.uniform(60, 300, n_subjects),
        sc=np.broadcast_to(sc, (n_subjects, n, n)),
        regional=regional,
        g=g,
        subject=subject,
        generation=generation,
        losses=losses,
        info={"generator": "tests"},
    )


@pytest.fixture
def synthetic_data() -> SurrogateDataset:
    return make_synthetic()


@pytest.fixture
def config_factory():
    """Factory of tiny network settings (:func:`small_config`)."""
    return small_config


@pytest.fixture
def data_factory():
    """Factory of synthetic data sets (:func:`make_synthetic`)."""
    return make_synthetic
