"""Coupled decay: terms that enter the gradient (and so momentum and Adam's moments).

    g~ = g + lam * w                                   (coupled L2, torch.optim.SGD/Adam's weight_decay)

These functions return new gradient tensors and never write to ``.grad``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from decaylab.rules._scalar import Scalar, add_scaled, add_scaled_


def coupled_l2(grads: list[Tensor], params: list[Tensor], weight_decay: Scalar, *, foreach: bool) -> list[Tensor]:
    """Return ``g + lam * w`` for every pair (new tensors; the inputs are left alone)."""
    if foreach:
        return list(torch._foreach_add(grads, params, alpha=weight_decay))
    return [add_scaled(g, w, weight_decay) for g, w in zip(grads, params, strict=True)]


def coupled_l2_(grads: list[Tensor], params: list[Tensor], weight_decay: Scalar, *, foreach: bool) -> None:
    """In place: ``g += lam * w``. For gradient buffers the caller owns (not ``.grad`` of a user)."""
    if foreach:
        torch._foreach_add_(grads, params, alpha=weight_decay)
    else:
        for g, w in zip(grads, params, strict=True):
            add_scaled_(g, w, weight_decay)
