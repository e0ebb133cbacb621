"""The recipe table: optimizers needing a base optimizer, a closure, a model, Hessians, required
hyper-parameters, or that cannot be probed at all."""

from __future__ import annotations

import pytest
import torch

from decaylab.audit import audit_optimizer
from decaylab.audit.recipes import DEFAULT, RECIPES, recipe_for, recipe_key
from decaylab.audit.result import DECOUPLED_L2, NO_DECAY, NOT_PROBED, full_label

pytorch_optimizer = pytest.importorskip("pytorch_optimizer")
torch_optimizer = pytest.importorskip("torch_optimizer")


def test_keys_are_package_and_class_name():
    assert recipe_key(torch.optim.LBFGS) == "torch.LBFGS"
    assert recipe_for(torch.optim.LBFGS).closure
    assert recipe_for(torch.optim.AdamW) is DEFAULT


def test_every_recipe_names_an_existing_class():
    import importlib

    for key in RECIPES:
        package, name = key.split(".")
        module = importlib.import_module("torch.optim" if package == "torch" else package)
        assert hasattr(module, name), key


def test_sam_needs_a_base_class_and_a_closure():
    result = audit_optimizer(pytorch_optimizer.SAM)
    assert result.status == "ok"
    assert result.label == full_label(DECOUPLED_L2, "lr")  # its base, torch.optim.AdamW
    assert "stepped with a closure" in result.recipe


def test_lookahead_wraps_an_instance_and_weakens_the_decay():
    result = audit_optimizer(torch_optimizer.Lookahead)
    assert result.status == "ok"
    assert "wraps torch.optim.AdamW; weight_decay goes to the base" in result.recipe
    assert "repeats every 5 steps" in result.why
    assert 0.4 < result.numbers["net_fraction"] / (0.01 * 0.01) < 0.7  # AdamW alone: 1


def test_hessian_optimizers_get_create_graph_gradients():
    result = audit_optimizer(pytorch_optimizer.AdaHessian)
    assert result.status == "ok"
    assert result.label == full_label(DECOUPLED_L2, "lr")


def test_model_based_and_required_argument_recipes_build():
    assert audit_optimizer(pytorch_optimizer.AdamMini).status == "ok"
    assert audit_optimizer(pytorch_optimizer.Ranger21).status == "ok"


def test_lbfgs_gets_a_closure_and_has_no_strength():
    assert audit_optimizer(torch.optim.LBFGS).kind == NO_DECAY


def test_unprobeable_optimizers_get_a_row_saying_why():
    result = audit_optimizer(pytorch_optimizer.LOMO)
    assert result.kind == NOT_PROBED
    assert "inside the backward pass" in result.why
    assert audit_optimizer(pytorch_optimizer.GSAM).kind == NOT_PROBED
