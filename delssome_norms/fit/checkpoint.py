"""Checkpoints of a subject's fit without pickle: arrays (``.npz``) plus JSON metadata.

Layout of ``<subject dir>/checkpoint/``::

    state.json          format_version, fingerprint of the fit's inputs/settings, generations done
    train_00000.npz     generation 0: candidates (popsize, n_coeffs), corr, l1, ks (popsize,)
    train_00001.npz     ...
    val.npz, test.npz   results of the later stages (see :mod:`delssome_norms.fit.stages`)

The CMA-ES state itself is never stored. To resume, the search is rebuilt from the same seed and
its history is *replayed* (:func:`replay`): each stored generation is asked again, the candidates
are checked to be bit-identical to the stored ones, and the stored losses are told. No simulation is
repeated, and the rebuilt strategy is exactly the one that was interrupted.

A generation file is written (atomically) before ``state.json`` is updated, so a kill at any moment
leaves either the old or the new state; a generation file beyond ``generations_done`` is ignored
and recomputed.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from delssome_norms.errors import InvalidInputError
from delssome_norms.fit.cmaes import CMAESSearch
from delssome_norms.io import arrays_sha256, read_json_object, write_arrays, write_json

FORMAT_VERSION = 1
"""Schema version of the checkpoint files."""


def fingerprint_arrays(*arrays: np.ndarray) -> str:
    """SHA-256 (hex, 16 characters) of arrays' shapes and float64 bytes; identifies inputs."""
    return arrays_sha256(*arrays)[:16]


@dataclass(frozen=True)
class GenerationRecord:
    """One evaluated CMA-ES generation.

    Attributes
    ----------
    candidates : ndarray of shape (popsize, n_coeffs)
    corr, l1, ks : ndarray of shape (popsize,)
        Losses per candidate (NaN for invalid simulations).
    violation : ndarray of shape (popsize,), optional
        Gate violation of gated candidates (0 otherwise): the FIC stability margin [1/s] of
        an unstable candidate (inf where the FIC solve did not converge), or the r_E-gate
        distance [Hz]; see ``CMAESSearch.tell``.
    """

    candidates: np.ndarray
    corr: np.ndarray
    l1: np.ndarray
    ks: np.ndarray
    violation: np.ndarray | None = None

    @property
    def total(self) -> np.ndarray:
        """Total loss per candidate, shape (popsize,)."""
        return self.corr + self.l1 + self.ks

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Named arrays for an ``.npz`` file."""
        out = {"candidates": self.candidates, "corr": self.corr, "l1": self.l1, "ks": self.ks}
        if self.violation is not None:
            out["violation"] = self.violation
        return out


# The two readers below are the only file reads of this subpackage (io has no npz/JSON reader).
def flatten_keys(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dict as ``{"a.b": value}`` (dotted keys name what differs between fingerprints)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flatten_keys(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _read_json(path: Path) -> dict[str, Any]:
    return read_json_object(path, "checkpoint metadata", "use --overwrite to start this subject again")


def _read_npz(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Arrays of a checkpoint ``.npz``; any damage is one clear error naming the file."""
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as data:  # closed on damage
            arrays = {k: np.array(data[k]) for k in data.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        raise InvalidInputError(
            f"unreadable checkpoint arrays ({type(exc).__name__}: {exc}); use --overwrite to "
            "start this subject again",
            str(path),
        ) from None
    missing = [k for k in required if k not in arrays]
    if missing:
        raise InvalidInputError(
            f"checkpoint arrays lack {', '.join(missing)}; use --overwrite to start this subject again",
            str(path),
        )
    return arrays


def _check_record(arrays: dict[str, np.ndarray], path: Path) -> GenerationRecord:
    """Validate one generation's arrays: finite candidates, one loss per candidate."""
    cands = arrays["candidates"]
    if cands.ndim != 2 or not np.issubdtype(cands.dtype, np.floating):
        raise InvalidInputError(
            f"candidates have shape {cands.shape} ({cands.dtype}); expected (popsize, n_coeffs) "
            "floats; use --overwrite to start this subject again",
            str(path),
        )
    if not np.isfinite(cands).all():
        raise InvalidInputError(
            "candidates contain NaN/inf (damaged file); use --overwrite to start this subject again",
            str(path),
        )
    for k in ("corr", "l1", "ks", "violation"):
        if k in arrays and arrays[k].shape != (cands.shape[0],):
            raise InvalidInputError(
                f"{k} has shape {arrays[k].shape}, expected ({cands.shape[0]},) (damaged file); "
                "use --overwrite to start this subject again",
                str(path),
            )
    return GenerationRecord(
        **{k: arrays[k] for k in ("candidates", "corr", "l1", "ks")},
        violation=arrays.get("violation"),
    )


LATER_KEYS = ("group", "weights_sha256")
"""Fingerprint keys added after checkpoint format 1; checkpoints written without them still match
on the other keys (``group``: the subject ids of the lockstep group whose noise wrote them;
``weights_sha256``: the surrogate weights that scored their train stage)."""
IGNORED_KEYS = ("settings.surrogate_weights",)
"""Fingerprint keys not compared: the weights' folder may move (or be named relative to another
working folder); ``weights_sha256`` is what identifies them."""
LATER_STAGES = ("val", "val_pooled", "test", "profile")
"""Stages stored after training (``<stage>.npz``), built from the train generations."""


class Checkpoint:
    """The checkpoint folder of one subject.

    Parameters
    ----------
    directory : path
        ``<subject dir>/checkpoint``.
    fingerprint : dict
        JSON-able description of everything the results depend on (seed, settings, input hashes,
        timing, mode). A checkpoint written with another fingerprint is not reused: the user gets
        an :class:`~delssome_norms.errors.InvalidInputError` naming the differing keys.
    members : sequence of str, optional
        Subject ids of the lockstep batch this fit simulates in, in batch-row order (recorded in
        ``state.json`` as ``members`` with every write; :meth:`stored_members`). Not part of the
        fingerprint: which members are fitted is known only once the group's inputs are read.
    """

    def __init__(
        self,
        directory: str | Path,
        fingerprint: dict[str, Any],
        members: Sequence[str] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.fingerprint = json.loads(json.dumps(fingerprint))  # normalise tuples, numpy scalars
        self.members = None if members is None else [str(m) for m in members]
        self._stage_generations: int | None = None

    @property
    def state_path(self) -> Path:
        """Path of ``state.json``."""
        return self.directory / "state.json"

    def _train_path(self, generation: int) -> Path:
        return self.directory / f"train_{generation:05d}.npz"

    def _state(self) -> dict[str, Any] | None:
        if not self.state_path.exists():
            return None
        state = _read_json(self.state_path)
        if state.get("format_version") != FORMAT_VERSION:
            raise InvalidInputError(
                f"checkpoint format {state.get('format_version')} is not {FORMAT_VERSION}; "
                "delete the folder to start this subject again",
                str(self.state_path),
            )
        keys = self._differences(state)
        if keys == ["group"]:
            raise InvalidInputError(
                f"checkpoint {self._group_problem(state)}, or use --overwrite to start this "
                "subject again",
                str(self.state_path),
            )
        if keys:
            raise InvalidInputError(
                f"checkpoint was written with different inputs or settings ({', '.join(keys)}); "
                "use --overwrite to start this subject again, or another output folder",
                str(self.state_path),
            )
        if not isinstance(state.get("generations_done", 0), int):
            raise InvalidInputError(
                "generations_done is not an integer (damaged file); use --overwrite to start this "
                "subject again",
                str(self.state_path),
            )
        return state

    def _differences(self, state: dict[str, Any]) -> list[str]:
        stored = state.get("fingerprint", {})
        if not isinstance(stored, dict):
            return ["fingerprint"]
        a, b = flatten_keys(stored), flatten_keys(self.fingerprint)
        later = {k for k in b if k.split(".")[0] in LATER_KEYS and k.split(".")[0] not in stored}
        keys = (set(a) | set(b)) - later - set(IGNORED_KEYS)  # later: written before they existed
        return sorted(k for k in keys if a.get(k) != b.get(k))

    def _group_problem(self, state: dict[str, Any]) -> str:
        group = [str(g) for g in state["fingerprint"]["group"]]
        shown = ", ".join(group[:4]) + (", ..." if len(group) > 4 else "")
        now = [str(g) for g in self.fingerprint["group"]]
        if sorted(group) == sorted(now):  # the same members, listed in another order
            return (
                f"written in a lockstep group of the same {len(group)} subject(s) listed in "
                f"another order ({shown}): the manifest's rows were re-sorted, and the group's "
                "noise depends on the order of its members. Resume it with the manifest in its "
                "earlier row order (or --overwrite to start the subject again)"
            )
        return (
            f"written in a lockstep group of {len(group)} subject(s) ({shown}), not in this one of "
            f"{len(self.fingerprint['group'])}: the group's noise depends on its members, so "
            "continuing it here would match neither run. Resume it with the same manifest and "
            f"--batch-subjects {len(group)}"
        )

    def stale(self) -> str | None:
        """Why the stored checkpoint cannot be continued by this fit (None: absent or matching)."""
        if not self.state_path.exists():
            return None
        try:
            state = _read_json(self.state_path)
        except InvalidInputError as err:
            return err.problem.split(";")[0]
        keys = self._differences(state)
        if state.get("format_version") != FORMAT_VERSION:
            keys.append("format_version")
        if keys == ["group"]:
            return self._group_problem(state)
        return f"written with other inputs or settings: {', '.join(keys)}" if keys else None

    def generations_done(self) -> int:
        """Number of train generations stored (0 if there is no checkpoint)."""
        state = self._state()
        return 0 if state is None else int(state["generations_done"])

    def load_train(self, limit: int | None = None) -> list[GenerationRecord]:
        """Stored train generations, oldest first (at most ``limit``)."""
        n = self.generations_done()
        if limit is not None:
            n = min(n, limit)
        records = []
        for g in range(n):
            path = self._train_path(g)
            if not path.is_file():
                raise InvalidInputError(
                    f"{path.name} is missing although {g + 1} generation(s) are recorded; use "
                    "--overwrite to start this subject again",
                    str(self.directory),
                )
            arrays = _read_npz(path, ("candidates", "corr", "l1", "ks"))
            records.append(_check_record(arrays, path))
        return records

    def save_generation(self, generation: int, record: GenerationRecord) -> None:
        """Store generation ``generation`` (0-based) and mark it done (two atomic writes)."""
        write_arrays(record.to_arrays(), self._train_path(generation))
        self._write_state(generations_done=generation + 1)

    def stored_members(self) -> list[str] | None:
        """Subject ids of the lockstep batch that wrote the checkpoint, in batch-row order (None:
        no checkpoint, or one written before they were recorded)."""
        state = self._state()
        members = None if state is None else state.get("members")
        if members is None:
            return None
        if not isinstance(members, list):
            raise InvalidInputError(
                "members is not a list (damaged file); use --overwrite to start this subject again",
                str(self.state_path),
            )
        return [str(m) for m in members]

    def stages_generations(self) -> int | None:
        """Number of train generations the stored later stages were built from (None: not
        recorded; see :meth:`align_stages`)."""
        state = self._state()
        stored = None if state is None else state.get("stages_generations")
        return None if stored is None else int(stored)

    def discard(self) -> None:
        """Delete the checkpoint folder (with any nested searches' folders): the fit restarts.

        The folder is first renamed aside (atomic), so a kill midway leaves either the whole old
        checkpoint or none, never a ``state.json`` whose generation files are gone.
        """
        if not self.directory.exists():
            return
        aside = self.directory.with_name(f".{self.directory.name}.discarded")
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(self.directory, aside)
        shutil.rmtree(aside, ignore_errors=True)

    def _write_state(self, **fields: Any) -> None:
        state = {"format_version": FORMAT_VERSION, "fingerprint": self.fingerprint}
        if self.state_path.exists():
            old = _read_json(self.state_path)
            state.update({k: v for k, v in old.items() if k not in state})
        if self.members is not None:
            state["members"] = self.members
        state.update(fields)
        state.setdefault("generations_done", 0)
        write_json(state, self.state_path)

    def align_stages(self, generations: int) -> bool:
        """Discard later stages built from another number of train generations.

        ``generations`` is not part of the fingerprint, so a search can be extended (or cut
        short) on resume; the validation, test and profile stages, though, are built from the
        train generations, so stored ones are kept only when they were built for this number
        (recorded in ``state.json`` as ``stages_generations`` by :meth:`save_stage`; checkpoints
        written before it was recorded keep theirs). Call it before the stages run.

        Returns
        -------
        bool
            True when stored stages were discarded (they are recomputed from the stored train
            generations, as a fit run with ``generations`` from the start would).
        """
        self._stage_generations = int(generations)
        state = self._state()
        stored = None if state is None else state.get("stages_generations")
        if stored is None or int(stored) == self._stage_generations:
            return False
        present = [s for s in LATER_STAGES if (self.directory / f"{s}.npz").exists()]
        self._write_state(stages_generations=self._stage_generations)
        for s in present:
            (self.directory / f"{s}.npz").unlink()
        return bool(present)

    def save_stage(self, stage: str, arrays: dict[str, np.ndarray]) -> None:
        """Store the result arrays of a later stage (``"val"``, ``"test"``, ...).

        ``state.json`` records first which number of train generations the stages are built
        from (:meth:`align_stages`), so a kill between the two writes leaves no stage that
        could be mistaken for another budget's.
        """
        generations = self._stage_generations
        if generations is not None:
            self._write_state(stages_generations=generations)
        elif not self.state_path.exists():
            self._write_state()
        write_arrays(arrays, self.directory / f"{stage}.npz")

    def load_stage(self, stage: str) -> dict[str, np.ndarray] | None:
        """Result arrays of a stage, or None if it was not stored."""
        path = self.directory / f"{stage}.npz"
        if not path.exists() or self._state() is None:
            return None
        return _read_npz(path)


def replay(search: CMAESSearch, records: list[GenerationRecord], source: str = "checkpoint") -> None:
    """Bring a freshly built search to the state after ``records`` without simulating anything.

    Parameters
    ----------
    search : CMAESSearch
        Built with the same space, settings and seed as the interrupted search.
    records : list of GenerationRecord
        The stored generations, oldest first.
    source : str
        Name used in the error message.

    Raises
    ------
    InvalidInputError
        If a replayed generation does not reproduce the stored candidates bit for bit (another
        pycma/numpy version, or different inputs).
    """
    for g, rec in enumerate(records):
        cands = search.ask()
        if (
            cands is None
            or cands.shape != rec.candidates.shape
            or not np.array_equal(cands, rec.candidates)
        ):
            raise InvalidInputError(
                f"replaying generation {g} did not reproduce the stored candidates (different "
                "pycma/numpy version or inputs); use --overwrite to start this subject again",
                source,
            )
        search.tell(rec.total, rec.violation)
