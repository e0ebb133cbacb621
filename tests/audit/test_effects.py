"""compute_effect on hand-made trajectories, and the Effect summaries."""

from __future__ import annotations

import numpy as np
import pytest

from decaylab.audit.effects import compute_effect, same
from decaylab.audit.probe import Experiment, Trajectory
from decaylab.audit.settings import WEIGHTS, ProbeSettings

SETTINGS = ProbeSettings()
EXP = Experiment(0.01, 0.01)


def trajectory(rows: list[np.ndarray]) -> Trajectory:
    return Trajectory(np.array(rows), None, np.full(len(rows) - 1, 0.01))


def geometric(factor: float, steps: int = SETTINGS.steps, start: np.ndarray | None = None) -> Trajectory:
    w = np.array(WEIGHTS) if start is None else start
    return trajectory([w * factor**t for t in range(steps + 1)])


def test_decoupled_l2_against_a_still_twin():
    effect = compute_effect(geometric(0.999), geometric(1.0), EXP, SETTINGS)
    assert effect.ok
    assert effect.tail_kind() == "l2"
    assert effect.magnitude() == pytest.approx(1e-3)
    assert effect.tail_is_steady()
    assert effect.onset() == 1
    assert effect.history() == "l2 (steps 1-12)"
    assert effect.net_fraction == pytest.approx(1e-3)


def test_the_plain_update_is_subtracted():
    """A run that also moves by the gradient: only the difference with its twin is the decay."""
    drift = np.linspace(-1, 1, len(WEIGHTS)) * 1e-2
    twin = trajectory([np.array(WEIGHTS) - t * drift for t in range(SETTINGS.steps + 1)])
    rows = [np.array(WEIGHTS)]
    for _ in range(SETTINGS.steps):
        rows.append(rows[-1] * (1 - 1e-3) - drift)
    effect = compute_effect(trajectory(rows), twin, EXP, SETTINGS)
    assert effect.tail_kind() == "l2"
    assert effect.magnitude() == pytest.approx(1e-3, rel=1e-9)


def test_an_error_in_either_run_is_kept():
    broken = Trajectory(np.zeros((2, len(WEIGHTS))), None, np.zeros(1), error="step 1: ValueError: x")
    effect = compute_effect(broken, geometric(1.0), EXP, SETTINGS)
    assert not effect.ok
    assert effect.error == "step 1: ValueError: x"
    assert "without decay" in compute_effect(geometric(1.0), broken, EXP, SETTINGS).error


def test_late_onset_history_and_period():
    w = np.array(WEIGHTS)
    rows = [w]
    for t in range(1, SETTINGS.steps + 1):
        factor = 1.0 if t <= 2 else (1.02 if t % 3 == 0 else 0.99)
        rows.append(rows[-1] * factor)
    effect = compute_effect(trajectory(rows), geometric(1.0), EXP, SETTINGS)
    assert effect.onset() == 3
    assert effect.history() == "none (steps 1-2), l2 (steps 3-12)"
    assert effect.period() == 3
    assert not effect.tail_is_steady()


def test_same_is_relative():
    assert same(1.0, 1.015)
    assert not same(1.0, 1.03)
    assert same(0.0, 0.0)
