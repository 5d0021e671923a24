"""On-disk format of the surrogate's training data: subjects stored once, candidates as flat arrays.

A data set is a folder::

    manifest.json        format_version, N, bins, shard list, generation settings, summary
    shard_00000.npz      one lockstep cohort of subjects and every candidate evaluated for them
    shard_00001.npz      ...

Each shard holds

* per subject (S of them): ``subject_id`` (S,) str, ``fc_triu`` (S, N(N-1)/2) float32 (strict upper
  triangle of the empirical FC, row by row), ``fcd_density`` (S, bins) float32 (first difference of
  the FCD-CDF; its cumulative sum is the CDF), ``tr`` and ``scan_length`` (S,) float64 [s],
  ``sc`` (S, N, N) float32 (scaled SC, max 0.02), optionally ``true_regional`` (S, N, 3) and
  ``true_g`` (S,) for synthetic subjects with known ground truth;
* per candidate (C of them): ``regional`` (C, N, 3) float32 (wEE, wEI, sigma), ``g`` (C,) float32,
  ``subject`` (C,) int32 (row in this shard's subject arrays), ``generation`` (C,) int32 and
  ``losses`` (C, 3) float32 (corr_loss, l1_loss, ks_loss; NaN where the simulation was invalid).

Optionally, per candidate (``has_summaries``): its simulated FC upper triangle and FCD-CDF (mean over
duplicates, float32 / uint16 every 10th bin) and those of its first duplicate alone, which let
training pair any candidate with any other candidate's simulated scan (:mod:`~.train`).

Shards let generation write as it goes (an interrupted run keeps finished cohorts and resumes) and
let cohorts computed on different machines be merged by listing their shards in one manifest.
Arrays are read back with ``allow_pickle=False``; no pickle is ever involved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from delssome_norms import io
from delssome_norms.errors import InvalidInputError
from delssome_norms.model.timing import MIN_FCD_WINDOW

DATASET_FORMAT_VERSION = 1
"""Schema version of the data-set folder; bumped on incompatible changes."""
DATASET_KIND = "delssome_norms.surrogate.dataset"
MANIFEST = "manifest.json"

SUBJECT_KEYS = ("subject_id", "fc_triu", "fcd_density", "tr", "scan_length", "sc")
OPTIONAL_SUBJECT_KEYS = ("true_regional", "true_g")
CANDIDATE_KEYS = ("regional", "g", "subject", "generation", "losses")
SUMMARY_KEYS = ("sim_fc_triu", "sim_fcd_cdf", "dup0_fc_triu", "dup0_fcd_cdf")
"""Optional per-candidate simulated summaries (see :class:`SurrogateDataset`)."""
COARSE_CDF_STEP = 10
"""Stored candidate FCD-CDFs keep every 10th bin (bins 9, 19, ..., so 1000 of 10000)."""
CDF_LEVELS = 65535
"""Stored candidate FCD-CDFs are ``round(cdf * 65535)`` in uint16."""


def coarse_cdf(cdf: np.ndarray, step: int = COARSE_CDF_STEP) -> np.ndarray:
    """Every ``step``-th bin of FCD-CDFs, quantised to uint16.

    The kept bins are ``step - 1, 2 step - 1, ...``, so they end with the last bin when ``step``
    divides ``bins``.

    Parameters
    ----------
    cdf : ndarray of shape (..., bins)
    step : int
        Keep one bin in ``step``.

    Returns
    -------
    ndarray of shape (..., bins // step), uint16 (NaN stored as 0)
    """
    sub = np.asarray(cdf, dtype=np.float64)[..., step - 1 :: step]
    return np.round(np.nan_to_num(sub, nan=0.0).clip(0, 1) * CDF_LEVELS).astype(np.uint16)


def decode_cdf(stored: np.ndarray) -> np.ndarray:
    """Inverse of the quantisation of :func:`coarse_cdf`.

    Parameters
    ----------
    stored : ndarray of uint16

    Returns
    -------
    ndarray of float32, values in [0, 1], same shape
    """
    return np.asarray(stored, dtype=np.float32) / np.float32(CDF_LEVELS)


@dataclass
class SurrogateDataset:
    """Training pairs of the surrogate, held in memory as numpy arrays (see the module docstring).

    Attributes
    ----------
    subject_id : ndarray of str, shape (S,)
    fc_triu : ndarray of shape (S, N (N - 1) / 2), float32
    fcd_density : ndarray of shape (S, bins), float32
    tr, scan_length : ndarray of shape (S,), float64 [s]
    sc : ndarray of shape (S, N, N), float32
        Scaled structural connectivity of each subject.
    regional : ndarray of shape (C, N, 3), float32
        wEE, wEI, sigma of each candidate.
    g : ndarray of shape (C,), float32
    subject : ndarray of shape (C,), int32
        Row of the candidate's subject.
    generation : ndarray of shape (C,), int32
        CMA-ES generation the candidate was drawn in (0-based).
    losses : ndarray of shape (C, 3), float32
        corr_loss, l1_loss, ks_loss (NaN for invalid simulations).
    true_regional : ndarray of shape (S, N, 3), optional
    true_g : ndarray of shape (S,), optional
    sim_fc_triu : ndarray of shape (C, N (N - 1) / 2), float32, optional
        Each candidate's simulated FC (mean over its noise duplicates; what its losses compare).
    sim_fcd_cdf : ndarray of shape (C, bins / 10), uint16, optional
        Its simulated FCD-CDF (mean over duplicates), :func:`coarse_cdf` format.
    dup0_fc_triu, dup0_fcd_cdf : optional
        FC and FCD-CDF of the candidate's first noise duplicate alone: one simulated scan, which
        can serve as a further synthetic "subject" whose truth is the candidate.
    info : dict
        Free-form provenance (generation settings), saved in the manifest.
    """

    subject_id: np.ndarray
    fc_triu: np.ndarray
    fcd_density: np.ndarray
    tr: np.ndarray
    scan_length: np.ndarray
    sc: np.ndarray
    regional: np.ndarray
    g: np.ndarray
    subject: np.ndarray
    generation: np.ndarray
    losses: np.ndarray
    true_regional: np.ndarray | None = None
    true_g: np.ndarray | None = None
    sim_fc_triu: np.ndarray | None = None
    sim_fcd_cdf: np.ndarray | None = None
    dup0_fc_triu: np.ndarray | None = None
    dup0_fcd_cdf: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.subject_id = np.asarray(self.subject_id).astype(str)
        self.fc_triu = np.asarray(self.fc_triu, dtype=np.float32)
        self.fcd_density = np.asarray(self.fcd_density, dtype=np.float32)
        self.tr = np.asarray(self.tr, dtype=np.float64)
        self.scan_length = np.asarray(self.scan_length, dtype=np.float64)
        self.sc = np.asarray(self.sc, dtype=np.float32)
        self.regional = np.asarray(self.regional, dtype=np.float32)
        self.g = np.asarray(self.g, dtype=np.float32)
        self.subject = np.asarray(self.subject, dtype=np.int32)
        self.generation = np.asarray(self.generation, dtype=np.int32)
        self.losses = np.asarray(self.losses, dtype=np.float32)
        if self.true_regional is not None:
            self.true_regional = np.asarray(self.true_regional, dtype=np.float32)
        if self.true_g is not None:
            self.true_g = np.asarray(self.true_g, dtype=np.float32)
        for k in SUMMARY_KEYS:
            if getattr(self, k) is not None:
                dtype = np.float32 if k.endswith("fc_triu") else np.uint16
                setattr(self, k, np.asarray(getattr(self, k), dtype=dtype))
        self._check()

    # -- checks --------------------------------------------------------------------------------
    def _check(self) -> None:
        s, n = self.n_subjects, self.n_regions
        c = self.n_candidates

        def need(name: str, shape: tuple[int, ...]) -> None:
            got = getattr(self, name).shape
            if got != shape:
                raise InvalidInputError(f"{name} has shape {got}, expected {shape}", "surrogate dataset")

        need("subject_id", (s,))
        need("fc_triu", (s, n * (n - 1) // 2))
        if self.fcd_density.ndim != 2:
            raise InvalidInputError(
                f"fcd_density must be (S, bins), got shape {self.fcd_density.shape}", "surrogate dataset"
            )
        need("fcd_density", (s, self.fcd_density.shape[1]))
        need("tr", (s,))
        need("scan_length", (s,))
        need("regional", (c, n, 3))
        need("g", (c,))
        need("subject", (c,))
        need("generation", (c,))
        need("losses", (c, 3))
        if self.true_regional is not None:
            need("true_regional", (s, n, 3))
        if self.true_g is not None:
            need("true_g", (s,))
        present = [k for k in SUMMARY_KEYS if getattr(self, k) is not None]
        if present and len(present) != len(SUMMARY_KEYS):
            raise InvalidInputError(
                f"candidate summaries incomplete: only {present}", "surrogate dataset"
            )
        if present:
            for k in ("sim_fc_triu", "dup0_fc_triu"):
                need(k, (c, n * (n - 1) // 2))
            for k in ("sim_fcd_cdf", "dup0_fcd_cdf"):
                need(k, (c, self.bins // COARSE_CDF_STEP))
        if c and (self.subject.min() < 0 or self.subject.max() >= s):
            raise InvalidInputError("candidate subject index out of range", "surrogate dataset")
        # inputs of the network must be finite (only losses may be NaN: invalid simulations);
        # one NaN would make every training step NaN and end in "training diverged"
        for name in ("fc_triu", "fcd_density", "tr", "scan_length", "sc", "regional", "g"):
            bad = ~np.isfinite(getattr(self, name))
            if bad.any():
                raise InvalidInputError(
                    f"{name} holds {int(bad.sum())} non-finite value(s) (NaN or inf); only losses "
                    "may be NaN (invalid simulations)",
                    "surrogate dataset",
                )
        if s and (self.tr.min() <= 0 or self.scan_length.min() <= 0):
            raise InvalidInputError("tr and scan_length must be > 0 seconds", "surrogate dataset")

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n_subjects(self) -> int:
        """Number of subjects S."""
        return int(self.sc.shape[0])

    @property
    def n_regions(self) -> int:
        """Number of regions N."""
        return int(self.sc.shape[-1])

    @property
    def n_candidates(self) -> int:
        """Number of candidates C."""
        return int(self.regional.shape[0])

    @property
    def bins(self) -> int:
        """Number of FCD bins of the stored densities."""
        return int(self.fcd_density.shape[1])

    @property
    def has_summaries(self) -> bool:
        """Whether per-candidate simulated summaries are stored."""
        return self.sim_fc_triu is not None

    def valid(self) -> np.ndarray:
        """Candidates whose three losses are finite, bool array of shape (C,)."""
        return np.isfinite(self.losses).all(axis=1)

    def subset(self, subjects: Sequence[int] | np.ndarray) -> SurrogateDataset:
        """The data set restricted to some subjects (renumbered in the given order).

        Parameters
        ----------
        subjects : sequence of int
            Subject rows to keep.
        """
        keep = np.asarray(subjects, dtype=np.int64)
        new_index = np.full(self.n_subjects, -1, dtype=np.int64)
        new_index[keep] = np.arange(len(keep))
        rows = new_index[self.subject] >= 0
        return SurrogateDataset(
            **{k: getattr(self, k)[keep] for k in SUBJECT_KEYS},
            regional=self.regional[rows],
            g=self.g[rows],
            subject=new_index[self.subject[rows]],
            generation=self.generation[rows],
            losses=self.losses[rows],
            true_regional=None if self.true_regional is None else self.true_regional[keep],
            true_g=None if self.true_g is None else self.true_g[keep],
            **{k: None if getattr(self, k) is None else getattr(self, k)[rows] for k in SUMMARY_KEYS},
            info=dict(self.info),
        )

    def summary(self) -> dict[str, Any]:
        """Counts and ranges for manifests and metadata (JSON-ready)."""
        valid = self.valid()
        total = self.losses[valid].sum(axis=1) if valid.any() else np.zeros(0)
        return {
            "n_subjects": self.n_subjects,
            "n_candidates": self.n_candidates,
            "n_valid_candidates": int(valid.sum()),
            "n_regions": self.n_regions,
            "bins": self.bins,
            "generations": int(self.generation.max()) + 1 if self.n_candidates else 0,
            "tr_range": [float(self.tr.min()), float(self.tr.max())] if self.n_subjects else [],
            "scan_length_range": (
                [float(self.scan_length.min()), float(self.scan_length.max())] if self.n_subjects else []
            ),
            "total_loss_range": [float(total.min()), float(total.max())] if total.size else [],
        }

    # -- shards --------------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        """Arrays of one shard (see the module docstring)."""
        out = {k: getattr(self, k) for k in (*SUBJECT_KEYS, *CANDIDATE_KEYS)}
        for k in (*OPTIONAL_SUBJECT_KEYS, *SUMMARY_KEYS):
            if getattr(self, k) is not None:
                out[k] = getattr(self, k)
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray], info: dict | None = None) -> SurrogateDataset:
        """Inverse of :meth:`to_arrays`."""
        missing = [k for k in (*SUBJECT_KEYS, *CANDIDATE_KEYS) if k not in arrays]
        if missing:
            raise InvalidInputError(f"missing arrays {missing}", "surrogate dataset shard")
        kw = {k: arrays[k] for k in (*SUBJECT_KEYS, *CANDIDATE_KEYS)}
        for k in (*OPTIONAL_SUBJECT_KEYS, *SUMMARY_KEYS):
            kw[k] = arrays.get(k)
        return cls(**kw, info=dict(info or {}))


def concatenate(parts: Sequence[SurrogateDataset]) -> SurrogateDataset:
    """Join data sets (subject indices are offset; optional ground truth kept only if all have it).

    Parameters
    ----------
    parts : sequence of SurrogateDataset

    Returns
    -------
    SurrogateDataset
    """
    if not parts:
        raise InvalidInputError("no data to concatenate", "surrogate dataset")
    n = {p.n_regions for p in parts}
    bins = {p.bins for p in parts}
    if len(n) > 1 or len(bins) > 1:
        raise InvalidInputError(
            f"shards disagree on N {sorted(n)} or bins {sorted(bins)}", "surrogate dataset"
        )
    offsets = np.cumsum([0] + [p.n_subjects for p in parts[:-1]])
    kw: dict[str, Any] = {k: np.concatenate([getattr(p, k) for p in parts]) for k in SUBJECT_KEYS}
    for k in ("regional", "g", "generation", "losses"):
        kw[k] = np.concatenate([getattr(p, k) for p in parts])
    kw["subject"] = np.concatenate([p.subject.astype(np.int64) + o for p, o in zip(parts, offsets)])
    for k in (*OPTIONAL_SUBJECT_KEYS, *SUMMARY_KEYS):
        vals = [getattr(p, k) for p in parts]
        kw[k] = None if any(v is None for v in vals) else np.concatenate(vals)
    return SurrogateDataset(**kw, info=dict(parts[0].info))


# ------------------------------------------------------------------------------ folder I/O


def _read_manifest(folder: Path) -> dict[str, Any]:
    path = folder / MANIFEST
    if not path.is_file():
        if not folder.exists():
            problem = (
                f"does not exist (no {MANIFEST}); give a data-set folder written by "
                "`surrogate generate --out`"
            )
        elif (folder / "metadata.json").is_file() and (folder / "model.safetensors").is_file():
            problem = (
                "holds trained weights (metadata.json, model.safetensors), not a data set: give "
                "--data the folder `surrogate generate --out` wrote (and the weights to --weights)"
            )
        else:
            problem = f"no {MANIFEST}; is this a surrogate data set folder?"
        raise InvalidInputError(problem, str(folder))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise InvalidInputError(f"not valid JSON ({err.msg}, line {err.lineno})", str(path)) from None
    except UnicodeDecodeError as err:
        raise InvalidInputError(f"is not UTF-8 text ({err.reason})", str(path)) from None
    if not isinstance(manifest, dict):
        raise InvalidInputError("is not a JSON object", str(path))
    if manifest.get("kind") != DATASET_KIND:
        raise InvalidInputError(
            f"kind is {manifest.get('kind')!r}, expected {DATASET_KIND!r}", str(path)
        )
    version = manifest.get("format_version")
    if version != DATASET_FORMAT_VERSION:
        raise InvalidInputError(
            f"format_version {version!r} is not supported (this version reads {DATASET_FORMAT_VERSION})",
            str(path),
        )
    shards = manifest.get("shards")
    ok = isinstance(shards, list) and all(
        isinstance(e, dict) and isinstance(e.get("file"), str) and e["file"] for e in shards
    )
    for key in ("n_regions", "bins"):
        value = manifest.get(key)
        ok = ok and isinstance(value, int) and not isinstance(value, bool) and value >= 1
    info = manifest.get("info", {})
    settings = info.get("settings", {}) if isinstance(info, dict) else None
    window = settings.get("fcd_window") if isinstance(settings, dict) else None
    ok = ok and isinstance(settings, dict)  # the generation settings training and evaluate read
    ok = ok and (window is None or (type(window) is int and window >= MIN_FCD_WINDOW))
    if not ok:
        raise InvalidInputError(
            "is malformed: it needs n_regions and bins (positive integers), info (an object; its "
            f"settings an object, their fcd_window frames >= {MIN_FCD_WINDOW} or null) and "
            "shards (a list of "
            '{"file": NAME, ...}); restore it or generate the data set again',
            str(path),
        )
    return manifest


def _new_manifest(n_regions: int, bins: int, info: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "kind": DATASET_KIND,
        "format_version": DATASET_FORMAT_VERSION,
        "n_regions": int(n_regions),
        "bins": int(bins),
        "info": dict(info),
        "shards": [],
        "summary": {},
    }


def list_shards(folder: str | Path) -> list[dict[str, Any]]:
    """Shard entries of a data-set folder's manifest.

    Parameters
    ----------
    folder : path

    Returns
    -------
    list of dict
        ``[]`` when the folder has no manifest yet.
    """
    folder = Path(folder)
    if not (folder / MANIFEST).is_file():
        return []
    return list(_read_manifest(folder)["shards"])


def append_shard(
    data: SurrogateDataset,
    folder: str | Path,
    name: str | None = None,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``data`` as one new shard of ``folder`` and update the manifest (both atomically).

    Parameters
    ----------
    data : SurrogateDataset
    folder : path
        Data-set folder; created with a new manifest if needed.
    name : str, optional
        Shard file name (default ``shard_<k>.npz``).
    info : mapping, optional
        Provenance stored in the manifest when it is created (e.g. generation settings).

    Returns
    -------
    Path
        The shard file.
    """
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        manifest = _read_manifest(folder)
        if manifest["n_regions"] != data.n_regions or manifest["bins"] != data.bins:
            raise InvalidInputError(
                f"shard has N={data.n_regions}, bins={data.bins}; the data set has "
                f"N={manifest['n_regions']}, bins={manifest['bins']}",
                str(folder),
            )
    else:
        manifest = _new_manifest(data.n_regions, data.bins, info or data.info)
    name = name or f"shard_{len(manifest['shards']):05d}.npz"
    if any(s["file"] == name for s in manifest["shards"]):
        raise InvalidInputError(f"shard {name} already exists", str(folder))
    path = io.write_arrays(data.to_arrays(), folder / name)
    manifest["shards"].append(
        {
            "file": name,
            "n_subjects": data.n_subjects,
            "n_candidates": data.n_candidates,
            "subject_ids": data.subject_id.tolist(),
        }
    )
    totals = manifest["summary"]
    for key in ("n_subjects", "n_candidates"):
        totals[key] = int(totals.get(key, 0)) + getattr(data, key)
    io.write_json(manifest, folder / MANIFEST)
    return path


def record_generated_subjects(folder: str | Path, n_subjects: int) -> None:
    """Record in the manifest's generation settings that ``n_subjects`` have been generated.

    A data set extended with more subjects (``surrogate generate --subjects``) kept the count of
    its first run in ``info.settings.n_subjects``; the larger count is written (atomically).

    Parameters
    ----------
    folder : path
        Data-set folder with a manifest.
    n_subjects : int
        Subjects generated so far.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    settings = manifest.get("info", {}).get("settings")
    if not isinstance(settings, dict) or int(settings.get("n_subjects", 0)) >= n_subjects:
        return
    settings["n_subjects"] = int(n_subjects)
    io.write_json(manifest, folder / MANIFEST)


def save_dataset(data: SurrogateDataset, folder: str | Path) -> Path:
    """Write ``data`` as a new single-shard data-set folder (refuses a folder that has a manifest).

    Parameters
    ----------
    data : SurrogateDataset
    folder : path
        New data-set folder.

    Returns
    -------
    Path
        ``folder``.
    """
    folder = Path(folder)
    if (folder / MANIFEST).is_file():
        raise InvalidInputError("a data set already exists here; choose a new folder", str(folder))
    append_shard(data, folder, info=data.info)
    manifest = _read_manifest(folder)
    manifest["summary"] = data.summary()
    io.write_json(manifest, folder / MANIFEST)
    return folder


def _read_shard(path: Path, info: dict | None) -> SurrogateDataset:
    """One shard file as a data set; a corrupted, truncated or foreign file is one clear error
    naming it (never unpickled: object arrays are refused)."""
    import zipfile
    import zlib

    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        text = str(err).split(". If you trust", 1)[0]  # numpy's advice to unpickle: never here
        raise InvalidInputError(
            f"cannot be read as a data-set shard ({type(err).__name__}: {text}); the file is "
            "corrupted or not a shard: delete it and its manifest entry, or generate it again",
            str(path),
        ) from None
    except AttributeError:  # np.load of a plain .npy file gives an array, not an archive
        raise InvalidInputError("is not an .npz archive of a data-set shard", str(path)) from None
    try:
        return SurrogateDataset.from_arrays(arrays, info)
    except InvalidInputError as err:
        raise InvalidInputError(err.problem, str(path)) from None
    except (TypeError, ValueError) as err:  # arrays of a wrong dtype (strings as numbers, ...)
        raise InvalidInputError(
            f"holds arrays of the wrong type ({type(err).__name__}: {err})", str(path)
        ) from None


def _check_shard_entry(part: SurrogateDataset, entry: Mapping[str, Any], path: Path) -> None:
    """The shard holds the subjects and candidates its manifest entry lists (a shard file of
    another data set copied under the same name would otherwise be read silently)."""
    ids = entry.get("subject_ids")
    problems = []
    if isinstance(ids, list) and [str(i) for i in ids] != part.subject_id.tolist():
        problems.append(
            f"subjects {part.subject_id.tolist()[:3]}... where {MANIFEST} lists {ids[:3]}..."
        )
    for key in ("n_subjects", "n_candidates"):
        if key in entry and entry[key] != getattr(part, key):
            problems.append(f"{key} {getattr(part, key)} where {MANIFEST} lists {entry[key]}")
    if problems:
        raise InvalidInputError(
            f"does not match its entry in {MANIFEST} ({'; '.join(problems)}): a shard of another "
            "data set or an edited manifest",
            str(path),
        )


def load_dataset(folder: str | Path) -> SurrogateDataset:
    """Read every shard of a data-set folder into one :class:`SurrogateDataset`.

    Parameters
    ----------
    folder : path

    Returns
    -------
    SurrogateDataset

    Raises
    ------
    InvalidInputError
        Missing manifest or shard, wrong ``kind`` or ``format_version``, inconsistent arrays.
    """
    folder = Path(folder)
    manifest = _read_manifest(folder)
    parts = []
    for entry in manifest["shards"]:
        path = folder / entry["file"]
        if not path.is_file():
            raise InvalidInputError(
                f"shard {entry['file']} listed in {MANIFEST} is missing", str(folder)
            )
        part = _read_shard(path, manifest.get("info"))
        _check_shard_entry(part, entry, path)
        if part.n_regions != manifest["n_regions"] or part.bins != manifest["bins"]:
            raise InvalidInputError(
                f"shard has N={part.n_regions}, bins={part.bins}; manifest says "
                f"N={manifest['n_regions']}, bins={manifest['bins']}",
                str(path),
            )
        parts.append(part)
    if not parts:
        raise InvalidInputError("the data set has no shards yet", str(folder))
    return concatenate(parts)
