"""One optimizer step for C stacked configurations, each with its own method, strength and lr.

The step is the sandbox's (:func:`decaylab.sandbox.methods.build_method`) written once for all
configurations: every number that differs between configurations is a ``[C, 1]`` coefficient that
broadcasts over the ``[C, P]`` parameter buffer, and a method a configuration does not use has
coefficient 0 there. For gradients ``g`` and weights ``w`` (rows = configurations)::

    g += lam_pen * p * |w|**(p-1) * sign(w)      penalty_l2 (p=2), penalty_l1 (p=1)    add_penalty_grad_
    g~ = g + lam_coupled * w                     coupled_l2                             coupled_l2
    before(w)                                    decoupled rules, factor s*lam          apply_before_update
    w  = w - lr * d(g~)   or  Adam(g~)           the base optimizer, lr per row         sgd_step / adam_step
    after(w)                                     proximal rules, threshold s*lam        apply_after_update

in that order, which is the order :class:`~decaylab.sandbox.methods.Regularized` applies them in
(penalty gradient, then the optimizer's coupled term, decoupled rule, update, proximal rule). Each
configuration has exactly one method, so its row sees exactly its own method's terms: a zero
coefficient leaves a row bit-for-bit unchanged (``w * (1 - 0)``, ``w + 0 * x``, ``lerp(w, r, 0)``,
``w - clamp(w, -0, 0)``). Every term is computed by the functions in :mod:`decaylab.rules`,
:mod:`decaylab.penalty` and :mod:`decaylab.optim.functional` (their per-tensor path accepts
coefficients that broadcast against the parameter); none is written again here.

``s`` is each configuration's scale (:func:`decaylab.rules.decay_scale`) at its current lr; the
products ``s * lam`` are formed in double precision, as the eager optimizers do, before becoming
float32 coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from decaylab.optim.functional import adam_bias_corrections, adam_step, sgd_step
from decaylab.penalty import add_penalty_grad_
from decaylab.rules import apply_after_update, apply_before_update, coupled_l2, decay_scale
from decaylab.sandbox.train import RunConfig


def _column(values: list[float]) -> Tensor:
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)


def _present(values: list[float]) -> Tensor | None:
    """A ``[C, 1]`` coefficient, or ``None`` when it is 0 for every configuration (the term is skipped)."""
    return _column(values) if any(v != 0 for v in values) else None


@dataclass(frozen=True)
class Coefficients:
    """One epoch's per-configuration numbers, each ``[C, 1]`` float32 (``None``: zero everywhere).

    ``decoupled`` maps a rule name (:data:`decaylab.rules.RULES`) to its ``(weight_decay, l1_decay)``
    coefficients, already multiplied by the scale ``s``.
    """

    lr: Tensor
    lr_double: list[float]
    coupled: Tensor | None = None
    penalties: dict[float, Tensor] = field(default_factory=dict)
    decoupled: dict[str, tuple[Tensor, Tensor | None]] = field(default_factory=dict)

    @classmethod
    def build(cls, configs: list[RunConfig], lrs: list[float], initial_lrs: list[float]) -> Coefficients:
        """The coefficients of ``configs`` at learning rates ``lrs`` (``initial_lrs``: for ``scale="schedule"``)."""
        count = len(configs)
        coupled = [0.0] * count
        penalties: dict[float, list[float]] = {}
        rules: dict[str, tuple[list[float], list[float]]] = {}
        for i, (config, lr, initial_lr) in enumerate(zip(configs, lrs, initial_lrs, strict=True)):
            method, lam = config.method_spec, config.strength
            if method.kind == "coupled":
                coupled[i] = lam
            elif method.kind == "penalty" and lam > 0:
                penalties.setdefault(float(method.p or 2.0), [0.0] * count)[i] = lam
            elif method.kind == "decoupled":
                s = decay_scale(config.scale, lr, initial_lr)
                weight_decay, l1_decay = rules.setdefault(method.rule or "l2", ([0.0] * count, [0.0] * count))
                weight_decay[i] = s * lam
                l1_decay[i] = s * lam if method.rule == "elastic_net" else 0.0  # build_method: l1_decay = strength
        return cls(
            lr=_column(lrs),
            lr_double=list(lrs),
            coupled=_present(coupled),
            penalties={p: _column(v) for p, v in penalties.items()},
            decoupled={  # a rule at strength 0 everywhere is left out (as the eager optimizers skip it)
                rule: (_column(wd), _present(l1)) for rule, (wd, l1) in rules.items() if any(v != 0 for v in wd)
            },
        )

    def select(self, rows: Tensor) -> Coefficients:
        """The coefficients of configurations ``rows`` only."""

        def pick(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.index_select(0, rows)

        return Coefficients(
            lr=self.lr.index_select(0, rows),
            lr_double=[self.lr_double[i] for i in rows.tolist()],
            coupled=pick(self.coupled),
            penalties={p: t.index_select(0, rows) for p, t in self.penalties.items()},
            decoupled={rule: (wd.index_select(0, rows), pick(l1)) for rule, (wd, l1) in self.decoupled.items()},
        )


@dataclass
class OptimizerState:
    """The base optimizer's state for all configurations, each ``[C, P]`` (Adam's ``steps``: ``[C, 1]``).

    ``momentum_buffer`` is ``None`` before SGD's first step (that step sets it to the gradient).
    ``references`` (the weights ``toward_reference`` decays toward) exist only if some configuration
    uses that rule; other rows hold zeros and get a zero coefficient.
    """

    base: str
    hyper: dict[str, Any]
    momentum_buffer: Tensor | None = None
    exp_avg: Tensor | None = None
    exp_avg_sq: Tensor | None = None
    steps: Tensor | None = None
    references: Tensor | None = None

    def select(self, rows: Tensor) -> None:
        for name in ("momentum_buffer", "exp_avg", "exp_avg_sq", "steps", "references"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, rows))


@torch.no_grad()
def stacked_step(weights: Tensor, grads: Tensor, state: OptimizerState, coefficients: Coefficients) -> None:
    """One step of every configuration, in place on ``weights`` (``[C, P]``) and ``state``.

    ``grads`` is this step's data-loss gradient (``[C, P]``; it is modified). See the module
    docstring for the order of the terms.
    """
    params, grad_list = [weights], [grads]
    for p, lam in coefficients.penalties.items():
        add_penalty_grad_(grad_list, params, lam, p, foreach=False)
    if coefficients.coupled is not None:
        grad_list = coupled_l2(grad_list, params, coefficients.coupled, foreach=False)
    references = None if state.references is None else [state.references]
    for rule, (weight_decay, _) in coefficients.decoupled.items():
        apply_before_update(rule, params, scale=1.0, weight_decay=weight_decay, references=references, foreach=False)
    if state.base == "sgd":
        buffers: list[Tensor | None] = [state.momentum_buffer]
        sgd_step(
            params,
            grad_list,
            buffers,
            lr=coefficients.lr,
            momentum=state.hyper["momentum"],
            dampening=state.hyper["dampening"],
            nesterov=state.hyper["nesterov"],
            foreach=False,
        )
        if state.hyper["momentum"] != 0:
            state.momentum_buffer = buffers[0]
    else:
        beta1, beta2 = state.hyper["betas"]
        if state.exp_avg is None or state.exp_avg_sq is None or state.steps is None:
            raise ValueError("an Adam group's state needs exp_avg, exp_avg_sq and steps")
        t = state.steps.to(torch.float64) + 1  # the step each configuration is about to take
        lr = torch.tensor(coefficients.lr_double, dtype=torch.float64).unsqueeze(1)
        step_size, correction2 = adam_bias_corrections(t, lr, beta1, beta2)
        adam_step(
            params,
            grad_list,
            [state.exp_avg],
            [state.exp_avg_sq],
            [],
            [state.steps],
            lr=coefficients.lr,
            beta1=beta1,
            beta2=beta2,
            eps=state.hyper["eps"],
            amsgrad=False,
            foreach=False,
            bias_corrections=torch.stack([step_size, correction2]).to(weights.dtype).unsqueeze(1),
        )
    for rule, (weight_decay, l1_decay) in coefficients.decoupled.items():
        apply_after_update(
            rule, params, scale=1.0, weight_decay=weight_decay, l1_decay=0.0 if l1_decay is None else l1_decay,
            foreach=False,
        )  # fmt: skip
