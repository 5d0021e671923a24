"""The DELSSOME cost predictor: a transformer over regions that predicts the three fit-cost terms.

Architecture (docs/science.md §6; the paper uses width 128, 16 heads, 5 layers on a GPU; our defaults,
width 32, 2 heads, 2 layers, are sized so that training takes minutes and scoring a candidate
costs well under a millisecond on one CPU core)::

    region token i   = Linear([wEE_i, wEI_i, sigma_i, (G·SC)_i,1..N])          -> d_model
    subject embedding = MLP(FC upper triangle) + MLP(FCD density) + MLP(timing) -> d_model
    summary token     = learned vector + subject embedding
    [summary, region_1..region_N] -> TransformerEncoder (pre-norm, no positional encoding)
    fused = MLP([summary output, subject embedding])                          -> d_model
    corr_loss, l1_loss, ks_loss = output_scale * sigmoid(Linear_k(fused))

Inputs are rescaled by fixed, documented constants (:class:`SurrogateConfig`), never by statistics
of the training data, so the same weights mean the same thing for every data set.

What the design guarantees (and the tests check): outputs lie in ``[0, output_scale]``; each
candidate is scored independently of the others in its batch; the encoder has no positional
encoding, so the region tokens form a *set*: permuting the regions of the parameters together with
the rows of G·SC (the token order) leaves the prediction unchanged. Permuting the columns of G·SC
or the FC does change it (each row is read as a fixed-order vector), which is what lets the network
tell regions apart.

FCD density: the first difference of the FCD-CDF (``bins`` values summing to 1), summed in
``fcd_bins`` contiguous groups (default 100 groups of 100 of the 10000 bins, i.e. 0.02-wide FCD
bins) and multiplied by ``fcd_bins`` so that a flat density is 1 everywhere (:func:`fcd_density`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from delssome_norms.errors import InvalidInputError

COST_TERMS: tuple[str, str, str] = ("corr_loss", "l1_loss", "ks_loss")
"""The three predicted cost terms, in output order."""


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class SurrogateConfig:
    """Hyper-parameters and fixed input scalings of :class:`CostPredictor`.

    Parameters
    ----------
    n_regions : int
        Number of regions N (tokens).
    fcd_bins : int
        Number of FCD-density groups the network reads (the raw CDF has ``cdf_bins`` bins).
    cdf_bins : int
        Number of bins of the FCD-CDF the subject files hold (10000 in docs/science.md §1).
    d_model : int
        Token width.
    n_heads : int
        Attention heads (must divide ``d_model``).
    n_layers : int
        Transformer encoder layers.
    d_ff : int
        Hidden width of each encoder layer's feed-forward block.
    d_subject : int
        Hidden width of the FC / FCD / timing embedding MLPs.
    dropout : float
        Dropout in the encoder and embedding MLPs (training only).
    param_center, param_halfwidth : tuple of 3 floats
        ``(x - center) / halfwidth`` maps wEE, wEI, sigma to about [-1, 1] (docs/science.md §5 bounds).
    gsc_scale : float
        Multiplier of G·SC (scaled SC has max 0.02 and G <= 3, so ``50`` maps the largest entry to 3).
    tr_ref, scan_ref : float
        Timing features are ``log(tr / tr_ref)`` and ``log(scan_length / scan_ref)`` [s].
    output_scale : tuple of 3 floats
        Upper bound of each predicted term (``output_scale * sigmoid``). Default 1: the terms are
        predicted in [0, 1] as in the paper, and training targets are clipped to this range (only
        anti-correlated FC gives ``corr_loss > 1``; such candidates are equally useless).
    """

    n_regions: int = 68
    fcd_bins: int = 100
    cdf_bins: int = 10000
    d_model: int = 32
    n_heads: int = 2
    n_layers: int = 2
    d_ff: int = 64
    d_subject: int = 128
    dropout: float = 0.0
    param_center: tuple[float, float, float] = (5.5, 2.5, 0.00525)
    param_halfwidth: tuple[float, float, float] = (4.5, 2.5, 0.00475)
    gsc_scale: float = 50.0
    tr_ref: float = 0.72
    scan_ref: float = 300.0
    output_scale: tuple[float, float, float] = field(default=(1.0, 1.0, 1.0))

    def __post_init__(self) -> None:
        positive = ("n_regions", "fcd_bins", "cdf_bins", "d_model", "n_heads", "n_layers", "d_ff")
        for name in (*positive, "d_subject"):
            value = getattr(self, name)
            if int(value) != value or value < 1:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}", "surrogate")
        if self.n_regions < 2:
            raise InvalidInputError(f"n_regions must be >= 2, got {self.n_regions}", "surrogate")
        if self.d_model % self.n_heads:
            raise InvalidInputError(
                f"n_heads ({self.n_heads}) must divide d_model ({self.d_model})", "surrogate"
            )
        if self.cdf_bins % self.fcd_bins:
            raise InvalidInputError(
                f"fcd_bins ({self.fcd_bins}) must divide cdf_bins ({self.cdf_bins})", "surrogate"
            )
        if not _is_number(self.dropout):
            raise InvalidInputError(f"dropout must be a number, got {self.dropout!r}", "surrogate")
        if not 0.0 <= self.dropout < 1.0:
            raise InvalidInputError(f"dropout must be in [0, 1), got {self.dropout}", "surrogate")
        for name in ("param_center", "param_halfwidth", "output_scale"):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, tuple(float(v) for v in value))
            except (TypeError, ValueError):
                raise InvalidInputError(f"{name} needs 3 numbers, got {value!r}", "surrogate") from None
            if len(getattr(self, name)) != 3:
                raise InvalidInputError(f"{name} needs 3 values", "surrogate")
        # divisors and scales of the inputs and outputs: a zero or negative one (a hand-edited
        # metadata.json) would give NaN or sign-flipped predictions without any error
        for name in ("gsc_scale", "tr_ref", "scan_ref", "param_halfwidth", "output_scale"):
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            ok = all(_is_number(v) and math.isfinite(v) and v > 0 for v in values)
            if not ok:
                raise InvalidInputError(f"{name} must be finite and > 0, got {value!r}", "surrogate")
        if not all(math.isfinite(v) for v in self.param_center):
            raise InvalidInputError(
                f"param_center must be finite, got {self.param_center!r}", "surrogate"
            )

    @property
    def n_pairs(self) -> int:
        """Length of the FC upper triangle, ``N (N - 1) / 2``."""
        return self.n_regions * (self.n_regions - 1) // 2

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SurrogateConfig:
        """Inverse of :meth:`to_dict`; unknown keys are refused."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InvalidInputError(f"unknown network settings {unknown}", "surrogate config")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


# --------------------------------------------------------------------------- input features


def fc_upper_triangle(fc: Tensor) -> Tensor:
    """Strict upper triangle of FC matrices, row by row.

    Parameters
    ----------
    fc : Tensor of shape (..., N, N)

    Returns
    -------
    Tensor of shape (..., N (N - 1) / 2)
    """
    n = fc.shape[-1]
    iu = torch.triu_indices(n, n, offset=1, device=fc.device)
    return fc[..., iu[0], iu[1]]


def pool_density(density: Tensor, n_groups: int) -> Tensor:
    """Sum a binned density in ``n_groups`` contiguous groups and rescale so a flat density is 1.

    Parameters
    ----------
    density : Tensor of shape (..., bins)
        Probability mass per bin (sums to 1).
    n_groups : int
        Number of output groups; must divide ``bins``.

    Returns
    -------
    Tensor of shape (..., n_groups)
        Mass per group times ``n_groups``.
    """
    bins = density.shape[-1]
    if bins % n_groups:
        raise InvalidInputError(f"{n_groups} groups do not divide {bins} FCD bins", "FCD-CDF")
    grouped = density.reshape(*density.shape[:-1], n_groups, bins // n_groups).sum(dim=-1)
    return grouped * n_groups


def cdf_to_density(cdf: Tensor) -> Tensor:
    """First difference of a CDF along the last axis, with an implicit 0 before the first bin.

    Parameters
    ----------
    cdf : Tensor of shape (..., bins)

    Returns
    -------
    Tensor of shape (..., bins); its cumulative sum is ``cdf``.
    """
    return torch.diff(cdf, dim=-1, prepend=torch.zeros_like(cdf[..., :1]))


def fcd_density(cdf: Tensor, n_groups: int) -> Tensor:
    """FCD density from an FCD-CDF: first difference, summed in ``n_groups`` contiguous groups.

    Parameters
    ----------
    cdf : Tensor of shape (..., bins)
        Cumulative FCD histogram, non-decreasing, ending at 1.
    n_groups : int
        Number of output groups; must divide ``bins``.

    Returns
    -------
    Tensor of shape (..., n_groups)
        Probability mass per group times ``n_groups`` (a flat density is 1 everywhere).

    Examples
    --------
    >>> import torch
    >>> cdf = torch.linspace(0.0001, 1.0, 10000)
    >>> d = fcd_density(cdf, 100)
    >>> d.shape, round(float(d.mean()), 4)
    (torch.Size([100]), 1.0)
    """
    return pool_density(cdf_to_density(cdf), n_groups)


def timing_features(tr: Tensor, scan_length: Tensor, config: SurrogateConfig) -> Tensor:
    """Log-scaled timing features ``[log(tr / tr_ref), log(scan_length / scan_ref)]``.

    Parameters
    ----------
    tr, scan_length : Tensor of shape (K,)
        Repetition time and scan length [s].
    config : SurrogateConfig
        Gives the reference values ``tr_ref`` and ``scan_ref`` [s].

    Returns
    -------
    Tensor of shape (K, 2)
    """
    return torch.stack([torch.log(tr / config.tr_ref), torch.log(scan_length / config.scan_ref)], dim=-1)


class SubjectFeatures(NamedTuple):
    """Network inputs of K subjects, on the network's device and dtype.

    Attributes
    ----------
    fc_triu : Tensor of shape (K, N (N - 1) / 2)
        Empirical FC upper triangle.
    fcd_dens : Tensor of shape (K, fcd_bins)
        Pooled empirical FCD density (:func:`fcd_density` / :func:`pool_density`).
    tr, scan_length : Tensor of shape (K,)
        Repetition time and scan length [s].
    sc : Tensor of shape (K, N, N)
        Scaled structural connectivity (max 0.02).
    """

    fc_triu: Tensor
    fcd_dens: Tensor
    tr: Tensor
    scan_length: Tensor
    sc: Tensor

    def to(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> SubjectFeatures:
        """Copy to a device and floating dtype."""
        return SubjectFeatures(*(t.to(device=device, dtype=dtype) for t in self))


# --------------------------------------------------------------------------- the network


def _pre_norm_layer(layer: nn.TransformerEncoderLayer, x: Tensor, summary_only: bool) -> Tensor:
    """One pre-norm encoder layer in inference (no dropout); ``summary_only`` keeps token 0 only.

    Same operations as :class:`torch.nn.TransformerEncoderLayer` with ``norm_first=True``:
    ``x + SA(LN1(x))`` then ``x + FF(LN2(x))``; with ``summary_only`` the queries, the residual
    stream and the feed-forward block are restricted to the first token.
    """
    attn = layer.self_attn
    b, n_tokens, d = x.shape
    heads = attn.num_heads
    h = layer.norm1(x)
    w, bias = attn.in_proj_weight, attn.in_proj_bias
    if summary_only:
        q = F.linear(h[:, :1], w[:d], bias[:d]).view(b, 1, heads, d // heads).transpose(1, 2)
        kv = F.linear(h, w[d:], bias[d:]).view(b, n_tokens, 2, heads, d // heads)
        k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)
        x = x[:, :1]
    else:
        qkv = F.linear(h, w, bias).view(b, n_tokens, 3, heads, d // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
    a = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, x.shape[1], d)
    x = x + attn.out_proj(a)
    return x + layer.linear2(layer.activation(layer.linear1(layer.norm2(x))))


class _TakeRows(torch.autograd.Function):
    """``x[index]`` forward; backward sums the gradient rows of each index by a one-hot matrix
    product (a fixed order), not by the atomic adds of indexing's backward."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        ctx.n_rows = x.shape[0]
        return x[index]

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (index,) = ctx.saved_tensors
        one_hot = F.one_hot(index, ctx.n_rows).to(grad.dtype)  # (B, K)
        summed = one_hot.T @ grad.reshape(grad.shape[0], -1)
        return summed.reshape(ctx.n_rows, *grad.shape[1:]), None


def _take_rows(x: Tensor, index: Tensor | None) -> Tensor:
    """``x[index]`` along the first axis, with a backward pass that gives the same bits every run.

    Plain indexing with repeated indices (many candidates of one subject) accumulates its gradient
    with atomic adds whose order depends on thread timing, so training at 2 or more threads gave
    different weights on every run. With autograd on, the gradient rows are summed by a one-hot
    matrix product instead (:class:`_TakeRows`; the forward values are the same). It costs no
    measurable time: a forward and backward pass of 256 candidates of 28 subjects takes 67-70 ms
    either way on 2 CPU threads. ``index`` None returns ``x`` itself.
    """
    if index is None:
        return x
    if not (torch.is_grad_enabled() and x.requires_grad):
        return x[index]
    return _TakeRows.apply(x, index)


def _mlp(d_in: int, d_hidden: int, d_out: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_in, d_hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_hidden, d_out)
    )


class CostPredictor(nn.Module):
    """DELSSOME transformer predicting (corr_loss, l1_loss, ks_loss) of candidate parameter sets.

    Parameters
    ----------
    config : SurrogateConfig
        Sizes and input scalings; stored as ``self.config``.

    Examples
    --------
    >>> import torch
    >>> cfg = SurrogateConfig(n_regions=4, fcd_bins=10, cdf_bins=100, d_model=8, n_heads=2,
    ...                       n_layers=1, d_ff=16, d_subject=16)
    >>> net = CostPredictor(cfg).eval()
    >>> subj = net.encode_subject(torch.zeros(1, 6), torch.ones(1, 10),
    ...                           torch.tensor([0.72]), torch.tensor([300.0]))
    >>> out = net(torch.full((5, 4, 3), 0.5), torch.zeros(5, 4, 4), subj.expand(5, -1))
    >>> out.shape
    torch.Size([5, 3])
    """

    def __init__(self, config: SurrogateConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        d = c.d_model
        self.token_embed = nn.Linear(3 + c.n_regions, d)
        self.summary_token = nn.Parameter(torch.zeros(1, 1, d))
        nn.init.normal_(self.summary_token, std=0.02)
        self.fc_embed = _mlp(c.n_pairs, c.d_subject, d, c.dropout)
        self.fcd_embed = _mlp(c.fcd_bins, c.d_subject, d, c.dropout)
        self.timing_embed = _mlp(2, c.d_subject, d, c.dropout)
        layer = nn.TransformerEncoderLayer(
            d_model=d,
            nhead=c.n_heads,
            dim_feedforward=c.d_ff,
            dropout=c.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=c.n_layers, norm=nn.LayerNorm(d), enable_nested_tensor=False
        )
        self.fuse = _mlp(2 * d, 2 * d, d, c.dropout)
        self.heads = nn.Linear(d, 3)  # one independent linear head per cost term
        self.register_buffer("param_center", torch.tensor(c.param_center), persistent=False)
        self.register_buffer("param_halfwidth", torch.tensor(c.param_halfwidth), persistent=False)
        self.register_buffer("output_scale", torch.tensor(c.output_scale), persistent=False)

    def encode_subject(
        self, fc_triu: Tensor, fcd_dens: Tensor, tr: Tensor, scan_length: Tensor
    ) -> Tensor:
        """Embed K subjects (computed once per subject, shared by all its candidates).

        Parameters
        ----------
        fc_triu : Tensor of shape (K, N (N - 1) / 2)
            Empirical FC upper triangle (:func:`fc_upper_triangle`).
        fcd_dens : Tensor of shape (K, fcd_bins)
            Empirical FCD density (:func:`fcd_density`).
        tr, scan_length : Tensor of shape (K,)
            Repetition time and scan length [s].

        Returns
        -------
        Tensor of shape (K, d_model)
        """
        timing = timing_features(tr, scan_length, self.config)
        return self.fc_embed(fc_triu) + self.fcd_embed(fcd_dens) + self.timing_embed(timing)

    def forward(self, regional: Tensor, gsc: Tensor, subject_embedding: Tensor) -> Tensor:
        """Predict the three cost terms of B candidates.

        Parameters
        ----------
        regional : Tensor of shape (B, N, 3)
            wEE, wEI and sigma of each region.
        gsc : Tensor of shape (B, N, N)
            G times the scaled SC of the candidate's subject (row i = inputs of region i).
        subject_embedding : Tensor of shape (B, d_model)
            Output of :meth:`encode_subject` for each candidate's subject.

        Returns
        -------
        Tensor of shape (B, 3)
            corr_loss, l1_loss, ks_loss, each in ``[0, output_scale]``.
        """
        x = (regional - self.param_center) / self.param_halfwidth
        tokens = self.token_embed(torch.cat([x, gsc * self.config.gsc_scale], dim=-1))
        return self._encode_tokens(tokens, subject_embedding)

    def _encode_tokens(self, tokens: Tensor, subject_embedding: Tensor) -> Tensor:
        summary = self.summary_token.expand(tokens.shape[0], -1, -1) + subject_embedding[:, None, :]
        x = torch.cat([summary, tokens], dim=1)
        if self.training or torch.is_grad_enabled():
            h = self.encoder(x)[:, 0]
        else:
            h = self._summary_output(x)
        fused = self.fuse(torch.cat([h, subject_embedding], dim=-1))
        return torch.sigmoid(self.heads(fused)) * self.output_scale

    def _summary_output(self, x: Tensor) -> Tensor:
        """The encoder's output at the summary token, for inference (same numbers, ~1.6x faster).

        Written out rather than calling ``self.encoder`` because only the summary token's output
        is used: the last layer needs its query, attention and feed-forward for that one token
        (keys and values still come from every token), which skips about 40 % of the work; the
        attention runs in :func:`torch.nn.functional.scaled_dot_product_attention` (a fused
        kernel on CPU and GPU). ``tests/surrogate/test_network.py`` checks it against the module.
        """
        layers = self.encoder.layers
        for i, layer in enumerate(layers):
            x = _pre_norm_layer(layer, x, summary_only=i == len(layers) - 1)
        return self.encoder.norm(x[:, 0])

    def project_sc(self, sc: Tensor) -> Tensor:
        """The SC part of the token embedding, computed once per subject.

        The token embedding is linear in the G·SC row, so
        ``Linear([x, G·SC_i]) = W_x x + G (SC_i W_sc^T) + b``: with ``P = gsc_scale SC W_sc^T``
        precomputed per subject, a candidate's tokens cost O(N d) instead of O(N² d), and no
        (B, N, N) tensor is built.

        Parameters
        ----------
        sc : Tensor of shape (K, N, N)
            Scaled SC of K subjects.

        Returns
        -------
        Tensor of shape (K, N, d_model)
        """
        w_sc = self.token_embed.weight[:, 3:]  # (d, N)
        return (sc * self.config.gsc_scale) @ w_sc.T

    def forward_projected(
        self, regional: Tensor, g: Tensor, sc_proj: Tensor, subject_embedding: Tensor
    ) -> Tensor:
        """:meth:`forward` with the SC part of the embedding precomputed (:meth:`project_sc`).

        Parameters
        ----------
        regional : Tensor of shape (B, N, 3)
        g : Tensor of shape (B,)
            Global coupling of each candidate.
        sc_proj : Tensor of shape (B, N, d_model)
            :meth:`project_sc` of each candidate's subject.
        subject_embedding : Tensor of shape (B, d_model)

        Returns
        -------
        Tensor of shape (B, 3)
            Equal to ``forward(regional, g[:, None, None] * sc, subject_embedding)``.
        """
        x = (regional - self.param_center) / self.param_halfwidth
        w_x = self.token_embed.weight[:, :3]  # (d, 3)
        tokens = x @ w_x.T + g[:, None, None] * sc_proj + self.token_embed.bias
        return self._encode_tokens(tokens, subject_embedding)

    def score(
        self,
        subjects: SubjectFeatures,
        regional: Tensor,
        g: Tensor,
        subject_index: Tensor | None,
    ) -> Tensor:
        """Predict the cost terms of candidates given their subjects' inputs (differentiable).

        Parameters
        ----------
        subjects : SubjectFeatures
            Inputs of K subjects.
        regional : Tensor of shape (B, N, 3)
            wEE, wEI, sigma of each candidate.
        g : Tensor of shape (B,)
            Global coupling of each candidate.
        subject_index : Tensor of shape (B,), int64, or None
            Row in ``subjects`` of each candidate's subject; None when ``subjects`` has one row
            per candidate (row i is candidate i's subject).

        Returns
        -------
        Tensor of shape (B, 3)
            corr_loss, l1_loss, ks_loss.
        """
        emb = self.encode_subject(subjects.fc_triu, subjects.fcd_dens, subjects.tr, subjects.scan_length)
        proj = self.project_sc(subjects.sc)
        return self.forward_projected(
            regional, g, _take_rows(proj, subject_index), _take_rows(emb, subject_index)
        )

    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
