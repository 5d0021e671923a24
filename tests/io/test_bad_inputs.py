"""Table-driven bad-input checks: each unusable input gives its own clear message naming the file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from delssome_norms import io
from delssome_norms.errors import InvalidInputError

N = 6


def _fc(n: int = N, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((50, n))
    return np.corrcoef(x, rowvar=False)


def _cdf(n_bins: int = 10000) -> np.ndarray:
    return np.linspace(0.0, 1.0, n_bins + 1)[1:]


def _sc(n: int = N) -> np.ndarray:
    a = np.random.default_rng(1).random((n, n))
    a = a + a.T
    np.fill_diagonal(a, 0.0)
    return a


def _write(tmp: Path, name: str, arr) -> Path:
    path = tmp / name
    np.savetxt(
        path, np.atleast_2d(arr) if np.ndim(arr) == 2 else np.asarray(arr)[:, None], delimiter=","
    )
    return path


def _text(tmp: Path, name: str, text: str | bytes) -> Path:
    path = tmp / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _fc_with(mod: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], object]:
    def call(tmp: Path):
        return io.read_fc(_write(tmp, "sub_FC.csv", mod(_fc())), N)

    return call


def _cdf_with(mod: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], object]:
    def call(tmp: Path):
        return io.read_fcd_cdf(_write(tmp, "sub_FCD_CDF.csv", mod(_cdf())))

    return call


def _sc_with(mod: Callable[[np.ndarray], np.ndarray], n: int = N) -> Callable[[Path], object]:
    def call(tmp: Path):
        return io.read_sc(_write(tmp, "SC.csv", mod(_sc())), n)

    return call


def _set(arr: np.ndarray, idx, value) -> np.ndarray:
    arr = arr.copy()
    arr[idx] = value
    return arr


def _asym(fc: np.ndarray) -> np.ndarray:
    fc = fc.copy()
    fc[0, 1] += 1e-3
    return fc


def _demo(tmp: Path, body: str) -> object:
    header = "subject_id,age_in_years,sex,site,scanner\n"
    return io.read_demographics(_text(tmp, "demogr.csv", header + body))


# (case id, call, expected fragment of the message, expected file name in the message)
CASES: list[tuple[str, Callable[[Path], object], str, str]] = [
    ("fc_nan", _fc_with(lambda a: _set(a, (0, 1), np.nan)), "NaN", "sub_FC.csv"),
    ("fc_inf", _fc_with(lambda a: _set(a, (2, 3), np.inf)), "inf", "sub_FC.csv"),
    ("fc_not_square", _fc_with(lambda a: a[:, :-1]), "square", "sub_FC.csv"),
    ("fc_wrong_n", lambda t: io.read_fc(_write(t, "sub_FC.csv", _fc(N + 1)), N), "expected 6 x 6", "sub_FC.csv"),
    ("fc_asymmetric", _fc_with(_asym), "symmetric", "sub_FC.csv"),
    ("fc_diagonal", _fc_with(lambda a: _set(a, (1, 1), 0.9)), "diagonal must be 1", "sub_FC.csv"),
    ("fc_out_of_range", _fc_with(lambda a: _set(_set(a, (0, 1), 1.5), (1, 0), 1.5)), "[-1, 1]", "sub_FC.csv"),
    ("cdf_decreasing", _cdf_with(lambda c: _set(c, 500, 0.0)), "non-decreasing", "sub_FCD_CDF.csv"),
    ("cdf_wrong_length", _cdf_with(lambda c: c[:-1]), "expected 10000 rows, got 9999", "sub_FCD_CDF.csv"),
    ("cdf_last_not_one", _cdf_with(lambda c: c * 0.9), "must end at 1", "sub_FCD_CDF.csv"),
    ("cdf_nan", _cdf_with(lambda c: _set(c, 10, np.nan)), "NaN", "sub_FCD_CDF.csv"),
    ("sc_negative", _sc_with(lambda a: _set(a, (0, 2), -0.1)), "non-negative", "SC.csv"),
    ("sc_diagonal", _sc_with(lambda a: _set(a, (3, 3), 0.5)), "diagonal must be zero", "SC.csv"),
    ("sc_wrong_n", _sc_with(lambda a: a, n=N + 2), "expected 8 x 8", "SC.csv"),
    ("map_wrong_length", lambda t: io.read_map(_write(t, "myelin.csv", np.arange(N - 1.0)), N), "does not match", "myelin.csv"),
    ("map_constant", lambda t: io.read_map(_write(t, "gradient.csv", np.ones(N)), N), "constant", "gradient.csv"),
    ("only_myelin", lambda t: io.check_map_pair(np.ones(N), None), "only myelin", "--gradient"),
    ("only_gradient", lambda t: io.check_map_pair(None, np.ones(N)), "only gradient", "--myelin"),
    ("tr_zero", lambda t: io.check_timing(0.0, 864.0, "--tr"), "TR must be a positive", "--tr"),
    ("tr_negative", lambda t: io.check_timing(-0.72, 864.0, "--tr"), "TR must be a positive", "--tr"),
    ("scan_not_multiple", lambda t: io.check_timing(3.0, 10.0, "--scan-length"), "whole number of frames", "--scan-length"),
    ("sex_unknown", lambda t: _demo(t, "s1,30,female,A,X\ns2,40,unknown,A,X\n"), "unknown sex label", "demogr.csv"),
    ("age_missing", lambda t: _demo(t, "s1,,female,A,X\n"), "age is missing", "demogr.csv"),
    ("age_negative", lambda t: _demo(t, "s1,-3,male,A,X\n"), "between 0 and", "demogr.csv"),
    ("duplicate_ids", lambda t: _demo(t, "s1,30,f,A,X\ns1,31,m,A,X\n"), "duplicate subject_id", "demogr.csv"),
    ("missing_column", lambda t: io.read_demographics(_text(t, "demogr.csv", "subject_id,sex\ns1,f\n")), "age_in_years", "demogr.csv"),
    ("empty_file", lambda t: io.read_fc(_text(t, "sub_FC.csv", ""), N), "empty", "sub_FC.csv"),
    ("not_csv_binary", lambda t: io.read_fc(_text(t, "sub_FC.csv", b"\x89PNG\r\n\x1a\n\x00\x00"), N), "binary", "sub_FC.csv"),
    ("not_csv_text", lambda t: io.read_fc(_text(t, "sub_FC.csv", '{"fc": [1, 2]}\n{"x": 3}\n'), N), "not a numeric CSV", "sub_FC.csv"),
    ("ragged_rows", lambda t: io.read_fc(_text(t, "sub_FC.csv", "1,0.5\n0.5\n"), N), "different lengths", "sub_FC.csv"),
    ("no_such_path", lambda t: io.read_fc(t / "missing_FC.csv", N), "does not exist", "missing_FC.csv"),
    ("directory", lambda t: io.read_sc(t, N), "is a directory", "test_bad_input"),
    ("non_utf8", lambda t: io.read_map(_text(t, "myelin.csv", b"1.0\n\xff\xfe2.0\n"), N), "not UTF-8", "myelin.csv"),
    ("ts_nan_frame", lambda t: io.read_timeseries(_write(t, "run1.tsv", _set(np.random.default_rng(0).random((20, N)), (4, 1), np.nan))), "NaN", "run1.tsv"),
    ("ts_constant_region", lambda t: io.read_timeseries(_write(t, "run1.csv", _set(np.random.default_rng(0).random((20, N)), (slice(None), 2), 1.0))), "constant", "run1.csv"),
    ("params_mixed_g", lambda t: io.read_parameters(_text(t, "best_parameters.csv", "region_index,wEE,wEI,sigma,G\n0,1,2,0.005,1\n1,1,2,0.005,2\n")), "same in every row", "best_parameters.csv"),
    ("manifest_no_inputs", lambda t: io.read_manifest(_text(t, "subjects.csv", "subject_id,tr,scan_length\ns1,0.72,864\n")), "'fc' and 'fcd_cdf'", "subjects.csv"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "fragment", "source"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_gives_clear_error(tmp_path: Path, call, fragment: str, source: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        call(tmp_path)
    message = str(info.value)
    assert fragment in message, message
    assert source in message, message
    assert "\n" not in message


def test_table_has_at_least_25_cases() -> None:
    assert len(CASES) >= 25
    assert len({c[0] for c in CASES}) == len(CASES)


def test_cdf_close_to_one_is_rescaled_with_warning(tmp_path: Path) -> None:
    cdf = _cdf() * (1 - 5e-4)
    with pytest.warns(UserWarning, match="rescaled"):
        out = io.read_fcd_cdf(_write(tmp_path, "c.csv", cdf))
    assert out[-1] == pytest.approx(1.0, abs=1e-15)
    np.testing.assert_allclose(out, _cdf(), rtol=1e-12)


def test_fc_with_one_value_in_every_pair_is_refused() -> None:
    """An identity or constant FC passed every check and failed only after a whole search
    ("none of the candidates produced a valid simulation"): Pearson r with it is undefined."""
    from delssome_norms.io.checks import check_fc

    for fc in (np.eye(5), np.full((5, 5), 0.3) + 0.7 * np.eye(5)):
        with pytest.raises(InvalidInputError, match="every region pair has the same FC") as err:
            check_fc(fc, input_name="sub_FC.csv")
        assert err.value.source == "sub_FC.csv"
    fc = np.full((5, 5), 0.3) + 0.7 * np.eye(5)
    fc[0, 1] = fc[1, 0] = 0.31
    assert check_fc(fc)[0, 1] == pytest.approx(0.31)  # one different pair is enough
