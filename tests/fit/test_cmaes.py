"""CMA-ES driver on analytic objectives: optimum found, constraints respected, restarts, isolation."""

from __future__ import annotations

import numpy as np
import pytest

from delssome_norms.errors import ConvergenceWarning, InvalidInputError
from delssome_norms.fit.cmaes import CMAESSearch, CMAESSettings
from delssome_norms.fit.design import design_matrix
from delssome_norms.fit.parameterisation import Bounds, Parameterisation

N = 24
SCALE = np.array([5, 5, 5, 2, 2, 2, 1, 0.005, 0.005, 0.005])


def _space() -> Parameterisation:
    x = np.linspace(-1.0, 1.0, N)
    myelin = 1.4 - 0.1 * x + 0.2 * np.sin(5 * x)
    gradient = (x - x.mean()) / x.std()
    return Parameterisation(
        design=design_matrix(gradient, myelin, warn=False),
        gradient=gradient,
        bounds=Bounds(wEI=(0.4, 3.2)),
        myelin=myelin,
    )


TARGET = np.array([5.0, 0.5, 0.3, 2.2, -0.5, 0.5, 1.2, 0.006, -0.001, 0.0005])


def _sphere(c: np.ndarray, target: np.ndarray = TARGET) -> np.ndarray:
    return (((c - target) / SCALE) ** 2).sum(axis=1)


def _run(search: CMAESSearch, objective) -> list[np.ndarray]:
    asked = []
    while not search.done:
        x = search.ask()
        if x is None:
            break
        asked.append(x)
        search.tell(objective(x))
    return asked


def test_finds_known_optimum_of_scaled_sphere() -> None:
    space = _space()
    assert space.is_valid(TARGET[None]).tolist() == [True]
    settings = CMAESSettings(generations=250, popsize=20, mu=5, sigma0=0.2)
    search = CMAESSearch(space, settings, seed=7)
    asked = _run(search, _sphere)
    assert search.stopped is None and search.generation == 250
    rel = np.abs(search.best_x - TARGET) / SCALE
    assert rel.max() < 1e-3, rel
    # every candidate handed out satisfied the bounds and the wEI rules
    assert all(space.is_valid(x).all() for x in asked)
    assert all(x.shape == (20, 10) for x in asked)


def test_optimum_outside_valid_region_lands_on_the_boundary() -> None:
    space = _space()
    flat = TARGET.copy()
    flat[3:6] = [2.0, 0.0, 0.1]  # std(wEI) = 0.1 < 0.3: invalid optimum
    assert space.is_valid(flat[None]).tolist() == [False]
    search = CMAESSearch(space, CMAESSettings(generations=150, popsize=20, mu=5), seed=3)
    _run(search, lambda c: _sphere(c, flat))
    wei = space.to_regional(search.best_x).wEI[0]
    assert space.is_valid(search.best_x[None]).tolist() == [True]
    assert 0.3 <= wei.std(ddof=1) < 0.32


class _Box:
    """Unconstrained-enough 3-D space: every candidate inside |c| < 100 is valid."""

    n_coeffs = 3

    def is_valid(self, c):
        return np.all(np.abs(c) < 100, axis=1)

    def initial_mean(self, rng):
        return rng.uniform(-1, 1, 3)

    def initial_stds(self, mean):
        return np.ones(3)


def test_all_invalid_simulations_restart_then_stop() -> None:
    search = CMAESSearch(_Box(), CMAESSettings(generations=50, popsize=10, mu=3, max_restarts=3), seed=0)
    with pytest.warns(ConvergenceWarning, match="no restart left"):
        _run(search, lambda c: np.full(len(c), np.nan))
    assert search.restarts == 3
    assert [e["kind"] for e in search.events] == ["restart"] * 3 + ["stop"]
    assert [e["generation"] for e in search.events] == [1, 2, 3, 4]
    assert search.generation == 4 and search.done and "valid simulations" in search.stopped
    assert search.best_x is None


def test_unsampleable_space_stops_with_reason() -> None:
    class Never:
        n_coeffs = 3

        def is_valid(self, c):
            return np.zeros(len(c), dtype=bool)

        def initial_mean(self, rng):
            return rng.normal(size=3)

        def initial_stds(self, mean):
            return np.ones(3)

    settings = CMAESSettings(generations=5, popsize=8, mu=2, max_restarts=2, max_draws_factor=3)
    search = CMAESSearch(Never(), settings, seed=0)
    with pytest.warns(ConvergenceWarning):
        assert search.ask() is None
    assert search.restarts == 2 and "valid candidates" in search.stopped and search.done


def test_restart_recovers_and_keeps_budget() -> None:
    calls = {"n": 0}
    target = np.array([3.0, -2.0, 0.5])

    def flaky(c):
        calls["n"] += 1
        return np.full(len(c), np.nan) if calls["n"] == 3 else ((c - target) ** 2).sum(axis=1)

    search = CMAESSearch(_Box(), CMAESSettings(generations=80, popsize=12, mu=3), seed=11)
    _run(search, flaky)
    assert search.restarts == 1 and search.events[0]["generation"] == 3
    assert search.generation == 80 and search.stopped is None
    np.testing.assert_allclose(search.best_x, target, atol=1e-4)


def test_same_seed_same_numbers_and_lockstep_isolation() -> None:
    space = _space()
    settings = CMAESSettings(generations=8, popsize=12, mu=3)
    alone = _run(CMAESSearch(space, settings, seed=5), _sphere)
    again = _run(CMAESSearch(space, settings, seed=5), _sphere)
    for a, b in zip(alone, again):
        np.testing.assert_array_equal(a, b)
    # two searches advanced alternately in one process (lockstep) do not disturb each other,
    # even while numpy's global generator is being used in between
    a, b = CMAESSearch(space, settings, seed=5), CMAESSearch(space, settings, seed=6)
    inter = []
    while not a.done:
        xa, xb = a.ask(), b.ask()
        np.random.seed(123)  # noqa: NPY002 (disturb numpy's global generator on purpose)
        np.random.rand(10)  # noqa: NPY002
        a.tell(_sphere(xa))
        b.tell(_sphere(xb))
        inter.append(xa)
    for x, y in zip(alone, inter):
        np.testing.assert_array_equal(x, y)
    other = _run(CMAESSearch(space, settings, seed=6), _sphere)
    assert not np.array_equal(other[0], alone[0])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("generations", 0),
        ("popsize", 2),
        ("mu", 0),
        ("mu", 60),
        ("sigma0", 0.0),
        ("sigma0", float("nan")),
        ("max_restarts", -1),
        ("popsize", 10.5),
        ("min_finite", 0),
        ("invalid_fitness", -1.0),
    ],
)
def test_settings_reject_bad_values(name: str, value) -> None:
    with pytest.raises(InvalidInputError, match=name):
        CMAESSettings(**{name: value})


def test_mu_defaults_to_ten_capped_at_half_the_population() -> None:
    """A small popsize alone is a valid setting (mu 10 of 8 was refused until --mu was given);
    an explicit mu is kept and still checked."""
    assert CMAESSettings().mu == 10
    assert CMAESSettings(popsize=8).mu == 4
    assert CMAESSettings(popsize=30).mu == 10
    assert CMAESSettings(popsize=8, mu=3).mu == 3
    assert CMAESSettings(popsize=8).to_dict()["mu"] == 4
    with pytest.raises(InvalidInputError, match="mu must be at most popsize // 2 = 4"):
        CMAESSettings(popsize=8, mu=10)


def test_a_smaller_popsize_on_the_cli_and_the_estimator_needs_no_mu() -> None:
    from delssome_norms.cli.estimate_cmd import settings_from_args
    from delssome_norms.cli.main import build_parser
    from delssome_norms.pipeline import EIEstimator

    parser = build_parser()
    for command in (["estimate-ei"], ["cohort", "--manifest", "m.csv"]):
        argv = [*command, "--popsize", "8", "--out-dir", "o"]
        args = parser.parse_args(argv)
        assert settings_from_args(args).cmaes.mu == 4, command  # the CLI's own checks pass too
        assert settings_from_args(parser.parse_args([*argv, "--mu", "3"])).cmaes.mu == 3
        with pytest.raises(InvalidInputError, match="--mu"):
            settings_from_args(parser.parse_args([*argv, "--mu", "0"]))
    assert EIEstimator(popsize=8).resolved_settings().cmaes.mu == 4
    assert EIEstimator(popsize=8, mu=2).resolved_settings().cmaes.mu == 2
    assert EIEstimator(popsize=40).resolved_settings().cmaes.mu == 10


def test_every_constraint_is_tested() -> None:
    tested = {"generations", "popsize", "mu", "sigma0", "max_restarts", "min_finite", "invalid_fitness"}
    assert tested | {"max_draws_factor"} == set(CMAESSettings._parameter_constraints)
    with pytest.raises(InvalidInputError, match="max_draws_factor"):
        CMAESSettings(max_draws_factor=0)


def test_ask_tell_protocol_errors() -> None:
    search = CMAESSearch(_space(), CMAESSettings(generations=1, popsize=8, mu=2), seed=0)
    with pytest.raises(RuntimeError):
        search.tell(np.zeros(8))
    x = search.ask()
    np.testing.assert_array_equal(search.ask(), x)  # a pending ask is returned again
    with pytest.raises(ValueError):
        search.tell(np.zeros(7))
    search.tell(np.zeros(8))
    assert search.done
    with pytest.raises(RuntimeError):
        search.ask()


def test_gate_violation_steers_the_search_without_restarts() -> None:
    target = np.array([2.0, -1.0, 0.5])
    search = CMAESSearch(_Box(), CMAESSettings(generations=60, popsize=12, mu=3), seed=2)
    while not search.done:
        x = search.ask()
        dist = np.linalg.norm(x - target, axis=1)
        inside = dist < 0.05
        fitness = np.where(inside, dist, np.nan)  # only candidates inside the "gate" are valid
        search.tell(fitness, np.where(inside, 0.0, dist))
    assert search.restarts == 0
    np.testing.assert_allclose(search.es.mean, target, atol=0.05)
    assert search.best_x is not None


class _ReferenceSearch(CMAESSearch):
    """The pre-issue-24 sampling: pycma ``ask(popsize)`` chunk by chunk, plain ``tell``."""

    def _fast_path(self) -> bool:
        return False


class _Narrow:
    """A space that rejects most draws (like the pFIC bounds), 10 coefficients."""

    n_coeffs = 10

    def is_valid(self, c):
        return (np.abs(c[:, :3]).sum(axis=1) < 0.6) & np.all(np.abs(c) < 5, axis=1)

    def initial_mean(self, rng):
        return rng.uniform(-0.1, 0.1, 10)

    def initial_stds(self, mean):
        return np.linspace(0.5, 1.5, 10)


def test_fast_sampling_draws_exactly_what_pycma_ask_draws() -> None:
    """ask_geno in batches of chunks with generator rewind = ask() chunk by chunk, bit for bit,
    over whole searches with invalid candidates, violations and a restart."""
    settings = CMAESSettings(generations=40, popsize=50, mu=10, sigma0=0.4, min_finite=30)
    runs = []
    for cls in (_ReferenceSearch, CMAESSearch):
        s = cls(_Narrow(), settings, seed=5)
        rng = np.random.default_rng(0)
        xs = []
        while not s.done:
            x = s.ask()
            f = ((x - 0.05) ** 2).sum(axis=1)
            f[rng.random(len(f)) < (0.9 if s.generation == 7 else 0.3)] = np.nan
            v = np.where(np.isnan(f), rng.random(len(f)), 0.0)
            s.tell(f, v * (s.generation != 7))  # generation 7: too few informative -> restart
            xs.append(x)
        runs.append((np.concatenate(xs), s.restarts, s.events))
    (a, ra, ea), (b, rb, eb) = runs
    assert ra == rb >= 1 and ea == eb
    np.testing.assert_array_equal(a, b)
