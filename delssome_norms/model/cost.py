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
from delssome_norms.io.checks import check_fc, check_fcd_cdf
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


FC_RANGE_TOL = 1e-9
"""Largest excess of an empirical FC value over 1 in magnitude (as :func:`check_fc` allows)."""
CDF_STEP_TOL = 1e-12
"""Largest decrease between neighbouring FCD-CDF values (as :func:`check_fcd_cdf` allows)."""
CDF_END_TOL = 1e-6
"""Largest distance of an empirical FCD-CDF's last value from 1 taken as it is (a float32 CDF's
rounding, e.g. a simulated scan's as a synthetic subject's; its effect on ks_loss is as small);
a larger one goes through :func:`check_fcd_cdf`: rescaled with a warning within 1e-3, else an
error."""


def _gate(values: Tensor, flagged: Tensor, check, name: str) -> Tensor:
    """``values`` (K, ...) with the items ``flagged`` (K,) by a screen passed through the input
    gate ``check(array, input_name)`` of :mod:`delssome_norms.io.checks` (the CLI's checks and
    words): it raises for an unusable item, or returns it repaired (a stored triangle mirrored,
    a CDF ending within 1e-3 of 1 rescaled; each with its warning), which replaces it."""
    if not bool(flagged.any()):  # the one synchronisation of a valid batch
        return values
    out = values.clone()
    for k in flagged.nonzero().flatten().tolist():
        item = name if values.shape[0] == 1 else f"{name}[{k}]"
        fixed = check(out[k].cpu().numpy(), item)
        out[k] = torch.as_tensor(fixed, dtype=out.dtype).to(out.device)
    return out


def _checked_fc(emp: Tensor) -> Tensor:
    """The empirical FC (N, N) or (K, N, N) through :func:`check_fc`'s range check, on what the
    cost uses: the upper triangle. It is mirrored below the diagonal and the diagonal set to 1
    first, so whatever the lower triangle and the diagonal hold (NaN, another triangle) is not
    used and not checked. A vectorised screen picks the matrices to check, so a valid batch costs
    a few elementwise passes and one sync."""
    n = emp.shape[-1]
    upper = torch.ones((n, n), dtype=torch.bool, device=emp.device).triu(1)
    eye = torch.eye(n, dtype=torch.bool, device=emp.device)
    one = torch.ones((), dtype=emp.dtype, device=emp.device)
    batch = torch.where(upper, emp, emp.transpose(-1, -2))
    batch = torch.where(eye, one, batch).reshape(-1, n, n)
    flagged = ~(batch.abs().amax(dim=(1, 2)) <= 1.0 + FC_RANGE_TOL)
    checked = _gate(batch, flagged, lambda a, name: check_fc(a, n, name), "fc_emp")
    return checked.reshape(emp.shape)


def _checked_cdf(emp: Tensor) -> Tensor:
    """The empirical FCD-CDF (bins,) or (K, bins) through :func:`check_fcd_cdf` (non-negative,
    non-decreasing, ending at 1), screened as :func:`_checked_fc` does."""
    bins = emp.shape[-1]
    batch = emp.reshape(-1, bins)
    flagged = (batch.amin(dim=1) < 0) | ((batch[:, -1] - 1.0).abs() > CDF_END_TOL)
    if bins > 1:
        flagged |= batch.diff(dim=1).amin(dim=1) < -CDF_STEP_TOL
    checked = _gate(batch, flagged, lambda a, name: check_fcd_cdf(a, bins, name), "fcd_cdf_emp")
    return checked.reshape(emp.shape)


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
        holds NaN/inf, or fails the input gates of the CLI
        (:func:`~delssome_norms.io.checks.check_fc`,
        :func:`~delssome_norms.io.checks.check_fcd_cdf`, with their words): an FC with values
        outside [-1, 1], a CDF that is negative, decreases or does not end at 1 (a CDF ending
        within 1e-3 of 1 is rescaled, with an :class:`~delssome_norms.errors.InputWarning`).
        Only the FC's upper triangle is used, and only it is checked: its diagonal and lower
        triangle (NaN, or values that differ from the upper triangle) are ignored.
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
    _check_finite(emp[..., iu, ju], "fc_emp")  # the diagonal is not used
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
    # the values of the user's statistics (not the simulated ones), as the CLI checks them
    b = _checked_fc(emp)[..., iu, ju].expand(B, -1)
    cdf_emp = _checked_cdf(cdf_emp).reshape(-1, bins).expand(B, -1)
    a = fc[:, iu, ju]
    l1 = (a.mean(dim=1) - b.mean(dim=1)).abs()
    ac = a - a.mean(dim=1, keepdim=True)
    bc = b - b.mean(dim=1, keepdim=True)
    r = (ac * bc).sum(dim=1) / torch.sqrt((ac * ac).sum(dim=1) * (bc * bc).sum(dim=1))
    corr = 1.0 - r
    ks = (cdf - cdf_emp).abs().amax(dim=1)
    invalid = ~summary.valid.to(fc.device)
    nan = torch.tensor(torch.nan, dtype=torch.float64, device=fc.device)
    return Losses(*(torch.where(invalid, nan, t) for t in (corr, l1, ks)))
