"""Review of the time-series readers (12-08): an FC matrix given as a time series is refused as
such (never read as N frames of N regions and fitted), a short header-less run saved regions x
frames is hinted at, and the FC/SC diagonal errors say their likely causes."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io.checks import check_fc, check_sc, check_timeseries
from delssome_norms.io.regions import DK68_REGIONS
from delssome_norms.io.timeseries import read_timeseries, read_timeseries_runs

N = 68
R = list(DK68_REGIONS)


def _run(frames: int = 300, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((frames, N)) + 0.5 * rng.standard_normal((frames, 1))


FC = np.corrcoef(_run().T)
PERM = np.random.default_rng(1).permutation(N)


def _write_fc(kind: str, path: Path) -> Path:
    """The FC of a 300-frame DK68 run written the ways a lab writes an FC."""
    shuffled = FC[np.ix_(PERM, PERM)]
    names = [R[i] for i in PERM]
    if kind == "npy":
        path = path.with_suffix(".npy")
        np.save(path, FC)
    elif kind == "plain":
        np.savetxt(path, FC, delimiter=",")
    elif kind == "rounded_tsv":
        path = path.with_suffix(".tsv")
        np.savetxt(path, FC, delimiter="\t", fmt="%.4f")
    elif kind == "pandas":  # DataFrame.to_csv: a header row 0..67 and an index column 0..67
        pd.DataFrame(FC).to_csv(path)
    elif kind == "pandas_names":  # names across the top, pandas' index column
        pd.DataFrame(FC, columns=R).to_csv(path)
    elif kind == "names_top":
        pd.DataFrame(shuffled, columns=names).to_csv(path, index=False)
    elif kind == "names_both":  # prepare's layout for other atlases: header and first column
        pd.DataFrame(shuffled, index=names, columns=names).to_csv(path)
    elif kind == "names_rows":  # region names down the first column only
        lines = [R[i] + "," + ",".join(repr(float(v)) for v in FC[i]) for i in range(N)]
        path.write_text("\n".join(lines) + "\n")
    elif kind == "id_column":  # FreeSurfer label IDs down the first column
        ids = [1001 + i for i in range(34)] + [2001 + i for i in range(34)]
        np.savetxt(path, np.column_stack([ids, FC]), delimiter=",")
    return path


FC_KINDS = ["npy", "plain", "rounded_tsv", "pandas", "pandas_names", "names_top", "names_both",
            "names_rows", "id_column"]  # fmt: skip


@pytest.mark.parametrize("kind", FC_KINDS)
def test_fc_given_as_a_time_series_is_refused_as_an_fc(tmp_path: Path, kind: str) -> None:
    path = _write_fc(kind, tmp_path / "sub_FC.csv")
    with pytest.raises(InvalidInputError) as err:
        read_timeseries(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: is a symmetric 68 x 68 matrix")
    assert "with 1 on its diagonal and values in [-1, 1]: an FC (correlation) matrix" in msg
    assert "give it with --fc" in msg
    assert "transpose" not in msg  # not the regions x frames advice
    # the same through the readers of runs (prepare, estimate-ei, manifests' run columns)
    with pytest.raises(InvalidInputError, match="an FC \\(correlation\\) matrix"):
        read_timeseries_runs([path], min_frames=2)


def test_fc_with_a_name_or_index_column_says_where_the_matrix_is(tmp_path: Path) -> None:
    path = _write_fc("id_column", tmp_path / "fc.csv")
    with pytest.raises(InvalidInputError, match=r"68 x 68 matrix \(after its first column\)"):
        read_timeseries(path)


def test_fisher_z_and_covariance_matrices_are_refused_by_their_kind(tmp_path: Path) -> None:
    z = np.arctanh(np.clip(FC, -0.999, 0.999))
    np.fill_diagonal(z, 0.0)
    np.savetxt(tmp_path / "z.csv", z, delimiter=",")
    with pytest.raises(InvalidInputError, match="with 0 on its diagonal: a connectivity matrix"):
        read_timeseries(tmp_path / "z.csv")
    cov = np.cov(_run().T)
    np.savetxt(tmp_path / "cov.csv", cov, delimiter=",")
    with pytest.raises(InvalidInputError, match="a covariance matrix, not a time series"):
        read_timeseries(tmp_path / "cov.csv")


def test_check_timeseries_refuses_an_fc_array() -> None:
    with pytest.raises(InvalidInputError, match=r"^FC-array: is a symmetric 68 x 68 matrix"):
        check_timeseries(FC, input_name="FC-array")


@pytest.mark.parametrize("seed", range(5))
def test_square_real_runs_still_pass(tmp_path: Path, seed: int) -> None:
    """A run of as many frames as regions (68 x 68) is no matrix: read as it is."""
    run = _run(frames=N, seed=seed)
    path = tmp_path / "run.csv"
    np.savetxt(path, run, delimiter=",")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        got = read_timeseries(path)
    np.testing.assert_allclose(got, run, rtol=1e-12)
    np.testing.assert_array_equal(check_timeseries(run), run)
    named = tmp_path / "named.csv"
    pd.DataFrame(run, columns=R).to_csv(named, index=False)
    np.testing.assert_allclose(read_timeseries(named), run, rtol=1e-12)


def test_validate_refuses_an_fc_given_as_timeseries(tmp_path: Path, capsys) -> None:
    path = _write_fc("plain", tmp_path / "sub_FC.csv")
    assert main(["validate", "--timeseries", str(path), "--tr", "2"]) != 0
    err = capsys.readouterr().err
    assert "an FC (correlation) matrix, not a time series" in err
    assert "68 frames x 68 regions" not in capsys.readouterr().out


def test_short_transposed_run_gets_a_hint(tmp_path: Path) -> None:
    """68 regions x 60 frames saved without a header: read as 68 frames x 60 regions (never
    transposed silently, and no warning: a real 68-frame run of a small atlas looks the same);
    the too-few-frames error it runs into says it may be transposed."""
    path = tmp_path / "short_T.csv"
    np.savetxt(path, _run(frames=60).T, delimiter=",")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputWarning)
        got = read_timeseries(path)
    assert got.shape == (68, 60)
    with pytest.raises(InvalidInputError) as err:
        read_timeseries(path, min_frames=84)
    assert str(err.value).startswith(f"{path}: has 68 frames; at least 84 are needed")
    assert "68 rows is the number of DK68 regions" in str(err.value)


def test_no_transposition_hint_for_named_or_long_runs(tmp_path: Path) -> None:
    named = tmp_path / "named.csv"
    pd.DataFrame(_run(frames=68)[:, :60], columns=R[:60]).to_csv(named, index=False)
    long = tmp_path / "long.csv"
    np.savetxt(long, _run(frames=300)[:, :60], delimiter=",")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        read_timeseries(named)
        read_timeseries(long)
    assert not [w for w in rec if "regions x frames" in str(w.message)]


def test_fc_diagonal_errors_say_the_likely_cause() -> None:
    zeroed = FC.copy()
    np.fill_diagonal(zeroed, 0.0)
    with pytest.raises(InvalidInputError) as err:
        check_fc(zeroed, input_name="fc.csv")
    msg = str(err.value)
    assert msg.startswith("fc.csv: FC diagonal must be 1 (correlation of a region with itself)")
    assert "its diagonal is all 0: zeroed, or Fisher z values (arctanh r)?" in msg
    assert "Pearson r with 1 on the diagonal" in msg
    strong = FC.copy()
    strong[0, 1] = strong[1, 0] = 0.95  # Fisher z 1.83
    z = np.arctanh(np.clip(strong, -0.999, 0.999))
    np.fill_diagonal(z, 0.0)
    with pytest.raises(InvalidInputError, match=r"beyond \[-1, 1\]: Fisher z values \(arctanh r\)\?"):
        check_fc(z, input_name="z.csv")
    np.fill_diagonal(z, 1.0)
    with pytest.raises(InvalidInputError) as err:
        check_fc(z, input_name="z.csv")
    assert str(err.value).startswith("z.csv: FC values must lie in [-1, 1]")
    assert "Fisher z values (arctanh r)?" in str(err.value)
    off = FC.copy()
    off[1, 1] = 0.9  # one wrong value: no cause guessed
    with pytest.raises(InvalidInputError) as err:
        check_fc(off, input_name="fc.csv")
    assert str(err.value) == (
        "fc.csv: FC diagonal must be 1 (correlation of a region with itself); largest deviation 0.1"
    )


def test_sc_diagonal_error_names_tck2connectome() -> None:
    rng = np.random.default_rng(2)
    sc = rng.random((6, 6))
    sc = sc + sc.T
    with pytest.raises(InvalidInputError) as err:
        check_sc(sc, input_name="sc.csv")
    msg = str(err.value)
    assert msg.startswith("sc.csv: SC diagonal must be zero (no self-connections)")
    assert f"largest diagonal value {np.max(np.diag(sc)):.4g}" in msg
    assert "MRtrix tck2connectome" in msg and "-zero_diagonal" in msg
    assert "np.fill_diagonal(sc, 0)" in msg


def test_a_dataframe_fc_with_shuffled_dk_names_is_refused_by_the_api() -> None:
    """``empirical_statistics`` reorders named columns before the time-series check: an FC frame
    labelled with DK68 names in another order (and on both axes) is still refused as an FC."""
    from delssome_norms.fit.subject import empirical_statistics

    fc = np.corrcoef(_run().T)
    names = list(DK68_REGIONS)[::-1]
    frame = pd.DataFrame(fc, columns=names)
    for run in (frame, frame.set_axis(names, axis=0)):
        with pytest.raises(InvalidInputError, match=r"FC \(correlation\) matrix, not a time series"):
            empirical_statistics([run], tr=2.0)
