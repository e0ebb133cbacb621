"""Named decoupled methods and where each acts in a step.

A step of a decoupled optimizer is::

    before(w)                 # rules that act on the pre-step weights
    w' = w - update(g~)       # the base optimizer
    after(w')                 # proximal rules

==================  =======================================  ========================================
rule                before the update (factor = s * lam)     after the update
==================  =======================================  ========================================
``"l2"``            w -= s*lam*w                             -
``"l1"``            w -= s*lam*sign(w)                       -
``"proximal_l1"``   -                                        w = sign(w)*max(|w| - s*lam, 0)
``"elastic_net"``   w -= s*lam*w                             w = sign(w)*max(|w| - s*lam_l1, 0)
``"toward_reference"`` w -= s*lam*(w - w_ref)                -
==================  =======================================  ========================================

``lam`` is ``weight_decay``; ``lam_l1`` is ``l1_decay`` (elastic net only). The numbers may be
0-dim tensors (the fused path); a strength that is a Python ``0`` skips its rule.
"""

from __future__ import annotations

from typing import Final, Literal

from torch import Tensor

from decaylab.rules._scalar import Scalar, is_zero
from decaylab.rules.decoupled import decoupled_l1_, decoupled_l2_, proximal_l1_, toward_reference_

Rule = Literal["l2", "l1", "proximal_l1", "elastic_net", "toward_reference"]
RULES: Final[tuple[str, ...]] = ("l2", "l1", "proximal_l1", "elastic_net", "toward_reference")
RULES_NEEDING_REFERENCE: Final[frozenset[str]] = frozenset({"toward_reference"})


def apply_before_update(
    rule: str,
    params: list[Tensor],
    *,
    scale: Scalar,
    weight_decay: Scalar,
    references: list[Tensor] | None = None,
    foreach: bool,
) -> None:
    """Apply the part of ``rule`` that acts on the pre-step weights (in place)."""
    factor = scale * weight_decay
    if rule in ("l2", "elastic_net"):
        decoupled_l2_(params, factor, foreach=foreach)
    elif rule == "l1":
        decoupled_l1_(params, factor, foreach=foreach)
    elif rule == "toward_reference":
        if references is None:
            raise ValueError("rule='toward_reference' needs one reference tensor per parameter")
        toward_reference_(params, references, factor, foreach=foreach)
    elif rule != "proximal_l1":
        raise ValueError(f"rule: expected one of {', '.join(map(repr, RULES))}, got {rule!r}")


def apply_after_update(
    rule: str,
    params: list[Tensor],
    *,
    scale: Scalar,
    weight_decay: Scalar,
    l1_decay: Scalar,
    foreach: bool,
) -> None:
    """Apply the proximal part of ``rule`` to the post-step weights (in place)."""
    strength = weight_decay if rule == "proximal_l1" else l1_decay if rule == "elastic_net" else 0.0
    if not is_zero(strength):
        proximal_l1_(params, scale * strength, foreach=foreach)
