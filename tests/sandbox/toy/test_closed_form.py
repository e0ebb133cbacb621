"""The closed forms against independent references: 40-digit iteration of the recurrence (mpmath),
numpy's matrix power, DiagonalQuadratic.closed_form, and the seed-2 numbers of DESIGN.md."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from decaylab.models import DiagonalQuadratic
from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.toy.closed_form import (
    CLOSED_FORM_METHODS,
    Recurrence,
    affine_path,
    closed_form_path,
    lucas_u,
    matrix_power_row,
    recurrence_for,
)

mpmath.mp.dps = 40


def reference_path(rec: Recurrence, w0: float, steps: int) -> np.ndarray:
    """The recurrence iterated step by step in 40-digit arithmetic (no closed form involved)."""
    a, k, lr, mu, u, v = (mpmath.mpf(x) for x in (rec.a, rec.k, rec.lr, rec.momentum, rec.u, rec.v))
    w, b = mpmath.mpf(w0), mpmath.mpf(0)
    out = [w]
    for _ in range(steps):
        b = mu * b + k * w + v
        w = a * w - lr * b + u
        out.append(w)
    return np.array([float(x) for x in out])


def assert_close_to_reference(got: np.ndarray, ref: np.ndarray, rtol: float = 1e-12) -> None:
    """Error at step t within rtol * (t+1) * (largest |w| so far): rounding grows at most linearly."""
    envelope = np.maximum.accumulate(np.abs(ref)) + 1e-300
    scaled = np.abs(got - ref) / envelope / np.arange(1, len(ref) + 1)
    assert np.all(np.isfinite(got))
    assert scaled.max() <= rtol, f"worst scaled error {scaled.max():.2e} at step {scaled.argmax()}"


# -- the Lucas sequence and the matrix power ------------------------------------------------------


@pytest.mark.parametrize(
    ("m", "h2"),
    [
        (0.95, 0.01),  # distinct real roots
        (0.95, -0.02),  # complex roots
        (0.9, 0.0),  # a repeated root
        (0.9, 1e-14),  # nearly repeated: the series branch
        (0.9, -1e-14),
        (-0.7, 0.2),  # negative roots
        (0.0, 0.25),  # roots +-0.5
        (0.0, 0.0),  # nilpotent
        (1.0, 1e-6),
    ],
)
def test_lucas_u_matches_its_recurrence_in_high_precision(m: float, h2: float) -> None:
    t = np.arange(0, 400)
    got = lucas_u(m, h2, t)
    two_m, det = mpmath.mpf(2 * m), mpmath.mpf(m) ** 2 - mpmath.mpf(h2)
    ref = [mpmath.mpf(0), mpmath.mpf(1)]
    while len(ref) < len(t):
        ref.append(two_m * ref[-1] - det * ref[-2])
    ref = np.array([float(x) for x in ref])
    radius = max(abs(m) + math.sqrt(abs(h2)), 1e-300)
    envelope = np.maximum(np.abs(ref), t * radius ** np.maximum(t - 1, 0))  # |U_t| <= t * R^(t-1)
    assert np.all(np.abs(got - ref) <= 1e-12 * (1 + t) * envelope + 1e-300)


def test_lucas_u_rejects_negative_t() -> None:
    with pytest.raises(ValueError, match="t: expected integers >= 0"):
        lucas_u(0.5, 0.1, np.array([-1]))


@pytest.mark.parametrize(
    "matrix",
    [
        [[0.9989, -0.009], [0.11, 0.9]],
        [[0.5, -0.3], [1.2, 0.4]],
        [[-0.2, 0.1], [0.3, 0.0]],
        [[1.0, -0.009], [0.0, 0.9]],
    ],
)
def test_matrix_power_row_matches_numpy(matrix: list[list[float]]) -> None:
    matrix = np.array(matrix)
    t = np.arange(0, 60)
    got = matrix_power_row(matrix, t)
    expected = np.array([np.linalg.matrix_power(matrix, int(n))[0] for n in t])
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-14)


# -- affine paths: random recurrences against the 40-digit iteration ------------------------------

recurrences = st.builds(
    Recurrence,
    a=st.one_of(st.just(1.0), st.floats(0.5, 1.0)),
    k=st.floats(0.0, 20.0),
    lr=st.floats(1e-3, 0.1),
    momentum=st.one_of(st.just(0.0), st.floats(0.0, 0.99)),
    u=st.one_of(st.just(0.0), st.floats(-0.01, 0.01)),
    v=st.one_of(st.just(0.0), st.floats(-0.01, 0.01)),
)


@settings(max_examples=60, deadline=None)
@given(rec=recurrences, w0=st.floats(-2.0, 2.0))
def test_affine_path_matches_step_by_step_iteration(rec: Recurrence, w0: float) -> None:
    assert_close_to_reference(affine_path(rec, w0, 200), reference_path(rec, w0, 200))


@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("k", [0.0, 1e-12, 1e-9, 1e-6, 1e-3])
def test_affine_path_stays_exact_on_nearly_flat_coordinates_with_a_constant_push(momentum: float, k: float) -> None:
    """An L1 push on a (nearly) flat coordinate: an eigenvalue is within rounding of 1, where a fixed
    point would be huge and cancel; the geometric sums keep every digit."""
    rec = Recurrence(a=1.0, k=k, lr=0.01, momentum=momentum, u=-1e-3, v=2e-3)
    assert_close_to_reference(affine_path(rec, 1.0, 1000), reference_path(rec, 1.0, 1000))


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_affine_path_near_critical_damping(momentum: float) -> None:
    """Heavy ball at critical damping (a double eigenvalue), where (r1^t - r2^t)/(r1 - r2) cancels."""
    lr = 0.01
    k = (1 - math.sqrt(momentum)) ** 2 / lr * (1 + 1e-10)
    for forcing in (0.0, 1e-3):
        rec = Recurrence(a=1.0, k=k, lr=lr, momentum=momentum, u=forcing)
        assert_close_to_reference(affine_path(rec, 1.0, 500), reference_path(rec, 1.0, 500))


# -- the methods' recurrences and the seed-2 oracle ----------------------------------------------


def test_every_sandbox_method_has_a_closed_form_on_an_sgd_base() -> None:
    assert set(CLOSED_FORM_METHODS) == set(METHODS)
    for name in METHODS:
        assert recurrence_for(name, curvature=0.5, w0=1.0, lr=0.01, strength=0.01) is not None
        assert recurrence_for(name, curvature=0.5, w0=1.0, lr=0.01, strength=0.01, base="adam") is None


def test_unknown_method_is_refused_with_the_valid_names() -> None:
    with pytest.raises(ValueError, match=r"unknown method 'nope'.*coupled_l2"):
        recurrence_for("nope", curvature=1.0, w0=1.0, lr=0.1, strength=0.1)


def seed2_w(method: str, curvature: float, steps: int, momentum: float = 0.0) -> float:
    rec = recurrence_for(method, curvature=curvature, w0=1.0, lr=0.01, strength=0.01, momentum=momentum)
    return float(closed_form_path(rec, 1.0, steps)[-1])


def test_seed2_per_step_factors() -> None:
    for curvature, plain, coupled in ((0.1, 0.999, 0.9989), (2.0, 0.98, 0.9799)):
        assert seed2_w("none", curvature, 1) == pytest.approx(plain, abs=1e-15)
        assert seed2_w("coupled_l2", curvature, 1) == pytest.approx(coupled, abs=1e-15)


def test_seed2_after_100_and_1000_steps() -> None:
    assert seed2_w("coupled_l2", 0.1, 100) == pytest.approx(0.8957799, abs=5e-8)
    assert seed2_w("coupled_l2", 2.0, 100) == pytest.approx(0.1312731, abs=5e-8)
    assert seed2_w("none", 0.1, 100) == pytest.approx(0.9047921, abs=5e-8)
    assert seed2_w("none", 2.0, 100) == pytest.approx(0.1326196, abs=5e-8)
    assert seed2_w("coupled_l2", 0.1, 1000) == pytest.approx(0.3326696, abs=5e-8)
    assert seed2_w("none", 0.1, 1000) == pytest.approx(0.3676954, abs=5e-8)


def test_seed2_momentum_separates_coupled_from_decoupled() -> None:
    assert seed2_w("coupled_l2", 0.1, 200, momentum=0.9) == pytest.approx(0.09464, abs=5e-6)
    assert seed2_w("decoupled_l2", 0.1, 200, momentum=0.9) == pytest.approx(0.11773, abs=5e-6)
    # without momentum decoupled (s = lr) and coupled are the same recurrence
    assert seed2_w("decoupled_l2", 0.1, 200) == pytest.approx(seed2_w("coupled_l2", 0.1, 200), rel=1e-14)


def test_agrees_with_diagonal_quadratic_closed_form() -> None:
    model = DiagonalQuadratic(init=(1.0, -0.5), curvatures=(0.5, 2.0))  # values exact in float32
    expected = model.closed_form(300, lr=0.01, coupled_weight_decay=0.25)
    for w0, c, want in zip((1.0, -0.5), (0.5, 2.0), expected, strict=True):
        rec = recurrence_for("coupled_l2", curvature=c, w0=w0, lr=0.01, strength=0.25)
        assert closed_form_path(rec, w0, 300)[-1] == pytest.approx(want, rel=1e-12)


def test_scale_conventions_set_the_decoupled_factor() -> None:
    by_scale = {
        scale: recurrence_for("decoupled_l2", curvature=1.0, w0=1.0, lr=0.1, strength=0.2, scale=scale).a
        for scale in ("lr", "schedule", "none")
    }
    assert by_scale == {"lr": pytest.approx(0.98), "schedule": pytest.approx(0.8), "none": pytest.approx(0.8)}


# -- where the L1 closed forms stop ---------------------------------------------------------------


def test_sign_l1_is_exact_until_the_sign_flips_then_undefined() -> None:
    rec = recurrence_for("l1", curvature=2.0, w0=0.2, lr=0.05, strength=0.1)  # s = lr: push 0.005 per step
    path = closed_form_path(rec, 0.2, 40)
    affine = affine_path(rec, 0.2, 40)
    first_flip = int(np.flatnonzero(affine <= 0)[0])
    assert 0 < first_flip < 40
    np.testing.assert_array_equal(path[: first_flip + 1], affine[: first_flip + 1])  # the flipped value is still exact
    assert np.isnan(path[first_flip + 1 :]).all()


def test_proximal_l1_without_momentum_reaches_zero_and_stays() -> None:
    rec = recurrence_for("proximal_l1", curvature=2.0, w0=-0.2, lr=0.05, strength=0.1)
    path = closed_form_path(rec, -0.2, 60)
    zero_from = int(np.flatnonzero(path == 0.0)[0])
    assert 0 < zero_from < 60
    assert (path[:zero_from] < 0).all()
    assert (path[zero_from:] == 0.0).all()


def test_proximal_l1_with_momentum_is_exact_up_to_the_first_zero() -> None:
    rec = recurrence_for("proximal_l1", curvature=2.0, w0=0.2, lr=0.05, strength=0.1, momentum=0.5)
    path = closed_form_path(rec, 0.2, 60)
    zero_at = int(np.flatnonzero(path == 0.0)[0])
    assert np.isfinite(path[: zero_at + 1]).all()
    assert np.isnan(path[zero_at + 1 :]).all()


def test_proximal_l1_overshooting_the_threshold_band_has_no_closed_form_after() -> None:
    """lr*c > 1 flips the sign in the gradient step itself, beyond the threshold: not covered."""
    rec = recurrence_for("proximal_l1", curvature=150.0, w0=1.0, lr=0.01, strength=0.01)  # r = -0.5
    path = closed_form_path(rec, 1.0, 10)
    assert path[0] == 1.0
    assert np.isnan(path[1:]).all()


def test_linear_rules_are_always_exact() -> None:
    for name in ("none", "coupled_l2", "decoupled_l2", "penalty_l2", "toward_reference"):
        rec = recurrence_for(name, curvature=2.0, w0=0.3, lr=0.05, strength=0.1, momentum=0.9)
        assert rec.validity == "always"
        assert np.isfinite(closed_form_path(rec, 0.3, 500)).all()
