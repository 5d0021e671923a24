"""The shipped weights (``pretrained/delssome_dk68``) on the packaged synthetic subjects.

The subjects' FC and FCD-CDF were simulated from known parameters, so the expected cost is lowest
at those parameters: the network must rank the truth above the same parameters with wEI or G moved.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delssome_norms.datasets import reference
from delssome_norms.errors import InvalidInputError
from delssome_norms.model import PFICParams
from delssome_norms.surrogate import load_pretrained
from delssome_norms.surrogate.evaluate import SurrogateEvaluator
from delssome_norms.surrogate.pretrained import ENV_VAR, default_pretrained_path

N_SUBJECTS = 20


@pytest.fixture(scope="module")
def setup(request):
    mp = pytest.MonkeyPatch()
    mp.delenv(ENV_VAR, raising=False)
    request.addfinalizer(mp.undo)
    if not (default_pretrained_path() / "model.safetensors").is_file():
        pytest.fail(f"shipped weights missing at {default_pretrained_path()}")
    subjects = reference.load_reference_subjects()
    control = np.flatnonzero(subjects.demographics["kind"].to_numpy() == "control")[:N_SUBJECTS]
    sim = reference.load_manifest()["simulation"]
    evaluator = SurrogateEvaluator.from_pretrained(
        None, subjects.fc[control], subjects.fcd_cdf[control], reference.load_simulation_sc(),
        float(sim["tr"]), float(sim["scan_length"]),
    )  # fmt: skip
    p = {k: np.asarray(v)[control] for k, v in subjects.true_params.items() if k != "coefficients"}
    return evaluator, p


def _total(evaluator: SurrogateEvaluator, p: dict, d_wei: float = 0.0, d_g: float = 0.0) -> np.ndarray:
    params = PFICParams(wEE=p["wEE"], wEI=p["wEI"] + d_wei, sigma=p["sigma"], G=p["G"] + d_g)
    return evaluator.predict(params, torch.arange(len(p["G"]))).numpy().sum(axis=1)


WEAKER_INHIBITION = pytest.param(
    -0.2,
    0,
    marks=pytest.mark.xfail(
        strict=True,
        reason="known limitation of the weights retrained on the real default maps: on these "
        "reference subjects (near the stability boundary by construction, G = 2) the network "
        "ranks the truth above wEI - 0.2 for 13 of 20 (simulated, 6 of them: truth 0.15-0.26 vs "
        "0.27-0.48); pretrained/README.md",
    ),
)


@pytest.mark.parametrize(("d_wei", "d_g"), [WEAKER_INHIBITION, (0.2, 0), (0, -0.5), (0, 0.5)])
def test_truth_scores_better_than_moved_parameters(setup, d_wei: float, d_g: float) -> None:
    evaluator, p = setup
    truth = _total(evaluator, p)
    moved = _total(evaluator, p, d_wei, d_g)
    assert np.all(np.isfinite(truth)) and np.all((truth > 0) & (truth < 3))
    assert np.mean(truth < moved) >= 0.9, (truth, moved)


def test_metadata_describes_the_default_template(setup) -> None:
    meta = load_pretrained().metadata
    assert meta["n_regions"] == 68 and meta["bins"] == 10000 and meta["atlas"] == "DK68"
    assert meta["metrics"]["test"]["pooled"]["total"]["spearman"] >= 0.8
    assert 0.72 >= meta["timing"]["tr_range"][0] and 0.72 <= meta["timing"]["tr_range"][1]
    # trained on the default FCD window (round(60 s / TR)), the fit's default
    assert load_pretrained().trained_fcd_window() is None


def test_other_sc_is_refused(setup) -> None:
    subjects = reference.load_reference_subjects()
    sc = reference.load_simulation_sc().copy()
    sc[0, 1] = sc[1, 0] = sc.max()
    with pytest.raises(InvalidInputError, match="SC"):
        SurrogateEvaluator.from_pretrained(None, subjects.fc[:1], subjects.fcd_cdf[:1], sc, 0.72, 432.0)
