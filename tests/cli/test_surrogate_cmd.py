"""``delssome-norms surrogate generate|train|evaluate`` end to end on tiny inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from delssome_norms.cli.main import main
from delssome_norms.surrogate.dataset import SurrogateDataset, load_dataset, save_dataset


def _tiny_dataset(n_subjects: int = 6, n: int = 5, bins: int = 10000, seed: int = 0) -> SurrogateDataset:
    rng = np.random.default_rng(seed)
    per = 40
    c = n_subjects * per
    regional = np.stack(
        [rng.uniform(1, 10, (c, n)), rng.uniform(1, 4, (c, n)), rng.uniform(0.001, 0.009, (c, n))], -1
    )
    g = rng.uniform(0, 3, c)
    losses = np.stack([regional[..., 0].mean(1) / 10, g / 3, regional[..., 2].mean(1) / 0.01], axis=1)
    dens = rng.uniform(0, 1, (n_subjects, bins))
    sc = rng.uniform(0, 0.02, (n, n))
    np.fill_diagonal(sc, 0)
    return SurrogateDataset(
        subject_id=[f"s{i}" for i in range(n_subjects)],
        fc_triu=rng.uniform(-0.2, 0.6, (n_subjects, n * (n - 1) // 2)),
        fcd_density=dens / dens.sum(1, keepdims=True),
        tr=np.full(n_subjects, 0.72),
        scan_length=np.full(n_subjects, 115.2),
        sc=np.broadcast_to(sc, (n_subjects, n, n)),
        regional=regional,
        g=g,
        subject=np.repeat(np.arange(n_subjects), per),
        generation=np.tile(np.repeat(np.arange(4), 10), n_subjects),
        losses=losses,
    )


def test_train_then_evaluate(tmp_path, capsys, one_thread) -> None:
    save_dataset(_tiny_dataset(), tmp_path / "data")
    code = main(
        [
            "surrogate",
            "train",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "w"),
            "--epochs",
            "2",
            "--d-model",
            "16",
            "--heads",
            "2",
            "--layers",
            "1",
            "--threads",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    meta = json.loads((tmp_path / "w" / "metadata.json").read_text())
    assert meta["format_version"] == 1 and meta["n_regions"] == 5 and meta["bins"] == 10000
    assert meta["timing"]["scan_length_range"] == [115.2, 115.2]
    assert meta["training"]["epochs_run"] == 2 and meta["training"]["seconds"] > 0
    assert set(meta["metrics"]) == {"test", "val"}
    assert (tmp_path / "w" / "training_log.json").is_file()
    assert "Spearman(total)" in capsys.readouterr().out
    code = main(
        [
            "surrogate",
            "evaluate",
            "--weights",
            str(tmp_path / "w"),
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    assert code == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["n_subjects"] == 6 and "top10_overlap" in metrics


def test_evaluate_refuses_other_n(tmp_path, capsys, one_thread) -> None:
    save_dataset(_tiny_dataset(), tmp_path / "data")
    save_dataset(_tiny_dataset(n=4), tmp_path / "other")
    main(
        [
            "surrogate",
            "train",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "w"),
            "--epochs",
            "1",
            "--d-model",
            "16",
            "--heads",
            "2",
            "--layers",
            "1",
            "--quiet",
        ]
    )
    capsys.readouterr()
    code = main(
        ["surrogate", "evaluate", "--weights", str(tmp_path / "w"), "--data", str(tmp_path / "other")]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "N=5 regions" in err and "N=4" in err


def test_evaluate_warns_about_another_fcd_window(tmp_path, capsys, one_thread) -> None:
    """Weights record the FCD window of their training data; evaluating them on data of another
    window warns (the KS predictions describe the training window's FCD)."""
    from dataclasses import replace

    from delssome_norms.errors import InputWarning

    data = _tiny_dataset()
    save_dataset(replace(data, info={"settings": {"fcd_window": 20}}), tmp_path / "data")
    save_dataset(replace(data, info={"settings": {"fcd_window": None}}), tmp_path / "default")
    argv = ["surrogate", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "w"),
            "--epochs", "1", "--d-model", "16", "--heads", "2", "--layers", "1", "--quiet"]  # fmt: skip
    assert main(argv) == 0
    meta = json.loads((tmp_path / "w" / "metadata.json").read_text())
    assert meta["timing"]["fcd_window"] == 20
    evaluate = ["surrogate", "evaluate", "--weights", str(tmp_path / "w"), "--data"]
    with pytest.warns(InputWarning, match=r"FCD window 83 frames at TR 0\.72 s differs from the 20"):
        assert main([*evaluate, str(tmp_path / "default")]) == 0
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*evaluate, str(tmp_path / "data")]) == 0
    assert not [w for w in caught if "FCD window" in str(w.message)]


def test_missing_weights_is_a_clear_error(tmp_path, capsys) -> None:
    save_dataset(_tiny_dataset(), tmp_path / "data")
    code = main(
        ["surrogate", "evaluate", "--weights", str(tmp_path / "none"), "--data", str(tmp_path / "data")]
    )
    assert code == 2
    assert "surrogate train --data" in capsys.readouterr().err


def test_generate_tiny(tmp_path, capsys, one_thread) -> None:
    code = main(
        [
            "surrogate",
            "generate",
            "--out",
            str(tmp_path / "gen"),
            "--subjects",
            "1",
            "--group-size",
            "1",
            "--generations",
            "1",
            "--popsize",
            "4",
            "--scan-lengths",
            "30",
            "--burn-in",
            "2.16",
            "--warmup-steps",
            "50",
            "--fcd-window",
            "10",
            "--n-dup",
            "1",
            "--threads",
            "1",
            "--quiet",
        ]
    )
    assert code == 0
    data = load_dataset(tmp_path / "gen")
    assert data.n_subjects == 1 and data.n_candidates == 4 and data.n_regions == 68
    assert "1 group(s) generated" in capsys.readouterr().out


def test_generate_on_another_atlas_sc(tmp_path, capsys, one_thread) -> None:
    """`surrogate generate --sc` simulates on the given SC (weights for another atlas); a data set
    is not continued on another SC."""
    from delssome_norms.io import write_matrix

    rng = np.random.default_rng(5)
    sc = rng.uniform(0.2, 1.0, (6, 6))
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    write_matrix(sc, tmp_path / "sc6.csv")
    argv = ["surrogate", "generate", "--out", str(tmp_path / "d"), "--subjects", "2",
            "--group-size", "2", "--generations", "2", "--popsize", "8", "--scan-lengths", "30",
            "--burn-in", "2.16", "--fcd-window", "10", "--warmup-steps", "100", "--n-dup", "1",
            "--quiet"]  # fmt: skip
    assert main([*argv, "--sc", str(tmp_path / "sc6.csv")]) == 0
    data = load_dataset(tmp_path / "d")
    assert data.n_regions == 6 and data.n_subjects == 2
    assert data.info["template"] == "user SC"
    write_matrix(sc * 2, tmp_path / "other.csv")
    capsys.readouterr()
    assert main([*argv[:-1], "--subjects", "4", "--sc", str(tmp_path / "other.csv")]) == 2
    assert "generated on another SC" in capsys.readouterr().err
    assert load_dataset(tmp_path / "d").n_subjects == 2


@pytest.mark.parametrize(
    ("argv", "flag", "problem"),
    [
        (["--heads", "3", "--d-model", "16"], "--heads", "n_heads (3) must divide d_model (16)"),
        (["--val-fraction", "0.6", "--test-fraction", "0.5"], "--val-fraction", "must be < 1"),
    ],
)
def test_network_and_split_errors_name_the_option(tmp_path, capsys, argv, flag, problem) -> None:
    """A check of two fields named no option ('surrogate: n_heads (3) must divide ...')."""
    save_dataset(_tiny_dataset(), tmp_path / "data")
    code = main(
        ["surrogate", "train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "w"), *argv]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert f"delssome-norms: error: {flag}: " in err and problem in err
    assert not (tmp_path / "w").exists()
