"""Sweep of the public model / stats / plotting / datasets API with values passed by mistake.

Every case in ``REFUSED`` must raise one :class:`InvalidInputError` whose message names the
argument (the expected word is checked), never a raw torch/numpy/pandas exception or a silently
wrong result; every case in ``ACCEPTED`` is a legitimately convertible input whose result is
checked against an independent expectation. Simulations are tiny (N = 4 regions, a few seconds).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import matplotlib
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from delssome_norms.errors import InvalidInputError
from delssome_norms.model import (
    PFICParams,
    SimulationTiming,
    Summary,
    bold_fc,
    bold_fcd_cdf,
    cost,
    scale_sc,
    simulate,
    summarize,
)

N = 4
TIMING = dict(tr=0.72, scan_length=14.4, dt=0.006, burn_in=0.72, fcd_window=5, warmup_steps=20)


def _timing(**kw) -> SimulationTiming:
    return SimulationTiming(**{**TIMING, **kw})


def _sc() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    m = torch.rand(N, N, generator=g, dtype=torch.float64)
    m = (m + m.T) / 2
    return scale_sc(m.fill_diagonal_(0))


def _params(B: int = 2, **kw) -> PFICParams:
    base = dict(
        wEE=torch.full((B, N), 3.0),
        wEI=torch.full((B, N), 2.0),
        sigma=torch.full((B, N), 0.005),
        G=torch.full((B,), 1.0),
    )
    base.update(kw)
    return PFICParams(**base)


def _sim(**kw):
    args = dict(params=_params(), sc=_sc(), timing=_timing(), n_dup=1, seed=0, engine="torch")
    args.update(kw)
    return simulate(**args)


def _bold(T: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(T, N))


def _summary(B: int = 2) -> Summary:
    fc = torch.eye(N, dtype=torch.float64).expand(B, N, N).clone()
    cdf = torch.linspace(0.01, 1.0, 100, dtype=torch.float64).expand(B, 100).clone()
    return Summary(fc=fc, fcd_cdf=cdf, valid=torch.ones(B, dtype=torch.bool))


def _table(n: int = 40, seed: int = 0, n_roi: int = 68) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    out = pd.DataFrame(
        {
            "subject_id": [f"s{i}" for i in range(n)],
            "age_in_years": rng.uniform(8, 80, n),
            "sex": np.where(np.arange(n) % 2 == 0, "female", "male"),
            "site": np.where(np.arange(n) % 4 < 2, "A", "B"),
        }
    )
    roi = rng.normal(3.0, 0.3, size=(n, n_roi))
    out["ei_ratio_mean"] = roi.mean(axis=1)
    for k in range(n_roi):
        out[f"ei_ratio_roi_{k}"] = roi[:, k]
    return out


def _with(table: pd.DataFrame, **changes) -> pd.DataFrame:
    t = table.copy()
    for col, value in changes.items():
        if value is None:
            t = t.drop(columns=col)
        else:
            t[col] = value
    return t


def _stats():
    from delssome_norms import stats

    return stats


def _plot():
    from delssome_norms import plotting

    return plotting


def _gap_table() -> pd.DataFrame:
    return pd.DataFrame(
        {"age_in_years": [10.0, 20.0], "gap": [0.1, 0.2], "ci_low": [0.0, 0.1], "ci_high": [0.2, 0.3]}
    )


def _tests_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "target": ["ei_ratio_roi_0", "ei_ratio_roi_1"],
            "test": ["mu_lr"] * 2,
            "family": ["regional"] * 2,
            "region": ["a", "b"],
            "effect": [0.1, -0.2],
            "effect_name": ["mean_difference"] * 2,
            "ci_low": [0.0, -0.3],
            "ci_high": [0.2, -0.1],
            "p": [0.01, 0.5],
            "significant": [True, False],
            "direction": ["female > male", "female < male"],
        }
    )


def _centiles() -> pd.DataFrame:
    ages = np.linspace(10, 80, 5)
    cols = {"age_in_years": ages}
    for c in ("C2.5", "C5", "C25", "C50", "C75", "C95", "C97.5"):
        cols[c] = 3.0 + float(c[1:]) / 100
    return pd.DataFrame(cols)


# name -> (callable that must raise InvalidInputError, word the message must contain)
REFUSED: dict[str, tuple[Callable[[], object], str]] = {
    # ---------------------------------------------------------------- model: timing
    "timing_dt_gt_tr": (lambda: _timing(dt=1.0), "dt"),
    "timing_negative_scan": (lambda: _timing(scan_length=-14.4), "scan"),
    "timing_zero_tr": (lambda: _timing(tr=0.0), "tr"),
    "timing_nan_dt": (lambda: _timing(dt=float("nan")), "dt"),
    "timing_inf_scan": (lambda: _timing(scan_length=float("inf")), "scan"),
    "timing_negative_burn_in": (lambda: _timing(burn_in=-1.0), "burn_in"),
    "timing_negative_warmup": (lambda: _timing(warmup_steps=-1), "warmup"),
    "timing_string_tr": (lambda: _timing(tr="0.72"), "tr"),
    # ---------------------------------------------------------------- model: scale_sc
    "scale_sc_1d": (lambda: scale_sc(torch.ones(4)), "sc"),
    "scale_sc_nonsquare": (lambda: scale_sc(np.ones((3, 4))), "sc"),
    "scale_sc_nan": (lambda: scale_sc(torch.tensor([[0.0, float("nan")], [1.0, 0.0]])), "sc"),
    "scale_sc_zero": (lambda: scale_sc(np.zeros((3, 3))), "sc"),
    "scale_sc_negative": (lambda: scale_sc(np.array([[0.0, -1.0], [2.0, 0.0]])), "sc"),
    "scale_sc_max_value_zero": (lambda: scale_sc(np.ones((2, 2)), max_value=0), "max_value"),
    "scale_sc_strings": (lambda: scale_sc([["a", "b"], ["c", "d"]]), "sc"),
    # ---------------------------------------------------------------- model: simulate
    "sim_wee_transposed": (lambda: _sim(params=_params(wEE=torch.full((N, 2), 3.0))), "wEE"),
    "sim_wei_1d": (lambda: _sim(params=_params(wEI=torch.full((N,), 2.0))), "wEI"),
    "sim_G_batch_mismatch": (lambda: _sim(params=_params(G=torch.ones(3))), "G"),
    "sim_sc_batch_mismatch": (lambda: _sim(sc=_sc().expand(3, N, N)), "sc"),
    "sim_sc_wrong_n": (lambda: _sim(sc=torch.zeros(5, 5)), "sc"),
    "sim_wee_nan": (lambda: _sim(params=_params(wEE=torch.full((2, N), float("nan")))), "wEE"),
    "sim_sigma_inf": (lambda: _sim(params=_params(sigma=torch.full((2, N), float("inf")))), "sigma"),
    "sim_sigma_negative": (lambda: _sim(params=_params(sigma=torch.full((2, N), -0.1))), "sigma"),
    "sim_G_negative": (lambda: _sim(params=_params(G=torch.full((2,), -1.0))), "G"),
    "sim_n_dup_zero": (lambda: _sim(n_dup=0), "n_dup"),
    "sim_n_dup_float": (lambda: _sim(n_dup=1.5), "n_dup"),
    "sim_seed_negative": (lambda: _sim(seed=-1), "seed"),
    "sim_device_cuda7": (lambda: _sim(device="cuda:7"), "cuda"),
    "sim_device_unknown": (lambda: _sim(device="gpu0"), "device"),
    "sim_dtype_float16": (lambda: _sim(dtype=torch.float16), "dtype"),
    "sim_dtype_int": (lambda: _sim(dtype=torch.int32), "dtype"),
    "sim_engine_unknown": (lambda: _sim(engine="fast"), "engine"),
    "sim_timing_dict": (lambda: _sim(timing=TIMING), "timing"),
    "sim_params_tuple_of_3": (lambda: _sim(params=(1.0, 2.0, 3.0)), "params"),
    "sim_wee_strings": (lambda: _sim(params=_params(wEE=np.array([["a"] * N] * 2))), "wEE"),
    "sim_initial_state_unknown": (lambda: _sim(initial_state="zero"), "initial_state"),
    # ---------------------------------------------------------------- model: summaries and cost
    "bold_fc_1d": (lambda: bold_fc(np.ones(10)), "bold"),
    "bold_fc_one_frame": (lambda: bold_fc(np.ones((1, N))), "bold"),
    "bold_fc_strings": (lambda: bold_fc(np.array([["a", "b"], ["c", "d"]])), "bold"),
    "fcd_cdf_1d": (lambda: bold_fcd_cdf(np.ones(30), 5), "bold"),
    "fcd_cdf_window_zero": (lambda: bold_fcd_cdf(_bold(), 0), "window"),
    "fcd_cdf_window_float": (lambda: bold_fcd_cdf(_bold(), 5.5), "window"),
    "fcd_cdf_too_short": (lambda: bold_fcd_cdf(_bold(T=5), 5), "window"),
    "fcd_cdf_nan": (lambda: bold_fcd_cdf(np.where(np.eye(30, N) > 0, np.nan, _bold()), 5), "NaN"),
    "fcd_cdf_bins_zero": (lambda: bold_fcd_cdf(_bold(), 5, bins=0), "bins"),
    "fcd_cdf_bins_negative": (lambda: bold_fcd_cdf(_bold(), 5, bins=-3), "bins"),
    "summarize_not_result": (lambda: summarize(torch.zeros(2, 1, 20, N), _timing()), "result"),
    "summarize_timing_dict": (lambda: summarize(_sim(), TIMING), "timing"),
    "summarize_bins_zero": (lambda: summarize(_sim(), _timing(), bins=0), "bins"),
    "summarize_window_too_long": (
        lambda: summarize(_sim(), _timing(scan_length=72.0, fcd_window=30)),
        "window",
    ),
    "cost_fc_wrong_n": (lambda: cost(_summary(), np.eye(5), np.linspace(0, 1, 100)), "fc_emp"),
    "cost_fc_batch_mismatch": (
        lambda: cost(_summary(), np.stack([np.eye(N)] * 3), np.linspace(0, 1, 100)),
        "fc_emp",
    ),
    "cost_fc_nan": (
        lambda: cost(_summary(), np.full((N, N), np.nan), np.linspace(0, 1, 100)),
        "fc_emp",
    ),
    "cost_cdf_wrong_bins": (lambda: cost(_summary(), np.eye(N), np.linspace(0, 1, 99)), "fcd_cdf_emp"),
    "cost_cdf_batch_mismatch": (
        lambda: cost(_summary(), np.eye(N), np.ones((3, 100))),
        "fcd_cdf_emp",
    ),
    "cost_cdf_inf": (
        lambda: cost(_summary(), np.eye(N), np.full(100, np.inf)),
        "fcd_cdf_emp",
    ),
    "cost_not_summary": (lambda: cost(torch.eye(N), np.eye(N), np.ones(100)), "summary"),
    # ---------------------------------------------------------------- model: FIC, stability, BOLD
    "solve_fic_sc_batch_mismatch": (
        lambda: _m().solve_fic(_ones(), _ones(), torch.ones(2), _sc().expand(3, N, N)),
        "sc",
    ),
    "solve_fic_wee_transposed": (
        lambda: _m().solve_fic(_ones().T, _ones().T, torch.ones(2), _sc()),
        "wEE",
    ),
    "window_vectors_window_zero": (lambda: _m().window_fc_vectors(torch.randn(1, 30, N), 0), "window"),
    "window_vectors_2d": (lambda: _m().window_fc_vectors(torch.randn(30, N), 5), "bold"),
    "fcd_histogram_bins_zero": (lambda: _m().fcd_histogram(torch.randn(1, 30, N), 5, 0), "bins"),
    "fcd_histogram_window_too_long": (lambda: _m().fcd_histogram(torch.randn(1, 30, N), 40), "window"),
    "balloon_steady_state_too_negative": (lambda: _m().balloon_steady_state(-1.0), "s"),
    "balloon_steady_state_nan": (lambda: _m().balloon_steady_state(float("nan")), "s"),
    "sim_progress_not_callable": (lambda: _sim(progress=5), "progress"),
    "sim_cuda_graph_string": (lambda: _sim(cuda_graph="no"), "cuda_graph"),
    # ---------------------------------------------------------------- stats
    "sdt_not_dataframe": (lambda: _stats().sex_difference_tests(_table().to_numpy()), "DataFrame"),
    "sdt_missing_age": (
        lambda: _stats().sex_difference_tests(_with(_table(), age_in_years=None)),
        "age",
    ),
    "sdt_missing_sex": (lambda: _stats().sex_difference_tests(_with(_table(), sex=None)), "sex"),
    "sdt_unknown_sex": (
        lambda: _stats().sex_difference_tests(_with(_table(), sex=["F", "x"] * 20), "ei_ratio_mean"),
        "sex",
    ),
    "sdt_empty": (lambda: _stats().sex_difference_tests(_table().iloc[:0], "ei_ratio_mean"), "table"),
    "sdt_single_row": (
        lambda: _stats().sex_difference_tests(_table().iloc[:1], "ei_ratio_mean"),
        "table",
    ),
    "sdt_missing_target": (
        lambda: _stats().sex_difference_tests(_table(), "ei_ratio_nope"),
        "ei_ratio_nope",
    ),
    "sdt_nan_target": (
        lambda: _stats().sex_difference_tests(
            _with(_table(), ei_ratio_mean=[np.nan] + [3.0, 3.1] * 19 + [3.2]), "ei_ratio_mean"
        ),
        "ei_ratio_mean",
    ),
    "sdt_method_unknown": (
        lambda: _stats().sex_difference_tests(_table(), "ei_ratio_mean", method="t"),
        "method",
    ),
    "sdt_mu_df_zero": (
        lambda: _stats().sex_difference_tests(_table(), "ei_ratio_mean", mu_df=0),
        "mu_df",
    ),
    "sdt_alpha_two": (
        lambda: _stats().sex_difference_tests(_table(), "ei_ratio_mean", alpha=2.0),
        "alpha",
    ),
    "sdt_level_nan": (
        lambda: _stats().sex_difference_tests(_table(), "ei_ratio_mean", level=float("nan")),
        "level",
    ),
    "sdt_negative_age": (
        lambda: _stats().sex_difference_tests(_with(_table(), age_in_years=-1.0), "ei_ratio_mean"),
        "age",
    ),
    "sds_missing_columns": (
        lambda: _stats().sex_difference_summary(pd.DataFrame({"p": [0.1]})),
        "results",
    ),
    "sds_not_dataframe": (lambda: _stats().sex_difference_summary([1, 2]), "results"),
    "sex_gap_n_boot_one": (lambda: _stats().sex_gap(_table(), n_boot=1), "n_boot"),
    "sex_gap_statistic": (lambda: _stats().sex_gap(_table(), n_boot=0, statistic="mode"), "statistic"),
    "sex_gap_ages_outside": (lambda: _stats().sex_gap(_table(), n_boot=0, ages=[200.0]), "ages"),
    "sex_gap_ages_nan": (lambda: _stats().sex_gap(_table(), n_boot=0, ages=[np.nan]), "ages"),
    "sex_gap_target_list": (lambda: _stats().sex_gap(_table(), ["ei_ratio_mean"], n_boot=0), "target"),
    "sex_gap_n_boot_float": (lambda: _stats().sex_gap(_table(), n_boot=2.5), "n_boot"),
    "rgs_missing_roi": (
        lambda: _stats().region_group_scores(_with(_table(), ei_ratio_roi_3=None)),
        "ei_ratio_roi_3",
    ),
    "rgs_not_dataframe": (lambda: _stats().region_group_scores(np.ones((3, 3))), "DataFrame"),
    "rgs_empty": (lambda: _stats().region_group_scores(_table().iloc[:0]), "table"),
    "rgsum_age_bins_unsorted": (
        lambda: _stats().region_group_summary(_table(), age_bins=[50, 10, 90]),
        "age_bins",
    ),
    "rgsum_alpha_zero": (lambda: _stats().region_group_summary(_table(), alpha=0.0), "alpha"),
    "rgtraj_df_zero": (lambda: _stats().region_group_trajectories(_table(), df=0), "df"),
    "rgtraj_level_one": (lambda: _stats().region_group_trajectories(_table(), level=1.0), "level"),
    "fdr_bh_out_of_range": (lambda: _stats().fdr_bh([0.1, 1.5]), "p"),
    "fdr_bh_alpha_nan": (lambda: _stats().fdr_bh([0.1], alpha=float("nan")), "alpha"),
    "add_fdr_missing_p": (lambda: _stats().add_fdr(pd.DataFrame({"q": [0.1]})), "p"),
    "cohens_d_single": (lambda: _stats().cohens_d(np.array([1.0]), np.array([2.0])), "a"),
    "cohens_d_nan": (lambda: _stats().cohens_d(np.array([1.0, np.nan, 2]), np.array([2.0, 3, 4])), "a"),
    "brown_forsythe_empty": (lambda: _stats().brown_forsythe(np.array([]), np.array([1.0, 2])), "a"),
    "percentile_level_zero": (lambda: _stats().percentile_interval(np.ones(5), level=0.0), "level"),
    "bootstrap_counts_float": (
        lambda: _stats().stratified_bootstrap_counts(np.zeros(4), 2.5, np.random.default_rng(0)),
        "n_boot",
    ),
    "weighted_median_shape": (
        lambda: _stats().weighted_median(np.ones((3, 2)), np.ones((4, 2))),
        "weights",
    ),
    "weighted_median_negative": (
        lambda: _stats().weighted_median(np.ones((3, 1)), -np.ones((3, 1))),
        "weights",
    ),
    "sum_to_zero_bad_code": (lambda: _stats().sum_to_zero(np.array([0, 3]), 2), "codes"),
    "chart_sex_tests_missing_sex": (
        lambda: _stats().chart_sex_tests(_with(_table(), sex=None), "ei_ratio_mean"),
        "sex",
    ),
    # ---------------------------------------------------------------- plotting
    "brain_map_wrong_length": (lambda: _plot().plot_brain_map(np.ones(10)), "values"),
    "brain_map_2d": (lambda: _plot().plot_brain_map(np.ones((68, 2))), "values"),
    "brain_map_all_nan": (lambda: _plot().plot_brain_map(np.full(68, np.nan)), "values"),
    "brain_map_unknown_region": (lambda: _plot().plot_brain_map({"nowhere": 1.0}), "nowhere"),
    "brain_map_bad_cmap": (lambda: _plot().plot_brain_map(np.ones(68), cmap="nocmap"), "cmap"),
    "brain_map_bad_mode": (
        lambda: _plot().plot_brain_map(np.ones(68), display_mode="q"),
        "display_mode",
    ),
    "brain_map_vmin_gt_vmax": (lambda: _plot().plot_brain_map(np.ones(68), vmin=2.0, vmax=1.0), "vmin"),
    "person_wrong_length": (lambda: _plot().plot_person_brain_map(np.ones(10), "s1"), "values"),
    "person_value_unknown": (
        lambda: _plot().plot_person_brain_map(np.ones(68), "s1", value="t"),
        "value",
    ),
    "person_centile_out_of_range": (
        lambda: _plot().plot_person_brain_map(np.full(68, 50.0), "s1", value="centile"),
        "centile",
    ),
    "centile_text_nan": (lambda: _plot().centile_text(float("nan")), "centile"),
    "centile_text_percent": (lambda: _plot().centile_text(50.0), "centile"),
    "lifespan_missing_columns": (
        lambda: _plot().plot_lifespan_centiles(_centiles().drop(columns="C50"), _centiles()),
        "C50",
    ),
    "lifespan_empty": (
        lambda: _plot().plot_lifespan_centiles(_centiles().iloc[:0], _centiles()),
        "centiles",
    ),
    "lifespan_data_missing_target": (
        lambda: _plot().plot_lifespan_centiles(
            _centiles(), _centiles(), _table().drop(columns="ei_ratio_mean")
        ),
        "ei_ratio_mean",
    ),
    "lifespan_data_unknown_sex": (
        lambda: _plot().plot_lifespan_centiles(_centiles(), _centiles(), _with(_table(), sex="x")),
        "sex",
    ),
    "sex_gap_plot_missing_column": (
        lambda: _plot().plot_sex_gap(_gap_table().drop(columns="gap")),
        "gap",
    ),
    "sex_gap_plot_empty": (lambda: _plot().plot_sex_gap(_gap_table().iloc[:0]), "gap_table"),
    "sex_effects_missing_column": (
        lambda: _plot().plot_sex_effects(_tests_table().drop(columns="effect")),
        "effect",
    ),
    "sex_effects_unknown_test": (lambda: _plot().plot_sex_effects(_tests_table(), test="nope"), "nope"),
    "sex_effects_level_nan": (
        lambda: _plot().plot_sex_effects(_tests_table(), level=float("nan")),
        "level",
    ),
    "rg_traj_plot_missing_sex": (
        lambda: _plot().plot_region_group_trajectories(_with(_table(), sex=None)),
        "sex",
    ),
    "ei_vs_age_plot_empty": (lambda: _plot().plot_ei_vs_age_by_group(_table().iloc[:0]), "table"),
    "ei_vs_age_plot_max_points_negative": (
        lambda: _plot().plot_ei_vs_age_by_group(_table(), max_points=-1),
        "max_points",
    ),
    # ---------------------------------------------------------------- datasets
    "region_classes_string": (
        lambda: __import__("delssome_norms.datasets", fromlist=["x"]).region_classes("lh-bankssts"),
        "regions",
    ),
    "load_reference_table_missing_folder": (
        lambda: __import__("delssome_norms.datasets", fromlist=["x"]).load_reference_table(
            "/nonexistent"
        ),
        "nonexistent",
    ),
    "load_patients_missing_folder": (
        lambda: __import__("delssome_norms.datasets", fromlist=["x"]).load_patients("/nonexistent"),
        "nonexistent",
    ),
    "load_reference_subjects_missing_folder": (
        lambda: __import__("delssome_norms.datasets", fromlist=["x"]).load_reference_subjects(
            "/nonexistent"
        ),
        "nonexistent",
    ),
    "load_gradient_file_not_folder": (
        lambda: __import__("delssome_norms.datasets", fromlist=["x"]).load_default_gradient(__file__),
        "not found",
    ),
    "materialise_bad_kind": (
        lambda: _datasets().materialise_subjects(_scratch(), kind="controls"),
        "kind",
    ),
    "materialise_unknown_id": (
        lambda: _datasets().materialise_subjects(_scratch(), subject_ids=["nobody"]),
        "nobody",
    ),
    "materialise_empty_ids": (
        lambda: _datasets().materialise_subjects(_scratch(), subject_ids=[]),
        "subject",
    ),
    "materialise_int_ids": (
        lambda: _datasets().materialise_subjects(_scratch(), subject_ids=7),
        "subject_ids",
    ),
    "materialise_folder_is_file": (
        lambda: _datasets().materialise_subjects(__file__, subject_ids=_first_subject()),
        "folder",
    ),
}


def _m():
    from delssome_norms import model

    return model


def _ones() -> torch.Tensor:
    return torch.ones(2, N)


def _datasets():
    from delssome_norms import datasets

    return datasets


def _scratch() -> str:
    """A folder that is never created (every case using it is refused before writing)."""
    import tempfile
    from pathlib import Path

    return str(Path(tempfile.gettempdir()) / "api_sweep_0612_never_written")


def _first_subject() -> str:
    return str(_datasets().load_reference_subjects().demographics["subject_id"].iat[0])


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_clearly(name: str) -> None:
    fn, word = REFUSED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(InvalidInputError) as info:
            fn()
    assert word.lower() in str(info.value).lower(), str(info.value)


# ------------------------------------------------------------------------------------------------
# Legitimately convertible inputs: the result matches an independent expectation
# ------------------------------------------------------------------------------------------------
SIGMA = 2.0**-7  # exact in float16, so half-precision inputs hold the same values


def _run(params: PFICParams, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _sim(params=params, **kw)


def _ref_params(B: int = 2) -> PFICParams:
    return _params(B, sigma=torch.full((B, N), SIGMA))


def _case_sim_float16_params() -> None:
    # coefficients were formed in float16 (wEE J_NMDA ~1e-3 off): E/I moved by 0.07 %
    half = PFICParams(*(torch.as_tensor(x).to(torch.float16) for x in _ref_params()))
    got, ref = _run(half), _run(_ref_params())
    torch.testing.assert_close(got.bold, ref.bold, rtol=0, atol=0)
    torch.testing.assert_close(got.ei_ratio, ref.ei_ratio, rtol=0, atol=0)


def _case_sim_int_params() -> None:
    ints = PFICParams(
        torch.full((2, N), 3), torch.full((2, N), 2), torch.full((2, N), SIGMA), torch.ones(2, dtype=int)
    )
    torch.testing.assert_close(_run(ints).bold, _run(_ref_params()).bold, rtol=1e-5, atol=1e-5)


def _case_sim_numpy_params_float64() -> None:
    arrays = PFICParams(*(np.asarray(x, dtype=np.float64) for x in _ref_params()))
    got = _run(arrays, dtype=torch.float64)
    torch.testing.assert_close(got.bold, _run(_ref_params(), dtype="float64").bold, rtol=0, atol=0)


def _case_sim_single_set() -> None:
    p = _ref_params(1)
    single = PFICParams(p.wEE[0], p.wEI[0], p.sigma[0], p.G[0])
    torch.testing.assert_close(_run(single).bold, _run(p).bold, rtol=0, atol=0)


def _case_sim_G_column() -> None:
    p = _ref_params()
    torch.testing.assert_close(_run(p._replace(G=p.G[:, None])).bold, _run(p).bold, rtol=0, atol=0)


def _case_solve_fic_one_sc_per_batch() -> None:
    wEE, wEI, G = torch.full((2, N), 3.0), torch.full((2, N), 2.0), torch.tensor([1.0, 0.5])
    one = _m().solve_fic(wEE, wEI, G, _sc())
    each = _m().solve_fic(wEE, wEI, G, _sc().expand(2, N, N))
    torch.testing.assert_close(each.w_ie, one.w_ie)
    torch.testing.assert_close(_m().solve_fic(wEE, wEI, G, _sc()[None]).w_ie, one.w_ie)


def _case_solve_fic_nan_set_not_converged() -> None:
    # NaN/inf wEE or G is per-set "no FIC solution" (as for wEI); it was reported converged
    wEE, wEI, G = torch.full((3, N), 3.0), torch.full((3, N), 2.0), torch.ones(3)
    wEE[1, 2], G[2] = np.nan, np.inf
    sol = _m().solve_fic(wEE, wEI, G, _sc())
    assert sol.converged.tolist() == [True, False, False]
    assert bool(torch.isfinite(sol.w_ie[0]).all()) and bool(torch.isnan(sol.w_ie[1:]).all())
    torch.testing.assert_close(sol.w_ie[0], _m().solve_fic(wEE[:1], wEI[:1], G[:1], _sc()).w_ie[0])
    assert not bool(_m().fic_fixed_point_stable(wEE, wEI, G, _sc())[0][2])


def _case_bold_fc_int_array() -> None:
    x = np.random.default_rng(1).integers(0, 100, size=(30, N))
    np.testing.assert_allclose(bold_fc(x).numpy(), np.corrcoef(x.T), atol=1e-12)


def _case_bold_fc_float16() -> None:
    x = torch.tensor(_bold(), dtype=torch.float16)
    fc = bold_fc(x)
    assert fc.dtype == torch.float16
    np.testing.assert_allclose(fc.double().numpy(), np.corrcoef(x.double().numpy().T), atol=1e-3)


def _case_fcd_cdf_float16() -> None:
    x = torch.tensor(_bold(), dtype=torch.float16)
    torch.testing.assert_close(bold_fcd_cdf(x, 5), bold_fcd_cdf(x.double().numpy(), 5))


def _case_cost_int_fc_and_unused_nan_diagonal() -> None:
    off = 0.1 * (1 - np.eye(N))
    fc = np.eye(N, dtype=int) + off
    fc[np.diag_indices(N)] = np.nan  # the diagonal is not part of the cost
    losses = cost(_summary(), fc, np.linspace(0.01, 1.0, 100))
    # simulated off-diagonal FC is 0, empirical 0.1: l1 = |0 - 0.1|
    np.testing.assert_allclose(losses.l1.numpy(), [0.1, 0.1], atol=1e-12)
    np.testing.assert_allclose(losses.ks.numpy(), [0.0, 0.0], atol=1e-12)


def _case_scale_sc_int_array() -> None:
    np.testing.assert_allclose(scale_sc(np.array([[0, 2], [4, 0]])), [[0.0, 0.01], [0.02, 0.0]])
    out = scale_sc(torch.tensor([[0, 2], [4, 0]]))
    assert isinstance(out, torch.Tensor) and out.is_floating_point()
    torch.testing.assert_close(out, torch.tensor([[0.0, 0.01], [0.02, 0.0]], dtype=out.dtype))


def _case_sex_label_spellings() -> None:
    t = _table()
    ref = _stats().sex_difference_tests(t, "ei_ratio_mean")
    female = t["sex"] == "female"
    for other in (
        t.assign(sex=np.where(female, "F", "M")),
        t.drop(columns="sex").assign(numeric_sex=female.astype(int)),
    ):
        got = _stats().sex_difference_tests(other, "ei_ratio_mean")
        np.testing.assert_allclose(got["p"].to_numpy(), ref["p"].to_numpy(), rtol=1e-12)


def _case_fdr_bh_nan_kept() -> None:
    reject, adjusted = _stats().fdr_bh([0.01, np.nan, 0.04])
    # BH by hand over the two finite p-values: min(2 * 0.01 / 1, 2 * 0.04 / 2) = 0.02, then 0.04
    np.testing.assert_allclose(adjusted, [0.02, np.nan, 0.04])
    assert reject.tolist() == [True, False, True]


ACCEPTED = {
    name.removeprefix("_case_"): fn for name, fn in globals().items() if name.startswith("_case_")
}


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted_correctly(name: str) -> None:
    ACCEPTED[name]()
