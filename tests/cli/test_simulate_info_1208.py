"""Review 1208: ``simulate.json`` records the empirical FC and FCD-CDF that ``fit_quality.csv``
scores against; ``info`` says a DELSSOME_NORMS_PRETRAINED folder holding a surrogate training data
set is not weights (not "train weights into it")."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main

SHORT = ["--tr", "0.72", "--scan-length", "14.4", "--dt", "0.005", "--burn-in", "1.44",
         "--fcd-window", "5", "--warmup-steps", "100", "--n-dup", "1", "--seed", "3"]  # fmt: skip


def _inputs(folder):
    rng = np.random.default_rng(0)
    sc = rng.random((4, 4))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    np.savetxt(folder / "sc.csv", sc, delimiter=",")
    pd.DataFrame({"region_index": range(4), "wEE": 3.0, "wEI": 2.5, "sigma": 0.005, "G": 1.0}).to_csv(
        folder / "p.csv", index=False
    )
    return ["simulate", "--params", "p.csv", "--sc", "sc.csv", *SHORT]


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_simulate_json_records_the_empirical_files_it_scored_against(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # relative paths on the command line: recorded absolute
    base = _inputs(tmp_path)
    assert main([*base, "--out-dir", "a"]) == 0
    record = json.loads((tmp_path / "a" / "simulate.json").read_text())
    assert record["fc"] is None and record["fcd_cdf"] is None  # not scored
    assert not (tmp_path / "a" / "fit_quality.csv").exists()

    # the first run's outputs as the "empirical" data of a second, identical run
    (tmp_path / "emp").mkdir()
    for name in ("FC.csv", "FCD_CDF.csv"):
        (tmp_path / "emp" / name).write_bytes((tmp_path / "a" / name).read_bytes())
    argv = [*base, "--out-dir", "b", "--fc", "emp/FC.csv", "--fcd-cdf", "emp/FCD_CDF.csv"]
    assert main(argv) == 0
    record = json.loads((tmp_path / "b" / "simulate.json").read_text())
    fc, cdf = tmp_path / "emp" / "FC.csv", tmp_path / "emp" / "FCD_CDF.csv"
    assert record["fc"] == {"path": str(fc.resolve()), "sha256": _sha256(fc)}
    assert record["fcd_cdf"] == {"path": str(cdf.resolve()), "sha256": _sha256(cdf)}
    assert record["fc"]["sha256"] != record["fcd_cdf"]["sha256"]
    # the params are recorded the same way as before
    params = tmp_path / "p.csv"
    assert record["params"] == {"path": str(params.resolve()), "sha256": _sha256(params)}
    # and fit_quality.csv is the cost against exactly these files: the same simulation scores 0
    quality = pd.read_csv(tmp_path / "b" / "fit_quality.csv").iloc[0]
    assert abs(quality["corr_loss"]) < 1e-6 and abs(quality["l1_loss"]) < 1e-6
    assert abs(quality["ks_loss"]) < 1e-6


def test_info_says_a_training_data_set_in_the_variable_is_not_weights(
    tmp_path, monkeypatch, capsys
) -> None:
    data = tmp_path / "surrogate_data"
    data.mkdir()
    (data / "manifest.json").write_text("{}")  # what `surrogate generate` writes
    monkeypatch.setenv("DELSSOME_NORMS_PRETRAINED", str(data))
    assert main(["info", "--json"]) == 0
    weights = json.loads(capsys.readouterr().out)["surrogate_weights"]
    assert weights["usable"] is False and weights["folder"] == str(data)
    reason = weights["reason"]
    assert reason.startswith(f"DELSSOME_NORMS_PRETRAINED={data}: ")
    assert "is a surrogate training data set (manifest.json), not weights" in reason
    assert f"--data {data} --out WEIGHTS" in reason
    assert f"--out {data}" not in reason  # never: train weights into the data set's folder
    assert main(["info"]) == 0
    assert "is a surrogate training data set" in capsys.readouterr().out

    # a folder that is not there keeps the default message (train weights, or set the variable)
    monkeypatch.setenv("DELSSOME_NORMS_PRETRAINED", str(tmp_path / "nothing"))
    assert main(["info", "--json"]) == 0
    reason = json.loads(capsys.readouterr().out)["surrogate_weights"]["reason"]
    assert reason.startswith(f"no pretrained surrogate weights found at {tmp_path / 'nothing'}")


def test_default_weights_naming_a_training_data_set_say_so(tmp_path, monkeypatch) -> None:
    """Every loader of the default weights (estimate-ei --mode surrogate, cohort, demo), not
    only info, says that $DELSSOME_NORMS_PRETRAINED names a data set, not weights."""
    from delssome_norms.errors import InvalidInputError
    from delssome_norms.surrogate.pretrained import ENV_VAR, load_pretrained

    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text("{}", encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(data))
    with pytest.raises(InvalidInputError, match="is a surrogate training data set") as err:
        load_pretrained()
    assert err.value.source == f"{ENV_VAR}={data}"
    assert f"--out {data}" not in str(err.value)
