"""Review follow-ups: FC/SC headers of 68 non-DK68 names are refused (the time-series reader's
matcher), stage-timing errors of estimate-ei/validate name the option, FitSettings checks
burn_in/fcd_window, and the public ``set_aside_previous``."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms import io
from delssome_norms.errors import InvalidInputError
from delssome_norms.io.regions import DK68_REGIONS


def _fc(n: int = 68, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.uniform(-0.5, 0.9, (n, n))
    a = (a + a.T) / 2
    np.fill_diagonal(a, 1.0)
    return a


# --- 1. FC/SC headers -------------------------------------------------------------------------


@pytest.mark.parametrize("reader", [io.read_fc, io.read_sc])
def test_68_names_of_another_atlas_are_refused_naming_file_names_and_fix(tmp_path: Path, reader) -> None:
    names = [f"7Networks_LH_Vis_{i}" for i in range(1, 69)]
    path = tmp_path / "fc.csv"
    pd.DataFrame(np.abs(_fc()), columns=names).to_csv(path, index=False)
    with pytest.raises(InvalidInputError) as info:
        reader(path)
    err = info.value
    assert err.source == str(path)
    assert "not DK68 region names" in err.problem
    assert "68 of 68 names unknown: '7Networks_LH_Vis_1', '7Networks_LH_Vis_2'" in err.problem
    assert "rename the columns to DK68 region names" in err.problem
    assert "remove the header row" in err.problem


def test_68_partly_unknown_names_list_the_unknown_ones_first(tmp_path: Path) -> None:
    # 20 DK names then 48 others: too few DK names to be a region header; the unknown ones shown
    names = list(DK68_REGIONS[:20]) + [f"Parcel{i}" for i in range(48)]
    path = tmp_path / "fc.csv"
    pd.DataFrame(_fc(), columns=names).to_csv(path, index=False)
    with pytest.raises(InvalidInputError, match=r"48 of 68 names unknown: 'Parcel0', 'Parcel1'"):
        io.read_fc(path)


def test_load_subject_refuses_a_non_dk68_fc_header(tmp_path: Path) -> None:
    from delssome_norms.fit import load_subject

    fc = tmp_path / "fc.csv"
    pd.DataFrame(_fc(), columns=[f"7Networks_RH_Vis_{i}" for i in range(68)]).to_csv(fc, index=False)
    cdf = tmp_path / "cdf.csv"
    np.savetxt(cdf, np.linspace(0, 1, 10001)[1:, None], delimiter=",")
    with pytest.raises(
        InvalidInputError, match="'7Networks_RH_Vis_0', '7Networks_RH_Vis_1', '7Net"
    ) as info:
        load_subject("s01", 0.72, 864.0, fc=str(fc), fcd_cdf=str(cdf))
    assert info.value.source == str(fc)


def test_dk68_names_behind_a_shared_prefix_are_matched_as_for_time_series(tmp_path: Path) -> None:
    fc = _fc()
    perm = np.random.default_rng(1).permutation(68)
    names = [f"Desikan_ctx-{DK68_REGIONS[i].replace('_', '-')}" for i in perm]
    path = tmp_path / "fc.csv"
    pd.DataFrame(fc[np.ix_(perm, perm)], columns=names, index=names).to_csv(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # used to be read in file order, with a warning
        np.testing.assert_array_equal(io.read_fc(path), fc)


def test_numbered_and_dk68_headers_stay_accepted(tmp_path: Path) -> None:
    fc = _fc()
    numbered = tmp_path / "numbered.csv"
    pd.DataFrame(fc, columns=[f"roi_{i}" for i in range(1, 69)]).to_csv(numbered, index=False)
    perm = np.random.default_rng(2).permutation(68)
    named = tmp_path / "named.csv"
    cols = [DK68_REGIONS[i] for i in perm]
    pd.DataFrame(fc[np.ix_(perm, perm)], columns=cols).to_csv(named, index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(io.read_fc(numbered), fc)
        np.testing.assert_array_equal(io.read_fc(named), fc)


def test_another_width_with_other_names_is_still_read_in_file_order(tmp_path: Path) -> None:
    from delssome_norms.errors import InputWarning

    fc = _fc(10)
    path = tmp_path / "fc.csv"
    pd.DataFrame(fc, columns=[f"Net{chr(65 + i)}" for i in range(10)]).to_csv(path, index=False)
    with pytest.warns(InputWarning, match="not DK68 regions; the FC is taken in file order"):
        np.testing.assert_array_equal(io.read_fc(path), fc)


# --- 2. stage-timing errors name the option -----------------------------------------------------


def test_check_stage_timing_names_the_option() -> None:
    from delssome_norms.cli.estimate_cmd import check_stage_timing
    from delssome_norms.fit import FitSettings

    with pytest.raises(InvalidInputError) as info:
        check_stage_timing(FitSettings(fcd_window=200), 0.72, 86.4, "--tr/--scan-length")
    assert info.value.source == (
        "--fcd-window (now 200 frames; train stage; TR and scan length from --tr/--scan-length)"
    )
    assert "FCD window of 200 frames" in info.value.problem
    with pytest.raises(InvalidInputError) as info:
        check_stage_timing(FitSettings(dt_val=0.03), 0.72, 864.0, "--tr/--scan-length")
    assert info.value.source.startswith("--dt-val (val stage;")
    with pytest.raises(InvalidInputError) as info:  # the default window, spelled out
        check_stage_timing(FitSettings(), 0.72, 50.0, "the manifest")
    assert info.value.source.startswith("--fcd-window (default round(60 / TR) = 83 frames; train stage")
    assert "timing options" not in info.value.source


def test_estimate_ei_names_fcd_window(tmp_path: Path, capsys) -> None:
    from delssome_norms.cli.main import main

    n = 6
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((40, n))
    np.savetxt(tmp_path / "fc.csv", np.corrcoef(ts.T), delimiter=",")
    np.savetxt(tmp_path / "cdf.csv", np.linspace(0, 1, 10001)[1:, None], delimiter=",")
    sc = rng.random((n, n))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    np.savetxt(tmp_path / "sc.csv", sc, delimiter=",")
    args = ["--fc", str(tmp_path / "fc.csv"), "--fcd-cdf", str(tmp_path / "cdf.csv"), "--sc",
            str(tmp_path / "sc.csv"), "--tr", "0.72", "--scan-length", "28.8", "--burn-in", "0.72",
            "--fcd-window", "60", "--quiet"]  # fmt: skip
    assert main(["estimate-ei", *args, "--out-dir", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err
    assert "error: --fcd-window (now 60 frames; train stage; TR and scan length from " in err
    assert "timing options" not in err
    assert not (tmp_path / "out").exists()


# --- 3. FitSettings checks burn_in / fcd_window -------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"burn_in": -1.0}, "burn_in", "burn_in must be a number of seconds >= 0, got -1.0"),
        ({"burn_in": float("inf")}, "burn_in", "burn_in must be a number of seconds >= 0"),
        ({"burn_in": "72"}, "burn_in", "got '72'"),
        ({"fcd_window": 2}, "fcd_window", "fcd_window must be a whole number of frames >= 3, got 2"),
        ({"fcd_window": 30.5}, "fcd_window", "got 30.5"),
        ({"fcd_window": True}, "fcd_window", "got True"),
    ],
)
def test_fit_settings_refuse_bad_burn_in_and_fcd_window(kwargs, field, message) -> None:
    from delssome_norms.fit import FitSettings

    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")) as info:
        FitSettings(**kwargs)
    assert info.value.source == field


def test_fit_settings_keep_plain_burn_in_and_fcd_window() -> None:
    from delssome_norms.fit import FitSettings

    s = FitSettings(burn_in=np.int64(10), fcd_window=30.0)
    assert s.burn_in == 10.0 and isinstance(s.burn_in, float)
    assert s.fcd_window == 30 and isinstance(s.fcd_window, int)
    assert FitSettings().burn_in is None and FitSettings().fcd_window is None


# --- 4. set_aside_previous ----------------------------------------------------------------------


def test_set_aside_previous_is_public_and_used_by_result(tmp_path: Path) -> None:
    import inspect

    from delssome_norms.fit import outputs
    from delssome_norms.pipeline import result

    assert "_discard" not in inspect.getsource(result)
    assert result.set_aside_previous is outputs.set_aside_previous
    d = tmp_path / "sub"
    (d / "checkpoint").mkdir(parents=True)
    (d / outputs.FAILURE_FILE).write_text("{}")
    (d / outputs.OUTPUT_FILES[0]).write_text("piece of an interrupted write")
    (d / "notes.txt").write_text("not ours")
    outputs.set_aside_previous(str(d))  # a str path as well
    assert sorted(p.name for p in d.iterdir()) == ["notes.txt"]
