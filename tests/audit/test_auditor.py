"""Known answers on real optimizers: torch.optim, the third-party anchors and decaylab's own.

Expected labels come from the libraries' documented semantics and the seed notebook (torch_optimizer
0.3.0's SGDW shifts every weight by lr*wd), never from the audit's output.
"""

from __future__ import annotations

from functools import partial

import pytest
import torch

import decaylab
from decaylab.audit import audit_optimizer
from decaylab.audit.result import (
    ADAPTIVE_COUPLED,
    CONSTANT_SHIFT,
    COUPLED_L2,
    DECOUPLED_L2,
    L1_SIGN,
    NO_DECAY,
    NOT_PROBED,
    OTHER,
    PROXIMAL,
    TOWARD_INITIAL,
    full_label,
)
from decaylab.rules import RULES, SCALES

torch_optimizer = pytest.importorskip("torch_optimizer")
pytorch_optimizer = pytest.importorskip("pytorch_optimizer")


def test_torch_sgd_is_coupled_l2():
    result = audit_optimizer(torch.optim.SGD)
    assert result.label == COUPLED_L2
    assert result.momentum == "yes"
    assert result.strength_multiplier == pytest.approx(1.0, rel=1e-6)
    assert result.no_grad == "not touched"
    assert result.default_strength == "0"
    assert result.decays_by_default is False


def test_torch_adam_is_adaptive_coupled_a_sign_step_of_size_lr():
    result = audit_optimizer(torch.optim.Adam)
    assert result.label == ADAPTIVE_COUPLED
    assert result.numbers["step_over_lr"] == pytest.approx(1.0, rel=0.01)
    assert result.numbers["ratio_strength"] == pytest.approx(1.0, rel=0.01)
    assert result.numbers["ratio_lr"] == pytest.approx(3.0, rel=0.02)


def test_torch_adamw_is_decoupled_and_scaled_by_lr():
    result = audit_optimizer(torch.optim.AdamW)
    assert result.label == full_label(DECOUPLED_L2, "lr")
    assert result.strength_multiplier == pytest.approx(1.0, rel=1e-6)
    assert result.momentum == "no"
    assert result.no_grad == "not touched"
    assert (result.default_strength, result.decays_by_default) == ("0.01", True)
    assert "foreach=True: same" in result.paths
    assert "fused=True: same" in result.paths
    assert result.surprises == []


def test_torch_rmsprop_couples_its_decay_into_the_normalised_gradient():
    result = audit_optimizer(torch.optim.RMSprop)
    assert result.label == ADAPTIVE_COUPLED
    assert result.momentum == "yes"


@pytest.mark.parametrize("cls", [torch.optim.NAdam, torch.optim.RAdam])
def test_nadam_radam_without_and_with_decoupled_weight_decay(cls):
    assert audit_optimizer(cls).label == ADAPTIVE_COUPLED
    decoupled = audit_optimizer(partial(cls, decoupled_weight_decay=True))
    assert decoupled.label == full_label(DECOUPLED_L2, "lr")
    assert decoupled.strength_multiplier == pytest.approx(1.0, rel=1e-6)


def test_radam_is_judged_after_its_unrectified_first_steps():
    result = audit_optimizer(torch.optim.RAdam)
    assert result.label == ADAPTIVE_COUPLED
    assert any("l2 (steps 1-5), sign (steps 6-12)" in note for note in result.notes)


def test_torch_optimizer_sgdw_is_a_constant_shift_of_lr_times_wd():
    result = audit_optimizer(torch_optimizer.SGDW)
    assert result.label == full_label(CONSTANT_SHIFT, "lr")
    assert result.numbers["magnitude"] == pytest.approx(0.01 * 0.01, rel=1e-6)
    assert result.surprising


def test_traps_lamb_trust_ratio_adams_zero_second_moment_adan_proximal_form():
    lamb = audit_optimizer(torch_optimizer.Lamb)
    assert lamb.kind == OTHER
    assert "not proportional to weight_decay" in lamb.why
    adams = audit_optimizer(pytorch_optimizer.AdamS)
    assert adams.kind == OTHER
    assert "changes with the gradient" in adams.why
    adan = audit_optimizer(pytorch_optimizer.Adan)
    assert adan.label == full_label(DECOUPLED_L2, "lr")
    assert adan.form == "w/(1 + lr·wd)"


def test_pytorch_optimizer_sgdw_is_decoupled_scaled_by_lr():
    assert audit_optimizer(pytorch_optimizer.SGDW).label == full_label(DECOUPLED_L2, "lr")


def test_decaylab_sgd_is_coupled():
    assert audit_optimizer(decaylab.SGD).label == COUPLED_L2


EXPECTED_KIND = {
    "l2": DECOUPLED_L2,
    "l1": L1_SIGN,
    "proximal_l1": PROXIMAL,
    "elastic_net": DECOUPLED_L2,  # weight_decay drives the L2 part; l1_decay is fixed
    "toward_reference": TOWARD_INITIAL,
}


AUDIT_SCALE = {"lr": "lr", "none": "none", "schedule": "lr/initial_lr"}
"""decaylab's scale names -> the audit's."""


@pytest.mark.parametrize("cls", [decaylab.SGDW, decaylab.AdamW])
@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("scale", SCALES)
def test_decaylab_decoupled_optimizers_under_every_rule_and_scale(cls, rule, scale):
    extra = {"l1_decay": 0.001} if rule == "elastic_net" else {}
    result = audit_optimizer(partial(cls, rule=rule, scale=scale, **extra))
    assert result.label == full_label(EXPECTED_KIND[rule], AUDIT_SCALE[scale]), result.why
    assert result.strength_multiplier == pytest.approx(1.0, rel=1e-3)
    assert result.no_grad == "not touched"


@pytest.mark.parametrize(("rule", "kind"), [("l2", DECOUPLED_L2), ("l1", L1_SIGN), ("proximal_l1", PROXIMAL)])
def test_decay_wrapper_around_adam(rule, kind):
    result = audit_optimizer(partial(decaylab.DecayWrapper, rule=rule))
    assert result.label == full_label(kind, "lr")
    assert "wraps torch.optim.Adam" in result.recipe


def test_optimizers_without_a_strength_argument_are_no_decay_without_running():
    result = audit_optimizer(torch.optim.Rprop)
    assert result.kind == NO_DECAY
    assert "no weight_decay argument" in result.why


def test_a_constructor_that_raises_gives_a_row_saying_why():
    from .synthetic import RaisesInConstructor, RaisesInStep

    built = audit_optimizer(RaisesInConstructor)
    assert built.kind == NOT_PROBED
    assert "constructor: RuntimeError: refuses to be built" in built.why
    stepped = audit_optimizer(RaisesInStep)
    assert stepped.kind == NOT_PROBED
    assert "step 1: ValueError: step exploded" in stepped.why
