"""A researcher retrains the surrogate for their own timing: what generate, train and evaluate
tell them (review findings, each test fails without its fix)."""

from __future__ import annotations

import hashlib
import json
import math
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from delssome_norms.cli.main import main
from delssome_norms.errors import InvalidInputError
from delssome_norms.surrogate import pretrained
from delssome_norms.surrogate.dataset import list_shards, load_dataset, save_dataset
from delssome_norms.surrogate.network import CostPredictor
from delssome_norms.surrogate.train import prediction_metrics

pytestmark = pytest.mark.filterwarnings("ignore:the FC affinity graph is disconnected")


def _weights(tmp_path: Path, data, config) -> Path:
    torch.manual_seed(0)
    model = CostPredictor(config).eval()
    cover = {"tr_range": [0.72, 0.72], "scan_length_range": [60.0, 300.0]}  # the data's timing
    return pretrained.save_pretrained(model, tmp_path / "w", {"timing": cover}, template_sc=data.sc[0])


def _small_sc(n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(5)
    sc = rng.uniform(0.2, 1.0, (n, n))
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def test_top10_chance_is_that_of_the_generations_the_overlap_uses() -> None:
    """Generations of 8 candidates (popsize 8, a small budget) reported a chance overlap of
    10 / 8 = 1.25 beside an undefined overlap; with generations of 8 and 20 candidates the
    chance was 10 / median(8, 20) although only the generation of 20 is scored (chance 0.5)."""
    rng = np.random.default_rng(0)
    subject = np.repeat([0, 1], 8)
    small = prediction_metrics(rng.random((16, 3)), rng.random((16, 3)), subject, np.zeros(16))
    assert small["top10_overlap"] != small["top10_overlap"]  # NaN: no generation of > 10
    assert math.isnan(small["top10_chance"])
    subject = np.repeat([0, 1], [8, 20])
    mixed = prediction_metrics(rng.random((28, 3)), rng.random((28, 3)), subject, np.zeros(28))
    assert mixed["top10_chance"] == pytest.approx(10 / 20)


def test_evaluate_names_its_weights_and_data_and_reads_in_words(
    tmp_path, capsys, data_factory, config_factory
) -> None:
    """The metrics JSON did not say which weights on which data it measured, and nothing put
    the numbers in words; now it records both (path and the weights' sha256) and a summary line
    follows on stderr (stdout stays one JSON document)."""
    data = data_factory(n_subjects=3, per_gen=12, generations=2)
    save_dataset(data, tmp_path / "d")
    w = _weights(tmp_path, data, config_factory())
    argv = ["surrogate", "evaluate", "--weights", str(w), "--data", str(tmp_path / "d")]
    assert main([*argv, "--out", str(tmp_path / "m.json")]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed == json.loads((tmp_path / "m.json").read_text())
    assert printed["weights"] == str(w.absolute())
    digest = hashlib.sha256((w / "model.safetensors").read_bytes()).hexdigest()
    assert printed["weights_sha256"] == digest
    assert printed["data"] == str((tmp_path / "d").absolute())
    summary = captured.err.strip().splitlines()[-1]
    rho = printed["pooled"]["total"]["spearman"]
    assert f"3 subject(s), {printed['n_valid']} of 72 candidates valid" in summary
    assert f"Spearman of the total cost {rho:.3f} pooled" in summary
    assert f"top-10 overlap {printed['top10_overlap']:.2f} per generation" in summary
    assert f"(chance {10 / 12:.2f})" in summary


def test_train_warns_when_the_held_out_ranking_is_near_chance(
    tmp_path, capsys, data_factory, monkeypatch
) -> None:
    """Losses that do not depend on the candidates cannot be learned: held-out Spearman near 0.
    Such weights used to be saved with the number printed and nothing said; they are still saved,
    with a warning naming the value and the way out."""
    data = data_factory(n_subjects=8, per_gen=12, generations=2)
    noise = np.random.default_rng(1).uniform(0, 1, data.losses.shape)
    save_dataset(replace(data, losses=noise), tmp_path / "d")
    argv = ["surrogate", "train", "--data", str(tmp_path / "d"), "--epochs", "1", "--d-model",
            "16", "--heads", "2", "--layers", "1", "--fcd-bins", "10", "--threads", "1",
            "--quiet"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*argv, "--out", str(tmp_path / "w")]) == 0
    rho = float(re.search(r"Spearman\(total\) (-?[0-9.]+)", capsys.readouterr().out).group(1))
    assert rho < 0.5
    meta = json.loads((tmp_path / "w" / "metadata.json").read_text())
    assert round(meta["metrics"]["test"]["pooled"]["total"]["spearman"], 3) == rho
    warned = [str(c.message) for c in caught if "held-out Spearman" in str(c.message)]
    assert len(warned) == 1
    assert f"held-out Spearman(total) {rho:.3f}" in warned[0] and "is below 0.5" in warned[0]
    assert "little better than chance" in warned[0] and "--mode euler" in warned[0]
    # the warning follows the threshold, not the data: below any Spearman, none
    monkeypatch.setattr("delssome_norms.cli.surrogate_cmd.LOW_SPEARMAN", -1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*argv, "--out", str(tmp_path / "w2")]) == 0
    assert not [c for c in caught if "held-out Spearman" in str(c.message)]


def test_generate_removes_a_saved_groups_work_and_still_resumes(tmp_path, monkeypatch) -> None:
    """The per-subject checkpoints and per-generation summaries stayed under OUT/work after each
    group's shard was saved: nothing reads them again (a rerun skips saved groups), and they
    double the data set's size. They go once the shard is saved; an interrupted group keeps
    its own, and the rerun gives the data of an uninterrupted run."""
    from delssome_norms.surrogate import generate as gen

    settings = gen.quick_settings(n_subjects=2, group_size=1)
    whole = tmp_path / "whole"
    gen.generate_dataset(whole, settings, sc=_small_sc(), progress=False)
    assert not (whole / "work").exists()
    assert [s["file"] for s in list_shards(whole)] == ["group_00000.npz", "group_00001.npz"]

    original = gen.run_train
    calls = []

    def stop_in_second_group(members, evaluator, seed, on_generation=None):
        calls.append(1)
        if len(calls) == 1:
            return original(members, evaluator, seed, on_generation)

        def stop(done: int) -> None:
            raise KeyboardInterrupt

        return original(members, evaluator, seed, stop)

    monkeypatch.setattr(gen, "run_train", stop_in_second_group)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        gen.generate_dataset(cut, settings, sc=_small_sc(), progress=False)
    assert [s["file"] for s in list_shards(cut)] == ["group_00000.npz"]
    assert not (cut / "work" / "syn-00000").exists()  # saved group: its work is gone
    assert (cut / "work" / "syn-00001" / "checkpoint" / "train_00000.npz").is_file()
    monkeypatch.setattr(gen, "run_train", original)
    report = gen.generate_dataset(cut, settings, sc=_small_sc(), progress=False)
    assert report.groups_skipped == [0] and report.groups_done == [1]
    assert not (cut / "work").exists()
    a, b = load_dataset(whole), load_dataset(cut)
    for name in ("regional", "g", "losses", "subject", "generation", "fc_triu", "sim_fc_triu"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)

    # other settings: the refusal says what the data set has and what this run asks for
    other = replace(settings, popsize=12, tr=2.0)
    with pytest.raises(InvalidInputError) as err:
        gen.generate_dataset(whole, other, sc=_small_sc(), progress=False)
    expected = "other settings (popsize, tr): it has popsize 8, tr 0.72, this run popsize 12, tr 2.0"
    assert expected in str(err.value)


def test_data_folder_that_is_missing_or_holds_weights(tmp_path, data_factory, config_factory) -> None:
    """Both used to say only 'no manifest.json; is this a surrogate data set folder?'."""
    with pytest.raises(InvalidInputError, match=r"does not exist \(no manifest\.json\)"):
        load_dataset(tmp_path / "missing")
    data = data_factory(n_subjects=3, per_gen=4, generations=1)
    w = _weights(tmp_path, data, config_factory())
    with pytest.raises(InvalidInputError, match=r"holds trained weights .* not a data set"):
        load_dataset(w)
