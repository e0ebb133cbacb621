"""An independent float64 reference for every rule and optimizer: plain Python loops over floats.

Nothing here imports decaylab or torch: the formulas are written out again from DESIGN.md, one
element at a time, so the tests compare two implementations that share no code.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any


def sign(x: float) -> float:
    return float((x > 0) - (x < 0))


def scale_value(convention: str, lr: float, initial_lr: float) -> float:
    return {"lr": lr, "schedule": lr / initial_lr if initial_lr else math.nan, "none": 1.0}[convention]


def before_update(rule: str, w: float, s: float, lam: float, w_ref: float) -> float:
    """Decoupled rules acting on the pre-step weight."""
    if rule in ("l2", "elastic_net"):
        return w - s * lam * w
    if rule == "l1":
        return w - s * lam * sign(w)
    if rule == "toward_reference":
        return w - s * lam * (w - w_ref)
    return w


def after_update(rule: str, w: float, s: float, lam: float, lam_l1: float) -> float:
    """Proximal rules acting on the post-step weight: soft threshold."""
    threshold = s * lam if rule == "proximal_l1" else s * lam_l1 if rule == "elastic_net" else 0.0
    if threshold == 0.0:
        return w
    return sign(w) * max(abs(w) - threshold, 0.0)


@dataclass
class ElementState:
    momentum_buffer: float | None = None
    exp_avg: float = 0.0
    exp_avg_sq: float = 0.0
    max_exp_avg_sq: float = 0.0
    step: int = 0


@dataclass
class Group:
    """One param group: flattened params (lists of floats) and its options."""

    params: list[list[float]]
    options: dict[str, Any]
    has_grad: list[bool] = field(default_factory=list)


def sgd_direction(g: float, st: ElementState, momentum: float, dampening: float, nesterov: bool) -> float:
    if momentum == 0:
        return g
    if st.momentum_buffer is None:
        st.momentum_buffer = g
    else:
        st.momentum_buffer = momentum * st.momentum_buffer + (1 - dampening) * g
    return g + momentum * st.momentum_buffer if nesterov else st.momentum_buffer


def adam_update(g: float, st: ElementState, lr: float, beta1: float, beta2: float, eps: float, amsgrad: bool) -> float:
    st.step += 1
    st.exp_avg = beta1 * st.exp_avg + (1 - beta1) * g
    st.exp_avg_sq = beta2 * st.exp_avg_sq + (1 - beta2) * g * g
    st.max_exp_avg_sq = max(st.max_exp_avg_sq, st.exp_avg_sq)
    second = st.max_exp_avg_sq if amsgrad else st.exp_avg_sq
    m_hat = st.exp_avg / (1 - beta1**st.step)
    denominator = math.sqrt(second) / math.sqrt(1 - beta2**st.step) + eps
    return lr * m_hat / denominator


class ReferenceOptimizer:
    """``kind``: "sgd" (SGD with coupled ``coupled_weight_decay`` and/or decoupled rule) or "adam".

    Group options: lr, initial_lr, momentum, dampening, nesterov, maximize, coupled_weight_decay,
    weight_decay, rule, l1_decay, scale, betas, eps, amsgrad. ``references`` mirror params.
    """

    def __init__(self, kind: str, groups: list[Group], references: list[list[list[float]]] | None = None) -> None:
        self.kind = kind
        self.groups = groups
        self.references = references or [[list(p) for p in g.params] for g in groups]
        self.state = [[[ElementState() for _ in p] for p in g.params] for g in groups]

    def step(self, grads: list[list[list[float] | None]]) -> None:
        for gi, group in enumerate(self.groups):
            o = group.options
            for pi, param in enumerate(group.params):
                grad = grads[gi][pi]
                if grad is None:
                    continue
                rule = o.get("rule") or "l2"
                lam = o.get("weight_decay", 0.0)
                s = scale_value(o.get("scale", "lr"), o["lr"], o.get("initial_lr", o["lr"]))
                for ei in range(len(param)):
                    w = param[ei]
                    st = self.state[gi][pi][ei]
                    g = -grad[ei] if o.get("maximize", False) else grad[ei]
                    g = g + o.get("coupled_weight_decay", 0.0) * w
                    w_new = before_update(rule, w, s, lam, self.references[gi][pi][ei]) if lam else w
                    if self.kind == "sgd":
                        d = sgd_direction(
                            g, st, o.get("momentum", 0.0), o.get("dampening", 0.0), o.get("nesterov", False)
                        )
                        w_new = w_new - o["lr"] * d
                    else:
                        beta1, beta2 = o.get("betas", (0.9, 0.999))
                        w_new = w_new - adam_update(
                            g, st, o["lr"], beta1, beta2, o.get("eps", 1e-8), o.get("amsgrad", False)
                        )
                    if lam or o.get("l1_decay", 0.0):
                        w_new = after_update(rule, w_new, s, lam, o.get("l1_decay", 0.0))
                    param[ei] = w_new


@dataclass
class Problem:
    """A random problem: groups of flat params, per-element curvatures, per-step noise.

    The gradient at step t is ``g = c * w + noise[t]`` (a noisy quadratic), computed by each side
    from its own weights, so errors compound as they would in training.
    """

    shapes: list[list[tuple[int, ...]]]
    initial: list[list[list[float]]]
    curvature: list[list[list[float]]]
    noise: list[list[list[list[float]]]]  # [step][group][param][element]
    no_grad: set[tuple[int, int]]

    @staticmethod
    def random(
        seed: int, steps: int, shapes: list[list[tuple[int, ...]]], no_grad: set[tuple[int, int]] = frozenset()
    ) -> Problem:
        rng = random.Random(seed)

        def numel(shape: tuple[int, ...]) -> int:
            return math.prod(shape)

        def start(n: int) -> list[float]:
            values = [rng.gauss(0.0, 1.0) for _ in range(n)]
            values[0] = 0.0  # exact zeros and tiny weights exercise sign / threshold edge cases
            if n > 2:
                values[1] = 1e-3 * rng.choice((-1.0, 1.0))
            return values

        initial = [[start(numel(s)) for s in group] for group in shapes]
        curvature = [[[rng.uniform(0.1, 2.0) for _ in range(numel(s))] for s in group] for group in shapes]
        noise = [
            [[[rng.gauss(0.0, 0.1) for _ in range(numel(s))] for s in group] for group in shapes] for _ in range(steps)
        ]
        return Problem(shapes, initial, curvature, noise, set(no_grad))

    def gradient(self, t: int, gi: int, pi: int, w: list[float]) -> list[float] | None:
        if (gi, pi) in self.no_grad:
            return None
        return [c * x + n for c, x, n in zip(self.curvature[gi][pi], w, self.noise[t][gi][pi], strict=True)]
