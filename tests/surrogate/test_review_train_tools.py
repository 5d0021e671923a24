"""Review of the surrogate's train / evaluate / load tools as a user training their own weights:
split leakage, corrupted data sets and weights, interrupted training, evaluate's output."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy import stats

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.surrogate import pretrained
from delssome_norms.surrogate.dataset import concatenate, load_dataset, save_dataset
from delssome_norms.surrogate.network import CostPredictor
from delssome_norms.surrogate.train import (
    TrainSettings,
    evaluate_model,
    split_subjects,
    train_surrogate,
)


def _weights(tmp_path, data, config, name="w", **meta):
    torch.manual_seed(0)
    model = CostPredictor(config).eval()
    return pretrained.save_pretrained(model, tmp_path / name, meta, template_sc=data.sc[0])


# ------------------------------------------------------------------------------ split leakage


def test_a_subject_listed_twice_never_lands_in_two_split_sets(data_factory, config_factory, one_thread):
    """A data set whose shard is listed twice (or two data sets generated with the same seed,
    merged) holds each synthetic subject twice; the split used to treat the copies as two
    subjects and put one in training and the other in validation or test."""
    data = data_factory(n_subjects=6, per_gen=12, generations=2)
    doubled = concatenate([data, data])
    settings = TrainSettings(epochs=1, batch_size=64, seed=0)
    with pytest.warns(InputWarning, match=r"6 subject id\(s\) occur more than once"):
        result = train_surrogate(doubled, config_factory(), settings, progress=False)
    ids = {k: set(doubled.subject_id[v].tolist()) for k, v in result.split.items()}
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"]
    assert not ids["val"] & ids["test"]
    assert sum(len(v) for v in result.split.values()) == 12  # every row in exactly one set
    # distinct ids: the same split as before (weights trained earlier stay reproducible)
    from delssome_norms.surrogate.train import split_by_subject_id

    distinct = split_by_subject_id(data.subject_id, 0.15, 0.15, seed=4)
    for key, rows in split_subjects(6, 0.15, 0.15, seed=4).items():
        np.testing.assert_array_equal(distinct[key], rows)


def test_fractions_that_leave_no_training_subject_are_named() -> None:
    """0.45 + 0.45 of 8 subjects used to fall back to 1 + 1 held-out subjects silently."""
    with pytest.warns(InputWarning, match=r"val_fraction 0\.45 and test_fraction 0\.45 of 8"):
        split = split_subjects(8, 0.45, 0.45, seed=0)
    assert [len(split[k]) for k in ("train", "val", "test")] == [6, 1, 1]


def test_reported_validation_metric_matches_an_independent_recompute(
    data_factory, config_factory, one_thread
):
    """metrics["val"] and the history's best-epoch value equal scipy's Spearman of predictions
    made through the network's plain forward (explicit G*SC), on the validation subjects."""
    data = data_factory(n_subjects=8, per_gen=15, generations=2)
    result = train_surrogate(
        data, config_factory(), TrainSettings(epochs=2, batch_size=64, seed=2), progress=False
    )
    val = data.subset(result.split["val"])
    model = result.model
    f = lambda x: torch.as_tensor(np.asarray(x, dtype=np.float32))  # noqa: E731
    with torch.no_grad():
        emb = model.encode_subject(
            f(val.fc_triu), model_density(val, model), f(val.tr), f(val.scan_length)
        )
        idx = torch.as_tensor(val.subject.astype(np.int64))
        gsc = f(val.g)[:, None, None] * f(val.sc)[idx]
        pred = model(f(val.regional), gsc, emb[idx]).numpy().astype(np.float64)
    ok = val.valid()
    rho = stats.spearmanr(pred[ok].sum(1), val.losses[ok].astype(np.float64).sum(1))[0]
    assert result.metrics["val"]["pooled"]["total"]["spearman"] == pytest.approx(rho, abs=1e-6)
    best = result.history[result.best_epoch - 1]["val_spearman_total"]
    assert best == pytest.approx(rho, abs=1e-6)


def model_density(data, model):
    from delssome_norms.surrogate.network import pool_density

    dens = torch.as_tensor(data.fcd_density, dtype=torch.float64)
    return pool_density(dens, model.config.fcd_bins).to(torch.float32)


# ------------------------------------------------------------------------------ evaluate


def test_evaluate_model_runs_a_float64_network(data_factory, config_factory) -> None:
    """A float64 network (``.double()``) used to fail with a matmul dtype error."""
    data = data_factory(n_subjects=3, per_gen=12, generations=2)
    torch.manual_seed(0)
    net = CostPredictor(config_factory()).eval()
    m32 = evaluate_model(net, data)
    m64 = evaluate_model(net.double(), data)
    assert m64["pooled"]["total"]["spearman"] == pytest.approx(
        m32["pooled"]["total"]["spearman"], abs=1e-4
    )


def test_evaluate_refuses_data_without_valid_candidates(
    tmp_path, capsys, data_factory, config_factory
) -> None:
    """All-invalid or candidate-less data used to end in a ValueError traceback (empty data)
    or in NaN metrics with numpy RuntimeWarnings (all invalid)."""
    data = data_factory(n_subjects=3, per_gen=12, generations=2)
    w = _weights(tmp_path, data, config_factory())
    save_dataset(replace(data, losses=np.full_like(data.losses, np.nan)), tmp_path / "nan")
    empty = replace(
        data,
        regional=data.regional[:0],
        g=data.g[:0],
        subject=data.subject[:0],
        generation=data.generation[:0],
        losses=data.losses[:0],
    )
    save_dataset(empty, tmp_path / "empty")
    for name, count in (("nan", data.n_candidates), ("empty", 0)):
        code = main(["surrogate", "evaluate", "--weights", str(w), "--data", str(tmp_path / name)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1
        assert f"{tmp_path / name}: no candidate with finite losses ({count} candidates" in err
    with pytest.raises(InvalidInputError, match="no candidate with finite losses"):
        evaluate_model(CostPredictor(config_factory()), empty)


def test_evaluate_prints_strict_json(tmp_path, capsys, data_factory, config_factory) -> None:
    """An undefined metric (a subject with fewer than 3 valid candidates) used to be printed as
    a bare NaN, which no strict JSON reader (jq, JSON.parse) accepts; it is null, as in --out."""
    data = data_factory(n_subjects=3, per_gen=12, generations=2)
    losses = data.losses.copy()
    losses[np.flatnonzero(data.subject == 1)[2:]] = np.nan  # subject 1: 2 valid candidates
    data = replace(data, losses=losses)
    save_dataset(data, tmp_path / "d")
    w = _weights(tmp_path, data, config_factory())
    argv = ["surrogate", "evaluate", "--weights", str(w), "--data", str(tmp_path / "d")]
    assert main([*argv, "--out", str(tmp_path / "m.json")]) == 0

    def refuse(token):
        raise AssertionError(f"{token} is not JSON")

    printed = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert printed["per_subject"]["spearman_total"][1] is None
    assert printed == json.loads((tmp_path / "m.json").read_text())


def test_evaluate_warns_about_training_ids_only_for_the_same_seed(
    tmp_path, capsys, data_factory, config_factory
) -> None:
    """Generated subjects are named syn-00000, ... whatever --seed: a held-out data set generated
    with another seed (the way to get held-out data) used to be flagged as training data."""
    data = data_factory(n_subjects=3, per_gen=12, generations=2)
    record = {"split_subject_ids": {"train": data.subject_id.tolist()}}
    w = _weights(
        tmp_path, data, config_factory(), training_data={**record, "generation_settings": {"seed": 0}}
    )
    for seed, warned in ((1, False), (0, True)):
        save_dataset(replace(data, info={"settings": {"seed": seed}}), tmp_path / f"s{seed}")
        argv = ["surrogate", "evaluate", "--weights", str(w), "--data", str(tmp_path / f"s{seed}")]
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert main(argv) == 0
        flagged = [c for c in caught if "weights were trained on" in str(c.message)]
        assert bool(flagged) is warned, seed


# ------------------------------------------------------------------------------ data sets


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("truncate", "cannot be read as a data-set shard (BadZipFile"),
        ("garbage", "cannot be read as a data-set shard"),
        ("object", "cannot be read as a data-set shard (ValueError: Object arrays"),
        ("missing_array", "missing arrays ['losses']"),
        ("nan_fc", "fc_triu holds 1 non-finite value(s)"),
        ("other_dataset", "does not match its entry in manifest.json"),
    ],
)
def test_damaged_shards_are_one_clear_error(tmp_path, capsys, data_factory, damage, problem):
    """Each used to be a raw traceback (BadZipFile, ValueError, ...) or, for a shard of another
    data set copied under the same name, silently read; NaN inputs trained to 'diverged'."""
    data = data_factory(n_subjects=3, per_gen=4, generations=1)
    folder = save_dataset(data, tmp_path / "d")
    shard = folder / "shard_00000.npz"
    arrays = data.to_arrays()
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:500])
    elif damage == "garbage":
        shard.write_bytes(b"not a shard" * 50)
    elif damage == "object":
        np.savez(shard, subject_id=np.array([object()], dtype=object))
    elif damage == "missing_array":
        np.savez(shard, **{k: v for k, v in arrays.items() if k != "losses"})
    elif damage == "nan_fc":
        arrays["fc_triu"] = arrays["fc_triu"].copy()
        arrays["fc_triu"][1, 2] = np.nan
        np.savez(shard, **arrays)
    else:
        other = data_factory(n_subjects=4, per_gen=4, generations=1, seed=5)
        other = replace(other, subject_id=[f"x{i}" for i in range(4)])
        np.savez(shard, **other.to_arrays())
    with pytest.raises(InvalidInputError, match=r"shard_00000\.npz") as err:
        load_dataset(folder)
    assert problem in str(err.value)
    capsys.readouterr()
    code = main(["surrogate", "train", "--data", str(folder), "--out", str(tmp_path / "w")])
    out = capsys.readouterr().err
    assert code == 2 and out.count("\n") == 1 and problem in out and "Traceback" not in out
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize(
    "manifest, problem",
    [
        ([], "is not a JSON object"),
        ({"shards": None}, "is malformed"),
        ({"shards": [{"n_subjects": 3}]}, "is malformed"),
        ({"info": {"settings": {"fcd_window": "x"}}}, "is malformed"),
        ({"info": {"settings": [1]}}, "is malformed"),
    ],
)
def test_malformed_manifests_are_one_clear_error(tmp_path, data_factory, manifest, problem):
    folder = save_dataset(data_factory(n_subjects=3, per_gen=4, generations=1), tmp_path / "d")
    if isinstance(manifest, dict):
        manifest = {**json.loads((folder / "manifest.json").read_text()), **manifest}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidInputError, match=problem):
        load_dataset(folder)
    (folder / "manifest.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(InvalidInputError, match=r"manifest\.json: is not UTF-8 text"):
        load_dataset(folder)


# ------------------------------------------------------------------------------ weights


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda m: m.update(training_data="x"), "training_data must be an object"),
        (
            lambda m: m["training_data"].update(split_subject_ids=["a"]),
            "split_subject_ids must be an object of subject-id lists",
        ),
        (lambda m: m["timing"].update(fcd_window="x"), "timing.fcd_window must be a whole number"),
        (lambda m: m["network"].update(tr_ref=-1.0), "tr_ref must be finite and > 0"),
        (lambda m: m["network"].update(output_scale=[1, 1, 0]), "output_scale must be finite"),
        (lambda m: m["network"].update(dropout=None), "dropout must be a number"),
    ],
)
def test_hand_edited_metadata_without_its_own_sha_is_refused_on_load(
    tmp_path, data_factory, config_factory, edit, problem
):
    """Weights saved before metadata_sha256 existed are only checked field by field; these edits
    used to load and then crash evaluate (AttributeError, ValueError) or predict NaN."""
    data = data_factory(n_subjects=3, per_gen=4, generations=1)
    folder = _weights(
        tmp_path, data, config_factory(), training_data={"split_subject_ids": {}}, timing={}
    )
    meta = json.loads((folder / "metadata.json").read_text())
    meta.pop(pretrained.METADATA_SHA_KEY)
    edit(meta)
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match=r"metadata\.json: ") as err:
        pretrained.load_pretrained(folder)
    assert problem in str(err.value)


def test_template_sc_of_another_size_is_refused_on_load(tmp_path, config_factory) -> None:
    """A template of the wrong shape used to load and crash the SC check with a RuntimeError."""
    model = CostPredictor(config_factory())
    folder = pretrained.save_pretrained(model, tmp_path / "w", {}, template_sc=np.eye(5) * 0.02)
    with pytest.raises(InvalidInputError, match=r"template_sc has shape \(5, 5\).*6 x 6"):
        pretrained.load_pretrained(folder)


def test_saved_weights_follow_the_umask_and_keep_their_log(tmp_path, config_factory, monkeypatch):
    """The weights folder used to be created 0700 (tempfile.mkdtemp), unreadable to the lab's
    group whatever the umask; the training log is now part of the same atomic save."""
    old_umask = os.umask(0o022)
    try:
        model = CostPredictor(config_factory())
        folder = pretrained.save_pretrained(model, tmp_path / "w", {}, training_log={"history": [1]})
    finally:
        os.umask(old_umask)
    assert folder.stat().st_mode & 0o777 == 0o755
    assert json.loads((folder / pretrained.TRAINING_LOG_FILE).read_text()) == {"history": [1]}

    def crash(model, staging, metadata, template_sc):
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrained, "_write_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        pretrained.save_pretrained(model, folder, {}, training_log={"history": [2]})
    assert json.loads((folder / pretrained.TRAINING_LOG_FILE).read_text()) == {"history": [1]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]


# ------------------------------------------------------------------------------ interruption


def test_ctrl_c_during_training_says_it_does_not_resume(
    tmp_path, capsys, data_factory, monkeypatch
) -> None:
    """Ctrl-C used to print main's generic 'rerun the same command to resume', but training has
    no checkpoint: rerunning starts over (and gives the same weights for the same seed)."""
    from delssome_norms.surrogate import train as train_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "train_surrogate", interrupted)
    save_dataset(data_factory(n_subjects=3, per_gen=4, generations=1), tmp_path / "d")
    code = main(["surrogate", "train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "w")])
    err = capsys.readouterr().err
    assert code == 130 and err.count("\n") == 1
    assert f"nothing was saved to {tmp_path / 'w'} (training does not resume" in err
    assert not (tmp_path / "w").exists()


def test_an_unwritable_out_is_refused_before_training(tmp_path, capsys, data_factory, monkeypatch):
    """--out under a file used to be found out only when saving, after the whole training."""
    from delssome_norms.surrogate import train as train_module

    def never(*args, **kwargs):
        raise AssertionError("trained although --out cannot be written")

    monkeypatch.setattr(train_module, "train_surrogate", never)
    save_dataset(data_factory(n_subjects=3, per_gen=4, generations=1), tmp_path / "d")
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "w"
    code = main(["surrogate", "train", "--data", str(tmp_path / "d"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert f"--out: cannot be written: {tmp_path / 'file'} is not a writable folder" in err
