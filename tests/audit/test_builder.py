"""Targets, knobs (what the probe can turn, read from constructor signatures) and construction."""

from __future__ import annotations

from functools import partial

import pytest
import torch

import decaylab
from decaylab.audit.builder import MISSING, Target, build_optimizer, find_knobs, momentum_value, public_name

from .synthetic import Synthetic


def params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(1, 3, dtype=torch.float64))]


def test_target_from_a_class_or_a_partial():
    assert Target.of(torch.optim.AdamW).name == "torch.optim.AdamW"
    fixed = Target.of(partial(torch.optim.RAdam, decoupled_weight_decay=True))
    assert fixed.cls is torch.optim.RAdam
    assert fixed.kwargs == {"decoupled_weight_decay": True}
    assert fixed.name == "torch.optim.RAdam(decoupled_weight_decay=True)"


def test_target_rejects_non_optimizers_and_positional_partials():
    with pytest.raises(TypeError, match=r"optimizer: expected a torch\.optim\.Optimizer subclass"):
        Target.of(dict)
    with pytest.raises(ValueError, match="keyword arguments only"):
        Target.of(partial(torch.optim.SGD, [torch.zeros(1)]))


def test_public_name_is_the_shortest_exporting_module():
    assert torch.optim.SGD.__module__ == "torch.optim.sgd"
    assert public_name(torch.optim.SGD) == "torch.optim.SGD"
    assert public_name(decaylab.SGDW) == "decaylab.SGDW"


def test_knobs_of_sgd_and_adam():
    sgd = find_knobs(Target.of(torch.optim.SGD))
    assert (sgd.strength, sgd.momentum, sgd.momentum_default) == ("weight_decay", "momentum", 0)
    assert sgd.paths == ("foreach", "fused")
    adam = find_knobs(Target.of(torch.optim.Adam))
    assert (adam.momentum, adam.momentum_default) == ("betas", (0.9, 0.999))
    assert find_knobs(Target.of(torch.optim.Rprop)).strength is None


def test_a_fixed_strength_or_momentum_is_not_turned():
    knobs = find_knobs(Target.of(partial(torch.optim.SGD, weight_decay=0.1, momentum=0.5)))
    assert knobs.strength is None
    assert knobs.momentum is None


def test_wrapper_knobs_follow_the_recipe():
    wrapper = find_knobs(Target.of(decaylab.DecayWrapper))
    assert (wrapper.strength, wrapper.strength_target) == ("weight_decay", "self")
    assert (wrapper.momentum, wrapper.momentum_target) == ("betas", "base")
    assert wrapper.strength_default == 0.01
    assert wrapper.paths == ()


def test_momentum_is_toggled_away_from_its_default():
    sgd = find_knobs(Target.of(torch.optim.SGD))
    assert momentum_value(sgd, toggled=False, on=0.9) is MISSING
    assert momentum_value(sgd, toggled=True, on=0.9) == 0.9
    muon = find_knobs(Target.of(torch.optim.Muon))
    assert momentum_value(muon, toggled=True, on=0.9) == 0.0
    adam = find_knobs(Target.of(torch.optim.Adam))
    assert momentum_value(adam, toggled=True, on=0.9) == (0.0, 0.999)


def test_build_passes_lr_strength_momentum_and_path():
    target = Target.of(Synthetic)
    opt = build_optimizer(
        target, find_knobs(target), params(), lr=0.5, strength=0.25, momentum=0.9, path={"foreach": True}
    )
    group = opt.param_groups[0]
    assert (group["lr"], group["weight_decay"], group["momentum"], group["foreach"]) == (0.5, 0.25, 0.9, True)
    default = build_optimizer(target, find_knobs(target), params(), lr=0.5, strength=None, momentum=MISSING, path={})
    assert default.param_groups[0]["weight_decay"] == 0.0


def test_build_wraps_a_base_instance_for_instance_wrappers():
    target = Target.of(decaylab.DecayWrapper)
    opt = build_optimizer(target, find_knobs(target), params(), lr=0.5, strength=0.25, momentum=MISSING, path={})
    assert isinstance(opt.optimizer, torch.optim.Adam)
    assert opt.param_groups[0]["decay_weight_decay"] == 0.25
    assert opt.param_groups[0]["lr"] == 0.5
