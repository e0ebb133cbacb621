"""SGD (coupled) and SGDW (decoupled) against the float64 reference, torch.optim.SGD and each other."""

from __future__ import annotations

import itertools

import pytest
import torch

from decaylab import RULES, SCALES, SGD, SGDW
from tests.optim.harness import SHAPES, assert_close_nested, make_params, run_reference, run_torch, set_gradients
from tests.reference import Problem

STEPS = 50
MOMENTA = [
    pytest.param(dict(momentum=0.0), id="plain"),
    pytest.param(dict(momentum=0.9), id="momentum"),
    pytest.param(dict(momentum=0.9, dampening=0.3), id="dampened"),
    pytest.param(dict(momentum=0.9, nesterov=True), id="nesterov"),
]


def problem(seed: int = 0) -> Problem:
    return Problem.random(seed, STEPS, SHAPES, no_grad={(2, 1)})


@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("maximize", [False, True], ids=["min", "max"])
@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
def test_sgd_coupled_matches_reference(momentum: dict, maximize: bool, foreach: bool) -> None:
    prob = problem(1)
    overrides = [{}, {"weight_decay": 0.2, "lr": 0.02}, {"weight_decay": 0.0}]
    actual = run_torch(
        lambda groups: SGD(groups, lr=0.05, weight_decay=0.1, maximize=maximize, foreach=foreach, **momentum),
        prob,
        overrides,
        STEPS,
    )
    options = [
        {"lr": 0.05, "coupled_weight_decay": 0.1, "maximize": maximize, **momentum},
        {"lr": 0.02, "coupled_weight_decay": 0.2, "maximize": maximize, **momentum},
        {"lr": 0.05, "coupled_weight_decay": 0.0, "maximize": maximize, **momentum},
    ]
    expected = run_reference("sgd", prob, options, STEPS)
    assert_close_nested(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("rule", "scale"), list(itertools.product(RULES, SCALES)))
@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("maximize", [False, True], ids=["min", "max"])
def test_sgdw_every_rule_matches_reference(rule: str, scale: str, momentum: dict, maximize: bool) -> None:
    prob = problem(2)
    lam = 0.3 if scale == "lr" else 0.01  # comparable per-step strength under each convention
    l1 = lam / 2 if rule == "elastic_net" else 0.0
    # group 1 overrides the rule and strength; group 2 has a parameter that never gets a gradient
    overrides = [{}, {"rule": "l2", "weight_decay": lam * 2, "l1_decay": 0.0}, {"lr": 0.03}]
    actual = run_torch(
        lambda groups: SGDW(
            groups, lr=0.05, weight_decay=lam, rule=rule, l1_decay=l1, scale=scale, maximize=maximize, **momentum
        ),
        prob,
        overrides,
        STEPS,
    )
    base = {"weight_decay": lam, "rule": rule, "l1_decay": l1, "scale": scale, "maximize": maximize, **momentum}
    options = [
        {"lr": 0.05, **base},
        {"lr": 0.05, **base, "rule": "l2", "weight_decay": lam * 2, "l1_decay": 0.0},
        {"lr": 0.03, **base},
    ]
    expected = run_reference("sgd", prob, options, STEPS)
    assert_close_nested(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("rule", "scale"), list(itertools.product(RULES, SCALES)))
@pytest.mark.parametrize("momentum", MOMENTA)
def test_sgdw_foreach_equals_per_tensor(rule: str, scale: str, momentum: dict) -> None:
    prob = problem(3)
    runs = [
        run_torch(
            lambda groups, fe=fe: SGDW(
                groups,
                lr=0.05,
                weight_decay=0.05,
                rule=rule,
                l1_decay=0.02 if rule == "elastic_net" else 0.0,
                scale=scale,
                foreach=fe,
                **momentum,
            ),
            prob,
            [{}, {"weight_decay": 0.1}, {}],
            STEPS,
            dtype=torch.float32,
        )
        for fe in (False, True)
    ]
    assert_close_nested(runs[1], runs[0], rtol=0, atol=0)


def _ulp(x: torch.Tensor) -> torch.Tensor:
    return torch.nextafter(x.abs(), torch.full_like(x, float("inf"))) - x.abs()


@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("weight_decay", [0.0, 0.05], ids=["nodecay", "decay"])
@pytest.mark.parametrize("foreach", [False, True], ids=["loop", "foreach"])
@pytest.mark.parametrize("maximize", [False, True], ids=["min", "max"])
def test_sgd_equals_torch_within_one_ulp_every_step(
    momentum: dict, weight_decay: float, foreach: bool, maximize: bool
) -> None:
    """100 steps on a random float32 problem: at every step each weight is within 1 ulp of torch.optim.SGD's."""
    steps = 100
    prob = Problem.random(4, steps, SHAPES)
    ours, theirs = make_params(prob, torch.float32), make_params(prob, torch.float32)
    kwargs = dict(lr=0.05, weight_decay=weight_decay, maximize=maximize, foreach=foreach, **momentum)
    opt_ours = SGD([{"params": g} for g in ours], **kwargs)
    opt_theirs = torch.optim.SGD([{"params": g} for g in theirs], **kwargs)
    for t in range(steps):
        set_gradients(prob, ours, t)
        for a, b in zip(itertools.chain(*ours), itertools.chain(*theirs), strict=True):
            b.grad = a.grad.clone()
        opt_ours.step()
        opt_theirs.step()
        for a, b in zip(itertools.chain(*ours), itertools.chain(*theirs), strict=True):
            assert ((a.detach() - b.detach()).abs() <= _ulp(b.detach())).all(), f"step {t}: more than 1 ulp apart"


def test_sgdw_zero_decay_is_torch_sgd_bit_for_bit() -> None:
    prob = Problem.random(5, STEPS, SHAPES)
    for momentum in ({}, {"momentum": 0.9}, {"momentum": 0.9, "nesterov": True}):
        ours = run_torch(
            lambda g, m=momentum: SGDW(g, lr=0.05, weight_decay=0.0, **m),
            prob,
            [{}, {}, {}],
            STEPS,
            dtype=torch.float32,
        )
        theirs = run_torch(
            lambda g, m=momentum: torch.optim.SGD(g, lr=0.05, **m), prob, [{}, {}, {}], STEPS, dtype=torch.float32
        )
        assert_close_nested(ours, theirs, rtol=0, atol=0)


def test_sgdw_with_momentum_matches_the_design_oracle() -> None:
    """DESIGN.md: w1**2/20 + w2**2, lr=0.01, lam=0.01, momentum 0.9, 200 steps: coupled 0.09464, decoupled 0.11773."""
    from decaylab import DiagonalQuadratic

    def final_w1(make) -> float:
        torch.manual_seed(0)
        model = DiagonalQuadratic().double()
        opt = make(model.parameters())
        for _ in range(200):
            opt.zero_grad()
            model.forward_loss().backward()
            opt.step()
        return float(model.w_1.detach())

    coupled = final_w1(lambda p: SGD(p, lr=0.01, momentum=0.9, weight_decay=0.01))
    decoupled = final_w1(lambda p: SGDW(p, lr=0.01, momentum=0.9, weight_decay=0.01, scale="lr"))
    assert coupled == pytest.approx(0.09464, abs=5e-6)
    assert decoupled == pytest.approx(0.11773, abs=5e-6)
