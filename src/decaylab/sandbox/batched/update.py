"""One optimizer step for C stacked configurations, each with its own method, strength and lr.

The step is the sandbox's (:func:`decaylab.sandbox.methods.build_method`) written once for all
configurations: every number that differs between configurations is a ``[C, 1]`` coefficient that
broadcasts over the ``[C, P]`` parameter buffer, and a method a configuration does not use has
coefficient 0 there. For gradients ``g`` and weights ``w`` (rows = configurations)::

    g += lam_pen * p * |w|**(p-1) * sign(w)      penalty_l2 (p=2), penalty_l1 (p=1)    add_penalty_grad_
    g += lam_coupled * w                         coupled_l2                             coupled_l2_
    before(w)                                    decoupled rules, factor s*lam          apply_before_update
    w  = w - lr * d(g~)   or  Adam(g~)           the base optimizer, lr per row         sgd_step / adam_step
    after(w)                                     proximal rules, threshold s*lam        apply_after_update

in that order, which is the order :class:`~decaylab.sandbox.methods.Regularized` applies them in
(penalty gradient, then the optimizer's coupled term, decoupled rule, update, proximal rule). Each
configuration has exactly one method, so its row sees exactly its own method's terms: each term
acts on a contiguous range of rows only (:class:`Term`), and a row inside that range with a zero
coefficient is left bit-for-bit unchanged (``w * (1 - 0)``, ``w + 0 * x``, ``lerp(w, r, 0)``,
``w - clamp(w, -0, 0)``). The gradient buffer is the step's own, so the coupled term is added in place. Every term is computed by the functions in :mod:`decaylab.rules`,
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
from decaylab.rules import RULES_NEEDING_REFERENCE, apply_after_update, apply_before_update, coupled_l2_, decay_scale
from decaylab.sandbox.train import RunConfig


def _column(values: list[float]) -> Tensor:
    return torch.tensor(values, dtype=torch.float32).unsqueeze(1)


@dataclass(frozen=True)
class Term:
    """A coefficient for the rows ``rows`` (a contiguous range): ``value`` (and elastic net's ``l1``) are
    ``[rows, 1]``. Rows outside the range are not touched; rows inside it that do not use the term
    have coefficient 0, which leaves them bit-for-bit unchanged."""

    rows: slice
    value: Tensor
    l1: Tensor | None = None


def _term(values: list[float], l1: list[float] | None = None) -> Term | None:
    """The term over the smallest range holding every non-zero value, or ``None`` if all are 0."""
    used = [i for i, v in enumerate(values) if v != 0]
    if not used:
        return None
    rows = slice(used[0], used[-1] + 1)
    return Term(rows, _column(values[rows]), None if l1 is None else _column(l1[rows]))


@dataclass(frozen=True)
class Coefficients:
    """One epoch's per-configuration numbers (float32 columns; ``lr`` covers every row).

    ``penalties`` maps a penalty's ``p`` to its strengths, ``decoupled`` a rule name
    (:data:`decaylab.rules.RULES`) to ``s * weight_decay`` (and ``s * l1_decay``). A term no
    configuration uses is absent. Sorting a group by method (as
    :class:`~decaylab.sandbox.batched.engine.StackedGroup` does) makes every term's rows exactly
    the rows of one method, so each term costs a pass over those rows only.
    """

    lr: Tensor
    lr_double: list[float]
    coupled: Term | None = None
    penalties: dict[float, Term] = field(default_factory=dict)
    decoupled: dict[str, Term] = field(default_factory=dict)

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
        decoupled = {rule: _term(wd, l1 if rule == "elastic_net" else None) for rule, (wd, l1) in rules.items()}
        return cls(
            lr=_column(lrs),
            lr_double=list(lrs),
            coupled=_term(coupled),
            penalties={p: term for p, values in penalties.items() if (term := _term(values)) is not None},
            decoupled={rule: term for rule, term in decoupled.items() if term is not None},  # strength 0: skipped
        )


@dataclass
class OptimizerState:
    """The base optimizer's state for all configurations, each ``[C, P]`` (Adam's ``steps``: ``[C, 1]``).

    ``momentum_buffer`` is ``None`` before SGD's first step (that step sets it to the gradient).
    ``references`` (the weights ``toward_reference`` decays toward) cover only the rows
    ``reference_start`` to ``reference_start + len(references)``: those of the configurations
    that use that rule (rows between them that do not are zeros and get a zero coefficient).
    """

    base: str
    hyper: dict[str, Any]
    momentum_buffer: Tensor | None = None
    exp_avg: Tensor | None = None
    exp_avg_sq: Tensor | None = None
    steps: Tensor | None = None
    references: Tensor | None = None
    reference_start: int = 0

    def select(self, rows: Tensor) -> None:
        """Keep only configurations ``rows`` (increasing indices), in that order."""
        for name in ("momentum_buffer", "exp_avg", "exp_avg_sq", "steps"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, value.index_select(0, rows))
        if self.references is not None:
            start, stop = self.reference_start, self.reference_start + len(self.references)
            kept = [(new, old) for new, old in enumerate(rows.tolist()) if start <= old < stop]
            self.references = self.references[[old - start for _, old in kept]] if kept else None
            self.reference_start = kept[0][0] if kept else 0

    def references_for(self, rows: slice) -> list[Tensor]:
        """The references of ``rows`` (which must lie within the stored range)."""
        start = self.reference_start
        if self.references is None or rows.start < start or rows.stop > start + len(self.references):
            raise ValueError(f"no stored references for rows {rows.start}..{rows.stop - 1}")
        return [self.references[rows.start - start : rows.stop - start]]


@torch.no_grad()
def stacked_step(weights: Tensor, grads: Tensor, state: OptimizerState, coefficients: Coefficients) -> None:
    """One step of every configuration, in place on ``weights`` (``[C, P]``) and ``state``.

    ``grads`` is this step's data-loss gradient (``[C, P]``; it is modified). See the module
    docstring for the order of the terms; each term acts on its rows only.
    """
    for p, term in coefficients.penalties.items():
        add_penalty_grad_([grads[term.rows]], [weights[term.rows]], term.value, p, foreach=False)
    if coefficients.coupled is not None:
        rows = coefficients.coupled.rows
        coupled_l2_([grads[rows]], [weights[rows]], coefficients.coupled.value, foreach=False)
    for rule, term in coefficients.decoupled.items():
        references = state.references_for(term.rows) if rule in RULES_NEEDING_REFERENCE else None
        apply_before_update(
            rule, [weights[term.rows]], scale=1.0, weight_decay=term.value, references=references, foreach=False
        )
    if state.base == "sgd":
        buffers: list[Tensor | None] = [state.momentum_buffer]
        sgd_step(
            [weights],
            [grads],
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
            [weights],
            [grads],
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
    for rule, term in coefficients.decoupled.items():
        l1_decay = 0.0 if term.l1 is None else term.l1
        apply_after_update(
            rule, [weights[term.rows]], scale=1.0, weight_decay=term.value, l1_decay=l1_decay, foreach=False
        )
