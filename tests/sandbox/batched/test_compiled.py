"""The compiled stacked forward and backward: the eager stacked path's losses and gradients (within
float rounding), for the shape it was compiled for, without recompiling; a shorter mini-batch runs
eagerly, and a stack that lost rows compiles anew."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from decaylab.sandbox.batched.compiled import CompiledGradients, stacked_gradients_function
from decaylab.sandbox.batched.engine import StackedGroup, gather
from decaylab.sandbox.batched.stacked import StackedModel
from decaylab.sandbox.runner import Job
from decaylab.sandbox.train import Run, RunConfig
from tests.sandbox.batched.test_stacked import TASKS


def stack_of(task: RunConfig, count: int = 3) -> tuple[StackedModel, list[Run]]:
    runs = [Run(dataclasses.replace(task, seed=s)) for s in range(count)]
    return StackedModel([r.model for r in runs]), runs


def minibatches(runs: list[Run], size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    data = runs[0].data
    generator = torch.Generator().manual_seed(seed)
    index = torch.stack([torch.randperm(len(data.x_train), generator=generator)[:size] for _ in runs])
    return gather(data.x_train, index), gather(data.y_train, index)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_compiled_losses_and_gradients_equal_the_eager_ones(name: str) -> None:
    stacked, runs = stack_of(TASKS[name])
    task = runs[0].data.task
    x, y = minibatches(runs, 10)
    compiled = CompiledGradients(stacked, task)
    losses, grads = compiled(x, y)
    assert compiled.compile_seconds is not None and compiled.compile_seconds > 0
    eager_losses, eager_grads = stacked.loss_and_grad(task, x, y)
    assert grads.shape == (3, stacked.numel)
    torch.testing.assert_close(losses, eager_losses, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grads, eager_grads, rtol=1e-5, atol=1e-6)
    assert grads.abs().sum() > 0  # not a vacuous comparison of zeros
    x2, y2 = minibatches(runs, 10, seed=1)  # the next step: new data, weights moved
    with torch.no_grad():
        stacked.flat.mul_(0.9)
    with torch.compiler.set_stance("fail_on_recompile"):  # the same graph, not a second compile
        losses, grads = compiled(x2, y2)
    eager_losses, eager_grads = stacked.loss_and_grad(task, x2, y2)
    torch.testing.assert_close(losses, eager_losses, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(grads, eager_grads, rtol=1e-5, atol=1e-6)


def test_the_uncompiled_function_is_the_eager_path() -> None:
    stacked, runs = stack_of(TASKS["mlp"])
    x, y = minibatches(runs, 7)
    losses, grads = stacked_gradients_function(stacked, "classification")(stacked.flat, x, y)
    eager_losses, eager_grads = stacked.loss_and_grad("classification", x, y)
    torch.testing.assert_close(losses, eager_losses)
    torch.testing.assert_close(grads, eager_grads)


def test_a_shorter_minibatch_runs_eagerly_and_a_smaller_stack_compiles_anew() -> None:
    task = dataclasses.replace(TASKS["mlp"], batch_size=32)  # 100 examples: steps of 32, 32, 32, 4
    jobs = [Job(f"r{s}", dataclasses.replace(task, seed=s)) for s in range(3)]
    group = StackedGroup(jobs, compile=True)
    eager = StackedGroup(jobs)
    compiled = group.compiled_gradients
    assert compiled is not None and eager.compiled_gradients is None
    full, short = torch.arange(96).view(3, 32), torch.arange(12).view(3, 4)
    torch.testing.assert_close(group.gradients(full), eager.gradients(full), rtol=1e-5, atol=1e-6)
    seconds = compiled.compile_seconds
    x, y = gather(group.data.x_train, short), gather(group.data.y_train, short)
    assert not compiled.accepts(x, y)
    with pytest.raises(ValueError, match=r"compiled for mini-batches of shape \(3, 32, 1, 8, 8\) on this stack"):
        compiled(x, y)
    torch.testing.assert_close(group.gradients(short), eager.gradients(short), rtol=0, atol=0)  # the eager path
    assert compiled.compile_seconds == seconds  # not compiled again
    group._keep([0, 2])  # a run left the stack (as a diverged one does): its flat is a new tensor
    eager._keep([0, 2])
    assert not compiled.accepts(*(gather(t, full[:2]) for t in (group.data.x_train, group.data.y_train)))
    smaller = group.compiled_gradients
    assert smaller is not None and smaller is not compiled
    torch.testing.assert_close(group.gradients(full[:2]), eager.gradients(full[:2]), rtol=1e-5, atol=1e-6)
    assert smaller.compile_seconds is not None  # compiled for the two rows left


def test_compile_must_be_a_bool() -> None:
    job = Job("r", TASKS["mlp"])
    with pytest.raises(TypeError, match="compile: expected True or False, got 'yes'"):
        StackedGroup([job], compile="yes")  # type: ignore[arg-type]
