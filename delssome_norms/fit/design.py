"""Design matrix of the regional parameterisation and the default RSFC gradient (docs/science.md §5).

Regional parameters are linear in a few regional maps: ``X = [1, myelin, gradient]`` (N x 3). When
no myelin map is available the design falls back to ``X = [1, gradient]`` (N x 2) with an
:class:`~delssome_norms.errors.InputWarning`. When no gradient is given either, the gradient is
computed from FC with :func:`diffusion_gradient` (for a cohort: from the group-average FC).

:func:`diffusion_gradient` follows BrainSpace's ``GradientMaps(approach="dm")`` recipe (Vos de
Wael et al. 2020): keep the top 10 % of each FC row, cosine affinity between the thresholded rows
(negative affinities set to 0), diffusion map with anisotropic normalisation alpha = 0.5; the
principal non-trivial component is returned, z-scored, with a deterministic sign.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence

import numpy as np

from delssome_norms.errors import InputWarning, InvalidInputError

HEMISPHERE_CORR_MAX = 0.5
"""A component whose |correlation| with the hemisphere indicator reaches this separates the
hemispheres rather than following the cortical hierarchy, and is not used as the gradient."""
CANDIDATE_COMPONENTS = 3
"""Components examined, in order of eigenvalue, when the first separates the hemispheres."""
MIN_KEPT = 5
"""Entries of each FC row kept at least (matters below 50 regions; DK68 keeps its top 10 %)."""
GRADIENT_SPARSITY = 0.9
"""Fraction of each FC row set to zero before the affinity (BrainSpace default: keep the top 10 %)."""
DIFFUSION_ALPHA = 0.5
"""Anisotropic diffusion parameter of the diffusion map (BrainSpace default)."""
DK68_N = 68
"""Regions of the DK68 atlas, the only one with shipped maps."""


class FCGradientError(InvalidInputError):
    """An FC whose gradient cannot be computed (:func:`diffusion_gradient`).

    Attributes
    ----------
    reason : str
        The problem without the remedy (a caller that knows where the FC comes from, e.g. a
        cohort's group-average FC, says what to do in its own words).
    parts : list of ndarray or None
        For an affinity graph that falls apart: each part's region indices (FC order), in order
        of their first region; else None.
    """

    def __init__(
        self,
        problem: str,
        source: str | None = None,
        reason: str | None = None,
        parts: list[np.ndarray] | None = None,
    ) -> None:
        super().__init__(problem, source)
        self.reason = problem if reason is None else reason
        self.parts = parts


def _thresholded_rows(fc: np.ndarray, sparsity: float) -> np.ndarray:
    """Zero every entry of a row below that row's ``sparsity`` quantile."""
    x = np.array(fc, dtype=np.float64)
    cut = np.quantile(x, sparsity, axis=1, keepdims=True)
    x[x < cut] = 0.0
    return x


def _cosine_affinity(x: np.ndarray) -> np.ndarray:
    """Cosine similarity between rows, negative values set to zero. Shape (N, N)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    norm[norm == 0] = 1.0
    u = x / norm
    a = u @ u.T
    a[a < 0] = 0.0
    return 0.5 * (a + a.T)


def _diffusion_components(
    affinity: np.ndarray, alpha: float, n_components: int
) -> tuple[np.ndarray, np.ndarray]:
    """Diffusion-map embedding (Coifman & Lafon 2006) without the trivial first component.

    Returns the right eigenvectors of the (alpha-normalised) Markov matrix, shape
    (N, n_components), ordered by decreasing eigenvalue, and all N eigenvalues in that order.
    Their scale is arbitrary (the caller z-scores).
    """
    a = affinity.copy()
    if alpha > 0:
        d = a.sum(axis=1)
        d[d == 0] = 1.0
        d = d**-alpha
        a = d[:, None] * a * d[None, :]
    row = a.sum(axis=1)
    row[row == 0] = 1.0
    d_half = row**-0.5
    sym = d_half[:, None] * a * d_half[None, :]
    vals, vecs = np.linalg.eigh(0.5 * (sym + sym.T))
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    return (vecs * d_half[:, None])[:, 1 : n_components + 1], vals


def _connected(affinity: np.ndarray) -> bool:
    """Whether the graph of a non-negative affinity matrix is connected."""
    from scipy.sparse.csgraph import connected_components

    return connected_components(affinity > 0, directed=False)[0] == 1


PARTNER_REGIONS = 3
"""A region's homologue is stood for by this many regions of the other hemisphere it correlates
with most (homotopic FC is the strongest between hemispheres), unless the FC confirms pairing by
position (:func:`_paired`)."""


def _halves(hemisphere: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Left and right regions' indices when every region is in one of two hemispheres of at
    least 3 regions each; else None."""
    left, right = (
        np.flatnonzero(hemisphere == hemisphere.min()),
        np.flatnonzero(hemisphere == hemisphere.max()),
    )
    if min(left.size, right.size) < 3 or left.size + right.size != hemisphere.size:
        return None
    return left, right


def _paired(
    component: np.ndarray, halves: tuple[np.ndarray, np.ndarray], fc: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """A component's values in the right hemisphere and at each right region's homologue.

    A right region's homologue value is the mean over the :data:`PARTNER_REGIONS` left regions
    whose FC with it is highest (homotopic FC is the strongest across hemispheres). Equal halves
    whose order the FC confirms (for most right regions the left region in the same position is
    among those partners, as in DK68) are paired by position; equal halves in another order
    (Schaefer's networks hold different numbers of parcels per hemisphere) and halves of
    different sizes (Gordon's 161 + 172) by the FC partners. Without ``fc``: by position for
    equal halves, None otherwise.
    """
    left, right = halves
    if fc is None:
        return (component[left], component[right]) if left.size == right.size else None
    cross = fc[np.ix_(right, left)]
    k = min(PARTNER_REGIONS, left.size)
    partners = np.argsort(-cross, axis=1)[:, :k]
    if left.size == right.size:
        same = (partners == np.arange(right.size)[:, None]).any(axis=1)
        if same.mean() >= 0.5:
            return component[left], component[right]
    return component[left][partners].mean(axis=1), component[right]


def _hemisphere_corr(
    component: np.ndarray, halves: tuple[np.ndarray, np.ndarray], fc: np.ndarray | None
) -> float:
    """Correlation of a component between homologous regions of the two hemispheres (NaN when
    it cannot be told: no pairing, or a constant side)."""
    pair = _paired(component, halves, fc)
    if pair is None or pair[0].std() == 0 or pair[1].std() == 0:
        return float("nan")
    return float(np.corrcoef(*pair)[0, 1])


def _mirrored(component: np.ndarray, hemisphere: np.ndarray, fc: np.ndarray | None = None) -> bool:
    """Whether a component runs in opposite directions in the two hemispheres: its values in
    the right hemisphere correlate at most ``-HEMISPHERE_CORR_MAX`` with their homologues'
    (:func:`_paired`)."""
    halves = _halves(hemisphere)
    if halves is None:
        return False
    return bool(_hemisphere_corr(component, halves, fc) <= -HEMISPHERE_CORR_MAX)


def _per_hemisphere_gradient(
    affinity: np.ndarray,
    alpha: float,
    hemisphere: np.ndarray,
    apart: bool = True,
    fc: np.ndarray | None = None,
) -> np.ndarray | None:
    """Principal component of each hemisphere's own affinity graph, aligned across hemispheres.

    Each hemisphere's graph must be connected; with ``apart`` the graph must also have no edge
    between the hemispheres. Each hemisphere's component is z-scored; the right one's sign is
    chosen so that it correlates positively with its homologues' values (:func:`_paired`; halves
    of different sizes need ``fc``). None if the graph does not split that way.
    """
    halves = _halves(hemisphere)
    if halves is None or (halves[0].size != halves[1].size and fc is None):
        return None
    left, right = halves
    if (apart and affinity[np.ix_(left, right)].any()) or not all(
        _connected(affinity[np.ix_(h, h)]) for h in (left, right)
    ):
        return None
    out = np.empty(hemisphere.size)
    for h in (left, right):
        comp = _diffusion_components(affinity[np.ix_(h, h)], alpha, n_components=1)[0][:, 0]
        out[h] = (comp - comp.mean()) / comp.std()
    if _hemisphere_corr(out, halves, fc) < 0:
        out[right] = -out[right]
    return out


def _orient(gradient: np.ndarray, sensory_mask: np.ndarray | None) -> np.ndarray:
    """Fix the arbitrary sign of an eigenvector deterministically.

    With a sensory-region mask the gradient is oriented so that sensory regions sit at its low end
    (the unimodal end of the principal gradient, Margulies et al. 2016; then wEI, which must
    correlate positively with the gradient, is higher in association cortex). Without a mask the
    entry of largest magnitude is made positive.
    """
    if sensory_mask is not None and sensory_mask.any() and (~sensory_mask).any():
        flip = gradient[sensory_mask].mean() > gradient[~sensory_mask].mean()
    else:
        flip = gradient[np.argmax(np.abs(gradient))] < 0
    return -gradient if flip else gradient


def diffusion_gradient(
    fc: np.ndarray,
    sensory_mask: np.ndarray | None = None,
    sparsity: float = GRADIENT_SPARSITY,
    alpha: float = DIFFUSION_ALPHA,
    hemisphere: np.ndarray | None = None,
    regions: Sequence[str] | None = None,
) -> np.ndarray:
    """Principal RSFC gradient of an FC matrix (diffusion map, BrainSpace-style).

    A disconnected affinity graph (whose principal component would only separate its parts) is
    refused (:class:`FCGradientError`, naming the parts' regions). With ``hemisphere`` given, a
    component that mainly separates the hemispheres (|r| >= :data:`HEMISPHERE_CORR_MAX` with
    the indicator), or that runs in opposite directions in them (homologous regions correlate
    <= -:data:`HEMISPHERE_CORR_MAX`; a region's homologue is its most correlated regions of the
    other hemisphere unless the FC confirms pairing by position, :func:`_paired`), is skipped
    for the next one, with an :class:`~delssome_norms.errors.InputWarning`; if the first
    :data:`CANDIDATE_COMPONENTS` all are, the gradient is computed in each hemisphere and
    aligned (each hemisphere connected), else the FC is refused. A graph that falls apart into
    the two hemispheres gets that per-hemisphere gradient too.

    Parameters
    ----------
    fc : ndarray of shape (N, N)
        Functional connectivity (Pearson correlations, unit diagonal); for a cohort pass the
        group-average (Fisher-z mean) FC.
    sensory_mask : ndarray of bool, shape (N,), optional
        Regions at the unimodal end; used only to fix the sign (sensory regions get the low end).
        For the DK68 atlas use ``region_classes() == "sensory"``.
    sparsity : float, default 0.9
        Fraction of each row zeroed before the affinity (keep the top 10 %, and at least
        :data:`MIN_KEPT` entries).
    alpha : float, default 0.5
        Anisotropic diffusion parameter.
    hemisphere : ndarray of shape (N,), optional
        Hemisphere indicator (e.g. 0 left, 1 right); for DK68 see :func:`dk68_hemisphere`, for
        an atlas whose region names say the hemisphere
        :func:`~delssome_norms.datasets.hemispheres.hemisphere_from_names`.
    regions : sequence of str, optional
        The FC's region names in row order: messages name the regions (else their positions).

    Raises
    ------
    FCGradientError
        An FC whose gradient cannot be computed (an :class:`InvalidInputError` naming ``"FC"``).

    Returns
    -------
    ndarray of shape (N,)
        The principal component, z-scored (mean 0, standard deviation 1; unitless).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> axis = np.linspace(-1, 1, 40)
    >>> ts = rng.standard_normal((500, 40)) + np.outer(rng.standard_normal(500), axis)
    >>> g = diffusion_gradient(np.corrcoef(ts.T))
    >>> g.shape, round(float(g.std()), 6), round(abs(float(np.corrcoef(g, axis)[0, 1])), 2)
    ((40,), 1.0, 0.88)
    """
    fc = np.asarray(fc, dtype=np.float64)
    if fc.ndim != 2 or fc.shape[0] != fc.shape[1] or fc.shape[0] < 3:
        raise InvalidInputError(f"expected a square FC matrix with N >= 3, got shape {fc.shape}", "FC")
    # small atlases: keep at least MIN_KEPT entries per row, else the graph falls apart trivially
    sparsity = min(sparsity, 1.0 - MIN_KEPT / fc.shape[0])
    affinity = _cosine_affinity(_thresholded_rows(fc, sparsity))
    n_comp = min(CANDIDATE_COMPONENTS, fc.shape[0] - 1)
    comps, vals = _diffusion_components(affinity, alpha, n_components=n_comp)
    n_parts = int((vals > 1.0 - 1e-10).sum())
    if n_parts > 1 and hemisphere is not None:
        g = _per_hemisphere_gradient(affinity, alpha, np.asarray(hemisphere, dtype=np.float64), fc=fc)
        if g is not None:
            warnings.warn(
                "the FC affinity graph falls apart into the two hemispheres: the gradient is "
                "computed in each hemisphere and aligned between homologous regions",
                InputWarning,
                stacklevel=2,
            )
            return _orient(g, None if sensory_mask is None else np.asarray(sensory_mask, dtype=bool))
    if n_parts > 1:
        parts = disconnected_parts(affinity)
        reason = disconnected_reason(parts, regions)
        raise FCGradientError(f"{reason}; {_remedy(fc.shape[0])}", "FC", reason, parts)
    k = 0
    if hemisphere is not None:
        hemi = np.asarray(hemisphere, dtype=np.float64)
        r = np.array([abs(np.corrcoef(comps[:, c], hemi)[0, 1]) for c in range(n_comp)])
        mirrored = np.array([_mirrored(comps[:, c], hemi, fc) for c in range(n_comp)])
        ok = np.flatnonzero((r < HEMISPHERE_CORR_MAX) & ~mirrored)
        why = (
            f"separates the hemispheres (|r| {r[0]:.2f})"
            if r[0] >= HEMISPHERE_CORR_MAX
            else "runs in opposite directions in the two hemispheres"
        )
        if ok.size == 0:
            g = _per_hemisphere_gradient(affinity, alpha, hemi, apart=False, fc=fc)
            if g is not None:
                warnings.warn(
                    f"the principal FC component {why}, and none of the next {n_comp - 1} "
                    "follows the same order in both hemispheres: the gradient is computed in "
                    "each hemisphere and aligned between homologous regions",
                    InputWarning,
                    stacklevel=2,
                )
                return _orient(g, None if sensory_mask is None else np.asarray(sensory_mask, bool))
        if ok.size == 0:
            reason = (
                f"each of the first {n_comp} components of its gradient separates the "
                "hemispheres or runs in opposite directions in them (|r| with the hemisphere "
                f"{', '.join(f'{v:.2f}' for v in r)})"
            )
            raise FCGradientError(f"{reason}; {_remedy(fc.shape[0])}", "FC", reason)
        k = int(ok[0])
        if k > 0:
            warnings.warn(
                f"the principal FC component {why}; component {k + 1} is used as the gradient",
                InputWarning,
                stacklevel=2,
            )
    comp = comps[:, k]
    std = comp.std()
    if not np.isfinite(std) or std == 0:
        reason = "its gradient is constant: the FC has no usable structure"
        raise FCGradientError(f"{reason}; {_remedy(fc.shape[0])}", "FC", reason)
    g = (comp - comp.mean()) / std
    mask = None if sensory_mask is None else np.asarray(sensory_mask, dtype=bool)
    return _orient(g, mask)


def _remedy(n_regions: int) -> str:
    """What to do instead of a subject's own FC gradient: the shipped maps exist for DK68 only."""
    if n_regions == DK68_N:
        return (
            "give the subject myelin and gradient maps, or use the shipped DK68 maps "
            "(--maps default), maps='default' in Python"
        )
    return (
        f"give the subject myelin and gradient maps of this {n_regions}-region atlas "
        "(estimate-ei --myelin and --gradient, a manifest's myelin and gradient columns, or "
        "myelin= and gradient= in Python; the shipped maps are DK68's)"
    )


def disconnected_parts(affinity: np.ndarray) -> list[np.ndarray]:
    """The connected parts of an affinity graph: each part's region indices, in order of their
    first region."""
    from scipy.sparse.csgraph import connected_components

    _, labels = connected_components(affinity > 0, directed=False)
    parts = [np.flatnonzero(labels == k) for k in np.unique(labels)]
    return sorted(parts, key=lambda idx: int(idx[0]))


def disconnected_reason(parts: Sequence[np.ndarray], regions: Sequence[str] | None = None) -> str:
    """Why an FC whose affinity graph falls apart into ``parts`` gives no gradient, naming the
    parts (:func:`describe_parts`)."""
    return (
        f"its affinity graph (each region's top FC entries) falls apart into {len(parts)} "
        f"disconnected parts ({describe_parts(parts, regions)}), so its principal component "
        "would only separate them"
    )


SHOWN_PARTS = 4
"""Parts of a disconnected FC graph a message describes (the rest are counted)."""
SHOWN_NAMES = 3
"""Region names a message shows of each part."""


def _positions(idx: np.ndarray) -> str:
    """1-based positions as runs: ``1-8, 12, 15-17``."""
    runs, start = [], int(idx[0])
    for prev, cur in itertools.pairwise(idx):
        if cur != prev + 1:
            runs.append((start, int(prev)))
            start = int(cur)
    runs.append((start, int(idx[-1])))
    text = [f"{a + 1}" if a == b else f"{a + 1}-{b + 1}" for a, b in runs]
    return ", ".join(text[:4]) + (", ..." if len(text) > 4 else "")


def describe_parts(parts: Sequence[np.ndarray], regions: Sequence[str] | None = None) -> str:
    """The parts of a disconnected FC graph in words: each part's size and a few of its regions'
    names (``regions``, in FC order), else their positions in the FC (1-based)."""
    named = regions is not None and len(regions) == sum(len(p) for p in parts)
    out = []
    for idx in parts[:SHOWN_PARTS]:
        if named:
            names = [str(regions[int(i)]) for i in idx[:SHOWN_NAMES]]
            what = ", ".join(names) + (", ..." if len(idx) > SHOWN_NAMES else "")
        else:
            what = f"{'row' if len(idx) == 1 else 'rows'} {_positions(idx)}"
        out.append(f"{len(idx)} region{'' if len(idx) == 1 else 's'}: {what}")
    more = len(parts) - SHOWN_PARTS
    return "; ".join(out) + (f"; and {more} more part{'s' if more > 1 else ''}" if more > 0 else "")


def dk68_hemisphere(n_regions: int) -> np.ndarray | None:
    """Hemisphere indicator (0 left, 1 right) of the DK68 order, None for other atlases."""
    if n_regions != DK68_N:
        return None
    return np.repeat([0.0, 1.0], 34)


def design_matrix(
    gradient: np.ndarray, myelin: np.ndarray | None = None, warn: bool = True
) -> np.ndarray:
    """Design matrix ``X`` of the linear regional parameterisation.

    Parameters
    ----------
    gradient : ndarray of shape (N,)
        Principal RSFC gradient (unitless).
    myelin : ndarray of shape (N,), optional
        T1w/T2w myelin map. Without it the fallback ``[1, gradient]`` is used and an
        :class:`~delssome_norms.errors.InputWarning` is issued (unless ``warn=False``).
    warn : bool, default True
        Warn when falling back to ``[1, gradient]``.

    Returns
    -------
    ndarray of shape (N, 3) ``[1, myelin, gradient]`` or (N, 2) ``[1, gradient]``, float64.

    Examples
    --------
    >>> design_matrix(np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.5, 1.2])).shape
    (3, 3)
    """
    gradient = np.asarray(gradient, dtype=np.float64).reshape(-1)
    ones = np.ones_like(gradient)
    if myelin is None:
        if warn:
            warnings.warn(
                "no myelin map given: using the [1, gradient] parameterisation (7 coefficients) "
                "instead of [1, myelin, gradient]",
                InputWarning,
                stacklevel=2,
            )
        return np.column_stack([ones, gradient])
    myelin = np.asarray(myelin, dtype=np.float64).reshape(-1)
    if myelin.shape != gradient.shape:
        raise InvalidInputError(
            f"myelin has {myelin.size} regions but the gradient has {gradient.size}", "myelin"
        )
    return np.column_stack([ones, myelin, gradient])
