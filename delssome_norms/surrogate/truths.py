"""Synthetic truths of the surrogate's training data: regional maps, prior draws of the
coefficients inside the fitter's rules, and the subjects simulated at them (used by
:mod:`delssome_norms.surrogate.generate`)."""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import numpy as np

from delssome_norms.datasets import DK68_REGIONS, load_default_maps
from delssome_norms.datasets.maps import standardised
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import Parameterisation, SubjectInputs, design_matrix, synthetic_subject
from delssome_norms.model import scale_sc

if TYPE_CHECKING:
    from delssome_norms.surrogate.generate import GenerateSettings


def truth_maps(sc: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, str]:
    """Regional maps of the synthetic truths and where they came from.

    For 68 regions the shipped default DK68 maps (:func:`~delssome_norms.datasets.load_default_maps`;
    myelin z-scored), so truths span the fitter's default ``[1, myelin, gradient]`` design;
    otherwise no myelin and the leading eigenvector of the (centred) correlation between the rows
    of the scaled SC (a smooth, SC-derived regional map).

    Parameters
    ----------
    sc : ndarray of shape (N, N)
        The SC of the simulations.

    Returns
    -------
    myelin : ndarray of shape (N,) or None
    gradient : ndarray of shape (N,)
    source : str
    """
    n = sc.shape[0]
    if n == len(DK68_REGIONS):
        maps = load_default_maps()
        return standardised(maps.myelin), np.array(maps.gradient), "default DK68 maps (myelin z-scored)"
    proxy = np.corrcoef(np.asarray(scale_sc(sc), dtype=np.float64))
    lead = np.linalg.eigh(proxy - proxy.mean())[1][:, -1]
    lead = (lead - lead.mean()) / lead.std()
    lead = -lead if lead[np.argmax(np.abs(lead))] < 0 else lead
    return None, lead, "leading eigenvector of corr(SC rows), z-scored"


TRUTH_PRIOR: tuple[tuple[float, float], ...] = (
    (2.5, 4.5),
    (-0.3, 0.3),
    (1.6, 3.0),
    (0.3, 0.45),
    (1.5, 3.0),
    (0.002, 0.009),
    (-0.0006, 0.0006),
)
"""Uniform ranges of the ``[1, gradient]`` coefficients [wEE a, b, wEI a, b, G, sigma a, b] of
:func:`sample_truth`."""

TRUTH_PRIOR_MYELIN: tuple[tuple[float, float], ...] = (
    (2.5, 4.5),
    (-0.3, 0.3),
    (-0.3, 0.3),
    (1.6, 3.0),
    (-0.15, 0.0),
    (0.25, 0.4),
    (1.5, 3.0),
    (0.002, 0.009),
    (-0.0006, 0.0006),
    (-0.0006, 0.0006),
)
"""Uniform ranges of the ``[1, myelin (z-scored), gradient]`` coefficients [wEE a, m, g, wEI a, m,
g, G, sigma a, m, g] of :func:`sample_truth`: the ``[1, gradient]`` ranges plus myelin terms of the
same size (wEI's non-positive, as the fitter's validity rule requires)."""


def draw_prior(
    rng: np.random.Generator, ranges: tuple[tuple[float, float], ...] = TRUTH_PRIOR
) -> np.ndarray:
    """One draw of independent uniform coefficients (validity not checked).

    Parameters
    ----------
    rng : numpy.random.Generator
    ranges : tuple of (low, high)
        One uniform range per coefficient (default :data:`TRUTH_PRIOR`).

    Returns
    -------
    ndarray of shape (len(ranges),)
    """
    return np.array([rng.uniform(low, high) for low, high in ranges])


def sample_truth(space: Parameterisation, rng: np.random.Generator, max_draws: int = 1000) -> np.ndarray:
    """Draw valid ground-truth coefficients in a ``[1, gradient]`` or ``[1, myelin, gradient]`` space.

    wEE = a + b g (a ~ U(2.5, 4.5), b ~ U(-0.3, 0.3)); wEI = a + b g (a ~ U(1.6, 3.0),
    b ~ U(0.3, 0.45), so that std(wEI) >= 0.3 and corr(wEI, g) > 0); G ~ U(1.5, 3.0);
    sigma = a + b g (a ~ U(0.002, 0.009), b ~ U(-0.0006, 0.0006)); redrawn until valid. In a
    ``[1, myelin, gradient]`` space the ranges are those of the myelin prior below (wEI's
    gradient slope U(0.25, 0.4), myelin slopes of the same size).

    On the default template (tvb-data SC scaled to max 0.02) this is the part of the search box
    where the simulated FC follows the SC (corr(FC, SC) about 0.15-0.4): with weaker coupling
    (G < 1.5) or wEE > 5 the simulated FC is essentially noise for every candidate, and a
    subject drawn there carries no information about the parameters.

    Parameters
    ----------
    space : Parameterisation
        Design ``[1, gradient]`` (2 columns) or ``[1, myelin, gradient]`` (3 columns).
    rng : numpy Generator
    max_draws : int
        Draws tried before giving up (:class:`~delssome_norms.errors.InvalidInputError`).

    Returns
    -------
    ndarray of shape (7,) or (10,)
        Coefficients in the order of :data:`TRUTH_PRIOR` (2 columns) or
        :data:`TRUTH_PRIOR_MYELIN` (3 columns).
    """
    if space.design.shape[1] not in (2, 3):
        raise InvalidInputError(
            "sample_truth needs the [1, gradient] or [1, myelin, gradient] design", "surrogate generate"
        )
    prior = TRUTH_PRIOR if space.design.shape[1] == 2 else TRUTH_PRIOR_MYELIN
    for _ in range(max_draws):
        c = draw_prior(rng, prior)
        if space.is_valid(c[None])[0]:
            return c
    raise InvalidInputError("could not draw valid ground-truth coefficients", "surrogate generate")


def synthetic_subjects(
    settings: GenerateSettings,
    group: int,
    sc: np.ndarray,
    gradient: np.ndarray,
    max_tries: int = 20,
    myelin: np.ndarray | None = None,
    prefix: str = "syn",
    rate_band: tuple[float, float] | None = None,
    only: Collection[int] | None = None,
) -> tuple[list[SubjectInputs], np.ndarray, np.ndarray, np.ndarray]:
    """The synthetic subjects of lockstep group ``group`` (deterministic in the settings' seed).

    Subject ``i`` is named ``<prefix>-<i:05d>``; its truth and scan depend only on
    ``(settings.seed, i)`` and the timing of its group. With ``rate_band`` [Hz], a truth whose
    simulated time-averaged r_E leaves the band in any region is drawn again (truths in the FIC
    regime, as a fit with ``rate_gate`` requires). With ``only``, just the subjects of the group
    whose numbers ``i`` it holds (the rest of a group that a smaller data set already has).

    Parameters
    ----------
    settings : GenerateSettings
    group : int
        Lockstep group number.
    sc : ndarray of shape (N, N)
        SC of the simulations.
    gradient : ndarray of shape (N,)
        Regional gradient of the design.
    max_tries : int
        Truths drawn per subject before giving up (``ValueError``).
    myelin : ndarray of shape (N,), optional
        Regional myelin map (a ``[1, myelin, gradient]`` design); None: ``[1, gradient]``.
    prefix : str
        Subject-name prefix.
    rate_band : (float, float), optional
        Allowed time-averaged r_E [Hz]; None: not checked.
    only : collection of int, optional
        Subject numbers to make.

    Returns
    -------
    subjects : list of SubjectInputs
    true_regional : ndarray of shape (K, N, 3)
        Their true wEE, wEI, sigma.
    true_g : ndarray of shape (K,)
        Their true G.
    true_ei : ndarray of shape (K, N)
        Their true time-averaged E/I ratio (the simulation their scan was drawn from).
    """
    ids = [i for i in settings.group_numbers(group) if only is None or i in only]
    scan = settings.scan_lengths[group % len(settings.scan_lengths)]
    timing = settings.timing(scan)
    space = Parameterisation(
        design=design_matrix(gradient, myelin, warn=False), gradient=gradient, myelin=myelin
    )
    subjects, truths = [], []
    for i in ids:
        rng = np.random.default_rng([settings.seed, 7, i])
        for attempt in range(max_tries):
            coeffs = sample_truth(space, rng)
            try:
                syn = synthetic_subject(
                    f"{prefix}-{i:05d}",
                    coeffs,
                    space,
                    sc,
                    timing,
                    seed=int(rng.integers(2**31)),
                    n_dup_truth=1,
                    give_maps=settings.give_maps,
                )
            except ValueError:
                if attempt == max_tries - 1:
                    raise
                continue
            if syn.rates_within(rate_band):
                break
            if attempt == max_tries - 1:
                raise ValueError(f"{prefix}-{i:05d}: no truth in the r_E band {rate_band} Hz")
        subjects.append(syn.inputs)
        p = space.to_regional(coeffs[None])
        truths.append((np.stack([p.wEE[0], p.wEI[0], p.sigma[0]], axis=-1), float(p.G[0]), syn.ei_ratio))
    return (
        subjects,
        np.stack([t[0] for t in truths]),
        np.array([t[1] for t in truths]),
        np.stack([t[2] for t in truths]),
    )
