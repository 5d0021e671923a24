"""Follow-ups of the pipeline review: saving an in-memory result, the timing arguments of
EIEstimator, 68 labels of another atlas, and float32 TR / scan length."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone

from delssome_norms.datasets import DK68_REGIONS, load_reference_subjects
from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import CMAESSettings, FitSettings
from delssome_norms.fit.outputs import OUTPUT_FILES, RUN_FORMAT_VERSION, run_fingerprint
from delssome_norms.io import check_timing
from delssome_norms.io.regions import FREESURFER_DK_IDS
from delssome_norms.pipeline import EIEstimator, EIResult, subject_from_arrays
from delssome_norms.pipeline.estimator import _with_python_hint

pytestmark = pytest.mark.filterwarnings("ignore:no myelin/gradient maps given")

N = 6
TR, SCAN = 0.72, 14.4
# tiny budget; the timing fields are left to the estimator's own arguments
BASE = FitSettings(
    cmaes=CMAESSettings(generations=2, popsize=4, mu=2),
    dt_train=0.005, dt_val=0.005, dt_test=0.005, n_dup=1, test_top_k=1, stability_gate=False,
    seed=3,
)  # fmt: skip
TIMING = {"burn_in": 0.72, "fcd_window": 5, "warmup_steps": 50}


def _sc() -> np.ndarray:
    rng = np.random.default_rng(0)
    sc = rng.random((N, N)) ** 3
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def _fc(n: int = N, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((300, n)) + 0.5 * rng.standard_normal((300, 1))
    return np.corrcoef(ts.T)


def _cdf() -> np.ndarray:
    rng = np.random.default_rng(0)
    x = np.sort(rng.normal(0.2, 0.2, 500))
    return np.searchsorted(x, np.linspace(-1, 1, 10001)[1:], side="right") / len(x)


def _fit(**kwargs) -> EIEstimator:
    return EIEstimator(BASE, **TIMING, **kwargs).fit(
        _fc(), _cdf(), tr=TR, scan_length=SCAN, sc=_sc(), subject_id="s1"
    )


@pytest.fixture(scope="module")
def in_memory() -> EIResult:
    """A fit without out_dir: the result exists only in memory."""
    return _fit().result_


# --------------------------------------------------------------------------- 1. EIResult.save
def test_save_writes_the_files_of_a_fit_byte_for_byte(tmp_path: Path) -> None:
    fitted = _fit(out_dir=tmp_path / "fit")
    saved = fitted.result_.save(tmp_path / "saved")
    assert saved == tmp_path / "saved"
    for name in OUTPUT_FILES:
        assert (saved / name).read_bytes() == (tmp_path / "fit" / name).read_bytes(), name


def test_a_saved_in_memory_result_reads_back_equal_and_is_reused(
    tmp_path: Path, in_memory: EIResult
) -> None:
    out = in_memory.save(tmp_path / "s1")
    # no temporaries left (the out-dir lock file stays, as in a fit's folder)
    assert sorted(p.name for p in out.iterdir() if p.name != ".delssome-norms.lock") == sorted(
        OUTPUT_FILES
    )
    back = EIResult.from_dir(out)
    assert back.equals(in_memory) and in_memory.equals(back)
    pd.testing.assert_series_equal(back.ei, in_memory.ei, check_exact=True)
    assert back.regions == [f"region_{i}" for i in range(N)]
    assert back.mean_interval == in_memory.mean_interval is not None
    assert back.quality == in_memory.quality and "flagged" in back.quality
    assert back.provenance == in_memory.provenance and back.provenance["mode"] == "euler"
    assert back.info["format_version"] == RUN_FORMAT_VERSION and back.info["status"] == "complete"
    np.testing.assert_array_equal(back.coefficients, in_memory.coefficients)
    # the folder is a finished fit of the same run: a fit into it reuses it instead of refitting
    again = _fit(out_dir=out)
    assert again.outcome_.status == "skipped" and again.result_.equals(in_memory)


def test_save_refuses_to_replace_a_fit_unless_asked(tmp_path: Path, in_memory: EIResult) -> None:
    out = in_memory.save(tmp_path / "s1")
    before = (out / "run.json").read_bytes()
    with pytest.raises(InvalidInputError, match=r"finished fit of subject 's1'; pass overwrite=True"):
        in_memory.save(out)
    with pytest.raises(InvalidInputError, match="overwrite must be True or False, got 'yes'"):
        in_memory.save(out, overwrite="yes")
    assert (out / "run.json").read_bytes() == before
    (out / "run.json").unlink()  # pieces of an interrupted write are a fit's files too
    with pytest.raises(InvalidInputError, match=r"files of a fit \(EI_ratio.csv, "):
        in_memory.save(out)
    assert in_memory.save(out, overwrite=True) == out
    assert EIResult.from_dir(out).equals(in_memory)
    assert not (out / "previous").exists()  # set aside while writing, then removed
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidInputError, match="exists and is not a folder"):
        in_memory.save(tmp_path / "file")
    with pytest.raises(InvalidInputError, match="folder path"):
        in_memory.save(3)


def test_save_warns_when_run_json_cannot_give_back_the_region_names(
    tmp_path: Path, in_memory: EIResult
) -> None:
    out = in_memory.save(tmp_path / "a")
    named = EIResult.from_dir(out, regions=list("ABCDEF"))
    with pytest.warns(UserWarning, match=r"regions=result.regions"):
        named.save(tmp_path / "b")
    assert EIResult.from_dir(tmp_path / "b", regions=list("ABCDEF")).equals(named)


# ---------------------------------------------------------------- 2. timing arguments
def test_timing_settings_are_estimator_arguments() -> None:
    est = EIEstimator(BASE, burn_in=1.44, fcd_window=np.int64(7), warmup_steps=10, interval=False)
    settings = est.resolved_settings()
    assert (settings.burn_in, settings.fcd_window, settings.warmup_steps) == (1.44, 7, 10)
    assert type(settings.fcd_window) is int and settings.interval is False
    assert clone(est).get_params()["fcd_window"] == 7
    assert EIEstimator(BASE).resolved_settings() == BASE  # None: from settings


def test_timing_arguments_reach_the_fit(in_memory: EIResult) -> None:
    timing = in_memory.info["timing"]
    assert (timing["burn_in"], timing["fcd_window"], timing["warmup_steps"]) == (0.72, 5, 50)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fcd_window": 2}, "fcd_window must be a whole number of frames >= 3, got 2"),
        ({"fcd_window": 5.5}, "fcd_window must be a whole number of frames >= 3, got 5.5"),
        ({"fcd_window": True}, "fcd_window must be a whole number"),
        ({"burn_in": -1.0}, r"burn_in must be a number of seconds >= 0, got -1.0"),
        ({"burn_in": "72"}, "burn_in must be a number of seconds"),
        ({"warmup_steps": -1}, "warmup_steps must be an integer >= 0"),
        ({"interval": "no"}, "interval must be True or False"),
    ],
)
def test_bad_timing_arguments_are_named(kwargs, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match) as info:
        EIEstimator(BASE, **kwargs).resolved_settings()
    assert info.value.source == next(iter(kwargs))


def test_a_window_too_long_for_the_scan_names_the_estimator_argument() -> None:
    # the default window, round(60 / 0.72) = 83 frames, does not fit a 60-s (83-frame) scan
    est = EIEstimator(BASE)
    with pytest.raises(InvalidInputError) as info:
        est.fit(_fc(), _cdf(), tr=TR, scan_length=60.0, sc=_sc())
    assert info.value.source == "fcd_window"
    assert "FCD window of 83 frames leaves 1 sliding window(s)" in info.value.problem
    assert info.value.problem.endswith(
        "[train stage; in Python: EIEstimator argument fcd_window=<frames> "
        "(default round(60 / TR) = 83 frames)]"
    )
    with pytest.raises(InvalidInputError, match=r"fcd_window=<frames> \(now 30 frames\)"):
        EIEstimator(BASE, fcd_window=30).fit(_fc(), _cdf(), tr=TR, scan_length=SCAN, sc=_sc())
    with pytest.raises(InvalidInputError, match=r"EIEstimator argument dt_test=<seconds>") as info:
        EIEstimator(BASE, **TIMING, dt_test=0.05).fit(_fc(), _cdf(), tr=TR, scan_length=SCAN, sc=_sc())
    assert info.value.source == "dt_test"


def test_cli_spellings_of_timing_options_map_to_the_new_arguments() -> None:
    hint = _with_python_hint("use --fcd-window, --burn-in, --warmup-steps or --no-interval")
    assert hint.endswith(
        "(in Python: EIEstimator argument(s) fcd_window, burn_in, warmup_steps, interval=False)"
    )


# ------------------------------------------------------------- 3. 68 labels of another atlas
def test_68_labels_that_are_not_dk68_names_are_refused() -> None:
    fc, cdf = _fc(68), _cdf()
    other = [f"Network{chr(65 + i % 26)}_parcel{chr(97 + i // 26)}" for i in range(68)]
    with pytest.raises(InvalidInputError, match="68 names that are not DK68 regions") as info:
        subject_from_arrays(
            "x", pd.DataFrame(fc, index=other, columns=other), cdf, tr=TR, scan_length=SCAN
        )
    assert info.value.source == "fc"
    assert "'NetworkA_parcela', 'NetworkB_parcela', 'NetworkC_parcela', ..." in info.value.problem
    assert ".to_numpy()" in info.value.problem
    with pytest.raises(InvalidInputError, match="not DK68 regions") as info:
        subject_from_arrays(
            "x",
            fc,
            cdf,
            tr=TR,
            scan_length=SCAN,
            myelin=pd.Series(np.ones(68), index=other),
            gradient=np.linspace(-1, 1, 68),
        )
    assert info.value.source == "myelin"


def test_numbered_and_freesurfer_id_labels_are_understood() -> None:
    subjects = load_reference_subjects()
    fc, cdf = subjects.fc[0], subjects.fcd_cdf[0]
    numbered = [f"roi_{i + 1}" for i in range(68)]  # numbered: atlas order by contract
    a = subject_from_arrays(
        "x", pd.DataFrame(fc, index=numbered, columns=numbered), cdf, tr=TR, scan_length=432.0
    )
    np.testing.assert_array_equal(a.fc, fc)
    assert a.regions == DK68_REGIONS
    ids = {name: code for code, name in FREESURFER_DK_IDS.items()}
    perm = np.random.default_rng(4).permutation(68)
    codes = [ids[DK68_REGIONS[i]] for i in perm]  # FreeSurfer label IDs, shuffled
    b = subject_from_arrays(
        "x", pd.DataFrame(fc[np.ix_(perm, perm)], index=codes, columns=codes), cdf, tr=TR,
        scan_length=432.0,
    )  # fmt: skip
    np.testing.assert_array_equal(b.fc, fc)
    # another number of regions keeps its own labels' order (no atlas to match)
    own = list("abcdef")
    c = subject_from_arrays(
        "x", pd.DataFrame(_fc(), index=own, columns=own), cdf, tr=TR, scan_length=SCAN, sc=_sc()
    )
    np.testing.assert_array_equal(c.fc, _fc())


# ---------------------------------------------------------------- 4. float32 TR / scan length
def test_float32_timing_is_read_as_the_decimal_it_was_made_from() -> None:
    assert check_timing(np.float32(0.72), np.float32(864.0)) == (0.72, 864.0)
    assert check_timing(np.array(0.8, dtype=np.float16), 480.0)[0] == 0.8
    assert check_timing(np.array(0.72, dtype=np.float32), 864.0)[0] == 0.72
    # float64 values are kept exactly as given
    assert check_timing(np.float64(0.7200000286102295), 864.0)[0] == 0.7200000286102295
    assert check_timing(0.72, 864)[1] == 864.0
    for tr, scan in (
        (np.float32(TR), np.float32(SCAN)),
        (torch.tensor(TR), torch.tensor([SCAN])),
        (pd.Series([TR], dtype="float32").iloc[0], SCAN),
    ):
        subject = subject_from_arrays("s1", _fc(), _cdf(), tr=tr, scan_length=scan, sc=_sc())
        assert (subject.tr, subject.scan_length) == (0.72, 14.4)
        assert run_fingerprint(subject, BASE)["timing"] == [0.72, 14.4]
    with pytest.raises(InvalidInputError, match="must be numbers"):
        check_timing("a", 864.0)


def test_save_refuses_a_folder_a_running_fit_holds(tmp_path: Path, in_memory: EIResult) -> None:
    """save(overwrite=True) could set aside the checkpoint of a live estimate-ei in that folder."""
    from delssome_norms.io import OutDirLock

    out = tmp_path / "busy"
    out.mkdir()
    (out / "checkpoint").mkdir()  # a fit in progress
    with OutDirLock(out, "--out-dir"):
        with pytest.raises(InvalidInputError, match="directory"):
            in_memory.save(out, overwrite=True)
    assert (out / "checkpoint").is_dir() and not (out / "run.json").exists()
    assert in_memory.save(out, overwrite=True) == out  # once that run has ended
