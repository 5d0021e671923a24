"""EIEstimator: same numbers as the file-based fit, files identical with out_dir, sklearn API."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import CMAESSettings, FitSettings, estimate_ei
from delssome_norms.io import write_matrix
from delssome_norms.pipeline import EIEstimator, EIResult, subject_from_arrays
from delssome_norms.pipeline.estimator import EIFitError

pytestmark = pytest.mark.filterwarnings("ignore:no myelin/gradient maps given")

N = 6
TR, SCAN = 0.72, 14.4
FILES = ("EI_ratio.csv", "best_parameters.csv", "fit_quality.csv")


def _sc(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sc = rng.random((N, N)) ** 3
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def _fc(seed: int = 0, level: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((200, N)) + np.sqrt(level / (1 - level)) * rng.standard_normal((200, 1))
    return np.corrcoef(ts.T)


def _cdf(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.normal(0.2, 0.2, 500))
    return np.searchsorted(x, np.linspace(-1, 1, 10001)[1:], side="right") / len(x)


SETTINGS = FitSettings(
    cmaes=CMAESSettings(generations=3, popsize=8, mu=2),
    dt_train=0.005, dt_val=0.005, dt_test=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50,
    n_dup=2, test_top_k=2, stability_gate=False, seed=3,
)  # fmt: skip


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return {"fc": _fc(), "fcd_cdf": _cdf(), "sc": _sc()}


@pytest.fixture(scope="module")
def file_fit(tmp_path_factory, arrays) -> Path:
    """The old path: estimate_ei writes the subject's folder."""
    out = tmp_path_factory.mktemp("old") / "s1"
    subject = subject_from_arrays(
        "s1", arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"]
    )
    assert estimate_ei(subject, out, SETTINGS).status == "done"
    return out


def test_in_memory_fit_equals_the_file_based_fit(arrays, file_fit: Path) -> None:
    est = EIEstimator(SETTINGS).fit(
        arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"], subject_id="s1"
    )
    res = est.result_
    assert isinstance(res, EIResult) and est.outcome_.status == "done"
    old = pd.read_csv(file_fit / "EI_ratio.csv")
    np.testing.assert_allclose(res.ei.to_numpy(), old["EI_ratio"].to_numpy(), rtol=1e-14, atol=0)
    np.testing.assert_allclose(res.r_e.to_numpy(), old["r_E"].to_numpy(), rtol=1e-14, atol=0)
    assert res.ei.index.tolist() == [f"region_{i}" for i in range(N)]  # no atlas names for N=6
    params = pd.read_csv(file_fit / "best_parameters.csv")
    np.testing.assert_allclose(res.parameters["wEI"].to_numpy(), params["wEI"].to_numpy(), rtol=1e-14)
    assert res.G == pytest.approx(params["G"].iloc[0], rel=1e-14)
    quality = pd.read_csv(file_fit / "fit_quality.csv").set_index("stage")
    np.testing.assert_allclose(res.losses.to_numpy(), quality.to_numpy(), rtol=1e-14)
    # to_frame is the EI_ratio.csv layout plus the region names
    frame = res.to_frame()
    assert list(frame.drop(columns="region").columns) == list(old.columns)
    assert res.provenance["mode"] == "euler" and res.provenance["atlas"]["n_regions"] == N
    # the interval and the verdict are those of run.json, and bracket the point estimate
    run = json.loads((file_fit / "run.json").read_text())
    lo, hi = res.mean_interval
    assert (lo, hi) == pytest.approx((run["ei_interval"]["mean_lo"], run["ei_interval"]["mean_hi"]))
    assert lo <= res.ei.mean() <= hi
    np.testing.assert_allclose(res.ei_lo.to_numpy(), old["EI_ratio_lo"].to_numpy(), rtol=1e-14)
    assert res.flagged == run["fit_quality"]["flagged"]
    assert res.quality["reasons"] == run["fit_quality"]["reasons"]


def test_out_dir_writes_the_same_files_and_reuses_them(tmp_path: Path, arrays, file_fit: Path) -> None:
    out = tmp_path / "s1"
    est = EIEstimator(SETTINGS, out_dir=out).fit(
        arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"], subject_id="s1"
    )
    for name in FILES:
        assert (out / name).read_bytes() == (file_fit / name).read_bytes(), name
    again = EIEstimator(SETTINGS, out_dir=out).fit(
        arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"], subject_id="s1"
    )
    assert again.outcome_.status == "skipped"
    pd.testing.assert_series_equal(again.result_.ei, est.result_.ei, rtol=1e-15)
    pd.testing.assert_frame_equal(again.result_.losses, est.result_.losses, rtol=1e-15)
    np.testing.assert_array_equal(again.result_.coefficients, est.result_.coefficients)
    assert again.result_.mean_interval == pytest.approx(est.result_.mean_interval, rel=1e-15)
    np.testing.assert_allclose(
        again.result_.interval["spread_log_region"], est.result_.interval["spread_log_region"]
    )
    assert again.result_.quality == est.result_.quality
    # another seed in the same folder is refused (results of another run)
    with pytest.raises(InvalidInputError, match="--overwrite"):
        EIEstimator(SETTINGS, seed=4, out_dir=out).fit(
            arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"], subject_id="s1"
        )


def test_files_and_arrays_give_the_same_subject(tmp_path: Path, arrays) -> None:
    for name, value in arrays.items():
        write_matrix(value if name != "fcd_cdf" else value[:, None], tmp_path / f"{name}.csv")
    a = subject_from_arrays(
        "x", arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"]
    )
    f = subject_from_arrays(
        "x", tmp_path / "fc.csv", str(tmp_path / "fcd_cdf.csv"), tr=TR, scan_length=SCAN,
        sc=tmp_path / "sc.csv",
    )  # fmt: skip
    np.testing.assert_allclose(f.fc, a.fc, atol=1e-15)
    np.testing.assert_allclose(f.fcd_cdf, a.fcd_cdf, atol=1e-15)
    np.testing.assert_allclose(f.sc, a.sc, atol=1e-15)
    assert f.sources["fc"].endswith("fc.csv") and a.sources["fc"] == "array"


def test_sklearn_api_and_settings_overrides() -> None:
    est = EIEstimator(SETTINGS, generations=5, seed=9, mode="euler")
    copy = clone(est)
    assert copy is not est and copy.get_params() == est.get_params()
    assert copy.settings == SETTINGS
    assert repr(EIEstimator(generations=5)) == "EIEstimator(generations=5)"
    assert est.set_params(popsize=10) is est and est.popsize == 10
    resolved = est.resolved_settings()
    assert resolved.cmaes.generations == 5 and resolved.cmaes.popsize == 10 and resolved.seed == 9
    # everything not overridden comes from the base settings
    assert dataclasses.replace(resolved, seed=3, cmaes=SETTINGS.cmaes) == SETTINGS
    assert EIEstimator().resolved_settings() == FitSettings()
    four = EIEstimator(searches=4).resolved_settings()
    assert (four.searches, four.combine_rule) == (4, "mean")
    assert EIEstimator(searches=4, combine="best").resolved_settings().combine_rule == "best"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "fast"}, "mode"),
        ({"generations": 0}, "generations"),
        ({"popsize": 2.5}, "popsize"),
        ({"settings": {"seed": 1}}, "FitSettings"),
        ({"dt_test": -1.0}, "dt_test"),
        ({"combine": "mean"}, "--searches >= 2"),
    ],
)
def test_bad_settings_are_one_clear_error(kwargs, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        EIEstimator(**kwargs).resolved_settings()


def test_bad_arrays_are_one_clear_error(arrays) -> None:
    with pytest.raises(InvalidInputError, match="FC"):
        EIEstimator(SETTINGS).fit(arrays["fc"][:, :3], arrays["fcd_cdf"], tr=TR, scan_length=SCAN)
    with pytest.raises(InvalidInputError, match="SC"):
        subject_from_arrays(
            "x", arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=_sc()[:4, :4]
        )
    with pytest.raises(InvalidInputError):
        subject_from_arrays(
            "x", arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, myelin=np.ones(N)
        )


def test_numpy_and_torch_spellings_give_the_same_fit(arrays, file_fit: Path) -> None:
    """torch.device / np.int64 / torch.float32 are the same settings as "cpu" / 3 / "float32"."""
    import torch

    settings = dataclasses.replace(
        SETTINGS, seed=np.int64(3), device=torch.device("cpu"), dtype=torch.float32
    )
    assert settings == SETTINGS and type(settings.seed) is int
    est = EIEstimator(settings).fit(
        arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"], subject_id="s1"
    )
    old = pd.read_csv(file_fit / "EI_ratio.csv")
    np.testing.assert_allclose(est.result_.ei.to_numpy(), old["EI_ratio"].to_numpy(), rtol=1e-14)
    assert est.result_.provenance["settings"]["device"] == "cpu"


@pytest.mark.parametrize(
    ("device", "words"),
    [("gpu", "unknown device"), ("mps", "not supported"), ("cuda:99", "cuda")],
)
def test_unusable_device_is_refused_before_any_work(arrays, device: str, words: str) -> None:
    import torch

    if device.startswith("cuda") and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    with pytest.raises(InvalidInputError, match=words):
        EIEstimator(dataclasses.replace(SETTINGS, device=device)).fit(
            arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"]
        )


def test_a_failed_refit_leaves_no_result_of_the_previous_subject(arrays) -> None:
    est = EIEstimator(SETTINGS).fit(
        arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"], subject_id="s1"
    )
    assert est.result_.subject_id == "s1"
    est.set_params(settings=dataclasses.replace(SETTINGS, dt_train=0.5))
    with pytest.raises(InvalidInputError, match="too coarse"):
        est.fit(
            arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"], subject_id="s2"
        )
    assert not hasattr(est, "result_") and not hasattr(est, "outcome_")


def test_a_failed_overwrite_keeps_the_results_it_was_to_replace(tmp_path: Path, arrays) -> None:
    out = tmp_path / "s1"
    kw = {"tr": TR, "scan_length": SCAN, "sc": arrays["sc"], "subject_id": "s1"}
    first = EIEstimator(SETTINGS, out_dir=out).fit(arrays["fc"], arrays["fcd_cdf"], **kw)
    before = (out / "EI_ratio.csv").read_bytes()
    impossible = dataclasses.replace(SETTINGS, rate_gate=(40.0, 50.0))  # rejects every candidate
    with pytest.raises(EIFitError, match=r"kept in .*previous"):
        EIEstimator(impossible, out_dir=out, overwrite=True).fit(arrays["fc"], arrays["fcd_cdf"], **kw)
    assert not (out / "run.json").exists()  # nothing at the top level passes for the refit's result
    assert (out / "previous" / "EI_ratio.csv").read_bytes() == before
    kept = EIResult.from_dir(out / "previous")
    pd.testing.assert_series_equal(kept.ei, first.result_.ei, check_names=False, check_index=False)
    # a refit that succeeds replaces them and removes the copy
    EIEstimator(SETTINGS, seed=5, out_dir=out, overwrite=True).fit(arrays["fc"], arrays["fcd_cdf"], **kw)
    assert (out / "run.json").exists() and not (out / "previous").exists()


def test_to_table_needs_demographics(arrays) -> None:
    est = EIEstimator(SETTINGS).fit(
        arrays["fc"], arrays["fcd_cdf"], tr=TR, scan_length=SCAN, sc=arrays["sc"]
    )
    with pytest.raises(InvalidInputError, match="mapping or pandas Series"):
        est.result_.to_table(None)


def test_labelled_dk68_inputs_are_put_in_atlas_order() -> None:
    """A DataFrame FC labelled with DK68 names in another order must not be used by position."""
    from delssome_norms.datasets import DK68_REGIONS, load_reference_subjects

    subjects = load_reference_subjects()
    fc, cdf = subjects.fc[0], subjects.fcd_cdf[0]
    names = list(DK68_REGIONS)
    perm = np.random.default_rng(0).permutation(68)
    shuffled = pd.DataFrame(
        fc[np.ix_(perm, perm)], index=[names[i] for i in perm], columns=[names[i] for i in perm]
    )
    a = subject_from_arrays("x", fc, cdf, tr=0.72, scan_length=432.0)
    b = subject_from_arrays("x", shuffled, cdf, tr=0.72, scan_length=432.0)
    np.testing.assert_array_equal(a.fc, b.fc)
    # pd.read_csv of a matrix with a header row: region names on the columns only
    header_only = pd.DataFrame(fc[np.ix_(perm, perm)], columns=[names[i] for i in perm])
    c = subject_from_arrays("x", header_only, cdf, tr=0.72, scan_length=432.0)
    np.testing.assert_array_equal(a.fc, c.fc)
    with pytest.raises(InvalidInputError, match="labelled differently"):
        subject_from_arrays("x", shuffled.set_axis(names, axis=1), cdf, tr=0.72, scan_length=432.0)


def test_labelled_and_plain_inputs_are_not_silently_misaligned() -> None:
    """A reordered labelled FC next to plain SC/map arrays, or region labels with a typo, are
    refused; labels spelled another way (ctx-lh-, upper case) are matched by name, maps too."""
    from delssome_norms.datasets import DK68_REGIONS, load_reference_subjects

    subjects = load_reference_subjects()
    fc, cdf = subjects.fc[0], subjects.fcd_cdf[0]
    perm = np.random.default_rng(1).permutation(68)
    own = [DK68_REGIONS[i] for i in perm]
    shuffled = pd.DataFrame(fc[np.ix_(perm, perm)], index=own, columns=own)
    rng = np.random.default_rng(2)
    sc = rng.random((68, 68))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0.0)
    with pytest.raises(InvalidInputError, match="sc came without region labels"):
        subject_from_arrays("x", shuffled, cdf, tr=0.72, scan_length=432.0, sc=sc)
    myelin, gradient = rng.normal(size=68), rng.normal(size=68)
    labelled = subject_from_arrays(
        "x",
        shuffled,
        cdf,
        tr=0.72,
        scan_length=432.0,
        sc=pd.DataFrame(sc[np.ix_(perm, perm)], index=own, columns=own),
        myelin=pd.Series(myelin[perm], index=own),
        gradient=pd.Series(gradient[perm], index=own),
    )
    np.testing.assert_array_equal(labelled.fc, fc)
    np.testing.assert_allclose(labelled.myelin, myelin)
    np.testing.assert_allclose(labelled.gradient, gradient)
    spelled = [n.upper().replace("LH_", "ctx-lh-").replace("RH_", "ctx-rh-") for n in own]
    other = subject_from_arrays(
        "x",
        shuffled.set_axis(spelled, axis=0).set_axis(spelled, axis=1),
        cdf,
        tr=0.72,
        scan_length=432.0,
    )
    np.testing.assert_array_equal(other.fc, fc)
    typo = list(own)
    typo[5] = typo[5].replace("_", "_x", 1)
    with pytest.raises(InvalidInputError, match="match no region"):
        subject_from_arrays(
            "x", shuffled.set_axis(typo, axis=0).set_axis(typo, axis=1), cdf, tr=0.72, scan_length=432.0
        )


def test_labels_in_atlas_order_pass_and_unlabelled_pandas_count_as_plain() -> None:
    from delssome_norms.datasets import DK68_REGIONS, load_reference_subjects

    subjects = load_reference_subjects()
    fc, cdf = subjects.fc[0], subjects.fcd_cdf[0]
    rng = np.random.default_rng(3)
    ctx = [n.replace("lh_", "ctx-lh-").replace("rh_", "ctx-rh-") for n in DK68_REGIONS]
    myelin = pd.Series(rng.normal(size=68), index=ctx)  # other spelling, atlas order
    ok = subject_from_arrays(
        "x", fc, cdf, tr=0.72, scan_length=432.0, myelin=myelin, gradient=rng.normal(size=68)
    )
    np.testing.assert_array_equal(ok.myelin, myelin.to_numpy())
    perm = rng.permutation(68)
    own = [DK68_REGIONS[i] for i in perm]
    shuffled = pd.DataFrame(fc[np.ix_(perm, perm)], index=own, columns=own)
    sc = rng.random((68, 68))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0.0)
    with pytest.raises(InvalidInputError, match="sc came without region labels"):
        subject_from_arrays("x", shuffled, cdf, tr=0.72, scan_length=432.0, sc=pd.DataFrame(sc))
