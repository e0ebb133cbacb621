from __future__ import annotations

import pytest

from decaylab.rules import SCALES, decay_scale


def test_each_convention() -> None:
    assert decay_scale("lr", 0.05, 0.1) == 0.05
    assert decay_scale("schedule", 0.05, 0.1) == pytest.approx(0.5)
    assert decay_scale("none", 0.05, 0.1) == 1.0


def test_schedule_and_none_coincide_at_constant_lr() -> None:
    assert decay_scale("schedule", 0.1, 0.1) == decay_scale("none", 0.1, 0.1) == 1.0


def test_unknown_convention_names_the_argument_and_the_choices() -> None:
    with pytest.raises(ValueError, match=r"scale: expected one of 'lr', 'schedule', 'none', got 'paper'"):
        decay_scale("paper", 0.1, 0.1)
    assert SCALES == ("lr", "schedule", "none")


def test_schedule_with_zero_initial_lr_is_an_error() -> None:
    with pytest.raises(ValueError, match="initial_lr is 0"):
        decay_scale("schedule", 0.1, 0.0)
