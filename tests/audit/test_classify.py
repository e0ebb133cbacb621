"""Known answers: synthetic optimizers with one decay each (and deliberate bugs) get the right label.

The synthetic optimizers are documented in :mod:`tests.audit.synthetic`; their decay is written
out there, so the expected label is independent of the audit's code.
"""

from __future__ import annotations

from functools import partial

import pytest

from decaylab.audit import audit_optimizer
from decaylab.audit.result import (
    ADAPTIVE_COUPLED,
    CONSTANT_SHIFT,
    COUPLED_L2,
    DECOUPLED_L2,
    L1_SIGN,
    NO_DECAY,
    OTHER,
    PROXIMAL,
    TOWARD_INITIAL,
    full_label,
)

from .synthetic import Synthetic


def audit(**options: object):
    return audit_optimizer(partial(Synthetic, **options))


@pytest.mark.parametrize(
    ("options", "kind", "scale"),
    [
        ({"decay": "none"}, NO_DECAY, ""),
        ({"decay": "coupled"}, COUPLED_L2, "lr"),
        ({"decay": "coupled", "adam": True}, ADAPTIVE_COUPLED, ""),
        ({"decay": "l2"}, DECOUPLED_L2, "lr"),
        ({"decay": "l2", "scale": "none"}, DECOUPLED_L2, "none"),
        ({"decay": "l2", "scale": "schedule"}, DECOUPLED_L2, "lr/initial_lr"),
        ({"decay": "l2", "scale": "constructor"}, DECOUPLED_L2, "initial lr"),
        ({"decay": "l2", "adam": True}, DECOUPLED_L2, "lr"),
        ({"decay": "l1"}, L1_SIGN, "lr"),
        ({"decay": "l1", "scale": "none"}, L1_SIGN, "none"),
        ({"decay": "l1", "scale": "schedule"}, L1_SIGN, "lr/initial_lr"),
        ({"decay": "prox"}, PROXIMAL, "lr"),
        ({"decay": "prox", "scale": "none"}, PROXIMAL, "none"),
        ({"decay": "prox", "scale": "schedule"}, PROXIMAL, "lr/initial_lr"),
        ({"decay": "prox", "adam": True}, PROXIMAL, "lr"),
        ({"decay": "shift"}, CONSTANT_SHIFT, "lr"),
        ({"decay": "shift", "scale": "none"}, CONSTANT_SHIFT, "none"),
        ({"decay": "toward"}, TOWARD_INITIAL, "lr"),
        ({"decay": "cubic"}, OTHER, ""),
    ],
)
def test_each_label_comes_out_right(options, kind, scale):
    result = audit(**options)
    assert (result.kind, result.scale) == (kind, scale), result.why
    assert result.label == full_label(kind, scale)
    assert result.status == "ok"


def test_strength_multiplier_is_one_for_correct_decays_and_reasons_carry_the_ratios():
    result = audit(decay="l2")
    assert result.strength_multiplier == pytest.approx(1.0, rel=1e-6)
    assert result.numbers["ratio_strength"] == pytest.approx(3.0, rel=1e-6)
    assert result.numbers["ratio_lr"] == pytest.approx(3.0, rel=1e-6)
    assert result.numbers["ratio_schedule"] == pytest.approx(3.0, rel=1e-6)
    assert "weight_decay x3 → a x3" in result.why
    assert result.form == "w·(1 - lr·wd)"
    assert result.surprises == []


def test_not_scaled_by_lr_and_scaled_by_the_schedule_differ_only_under_a_scheduler():
    flat, schedule = audit(decay="l2", scale="none"), audit(decay="l2", scale="schedule")
    assert flat.numbers["ratio_lr"] == pytest.approx(1.0) == schedule.numbers["ratio_lr"]
    assert flat.numbers["ratio_schedule"] == pytest.approx(1.0)
    assert schedule.numbers["ratio_schedule"] == pytest.approx(3.0)


def test_coupled_l2_is_told_from_decoupled_by_the_momentum():
    coupled, decoupled = audit(decay="coupled"), audit(decay="l2")
    assert coupled.momentum == "yes"
    assert decoupled.momentum == "no"
    assert "it enters the momentum" in coupled.why


def test_adaptive_coupled_is_a_sign_step_of_size_lr_independent_of_the_strength():
    result = audit(decay="coupled", adam=True)
    assert result.numbers["step_over_lr"] == pytest.approx(1.0, rel=0.01)
    assert result.numbers["ratio_strength"] == pytest.approx(1.0, rel=0.01)
    assert result.numbers["move_w10_grad_1"] < result.numbers["move_w10_grad_0.1"] < result.numbers["magnitude"]


def test_proximal_and_sign_differ_on_the_small_weights():
    assert "exactly 0" in audit(decay="prox").why
    assert "cross zero" in audit(decay="l1").why


def test_bug_decay_applied_twice_shows_as_twice_the_strength():
    result = audit(decay="l2", twice=True)
    assert result.kind == DECOUPLED_L2
    assert result.strength_multiplier == pytest.approx(2.0, rel=1e-3)
    assert result.form == "w·(1 - lr·wd) applied 2 times"
    assert any("2x the nominal" in s for s in result.surprises)


def test_bug_decay_skipped_in_the_foreach_path_only():
    result = audit(decay="l2", skip_in_foreach=True)
    assert result.label == full_label(DECOUPLED_L2, "lr")
    assert "foreach=True: no decay" in result.paths
    assert "foreach=False: same" in result.paths
    assert any("foreach=True path gives no decay" in s for s in result.surprises)


def test_bug_decay_on_params_with_no_grad():
    result = audit(decay="l2", decay_no_grad=True)
    assert result.no_grad == "decayed"
    assert any("no gradient" in s for s in result.surprises)
    assert audit(decay="l2").no_grad == "not touched"


def test_a_strength_argument_without_effect_is_surprising():
    result = audit(decay="none")
    assert result.kind == NO_DECAY
    assert result.surprises == ["has a weight_decay argument, but it changes nothing in these probes"]


def test_other_reports_the_measured_moves():
    result = audit(decay="cubic")
    assert "fits no standard shape" in result.why
    assert "moves at step 12: w=" in result.why
