"""``delssome-norms simulate`` on the paper's demo subject and on bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main

DEMO = ["--tr", "0.72", "--scan-length", "60", "--dt", "0.005", "--burn-in", "6", "--fcd-window", "10"]


def test_simulate_writes_reference_layout_outputs(cbig_dir, tmp_path, capsys):
    inp = cbig_dir / "input"
    ref = cbig_dir / "reference_output" / "delssome" / "sub-000"
    out = tmp_path / "sim"
    argv = [
        "simulate",
        "--params", str(ref / "best_parameters.csv"),
        "--sc", str(inp / "SC_group_DK68.csv"),
        "--out-dir", str(out),
        "--fc", str(inp / "sub-000_FC.csv"),
        "--fcd-cdf", str(inp / "sub-000_FCD_CDF.csv"),
        *DEMO,
    ]  # fmt: skip
    assert main(argv) == 0
    assert "E/I mean" in capsys.readouterr().out
    ei = pd.read_csv(out / "EI_ratio.csv")
    assert list(ei.columns) == ["region_index", "EI_ratio", "S_E", "S_I", "r_E"]
    expected = pd.read_csv(ref / "EI_ratio.csv")
    assert np.corrcoef(ei["EI_ratio"], expected["EI_ratio"])[0, 1] > 0.999
    assert np.mean(np.abs(ei["EI_ratio"] / expected["EI_ratio"] - 1)) < 0.01
    fc = np.loadtxt(out / "FC.csv", delimiter=",")
    cdf = np.loadtxt(out / "FCD_CDF.csv", delimiter=",")
    assert fc.shape == (68, 68) and np.allclose(np.diag(fc), 1)
    assert cdf.shape == (10000,) and cdf[-1] == pytest.approx(1.0)
    quality = pd.read_csv(out / "fit_quality.csv")
    assert quality["stage"].tolist() == ["simulate"]
    row = quality.iloc[0]
    assert row["total_loss"] == pytest.approx(row["corr_loss"] + row["l1_loss"] + row["ks_loss"])
    test_row = pd.read_csv(ref / "fit_quality.csv").set_index("stage").loc["test"]
    assert abs(row["l1_loss"] - test_row["l1_loss"]) < 0.02


def _write_params(path, n=4, sigma=0.005):
    pd.DataFrame(
        {
            "region_index": range(n),
            "wEE": [3.0] * n,
            "wEI": [2.5] * n,
            "sigma": [sigma] * n,
            "G": [1.0] * n,
        }
    ).to_csv(path, index=False)


def test_simulate_without_empirical_data_and_bad_inputs(tmp_path, capsys):
    rng = np.random.default_rng(0)
    sc = rng.random((4, 4))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    np.savetxt(tmp_path / "sc.csv", sc, delimiter=",")
    _write_params(tmp_path / "p.csv")
    base = ["simulate", "--params", str(tmp_path / "p.csv"), "--sc", str(tmp_path / "sc.csv")]
    short = ["--tr", "0.72", "--scan-length", "14.4", "--dt", "0.005", "--burn-in", "1.44"]
    short += ["--fcd-window", "5", "--warmup-steps", "100"]
    assert main([*base, *short, "--out-dir", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "EI_ratio.csv").is_file()
    assert not (tmp_path / "o" / "fit_quality.csv").exists()
    capsys.readouterr()

    # only one of --fc / --fcd-cdf
    argv = [*base, *short, "--out-dir", str(tmp_path / "x"), "--fc", str(tmp_path / "sc.csv")]
    assert main(argv) == 2
    assert "--fcd-cdf" in capsys.readouterr().err
    # SC of the wrong size
    np.savetxt(tmp_path / "sc5.csv", np.ones((5, 5)) - np.eye(5), delimiter=",")
    argv = [*base[:-1], str(tmp_path / "sc5.csv"), *short, "--out-dir", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "sc5.csv" in capsys.readouterr().err
    # a window longer than the scan
    argv = [*base, *short[:-4], "--fcd-window", "50", "--out-dir", str(tmp_path / "x")]
    assert main(argv) == 2
    assert "window" in capsys.readouterr().err
    # absurd parameters (they would blow up in every duplicate) are refused before simulating
    _write_params(tmp_path / "bad.csv", sigma=100.0)
    argv = ["simulate", "--params", str(tmp_path / "bad.csv"), "--sc", str(tmp_path / "sc.csv")]
    assert main([*argv, *short, "--out-dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "sigma must lie in" in err and "bad.csv" in err
    assert not (tmp_path / "x").exists()


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    assert "example:" in capsys.readouterr().out


def test_simulate_defaults_to_the_template_sc(tmp_path, capsys):
    from delssome_norms.datasets import load_default_template

    _write_params(tmp_path / "p.csv", n=68)
    np.savetxt(tmp_path / "sc.csv", load_default_template().sc, delimiter=",")
    fast = [
        "--tr",
        "0.72",
        "--scan-length",
        "30",
        "--dt",
        "0.005",
        "--burn-in",
        "3",
        "--fcd-window",
        "10",
    ]
    fast += ["--warmup-steps", "100"]
    base = ["simulate", "--params", str(tmp_path / "p.csv"), *fast]
    assert main([*base, "--out-dir", str(tmp_path / "default")]) == 0
    assert main([*base, "--sc", str(tmp_path / "sc.csv"), "--out-dir", str(tmp_path / "given")]) == 0
    a = pd.read_csv(tmp_path / "default" / "EI_ratio.csv")["EI_ratio"].to_numpy()
    b = pd.read_csv(tmp_path / "given" / "EI_ratio.csv")["EI_ratio"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)
    _write_params(tmp_path / "p67.csv", n=67)
    assert (
        main(
            ["simulate", "--params", str(tmp_path / "p67.csv"), *fast, "--out-dir", str(tmp_path / "x")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "p67.csv" in err and "default DK68 template SC" in err
