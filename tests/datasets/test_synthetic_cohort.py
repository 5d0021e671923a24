"""Generator functions of the SYNTHETIC reference cohort, checked against independent expectations.

These tests need no packaged data: the model's E/I mapping is compared with a scalar root-finder
written from docs/science.md §2, the network Jacobian with finite differences of the model equations,
the trajectories with their specification, and the writer with itself (byte-identical output).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from delssome_norms import synthetic as syn
from delssome_norms.datasets import region_classes
from delssome_norms.synthetic.packaged import write_npz_deterministic

# docs/science.md §2 constants, written out independently of the package.
I0, W_E, W_I, J = 0.382, 1.0, 0.7, 0.15
GAMMA, A_E, B_E, D_E, TAU_E = 0.641, 310.0, 125.0, 0.16, 0.1
A_I, B_I, D_I, TAU_I = 615.0, 177.0, 0.087, 0.01


def _h(x: float, a: float, b: float, d: float) -> float:
    y = a * x - b
    return 1.0 / d if abs(y) < 1e-12 else y / (1.0 - math.exp(-d * y))


def _fixed_point_ei_scalar(wei: float) -> float:
    s_e = brentq(lambda s: s / (TAU_E * GAMMA * (1.0 - s)) - 3.0, 1e-6, 0.9, xtol=1e-15)
    i_i = brentq(
        lambda x: x - (W_I * I0 + J * wei * s_e - TAU_I * _h(x, A_I, B_I, D_I)), -1.0, 2.0, xtol=1e-15
    )
    return s_e / (TAU_I * _h(i_i, A_I, B_I, D_I))


@pytest.mark.parametrize("wei", [0.0, 0.75, 1.5, 2.2, 3.1, 4.4, 6.0])
def test_fixed_point_ei_matches_scalar_root_finding(wei: float) -> None:
    expected = _fixed_point_ei_scalar(wei)
    assert syn.fixed_point_ei(wei, exact=True) == pytest.approx(expected, rel=1e-10)
    assert syn.fixed_point_ei(wei) == pytest.approx(expected, rel=1e-10)


def test_fixed_point_ei_is_decreasing_and_in_the_documented_range() -> None:
    w = np.linspace(0.5, 5.0, 200)
    ei = syn.fixed_point_ei(w)
    assert np.all(np.diff(ei) < 0)
    # docs/science.md §4: near the FIC fixed point E/I is about 2-3.6 for S_I of 0.04-0.07
    assert syn.fixed_point_ei(1.4) == pytest.approx(3.6, abs=0.05)
    assert syn.fixed_point_ei(3.6) == pytest.approx(2.0, abs=0.05)


def test_mapping_inverse_round_trip_and_noise_shift() -> None:
    mapping = syn.EIMapping(coefficients=(0.002, -0.001, 0.0005))
    w = np.array([[0.6, 1.7], [2.9, 4.2]])
    assert mapping.inverse(mapping(w, 0.005), 0.005) == pytest.approx(w, abs=1e-10)
    rel = mapping(w, 0.005) / syn.fixed_point_ei(w) - 1
    x = w - 2.0
    assert rel == pytest.approx(0.002 - 0.001 * x + 0.0005 * x * x, abs=1e-14)
    # the shift scales with sigma^2 and vanishes without noise
    assert mapping.relative_shift(w, 0.0) == pytest.approx(np.zeros_like(w))
    assert mapping.relative_shift(w, 0.01) == pytest.approx(4 * mapping.relative_shift(w, 0.005))


def test_population_intercept_hits_the_target_mean() -> None:
    mapping = syn.EIMapping()
    pattern = 0.36 * np.linspace(-1.7, 1.7, 68)
    target = np.array([2.7, 3.0, 3.5])
    a = syn.population_intercept(target, pattern, 0.005, mapping)
    achieved = mapping(a[:, None] + pattern[None, :], 0.005).mean(axis=1)
    assert achieved == pytest.approx(target, abs=1e-9)


def test_trajectory_has_the_four_phases_and_the_null_is_flat() -> None:
    t = syn.TrajectorySpec()
    ages = np.arange(4.5, 98.41, 0.1)
    rate = np.gradient(syn.target_trajectory(ages, t), ages)

    def slope(lo: float, hi: float) -> float:
        return float(rate[(ages >= lo) & (ages <= hi)].mean())

    assert slope(5, 15) < -0.02  # steep childhood fall
    assert abs(slope(20, 30)) < 0.2 * abs(slope(40, 65))  # plateau
    assert slope(40, 65) < -0.005  # mid-life fall
    assert slope(80, 98.4) > 0.005  # rise in very old age
    flat = syn.target_trajectory(ages, t.flat())
    assert np.ptp(flat) == 0.0 and flat[0] == t.plateau


def test_null_spec_switches_every_effect_off() -> None:
    null = syn.CohortSpec().without_effects()
    assert not null.effects
    assert null.female_shift == 0.0 and null.female_sd_ratio == 1.0
    assert null.gradient_slope == 0.0 and null.gradient_slope_log_sd == 0.0
    assert null.trajectory == syn.TrajectorySpec().flat()
    # everything else (sites, noise, model) is shared with the effect cohort
    assert dataclasses.replace(null, trajectory=syn.TrajectorySpec()).sites == syn.CohortSpec().sites


def test_spec_round_trips_through_a_dict() -> None:
    spec = syn.CohortSpec(female_shift=0.05)
    assert syn.CohortSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="sites hold"):
        syn.CohortSpec(n_people=10)


def test_demographics_follow_the_site_table() -> None:
    spec = syn.CohortSpec()
    age, female, site = syn.sample_demographics(np.random.default_rng(1), spec)
    assert len(age) == spec.n_people == 12005
    assert age.min() == 4.5 and age.max() == 98.4
    counts = np.bincount(site, minlength=len(spec.sites))
    assert counts.tolist() == [s.n for s in spec.sites]
    for k, s in enumerate(spec.sites):
        assert s.age_min <= age[site == k].min() and age[site == k].max() <= s.age_max
    n = spec.n_people
    assert abs(female.sum() - n / 2) < 4 * math.sqrt(n / 4)
    # more children and young adults than very old people
    assert (age < 30).sum() > 4 * (age >= 80).sum()


def test_site_effects_are_centred() -> None:
    offset, scale = syn.sample_site_effects(np.random.default_rng(3), syn.CohortSpec())
    assert offset.shape == scale.shape == (14,)
    assert offset.mean() == pytest.approx(0.0, abs=1e-15)
    assert np.log(scale).mean() == pytest.approx(0.0, abs=1e-15)


def _drift(x: np.ndarray, wee, wei, w_ie, g, sc) -> np.ndarray:
    """pFIC drift from docs/science.md §2 (independent of the package), x = [S_E, S_I]."""
    n = len(wee)
    s_e, s_i = x[:n], x[n:]
    i_e = W_E * I0 + wee * J * s_e + g * J * (sc @ s_e) - w_ie * s_i
    i_i = W_I * I0 + wei * J * s_e - s_i
    r_e = np.array([_h(v, A_E, B_E, D_E) for v in i_e])
    r_i = np.array([_h(v, A_I, B_I, D_I) for v in i_i])
    return np.concatenate([-s_e / TAU_E + (1 - s_e) * GAMMA * r_e, -s_i / TAU_I + r_i])


def test_network_jacobian_matches_finite_differences() -> None:
    import torch

    from delssome_norms.model.fic import solve_fic

    rng = np.random.default_rng(0)
    n = 5
    sc = rng.random((n, n))
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0)
    wee, wei, g = rng.uniform(2, 4, n), rng.uniform(1.5, 3, n), 1.3
    jac = syn.network_jacobian(wee[None], wei[None], np.array([g]), sc)[0]
    scs = sc * 0.02 / sc.max()
    sol = solve_fic(
        torch.tensor(wee[None]), torch.tensor(wei[None]), torch.tensor([g], dtype=torch.float64),
        torch.tensor(scs),
    )  # fmt: skip
    w_ie = sol.w_ie[0].numpy()
    x0 = np.concatenate([np.full(n, sol.s_e), sol.s_i[0].numpy()])
    assert np.abs(_drift(x0, wee, wei, w_ie, g, scs)).max() < 1e-8  # FIC fixed point
    fd = np.empty((2 * n, 2 * n))
    h = 1e-7
    for j in range(2 * n):
        e = np.zeros(2 * n)
        e[j] = h
        fd[:, j] = (_drift(x0 + e, wee, wei, w_ie, g, scs) - _drift(x0 - e, wee, wei, w_ie, g, scs)) / (
            2 * h
        )
    assert jac == pytest.approx(fd, rel=1e-5, abs=1e-4)


def test_wee_rule_puts_the_network_at_the_requested_margin() -> None:
    rng = np.random.default_rng(2)
    n = 6
    sc = rng.random((n, n))
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0)
    rule = syn.fit_wee_rule(2.0, 0.5, sc, grid=np.array([1.0, 1.5, 2.0, 2.5, 3.0]), tol=1e-9)
    for w in (1.0, 2.0, 3.0):
        rate = syn.max_growth_rate(np.full((1, n), rule(w)), np.full((1, n), w), np.array([2.0]), sc)
        assert rate[0] == pytest.approx(-0.5, abs=1e-6)
    assert np.all(np.diff(rule.wee) > 0)  # more inhibition tolerates more recurrent excitation
    assert syn.WEERule.from_dict(rule.to_dict()) == rule
    a, wei = np.array([2.0]), np.array([[1.5, 2.0, 2.5]])
    assert rule.regional(a, wei)[0] == pytest.approx(rule(2.0) + rule.derivative(2.0) * (wei[0] - 2.0))


def test_simulation_sc_is_a_log_transform_of_the_template() -> None:
    raw = np.array([[0.0, 1e-6, 1e-2], [1e-6, 0.0, 0.0], [1e-2, 0.0, 0.0]])
    out = syn.simulation_sc(raw)
    assert out[0, 1] == pytest.approx(math.log(2.0))
    assert out[0, 2] == pytest.approx(math.log1p(1e4))
    assert out[1, 2] == 0.0 and np.allclose(out, out.T) and np.all(np.diag(out) == 0)


def test_deterministic_npz_writer(tmp_path) -> None:
    arrays = {"a": np.arange(5.0), "s": np.array(["x", "yz"]), "q": np.array([1, 2], dtype=np.uint16)}
    p1 = write_npz_deterministic(arrays, tmp_path / "one.npz")
    p2 = write_npz_deterministic(arrays, tmp_path / "two.npz")
    assert p1.read_bytes() == p2.read_bytes()
    with np.load(p1, allow_pickle=False) as d:
        assert d["s"].tolist() == ["x", "yz"] and d["q"].dtype == np.uint16


def _toy_setup() -> syn.ModelSetup:
    g = np.linspace(-1.6, 1.6, 68)
    sensory = region_classes() == "sensory"
    g = np.where(sensory, g - 1.0, g + 0.4)
    g = (g - g.mean()) / g.std()
    rule = syn.WEERule((0.0, 1.0, 2.0, 3.0, 4.0), (1.5, 2.3, 3.5, 5.0, 7.0), 0.35, 2.0)
    return syn.ModelSetup(sc=np.zeros((68, 68)), wee_rule=rule, gradient=g, mapping=syn.EIMapping())


@pytest.fixture(scope="module")
def toy_cohorts() -> tuple[syn.ReferenceCohort, syn.ReferenceCohort]:
    setup = _toy_setup()
    spec = syn.CohortSpec()
    return (
        syn.generate_reference_cohort(11, spec=spec, setup=setup, n_patients=3),
        syn.generate_reference_cohort(11, effects=False, spec=spec, setup=setup, n_patients=3),
    )


def test_null_cohort_shares_people_and_draws(toy_cohorts) -> None:
    eff, null = toy_cohorts
    for col in ("subject_id", "age_in_years", "numeric_sex", "site_scanner"):
        assert eff.table[col].equals(null.table[col])
    assert np.array_equal(eff.site_mean_offset, null.site_mean_offset)
    # null: the same intercept for everybody of an age (no trajectory, no sex term), no slope
    assert np.all(null.people.wei_slope == 0.0)
    res = null.people.wei_intercept - null.site_mean_offset[null.people.site]
    assert np.corrcoef(res, null.people.age)[0, 1] == pytest.approx(0.0, abs=0.05)


def test_reported_ei_is_truth_times_the_documented_error(toy_cohorts) -> None:
    eff, _ = toy_cohorts
    spec = eff.spec
    log_err = np.log(eff.people.ei / eff.people.ei_true)
    shared = log_err.mean(axis=1)
    regional = log_err - shared[:, None]
    assert shared.std() == pytest.approx(
        math.hypot(spec.noise_global_cv, spec.noise_regional_cv / math.sqrt(68)), rel=0.05
    )
    assert regional.std() == pytest.approx(spec.noise_regional_cv * math.sqrt(67 / 68), rel=0.03)


def test_effect_cohort_truth_has_the_built_in_structure(toy_cohorts) -> None:
    eff, _ = toy_cohorts
    p, sensory = eff.people, region_classes() == "sensory"
    true = p.ei_true
    assert np.all(true[:, sensory].mean(axis=1) > true[:, ~sensory].mean(axis=1))
    female = p.female == 1
    young = (p.age >= 20) & (p.age <= 30)
    assert true[young & female].mean() > true[young & ~female].mean()
    child = p.age < 8
    assert true[child].mean() > true[young].mean() + 0.2


def test_patients_carry_their_recorded_deviation(toy_cohorts) -> None:
    eff, _ = toy_cohorts
    setup = _toy_setup()
    pats = eff.patients
    wei = pats.wei_intercept[:, None] + pats.wei_slope[:, None] * setup.gradient
    base = setup.mapping(wei + eff.spec.myelin_slope * syn.myelin_map(), eff.spec.sigma)
    for k, label in enumerate(eff.patient_labels):
        sd = syn.normative_sd(
            np.random.default_rng(99), pats.age[k], pats.female[k], pats.site[k],
            (eff.site_mean_offset, eff.site_scale), setup.gradient, eff.spec, setup.mapping,
        )  # fmt: skip
        shift = (pats.ei_true[k] - base[k]) / sd
        dev = eff.patient_deviation[k]
        assert np.abs(shift - dev).max() < 0.15, label
        assert np.count_nonzero(dev) in (18, 50, 68)
