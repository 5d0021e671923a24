"""The FC gradient's hemisphere guard for any atlas whose region names say the hemisphere.

Region names -> hemisphere for each naming convention, and the guard of ``default_gradient`` /
``build_space`` acting on a 200-region FC (Schaefer-style names) as it does on DK68.
"""

from __future__ import annotations

import numpy as np
import pytest

from delssome_norms.datasets import DK68_REGIONS
from delssome_norms.datasets.hemispheres import hemisphere_from_names
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.design import diffusion_gradient
from delssome_norms.fit.lockstep import build_space, default_gradient
from delssome_norms.fit.subject import SubjectInputs

LR = np.array([0.0, 1.0, 0.0, 1.0])


@pytest.mark.parametrize(
    "names",
    [
        ["lh_cuneus", "rh_cuneus", "lh_insula", "rh_insula"],  # DK68 / aparcstats
        ["ctx-lh-cuneus", "ctx-rh-cuneus", "ctx-lh-insula", "ctx-rh-insula"],  # FreeSurfer LUT
        ["7Networks_LH_Vis_1", "7Networks_RH_Vis_1", "7Networks_LH_Cont_2", "17networks_rh_x"],
        ["L_V1_ROI", "R_V1_ROI", "L_MST_ROI", "R_MST_ROI"],  # Glasser
        ["Precentral_L", "Precentral_R", "Frontal_Sup_2_L", "A8m_R"],  # AAL, Brainnetome
        ["cuneus_lh", "cuneus_rh", "insula_LH", "insula_RH"],
        ["Left-Hippocampus", "Right-Hippocampus", "left caudate", "RIGHT-PUTAMEN"],  # aseg
        ["lh.V1", "rh.V1", "lh.L_MT_ROI", "rh.R_MT_ROI"],
        ['"lh_cuneus"', "'rh_cuneus'", " Left-Caudate ", "precentral_R"],
    ],
)
def test_each_naming_convention_gives_the_hemisphere(names: list[str]) -> None:
    np.testing.assert_array_equal(hemisphere_from_names(names), LR)


def test_dk68_names_give_the_dk68_halves() -> None:
    np.testing.assert_array_equal(hemisphere_from_names(DK68_REGIONS), np.repeat([0.0, 1.0], 34))


@pytest.mark.parametrize(
    "names",
    [
        ["7Networks_LH_Vis_1", "7Networks_RH_Vis_1", "Vermis_1_2"],  # a midline region
        ["Vis_1", "Vis_2", "Vis_3"],  # no marker at all
        ["lh_cuneus", "lh_insula", "lh_precuneus"],  # one hemisphere only
        ["lh_rh_cuneus", "rh_cuneus", "lh_insula"],  # both markers in one name
        ["Vis_L_1", "Vis_R_1"],  # a lone letter inside a name says nothing
        ["roi_1", "roi_2"],
        [],
        None,
        "lh_cuneus",  # one string, not a list of names
    ],
)
def test_mixed_or_absent_markers_give_none(names) -> None:
    assert hemisphere_from_names(names) is None


# --------------------------------------------------------------------------------------------- #
# the guard on a 200-region FC, as on DK68
# --------------------------------------------------------------------------------------------- #
def _schaefer_names(half: int) -> list[str]:
    return [f"7Networks_{h}_Net_{i + 1}" for h in ("LH", "RH") for i in range(half)]


def _lateralised_fc(half: int, hemi_weight: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """FC of 2*half regions (left block, then right in the same order): a hierarchy axis that is
    the same in both hemispheres, a left/right factor, noise."""
    rng = np.random.default_rng(seed)
    axis = np.tile(np.linspace(-1.0, 1.0, half), 2)
    side = np.repeat([-1.0, 1.0], half)
    t = 2000
    ts = (
        np.outer(rng.standard_normal(t), axis)
        + hemi_weight * np.outer(rng.standard_normal(t), side)
        + 0.5 * rng.standard_normal((t, 2 * half))
    )
    fc = np.corrcoef(ts.T)
    fc[0, half] = fc[half, 0] = 0.999  # one homotopic link: connected, but barely
    return fc, axis


@pytest.mark.parametrize("half", [34, 100])
def test_named_atlas_skips_a_component_that_splits_the_hemispheres_as_dk68(half: int) -> None:
    fc, axis = _lateralised_fc(half, hemi_weight=1.0)
    side = np.repeat([0.0, 1.0], half)
    assert abs(np.corrcoef(diffusion_gradient(fc), side)[0, 1]) > 0.9  # unguarded: left vs right
    names = _schaefer_names(half) if half != 34 else None  # DK68: by its order, no names needed
    with pytest.warns(InputWarning, match="separates the hemispheres"):
        g = default_gradient(fc, names)
    assert abs(np.corrcoef(g, axis)[0, 1]) > 0.9
    assert abs(np.corrcoef(g, side)[0, 1]) < 0.5


def test_names_in_another_order_set_the_guard_not_the_position() -> None:
    """Interleaved names (left, right, left, ...; AAL / Brainnetome style) are read as such."""
    fc, axis = _lateralised_fc(100, hemi_weight=1.0)
    perm = np.ravel(np.column_stack([np.arange(100), np.arange(100, 200)]))  # L0 R0 L1 R1 ...
    names = [f"Region{i // 2}_{'L' if i % 2 == 0 else 'R'}" for i in range(200)]
    with pytest.warns(InputWarning, match="separates the hemispheres"):
        g = default_gradient(fc[np.ix_(perm, perm)], names)
    assert abs(np.corrcoef(g, axis[perm])[0, 1]) > 0.9


@pytest.mark.parametrize("half", [34, 100])
def test_named_atlas_whose_hemispheres_fall_apart_is_split_as_dk68(half: int) -> None:
    fc, axis = _lateralised_fc(half, hemi_weight=2.0)
    fc[0, half] = fc[half, 0] = 0.0
    names = _schaefer_names(half) if half != 34 else None
    with pytest.warns(InputWarning, match="two hemispheres"):
        g = default_gradient(fc, names)
    assert abs(np.corrcoef(g, axis)[0, 1]) > 0.95
    assert np.corrcoef(g[:half], g[half:])[0, 1] > 0.95


def test_refusal_without_names_does_not_offer_the_dk68_maps_to_another_atlas() -> None:
    fc, _ = _lateralised_fc(100, hemi_weight=2.0)
    fc[0, 100] = fc[100, 0] = 0.0
    with pytest.raises(InvalidInputError, match="disconnected") as err:
        default_gradient(fc, [f"Net_{i}" for i in range(200)])  # names without a hemisphere
    assert "default maps" not in str(err.value)
    assert "200-region atlas" in str(err.value) and "--myelin" in str(err.value)
    fc68 = np.eye(68)  # DK68: falls apart, but not into its hemispheres
    fc68[:20, :20] = fc68[20:, 20:] = 0.5
    np.fill_diagonal(fc68, 1.0)
    with pytest.raises(InvalidInputError, match="disconnected") as err:
        default_gradient(fc68)
    assert "shipped DK68 maps (--maps default)" in str(err.value)


def test_a_component_reversed_between_the_hemispheres_is_not_the_gradient() -> None:
    """Weakly coupled hemispheres: the first components mix left/right with the axis and the
    next runs the axis one way on the left and the other way on the right; the guard then
    computes the gradient in each hemisphere (as for hemispheres that fall apart)."""
    rng = np.random.default_rng(3)
    n, t = 200, 600
    side = np.repeat([0, 1], 100)
    axis = np.tile(np.linspace(-1.0, 1.0, 100), 2)
    patch = np.tile(np.repeat(np.arange(20), 5), 2)  # local patches shared by homologous regions
    for hemi_weight in (0.3, 0.5, 0.7):  # the review's draws; the third is such an FC
        ts = (
            hemi_weight * rng.standard_normal((t, 2))[:, side]
            + 0.4 * rng.standard_normal((t, 1)) * axis
            + 0.7 * rng.standard_normal((t, 20))[:, patch]
            + rng.standard_normal((t, n))
        )
    fc = np.corrcoef(ts.T)
    assert abs(np.corrcoef(default_gradient(fc), side)[0, 1]) > 0.8  # unguarded: left vs right
    with pytest.warns(InputWarning, match="each hemisphere"):
        g = default_gradient(fc, _schaefer_names(100))
    assert abs(np.corrcoef(g, axis)[0, 1]) > 0.9
    assert abs(np.corrcoef(g, side)[0, 1]) < 0.1


def test_subject_fit_uses_its_region_names_for_the_guard() -> None:
    """build_space (estimate-ei, cohort members, surrogate generate) passes subject.regions."""
    fc, axis = _lateralised_fc(100, hemi_weight=1.0)
    rng = np.random.default_rng(1)
    sc = rng.random((200, 200))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0.0)
    subject = SubjectInputs(
        subject_id="s1",
        fc=fc,
        fcd_cdf=np.linspace(0.0, 1.0, 10000),
        tr=0.72,
        scan_length=864.0,
        sc=sc,
        regions=tuple(_schaefer_names(100)),
    )
    with pytest.warns(InputWarning, match="separates the hemispheres"):
        space, design = build_space(subject)
    assert design == "[1, gradient]; gradient: subject FC"
    assert abs(np.corrcoef(space.gradient, axis)[0, 1]) > 0.9


# --------------------------------------------------------------------------------------------- #
# hemispheres of different sizes (Gordon 333: 161 + 172): no homologous order to pair by
# --------------------------------------------------------------------------------------------- #
def _unequal_fc(n_left: int, n_right: int, hemi_weight: float, reverse_right: bool = False):
    """FC of a hierarchy axis shared by both hemispheres (positions spaced evenly in each), a
    left/right factor and noise; names say the hemisphere. ``reverse_right`` lists the right
    hemisphere's regions from the other end (the order of a file says nothing)."""
    rng = np.random.default_rng(5)
    axis = np.concatenate([np.linspace(-1, 1, n_left), np.linspace(-1, 1, n_right)])
    if reverse_right:
        axis[n_left:] = axis[n_left:][::-1]
    side = np.repeat([-1.0, 1.0], [n_left, n_right])
    t = 2000
    ts = (
        np.outer(rng.standard_normal(t), axis)
        + hemi_weight * np.outer(rng.standard_normal(t), side)
        + 0.5 * rng.standard_normal((t, side.size))
    )
    names = [f"Parcel_{i}_L" for i in range(n_left)] + [f"Parcel_{i}_R" for i in range(n_right)]
    return np.corrcoef(ts.T), axis, names


@pytest.mark.parametrize("n_right", [75, 60])
@pytest.mark.parametrize("reverse_right", [False, True])
def test_hemispheres_that_fall_apart_are_aligned_by_their_fc(n_right: int, reverse_right) -> None:
    """Halves of different sizes were refused (per-hemisphere gradients needed equal halves);
    equal halves listed in another order (Schaefer: networks hold different numbers of parcels
    per hemisphere) were paired by position, which flipped one hemisphere. Each hemisphere's
    component is now aligned with the regions of the other it correlates with most."""
    fc, axis, names = _unequal_fc(60, n_right, hemi_weight=2.0, reverse_right=reverse_right)
    with pytest.warns(InputWarning, match="two hemispheres"):
        g = default_gradient(fc, names)
    assert np.corrcoef(g, axis)[0, 1] ** 2 > 0.9  # one axis, the same sign in both hemispheres
    assert np.corrcoef(g[:60], axis[:60])[0, 1] * np.corrcoef(g[60:], axis[60:])[0, 1] > 0.9


def test_a_component_reversed_between_hemispheres_of_different_sizes_is_seen() -> None:
    """The reversal check paired regions by their order, so it could not look at halves of
    different sizes; it now pairs each right region with the left ones it correlates with most."""
    from delssome_norms.fit.design import _mirrored

    fc, axis, _ = _unequal_fc(60, 75, hemi_weight=1.0, reverse_right=True)
    side = np.repeat([0.0, 1.0], [60, 75])
    reversed_ = np.where(side == 1, -axis, axis)
    assert _mirrored(reversed_, side, fc)
    assert not _mirrored(axis, side, fc)
    assert not _mirrored(reversed_, side)  # without the FC nothing pairs them: not judged
    # equal halves in another order: position says the opposite of what the FC says
    fc, axis, _ = _unequal_fc(60, 60, hemi_weight=1.0, reverse_right=True)
    side = np.repeat([0.0, 1.0], 60)
    reversed_ = np.where(side == 1, -axis, axis)
    assert _mirrored(reversed_, side, fc) and not _mirrored(axis, side, fc)
    assert _mirrored(axis, side)  # by position alone (no FC) the axis looked reversed
