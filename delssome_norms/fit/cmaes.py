"""CMA-ES in coefficient space with rejection resampling and bounded restarts (pycma ask/tell).

:class:`CMAESSearch` wraps one :class:`cma.CMAEvolutionStrategy` per subject:

* **ask** draws candidates with pycma's ``ask`` in chunks of ``popsize`` and keeps the valid ones
  (bounds and wEI rules of the search space) until ``popsize`` are collected. Rejected candidates
  are therefore *resampled* from the same distribution, as in the reference code. If more than
  ``max_draws_factor x popsize`` draws are needed, the distribution has drifted out of the valid
  region: that is a collapse.
* **tell** passes the total losses to pycma. Invalid simulations (NaN) get ``invalid_fitness``
  (worse than any achievable loss, so they rank last). Fewer than ``min_finite`` finite losses in a
  generation, or a pycma termination criterion (``tolfun``, ``tolx``, ``conditioncov``, ...), is
  a collapse too.
* A collapse **restarts** the search from a new random initial mean (same generation budget; the
  generations already evaluated stay in the history); after ``max_restarts`` restarts the search
  stops early and :attr:`CMAESSearch.stopped` says why.

Selection uses pycma's default recombination weights with ``CMA_mu = mu`` (10 of 100) and active
covariance update; the reference code instead weights the 10 best by 1/cost (docs/science.md §5 allows
standard weighting). The initial step is ``sigma0 = 0.2`` with per-coefficient multipliers
``CMA_stds`` from :meth:`~delssome_norms.fit.parameterisation.Parameterisation.initial_stds`.

Every random number comes from a private :class:`numpy.random.Generator` (pycma's ``randn``
option), seeded from ``(seed, restart)``, so several searches can advance in lockstep in one
process without sharing numpy's global state, and a search can be rebuilt exactly by replaying its
history (:mod:`delssome_norms.fit.checkpoint`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from delssome_norms.errors import ConvergenceWarning, InvalidInputError

if TYPE_CHECKING:  # pycma imports matplotlib.pyplot: imported when a search starts, so that
    import cma  # validate, prepare and info load no plotting library

DEFAULT_MU = 10
"""Selected candidates when ``mu`` is not given (the paper's 10 of 100), capped at popsize // 2."""
IGNORED_STOP_KEYS = frozenset({"maxiter", "maxfevals", "timeout", "callback"})
"""pycma termination keys that are not collapses (the generation budget is managed here)."""
MIN_ADAPTED_GENERATIONS = 3
"""Generations a strategy must have been told before its covariance's longest axis is used
(:meth:`CMAESSearch.strategy_for`): a fresh one's covariance is the identity."""


class SearchSpace(Protocol):
    """What :class:`CMAESSearch` needs from a search space (e.g. ``Parameterisation``)."""

    @property
    def n_coeffs(self) -> int: ...

    def is_valid(self, coeffs: np.ndarray) -> np.ndarray: ...

    def initial_mean(self, rng: np.random.Generator) -> np.ndarray: ...

    def initial_stds(self, mean: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class CMAESSettings:
    """Settings of the CMA-ES search (defaults: docs/science.md §5).

    Parameters
    ----------
    generations : int, default 100
        Generations of the train stage (restarts included).
    popsize : int, default 100
        Candidates per generation.
    mu : int, optional
        Selected candidates (parents); default ``DEFAULT_MU`` (10, the paper's 10 of 100), at
        most ``popsize // 2`` (so a small ``popsize`` alone is a valid setting).
    sigma0 : float, default 0.2
        Initial step size (multiplied per coefficient by the space's ``initial_stds``).
    max_restarts : int, default 10
        Restarts allowed after a collapse.
    max_draws_factor : int, default 1000
        A generation may draw at most ``max_draws_factor * popsize`` candidates to find
        ``popsize`` valid ones.
    min_finite : int, default 2
        Fewer finite losses than this in a generation is a collapse.
    invalid_fitness : float, default 100.0
        Fitness given to invalid simulations (any valid total loss is below 5).
    """

    # "cli" metadata: the command-line option of a field (delssome_norms.cli.options)
    generations: int = field(default=100, metadata={"cli": {"help": "CMA-ES generations"}})
    popsize: int = field(default=100, metadata={"cli": {"help": "candidates per generation"}})
    mu: int | None = field(
        default=None,
        metadata={
            "cli": {"help": "selected candidates (default 10, at most popsize // 2)", "type": int}
        },
    )
    sigma0: float = 0.2
    max_restarts: int = 10
    max_draws_factor: int = 1000
    min_finite: int = 2
    invalid_fitness: float = 100.0

    _parameter_constraints: ClassVar[dict[str, tuple[type, float, float | None]]] = {
        "generations": (int, 1, None),
        "popsize": (int, 4, None),
        "mu": (int, 1, None),
        "sigma0": (float, 0.0, None),
        "max_restarts": (int, 0, None),
        "max_draws_factor": (int, 1, None),
        "min_finite": (int, 1, None),
        "invalid_fitness": (float, 0.0, None),
    }

    def __post_init__(self) -> None:
        for name, (kind, low, high) in self._parameter_constraints.items():
            value = getattr(self, name)
            if name == "mu" and value is None:
                continue  # resolved below, once popsize is known to be valid
            ok_type = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            if kind is float:
                ok_type = ok_type or isinstance(value, (float, np.floating))
            too_low = ok_type and (value <= low if kind is float else value < low)
            if not ok_type or not math.isfinite(value) or too_low:
                rule = f"> {low}" if kind is float else f">= {low}"
                raise InvalidInputError(
                    f"{name} must be {'an integer' if kind is int else 'a number'} {rule}, "
                    f"got {value!r}",
                    name,
                )
            if high is not None and value > high:
                raise InvalidInputError(f"{name} must be <= {high}, got {value!r}", name)
            object.__setattr__(self, name, kind(value))  # NumPy scalars become plain numbers
        if self.mu is None:
            object.__setattr__(self, "mu", min(DEFAULT_MU, self.popsize // 2))
        if self.mu > self.popsize // 2:
            raise InvalidInputError(
                f"mu must be at most popsize // 2 = {self.popsize // 2}, got {self.mu}", "mu"
            )
        if self.min_finite > self.popsize:
            raise InvalidInputError(
                f"min_finite must be <= popsize, got {self.min_finite}", "min_finite"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for ``run.json`` and checkpoints)."""
        return asdict(self)


def derive_rng(seed: int, *keys: int) -> np.random.Generator:
    """A numpy Generator determined by ``seed`` and integer ``keys`` (``SeedSequence`` spawn key)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=keys)))


class CMAESSearch:
    """One CMA-ES search with resampling of invalid candidates and bounded restarts.

    Parameters
    ----------
    space : SearchSpace
        Search space (e.g. :class:`~delssome_norms.fit.parameterisation.Parameterisation`).
    settings : CMAESSettings
    seed : int
        Seed of every random number of this search (restart ``r`` uses ``(seed, r)``).

    Attributes
    ----------
    generation : int
        Completed generations (calls of :meth:`tell`).
    restarts : int
        Restarts done so far.
    events : list of dict
        One entry per restart or early stop: generation, kind and reason.
    stopped : str or None
        Why the search stopped before its generation budget, else None.

    Examples
    --------
    >>> import numpy as np
    >>> class Box:
    ...     n_coeffs = 2
    ...     def is_valid(self, c): return np.all(np.abs(c) < 5, axis=1)
    ...     def initial_mean(self, rng): return rng.uniform(-2, 2, 2)
    ...     def initial_stds(self, mean): return np.ones(2)
    >>> s = CMAESSearch(Box(), CMAESSettings(generations=60, popsize=20, mu=5, sigma0=1.0), seed=1)
    >>> while not s.done:
    ...     x = s.ask()
    ...     s.tell(((x - 1.5) ** 2).sum(axis=1))
    >>> bool(np.allclose(s.best_x, 1.5, atol=1e-2))
    True
    """

    def __init__(self, space: SearchSpace, settings: CMAESSettings, seed: int) -> None:
        self.space = space
        self.settings = settings
        self.seed = int(seed)
        self.generation = 0
        self.restarts = 0
        self.events: list[dict[str, Any]] = []
        self.stopped: str | None = None
        self.best_x: np.ndarray | None = None
        self.best_f = math.inf
        self._pending: np.ndarray | None = None
        # (first generation, end generation, strategy) of each strategy a restart replaced
        self._retired: list[tuple[int, int, Any]] = []
        self._first = 0  # the current strategy's first generation
        self._chunk_hint = 1  # pycma chunks the last generation needed (see _sample)
        self._es = self._new_es()

    # -- internals --------------------------------------------------------------------------
    def _new_es(self) -> cma.CMAEvolutionStrategy:
        import cma

        rng = derive_rng(self.seed, self.restarts)
        x0 = np.asarray(self.space.initial_mean(rng), dtype=np.float64)
        stds = np.asarray(self.space.initial_stds(x0), dtype=np.float64)
        stds = np.where(stds > 0, stds, 1e-12)
        self._rng = rng
        opts = {
            "popsize": self.settings.popsize,
            "CMA_mu": self.settings.mu,
            "CMA_stds": stds,
            "randn": lambda *shape: rng.standard_normal(shape),
            "seed": np.nan,
            "maxiter": np.inf,
            "verbose": -9,
            "verb_disp": 0,
            "verb_log": 0,
        }
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cma.CMAEvolutionStrategy(x0, self.settings.sigma0, opts)

    def _restart(self, reason: str) -> bool:
        """Restart after a collapse; returns False (and stops) when no restart is left."""
        if self.restarts >= self.settings.max_restarts:
            self.stopped = f"collapsed with no restart left ({reason})"
            self.events.append({"generation": self.generation, "kind": "stop", "reason": reason})
            warnings.warn(
                f"CMA-ES stopped at generation {self.generation}: {self.stopped}",
                ConvergenceWarning,
                stacklevel=3,
            )
            return False
        self.restarts += 1
        self.events.append({"generation": self.generation, "kind": "restart", "reason": reason})
        self._retired.append((self._first, self.generation, self._es))
        self._first = self.generation
        self._es = self._new_es()
        return True

    def _fast_path(self) -> bool:
        """pycma's genotype is the candidate itself (no transformation, bounds or integers)."""
        es = self._es
        return bool(
            es.gp.isidentity
            and not es.boundary_handler.has_bounds()
            and not es.opts["integer_variables"]
        )

    def _sample(self) -> np.ndarray | None:
        """``popsize`` valid candidates: pycma chunks of ``popsize`` draws, invalid ones dropped.

        The candidates (and the random numbers consumed) are exactly those of calling pycma's
        ``ask(popsize)`` until ``popsize`` valid ones are collected, but faster:

        * ``ask_geno`` draws what ``ask`` would without ``ask``'s per-solution Python work
          (phenotype copies and the ``sent_solutions`` archive, ~6 us per draw; with ~90 % of
          the draws rejected that was most of a lockstep generation's host time); ``tell`` then
          takes the candidates as genotypes (the genotype-phenotype map is the identity);
        * several chunks are drawn and checked at once (as many as the previous generation
          needed); chunks drawn beyond the one that completes the population are undone by
          restoring the random generator's state, so the next generation sees the same stream.
        """
        pop = self.settings.popsize
        fast = self._fast_path()
        kept: list[np.ndarray] = []
        n_kept = drawn = 0
        limit = self.settings.max_draws_factor
        while drawn < limit:
            n_chunks = min(max(1, self._chunk_hint), limit - drawn) if fast else 1
            chunks, states = [], []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in range(n_chunks):
                    chunks.append(np.asarray(self._es.ask_geno(pop) if fast else self._es.ask(pop),
                                             dtype=np.float64))  # fmt: skip
                    states.append(self._rng.bit_generator.state)
            draw = np.concatenate(chunks, axis=0)
            valid = self.space.is_valid(draw)
            need = pop - n_kept
            cum = np.cumsum(valid)
            if cum[-1] >= need:
                last = int(np.searchsorted(cum, need))  # row of the last candidate needed
                c = last // pop  # its chunk
                if c + 1 < n_chunks:  # undo the chunks drawn after it
                    self._rng.bit_generator.state = states[c]
                kept.append(draw[: (c + 1) * pop][valid[: (c + 1) * pop]][:need])
                self._chunk_hint = drawn + c + 1
                return np.concatenate(kept, axis=0)
            kept.append(draw[valid])
            n_kept += len(kept[-1])
            drawn += n_chunks
        self._chunk_hint = 1
        return None

    # -- public -----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """True when the generation budget is used or the search stopped early."""
        return self.stopped is not None or self.generation >= self.settings.generations

    @property
    def es(self) -> cma.CMAEvolutionStrategy:
        """The current pycma strategy (read-only use: mean ``es.mean``, step ``es.sigma``)."""
        return self._es

    def strategy_for(self, generation: int) -> cma.CMAEvolutionStrategy:
        """The pycma strategy that drew train generation ``generation`` (restarts replace it), in
        its final state; one told fewer than :data:`MIN_ADAPTED_GENERATIONS` generations (its
        covariance still about the identity, so its longest axis arbitrary) gives way to the
        strategy told the most generations (the latest of equals)."""
        spans = [*self._retired, (self._first, self.generation, self._es)]
        own = next((s for s in spans if s[0] <= generation < s[1]), spans[-1])
        if own[1] - own[0] >= MIN_ADAPTED_GENERATIONS:
            return own[2]
        return max(spans, key=lambda s: (s[1] - s[0], s[0]))[2]

    def ask(self) -> np.ndarray | None:
        """Sample ``popsize`` valid candidates.

        Returns
        -------
        ndarray of shape (popsize, n_coeffs), or None if the search stopped because no valid
        candidates could be found even after restarting.
        """
        if self.done:
            raise RuntimeError("the search is done; no more candidates to ask")
        if self._pending is not None:
            return self._pending.copy()
        while True:
            cands = self._sample()
            if cands is not None:
                self._pending = cands
                return cands.copy()
            limit = self.settings.max_draws_factor * self.settings.popsize
            if not self._restart(f"no {self.settings.popsize} valid candidates in {limit} draws"):
                return None

    def tell(self, fitness: np.ndarray, violation: np.ndarray | None = None) -> None:
        """Report the losses of the candidates returned by the last :meth:`ask`.

        Parameters
        ----------
        fitness : ndarray of shape (popsize,)
            Total loss per candidate (lower is better); NaN for invalid candidates.
        violation : ndarray of shape (popsize,), optional
            For invalid candidates that broke a soft constraint (the FIC stability gate or the
            r_E gate), how far they are from satisfying it (> 0). They are scored
            ``invalid_fitness + violation`` instead of ``invalid_fitness``, which steers the
            search towards the constraint, and they do not count as collapsed simulations.
        """
        if self._pending is None:
            raise RuntimeError("tell() called without a pending ask()")
        f = np.asarray(fitness, dtype=np.float64).reshape(-1)
        if f.shape[0] != self._pending.shape[0]:
            raise ValueError(f"expected {self._pending.shape[0]} fitness values, got {f.shape[0]}")
        v = (
            np.zeros_like(f)
            if violation is None
            else np.asarray(violation, dtype=np.float64).reshape(-1)
        )
        v = np.where(np.isfinite(v) & (v > 0), v, 0.0)
        cands, self._pending = self._pending, None
        finite = np.isfinite(f)
        if finite.any():
            i = int(np.argmin(np.where(finite, f, np.inf)))
            if f[i] < self.best_f:
                self.best_f, self.best_x = float(f[i]), cands[i].copy()
        scored = np.where(finite, f, self.settings.invalid_fitness + v)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if self._fast_path():
                # candidates from ``ask_geno`` are genotypes; no repair, as for archived ones
                self._es.tell(list(cands.copy()), scored.tolist(), check_points=False)
            else:
                self._es.tell(list(cands.copy()), scored.tolist())
            stop = {k: v for k, v in self._es.stop().items() if k not in IGNORED_STOP_KEYS}
        self.generation += 1
        if self.generation >= self.settings.generations:
            return
        informative = int((finite | (v > 0)).sum())
        if informative < self.settings.min_finite:
            self._restart(f"only {informative} valid simulations in generation {self.generation}")
        elif stop:
            self._restart("pycma termination: " + ", ".join(sorted(stop)))
