"""Converting user arrays to tensors with one clear error (shared by the model's public
functions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError


def numeric_tensor(x: Any, name: str) -> Tensor:
    """``x`` as a real floating-point tensor: tensors kept (integers and booleans refused or
    made float64), anything else read as float64 NumPy numbers.

    Raises
    ------
    InvalidInputError
        ``x`` holds no numbers (text, objects), or complex or boolean values, naming ``name``.
    """
    if isinstance(x, Tensor):
        t = x
    else:
        try:
            t = torch.from_numpy(np.array(x, dtype=np.float64))
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"{name} must be an array of numbers, got {type(x).__name__}", name
            ) from None
    if t.is_complex() or t.dtype == torch.bool:
        raise InvalidInputError(f"{name} must be real numbers, got a {t.dtype} tensor", name)
    return t if torch.is_floating_point(t) else t.to(torch.float64)
