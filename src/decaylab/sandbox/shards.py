"""Shard plans: how a study's jobs are grouped into shards, the unit a distributed executor ships.

A **planner** is any function ``planner(jobs, slots) -> list[list[Job]]`` (:data:`ShardPlanner`):
``slots`` is how many shards can run at once (the cluster's CPUs divided by the CPUs one shard
takes). A plan must hold every job exactly once (:func:`check_plan`); the order of shards is the
order they are submitted in.

:func:`shard_plan` (the default) is for executors that run a shard's jobs one after another, where
grouping buys nothing but lower per-shard overhead: one job per shard, unless a study has more than
:data:`MAX_SHARDS_PER_SLOT` jobs per slot; then consecutive jobs are grouped into exactly
``slots * MAX_SHARDS_PER_SLOT`` shards of near-equal size. That bounds both the number of tasks a
study submits and the work lost when a shard's results never arrive (a killed driver loses at most
the shards in flight). A planner for a batched executor (many configurations trained as one vmapped
model) groups instead the jobs that batch well, and plugs in unchanged.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from decaylab.sandbox.runner import Job

ShardPlanner = Callable[[Sequence[Job], int], list[list[Job]]]
"""``planner(jobs, slots) -> shards``: every job in exactly one shard."""

MAX_SHARDS_PER_SLOT = 64


def shard_plan(jobs: Sequence[Job], slots: int, *, max_shards_per_slot: int = MAX_SHARDS_PER_SLOT) -> list[list[Job]]:
    """One job per shard, or ``slots * max_shards_per_slot`` shards of consecutive jobs when there are more jobs.

    Shard sizes differ by at most one; the jobs keep their order (the study's order).
    """
    if slots < 1:
        raise ValueError(f"slots: expected at least 1 shard running at a time, got {slots}")
    if max_shards_per_slot < 1:
        raise ValueError(f"max_shards_per_slot: expected at least 1, got {max_shards_per_slot}")
    count = min(len(jobs), slots * max_shards_per_slot)
    if count == 0:
        return []
    size, extra = divmod(len(jobs), count)
    shards, start = [], 0
    for index in range(count):
        stop = start + size + (index < extra)
        shards.append(list(jobs[start:stop]))
        start = stop
    return shards


def check_plan(jobs: Sequence[Job], shards: Sequence[Sequence[Job]]) -> None:
    """Raise ValueError unless ``shards`` holds every job of ``jobs`` exactly once (and nothing else)."""
    wanted = Counter(job.run_id for job in jobs)
    planned = Counter(job.run_id for shard in shards for job in shard)
    if planned != wanted:
        missing = sorted((wanted - planned).elements())
        extra = sorted((planned - wanted).elements())
        raise ValueError(
            f"shard plan: every job must be in exactly one shard; missing {missing or 'none'}, "
            f"extra or repeated {extra or 'none'}"
        )
    if any(not shard for shard in shards):
        raise ValueError("shard plan: a shard is empty")
