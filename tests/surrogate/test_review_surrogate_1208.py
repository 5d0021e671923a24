"""Review of 2026-12-08 (surrogate weights and training): the shipped metadata carries its own
sha256 and an edited copy of it is refused; resuming a training with fewer --epochs than its
checkpoint ran is refused (the checkpoint kept); a resumed training records the time of all its
runs; a fit with $DELSSOME_NORMS_PRETRAINED records that folder; clearer messages for a pickle
saved as model.safetensors, a variable naming a missing folder and ``format_version: true``."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch

from delssome_norms.cli.main import main
from delssome_norms.errors import InvalidInputError, NotYetAvailableError
from delssome_norms.fit.evaluate import with_weights_identity
from delssome_norms.fit.outputs import fingerprint_differences
from delssome_norms.fit.settings import FitSettings
from delssome_norms.surrogate import pretrained
from delssome_norms.surrogate import train as train_module
from delssome_norms.surrogate.dataset import save_dataset
from delssome_norms.surrogate.network import CostPredictor

SHIPPED_WEIGHTS_SHA = "6025de550aa6faaf4e8ced07e203a7fd57eecc148134285aa251c722336512d3"
"""What the interval calibration and existing results record for the shipped weights."""


def _own_sha(meta: dict) -> str:
    """The metadata's content hash, written out here (canonical JSON without its own entry)."""
    body = {k: v for k, v in meta.items() if k != "metadata_sha256"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture
def shipped_copy(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    source = pretrained.default_pretrained_path()
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    return copy


def _edit(folder: Path, edit) -> dict:
    meta = json.loads((folder / "metadata.json").read_text())
    edit(meta)
    (folder / "metadata.json").write_text(json.dumps(meta, indent=2))
    return meta


def _widen(meta: dict) -> None:
    """The reviewer's edit: another gsc_scale, a timing cover widened to silence the warning."""
    meta["network"]["gsc_scale"] = 10.0
    meta["timing"]["scan_length_range"] = [100.0, 2000.0]


# ------------------------------------------------------------------------------ 1. shipped metadata


def test_shipped_metadata_carries_its_own_sha_and_the_weights_sha_is_unchanged(shipped_copy):
    meta = json.loads((shipped_copy / "metadata.json").read_text())
    assert meta["metadata_sha256"] == _own_sha(meta)
    weights = hashlib.sha256((shipped_copy / "model.safetensors").read_bytes()).hexdigest()
    assert meta["weights_sha256"] == weights == SHIPPED_WEIGHTS_SHA  # recorded elsewhere: kept
    calibration = Path(pretrained.__file__).parents[1] / "fit" / "data" / "interval_calibration.json"
    assert SHIPPED_WEIGHTS_SHA in calibration.read_text()
    loaded = pretrained.load_pretrained(shipped_copy)
    assert loaded.metadata["network"]["gsc_scale"] == 50.0


def test_an_edited_copy_of_the_shipped_metadata_is_refused(shipped_copy):
    """It used to load silently, and a fit recorded the shipped weights_sha256 (calibrated)."""
    _edit(shipped_copy, _widen)
    with pytest.raises(InvalidInputError, match="was edited after the weights were saved"):
        pretrained.load_pretrained(shipped_copy)


def test_an_edited_copy_without_its_sha_is_refused_as_a_copy_of_the_shipped_weights(shipped_copy):
    def edit(meta):
        _widen(meta)
        del meta["metadata_sha256"]  # deleting the entry does not pass the edit off

    _edit(shipped_copy, edit)
    with pytest.raises(InvalidInputError) as err:
        pretrained.load_pretrained(shipped_copy)
    assert err.value.source == str(shipped_copy / "metadata.json")
    assert "edited copy of the shipped weights' metadata" in err.value.problem
    # the entry removed and nothing else changed: the content is the shipped one, and loads
    shutil.copy(pretrained.default_pretrained_path() / "metadata.json", shipped_copy)
    _edit(shipped_copy, _drop_own_sha)
    cover = pretrained.load_pretrained(shipped_copy).metadata["timing"]["scan_length_range"]
    assert cover == [432.0, 432.0]


def _drop_own_sha(meta: dict) -> None:
    del meta["metadata_sha256"]


def test_users_weights_carry_the_sha_and_older_folders_without_it_still_load(tmp_path, config_factory):
    torch.manual_seed(0)
    folder = pretrained.save_pretrained(CostPredictor(config_factory()), tmp_path / "w", {})
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["metadata_sha256"] == _own_sha(meta)  # what `surrogate train` saves

    def older(meta):
        _drop_own_sha(meta)
        meta["note"] = "older folder"

    _edit(folder, older)
    assert pretrained.load_pretrained(folder).metadata["note"] == "older folder"


# ------------------------------------------------------------------------------ 6. messages


def test_format_version_true_is_refused(tmp_path, config_factory):
    """``true == 1`` in Python: it used to load as format version 1."""
    folder = pretrained.save_pretrained(CostPredictor(config_factory()), tmp_path / "w", {})

    def edit(meta):
        _drop_own_sha(meta)
        meta["format_version"] = True

    _edit(folder, edit)
    with pytest.raises(InvalidInputError) as err:
        pretrained.load_pretrained(folder)
    assert "format_version must be a whole number (1 for this version" in err.value.problem
    assert "got true" in err.value.problem


class _Trap:
    """Unpickling it would create ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.mark.parametrize("zipped", [True, False])
def test_a_pytorch_pickle_saved_as_safetensors_is_named_and_never_loaded(
    tmp_path, config_factory, zipped
):
    folder = pretrained.save_pretrained(CostPredictor(config_factory()), tmp_path / "w", {})
    trap = tmp_path / "unpickled"
    weights = folder / "model.safetensors"
    torch.save({"x": _Trap(trap)}, weights, _use_new_zipfile_serialization=zipped)
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    _edit(folder, lambda m: _drop_own_sha(m) or m.update(weights_sha256=sha))
    with pytest.raises(InvalidInputError) as err:
        pretrained.load_pretrained(folder)
    assert err.value.source == str(weights)
    problem = err.value.problem
    assert problem.startswith("is not a safetensors file: it looks like a PyTorch checkpoint")
    assert ("zip archive" if zipped else "pickle") in problem and "never loaded" in problem
    assert "header too large" not in problem
    assert not trap.exists()


def test_a_damaged_safetensors_file_keeps_the_reader_message(tmp_path, config_factory):
    folder = pretrained.save_pretrained(CostPredictor(config_factory()), tmp_path / "w", {})
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:200])
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    _edit(folder, lambda m: _drop_own_sha(m) or m.update(weights_sha256=sha))
    with pytest.raises(InvalidInputError, match=r"model\.safetensors: cannot read weights \("):
        pretrained.load_pretrained(folder)


def test_the_variable_naming_a_missing_folder_says_so(tmp_path, monkeypatch):
    """The error used to advise 'or set DELSSOME_NORMS_PRETRAINED', which was set already."""
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv(pretrained.ENV_VAR, str(nowhere))
    with pytest.raises(NotYetAvailableError) as err:
        pretrained.load_pretrained()
    text = str(err.value)
    assert text.startswith(f"no pretrained surrogate weights found at {nowhere}: ")
    assert f"${pretrained.ENV_VAR} is set and points to a folder that does not exist" in text
    assert "unset it to use the shipped weights" in text
    assert f"or set {pretrained.ENV_VAR}" not in text
    nowhere.mkdir()
    with pytest.raises(NotYetAvailableError, match=r"points to a folder without metadata\.json and"):
        pretrained.load_pretrained()


# ------------------------------------------------------------------------------ 2./3. resuming


def _interrupt_at_validation(monkeypatch, call: int) -> None:
    original = train_module.predict_dataset
    calls = {"n": 0}

    def predict(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == call:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(train_module, "predict_dataset", predict)


def test_resume_with_fewer_epochs_is_refused_and_a_resumed_run_records_all_its_time(
    tmp_path, capsys, monkeypatch, data_factory, one_thread
):
    save_dataset(data_factory(n_subjects=5, per_gen=8, generations=2), tmp_path / "d")
    base = ["surrogate", "train", "--data", str(tmp_path / "d"), "--quiet"]
    base += ["--d-model", "16", "--fcd-bins", "10", "--patience", "5", "--out", str(tmp_path / "w")]
    checkpoint = tmp_path / "w.checkpoint"
    with monkeypatch.context() as m:
        _interrupt_at_validation(m, 3)
        assert main([*base, "--epochs", "3"]) == 130
    state = json.loads((checkpoint / "state.json").read_text())
    assert state["epoch"] == 2
    assert 0 < state["seconds"] >= sum(h["seconds"] for h in state["history"])
    state["seconds"] = 1000.0  # as if the first run had taken 1000 s
    (checkpoint / "state.json").write_text(json.dumps(state))
    capsys.readouterr()
    # fewer epochs than the checkpoint ran: refused, the checkpoint kept
    assert main([*base, "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"the training checkpoint in {checkpoint} is already past --epochs 1" in err
    assert "use --epochs >= 2 to continue it" in err and f"or remove {checkpoint}" in err
    assert (checkpoint / "state.json").is_file() and not (tmp_path / "w").exists()
    # as many epochs as it ran, or more: continued, with the time of both runs
    assert main([*base, "--epochs", "3"]) == 0
    out = capsys.readouterr().out
    assert "continuing after epoch 2" in out and "min of it in this run" in out
    meta = json.loads((tmp_path / "w" / "metadata.json").read_text())
    training = meta["training"]
    assert training["settings"]["epochs"] == 3 and training["epochs_run"] == 3
    assert 1000.0 < training["seconds"] < 1000.0 + 300.0
    log = json.loads((tmp_path / "w" / "training_log.json").read_text())["history"]
    assert [h["epoch"] for h in log] == [1, 2, 3]


def test_earlier_time_of_a_checkpoint_without_its_total_is_the_sum_of_its_epochs():
    from delssome_norms.surrogate.train_resume import earlier_seconds

    history = [{"seconds": 12.5}, {"seconds": 7.5}, {"seconds": float("nan")}]
    assert earlier_seconds({}, history) == 20.0  # a checkpoint written before the total was kept
    assert earlier_seconds({"seconds": 99.0}, history) == 99.0
    assert earlier_seconds({"seconds": True}, history) == 20.0


def test_equal_epochs_resume_runs_nothing_more(tmp_path, data_factory, config_factory, one_thread):
    from delssome_norms.surrogate.train import TrainSettings, train_surrogate

    data = data_factory(n_subjects=5, per_gen=8, generations=1)
    settings = TrainSettings(epochs=2, batch_size=16, patience=5)
    first = train_surrogate(data, config_factory(), settings, progress=False, checkpoint=tmp_path / "c")
    again = train_surrogate(data, config_factory(), settings, progress=False, checkpoint=tmp_path / "c")
    assert [h["epoch"] for h in again.history] == [1, 2]
    # the checkpoint's total: written after the last epoch, before the final metrics
    assert 0 < again.seconds_before <= first.seconds
    assert again.seconds >= again.seconds_before
    with pytest.raises(InvalidInputError, match="already past --epochs 1"):
        train_surrogate(
            data,
            config_factory(),
            TrainSettings(epochs=1, batch_size=16, patience=5),
            progress=False,
            checkpoint=tmp_path / "c",
        )


# ------------------------------------------------------------------------------ 4. run.json


class _Backend:
    def weights_sha256(self, weights=None):
        return "ab" * 32


def test_a_fit_with_the_variable_records_its_folder(tmp_path, monkeypatch):
    settings = FitSettings(mode="surrogate")
    monkeypatch.delenv(pretrained.ENV_VAR, raising=False)
    shipped = with_weights_identity(settings, _Backend())
    assert shipped.surrogate_weights is None  # the shipped weights: recorded as before
    folder = tmp_path / "lab_weights"
    folder.mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(pretrained.ENV_VAR, "lab_weights")  # relative: recorded resolved
    named = with_weights_identity(settings, _Backend())
    assert named.surrogate_weights == str(folder.resolve())
    assert named.surrogate_weights_sha256 == shipped.surrogate_weights_sha256
    assert fingerprint_differences({"settings": shipped.to_dict()}, {"settings": named.to_dict()}) == []
    explicit = with_weights_identity(FitSettings(mode="surrogate", surrogate_weights="x"), _Backend())
    assert explicit.surrogate_weights == str((tmp_path / "x").resolve())  # --weights wins
