"""FC outside the pFIC model's range (global signal regression, heavy smoothing): the warning of
validate / prepare / estimate-ei / cohort and the fit-quality reason ``fc_outside_model_range``.

Expectations are built by hand: an FC with mean 0 and exactly 40 % negative pairs, an FC of
uniform 0.8, the 68 packaged synthetic subjects (model-made, mean FC 0.10-0.26), and a simulated
scan whose global signal is regressed out here with least squares (its residuals sum to zero over
the regions, so its mean FC is about -1 / (N - 1))."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from delssome_norms.cli.main import main
from delssome_norms.datasets import load_default_template
from delssome_norms.datasets.reference import load_reference_subjects, materialise_subjects
from delssome_norms.errors import InputWarning
from delssome_norms.fit import fc_regime as fr
from delssome_norms.fit import load_subject
from delssome_norms.fit import quality as q
from delssome_norms.io import write_matrix
from delssome_norms.model import PFICParams, SimulationTiming, bold_fc, scale_sc, simulate

N_PAIRS = 55  # 11 regions


def _gsr_like_fc(n: int = 11) -> np.ndarray:
    """Symmetric FC whose 55 pairs are 22 x -0.3 and 33 x +0.2: mean 0, 40 % negative."""
    iu = np.triu_indices(n, 1)
    values = np.r_[np.full(22, -0.3), np.full(33, 0.2)]
    values = np.random.default_rng(0).permutation(values)
    fc = np.eye(n)
    fc[iu] = values
    fc[iu[1], iu[0]] = values
    return fc


def _region_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if "FC has mean" in str(w.message)]


def test_stats_of_a_hand_built_fc() -> None:
    fc = _gsr_like_fc()
    assert fc[np.triu_indices(11, 1)].size == N_PAIRS
    stats = fr.fc_regime_stats(fc)
    assert stats.mean_fc == pytest.approx(0.0, abs=1e-15)
    assert stats.negative_fraction == pytest.approx(22 / 55)  # 0.4
    assert fr.fc_regime_stats(np.eye(1)) == pytest.approx((np.nan, np.nan), nan_ok=True)


def test_mean_zero_and_40_percent_negative_is_warned_and_flagged() -> None:
    text = fr.check_fc_regime(_gsr_like_fc())
    assert text is not None
    assert text.startswith("FC has mean 0.00 and 40 % negative region pairs: global signal regression")
    assert "not interpretable" in text and "without global signal regression" in text
    verdict = q.assess({"empirical_mean_fc": 0.0})
    assert verdict["flagged"] and verdict["reasons"] == ["fc_outside_model_range"]
    assert "fc_outside_model_range" in q.REASON_TEXT


def test_heavily_smoothed_fc_is_warned_and_flagged() -> None:
    fc = np.full((8, 8), 0.8)
    np.fill_diagonal(fc, 1.0)
    text = fr.check_fc_regime(fc)
    assert text is not None and text.startswith("FC has mean 0.80 and 0 % negative region pairs")
    assert "smoothing" in text
    assert q.assess({"empirical_mean_fc": 0.8})["reasons"] == ["fc_outside_model_range"]


@pytest.mark.parametrize(
    ("mean", "outside"),
    [(0.03, False), (0.0299, True), (0.5, False), (0.5001, True), (-0.2, True), (np.nan, False)],
)
def test_thresholds_on_both_sides(mean: float, outside: bool) -> None:
    assert (fr.MEAN_FC_LOW, fr.MEAN_FC_HIGH) == (0.03, 0.5)  # the docstring's measured values
    reasons = q.assess({"empirical_mean_fc": mean})["reasons"]
    assert (reasons == ["fc_outside_model_range"]) is outside
    fc = np.full((5, 5), mean)
    np.fill_diagonal(fc, 1.0)
    assert (fr.check_fc_regime(fc) is not None) is outside


def test_no_false_alarm_on_any_packaged_subject(tmp_path: Path) -> None:
    """All 68 model-made subjects: no warning from load_subject (estimate-ei, cohort) and no flag."""
    subjects = load_reference_subjects()
    assert len(subjects.fc) == 68
    manifest = materialise_subjects(tmp_path)
    folder = manifest.parent
    caught_all = []
    for sid, fc in zip(subjects.demographics["subject_id"], subjects.fc):
        assert fr.check_fc_regime(fc) is None, sid
        assert "fc_outside_model_range" not in q.assess({"empirical_mean_fc": q.mean_fc(fc)})["reasons"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            load_subject(
                sid, 0.72, 432.0, fc=folder / f"{sid}_FC.csv", fcd_cdf=folder / f"{sid}_FCD_CDF.csv",
                sc=folder / "sc.csv",
            )  # fmt: skip
        caught_all += _region_warnings(caught)
    assert caught_all == []


def _gsr(bold: np.ndarray) -> np.ndarray:
    """Residuals of each region's series on [1, global mean] (least squares)."""
    design = np.column_stack([np.ones(len(bold)), bold.mean(axis=1)])
    coef, *_ = np.linalg.lstsq(design, bold, rcond=None)
    return bold - design @ coef


def test_gsr_moves_a_simulated_scan_into_the_warned_range(one_thread) -> None:
    """A packaged subject's true parameters (G = 2) simulated for 144 s: its FC is in range;
    the same BOLD after global signal regression is warned about and would be flagged."""
    truth = load_reference_subjects().true_params
    sc = scale_sc(np.asarray(load_default_template().sc, dtype=np.float64))
    params = PFICParams(truth["wEE"][0], truth["wEI"][0], truth["sigma"][0], float(truth["G"][0]))
    timing = SimulationTiming(tr=0.72, scan_length=144.0, dt=0.005)
    res = simulate(params, sc, timing, n_dup=1, seed=4, dtype=torch.float64)
    assert bool(res.valid.all())
    bold = res.bold[0, 0].numpy()
    raw = bold_fc(bold).numpy()
    cleaned = bold_fc(_gsr(bold)).numpy()
    n = raw.shape[0]
    assert fr.fc_regime_stats(raw).mean_fc > 0.05 and fr.check_fc_regime(raw) is None
    after = fr.fc_regime_stats(cleaned)
    # residuals sum to zero over regions: the mean correlation is near -1 / (N - 1)
    assert -3.0 / (n - 1) < after.mean_fc < 0.0
    assert after.negative_fraction > 0.4
    assert fr.check_fc_regime(cleaned) is not None
    assert q.assess({"empirical_mean_fc": q.mean_fc(cleaned)})["reasons"] == ["fc_outside_model_range"]


def _files(tmp_path: Path, fc: np.ndarray) -> tuple[Path, Path, Path]:
    n = fc.shape[0]
    rng = np.random.default_rng(1)
    sc = rng.random((n, n))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0.0)
    cdf = np.linspace(0, 1, 10001)[1:]
    paths = tmp_path / "sub-01_FC.csv", tmp_path / "sub-01_FCD_CDF.csv", tmp_path / "sc.csv"
    for path, values in zip(paths, (fc, cdf, sc)):
        write_matrix(values, path)
    return paths


def test_load_subject_warns_naming_the_subject_and_file(tmp_path: Path) -> None:
    fc_path, cdf_path, sc_path = _files(tmp_path, _gsr_like_fc())
    with pytest.warns(InputWarning, match=r"FC has mean 0\.00 and 40 % negative") as caught:
        subject = load_subject("sub-01", 0.72, 432.0, fc=fc_path, fcd_cdf=cdf_path, sc=sc_path)
    (text,) = _region_warnings(caught)
    assert text.startswith(f"sub-01 ({fc_path}): FC has mean")
    assert subject.n_regions == 11  # a warning, not an error: the subject is still fitted


def test_validate_warns_once_and_passes(tmp_path: Path, capsys) -> None:
    """With and without the as-fitted check (TR and scan length): one warning, exit status 0."""
    fc_path, cdf_path, sc_path = _files(tmp_path, _gsr_like_fc())
    base = ["validate", "--fc", str(fc_path), "--fcd-cdf", str(cdf_path), "--sc", str(sc_path)]
    for extra in ([], ["--tr", "0.72", "--scan-length", "432"]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(base + extra) == 0
        assert len(_region_warnings(caught)) == 1, extra
    capsys.readouterr()
    write_matrix(np.abs(_gsr_like_fc()), fc_path)  # mean 0.24, no negative pair
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*base, "--tr", "0.72", "--scan-length", "432"]) == 0
    assert _region_warnings(caught) == []


def test_prepare_warns_about_time_series_after_gsr(tmp_path: Path) -> None:
    """Regional series sharing a global signal: in range as they are, warned after GSR."""
    rng = np.random.default_rng(2)
    common = rng.standard_normal((300, 1))
    ts = 0.8 * common + rng.standard_normal((300, 10)) * np.linspace(0.5, 1.5, 10)
    for name, series, expect in (("raw", ts, 0), ("gsr", _gsr(ts), 1)):
        path = tmp_path / f"{name}.tsv"
        np.savetxt(path, series, delimiter="\t")
        argv = ["prepare", "--timeseries", str(path), "--tr", "2", "--out-dir", str(tmp_path / name)]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(argv) == 0
        said = _region_warnings(caught)
        assert len(said) == expect, name
        assert all(s.startswith(f"{path}: FC has mean") for s in said)
        assert (tmp_path / name / "FC.csv").is_file()  # written all the same


def test_arrays_given_to_the_python_api_are_checked_too() -> None:
    """``subject_from_arrays`` (``EIEstimator`` with arrays) warns as ``load_subject`` does."""
    from delssome_norms.pipeline import subject_from_arrays

    rng = np.random.default_rng(0)
    series = rng.standard_normal((400, 68))
    series -= series.mean(axis=1, keepdims=True)  # global signal regressed out
    fc = np.corrcoef(series.T)
    cdf = np.linspace(0.0, 1.0, 10000)
    with pytest.warns(InputWarning, match="sub-gsr \\(array\\): FC has mean"):
        subject_from_arrays("sub-gsr", fc, cdf, tr=0.72, scan_length=288.0)


def test_collect_applies_the_rule_to_results_written_before_it() -> None:
    """A run.json written before ``fc_outside_model_range`` existed records the mean FC but not
    the reason: collect flags it as a fit today would (a resumed cohort was flagged unevenly)."""
    from delssome_norms.fit.collect import interval_and_flag

    old = {"fit_quality": {"flagged": False, "reasons": [], "metrics": {"empirical_mean_fc": -0.01}}}
    got = interval_and_flag(old)
    assert got["fit_flagged"] is True and got["fit_flag_reasons"] == "fc_outside_model_range"
    both = {
        "fit_quality": {
            "flagged": True,
            "reasons": ["gate_rejected_most"],
            "metrics": {"empirical_mean_fc": 0.6},
        }
    }
    assert interval_and_flag(both)["fit_flag_reasons"] == "gate_rejected_most;fc_outside_model_range"
    fine = {"fit_quality": {"flagged": False, "reasons": [], "metrics": {"empirical_mean_fc": 0.2}}}
    assert interval_and_flag(fine)["fit_flagged"] is False
    now = {
        "fit_quality": {
            "flagged": True,
            "reasons": ["fc_outside_model_range"],
            "metrics": {"empirical_mean_fc": 0.0},
        }
    }
    assert interval_and_flag(now)["fit_flag_reasons"] == "fc_outside_model_range"  # once
