"""Review of the simulator (1208): the API's cost() checks the empirical FC and FCD-CDF as the CLI
does, an asymmetric SC is warned about once (CLI and API), a failed ``simulate`` removes the
out-dir it created, and Ctrl-C during ``simulate`` does not promise a resume."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.io import check_fc, check_fcd_cdf
from delssome_norms.model import PFICParams, SimulationTiming, cost, simulate
from delssome_norms.model.batch import prepare_batch
from delssome_norms.model.summary import Summary

# ---------------------------------------------------------------- 1. cost() checks its inputs

SIM_FC = [[1.0, 0.5, 0.2], [0.5, 1.0, 0.1], [0.2, 0.1, 1.0]]
EMP_FC = np.array([[1.0, 0.4, 0.3], [0.4, 1.0, 0.0], [0.3, 0.0, 1.0]])
EMP_CDF = np.array([0.1, 0.2, 0.9, 1.0])


def _summary(b: int = 1) -> Summary:
    fc = torch.tensor(SIM_FC, dtype=torch.float64).expand(b, 3, 3).clone()
    cdf = torch.tensor([0.0, 0.5, 1.0, 1.0], dtype=torch.float64).expand(b, 4).clone()
    return Summary(fc=fc, fcd_cdf=cdf, valid=torch.ones(b, dtype=torch.bool))


def _cli_problem(check, value, *args) -> str:
    with pytest.raises(InvalidInputError) as info:
        check(value, *args)
    return info.value.problem


def test_cost_of_valid_statistics_is_the_hand_value() -> None:
    losses = cost(_summary(), EMP_FC, EMP_CDF).as_dict(0)
    a, b = np.array([0.5, 0.2, 0.1]), np.array([0.4, 0.3, 0.0])
    assert losses["corr_loss"] == pytest.approx(1 - np.corrcoef(a, b)[0, 1], abs=1e-12)
    assert losses["l1_loss"] == pytest.approx(abs(a.mean() - b.mean()), abs=1e-12)
    assert losses["ks_loss"] == pytest.approx(0.3, abs=1e-12)  # |0.5 - 0.2|


@pytest.mark.parametrize(
    ("fc", "cdf", "source", "check", "bad"),
    [  # the reviewer's three, and an asymmetric FC
        (EMP_FC, np.array([1.0, 2.0, 9.0, 10.0]), "fcd_cdf_emp", check_fcd_cdf, "cdf"),
        (EMP_FC, np.array([1.0, 0.5, 0.2, 0.0]), "fcd_cdf_emp", check_fcd_cdf, "cdf"),
        (np.array([[1, 4, 3], [4, 1, 0.0], [3, 0.0, 1]]), EMP_CDF, "fc_emp", check_fc, "fc"),
    ],
)
def test_cost_refuses_what_the_cli_refuses_in_its_words(fc, cdf, source, check, bad) -> None:
    """``[1, 2, 9, 10]`` as the CDF gave ks_loss 9.0, a decreasing CDF was scored, an FC with
    entries of 4 gave l1 2.07: the API now raises the CLI's error (io.checks)."""
    with pytest.raises(InvalidInputError) as info:
        cost(_summary(), fc, cdf)
    expected = _cli_problem(check, cdf, 4) if bad == "cdf" else _cli_problem(check, fc, 3)
    assert info.value.source == source
    assert info.value.problem == expected
    assert str(info.value) == f"{source}: {expected}"


def test_cost_names_the_bad_statistics_of_a_batch_and_passes_valid_batches() -> None:
    good = cost(_summary(3), np.stack([EMP_FC] * 3), np.stack([EMP_CDF] * 3))
    one = cost(_summary(), EMP_FC, EMP_CDF)
    torch.testing.assert_close(good.total, one.total.expand(3))
    cdfs = np.stack([EMP_CDF, EMP_CDF, [0.1, 0.2, 0.9, 1.5]])
    with pytest.raises(InvalidInputError, match=r"^fcd_cdf_emp\[2\]: CDF must end at 1"):
        cost(_summary(3), EMP_FC, cdfs)
    fcs = np.stack([EMP_FC, 3 * EMP_FC - 2 * np.eye(3), EMP_FC])  # 1.2
    with pytest.raises(InvalidInputError, match=r"^fc_emp\[1\]: FC values must lie in \[-1, 1\]"):
        cost(_summary(3), fcs, EMP_CDF)


def test_cost_repairs_what_the_cli_repairs_and_leaves_the_diagonal_unchecked() -> None:
    """An FC stored as its upper triangle is used as it is (only the upper triangle is read), a
    CDF ending within 1e-3 of 1 rescaled with an InputWarning, as the CLI reads it; the unused
    diagonal is not checked."""
    ref = cost(_summary(), EMP_FC, EMP_CDF).as_dict(0)
    with warnings.catch_warnings():  # only the upper triangle is used: nothing to say
        warnings.simplefilter("error")
        tri = cost(_summary(), np.triu(EMP_FC), EMP_CDF).as_dict(0)
    assert tri == pytest.approx(ref, abs=1e-12)
    with pytest.warns(InputWarning, match="fcd_cdf_emp: CDF ends at 1.0005, rescaled"):
        scaled = cost(_summary(), EMP_FC, EMP_CDF * 1.0005).as_dict(0)
    assert scaled == pytest.approx(ref, abs=1e-12)
    nan_diag = EMP_FC.copy()
    np.fill_diagonal(nan_diag, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cost(_summary(), nan_diag, EMP_CDF).as_dict(0) == pytest.approx(ref, abs=1e-12)


# ---------------------------------------------------------------- 2. asymmetric SC: one warning


def _params(b: int = 1, n: int = 3) -> PFICParams:
    return PFICParams(
        torch.full((b, n), 3.0), torch.full((b, n), 2.5), torch.full((b, n), 0.005), torch.ones(b)
    )


def _directed_sc(seed: int) -> np.ndarray:
    """A 3-region SC with a largest entry of 0.02 and |SC - SC.T| of 0.01 (50 %), distinct per
    seed (each SC is warned about once per process)."""
    w = 0.005 + 0.001 * (seed % 5)
    return np.array([[0.0, 0.02, w], [0.01, 0.0, 0.015], [w, 0.015, 0.0]]) * (1 + seed / 100)


def _asymmetry_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "is not symmetric" in str(w.message)]


def test_simulate_warns_once_about_an_asymmetric_sc() -> None:
    sc = _directed_sc(1)
    timing = SimulationTiming(
        tr=0.72, scan_length=14.4, dt=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        simulate(_params(), sc, timing, seed=0)
        simulate(_params(), sc, timing, seed=1)  # a fit passes its SC to every simulation
        prepare_batch(_params(2), torch.tensor(sc / 2).expand(2, 3, 3), 0.005, 1, "cpu", torch.float32)
    texts = _asymmetry_warnings(record)
    assert len(texts) == 1, texts
    assert texts[0].startswith("sc is not symmetric (largest |SC - SC.T| is ")
    assert "50 % of its largest entry" in texts[0]
    assert "row i is taken as the inputs to region i" in texts[0]
    assert [w.category for w in record if "is not symmetric" in str(w.message)] == [InputWarning]


def test_a_symmetric_sc_and_a_batch_of_sc_are_warned_about_as_they_are() -> None:
    sym = _directed_sc(2)
    sym = (sym + sym.T) / 2
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        prepare_batch(_params(), sym, 0.005, 1, "cpu", torch.float64)
        assert _asymmetry_warnings(record) == []
        batch = np.stack([sym, _directed_sc(3), _directed_sc(4)])
        prepare_batch(_params(3), batch, 0.005, 1, "cpu", torch.float64)
    (text,) = _asymmetry_warnings(record)
    assert text.startswith(
        "an SC of the batch (and 1 more distinct SC(s) of the batch) is not symmetric"
    )


# ---------------------------------------------------------------- CLI: 2, 3 and 4


def _cli_inputs(tmp_path, wee: float = 3.0, sc=None):
    n = 4
    pd.DataFrame(
        {"region_index": range(n), "wEE": [wee] * n, "wEI": [2.5] * n, "sigma": [0.005] * n}
    ).assign(G=1.0).to_csv(tmp_path / "p.csv", index=False)
    if sc is None:
        rng = np.random.default_rng(0)
        sc = rng.random((n, n))
        sc = sc + sc.T
        np.fill_diagonal(sc, 0)
    np.savetxt(tmp_path / "sc.csv", sc, delimiter=",")
    return [
        "simulate", "--params", str(tmp_path / "p.csv"), "--sc", str(tmp_path / "sc.csv"),
        "--tr", "0.72", "--scan-length", "14.4", "--dt", "0.005", "--burn-in", "1.44",
        "--fcd-window", "5", "--warmup-steps", "100",
    ]  # fmt: skip


def test_cli_warns_once_about_an_asymmetric_sc_naming_the_file(tmp_path) -> None:
    from delssome_norms.cli.main import main

    sc = np.array([[0, 2.0, 1, 1], [1, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1.5, 0]]) * 1.0137
    argv = _cli_inputs(tmp_path, sc=sc)
    with warnings.catch_warnings(record=True) as record:
        assert main([*argv, "--out-dir", str(tmp_path / "o")]) == 0
    texts = _asymmetry_warnings(record)
    assert len(texts) == 1, texts
    assert texts[0].startswith(f"the SC {tmp_path / 'sc.csv'} is not symmetric")
    # |SC - SC.T| peaks at 1 x 1.0137, the largest entry is 2 x 1.0137: 50 %
    assert "(largest |SC - SC.T| is 1.01, 50 % of its largest entry)" in texts[0]


def test_failed_simulate_removes_the_out_dir_it_created(tmp_path, capsys, monkeypatch) -> None:
    """Every duplicate blowing up (wEE = 100) left the new out-dir behind, holding only the lock
    file; an out-dir that existed before stays (with its files). The blow-up is made certain
    (it depends on the noise of the engine) by marking the real simulation's duplicates invalid."""
    from delssome_norms.cli.main import main
    from delssome_norms.fit import reproduce

    real = reproduce.simulate_batch_row

    def blown_up(*args, **kwargs):
        res = real(*args, **kwargs)
        res.valid.fill_(False)
        return res

    monkeypatch.setattr(reproduce, "simulate_batch_row", blown_up)
    argv = _cli_inputs(tmp_path, wee=100.0)
    new = tmp_path / "made" / "by" / "run"
    assert main([*argv, "--out-dir", str(new)]) == 2
    assert "no duplicate gave a valid simulation" in capsys.readouterr().err
    assert not (tmp_path / "made").exists()
    old = tmp_path / "old"
    old.mkdir()
    (old / "notes.txt").write_text("mine")
    assert main([*argv, "--out-dir", str(old)]) == 2
    assert (old / "notes.txt").read_text() == "mine"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*argv, "--out-dir", str(empty)]) == 2
    assert empty.is_dir()  # not created by the run: left in place
    monkeypatch.setattr(reproduce, "simulate_batch_row", real)
    assert main([*argv, "--out-dir", str(new), "--seed", "2", "--n-dup", "1"]) in (0, 2)
    # a run that wrote its files keeps the folder, whatever the noise gave
    assert new.is_dir() == (new / "EI_ratio.csv").is_file()


@pytest.mark.parametrize("signal_name", ["ctrl-c", "sigterm"])
def test_interrupted_simulate_says_nothing_was_written(tmp_path, capsys, monkeypatch, signal_name):
    """Ctrl-C printed main's 'rerun the same command to resume', but simulate has no checkpoint."""
    from delssome_norms.cli.main import Terminated, main
    from delssome_norms.fit import reproduce

    argv = _cli_inputs(tmp_path)
    out = tmp_path / "o"
    assert main([*argv, "--out-dir", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()

    def stopped(*args, **kwargs):
        raise Terminated() if signal_name == "sigterm" else KeyboardInterrupt()

    monkeypatch.setattr(reproduce, "simulate_batch_row", stopped)
    status = 143 if signal_name == "sigterm" else 130
    assert main([*argv, "--out-dir", str(out)]) == status
    err = capsys.readouterr().err.strip()
    how = "terminated (SIGTERM)" if signal_name == "sigterm" else "interrupted"
    assert err == (
        f"delssome-norms: {how}; simulate was stopped and nothing was written to {out} (the "
        "outputs of an earlier run there are kept); simulate has no checkpoint: rerun the same "
        "command to simulate again from the start"
    )
    assert "resume" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    new = tmp_path / "new"
    assert main([*argv, "--out-dir", str(new)]) == status
    assert not new.exists()  # created by the stopped run: removed again
