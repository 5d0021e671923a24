"""Surrogate evaluator: scores CMA-ES candidates with the cost predictor instead of simulating them.

:class:`SurrogateEvaluator` has the call signature the fitter's search stage uses,
``evaluate(params, subject_index) -> Losses`` (CONTRIBUTING.md, ``fit`` contract), so it replaces the
Euler evaluator in the train stage only; validation and test stay simulated (docs/science.md §6). It
holds the K subjects of a lockstep cohort (their FC, FCD-CDF, SC and timing), embeds each subject
and projects its SC once (:meth:`~.network.CostPredictor.project_sc`), and scores candidates in
batches on the chosen device without building autograd graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError
from delssome_norms.io.checks import check_fc, check_fcd_cdf, check_sc, check_timing
from delssome_norms.model import Losses, PFICParams, SimulationTiming, scale_sc
from delssome_norms.model.batch import as_real_tensor, check_param_shapes
from delssome_norms.model.devices import check_device
from delssome_norms.surrogate.network import (
    CostPredictor,
    SubjectFeatures,
    fc_upper_triangle,
    fcd_density,
)
from delssome_norms.surrogate.pretrained import PretrainedSurrogate, load_pretrained


def _checked(stack: Tensor, check: Callable[[np.ndarray, str], Any], name: str) -> Tensor:
    """Each item of a stack through an input gate of :mod:`delssome_norms.io.checks`."""
    return torch.stack([torch.as_tensor(check(a.numpy(), f"{name}[{i}]")) for i, a in enumerate(stack)])


def _stack(x: np.ndarray | Tensor, ndim: int, name: str) -> Tensor:
    # a copy of an array (read-only ones, e.g. the packaged template's SC, are not writable,
    # which torch.as_tensor warns about)
    t = x.detach().cpu() if isinstance(x, Tensor) else torch.from_numpy(np.array(x, dtype=np.float64))
    t = t.to(torch.float64)
    if t.ndim == ndim - 1:
        t = t[None]
    if t.ndim != ndim:
        raise InvalidInputError(
            f"expected {ndim - 1} or {ndim} dimensions, got shape {tuple(t.shape)}", name
        )
    return t


_PARAM_NAMES = ("wEE", "wEI", "sigma", "G")


def _candidate_params(params: PFICParams, n_regions: int, dtype: torch.dtype) -> tuple[Tensor, ...]:
    """``params`` checked as the simulation checks them (numbers without NaN/inf:
    :func:`~delssome_norms.model.batch.as_real_tensor`; shapes and signs:
    :func:`~delssome_norms.model.batch.check_param_shapes`), with this evaluator's N regions and
    values the network's ``dtype`` can hold, as ``(wEE, wEI, sigma, G)`` of shapes (B, N) and
    (B,) in ``dtype`` (still on their own device)."""
    if not all(hasattr(params, name) for name in _PARAM_NAMES):
        raise InvalidInputError(
            f"must be a PFICParams(wEE, wEI, sigma, G), got {type(params).__name__}", "params"
        )
    loaded = []
    for name in _PARAM_NAMES:
        t = as_real_tensor(getattr(params, name), f"params.{name}")
        if t.numel() and not bool(torch.isfinite(t.to(dtype)).all()):
            raise InvalidInputError(
                f"values up to {float(t.abs().max()):g} overflow the network's {dtype}; pass "
                "values within the model's ranges",
                f"params.{name}",
            )
        loaded.append(t.to(dtype))
    try:
        wee, wei, sigma, g = check_param_shapes(*loaded)
    except InvalidInputError as err:  # named by the field its problem starts with
        field = err.problem.split(" ", 1)[0]
        source = f"params.{field}" if field in _PARAM_NAMES else "params"
        raise InvalidInputError(err.problem, source) from None
    if wee.shape[1] != n_regions:
        raise InvalidInputError(
            f"must have shape (B, {n_regions}) (B candidates of the evaluator's {n_regions} "
            f"regions), got {tuple(wee.shape)}",
            "params.wEE",
        )
    return wee, wei, sigma, g


class SurrogateEvaluator:
    """Predicts (corr_loss, l1_loss, ks_loss) of candidates of K subjects with a cost predictor.

    Parameters
    ----------
    surrogate : PretrainedSurrogate or CostPredictor
        Loaded weights (checked against the subjects) or a bare network (not checked).
    fc : array of shape (K, N, N) or (N, N)
        Empirical FC of each subject.
    fcd_cdf : array of shape (K, bins) or (bins,)
        Empirical FCD-CDF of each subject.
    sc : array of shape (N, N) or (K, N, N)
        Structural connectivity (scaled to max 0.02 here; already-scaled SC is unchanged).
    tr, scan_length : float or array of shape (K,)
        Timing of each subject [s].
    device : str or torch.device
        Where the network runs.
    batch_size : int
        Candidates per forward pass.
    timing_check : {"warn", "error", "ignore"}
        What to do when a subject's timing is outside the range the weights were trained on.
    fcd_window : int or array of shape (K,), optional
        FCD window of each subject [frames], compared with the training data's (None: not
        checked).

    Raises
    ------
    InvalidInputError
        N, bins or SC differ from what the weights were trained on.

    Examples
    --------
    ``evaluate = SurrogateEvaluator.from_pretrained(None, fc, cdf, sc, 0.72, 864.0)`` then
    ``losses = evaluate(params, torch.zeros(100, dtype=torch.long))``.
    """

    def __init__(
        self,
        surrogate: PretrainedSurrogate | CostPredictor,
        fc: np.ndarray | Tensor,
        fcd_cdf: np.ndarray | Tensor,
        sc: np.ndarray | Tensor,
        tr: float | np.ndarray,
        scan_length: float | np.ndarray,
        device: str | torch.device = "cpu",
        batch_size: int = 4096,
        timing_check: str = "warn",
        fcd_window: int | np.ndarray | None = None,
    ) -> None:
        if timing_check not in ("warn", "error", "ignore"):
            raise InvalidInputError(
                f"timing_check must be 'warn', 'error' or 'ignore', got {timing_check!r}", "timing_check"
            )
        if (
            isinstance(batch_size, bool)
            or not isinstance(batch_size, (int, np.integer))
            or batch_size < 1
        ):
            raise InvalidInputError(
                f"batch_size must be an integer >= 1, got {batch_size!r}", "batch_size"
            )
        device = check_device(device)
        fc_t = _stack(fc, 3, "FC")
        cdf_t = _stack(fcd_cdf, 2, "FCD-CDF")
        sc_t = _stack(sc, 3, "SC")
        k, n = fc_t.shape[0], fc_t.shape[-1]
        if cdf_t.shape[0] != k:
            raise InvalidInputError(f"{cdf_t.shape[0]} FCD-CDFs for {k} FCs", "FCD-CDF")
        if sc_t.shape[0] not in (1, k) or sc_t.shape[-1] != n:
            raise InvalidInputError(f"SC of shape {tuple(sc_t.shape)} for {k} subjects of N={n}", "SC")
        # the fit's own input gates (symmetry, range, NaN, monotone CDF, timing), subject by subject
        bins = cdf_t.shape[1]
        fc_t = _checked(fc_t, lambda a, name: check_fc(a, n, name), "FC")
        cdf_t = _checked(cdf_t, lambda a, name: check_fcd_cdf(a, bins, name), "FCD-CDF")
        sc_t = _checked(sc_t, lambda a, name: check_sc(a, n, name), "SC")
        sc_t = torch.stack([scale_sc(s) for s in sc_t]).expand(k, n, n)
        tr_np = np.broadcast_to(np.asarray(tr, dtype=np.float64), (k,)).copy()
        scan_np = np.broadcast_to(np.asarray(scan_length, dtype=np.float64), (k,)).copy()
        for i in range(k):  # plain floats, so that a message reads "-0.72", not "np.float64(-0.72)"
            check_timing(float(tr_np[i]), float(scan_np[i]), f"tr/scan_length[{i}]")
        tr_t, scan_t = torch.as_tensor(tr_np), torch.as_tensor(scan_np)
        if isinstance(surrogate, PretrainedSurrogate):
            surrogate.check(
                n_regions=n,
                bins=cdf_t.shape[1],
                sc=sc_t,
                tr=tr_t.numpy(),
                scan_length=scan_t.numpy(),
                timing=timing_check,
                fcd_window=fcd_window,
            )
            model = surrogate.model
        else:
            model = surrogate
            if n != model.config.n_regions or cdf_t.shape[1] != model.config.cdf_bins:
                raise InvalidInputError(
                    f"network expects N={model.config.n_regions}, bins={model.config.cdf_bins}; "
                    f"got N={n}, bins={cdf_t.shape[1]}",
                    "surrogate",
                )
        self.metadata = surrogate.metadata if isinstance(surrogate, PretrainedSurrogate) else {}
        self.weights_path = surrogate.path if isinstance(surrogate, PretrainedSurrogate) else None
        self.device = device
        self.model = model.to(self.device).eval()
        # the network's own dtype (float32 for loaded weights): every input is cast to it
        self.dtype = next(self.model.parameters()).dtype
        self.batch_size = int(batch_size)
        self.n_subjects = k
        self.n_regions = n
        subjects = SubjectFeatures(
            fc_triu=fc_upper_triangle(fc_t),
            fcd_dens=fcd_density(cdf_t, model.config.fcd_bins),
            tr=tr_t,
            scan_length=scan_t,
            sc=sc_t.contiguous(),
        )
        self.subjects = subjects.to(self.device, self.dtype)
        with torch.no_grad():
            s = self.subjects
            self._embedding = self.model.encode_subject(s.fc_triu, s.fcd_dens, s.tr, s.scan_length)
            self._sc_proj = self.model.project_sc(s.sc)

    def describe(self) -> dict[str, object]:
        """Provenance of the predictions for ``run.json``.

        Returns
        -------
        dict
            ``evaluator``, ``weights`` (folder), ``weights_sha256``, ``format_version``,
            ``network`` (the network's configuration).
        """
        meta = self.metadata
        return {
            "evaluator": "surrogate",
            "weights": str(self.weights_path) if self.weights_path else None,
            "weights_sha256": meta.get("weights_sha256"),
            "format_version": meta.get("format_version"),
            "network": meta.get("network", self.model.config.to_dict()),
        }

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path | None,
        fc: np.ndarray | Tensor,
        fcd_cdf: np.ndarray | Tensor,
        sc: np.ndarray | Tensor,
        tr: float | np.ndarray,
        scan_length: float | np.ndarray,
        device: str | torch.device = "cpu",
        **kwargs: Any,
    ) -> SurrogateEvaluator:
        """Load weights (default location when ``path`` is None) and build the evaluator.

        Parameters
        ----------
        path : path or None
            Pretrained folder; ``None``: :func:`~.pretrained.default_pretrained_path`.
        fc, fcd_cdf, sc, tr, scan_length, device
            As for :class:`SurrogateEvaluator` (``tr`` and ``scan_length`` in seconds).
        **kwargs
            Other :class:`SurrogateEvaluator` arguments (``batch_size``, ``timing_check``,
            ``fcd_window``).

        Returns
        -------
        SurrogateEvaluator

        Raises
        ------
        NotYetAvailableError
            No weights at the default location.
        InvalidInputError
            Weights unreadable or not trained for these subjects.
        """
        return cls(load_pretrained(path), fc, fcd_cdf, sc, tr, scan_length, device=device, **kwargs)

    @torch.no_grad()
    def predict(self, params: PFICParams, subject_index: Tensor) -> Tensor:
        """Predicted cost terms of each candidate.

        Parameters
        ----------
        params : PFICParams
            ``wEE, wEI, sigma`` (B, N) and ``G`` (B,), tensors or arrays: finite and >= 0, N
            the evaluator's number of regions (one set: (N,) and a scalar ``G``).
        subject_index : Tensor of shape (B,), int
            Row of each candidate's subject (0 .. K-1).

        Returns
        -------
        Tensor of shape (B, 3)
            ``corr``, ``l1``, ``ks`` columns, on the evaluator's device, in the network's dtype
            (float32 for loaded weights), whatever the dtype of ``params``.

        Raises
        ------
        InvalidInputError
            ``params`` with NaN/inf or negative values, or of another shape (naming the
            field, e.g. ``params.wEE``), as the simulation refuses them; a subject index out
            of range.
        """
        dev, dt = self.device, self.dtype
        wee, wei, sigma, g = _candidate_params(params, self.n_regions, dt)
        regional = torch.stack([x.to(dev) for x in (wee, wei, sigma)], dim=-1)
        g = g.to(dev)
        idx = torch.as_tensor(subject_index).to(device=dev, dtype=torch.long).reshape(-1)
        b = regional.shape[0]
        if g.shape[0] != b or idx.shape[0] != b:
            raise InvalidInputError(
                f"{b} parameter sets but {g.shape[0]} G values and {idx.shape[0]} subject indices",
                "surrogate evaluate",
            )
        if b and (int(idx.min()) < 0 or int(idx.max()) >= self.n_subjects):
            raise InvalidInputError(
                f"subject_index out of range 0..{self.n_subjects - 1}", "surrogate evaluate"
            )
        out = []
        for start in range(0, b, self.batch_size):
            sl = slice(start, start + self.batch_size)
            rows = idx[sl]
            out.append(
                self.model.forward_projected(
                    regional[sl], g[sl], self._sc_proj[rows], self._embedding[rows]
                )
            )
        return torch.cat(out) if out else torch.zeros(0, 3, dtype=dt, device=dev)

    def __call__(self, params: PFICParams, subject_index: Tensor, *, seed: int | None = None) -> Losses:
        """Predicted losses in the fitter's :class:`~delssome_norms.model.Losses` form.

        Parameters
        ----------
        params : PFICParams
            ``wEE, wEI, sigma`` (B, N) and ``G`` (B,), finite and >= 0 (as :meth:`predict`).
        subject_index : Tensor of shape (B,), int
            Row of each candidate's subject.
        seed : int, optional
            Accepted for the evaluator interface (simulation noise seed); the prediction is
            deterministic and ignores it.

        Returns
        -------
        Losses
            ``corr``, ``l1``, ``ks`` each of shape (B,) (the network's dtype, float32 for
            loaded weights, on the evaluator's device). Never NaN for an unstable candidate,
            as a simulation's losses are (the surrogate has no notion of an unstable
            simulation): every accepted candidate gets a prediction, an extrapolation outside
            the parameter ranges the weights were trained on.

        Raises
        ------
        InvalidInputError
            As :meth:`predict` (NaN/inf, negative or misshapen ``params``).
        """
        pred = self.predict(params, subject_index)
        return Losses(corr=pred[:, 0], l1=pred[:, 1], ks=pred[:, 2])


def check_available(weights: str | Path | None = None) -> None:
    """Raise unless weights can be loaded from ``weights`` (default: the shipped weights).

    Parameters
    ----------
    weights : path, optional
        Pretrained folder.

    Raises
    ------
    NotYetAvailableError
        No weights at the default location.
    InvalidInputError
        Weights at ``weights`` missing, corrupted or of another format version.
    """
    load_pretrained(weights)


def weights_sha256(weights: str | Path | None = None) -> str:
    """SHA-256 of the weights file at ``weights`` (default: the shipped weights), checked.

    What a fit records and compares to know *which* weights scored its train stage: a folder
    retrained in place has the same name but another hash.

    Parameters
    ----------
    weights : path, optional
        Pretrained folder.

    Returns
    -------
    str
        Hex digest.
    """
    return str(load_pretrained(weights).metadata["weights_sha256"])


def make_surrogate_evaluator(
    fc_emp: np.ndarray,
    fcd_cdf_emp: np.ndarray,
    sc: np.ndarray,
    timing: SimulationTiming,
    n_dup: int = 3,
    device: str = "cpu",
    dtype: str = "float32",
    engine: str = "auto",
    *,
    weights: str | Path | None = None,
    timing_check: str = "warn",
) -> SurrogateEvaluator:
    """Train-stage evaluator factory with the argument list of ``fit.make_evaluator``.

    ``n_dup``, ``dtype`` and ``engine`` concern simulation and are ignored; ``timing`` gives the
    subjects' TR and scan length (checked against the range the weights cover).

    Parameters
    ----------
    fc_emp : ndarray of shape (K, N, N)
    fcd_cdf_emp : ndarray of shape (K, bins)
    sc : ndarray of shape (K, N, N) or (N, N)
        Unscaled SC.
    timing : SimulationTiming
        Its ``tr`` and ``scan_length`` [s] and ``fcd_window`` [frames] are checked.
    n_dup : int
        Ignored (simulation duplicates).
    device : str
    dtype : str
        Ignored (simulation precision).
    engine : str
        Ignored (simulation engine).
    weights : path, optional
        Pretrained folder (default: :func:`~.pretrained.default_pretrained_path`).
    timing_check : {"warn", "error", "ignore"}

    Returns
    -------
    SurrogateEvaluator

    Raises
    ------
    NotYetAvailableError
        No weights at the default location.
    InvalidInputError
        Weights not trained for these subjects (N, bins, SC).
    """
    return SurrogateEvaluator.from_pretrained(
        weights,
        fc_emp,
        fcd_cdf_emp,
        sc,
        timing.tr,
        timing.scan_length,
        device=device,
        timing_check=timing_check,
        fcd_window=timing.fcd_window,
    )


def check_surrogate_timing(
    weights: str | Path | None,
    tr: float | np.ndarray,
    scan_length: float | np.ndarray,
    timing_check: str = "warn",
    fcd_window: int | np.ndarray | None = None,
    subject_ids: Sequence[str] | None = None,
) -> None:
    """Compare subjects' TR and scan length [s] with the range the weights cover, before any
    work (:meth:`~.pretrained.PretrainedSurrogate.check_timing`): one warning (or refusal) for
    the whole set, where the evaluator checks each lockstep group when its train stage starts.

    Parameters
    ----------
    weights : path or None
        Pretrained folder (``None``: the shipped weights).
    tr, scan_length : float or array of shape (K,)
        Subjects' timing [s].
    timing_check : {"warn", "error", "ignore"}
    fcd_window : int or array of shape (K,), optional
        Subjects' FCD window [frames] (None: not checked).
    subject_ids : sequence of str, optional
        The K subjects' ids, named in the warning (a few per TR and scan length outside).

    Raises
    ------
    NotYetAvailableError
        No weights at the default location.
    InvalidInputError
        Unreadable weights, or timing outside the range with ``timing_check="error"``.
    """
    surrogate = load_pretrained(weights)
    surrogate.check_timing(
        np.asarray(tr, dtype=np.float64),
        np.asarray(scan_length, dtype=np.float64),
        timing_check,
        fcd_window,
        subject_ids=subject_ids,
    )


def weights_regions(weights: str | None = None) -> tuple[int, str, str]:
    """``(N, atlas, where)`` of the weights at ``weights`` (default: the shipped ones): the
    number of regions they were trained for, their atlas label and where they were read from."""
    loaded = load_pretrained(weights)
    where = str(loaded.path) if loaded.path else "the shipped weights"
    return int(loaded.config.n_regions), str(loaded.metadata.get("atlas", "?")), where


def check_surrogate_sc(weights: str | None, sc, any_order: bool = False) -> None:
    """Refuse, before any work, an SC other than the one the surrogate ``weights`` were trained
    on (:meth:`~delssome_norms.surrogate.pretrained.PretrainedSurrogate.check`; the fit would
    refuse it only once its train stage starts).

    ``sc``: the subject's SC as fitted (array), or the path of an SC file, read alone before the
    other inputs: refused only when it differs from the weights' SC in any region order (its
    values, sorted), as the subject's other files set the region order. ``any_order``: an
    array read from such a file alone (checked the same way).
    """
    import warnings

    from delssome_norms.errors import InputWarning
    from delssome_norms.io import read_sc
    from delssome_norms.surrogate.pretrained import SC_ATOL

    model = load_pretrained(weights)
    template = model.template_sc
    if template is None:
        return
    if isinstance(sc, (str, bytes)) or hasattr(sc, "__fspath__"):
        with warnings.catch_warnings():  # warned about when the subject is read
            warnings.simplefilter("ignore", InputWarning)
            sc = read_sc(sc)
        any_order = True
    scaled = np.asarray(scale_sc(np.asarray(sc, dtype=np.float64)))
    if template.shape[-1] != scaled.shape[-1]:  # another N: refused with the subject's N
        return
    trained = template.detach().cpu().double().numpy().reshape(-1, *scaled.shape[-2:])[0]
    if any_order:
        gap = np.abs(np.sort(scaled, axis=None) - np.sort(trained, axis=None)).max()
        if not gap > SC_ATOL:  # may be the same SC in another region order: decided later
            return
    model.check(scaled.shape[0], model.config.cdf_bins, sc=scaled)


class DelssomeBackend:
    """The DELSSOME surrogate as ``fit``'s :class:`~delssome_norms.fit.evaluate.SurrogateBackend`.

    Pass :data:`SURROGATE_BACKEND` as ``surrogate=`` to the fit entry points (``estimate_ei``,
    ``fit_group``, ``run_cohort``, ``check_mode``, ``make_evaluator``) for ``mode="surrogate"``.
    Stateless, so it pickles (the Dask executor ships it to workers).
    """

    check_available = staticmethod(check_available)
    check_timing = staticmethod(check_surrogate_timing)
    check_sc = staticmethod(check_surrogate_sc)
    make_evaluator = staticmethod(make_surrogate_evaluator)
    weights_sha256 = staticmethod(weights_sha256)
    weights_regions = staticmethod(weights_regions)

    def __repr__(self) -> str:
        return "delssome_norms.surrogate.SURROGATE_BACKEND"


SURROGATE_BACKEND = DelssomeBackend()
"""The backend to pass as ``surrogate=`` for ``mode="surrogate"``."""
