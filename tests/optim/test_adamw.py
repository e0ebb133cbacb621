"""AdamW against the float64 reference and torch.optim.AdamW / Adam."""

from __future__ import annotations

import itertools

import pytest
import torch

from decaylab import RULES, SCALES, AdamW
from tests.optim.harness import SHAPES, assert_close_nested, run_reference, run_torch
from tests.reference import Problem

STEPS = 50


@pytest.mark.parametrize(("rule", "scale"), list(itertools.product(RULES, SCALES)))
@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
@pytest.mark.parametrize("maximize", [False, True], ids=["min", "max"])
@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
def test_adamw_every_rule_matches_reference(
    rule: str, scale: str, amsgrad: bool, maximize: bool, foreach: bool
) -> None:
    prob = Problem.random(10, STEPS, SHAPES, no_grad={(1, 1)})
    lam = 0.5 if scale == "lr" else 0.005
    l1 = lam / 2 if rule == "elastic_net" else 0.0
    overrides = [{}, {"weight_decay": 0.0}, {"lr": 0.002, "betas": (0.8, 0.99), "rule": "l1", "l1_decay": 0.0}]
    actual = run_torch(
        lambda groups: AdamW(
            groups,
            lr=0.01,
            weight_decay=lam,
            rule=rule,
            l1_decay=l1,
            scale=scale,
            amsgrad=amsgrad,
            maximize=maximize,
            foreach=foreach,
        ),
        prob,
        overrides,
        STEPS,
    )
    base = {"weight_decay": lam, "rule": rule, "l1_decay": l1, "scale": scale, "amsgrad": amsgrad, "maximize": maximize}
    options = [
        {"lr": 0.01, **base},
        {"lr": 0.01, **base, "weight_decay": 0.0},
        {**base, "lr": 0.002, "betas": (0.8, 0.99), "rule": "l1", "l1_decay": 0.0},
    ]
    expected = run_reference("adam", prob, options, STEPS)
    assert_close_nested(actual, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
@pytest.mark.parametrize("maximize", [False, True], ids=["min", "max"])
def test_adamw_l2_lr_scale_equals_torch_adamw(amsgrad: bool, foreach: bool, maximize: bool) -> None:
    """100 steps, float32: within 1e-6 relative of torch.optim.AdamW (the issue's bound)."""
    steps = 100
    prob = Problem.random(11, steps, SHAPES)
    kwargs = dict(lr=0.01, weight_decay=0.1, amsgrad=amsgrad, foreach=foreach, maximize=maximize)
    overrides = [{}, {"weight_decay": 0.3}, {"lr": 0.003}]
    ours = run_torch(lambda g: AdamW(g, **kwargs), prob, overrides, steps, dtype=torch.float32)
    theirs = run_torch(lambda g: torch.optim.AdamW(g, **kwargs), prob, overrides, steps, dtype=torch.float32)
    assert_close_nested(ours, theirs, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
def test_adamw_zero_decay_is_torch_adam_bit_for_bit(amsgrad: bool, foreach: bool) -> None:
    prob = Problem.random(12, STEPS, SHAPES)
    kwargs = dict(lr=0.01, amsgrad=amsgrad, foreach=foreach)
    ours = run_torch(lambda g: AdamW(g, weight_decay=0.0, **kwargs), prob, [{}, {}, {}], STEPS, dtype=torch.float32)
    theirs = run_torch(lambda g: torch.optim.Adam(g, **kwargs), prob, [{}, {}, {}], STEPS, dtype=torch.float32)
    assert_close_nested(ours, theirs, rtol=0, atol=0)


@pytest.mark.parametrize(("rule", "scale"), list(itertools.product(RULES, SCALES)))
@pytest.mark.parametrize("amsgrad", [False, True], ids=["adam", "amsgrad"])
def test_adamw_foreach_equals_per_tensor(rule: str, scale: str, amsgrad: bool) -> None:
    prob = Problem.random(13, STEPS, SHAPES)
    runs = [
        run_torch(
            lambda g, fe=fe: AdamW(
                g,
                lr=0.01,
                weight_decay=0.05,
                rule=rule,
                l1_decay=0.01 if rule == "elastic_net" else 0.0,
                scale=scale,
                amsgrad=amsgrad,
                foreach=fe,
            ),
            prob,
            [{}, {"weight_decay": 0.2}, {}],
            STEPS,
            dtype=torch.float32,
        )
        for fe in (False, True)
    ]
    assert_close_nested(runs[1], runs[0], rtol=1e-6, atol=1e-7)
