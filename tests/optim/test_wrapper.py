"""DecayWrapper around torch.optim optimizers against the float64 reference."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch

from decaylab import RULES, SCALES, SGDW, AdamW, DecayWrapper
from tests.optim.harness import SHAPES, assert_close_nested, make_params, run_reference, run_torch, set_gradients
from tests.reference import Problem

STEPS = 50


@pytest.mark.parametrize(("rule", "scale"), list(itertools.product(RULES, SCALES)))
def test_wrapped_torch_adam_matches_reference(rule: str, scale: str) -> None:
    prob = Problem.random(20, STEPS, SHAPES, no_grad={(0, 1)})
    lam = 0.5 if scale == "lr" else 0.005
    l1 = lam / 2 if rule == "elastic_net" else 0.0
    actual = run_torch(
        lambda g: DecayWrapper(torch.optim.Adam(g, lr=0.01), weight_decay=lam, rule=rule, l1_decay=l1, scale=scale),
        prob,
        [{}, {"decay_weight_decay": 0.0}, {"lr": 0.005}],
        STEPS,
    )
    base = {"weight_decay": lam, "rule": rule, "l1_decay": l1, "scale": scale}
    options = [{"lr": 0.01, **base}, {"lr": 0.01, **base, "weight_decay": 0.0}, {"lr": 0.005, **base}]
    expected = run_reference("adam", prob, options, STEPS)
    assert_close_nested(actual, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("rule", "scale"), list(itertools.product(RULES, SCALES)))
@pytest.mark.parametrize("nesterov", [False, True], ids=["heavy-ball", "nesterov"])
def test_wrapped_torch_sgd_equals_sgdw(rule: str, scale: str, nesterov: bool) -> None:
    prob = Problem.random(21, STEPS, SHAPES)
    l1 = 0.01 if rule == "elastic_net" else 0.0
    wrapped = run_torch(
        lambda g: DecayWrapper(
            torch.optim.SGD(g, lr=0.05, momentum=0.9, nesterov=nesterov),
            weight_decay=0.05,
            rule=rule,
            l1_decay=l1,
            scale=scale,
        ),
        prob,
        [{}, {}, {}],
        STEPS,
    )
    native = run_torch(
        lambda g: SGDW(
            g, lr=0.05, momentum=0.9, nesterov=nesterov, weight_decay=0.05, rule=rule, l1_decay=l1, scale=scale
        ),
        prob,
        [{}, {}, {}],
        STEPS,
    )
    assert_close_nested(wrapped, native, rtol=1e-12, atol=1e-14)


def test_wrapped_adam_with_l2_lr_scale_is_torch_adamw() -> None:
    prob = Problem.random(22, 100, SHAPES)
    wrapped = run_torch(
        lambda g: DecayWrapper(torch.optim.Adam(g, lr=0.01), weight_decay=0.1),
        prob,
        [{}, {}, {}],
        100,
        dtype=torch.float32,
    )
    adamw = run_torch(
        lambda g: torch.optim.AdamW(g, lr=0.01, weight_decay=0.1), prob, [{}, {}, {}], 100, dtype=torch.float32
    )
    assert_close_nested(wrapped, adamw, rtol=1e-6, atol=1e-7)


def test_wrapper_zero_decay_is_the_inner_optimizer_bit_for_bit() -> None:
    prob = Problem.random(23, STEPS, SHAPES)
    wrapped = run_torch(
        lambda g: DecayWrapper(torch.optim.RMSprop(g, lr=0.01), weight_decay=0.0),
        prob,
        [{}, {}, {}],
        STEPS,
        dtype=torch.float32,
    )
    plain = run_torch(lambda g: torch.optim.RMSprop(g, lr=0.01), prob, [{}, {}, {}], STEPS, dtype=torch.float32)
    assert_close_nested(wrapped, plain, rtol=0, atol=0)


def test_wrapper_follows_a_scheduler_attached_to_the_inner_optimizer() -> None:
    w = torch.nn.Parameter(torch.ones(3))
    inner = torch.optim.SGD([w], lr=0.1)
    opt = DecayWrapper(inner, weight_decay=0.5, scale="lr")
    scheduler = torch.optim.lr_scheduler.StepLR(inner, step_size=1, gamma=0.5)
    expected = 1.0
    for step in range(4):
        w.grad = torch.zeros_like(w)
        opt.step()
        expected *= 1 - 0.1 * 0.5**step * 0.5
        scheduler.step()
    torch.testing.assert_close(w.detach(), torch.full((3,), expected))


def test_wrapper_accepts_a_scheduler_and_checkpoints_like_an_optimizer() -> None:
    prob = Problem.random(24, 40, SHAPES)

    def build(params):
        opt = DecayWrapper(
            torch.optim.Adam([{"params": g} for g in params], lr=0.01), weight_decay=0.1, rule="toward_reference"
        )
        return opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=40)

    params = make_params(prob)
    opt, sched = build(params)
    for t in range(20):
        set_gradients(prob, params, t)
        opt.step()
        sched.step()
    saved_opt, saved_sched = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
    snapshot = [[p.detach().clone() for p in g] for g in params]
    for t in range(20, 40):
        set_gradients(prob, params, t)
        opt.step()
        sched.step()
    resumed = [[torch.nn.Parameter(p.clone()) for p in g] for g in snapshot]
    opt2, sched2 = build(resumed)
    opt2.load_state_dict(saved_opt)
    sched2.load_state_dict(saved_sched)
    for t in range(20, 40):
        set_gradients(prob, resumed, t)
        opt2.step()
        sched2.step()
    for a, b in zip(itertools.chain(*params), itertools.chain(*resumed), strict=True):
        assert torch.equal(a, b)


def test_wrapper_with_lbfgs_closure_decays_once_per_step() -> None:
    """LBFGS calls the closure many times; the decay must be applied exactly once per step."""
    w = torch.nn.Parameter(torch.tensor([2.0, -3.0]))
    inner = torch.optim.LBFGS([w], lr=1.0, max_iter=5)
    opt = DecayWrapper(inner, weight_decay=0.1, scale="none")
    calls = 0

    def closure():
        nonlocal calls
        calls += 1
        opt.zero_grad()
        loss = (w * 0).sum()  # zero gradient: LBFGS stops at once, only the decay moves w
        loss.backward()
        return loss

    opt.step(closure)
    assert calls >= 1
    torch.testing.assert_close(w.detach(), torch.tensor([1.8, -2.7]))


def test_wrapper_adam_with_closure_decays_before_the_update() -> None:
    """With a closure the gradient is taken at w, then w is decayed, then updated: as AdamW."""
    torch.manual_seed(0)
    x = torch.randn(8, 3)
    results = []
    for make in (
        lambda ps: DecayWrapper(torch.optim.Adam(ps, lr=0.1), weight_decay=0.2),
        lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.2),
    ):
        w = torch.nn.Parameter(torch.ones(3))
        opt = make([w])
        for _ in range(5):

            def closure(w=w, opt=opt):
                opt.zero_grad()
                loss = (x @ w).pow(2).mean()
                loss.backward()
                return loss

            opt.step(closure)
        results.append(w.detach())
    torch.testing.assert_close(results[0], results[1])


def test_wrapped_adamw_under_decaylab_adamw_equivalence() -> None:
    """Wrapping torch Adam with any rule equals decaylab's AdamW with that rule (same ops)."""
    prob = Problem.random(25, STEPS, SHAPES)
    for rule in RULES:
        l1 = 0.01 if rule == "elastic_net" else 0.0
        wrapped = run_torch(
            lambda g, r=rule, l=l1: DecayWrapper(torch.optim.Adam(g, lr=0.01), weight_decay=0.1, rule=r, l1_decay=l),
            prob,
            [{}, {}, {}],
            STEPS,
        )
        native = run_torch(
            lambda g, r=rule, l=l1: AdamW(g, lr=0.01, weight_decay=0.1, rule=r, l1_decay=l), prob, [{}, {}, {}], STEPS
        )
        assert_close_nested(wrapped, native, rtol=1e-12, atol=1e-14)
