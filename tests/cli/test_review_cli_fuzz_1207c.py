"""CLI fuzz review (2026-12-07c): output folders that must not be replaced or mixed into (the
shipped surrogate weights, weights without --overwrite, folders of other files), a chart refit
stopped while writing, decimal commas in a score table, complex and bool NPY time series,
messages naming the path, and a --params file without a header row."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from delssome_norms.cli.main import main
from delssome_norms.errors import InvalidInputError

TRAIN = ["--epochs", "1", "--d-model", "16", "--heads", "2", "--layers", "1", "--quiet"]


def _one_error(capsys, *texts: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("delssome-norms: error: ") and err.count("\n") == 1, err
    for text in texts:
        assert text in err, err
    return err


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A tiny surrogate data set of known losses (no simulation)."""
    from delssome_norms.surrogate.dataset import save_dataset
    from tests.cli.test_surrogate_cmd import _tiny_dataset

    save_dataset(_tiny_dataset(), tmp_path / "data")
    return tmp_path / "data"


@pytest.fixture
def fake_package(tmp_path: Path, monkeypatch) -> Path:
    """The shipped weights' folders moved under tmp_path (``pretrained.__file__`` there), holding
    copies of the shipped weights: a test that fails never touches the real ones."""
    from delssome_norms.surrogate import pretrained

    root = tmp_path / "src"
    module = root / "delssome_norms" / "surrogate" / "pretrained.py"
    module.parent.mkdir(parents=True)
    module.write_text("# stand-in\n")
    shipped = root / "pretrained" / pretrained.DEFAULT_NAME
    real = Path(pretrained.__file__).resolve().parents[2] / "pretrained" / pretrained.DEFAULT_NAME
    shipped.mkdir(parents=True)
    for name in ("metadata.json", "model.safetensors"):
        (shipped / name).write_bytes((real / name).read_bytes())
    monkeypatch.setattr(pretrained, "__file__", str(module))
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    assert pretrained.default_pretrained_path() == shipped
    return shipped


# ------------------------------------------------------------- 1. surrogate train --out


def test_train_refuses_the_shipped_weights_folder(
    data_dir: Path, fake_package: Path, tmp_path: Path, capsys, one_thread
) -> None:
    """`surrogate train --out pretrained/delssome_dk68` replaced the shipped weights (rc 0) that
    every later surrogate fit used; refused before training, with --overwrite too, also through
    a symbolic link or a path with '..'."""
    before = _digest(fake_package)
    link = tmp_path / "link"
    link.symlink_to(fake_package)
    dotted = fake_package.parent / ".." / "pretrained" / fake_package.name
    for out, extra in ((fake_package, []), (dotted, ["--overwrite"]), (link, ["--overwrite"])):
        argv = ["surrogate", "train", "--data", str(data_dir), "--out", str(out), *TRAIN, *extra]
        assert main(argv) == 2
        _one_error(capsys, f"--out: {out} is the folder of the shipped default weights", "--weights")
        assert _digest(fake_package) == before
        assert not Path(f"{out}.checkpoint").exists()


def test_save_pretrained_refuses_the_shipped_weights_folder(fake_package: Path) -> None:
    """The Python API never replaces the shipped weights either."""
    import torch

    from delssome_norms.surrogate.network import CostPredictor, SurrogateConfig
    from delssome_norms.surrogate.pretrained import save_pretrained

    before = _digest(fake_package)
    torch.manual_seed(0)
    cfg = SurrogateConfig(n_regions=5, cdf_bins=100, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    with pytest.raises(InvalidInputError, match="is the folder of the shipped default weights"):
        save_pretrained(CostPredictor(cfg).eval(), fake_package, {})
    assert _digest(fake_package) == before


def test_train_replaces_weights_only_with_overwrite(
    data_dir: Path, tmp_path: Path, capsys, one_thread, monkeypatch
) -> None:
    """Weights in --out were replaced silently; now only with --overwrite (the error names the
    folder, and says when it is the default weights of $DELSSOME_NORMS_PRETRAINED)."""
    out = tmp_path / "w"
    argv = ["surrogate", "train", "--data", str(data_dir), "--out", str(out), *TRAIN]
    assert main(argv) == 0
    (out / "notes.txt").write_text("mine")  # a user's file in the weights folder
    first = _digest(out)
    capsys.readouterr()
    assert main([*argv, "--seed", "7"]) == 2
    _one_error(capsys, f"--out: {out} already holds trained weights", "--overwrite")
    assert _digest(out) == first
    monkeypatch.setenv("DELSSOME_NORMS_PRETRAINED", str(out))
    assert main([*argv, "--seed", "7"]) == 2
    _one_error(capsys, "(the default weights, $DELSSOME_NORMS_PRETRAINED")
    assert main([*argv, "--seed", "7", "--overwrite"]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["training"]["settings"]["seed"] == 7
    assert (out / "notes.txt").read_text() == "mine"  # moved along with the new weights
    assert _digest(out)["model.safetensors"] != first["model.safetensors"]


def test_save_pretrained_keeps_others_files_when_stopped_while_replacing(
    tmp_path: Path, monkeypatch
) -> None:
    """Replacing weights moved the folder's other files into the staging folder before the swap:
    stopped there, they were deleted with it. They now move after the swap, so an interruption
    leaves them in the old folder, never deletes them."""
    import os

    import torch

    from delssome_norms.surrogate import pretrained
    from delssome_norms.surrogate.network import CostPredictor, SurrogateConfig

    cfg = SurrogateConfig(n_regions=5, cdf_bins=100, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    torch.manual_seed(0)
    model = CostPredictor(cfg).eval()
    folder = pretrained.save_pretrained(model, tmp_path / "w", {})
    (folder / "notes.txt").write_text("mine")
    real = os.replace

    def stop_at_notes(src, dst):  # Ctrl-C right after the user's file has moved
        real(src, dst)
        if Path(src).name == "notes.txt":
            raise KeyboardInterrupt

    monkeypatch.setattr(pretrained.os, "replace", stop_at_notes)
    with pytest.raises(KeyboardInterrupt):
        pretrained.save_pretrained(model, folder, {"note": "second"})
    kept = [p.read_text() for p in tmp_path.rglob("notes.txt")]
    assert kept == ["mine"]


# ------------------------------------------------------------- 5. output folders of others


def test_train_and_generate_refuse_a_folder_of_other_files(
    data_dir: Path, tmp_path: Path, capsys, one_thread, monkeypatch
) -> None:
    """`surrogate generate --out` and `train --out` wrote into any folder (a subjects folder);
    refused before any work, naming the folder and what is in it. A data set (manifest.json)
    or an interrupted first run (work/) is continued; an empty folder is fine."""
    from delssome_norms.surrogate import generate

    subjects = tmp_path / "subjects"
    subjects.mkdir()
    (subjects / "sub-01_FC.csv").write_text("1,0\n0,1\n")
    (subjects / ".DS_Store").write_text("")
    calls: list[str] = []

    def fake_generate(out, *args, **kwargs):
        calls.append(Path(out).name)
        return generate.GenerateReport()

    monkeypatch.setattr(generate, "generate_dataset", fake_generate)
    gen = ["surrogate", "generate", "--subjects", "1", "--quiet", "--out"]
    assert main([*gen, str(subjects)]) == 2
    _one_error(capsys, f"--out: {subjects} already holds other files (sub-01_FC.csv)", "manifest.json")
    train = ["surrogate", "train", "--data", str(data_dir), *TRAIN, "--out"]
    assert main([*train, str(subjects), "--overwrite"]) == 2
    _one_error(capsys, f"--out: {subjects} already holds other files (sub-01_FC.csv)")
    assert sorted(p.name for p in subjects.iterdir()) == [".DS_Store", "sub-01_FC.csv"]
    assert calls == []
    interrupted = tmp_path / "interrupted"
    (interrupted / "work").mkdir(parents=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (data_dir, interrupted, empty):
        assert main([*gen, str(out)]) == 0
    assert calls == ["data", "interrupted", "empty"]
    (tmp_path / "afile").write_text("x")
    for argv in (gen, train):
        assert main([*argv, str(tmp_path / "afile")]) == 2
        _one_error(capsys, f"--out: {tmp_path / 'afile'} exists and is a file, not a folder")


@pytest.fixture(scope="module")
def chart_table(tmp_path_factory) -> Path:
    from delssome_norms.datasets import load_reference_table

    path = tmp_path_factory.mktemp("fuzz_chart") / "train.csv"
    load_reference_table().sample(300, random_state=0).to_csv(path, index=False)
    return path


FIT = ["--family", "NO", "--mu-df", "3"]


def test_charts_fit_refuses_a_folder_of_other_files(chart_table: Path, tmp_path: Path, capsys) -> None:
    """`charts fit --out` wrote its chart into any folder; a folder of other files is refused
    before the fit (a chart folder with a user's own file is still replaced)."""
    out = tmp_path / "subjects"
    out.mkdir()
    (out / "sub-01_FC.csv").write_text("1,0\n0,1\n")
    argv = ["charts", "fit", "--table", str(chart_table), "--targets", "ei_ratio_mean", *FIT]
    assert main([*argv, "--out", str(out)]) == 2
    _one_error(capsys, f"--out: {out} already holds other files (sub-01_FC.csv)", "chart.json")
    assert sorted(p.name for p in out.iterdir()) == ["sub-01_FC.csv"]
    adapt = ["charts", "adapt", "--chart", "reference", "--controls", str(chart_table)]
    assert main([*adapt, "--out", str(out)]) == 2
    _one_error(capsys, f"--out: {out} already holds other files")


# ------------------------------------------------------------- 2. charts fit stopped while writing


def _stop_after_save(monkeypatch) -> None:
    """Ctrl-C right after the new chart's two files are in place."""
    from delssome_norms.norms import GrowthChart

    real = GrowthChart.save

    def save_then_stop(self, *args, **kwargs):
        real(self, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(GrowthChart, "save", save_then_stop)


def test_charts_fit_stopped_leaves_no_side_file_of_the_earlier_chart(
    chart_table: Path, tmp_path: Path, monkeypatch
) -> None:
    """A refit stopped after the new chart was saved left the earlier chart's convergence.csv
    and centile tables beside it (describing a chart that is gone). Now: stopped after the chart
    is saved, no earlier side file remains; stopped before (while the side files are written),
    the earlier chart and all its files are as they were."""
    from delssome_norms.io import writers

    out = tmp_path / "chart"
    base = ["charts", "fit", "--table", str(chart_table), "--out", str(out), *FIT]
    assert main([*base, "--targets", "ei_ratio_mean,ei_ratio_roi_0", "--centile-tables", "all"]) == 0
    (out / "notes.txt").write_text("mine")
    earlier = _digest(out)
    assert "ei_ratio_roi_0/male_population_centiles.csv" in earlier
    old_convergence = pd.read_csv(out / "convergence.csv")
    assert len(old_convergence) == 2

    # stopped while the side files are written: nothing changed
    real_write = writers.write_table
    calls = []

    def stop_at_second(table, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(table, path, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(writers, "write_table", stop_at_second)
        m.setattr("delssome_norms.io.write_table", stop_at_second)
        assert main([*base, "--targets", "ei_ratio_roi_1", "--centile-tables", "all"]) == 130
    assert _digest(out) == earlier  # no staged file left either
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["arrays.npz", "chart.json", "convergence.csv", "ei_ratio_mean", "ei_ratio_roi_0", "notes.txt"]
    )

    # stopped once the new chart is saved: the earlier chart's side files are gone
    with monkeypatch.context() as m:
        _stop_after_save(m)
        assert main([*base, "--targets", "ei_ratio_roi_1", "--centile-tables", "all"]) == 130
    chart = json.loads((out / "chart.json").read_text())
    assert chart["targets"] == ["ei_ratio_roi_1"]
    left = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert left == ["arrays.npz", "chart.json", "notes.txt"], left
    assert (out / "notes.txt").read_text() == "mine"

    # the rerun completes the folder
    assert main([*base, "--targets", "ei_ratio_roi_1", "--centile-tables", "all"]) == 0
    convergence = pd.read_csv(out / "convergence.csv")
    assert list(convergence.iloc[:, 0]) == ["ei_ratio_roi_1"]
    assert (out / "ei_ratio_roi_1" / "female_population_centiles.csv").is_file()
    assert not (out / "ei_ratio_mean").exists()


# ------------------------------------------------------------- 3. decimal commas in scores


@pytest.fixture(scope="module")
def scores(tmp_path_factory) -> Path:
    """Scores of 3 people on the shipped reference chart."""
    from delssome_norms.datasets import load_reference_table

    folder = tmp_path_factory.mktemp("fuzz_scores")
    load_reference_table().head(3).to_csv(folder / "people.csv", index=False)
    argv = ["charts", "score", "--chart", "reference", "--table", str(folder / "people.csv")]
    assert main([*argv, "--out", str(folder / "scores.csv")]) == 0
    return folder / "scores.csv"


@pytest.mark.parametrize(
    ("column", "command"),
    [
        ("age_in_years", "report"),
        ("age_in_years", "plot"),
        ("ei_ratio_mean_z", "report"),
        ("ei_ratio_roi_3_centile", "report"),
        ("ei_ratio_mean_harmonised", "plot"),
    ],
)
def test_decimal_comma_in_a_score_table_is_named(
    scores: Path, tmp_path: Path, capsys, column: str, command: str
) -> None:
    """`charts report`/`plot --scores` stopped with 'unexpected ValueError: could not convert
    string to float: '9,662'' for a decimal comma in an age or score; now one line naming the
    file, the column, the person and the decimal comma."""
    table = pd.read_csv(scores, dtype={"subject_id": str})
    subject = table.loc[1, "subject_id"]
    value = table.loc[1, column]
    text = f"{value:.6f}".replace(".", ",")
    table[column] = table[column].map(lambda v: f"{v:.6f}")
    table.loc[1, column] = text
    bad = tmp_path / "scores_dc.csv"
    table.to_csv(bad, index=False)
    if command == "report":
        argv = ["charts", "report", "--chart", "reference", "--out", str(tmp_path / "rep")]
    else:
        argv = ["charts", "plot", "--chart", "reference", "--target", "ei_ratio_mean"]
        argv += ["--out", str(tmp_path / "p.png")]
    assert main([*argv, "--scores", str(bad), "--subject", subject]) == 2
    err = _one_error(capsys, f"{bad} (--scores): column {column} of subject {subject}", "decimal comma")
    assert f"({text.replace(',', '.')})" in err
    assert not (tmp_path / "rep").exists() and not (tmp_path / "p.png").exists()


def test_text_in_a_score_column_is_named(scores: Path, tmp_path: Path, capsys) -> None:
    table = pd.read_csv(scores, dtype={"subject_id": str})
    table["ei_ratio_mean_z"] = table["ei_ratio_mean_z"].astype(object)
    table.loc[0, "ei_ratio_mean_z"] = "high"
    bad = tmp_path / "scores_text.csv"
    table.to_csv(bad, index=False)
    subject = table.loc[0, "subject_id"]
    argv = ["charts", "report", "--chart", "reference", "--scores", str(bad), "--subject", subject]
    assert main([*argv, "--out", str(tmp_path / "rep")]) == 2
    _one_error(capsys, "column ei_ratio_mean_z of subject", "'high', not a number")


def test_report_out_that_is_a_file_is_named(scores: Path, tmp_path: Path, capsys) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    subject = pd.read_csv(scores, dtype={"subject_id": str}).loc[0, "subject_id"]
    argv = ["charts", "report", "--chart", "reference", "--scores", str(scores), "--subject", subject]
    assert main([*argv, "--out", str(afile)]) == 2
    _one_error(capsys, f"--out: {afile} exists and is a file, not a folder")


# ------------------------------------------------------------- 4. NPY time series


@pytest.mark.parametrize(
    ("kind", "dtype"),
    [("npy", np.complex128), ("npz", np.complex64), ("npy", np.bool_)],
)
def test_non_real_npy_timeseries_are_refused(tmp_path: Path, kind: str, dtype) -> None:
    """Complex (and bool) NPY/NPZ time series were read with the imaginary part dropped; refused
    as matrices are (io.binary_arrays)."""
    from delssome_norms.io import read_timeseries

    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 6))
    arr = (x + 1j * x).astype(dtype) if dtype is not np.bool_ else x > 0
    path = tmp_path / f"run.{kind}"
    if kind == "npy":
        np.save(path, arr)
    else:
        np.savez(path, ts=arr)
    with pytest.raises(
        InvalidInputError, match=rf"holds a {np.dtype(dtype)} array, expected real numbers"
    ):
        read_timeseries(path)
    np.save(tmp_path / "real.npy", x.astype(np.float32))  # real numbers still read
    np.testing.assert_allclose(read_timeseries(tmp_path / "real.npy"), x.astype(np.float32))


# ------------------------------------------------------------- 6. simulate --params


def test_simulate_params_without_header_says_so(tmp_path: Path, capsys) -> None:
    """An FC given as --params was reported as 'missing required column(s) ...; found 1,
    0.0554, ...' (68 numbers as column names); now: no header row, which columns."""
    rng = np.random.default_rng(1)
    fc = np.corrcoef(rng.standard_normal((6, 50)))
    path = tmp_path / "sub_FC.csv"
    np.savetxt(path, fc, delimiter=",", fmt="%.17g")
    argv = ["simulate", "--params", str(path), "--tr", "0.72", "--scan-length", "200"]
    assert main([*argv, "--out-dir", str(tmp_path / "sim")]) == 2
    err = _one_error(
        capsys, f"{path}: has no header row", "6 number(s) (1, ", "region_index, wEE, wEI, sigma, G"
    )
    assert "found 1" not in err
    assert not (tmp_path / "sim").exists()
    named = tmp_path / "named.csv"
    named.write_text("a,b\n1,2\n")  # a header of other columns: as before
    assert main([*argv, "--params", str(named), "--out-dir", str(tmp_path / "sim")]) == 2
    _one_error(capsys, "missing required column(s) region_index", "found a, b")
