"""Targets: class paths (with fixed kwargs), modules, --installed, and clear errors for bad input."""

from __future__ import annotations

import pytest
import torch

import decaylab
from decaylab.audit.targets import INSTALLED_MODULES, TargetError, discover, parse_target, resolve_targets


def test_class_path():
    (target,) = parse_target("torch.optim.AdamW")
    assert (target.name, target.cls, target.kwargs) == ("torch.optim.AdamW", torch.optim.AdamW, {})


def test_class_path_with_fixed_keyword_arguments():
    (target,) = parse_target("torch.optim.RAdam(decoupled_weight_decay=True, eps=1e-6)")
    assert target.cls is torch.optim.RAdam
    assert target.kwargs == {"decoupled_weight_decay": True, "eps": 1e-6}
    assert target.name == "torch.optim.RAdam(decoupled_weight_decay=True, eps=1e-6)"


def test_module_means_every_optimizer_subclass_in_it():
    names = [t.name for t in parse_target("decaylab")]
    assert names == ["decaylab.AdamW", "decaylab.DecayWrapper", "decaylab.SGD", "decaylab.SGDW"]
    torch_names = {t.name for t in parse_target("torch.optim")}
    assert "torch.optim.Optimizer" not in torch_names
    assert {"torch.optim.SGD", "torch.optim.AdamW", "torch.optim.LBFGS"} <= torch_names


def test_discover_skips_abstract_and_base_classes_and_duplicates():
    import types

    module = types.ModuleType("fake")
    module.Optimizer = torch.optim.Optimizer
    module.SGD = torch.optim.SGD
    module.AlsoSGD = torch.optim.SGD
    module._Private = torch.optim.Adam
    module.not_a_class = 3
    assert [t.name for t in discover(module)] == ["fake.AlsoSGD"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonexistent_package_xyz", "no module or class of that name can be imported"),
        ("torch.optim.NoSuchOptimizer", "module torch.optim has no attribute 'NoSuchOptimizer'"),
        ("json", "module json contains no torch.optim.Optimizer subclasses"),
        ("torch.optim.lr_scheduler.StepLR", "is a type, not an Optimizer subclass"),
        ("torch.optim.RAdam(True)", "arguments must be keyword=literal pairs"),
        ("torch.optim.RAdam(eps=min)", "arguments must be keyword=literal pairs"),
        ("torch.optim.RAdam(eps=1", "unbalanced parentheses"),
        ("", "empty"),
    ],
)
def test_bad_targets_name_themselves_and_the_allowed_kinds(text, message):
    with pytest.raises(TargetError, match="expected a class path") as info:
        parse_target(text)
    assert message in str(info.value)
    assert repr(text.strip()) in str(info.value)


def test_resolve_checks_everything_before_running_and_dedupes():
    with pytest.raises(TargetError, match="nope_xyz"):
        resolve_targets(["torch.optim.SGD", "nope_xyz"])
    targets, notes = resolve_targets(["torch.optim.SGD", "torch.optim.SGD", "torch.optim"])
    assert [t.name for t in targets].count("torch.optim.SGD") == 1
    assert notes == []
    with pytest.raises(TargetError, match="no target given"):
        resolve_targets([])


def test_installed_covers_every_importable_module():
    targets, _ = resolve_targets([], installed=True)
    modules = {t.name.rsplit(".", 1)[0] for t in targets}
    assert modules <= set(INSTALLED_MODULES)
    assert {"torch.optim", "decaylab"} <= modules
    assert any(t.cls is decaylab.SGDW for t in targets)
    assert len({(t.cls, repr(t.kwargs)) for t in targets}) == len(targets)
