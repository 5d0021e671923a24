"""Converting user arrays to tensors with one clear error (shared by the model's public
functions)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from delssome_norms.errors import InvalidInputError


def numeric_tensor(x: Any, name: str) -> Tensor:
    """``x`` as a real floating-point tensor: floating tensors kept, integer and boolean ones
    (a binarised SC) made float64, anything else read as float64 NumPy numbers.

    Raises
    ------
    InvalidInputError
        ``x`` holds no numbers (text, objects), or complex values, naming ``name``.
    """
    if isinstance(x, Tensor):
        t = x
    else:
        try:
            t = torch.from_numpy(np.array(x, dtype=np.float64))
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"must be an array of numbers, got {type(x).__name__}", name
            ) from None
    if t.is_complex():
        raise InvalidInputError(f"must be real numbers, got a {t.dtype} tensor", name)
    return t if torch.is_floating_point(t) else t.to(torch.float64)  # integers, booleans
