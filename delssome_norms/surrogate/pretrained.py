"""Saving and loading trained cost predictors: safetensors weights plus JSON metadata.

A pretrained folder holds::

    model.safetensors   network weights, plus ``template_sc`` (N, N), the scaled SC it was trained on
    metadata.json       kind, format_version, atlas and regions, N, bins, network settings, the
                        timing range covered, the training-data summary, training settings and
                        time, metrics, the sha256 of model.safetensors and (``metadata_sha256``)
                        of its own content (see :data:`SHIPPED_METADATA_SHA256`)

Loading never unpickles anything (safetensors holds raw tensors only). :meth:`PretrainedSurrogate.check`
refuses, with an :class:`~delssome_norms.errors.InvalidInputError` naming both values, a subject
whose number of regions, number of FCD bins or structural connectivity differs from the training
data; a TR or scan length outside the range covered by the training data gives a warning (or an
error with ``timing="error"``), because the predictions were never checked there.

The default weights are looked up in ``$DELSSOME_NORMS_PRETRAINED``, then in the installed package
(``delssome_norms/_pretrained/<DEFAULT_NAME>``, copied there from ``pretrained/`` when a wheel is
built, see ``setup.py``), then in ``pretrained/<DEFAULT_NAME>`` at the root of the source tree
(:func:`default_pretrained_path`).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from safetensors.torch import load_file, save_file
from torch import Tensor

from delssome_norms import __version__, io
from delssome_norms.errors import (
    InvalidInputError,
    NotYetAvailableError,
    SurrogateTimingWarning,
)
from delssome_norms.io.digest import content_sha256
from delssome_norms.model.timing import MIN_FCD_WINDOW, fcd_window_frames
from delssome_norms.surrogate.network import CostPredictor, SurrogateConfig

PRETRAINED_FORMAT_VERSION = 1
"""Schema version of a pretrained folder."""
PRETRAINED_KIND = "delssome_norms.surrogate.pretrained"
WEIGHTS_FILE = "model.safetensors"
METADATA_FILE = "metadata.json"
TEMPLATE_KEY = "template_sc"
DEFAULT_NAME = "delssome_dk68"
"""Folder name of the shipped weights under ``pretrained/``."""
ENV_VAR = "DELSSOME_NORMS_PRETRAINED"
MAX_VALUES_NAMED = 8
"""Distinct TRs (scan lengths) a timing warning names; the others are counted."""
SC_ATOL = 1e-6
"""Largest accepted absolute difference between a subject's scaled SC and the template's."""


def default_pretrained_path() -> Path:
    """Where ``--mode surrogate`` looks for weights when none are given.

    ``$DELSSOME_NORMS_PRETRAINED`` if set; else the weights installed with the package
    (``delssome_norms/_pretrained/delssome_dk68``, present in a wheel); else the source tree's
    ``<root>/pretrained/delssome_dk68`` (the single source of the shipped weights).

    Returns
    -------
    Path
        The folder (not checked to exist).
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    installed = package / "_pretrained" / DEFAULT_NAME
    if (installed / METADATA_FILE).is_file():
        return installed
    return package.parent / "pretrained" / DEFAULT_NAME


def shipped_weights_folders() -> tuple[Path, Path]:
    """The folders of the shipped weights: the installed package's copy
    (``delssome_norms/_pretrained/delssome_dk68``) and the source tree's
    ``pretrained/delssome_dk68`` (whether they exist or not)."""
    package = Path(__file__).resolve().parents[1]
    return package / "_pretrained" / DEFAULT_NAME, package.parent / "pretrained" / DEFAULT_NAME


def is_shipped_weights_folder(folder: str | Path) -> bool:
    """``folder`` (symbolic links and ``..`` resolved) is one of :func:`shipped_weights_folders`:
    saving weights there would replace the shipped default weights of every surrogate-mode fit."""
    try:
        target = Path(folder).resolve()
        return any(target == shipped.resolve() for shipped in shipped_weights_folders())
    except (OSError, RuntimeError):  # a symbolic link loop: not a shipped folder
        return False


@dataclass
class PretrainedSurrogate:
    """A loaded cost predictor with the metadata that says where it may be used.

    Attributes
    ----------
    model : CostPredictor
        In eval mode, float32, on the CPU until moved.
    metadata : dict
        Contents of ``metadata.json``.
    template_sc : Tensor of shape (N, N) or None
        Scaled SC of the training subjects (None if they had different SCs).
    path : Path or None
        Folder it was loaded from.
    """

    model: CostPredictor
    metadata: dict[str, Any]
    template_sc: Tensor | None = None
    path: Path | None = None

    @property
    def config(self) -> SurrogateConfig:
        """Network settings."""
        return self.model.config

    def check(
        self,
        n_regions: int,
        bins: int,
        sc: Tensor | np.ndarray | None = None,
        tr: float | np.ndarray | None = None,
        scan_length: float | np.ndarray | None = None,
        timing: str = "warn",
        fcd_window: int | np.ndarray | None = None,
        advice: str | None = None,
    ) -> None:
        """Refuse subjects the weights were not trained for.

        Parameters
        ----------
        n_regions : int
            Regions of the subject(s).
        bins : int
            FCD-CDF bins of the subject(s).
        sc : array of shape (N, N) or (K, N, N), optional
            Scaled SC (max 0.02) of the subject(s); compared with the training template.
        tr, scan_length : float or array of shape (K,), optional
            Timing of the subject(s) [s]; compared with the covered range.
        timing : {"warn", "error", "ignore"}
            What to do when the timing lies outside the covered range.
        fcd_window : int or array of shape (K,), optional
            FCD window of the subject(s) [frames]; compared with the training data's.
        advice : str, optional
            What the timing message advises (see :meth:`check_timing`).

        Raises
        ------
        InvalidInputError
            N, bins or SC mismatch (or timing outside the range with ``timing="error"``).
        """
        source = str(self.path) if self.path else "pretrained surrogate"
        c = self.config
        if n_regions != c.n_regions:
            raise InvalidInputError(
                f"the weights were trained for N={c.n_regions} regions "
                f"({self.metadata.get('atlas', '?')}); the subject has N={n_regions}. Use --mode euler "
                "or train a surrogate for this atlas (delssome-norms surrogate generate --sc "
                "YOUR_SC, then surrogate train)",
                source,
            )
        if bins != c.cdf_bins:
            raise InvalidInputError(
                f"the weights expect FCD-CDFs with {c.cdf_bins} bins; the subject has {bins}", source
            )
        if sc is not None and self.template_sc is not None:
            sc_t = torch.as_tensor(np.asarray(sc), dtype=torch.float64)
            if sc_t.ndim == 2:
                sc_t = sc_t[None]
            diff = (sc_t - self.template_sc.to(torch.float64)).abs().amax().item()
            if not diff <= SC_ATOL:
                raise InvalidInputError(
                    "the subject's structural connectivity differs from the template the surrogate "
                    f"was trained on ({self.template_source()}; largest difference of scaled SC "
                    f"{diff:.3g} > {SC_ATOL:g}). {self._sc_advice()}",
                    source,
                )
        self.check_timing(tr, scan_length, timing, fcd_window, advice=advice)

    def template_source(self) -> str:
        """Where the training SC came from (``metadata.json``'s ``template.source``)."""
        template = self.metadata.get("template")
        return str(template.get("source", "?")) if isinstance(template, dict) else "?"

    def _sc_advice(self) -> str:
        """What to do about an SC other than the training template: the default template's
        weights need the default SC (no --sc); a lab's own weights need the SC they were
        trained on (--sc of that file)."""
        from delssome_norms.datasets import load_default_template

        if self.template_source() == load_default_template().source:
            return (
                "These weights need the default DK68 template SC (no --sc); for another SC use "
                "--mode euler, or train weights on it (delssome-norms surrogate generate --sc "
                "YOUR_SC, then surrogate train)"
            )
        return (
            "Give the SC these weights were trained on (--sc, the file recorded as their "
            "template source), use --mode euler, or train weights on this SC (delssome-norms "
            "surrogate generate --sc YOUR_SC, then surrogate train)"
        )

    def trained_fcd_window(self) -> int | str | None:
        """FCD window of the training data [frames]: an int, None for the default rule
        ``round(60 s / TR)``, or ``"unknown"`` when the metadata does not say."""
        for block in (
            self.metadata.get("timing"),
            (self.metadata.get("training_data") or {}).get("generation_settings"),
        ):
            if isinstance(block, dict) and "fcd_window" in block:
                value = block["fcd_window"]
                return None if value is None else int(value)
        return "unknown"

    def check_timing(
        self,
        tr: float | np.ndarray | None,
        scan_length: float | np.ndarray | None,
        timing: str = "warn",
        fcd_window: int | np.ndarray | None = None,
        subject_ids: Sequence[str] | None = None,
        advice: str | None = None,
    ) -> None:
        """Compare subjects' TR and scan length [s] with the range the weights were trained on,
        and their FCD window [frames] (resolved per subject; None: not checked) with the
        training data's.

        Outside the range, where ``metadata.json`` records no range (weights saved without
        ``timing``: nothing says which TR and scan length they fit), or with another FCD
        window (the network predicts the KS distance of FCD computed with its training window;
        a CDF of other windows is another distribution),
        ``timing="warn"`` warns (:class:`~delssome_norms.errors.InputWarning`) and ``"error"``
        refuses; either message names what the weights cover and what to do instead.

        Parameters
        ----------
        tr, scan_length : float or array of shape (K,), or None
            Subjects' timing [s]; ``None``: nothing is checked.
        timing : {"warn", "error", "ignore"}
        fcd_window : int or array of shape (K,), optional
            Subjects' FCD window [frames].
        subject_ids : sequence of str, optional
            The K subjects' ids: the message names a few subjects of each TR and scan length
            outside the range (without them it counts the subjects).
        advice : str, optional
            What the message advises after naming the problems; default: a fit's choices
            (``--mode euler``, or weights trained for the timing). ``surrogate evaluate`` gives
            its own (the fit's options do not apply to measuring weights).

        Every distinct TR and scan length outside the range is named, with its number of
        subjects when there are several.
        """
        source = str(self.path) if self.path else "pretrained surrogate"
        if timing == "ignore" or tr is None or scan_length is None:
            return
        cover = self.metadata.get("timing") or {}
        problems = []
        for name, values in (("TR", tr), ("scan length", scan_length)):
            key = "tr_range" if name == "TR" else "scan_length_range"
            v = np.atleast_1d(np.asarray(values, dtype=np.float64))
            if key not in cover:  # weights saved without it: any timing would pass unseen
                problems.append(
                    f"{METADATA_FILE} records no timing.{key}, so {name} "
                    f"{', '.join(x for x, _ in _values_of_subjects(v, v == v))} cannot be "
                    "checked against the timing of the training data"
                )
                continue
            lo, hi = cover[key]
            bad = (v < lo * (1 - 1e-6)) | (v > hi * (1 + 1e-6))
            if bad.any():
                pairs = _values_of_subjects(v, bad, subject_ids)
                where = f"outside the trained range [{lo:g}, {hi:g}] s"
                if len(pairs) == 1:  # "TR 3 s is outside ... (12 subjects: ...)"
                    value, count = pairs[0]
                    problems.append(f"{name} {value} is {where}" + (f" ({count})" if count else ""))
                else:
                    listed = ", ".join(f"{x} ({c})" if c else x for x, c in pairs)
                    problems.append(f"{name} {listed} are {where}")
        trained = self.trained_fcd_window()
        if fcd_window is not None and trained != "unknown":
            windows, trs = np.broadcast_arrays(
                np.atleast_1d(np.asarray(fcd_window)), np.atleast_1d(np.asarray(tr, dtype=np.float64))
            )
            for window, t in zip(windows, trs):
                expected = fcd_window_frames(t, trained)
                if int(window) != expected:
                    problems.append(
                        f"FCD window {int(window)} frames at TR {float(t):g} s differs from the "
                        f"{expected} frames the weights were trained with"
                        + (" (the default, about 60 s)" if trained is None else "")
                    )
                    break
        if problems:
            message = "; ".join(problems) + "; " + (advice or FIT_TIMING_ADVICE)
            if timing == "error":
                raise InvalidInputError(message, source)
            warnings.warn(f"{source}: {message}", SurrogateTimingWarning, stacklevel=2)


FIT_TIMING_ADVICE = (
    "surrogate predictions are unverified there (validation and test stay "
    "simulated, so the fit is still judged by simulation). To be safe, fit with "
    "--mode euler (or compare both modes on a few subjects), or train weights for "
    "this timing (delssome-norms surrogate generate --tr ... --scan-lengths ... "
    "[--fcd-window ...], then "
    "surrogate train) and pass them with --weights"
)
"""What a timing warning of :meth:`PretrainedSurrogate.check_timing` advises a fit."""


def _values_of_subjects(
    values: np.ndarray, selected: np.ndarray, subject_ids: Sequence[str] | None = None
) -> list[tuple[str, str]]:
    """The distinct ``values[selected]`` [s] in first-seen order, each as ``("3 s", "12
    subjects: s01, s02, s03 ...")``: its number of subjects and up to three of their ids ("" when
    the check is of one subject); beyond :data:`MAX_VALUES_NAMED` values the rest are counted."""
    ids = None if subject_ids is None or len(subject_ids) != len(values) else list(subject_ids)
    distinct = list(dict.fromkeys(values[selected].tolist()))
    pairs = []
    for value in distinct[:MAX_VALUES_NAMED]:
        rows = np.flatnonzero(selected & (values == value))
        count = ""
        if len(values) > 1:  # a cohort's check: how many subjects (which ones) have it
            count = f"{len(rows)} subject{'s' if len(rows) > 1 else ''}"
            if ids is not None:
                shown = ", ".join(str(ids[i]) for i in rows[:3])
                count += f": {shown}{' ...' if len(rows) > 3 else ''}"
        pairs.append((f"{value:g} s", count))
    if len(distinct) > MAX_VALUES_NAMED:
        rest = int(np.isin(values[selected], distinct[MAX_VALUES_NAMED:]).sum())
        pairs.append((f"{len(distinct) - MAX_VALUES_NAMED} more values", f"{rest} subjects"))
    return pairs


def _check_record(meta: dict[str, Any], source: str) -> None:
    """The parts of ``metadata.json`` that tools read besides the network: ``training_data``
    (an object; its ``generation_settings`` an object and its ``split_subject_ids`` an object of
    id lists) and ``template`` (an object), so that a hand-edited file is one clear error rather
    than a crash where they are used."""
    data = meta.get("training_data")
    problem = None
    if data is not None and not isinstance(data, dict):
        problem = f"training_data must be an object, got {type(data).__name__}"
    elif isinstance(data, dict):
        gen = data.get("generation_settings")
        split = data.get("split_subject_ids")
        if gen is not None and not isinstance(gen, dict):
            problem = "training_data.generation_settings must be an object"
        elif split is not None and not (
            isinstance(split, dict) and all(isinstance(v, list) for v in split.values())
        ):
            problem = "training_data.split_subject_ids must be an object of subject-id lists"
        elif isinstance(gen, dict):
            _check_timing_cover({"fcd_window": gen.get("fcd_window")}, source)
    template = meta.get("template")
    if problem is None and template is not None and not isinstance(template, dict):
        problem = f"template must be an object, got {type(template).__name__}"
    if problem:
        raise InvalidInputError(problem, source)


def _check_timing_cover(cover: Any, source: str) -> None:
    """``timing`` of ``metadata.json``: absent, or ranges ``[lo, hi]`` of TR and scan length [s]
    and an FCD window (frames >= ``MIN_FCD_WINDOW``, or null for the default rule)."""
    if cover is None:
        return
    if not isinstance(cover, dict):
        raise InvalidInputError(f"timing must be an object, got {cover!r}", source)
    window = cover.get("fcd_window")
    bad = isinstance(window, bool) or not isinstance(window, int) or window < MIN_FCD_WINDOW
    if window is not None and bad:
        raise InvalidInputError(
            f"timing.fcd_window must be a whole number of frames >= {MIN_FCD_WINDOW} (or null: "
            f"the default rule), got {window!r}",
            source,
        )
    for key in ("tr_range", "scan_length_range"):
        if key not in cover:
            continue
        value = cover[key]
        ok = isinstance(value, (list, tuple)) and len(value) == 2
        ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
        if not ok or not 0 < value[0] <= value[1]:
            raise InvalidInputError(
                f"timing.{key} must be [low, high] seconds with 0 < low <= high, got {value!r}",
                source,
            )


TRAINING_LOG_FILE = "training_log.json"
"""The training history ``surrogate train`` writes beside the weights (replaced with them)."""
METADATA_SHA_KEY = "metadata_sha256"
"""Entry of ``metadata.json`` holding the SHA-256 of its own content (edits are refused)."""
SHIPPED_METADATA_SHA256 = {
    # the weights shipped on 2026-12-04 (and still shipped), and those of 2026-11-27
    "6025de550aa6faaf4e8ced07e203a7fd57eecc148134285aa251c722336512d3": (
        "3b0f9e18ff149da4b39960accefa209a5e9e3da679f12beeb51ca0c3c6f21dd5"
    ),
    "c622a9aed55e8698ce63b8b9bb535f897ab465406458cb0fd0f01bee8858dd85": (
        "c1fce3ed8d992c71f704fe6617a24ade55218b0d9fba2c0bac6d80eecc22189c"
    ),
}
"""``weights_sha256`` of weights this package has shipped, each with the :data:`METADATA_SHA_KEY`
of the ``metadata.json`` shipped with them (those were shipped without it): a copy of the shipped
weights whose metadata lacks the entry is checked against it, so an edited copy (another
``gsc_scale``, a widened timing cover) is never taken for the shipped weights."""


def _make_sibling_dir(folder: Path, suffix: str) -> Path:
    """A new empty folder beside ``folder``, created with the user's umask like ``mkdir``
    (``tempfile.mkdtemp`` gives 0700, which would make the saved weights unreadable to the
    lab's group once the folder takes ``folder``'s place)."""
    while True:
        path = folder.parent / f".{folder.name}.{secrets.token_hex(6)}{suffix}"
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def save_pretrained(
    model: CostPredictor,
    folder: str | Path,
    metadata: dict[str, Any],
    template_sc: Tensor | np.ndarray | None = None,
    training_log: dict[str, Any] | None = None,
) -> Path:
    """Write ``model.safetensors`` and ``metadata.json`` into ``folder`` (atomically).

    Parameters
    ----------
    model : CostPredictor
    folder : path
    metadata : dict
        Extra fields (atlas, regions, timing, training_data, training, metrics); kind,
        format_version, code version, N, bins, network settings and the weights' sha256 are added.
    template_sc : array of shape (N, N), optional
        Scaled SC of the training subjects, stored with the weights (checked by
        :meth:`PretrainedSurrogate.check`).
    training_log : dict, optional
        Written as ``training_log.json`` in the same atomic step (a killed save never leaves new
        weights beside the previous training's log, or none).

    Returns
    -------
    Path of the folder.

    Raises
    ------
    InvalidInputError
        ``folder`` is a file, or one of the shipped weights' folders
        (:func:`shipped_weights_folders`), which are never replaced.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InvalidInputError("exists and is not a folder", str(folder))
    if is_shipped_weights_folder(folder):
        raise InvalidInputError(
            "is the folder of the shipped default weights (every surrogate-mode fit without "
            "weights of its own uses them): save the weights to another folder",
            str(folder),
        )
    folder.parent.mkdir(parents=True, exist_ok=True)
    # the new files are written into a fresh sibling folder that then takes the old one's place,
    # so that an interrupted save never leaves new weights beside old metadata (unloadable)
    staging = _make_sibling_dir(folder, ".tmp")
    try:
        _write_pretrained(model, staging, metadata, template_sc)
        if training_log is not None:
            io.write_json(io.strict_json(training_log), staging / TRAINING_LOG_FILE)
        if folder.is_dir():  # files of others in the folder move along; ours are replaced
            os.chmod(staging, folder.stat().st_mode & 0o7777)  # the folder keeps its mode
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(staging, folder)
            # moved only once the new folder is in place: an interruption before never deletes
            # them with the staging folder (they stay in the old one until moved)
            for entry in (old / folder.name).iterdir():
                if entry.name not in (WEIGHTS_FILE, METADATA_FILE, TRAINING_LOG_FILE):
                    os.replace(entry, folder / entry.name)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _write_pretrained(
    model: CostPredictor, folder: Path, metadata: dict[str, Any], template_sc: ArrayLike | None
) -> None:
    """The two files of :func:`save_pretrained`, written into ``folder``."""
    tensors = {
        k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()
    }
    if template_sc is not None:
        tensors[TEMPLATE_KEY] = torch.as_tensor(
            np.asarray(template_sc), dtype=torch.float32
        ).contiguous()
    with io.atomic_path(folder / WEIGHTS_FILE) as tmp:
        mode = tmp.stat().st_mode & 0o777  # atomic_path's file honours the umask ...
        save_file(tensors, str(tmp), metadata={"format_version": str(PRETRAINED_FORMAT_VERSION)})
        os.chmod(tmp, mode)  # ... safetensors replaces it with a 0600 file: keep the group's read
    c = model.config
    meta = {
        "kind": PRETRAINED_KIND,
        "format_version": PRETRAINED_FORMAT_VERSION,
        "delssome_norms_version": __version__,
        "n_regions": c.n_regions,
        "bins": c.cdf_bins,
        "network": c.to_dict(),
        "n_parameters": model.n_parameters(),
        **{k: v for k, v in metadata.items() if k not in {"kind", "format_version", "network"}},
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": io.file_sha256(folder / WEIGHTS_FILE),
    }
    meta = io.as_json_data(io.strict_json(meta))
    meta[METADATA_SHA_KEY] = content_sha256(meta, METADATA_SHA_KEY)
    io.write_json(meta, folder / METADATA_FILE)


def _pickle_problem(path: Path) -> str | None:
    """What to say of a weights file that is no safetensors file but a PyTorch checkpoint
    (``torch.save``: a zip archive, or a bare pickle before PyTorch 1.6); None otherwise."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError:
        return None
    pickle = len(head) > 1 and head[0] == 0x80 and head[1] in (2, 3, 4, 5)  # PROTO opcode
    if head != b"PK\x03\x04" and not pickle:
        return None
    kind = "zip archive" if head.startswith(b"PK") else "pickle"
    return (
        f"is not a safetensors file: it looks like a PyTorch checkpoint (torch.save's {kind}), "
        "which is never loaded (unpickling can run any code); give the weights as safetensors "
        f"(the {WEIGHTS_FILE} that `delssome-norms surrogate train` writes)"
    )


def _refuse_missing(folder: Path, is_default: bool) -> None:
    """Raise the error of a weights folder lacking ``metadata.json`` or ``model.safetensors``,
    saying which: no folder at all (train weights), a file given as the folder, or a folder
    copied without one of its two files (copy the whole folder ``surrogate train`` wrote)."""
    # the shipped folder is never a train --out (is_shipped_weights_folder): train elsewhere
    out = "W" if is_shipped_weights_folder(folder) else str(folder)
    train = (
        "train them with `delssome-norms surrogate generate --out D` then "
        f"`delssome-norms surrogate train --data D --out {out}`"
    )
    weights = [f for f in (METADATA_FILE, WEIGHTS_FILE) if (folder / f).is_file()]
    data_set = folder.is_dir() and not weights and (folder / "manifest.json").is_file()
    env = os.environ.get(ENV_VAR)
    if is_default and not data_set and env and Path(env) == folder:  # set already: say where
        if not folder.exists():
            state = "a folder that does not exist"
        elif not folder.is_dir():
            state = "a file, not a weights folder"
        else:
            missing = [f for f in (METADATA_FILE, WEIGHTS_FILE) if not (folder / f).is_file()]
            state = f"a folder without {' and '.join(missing)}"
        raise NotYetAvailableError(
            f"no pretrained surrogate weights found at {folder}: ${ENV_VAR} is set and points to "
            f"{state}; point it at a weights folder (holding {METADATA_FILE} and {WEIGHTS_FILE}), "
            f"unset it to use the shipped weights, or {train}"
        )
    if is_default and not data_set:  # a data set named by $ENV_VAR is told so, as when passed
        where = f" and set {ENV_VAR}=W (or pass --weights W)" if out == "W" else f", or set {ENV_VAR}"
        raise NotYetAvailableError(
            f"no pretrained surrogate weights found at {folder} ({METADATA_FILE} and "
            f"{WEIGHTS_FILE}); {train}{where}"
        )
    if folder.is_file():
        problem = (
            "is a file, not a weights folder: give the folder that `delssome-norms surrogate "
            f"train --out` wrote (holding {METADATA_FILE} and {WEIGHTS_FILE})"
        )
    elif not folder.is_dir():
        problem = f"does not exist: no pretrained surrogate weights there; {train}"
    else:
        missing = [f for f in (METADATA_FILE, WEIGHTS_FILE) if not (folder / f).is_file()]
        if len(missing) == 2 and (folder / "manifest.json").is_file():  # surrogate generate's
            problem = (
                "is a surrogate training data set (manifest.json), not weights: train weights "
                f"on it (delssome-norms surrogate train --data {folder} --out WEIGHTS) and give "
                "that folder"
            )
        elif len(missing) == 2:
            problem = (
                f"holds no pretrained surrogate weights ({METADATA_FILE} and {WEIGHTS_FILE}); " + train
            )
        else:
            problem = (
                f"has no {missing[0]}: the weights folder is incomplete (both {METADATA_FILE} "
                f"and {WEIGHTS_FILE} are needed, and one is checked against the other); copy "
                "the whole folder that `delssome-norms surrogate train` wrote"
            )
    raise InvalidInputError(problem, f"{ENV_VAR}={folder}" if is_default else str(folder))


def load_pretrained(folder: str | Path | None = None) -> PretrainedSurrogate:
    """Load a pretrained folder written by :func:`save_pretrained`.

    Parameters
    ----------
    folder : path, optional
        Default: :func:`default_pretrained_path`.

    Returns
    -------
    PretrainedSurrogate

    Raises
    ------
    NotYetAvailableError
        No weights at the default location.
    InvalidInputError
        Missing or corrupted files, unknown kind or format_version, weights that do not match
        the network settings; a ``folder`` that is no path.
    """
    if folder is not None and not isinstance(folder, (str, os.PathLike)):  # Path(3): TypeError
        raise InvalidInputError(
            f"must be the path of a pretrained folder (str or Path), got {type(folder).__name__}; "
            "pass None for the shipped weights",
            "load_pretrained(folder)",
        )
    is_default = folder is None
    folder = Path(folder) if folder is not None else default_pretrained_path()
    meta_path = folder / METADATA_FILE
    weights_path = folder / WEIGHTS_FILE
    if not meta_path.is_file() or not weights_path.is_file():
        _refuse_missing(folder, is_default)
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InvalidInputError(
            f"not valid JSON ({err.msg}, line {err.lineno})", str(meta_path)
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise InvalidInputError(f"cannot be read ({err})", str(meta_path)) from None
    if not isinstance(meta, dict):
        raise InvalidInputError("is not a JSON object", str(meta_path))
    if meta.get("kind") != PRETRAINED_KIND:
        raise InvalidInputError(
            f"kind is {meta.get('kind')!r}, expected {PRETRAINED_KIND!r}", str(meta_path)
        )
    version = meta.get("format_version")
    if isinstance(version, bool):  # true == 1 in Python: it used to pass as version 1
        raise InvalidInputError(
            f"format_version must be a whole number ({PRETRAINED_FORMAT_VERSION} for this version "
            f"of delssome_norms), got {json.dumps(version)}: the file was edited; restore it",
            str(meta_path),
        )
    if version != PRETRAINED_FORMAT_VERSION:
        raise InvalidInputError(
            f"format_version {version!r} is not supported by this version of "
            f"delssome_norms (reads {PRETRAINED_FORMAT_VERSION}); retrain or upgrade",
            str(meta_path),
        )
    expected_hash = meta.get("weights_sha256")
    if not isinstance(expected_hash, str) or len(expected_hash) != 64:
        raise InvalidInputError(
            f"has no valid weights_sha256, so {WEIGHTS_FILE} cannot be checked; save the weights "
            "again with this version (delssome-norms surrogate train) or restore metadata.json",
            str(meta_path),
        )
    recorded = meta.get(METADATA_SHA_KEY)  # weights saved before it was added lack it
    content = content_sha256(meta, METADATA_SHA_KEY)
    shipped = SHIPPED_METADATA_SHA256.get(expected_hash)
    if recorded is None and shipped is not None and content != shipped:
        raise InvalidInputError(
            f"is an edited copy of the shipped weights' metadata (it names their {WEIGHTS_FILE} "
            f"but lacks its {METADATA_SHA_KEY} and differs from the {METADATA_FILE} shipped with "
            "them): network settings, timing cover or training record may have changed, and a "
            "fit would still be taken for one with the shipped weights; restore the shipped "
            f"{METADATA_FILE} (or use the shipped folder itself)",
            str(meta_path),
        )
    if recorded is not None and recorded != content:
        raise InvalidInputError(
            "was edited after the weights were saved (its content no longer matches the sha256 "
            "recorded in it): network settings, timing cover or training record may have "
            "changed; retrain or restore the folder",
            str(meta_path),
        )
    if io.file_sha256(weights_path) != expected_hash:
        raise InvalidInputError(
            f"{WEIGHTS_FILE} does not match the sha256 recorded in {METADATA_FILE}", str(folder)
        )
    try:
        config = SurrogateConfig.from_dict(meta["network"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise InvalidInputError(
            f"malformed network settings ({type(err).__name__}: {err})", str(meta_path)
        ) from None
    if config.n_regions != meta.get("n_regions") or config.cdf_bins != meta.get("bins"):
        raise InvalidInputError("n_regions/bins disagree with the network settings", str(meta_path))
    _check_timing_cover(meta.get("timing"), str(meta_path))
    _check_record(meta, str(meta_path))
    try:
        tensors = load_file(str(weights_path))
    except Exception as err:  # safetensors raises its own error types for corrupted files
        problem = _pickle_problem(weights_path) or f"cannot read weights ({err})"
        raise InvalidInputError(problem, str(weights_path)) from None
    template = tensors.pop(TEMPLATE_KEY, None)
    n = config.n_regions
    if template is not None and (
        tuple(template.shape) != (n, n) or not bool(torch.isfinite(template).all())
    ):
        raise InvalidInputError(
            f"{TEMPLATE_KEY} has shape {tuple(template.shape)} or non-finite values; the network "
            f"has N={n} regions, so it must be a finite {n} x {n} matrix",
            str(weights_path),
        )
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(v.isfinite().all())]
    if bad:  # NaN or inf weights would give NaN predictions: every candidate scored as invalid
        raise InvalidInputError(
            f"network weights {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''} hold NaN or "
            "infinite values (a training that diverged, or a damaged file): these weights "
            "cannot score candidates; train them again (delssome-norms surrogate train) or "
            "restore the folder",
            str(weights_path),
        )
    model = CostPredictor(config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[1:2] or [str(err)]
        raise InvalidInputError(
            f"weights do not fit the network settings in {METADATA_FILE} ({first[0].strip()})",
            str(weights_path),
        ) from None
    model.eval()
    return PretrainedSurrogate(model=model, metadata=meta, template_sc=template, path=folder)
