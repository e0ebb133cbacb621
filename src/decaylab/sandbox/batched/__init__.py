"""Batched studies: many configurations of one task trained as one stacked model.

A study's configurations that share data, architecture, base optimizer, batch size and epochs
(:func:`~decaylab.sandbox.batched.plan.group_jobs`) become one model whose parameters are stacked
along a leading configuration dimension (:class:`~decaylab.sandbox.batched.stacked.StackedModel`:
``torch.func.functional_call`` + ``vmap``). Each configuration keeps its own method, strength and
lr (per-configuration coefficients, :mod:`~decaylab.sandbox.batched.update`), its own initial
weights and its own mini-batch order, so its numbers equal those of running it alone. Where
stacking does not pay, the group runs one configuration at a time; the choice is measured per
group (:mod:`~decaylab.sandbox.batched.plan`). ``decaylab compare --executor batched`` uses it.

Modules: ``plan`` (grouping, the measured decision, :class:`Batch`), ``stacked`` (the stacked
model and its losses), ``compiled`` (its forward and backward compiled, with ``compile=True``),
``update`` (the stacked optimizer step), ``engine`` (a group's epochs as events), ``executor``
(:class:`BatchedExecutor`, :func:`run_batch`).
"""

from decaylab.sandbox.batched.executor import BatchedExecutor, run_batch
from decaylab.sandbox.batched.plan import (
    Batch,
    PlanTiming,
    choose_plan,
    decide,
    group_jobs,
    plan_batches,
    shard_plan,
)

__all__ = [
    "Batch",
    "BatchedExecutor",
    "PlanTiming",
    "choose_plan",
    "decide",
    "group_jobs",
    "plan_batches",
    "run_batch",
    "shard_plan",
]
