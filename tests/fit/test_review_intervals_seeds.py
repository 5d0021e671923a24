"""Review of a fit's reproducibility and of its interval's arithmetic: run.json records the test
(and profile) noise seed and the winner's row in the batch, which reproduce its S_E and S_I bit
for bit; a non-finite E/I or spread never reaches run.json as NaN (null and a reason instead) and
never spoils the other regions; a winner whose E/I is not finite is not used; lo <= point <= hi."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import stage_rows, tiny_cdf, tiny_fc, tiny_sc

from delssome_norms import io
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import CMAESSettings, FitSettings, fit_group, profile_points
from delssome_norms.fit import uncertainty as unc
from delssome_norms.fit.seeding import call_seed, group_seed
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.model import PFICParams, SimulationTiming, scale_sc, simulate

K = 1.645
CAL = {"k_region": K, "k_mean": K, "floor_region": 0.0, "floor_mean": 0.0}
SEED, TOP_K, N_DUP = 3, 3, 2


def _strict(text: str) -> dict:
    def refuse(name: str):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


_stage = stage_rows


# ---- a tiny real fit: two subjects in one lockstep group ---------------------------------------
def _subjects() -> list[SubjectInputs]:
    return [
        SubjectInputs(
            subject_id=sid, fc=tiny_fc(level=lvl, seed=i), fcd_cdf=tiny_cdf(i), tr=0.72,
            scan_length=14.4, sc=tiny_sc(),
        )
        for i, (sid, lvl) in enumerate((("a", 0.2), ("b", 0.35)))
    ]  # fmt: skip


def _settings() -> FitSettings:
    return FitSettings(
        cmaes=CMAESSettings(generations=3, popsize=8, mu=3), dt_train=0.005, dt_val=0.005,
        dt_test=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50, test_top_k=TOP_K,
        n_dup=N_DUP, seed=SEED, stability_gate=False,
    )  # fmt: skip


def _timing() -> SimulationTiming:
    return SimulationTiming(
        tr=0.72, scan_length=14.4, dt=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50
    )


@pytest.fixture(scope="module")
def fit(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("seeds_fit")
    outcomes = fit_group(_subjects(), [out / "a", out / "b"], _settings())
    assert [o.status for o in outcomes] == ["done", "done"]
    return out


def _resimulate(folder: Path, seed: int, row: int):
    """The fit's best parameters as row ``row`` of a batch (the rows before it: the same
    parameters), simulated with the fit's test settings and ``seed``."""
    par = io.read_parameters(folder / "best_parameters.csv")
    k = row + 1
    params = PFICParams(
        *(np.repeat(par[x][None], k, axis=0) for x in ("wEE", "wEI", "sigma")),
        np.full(k, float(par["G"])),
    )
    res = simulate(params, scale_sc(tiny_sc()), _timing(), n_dup=N_DUP, seed=seed)
    assert bool(res.valid[row].all())
    s_e, s_i = (x[row].double().numpy() for x in (res.s_e, res.s_i))  # (D, N)
    return s_e.mean(axis=0), s_i.mean(axis=0), (s_e / s_i).mean(axis=0)


def test_run_json_records_the_seed_and_row_that_reproduce_the_test_stage(fit: Path) -> None:
    gseed = group_seed(SEED, ["a", "b"])
    for sid, row in (("a", 0), ("b", TOP_K)):  # b's candidates follow a's TOP_K in the batch
        run = _strict((fit / sid / "run.json").read_text())["result"]
        assert run["seeds"] == {"test": call_seed(gseed, "test"), "profile": call_seed(gseed, "profile")}
        assert run["winner_validation_rank"] == 0
        assert run["test_batch_row"] == row and run["test_batch_size"] == 2 * TOP_K
        ei = pd.read_csv(fit / sid / "EI_ratio.csv")
        s_e, s_i, ratio = _resimulate(fit / sid, run["seeds"]["test"], run["test_batch_row"])
        np.testing.assert_array_equal(s_e, ei["S_E"].to_numpy())  # bit for bit
        np.testing.assert_array_equal(s_i, ei["S_I"].to_numpy())
        # the E/I is the winner's with its level centred in the near-optimal set
        shift = _strict((fit / sid / "run.json").read_text())["ei_interval"]["level_shift_log"]
        np.testing.assert_allclose(ratio * math.exp(shift), ei["EI_ratio"].to_numpy(), rtol=1e-12)
    # the row matters: b's parameters simulated as row 0 (``simulate --seed``) get other noise
    _, _, ratio0 = _resimulate(fit / "b", run["seeds"]["test"], 0)
    assert np.max(np.abs(ratio0 * math.exp(shift) / ei["EI_ratio"].to_numpy() - 1)) > 1e-4


def test_a_winner_with_a_non_finite_e_i_is_not_used(fit: Path, tmp_path: Path) -> None:
    # the stored test stage: the validation winner keeps its valid flags, but one duplicate's S_I
    # of region 2 is 0, so its E/I there is infinite; the next candidate is the estimate
    out = tmp_path / "a"
    shutil.copytree(fit / "a", out)
    shutil.copytree(fit / "b", tmp_path / "b")  # resumed with its group-mate in the same rows
    for f in ("EI_ratio.csv", "run.json"):  # (a finished member would not be in the batch)
        (tmp_path / "b" / f).unlink()
    for f in ("EI_ratio.csv", "run.json", "checkpoint/profile.npz"):
        (out / f).unlink()
    path = out / "checkpoint" / "test.npz"
    test = dict(np.load(path))
    test["s_i"][0, 1, 2] = 0.0
    np.savez(path, **test)
    outcomes = fit_group(_subjects(), [out, tmp_path / "b"], _settings(), group_ids=["a", "b"])
    assert outcomes[0].status == "done"
    run = _strict((out / "run.json").read_text())
    ei = pd.read_csv(out / "EI_ratio.csv")
    assert run["result"]["winner_validation_rank"] == 1
    assert "test_fallback" in run["fit_quality"]["reasons"]
    assert run["result"]["test_batch_row"] == 1
    expected = (test["s_e"][1] / test["s_i"][1]).mean(axis=0)
    shift = run["ei_interval"]["level_shift_log"]  # the level centred in the near-optimal set
    np.testing.assert_allclose(ei["EI_ratio"].to_numpy(), expected * math.exp(shift), rtol=1e-12)
    # the profile re-simulated that candidate (row 0 of its profile stage)
    profile = np.load(out / "checkpoint" / "profile.npz")
    np.testing.assert_array_equal(profile["candidates"][0], run["result"]["coefficients"])
    assert run["ei_interval"]["missing_regions"] == []
    assert (ei["EI_ratio_lo"] <= ei["EI_ratio"]).all() and (ei["EI_ratio"] <= ei["EI_ratio_hi"]).all()


# ---- non-finite values in the interval ---------------------------------------------------------
def test_non_finite_regions_give_null_and_a_reason_not_nan() -> None:
    point = np.array([2.0, 3.0, np.inf, 4.0])
    spread = {"region": np.array([0.1, np.nan, 0.2, 0.3]), "mean": 0.05}
    lo, hi, block = unc.interval_block(point, spread, "euler", CAL)
    text = json.dumps(block, allow_nan=False)  # raised ValueError before (NaN and inf in it)
    assert _strict(text)["missing_regions"] == [1, 2]
    np.testing.assert_allclose(lo[[0, 3]], [2.0 * math.exp(-K * 0.1), 4.0 * math.exp(-K * 0.3)])
    np.testing.assert_allclose(hi[[0, 3]], [2.0 * math.exp(K * 0.1), 4.0 * math.exp(K * 0.3)])
    assert np.isnan(lo[[1, 2]]).all() and np.isnan(hi[[1, 2]]).all()
    assert block["mean"] is None and block["mean_lo"] is None and block["mean_hi"] is None
    assert block["spread_log_region"] == [0.1, None, 0.2, 0.3]
    assert "2 region(s) (0-based [1, 2])" in block["missing_reason"]
    assert "no interval for the mean" in block["missing_reason"]


def test_a_finite_fit_has_no_missing_interval() -> None:
    _, _, block = unc.interval_block(
        np.array([1.0, 2.0]), {"region": [0.1, 0.1], "mean": 0.1}, "euler", CAL
    )
    assert block["missing_regions"] == [] and "missing_reason" not in block
    assert block["mean_lo"] == pytest.approx(1.5 * math.exp(-K * 0.1))


def test_a_non_finite_region_of_the_winner_does_not_spoil_the_others() -> None:
    test = _stage([1.0, 1.0], [[2.0, 3.0, 4.0], [2.1, 3.0, 4.0]])
    test["s_e"][0, 1, 1] = np.nan  # one duplicate of the winner, region 1
    spread = unc.log_spread(test, 0, None, center=False)
    # the mean's spread over the regions the winner has: (2.1 + 4) / 2 against (2 + 4) / 2
    level = math.log(3.05 / 3.0)
    assert spread["mean"] == pytest.approx(level)
    assert np.isnan(spread["region"][1])  # all regions were NaN before
    np.testing.assert_allclose(spread["region"][[0, 2]], [math.log(1.05), level], rtol=1e-12)


def test_a_near_optimal_candidate_with_a_non_finite_region_counts_in_the_others() -> None:
    test = _stage([1.0, 1.0], [[2.0, 3.0, 4.0], [2.1, 3.0, 4.0]])
    test["s_e"][1, 0, 1] = np.nan  # candidate 1 is as good as the winner; region 1 is NaN
    spread = unc.log_spread(test, 0, None, center=False)
    # it was dropped from the set (spread 0 everywhere); now region 0 moves by 5 %, the mean's
    # spread leaves it out, and it is counted as a partial member
    assert spread["near_optimal_test"] == 1 and spread["near_optimal_partial"] == 1
    np.testing.assert_allclose(spread["region"], [math.log(1.05), 0.0, 0.0], atol=1e-15)
    assert spread["mean"] == 0.0


def test_a_profile_whose_winner_row_is_not_finite_is_reported_as_unused() -> None:
    test = _stage([1.0], [[2.0, 2.0]])
    profile = _stage([np.nan, 1.0], [[2.0, 2.0], [3.0, 3.0]], n_dup=3)
    profile["dup_total"] = np.array([[np.nan] * 3, [1.0, 1.1, 0.9]])
    profile["kind"] = np.array([profile_points.KIND_WINNER, profile_points.KIND_AXIS])
    profile["position"] = np.array([0.0, 1.0])
    spread = unc.log_spread(test, 0, profile, center=False)
    assert spread["profile_used"] is False and spread["near_optimal_profile"] == 0
    good = {**profile, "corr": np.array([1.0, 1.0])}
    assert unc.log_spread(test, 0, good, center=False)["profile_used"] is True


# ---- what the interval guarantees ---------------------------------------------------------------
@pytest.mark.parametrize("k", [0.0, -1.645, math.nan])
def test_a_calibration_factor_that_is_not_positive_is_refused(k: float) -> None:
    # a negative k made lo > point > hi without a word
    with pytest.raises(InvalidInputError, match="k_region must be a positive number"):
        unc.interval_block(
            np.array([1.0]), {"region": [0.1], "mean": 0.1}, "euler", {**CAL, "k_region": k}
        )


def test_bounds_bracket_the_point_and_zero_spread_gives_the_point() -> None:
    rng = np.random.default_rng(0)
    point = np.exp(rng.uniform(-7, 7, 2000))
    s = np.where(rng.random(2000) < 0.2, 0.0, rng.exponential(0.3, 2000))
    lo, hi, _ = unc.interval_block(point, {"region": s, "mean": 0.0}, "euler", CAL)
    assert (lo <= point).all() and (point <= hi).all()
    assert (lo[s == 0] == point[s == 0]).all() and (hi[s == 0] == point[s == 0]).all()
    # all-equal candidates: no spread, so the interval is the calibrated floor alone
    test = _stage([1.0, 1.0, 1.0], [[2.0, 3.0]] * 3)
    spread = unc.log_spread(test, 0, None, center=False)
    assert spread["mean"] == 0.0 and (spread["region"] == 0.0).all()
    lo, hi, block = unc.interval_block(
        np.array([2.0, 3.0]), spread, "euler", {**CAL, "floor_region": 0.1, "floor_mean": 0.2}
    )
    np.testing.assert_allclose(hi, [2.0 * math.exp(K * 0.1), 3.0 * math.exp(K * 0.1)])
    assert block["mean_hi"] == pytest.approx(2.5 * math.exp(K * 0.2))


def test_float32_stages_give_the_float64_interval() -> None:
    test = _stage([1.0, 1.02, 1.5], [[2.0, 3.0], [2.2, 2.9], [4.0, 1.0]], n_dup=3)
    test["s_e"] = test["s_e"] * np.exp(np.array([-0.05, 0.0, 0.05]))[None, :, None]
    test["corr"] = np.array([1.0, 1.0, 1.5])
    t32 = {k: (v.astype(np.float32) if v.dtype == np.float64 else v) for k, v in test.items()}
    s64, s32 = unc.log_spread(test, 0, None, center=False), unc.log_spread(t32, 0, None, center=False)
    np.testing.assert_allclose(s32["region"], s64["region"], rtol=1e-5)
    # independent: candidate 1 moves region 0 by log(1.1); duplicates' SE of log E/I 0.05 / sqrt 3
    se = 0.05 / math.sqrt(3)
    assert s64["region"][0] == pytest.approx(math.hypot(math.log(1.1), se))
    point32 = np.array([2.0, 3.0], dtype=np.float32)
    lo, hi, block = unc.interval_block(point32, s32, "euler", CAL)
    assert lo.dtype == np.float64 and (lo <= point32).all() and (point32 <= hi).all()
    json.dumps(block, allow_nan=False)
