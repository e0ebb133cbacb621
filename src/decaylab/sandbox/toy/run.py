"""The seed-2 experiment, generalized: every chosen method trained on one diagonal quadratic.

Each method starts from the same point on ``loss = sum_i c_i/2 * w_i**2``
(:class:`~decaylab.models.DiagonalQuadratic`) and takes ``steps`` steps of its optimizer, built by
:func:`~decaylab.sandbox.methods.build_method`; one step is ``zero_grad``, ``loss.backward()``,
``step()`` (which adds a penalty method's gradient). The recorded ``loss`` is the quadratic alone
(the data loss the seed prints); a penalty method's own term is recorded separately.
Next to each measured path sits its closed form (:mod:`decaylab.sandbox.toy.closed_form`) where
one exists. With no arguments this is seed 2: no decay vs coupled L2, lr 0.01, lam 0.01, 1000 steps.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from decaylab.models import DiagonalQuadratic
from decaylab.optim._validation import check_nonnegative, check_unit_interval
from decaylab.rules import SCALES
from decaylab.sandbox.common import check_dtype
from decaylab.sandbox.methods import BASES, METHODS, build_method, check_method
from decaylab.sandbox.toy.closed_form import closed_form_path, recurrence_for


@dataclass(frozen=True)
class MethodSpec:
    """A method name and its strength ``lam``."""

    name: str
    strength: float

    @property
    def label(self) -> str:
        return self.name if self.name == "none" else f"{self.name} lam={self.strength:g}"


def parse_methods(text: str, default_strength: float) -> tuple[MethodSpec, ...]:
    """``"none,coupled_l2,l1:0.05"`` -> specs; a name without ``:strength`` gets ``default_strength``."""
    specs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, strength_text = item.partition(":")
        name = name.strip()
        if name not in METHODS:
            raise ValueError(f"methods: unknown method {name!r}; choose from {', '.join(METHODS)}")
        strength = default_strength
        if strength_text:
            try:
                strength = float(strength_text)
            except ValueError:
                raise ValueError(f"methods: strength of {name!r} is not a number: {strength_text!r}") from None
        check_nonnegative(f"methods: strength of {name!r}", strength)
        specs.append(MethodSpec(name, strength))
    if not specs:
        raise ValueError(f"methods: expected at least one method name; choose from {', '.join(METHODS)}")
    labels = [s.label for s in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ValueError(f"methods: listed twice: {', '.join(duplicates)}")
    return tuple(specs)


def _check_finite_list(name: str, values: Sequence[float]) -> tuple[float, ...]:
    values = tuple(float(v) for v in values)
    if not values:
        raise ValueError(f"{name}: expected at least one number")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name}: expected finite numbers, got {list(values)}")
    return values


@dataclass(frozen=True)
class ToyConfig:
    """One toy experiment. Defaults are seed 2's. Every check names the field it rejects."""

    methods: tuple[MethodSpec, ...] = (MethodSpec("none", 0.01), MethodSpec("coupled_l2", 0.01))
    curvatures: tuple[float, ...] = (0.1, 2.0)
    init: tuple[float, ...] = (1.0, 1.0)
    lr: float = 0.01
    steps: int = 1000
    momentum: float = 0.0
    base: str = "sgd"
    scale: str = "lr"
    dtype: str = "float64"

    def __post_init__(self) -> None:
        if not self.methods:
            raise ValueError("methods: expected at least one method")
        for spec in self.methods:
            check_method(spec.name)
            check_nonnegative(f"strength of {spec.name}", spec.strength)
        curvatures = _check_finite_list("curvatures", self.curvatures)
        if any(c < 0 for c in curvatures):
            raise ValueError(f"curvatures: expected numbers >= 0 (a convex quadratic), got {list(curvatures)}")
        init = _check_finite_list("init", self.init)
        if len(init) != len(curvatures):
            raise ValueError(
                f"init: expected one start value per curvature ({len(curvatures)}), got {len(init)}: {list(init)}"
            )
        if check_nonnegative("lr", self.lr) == 0:
            raise ValueError("lr: expected a number > 0, got 0")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps: expected an integer >= 1, got {self.steps!r}")
        check_unit_interval("momentum", self.momentum)
        if self.base not in BASES:
            raise ValueError(f"base: expected one of {', '.join(BASES)}, got {self.base!r}")
        if self.base == "adam" and self.momentum:
            raise ValueError("momentum: only used with base 'sgd' (Adam has its own betas); leave it at 0")
        if self.scale not in SCALES:
            raise ValueError(f"scale: expected one of {', '.join(SCALES)}, got {self.scale!r}")
        check_dtype(self.dtype)
        object.__setattr__(self, "curvatures", curvatures)
        object.__setattr__(self, "init", init)

    @property
    def dim(self) -> int:
        return len(self.curvatures)


def quadratic_loss(curvatures: Sequence[float], weights: np.ndarray) -> np.ndarray:
    """``sum_i c_i/2 * w_i**2`` along the last axis of ``weights`` (inf / NaN for a diverged path, silently)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return 0.5 * (np.asarray(weights) ** 2 * np.asarray(curvatures)).sum(axis=-1)


@dataclass
class ToyPath:
    """One method's measured path (``steps + 1`` rows: the start and after each step) and its closed form.

    ``closed_form`` has the same shape as ``weights`` with NaN where no closed form covers a step,
    or is ``None`` when the method has none at all (``closed_form_note`` says why).
    ``closed_form_rows`` is how many rows (the start included) it covers in every coordinate.
    """

    method: MethodSpec
    weights: np.ndarray
    loss: np.ndarray
    penalty: np.ndarray
    closed_form: np.ndarray | None
    closed_form_note: str
    closed_form_rows: int

    @property
    def diverged(self) -> bool:
        return not bool(np.all(np.isfinite(self.weights)))

    def closed_form_error(self) -> float | None:
        """Largest ``|measured - closed form|`` over every step and coordinate the closed form covers
        (and, in a diverged run, where both are still finite)."""
        if self.closed_form is None:
            return None
        covered = np.isfinite(self.closed_form) & np.isfinite(self.weights)  # a diverged run: finite part
        if not covered.any():
            return None
        return float(np.max(np.abs(self.weights[covered] - self.closed_form[covered])))


@dataclass
class ToyResult:
    config: ToyConfig
    paths: list[ToyPath]


#: why a closed form stops: a sign rule's push flips with sign(w); momentum carries w off a proximal exact 0
_LIMITS = {"until_sign_change": "sign flip", "until_clamp": "at 0, momentum"}


def closed_form_for(config: ToyConfig, spec: MethodSpec) -> tuple[np.ndarray | None, str, int]:
    """The closed-form path of every coordinate (NaN where it does not reach), a note on its reach,
    and how many rows it covers in every coordinate."""
    columns, gaps, rows = [], [], config.steps + 1
    for i, (c, w0) in enumerate(zip(config.curvatures, config.init, strict=True), start=1):
        rec = recurrence_for(
            spec.name,
            curvature=c,
            w0=w0,
            lr=config.lr,
            strength=spec.strength,
            momentum=config.momentum,
            scale=config.scale,
            base=config.base,
        )
        if rec is None:
            return None, f"no closed form: the {config.base} base is not affine", 0
        column = closed_form_path(rec, w0, config.steps)
        if rec.validity != "always":  # (an "always" path may still overflow to inf in a diverging run)
            reach = int(np.isfinite(column).sum())
            if reach <= config.steps:
                gaps.append(f"w_{i} to step {reach - 1} ({_LIMITS[rec.validity]})")
                rows = min(rows, reach)
        columns.append(column)
    note = "all steps" if not gaps else "; ".join(gaps)
    return np.stack(columns, axis=1), note, rows


def run_method(config: ToyConfig, spec: MethodSpec) -> ToyPath:
    """Train ``spec`` for ``config.steps`` steps; record weights, data loss and penalty at every step."""
    dtype = check_dtype(config.dtype)
    model = DiagonalQuadratic(init=config.init, curvatures=config.curvatures, dtype=dtype)
    regularized = build_method(
        spec.name,
        model,
        lr=config.lr,
        strength=spec.strength,
        base=config.base,
        momentum=config.momentum,
        scale=config.scale,
    )
    weights = np.empty((config.steps + 1, config.dim))
    penalty = np.zeros(config.steps + 1)
    params = model.weights
    for t in range(config.steps + 1):
        with torch.no_grad():
            weights[t] = [float(w) for w in params]
            penalty[t] = regularized.penalty_value()
        if t == config.steps:
            break
        regularized.zero_grad()
        model.forward_loss().backward()
        regularized.step()
    closed, note, rows = closed_form_for(config, spec)
    return ToyPath(
        method=spec,
        weights=weights,
        loss=quadratic_loss(config.curvatures, weights),
        penalty=penalty,
        closed_form=closed,
        closed_form_note=note,
        closed_form_rows=rows,
    )


def run_toy(config: ToyConfig) -> ToyResult:
    return ToyResult(config, [run_method(config, spec) for spec in config.methods])


def csv_header(dim: int) -> list[str]:
    weights = [f"w_{i}" for i in range(1, dim + 1)]
    return ["method", "strength", "step", *weights, "loss", "penalty", *(f"closed_form_{w}" for w in weights)]


def write_csv(result: ToyResult, path: Path) -> Path:
    """One row per method and step: the weights, data loss, penalty and the closed-form weights
    (empty where the closed form does not reach)."""
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(csv_header(result.config.dim))
        for p in result.paths:
            for t in range(len(p.weights)):
                closed = (
                    [""] * result.config.dim
                    if p.closed_form is None
                    else ["" if not np.isfinite(v) else repr(float(v)) for v in p.closed_form[t]]
                )
                writer.writerow(
                    [
                        p.method.name,
                        repr(p.method.strength),
                        t,
                        *(repr(float(v)) for v in p.weights[t]),
                        repr(float(p.loss[t])),
                        repr(float(p.penalty[t])),
                        *closed,
                    ]
                )
    return path


def summary_rows(result: ToyResult) -> list[dict[str, object]]:
    """Per method: final weights, final data loss, the closed form's largest error, how many recorded
    rows (start included) it covers in every coordinate, and a note on its reach."""
    rows = []
    for p in result.paths:
        rows.append(
            {
                "method": p.method.name,
                "strength": p.method.strength,
                "final_weights": [float(v) for v in p.weights[-1]],
                "final_loss": float(p.loss[-1]),
                "diverged": p.diverged,
                "closed_form_error": p.closed_form_error(),
                "closed_form_steps": p.closed_form_rows,
                "closed_form": p.closed_form_note,
            }
        )
    return rows
