"""Training on a problem with a known cost function; metrics against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from delssome_norms.surrogate.train import (
    TrainSettings,
    prediction_metrics,
    split_subjects,
    top_k_overlap,
    train_surrogate,
)


def test_split_is_by_subject_and_seeded() -> None:
    a = split_subjects(20, 0.15, 0.15, seed=3)
    b = split_subjects(20, 0.15, 0.15, seed=3)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert [len(a[k]) for k in ("train", "val", "test")] == [14, 3, 3]
    allrows = np.concatenate(list(a.values()))
    assert sorted(allrows.tolist()) == list(range(20))
    assert split_subjects(3, 0.2, 0.2, 0)["train"].size == 1


def test_top_k_overlap_by_hand() -> None:
    true = np.arange(24, dtype=float)  # two groups of 12: best are the first 10 of each
    subject = np.repeat([0, 1], 12)
    generation = np.zeros(24, dtype=int)
    assert top_k_overlap(true, true, subject, generation) == 1.0
    pred = true.copy()
    pred[[0, 1]] = 100  # two of the true top 10 of group 0 predicted worst
    assert top_k_overlap(pred, true, subject, generation) == pytest.approx((0.8 + 1.0) / 2)
    true_nan = true.copy()
    true_nan[0] = np.nan  # invalid ranks last in the truth
    assert top_k_overlap(true, true_nan, subject, generation) == pytest.approx((0.9 + 1.0) / 2)


def test_prediction_metrics_match_scipy() -> None:
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 1, (200, 3))
    pred = true + rng.normal(0, 0.1, (200, 3))
    true[5] = np.nan
    m = prediction_metrics(pred, true, np.repeat(np.arange(4), 50), np.tile(np.repeat([0, 1], 25), 4))
    ok = np.isfinite(true).all(axis=1)
    rho = stats.spearmanr(pred[ok].sum(1), true[ok].sum(1))[0]
    assert m["pooled"]["total"]["spearman"] == pytest.approx(rho)
    assert m["pooled"]["corr_loss"]["pearson"] == pytest.approx(
        stats.pearsonr(pred[ok, 0], true[ok, 0])[0]
    )
    assert m["n_valid"] == 199 and m["n_subjects"] == 4
    assert len(m["per_subject"]["spearman_total"]) == 4
    assert m["top10_chance"] == pytest.approx(10 / 25)


def test_training_learns_a_known_cost_function(data_factory, config_factory, one_thread) -> None:
    data = data_factory(n_subjects=10, per_gen=40, generations=5, seed=4)
    settings = TrainSettings(epochs=15, batch_size=64, lr=3e-3, lr_decay=0.95, patience=6, seed=0)
    result = train_surrogate(data, config_factory(), settings, progress=False)
    test = result.metrics["test"]
    assert test["n_subjects"] == 2 and test["n_valid"] == 400
    assert test["pooled"]["total"]["spearman"] > 0.85
    assert test["pooled"]["ks_loss"]["spearman"] > 0.85
    assert result.history[-1]["val_mse"] < 0.5 * result.history[0]["val_mse"]


def test_training_is_deterministic(data_factory, config_factory, one_thread) -> None:
    data = data_factory(n_subjects=5, per_gen=20, generations=2, seed=5)
    settings = TrainSettings(epochs=2, batch_size=32, seed=3)
    a = train_surrogate(data, config_factory(), settings, progress=False)
    b = train_surrogate(data, config_factory(), settings, progress=False)
    for (k, v), (_, w) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert torch.equal(v, w), k
    assert a.history[-1]["val_mse"] == b.history[-1]["val_mse"]


def test_diverged_training_is_an_error_not_saved_weights(
    data_factory, config_factory, one_thread
) -> None:
    """With a learning rate that blows up, no epoch has a finite validation loss: the untrained
    network must not be returned as if it had been trained."""
    from delssome_norms.errors import InvalidInputError

    data = data_factory(n_subjects=5, per_gen=20, generations=2, seed=5)
    settings = TrainSettings(epochs=2, batch_size=32, lr=1.0, seed=3)
    object.__setattr__(settings, "lr", 1e6)  # beyond what TrainSettings accepts: forced here
    with pytest.raises(InvalidInputError, match="training diverged"):
        train_surrogate(data, config_factory(), settings, progress=False)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"lr": float("inf")}, "lr"), ({"weight_decay": float("nan")}, "weight_decay"),
     ({"candidates_per_epoch": 0}, "candidates_per_epoch")],
)  # fmt: skip
def test_bad_training_settings_name_the_setting(kwargs, name) -> None:
    from delssome_norms.errors import InvalidInputError

    with pytest.raises(InvalidInputError) as err:
        TrainSettings(**kwargs)
    assert err.value.source == name


def test_subjects_without_candidates_are_left_out_and_named(
    data_factory, config_factory, one_thread
) -> None:
    """A subject whose search never started (no valid candidate) must not end up alone in a
    held-out set with nothing to score; the split names rows of the data set given."""
    from delssome_norms.errors import InputWarning

    data = data_factory(n_subjects=6, per_gen=20, generations=2, seed=5)
    data.losses[data.subject == 2] = np.nan  # subject 2: every candidate invalid
    settings = TrainSettings(epochs=1, batch_size=32, seed=3)
    with pytest.warns(InputWarning, match=rf"1 of 6 subject\(s\).*{data.subject_id[2]}"):
        result = train_surrogate(data, config_factory(), settings, progress=False)
    rows = np.concatenate(list(result.split.values()))
    assert sorted(rows.tolist()) == [0, 1, 3, 4, 5]


def test_saving_weights_replaces_a_folder_whole(data_factory, config_factory, tmp_path, monkeypatch):
    """An interrupted save leaves the old weights loadable (never new weights beside old
    metadata), and an edited metadata.json is refused."""
    import json

    from delssome_norms.errors import InvalidInputError
    from delssome_norms.surrogate import pretrained
    from delssome_norms.surrogate.network import CostPredictor

    torch.manual_seed(0)
    model = CostPredictor(config_factory())
    folder = pretrained.save_pretrained(model, tmp_path / "w", {"note": "first"})
    (folder / "mine.txt").write_text("a file of the user's")

    def crash(model, staging, metadata, template_sc):
        (staging / pretrained.WEIGHTS_FILE).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(pretrained, "_write_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        pretrained.save_pretrained(model, folder, {"note": "second"})
    monkeypatch.undo()
    assert pretrained.load_pretrained(folder).metadata["note"] == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w"]  # no staging folder left
    pretrained.save_pretrained(model, folder, {"note": "second"})
    assert pretrained.load_pretrained(folder).metadata["note"] == "second"
    assert (folder / "mine.txt").read_text() == "a file of the user's"
    meta = json.loads((folder / "metadata.json").read_text())
    meta["timing"] = {"tr_range": [0.1, 10.0], "scan_length_range": [1.0, 1e4]}
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="was edited after the weights were saved"):
        pretrained.load_pretrained(folder)
