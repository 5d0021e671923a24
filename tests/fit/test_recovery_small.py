"""Scaled-down parameter recovery with the real simulator (the full version is bench/recovery.py).

Two synthetic subjects on the default DK68 template are simulated (one 40-frame "scan" each) and
fitted together in one lockstep group with a tiny search and the 2.7-3.3 Hz rate gate. Checks that
fail when the pipeline is broken: the fitted regional E/I must correlate with the truth (r > 0.8),
its mean must be within 25 % of the true mean, and the search must move into the rate gate (more
valid candidates in its last generations than in its first). With 40 frames the data alone leave
~10-20 % uncertainty on the mean E/I (fits reach lower losses than the truth itself), hence the
loose bound; bench/recovery.py measures recovery on longer scans and larger searches.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from delssome_norms.datasets import load_default_template, region_classes
from delssome_norms.fit import CMAESSettings, FitSettings, fit_group, synthetic_subject
from delssome_norms.fit.design import design_matrix, diffusion_gradient
from delssome_norms.fit.parameterisation import Bounds, Parameterisation
from delssome_norms.model import SimulationTiming

TRUTHS = (
    np.array([2.5, 0.1, 1.8, 0.35, 1.2, 0.0045, 0.0002]),
    np.array([2.5, -0.1, 2.2, 0.35, 1.6, 0.0045, -0.0002]),
)


def _gradient(sc: np.ndarray) -> np.ndarray:
    w = np.log1p(100 * sc / sc.max())
    w = w / w.max()
    np.fill_diagonal(w, 1.0)
    return diffusion_gradient(w, region_classes() == "sensory")


def test_small_recovery_of_regional_ei(tmp_path: Path) -> None:
    sc = np.array(load_default_template().sc)
    g = _gradient(sc)
    x = design_matrix(g, warn=False)
    timing = SimulationTiming(
        tr=0.72, scan_length=28.8, dt=0.006, burn_in=14.4, fcd_window=10, warmup_steps=500
    )
    loose = Parameterisation(x, g, Bounds(wEI=(0.0, 5.0)))
    subjects = [
        synthetic_subject(f"syn-{i}", c, loose, sc, timing, seed=11 + i) for i, c in enumerate(TRUTHS)
    ]
    for s in subjects:  # the truths are valid with the wEI range of their own FC
        assert Parameterisation(x, g, Bounds.from_fc(s.inputs.fc)).is_valid(s.coeffs[None])[0]
    settings = FitSettings(
        cmaes=CMAESSettings(generations=8, popsize=16, mu=4),
        seed=7,
        n_dup=1,
        dt_train=0.006,
        dt_val=0.006,
        dt_test=0.006,
        burn_in=14.4,
        fcd_window=10,
        warmup_steps=500,
        test_top_k=2,
        rate_gate=(2.7, 3.3),
    )
    dirs = [tmp_path / s.inputs.subject_id for s in subjects]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcomes = fit_group([s.inputs for s in subjects], dirs, settings)
    assert [o.status for o in outcomes] == ["done", "done"], outcomes
    fitted = [pd.read_csv(d / "EI_ratio.csv")["EI_ratio"].to_numpy() for d in dirs]
    for s, ei, d in zip(subjects, fitted, dirs):
        assert np.corrcoef(ei, s.ei_ratio)[0, 1] > 0.8
        assert abs(ei.mean() / s.ei_ratio.mean() - 1) < 0.25
        valid = []
        for f in sorted((d / "checkpoint").glob("train_*.npz")):
            with np.load(f) as gen:
                valid.append(int(np.isfinite(gen["corr"] + gen["l1"] + gen["ks"]).sum()))
        assert len(valid) == 8 and sum(valid[-2:]) > sum(valid[:2])  # the search moved into the gate
