"""``simulate --from-run`` / ``--batch-row``: reproduce a fit's own test simulation of its winner.

A lockstep cohort of two subjects with different SCs is fitted once (a few seconds); the second
subject's winner is row 2 of the test batch, so its noise is that of simulations 4 and 5 of the
batch, which ``simulate --seed`` alone (row 0) does not give. The checks compare the simulated
S_E, S_I, E/I and r_E with the fit's own EI_ratio.csv for exact equality.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_fit_cmds as fits

from delssome_norms.cli.main import main
from delssome_norms.fit.reproduce import duplicate_means, simulate_batch_row
from delssome_norms.io import write_matrix
from delssome_norms.model import PFICParams, SimulationTiming, scale_sc, simulate

N_DUP = 2
COLUMNS = ("S_E", "S_I", "EI_ratio", "r_E")


def _fast() -> list[str]:
    fast = list(fits.FAST)
    fast[fast.index("--n-dup") + 1] = str(N_DUP)  # duplicates are averaged as the fit does
    return [*fast, "--no-stability-gate", "--no-interval"]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    """A finished lockstep cohort (two subjects, two SCs, top-2 test candidates each)."""
    tmp = tmp_path_factory.mktemp("cohort")
    rows = []
    for i in range(2):
        sid = f"sub-{i:02d}"
        p = fits._inputs(tmp, sid, seed=i)
        sc = fits._sc() + 0.01 * i * (1 - np.eye(fits.N))  # per-subject SCs: a (B, N, N) batch
        write_matrix(sc, tmp / "data" / f"{sid}_sc.csv")
        rows.append(
            {
                "subject_id": sid,
                "tr": 0.72,
                "scan_length": 14.4,
                "fc": p["FC"],
                "fcd_cdf": p["FCD_CDF"],
                "sc": tmp / "data" / f"{sid}_sc.csv",
                "myelin": p["myelin"],
                "gradient": p["gradient"],
            }
        )
    pd.DataFrame(rows).to_csv(tmp / "subjects.csv", index=False)
    argv = [
        "cohort", "--manifest", str(tmp / "subjects.csv"), "--out-dir", str(tmp / "out"),
        "--batch-subjects", "2", "--generations", "3", "--seed", "5", *_fast(),
    ]  # fmt: skip
    assert main(argv) == 0
    return tmp / "out"


def _run(folder: Path) -> dict:
    return json.loads((folder / "run.json").read_text())


def _same_as_fit(sim_dir: Path, fit_dir: Path) -> None:
    sim, fit = pd.read_csv(sim_dir / "EI_ratio.csv"), pd.read_csv(fit_dir / "EI_ratio.csv")
    for col in COLUMNS:
        np.testing.assert_array_equal(sim[col].to_numpy(), fit[col].to_numpy(), err_msg=col)


@pytest.mark.parametrize("sid", ["sub-00", "sub-01"])
def test_from_run_reproduces_the_fits_test_simulation_bit_for_bit(
    cohort: Path, tmp_path: Path, capsys, sid: str
) -> None:
    out = tmp_path / "sim"
    assert main(["simulate", "--from-run", str(cohort / sid / "run.json"), "--out-dir", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "identical to the fit's" in printed
    _same_as_fit(out, cohort / sid)
    # the fit's folder works as well as its run.json, and an option that agrees is accepted
    out2 = tmp_path / "sim2"
    argv = ["simulate", "--from-run", str(cohort / sid), "--n-dup", str(N_DUP), "--out-dir", str(out2)]
    assert main(argv) == 0
    _same_as_fit(out2, cohort / sid)


def _explicit(cohort: Path, sid: str, out: Path) -> list[str]:
    """``simulate`` with the fit's parameters, SC, timing and test seed spelt out."""
    run = _run(cohort / sid)
    t = run["timing"]
    return [
        "simulate", "--params", str(cohort / sid / "best_parameters.csv"),
        "--sc", run["inputs"]["sc"], "--tr", str(t["tr"]), "--scan-length", str(t["scan_length"]),
        "--dt", str(t["dt"]["test"]), "--burn-in", str(t["burn_in"]),
        "--fcd-window", str(t["fcd_window"]), "--warmup-steps", str(t["warmup_steps"]),
        "--n-dup", str(N_DUP), "--seed", str(run["result"]["seeds"]["test"]), "--out-dir", str(out),
    ]  # fmt: skip


def test_batch_row_reproduces_a_winner_that_is_not_row_0(cohort: Path, tmp_path: Path) -> None:
    first, res = (_run(cohort / s)["result"] for s in ("sub-00", "sub-01"))
    # one test call for the group: sub-01's candidates follow sub-00's two
    assert first["seeds"]["test"] == res["seeds"]["test"] and first["test_batch_row"] == 0
    assert res["test_batch_size"] == 4 and res["test_batch_row"] >= 2
    row, size = str(res["test_batch_row"]), str(res["test_batch_size"])
    argv = [*_explicit(cohort, "sub-01", tmp_path / "a"), "--batch-row", row, "--batch-size", size]
    assert main(argv) == 0
    _same_as_fit(tmp_path / "a", cohort / "sub-01")
    argv = [*_explicit(cohort, "sub-01", tmp_path / "b"), "--batch-row", row]  # size: optional
    assert main(argv) == 0
    _same_as_fit(tmp_path / "b", cohort / "sub-01")
    # the row matters: as row 0 (``--seed`` alone) the winner gets other noise
    assert main(_explicit(cohort, "sub-01", tmp_path / "c")) == 0
    row0 = pd.read_csv(tmp_path / "c" / "EI_ratio.csv")["S_E"].to_numpy()
    fit = pd.read_csv(cohort / "sub-01" / "EI_ratio.csv")["S_E"].to_numpy()
    assert np.max(np.abs(row0 / fit - 1)) > 1e-4


def test_seed_alone_reproduces_a_row_0_winner_with_several_duplicates(
    cohort: Path, tmp_path: Path
) -> None:
    # the duplicates are averaged in float64 as the fit does (float32 means differed by ~1e-8)
    assert main(_explicit(cohort, "sub-00", tmp_path / "s")) == 0
    _same_as_fit(tmp_path / "s", cohort / "sub-00")


def test_rows_outside_the_batch_are_refused(cohort: Path, tmp_path: Path, capsys) -> None:
    base = _explicit(cohort, "sub-01", tmp_path / "x")
    for extra, flag, words in (
        (["--batch-row", "4", "--batch-size", "4"], "--batch-row", "outside a batch of 4 rows"),
        (["--batch-row", "-1"], "--batch-row", "whole number >= 0"),
        (["--batch-row", "0", "--batch-size", "0"], "--batch-size", "whole number >= 1"),
    ):
        assert main(base + extra) == 2, extra
        err = capsys.readouterr().err
        assert f"error: {flag}: " in err and words in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--batch-size", "5"], "--batch-size"),
        (["--batch-row", "0"], "--batch-row"),
        (["--seed", "1"], "--seed"),
        (["--n-dup", "3"], "--n-dup"),
        (["--dt", "0.0005"], "--dt"),
        (["--dtype", "float64"], "--dtype"),
        (["--tr", "2"], "--tr"),
    ],
)
def test_options_contradicting_run_json_are_refused(
    cohort: Path, tmp_path: Path, capsys, extra: list[str], flag: str
) -> None:
    argv = ["simulate", "--from-run", str(cohort / "sub-01" / "run.json"), *extra]
    assert main([*argv, "--out-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"error: {flag}: " in err and "contradicts the fit's" in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    "damage",
    ["result.test_batch_row", "result.test_batch_size", "result.seeds.test", "result", "json"],
)
def test_a_run_json_without_the_test_record_is_refused(
    cohort: Path, tmp_path: Path, capsys, damage: str
) -> None:
    fit = tmp_path / "fit"
    shutil.copytree(cohort / "sub-01", fit)
    doc = _run(fit)
    if damage == "json":
        (fit / "run.json").write_text("{not json")
    else:
        *parents, last = damage.split(".")
        node = doc
        for key in parents:
            node = node[key]
        del node[last]
        (fit / "run.json").write_text(json.dumps(doc))
    assert main(["simulate", "--from-run", str(fit / "run.json"), "--out-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "error: --from-run: " in err, err
    if damage.count(".") >= 1:
        assert damage.rpartition(".")[2] in err
    assert main(["simulate", "--from-run", str(tmp_path / "nowhere.json"), "--out-dir", "x"]) == 2
    assert "error: --from-run: " in capsys.readouterr().err


def test_another_sc_than_the_fits_is_refused(cohort: Path, tmp_path: Path, capsys) -> None:
    other = _run(cohort / "sub-00")["inputs"]["sc"]
    argv = ["simulate", "--from-run", str(cohort / "sub-01"), "--sc", other]
    assert main([*argv, "--out-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "error: --sc: " in err and "not the SC this fit used" in err


def test_a_replay_batch_beyond_the_memory_is_refused_before_writing(
    cohort: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from delssome_norms.model import batch

    one_row = batch.simulation_bytes(N_DUP, fits.N, 20, 4)  # 20 frames, float32
    monkeypatch.setattr(batch, "device_total_memory", lambda device: 2 * one_row)
    argv = ["simulate", "--from-run", str(cohort / "sub-01"), "--out-dir", str(tmp_path / "x")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: --batch-row: reproducing row 2 means simulating 3 rows x 2 duplicates" in err
    assert not (tmp_path / "x").exists()
    # the row-0 winner's one row fits
    argv = ["simulate", "--from-run", str(cohort / "sub-00"), "--out-dir", str(tmp_path / "y")]
    assert main(argv) == 0


def test_the_torch_engine_needs_the_batch_size(
    cohort: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("DELSSOME_NORMS_NO_KERNEL", "1")  # "auto" is the torch engine on CPU
    argv = [*_explicit(cohort, "sub-01", tmp_path / "x"), "--batch-row", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: --batch-size: " in err and "whole batch" in err
    assert main([*argv, "--batch-size", "4"]) == 0  # its noise blocks span all four rows
    assert "as row 2 of a batch of 4 (4 rows simulated)" in capsys.readouterr().out


@pytest.mark.parametrize("engine", ["kernel", "torch"])
def test_a_row_of_a_mixed_batch_is_reproduced_by_every_engine(engine: str) -> None:
    """Row 2 of a batch of four different parameter sets, as a fit's test call holds them."""
    n = fits.N
    rng = np.random.default_rng(1)
    wee, wei = rng.uniform(2.5, 3.5, (4, n)), rng.uniform(2.0, 3.0, (4, n))
    sigma, g = np.full((4, n), 0.005), rng.uniform(0.8, 1.2, 4)
    sc = scale_sc(fits._sc())
    timing = SimulationTiming(
        tr=0.72, scan_length=7.2, dt=0.005, burn_in=0.72, fcd_window=3, warmup_steps=20
    )
    whole = simulate(PFICParams(wee, wei, sigma, g), sc, timing, n_dup=3, seed=9, engine=engine)
    one = PFICParams(wee[2:3], wei[2:3], sigma[2:3], g[2:3])
    res = simulate_batch_row(one, sc, timing, 2, 4, n_dup=3, seed=9, engine=engine)
    for a, b in zip(duplicate_means(res).values(), duplicate_means(whole, 2).values()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(res.bold[0].numpy(), whole.bold[2].numpy())
