"""Helpers for the fit tests: tiny subjects, a tiny manifest, and an analytic stand-in simulator.

:class:`AnalyticSimulator` replaces the Euler simulator in tests of the *orchestration* (lockstep,
resume, shards, failures, collect), where the numbers only need to be deterministic functions of the
candidates, the subject's data and the seed. The simulator itself is exercised by the tests that
run real simulations (small recovery, CLI, SIGKILL resume, Dask).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from delssome_norms.fit import CMAESSettings, FitSettings
from delssome_norms.fit.evaluate import SimulatedCandidates
from delssome_norms.fit.subject import SubjectInputs
from delssome_norms.io import write_matrix
from delssome_norms.model import Losses, SimulationTiming

N_TINY = 6


def tiny_sc(n: int = N_TINY, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sc = rng.random((n, n)) ** 3
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def tiny_fc(n: int = N_TINY, level: float = 0.2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ts = rng.standard_normal((200, n)) + np.sqrt(level / (1 - level)) * rng.standard_normal((200, 1))
    return np.corrcoef(ts.T)


def tiny_cdf(seed: int = 0, bins: int = 10000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.sort(rng.normal(0.2, 0.2, 500))
    edges = np.linspace(-1, 1, bins + 1)[1:]
    return np.searchsorted(x, edges, side="right") / len(x)


class AnalyticSimulator:
    """Deterministic analytic losses and time averages (same interface as EulerEvaluator)."""

    calls = 0

    def __init__(
        self,
        fc_emp,
        fcd_cdf_emp,
        sc,
        timing,
        n_dup=3,
        device="cpu",
        dtype="float32",
        engine="auto",
        rate_gate=None,
        weights=None,
        stability_gate=False,  # a stand-in for the whole train-stage evaluator: no gate
        surrogate=None,  # make_evaluator's surrogate backend: unused by the stand-in
    ):
        fc = np.asarray(fc_emp)
        iu = np.triu_indices(fc.shape[1], 1)
        self.target = fc[:, iu[0], iu[1]].mean(axis=1)  # per subject
        self.n_dup = n_dup
        self.timing = timing

    def simulate(self, params, subject_index, *, seed, timing=None) -> SimulatedCandidates:
        type(self).calls += 1
        idx = np.asarray(subject_index)
        wee, wei, sig, g = (np.asarray(x, dtype=np.float64) for x in params)
        noise = np.random.default_rng(seed).normal(0, 1e-3, size=(len(idx), self.n_dup))
        t = self.target[idx]
        corr = np.abs(wee.mean(1) / 10 - (0.3 + t)) + np.abs(noise).mean(1)
        l1 = np.abs(wei.mean(1) / 5 - 0.4)
        ks = np.abs(g / 3 - 0.3) + 100 * np.abs(sig.mean(1) - 0.004)
        s_e = (0.1 + 0.01 * wee)[:, None, :] + noise[:, :, None]
        s_i = (0.01 + 0.02 * wei)[:, None, :] + 0 * noise[:, :, None]
        r_e = 3.0 + 0 * s_e
        valid = np.ones((len(idx), self.n_dup), dtype=bool)
        return SimulatedCandidates(corr, l1, ks, s_e, s_i, r_e, valid)

    def __call__(self, params, subject_index, *, seed) -> Losses:
        out = self.simulate(params, subject_index, seed=seed)
        return Losses(*(torch.from_numpy(a) for a in (out.corr, out.l1, out.ks)))


def tiny_subject(sid: str, seed: int) -> SubjectInputs:
    """A tiny subject (``N_TINY`` regions, TR 0.72 s, 14.4-s scan) of its own FC and FCD-CDF."""
    return SubjectInputs(
        subject_id=sid, fc=tiny_fc(seed=seed), fcd_cdf=tiny_cdf(seed), tr=0.72, scan_length=14.4,
        sc=tiny_sc(),
    )  # fmt: skip


def use_analytic_simulator(monkeypatch) -> type[AnalyticSimulator]:
    """Make the lockstep runner use :class:`AnalyticSimulator` (this process only)."""
    from delssome_norms.fit import lockstep

    AnalyticSimulator.calls = 0
    monkeypatch.setattr(lockstep, "EulerEvaluator", AnalyticSimulator)
    monkeypatch.setattr(lockstep, "make_evaluator", lambda mode, *a, **k: AnalyticSimulator(*a, **k))
    return AnalyticSimulator


def write_manifest(
    tmp: Path, n_subjects: int, n: int = N_TINY, tr: float = 0.72, scan: float = 14.4
) -> Path:
    """Tiny subjects' FC, FCD-CDF, SC files and a manifest; returns the manifest path."""
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_matrix(tiny_sc(n), data / "sc.csv")
    rows = []
    for i in range(n_subjects):
        sid = f"sub-{i:02d}"
        write_matrix(tiny_fc(n, 0.1 + 0.05 * i, seed=i), data / f"{sid}_FC.csv")
        write_matrix(tiny_cdf(seed=i), data / f"{sid}_FCD_CDF.csv")
        rows.append(
            {
                "subject_id": sid,
                "tr": tr,
                "scan_length": scan,
                "fc": f"data/{sid}_FC.csv",
                "fcd_cdf": f"data/{sid}_FCD_CDF.csv",
                "sc": "data/sc.csv",
            }
        )
    path = tmp / "subjects.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def tiny_surrogate_weights(folder: Path) -> Path:
    """Untrained (seed 0) DELSSOME weights for the tiny subjects, saved to ``folder``."""
    from delssome_norms.model import scale_sc
    from delssome_norms.surrogate.network import CostPredictor, SurrogateConfig
    from delssome_norms.surrogate.pretrained import save_pretrained

    config = SurrogateConfig(
        n_regions=N_TINY, cdf_bins=10000, fcd_bins=10, d_model=16, n_heads=2, n_layers=1, d_ff=32,
        d_subject=32,
    )  # fmt: skip
    torch.manual_seed(0)
    meta = {
        "atlas": "tiny",
        "timing": {"tr_range": [0.72, 0.72], "scan_length_range": [14.4, 14.4]},
        "template": {"source": "tiny_sc"},
    }
    return save_pretrained(CostPredictor(config).eval(), folder, meta, scale_sc(tiny_sc()))


def tiny_timing(tr: float = 0.72, scan: float = 14.4) -> SimulationTiming:
    return SimulationTiming(
        tr=tr, scan_length=scan, dt=0.005, burn_in=0.72, fcd_window=5, warmup_steps=50
    )


def analytic_cohort_settings(
    generations: int = 3, popsize: int = 8, mu: int = 2, test_top_k: int = 2, seed: int = 1, **cmaes
) -> FitSettings:
    """Tiny cohort settings for the analytic stand-in simulator (default 3 generations x 8, gate
    off: its losses do not come from the model, whose stability is then irrelevant); ``cmaes``
    goes to :class:`CMAESSettings`."""
    return FitSettings(
        cmaes=CMAESSettings(generations=generations, popsize=popsize, mu=mu, **cmaes),
        dt_train=0.01,
        dt_val=0.01,
        dt_test=0.01,
        burn_in=0.72,
        fcd_window=5,
        warmup_steps=50,
        n_dup=2,
        test_top_k=test_top_k,
        seed=seed,
        stability_gate=False,
    )


def dask_cohort_settings(seed: int) -> FitSettings:
    """Tiny cohort settings for the executor tests (2 generations x 6 candidates, gate off)."""
    return FitSettings(
        cmaes=CMAESSettings(generations=2, popsize=6, mu=2),
        dt_train=0.005,
        dt_val=0.005,
        dt_test=0.005,
        burn_in=0.72,
        fcd_window=5,
        warmup_steps=50,
        n_dup=1,
        test_top_k=2,
        seed=seed,
        stability_gate=False,  # 2 x 6 candidates: the gate could reject all of a subject's
    )


def stage_rows(costs, ratios, n_dup: int = 2) -> dict[str, np.ndarray]:
    """A test (or profile) stage of rows with total cost ``costs`` (in ``corr``) and E/I
    ``ratios`` (rows, N), every duplicate alike (S_E = ratio / 10, S_I = 0.1)."""
    ratios = np.asarray(ratios, dtype=np.float64)
    k, n = ratios.shape
    return {
        "corr": np.asarray(costs, dtype=np.float64),
        "l1": np.zeros(k),
        "ks": np.zeros(k),
        "s_e": np.repeat(ratios[:, None, :] * 0.1, n_dup, axis=1),
        "s_i": np.full((k, n_dup, n), 0.1),
        "valid": np.ones((k, n_dup), dtype=bool),
    }
