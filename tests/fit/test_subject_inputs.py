"""Subject inputs at the edge, settings checks, the surrogate mode, the seeds and the r_E gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fit_helpers import N_TINY, tiny_cdf, tiny_fc, tiny_sc

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit import FitSettings, empirical_statistics, load_subject
from delssome_norms.fit.evaluate import SimulatedCandidates, apply_rate_gate
from delssome_norms.fit.seeding import call_seed, group_seed, subject_seed
from delssome_norms.io import write_matrix


def _files(tmp: Path) -> dict[str, Path]:
    paths = {
        "fc": tmp / "fc.csv",
        "fc2": tmp / "fc2.csv",
        "cdf": tmp / "cdf.csv",
        "sc": tmp / "sc.csv",
        "m": tmp / "m.csv",
        "g": tmp / "g.csv",
    }
    write_matrix(tiny_fc(seed=0), paths["fc"])
    write_matrix(tiny_fc(seed=1), paths["fc2"])
    write_matrix(tiny_cdf(), paths["cdf"])
    write_matrix(tiny_sc(), paths["sc"])
    write_matrix(np.linspace(1, 2, N_TINY), paths["m"])
    write_matrix(np.linspace(-1, 1, N_TINY), paths["g"])
    return paths


def test_load_subject_reads_and_combines_runs(tmp_path: Path) -> None:
    p = _files(tmp_path)
    s = load_subject("s", 0.72, 14.4, fc=f"{p['fc']};{p['fc2']}", fcd_cdf=[p["cdf"]], sc=p["sc"])
    z = np.arctanh(np.clip(np.stack([tiny_fc(seed=0), tiny_fc(seed=1)]), -1 + 1e-7, 1 - 1e-7)).mean(0)
    expected = np.tanh(z)
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(s.fc, expected, atol=1e-12)
    assert s.n_regions == N_TINY and s.myelin is None and s.sources["sc"] == str(p["sc"])
    both = load_subject(
        "s", 0.72, 14.4, fc=p["fc"], fcd_cdf=p["cdf"], sc=p["sc"], myelin=p["m"], gradient=p["g"]
    )
    assert both.myelin.shape == (N_TINY,) and both.gradient.shape == (N_TINY,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"myelin": "m"}, "give both myelin and gradient"),
        ({"n_regions": 7}, "expected 7 x 7"),
        ({"sc": None}, "default SC template has 68"),
        ({"scan_length": 14.0}, "not a whole number of frames"),
    ],
)
def test_load_subject_errors_name_the_problem(tmp_path: Path, kwargs: dict, message: str) -> None:
    p = _files(tmp_path)
    args = {"fc": p["fc"], "fcd_cdf": p["cdf"], "sc": p["sc"], "scan_length": 14.4}
    if "myelin" in kwargs:
        kwargs = {"myelin": p["m"]}
    args.update(kwargs)
    scan = args.pop("scan_length")
    with pytest.raises(InvalidInputError, match=message):
        load_subject("s", 0.72, scan, **args)


def test_empirical_statistics_match_numpy() -> None:
    rng = np.random.default_rng(3)
    runs = [rng.standard_normal((60, 5)), rng.standard_normal((45, 5))]
    fc, cdf = empirical_statistics(runs, tr=0.72, fcd_window=8)
    z = np.mean([np.arctanh(np.corrcoef(r.T) - np.eye(5) * 1e-9) for r in runs], axis=0)
    np.testing.assert_allclose(fc[np.triu_indices(5, 1)], np.tanh(z)[np.triu_indices(5, 1)], atol=1e-12)
    assert cdf.shape == (10000,) and cdf[-1] == 1.0 and np.all(np.diff(cdf) >= 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"seed": -1},
        {"dt_test": 0.0},
        {"n_dup": 0},
        {"test_top_k": 0},
        {"dtype": "float16"},
        {"rate_gate": (3.3, 2.7)},
    ],
)
def test_settings_reject_bad_values(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        FitSettings(**kwargs)


def test_settings_timing_and_fingerprint() -> None:
    s = FitSettings(burn_in=7.2, fcd_window=10)
    t = s.timing(0.72, 864.0, "test")
    assert t.dt == 0.0005 and t.burn_in == 7.2 and t.fcd_window == 10
    assert "generations" not in s.fingerprint()["cmaes"] and "device" not in s.fingerprint()
    assert s.with_generations(3).cmaes.generations == 3


def test_seeds_are_deterministic_and_distinct() -> None:
    assert subject_seed(1, "sub-01") == subject_seed(1, "sub-01")
    assert len({subject_seed(1, "sub-01"), subject_seed(1, "sub-02"), subject_seed(2, "sub-01")}) == 3
    g = group_seed(1, ["a", "b"])
    assert g != group_seed(1, ["b", "a"])
    seeds = {call_seed(g, st, k) for st in ("train", "val", "test") for k in range(3)}
    assert len(seeds) == 9 and all(0 <= x < 2**63 for x in seeds)


def test_rate_gate_invalidates_out_of_band_candidates() -> None:
    b, d, n = 3, 2, 4
    r_e = np.full((b, d, n), 3.0)
    r_e[1, 0, 2] = 2.5  # mean over duplicates 2.75: inside 2.7-3.3
    r_e[1, 1, 2] = 3.0
    r_e[2, :, 0] = 3.5  # outside
    valid = np.ones((b, d), dtype=bool)
    out = SimulatedCandidates(
        np.ones(b), np.ones(b), np.ones(b), np.ones((b, d, n)), np.ones((b, d, n)), r_e, valid
    )
    gated = apply_rate_gate(out, (2.7, 3.3))
    assert np.isfinite(gated.corr).tolist() == [True, True, False]
    assert gated.valid.tolist() == [[True, True], [True, True], [False, False]]
    np.testing.assert_allclose(gated.violation, [0.0, 0.0, 0.2 / n])  # 0.2 Hz above, in 1 of n regions
    # an invalid duplicate does not count towards the mean rate
    r_e2 = r_e.copy()
    r_e2[0, 1, :] = 100.0
    valid2 = valid.copy()
    valid2[0, 1] = False
    gated2 = apply_rate_gate(out._replace(r_e=r_e2, valid=valid2), (2.7, 3.3))
    assert np.isfinite(gated2.corr[0])
