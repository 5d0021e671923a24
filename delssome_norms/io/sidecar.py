"""The repetition time (TR) of a BOLD run from its JSON sidecars (BIDS ``RepetitionTime``).

One rule for every command that reads time series (``prepare --timeseries``, ``prepare
--bids-dir``, ``estimate-ei --timeseries``, ``validate --timeseries``):

1. The run's own sidecar (same name, ``.json``: ``run1.json`` next to ``run1.tsv.gz``).
2. Otherwise, for a run with a BIDS name (``sub-<label>_...``), the BIDS inheritance principle:
   a ``*_bold.json`` or ``*_timeseries.json`` applies when every run entity it names (sub, ses,
   task, acq, ce, rec, dir, run, echo) equals the run's; derivative entities (space, seg, desc,
   ...) are not compared, so fMRIPrep's ``..._desc-preproc_bold.json`` applies to XCP-D's
   ``..._seg-..._timeseries.tsv`` of the same run. Such files are looked for in the run's folder,
   then in each folder above it up to the dataset root (the folder that holds the run's
   ``sub-<label>`` folder): the nearest folder with one that gives RepetitionTime wins, and in
   one folder the file naming the most run entities wins (``sub-01_task-rest_run-1_bold.json`` over
   ``sub-01_task-rest_bold.json``). Files that tie and disagree are refused: the TR would be a
   guess.

Which TR a run then gets when one is also given (``--tr``, a manifest's ``tr``, ``load_subject``'s
``tr``) is :func:`given_or_sidecar_tr`: the given one, with a warning where a sidecar differs;
without one, the sidecars' (``prepare --bids-dir`` has its own rule, in ``cli/run_tr.py``, built on
:func:`runs_sidecar_tr`).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from delssome_norms.errors import InputWarning, InvalidInputError

BIDS_ENTITY = r"(?:^|_){key}-([A-Za-z0-9]+)"
RUN_ENTITIES = ("sub", "ses", "task", "acq", "ce", "rec", "dir", "run", "echo")
"""BIDS entities that tell one acquisition (run) from another; files that share them all are
several derivatives of one run."""

_BIDS_JSON = re.compile(r"^(?:[A-Za-z0-9]+-[A-Za-z0-9]+_)*(bold|timeseries)\.json$")
"""A BIDS-named sidecar of a BOLD run or of its time series (entities, then the suffix)."""
_SUBJECT_FOLDER = re.compile(r"^sub-[A-Za-z0-9]+$")
_DATA_SUFFIXES = (".tsv", ".csv", ".txt", ".npy", ".npz")


def entity(name: str, key: str) -> str | None:
    """The label of BIDS entity ``key`` in a file name (``sub-01_task-rest...``), or None."""
    m = re.search(BIDS_ENTITY.format(key=key), name)
    return m.group(1) if m else None


def _own_sidecar(path: Path) -> Path:
    stem = path.name.removesuffix(".gz")
    for suffix in _DATA_SUFFIXES:
        stem = stem.removesuffix(suffix)
    return path.with_name(stem + ".json")


def _tr_of(side: Path, sampling_frequency: bool) -> float | None:
    """RepetitionTime [s] in one sidecar (or 1 / SamplingFrequency, for a time series's own)."""
    from delssome_norms.io.json_object import read_json_object

    meta = read_json_object(side, "sidecar", "fix or remove it")
    value = meta.get("RepetitionTime")
    freq = meta.get("SamplingFrequency")
    if value is None and sampling_frequency and isinstance(freq, (int, float)) and freq > 0:
        value = 1.0 / float(freq)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInputError(f"RepetitionTime is not a number ({value!r})", str(side))
    return float(value)


def _levels(path: Path) -> list[Path]:
    """The run's folder, then each folder above it up to the dataset root (the folder holding
    the run's ``sub-<label>`` folder); only the run's folder outside a BIDS tree."""
    chain = [path.parent, *path.parent.parents]
    subjects = [i for i, folder in enumerate(chain) if _SUBJECT_FOLDER.match(folder.name)]
    if not subjects:
        return chain[:1]
    return chain[: min(subjects[0] + 2, len(chain))]


def find_sidecar_tr(path: str | Path) -> tuple[float, Path] | None:
    """The TR [s] of one run from its JSON sidecars and the file that gave it, or None.

    Raises
    ------
    InvalidInputError
        A sidecar whose RepetitionTime is not a number, or equally near sidecars that disagree.
    """
    p = Path(path).absolute()
    own = _own_sidecar(p)
    if own.is_file() and (value := _tr_of(own, sampling_frequency=True)) is not None:
        return value, own
    labels = {k: entity(p.name, k) for k in RUN_ENTITIES}
    if labels["sub"] is None:  # not a BIDS name: only a sidecar of its own name applies
        return None
    for folder in _levels(p):
        found: list[tuple[int, float, Path]] = []
        for side in sorted(folder.glob("*.json")):
            m = _BIDS_JSON.match(side.name)
            if side == own or not m:
                continue
            named = {k: v for k in RUN_ENTITIES if (v := entity(side.name, k)) is not None}
            if any(labels[k] != v for k, v in named.items()):
                continue  # another subject, session, task or run
            value = _tr_of(side, sampling_frequency=m.group(1) == "timeseries")
            if value is not None:
                found.append((len(named), value, side))
        if not found:
            continue
        best = max(n for n, _, _ in found)
        values: dict[float, Path] = {}
        for n, value, side in found:
            if n == best:
                values.setdefault(round(value, 6), side)
        if len(values) > 1:
            listing = ", ".join(f"{v:g} s in {f}" for v, f in values.items())
            raise InvalidInputError(
                f"has no sidecar of its own and the JSON sidecars of its run disagree on "
                f"RepetitionTime ({listing})",
                str(path),
            )
        ((value, side),) = values.items()
        return value, side
    return None


def runs_sidecar_tr(paths: Sequence[str | Path], sid: str) -> tuple[float, Path, list[str]] | None:
    """The RepetitionTime [s] the JSON sidecars of one subject's runs give, the sidecar that gave
    it and the runs that have none; None where no run has one.

    Raises
    ------
    InvalidInputError
        Runs whose sidecars give different TRs (attributed to ``sid``), or a sidecar refused by
        :func:`find_sidecar_tr`.
    """
    found = {str(p): find_sidecar_tr(p) for p in paths}
    values = sorted({round(v[0], 6) for v in found.values() if v is not None})
    if len(values) > 1:
        raise InvalidInputError(f"runs have different RepetitionTime {values} s in their sidecars", sid)
    if not values:
        return None
    source = next(v[1] for v in found.values() if v is not None)
    return values[0], source, [p for p, v in found.items() if v is None]


_WARNED: ContextVar[set[tuple[str, float, str]] | None] = ContextVar("sidecar_tr_warned", default=None)
"""Runs warned about inside :func:`warnings_once_per_run` (a command checks its runs before
``load_subject`` reads them, a cohort its manifest before each row is loaded); outside one, every
call warns."""


@contextmanager
def warnings_once_per_run() -> Iterator[None]:
    """Within this context each run's sidecar mismatch (run, given TR, sidecar's) is warned about
    once; the CLI opens one per command. Python callers outside one are warned on every call."""
    token = _WARNED.set(set())
    try:
        yield
    finally:
        _WARNED.reset(token)


def warn_other_sidecar_tr(
    paths: Sequence[str | Path], given: float, given_name: str = "--tr", subject: str | None = None
) -> None:
    """Warn, for each run whose JSON sidecar gives a RepetitionTime more than 1 % from ``given``
    (named ``given_name``), that ``given`` is used: one of the two is wrong, and the TR sets the
    FCD window and the scan length. ``subject`` (if given) is named first. A run whose sidecars
    cannot give one TR (they disagree, or one is unreadable) is warned about too: ``given``
    decides. Once per run in :func:`warnings_once_per_run`."""
    warned = _WARNED.get()
    for p in paths:
        who = f"{subject} ({p})" if subject else str(p)
        try:
            found = find_sidecar_tr(p)
        except InvalidInputError as err:
            text, detail = None, f"{who}: {err.problem}; {given_name} {given:g} s is used"
        else:
            if found is None or abs(found[0] - given) <= 0.01 * given:
                continue
            text, detail = (
                f"{found[0]:g}|{found[1]}",
                (
                    f"{who}: its JSON sidecar {found[1]} gives RepetitionTime {found[0]:g} s but "
                    f"{given_name} is {given:g} s; {given_name} is used (it sets the FCD window and, "
                    "in a fit, the scan length): check which is right"
                ),
            )
        key = (str(Path(p).absolute()), round(float(given), 6), str(text))
        if warned is not None:
            if key in warned:
                continue
            warned.add(key)
        warnings.warn(detail, InputWarning, stacklevel=3)


def given_or_sidecar_tr(
    paths: Sequence[str | Path],
    given: float | None,
    given_name: str = "--tr",
    subject: str | None = None,
) -> tuple[float, Path | None]:
    """The TR [s] of runs given by name, and the sidecar it came from (None: ``given``).

    ``given`` (named ``given_name``) wins, with a warning for each run whose sidecar differs
    (:func:`warn_other_sidecar_tr`); without it, the runs' sidecars' own RepetitionTime (runs of
    different sidecar TRs are refused). The value is not range-checked here.

    Raises
    ------
    InvalidInputError
        Without ``given``, no run has a sidecar with RepetitionTime (attributed to ``subject``,
        or else to ``given_name``); runs whose sidecars disagree; an unreadable sidecar.
    """
    if given is not None:
        warn_other_sidecar_tr(paths, given, given_name, subject)
        return given, None
    found = runs_sidecar_tr(paths, subject or str(paths[0]))
    if found is None:
        hint = f"; give {given_name} (seconds)" if subject else ""
        raise InvalidInputError(
            "the TR (seconds) is needed for time series: no JSON sidecar with RepetitionTime next "
            f"to {paths[0]}{hint}",
            subject or given_name,
        )
    return found[0], found[1]


def person_id(subject_id: str) -> str:
    """The person of a ``subject_id``: the id without a BIDS ``_ses-<label>`` entity.

    ``prepare --bids-dir`` names each session of a subject with several sessions
    ``sub-<label>_ses-<label>``; those rows are one person. Ids without ``_ses-`` are returned
    unchanged (``sub-01_ses-2_run-1`` -> ``sub-01_run-1``; ``ses-1_x`` is unchanged).
    """
    text = str(subject_id)
    m = re.search(BIDS_ENTITY.format(key="ses"), text)  # as entity() finds it
    if m is None or m.start() == 0:  # the id starts with ses-<label>: not a session of a subject
        return text
    return text[: m.start()] + text[m.end() :]
