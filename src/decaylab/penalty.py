"""External penalties: a loss term ``lam * sum_w sum(|w|**p)``, with an autograd and a fast mode."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import Tensor, nn

from decaylab.optim._validation import check_nonnegative, check_optional_bool
from decaylab.optim.fused import FusedGroup, FusedStep, check_fusable_params
from decaylab.param_groups import split_decay
from decaylab.rules._scalar import Scalar, add_scaled_, add_signed_, opmath_dtype

Coverage = str | Callable[[str, nn.Parameter], bool] | Iterable[str]


def _check_p(p: object) -> float:
    if isinstance(p, bool) or not isinstance(p, int | float):
        raise TypeError(f"p: expected a real number > 0, got {p!r}")
    if not (math.isfinite(p) and p > 0):
        raise ValueError(f"p: expected a finite number > 0, got {p!r}")
    return float(p)


def abs_power(w: Tensor, p: float) -> Tensor:
    """``|w|**p`` elementwise, with derivative ``p |w|**(p-1) sign(w)`` and ``0`` at ``w = 0`` for every p.

    For ``p < 1`` the naive ``w.abs().pow(p)`` has an infinite derivative at zero, which autograd
    turns into NaN; this keeps zeros at zero gradient (the subgradient choice of the fast mode).
    """
    if p == 2:
        return w * w
    if p == 1:
        return w.abs()
    if p > 1:
        return w.abs().pow(p)
    zero = w == 0
    safe = torch.where(zero, torch.ones_like(w), w.abs())
    return torch.where(zero, torch.zeros_like(w), safe.pow(p))


def abs_power_grad(w: Tensor, p: float) -> Tensor:
    """``d|w|**p / dw`` = ``p |w|**(p-1) sign(w)``, ``0`` at ``w = 0``."""
    if p == 2:
        return w * 2
    if p == 1:
        return w.sign()
    magnitude = w.abs()
    return torch.where(magnitude == 0, torch.zeros_like(w), p * magnitude.pow(p - 1) * w.sign())


def add_penalty_grad_(
    grads: list[Tensor], params: list[Tensor], weight_decay: Scalar, p: float, *, foreach: bool
) -> None:
    """In place: ``g += lam * p * |w|**(p-1) * sign(w)`` for each pair (the fast mode's update).

    For ``p = 2`` this is one in-place kernel per tensor (``g += 2 lam w``: read ``w`` and ``g``,
    write ``g``); other ``p`` build ``d|w|**p/dw`` first, unless compiled (``fused=True``).
    ``weight_decay`` may be a 0-dim tensor (the fused path compiles this function).
    """
    if p == 2 and foreach and not isinstance(weight_decay, Tensor):
        torch._foreach_add_(grads, params, alpha=2 * weight_decay)
    elif p == 2:
        for g, w in zip(grads, params, strict=True):
            add_scaled_(g, w, 2 * weight_decay)
    elif p == 1:
        for g, w in zip(grads, params, strict=True):
            add_signed_(g, w, weight_decay)
    else:
        for g, w in zip(grads, params, strict=True):
            add_scaled_(g, abs_power_grad(w, p), weight_decay)


def _fused_update(options: dict, grads: list[Tensor], params: list[Tensor], *, foreach: bool) -> None:
    add_penalty_grad_(grads, params, options["weight_decay"], options["p"], foreach=foreach)


class WeightRegularization:
    r"""The penalty :math:`\lambda \sum_{w} \sum_i |w_i|^p` over a chosen set of a model's parameters.

    ``penalty()`` returns it as a differentiable loss term (add it to the loss); ``add_to_grad()``
    adds its gradient :math:`\lambda p |w|^{p-1}\mathrm{sign}(w)` straight to each ``.grad`` without
    building a graph (the fast mode: one read of ``w`` and ``.grad``, one write of ``.grad``).

    ``covers`` picks the parameters: ``"all"`` (default, as the seed notebook), ``"weights"`` (what
    :func:`~decaylab.param_groups.split_decay` decays: no biases, norms or embeddings), a sequence
    of parameter names, or a predicate ``(name, param) -> bool``.

    Seed (conv 1.0, fc -1.5 x2, zero biases, lam=0.1): p=2 gives 0.55 and grads 0.2 / -0.3;
    p=1 gives 0.4 and grads 0.1 / -0.1.
    """

    def __init__(self, model: nn.Module, weight_decay: float, p: float = 2, *, covers: Coverage = "all") -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
        self.weight_decay = check_nonnegative("weight_decay", weight_decay)
        self.p = _check_p(p)
        self.names = self._select(model, covers)
        by_name = dict(model.named_parameters())
        self.params: list[nn.Parameter] = [by_name[n] for n in self.names]
        self._fused: FusedStep | None = None  # add_to_grad(fused=True)'s compiled update, built on first use

    @staticmethod
    def _select(model: nn.Module, covers: Coverage) -> list[str]:
        names = [n for n, _ in model.named_parameters()]
        if covers == "all":
            return names
        if covers == "weights":
            return split_decay(model)[0]
        if isinstance(covers, str):
            raise ValueError(
                f"covers: expected 'all', 'weights', a list of parameter names or a predicate, got {covers!r}"
            )
        if callable(covers):
            by_name = dict(model.named_parameters())
            return [n for n in names if covers(n, by_name[n])]
        wanted = list(covers)
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            raise ValueError(f"covers: unknown parameter name(s) {unknown[:5]}; the model has {names[:8]}...")
        return [n for n in names if n in set(wanted)]

    def penalty(self) -> Tensor:
        """``lam * sum_w sum(|w|**p)`` as a differentiable scalar."""
        if not self.params:
            return torch.zeros(())
        total = sum(abs_power(w, self.p).sum() for w in self.params)
        return self.weight_decay * total

    @torch.no_grad()
    def value(self) -> Tensor:
        """The penalty's value without building a graph."""
        return self.penalty().detach()

    @torch.no_grad()
    def add_to_grad(self, *, foreach: bool | None = None, fused: bool | None = None) -> None:
        """``w.grad += lam * p * |w|**(p-1) * sign(w)`` for each covered parameter (creates ``.grad`` if None).

        ``foreach=True`` uses torch's multi-tensor kernel for ``p = 2``; ``fused=True`` compiles
        the per-tensor update (one pass per tensor for every ``p``; the first call compiles, as
        for the optimizers' ``fused=True``). Both default to off: for ``p = 2`` the plain loop is
        already one in-place pass per tensor.
        """
        check_optional_bool("foreach", foreach)
        check_optional_bool("fused", fused)
        if fused and foreach:
            raise ValueError("fused=True and foreach=True are mutually exclusive; pass only one of them")
        grads = [w.grad for w in self.params]
        if fused:  # one cheap pass each: this runs every step, and the step itself is ~10 ms at ResNet-50 size
            check_fusable_params(self.params, "add_to_grad(fused=True)")
            for g in grads:
                if g is not None and g.layout is not torch.strided:
                    raise TypeError(f"add_to_grad(fused=True) needs dense gradients, got layout {g.layout}")
        if any(g is None for g in grads):  # as after autograd's backward: every covered parameter has a .grad
            for w in self.params:
                if w.grad is None:
                    w.grad = torch.zeros_like(w)
            grads = [w.grad for w in self.params]
        if self.weight_decay == 0 or not self.params:
            return
        if not fused:
            add_penalty_grad_(grads, self.params, self.weight_decay, self.p, foreach=bool(foreach))
            return
        if self._fused is None:
            self._fused = FusedStep(_fused_update)
        self._fused(
            [
                FusedGroup(
                    static={"p": self.p},
                    dynamic={"weight_decay": self.weight_decay},
                    tensors=(grads, self.params),
                    present=(),
                    scalar_dtype=opmath_dtype(self.params),  # lam only scales: eager rounds it to this
                )
            ]
        )
