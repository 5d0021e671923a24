"""``mode="surrogate"``: the train stage is scored by the network, validation and test simulate."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fit_helpers import AnalyticSimulator, tiny_cdf, tiny_fc, tiny_sc, tiny_surrogate_weights

from delssome_norms.errors import InvalidInputError, NotYetAvailableError
from delssome_norms.fit import CMAESSettings, FitSettings, check_mode, fit_group, lockstep
from delssome_norms.fit import evaluate as fit_evaluate
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.surrogate import SURROGATE_BACKEND
from delssome_norms.surrogate.pretrained import ENV_VAR

GENERATIONS = 4


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    return tiny_surrogate_weights(tmp_path / "w")


def _subjects() -> list[SubjectInputs]:
    return [
        SubjectInputs(
            subject_id=sid,
            fc=tiny_fc(level=lvl, seed=i),
            fcd_cdf=tiny_cdf(i),
            tr=0.72,
            scan_length=14.4,
            sc=tiny_sc(),
        )
        for i, (sid, lvl) in enumerate((("a", 0.15), ("b", 0.3)))
    ]


def _settings(mode: str, weights: Path | None) -> FitSettings:
    return FitSettings(
        cmaes=CMAESSettings(generations=GENERATIONS, popsize=10, mu=3),
        mode=mode,
        surrogate_weights=None if weights is None else str(weights),
        dt_train=0.01, dt_val=0.01, dt_test=0.01, burn_in=0.72, fcd_window=5, warmup_steps=50,
        test_top_k=2, n_dup=2,
        stability_gate=False,  # analytic stand-in losses: the model's stability is irrelevant
    )  # fmt: skip


def _find(tree, key: str):
    """Value of the first ``key`` in a nested dict."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        for v in tree.values():
            found = _find(v, key)
            if found is not None:
                return found
    return None


def test_train_stage_is_not_simulated(tmp_path: Path, weights: Path, monkeypatch) -> None:
    monkeypatch.setattr(lockstep, "EulerEvaluator", AnalyticSimulator)
    monkeypatch.setattr(fit_evaluate, "EulerEvaluator", AnalyticSimulator)
    calls = {}
    for mode in ("euler", "surrogate"):
        AnalyticSimulator.calls = 0
        dirs = [tmp_path / mode / s.subject_id for s in _subjects()]
        outcomes = fit_group(
            _subjects(),
            dirs,
            _settings(mode, weights if mode == "surrogate" else None),
            surrogate=SURROGATE_BACKEND,
        )
        assert [o.status for o in outcomes] == ["done", "done"]
        calls[mode] = AnalyticSimulator.calls
        run = json.loads((dirs[0] / "run.json").read_text())
        assert run["settings"]["mode"] == mode
        # validation re-simulates the best candidate of every generation (Euler) or the two best
        # (surrogate, whose ranking is approximate)
        assert _find(run, "validated_candidates") == GENERATIONS * (2 if mode == "surrogate" else 1)
    # Euler simulates once per train generation on top of what both modes simulate (val + test)
    assert calls["euler"] - calls["surrogate"] == GENERATIONS
    assert calls["surrogate"] >= 2
    # the surrogate's train losses are the network's predictions: inside (0, output scale)
    quality = pd.read_csv(tmp_path / "surrogate" / "a" / "fit_quality.csv").set_index("stage")
    train = quality.loc["train", ["corr_loss", "l1_loss", "ks_loss"]].to_numpy(dtype=float)
    assert np.all((train > 0) & (train < 1))
    assert set(quality.index) >= {"train", "val", "test"}


def test_weights_for_another_template_are_refused(tmp_path: Path, weights: Path, monkeypatch) -> None:
    monkeypatch.setattr(lockstep, "EulerEvaluator", AnalyticSimulator)
    subjects = _subjects()
    for s in subjects:
        object.__setattr__(s, "sc", tiny_sc(seed=5))
    with pytest.raises(InvalidInputError, match="SC"):
        fit_group(
            subjects,
            [tmp_path / s.subject_id for s in subjects],
            _settings("surrogate", weights),
            surrogate=SURROGATE_BACKEND,
        )


def test_check_mode(tmp_path: Path, weights: Path, monkeypatch) -> None:
    assert check_mode("euler") == "euler"
    assert check_mode("surrogate", str(weights), SURROGATE_BACKEND) == "surrogate"
    with pytest.raises(InvalidInputError, match="--mode"):
        check_mode("fast")
    with pytest.raises(InvalidInputError, match="no pretrained surrogate weights"):
        check_mode("surrogate", str(tmp_path / "missing"), SURROGATE_BACKEND)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(NotYetAvailableError, match="no pretrained surrogate weights"):
        check_mode("surrogate", surrogate=SURROGATE_BACKEND)


def test_surrogate_mode_without_a_backend_says_what_to_pass(tmp_path: Path, weights: Path) -> None:
    """``fit`` never loads the surrogate itself: every entry point asks for ``surrogate=``."""
    from delssome_norms.fit import estimate_ei, make_evaluator, run_cohort

    hint = "pass surrogate=delssome_norms.surrogate.SURROGATE_BACKEND"
    settings = _settings("surrogate", weights)
    s = _subjects()[0]
    with pytest.raises(InvalidInputError, match=hint):
        check_mode("surrogate", str(weights))
    with pytest.raises(InvalidInputError, match=hint):
        make_evaluator(
            "surrogate", s.fc[None], s.fcd_cdf[None], s.sc, settings.timing(0.72, 14.4, "train")
        )
    with pytest.raises(InvalidInputError, match=hint):
        estimate_ei(s, tmp_path / "a", settings)
    with pytest.raises(InvalidInputError, match=hint):
        run_cohort(tmp_path / "manifest.csv", tmp_path / "out", settings)
    assert not (tmp_path / "a").exists() and not (tmp_path / "out").exists()


def test_the_backend_survives_pickling(tmp_path: Path, weights: Path) -> None:
    """The Dask executor ships the backend to workers: it must pickle and still work."""
    import pickle

    from delssome_norms.surrogate import DelssomeBackend

    again = pickle.loads(pickle.dumps(SURROGATE_BACKEND))
    assert type(again) is DelssomeBackend
    again.check_available(str(weights))
    with pytest.raises(InvalidInputError, match="no pretrained surrogate weights"):
        again.check_available(str(tmp_path / "missing"))


def test_generation_bests_takes_the_lowest_finite_totals() -> None:
    from delssome_norms.fit.checkpoint import GenerationRecord
    from delssome_norms.fit.stages import generation_bests

    z, nan = np.zeros(5), np.nan
    records = [
        GenerationRecord(np.arange(10.0).reshape(5, 2), np.array([0.5, nan, 0.2, 0.9, 0.3]), z, z),
        GenerationRecord(np.zeros((5, 2)), np.full(5, nan), z, z),
        GenerationRecord(np.ones((5, 2)), np.array([0.4, nan, nan, nan, nan]), z, z),
    ]
    two = generation_bests(records, per_generation=2)
    np.testing.assert_array_equal(two["generation"], [0, 0, 2])
    np.testing.assert_array_equal(two["train_corr"], [0.2, 0.3, 0.4])
    np.testing.assert_array_equal(two["candidates"][:2], [[4.0, 5.0], [8.0, 9.0]])
    one = generation_bests(records)
    np.testing.assert_array_equal(one["train_corr"], [0.2, 0.4])


def test_val_per_generation_default_follows_the_mode() -> None:
    import dataclasses

    euler = FitSettings()
    assert euler.validated_per_generation == 1
    surrogate = dataclasses.replace(euler, mode="surrogate")
    assert surrogate.validated_per_generation == 2
    assert FitSettings(mode="surrogate", val_per_generation=5).validated_per_generation == 5
    with pytest.raises(InvalidInputError, match="val_per_generation"):
        FitSettings(val_per_generation=0)
    # checkpoints written before the setting existed stay resumable; an explicit value is checked
    assert "val_per_generation" not in euler.fingerprint()
    assert FitSettings(val_per_generation=2).fingerprint()["val_per_generation"] == 2
    # the surrogate default changed from 3 to 2: a checkpoint of the old default (no key) must
    # not be continued with the new one (a value given is recorded as given, as before)
    assert surrogate.fingerprint()["val_per_generation"] == 2
    old_default = {k: v for k, v in surrogate.fingerprint().items() if k != "val_per_generation"}
    assert dataclasses.replace(surrogate, val_per_generation=3).fingerprint() != old_default
    assert surrogate.fingerprint() != old_default
