"""Decoupled decay rules: pure in-place functions over lists of weights.

Each rule is applied outside the gradient, by the optimizer, around its base update
``w' = w - update(g~)``. ``factor`` below is ``s * lam`` with ``s`` from :mod:`decaylab.rules.scale`.

Rules applied *before* the base update (so they act on the pre-step weights ``w``, as
torch.optim.AdamW does):

    decoupled L2          w <- w - factor * w              = (1 - factor) * w
    decoupled L1 (sign)   w <- w - factor * sign(w)        (can cross zero; the seed's weight_norm=1)
    toward a reference    w <- w - factor * (w - w_ref)    (L2-SP; w_ref is never changed)

Rules applied *after* the base update (proximal: they act on ``w'``):

    proximal L1           w <- sign(w) * max(|w| - threshold, 0)
                             = w - clamp(w, -threshold, threshold)

The proximal form gives exact zeros where ``|w| <= threshold`` and never flips a sign.
Every function has a per-tensor path (``foreach=False``) and a multi-tensor path
(``foreach=True``, torch._foreach_* kernels); the two give identical results. The per-tensor path
also takes ``factor`` / ``threshold`` as a 0-dim tensor: that is how the fused path
(:mod:`decaylab.optim.fused`) compiles these very functions (see :mod:`decaylab.rules._scalar`);
and as a tensor that broadcasts against the weights (``[C, 1]`` against ``[C, P]``: one number per
row), which is how the batched executor applies each stacked configuration's own strength.
"""

from __future__ import annotations

import torch
from torch import Tensor

from decaylab.rules._scalar import Scalar, add_signed_, as_weight, clamp_symmetric, is_zero


def decoupled_l2_(params: list[Tensor], factor: Scalar, *, foreach: bool) -> None:
    """``w <- (1 - factor) * w``."""
    if is_zero(factor) or not params:
        return
    if foreach:
        torch._foreach_mul_(params, 1.0 - factor)
    else:
        for w in params:
            w.mul_(1.0 - factor)


def decoupled_l1_(params: list[Tensor], factor: Scalar, *, foreach: bool) -> None:
    """``w <- w - factor * sign(w)`` (a subgradient step on ``lam * |w|``)."""
    if is_zero(factor) or not params:
        return
    if foreach:
        signs = torch._foreach_sign(params)
        torch._foreach_add_(params, signs, alpha=-factor)
    else:
        for w in params:
            add_signed_(w, w, factor, subtract=True)


def proximal_l1_(params: list[Tensor], threshold: Scalar, *, foreach: bool) -> None:
    """Soft threshold: ``w <- sign(w) * max(|w| - threshold, 0)``, computed as ``w - clamp(w, -t, t)``.

    ``w - clamp(w, -t, t)`` is exactly ``0`` where ``|w| <= t`` (x - x == 0 in floating point) and
    has the sign of ``w`` elsewhere, so the rule never crosses zero.
    """
    if is_zero(threshold) or not params:
        return
    if foreach:
        clipped = torch._foreach_clamp_min(params, -threshold)
        torch._foreach_clamp_max_(clipped, threshold)
        torch._foreach_sub_(params, clipped)
    else:
        for w in params:
            w.sub_(clamp_symmetric(w, threshold))


def toward_reference_(params: list[Tensor], references: list[Tensor], factor: Scalar, *, foreach: bool) -> None:
    """``w <- w - factor * (w - w_ref)`` = ``lerp(w, w_ref, factor)``; ``w_ref`` is left unchanged."""
    if is_zero(factor) or not params:
        return
    if foreach:
        torch._foreach_lerp_(params, references, factor)
    else:
        for w, ref in zip(params, references, strict=True):
            w.lerp_(ref, as_weight(factor, w))
