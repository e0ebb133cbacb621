"""The probe's constants: the weights cover every case, and bad plans are refused by name."""

from __future__ import annotations

import pytest

from decaylab.audit.settings import WEIGHTS, ProbeSettings


def test_weights_are_large_unit_zero_and_small_of_both_signs_and_sum_to_zero():
    assert {10.0, -10.0, 3.0, -3.0, 1.0, -1.0, 0.0} <= set(WEIGHTS)
    assert min(abs(w) for w in WEIGHTS if w) == 5e-6
    assert sum(WEIGHTS) == 0.0


def test_every_threshold_has_small_weights_below_it():
    s = ProbeSettings()
    thresholds = [lr * wd for lr in s.lrs for wd in s.strengths] + list(s.strengths)
    for t in thresholds:
        assert sum(1 for w in WEIGHTS if 0 < abs(w) < 0.9 * t) >= 2
        assert all(abs(abs(w) / t - 1) > 0.1 for w in WEIGHTS if w)


def test_ratios():
    s = ProbeSettings()
    assert (s.lr_ratio, s.strength_ratio) == (pytest.approx(3.0), pytest.approx(3.0))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"switch": 11}, "switch: expected 0 < switch <= steps - tail"),
        ({"switch": 0}, "switch: expected 0 < switch <= steps - tail"),
        ({"lrs": (0.03, 0.01)}, "lrs: expected two increasing positive numbers"),
        ({"strengths": (0.0, 0.01)}, "strengths: expected two increasing positive numbers"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        ProbeSettings(**kwargs)
