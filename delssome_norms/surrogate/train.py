"""Training and evaluating the cost predictor: split by subject, seeded Adam, early stopping, metrics.

:func:`train_surrogate` splits the subjects of a :class:`~.dataset.SurrogateDataset` into train /
validation / test sets (a subject's candidates never appear in two sets), fits
:class:`~.network.CostPredictor` with mean squared error on the three cost terms (targets clipped
to ``[0, output_scale]``; candidates whose simulation was invalid are skipped), Adam and an
exponential learning-rate decay per epoch, stops when the validation loss has not improved for
``patience`` epochs, and restores the best epoch's weights. Every random number (initial weights,
split, batch order) comes from ``settings.seed``.

:func:`prediction_metrics` is the metrics report: Pearson and Spearman correlations between
predicted and simulated losses per cost term and for the total, pooled over held-out candidates and
per subject, and the top-10 overlap (the fraction of the 10 truly best candidates of each CMA-ES
generation that are also among the 10 predicted best; chance level is 10 / popsize).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import Tensor

from delssome_norms.errors import InputWarning, InvalidInputError
from delssome_norms.fit.seeding import check_seed
from delssome_norms.surrogate.dataset import SurrogateDataset
from delssome_norms.surrogate.network import (
    COST_TERMS,
    CostPredictor,
    SubjectFeatures,
    SurrogateConfig,
    cdf_to_density,
    pool_density,
)

MIN_RANKED = 3
"""Fewest candidates a rank correlation of predicted and simulated costs is computed from."""
MAX_LR = 1.0
"""Largest learning rate accepted (Adam steps of that size already destroy the network)."""


@dataclass(frozen=True)
class TrainSettings:
    """Settings of :func:`train_surrogate`.

    Parameters
    ----------
    epochs : int
        Maximum number of epochs.
    batch_size : int
        Candidates per optimiser step.
    lr : float
        Initial Adam learning rate.
    lr_decay : float
        Multiplicative learning-rate decay per epoch (``ExponentialLR`` gamma).
    weight_decay : float
        Adam L2 penalty.
    patience : int
        Epochs without a validation improvement before stopping.
    val_fraction, test_fraction : float
        Fractions of the subjects held out for validation and test (at least one subject each).
    candidates_per_epoch : int or None
        Training candidates drawn (without replacement) per epoch; None uses all of them.
    cross_fraction : float
        When the data hold candidate summaries, this fraction of every batch are *cross pairs*
        (see :class:`CrossPairs`); the rest are the recorded (candidate, subject) pairs.
    seed : int
        Seed of the weight initialisation, the subject split and the batch order.
    device : str
        Torch device of the training.
    """

    epochs: int = 30
    batch_size: int = 256
    lr: float = 1e-3
    lr_decay: float = 0.9
    weight_decay: float = 0.0
    patience: int = 5
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    candidates_per_epoch: int | None = None
    cross_fraction: float = 0.5
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in (
            "lr",
            "lr_decay",
            "weight_decay",
            "val_fraction",
            "test_fraction",
            "cross_fraction",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise InvalidInputError(f"{name} must be a number, got {value!r}", name)
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) != getattr(self, name) or getattr(self, name) < 1:
                raise InvalidInputError(f"{name} must be a positive integer", name)
        for name, ok in (
            ("lr", math.isfinite(self.lr) and 0 < self.lr <= MAX_LR),
            ("lr_decay", 0 < self.lr_decay <= 1),
            ("weight_decay", math.isfinite(self.weight_decay) and 0 <= self.weight_decay <= 1),
        ):
            if not ok:
                rule = {"lr": f"in (0, {MAX_LR:g}]", "lr_decay": "in (0, 1]"}.get(name, "in [0, 1]")
                raise InvalidInputError(f"{name} must be {rule}, got {getattr(self, name)!r}", name)
        cpe = self.candidates_per_epoch
        if cpe is not None and (isinstance(cpe, bool) or int(cpe) != cpe or cpe < 1):
            raise InvalidInputError(
                f"candidates_per_epoch must be a positive integer (or None: all), got {cpe!r}",
                "candidates_per_epoch",
            )
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 < value < 1:
                raise InvalidInputError(f"{name} must be in (0, 1), got {value!r}", name)
        if self.val_fraction + self.test_fraction >= 1:
            raise InvalidInputError("val_fraction + test_fraction must be < 1", "val_fraction")
        if not 0 <= self.cross_fraction < 1:
            raise InvalidInputError(
                f"cross_fraction must be in [0, 1), got {self.cross_fraction!r}", "cross_fraction"
            )
        check_seed(self.seed)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


# ------------------------------------------------------------------------------ split and tensors


def subject_groups(subject_id: np.ndarray) -> np.ndarray:
    """Group label of each subject row: rows with the same subject id share one (numbered by
    first appearance, so all-distinct ids give ``0, 1, 2, ...``)."""
    _, first, inverse = np.unique(np.asarray(subject_id), return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


def split_by_subject_id(
    subject_id: np.ndarray, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """:func:`split_subjects` over distinct subject ids: rows of one id (a shard listed twice in
    a manifest, or two data sets generated with the same seed merged) land in the same set, so
    that no subject is trained on and scored. With distinct ids it is :func:`split_subjects`."""
    groups = subject_groups(subject_id)
    n_groups = int(groups.max()) + 1 if groups.size else 0
    split = split_subjects(n_groups, val_fraction, test_fraction, seed)
    return {k: np.flatnonzero(np.isin(groups, v)) for k, v in split.items()}


def split_subjects(
    n_subjects: int, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Random split of subject rows into train / validation / test (each non-empty).

    Parameters
    ----------
    n_subjects : int
        Number of subjects (at least 3).
    val_fraction, test_fraction : float
        Fractions held out; rounded, with at least one subject each.
    seed : int

    Returns
    -------
    dict with keys ``train``, ``val``, ``test``: sorted int64 arrays of subject rows.
    """
    if n_subjects < 3:
        raise InvalidInputError(
            f"need at least 3 distinct subjects (with a valid candidate) to split by subject, got "
            f"{n_subjects}: one each for training, validation and test; generate more subjects "
            "(delssome-norms surrogate generate --subjects)",
            "surrogate dataset",
        )
    order = np.random.default_rng(seed).permutation(n_subjects)
    n_val = max(1, round(val_fraction * n_subjects))
    n_test = max(1, round(test_fraction * n_subjects))
    if n_val + n_test >= n_subjects:
        warnings.warn(
            f"val_fraction {val_fraction:g} and test_fraction {test_fraction:g} of {n_subjects} "
            "subjects leave none for training: 1 validation and 1 test subject are held out",
            InputWarning,
            stacklevel=2,
        )
        n_val, n_test = 1, 1
    return {
        "test": np.sort(order[:n_test]),
        "val": np.sort(order[n_test : n_test + n_val]),
        "train": np.sort(order[n_test + n_val :]),
    }


@dataclass
class TensorData:
    """A data set as tensors on one device (subject inputs and candidate arrays)."""

    subjects: SubjectFeatures
    regional: Tensor
    g: Tensor
    subject: Tensor
    generation: Tensor
    targets: Tensor
    losses: Tensor
    valid: Tensor

    @classmethod
    def from_dataset(
        cls,
        data: SurrogateDataset,
        config: SurrogateConfig,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> TensorData:
        """Convert a data set to tensors (``dtype``, the network's) for a network with ``config``.

        Raises
        ------
        InvalidInputError
            If the data set's N or FCD bins do not match the network.
        """
        if data.n_regions != config.n_regions or data.bins != config.cdf_bins:
            raise InvalidInputError(
                f"data set has N={data.n_regions}, bins={data.bins}; the network expects "
                f"N={config.n_regions}, bins={config.cdf_bins}",
                "surrogate dataset",
            )

        def t(x: np.ndarray, as_type: torch.dtype = dtype) -> Tensor:
            return torch.as_tensor(np.ascontiguousarray(x)).to(device=device, dtype=as_type)

        dens = pool_density(t(data.fcd_density, torch.float64), config.fcd_bins)
        subjects = SubjectFeatures(
            fc_triu=t(data.fc_triu),
            fcd_dens=dens.to(dtype),
            tr=t(data.tr),
            scan_length=t(data.scan_length),
            sc=t(data.sc),
        )
        losses = t(data.losses)
        valid = torch.isfinite(losses).all(dim=1)
        scale = torch.tensor(config.output_scale, device=device, dtype=dtype)
        targets = torch.minimum(torch.nan_to_num(losses, nan=0.0).clamp_min(0.0), scale)
        return cls(
            subjects=subjects,
            regional=t(data.regional),
            g=t(data.g),
            subject=t(data.subject, torch.int64),
            generation=t(data.generation, torch.int64),
            targets=targets,
            losses=losses,
            valid=valid,
        )


class CrossPairs:
    """Extra training pairs from stored candidate summaries: candidate i scored against candidate j.

    Every simulated candidate j is itself a synthetic subject whose ground truth is known: its
    first noise duplicate is one simulated scan (FC, FCD-CDF). Pairing the parameters of any
    candidate i (same TR and scan length) with that scan gives a training pair whose losses follow
    from the stored summaries without simulating anything: ``corr = 1 − r(FC_i, FC_j)``,
    ``l1 = |mean FC_i − mean FC_j|`` and ``ks = max |CDF_i − CDF_j|`` with FC_i, CDF_i the mean
    over i's duplicates (as in the recorded losses) and the KS distance taken on every 10th bin of
    the CDF (a lower bound of the full-resolution value, within the mass of 10 bins). This turns a
    few subjects with many candidates into many subjects, which is what lets the network
    generalise to unseen subjects.

    Parameters
    ----------
    data : SurrogateDataset
        Training subjects only, with candidate summaries.
    config : SurrogateConfig
    device : str or torch.device
    """

    def __init__(
        self, data: SurrogateDataset, config: SurrogateConfig, device: str | torch.device
    ) -> None:
        from delssome_norms.surrogate.dataset import decode_cdf

        ok = np.flatnonzero(data.valid())
        self.rows = torch.as_tensor(ok, device=device)
        key = np.stack([data.tr[data.subject[ok]], data.scan_length[data.subject[ok]]], axis=1)
        _, group = np.unique(key, axis=0, return_inverse=True)
        order = np.argsort(group.reshape(-1), kind="stable")
        counts = np.bincount(group.reshape(-1))
        self.sorted_rows = torch.as_tensor(order, device=device)  # positions into self.rows
        self.group = torch.as_tensor(group.reshape(-1), device=device)
        self.group_start = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)[:-1]]), device=device)
        self.group_count = torch.as_tensor(counts, device=device)

        def t(x: np.ndarray) -> Tensor:
            return torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32), device=device)

        self.sim_fc = t(data.sim_fc_triu[ok])
        self.sim_cdf = t(decode_cdf(data.sim_fcd_cdf[ok]))
        self.dup0_fc = t(data.dup0_fc_triu[ok])
        dup0_cdf = torch.as_tensor(decode_cdf(data.dup0_fcd_cdf[ok]), dtype=torch.float64)
        self.dup0_dens = pool_density(cdf_to_density(dup0_cdf), config.fcd_bins).to(
            device, torch.float32
        )
        self.dup0_cdf = dup0_cdf.to(device, torch.float32)
        self.regional = t(data.regional[ok])
        self.g = t(data.g[ok])
        self.tr = t(data.tr[data.subject[ok]])
        self.scan_length = t(data.scan_length[data.subject[ok]])
        self.sc = t(data.sc)
        self.sc_index = torch.as_tensor(data.subject[ok].astype(np.int64), device=device)
        self.scale = torch.tensor(config.output_scale, device=device)

    def __len__(self) -> int:
        return len(self.rows)

    def sample(
        self, n: int, generator: torch.Generator
    ) -> tuple[SubjectFeatures, Tensor, Tensor, Tensor]:
        """``n`` random cross pairs.

        Returns
        -------
        subjects : SubjectFeatures
            One synthetic subject (candidate j's first duplicate) per pair.
        regional : Tensor of shape (n, N, 3)
            Candidate i's parameters.
        g : Tensor of shape (n,)
        targets : Tensor of shape (n, 3)
            Losses of i against j's scan, clipped to ``[0, output_scale]``.
        """
        dev = self.regional.device
        i = torch.randint(len(self), (n,), generator=generator).to(dev)
        gi = self.group[i]
        u = torch.rand(n, generator=generator).to(dev)
        pos = self.group_start[gi] + (u * self.group_count[gi]).long().clamp_max(
            self.group_count[gi] - 1
        )
        j = self.sorted_rows[pos]
        targets = self.pair_targets(i, j)
        subjects = SubjectFeatures(
            fc_triu=self.dup0_fc[j],
            fcd_dens=self.dup0_dens[j],
            tr=self.tr[j],
            scan_length=self.scan_length[j],
            sc=self.sc[self.sc_index[j]],
        )
        return subjects, self.regional[i], self.g[i], targets

    def pair_targets(self, i: Tensor, j: Tensor) -> Tensor:
        """Losses of candidates ``i`` against the first-duplicate scans of candidates ``j``.

        Parameters
        ----------
        i, j : Tensor of shape (n,), int64
            Positions among the usable (valid) training candidates.

        Returns
        -------
        Tensor of shape (n, 3)
            corr, l1, ks clipped to ``[0, output_scale]``.
        """
        a, b = self.sim_fc[i], self.dup0_fc[j]
        ac = a - a.mean(dim=1, keepdim=True)
        bc = b - b.mean(dim=1, keepdim=True)
        r = (ac * bc).sum(dim=1) / torch.sqrt((ac * ac).sum(dim=1) * (bc * bc).sum(dim=1)).clamp_min(
            1e-12
        )
        l1 = (a.mean(dim=1) - b.mean(dim=1)).abs()
        ks = (self.sim_cdf[i] - self.dup0_cdf[j]).abs().amax(dim=1)
        return torch.minimum(torch.stack([1.0 - r, l1, ks], dim=1).clamp_min(0.0), self.scale)


@torch.no_grad()
def predict_dataset(model: CostPredictor, data: TensorData, batch_size: int = 1024) -> Tensor:
    """Predicted cost terms of every candidate of ``data``, shape (C, 3), in eval mode."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, data.regional.shape[0], batch_size):
        sl = slice(start, start + batch_size)
        out.append(model.score(data.subjects, data.regional[sl], data.g[sl], data.subject[sl]))
    model.train(was_training)
    if not out:
        return torch.zeros(0, 3, device=data.regional.device)
    return torch.cat(out)


# ------------------------------------------------------------------------------ metrics


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    # NaN predictions (a diverged network) give NaN here, which older scipy refuses to correlate
    if len(a) < MIN_RANKED or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan, math.nan
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan, math.nan
    return float(stats.pearsonr(a, b)[0]), float(stats.spearmanr(a, b)[0])


def top_k_overlap(
    pred_total: np.ndarray,
    true_total: np.ndarray,
    subject: np.ndarray,
    generation: np.ndarray,
    k: int = 10,
) -> float:
    """Mean overlap of predicted and true top-``k`` candidates per (subject, generation).

    Invalid candidates (NaN true total) rank last in the truth. Groups with at most ``k``
    candidates are skipped.

    Parameters
    ----------
    pred_total, true_total : ndarray of shape (C,)
    subject, generation : ndarray of shape (C,), int
    k : int

    Returns
    -------
    float
        Mean of ``|top_k(pred) ∩ top_k(true)| / k`` over groups (NaN if no group qualifies).
    """
    key = subject.astype(np.int64) * (int(generation.max()) + 1 if len(generation) else 1) + generation
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    scores = []
    for rows in np.split(order, bounds):
        if len(rows) <= k:
            continue
        truth = np.where(np.isfinite(true_total[rows]), true_total[rows], np.inf)
        best_true = set(rows[np.argsort(truth, kind="stable")[:k]].tolist())
        best_pred = set(rows[np.argsort(pred_total[rows], kind="stable")[:k]].tolist())
        scores.append(len(best_true & best_pred) / k)
    return float(np.mean(scores)) if scores else math.nan


def prediction_metrics(
    pred: np.ndarray, true: np.ndarray, subject: np.ndarray, generation: np.ndarray
) -> dict[str, Any]:
    """Metrics report of predicted against simulated losses.

    Parameters
    ----------
    pred : ndarray of shape (C, 3)
        Predicted corr_loss, l1_loss, ks_loss.
    true : ndarray of shape (C, 3)
        Simulated losses (NaN rows = invalid simulations, excluded from correlations).
    subject, generation : ndarray of shape (C,), int

    Returns
    -------
    dict
        ``pooled``: {term or "total": {"pearson", "spearman"}} over all valid candidates;
        ``per_subject``: {"spearman_total": list, "median_spearman_total", "min_spearman_total"};
        ``top10_overlap`` and ``top10_chance`` (its expectation for a random ranking, 10 / size
        averaged over the same generations; NaN, like the overlap, when no generation has more
        than 10 candidates); ``n_candidates``, ``n_valid``, ``n_subjects``, ``mae`` per term.
    """
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    valid = np.isfinite(true).all(axis=1)
    pooled: dict[str, dict[str, float]] = {}
    for j, name in enumerate(COST_TERMS):
        r, rho = _corr(pred[valid, j], true[valid, j])
        pooled[name] = {"pearson": r, "spearman": rho}
    pred_total = pred.sum(axis=1)
    true_total = true.sum(axis=1)
    r, rho = _corr(pred_total[valid], true_total[valid])
    pooled["total"] = {"pearson": r, "spearman": rho}
    per_subject = []
    for s in np.unique(subject):
        rows = (subject == s) & valid
        per_subject.append(_corr(pred_total[rows], true_total[rows])[1])
    finite_ps = [v for v in per_subject if np.isfinite(v)]
    n_gen = int(generation.max()) + 1 if len(generation) else 1
    group_sizes = np.unique(subject.astype(np.int64) * n_gen + generation, return_counts=True)[1]
    # chance over the generations the overlap is averaged over (more than 10 candidates): with
    # 10 or fewer every candidate is in the top 10 and "10 / size" exceeds 1
    group_sizes = group_sizes[group_sizes > 10]
    return {
        "n_candidates": len(pred),
        "n_valid": int(valid.sum()),
        "n_subjects": len(np.unique(subject)),
        "pooled": pooled,
        "mae": {
            name: float(np.mean(np.abs(pred[valid, j] - true[valid, j]))) if valid.any() else math.nan
            for j, name in enumerate(COST_TERMS)
        },
        "per_subject": {
            "spearman_total": per_subject,
            "median_spearman_total": float(np.median(finite_ps)) if finite_ps else math.nan,
            "min_spearman_total": float(np.min(finite_ps)) if finite_ps else math.nan,
        },
        "top10_overlap": top_k_overlap(pred_total, true_total, subject, generation, k=10),
        "top10_chance": float(np.mean(10 / group_sizes)) if len(group_sizes) else math.nan,
    }


def evaluate_model(model: CostPredictor, data: SurrogateDataset, device: str = "cpu") -> dict[str, Any]:
    """Metrics (:func:`prediction_metrics`) of ``model`` on every candidate of ``data``.

    The predictions run on ``device`` (a copy of ``model`` is moved there when it lives
    elsewhere, e.g. weights loaded on the CPU and evaluated on a GPU; ``model`` is not changed),
    in the network's own floating dtype (float32 for loaded weights, float64 for ``.double()``).

    Parameters
    ----------
    model : CostPredictor
    data : SurrogateDataset
    device : str
        Where the predictions run.

    Returns
    -------
    dict
        The :func:`prediction_metrics` report.

    Raises
    ------
    InvalidInputError
        The data set has no candidate with finite losses (nothing to score against).
    """
    if not data.valid().any():
        raise InvalidInputError(
            f"the data set has no candidate with finite losses ({data.n_candidates} candidates, "
            "all invalid or none): nothing to compare the predictions with",
            "surrogate dataset",
        )
    dtype = next(model.parameters()).dtype
    tensors = TensorData.from_dataset(data, model.config, device, dtype=dtype)
    target = tensors.regional.device
    if any(p.device != target for p in model.parameters()):
        model = copy.deepcopy(model).to(target)
    pred = predict_dataset(model, tensors).cpu().numpy()
    return prediction_metrics(pred, data.losses, data.subject, data.generation)


# ------------------------------------------------------------------------------ training


@dataclass
class TrainResult:
    """Output of :func:`train_surrogate`.

    Attributes
    ----------
    model : CostPredictor
        Weights of the best validation epoch, in eval mode.
    split : dict of str to ndarray
        Subject rows (of the data set given) of the ``train``, ``val`` and ``test`` sets;
        subjects without a valid candidate are in none.
    history : list of dict
        Per epoch: train_mse, val_mse, val_spearman_total, lr, seconds.
    metrics : dict
        ``{"test": ..., "val": ...}``: :func:`prediction_metrics` on the held-out subjects.
    best_epoch : int
    seconds : float
        Wall time of the whole training [s], over all its runs (of which ``seconds_before`` [s]
        the earlier runs' that a resumed training's checkpoint recorded).
    """

    model: CostPredictor
    split: dict[str, np.ndarray]
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    best_epoch: int = 0
    seconds: float = 0.0
    seconds_before: float = 0.0


def _masked_mse(pred: Tensor, target: Tensor) -> Tensor:
    return ((pred - target) ** 2).mean()


def _with_candidates(data: SurrogateDataset) -> tuple[SurrogateDataset, np.ndarray]:
    """The data set without subjects that have no valid candidate (a search that never started,
    e.g. a truth outside the fit's FC-derived wEI range), named in a warning, and the rows kept:
    in a split they would leave a set without anything to learn from or to score."""
    counts = np.bincount(data.subject[data.valid()], minlength=data.n_subjects)
    empty = np.flatnonzero(counts == 0)
    kept = np.flatnonzero(counts > 0)
    if empty.size == 0:
        return data, kept
    names = [str(data.subject_id[i]) for i in empty]
    warnings.warn(
        f"{len(names)} of {data.n_subjects} subject(s) of the data set have no valid candidate "
        f"and are left out: {', '.join(names[:6])}{' ...' if len(names) > 6 else ''}",
        InputWarning,
        stacklevel=3,
    )
    return data.subset(kept), kept


def _warn_repeated_subjects(data: SurrogateDataset) -> None:
    """Name subject ids that occur more than once (kept in one split set; see
    :func:`split_by_subject_id`): their candidates count more than once in training."""
    ids, counts = np.unique(data.subject_id, return_counts=True)
    repeated = ids[counts > 1].tolist()
    if repeated:
        warnings.warn(
            f"{len(repeated)} subject id(s) occur more than once in the data set "
            f"({', '.join(repeated[:4])}{' ...' if len(repeated) > 4 else ''}): a shard listed "
            "twice in manifest.json, or data sets generated with the same --seed merged (the "
            "same synthetic subjects). Each id is kept in one of train / validation / test, but "
            "its candidates count more than once; remove the repeated shards",
            InputWarning,
            stacklevel=3,
        )


def train_surrogate(
    data: SurrogateDataset,
    config: SurrogateConfig | None = None,
    settings: TrainSettings | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    checkpoint: str | Path | None = None,
) -> TrainResult:
    """Train a :class:`CostPredictor` on a data set, splitting by subject.

    Parameters
    ----------
    data : SurrogateDataset
        At least 3 subjects.
    config : SurrogateConfig, optional
        Network settings; ``n_regions`` and ``cdf_bins`` are taken from ``data`` when omitted.
    settings : TrainSettings, optional
    progress : bool
        Show a tqdm progress bar (one per epoch).
    log : callable, optional
        Receives one line per epoch.
    checkpoint : path, optional
        Folder of a per-epoch checkpoint (:mod:`~.train_checkpoint`): written after every
        epoch; one of the same data and settings found there is continued from its last
        epoch, with the same result as an uninterrupted training (``epochs`` and ``patience``
        may differ, to train longer; fewer ``epochs`` than it ran is refused).

    Returns
    -------
    TrainResult
    """
    from tqdm.auto import tqdm

    from delssome_norms.surrogate import train_checkpoint as ckpt
    from delssome_norms.surrogate.train_resume import SECONDS_KEY, resume_training

    settings = settings or TrainSettings()
    config = config or SurrogateConfig(n_regions=data.n_regions, cdf_bins=data.bins)
    data, kept = _with_candidates(data)
    start = time.perf_counter()
    torch.manual_seed(settings.seed)
    model = CostPredictor(config).to(settings.device)
    _warn_repeated_subjects(data)
    split = split_by_subject_id(
        data.subject_id, settings.val_fraction, settings.test_fraction, settings.seed
    )
    sets = {
        k: TensorData.from_dataset(data.subset(v), config, settings.device) for k, v in split.items()
    }
    train = sets["train"]
    train_rows = torch.nonzero(train.valid).squeeze(1)
    if len(train_rows) == 0:
        raise InvalidInputError("no valid training candidates", "surrogate dataset")
    val = sets["val"]
    val_valid = val.valid
    train_data = data.subset(split["train"])
    cross = (
        CrossPairs(train_data, config, settings.device)
        if train_data.has_summaries and settings.cross_fraction > 0
        else None
    )
    n_cross = round(settings.batch_size * settings.cross_fraction / (1 - settings.cross_fraction))

    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=settings.lr_decay)
    gen = torch.Generator().manual_seed(settings.seed)
    best_state = copy.deepcopy(model.state_dict())
    best_val, best_epoch, stale = math.inf, 0, 0
    history: list[dict[str, float]] = []
    per_epoch = settings.candidates_per_epoch or len(train_rows)
    per_epoch = min(per_epoch, len(train_rows))
    first, stopped, fingerprint, before = 1, False, None, 0.0
    if checkpoint is not None:
        fingerprint = ckpt.training_fingerprint(data, config, settings)
        done = resume_training(checkpoint, fingerprint, settings.epochs, (model, opt, sched, gen), log)
        if done is not None:
            best_val, best_epoch, stale = done["best_val"], done["best_epoch"], done["stale"]
            history, best_state, before = done["history"], done["best_state"], done["seconds"]
            stopped = stale >= settings.patience  # a raised patience continues a stopped run
            first = done["epoch"] + 1
    for epoch in range(first, settings.epochs + 1):
        if stopped:
            break
        t0 = time.perf_counter()
        model.train()
        rows = train_rows[
            torch.randperm(len(train_rows), generator=gen)[:per_epoch].to(train_rows.device)
        ]
        n_batches = math.ceil(per_epoch / settings.batch_size)
        bar = tqdm(
            range(n_batches),
            desc=f"epoch {epoch}/{settings.epochs}",
            disable=not progress,
            leave=False,
            unit="batch",
        )
        total, count = 0.0, 0
        for b in bar:
            idx = rows[b * settings.batch_size : (b + 1) * settings.batch_size]
            pred = model.score(train.subjects, train.regional[idx], train.g[idx], train.subject[idx])
            target = train.targets[idx]
            if cross is not None:
                subj, reg, gg, cross_target = cross.sample(n_cross, gen)
                cross_pred = model.score(subj, reg, gg, None)  # one subject row per pair
                pred = torch.cat([pred, cross_pred])
                target = torch.cat([target, cross_target])
            loss = _masked_mse(pred, target)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            if b % 20 == 0:
                bar.set_postfix(mse=f"{total / count:.4f}")
        bar.close()
        lr = opt.param_groups[0]["lr"]
        sched.step()
        val_pred = predict_dataset(model, val)
        val_mse = float(_masked_mse(val_pred[val_valid], val.targets[val_valid]))
        vp = val_pred[val_valid].sum(dim=1).cpu().numpy()
        vt = val.losses[val_valid].sum(dim=1).cpu().numpy()
        val_rho = _corr(vp, vt)[1]
        record = {
            "epoch": epoch,
            "train_mse": total / max(count, 1),
            "val_mse": val_mse,
            "val_spearman_total": val_rho,
            "lr": lr,
            "seconds": time.perf_counter() - t0,
        }
        history.append(record)
        if log:
            log(
                f"epoch {epoch}: train mse {record['train_mse']:.5f}, val mse {val_mse:.5f}, "
                f"val spearman(total) {val_rho:.3f}, lr {lr:.2e}, {record['seconds']:.0f} s"
            )
        if val_mse < best_val - 1e-7:
            best_val, best_epoch, stale = val_mse, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
            stopped = stale >= settings.patience
        if checkpoint is not None:
            progress_record = {"epoch": epoch, "best_val": best_val, "best_epoch": best_epoch,
                               "stale": stale, "stopped": stopped, "history": history,
                               "fingerprint": fingerprint,
                               SECONDS_KEY: before + time.perf_counter() - start}  # fmt: skip
            ckpt.save_checkpoint(
                checkpoint, *ckpt.checkpoint_state(model, best_state, opt, sched, gen, progress_record)
            )
    if not math.isfinite(best_val):  # never a finite validation loss: nothing was learnt
        raise InvalidInputError(
            "training diverged: no epoch reached a finite validation loss (the untrained network "
            "is not saved); lower the learning rate (lr) or check the data set",
            "lr",
        )
    model.load_state_dict(best_state)
    model.eval()
    metrics = {}
    for name in ("test", "val"):
        part = sets[name]
        pred = predict_dataset(model, part).cpu().numpy()
        metrics[name] = prediction_metrics(
            pred,
            part.losses.cpu().numpy(),
            part.subject.cpu().numpy(),
            part.generation.cpu().numpy(),
        )
    return TrainResult(
        model=model,
        split={k: kept[v] for k, v in split.items()},  # rows of the data set given
        history=history,
        metrics=metrics,
        best_epoch=best_epoch,
        seconds=before + time.perf_counter() - start,
        seconds_before=before,
    )
