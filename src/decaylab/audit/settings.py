"""The numbers every audit probe uses: known weights, two lrs, two strengths, two gradient sizes.

The values are chosen so that every label can be told apart with float64 (and still with float32):

* weights span large (±10, ±3), unit (±1), zero and a ladder of small values (±5e-2 ... ±5e-6), so an
  L2 decay (move ∝ w) differs from a sign decay (same move for ±3 and ±10) and a soft threshold
  (small weights land on exactly 0) differs from a sign step (small weights cross 0);
* ``lr * strength`` is between 1e-4 and 1e-3 (a decay scaled by lr) and ``strength`` between 0.01
  and 0.03 (not scaled): at least two small weights lie under either threshold, and twelve steps of
  any of them keep the large weights well away from 0;
* ``strength * |w| >= 0.03`` on the weights used to fit a sign step, far above the usual eps
  (1e-8 ... 1e-3) of adaptive optimizers, so coupled L2 normalised by a second moment shows as a
  clean sign step of size ~lr;
* the LR scheduler multiplies lr by ``lrs[1] / lrs[0]`` after ``switch`` steps, so "scaled by lr",
  "scaled by lr / initial lr" and "not scaled" give three different ratios across the two probes.
"""

from __future__ import annotations

from dataclasses import dataclass

WEIGHTS: tuple[float, ...] = (
    10.0,
    -10.0,
    3.0,
    -3.0,
    1.0,
    -1.0,
    0.0,
    5e-2,
    -5e-2,
    5e-3,
    -5e-3,
    5e-4,
    -5e-4,
    5e-5,
    -5e-5,
    5e-6,
    -5e-6,
)
"""The probed parameter's initial values (one row of a matrix parameter); they sum to zero."""

NO_GRAD_WEIGHTS: tuple[float, ...] = (2.0, -2.0)
"""Initial values of the extra parameter whose ``.grad`` is never set."""


@dataclass(frozen=True)
class ProbeSettings:
    """The experiment plan's constants.

    ``lrs[1] / lrs[0]`` and ``strengths[1] / strengths[0]`` are the ratios the scale laws are
    checked against; ``grad_scales`` are the sizes of the alternating gradients ``±g`` used to see
    whether the decay depends on the gradient; ``form_factor`` is the per-step factor ``s * lam``
    of the extra probe that tells ``w * (1 - s*lam)`` from ``w / (1 + s*lam)``.
    """

    lrs: tuple[float, float] = (0.01, 0.03)
    strengths: tuple[float, float] = (0.01, 0.03)
    grad_scales: tuple[float, float] = (0.1, 1.0)
    momentum: float = 0.9
    steps: int = 12
    switch: int = 6
    tail: int = 3
    form_factor: float = 0.2
    hessian: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.switch < self.steps - self.tail + 1:
            raise ValueError(
                f"switch: expected 0 < switch <= steps - tail (the tail must lie after the LR switch), "
                f"got switch={self.switch}, steps={self.steps}, tail={self.tail}"
            )
        for name, pair in (("lrs", self.lrs), ("strengths", self.strengths), ("grad_scales", self.grad_scales)):
            if len(pair) != 2 or not 0 < pair[0] < pair[1]:
                raise ValueError(f"{name}: expected two increasing positive numbers, got {pair!r}")

    @property
    def lr_ratio(self) -> float:
        return self.lrs[1] / self.lrs[0]

    @property
    def strength_ratio(self) -> float:
        return self.strengths[1] / self.strengths[0]
