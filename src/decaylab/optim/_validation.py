"""Argument checks shared by every optimizer. Each error names the argument and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

import torch

from decaylab.rules import RULES, SCALES


def _as_real(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, Real | torch.Tensor):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise TypeError(f"{name}: expected a real number, got a tensor of shape {tuple(value.shape)}")
        value = value.item()
    return float(value)


def check_nonnegative(name: str, value: Any) -> float:
    """A finite real number >= 0."""
    number = _as_real(name, value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")
    return number


def check_unit_interval(name: str, value: Any) -> float:
    """A real number in [0, 1)."""
    number = _as_real(name, value)
    if not (0.0 <= number < 1.0):
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return number


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{name}: expected one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected True or False, got {value!r}")


def check_optional_bool(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(f"{name}: expected True, False or None, got {value!r}")


def check_decay_options(options: Mapping[str, Any], prefix: str = "") -> None:
    """Check the decoupled-decay keys of a param group (``{prefix}weight_decay`` and friends)."""
    check_nonnegative(f"{prefix}weight_decay", options[f"{prefix}weight_decay"])
    check_nonnegative(f"{prefix}l1_decay", options[f"{prefix}l1_decay"])
    check_choice(f"{prefix}rule", options[f"{prefix}rule"], RULES)
    check_choice(f"{prefix}scale", options[f"{prefix}scale"], SCALES)
    if options[f"{prefix}scale"] == "schedule" and options.get("initial_lr", options.get("lr")) == 0:
        raise ValueError(
            f"{prefix}scale='schedule' divides by the initial lr, which is 0 here; "
            "use scale='lr' or 'none', or a positive lr"
        )


def check_l1_decay_needs_elastic_net(rule: str, l1_decay: float, prefix: str = "") -> None:
    """Constructor-level check: ``l1_decay`` only means something for ``rule='elastic_net'``."""
    if l1_decay and rule != "elastic_net":
        raise ValueError(
            f"{prefix}l1_decay is only used by rule='elastic_net' (got rule={rule!r}); "
            f"use {prefix}weight_decay for the strength of 'l1' and 'proximal_l1'"
        )


def rule_from_weight_norm(weight_norm: Any, rule: str | None) -> str:
    """Resolve the seed's ``weight_norm`` (2 -> L2, 1 -> L1) against an explicit ``rule``."""
    check_choice("weight_norm", weight_norm, (1, 2))
    if rule is None:
        return "l2" if weight_norm == 2 else "l1"
    check_choice("rule", rule, RULES)
    if weight_norm == 1 and rule not in ("l1", "proximal_l1"):
        raise ValueError(
            f"weight_norm=1 asks for an L1 rule but rule={rule!r}; use rule='l1' or 'proximal_l1', "
            "or leave weight_norm at 2"
        )
    return rule


def check_no_sparse_grads(optimizer_name: str, groups: Iterable[Mapping[str, Any]]) -> None:
    for index, group in enumerate(groups):
        for p in group["params"]:
            if p.grad is not None and p.grad.is_sparse:
                raise TypeError(
                    f"{optimizer_name} does not support sparse gradients (a parameter in param_groups[{index}] "
                    "has a sparse .grad); densify it or use torch.optim.SparseAdam"
                )
