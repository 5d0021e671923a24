"""Checkpoint files and exact replay of a CMA-ES search (no pickle, no re-simulation)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.checkpoint import Checkpoint, GenerationRecord, fingerprint_arrays, replay
from delssome_norms.fit.cmaes import CMAESSearch, CMAESSettings
from delssome_norms.fit.design import design_matrix
from delssome_norms.fit.parameterisation import Bounds, Parameterisation

N = 16


def _space() -> Parameterisation:
    x = np.linspace(-1.0, 1.0, N)
    gradient = (x - x.mean()) / x.std()
    return Parameterisation(
        design=design_matrix(gradient, warn=False), gradient=gradient, bounds=Bounds(wEI=(0.4, 3.2))
    )


def _losses(c: np.ndarray, generation: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A deterministic stand-in for the simulator: three 'losses', NaN for some candidates."""
    corr = np.abs(c[:, 0] - 4.0) / 10
    l1 = np.abs(c[:, 2] - 1.5) / 3
    ks = (c[:, 4] - 0.005) ** 2 * 1e3
    if generation in (2, 5):  # only invalid candidates: restart at 2, gated (no restart) at 5
        corr = np.full_like(corr, np.nan)
    corr[::7] = np.nan
    return corr, l1, ks


def _violation(c: np.ndarray, generation: int) -> np.ndarray | None:
    """Generation 5 is fully 'gated': invalid but with a graded violation (no restart)."""
    return np.abs(c[:, 0] - 4.0) + 0.1 if generation == 5 else None


SETTINGS = CMAESSettings(generations=12, popsize=14, mu=4)


def _run(ckpt: Checkpoint | None, stop_after: int | None = None) -> tuple[CMAESSearch, list[np.ndarray]]:
    search = CMAESSearch(_space(), SETTINGS, seed=42)
    asked = []
    while not search.done:
        if stop_after is not None and search.generation == stop_after:
            break
        g = search.generation
        x = search.ask()
        asked.append(x)
        rec = GenerationRecord(x, *_losses(x, g), _violation(x, g))
        if ckpt is not None:
            ckpt.save_generation(g, rec)
        search.tell(rec.total, rec.violation)
    return search, asked


def test_replay_reproduces_interrupted_search(tmp_path: Path) -> None:
    full, asked_full = _run(None)
    assert full.restarts >= 1  # the history includes a restart
    ckpt = Checkpoint(tmp_path / "ckpt", {"seed": 42})
    _run(ckpt, stop_after=7)
    assert ckpt.generations_done() == 7
    assert [e["generation"] for e in full.events] == [3]  # generation 5 was gated, not collapsed
    # resume: rebuild, replay the stored history, continue
    resumed = CMAESSearch(_space(), SETTINGS, seed=42)
    records = Checkpoint(tmp_path / "ckpt", {"seed": 42}).load_train()
    replay(resumed, records, "ckpt")
    assert resumed.generation == 7
    assert resumed.events == [e for e in full.events if e["generation"] <= 7] != []
    rest = []
    while not resumed.done:
        x = resumed.ask()
        rest.append(x)
        g = resumed.generation
        resumed.tell(GenerationRecord(x, *_losses(x, g)).total, _violation(x, g))
    for a, b in zip(asked_full[7:], rest, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(resumed.es.mean, full.es.mean)
    assert resumed.best_f == full.best_f and resumed.events == full.events


def test_replay_detects_tampered_history(tmp_path: Path) -> None:
    ckpt = Checkpoint(tmp_path / "c", {"seed": 42})
    _run(ckpt, stop_after=3)
    records = ckpt.load_train()
    bad = [
        records[0],
        GenerationRecord(records[1].candidates + 1e-12, records[1].corr, records[1].l1, records[1].ks),
    ]
    with pytest.raises(InvalidInputError, match="generation 1 did not reproduce"):
        replay(CMAESSearch(_space(), SETTINGS, seed=42), bad, "c")
    with pytest.raises(InvalidInputError, match="generation 0"):
        replay(CMAESSearch(_space(), SETTINGS, seed=43), records, "c")


def test_state_and_files_are_plain_json_and_npz(tmp_path: Path) -> None:
    ckpt = Checkpoint(tmp_path / "c", {"seed": 1, "inputs": fingerprint_arrays(np.eye(3))})
    rec = GenerationRecord(
        np.arange(6.0).reshape(2, 3), np.array([0.1, np.nan]), np.zeros(2), np.ones(2)
    )
    ckpt.save_generation(0, rec)
    state = json.loads((tmp_path / "c" / "state.json").read_text())
    assert state["format_version"] == 1 and state["generations_done"] == 1
    with np.load(tmp_path / "c" / "train_00000.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["candidates"], rec.candidates)
    back = ckpt.load_train()[0]
    assert back.violation is None
    np.testing.assert_array_equal(back.corr, rec.corr)
    np.testing.assert_array_equal(back.total, rec.total)
    gated = GenerationRecord(rec.candidates, rec.corr, rec.l1, rec.ks, np.array([0.0, 0.3]))
    ckpt.save_generation(0, gated)
    np.testing.assert_array_equal(ckpt.load_train()[0].violation, [0.0, 0.3])
    # a generation file written without its state update (kill in between) is ignored
    ckpt.directory.joinpath("train_00001.npz").write_bytes(b"partial")
    assert len(Checkpoint(tmp_path / "c", ckpt.fingerprint).load_train()) == 1
    ckpt.save_stage("val", {"x": np.arange(3.0)})
    np.testing.assert_array_equal(ckpt.load_stage("val")["x"], np.arange(3.0))
    assert ckpt.load_stage("test") is None


def test_fingerprint_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    Checkpoint(tmp_path / "c", {"seed": 1, "popsize": 100}).save_generation(
        0, GenerationRecord(np.zeros((1, 2)), np.zeros(1), np.zeros(1), np.zeros(1))
    )
    with pytest.raises(InvalidInputError, match=r"different inputs or settings \(popsize, seed\)"):
        Checkpoint(tmp_path / "c", {"seed": 2, "popsize": 50}).generations_done()


def test_fingerprint_arrays_is_content_based() -> None:
    a = np.arange(4.0)
    assert fingerprint_arrays(a) == fingerprint_arrays(a.copy())
    assert fingerprint_arrays(a) != fingerprint_arrays(a.reshape(2, 2))
    assert fingerprint_arrays(a) != fingerprint_arrays(a + 1e-15 * a.max())
