"""Review 1207b (simulate): a simulation of its own runs on the torch engine without
``--batch-size``; a folder of prepare's measured FC is never overwritten; ``simulate.json``
records what made the files; region names in the parameters place them on the default template."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from delssome_norms.cli.main import main
from delssome_norms.datasets import DK68_REGIONS

SIM = ["--tr", "0.72", "--scan-length", "30", "--dt", "0.005", "--n-dup", "1", "--seed", "5",
       "--fcd-window", "10", "--burn-in", "3", "--warmup-steps", "200"]  # fmt: skip


def _params(path, names=None, order=None, sigma=1e-7):
    """DK68 parameters whose wEI varies by region (so E/I does); ``order`` permutes the rows,
    their names kept with them."""
    n = len(DK68_REGIONS)
    wei = np.linspace(1.6, 2.6, n)
    order = np.arange(n) if order is None else order
    table = pd.DataFrame(
        {
            "region_index": range(n),
            "region": [(names or list(DK68_REGIONS))[k] for k in order],
            "wEE": 2.5,
            "wEI": wei[order],
            "sigma": sigma,
            "G": 1.5,
        }
    )
    table.to_csv(path, index=False)
    return path


def test_torch_engine_needs_no_batch_size_and_the_run_is_recorded(tmp_path) -> None:
    p = _params(tmp_path / "p.csv", sigma=0.005)
    assert (
        main(
            ["simulate", "--params", str(p), *SIM, "--engine", "torch", "--out-dir", str(tmp_path / "t")]
        )
        == 0
    )
    record = json.loads((tmp_path / "t" / "simulate.json").read_text())
    assert record["seed"] == 5 and record["batch_size"] == 1 and record["engine"] == "torch"
    assert record["timing"]["tr"] == 0.72 and record["sc"]["source"] == "default DK68 template"
    # the same command again replaces its own files; the auto engine gives a batch of one too
    assert main(["simulate", "--params", str(p), *SIM, "--out-dir", str(tmp_path / "t")]) == 0
    assert json.loads((tmp_path / "t" / "simulate.json").read_text())["batch_size"] == 1


def test_prepare_outputs_are_never_overwritten(tmp_path, capsys) -> None:
    folder = tmp_path / "prep"
    folder.mkdir()
    (folder / "FC.csv").write_text("measured")
    (folder / "prepare.json").write_text("{}")
    p = _params(tmp_path / "p.csv")
    assert main(["simulate", "--params", str(p), *SIM, "--out-dir", str(folder)]) == 2
    assert "holds files simulate did not write (prepare.json, FC.csv" in capsys.readouterr().err
    assert (folder / "FC.csv").read_text() == "measured"
    assert sorted(x.name for x in folder.iterdir()) == ["FC.csv", "prepare.json"]


def test_named_parameters_are_placed_on_the_template_by_name(tmp_path, capsys) -> None:
    order = np.random.default_rng(3).permutation(len(DK68_REGIONS))
    plain, shuffled = _params(tmp_path / "a.csv"), _params(tmp_path / "b.csv", order=order)
    for p, out in ((plain, "a"), (shuffled, "b")):
        assert main(["simulate", "--params", str(p), *SIM, "--out-dir", str(tmp_path / out)]) == 0
    a = pd.read_csv(tmp_path / "a" / "EI_ratio.csv").set_index("region")["EI_ratio"]
    b = pd.read_csv(tmp_path / "b" / "EI_ratio.csv").set_index("region")["EI_ratio"]
    assert list(b.index) == [DK68_REGIONS[k] for k in order]
    # each region on its own SC row: the same E/I by name (noise ~0: sigma 1e-7)
    np.testing.assert_allclose(b.loc[a.index].to_numpy(), a.to_numpy(), rtol=1e-4)
    other = _params(tmp_path / "c.csv", names=[f"roi_{k}" for k in range(68)])
    assert main(["simulate", "--params", str(other), *SIM, "--out-dir", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err
    assert "names regions that are not the default template's DK68 regions (e.g. 'roi_" in err


def test_a_folder_of_an_earlier_simulate_run_is_rerun_and_the_engine_recorded(tmp_path) -> None:
    p = _params(tmp_path / "p.csv", sigma=0.005)
    out = tmp_path / "old"
    assert main(["simulate", "--params", str(p), *SIM, "--out-dir", str(out)]) == 0
    (out / "simulate.json").unlink()  # as a version before simulate.json left its folder
    assert main(["simulate", "--params", str(p), *SIM, "--out-dir", str(out)]) == 0
    engine = json.loads((out / "simulate.json").read_text())["engine"]
    assert engine in ("kernel", "torch")  # what ran, not "auto"


def test_a_region_named_twice_is_named(tmp_path, capsys) -> None:
    names = list(DK68_REGIONS)
    names[5] = names[0]
    p = _params(tmp_path / "p.csv", names=names)
    assert main(["simulate", "--params", str(p), *SIM, "--out-dir", str(tmp_path / "d")]) == 2
    assert f"names {names[0]!r} more than once" in capsys.readouterr().err
