"""Pure tensor-list functions, one per regularization method.

These are the single source of truth for every update rule: the optimizers in
:mod:`decaylab.optim`, the wrapper and the fused paths all call them.
"""

from decaylab.rules.coupled import coupled_l2, coupled_l2_
from decaylab.rules.decoupled import decoupled_l1_, decoupled_l2_, proximal_l1_, toward_reference_
from decaylab.rules.dispatch import RULES, RULES_NEEDING_REFERENCE, Rule, apply_after_update, apply_before_update
from decaylab.rules.scale import SCALES, Scale, decay_scale

__all__ = [
    "RULES",
    "RULES_NEEDING_REFERENCE",
    "SCALES",
    "Rule",
    "Scale",
    "apply_after_update",
    "apply_before_update",
    "coupled_l2",
    "coupled_l2_",
    "decay_scale",
    "decoupled_l1_",
    "decoupled_l2_",
    "proximal_l1_",
    "toward_reference_",
]
