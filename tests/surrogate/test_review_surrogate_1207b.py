"""Review 1207b of the surrogate: training reproducible at 2 threads (and resuming to the same
weights), subjects a generation left without candidates named, non-finite weights refused, and
messages that name the option or folder and give advice that applies."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from delssome_norms.cli.main import main
from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.parameterisation import wei_range
from delssome_norms.surrogate import pretrained
from delssome_norms.surrogate.dataset import load_dataset, save_dataset
from delssome_norms.surrogate.network import CostPredictor, SubjectFeatures, fcd_density
from delssome_norms.surrogate.train import TrainSettings, train_surrogate

pytestmark = pytest.mark.filterwarnings("ignore:the FC affinity graph is disconnected")


@pytest.fixture
def two_threads():
    """Torch on 2 threads (the CLI's default on this machine), restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def _weights_bytes(model: CostPredictor) -> bytes:
    return b"".join(v.detach().numpy().tobytes() for v in model.state_dict().values())


# ------------------------------------------------------------------------------ 1. determinism


def test_score_gradient_is_the_same_every_run_and_equals_indexing(two_threads, config_factory):
    """The gradient through ``proj[subject_index]`` (repeated indices) was accumulated by atomic
    adds in a thread-dependent order: 2 threads gave other bits on every backward pass. Now it
    is the same every time, and equal (to rounding) to plain indexing's gradient."""
    cfg = config_factory(d_model=64)
    torch.manual_seed(0)
    net = CostPredictor(cfg)
    g = torch.Generator().manual_seed(1)
    k, b, n = 3, 512, cfg.n_regions
    regional = torch.rand(b, n, 3, generator=g) * torch.tensor([9.0, 5.0, 0.0095]) + torch.tensor(
        [1.0, 0.0, 0.0005]
    )
    cdf = torch.cumsum(torch.rand(k, cfg.cdf_bins, generator=g), 1)
    subjects = SubjectFeatures(
        torch.rand(k, cfg.n_pairs, generator=g) * 2 - 1,
        fcd_density(cdf / cdf[:, -1:], cfg.fcd_bins),
        torch.full((k,), 0.72),
        torch.full((k,), 300.0),
        torch.rand(k, n, n, generator=g) * 0.02,
    )
    gg = 3 * torch.rand(b, generator=g)
    idx = torch.randint(0, k, (b,), generator=g)
    seen = set()
    for _ in range(12):
        net.zero_grad()
        net.score(subjects, regional, gg, idx).square().sum().backward()
        seen.add(b"".join(p.grad.numpy().tobytes() for p in net.parameters()))
    assert len(seen) == 1
    ours = [p.grad.clone() for p in net.parameters()]
    # the same network through plain indexing (the formulation of before): same gradient
    net.zero_grad()
    emb = net.encode_subject(subjects.fc_triu, subjects.fcd_dens, subjects.tr, subjects.scan_length)
    proj = net.project_sc(subjects.sc)
    net.forward_projected(regional, gg, proj[idx], emb[idx]).square().sum().backward()
    for mine, plain in zip(ours, (p.grad for p in net.parameters())):
        torch.testing.assert_close(mine, plain, rtol=1e-4, atol=1e-6)
    with torch.no_grad():  # inference: the values of plain indexing, exactly
        assert torch.equal(
            net.score(subjects, regional, gg, idx),
            net.forward_projected(regional, gg, proj[idx], emb[idx]),
        )


def test_training_at_two_threads_repeats_and_resumes_to_the_same_weights(
    tmp_path, two_threads, data_factory, config_factory
):
    """`surrogate train` at its default 2 threads gave other weights on every run; an
    interrupted training could not resume to the uninterrupted weights either. Both now hold
    bit for bit, and the global torch setting is not changed for the caller."""
    data = data_factory(n_subjects=5, per_gen=100, generations=2, seed=5)
    config = config_factory(d_model=64)
    settings = TrainSettings(epochs=3, batch_size=256, seed=3, patience=10)
    before = torch.are_deterministic_algorithms_enabled()
    runs = [train_surrogate(data, config, settings, progress=False) for _ in range(3)]
    assert torch.are_deterministic_algorithms_enabled() == before
    assert len({_weights_bytes(r.model) for r in runs}) == 1
    # two epochs, "interrupted", then continued from the checkpoint to the third
    ckpt = tmp_path / "ckpt"
    short = TrainSettings(epochs=2, batch_size=256, seed=3, patience=10)
    train_surrogate(data, config, short, progress=False, checkpoint=ckpt)
    lines = []
    resumed = train_surrogate(data, config, settings, progress=False, checkpoint=ckpt, log=lines.append)
    assert any("continuing after epoch 2" in line for line in lines)
    assert _weights_bytes(resumed.model) == _weights_bytes(runs[0].model)
    assert resumed.history == [
        {**h, "seconds": r["seconds"]} for h, r in zip(runs[0].history, resumed.history)
    ]


# ------------------------------------------------------------------------------ 2. generate


def test_generate_names_subjects_left_without_candidates(tmp_path, capsys):
    """A synthetic subject whose search collapsed at generation 0 (its FC puts the search's wEI
    range away from its truth) added nothing, while the group line said '4 subjects, ... 24
    candidates (24 valid)'; only `surrogate train` later said it was left out."""
    out = tmp_path / "d"
    argv = ["surrogate", "generate", "--out", str(out), "--subjects", "4", "--group-size", "4",
            "--generations", "1", "--popsize", "8", "--scan-lengths", "30", "--burn-in", "2.16",
            "--fcd-window", "10", "--warmup-steps", "100", "--n-dup", "1", "--seed", "2",
            "--threads", "1", "--quiet"]  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 0
    # the independent truth: the subjects of the data set without a valid candidate
    data = load_dataset(out)
    counts = np.bincount(data.subject[data.valid()].astype(int), minlength=data.n_subjects)
    empty = [str(data.subject_id[i]) for i in np.flatnonzero(counts == 0)]
    assert empty == ["syn-00002"]  # this seed's case (the others have 8 candidates each)
    assert data.n_candidates == 24
    printed = capsys.readouterr().out
    group_line = next(line for line in printed.splitlines() if line.startswith("group 1/1"))
    assert "4 subjects, scan 30 s, 24 candidates (24 valid)" in group_line
    assert "1 subject(s) without a valid candidate, left out by surrogate train: syn-00002" in (
        group_line
    )
    assert (
        printed.strip()
        .splitlines()[-1]
        .endswith("1 new subject(s) without a valid candidate (left out by surrogate train): syn-00002")
    )
    named = [str(c.message) for c in caught if "have no valid candidate" in str(c.message)]
    assert len(named) == 1 and issubclass(
        next(c.category for c in caught if str(c.message) == named[0]), InputWarning
    )
    message = named[0]
    assert "1 of 4 subject(s) of this group" in message
    assert "syn-00002: its CMA-ES search stopped at generation 0 without a candidate" in message
    fc = np.zeros((data.n_regions, data.n_regions))
    iu = np.triu_indices(data.n_regions, 1)
    fc[iu] = data.fc_triu[2]
    fc = fc + fc.T + np.eye(data.n_regions)
    lo, hi = wei_range(fc)
    assert f"mean FC {data.fc_triu[2].mean():.2f}) is [{lo:.3g}, {hi:.3g}]" in message
    true_wei = data.true_regional[2][:, 1]
    assert f"its true wEI ({true_wei.min():.2f} to {true_wei.max():.2f}) lies" in message
    assert "syn-00000" not in message and "syn-00001" not in message


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_generate_on_a_missing_gpu_names_device_option_before_any_work(tmp_path, capsys, monkeypatch):
    """`surrogate generate --device cuda` on a machine without CUDA started group 1 and then
    said "device: 'cuda' was asked for"; the option is --device and nothing should start."""
    from delssome_norms.surrogate import generate

    def never(*args, **kwargs):
        raise AssertionError("work started although the device is missing")

    monkeypatch.setattr(generate, "synthetic_subjects", never)
    out = tmp_path / "d"
    code = main(["surrogate", "generate", "--out", str(out), "--device", "cuda", "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--device: 'cuda' was asked for but CUDA is not available" in err
    assert not out.exists()
    with pytest.raises(InvalidInputError, match="CUDA is not available") as caught:  # Python API
        generate.generate_dataset(out, generate.quick_settings(device="cuda"), progress=False)
    assert caught.value.source == "device" and not out.exists()


# ------------------------------------------------------------------------------ 3. weights


def test_weights_with_nan_or_inf_are_refused_by_name(tmp_path, config_factory):
    """Network tensors holding NaN or inf loaded without a word (only template_sc was checked):
    every prediction would be NaN, i.e. every candidate invalid."""
    torch.manual_seed(0)
    model = CostPredictor(config_factory()).eval()
    ok = pretrained.save_pretrained(model, tmp_path / "ok", {})
    assert pretrained.load_pretrained(ok).model is not None
    with torch.no_grad():
        model.heads.bias[1] = float("nan")
        model.fuse[0].weight[0, 0] = float("inf")
    bad = pretrained.save_pretrained(model, tmp_path / "bad", {})
    with pytest.raises(InvalidInputError) as err:
        pretrained.load_pretrained(bad)
    assert err.value.source == str(bad / "model.safetensors")
    assert "network weights fuse.0.weight, heads.bias hold NaN or infinite values" in (err.value.problem)
    assert "surrogate train" in err.value.problem


# ------------------------------------------------------------------------------ 4. messages


def test_train_on_too_few_subjects_names_the_data_folder(tmp_path, capsys, data_factory):
    """A 2-subject data set was blamed on "surrogate dataset:" rather than the --data folder."""
    save_dataset(data_factory(n_subjects=2, per_gen=6, generations=1), tmp_path / "two")
    argv = ["surrogate", "train", "--data", str(tmp_path / "two"), "--out", str(tmp_path / "w"),
            "--epochs", "1", "--threads", "1", "--quiet"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'two'}: need at least 3 distinct subjects" in err
    assert "got 2" in err and "surrogate generate --subjects" in err
    assert "surrogate dataset:" not in err
    assert not (tmp_path / "w").exists()


def test_evaluate_timing_warning_gives_evaluate_advice(tmp_path, data_factory, config_factory):
    """The timing warning of `surrogate evaluate` advised 'fit with --mode euler', which does
    not apply to measuring weights; a fit's warning keeps that advice."""
    data = data_factory(n_subjects=3, per_gen=12, generations=1)  # TR 0.72 s
    save_dataset(data, tmp_path / "d")
    torch.manual_seed(0)
    model = CostPredictor(config_factory()).eval()
    cover = {"tr_range": [2.0, 2.0], "scan_length_range": [60.0, 300.0]}
    w = pretrained.save_pretrained(model, tmp_path / "w", {"timing": cover})
    argv = ["surrogate", "evaluate", "--weights", str(w), "--data", str(tmp_path / "d")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*argv, "--threads", "1"]) == 0
    timing = [str(c.message) for c in caught if "outside the trained range" in str(c.message)]
    assert len(timing) == 1
    assert "TR 0.72 s is outside the trained range [2, 2] s" in timing[0]
    assert "--mode euler" not in timing[0] and "fit with" not in timing[0]
    assert "evaluate on held-out data generated with their timing" in timing[0]
    # the fit's check (no advice given) still advises the fit's options
    with pytest.warns(InputWarning, match=r"fit with --mode euler"):
        pretrained.load_pretrained(w).check_timing(0.72, 120.0)
