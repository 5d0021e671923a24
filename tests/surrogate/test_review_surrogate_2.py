"""Review of the surrogate as a researcher retraining it for their own timing or atlas: weights
that do not say what they cover, interrupted training, generation into a file, labels of other
atlases, the training summary line."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.surrogate import pretrained
from delssome_norms.surrogate import train as train_module
from delssome_norms.surrogate.dataset import SurrogateDataset, load_dataset, save_dataset
from delssome_norms.surrogate.network import CostPredictor
from delssome_norms.surrogate.train import TrainSettings, train_surrogate

# ------------------------------------------------------------------------------ timing cover


def test_weights_without_a_timing_cover_are_not_accepted_silently(tmp_path, config_factory) -> None:
    """Weights saved without ``timing`` (``save_pretrained(model, folder, {})``, or a
    metadata.json whose ``timing`` was removed) used to pass any TR and scan length without a
    word: nothing says which timing they were trained for."""
    torch.manual_seed(0)
    model = CostPredictor(config_factory()).eval()
    bare = pretrained.load_pretrained(pretrained.save_pretrained(model, tmp_path / "bare", {}))
    with pytest.warns(InputWarning, match=r"records no timing\.tr_range, so TR 2 s cannot be checked"):
        bare.check_timing(2.0, 120.0)
    with pytest.raises(InvalidInputError, match=r"timing\.scan_length_range") as err:
        bare.check_timing(2.0, 120.0, timing="error")
    assert err.value.source == str(tmp_path / "bare")
    bare.check_timing(2.0, 120.0, timing="ignore")  # still the user's choice
    # weights that record their range: silent inside it, as before
    cover = {"timing": {"tr_range": [2.0, 2.0], "scan_length_range": [60.0, 120.0]}}
    covered = pretrained.load_pretrained(pretrained.save_pretrained(model, tmp_path / "c", cover))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        covered.check_timing(2.0, 120.0)


# ------------------------------------------------------------------------------ generate --out


def test_generate_into_a_file_is_refused_before_any_simulation(tmp_path, monkeypatch) -> None:
    """``surrogate generate --out FILE`` used to simulate the group's synthetic subjects first and
    then fail with '<FILE>/work/summaries/syn-...: Not a directory'."""
    from delssome_norms.surrogate import generate

    def never(*args, **kwargs):
        raise AssertionError("simulated although --out cannot hold a data set")

    monkeypatch.setattr(generate, "synthetic_subjects", never)
    target = tmp_path / "afile"
    target.write_text("x")
    code = main(["surrogate", "generate", "--out", str(target), "--subjects", "2", "--quiet"])
    assert code == 2
    with pytest.raises(InvalidInputError, match="exists and is not a folder") as err:
        generate.generate_dataset(target, generate.quick_settings(), progress=False)
    assert err.value.source == str(target)


def test_generate_records_the_sc_file_it_simulated_on(tmp_path, monkeypatch) -> None:
    """Data (and so weights) generated with ``--sc`` recorded only 'user SC', so the weights'
    SC-mismatch error could not say which SC they expect."""
    from delssome_norms.surrogate import generate

    seen = {}

    def fake(out, settings, sc=None, progress=True, log=None, sc_source=None):
        seen.update(sc_source=sc_source, n=None if sc is None else sc.shape[0])
        return generate.GenerateReport()

    monkeypatch.setattr(generate, "generate_dataset", fake)
    rng = np.random.default_rng(0)
    sc = rng.uniform(0, 1, (8, 8))
    sc = sc + sc.T
    np.fill_diagonal(sc, 0)
    np.savetxt(tmp_path / "my_atlas_sc.csv", sc, delimiter=",")
    argv = ["surrogate", "generate", "--out", str(tmp_path / "d"), "--quiet"]
    assert main([*argv, "--sc", str(tmp_path / "my_atlas_sc.csv")]) == 0
    assert seen == {"sc_source": "--sc my_atlas_sc.csv", "n": 8}


# ------------------------------------------------------------------------------ atlas labels


def _dataset_on(sc: np.ndarray, template: str) -> SurrogateDataset:
    n, k, c = sc.shape[0], 3, 6
    rng = np.random.default_rng(1)
    return SurrogateDataset(
        subject_id=[f"s{i}" for i in range(k)],
        fc_triu=rng.uniform(0, 0.5, (k, n * (n - 1) // 2)),
        fcd_density=np.full((k, 100), 0.01),
        tr=np.full(k, 0.72),
        scan_length=np.full(k, 172.8),
        sc=np.broadcast_to(sc, (k, n, n)),
        regional=rng.uniform(1, 3, (c, n, 3)),
        g=rng.uniform(0, 3, c),
        subject=np.repeat(np.arange(k), 2),
        generation=np.zeros(c),
        losses=rng.uniform(0, 1, (c, 3)),
        info={"template": template, "settings": {"fcd_window": None}},
    )


def test_weights_of_another_68_region_atlas_are_not_labelled_dk68() -> None:
    """Weights trained on any 68-region SC were labelled atlas 'DK68' with the DK68 region names,
    although the SC (so the regions) were the user's."""
    from delssome_norms.cli.surrogate_cmd import _training_metadata
    from delssome_norms.datasets import DK68_REGIONS, load_default_template
    from delssome_norms.model import scale_sc

    result = SimpleNamespace(
        split={"train": np.array([0]), "val": np.array([1]), "test": np.array([2])},
        history=[],
        best_epoch=1,
        metrics={},
    )
    settings, config = TrainSettings(), None
    rng = np.random.default_rng(0)
    other = rng.uniform(0, 1, (68, 68))
    other = other + other.T
    np.fill_diagonal(other, 0)
    data = _dataset_on(scale_sc(other), "user SC")
    data.info["sc_file"] = "--sc glasser_like.csv"
    meta, _ = _training_metadata(data, result, settings, config, 1.0)
    assert meta["atlas"] == "N68" and meta["regions"] is None
    assert meta["template"]["source"] == "user SC (--sc glasser_like.csv)"
    template = load_default_template()
    meta, _ = _training_metadata(
        _dataset_on(np.asarray(scale_sc(template.sc)), template.source), result, settings, config, 1.0
    )
    assert meta["atlas"] == "DK68" and meta["regions"] == list(DK68_REGIONS)


# ------------------------------------------------------------------------------ train summary


def test_train_summary_says_why_top10_overlap_is_missing(tmp_path, capsys, data_factory, one_thread):
    """With generations of at most 10 candidates the top-10 overlap is undefined; the summary
    line printed 'top-10 overlap nan'."""
    save_dataset(data_factory(n_subjects=4, per_gen=8, generations=2), tmp_path / "d")
    argv = ["surrogate", "train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "w")]
    code = main([*argv, "--epochs", "1", "--d-model", "16", "--fcd-bins", "10", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "top-10 overlap n/a (needs generations of more than 10 candidates)" in out
    assert "nan" not in out.splitlines()[-1]


# ------------------------------------------------------------------------------ resumable training


def _interrupt_at_validation(monkeypatch, call: int) -> None:
    """Ctrl-C during the validation pass number ``call`` (epoch ``call``)."""
    original = train_module.predict_dataset
    calls = {"n": 0}

    def predict(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "predict_dataset", predict)


def test_interrupted_training_resumes_to_the_weights_of_an_uninterrupted_run(
    tmp_path, monkeypatch, data_factory, config_factory, one_thread
) -> None:
    """An interrupted training used to lose every finished epoch. With a checkpoint it continues
    where it stopped, and (dropout, batch order and Adam's state restored) ends with exactly the
    weights and history of a training never interrupted."""
    data = data_factory(n_subjects=6, per_gen=12, generations=2)
    config = config_factory(dropout=0.2)
    settings = TrainSettings(epochs=4, batch_size=16, patience=10, seed=3)
    full = train_surrogate(data, config, settings, progress=False)
    with monkeypatch.context() as m:
        _interrupt_at_validation(m, 3)
        with pytest.raises(KeyboardInterrupt):
            train_surrogate(data, config, settings, progress=False, checkpoint=tmp_path / "ck")
    state = json.loads((tmp_path / "ck" / "state.json").read_text())
    assert state["epoch"] == 2 and len(state["history"]) == 2
    lines = []
    resumed = train_surrogate(
        data, config, settings, progress=False, log=lines.append, checkpoint=tmp_path / "ck"
    )
    assert lines[0].startswith("continuing after epoch 2")
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    assert [h["val_mse"] for h in resumed.history] == [h["val_mse"] for h in full.history]
    assert resumed.best_epoch == full.best_epoch
    for key, value in full.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoint_of_other_settings_is_named_and_replaced(
    tmp_path, data_factory, config_factory, one_thread
) -> None:
    data = data_factory(n_subjects=5, per_gen=8, generations=1)
    settings = TrainSettings(epochs=1, batch_size=16)
    train_surrogate(data, config_factory(), settings, progress=False, checkpoint=tmp_path / "ck")
    other = TrainSettings(epochs=1, batch_size=16, lr=5e-4)
    with pytest.warns(InputWarning, match=r"other data or settings \(settings\.lr\); training starts"):
        result = train_surrogate(
            data, config_factory(), other, progress=False, checkpoint=tmp_path / "ck"
        )
    assert [h["epoch"] for h in result.history] == [1]
    (tmp_path / "ck" / "state.safetensors").write_bytes(b"\x00" * 10)  # damaged
    with pytest.warns(InputWarning, match="training checkpoint cannot be read"):
        train_surrogate(data, config_factory(), other, progress=False, checkpoint=tmp_path / "ck")


def test_cli_keeps_finished_epochs_on_ctrl_c_and_continues_on_rerun(
    tmp_path, capsys, monkeypatch, data_factory, one_thread
) -> None:
    save_dataset(data_factory(n_subjects=5, per_gen=8, generations=2), tmp_path / "d")
    base = ["surrogate", "train", "--data", str(tmp_path / "d"), "--epochs", "3", "--quiet"]
    base += ["--d-model", "16", "--fcd-bins", "10", "--patience", "5"]
    assert main([*base, "--out", str(tmp_path / "ref")]) == 0
    out = tmp_path / "w"
    with monkeypatch.context() as m:
        _interrupt_at_validation(m, 2)
        capsys.readouterr()
        code = main([*base, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 130 and err.count("\n") == 1
    assert f"the 1 finished epoch(s) are kept in {tmp_path / 'w.checkpoint'}" in err
    assert not out.exists()
    assert main([*base, "--out", str(out)]) == 0
    assert "continuing after epoch 1" in capsys.readouterr().out
    assert not (tmp_path / "w.checkpoint").exists()  # removed once the weights are saved
    a = pretrained.load_pretrained(tmp_path / "ref").model.state_dict()
    b = pretrained.load_pretrained(out).model.state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0)
    history = json.loads((out / "training_log.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert load_dataset(tmp_path / "d").n_subjects == 5


def test_a_training_that_cannot_give_weights_leaves_no_checkpoint(
    tmp_path, capsys, monkeypatch, data_factory
) -> None:
    """A diverged training is refused; its checkpoint would only be a stray OUT.checkpoint
    folder (a rerun with a lower --lr starts over anyway)."""
    save_dataset(data_factory(n_subjects=3, per_gen=4, generations=1), tmp_path / "d")

    def diverged(*args, checkpoint=None, **kwargs):
        (checkpoint / "state.json").parent.mkdir(parents=True)
        (checkpoint / "state.json").write_text('{"epoch": 1}')
        raise InvalidInputError("training diverged", "lr")

    monkeypatch.setattr(train_module, "train_surrogate", diverged)
    code = main(["surrogate", "train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "w")])
    assert code == 2 and "lr: training diverged" in capsys.readouterr().err
    assert not (tmp_path / "w.checkpoint").exists() and not (tmp_path / "w").exists()
