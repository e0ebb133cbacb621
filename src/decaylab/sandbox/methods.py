"""The sandbox's named regularization methods: one name -> an optimizer (+ an optional penalty).

Every method is built on the same base optimizer (SGD with optional momentum, or Adam) so that
runs differ only in how they regularize. Strengths are in the same units across methods where the
math allows it: with ``scale="lr"`` (the sandbox default) decoupled L2 at strength ``lam`` equals
coupled L2 at ``lam`` for plain SGD *without momentum*; with momentum ``mu`` the coupled term is
accumulated by the momentum buffer and acts about ``1/(1-mu)`` times stronger (10x at 0.9).
``penalty_l2`` at ``lam`` has gradient ``2*lam*w`` (equal to coupled L2 at ``2*lam``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from decaylab.optim import SGD, SGDW, AdamW
from decaylab.penalty import WeightRegularization
from decaylab.rules import SCALES

Base = Literal["sgd", "adam"]
BASES: tuple[str, ...] = ("sgd", "adam")


@dataclass(frozen=True)
class Method:
    """How one method regularizes: ``kind`` is none / coupled / decoupled / penalty."""

    name: str
    kind: str
    summary: str
    rule: str | None = None
    p: float | None = None


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("none", "none", "no regularization"),
        Method("coupled_l2", "coupled", "g += lam*w (torch.optim.SGD/Adam weight_decay)"),
        Method("decoupled_l2", "decoupled", "w -= s*lam*w", rule="l2"),
        Method("l1", "decoupled", "w -= s*lam*sign(w)", rule="l1"),
        Method("proximal_l1", "decoupled", "w = sign(w)*max(|w| - s*lam, 0)", rule="proximal_l1"),
        Method("elastic_net", "decoupled", "w -= s*lam*w, then soft threshold by s*lam", rule="elastic_net"),
        Method("toward_reference", "decoupled", "w -= s*lam*(w - w_init) (L2-SP)", rule="toward_reference"),
        Method("penalty_l2", "penalty", "loss += lam*sum(w**2)", p=2.0),
        Method("penalty_l1", "penalty", "loss += lam*sum(|w|)", p=1.0),
    )
}


def check_method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"method: unknown method {name!r}; choose from {', '.join(METHODS)}")
    return METHODS[name]


@dataclass
class Regularized:
    """An optimizer and, for penalty methods, the penalty whose gradient is added before each step."""

    method: Method
    optimizer: torch.optim.Optimizer
    penalty: WeightRegularization | None = None

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def step(self) -> None:
        """Call after ``loss.backward()``: adds the penalty's gradient (if any), then steps."""
        if self.penalty is not None:
            self.penalty.add_to_grad()
        self.optimizer.step()

    def penalty_value(self) -> float:
        return float(self.penalty.value()) if self.penalty is not None else 0.0


def build_method(
    name: str,
    model: nn.Module,
    *,
    lr: float,
    strength: float,
    base: str = "sgd",
    momentum: float = 0.0,
    scale: str = "lr",
    params: Iterable[nn.Parameter] | None = None,
) -> Regularized:
    """Build the optimizer for method ``name`` at ``strength`` over ``model``'s parameters.

    ``base`` is ``"sgd"`` (with ``momentum``) or ``"adam"``; ``scale`` is the decoupled methods'
    convention (see :mod:`decaylab.rules.scale`). ``elastic_net`` uses ``strength`` for both parts.
    """
    method = check_method(name)
    if base not in BASES:
        raise ValueError(f"base: expected one of {', '.join(BASES)}, got {base!r}")
    if scale not in SCALES:
        raise ValueError(f"scale: expected one of {', '.join(SCALES)}, got {scale!r}")
    params = list(model.parameters() if params is None else params)
    coupled = strength if method.kind == "coupled" else 0.0
    decoupled = strength if method.kind == "decoupled" else 0.0
    if base == "sgd":
        if method.kind == "decoupled":
            optimizer: torch.optim.Optimizer = SGDW(
                params,
                lr=lr,
                momentum=momentum,
                weight_decay=decoupled,
                rule=method.rule,
                l1_decay=strength if method.rule == "elastic_net" else 0.0,
                scale=scale,
            )
        else:
            optimizer = SGD(params, lr=lr, momentum=momentum, weight_decay=coupled)
    elif method.kind == "coupled":
        optimizer = torch.optim.Adam(params, lr=lr, weight_decay=coupled)
    else:
        optimizer = AdamW(
            params,
            lr=lr,
            weight_decay=decoupled,
            rule=method.rule or "l2",
            l1_decay=strength if method.rule == "elastic_net" else 0.0,
            scale=scale,
        )
    penalty = None
    if method.kind == "penalty" and strength > 0:
        penalty = WeightRegularization(model, strength, p=method.p or 2.0)
    return Regularized(method, optimizer, penalty)
