"""The seed-2 toy: a diagonal quadratic loss, one scalar parameter per coordinate."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn


class DiagonalQuadratic(nn.Module):
    r"""``loss = sum_i c_i / 2 * w_i**2``; the default curvatures ``(0.1, 2.0)`` give the seed's
    ``w1**2/20 + w2**2``. Parameters are ``w_1``, ``w_2``, ... as in the seed's ``MyModel``,
    built in ``dtype`` (default: torch's default dtype). Pass ``torch.float64`` for exact start values:
    ``.double()`` afterwards keeps the float32 rounding of a start value such as 0.2.

    With plain gradient descent and coupled decay :math:`\lambda` each coordinate contracts by
    :math:`1 - \eta (c_i + \lambda)` per step (see :meth:`closed_form`).
    """

    def __init__(
        self,
        init: Sequence[float] = (1.0, 1.0),
        curvatures: Sequence[float] = (0.1, 2.0),
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        init, curvatures = list(init), list(curvatures)
        if not init or len(init) != len(curvatures):
            raise ValueError(
                f"init and curvatures: expected two non-empty sequences of equal length, got {len(init)} and {len(curvatures)}"
            )
        if not all(math.isfinite(c) and c >= 0 for c in curvatures):
            raise ValueError(f"curvatures: expected finite numbers >= 0, got {curvatures!r}")
        # Python floats, not a buffer: they take the weights' dtype exactly (0.1 stays 0.1 in float64)
        self.curvatures: tuple[float, ...] = tuple(float(c) for c in curvatures)
        for i, value in enumerate(init, start=1):
            setattr(self, f"w_{i}", nn.Parameter(torch.tensor([float(value)], dtype=dtype)))

    @property
    def weights(self) -> list[nn.Parameter]:
        return [getattr(self, f"w_{i}") for i in range(1, len(self.curvatures) + 1)]

    def forward_loss(self) -> Tensor:
        return sum(c / 2 * w.pow(2).sum() for c, w in zip(self.curvatures, self.weights, strict=True))  # type: ignore[return-value]

    def forward(self) -> Tensor:
        return self.forward_loss()

    def closed_form(self, steps: int, lr: float, coupled_weight_decay: float = 0.0) -> list[float]:
        """``w_i(t) = w_i(0) * (1 - lr * (c_i + lam))**t`` for plain GD (no momentum) with coupled decay."""
        return [
            float(w.detach()) * (1 - lr * (c + coupled_weight_decay)) ** steps
            for c, w in zip(self.curvatures, self.weights, strict=True)
        ]
