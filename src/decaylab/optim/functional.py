"""Base updates (no decay): SGD with momentum and Adam, each with a per-tensor and a foreach path.

The optimizers compose these with the rules in :mod:`decaylab.rules`; neither path writes to a
user's ``.grad``. The operation order follows torch.optim so that, with decay off, results are
bit-for-bit those of torch.optim.SGD / torch.optim.Adam.

The per-tensor path also runs with ``lr`` as a 0-dim tensor: that is the code the fused path
(:mod:`decaylab.optim.fused`) compiles, so no update is written twice (see
:mod:`decaylab.rules._scalar`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from decaylab.rules._scalar import Scalar, add_scaled_, addcdiv_scaled_


def oriented_gradients(grads: list[Tensor], maximize: bool, *, foreach: bool) -> list[Tensor]:
    """``g`` to descend on: ``-g`` when maximizing (new tensors), else ``g`` itself."""
    if not maximize:
        return grads
    if foreach:
        return list(torch._foreach_neg(grads))
    return [-g for g in grads]


def sgd_step(
    params: list[Tensor],
    grads: list[Tensor],
    momentum_buffers: list[Tensor | None],
    *,
    lr: Scalar,
    momentum: float,
    dampening: float,
    nesterov: bool,
    foreach: bool,
) -> None:
    r"""SGD with heavy-ball or Nesterov momentum (torch.optim.SGD's update, without weight decay).

    .. math::
        b_1 = g_1, \quad b_t = \mu b_{t-1} + (1 - \tau) g_t, \qquad
        d_t = g_t + \mu b_t \ (\text{nesterov}) \text{ or } b_t, \qquad w \leftarrow w - \eta d_t

    ``momentum_buffers`` is updated in place: ``None`` entries are replaced by new buffers.
    ``grads`` is only read.
    """
    if momentum == 0:
        directions = grads
    elif foreach and all(b is not None for b in momentum_buffers):
        buffers: list[Tensor] = [b for b in momentum_buffers if b is not None]
        torch._foreach_mul_(buffers, momentum)
        torch._foreach_add_(buffers, grads, alpha=1 - dampening)
        directions = list(torch._foreach_add(grads, buffers, alpha=momentum)) if nesterov else buffers
    else:
        directions = []
        for i, g in enumerate(grads):
            buf = momentum_buffers[i]
            if buf is None:
                buf = g.detach().clone()
                momentum_buffers[i] = buf
            else:
                buf.mul_(momentum).add_(g, alpha=1 - dampening)
            directions.append(g.add(buf, alpha=momentum) if nesterov else buf)
    if foreach:
        torch._foreach_add_(params, directions, alpha=-lr)
    else:
        for w, d in zip(params, directions, strict=True):
            add_scaled_(w, d, -lr)


def adam_bias_corrections(t: Scalar, lr: Scalar, beta1: float, beta2: float) -> tuple[Scalar, Scalar]:
    r"""Adam's step size :math:`\eta / (1 - \beta_1^t)` and :math:`\sqrt{1 - \beta_2^t}` for step number ``t``.

    ``t`` is a number (eager) or a float64 tensor of step numbers (the fused path computes these
    once per step, outside the compiled loops, so no ``pow`` runs per element).
    """
    return lr / (1 - beta1**t), (1 - beta2**t) ** 0.5


def adam_step(
    params: list[Tensor],
    grads: list[Tensor],
    exp_avgs: list[Tensor],
    exp_avg_sqs: list[Tensor],
    max_exp_avg_sqs: list[Tensor],
    steps: list[Tensor],
    *,
    lr: Scalar,
    beta1: float,
    beta2: float,
    eps: float,
    amsgrad: bool,
    foreach: bool,
    bias_corrections: Tensor | None = None,
) -> None:
    r"""Adam's update (torch.optim.Adam without weight decay); moments and steps updated in place.

    .. math::
        m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2,
        \quad \hat v_t = \max(\hat v_{t-1}, v_t) \ (\text{amsgrad}) \\
        w \leftarrow w - \frac{\eta}{1-\beta_1^t} \, \frac{m_t}{\sqrt{v_t} / \sqrt{1-\beta_2^t} + \epsilon}

    ``bias_corrections`` (per-tensor path only): a ``(2, len(params))`` tensor holding, for the step
    each parameter is about to take, :func:`adam_bias_corrections`; the fused path passes it so the
    compiled loops only read two numbers per tensor. Without it, a tensor ``lr`` takes ``t`` from the
    step tensors inside the graph.
    """
    if foreach:
        torch._foreach_add_(steps, 1)
        torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)
        torch._foreach_mul_(exp_avg_sqs, beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, 1 - beta2)
        step_values = [float(s) for s in steps]
        step_sizes = [(lr / (1 - beta1**t)) * -1 for t in step_values]
        bias_correction2_sqrt = [(1 - beta2**t) ** 0.5 for t in step_values]
        if amsgrad:
            torch._foreach_maximum_(max_exp_avg_sqs, exp_avg_sqs)
            denominators = torch._foreach_sqrt(max_exp_avg_sqs)
        else:
            denominators = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denominators, bias_correction2_sqrt)
        torch._foreach_add_(denominators, eps)
        torch._foreach_addcdiv_(params, exp_avgs, denominators, step_sizes)
        return
    for i, (w, g, m, v) in enumerate(zip(params, grads, exp_avgs, exp_avg_sqs, strict=True)):
        steps[i] += 1
        m.lerp_(g, 1 - beta1)
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
        if bias_corrections is not None:
            step_size, bias_correction2_sqrt_t = bias_corrections[0][i], bias_corrections[1][i]
        else:
            t = steps[i].to(torch.float64) if isinstance(lr, Tensor) else float(steps[i])
            step_size, bias_correction2_sqrt_t = adam_bias_corrections(t, lr, beta1, beta2)
        if amsgrad:
            torch.maximum(max_exp_avg_sqs[i], v, out=max_exp_avg_sqs[i])
            denominator = (max_exp_avg_sqs[i].sqrt() / bias_correction2_sqrt_t).add_(eps)
        else:
            denominator = (v.sqrt() / bias_correction2_sqrt_t).add_(eps)
        addcdiv_scaled_(w, m, denominator, -step_size)
