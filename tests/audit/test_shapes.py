"""fit_step against moves written out by hand for each shape."""

from __future__ import annotations

import numpy as np
import pytest

from decaylab.audit.settings import WEIGHTS
from decaylab.audit.shapes import describe_moves, fit_step, rounding_noise

X = np.array(WEIGHTS)
NOISE = rounding_noise(X, float(np.finfo(np.float64).eps))


def fit(e: np.ndarray, x: np.ndarray = X, x0: np.ndarray | None = None):
    return fit_step(x, e, x + e, rounding_noise(x, float(np.finfo(np.float64).eps)), x0=x0)


def soft_threshold(x: np.ndarray, t: float) -> np.ndarray:
    return np.sign(x) * np.maximum(np.abs(x) - t, 0.0)


def test_no_move_is_none():
    assert fit(np.zeros_like(X)).kind == "none"


@pytest.mark.parametrize("a", [1e-4, 0.01, 0.2])
def test_proportional_move_is_l2_with_its_fraction(a):
    shape = fit(-a * X)
    assert shape.kind == "l2"
    assert shape.magnitude == pytest.approx(a)


def test_implicit_l2_is_l2_too():
    shape = fit(X / 1.01 - X)
    assert shape.kind == "l2"
    assert shape.magnitude == pytest.approx(0.01 / 1.01)


def test_sign_step_carries_small_weights_across_zero():
    c = 1e-3
    shape = fit(-c * np.sign(X))
    assert (shape.kind, shape.below, shape.mid_follows) == ("sign", "crosses", True)
    assert shape.magnitude == pytest.approx(c)


def test_soft_threshold_lands_small_weights_on_exact_zeros():
    t = 1e-3
    shape = fit(soft_threshold(X, t) - X)
    assert (shape.kind, shape.below) == ("sign", "zeros")
    assert shape.magnitude == pytest.approx(t)


def test_same_move_for_every_weight_is_a_shift():
    shape = fit(np.full_like(X, -1e-4))
    assert shape.kind == "shift"
    assert shape.magnitude == pytest.approx(1e-4)


def test_move_back_toward_initial_weights():
    x0 = X
    x = X + np.linspace(-0.05, 0.05, len(X))
    shape = fit(-0.01 * (x - x0), x=x, x0=x0)
    assert shape.kind == "toward_initial"
    assert shape.magnitude == pytest.approx(0.01)


def test_anything_else_is_other_with_the_moves_named():
    shape = fit(-1e-3 * X**3)
    assert shape.kind == "other"
    assert "w=10: -1" in shape.detail


def test_non_finite_values_are_flagged():
    e = -1e-3 * X
    e[0] = np.inf
    assert fit(e).kind == "nonfinite"


def test_sign_steps_that_move_a_zero_weight_are_not_a_sign_decay():
    e = -1e-3 * np.sign(X)
    e[X == 0] = -1e-3
    assert fit(e).kind != "sign"


def test_describe_moves_picks_representative_weights():
    assert describe_moves(X, -0.5 * X) == "w=10: -5, w=1: -0.5, w=0: -0, w=-1: +0.5, w=0.005: -0.0025"
