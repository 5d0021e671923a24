"""Array helpers and links shared by the response distributions of :mod:`.distributions`.

The log-densities accept numpy arrays or torch tensors alike; these helpers pick the array
namespace, convert mixed inputs and provide the special functions for both.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import special

Array = np.ndarray | torch.Tensor

LOG_2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------------------------
# small helpers that work on numpy arrays and torch tensors alike
# ---------------------------------------------------------------------------------------------
def _xp(*values):
    return torch if any(isinstance(v, torch.Tensor) for v in values) else np


def _prep(*values):
    """Return the array namespace and the values, converted to tensors when any is a tensor."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:  # numpy float32 / float16 inputs are evaluated in float64, as the CDFs are
        return np, tuple(
            v.astype(np.float64)
            if isinstance(v, np.ndarray | np.generic) and v.dtype.kind == "f" and v.dtype.itemsize < 8
            else v
            for v in values
        )
    ref = tensors[0]
    return torch, tuple(
        v if isinstance(v, torch.Tensor) else torch.as_tensor(v, dtype=ref.dtype, device=ref.device)
        for v in values
    )


def _neg_inf_at_inf(xp, y: Array, logpdf: Array) -> Array:
    """``logpdf`` with -inf where y is +-inf (where the formulas give inf - inf = NaN)."""
    if xp is np and not np.any(np.isinf(y)):
        return logpdf  # unchanged (a numpy scalar stays a scalar)
    return xp.where(xp.isinf(y), -math.inf, logpdf)


def _logcosh(x: Array) -> Array:
    xp = _xp(x)
    a = xp.abs(x)
    return a + xp.log1p(xp.exp(-2.0 * a)) - math.log(2.0)


def _lgamma(x: Array) -> Array:
    return torch.lgamma(x) if isinstance(x, torch.Tensor) else special.gammaln(x)


def _broadcast(*arrays) -> list[np.ndarray]:
    return list(np.broadcast_arrays(*[np.asarray(a, dtype=np.float64) for a in arrays]))


# ---------------------------------------------------------------------------------------------
# links
# ---------------------------------------------------------------------------------------------
def link_inverse(name: str, eta: Array) -> Array:
    """Map a linear predictor to the parameter scale (``"identity"`` or ``"log"``)."""
    if name == "identity":
        return eta
    if name == "log":
        return _xp(eta).exp(eta)
    raise ValueError(f"unknown link {name!r}")


def link(name: str, value: Array) -> Array:
    """Map a parameter to its linear-predictor scale (inverse of :func:`link_inverse`)."""
    if name == "identity":
        return value
    if name == "log":
        return _xp(value).log(value)
    raise ValueError(f"unknown link {name!r}")
