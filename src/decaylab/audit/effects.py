"""The decay's effect in one experiment: the run with ``weight_decay = lam`` against its twin at 0.

For step ``t`` the decay's move is

    e_t = (w_t - w_{t-1})  -  (w0_t - w0_{t-1})

(``w``: the run with decay, ``w0``: the twin without), fitted by :func:`decaylab.audit.shapes.fit_step`
against the pre-step weights ``w_{t-1}``. When that fails and the gradient moved the twin, the fit
is tried again against ``w_{t-1} + (w0_t - w0_{t-1})``, the weights after the plain update: a
proximal rule acts there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import groupby

import numpy as np
import torch

from decaylab.audit.builder import Knobs, Target
from decaylab.audit.probe import DTYPES, Experiment, Trajectory, run_experiment
from decaylab.audit.settings import ProbeSettings
from decaylab.audit.shapes import StepShape, fit_step, rounding_noise

MAGNITUDE_RTOL = 0.02
"""Two magnitudes are 'the same' within this relative difference."""


@dataclass
class Effect:
    """Per-step shapes of the decay's move in one experiment (empty with an error)."""

    exp: Experiment
    shapes: list[StepShape]
    tail: int
    error: str | None = None
    moves: np.ndarray | None = None
    """The decay's move ``e_t`` of every weight at every step (steps x weights)."""
    before: np.ndarray | None = None
    """The weights before each step (steps x weights)."""
    net_fraction: float = float("nan")
    """``1 - (w_T / w0_T) ** (1/T)`` for the largest weight: the average fraction removed per step."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def moved(self) -> bool:
        return any(s.kind != "none" for s in self.shapes)

    def tail_shapes(self) -> list[StepShape]:
        return self.shapes[-self.tail :]

    def tail_kind(self) -> str | None:
        """The kind shared by every tail step, or None when they differ."""
        kinds = {s.kind for s in self.tail_shapes()}
        return kinds.pop() if len(kinds) == 1 else None

    def magnitude(self) -> float:
        """Mean magnitude over the tail steps."""
        return float(np.mean([s.magnitude for s in self.tail_shapes()]))

    def magnitudes(self) -> list[float]:
        return [s.magnitude for s in self.shapes]

    def tail_is_steady(self) -> bool:
        values = [s.magnitude for s in self.tail_shapes()]
        return same(min(values), max(values))

    def period(self) -> int | None:
        """The smallest p such that the per-step magnitudes repeat every p steps.

        The repetition may start up to two steps after the onset (a wrapper's first cycle can be
        one step longer) and must cover two full periods.
        """
        mags = self.magnitudes()
        onset = (self.onset() or 1) - 1
        for p in range(2, len(mags) // 2 + 1):
            for start in range(onset, onset + 3):
                pairs = [(mags[t], mags[t + p]) for t in range(start, len(mags) - p)]
                if len(pairs) >= p and all(same(a, b) for a, b in pairs):
                    return p
        return None

    def below(self) -> str:
        """What weights smaller than the sign step did, over every step: crosses / zeros / mixed / ''."""
        seen = {s.below for s in self.shapes if s.kind == "sign" and s.below}
        if not seen:
            return ""
        return seen.pop() if len(seen) == 1 else "mixed"

    def mid_follows(self) -> bool:
        return all(s.mid_follows for s in self.shapes if s.kind == "sign")

    def history(self) -> str:
        """Run-length summary of the kinds, e.g. ``l2 (steps 1-5), sign (steps 6-12)``."""
        parts, step = [], 1
        for kind, group in groupby(s.kind for s in self.shapes):
            count = len(list(group))
            last = step + count - 1
            parts.append(f"{kind} (step{'s' if count > 1 else ''} {step}{f'-{last}' if count > 1 else ''})")
            step = last + 1
        return ", ".join(parts)

    def onset(self) -> int | None:
        """First step (1-based) with a non-zero decay move."""
        for i, s in enumerate(self.shapes):
            if s.kind != "none":
                return i + 1
        return None

    def tail_move(self, index: int) -> float:
        """Mean decay move of weight ``index`` over the tail steps."""
        if self.moves is None:
            return float("nan")
        return float(np.mean(self.moves[-self.tail :, index]))

    def l2_fraction(self) -> float:
        """``a`` of ``e = -a * w`` fitted on the largest weights only (within 10x of the largest), tail steps."""
        if self.moves is None or self.before is None:
            return float("nan")
        x, e = self.before[-self.tail :], self.moves[-self.tail :]
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(e))):
            return float("nan")
        large = np.abs(x) >= 0.1 * np.max(np.abs(x), axis=1, keepdims=True)
        large &= x != 0
        return float(np.median(-e[large] / x[large])) if large.any() else float("nan")

    def other_detail(self) -> str:
        for s in reversed(self.shapes):
            if s.detail:
                return s.detail
        return ""


def same(a: float, b: float, rtol: float = MAGNITUDE_RTOL) -> bool:
    """``a`` and ``b`` equal within ``rtol`` (relative to the larger)."""
    return abs(a - b) <= rtol * max(abs(a), abs(b)) or a == b


def near_ratio(ratio: float | None, expected: float, rtol: float = 0.05) -> bool:
    return ratio is not None and np.isfinite(ratio) and abs(ratio - expected) <= rtol * expected


def compute_effect(run: Trajectory, twin: Trajectory, exp: Experiment, settings: ProbeSettings) -> Effect:
    """Fit every step's decay move of ``run`` against ``twin`` (its weight_decay = 0 copy)."""
    if not run.ok or not twin.ok:
        return Effect(exp, [], settings.tail, run.error or f"(without decay) {twin.error}")
    eps = float(torch.finfo(DTYPES[exp.dtype]).eps)
    w, w0 = run.weights, twin.weights
    shapes = []
    moves = np.zeros((len(w) - 1, w.shape[1]))
    for t in range(1, len(w)):
        x = w[t - 1]
        plain_move = w0[t] - w0[t - 1]
        e = (w[t] - x) - plain_move
        moves[t - 1] = e
        noise = rounding_noise(x, eps) + rounding_noise(w0[t - 1], eps)
        shape = fit_step(x, e, w[t], noise, x0=w[0])
        if shape.kind == "other" and np.any(np.abs(plain_move) > noise):
            retry = fit_step(x + plain_move, e, w[t], noise)
            if retry.kind not in ("other", "none"):
                shape = retry
        shapes.append(shape)
    net = float("nan")
    if w[-1, 0] > 0 and w0[-1, 0] > 0:
        net = 1.0 - float((w[-1, 0] / w0[-1, 0]) ** (1.0 / (len(w) - 1)))
    return Effect(exp, shapes, settings.tail, moves=moves, before=w[:-1].copy(), net_fraction=net)


class Lab:
    """Runs each experiment of one target once and pairs it with its zero-strength twin."""

    def __init__(self, target: Target, knobs: Knobs, settings: ProbeSettings) -> None:
        self.target = target
        self.knobs = knobs
        self.settings = settings
        self._runs: dict[Experiment, Trajectory] = {}

    def run(self, exp: Experiment) -> Trajectory:
        if exp not in self._runs:
            self._runs[exp] = run_experiment(self.target, self.knobs, self.settings, exp)
        return self._runs[exp]

    def effect(self, exp: Experiment) -> Effect:
        return compute_effect(self.run(exp), self.run(exp.baseline()), exp, self.settings)

    def runs(self) -> Iterator[tuple[Experiment, Trajectory]]:
        yield from self._runs.items()

    @property
    def count(self) -> int:
        return len(self._runs)
