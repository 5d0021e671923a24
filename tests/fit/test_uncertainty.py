"""E/I intervals: the spread's arithmetic, the profile points, the calibration file, and tiny fits
in both modes (bounds around the point, resume after the profile stage, k widens the interval)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import N_TINY, tiny_cdf, tiny_fc, tiny_sc, tiny_surrogate_weights, tiny_timing

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import CMAESSettings, FitSettings, fit_group, profile_points
from delssome_norms.fit import uncertainty as unc
from delssome_norms.fit.evaluate import EulerEvaluator
from delssome_norms.fit.parameterisation import Bounds, Parameterisation, RegionalParams
from delssome_norms.fit.subject import SubjectInputs


# ---- the spread ------------------------------------------------------------------------------
def _stage(costs, ratios, n_dup=2, dup_noise=None):
    """A test/profile stage whose rows have total cost ``costs`` and E/I ``ratios`` (rows, N)."""
    ratios = np.asarray(ratios, dtype=np.float64)
    k, n = ratios.shape
    s_i = np.full((k, n_dup, n), 0.1)
    s_e = np.repeat(ratios[:, None, :] * 0.1, n_dup, axis=1)
    if dup_noise is not None:
        s_e = s_e * np.exp(np.asarray(dup_noise))[None, :, None]
    costs = np.asarray(costs, dtype=np.float64)
    return {
        "corr": costs,
        "l1": np.zeros(k),
        "ks": np.zeros(k),
        "s_e": s_e,
        "s_i": s_i,
        "valid": np.ones((k, n_dup), dtype=bool),
    }


def test_spread_is_the_farthest_near_optimal_candidate() -> None:
    # winner E/I 2 and 4 in two regions; candidate 1 within the (zero) tolerance, 2 not
    test = _stage([1.0, 1.0, 1.5], [[2.0, 4.0], [2.5, 4.0], [1.0, 1.0]])
    spread = unc.log_spread(test, 0, None, center=False)
    level = abs(math.log(6.5 / 2 / 3.0))  # mean E/I 3.25 vs 3
    assert spread["mean"] == pytest.approx(level)
    # region 0 moves more than the level, region 1 not at all: it keeps the level's spread
    np.testing.assert_allclose(spread["region"], [math.log(2.5 / 2.0), level], atol=1e-12)
    assert spread["near_optimal_test"] == 1


def test_level_is_centred_in_the_near_optimal_set() -> None:
    """The estimate's level is the midpoint of the set's mean levels (winner included), and the
    spreads are taken about it: half the set's range for the mean, the farthest member from the
    centred point per region."""
    # mean levels: winner 3, near-optimal members 3 * 1.2 and 3 * 0.95; a far one (cost 2) not
    test = _stage(
        [1.0, 1.0, 1.0, 2.0],
        [[2.0, 4.0], [2.4, 4.8], [1.9, 3.8], [6.0, 6.0]],
    )
    spread = unc.log_spread(test, 0, None)
    lo, hi = math.log(0.95), math.log(1.2)
    assert spread["level_shift_log"] == pytest.approx((lo + hi) / 2)
    assert spread["mean"] == pytest.approx((hi - lo) / 2)
    # every member moves both regions alike, so each region's spread is the mean's
    np.testing.assert_allclose(spread["region"], (hi - lo) / 2, rtol=1e-12)
    # the winner alone: no shift, no spread
    alone = unc.log_spread(_stage([1.0, 2.0], [[2.0, 4.0], [3.0, 3.0]]), 0, None)
    assert alone["level_shift_log"] == 0.0 and alone["mean"] == 0.0
    # center=False: about the winner, as before
    old = unc.log_spread(test, 0, None, center=False)
    assert old["level_shift_log"] == 0.0 and old["mean"] == pytest.approx(hi)


def test_interval_is_centred_on_the_shifted_point() -> None:
    test = _stage([1.0, 1.0], [[2.0, 4.0], [2.4, 4.8]])
    spread = unc.log_spread(test, 0, None)
    point = np.array([2.0, 4.0]) * math.exp(spread["level_shift_log"])
    cal = {"k_region": 1.0, "k_mean": 1.0, "floor_region": 0.0, "floor_mean": 0.0}
    lo, hi, block = unc.interval_block(point, spread, "euler", calibration=cal)
    # the interval reaches exactly the winner (below) and the member (above)
    np.testing.assert_allclose(lo, [2.0, 4.0], rtol=1e-12)
    np.testing.assert_allclose(hi, [2.4, 4.8], rtol=1e-12)
    assert block["level_shift_log"] == pytest.approx(0.5 * math.log(1.2))


def test_profile_tolerance_comes_from_the_duplicates_noise() -> None:
    test = _stage([1.0], [[2.0, 2.0]])
    profile = _stage([1.0, 1.05, 1.5], [[2.0, 2.0], [3.0, 3.0], [8.0, 8.0]], n_dup=3)
    profile["dup_total"] = np.array([[0.9, 1.0, 1.1], [1.0, 1.0, 1.0], [1.5, 1.5, 1.5]])
    profile["kind"] = np.array(
        [profile_points.KIND_WINNER, profile_points.KIND_AXIS, profile_points.KIND_AXIS]
    )
    profile["position"] = np.array([0.0, 1.0, -1.0])
    spread = unc.log_spread(test, 0, profile, center=False)
    # pooled variance of one duplicate's cost: (0.01 + 0 + 0) / 3 rows; mean of 3 duplicates
    sd = math.sqrt(0.01 / 3 / 3)
    assert spread["noise_floor_sd"] == pytest.approx(sd)
    assert spread["tolerance"] == pytest.approx(unc.NEAR_OPTIMAL_Z * math.sqrt(2) * sd)
    # 1.05 is within 1.645 * sqrt(2) * 0.0333 = 0.0775 of 1.0; 1.5 is not
    assert spread["near_optimal_profile"] == 1
    np.testing.assert_allclose(spread["region"], math.log(1.5), atol=1e-12)
    assert spread["profile_open"]  # the outermost "+" point is near-optimal


def test_noise_floor_pools_the_points_and_skips_invalid_duplicates() -> None:
    dup = np.array([[1.0, 2.0, 3.0], [5.0, 7.0, np.nan], [4.0, 0.0, 0.0]])
    valid = np.array([[True, True, True], [True, True, True], [True, False, False]])
    # within-point sums of squares 2 (df 2) and 2 (df 1); the third point has one duplicate
    assert unc.noise_floor_sd(dup, valid) == pytest.approx(math.sqrt(4 / 3 / 3))
    assert math.isnan(unc.noise_floor_sd(dup[2:], valid[2:]))


def test_duplicate_noise_adds_in_quadrature() -> None:
    noise = [-0.1, 0.1]  # log S_E of the two duplicates: SE of the mean = 0.1 * sqrt(2) / sqrt(2)
    test = _stage([1.0, 1.0], [[2.0, 2.0], [2.0 * math.exp(0.3), 2.0]], dup_noise=noise)
    spread = unc.log_spread(test, 0, None, center=False)
    # level: mean E/I of candidate 1 vs the winner (the winner's duplicates give SE 0.1 for the
    # mean's log too, since every region of a duplicate moves together)
    level = math.hypot(math.log((2.0 * math.exp(0.3) + 2.0) / 4.0), 0.1)
    assert spread["mean"] == pytest.approx(level)
    np.testing.assert_allclose(spread["region"], [math.hypot(0.3, 0.1), level], rtol=1e-9)


def test_interval_bounds_scale_with_k() -> None:
    point = np.array([1.0, 2.0, 4.0])
    spread = {"region": np.array([0.1, 0.2, 0.0]), "mean": 0.05}
    narrow = unc.interval_block(point, spread, "euler", {"k_region": 1.0, "k_mean": 1.0})
    wide = unc.interval_block(point, spread, "euler", {"k_region": 2.0, "k_mean": 3.0})
    lo, hi, block = narrow
    np.testing.assert_allclose(lo, point * np.exp(-spread["region"]))
    np.testing.assert_allclose(hi, point * np.exp(spread["region"]))
    np.testing.assert_allclose(np.log(wide[1] / wide[0]), 2 * np.log(hi / lo))
    assert block["mean"] == pytest.approx(7 / 3)
    assert block["mean_hi"] / block["mean_lo"] == pytest.approx(math.exp(0.1))
    assert wide[2]["mean_hi"] / wide[2]["mean_lo"] == pytest.approx(math.exp(0.3))


def test_shipped_calibration_is_measured_for_both_modes() -> None:
    data = json.loads((Path(unc.__file__).parent / "data" / "interval_calibration.json").read_text())
    assert data["format_version"] == 2 and data["level"] == 0.9
    for mode in ("euler", "surrogate"):
        cal = unc.load_calibration(mode)
        # k is the normal two-sided 90 % factor; the floor is what the benchmark measured
        assert cal["k_region"] == cal["k_mean"] == pytest.approx(1.6449, abs=1e-4)
        assert 0.05 < cal["floor_mean"] < 1.0 and 0.05 < cal["floor_region"] < 1.0
        assert cal["n_truths"] >= 30 and "bench/ei_calibration.py" in cal["source"]
    with pytest.raises(InvalidInputError, match="no calibration for mode 'other'"):
        unc.load_calibration("other")


DEFAULT_FIT = {"generations": 100, "popsize": 100, "n_dup": 3, "test_top_k": 5, "scan_length": 432.0}


def test_shipped_calibration_records_its_settings() -> None:
    for mode in ("euler", "surrogate"):
        cal = unc.load_calibration(mode)
        ref = cal["settings"]
        # the structured settings are the budget the text states
        assert cal["budget"].startswith(f"{ref['generations']} x {ref['popsize']}, n_dup {ref['n_dup']}")
        assert f"{ref['scan_length']:g}-s scans" in cal["budget"]
        # a fit at the calibration's own budget on a scan as long is covered; the default
        # budget only in surrogate mode (Euler mode's floors were measured at a CPU budget)
        own = {k: ref[k] for k in ("generations", "popsize", "n_dup", "test_top_k", "scan_length")}
        assert unc.calibration_differences(cal, own) == []
        default_covered = unc.calibration_differences(cal, DEFAULT_FIT) == []
        assert default_covered == (mode == "surrogate")
        # each mode's default number of validated candidates per generation
        assert ref["val_per_generation"] == (2 if mode == "surrogate" else 1)


def test_calibration_differences_name_what_the_fit_had_less_of() -> None:
    cal = {"settings": {**DEFAULT_FIT, "val_per_generation": 2}}
    less = {"generations": 20, "popsize": 50, "n_dup": 1, "test_top_k": 5, "scan_length": 144.0}
    assert unc.calibration_differences(cal, less) == [
        "generations 20 (calibrated at 100)",
        "popsize 50 (calibrated at 100)",
        "n_dup 1 (calibrated at 3)",
        "scan_length 144 s (calibrated at 432 s)",
    ]
    # more of a budget setting is not measured either (a longer search narrows the fit's own
    # spread); a scan one TR (0.72 s) short of the calibration's is the same protocol; several
    # searches averaged (combine mean) are covered
    more = {"generations": 200, "popsize": 120, "n_dup": 5, "test_top_k": 9, "scan_length": 431.28,
            "val_per_generation": 2, "searches": 4, "combine": "mean"}  # fmt: skip
    not_measured = "; coverage at another budget is not measured)"
    assert unc.calibration_differences(cal, more) == [
        "generations 200 (calibrated at 100" + not_measured,
        "popsize 120 (calibrated at 100" + not_measured,
        "n_dup 5 (calibrated at 3" + not_measured,
        "test_top_k 9 (calibrated at 5" + not_measured,
    ]
    same = {**more, **DEFAULT_FIT, "scan_length": 431.28}
    assert unc.calibration_differences(cal, same) == []
    # the same evaluations in another shape are not the calibrated search (1000 x 10)
    assert unc.calibration_differences(cal, {**same, "generations": 1000, "popsize": 10}) == [
        "generations 1000 (calibrated at 100" + not_measured,
        "popsize 10 (calibrated at 100)",
    ]
    # picking the best of several searches, or validating fewer per generation, is not either
    assert unc.calibration_differences(cal, {**same, "combine": "best", "val_per_generation": 1}) == [
        "val_per_generation 1 (calibrated at 2)",
        "searches 4 with combine best (calibrated on one search; --combine mean is covered)",
    ]
    # a calibration of 4 averaged searches does not cover a single search
    avg = {"settings": {**cal["settings"], "searches": 4}}
    assert unc.calibration_differences(avg, {**same, "searches": 1}) == [
        "searches 1 (calibrated at 4, combined by mean)"
    ]
    assert unc.calibration_differences(avg, same) == []
    assert unc.calibration_differences({}, less) is None  # older file: unknown
    point, spread = np.array([1.0, 2.0]), {"region": np.zeros(2), "mean": 0.0}
    base = {"k_region": 1.0, "k_mean": 1.0}
    block = unc.interval_block(point, spread, "euler", {**base, **cal}, fit=less)[2]
    assert block["calibration_applies"] is False and len(block["calibration_differences"]) == 4
    block = unc.interval_block(point, spread, "euler", base, fit=less)[2]
    assert block["calibration_applies"] is None and block["calibration_differences"] == []
    assert "calibration_applies" not in unc.interval_block(point, spread, "euler", base)[2]


def test_cohort_is_told_before_the_work_when_intervals_will_be_uncalibrated() -> None:
    import warnings

    from delssome_norms.errors import InputWarning

    default = FitSettings(mode="surrogate")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        unc.warn_uncalibrated(default, [432.0, 864.0])  # covered: nothing said
        unc.warn_uncalibrated(FitSettings(mode="surrogate", interval=False), [60.0])  # no interval
    with pytest.warns(InputWarning, match=r"will not be calibrated for these fits \(scan_length "
                      r"300 s \(calibrated at 432 s\) \[1 of 2\]\)"):  # fmt: skip
        unc.warn_uncalibrated(default, [432.0, 300.0])
    small = FitSettings(mode="euler", cmaes=CMAESSettings(generations=10, popsize=20, mu=5))
    with pytest.warns(InputWarning, match=r"generations 10 \(calibrated at 30\) \[1 of 1\]; "
                      r"popsize 20 \(calibrated at 50\) \[1 of 1\]"):  # fmt: skip
        unc.warn_uncalibrated(small, [864.0])


def test_calibration_with_broken_settings_is_refused(monkeypatch) -> None:
    doc = {"level": 0.9, "modes": {"euler": {"k_region": 1.6, "k_mean": 1.6, "settings": {
        "generations": 30, "popsize": 50, "n_dup": 2, "test_top_k": 3}}}}  # fmt: skip
    monkeypatch.setattr(unc, "_calibration_text", lambda: json.dumps(doc))
    with pytest.raises(InvalidInputError, match=r"euler.settings must give positive numbers"):
        unc.load_calibration("euler")


def test_floor_adds_in_quadrature() -> None:
    point = np.array([2.0, 3.0])
    spread = {"region": np.array([0.3, 0.0]), "mean": 0.0}
    cal = {"k_region": 2.0, "k_mean": 1.0, "floor_region": 0.4, "floor_mean": 0.2}
    lo, hi, block = unc.interval_block(point, spread, "euler", cal)
    # half-widths k * sqrt(s^2 + f^2): 2 * 0.5 = 1.0 and 2 * 0.4 = 0.8; the mean 1 * 0.2
    np.testing.assert_allclose(np.log(hi / point), [1.0, 0.8])
    np.testing.assert_allclose(np.log(point / lo), [1.0, 0.8])
    assert block["mean_hi"] / block["mean_lo"] == pytest.approx(math.exp(0.4))
    assert block["floor_log_region"] == 0.4 and block["spread_log_mean"] == 0.0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{not json", "unreadable calibration"),
        ('{"modes": {"euler": {"k_region": 0, "k_mean": 1}}}', "euler.k_region must be a positive"),
        ('{"modes": []}', "no calibration for mode 'euler'"),
        (
            '{"modes": {"euler": {"k_region": 1, "k_mean": 1, "floor_mean": -0.1}}}',
            "euler.floor_mean must be a non-negative",
        ),
    ],
)
def test_damaged_calibration_is_one_clear_error(monkeypatch, text, fragment) -> None:
    monkeypatch.setattr(unc, "_calibration_text", lambda: text)
    with pytest.raises(InvalidInputError, match=fragment):
        unc.load_calibration("euler")


# ---- profile points ----------------------------------------------------------------------------
def test_principal_step_is_one_sd_along_the_longest_axis() -> None:
    from types import SimpleNamespace

    # search covariance sigma^2 D C D with D = diag(1, 2, 4) and C's longest axis (0, 1, 0)
    c = np.diag([1.0, 9.0, 4.0])
    es = SimpleNamespace(C=c, sigma=0.5, sigma_vec=SimpleNamespace(scaling=np.array([1.0, 2.0, 4.0])))
    step = profile_points.principal_step(SimpleNamespace(es=es))
    np.testing.assert_allclose(np.abs(step), [0.0, 0.5 * 2.0 * 3.0, 0.0], atol=1e-12)


def test_a_profile_point_the_step_cannot_integrate_is_invalid_not_an_error() -> None:
    """A profile point whose Euler step is unstable (its duplicates' FC is NaN) is marked invalid
    with NaN costs; its neighbours keep theirs (it was scored as an 'empirical' FC and refused)."""
    timing = tiny_timing(scan=72.0)
    ev = EulerEvaluator(tiny_fc(level=0.2)[None], tiny_cdf(0)[None], tiny_sc(), timing, n_dup=2)
    n = N_TINY
    regional = [
        RegionalParams(
            wEE=np.full((2, n), 2.0), wEI=np.array([[2.5] * n, [10.0] * n]),
            sigma=np.full((2, n), 0.005), G=np.array([0.5, 0.5]),
        )
    ]  # fmt: skip
    with pytest.warns(Warning, match="unstable at the fixed point"):
        out = unc.simulate_with_duplicates(ev, regional, np.zeros(2, dtype=np.int64), 7, timing)
    assert out["valid"].tolist() == [[True, True], [False, False]]
    assert np.isnan(out["pair_corr"][1]) and np.isnan(out["dup_total"][1]).all()
    assert np.isfinite([out["pair_corr"][0], out["pair_l1"][0], out["pair_ks"][0]]).all()
    assert np.isfinite(out["dup_total"][0]).all() and np.isfinite(out["corr"][0])


def _space(n: int = N_TINY) -> Parameterisation:
    grad = np.linspace(-1, 1, n)
    x = np.column_stack([np.ones(n), grad])
    return Parameterisation(x, grad, Bounds(wEI=(0.0, 5.0)))


def test_profile_points_stay_inside_the_space_and_reach_its_edge() -> None:
    space = _space()
    winner = np.array([2.5, 0.1, 2.0, 0.5, 1.2, 0.0045, 0.0001])  # wEI from 1.5 to 2.5
    assert space.is_valid(winner[None])[0]
    step = np.zeros(7)
    step[2] = 0.15  # wEI intercept: +-8 steps keep wEI within (0, 5)
    cands, kind, pos, dropped = profile_points.profile_candidates(
        winner, step, space, stability_gate=False
    )
    np.testing.assert_array_equal(cands[0], winner)
    assert kind[0] == profile_points.KIND_WINNER and space.is_valid(cands).all() and dropped == 0
    axis_pos = np.sort(pos[kind == profile_points.KIND_AXIS])
    assert set(axis_pos[axis_pos < 0]) == {-1.0, -2.0, -4.0, -8.0}  # 1.5 - 8 x 0.15 > 0
    assert set(axis_pos[axis_pos > 0]) == {1.0, 2.0, 4.0, 8.0}  # 2.5 + 8 x 0.15 < 5
    big = profile_points.profile_candidates(winner, 3 * step, space, stability_gate=False)
    axis = big[2][big[1] == profile_points.KIND_AXIS]
    # edges: 2.5 + 0.45 t = 5 at t = 5.56 (between grid points 4 and 8), 1.5 - 0.45 t = 0 at 3.33
    edge_up, edge_down = 2.5 / 0.45, 1.5 / 0.45
    assert edge_up - 4 / (profile_points.EDGE_POINTS + 1) <= axis.max() <= edge_up
    assert edge_down - 2 / (profile_points.EDGE_POINTS + 1) <= -axis.min() <= edge_down
    assert big[3] == 1  # +8 and -4 are moved to the edges, -8 is dropped
    wei = kind == profile_points.KIND_WEI
    np.testing.assert_allclose(cands[wei][:, 2:4] / winner[2:4], (1 + pos[wei])[:, None] * [1, 1])


# ---- tiny fits ---------------------------------------------------------------------------------
def _subjects() -> list[SubjectInputs]:
    return [
        SubjectInputs(
            subject_id=sid, fc=tiny_fc(level=lvl, seed=i), fcd_cdf=tiny_cdf(i), tr=0.72,
            scan_length=14.4, sc=tiny_sc(),
        )
        for i, (sid, lvl) in enumerate((("a", 0.2), ("b", 0.35)))
    ]  # fmt: skip


def _settings(**kw) -> FitSettings:
    base = dict(
        cmaes=CMAESSettings(generations=3, popsize=8, mu=3),
        dt_train=0.005, dt_val=0.005, dt_test=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50,
        test_top_k=3, n_dup=3, seed=3, stability_gate=False,
    )  # fmt: skip
    base.update(kw)
    return FitSettings(**base)


def _read(d: Path) -> tuple[pd.DataFrame, dict]:
    return pd.read_csv(d / "EI_ratio.csv"), json.loads((d / "run.json").read_text())


@pytest.fixture(scope="module")
def euler_fit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("unc_fit")
    outcomes = fit_group(_subjects(), [out / "a", out / "b"], _settings())
    assert [o.status for o in outcomes] == ["done", "done"]
    return out


def test_tiny_fit_brackets_every_estimate(euler_fit: Path) -> None:
    for sid in ("a", "b"):
        ei, run = _read(euler_fit / sid)
        assert (ei["EI_ratio_lo"] <= ei["EI_ratio"]).all() and (
            ei["EI_ratio"] <= ei["EI_ratio_hi"]
        ).all()
        assert (ei["EI_ratio_hi"] > ei["EI_ratio_lo"]).all()
        block = run["ei_interval"]
        assert block["mean"] == pytest.approx(ei["EI_ratio"].mean())
        assert block["mean_lo"] < block["mean"] < block["mean_hi"]
        assert block["level"] == 0.9 and block["method"] == unc.METHOD and block["mode"] == "euler"
        k = block["k_region"]
        s_r, f_r = np.array(block["spread_log_region"]), block["floor_log_region"]
        np.testing.assert_allclose(
            np.log(ei["EI_ratio_hi"] / ei["EI_ratio"]), k * np.sqrt(s_r**2 + f_r**2)
        )
        m = run["fit_quality"]["metrics"]
        assert m["profile_points"] >= 1 and m["self_floor_total"] > 0
        assert isinstance(run["fit_quality"]["flagged"], bool)


def test_larger_k_widens_the_interval(euler_fit: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "wide"
    shutil.copytree(euler_fit / "a", out)
    for f in ("EI_ratio.csv", "run.json"):
        (out / f).unlink()
    real = unc.load_calibration
    monkeypatch.setattr(
        unc, "load_calibration", lambda mode: {**real(mode), "k_region": 3.29, "k_mean": 3.29}
    )
    fit_group(_subjects()[:1], [out], _settings(), group_ids=["a", "b"])
    narrow, run_n = _read(euler_fit / "a")
    wide, run_w = _read(out)
    np.testing.assert_array_equal(wide["EI_ratio"], narrow["EI_ratio"])
    ratio = np.log(wide["EI_ratio_hi"] / wide["EI_ratio_lo"]) / np.log(
        narrow["EI_ratio_hi"] / narrow["EI_ratio_lo"]
    )
    np.testing.assert_allclose(ratio, 3.29 / run_n["ei_interval"]["k_region"], rtol=1e-9)
    assert run_w["ei_interval"]["mean_hi"] > run_n["ei_interval"]["mean_hi"]


def test_resume_after_and_before_the_profile_stage_gives_the_same_numbers(
    euler_fit: Path, tmp_path: Path
) -> None:
    ref, ref_run = _read(euler_fit / "a")
    for drop_profile in (False, True):
        d = tmp_path / f"resume_{drop_profile}"
        for sid in ("a", "b"):
            shutil.copytree(euler_fit / sid, d / sid)
            for f in ("EI_ratio.csv", "run.json"):
                (d / sid / f).unlink()
            if drop_profile:
                (d / sid / "checkpoint" / "profile.npz").unlink()
        fit_group(_subjects(), [d / "a", d / "b"], _settings())
        ei, run = _read(d / "a")
        pd.testing.assert_frame_equal(ei, ref)
        assert run["ei_interval"] == ref_run["ei_interval"]
        assert run["fit_quality"] == ref_run["fit_quality"]


def test_interval_off_leaves_nan_bounds(tmp_path: Path) -> None:
    fit_group(_subjects()[:1], [tmp_path / "a"], _settings(interval=False))
    ei, run = _read(tmp_path / "a")
    assert ei["EI_ratio_lo"].isna().all() and ei["EI_ratio_hi"].isna().all()
    assert run["ei_interval"] is None and "fit_quality" in run
    assert not (tmp_path / "a" / "checkpoint" / "profile.npz").exists()


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    return tiny_surrogate_weights(tmp_path / "w")


def test_surrogate_mode_lockstep_group_gets_intervals(tmp_path: Path, weights: Path) -> None:
    settings = _settings(mode="surrogate", surrogate_weights=str(weights))
    from delssome_norms.surrogate import SURROGATE_BACKEND

    dirs = [tmp_path / "a", tmp_path / "b"]
    outcomes = fit_group(_subjects(), dirs, settings, surrogate=SURROGATE_BACKEND)
    assert [o.status for o in outcomes] == ["done", "done"]
    for sid in ("a", "b"):
        ei, run = _read(tmp_path / sid)
        assert run["ei_interval"]["mode"] == "surrogate"
        assert (ei["EI_ratio_lo"] <= ei["EI_ratio"]).all() and (
            ei["EI_ratio"] <= ei["EI_ratio_hi"]
        ).all()
        assert np.isfinite(ei["EI_ratio_hi"]).all()


def test_sd_is_the_pooled_test_spread_on_the_estimates_scale(euler_fit: Path) -> None:
    """EI_ratio_sd recomputed from the stored test stage: the sample sd of S_E / S_I over every
    valid (candidate, duplicate) simulation, times the factor that centres the level."""
    for sid in ("a", "b"):
        ei, run = _read(euler_fit / sid)
        with np.load(euler_fit / sid / "checkpoint" / "test.npz", allow_pickle=False) as stored:
            test = {k: stored[k] for k in ("s_e", "s_i", "valid")}
        ratio = (test["s_e"] / test["s_i"])[test["valid"]]
        ratio = ratio[np.all(np.isfinite(ratio) & (ratio > 0), axis=1)]
        factor = math.exp(run["ei_interval"]["level_shift_log"])
        np.testing.assert_allclose(ei["EI_ratio_sd"], ratio.std(axis=0, ddof=1) * factor, rtol=1e-6)
