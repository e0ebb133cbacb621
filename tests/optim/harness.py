"""Run a :class:`tests.reference.Problem` through a torch optimizer and through the reference."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch

from tests.reference import Group, Problem, ReferenceOptimizer

SHAPES = [[(3, 4), (5,)], [(2, 3), (4,)], [(6,), (2, 2)]]
LR_SCHEDULE = [1.0, 1.0, 0.5, 0.5, 0.25]  # piecewise-constant factor, cycled: exercises scale conventions


def lr_factor(t: int) -> float:
    return LR_SCHEDULE[(t // 10) % len(LR_SCHEDULE)]


def make_params(problem: Problem, dtype: torch.dtype = torch.float64) -> list[list[torch.nn.Parameter]]:
    return [
        [
            torch.nn.Parameter(torch.tensor(values, dtype=dtype).reshape(shape))
            for values, shape in zip(group_values, group_shapes, strict=True)
        ]
        for group_values, group_shapes in zip(problem.initial, problem.shapes, strict=True)
    ]


def set_gradients(problem: Problem, params: list[list[torch.nn.Parameter]], t: int) -> None:
    for gi, group in enumerate(params):
        for pi, p in enumerate(group):
            if (gi, pi) in problem.no_grad:
                p.grad = None
                continue
            c = torch.tensor(problem.curvature[gi][pi], dtype=p.dtype).reshape(p.shape)
            n = torch.tensor(problem.noise[t][gi][pi], dtype=p.dtype).reshape(p.shape)
            p.grad = c * p.detach() + n


def run_torch(
    make_optimizer: Callable[[list[dict[str, Any]]], torch.optim.Optimizer],
    problem: Problem,
    group_overrides: list[dict[str, Any]],
    steps: int,
    *,
    schedule: bool = True,
    dtype: torch.dtype = torch.float64,
    on_step: Callable[[int, list[list[torch.nn.Parameter]]], None] | None = None,
) -> list[list[list[float]]]:
    params = make_params(problem, dtype)
    optimizer = make_optimizer([{"params": ps, **ov} for ps, ov in zip(params, group_overrides, strict=True)])
    base_lrs = [g["lr"] for g in optimizer.param_groups]
    for t in range(steps):
        set_gradients(problem, params, t)
        if schedule:
            for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                group["lr"] = base * lr_factor(t)
        optimizer.step()
        if on_step is not None:
            on_step(t, params)
    return [[p.detach().double().flatten().tolist() for p in group] for group in params]


def run_reference(
    kind: str,
    problem: Problem,
    group_options: list[dict[str, Any]],
    steps: int,
    *,
    schedule: bool = True,
    references: list[list[list[float]]] | None = None,
) -> list[list[list[float]]]:
    groups = [
        Group(params=copy.deepcopy(values), options=dict(options))
        for values, options in zip(problem.initial, group_options, strict=True)
    ]
    for group in groups:
        group.options.setdefault("initial_lr", group.options["lr"])
    base_lrs = [g.options["lr"] for g in groups]
    optimizer = ReferenceOptimizer(kind, groups, references)
    for t in range(steps):
        if schedule:
            for group, base in zip(groups, base_lrs, strict=True):
                group.options["lr"] = base * lr_factor(t)
        grads = [[problem.gradient(t, gi, pi, p) for pi, p in enumerate(g.params)] for gi, g in enumerate(groups)]
        optimizer.step(grads)
    return [g.params for g in groups]


def assert_close_nested(actual: list, expected: list, *, rtol: float, atol: float) -> None:
    flat_a = [x for group in actual for p in group for x in p]
    flat_e = [x for group in expected for p in group for x in p]
    torch.testing.assert_close(
        torch.tensor(flat_a, dtype=torch.float64), torch.tensor(flat_e, dtype=torch.float64), rtol=rtol, atol=atol
    )
