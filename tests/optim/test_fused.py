"""The fused path (torch.compile of the per-tensor step) against the eager path, and its flags.

Compiling costs seconds, so each compiled test packs many configurations into the param groups of
one optimizer (one graph). Their names contain ``compiled``: ``pytest -k "not compiled"`` skips them.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch._dynamo.eval_frame import _debug_get_cache_entry_list

from decaylab import RULES, SCALES, SGD, SGDW, AdamW

STEPS = 100
# One small tensor per group keeps the compiled kernel (and its cold compile) small; group 1 has a
# second one, whose gradient is None on some steps.
SHAPES = [(3, 4), (5,)]
# float32, 100 steps: |fused - eager| <= REL * (the largest weight) for every element. The scale is
# the weights' overall one: a weight that proximal L1 holds near zero carries rounding noise of the
# size of Adam's steps, so an element-wise relative test would measure noise, not agreement.
REL = 1e-6


def _groups(variants: list[dict[str, Any]], dtype: torch.dtype, seed: int) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(seed)
    return [
        {
            "params": [
                torch.nn.Parameter(torch.randn(s, generator=gen, dtype=dtype))
                for s in (SHAPES if i == 1 else SHAPES[:1])
            ],
            **variant,
        }
        for i, variant in enumerate(variants)
    ]


def _set_grads(groups: list[dict[str, Any]], t: int) -> None:
    gen = torch.Generator().manual_seed(1000 + t)  # the gradients of step t depend on t and w only
    for gi, group in enumerate(groups):
        for pi, p in enumerate(group["params"]):
            if (gi, pi) == (1, 1) and t % 3 == 0:
                p.grad = None  # a parameter without a gradient on some steps: neither updated nor decayed
                continue
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype) + 0.5 * p.detach()


def _schedule(opt: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
    return torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.7)  # lr changes every 7 steps


def _run(
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    steps: range,
    *,
    no_recompile_after: int | None = None,
) -> None:
    for t in steps:
        _set_grads(opt.param_groups, t)
        if no_recompile_after is not None and t >= no_recompile_after:
            with torch._dynamo.config.patch(error_on_recompile=True):
                opt.step()
        else:
            opt.step()
        sched.step()


def _weights(opt: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p.detach() for group in opt.param_groups for p in group["params"]]


def _train(
    make: Callable[[list[dict[str, Any]]], torch.optim.Optimizer],
    variants: list[dict[str, Any]],
    *,
    steps: int = STEPS,
    no_recompile_after: int | None = None,
) -> tuple[list[torch.Tensor], torch.optim.Optimizer]:
    opt = make(_groups(variants, torch.float32, seed=0))
    _run(opt, _schedule(opt), range(steps), no_recompile_after=no_recompile_after)
    return _weights(opt), opt


def _assert_agree(fused: list[torch.Tensor], eager: list[torch.Tensor]) -> None:
    scale = max(b.abs().max().item() for b in eager)
    for a, b in zip(fused, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=REL * scale)


def _assert_compiled_once_per_layout(opt: torch.optim.Optimizer) -> None:
    """Two layouts (with and without the gradient that is None every third step), each compiled once."""
    engine = opt._fused_engine
    assert engine.layouts == 2, "the LR scheduler or the step count must not create layouts"
    for code in engine.code_objects():
        assert len(_debug_get_cache_entry_list(code)) == 1, "dynamo compiled a layout more than once"


def _every_rule_and_scale(**extra: Any) -> list[dict[str, Any]]:
    variants = []
    for rule, scale in itertools.product(RULES, SCALES):
        variant = {"rule": rule, "scale": scale, **extra}
        if rule == "elastic_net":
            variant["l1_decay"] = 0.01
        if scale == "lr":
            variant["weight_decay"] = 0.3  # comparable per-step strength under each convention
        variants.append(variant)
    return variants


def test_compiled_sgdw_equals_eager_for_every_rule_and_scale() -> None:
    variants = _every_rule_and_scale()
    variants[0].update(nesterov=True)
    variants[1].update(maximize=True)
    variants[2].update(dampening=0.3)
    variants[3].update(momentum=0.0)
    variants[4].update(weight_decay=0.0)  # a zero strength: its rule is left out of the graph
    variants[5].update(fused=False)  # a group may stay eager
    variants[6].update(lr=0.02)

    def make(fused: bool) -> Callable:
        return lambda groups: SGDW(groups, lr=0.05, momentum=0.9, weight_decay=0.02, fused=fused)

    # step 0 is eager (first momentum step); from step 4 on, both layouts exist and must be reused
    fused, opt = _train(make(True), variants, no_recompile_after=4)
    eager, _ = _train(make(False), variants)
    _assert_agree(fused, eager)
    _assert_compiled_once_per_layout(opt)
    assert opt._fused_engine.compile_seconds > 0


def test_compiled_adamw_equals_eager_for_every_rule_and_scale() -> None:
    variants = _every_rule_and_scale()
    variants[0].update(amsgrad=True)
    variants[1].update(maximize=True, amsgrad=True)
    variants[2].update(betas=(0.8, 0.99), eps=1e-6)
    variants[3].update(weight_decay=0.0)

    def make(fused: bool) -> Callable:
        return lambda groups: AdamW(groups, lr=0.01, weight_decay=0.05, fused=fused)

    fused, opt = _train(make(True), variants, no_recompile_after=4)
    eager, _ = _train(make(False), variants)
    _assert_agree(fused, eager)
    _assert_compiled_once_per_layout(opt)


def test_compiled_adamw_in_float64_keeps_double_precision() -> None:
    """The bias corrections reach the loops in the weights' opmath dtype: float64 here (float32 would
    be off by about 1e-8 relative after one step)."""

    def run(fused: bool) -> list[torch.Tensor]:
        opt = AdamW(_groups([{}], torch.float64, seed=0), lr=0.01, weight_decay=0.05, fused=fused)
        _run(opt, _schedule(opt), range(20))
        return _weights(opt)

    fused, eager = run(True), run(False)
    assert all(w.dtype == torch.float64 for w in fused)
    scale = max(b.abs().max().item() for b in eager)
    for a, b in zip(fused, eager, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-13 * scale)


def test_compiled_sgd_coupled_equals_eager() -> None:
    variants = [{}, {"nesterov": True}, {"maximize": True}, {"dampening": 0.5}, {"weight_decay": 0.0}]

    def make(fused: bool) -> Callable:
        return lambda groups: SGD(groups, lr=0.05, momentum=0.9, weight_decay=0.1, fused=fused)

    fused, opt = _train(make(True), variants, no_recompile_after=4)
    eager, _ = _train(make(False), variants)
    _assert_agree(fused, eager)
    _assert_compiled_once_per_layout(opt)


@pytest.mark.parametrize("direction", ["fused-to-eager", "eager-to-fused"])
def test_compiled_state_dict_round_trip_between_fused_and_eager(direction: str) -> None:
    variants = [{"amsgrad": True}, {"rule": "toward_reference", "scale": "schedule"}]
    first, second = (True, False) if direction == "fused-to-eager" else (False, True)

    def make(fused: bool) -> Callable:
        return lambda groups: AdamW(groups, lr=0.01, weight_decay=0.1, fused=fused)

    uninterrupted, _ = _train(make(False), variants, steps=40)
    opt = make(first)(_groups(variants, torch.float32, seed=0))
    sched = _schedule(opt)
    _run(opt, sched, range(20))
    saved = copy.deepcopy({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()})

    resumed = make(second)(_groups(variants, torch.float32, seed=99))  # rebuilt elsewhere, then loaded
    resumed_sched = _schedule(resumed)
    resumed.load_state_dict(saved["optimizer"])
    resumed_sched.load_state_dict(saved["scheduler"])
    assert all(g["fused"] is second for g in resumed.param_groups), "the loading optimizer keeps its own flag"
    with torch.no_grad():
        for p, w in zip(_weights(resumed), _weights(opt), strict=True):
            p.copy_(w)
    _run(resumed, resumed_sched, range(20, 40))
    _assert_agree(_weights(resumed), uninterrupted)


def test_compiled_step_allocates_no_parameter_sized_temporaries() -> None:
    """The profiler's allocation record for one step: eager AdamW makes temporaries, fused none."""
    from benchmarks.memory import peak_transient_bytes

    def one_step_peak(fused: bool) -> int:
        w = torch.nn.Parameter(torch.randn(256, 256))
        opt = AdamW([w], lr=0.01, weight_decay=0.1, rule="proximal_l1", fused=fused)
        w.grad = torch.randn_like(w)
        opt.step()  # state, and the compile
        return peak_transient_bytes(opt.step)

    size = 256 * 256 * 4
    assert one_step_peak(fused=False) >= size  # the check sees eager's temporaries...
    assert one_step_peak(fused=True) < size // 16  # ...and none of that size on the fused path


def test_deepcopy_of_a_fused_optimizer_leaves_the_compiled_step_behind() -> None:
    w = torch.nn.Parameter(torch.ones(3))
    opt = SGDW([w], lr=0.1, fused=True)
    opt._fused_step()  # build the (empty) engine without compiling
    clone = copy.deepcopy(opt)
    assert "_fused_engine" not in clone.__dict__
    assert clone.param_groups[0]["fused"] is True


# --- flags: no compile needed ---------------------------------------------------------------------

MAKERS = {
    "SGD": lambda ps, **kw: SGD(ps, lr=0.1, **kw),
    "SGDW": lambda ps, **kw: SGDW(ps, lr=0.1, **kw),
    "AdamW": lambda ps, **kw: AdamW(ps, **kw),
}


@pytest.mark.parametrize("name", list(MAKERS))
def test_fused_and_foreach_together_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match=r"fused=True and foreach=True are mutually exclusive"):
        MAKERS[name]([torch.nn.Parameter(torch.ones(2))], fused=True, foreach=True)


@pytest.mark.parametrize("name", list(MAKERS))
@pytest.mark.parametrize("value", ["yes", 1, 0.0])
def test_fused_must_be_a_bool_or_none(name: str, value: Any) -> None:
    with pytest.raises(TypeError, match=r"^fused: expected True, False or None"):
        MAKERS[name]([torch.nn.Parameter(torch.ones(2))], fused=value)


@pytest.mark.parametrize("name", list(MAKERS))
def test_fused_rejects_complex_parameters(name: str) -> None:
    with pytest.raises(
        TypeError, match=r"fused=True supports real floating-point parameters, got dtype torch.complex64"
    ):
        MAKERS[name]([torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))], fused=True)


@pytest.mark.parametrize("name", list(MAKERS))
def test_fused_rejects_unsupported_devices(name: str) -> None:
    with pytest.raises(ValueError, match=r"fused=True supports parameters on cpu or cuda, got one on meta"):
        MAKERS[name]([torch.nn.Parameter(torch.ones(2, device="meta"))], fused=True)


@pytest.mark.parametrize("name", list(MAKERS))
def test_fused_rejects_sparse_gradients_before_moving_anything(name: str) -> None:
    w = torch.nn.Parameter(torch.ones(3))
    opt = MAKERS[name]([w], fused=True, weight_decay=0.1)
    w.grad = torch.ones(3).to_sparse()
    with pytest.raises(TypeError, match="does not support sparse gradients"):
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3))


def test_a_group_edited_into_fused_and_foreach_fails_at_step_with_nothing_applied() -> None:
    w = torch.nn.Parameter(torch.ones(3))
    opt = SGDW([w], lr=0.1, weight_decay=0.1)
    opt.param_groups[0].update(fused=True, foreach=True)
    w.grad = torch.ones(3)
    with pytest.raises(ValueError, match="mutually exclusive"):
        opt.step()
    assert torch.equal(w.detach(), torch.ones(3))


def test_a_complex_group_added_to_a_fused_optimizer_is_rejected() -> None:
    opt = AdamW([torch.nn.Parameter(torch.ones(2))], fused=True)
    with pytest.raises(TypeError, match="real floating-point"):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.ones(2, dtype=torch.complex64))]})
    assert len(opt.param_groups) == 1


def test_fused_defaults_to_off_and_groups_may_override() -> None:
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    opt = SGDW([{"params": [a]}, {"params": [b], "fused": True}], lr=0.1)
    assert [g["fused"] for g in opt.param_groups] == [None, True]


def test_the_first_momentum_step_runs_eagerly_without_compiling() -> None:
    w = torch.nn.Parameter(torch.ones(3))
    opt = SGDW([w], lr=0.1, momentum=0.9, weight_decay=0.1, fused=True)
    w.grad = torch.ones(3)
    opt.step()
    assert "_fused_engine" not in opt.__dict__  # nothing compiled yet
    torch.testing.assert_close(w.detach(), torch.full((3,), 0.9 - 0.1))


def test_fused_rejects_sparse_parameters() -> None:
    with pytest.raises(
        TypeError, match=r"fused=True supports dense \(strided\) parameters, got layout torch.sparse_coo"
    ):
        SGDW([torch.nn.Parameter(torch.ones(3).to_sparse())], lr=0.1, fused=True)
