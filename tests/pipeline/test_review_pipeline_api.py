"""The Python API as a researcher uses it: fitted attributes, inputs of several kinds, argument
checks, error messages spelled for Python, and results read back from their folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from delssome_norms.datasets import DK68_REGIONS, load_reference_subjects
from delssome_norms.errors import InvalidInputError, NotFittedError
from delssome_norms.fit import CMAESSettings, FitSettings
from delssome_norms.fit.lockstep import SubjectOutcome
from delssome_norms.pipeline import EIEstimator, EIFitError, EIResult, subject_from_arrays

pytestmark = pytest.mark.filterwarnings("ignore:no myelin/gradient maps given")

N = 6
TR, SCAN = 0.72, 14.4
TINY = FitSettings(
    cmaes=CMAESSettings(generations=2, popsize=4, mu=2),
    dt_train=0.005, dt_val=0.005, dt_test=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50,
    n_dup=1, test_top_k=1, stability_gate=False, seed=3,
)  # fmt: skip


def _sc(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sc = rng.random((N, N)) ** 3
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def _fc(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((200, N)) + 0.5 * rng.standard_normal((200, 1))
    return np.corrcoef(ts.T)


def _cdf(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.normal(0.2, 0.2, 500))
    return np.searchsorted(x, np.linspace(-1, 1, 10001)[1:], side="right") / len(x)


def test_fitted_attributes_before_fit_are_a_clear_not_fitted_error() -> None:
    est = EIEstimator(TINY)
    for name in ("result_", "settings_", "outcome_"):
        with pytest.raises(NotFittedError, match=f"not fitted yet, so there is no {name}; call fit"):
            getattr(est, name)
    assert not hasattr(est, "result_")  # still an AttributeError, as scikit-learn expects
    with pytest.raises(AttributeError, match="no attribute 'nope_'"):
        est.nope_  # noqa: B018


def test_a_failed_fit_says_so_and_names_the_python_arguments(monkeypatch) -> None:
    message = "train: no valid candidate; try more generations or candidates (--generations, --popsize)"
    failed = SubjectOutcome("s1", "failed", "train", message)
    monkeypatch.setattr(EIEstimator, "_estimate", staticmethod(lambda *a, **k: failed))
    est = EIEstimator(TINY)
    with pytest.raises(EIFitError, match=r"in Python: EIEstimator argument\(s\) generations, popsize"):
        est.fit(_fc(), _cdf(), tr=TR, scan_length=SCAN, sc=_sc(), subject_id="s1")
    assert est.outcome_ is failed
    with pytest.raises(NotFittedError, match="the last fit failed"):
        est.result_  # noqa: B018


def test_cli_options_in_messages_get_their_python_spelling() -> None:
    from delssome_norms.pipeline.estimator import _with_python_hint

    hint = _with_python_hint("use --dt-train 0.005, --no-stability-gate, --rate-gate or --shard")
    assert hint.endswith(
        "(in Python: EIEstimator argument(s) dt_train, stability_gate=False, "
        "settings=FitSettings(rate_gate=...))"
    )
    assert _with_python_hint("no options here") == "no options here"
    # the map-pair check of the fit layer names the Python argument, not the CLI option
    with pytest.raises(InvalidInputError, match=r"^gradient: only myelin .* argument\(s\) maps\)"):
        subject_from_arrays(
            "x", _fc(), _cdf(), tr=TR, scan_length=SCAN, sc=_sc(), myelin=np.arange(N) + 1.0
        )


@pytest.mark.parametrize("value", ["no", 1, None])
def test_overwrite_must_be_a_bool(tmp_path: Path, value) -> None:
    # overwrite="no" used to be truthy and would discard another run's results in out_dir
    est = EIEstimator(TINY, out_dir=tmp_path / "s", overwrite=value)
    with pytest.raises(
        InvalidInputError, match=f"^overwrite: overwrite must be True or False, got {value!r}"
    ):
        est.fit(_fc(), _cdf(), tr=TR, scan_length=SCAN, sc=_sc())
    assert not (tmp_path / "s").exists()


def test_out_dir_must_be_a_path() -> None:
    with pytest.raises(InvalidInputError, match=r"^out_dir: out_dir must be a folder path"):
        EIEstimator(TINY, out_dir=3).fit(_fc(), _cdf(), tr=TR, scan_length=SCAN, sc=_sc())


def test_missing_fc_or_cdf_is_named() -> None:
    with pytest.raises(InvalidInputError, match=r"^fc: is required"):
        subject_from_arrays("x", None, _cdf(), tr=TR, scan_length=SCAN, sc=_sc())
    with pytest.raises(InvalidInputError, match=r"^fcd_cdf: is required"):
        EIEstimator(TINY).fit(_fc(), None, tr=TR, scan_length=SCAN, sc=_sc())


def test_torch_tensors_with_grad_or_float32_are_inputs() -> None:
    fc, cdf, sc = _fc(), _cdf(), _sc()
    ref = EIEstimator(TINY).fit(fc, cdf, tr=TR, scan_length=SCAN, sc=sc).result_
    grads = EIEstimator(TINY).fit(
        torch.tensor(fc, requires_grad=True),
        torch.tensor(cdf),
        tr=TR,
        scan_length=SCAN,
        sc=torch.tensor(sc, requires_grad=True),
    )
    np.testing.assert_array_equal(grads.result_.ei.to_numpy(), ref.ei.to_numpy())
    f32 = torch.tensor(fc, dtype=torch.float32)
    subject = subject_from_arrays(
        "x", f32, torch.tensor(cdf, dtype=torch.float64), tr=TR, scan_length=SCAN, sc=sc
    )
    assert subject.fc.dtype == np.float64
    np.testing.assert_array_equal(subject.fc, np.clip(fc.astype(np.float32).astype(np.float64), -1, 1))


@pytest.mark.parametrize(
    ("dtype", "name"),
    [(np.float64, "float64"), (np.dtype("float32"), "float32"), (torch.float64, "float64")],
)
def test_numpy_and_torch_dtypes_are_accepted(dtype, name: str) -> None:
    assert EIEstimator(dtype=dtype).resolved_settings().dtype == name


def test_np_dtype_that_is_not_a_simulation_dtype_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="dtype must be 'float32' or 'float64', got 'float16'"):
        EIEstimator(dtype=np.float16).resolved_settings()


def test_a_result_read_back_from_its_folder_keeps_the_dk68_names(tmp_path: Path) -> None:
    subjects = load_reference_subjects()
    est = EIEstimator(
        mode="euler", generations=2, popsize=8, mu=2, n_dup=1, test_top_k=1, stability_gate=False,
        dt_train=0.005, dt_val=0.005, dt_test=0.005, seed=1, out_dir=tmp_path / "s",
    ).fit(subjects.fc[0], subjects.fcd_cdf[0], tr=0.72, scan_length=86.4)  # fmt: skip
    back = EIResult.from_dir(tmp_path / "s")
    assert back.regions == list(DK68_REGIONS)
    assert back.parameters.index.tolist() == list(DK68_REGIONS)
    np.testing.assert_array_equal(back.ei.to_numpy(), est.result_.ei.to_numpy())
    assert back.ei.index.equals(est.result_.ei.index)
    # names given explicitly still win
    names = [f"r{i}" for i in range(68)]
    assert EIResult.from_dir(tmp_path / "s", names).regions == names


def test_fit_settings_take_numpy_dtypes_too() -> None:
    assert FitSettings(dtype=np.float64).dtype == "float64"
    assert FitSettings(dtype=np.dtype("float32")).dtype == "float32"
    with pytest.raises(InvalidInputError, match="got 'float16'"):
        FitSettings(dtype=np.float16)


def test_result_repr_is_one_line_and_results_compare_by_identity(tmp_path: Path) -> None:
    subjects = load_reference_subjects()
    est = EIEstimator(
        mode="euler", generations=2, popsize=8, mu=2, n_dup=2, test_top_k=2, stability_gate=False,
        dt_train=0.005, dt_val=0.005, dt_test=0.005, seed=1,
    ).fit(subjects.fc[0], subjects.fcd_cdf[0], tr=0.72, scan_length=86.4)  # fmt: skip
    r = est.result_
    text = repr(r)
    assert "\n" not in text and len(text) < 200
    assert f"regions=68, mean E/I {r.ei.mean():.3f}" in text
    lo, hi = r.mean_interval
    assert f"[{lo:.3f}, {hi:.3f}] (90 %)" in text
    assert ("flagged: " in text) == r.flagged
    assert r == r and r != EIResult.from_dir  # identity, not element-wise Series comparison
    assert hash(r) == hash(r)
    # a mean without an interval (non-finite spread) is None, not a TypeError
    missing = {**r.interval, "mean_lo": None, "mean_hi": None}
    import dataclasses

    assert dataclasses.replace(r, interval=missing).mean_interval is None


def test_dtype_none_is_refused_not_read_as_numpy_float64() -> None:
    """np.dtype(None) is float64: FitSettings(dtype=None) silently doubled the cost of a fit."""
    from delssome_norms.model.integrate import _simulation_dtype

    for bad in (None, float):
        with pytest.raises(InvalidInputError, match="dtype must be"):
            FitSettings(dtype=bad)
        with pytest.raises(InvalidInputError, match="dtype must be"):
            _simulation_dtype(bad)
    assert _simulation_dtype(np.float32) is torch.float32
