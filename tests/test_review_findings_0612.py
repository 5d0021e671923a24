"""Review findings of 06-12: an SC saved sparse (or in a struct) in a MATLAB file, a surrogate
training checkpoint killed between its two renames, and ``simulate --from-run`` run from another
folder than the fit's or on a machine whose engines differ from the fit's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse
import torch

from delssome_norms import io
from delssome_norms.cli.main import main
from delssome_norms.errors import InvalidInputError

N = 6

# ------------------------------------------------------------------------------ A: .mat SC


def _sc(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sc = rng.random((N, N)) ** 3
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def test_a_sparse_sc_in_a_mat_file_is_read_as_its_dense_matrix(tmp_path: Path) -> None:
    """``scipy.io.savemat`` of a scipy.sparse matrix (MATLAB's sparse()) was 'holds 0 arrays'."""
    sc = _sc()
    sc[0, 3] = sc[3, 0] = 0.0  # sparse: some pairs unconnected
    path = tmp_path / "sc.mat"
    scipy.io.savemat(path, {"SC": scipy.sparse.csc_matrix(sc), "labels": ["a"] * N})
    got = io.read_sc(path)
    assert got.dtype == np.float64 and got.shape == (N, N)
    np.testing.assert_array_equal(got, sc)


def test_a_mat_file_without_a_numeric_matrix_lists_what_it_holds(tmp_path: Path) -> None:
    """An SC inside a struct gave 'holds 0 arrays (none)': nothing said what was there."""
    path = tmp_path / "conn.mat"
    scipy.io.savemat(path, {"conn": {"SC": _sc(), "names": ["r"] * N}})
    with pytest.raises(InvalidInputError) as err:
        io.read_sc(path)
    msg = err.value.problem
    assert "0 arrays" not in msg
    assert "conn" in msg and "struct" in msg and "SC" in msg
    assert "own variable" in msg
    assert err.value.source == str(path)
    text = tmp_path / "names.mat"
    scipy.io.savemat(text, {"region_names": ["a", "b"]})
    with pytest.raises(InvalidInputError, match=r"region_names \(text\)"):
        io.read_sc(text)


# ------------------------------------------------------------------------------ B: checkpoint


def _dataset(n_subjects: int = 5, per_subject: int = 24):
    from delssome_norms.surrogate.dataset import SurrogateDataset

    rng = np.random.default_rng(7)
    bins = 100
    c = n_subjects * per_subject
    iu = np.triu_indices(N, 1)
    fc = rng.uniform(0.05, 0.4, (n_subjects, 1)) + rng.normal(0, 0.02, (n_subjects, len(iu[0])))
    dens = rng.uniform(0, 1, (n_subjects, bins))
    regional = np.stack(
        [rng.uniform(1, 10, (c, N)), rng.uniform(0.5, 4.5, (c, N)), rng.uniform(6e-4, 9e-3, (c, N))],
        axis=-1,
    )
    g = rng.uniform(0, 3, c)
    losses = np.stack([regional[..., 0].mean(1) / 10, regional[..., 1].mean(1) / 5, g / 3], axis=1)
    sc = _sc(1) / _sc(1).max() * 0.02
    return SurrogateDataset(
        subject_id=[f"s{i}" for i in range(n_subjects)],
        fc_triu=fc,
        fcd_density=dens / dens.sum(1, keepdims=True),
        tr=np.full(n_subjects, 0.72),
        scan_length=np.full(n_subjects, 120.0),
        sc=np.broadcast_to(sc, (n_subjects, N, N)),
        regional=regional,
        g=g,
        subject=np.repeat(np.arange(n_subjects), per_subject),
        generation=np.tile(np.repeat(np.arange(2), per_subject // 2), n_subjects),
        losses=losses,
        info={"generator": "test_review_findings_0612"},
    )


def _config():
    from delssome_norms.surrogate.network import SurrogateConfig

    return SurrogateConfig(
        n_regions=N, cdf_bins=100, fcd_bins=10, d_model=16, n_heads=2, n_layers=1, d_ff=32,
        d_subject=32, dropout=0.2,
    )  # fmt: skip


def test_a_checkpoint_killed_between_its_renames_resumes_from_the_previous_epoch(
    tmp_path: Path, monkeypatch, one_thread
) -> None:
    """Between the two os.replace calls the checkpoint exists only as ``.ck.old<pid>``, which
    was never read: a kill there restarted the training from epoch 1."""
    from delssome_norms.surrogate import train as train_module
    from delssome_norms.surrogate.train import TrainSettings, train_surrogate

    data, settings = _dataset(), TrainSettings(epochs=4, batch_size=16, patience=10, seed=3)
    full = train_surrogate(data, _config(), settings, progress=False)
    ck = tmp_path / "ck"
    original, calls = train_module.predict_dataset, {"n": 0}

    def interrupt_in_epoch_3(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(train_module, "predict_dataset", interrupt_in_epoch_3)
        with pytest.raises(KeyboardInterrupt):
            train_surrogate(data, _config(), settings, progress=False, checkpoint=ck)
    assert json.loads((ck / "state.json").read_text())["epoch"] == 2
    # the disk as a write of epoch 3 killed between its renames leaves it: the previous
    # checkpoint renamed aside, the new one still in its staging folder
    os.replace(ck, tmp_path / ".ck.old424242")
    staging = tmp_path / ".ck.tmp424242"
    shutil.copytree(tmp_path / ".ck.old424242", staging)
    assert not ck.exists()
    lines: list[str] = []
    resumed = train_surrogate(data, _config(), settings, progress=False, log=lines.append, checkpoint=ck)
    assert lines and lines[0].startswith("continuing after epoch 2"), lines
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert [h["val_mse"] for h in resumed.history] == [h["val_mse"] for h in full.history]
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)
    # the next write put a checkpoint in place and removed what the killed write left
    assert json.loads((ck / "state.json").read_text())["epoch"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def test_the_newest_readable_leftover_is_read_and_ctrl_c_between_renames_restores(
    tmp_path: Path, monkeypatch
) -> None:
    from delssome_norms.surrogate import train_checkpoint as tc

    fp = {"data_sha256": "x"}

    def write(name: str, epoch: int) -> Path:
        tc.save_checkpoint(tmp_path / name, {"w": torch.full((2,), float(epoch))},
                           {"epoch": epoch, "fingerprint": fp})  # fmt: skip
        return tmp_path / name

    os.replace(write("a", 1), tmp_path / ".ck.old11")
    os.replace(write("b", 3), tmp_path / ".ck.old12")
    (tmp_path / ".ck.old12" / "state.safetensors").unlink()  # a leftover half removed
    os.replace(write("c", 2), tmp_path / ".ck.old13")
    tensors, state = tc.load_checkpoint(tmp_path / "ck", fp)
    assert state["epoch"] == 2 and tensors["w"].tolist() == [2.0, 2.0]
    # Ctrl-C between the two renames puts the previous checkpoint back in place
    write("ck", 5)
    real, seen = os.replace, []

    def interrupted(src, dst):
        seen.append(dst)
        if len(seen) == 2:
            raise KeyboardInterrupt
        return real(src, dst)

    monkeypatch.setattr(tc.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write("ck", 6)
    monkeypatch.setattr(tc.os, "replace", real)
    assert tc.load_checkpoint(tmp_path / "ck", fp)[1]["epoch"] == 5


# ------------------------------------------------------------------------------ C: --from-run

FAST = [
    "--popsize", "6", "--mu", "2", "--n-dup", "2", "--dt-train", "0.005", "--dt-val", "0.005",
    "--dt-test", "0.005", "--burn-in", "0.72", "--fcd-window", "5", "--warmup-steps", "50",
    "--test-top-k", "2", "--generations", "2", "--no-stability-gate", "--no-interval", "--quiet",
]  # fmt: skip


def _fit(project: Path, name: str) -> Path:
    """estimate-ei run inside ``project`` with relative input paths (as a user types them)."""
    data = project / "data"
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    ts = rng.standard_normal((40, N)) + 0.5 * rng.standard_normal((40, 1)) * np.linspace(0.5, 1.5, N)
    np.savetxt(data / "sub-01_run1.tsv", ts, delimiter="\t")
    io.write_matrix(_sc(), data / "sc.csv")
    x = np.linspace(-1, 1, N)
    io.write_matrix(1.4 - 0.2 * x, data / "myelin.csv")
    io.write_matrix((x - x.mean()) / x.std(), data / "gradient.csv")
    here = Path.cwd()
    os.chdir(project)
    try:
        argv = [
            "estimate-ei", "--timeseries", "data/sub-01_run1.tsv", "--tr", "0.72",
            "--sc", "data/sc.csv", "--myelin", "data/myelin.csv", "--gradient",
            "data/gradient.csv", "--out-dir", f"out/{name}", "--seed", "4", *FAST,
        ]  # fmt: skip
        assert main(argv) == 0
    finally:
        os.chdir(here)
    return project / "out" / name


@pytest.fixture(scope="module")
def fits(tmp_path_factory) -> dict[str, Path]:
    """One fit with this machine's "auto" engine and one run with the C++ kernel switched off."""
    project = tmp_path_factory.mktemp("project")
    done = {"auto": _fit(project, "sub-01")}
    old = os.environ.get("DELSSOME_NORMS_NO_KERNEL")
    os.environ["DELSSOME_NORMS_NO_KERNEL"] = "1"
    try:
        done["torch"] = _fit(project, "sub-01-torch")
    finally:
        if old is None:
            del os.environ["DELSSOME_NORMS_NO_KERNEL"]
        else:
            os.environ["DELSSOME_NORMS_NO_KERNEL"] = old
    return done


def _identical(sim: Path, fit: Path) -> None:
    a, b = pd.read_csv(sim / "EI_ratio.csv"), pd.read_csv(fit / "EI_ratio.csv")
    for col in ("S_E", "S_I", "EI_ratio", "r_E"):
        np.testing.assert_array_equal(a[col].to_numpy(), b[col].to_numpy(), err_msg=col)


def test_from_run_finds_a_relative_sc_from_another_working_directory(
    fits, tmp_path: Path, monkeypatch, capsys
) -> None:
    """run.json keeps ``inputs.sc`` as typed ("data/sc.csv"); from another folder --from-run
    said "not a file here"."""
    from delssome_norms.model import _kernel

    if not _kernel.available():
        pytest.skip("needs the C++ kernel for the 'auto' fit")
    fit = fits["auto"]
    assert json.loads((fit / "run.json").read_text())["inputs"]["sc"] == "data/sc.csv"
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    io.write_matrix(_sc(9), elsewhere / "data" / "sc.csv")  # another SC at the same relative path
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["simulate", "--from-run", str(fit / "run.json"), "--out-dir", "sim"]) == 0
    assert "identical to the fit's" in capsys.readouterr().out
    _identical(elsewhere / "sim", fit)
    # the digest still refuses an SC that is not the fit's
    code = main(["simulate", "--from-run", str(fit), "--sc", "data/sc.csv", "--out-dir", "sim2"])
    assert code == 2 and "not the SC this fit used" in capsys.readouterr().err
    # nowhere to be found: the places looked in are named
    moved = tmp_path / "moved"
    shutil.copytree(fit, moved)
    (elsewhere / "data" / "sc.csv").unlink()
    assert main(["simulate", "--from-run", str(moved), "--out-dir", "sim3"]) == 2
    err = capsys.readouterr().err
    assert "error: --sc: " in err and "data/sc.csv" in err and str(elsewhere) in err


def test_run_json_records_the_engine_used_and_from_run_keeps_it(
    fits, tmp_path: Path, monkeypatch, capsys
) -> None:
    """run.json recorded ``settings.engine`` "auto" only: a fit that ran on the torch engine
    (no C++ kernel) was re-simulated with the kernel here, ending in a vague 'differs'."""
    from delssome_norms.model import _kernel

    if not _kernel.available():
        pytest.skip("needs the C++ kernel")
    auto, torch_fit = (json.loads((fits[k] / "run.json").read_text()) for k in ("auto", "torch"))
    assert auto["settings"]["engine"] == torch_fit["settings"]["engine"] == "auto"  # as typed
    assert auto["settings"]["engine_used"] == "kernel"
    assert torch_fit["settings"]["engine_used"] == "torch"
    monkeypatch.chdir(fits["torch"].parent.parent)
    capsys.readouterr()
    argv = ["simulate", "--from-run", str(fits["torch"]), "--out-dir", str(tmp_path / "t")]
    assert main(argv) == 0  # the kernel is available here, but the fit's engine is used
    assert "identical to the fit's" in capsys.readouterr().out
    _identical(tmp_path / "t", fits["torch"])


def test_from_run_refuses_when_the_fits_engine_is_not_available_here(
    fits, tmp_path: Path, monkeypatch, capsys
) -> None:
    from delssome_norms.model import _kernel

    if not _kernel.available():
        pytest.skip("needs the C++ kernel for the 'auto' fit")
    monkeypatch.chdir(fits["auto"].parent.parent)
    monkeypatch.setenv("DELSSOME_NORMS_NO_KERNEL", "1")  # a machine without the C++ kernel
    capsys.readouterr()
    argv = ["simulate", "--from-run", str(fits["auto"]), "--out-dir", str(tmp_path / "k")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: --engine: " in err and "'kernel' engine" in err and "--device" in err, err
    assert not (tmp_path / "k").exists()
    # without --from-run an engine that is not available here is named too (not a traceback)
    explicit = [
        "simulate", "--params", str(fits["auto"] / "best_parameters.csv"), "--sc", "data/sc.csv",
        "--tr", "0.72", "--scan-length", "28.8", "--fcd-window", "5", "--dt", "0.005",
        "--burn-in", "0.72", "--warmup-steps", "50", "--engine", "kernel",
        "--out-dir", str(tmp_path / "e"),
    ]  # fmt: skip
    assert main(explicit) == 2
    err = capsys.readouterr().err
    assert "error: --engine: " in err and "C++ kernel cannot be used" in err, err
    # the user may still choose another engine, told that its noise is not the fit's
    with pytest.warns(UserWarning, match="torch engine draws other noise"):
        assert main([*argv, "--engine", "torch"]) == 0
