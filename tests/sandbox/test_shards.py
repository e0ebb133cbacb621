"""Shard plans: every job exactly once, in order, at most slots * MAX_SHARDS_PER_SLOT shards of near-equal size."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from decaylab.sandbox.runner import Job
from decaylab.sandbox.shards import MAX_SHARDS_PER_SLOT, check_plan, shard_plan
from decaylab.sandbox.train import RunConfig


def jobs(count: int) -> list[Job]:
    return [Job(f"run{i}", RunConfig(seed=i)) for i in range(count)]


def test_one_job_per_shard_while_shards_are_few() -> None:
    plan = shard_plan(jobs(5), slots=2)
    assert [[j.run_id for j in shard] for shard in plan] == [["run0"], ["run1"], ["run2"], ["run3"], ["run4"]]
    assert shard_plan([], slots=2) == []


def test_many_jobs_are_grouped_into_a_bounded_number_of_shards() -> None:
    plan = shard_plan(jobs(10), slots=2, max_shards_per_slot=2)
    assert [[j.run_id for j in shard] for shard in plan] == [
        ["run0", "run1", "run2"],
        ["run3", "run4", "run5"],
        ["run6", "run7"],
        ["run8", "run9"],
    ]


@given(count=st.integers(0, 600), slots=st.integers(1, 8), per_slot=st.integers(1, MAX_SHARDS_PER_SLOT))
def test_a_plan_holds_every_job_once_in_order_in_near_equal_shards(count: int, slots: int, per_slot: int) -> None:
    todo = jobs(count)
    plan = shard_plan(todo, slots, max_shards_per_slot=per_slot)
    check_plan(todo, plan)
    assert [j for shard in plan for j in shard] == todo
    assert len(plan) == min(count, slots * per_slot)
    sizes = {len(shard) for shard in plan}
    assert not sizes or max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize(
    ("shards", "message"),
    [
        ([["run0"], ["run1"]], r"missing \['run2'\], extra or repeated none"),
        ([["run0", "run1"], ["run1", "run2"]], r"missing none, extra or repeated \['run1'\]"),
        ([["run0", "run1", "run2"], []], "a shard is empty"),
    ],
)
def test_a_plan_that_loses_or_repeats_a_job_is_refused(shards: list[list[str]], message: str) -> None:
    todo = jobs(3)
    by_id = {j.run_id: j for j in todo}
    with pytest.raises(ValueError, match=rf"^shard plan: .*{message}"):
        check_plan(todo, [[by_id[r] for r in shard] for shard in shards])


@pytest.mark.parametrize(("slots", "per_slot", "message"), [(0, 4, "^slots: "), (2, 0, "^max_shards_per_slot: ")])
def test_bad_arguments_are_named(slots: int, per_slot: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        shard_plan(jobs(3), slots, max_shards_per_slot=per_slot)
