"""Scalars that are a Python number on the eager path and a 0-dim tensor on the fused path.

The fused path (:mod:`decaylab.optim.fused`) compiles the *same* per-tensor code as the eager
path, with every number that may change between steps (``lr``, the decay strengths, the scale
``s``, Adam's bias corrections) given as a 0-dim tensor, so that an LR scheduler never triggers a
recompile. torch's ``alpha=`` / ``value=`` arguments take numbers only, so the few places that
scale by such a value go through these helpers: a number keeps the exact eager kernel (results
bit-identical to torch.optim), a tensor uses a broadcasting multiply, which Inductor fuses into
the same single pass over memory. The batched executor (:mod:`decaylab.sandbox.batched`) passes
tensors of shape ``[C, 1]`` instead, one number per stacked configuration; they broadcast the same way.
"""

from __future__ import annotations

import torch
from torch import Tensor

Scalar = float | Tensor


def is_zero(value: Scalar) -> bool:
    """``value == 0`` for a number; ``False`` for a tensor (the fused path decides zeros before tracing)."""
    return not isinstance(value, Tensor) and value == 0


def add_scaled_(x: Tensor, y: Tensor, alpha: Scalar) -> Tensor:
    """In place: ``x += alpha * y``."""
    if isinstance(alpha, Tensor):
        return x.addcmul_(y, alpha)
    return x.add_(y, alpha=alpha)


def add_signed_(x: Tensor, w: Tensor, strength: Scalar, *, subtract: bool = False) -> Tensor:
    """In place: ``x += strength * sign(w)`` (``x -= ...`` with ``subtract``).

    ``sign`` is torch's: ``0`` at ``+-0`` and NaN. Eagerly this is ``x.add_(w.sign(), alpha=...)``.
    Under ``torch.compile`` (the fused path), for float32/float64 weights and a number or 0-dim
    strength, it is ``strength`` with its sign bit flipped where ``w``'s is set, and zero where
    ``|w| > 0`` fails. Inductor compiles ``sign`` to two compares, two blends and a subtract per
    vector, and that compute showed in a memory-bound loop. On one 25M-element tensor on this host,
    ``g += lam * sign(w)`` was 10% slower than ``g += 2 lam w`` with ``sign`` and 3-4% slower with
    the bits. The values are the same bits either way, because ``strength * (+-1)`` is exact
    (signed zeros included).

    Other cases keep ``sign``. For 16-bit types, eager kernels differ in when they round
    ``strength`` (CPU to the weights' type, CUDA not). Per-row ``[C, 1]`` strengths (the batched
    executor) stay in their own dtype.
    """
    if torch.compiler.is_compiling() and _bit_form_applies(strength, w):
        signed = _with_sign_of(strength, w)
        return x.sub_(signed) if subtract else x.add_(signed)
    return add_scaled_(x, w.sign(), -strength if subtract else strength)


_SAME_SIZE_INT = {torch.float32: torch.int32, torch.float64: torch.int64}


def _bit_form_applies(strength: Scalar, w: Tensor) -> bool:
    return w.dtype in _SAME_SIZE_INT and (not isinstance(strength, Tensor) or strength.dim() == 0)


def _with_sign_of(strength: Scalar, w: Tensor) -> Tensor:
    """``strength * sign(w)`` by bits: ``strength``'s bits XOR ``w``'s sign bit, 0 where ``sign(w)`` is."""
    ints = _SAME_SIZE_INT[w.dtype]
    if isinstance(strength, Tensor):
        value = strength.to(w.dtype)
    else:
        value = torch.full((), strength, dtype=w.dtype, device=w.device)
    sign_bits = w.view(ints) & torch.iinfo(ints).min  # the top bit alone
    signed = (value.view(ints) ^ sign_bits).view(w.dtype)
    return torch.where(w.abs() > 0, signed, 0.0)


def opmath_dtype(tensors: list[Tensor]) -> torch.dtype:
    """The precision in which eager kernels apply a Python number to ``tensors``: float64 if any is
    float64, else float32 (torch rounds a scalar to its "opmath" type: float32 for float32 and the
    16-bit types). A per-step number precomputed in double and given to compiled loops in this dtype
    has the value the eager kernel uses, and the loops load it without converting it per vector."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


def add_scaled(x: Tensor, y: Tensor, alpha: Scalar) -> Tensor:
    """``x + alpha * y`` as a new tensor."""
    if isinstance(alpha, Tensor):
        return torch.addcmul(x, y, alpha)
    return x.add(y, alpha=alpha)


def addcdiv_scaled_(x: Tensor, numerator: Tensor, denominator: Tensor, value: Scalar) -> Tensor:
    """In place: ``x += value * numerator / denominator``."""
    if isinstance(value, Tensor):
        return x.addcmul_(numerator / denominator, value)
    return x.addcdiv_(numerator, denominator, value=value)


def as_weight(value: Scalar, like: Tensor) -> Scalar:
    """``value`` as a ``lerp`` weight for ``like``: tensors must share its dtype, numbers pass unchanged."""
    return value.to(like.dtype) if isinstance(value, Tensor) else value


def clamp_symmetric(x: Tensor, bound: Scalar) -> Tensor:
    """``clamp(x, -bound, bound)`` as a new tensor. A tensor ``bound`` goes through ``maximum`` /
    ``minimum`` (the same values: no rounding is involved), whose CPU kernels are vectorized where
    ``clamp`` with tensor bounds is not (5x faster for a ``[C, 1]`` bound over a ``[C, P]`` block)."""
    if isinstance(bound, Tensor):
        return torch.minimum(torch.maximum(x, -bound), bound)
    return x.clamp(-bound, bound)
