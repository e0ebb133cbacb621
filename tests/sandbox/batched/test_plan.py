"""Grouping jobs that can share a stacked model, and the plan decision (timings injected, never asserted)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path

import pytest
import torch

from decaylab.sandbox.batched.plan import (
    ONLY_FOR,
    PER_CONFIGURATION,
    Batch,
    PlanTiming,
    choose_plan,
    decide,
    group_jobs,
    group_key,
    plan_batches,
    record_plans,
    shard_plan,
    time_plans,
)
from decaylab.sandbox.runner import Job
from decaylab.sandbox.train import FIELDS, RunConfig
from tests.sandbox.batched.helpers import jobs_for

TASK = RunConfig(dataset="digits", model="mlp", hidden=(8,), train_size=64, epochs=2, batch_size=16)
# A different value for every field (valid together with TASK where the field matters).
OTHER = {
    "dataset": "wine", "test_fraction": 0.3, "data_seed": 1, "train_size": 50, "samples": None,
    "features": None, "informative": None, "noise": None, "model": "linear", "hidden": (4,), "conv_layers": 3,
    "channels": 4, "method": "l1", "strength": 0.1, "base": "adam", "momentum": 0.5, "scale": "none", "lr": 0.2,
    "schedule": "cosine", "step_every": 2, "gamma": 0.5, "epochs": 4, "batch_size": 8, "seed": 1,
}  # fmt: skip


def job(**changes: object) -> Job:
    config = dataclasses.replace(TASK, **changes)
    return Job(config.run_id, config)


def timer_of(stacked_s: float, single_s: float):
    calls: list[int] = []

    def timer(jobs):
        calls.append(len(jobs))
        return PlanTiming(stacked_s, single_s)

    timer.calls = calls  # type: ignore[attr-defined]
    return timer


def never_called(jobs):
    raise AssertionError("the plan was decided without measuring; the timer must not run")


def test_configurations_differing_only_per_configuration_share_a_group() -> None:
    base = group_key(job())
    for name in PER_CONFIGURATION:
        assert group_key(job(**{name: OTHER[name]})) == base, name


def test_every_other_field_separates_groups_where_it_matters() -> None:
    for name in FIELDS:
        if name in PER_CONFIGURATION or OTHER[name] is None:  # None: digits has no generation options
            continue
        context = dict([ONLY_FOR[name]]) if name in ONLY_FOR else {}  # e.g. channels matter for a CNN
        assert group_key(job(**context, **{name: OTHER[name]})) != group_key(job(**context)), name


def test_fields_a_model_or_base_does_not_use_do_not_separate_groups() -> None:
    assert group_key(job(model="linear", hidden=(4,))) == group_key(job(model="linear"))
    assert group_key(job(channels=4)) == group_key(job())  # an MLP has no channels
    assert group_key(job(base="adam", momentum=0.5)) == group_key(job(base="adam"))


def test_a_resumed_job_only_groups_with_jobs_resuming_from_the_same_epoch() -> None:
    fresh, resumed = job(), job(seed=3)
    at_two = Job(resumed.run_id, resumed.config, (2, b""))
    assert group_key(at_two) != group_key(fresh)
    assert group_key(at_two) == group_key(Job(fresh.run_id, fresh.config, (2, b"x")))


def test_groups_keep_the_order_and_hold_every_job_once() -> None:
    jobs = [job(seed=s, batch_size=8 if s % 3 == 0 else 16) for s in range(10)]
    groups = group_jobs(jobs)
    assert [[j.config.seed for j in g] for g in groups] == [[0, 3, 6, 9], [1, 2, 4, 5, 7, 8]]


@pytest.mark.parametrize(
    ("count", "max_size", "sizes"), [(70, 64, [35, 35]), (130, 64, [44, 43, 43]), (5, 2, [2, 2, 1])]
)
def test_large_groups_are_cut_into_near_equal_chunks(count: int, max_size: int, sizes: list[int]) -> None:
    jobs = [job(seed=s) for s in range(count)]
    groups = group_jobs(jobs, max_size)
    assert [len(g) for g in groups] == sizes
    assert [j for g in groups for j in g] == jobs


def test_max_size_must_be_a_positive_integer() -> None:
    with pytest.raises(ValueError, match="max_size: expected an integer >= 1, got 0"):
        group_jobs([job()], 0)


def test_choose_plan_stacks_only_when_one_stacked_step_beats_the_sequential_ones() -> None:
    stacked, reason = choose_plan(64, PlanTiming(stacked_step_s=0.002, single_step_s=0.0004))
    assert stacked
    assert reason == ("measured 2 ms per stacked step vs 64 x 0.4 ms = 25.6 ms one at a time: stacking is 12.8x faster")
    stacked, reason = choose_plan(64, PlanTiming(stacked_step_s=0.4, single_step_s=0.004))
    assert not stacked
    assert reason.endswith("= 256 ms one at a time: stacking would be 1.6x slower")
    stacked, reason = choose_plan(2, PlanTiming(0.0018, 0.001))
    assert not stacked  # 1.1x: too close to call on a few timed steps
    assert reason.endswith("stacking is 1.1x faster, under the 1.2x it takes to switch")
    assert choose_plan(2, PlanTiming(0.0018, 0.001), min_speedup=1.0)[0]


def test_decide_measures_only_when_the_plan_is_auto() -> None:
    jobs = [job(seed=s) for s in range(3)]
    assert decide(jobs[:1], timer=never_called) == Batch(tuple(jobs[:1]), False, "a single configuration")
    assert decide(jobs, plan="stacked", timer=never_called).stacked
    assert not decide(jobs, plan="sequential", timer=never_called).stacked
    timer = timer_of(0.001, 0.001)
    batch = decide(jobs, timer=timer)
    assert batch.stacked
    assert batch.timing == PlanTiming(0.001, 0.001)  # 3 x 1 ms one at a time: 3x
    assert timer.calls == [3]
    assert batch.message().startswith("digits/mlp (3 configurations): stacked (measured 1 ms per stacked step")
    with pytest.raises(ValueError, match="plan: unknown plan 'fast'; choose from auto, stacked, sequential"):
        decide(jobs, plan="fast")


def test_compile_applies_to_stacked_batches_only() -> None:
    jobs = [job(seed=s) for s in range(3)]
    batch = decide(jobs, timer=timer_of(0.001, 0.001), compile=True)
    assert (batch.stacked, batch.compiled, batch.plan) == (True, True, "stacked, compiled")
    assert batch.message().startswith("digits/mlp (3 configurations): stacked, compiled (measured 1 ms")
    assert batch.to_dict()["compiled"] is True
    assert decide(jobs, plan="stacked", timer=never_called, compile=True).compiled
    assert not decide(jobs, timer=timer_of(1.0, 0.001), compile=True).compiled  # one at a time: nothing to compile
    assert not decide(jobs, plan="sequential", compile=True).compiled
    assert not decide(jobs[:1], compile=True).compiled
    assert not decide(jobs, timer=timer_of(0.001, 0.001)).to_dict()["compiled"]
    with pytest.raises(ValueError, match="compiled: only a stacked batch can be compiled"):
        Batch(tuple(jobs), False, "test", compiled=True)
    with pytest.raises(TypeError, match="compile: expected True or False, got 1"):
        decide(jobs, plan="stacked", compile=1)  # type: ignore[arg-type]


def test_plan_batches_decides_each_group() -> None:
    jobs = [job(seed=0), job(seed=1, batch_size=8), job(seed=2), job(seed=3, batch_size=8), job(seed=4, epochs=1)]
    timer = timer_of(0.001, 0.0001)  # 2 x 0.1 ms beats 1 ms: not stacked
    batches = plan_batches(jobs, timer=timer)
    assert [[j.config.seed for j in b.jobs] for b in batches] == [[0, 2], [1, 3], [4]]
    assert [b.stacked for b in batches] == [False, False, False]
    assert timer.calls == [2, 2]
    assert Counter(j.run_id for b in batches for j in b.jobs) == Counter(j.run_id for j in jobs)


def test_record_plans_appends_one_json_line_per_batch(tmp_path: Path) -> None:
    jobs = [job(seed=s) for s in range(2)]
    batches = [decide(jobs, timer=timer_of(0.001, 0.002)), decide(jobs[:1])]
    path = record_plans(tmp_path, batches)
    record_plans(tmp_path, batches[:1])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["plan"] for line in lines] == ["stacked", "sequential", "stacked"]
    assert lines[0]["stacked_step_s"] == 0.001
    assert lines[0]["single_step_s"] == 0.002
    assert lines[0]["run_ids"] == [j.run_id for j in jobs]
    assert lines[1]["reason"] == "a single configuration"


def test_time_plans_measures_on_copies_and_leaves_the_jobs_and_global_rng_alone() -> None:
    jobs = jobs_for(
        [dataclasses.replace(TASK, method=m, strength=0.01, seed=s) for m in ("l1", "coupled_l2") for s in (0, 1)]
    )
    torch.manual_seed(5)
    expected = torch.rand(2)
    torch.manual_seed(5)
    timing = time_plans(jobs, steps=2)
    assert torch.equal(torch.rand(2), expected)
    assert timing.stacked_step_s > 0
    assert timing.single_step_s > 0
    assert all(j.checkpoint is None for j in jobs)


@pytest.mark.parametrize(
    ("count", "slots", "sizes"), [(63, 2, [32, 31]), (200, 2, [50, 50, 50, 50]), (3, 8, [1, 1, 1])]
)
def test_shard_plan_fills_the_slots_with_stackable_groups(count: int, slots: int, sizes: list[int]) -> None:
    jobs = [job(seed=s) for s in range(count)]
    shards = shard_plan(jobs, slots)
    assert [len(s) for s in shards] == sizes
    assert [j for s in shards for j in s] == jobs
    mixed = [job(seed=0), job(seed=1, batch_size=8), job(seed=2)]
    assert [[j.config.seed for j in s] for s in shard_plan(mixed, 1)] == [[0, 2], [1]]  # never mixes groups
    assert shard_plan([], 2) == []
    with pytest.raises(ValueError, match="slots: expected an integer >= 1, got 0"):
        shard_plan(jobs, 0)
