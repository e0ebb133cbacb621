"""Small pieces every sandbox command shares: the dtype names it accepts and strict-JSON output."""

from __future__ import annotations

import math
from typing import Final

import torch

DTYPES: Final[dict[str, torch.dtype]] = {"float32": torch.float32, "float64": torch.float64}


def check_dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ValueError(f"dtype: expected one of {', '.join(DTYPES)}, got {name!r}")
    return DTYPES[name]


def json_safe(obj: object) -> object:
    """``obj`` with every non-finite float replaced by ``None`` (strict JSON has no NaN / Infinity)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    return obj
