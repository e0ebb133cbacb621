from __future__ import annotations

import pytest
import torch
from torch import nn

from decaylab import SGDW, DecayWrapper, param_groups, split_decay


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 4, 3)
        self.bn = nn.BatchNorm1d(4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)
        self.scale = nn.Parameter(torch.ones(4))  # a 1-d parameter that is not a bias


def test_default_split() -> None:
    decay, no_decay = split_decay(Net())
    assert set(decay) == {"conv.weight", "head.weight", "scale"}
    assert set(no_decay) == {
        "embed.weight",
        "conv.bias",
        "bn.weight",
        "bn.bias",
        "norm.weight",
        "norm.bias",
        "head.bias",
    }


def test_switches_and_patterns() -> None:
    decay, _ = split_decay(Net(), exclude_embedding=False, exclude_norm=False, exclude_bias=False)
    assert len(decay) == 10
    decay, no_decay = split_decay(Net(), decay=["*.bias"], no_decay=["head.weight"])
    assert "head.bias" in decay and "conv.bias" in decay and "head.weight" in no_decay


def test_conflicting_patterns_and_string_patterns_are_errors() -> None:
    with pytest.raises(ValueError, match="matches both"):
        split_decay(Net(), decay=["head.*"], no_decay=["head.weight"])
    with pytest.raises(TypeError, match="^no_decay: expected a sequence of glob patterns"):
        split_decay(Net(), no_decay="head.*")


def test_frozen_parameters_are_left_out() -> None:
    net = Net()
    net.head.weight.requires_grad_(False)
    decay, no_decay = split_decay(net)
    assert "head.weight" not in decay + no_decay


def test_groups_drive_torch_decaylab_and_the_wrapper() -> None:
    net = Net()
    groups = param_groups(net, 0.1)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    torch.optim.AdamW(groups, lr=0.01)
    opt = SGDW(param_groups(net, 0.1), lr=0.1)
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    before_bias, before_weight = net.head.bias.detach().clone(), net.head.weight.detach().clone()
    opt.step()
    assert torch.equal(net.head.bias.detach(), before_bias)
    torch.testing.assert_close(net.head.weight.detach(), before_weight * 0.9)
    wrapped = DecayWrapper(torch.optim.SGD(param_groups(net, 0.1, key="decay_weight_decay"), lr=0.1))
    assert [g["decay_weight_decay"] for g in wrapped.param_groups] == [0.1, 0.0]
