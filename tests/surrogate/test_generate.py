"""Training-data generation: every evaluated candidate is recorded, losses are the fitter's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from delssome_norms.fit import Parameterisation, design_matrix
from delssome_norms.model import PFICParams, cost, scale_sc, simulate, summarize
from delssome_norms.surrogate.dataset import list_shards, load_dataset
from delssome_norms.surrogate.generate import (
    generate_dataset,
    quick_settings,
    sample_truth,
    truth_maps,
)

pytestmark = pytest.mark.filterwarnings("ignore:the FC affinity graph is disconnected")


def _small_sc(n: int = 6) -> np.ndarray:
    rng = np.random.default_rng(5)
    sc = rng.uniform(0.2, 1.0, (n, n))
    sc = 0.5 * (sc + sc.T)
    np.fill_diagonal(sc, 0.0)
    return sc


def test_sample_truth_is_valid_and_seeded() -> None:
    _, g, _ = truth_maps(_small_sc())
    space = Parameterisation(design=design_matrix(g, warn=False), gradient=g)
    a = sample_truth(space, np.random.default_rng(1))
    b = sample_truth(space, np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)
    assert space.is_valid(a[None])[0]


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "data"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        settings = quick_settings(n_subjects=3, group_size=2, generations=2, popsize=6, n_dup=2)
        report = generate_dataset(out, settings, sc=_small_sc(), progress=False)
    finally:
        torch.set_num_threads(threads)
    return out, settings, report


def test_every_candidate_is_recorded(generated) -> None:
    out, settings, report = generated
    assert report.groups_done == [0, 1]
    data = load_dataset(out)
    assert data.n_subjects == 3
    assert data.n_candidates == 3 * settings.generations * settings.popsize
    counts = np.bincount(data.subject * settings.generations + data.generation)
    assert np.all(counts == settings.popsize)
    assert data.true_regional is not None and data.true_regional.shape == (3, 6, 3)
    np.testing.assert_allclose(np.cumsum(data.fcd_density, axis=1)[:, -1], 1.0, atol=1e-5)
    assert data.info["settings"]["generations"] == 2
    # candidates lie inside the search bounds of docs/science.md §5
    assert data.regional[..., 0].min() >= 1 and data.regional[..., 0].max() <= 10
    assert data.g.min() >= 0 and data.g.max() <= 3


def test_recorded_losses_are_the_simulated_ones(generated) -> None:
    """Re-simulating a recorded generation with the fitter's call seed gives the stored losses."""
    from delssome_norms.fit.seeding import call_seed, group_seed

    out, settings, _ = generated
    data = load_dataset(out)
    rows = np.flatnonzero((data.generation == 0) & (data.subject < 2))  # group 0, generation 0
    params = PFICParams(
        *(torch.as_tensor(data.regional[rows, :, j], dtype=torch.float64) for j in range(3)),
        G=torch.as_tensor(data.g[rows], dtype=torch.float64),
    )
    timing = settings.timing(float(data.scan_length[0]))
    seed = call_seed(group_seed(settings.seed, list(data.subject_id[:2])), "train", 0)
    res = simulate(params, scale_sc(_small_sc()), timing, n_dup=settings.n_dup, seed=seed)
    fc = np.zeros((2, 6, 6))
    iu = np.triu_indices(6, 1)
    fc[:, iu[0], iu[1]] = data.fc_triu[:2]
    fc = fc + fc.transpose(0, 2, 1) + np.eye(6)
    cdf = np.cumsum(data.fcd_density[:2].astype(np.float64), axis=1)
    sub = data.subject[rows]
    losses = cost(summarize(res, timing), fc[sub], cdf[sub])
    expected = np.stack([t.numpy() for t in losses], axis=1)
    # the data set stores candidates and statistics in float32: agreement to that precision ...
    np.testing.assert_allclose(data.losses[rows], expected, atol=5e-3)
    # ... which is far tighter than the difference another noise draw makes
    other = cost(
        summarize(simulate(params, scale_sc(_small_sc()), timing, 1, seed + 1), timing),
        fc[sub],
        cdf[sub],
    )
    other = np.stack([t.numpy() for t in other], axis=1)
    assert np.abs(other - expected).max() > 0.05


def test_rerun_skips_finished_groups(generated) -> None:
    out, settings, _ = generated
    before = list_shards(out)
    report = generate_dataset(out, settings, sc=_small_sc(), progress=False)
    assert report.groups_done == [] and report.groups_skipped == [0, 1]
    assert list_shards(out) == before
    # other settings would add data the manifest does not describe: refused, nothing written
    from dataclasses import replace

    from delssome_norms.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="other settings \\(popsize, seed\\)"):
        generate_dataset(out, replace(settings, popsize=12, seed=99), sc=_small_sc(), progress=False)
    assert list_shards(out) == before


def test_more_subjects_complete_a_partial_last_group(generated, tmp_path) -> None:
    """3 subjects in groups of 2 left group 1 with syn-00002 only; asking for 5 generates the
    missing syn-00003 (its own shard) and group 2, and the manifest records 5 subjects."""
    import json
    import shutil
    from dataclasses import replace

    from delssome_norms.surrogate.generate import synthetic_subjects

    out, settings, _ = generated
    data_dir = tmp_path / "data"
    shutil.copytree(out, data_dir)
    more = replace(settings, n_subjects=5)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        report = generate_dataset(data_dir, more, sc=_small_sc(), progress=False)
    finally:
        torch.set_num_threads(threads)
    assert report.groups_done == [1, 2] and report.groups_skipped == [0]
    files = [s["file"] for s in list_shards(data_dir)]
    assert files == [
        "group_00000.npz", "group_00001.npz", "group_00001_from_00003.npz", "group_00002.npz",
    ]  # fmt: skip
    data = load_dataset(data_dir)
    assert sorted(data.subject_id.tolist()) == [f"syn-{i:05d}" for i in range(5)]
    assert data.n_candidates == 5 * settings.generations * settings.popsize
    manifest = json.loads((data_dir / "manifest.json").read_text())
    assert manifest["info"]["settings"]["n_subjects"] == 5
    assert manifest["summary"]["n_subjects"] == 5
    # syn-00003's truth is the one a data set of 5 from the start would hold
    _, g, _ = truth_maps(_small_sc())
    _, regional, true_g, _ = synthetic_subjects(more, 1, _small_sc(), g)
    k = data.subject_id.tolist().index("syn-00003")
    np.testing.assert_allclose(data.true_regional[k], regional[1], rtol=1e-6)
    assert float(data.true_g[k]) == pytest.approx(true_g[1], rel=1e-6)
    # asking again for 5 changes nothing; a run that died after its last shard but before the
    # manifest's count was updated is completed by the next run
    manifest["info"]["settings"]["n_subjects"] = 3
    (data_dir / "manifest.json").write_text(json.dumps(manifest))
    again = generate_dataset(data_dir, more, sc=_small_sc(), progress=False)
    assert again.groups_done == [] and [s["file"] for s in list_shards(data_dir)] == files
    manifest = json.loads((data_dir / "manifest.json").read_text())
    assert manifest["info"]["settings"]["n_subjects"] == 5


def test_recording_evaluator_matches_the_euler_evaluator(tmp_path) -> None:
    from delssome_norms.fit import EulerEvaluator
    from delssome_norms.surrogate.generate import RecordingEvaluator

    settings = quick_settings()
    timing = settings.timing(30.0)
    rng = np.random.default_rng(2)
    sc = _small_sc()
    fc = np.stack([np.corrcoef(rng.standard_normal((6, 40))) for _ in range(2)])
    cdf = np.cumsum(rng.uniform(0, 1, (2, 10000)), axis=1)
    cdf /= cdf[:, -1:]
    euler = EulerEvaluator(fc, cdf, sc, timing, n_dup=2)
    params = PFICParams(
        wEE=rng.uniform(2, 4, (4, 6)), wEI=rng.uniform(1.5, 3, (4, 6)),
        sigma=rng.uniform(0.002, 0.008, (4, 6)), G=rng.uniform(1, 3, 4),
    )  # fmt: skip
    idx = torch.tensor([0, 1, 1, 0])
    expected = euler(params, idx, seed=11)
    got = RecordingEvaluator(euler, tmp_path, first_generation=3)(params, idx, seed=11)
    for a, b in zip(got, expected):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    with np.load(tmp_path / "gen_00003.npz") as z:
        assert z["sim_fc_triu"].shape == (4, 15) and z["dup0_fcd_cdf"].shape == (4, 1000)
        np.testing.assert_array_equal(z["subject_index"], idx.numpy())


def test_stored_summaries_reproduce_the_losses(generated) -> None:
    """corr and l1 recomputed from the stored candidate FC equal the recorded losses."""
    from delssome_norms.surrogate.dataset import decode_cdf

    out, _, _ = generated
    data = load_dataset(out)
    assert data.has_summaries
    a = data.sim_fc_triu.astype(np.float64)
    b = data.fc_triu[data.subject].astype(np.float64)
    r = [np.corrcoef(x, y)[0, 1] for x, y in zip(a, b)]
    np.testing.assert_allclose(1 - np.array(r), data.losses[:, 0], atol=2e-3)
    np.testing.assert_allclose(np.abs(a.mean(1) - b.mean(1)), data.losses[:, 1], atol=2e-3)
    # KS on every 10th bin is a lower bound of the full-resolution KS, and close to it
    emp = np.cumsum(data.fcd_density.astype(np.float64), axis=1)[:, 9::10][data.subject]
    ks_coarse = np.abs(decode_cdf(data.sim_fcd_cdf) - emp).max(axis=1)
    assert np.all(ks_coarse <= data.losses[:, 2] + 1e-4)
    assert np.all(ks_coarse >= data.losses[:, 2] - 0.05)
    # the first duplicate is another noise draw of the same candidate: correlated, not identical
    assert not np.array_equal(data.dup0_fc_triu, data.sim_fc_triu)


def test_cross_pairs_losses_and_training(generated) -> None:
    """Cross-pair targets are the losses of candidate i against candidate j's first-duplicate scan."""
    from delssome_norms.surrogate.dataset import decode_cdf
    from delssome_norms.surrogate.network import SurrogateConfig
    from delssome_norms.surrogate.train import CrossPairs, TrainSettings, train_surrogate

    out, _, _ = generated
    data = load_dataset(out)
    cfg = SurrogateConfig(
        n_regions=6, fcd_bins=100, d_model=8, n_heads=2, n_layers=1, d_ff=16, d_subject=16
    )
    cross = CrossPairs(data, cfg, "cpu")
    assert len(cross) == int(data.valid().sum())
    i, j = torch.tensor([0, 3, 5]), torch.tensor([7, 3, 1])
    rows = np.flatnonzero(data.valid())
    got = cross.pair_targets(i, j).numpy()
    for k in range(3):
        a = data.sim_fc_triu[rows[i[k]]].astype(np.float64)
        b = data.dup0_fc_triu[rows[j[k]]].astype(np.float64)
        ks = np.abs(
            decode_cdf(data.sim_fcd_cdf[rows[i[k]]]) - decode_cdf(data.dup0_fcd_cdf[rows[j[k]]])
        ).max()
        expected = [min(1.0, 1 - np.corrcoef(a, b)[0, 1]), abs(a.mean() - b.mean()), ks]
        np.testing.assert_allclose(got[k], expected, atol=1e-5)
    subjects, regional, _g, targets = cross.sample(5, torch.Generator().manual_seed(0))
    assert subjects.fc_triu.shape == (5, 15) and subjects.fcd_dens.shape == (5, 100)
    assert regional.shape == (5, 6, 3) and targets.shape == (5, 3)
    result = train_surrogate(
        data,
        cfg,
        TrainSettings(epochs=1, batch_size=8, val_fraction=0.34, test_fraction=0.34),
        progress=False,
    )
    assert np.isfinite(result.history[0]["train_mse"])


def test_synthetic_subjects_rate_band_redraws_truths_outside_it() -> None:
    from delssome_norms.surrogate.generate import synthetic_subjects

    sc = _small_sc()
    _, g, _ = truth_maps(sc)
    settings = quick_settings(n_subjects=2, group_size=2)
    free, free_regional, _, free_ei = synthetic_subjects(settings, 0, sc, g)
    wide, wide_regional, _, wide_ei = synthetic_subjects(settings, 0, sc, g, rate_band=(0.0, 1e6))
    np.testing.assert_array_equal(free_regional, wide_regional)  # all pass: the same draws
    np.testing.assert_array_equal(free[1].fc, wide[1].fc)
    np.testing.assert_array_equal(free_ei, wide_ei)
    assert free_ei.shape == (2, sc.shape[0]) and np.all((free_ei > 0) & np.isfinite(free_ei))
    with pytest.raises(ValueError, match="r_E band"):  # no truth sits at 10-11 Hz
        synthetic_subjects(settings, 0, sc, g, max_tries=2, rate_band=(10.0, 11.0))


def test_truths_on_dk68_span_the_default_ten_coefficient_design() -> None:
    from delssome_norms.datasets import load_default_maps, load_default_template
    from delssome_norms.datasets.maps import standardised

    myelin, g, source = truth_maps(np.asarray(load_default_template().sc))
    maps = load_default_maps()
    np.testing.assert_allclose(myelin, standardised(maps.myelin))
    np.testing.assert_array_equal(g, maps.gradient)
    assert "default DK68 maps" in source
    space = Parameterisation(design=design_matrix(g, myelin, warn=False), gradient=g, myelin=myelin)
    coeffs = np.stack([sample_truth(space, np.random.default_rng(k)) for k in range(20)])
    assert coeffs.shape == (20, 10) and space.is_valid(coeffs).all()
    wei = space.to_regional(coeffs).wEI
    assert all(np.corrcoef(w, myelin)[0, 1] <= 0 for w in wei)
