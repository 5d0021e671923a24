"""Cost of a simulated summary against empirical FC and FCD-CDF (docs/science.md §3).

``corr_loss = 1 − Pearson(upper-tri FC_sim, upper-tri FC_emp)``,
``l1_loss = |mean(upper-tri FC_sim) − mean(upper-tri FC_emp)|`` (difference of means, as in the
paper's code), ``ks_loss = max over bins |CDF_sim − CDF_emp|``; total = sum, equal weights.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError
from delssome_norms.model.summary import Summary, upper_tri_indices
from delssome_norms.model.tensors import numeric_tensor


class Losses(NamedTuple):
    """The three cost terms, each a Tensor of shape (B,) (NaN for invalid parameter sets)."""

    corr: Tensor
    l1: Tensor
    ks: Tensor

    @property
    def total(self) -> Tensor:
        """``corr + l1 + ks``, shape (B,)."""
        return self.corr + self.l1 + self.ks

    def as_dict(self, index: int = 0) -> dict[str, float]:
        """The losses of one parameter set as floats, in ``fit_quality.csv`` naming."""
        corr, l1, ks = (float(t[index]) for t in self)
        return {"corr_loss": corr, "l1_loss": l1, "ks_loss": ks, "total_loss": corr + l1 + ks}


def _to(x, like: Tensor, name: str) -> Tensor:
    return numeric_tensor(x, name).to(device=like.device, dtype=torch.float64)


def _check_finite(t: Tensor, name: str) -> None:
    if not bool(torch.isfinite(t).all()):
        raise InvalidInputError(
            "contains NaN or inf; empirical statistics must be finite (check the time series "
            "for constant regions or missing frames)",
            name,
        )


def cost(summary: Summary, fc_emp, fcd_cdf_emp) -> Losses:
    """Losses of every parameter set of ``summary`` against empirical statistics.

    Parameters
    ----------
    summary : Summary
        ``fc`` (B, N, N), ``fcd_cdf`` (B, bins), ``valid`` (B,).
    fc_emp : Tensor or ndarray of shape (N, N) or (B, N, N)
        Empirical FC (one per parameter set allows K subjects to share one batch).
    fcd_cdf_emp : Tensor or ndarray of shape (bins,) or (B, bins)
        Empirical FCD-CDF.

    Returns
    -------
    Losses
        ``corr``, ``l1``, ``ks`` of shape (B,), float64; NaN where ``summary.valid`` is False.

    Raises
    ------
    InvalidInputError
        ``summary`` is not a Summary, an empirical array has the wrong shape, is not numeric, or
        holds NaN/inf (the FC's diagonal is not used and not checked).
    """
    if not all(hasattr(summary, a) for a in ("fc", "fcd_cdf", "valid")):
        raise InvalidInputError(
            f"summary must be the Summary of summarize(), got {type(summary).__name__}", "summary"
        )
    fc = summary.fc.to(torch.float64)
    B, N, _ = fc.shape
    emp = _to(fc_emp, fc, "fc_emp")
    if emp.shape[-2:] != (N, N) or emp.ndim not in (2, 3) or (emp.ndim == 3 and emp.shape[0] != B):
        raise InvalidInputError(
            f"fc_emp must have shape ({N}, {N}) or ({B}, {N}, {N}) like the simulated FC, got "
            f"{tuple(emp.shape)}"
        )
    iu, ju = upper_tri_indices(N, fc.device)
    a = fc[:, iu, ju]
    b = emp[..., iu, ju].expand(B, -1)
    _check_finite(b, "fc_emp")  # the diagonal is not used
    l1 = (a.mean(dim=1) - b.mean(dim=1)).abs()
    ac = a - a.mean(dim=1, keepdim=True)
    bc = b - b.mean(dim=1, keepdim=True)
    r = (ac * bc).sum(dim=1) / torch.sqrt((ac * ac).sum(dim=1) * (bc * bc).sum(dim=1))
    corr = 1.0 - r
    cdf = summary.fcd_cdf.to(torch.float64)
    cdf_emp = _to(fcd_cdf_emp, cdf, "fcd_cdf_emp")
    bins = cdf.shape[-1]
    if (
        cdf_emp.shape[-1] != bins
        or cdf_emp.ndim not in (1, 2)
        or cdf_emp.numel() not in (bins, B * bins)
    ):
        raise InvalidInputError(
            f"fcd_cdf_emp must have shape ({bins},) or ({B}, {bins}) like the simulated FCD-CDF, "
            f"got {tuple(cdf_emp.shape)}"
        )
    _check_finite(cdf_emp, "fcd_cdf_emp")
    cdf_emp = cdf_emp.reshape(-1, bins).expand(B, -1)
    ks = (cdf - cdf_emp).abs().amax(dim=1)
    invalid = ~summary.valid.to(fc.device)
    nan = torch.tensor(torch.nan, dtype=torch.float64, device=fc.device)
    return Losses(*(torch.where(invalid, nan, t) for t in (corr, l1, ks)))
