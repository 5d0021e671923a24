"""Python-API argument checks (review 1208): the surrogate evaluator's candidates, subject IDs of
``load_subject``, ``FitSettings.mode``/``cmaes`` and ``estimate_ei``'s subject and settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from fit_helpers import N_TINY, tiny_cdf, tiny_fc, tiny_sc, tiny_subject

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import CMAESSettings, FitSettings, estimate_ei, load_subject
from delssome_norms.io import write_matrix
from delssome_norms.model import PFICParams
from delssome_norms.surrogate.evaluate import SurrogateEvaluator
from delssome_norms.surrogate.network import CostPredictor, SurrogateConfig

BINS = 100


def _evaluator() -> SurrogateEvaluator:
    torch.manual_seed(0)
    config = SurrogateConfig(
        n_regions=N_TINY, cdf_bins=BINS, fcd_bins=10, d_model=16, n_heads=2, n_layers=1, d_ff=32,
        d_subject=32,
    )  # fmt: skip
    fc = np.stack([tiny_fc(seed=0), tiny_fc(seed=1)])
    cdf = np.stack([tiny_cdf(0, BINS), tiny_cdf(1, BINS)])
    return SurrogateEvaluator(CostPredictor(config), fc, cdf, tiny_sc(), 0.72, 14.4)


def _params(b: int = 2, n: int = N_TINY, **given) -> PFICParams:
    values = dict(
        wEE=torch.full((b, n), 3.0),
        wEI=torch.full((b, n), 2.0),
        sigma=torch.full((b, n), 0.005),
        G=torch.full((b,), 1.0),
    )
    values.update(given)
    return PFICParams(**values)


@pytest.fixture(scope="module")
def evaluator() -> SurrogateEvaluator:
    return _evaluator()


@pytest.mark.parametrize("name", ["wEE", "wEI", "sigma", "G"])
def test_predict_refuses_negative_parameters(evaluator, name: str) -> None:
    """wEE=-30, sigma=-0.005, G=-1 were scored like any candidate; the simulation refuses them."""
    good = _params()
    bad = _params(**{name: -getattr(good, name) * 10})
    expected = -float(getattr(good, name).max()) * 10
    idx = torch.zeros(2, dtype=torch.long)
    for call in (evaluator.predict, evaluator):
        with pytest.raises(InvalidInputError, match=r"must be >= 0 \(got ") as err:
            call(bad, idx)
        assert err.value.source == f"params.{name}"
        assert f"got {expected:g})" in str(err.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_predict_refuses_non_finite_parameters(evaluator, value: float) -> None:
    """NaN parameters gave NaN losses although ``__call__`` promised finite ones."""
    sigma = torch.full((2, N_TINY), 0.005)
    sigma[1, 3] = value
    with pytest.raises(InvalidInputError, match=r"^params\.sigma contains NaN or inf$"):
        evaluator(_params(sigma=sigma), torch.zeros(2, dtype=torch.long))


def test_predict_refuses_float32_overflow(evaluator) -> None:
    """A finite float64 value that is inf in the network's float32 gave NaN/inf costs."""
    wee = torch.full((2, N_TINY), 3.0, dtype=torch.float64)
    wee[0, 0] = 1e39
    with pytest.raises(InvalidInputError, match=r"overflow the network's torch\.float32") as err:
        evaluator.predict(_params(wEE=wee), torch.zeros(2, dtype=torch.long))
    assert err.value.source == "params.wEE"


def test_predict_refuses_other_region_count(evaluator) -> None:
    """5 regions against a 6-region evaluator raised torch's own RuntimeError."""
    with pytest.raises(InvalidInputError) as err:
        evaluator.predict(_params(n=5), torch.zeros(2, dtype=torch.long))
    assert err.value.source == "params.wEE"
    assert f"must have shape (B, {N_TINY})" in str(err.value) and "got (2, 5)" in str(err.value)
    with pytest.raises(InvalidInputError, match=r"wEE has \(2, 6\) but wEI has \(2, 5\)"):
        evaluator.predict(_params(wEI=torch.full((2, 5), 2.0)), torch.zeros(2, dtype=torch.long))
    with pytest.raises(InvalidInputError, match=r"G must have shape \(2,\), got \(3,\)") as err:
        evaluator.predict(_params(G=torch.ones(3)), torch.zeros(2, dtype=torch.long))
    assert err.value.source == "params.G"


def test_predict_valid_candidates_unchanged(evaluator) -> None:
    """Checked candidates score as before: a single set (N,) with a scalar G equals its row of a
    batch; float64 and NumPy inputs equal float32 ones."""
    rng = np.random.default_rng(1)
    wee, wei = rng.uniform(1, 5, (3, N_TINY)), rng.uniform(1, 5, (3, N_TINY))
    sigma, g = rng.uniform(0.001, 0.01, (3, N_TINY)), rng.uniform(0.5, 3, 3)
    idx = torch.tensor([0, 1, 1])
    batch = evaluator.predict(PFICParams(wee, wei, sigma, g), idx)
    as32 = PFICParams(*(torch.tensor(x, dtype=torch.float32) for x in (wee, wei, sigma, g)))
    torch.testing.assert_close(evaluator.predict(as32, idx), batch)
    one = evaluator.predict(PFICParams(wee[2], wei[2], sigma[2], g[2]), torch.tensor([1]))
    torch.testing.assert_close(one, batch[2:3])
    assert torch.isfinite(batch).all() and batch.shape == (3, 3)


def test_negative_tr_message_reads_plain_number() -> None:
    with pytest.raises(InvalidInputError) as err:
        SurrogateEvaluator(_evaluator().model, tiny_fc(), tiny_cdf(0, BINS), tiny_sc(), -0.72, 14.4)
    assert str(err.value).endswith("TR must be a positive number of seconds, got -0.72")
    assert "np.float64" not in str(err.value)


def test_read_only_arrays_give_no_torch_warning() -> None:
    """A read-only array (the packaged template's SC) gave PyTorch's 'not writable' warning, once
    per process: checked in a fresh interpreter."""
    code = f"""
import warnings, numpy as np, sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from fit_helpers import tiny_cdf, tiny_fc, tiny_sc
from delssome_norms.surrogate.evaluate import SurrogateEvaluator
from delssome_norms.surrogate.network import CostPredictor, SurrogateConfig
c = SurrogateConfig(n_regions=6, cdf_bins=100, fcd_bins=10, d_model=16, n_heads=2, n_layers=1,
                    d_ff=32, d_subject=32)
arrays = [tiny_fc(), tiny_cdf(0, 100), tiny_sc()]
for a in arrays:
    a.flags.writeable = False
warnings.simplefilter("error")
SurrogateEvaluator(CostPredictor(c), *arrays, 0.72, 14.4)
print("no warning")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "not writable" not in done.stderr
    assert done.returncode == 0 and "no warning" in done.stdout, done.stderr[-2000:]


def _subject_files(tmp: Path) -> dict[str, Path]:
    paths = {"fc": tmp / "fc.csv", "fcd_cdf": tmp / "cdf.csv", "sc": tmp / "sc.csv"}
    write_matrix(tiny_fc(), paths["fc"])
    write_matrix(tiny_cdf(), paths["fcd_cdf"])
    write_matrix(tiny_sc(), paths["sc"])
    return paths


@pytest.mark.parametrize("sid", ["", "../x", "a/b", ".hidden"])
def test_load_subject_refuses_unsafe_subject_ids(tmp_path: Path, sid: str) -> None:
    """The CLI and EIEstimator refuse these IDs; load_subject accepted them (a fit then wrote to
    '<out>/../x' or an empty folder name)."""
    files = _subject_files(tmp_path)
    with pytest.raises(InvalidInputError, match="is not a safe folder name") as err:
        load_subject(sid, 0.72, 14.4, **files)
    assert err.value.source == "subject_id" and repr(sid) in str(err.value)
    assert load_subject("sub-01.run_2", 0.72, 14.4, **files).subject_id == "sub-01.run_2"


def test_fit_settings_refuses_unknown_mode() -> None:
    with pytest.raises(InvalidInputError, match=r"one of euler, surrogate, got 'x'") as err:
        FitSettings(mode="x")
    assert err.value.source == "mode"  # not the CLI's --mode
    with pytest.raises(InvalidInputError, match="got None"):
        FitSettings(mode=None)
    assert FitSettings(mode="surrogate").mode == "surrogate"


def test_fit_settings_refuses_cmaes_dict_with_the_call_to_write() -> None:
    """A dict as cmaes raised a bare AttributeError; the message's call is one that works."""
    with pytest.raises(InvalidInputError) as err:
        FitSettings(cmaes={"generations": 3, "popsize": 8})
    assert err.value.source == "cmaes"
    suggested = "FitSettings(cmaes=CMAESSettings(generations=3, popsize=8))"
    assert f"must be a CMAESSettings, not dict: pass {suggested}" in str(err.value)
    made = eval(suggested, {"FitSettings": FitSettings, "CMAESSettings": CMAESSettings})
    assert (made.cmaes.generations, made.cmaes.popsize) == (3, 8)
    with pytest.raises(InvalidInputError, match="not int: pass FitSettings"):
        FitSettings(cmaes=3)


def test_estimate_ei_refuses_a_subject_id_string(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(InvalidInputError) as err:
        estimate_ei("s1", out, FitSettings())
    message = str(err.value)
    assert err.value.source == "subject"
    assert "must be a SubjectInputs" in message and "not str" in message
    assert "load_subject('s1'" in message and "subject_from_arrays" in message
    assert not out.exists()


def test_estimate_ei_refuses_settings_dict(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(InvalidInputError) as err:
        estimate_ei(tiny_subject("s1", 0), out, {"n_dup": 1, "cmaes": {"generations": 3}})
    assert err.value.source == "settings"
    suggested = "FitSettings(n_dup=1, cmaes=CMAESSettings(generations=3))"
    assert f"must be a FitSettings, not dict: pass {suggested}" in str(err.value)
    made = eval(suggested, {"FitSettings": FitSettings, "CMAESSettings": CMAESSettings})
    assert made.n_dup == 1 and made.cmaes.generations == 3
    assert not out.exists()


def test_run_cohort_refuses_settings_dict(tmp_path) -> None:
    from delssome_norms.fit.cohort import run_cohort

    with pytest.raises(InvalidInputError, match="must be a FitSettings") as err:
        run_cohort(tmp_path / "manifest.csv", tmp_path / "out", {"n_dup": 1})
    assert err.value.source == "settings"
    assert not (tmp_path / "out").exists()
