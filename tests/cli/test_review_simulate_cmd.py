"""``simulate`` and ``validate`` as a modeller uses them: reruns, wrong folders, bad steps, bad FC."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from delssome_norms.cli.main import main
from delssome_norms.model import scale_sc
from delssome_norms.model.constants import PFIC_CONSTANTS as C
from delssome_norms.model.fic import rate_derivative, solve_fic

N = 4
SHORT = ["--tr", "0.72", "--scan-length", "14.4", "--dt", "0.005", "--burn-in", "1.44"]
SHORT += ["--fcd-window", "5", "--warmup-steps", "100", "--n-dup", "1"]


def _sc() -> np.ndarray:
    rng = np.random.default_rng(0)
    sc = rng.random((N, N))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    return sc


@pytest.fixture
def files(tmp_path):
    """A 4-region subject: SC, parameters in the FIC regime, FC and FCD-CDF."""
    np.savetxt(tmp_path / "sc.csv", _sc(), delimiter=",")
    _params(tmp_path / "p.csv")
    fc = np.array([[1.0, 0.3, 0.1, 0.2], [0.3, 1.0, 0.4, 0.0], [0.1, 0.4, 1.0, 0.5]])
    fc = np.vstack([fc, [0.2, 0.0, 0.5, 1.0]])
    np.savetxt(tmp_path / "fc.csv", fc, delimiter=",")
    np.savetxt(tmp_path / "cdf.csv", np.linspace(1e-4, 1.0, 10000))
    return tmp_path


def _params(path, n=N, w_ei=2.5):
    pd.DataFrame({"region_index": range(n), "wEE": 3.0, "wEI": w_ei, "sigma": 0.005, "G": 1.0}).to_csv(
        path, index=False
    )


def _simulate(d, *extra):
    return ["simulate", "--params", str(d / "p.csv"), "--sc", str(d / "sc.csv"), *SHORT, *extra]


def _score(d):
    return ["--fc", str(d / "fc.csv"), "--fcd-cdf", str(d / "cdf.csv")]


def test_rerun_without_empirical_data_drops_the_old_fit_quality(files, capsys):
    out = files / "sim"
    assert main([*_simulate(files, "--out-dir", str(out)), *_score(files)]) == 0
    assert (out / "fit_quality.csv").is_file()
    # other parameters, same folder, no --fc: the old losses do not describe these outputs
    _params(files / "p.csv", w_ei=2.0)
    assert main(_simulate(files, "--out-dir", str(out))) == 0
    assert not (out / "fit_quality.csv").exists()
    assert {p.name for p in out.glob("*.csv")} == {"EI_ratio.csv", "FC.csv", "FCD_CDF.csv"}


def test_the_folder_of_an_estimate_ei_fit_is_refused(files, capsys):
    fit = files / "fit"
    fit.mkdir()
    (fit / "run.json").write_text(json.dumps({"status": "complete"}))
    (fit / "EI_ratio.csv").write_text("the fit's result\n")
    assert main(_simulate(files, "--out-dir", str(fit))) == 2
    err = capsys.readouterr().err
    assert "--out-dir" in err and "estimate-ei fit" in err and "Traceback" not in err
    assert (fit / "EI_ratio.csv").read_text() == "the fit's result\n"


def test_an_input_that_is_one_of_the_outputs_is_refused(files, capsys):
    out = files / "sim"
    assert main(_simulate(files, "--out-dir", str(out), "--seed", "1")) == 0
    before = (out / "FC.csv").read_bytes()
    # compare a new seed with the earlier simulation, in the same folder
    argv = _simulate(files, "--out-dir", str(out), "--seed", "2")
    argv += ["--fc", str(out / "FC.csv"), "--fcd-cdf", str(out / "FCD_CDF.csv")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--fc:" in err and "FC.csv" in err and "overwritten" in err
    assert (out / "FC.csv").read_bytes() == before


def test_a_step_too_coarse_for_the_parameters_names_dt_and_the_limit(files, capsys):
    _params(files / "p.csv", w_ei=40.0)  # fast inhibition: 0.005 s is too coarse
    assert main(_simulate(files, "--out-dir", str(files / "sim"))) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("delssome-norms: error: --dt:") and len(err.splitlines()) == 1
    # independent limit: 2 / (1 / tau_I + H_I'(I_I*)), smallest over regions
    w = torch.full((1, N), 40.0, dtype=torch.float64)
    fic = solve_fic(torch.full_like(w, 3.0), w, torch.ones(1, dtype=torch.float64),
                    torch.as_tensor(scale_sc(_sc())))  # fmt: skip
    lam = 1.0 / C.tau_I + rate_derivative(fic.i_i, C.a_I, C.b_I, C.d_I)
    limit = float((2.0 / lam).min())
    shown = float(err.split("need dt < ")[1].split(" s")[0])
    assert 0.99 * limit <= shown <= limit < 0.005
    assert not (files / "sim").exists()  # refused before any work


def test_seed_and_timing_errors_name_their_option(files, capsys):
    assert main(_simulate(files, "--out-dir", str(files / "o"), "--seed", "-1")) == 2
    assert "error: --seed:" in capsys.readouterr().err
    assert main(_simulate(files, "--out-dir", str(files / "o"), "--fcd-window", "30")) == 2
    err = capsys.readouterr().err
    assert "error: --fcd-window:" in err and "sliding window" in err
    assert main(_simulate(files, "--out-dir", str(files / "o"), "--burn-in", "-1")) == 2
    assert "error: --burn-in:" in capsys.readouterr().err


def test_fc_without_variation_and_two_regions_are_refused(files, capsys):
    np.savetxt(files / "eye.csv", np.eye(N), delimiter=",")
    argv = _simulate(files, "--out-dir", str(files / "o"), "--fc", str(files / "eye.csv"))
    assert main([*argv, "--fcd-cdf", str(files / "cdf.csv")]) == 2
    err = capsys.readouterr().err
    assert "eye.csv: every region pair has the same FC" in err
    assert main(["validate", "--fc", str(files / "eye.csv")]) == 2
    assert "eye.csv: every region pair has the same FC" in capsys.readouterr().err

    _params(files / "p.csv", n=2)
    np.savetxt(files / "sc.csv", [[0.0, 1.0], [1.0, 0.0]], delimiter=",")
    assert main(_simulate(files, "--out-dir", str(files / "o"))) == 2
    assert "p.csv: has 2 region row(s)" in capsys.readouterr().err


def test_parameters_outside_the_fic_regime_warn(files, capsys):
    _params(files / "p.csv", w_ei=0.0)  # FIC fixed point unstable: r_E falls far below 3 Hz
    with pytest.warns(UserWarning, match=r"4 of 4 regions have a mean r_E outside 2.7-3.3 Hz"):
        assert main(_simulate(files, "--out-dir", str(files / "o"))) == 0
    r_e = pd.read_csv(files / "o" / "EI_ratio.csv")["r_E"]
    assert (r_e < 2.7).all()


def test_validate_timing_options_and_lone_tr(files, capsys):
    # the paper's demo timing: a 60-s scan with a 10-frame FCD window is fittable
    argv = ["validate", "--tr", "0.72", "--scan-length", "60"]
    assert main(argv) == 2
    capsys.readouterr()
    assert main([*argv, "--fcd-window", "10", "--burn-in", "6"]) == 0
    out = capsys.readouterr().out
    assert "83 frames; FCD window 10 frames" in out and "74 windows" in out
    assert main(["validate", "--tr", "0.72"]) == 2
    err = capsys.readouterr().err
    assert "error: --scan-length:" in err and "None" not in err
    assert main(["validate", "--scan-length", "864"]) == 2
    assert "error: --tr:" in capsys.readouterr().err
