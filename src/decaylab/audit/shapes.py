"""What one step of decay did to a vector of known weights: fit the move against the usual shapes.

For one step, ``x`` are the weights before the step and ``e`` the part of the move caused by the
decay (the move with ``weight_decay = lam`` minus the move of the same run with ``weight_decay = 0``).
The shapes tried, in order:

==================  ====================================  =======================================
kind                move ``e``                            magnitude reported
==================  ====================================  =======================================
``none``            0 (within rounding)                   0
``l2``              ``-a * x``                            ``a`` (fraction removed per step)
``sign``            ``-c * sign(x)`` on large weights      ``c`` (size of the step)
``shift``           ``-c`` for every weight, any sign      ``c`` (> 0: every weight moves down)
``toward_initial``  ``-a * (x - x0)``                     ``a``
``nonfinite``       inf / nan appeared                    -
``other``           none of the above                     -
==================  ====================================  =======================================

For ``sign`` the weights smaller than ``c`` tell the variants apart: a sign (L1 subgradient) step
carries them across zero (``below = "crosses"``), a soft threshold (proximal L1) sets them to
exactly 0 (``below = "zeros"``).

Tolerances are relative to the predicted move plus a rounding floor ``noise`` (per weight), so the
fits hold in float64 and float32 alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LARGE = 1.0
"""Weights with ``|w| >= LARGE`` fit the L2 factor."""
BIG = 3.0
"""Weights with ``|w| >= BIG`` fit a sign step (far above any optimizer's eps once scaled by lam)."""
L2_RTOL = 0.05
SIGN_RTOL = 0.15
UNIT_RTOL = 0.35
SHIFT_RTOL = 0.05
ZERO_ATOL = 0.05
"""A sign-shaped decay may move a zero weight by at most this fraction of ``c``."""


@dataclass(frozen=True)
class StepShape:
    """The fitted shape of one step's decay move (see the module docstring for the kinds)."""

    kind: str
    magnitude: float = 0.0
    below: str = ""
    """``sign`` only: what weights smaller than ``c`` did: ``crosses``, ``zeros``, ``mixed`` or ``""`` (none)."""
    mid_follows: bool = True
    """``sign`` only: whether weights between ``c`` and 1 moved by ``c`` too."""
    detail: str = ""


def rounding_noise(x: np.ndarray, eps: float) -> np.ndarray:
    """A per-weight rounding floor: a few dozen ulps of ``max(|x|, 1)``."""
    return 64.0 * eps * np.maximum(np.abs(x), 1.0)


def describe_moves(x: np.ndarray, e: np.ndarray, picks: tuple[int, ...] = (0, 4, 6, 5, 9)) -> str:
    """``w=10: -1e-03, w=1: ...`` for a few representative weights."""
    parts = []
    for i in picks:
        if i < len(x):
            parts.append(f"w={x[i]:.3g}: {e[i]:+.3g}")
    return ", ".join(parts)


def _fit_proportional(d: np.ndarray, e: np.ndarray, noise: np.ndarray, min_abs: float = LARGE) -> float | None:
    """``a`` with ``e = -a * d`` on every weight (fitted on ``|d| >= min_abs``), or None."""
    large = np.abs(d) >= min(min_abs, 0.1 * float(np.max(np.abs(d))))
    if not large.any():
        return None
    a = float(np.median(-e[large] / d[large]))
    if a == 0.0:
        return None
    predicted = -a * d
    if np.all(np.abs(e - predicted) <= L2_RTOL * np.abs(predicted) + noise):
        return a
    return None


def _fit_sign(x: np.ndarray, e: np.ndarray, after: np.ndarray, noise: np.ndarray) -> StepShape | None:
    big = np.abs(x) >= min(BIG, 0.3 * float(np.max(np.abs(x))))
    if not big.any():
        return None
    toward_zero = -e * np.sign(x)
    c = float(np.median(toward_zero[big]))
    if c == 0.0:
        return None
    if not np.all(np.abs(toward_zero[big] - c) <= SIGN_RTOL * abs(c) + noise[big]):
        return None
    unit = (np.abs(x) >= LARGE) & ~big
    if not np.all(np.abs(toward_zero[unit] - c) <= UNIT_RTOL * abs(c) + noise[unit]):
        return None
    zero = x == 0
    if not np.all(np.abs(e[zero]) <= ZERO_ATOL * abs(c) + noise[zero]):
        return None
    small = (x != 0) & (np.abs(x) < 0.9 * abs(c))
    crosses = np.abs(toward_zero - c) <= SIGN_RTOL * abs(c) + noise
    zeros = after == 0
    below = ""
    if small.any():
        if np.all(zeros[small]):
            below = "zeros"
        elif np.all(crosses[small]):
            below = "crosses"
        else:
            below = "mixed"
    mid = (np.abs(x) > 1.1 * abs(c)) & (np.abs(x) < LARGE)
    return StepShape("sign", c, below=below, mid_follows=bool(np.all(crosses[mid])))


def _fit_shift(e: np.ndarray, noise: np.ndarray) -> float | None:
    c = float(np.median(e))
    if c == 0.0 or not np.all(np.abs(e - c) <= SHIFT_RTOL * abs(c) + noise):
        return None
    return -c


def fit_step(
    x: np.ndarray,
    e: np.ndarray,
    after: np.ndarray,
    noise: np.ndarray,
    x0: np.ndarray | None = None,
) -> StepShape:
    """Fit one step's decay move ``e`` of weights ``x`` (``after`` = the weights after the step).

    ``x0`` (the initial weights) enables the ``toward_initial`` shape.
    """
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(e)) and np.all(np.isfinite(after))):
        return StepShape("nonfinite")
    if np.all(np.abs(e) <= noise):
        return StepShape("none")
    a = _fit_proportional(x, e, noise)
    if a is not None:
        return StepShape("l2", a)
    sign = _fit_sign(x, e, after, noise)
    if sign is not None:
        return sign
    shift = _fit_shift(e, noise)
    if shift is not None:
        return StepShape("shift", shift)
    if x0 is not None:
        d = x - x0
        spread = float(np.max(np.abs(d)))
        if np.any(np.abs(d) > 100 * noise):
            a = _fit_proportional(d, e, noise, min_abs=0.5 * spread)
            if a is not None:
                return StepShape("toward_initial", a)
    return StepShape("other", detail=describe_moves(x, e))
