"""Saving and loading mid-training continues identically; a pickle/deepcopy round trip works."""

from __future__ import annotations

import copy
import io
import itertools

import pytest
import torch

from decaylab import SGD, SGDW, AdamW, DecayWrapper
from tests.optim.harness import SHAPES, make_params, set_gradients
from tests.reference import Problem

FACTORIES = {
    "sgd": lambda g: SGD(g, lr=0.05, momentum=0.9, weight_decay=0.01),
    "sgdw-l2": lambda g: SGDW(g, lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.1, scale="schedule"),
    "sgdw-reference": lambda g: SGDW(g, lr=0.05, momentum=0.9, weight_decay=0.1, rule="toward_reference", scale="lr"),
    "sgdw-elastic": lambda g: SGDW(g, lr=0.05, weight_decay=0.1, rule="elastic_net", l1_decay=0.05, scale="lr"),
    "adamw-prox": lambda g: AdamW(g, lr=0.01, weight_decay=0.5, rule="proximal_l1", amsgrad=True),
    "adamw-reference": lambda g: AdamW(g, lr=0.01, weight_decay=0.5, rule="toward_reference"),
    "wrapper-rmsprop": lambda g: DecayWrapper(
        torch.optim.RMSprop(g, lr=0.01, momentum=0.5), weight_decay=0.1, rule="toward_reference"
    ),
}


@pytest.mark.parametrize("name", list(FACTORIES))
def test_save_load_mid_training_continues_identically(name: str) -> None:
    steps, split = 40, 20
    prob = Problem.random(30, steps, SHAPES)
    factory = FACTORIES[name]

    def schedule_for(opt):
        return torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5)

    params = make_params(prob)
    opt = factory([{"params": g} for g in params])
    sched = schedule_for(opt)
    for t in range(split):
        set_gradients(prob, params, t)
        opt.step()
        sched.step()
    buffer = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, buffer)
    weights_at_split = [[p.detach().clone() for p in g] for g in params]
    for t in range(split, steps):
        set_gradients(prob, params, t)
        opt.step()
        sched.step()

    # a fresh process would rebuild the model at different weights, then load the checkpoint
    resumed = [[torch.nn.Parameter(torch.zeros_like(p)) for p in g] for g in weights_at_split]
    opt2 = factory([{"params": g} for g in resumed])
    sched2 = schedule_for(opt2)
    buffer.seek(0)
    checkpoint = torch.load(buffer, weights_only=True)
    opt2.load_state_dict(checkpoint["optimizer"])
    sched2.load_state_dict(checkpoint["scheduler"])
    with torch.no_grad():
        for p, saved in zip(itertools.chain(*resumed), itertools.chain(*weights_at_split), strict=True):
            p.copy_(saved)
    for t in range(split, steps):
        set_gradients(prob, resumed, t)
        opt2.step()
        sched2.step()
    for a, b in zip(itertools.chain(*params), itertools.chain(*resumed), strict=True):
        assert torch.equal(a, b), f"{name}: resumed run diverged from the uninterrupted one"


def test_reference_travels_with_the_state_dict() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = SGDW([w], lr=0.1, weight_decay=0.5, rule="toward_reference", reference=[torch.tensor([0.5, 0.5])])
    saved = opt.state_dict()
    other = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt2 = SGDW([other], lr=0.1, weight_decay=0.5, rule="toward_reference")  # snapshots [1, -2]
    opt2.load_state_dict(saved)
    torch.testing.assert_close(opt2.state[other]["reference"], torch.tensor([0.5, 0.5]))


def test_deepcopy_of_each_optimizer_steps_like_the_original() -> None:
    for name, factory in FACTORIES.items():
        w = torch.nn.Parameter(torch.randn(4, generator=torch.Generator().manual_seed(0)))
        opt = factory([{"params": [w]}])
        w.grad = torch.ones(4)
        opt.step()
        clone = copy.deepcopy((w, opt))
        for p, o in ((w, opt), clone):
            p.grad = torch.full((4,), 0.5)
            o.step()
        assert torch.equal(w, clone[0]), name


def test_load_state_dict_rejects_a_foreign_dict_for_the_wrapper() -> None:
    opt = DecayWrapper(torch.optim.Adam([torch.nn.Parameter(torch.ones(2))]), weight_decay=0.1)
    with pytest.raises(ValueError, match="state_dict"):
        opt.load_state_dict({"state": {}, "param_groups": []})


def test_a_deep_copied_optimizer_accepts_new_param_groups() -> None:
    w = torch.nn.Parameter(torch.ones(2))
    clone = copy.deepcopy(SGDW([w], lr=0.1, weight_decay=0.1, rule="toward_reference"))
    extra = torch.nn.Parameter(torch.full((3,), 2.0))
    clone.add_param_group({"params": [extra]})
    torch.testing.assert_close(clone.state[extra]["reference"], torch.full((3,), 2.0))
