"""The stacked step against each configuration's own optimizer (build_method), given the same gradients,
over several steps with a changing lr; and a row's result does not depend on its neighbours."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from decaylab.rules import SCALES, apply_after_update, apply_before_update, coupled_l2
from decaylab.rules._scalar import clamp_symmetric
from decaylab.sandbox.batched.update import Coefficients, OptimizerState, Term, stacked_step
from decaylab.sandbox.methods import METHODS, build_method
from decaylab.sandbox.train import RunConfig

STEPS = 6
LRS = (0.1, 0.08, 0.05, 0.05, 0.02, 0.01)  # a decaying schedule: the scale conventions part ways


def config(method: str, base: str, k: int) -> RunConfig:
    lr = (0.1, 0.03)[k % 2] if base == "sgd" else (0.01, 0.003)[k % 2]
    return RunConfig(
        dataset="wine", model="linear", method=method, strength=0.0 if method == "none" else (0.05, 0.2)[k % 2],
        base=base, momentum=0.9, lr=lr, scale=SCALES[k % 3], seed=k,
    )  # fmt: skip


def eager_run(cfg: RunConfig, init: list[torch.Tensor], grads: list[list[torch.Tensor]]) -> torch.Tensor:
    """``STEPS`` steps of ``cfg``'s own optimizer, lr scaled by ``LRS``; returns the flat weights after."""
    model = nn.Linear(3, 2)
    with torch.no_grad():
        for p, w in zip(model.parameters(), init, strict=True):
            p.copy_(w)
    regularized = build_method(
        cfg.method, model, lr=cfg.lr, strength=cfg.strength, base=cfg.base,
        momentum=cfg.momentum if cfg.base == "sgd" else 0.0, scale=cfg.scale,
    )  # fmt: skip
    for step in range(STEPS):
        for group in regularized.optimizer.param_groups:
            group["lr"] = cfg.lr * LRS[step] / LRS[0]
        regularized.zero_grad()
        for p, g in zip(model.parameters(), grads[step], strict=True):
            p.grad = g.clone()
        regularized.step()
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def stacked_run(configs: list[RunConfig], inits: list[list[torch.Tensor]], grads: list[list[list[torch.Tensor]]]):
    flat = torch.stack([torch.cat([w.reshape(-1) for w in init]) for init in inits])
    base = configs[0].base
    hyper = (
        {"momentum": 0.9, "dampening": 0.0, "nesterov": False}
        if base == "sgd"
        else {"betas": (0.9, 0.999), "eps": 1e-8}
    )
    state = OptimizerState(base, hyper)
    if base == "adam":
        state.exp_avg, state.exp_avg_sq, state.steps = (
            torch.zeros_like(flat),
            torch.zeros_like(flat),
            torch.zeros(len(flat), 1),
        )
    users = [i for i, c in enumerate(configs) if c.method == "toward_reference"]
    if users:
        state.references, state.reference_start = flat[users[0] : users[-1] + 1].clone(), users[0]
    for step in range(STEPS):
        lrs = [c.lr * LRS[step] / LRS[0] for c in configs]
        coefficients = Coefficients.build(configs, lrs, [c.lr for c in configs])
        g = torch.stack([torch.cat([t.reshape(-1) for t in grads[i][step]]) for i in range(len(configs))])
        stacked_step(flat, g, state, coefficients)
    return flat


def random_case(count: int, seed: int) -> tuple[list[list[torch.Tensor]], list[list[list[torch.Tensor]]]]:
    generator = torch.Generator().manual_seed(seed)

    def pair() -> list[torch.Tensor]:
        return [torch.randn(2, 3, generator=generator), torch.randn(2, generator=generator)]

    inits = [pair() for _ in range(count)]
    grads = [[pair() for _ in range(STEPS)] for _ in range(count)]
    for init in inits:  # some weights small enough for the L1 rules to reach (and keep) exact zeros
        init[0][0, :2] = torch.tensor([0.004, -0.002])
    return inits, grads


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_a_mixed_stack_equals_each_configurations_own_optimizer(base: str) -> None:
    configs = [config(m, base, k) for k, m in enumerate(list(METHODS) * 2)]
    inits, grads = random_case(len(configs), seed=1)
    stacked = stacked_run(configs, inits, grads)
    for i, cfg in enumerate(configs):
        expected = eager_run(cfg, inits[i], grads[i])
        torch.testing.assert_close(stacked[i], expected, rtol=1e-6, atol=1e-7, msg=f"{cfg.method} {cfg.scale}")
        assert torch.equal(stacked[i] == 0, expected == 0), cfg.method  # the same exact zeros


@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_a_row_does_not_depend_on_the_other_rows(base: str) -> None:
    configs = [config(m, base, k) for k, m in enumerate(METHODS)]
    inits, grads = random_case(len(configs), seed=2)
    together = stacked_run(configs, inits, grads)
    for i, cfg in enumerate(configs):
        alone = stacked_run([cfg], [inits[i]], [grads[i]])
        assert torch.equal(together[i], alone[0]), cfg.method  # zero coefficients change nothing, bit for bit


def test_coefficients_put_each_method_where_build_method_does() -> None:
    methods = [
        "none",
        "coupled_l2",
        "decoupled_l2",
        "l1",
        "proximal_l1",
        "elastic_net",
        "toward_reference",
        "penalty_l2",
        "penalty_l1",
    ]
    assert methods == list(METHODS)  # a new method needs its row here
    configs = [dataclasses.replace(config(m, "sgd", 0), scale="lr", strength=0.5, lr=0.1) for m in methods]
    c = Coefficients.build(configs, [0.1] * 9, [0.1] * 9)

    def rows(term: Term) -> tuple[int, int, list[float], list[float] | None]:
        values = [round(v, 6) for v in term.value.squeeze(1).tolist()]
        l1 = None if term.l1 is None else [round(v, 6) for v in term.l1.squeeze(1).tolist()]
        return term.rows.start, term.rows.stop, values, l1

    assert rows(c.coupled) == (1, 2, [0.5], None)
    assert {p: rows(t) for p, t in c.penalties.items()} == {2.0: (7, 8, [0.5], None), 1.0: (8, 9, [0.5], None)}
    assert {rule: rows(t) for rule, t in c.decoupled.items()} == {
        "l2": (2, 3, [0.05], None),
        "l1": (3, 4, [0.05], None),
        "proximal_l1": (4, 5, [0.05], None),
        "elastic_net": (5, 6, [0.05], [0.05]),
        "toward_reference": (6, 7, [0.05], None),
    }
    assert [round(v, 6) for v in c.lr.squeeze(1).tolist()] == [0.1] * 9


def test_a_term_covers_the_rows_between_its_first_and_last_user_with_zeros_between() -> None:
    configs = [config(m, "sgd", 0) for m in ("l1", "none", "l1", "coupled_l2")]
    term = Coefficients.build(configs, [0.1] * 4, [0.1] * 4).decoupled["l1"]
    assert (term.rows.start, term.rows.stop) == (0, 3)
    assert term.value.squeeze(1).tolist()[1] == 0.0


def test_a_rule_at_strength_zero_everywhere_is_left_out() -> None:
    configs = [dataclasses.replace(config("toward_reference", "sgd", 0), strength=0.0)]
    assert Coefficients.build(configs, [0.1], [0.1]).decoupled == {}


@pytest.mark.parametrize("rule", ["l2", "l1", "proximal_l1", "elastic_net", "toward_reference"])
def test_the_rules_take_one_coefficient_per_row(rule: str) -> None:
    """decaylab.rules' per-tensor path with [C, 1] coefficients equals each row with its own number."""
    generator = torch.Generator().manual_seed(3)
    weights = torch.randn(4, 5, generator=generator) * 0.1
    references = torch.randn(4, 5, generator=generator)
    factors = [0.0, 0.01, 0.05, 0.2]
    stacked = weights.clone()
    column = torch.tensor(factors).unsqueeze(1)
    apply_before_update(rule, [stacked], scale=1.0, weight_decay=column, references=[references], foreach=False)
    apply_after_update(rule, [stacked], scale=1.0, weight_decay=column, l1_decay=column, foreach=False)
    for i, factor in enumerate(factors):
        row = weights[i].clone()
        apply_before_update(rule, [row], scale=1.0, weight_decay=factor, references=[references[i]], foreach=False)
        apply_after_update(rule, [row], scale=1.0, weight_decay=factor, l1_decay=factor, foreach=False)
        torch.testing.assert_close(stacked[i], row, rtol=1e-6, atol=1e-8)
    coupled = coupled_l2([torch.zeros(4, 5)], [weights], column, foreach=False)[0]
    torch.testing.assert_close(coupled, weights * column)


def test_select_keeps_the_references_of_the_rows_kept() -> None:
    state = OptimizerState("sgd", {}, momentum_buffer=torch.arange(6.0).unsqueeze(1))
    state.references, state.reference_start = torch.tensor([[2.0], [3.0], [4.0]]), 2  # rows 2, 3, 4
    state.select(torch.tensor([0, 3, 4, 5]))
    assert state.momentum_buffer.squeeze(1).tolist() == [0.0, 3.0, 4.0, 5.0]
    assert (state.reference_start, state.references.squeeze(1).tolist()) == (1, [3.0, 4.0])
    assert state.references_for(slice(1, 3))[0].squeeze(1).tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match="no stored references for rows 0..1"):
        state.references_for(slice(0, 2))
    state.select(torch.tensor([0, 3]))
    assert state.references is None


def test_clamp_symmetric_with_a_tensor_bound_equals_clamp_bit_for_bit() -> None:
    weights = torch.tensor([[-2.0, -0.5, 0.0, 0.3, float("nan"), float("inf")]] * 2)
    bound = torch.tensor([[0.4], [1e-3]])
    expected = torch.stack([weights[i].clamp(-bound[i, 0].item(), bound[i, 0].item()) for i in range(2)])
    assert torch.equal(clamp_symmetric(weights, bound).nan_to_num(7.0), expected.nan_to_num(7.0))
    assert torch.equal(clamp_symmetric(weights, 0.4).nan_to_num(7.0), weights.clamp(-0.4, 0.4).nan_to_num(7.0))
