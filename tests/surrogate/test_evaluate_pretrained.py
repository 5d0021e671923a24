"""Pretrained folders (save/load, refusals) and the evaluator's fit contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from surrogate_helpers import random_subjects

from delssome_norms.errors import InputWarning, InvalidInputError, NotYetAvailableError
from delssome_norms.model import Losses, PFICParams, scale_sc
from delssome_norms.surrogate.evaluate import SurrogateEvaluator
from delssome_norms.surrogate.network import CostPredictor
from delssome_norms.surrogate.pretrained import (
    ENV_VAR,
    PRETRAINED_FORMAT_VERSION,
    load_pretrained,
    save_pretrained,
)


def _params(n: int, b: int, seed: int = 0) -> PFICParams:
    g = torch.Generator().manual_seed(seed)
    return PFICParams(
        wEE=1 + 9 * torch.rand(b, n, generator=g, dtype=torch.float64),
        wEI=1 + 3 * torch.rand(b, n, generator=g, dtype=torch.float64),
        sigma=0.001 + 0.008 * torch.rand(b, n, generator=g, dtype=torch.float64),
        G=3 * torch.rand(b, generator=g, dtype=torch.float64),
    )


@pytest.fixture
def saved(tmp_path, config_factory):
    cfg = config_factory()
    torch.manual_seed(0)
    model = CostPredictor(cfg).eval()
    fc, cdf, sc = random_subjects(cfg.n_regions, cfg.cdf_bins, k=3)
    meta = {
        "atlas": "test6",
        "timing": {"tr_range": [0.72, 0.72], "scan_length_range": [60.0, 300.0]},
        "template": {"source": "random"},
    }
    folder = save_pretrained(model, tmp_path / "w", meta, template_sc=scale_sc(sc))
    return folder, model, fc, cdf, sc


def test_round_trip_gives_identical_predictions(saved) -> None:
    folder, model, fc, cdf, sc = saved
    loaded = load_pretrained(folder)
    assert loaded.metadata["format_version"] == PRETRAINED_FORMAT_VERSION
    assert loaded.metadata["atlas"] == "test6"
    for (k, v), (k2, w) in zip(model.state_dict().items(), loaded.model.state_dict().items()):
        assert k == k2 and torch.equal(v, w)
    a = SurrogateEvaluator(model, fc, cdf, sc, 0.72, 120.0)
    b = SurrogateEvaluator(loaded, fc, cdf, sc, 0.72, 120.0)
    p = _params(fc.shape[-1], 7)
    idx = torch.tensor([0, 1, 2, 0, 1, 2, 0])
    torch.testing.assert_close(a.predict(p, idx), b.predict(p, idx))


def test_evaluator_follows_the_losses_contract(saved) -> None:
    folder, model, fc, cdf, sc = saved
    ev = SurrogateEvaluator(
        load_pretrained(folder), fc, cdf, sc, 0.72, [60.0, 120.0, 300.0], batch_size=4
    )
    p = _params(fc.shape[-1], 10)
    idx = torch.randint(0, 3, (10,))
    out = ev(p, idx)
    assert isinstance(out, Losses)
    for t in out:
        assert t.shape == (10,) and torch.isfinite(t).all() and (t >= 0).all() and (t <= 1).all()
    assert out.total.shape == (10,)
    # batching does not change results; numpy inputs work the same
    whole = SurrogateEvaluator(model, fc, cdf, sc, 0.72, [60.0, 120.0, 300.0], batch_size=1000)
    torch.testing.assert_close(whole(p, idx).corr, out.corr)
    p_np = PFICParams(*(np.asarray(x) for x in p))
    torch.testing.assert_close(ev(p_np, idx.numpy()).ks, out.ks)
    # each candidate is scored against its own subject: same params, different subject -> different
    same = PFICParams(*(x[:1].expand(3, *x.shape[1:]) for x in p))
    res = ev(same, torch.arange(3))
    assert len(set(res.total.tolist())) == 3
    with pytest.raises(InvalidInputError, match="out of range"):
        ev(p, torch.full((10,), 3))
    # the seed keyword of the evaluator interface is accepted and does not change predictions
    torch.testing.assert_close(ev(p, idx, seed=123).total, out.total)
    info = ev.describe()
    meta = json.loads((folder / "metadata.json").read_text())
    assert info["evaluator"] == "surrogate" and info["weights_sha256"] == meta["weights_sha256"]


def test_refuses_wrong_n_bins_and_sc(saved) -> None:
    folder, _, fc, cdf, sc = saved
    loaded = load_pretrained(folder)
    n = fc.shape[-1]
    fc7, cdf7, sc7 = random_subjects(n + 1, cdf.shape[1], 1)
    with pytest.raises(InvalidInputError, match=r"N=6 regions.*N=7"):
        SurrogateEvaluator(loaded, fc7, cdf7, sc7, 0.72, 120.0)
    with pytest.raises(InvalidInputError, match="100 bins; the subject has 50"):
        SurrogateEvaluator(loaded, fc, cdf[:, :50] / cdf[:, 49:50], sc, 0.72, 120.0)
    other = sc.copy()
    other[0, 1] = other[1, 0] = other.max() * 0.5 + 0.1
    with pytest.raises(InvalidInputError, match="structural connectivity differs"):
        SurrogateEvaluator(loaded, fc, cdf, other, 0.72, 120.0)
    # the same SC at another overall scale is the same scaled SC
    SurrogateEvaluator(loaded, fc, cdf, sc * 7.0, 0.72, 120.0)


def test_the_evaluator_checks_its_inputs_like_the_fit(saved) -> None:
    folder, _, fcs, cdfs, sc = saved
    loaded = load_pretrained(folder)
    fc, cdf = fcs[0], cdfs[0]  # one subject
    bad_cdf = cdf.copy()
    bad_cdf[10] = bad_cdf[9] - 0.01
    asymmetric = fc.copy()
    asymmetric[0, 1] = 0.5 * asymmetric[0, 1] - 0.2  # a triangle alone is mirrored (io.checks)
    cases = [
        ({"fc": np.full_like(fc, np.nan)}, "non-finite"),
        ({"fc": asymmetric}, "symmetric"),
        ({"fc": fc * 5}, "diagonal must be 1"),
        ({"cdf": bad_cdf}, "non-decreasing"),
        ({"tr": 720.0}, "milliseconds"),
        ({"timing_check": "bogus"}, "timing_check"),
        ({"batch_size": 0}, "batch_size"),
    ]
    if not torch.cuda.is_available():
        cases.append(({"device": "cuda"}, "CUDA is not available"))
    for change, message in cases:
        args = {"fc": fc, "cdf": cdf, "tr": 0.72} | change
        extra = {k: v for k, v in change.items() if k in ("timing_check", "batch_size", "device")}
        with pytest.raises(InvalidInputError, match=message):
            SurrogateEvaluator(loaded, args["fc"], args["cdf"], sc, args["tr"], 120.0, **extra)


def test_timing_outside_the_trained_range(saved) -> None:
    folder, _, fc, cdf, sc = saved
    loaded = load_pretrained(folder)
    with pytest.warns(InputWarning, match="scan length 864 s is outside"):
        SurrogateEvaluator(loaded, fc, cdf, sc, 0.72, 864.0)
    with pytest.raises(InvalidInputError, match="TR 2 s is outside"):
        SurrogateEvaluator(loaded, fc, cdf, sc, 2.0, 120.0, timing_check="error")


def test_fcd_window_other_than_the_training_data(tmp_path, config_factory) -> None:
    """The network predicts the KS distance of FCD computed with its training window: a fit
    with another window is warned about (refused with timing_check="error")."""
    import warnings

    from delssome_norms.fit import FitSettings
    from delssome_norms.fit.evaluate import check_surrogate_cover
    from delssome_norms.surrogate.evaluate import SURROGATE_BACKEND

    cfg = config_factory()
    model = CostPredictor(cfg).eval()
    fc, cdf, sc = random_subjects(cfg.n_regions, cfg.cdf_bins, k=2)
    cover = {"tr_range": [0.72, 2.0], "scan_length_range": [60.0, 900.0]}

    def weights(name: str, timing: dict) -> object:
        meta = {"atlas": "test6", "timing": {**cover, **timing}, "template": {"source": "random"}}
        return load_pretrained(save_pretrained(model, tmp_path / name, meta, template_sc=scale_sc(sc)))

    default = weights("default", {"fcd_window": None})  # the default rule round(60 s / TR)
    assert default.trained_fcd_window() is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SurrogateEvaluator(default, fc, cdf, sc, 0.72, 120.0, fcd_window=83)
        SurrogateEvaluator(default, fc, cdf, sc, 2.0, 120.0, fcd_window=30)
    with pytest.warns(InputWarning, match=r"FCD window 30 frames at TR 0\.72 s differs from the 83"):
        SurrogateEvaluator(default, fc, cdf, sc, 0.72, 120.0, fcd_window=30)
    fixed = weights("fixed", {"fcd_window": 40})
    assert fixed.trained_fcd_window() == 40
    with pytest.raises(InvalidInputError, match=r"FCD window 83 frames .* the 40 frames"):
        SurrogateEvaluator(fixed, fc, cdf, sc, 0.72, 120.0, fcd_window=83, timing_check="error")
    unknown = weights("unknown", {})  # weights trained before the window was recorded
    assert unknown.trained_fcd_window() == "unknown"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        SurrogateEvaluator(unknown, fc, cdf, sc, 0.72, 120.0, fcd_window=30)
    # the cohort's check before any work resolves the fit's window per subject TR
    path = str(tmp_path / "default")
    with pytest.warns(InputWarning, match=r"FCD window 30 frames at TR 0\.72 s"):
        check_surrogate_cover(
            FitSettings(mode="surrogate", fcd_window=30, surrogate_weights=path),
            [0.72, 0.72], [120.0, 120.0], SURROGATE_BACKEND,
        )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_surrogate_cover(
            FitSettings(mode="surrogate", surrogate_weights=path),
            [0.72, 2.0], [120.0, 120.0], SURROGATE_BACKEND,
        )  # fmt: skip

    class OldBackend:  # a backend written before the window was checked
        def __init__(self) -> None:
            self.calls: list = []

        def check_timing(self, weights, tr, scan_length):
            self.calls.append((weights, list(tr), list(scan_length)))

    old = OldBackend()
    check_surrogate_cover(FitSettings(mode="surrogate", fcd_window=30), [0.72], [120.0], old)
    assert old.calls == [(None, [0.72], [120.0])]


def test_refuses_bad_folders(saved, tmp_path, monkeypatch) -> None:
    folder, *_ = saved
    meta = json.loads((folder / "metadata.json").read_text())
    meta["format_version"] = PRETRAINED_FORMAT_VERSION + 1
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="format_version"):
        load_pretrained(folder)
    meta["format_version"] = PRETRAINED_FORMAT_VERSION
    meta["network"]["d_model"] = 32
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="was edited after the weights were saved"):
        load_pretrained(folder)
    del meta["metadata_sha256"]  # as weights saved before the metadata carried its checksum
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match="do not fit the network"):
        load_pretrained(folder)
    with open(folder / "model.safetensors", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(InvalidInputError, match="sha256"):
        load_pretrained(folder)
    with pytest.raises(InvalidInputError, match="no pretrained surrogate weights"):
        load_pretrained(tmp_path / "empty")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(NotYetAvailableError, match="surrogate train --data"):
        load_pretrained()


@pytest.mark.parametrize("timing", [None, {"tr_range": "abc"}, {"scan_length_range": [432]}, [1, 2]])
def test_edited_timing_cover_is_one_clear_error(saved, tmp_path, timing) -> None:
    import shutil

    folder, *_ = saved
    copy = tmp_path / "edited_weights"
    shutil.copytree(folder, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    del meta["metadata_sha256"]  # an older folder: the deeper checks still hold
    meta["timing"] = timing
    (copy / "metadata.json").write_text(json.dumps(meta))
    if timing is None:  # no cover recorded: loads, and a subject's timing is not checked
        load_pretrained(copy).check(meta["n_regions"], meta["bins"], tr=0.72, scan_length=432.0)
        return
    with pytest.raises(InvalidInputError, match="timing"):
        load_pretrained(copy)
