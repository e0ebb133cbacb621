"""Run one experiment: build the optimizer on the known weights, feed it known gradients, record.

Gradients are injected, never computed from a loss, so the same gradient sequence reaches the run
with ``weight_decay = lam`` and its twin with ``weight_decay = 0``; the difference of their moves is
the decay's own effect. The gradient at step ``t`` (1-based) for weight ``i`` is

    g[t, i] = scale * s_t * u_i,   s_t = 2 (t odd), -1 (t even),   u_i = (+, +, -, -)[i mod 4] * (1 + (i mod 3) / 2)

(zero when ``scale = 0``): it fluctuates, so Adam-like moments do not lock onto its sign; it
drifts, so a decay toward the initial weights has something to pull back; and its signs are not
those of the weights (which alternate), so the drift never looks like a move toward or away from 0. Optimizers that need
Hessian-vector products get the same gradient from the loss
``sum(g * w) + h/2 * sum((w - w.detach())**2)``, whose Hessian is the constant ``h``.

The probed parameter is a one-row matrix (shape ``(1, n)``): optimizers that only handle matrices
(Muon) accept it, and per-row statistics (gradient centralization, factored second moments) see
all ``n`` weights together, with mean zero, as they would in a layer.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from decaylab.audit.builder import Knobs, Target, build_optimizer, momentum_value
from decaylab.audit.settings import NO_GRAD_WEIGHTS, WEIGHTS, ProbeSettings

DTYPES = {"float64": torch.float64, "float32": torch.float32}


@dataclass(frozen=True)
class Experiment:
    """One probe configuration (hashable, so each runs once per audit)."""

    lr: float
    strength: float | None
    """``None``: the optimizer's default strength (nothing passed)."""
    grad_scale: float = 0.0
    momentum: bool = False
    """True: the toggled momentum setting (see :func:`decaylab.audit.builder.momentum_value`)."""
    lr_factor: float | None = None
    """An LR scheduler multiplies lr by this after ``settings.switch`` steps."""
    no_grad_param: bool = False
    path: tuple[tuple[str, Any], ...] = ()
    dtype: str = "float64"

    def baseline(self) -> Experiment:
        """The same experiment with ``weight_decay = 0``."""
        return replace(self, strength=0.0)


@dataclass
class Trajectory:
    """Weights after each step (row 0: initial), lr used at each step, and the error if one was raised."""

    weights: np.ndarray
    no_grad: np.ndarray | None
    lrs: np.ndarray
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def gradient_pattern(n: int) -> np.ndarray:
    """``u_i = (+, +, -, -)[i mod 4] * (1 + (i mod 3) / 2)``."""
    i = np.arange(n)
    return np.where(i % 4 < 2, 1.0, -1.0) * (1.0 + (i % 3) / 2.0)


def gradient_at(step: int, scale: float, pattern: torch.Tensor) -> torch.Tensor:
    """``scale * s_t * u`` with ``s_t = 2`` for odd ``step``, ``-1`` for even."""
    return pattern * (scale * (2.0 if step % 2 == 1 else -1.0))


def _describe_error(stage: str, error: BaseException) -> str:
    message = " ".join(str(error).split())
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{stage}: {type(error).__name__}: {message}"


class _GradientFeeder:
    """Sets ``.grad`` of the probed parameter (directly, or through a loss for create_graph)."""

    def __init__(self, param: nn.Parameter, create_graph: bool, hessian: float) -> None:
        self.param = param
        self.create_graph = create_graph
        self.hessian = hessian
        self.current = torch.zeros_like(param)

    def set(self, grad: torch.Tensor) -> None:
        self.current = grad

    def feed(self) -> torch.Tensor:
        p, g = self.param, self.current
        if self.create_graph:
            p.grad = None
            with torch.enable_grad():
                loss = (g * p).sum() + 0.5 * self.hessian * ((p - p.detach()) ** 2).sum()
                loss.backward(create_graph=True)
            return loss.detach()
        p.grad = g.clone()
        with torch.no_grad():
            return (g * p).sum()


def run_experiment(target: Target, knobs: Knobs, settings: ProbeSettings, exp: Experiment) -> Trajectory:
    """Run ``exp`` for ``settings.steps`` steps; never raises (errors end up in ``Trajectory.error``)."""
    dtype = DTYPES[exp.dtype]
    n, steps = len(WEIGHTS), settings.steps
    weights = np.full((steps + 1, n), np.nan)
    no_grad = np.full((steps + 1, len(NO_GRAD_WEIGHTS)), np.nan) if exp.no_grad_param else None
    lrs = np.full(steps, np.nan)
    torch.manual_seed(0)
    main = nn.Parameter(torch.tensor(WEIGHTS, dtype=dtype).reshape(1, n))
    params = [main]
    extra = None
    if exp.no_grad_param:
        extra = nn.Parameter(torch.tensor(NO_GRAD_WEIGHTS, dtype=dtype).reshape(1, -1))
        params.append(extra)

    def record(row: int) -> None:
        weights[row] = main.detach().double().reshape(-1).numpy()
        if extra is not None and no_grad is not None:
            no_grad[row] = extra.detach().double().reshape(-1).numpy()

    record(0)
    pattern = torch.tensor(gradient_pattern(n), dtype=dtype).reshape(1, n)
    feeder = _GradientFeeder(main, target.recipe.create_graph, settings.hessian)
    stage = "constructor"
    sink = io.StringIO()
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            warnings.simplefilter("ignore")
            optimizer = build_optimizer(
                target,
                knobs,
                params,
                lr=exp.lr,
                strength=exp.strength,
                momentum=momentum_value(knobs, exp.momentum, settings.momentum),
                path=dict(exp.path),
            )
            scheduler = None
            if exp.lr_factor is not None:
                stage = "LR scheduler"
                factor, switch = exp.lr_factor, settings.switch
                scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda k: 1.0 if k < switch else factor)
            for t in range(1, steps + 1):
                stage = f"step {t}"
                feeder.set(gradient_at(t, exp.grad_scale, pattern) if exp.grad_scale else torch.zeros_like(main))
                lr = optimizer.param_groups[0].get("lr", math.nan)
                lrs[t - 1] = float(lr) if isinstance(lr, int | float | torch.Tensor) else math.nan
                feeder.feed()
                if target.recipe.closure:
                    optimizer.step(feeder.feed)
                else:
                    optimizer.step()
                record(t)
                if scheduler is not None:
                    scheduler.step()
    except Exception as error:  # the audit reports any failure of third-party code as a row
        return Trajectory(weights, no_grad, lrs, _describe_error(stage, error))
    return Trajectory(weights, no_grad, lrs)
