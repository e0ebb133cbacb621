"""A stacked group gives what running each configuration alone gives: every epoch record of every
configuration, for every method, both base optimizers, several lrs, strengths and scale conventions,
a cosine schedule; divergence stays in its own row; checkpoints move between executors."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from decaylab.sandbox.batched import engine
from decaylab.sandbox.batched.engine import StackedGroup
from decaylab.sandbox.runner import EpochDone, Job, RunEnded, run_job
from decaylab.sandbox.train import RunConfig, threads
from tests.sandbox.batched.helpers import assert_same_results, by_run, jobs_for, local_events, mixed_configs

DIGITS_MLP = RunConfig(
    dataset="digits", model="mlp", hidden=(16,), train_size=200, epochs=3, batch_size=32, schedule="cosine"
)
SPARSE_LINEAR = RunConfig(dataset="sparse_regression", model="linear", epochs=3, batch_size=25, schedule="cosine")
BASES = {
    "sgd": ({"base": "sgd", "momentum": 0.9}, (0.05, 0.1, 0.02), (1e-3, 1e-2, 3e-2)),
    "adam": ({"base": "adam"}, (1e-3, 3e-3, 1e-2), (1e-3, 1e-2, 3e-2)),
}


def stacked_events(jobs: list[Job], *, compile: bool = False) -> list:
    with threads(1):  # as the executors run it (several threads on a shared machine can be slower, not faster)
        return list(StackedGroup(jobs, compile=compile).events())


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize("base", sorted(BASES))
@pytest.mark.parametrize("task", [DIGITS_MLP, SPARSE_LINEAR], ids=["digits-mlp", "sparse-linear"])
def test_every_method_in_one_stack_equals_running_each_alone(base: str, task: RunConfig, compile: bool) -> None:
    options, lrs, strengths = BASES[base]
    jobs = jobs_for(mixed_configs(dataclasses.replace(task, **options), lrs, strengths))
    assert len(jobs) == 18
    expected = local_events(jobs)
    assert all(isinstance(e, EpochDone) for e in expected)  # nothing diverged: every epoch is compared
    assert_same_results(expected, stacked_events(jobs, compile=compile))


def test_a_small_cnn_stack_equals_running_each_alone() -> None:
    task = RunConfig(model="cnn", conv_layers=1, channels=4, train_size=96, epochs=2, batch_size=32, lr=0.05)
    jobs = jobs_for(mixed_configs(task, (0.05, 0.1), (1e-3, 1e-2))[::3])
    assert_same_results(local_events(jobs), stacked_events(jobs))


def test_a_stack_of_one_equals_running_it_alone() -> None:
    jobs = jobs_for([dataclasses.replace(DIGITS_MLP, method="proximal_l1", strength=0.01)])
    assert_same_results(local_events(jobs), stacked_events(jobs))


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_a_diverging_configuration_is_recorded_and_does_not_poison_the_others(compile: bool) -> None:
    task = dataclasses.replace(SPARSE_LINEAR, epochs=3, schedule="constant", momentum=0.0)
    methods = ("none", "l1", "toward_reference")  # rows after the diverging one move up, references too
    calm = [dataclasses.replace(task, method=m, strength=0.01, seed=s) for m in methods for s in (0, 1)]
    wild = dataclasses.replace(task, lr=5.0, seed=7)  # MSE with lr 5: the weights grow 1e6-fold per epoch
    jobs = jobs_for([calm[0], wild, *calm[1:]])
    expected = local_events(jobs)
    ended = by_run(expected)[wild.run_id][-1]
    assert isinstance(ended, RunEnded)
    assert ended.status == "diverged"
    got = stacked_events(jobs, compile=compile)
    assert_same_results(expected, got)  # the same message (epoch, step, value), and the others unchanged
    assert sum(isinstance(e, EpochDone) and e.last for e in got) == 6


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_nan_weights_in_one_row_leave_the_other_rows_alone(compile: bool) -> None:
    jobs = jobs_for([dataclasses.replace(DIGITS_MLP, seed=s, epochs=2) for s in range(3)])
    group = StackedGroup(jobs, compile=compile)
    with torch.no_grad():
        group.stacked.flat[1] = float("nan")
    with threads(1):
        events = by_run(group.events())
    assert [e.status for e in events[jobs[1].run_id]] == ["diverged"]
    assert "training loss is nan at step 1 of 7" in events[jobs[1].run_id][0].message
    others = [jobs[0], jobs[2]]
    assert_same_results(local_events(others), [e for j in others for e in events[j.run_id]])


def test_checkpoints_move_between_the_stack_and_the_local_executor() -> None:
    options, lrs, strengths = BASES["adam"]
    configs = mixed_configs(dataclasses.replace(DIGITS_MLP, **options), lrs, strengths)[::2]  # one of each method
    jobs = jobs_for(configs)
    straight = local_events(jobs)
    # stacked epoch 1, then each run resumed alone from the stack's checkpoint
    first = [e for e in stacked_events([dataclasses.replace(j, config=dataclasses.replace(j.config)) for j in jobs])]
    checkpoints = {e.run_id: e.checkpoint for e in first if isinstance(e, EpochDone) and e.record.epoch == 1}
    resumed_alone = [e for job in jobs for e in run_job(Job(job.run_id, job.config, (1, checkpoints[job.run_id])))]
    assert_same_results([e for e in straight if not (isinstance(e, EpochDone) and e.record.epoch == 1)], resumed_alone)
    # local epoch 1, then all of them resumed as one stack from the local checkpoints
    local_first = {e.run_id: e.checkpoint for e in straight if isinstance(e, EpochDone) and e.record.epoch == 1}
    resumed_stacked = stacked_events([Job(j.run_id, j.config, (1, local_first[j.run_id])) for j in jobs])
    assert_same_results(
        [e for e in straight if not (isinstance(e, EpochDone) and e.record.epoch == 1)], resumed_stacked
    )


def test_sgd_momentum_buffers_survive_a_stacked_checkpoint() -> None:
    configs = [dataclasses.replace(DIGITS_MLP, method=m, strength=0.01, seed=1) for m in ("coupled_l2", "l1")]
    jobs = jobs_for(configs)
    straight = local_events(jobs)
    stacked = stacked_events(jobs)
    checkpoints = {e.run_id: e.checkpoint for e in stacked if isinstance(e, EpochDone) and e.record.epoch == 2}
    resumed = stacked_events([Job(j.run_id, j.config, (2, checkpoints[j.run_id])) for j in jobs])
    assert_same_results([e for e in straight if isinstance(e, EpochDone) and e.record.epoch == 3], resumed)


def test_a_run_that_cannot_be_built_fails_alone() -> None:
    configs = [dataclasses.replace(DIGITS_MLP, seed=s, epochs=1) for s in range(3)]
    jobs = jobs_for(configs)
    broken = Job(jobs[1].run_id, jobs[1].config, (1, b"not a checkpoint"))
    events = by_run(stacked_events([jobs[0], broken, jobs[2]]))
    assert events[broken.run_id][0].status == "failed"
    assert all(isinstance(e, EpochDone) and e.last for j in (jobs[0], jobs[2]) for e in events[j.run_id])


def test_a_group_whose_runs_are_at_different_epochs_is_refused() -> None:
    configs = [dataclasses.replace(DIGITS_MLP, seed=s) for s in range(2)]
    jobs = jobs_for(configs)
    checkpoint = next(e.checkpoint for e in run_job(jobs[1]) if isinstance(e, EpochDone))
    with pytest.raises(ValueError, match="same epoch"):
        StackedGroup([jobs[0], Job(jobs[1].run_id, jobs[1].config, (1, checkpoint))])


def test_wall_time_is_each_runs_share_of_the_group(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 1000, 6))  # every perf_counter call advances 6 s
    monkeypatch.setattr(engine.time, "perf_counter", lambda: float(next(clock)))
    jobs = jobs_for([dataclasses.replace(DIGITS_MLP, seed=s, epochs=1) for s in range(3)])
    walls = [e.record.wall_s for e in stacked_events(jobs)]
    assert walls == [2.0, 2.0, 2.0]  # one 6 s epoch shared by three runs
