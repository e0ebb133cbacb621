"""AdamW with every decoupled rule and scale convention."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from decaylab.optim._base import DecoupledOptimizer, TensorLists, zeros_state_like
from decaylab.optim._decay import ReferenceSource, decay_after_update, decay_before_update
from decaylab.optim._validation import (
    check_bool,
    check_l1_decay_needs_elastic_net,
    check_nonnegative,
    check_unit_interval,
    rule_from_weight_norm,
)
from decaylab.optim.functional import adam_bias_corrections, adam_step, oriented_gradients
from decaylab.optim.fused import FusedGroup
from decaylab.rules._scalar import opmath_dtype


class AdamW(DecoupledOptimizer):
    r"""Adam with decoupled decay (Loshchilov & Hutter), any rule, any scale convention.

    With :math:`s` from ``scale`` (default ``"lr"``: :math:`s = \eta_t`, as torch.optim.AdamW) and
    the rule's ``before``/``after`` parts (see :class:`~decaylab.optim.SGDW`), each step is

    .. math::
        w \leftarrow \mathrm{before}(w) \qquad (\text{l2: } w \leftarrow w - s\lambda w) \\
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g^2
        \quad (\hat v_t = \max(\hat v_{t-1}, v_t) \text{ with amsgrad}) \\
        w \leftarrow w - \frac{\eta}{1-\beta_1^t}\,\frac{m_t}{\sqrt{v_t}/\sqrt{1-\beta_2^t} + \epsilon} \\
        w \leftarrow \mathrm{after}(w) \qquad (\text{proximal rules})

    ``g`` is negated when ``maximize``; the decay always shrinks. With ``rule="l2"`` and
    ``scale="lr"`` this is torch.optim.AdamW. Parameters whose ``.grad`` is None are neither updated
    nor decayed. Every option may be overridden per param group. ``foreach`` and ``fused`` pick the
    implementation, as for :class:`~decaylab.optim.SGDW` (``fused=True``: one compiled pass per tensor).
    """

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        weight_norm: int = 2,
        rule: str | None = None,
        l1_decay: float = 0.0,
        scale: str = "lr",
        reference: ReferenceSource = None,
        maximize: bool = False,
        foreach: bool | None = None,
        fused: bool | None = None,
    ) -> None:
        check_l1_decay_needs_elastic_net(rule_from_weight_norm(weight_norm, rule), l1_decay)
        defaults = dict(
            lr=lr,
            betas=betas,
            eps=eps,
            weight_decay=weight_decay,
            amsgrad=amsgrad,
            weight_norm=weight_norm,
            rule=rule,
            l1_decay=l1_decay,
            scale=scale,
            maximize=maximize,
            foreach=foreach,
            fused=fused,
        )
        self._check_group(defaults)
        super().__init__(params, defaults, reference)

    def _check_group(self, group: dict[str, Any]) -> None:
        super()._check_group(group)
        check_nonnegative("lr", group["lr"])
        check_nonnegative("eps", group["eps"])
        betas = group["betas"]
        if not isinstance(betas, tuple | list) or len(betas) != 2:
            raise TypeError(f"betas: expected a pair (beta1, beta2), got {betas!r}")
        check_unit_interval("betas[0]", betas[0])
        check_unit_interval("betas[1]", betas[1])
        check_bool("amsgrad", group["amsgrad"])

    def _gather_state(self, group: dict[str, Any], params: list[torch.Tensor]) -> tuple[list, list, list, list]:
        exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = [], [], [], []
        for p in params:
            state = self.state[p]
            if "step" not in state:
                state["step"] = torch.tensor(0.0, dtype=torch.float32)
                state["exp_avg"] = zeros_state_like(p)
                state["exp_avg_sq"] = zeros_state_like(p)
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = zeros_state_like(p)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
        return exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps

    def _group_tensors(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> TensorLists:
        exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps = self._gather_state(group, params)
        return params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, self._references(group, params)

    @staticmethod
    def _update(
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        exp_avgs: list[Tensor],
        exp_avg_sqs: list[Tensor],
        max_exp_avg_sqs: list[Tensor],
        steps: list[Tensor],
        references: list[Tensor] | None,
        *,
        foreach: bool,
    ) -> None:
        decay_before_update(group, params, references, foreach=foreach)
        beta1, beta2 = group["betas"]
        adam_step(
            params,
            oriented_gradients(grads, group["maximize"], foreach=foreach),
            exp_avgs,
            exp_avg_sqs,
            max_exp_avg_sqs,
            steps,
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            amsgrad=group["amsgrad"],
            foreach=foreach,
            bias_corrections=group.get("bias_corrections"),  # given on the fused path only
        )
        decay_after_update(group, params, foreach=foreach)

    def _fused_group(self, group: dict[str, Any], tensors: TensorLists) -> FusedGroup:
        """Adds each parameter's bias corrections for this step, computed once here in double, not per
        element, and given in the precision the eager kernels round them to (:func:`opmath_dtype`:
        float32 for float32 weights, so the compiled loops need no conversion per vector)."""
        fused = super()._fused_group(group, tensors)
        beta1, beta2 = group["betas"]
        t = torch.stack(tensors[5]).to(torch.float64) + 1  # the step each parameter is about to take
        step_size, bias_correction2_sqrt = adam_bias_corrections(t, group["lr"], beta1, beta2)
        params = tensors[0]
        corrections = torch.stack([step_size, bias_correction2_sqrt]).to(params[0].device, opmath_dtype(params))
        return fused._replace(dynamic={**fused.dynamic, "bias_corrections": corrections})
