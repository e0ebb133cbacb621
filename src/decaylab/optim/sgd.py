"""SGD with coupled weight decay (torch.optim.SGD semantics) and SGDW with every decoupled rule."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from decaylab.optim._base import DecoupledOptimizer, TensorLists, ValidatedOptimizer
from decaylab.optim._decay import ReferenceSource, decay_after_update, decay_before_update
from decaylab.optim._validation import (
    check_bool,
    check_l1_decay_needs_elastic_net,
    check_nonnegative,
    rule_from_weight_norm,
)
from decaylab.optim.functional import oriented_gradients, sgd_step
from decaylab.rules import coupled_l2, coupled_l2_
from decaylab.rules._scalar import is_zero


def _check_momentum_options(group: dict[str, Any]) -> None:
    check_nonnegative("lr", group["lr"])
    momentum = check_nonnegative("momentum", group["momentum"])
    dampening = check_nonnegative("dampening", group["dampening"])
    check_bool("nesterov", group["nesterov"])
    if group["nesterov"] and (momentum <= 0 or dampening != 0):
        raise ValueError(
            f"nesterov=True requires momentum > 0 and dampening = 0 (got momentum={group['momentum']!r}, "
            f"dampening={group['dampening']!r})"
        )


def _fusable_momentum(group: dict[str, Any], buffers: list | None) -> bool:
    """The first momentum step (buffer = g) runs eagerly; later ones can be compiled."""
    return group["momentum"] == 0 or all(b is not None for b in buffers or [])


def _store_momentum_buffers(optimizer: torch.optim.Optimizer, params: list[torch.Tensor], buffers: list | None) -> None:
    for p, buf in zip(params, buffers or [], strict=False):
        optimizer.state[p]["momentum_buffer"] = buf


class SGD(ValidatedOptimizer):
    r"""Stochastic gradient descent with *coupled* L2 decay: the decay enters the gradient.

    For each parameter with a gradient, with :math:`\lambda` = ``weight_decay``, :math:`\mu` =
    ``momentum``, :math:`\tau` = ``dampening``, :math:`\eta` = ``lr``:

    .. math::
        \tilde g = \pm g + \lambda w \quad (- \text{ when maximize}) \\
        b_1 = \tilde g, \quad b_t = \mu b_{t-1} + (1-\tau)\tilde g \\
        d = \tilde g + \mu b_t \ (\text{nesterov}) \text{ or } b_t \ (\mu > 0) \text{ or } \tilde g \\
        w \leftarrow w - \eta d

    This is torch.optim.SGD's rule, computed with the same operations (equal to within 1 ulp).
    Seed: lr=0.1, weight_decay=0.1, zero gradient: 1.0 -> 0.99, -1.5 -> -1.485.

    ``foreach`` / ``fused`` pick the implementation, as in torch.optim (see :class:`SGDW`).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            weight_decay=weight_decay,
            nesterov=nesterov,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
        )
        self._check_group(defaults)
        super().__init__(params, defaults)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        _check_momentum_options(group)
        check_nonnegative("weight_decay", group["weight_decay"])

    def _group_tensors(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> TensorLists:
        buffers = [self.state[p].get("momentum_buffer") for p in params] if group["momentum"] != 0 else None
        return params, grads, buffers

    @staticmethod
    def _update(
        group: dict[str, Any], params: list[Tensor], grads: list[Tensor], buffers: list | None, *, foreach: bool
    ) -> None:
        directions = oriented_gradients(grads, group["maximize"], foreach=foreach)
        if not is_zero(group["weight_decay"]):
            if group["maximize"]:  # directions are our own tensors: add in place
                coupled_l2_(directions, params, group["weight_decay"], foreach=foreach)
            else:
                directions = coupled_l2(directions, params, group["weight_decay"], foreach=foreach)
        sgd_step(
            params,
            directions,
            buffers if buffers is not None else [],
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            foreach=foreach,
        )

    def _fusable(self, group: dict[str, Any], tensors: TensorLists) -> bool:
        return _fusable_momentum(group, tensors[2])

    def _finish(self, group: dict[str, Any], params: list[Tensor], tensors: TensorLists) -> None:
        _store_momentum_buffers(self, params, tensors[2])


class SGDW(DecoupledOptimizer):
    r"""SGD with *decoupled* decay: the decay is applied to the weights, outside the gradient.

    With :math:`s` from ``scale`` (``"none"``: 1, ``"lr"``: :math:`\eta_t`, ``"schedule"``:
    :math:`\eta_t/\eta_0`) and :math:`\lambda` = ``weight_decay``, each step is

    .. math::
        w \leftarrow \mathrm{before}(w) \quad\text{then}\quad
        w \leftarrow w - \eta\, d(\pm g) \ \text{(SGD with momentum, as in :class:`SGD`)}
        \quad\text{then}\quad w \leftarrow \mathrm{after}(w)

    ======================  =======================================  ===================================
    ``rule``                before                                   after
    ======================  =======================================  ===================================
    ``"l2"`` (weight_norm=2)  :math:`w - s\lambda w`                 -
    ``"l1"`` (weight_norm=1)  :math:`w - s\lambda\,\mathrm{sign}(w)` -
    ``"proximal_l1"``       -                                        :math:`\mathrm{sign}(w)\max(|w| - s\lambda, 0)`
    ``"elastic_net"``       :math:`w - s\lambda w`                   :math:`\mathrm{sign}(w)\max(|w| - s\lambda_1, 0)`
    ``"toward_reference"``  :math:`w - s\lambda (w - w_{ref})`       -
    ======================  =======================================  ===================================

    ``weight_norm`` is the seed notebook's switch (2: L2, 1: sign L1); ``rule`` names any method
    and wins when given. The default ``scale="none"`` is the seed's SGDW (s = 1): lr=0.1,
    weight_decay=0.1, zero gradient gives 1.0 -> 0.9 and -1.5 -> -1.35 (L2) or -1.4 (L1).
    Parameters whose ``.grad`` is None are neither updated nor decayed (as torch.optim.AdamW).
    Every option may be overridden per param group.

    Implementation (the result is the same up to float rounding):

    * ``foreach=False``: a loop over tensors; ``True``: torch's multi-tensor kernels; ``None``
      (default): multi-tensor on devices that have those kernels (CUDA), as torch.optim.
    * ``fused=True``: the per-tensor step compiled with ``torch.compile`` (:mod:`decaylab.optim.fused`):
      one pass over memory per tensor, no temporaries. The first call compiles (seconds to a minute;
      cached on disk by Inductor for later processes); LR schedulers do not recompile. The first
      momentum step runs eagerly. CPU and CUDA, real floating-point dense parameters; mutually
      exclusive with ``foreach=True``. ``fused=None`` (default) means off.
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        weight_norm: int = 2,
        *,
        rule: str | None = None,
        l1_decay: float = 0.0,
        scale: str = "none",
        reference: ReferenceSource = None,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        check_l1_decay_needs_elastic_net(rule_from_weight_norm(weight_norm, rule), l1_decay)
        defaults = dict(
            lr=lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=weight_decay,
            weight_norm=weight_norm,
            rule=rule,
            l1_decay=l1_decay,
            scale=scale,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
        )
        self._check_group(defaults)
        super().__init__(params, defaults, reference)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        _check_momentum_options(group)

    def _group_tensors(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> TensorLists:
        buffers = [self.state[p].get("momentum_buffer") for p in params] if group["momentum"] != 0 else None
        return params, grads, buffers, self._references(group, params)

    @staticmethod
    def _update(
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        buffers: list | None,
        references: list[Tensor] | None,
        *,
        foreach: bool,
    ) -> None:
        decay_before_update(group, params, references, foreach=foreach)
        sgd_step(
            params,
            oriented_gradients(grads, group["maximize"], foreach=foreach),
            buffers if buffers is not None else [],
            lr=group["lr"],
            momentum=group["momentum"],
            dampening=group["dampening"],
            nesterov=group["nesterov"],
            foreach=foreach,
        )
        decay_after_update(group, params, foreach=foreach)

    def _fusable(self, group: dict[str, Any], tensors: TensorLists) -> bool:
        return _fusable_momentum(group, tensors[2])

    def _finish(self, group: dict[str, Any], params: list[Tensor], tensors: TensorLists) -> None:
        _store_momentum_buffers(self, params, tensors[2])
