"""Decoupled decay at the level of a param group: read its options, compute ``s``, call the rules.

Shared by :class:`~decaylab.optim.SGDW`, :class:`~decaylab.optim.AdamW` and
:class:`~decaylab.optim.DecayWrapper`. The wrapper keeps its options in the wrapped optimizer's
groups under the prefix ``"decay_"`` (``decay_weight_decay``, ``decay_rule``, ...), so they never
clash with that optimizer's own keys; decaylab's optimizers use the bare names.

On the fused path the group's ``lr``, ``weight_decay`` and ``l1_decay`` are 0-dim tensors (a
strength that is ``0`` stays a Python number, so its rule is left out of the compiled graph).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from torch import Tensor

from decaylab.optim._validation import check_decay_options, rule_from_weight_norm
from decaylab.rules import RULES_NEEDING_REFERENCE, apply_after_update, apply_before_update, decay_scale
from decaylab.rules._scalar import Scalar, is_zero


def group_rule(group: Mapping[str, Any], prefix: str = "") -> str:
    """The group's effective rule: ``rule`` if set, else from the seed's ``weight_norm`` (2 -> l2, 1 -> l1)."""
    return rule_from_weight_norm(group.get(f"{prefix}weight_norm", 2), group.get(f"{prefix}rule"))


def check_group_decay(group: Mapping[str, Any], prefix: str = "") -> None:
    """Raise ValueError/TypeError naming the key if the group's decay options are invalid."""
    resolved = dict(group)
    resolved[f"{prefix}rule"] = group_rule(group, prefix)
    check_decay_options(resolved, prefix)


def group_needs_reference(group: Mapping[str, Any], prefix: str = "") -> bool:
    return group_rule(group, prefix) in RULES_NEEDING_REFERENCE and not is_zero(group[f"{prefix}weight_decay"])


def group_decay_scale(group: Mapping[str, Any], prefix: str = "") -> Scalar:
    """``s`` for this step, from the group's current ``lr`` (so LR schedulers are honoured)."""
    return decay_scale(group[f"{prefix}scale"], group["lr"], group.get("initial_lr", group["lr"]))


def decay_before_update(
    group: Mapping[str, Any],
    params: list[Tensor],
    references: list[Tensor] | None,
    *,
    prefix: str = "",
    foreach: bool,
) -> None:
    """Apply the group's pre-update rule (L2, sign L1, toward reference, elastic net's L2 part)."""
    weight_decay = group[f"{prefix}weight_decay"]
    if is_zero(weight_decay) or not params:
        return
    apply_before_update(
        group_rule(group, prefix),
        params,
        scale=group_decay_scale(group, prefix),
        weight_decay=weight_decay,
        references=references,
        foreach=foreach,
    )


def decay_after_update(group: Mapping[str, Any], params: list[Tensor], *, prefix: str = "", foreach: bool) -> None:
    """Apply the group's proximal rule (proximal L1, elastic net's L1 part) to the updated weights."""
    if not params:
        return
    apply_after_update(
        group_rule(group, prefix),
        params,
        scale=group_decay_scale(group, prefix),
        weight_decay=group[f"{prefix}weight_decay"],
        l1_decay=group[f"{prefix}l1_decay"],
        foreach=foreach,
    )


ReferenceSource = Iterable[Tensor] | Mapping[Tensor, Tensor] | None


def resolve_references(params: list[Tensor], reference: ReferenceSource) -> list[Tensor]:
    """Snapshot one reference per parameter, checking every shape before returning anything.

    ``reference`` is ``None`` (snapshot the current weights), a sequence of tensors in the order
    of ``params``, or a mapping from parameter to tensor. The result is detached copies with each
    parameter's dtype and device.
    """
    if reference is None:
        return [p.detach().clone() for p in params]
    if isinstance(reference, Mapping):
        missing = [i for i, p in enumerate(params) if p not in reference]
        if missing:
            raise ValueError(f"reference: no tensor given for parameter(s) at position(s) {missing[:10]}")
        given = [reference[p] for p in params]
    elif isinstance(reference, Tensor):
        raise TypeError(
            "reference: expected a sequence of tensors (one per parameter), a mapping or None, got a Tensor"
        )
    else:
        given = list(reference)
        if len(given) != len(params):
            raise ValueError(f"reference: expected {len(params)} tensors (one per parameter), got {len(given)}")
    for i, (p, ref) in enumerate(zip(params, given, strict=True)):
        if not isinstance(ref, Tensor):
            raise TypeError(f"reference: item {i} is a {type(ref).__name__}, expected a Tensor")
        if ref.shape != p.shape:
            raise ValueError(
                f"reference: item {i} has shape {tuple(ref.shape)} but its parameter has shape {tuple(p.shape)}"
            )
    return [ref.detach().to(device=p.device, dtype=p.dtype, copy=True) for p, ref in zip(params, given, strict=True)]


def references_for(params: list[Tensor], lookup: Callable[[Tensor], Tensor | None]) -> list[Tensor]:
    """Look up each parameter's reference; a clear error if one was never stored."""
    out = []
    for p in params:
        ref = lookup(p)
        if ref is None:
            raise ValueError(
                "rule='toward_reference' but no reference is stored for a parameter of shape "
                f"{tuple(p.shape)}; call set_reference(...) or construct the optimizer with that rule"
            )
        out.append(ref)
    return out
