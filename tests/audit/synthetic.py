"""Small optimizers with a known weight decay, written for the audit's known-answer tests.

``Synthetic`` is SGD (optionally with heavy-ball momentum) or a minimal Adam, plus one decay:

==============  ====================================================  ===========================
``decay``       applied to each parameter with a gradient             expected audit label
==============  ====================================================  ===========================
``"none"``      nothing                                               no decay
``"coupled"``   ``g += wd * w`` before momentum / moments             coupled L2 (SGD), adaptive-coupled (Adam)
``"l2"``        ``w -= s * wd * w``                                   decoupled L2
``"l1"``        ``w -= s * wd * sign(w)``                             L1/sign
``"prox"``      ``w = sign(w) * max(|w| - s * wd, 0)`` after update  proximal L1
``"shift"``     ``w -= s * wd``                                       constant shift
``"toward"``    ``w -= s * wd * (w - w0)``                            L2 toward initial weights
``"cubic"``     ``w -= s * wd * w**3``                                other
==============  ====================================================  ===========================

with ``s`` from ``scale``: ``"lr"`` (current lr), ``"none"`` (1), ``"schedule"`` (lr / initial lr)
or ``"constructor"`` (the lr given to the constructor: ignores LR schedulers). Deliberate bugs:
``twice`` (the decay is applied two times), ``skip_in_foreach`` (the multi-tensor path forgets the
decay), ``decay_no_grad`` (parameters whose ``.grad`` is None are decayed too).
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch


class Synthetic(torch.optim.Optimizer):
    def __init__(
        self,
        params: Any,
        lr: float = 0.01,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        foreach: bool | None = None,
        *,
        decay: str = "l2",
        scale: str = "lr",
        adam: bool = False,
        twice: bool = False,
        skip_in_foreach: bool = False,
        decay_no_grad: bool = False,
    ) -> None:
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=foreach)
        super().__init__(params, defaults)
        self.decay, self.scale, self.adam = decay, scale, adam
        self.twice, self.skip_in_foreach, self.decay_no_grad = twice, skip_in_foreach, decay_no_grad
        self.constructor_lr = lr
        for group in self.param_groups:
            group.setdefault("initial_lr", group["lr"])
            for p in group["params"]:
                self.state[p]["w0"] = p.detach().clone()

    def _s(self, group: dict[str, Any]) -> float:
        return {
            "lr": group["lr"],
            "none": 1.0,
            "schedule": group["lr"] / group["initial_lr"],
            "constructor": self.constructor_lr,
        }[self.scale]

    def _decay_before(self, group: dict[str, Any], p: torch.Tensor) -> None:
        factor = self._s(group) * group["weight_decay"]
        for _ in range(2 if self.twice else 1):
            if self.decay == "l2":
                p.mul_(1 - factor)
            elif self.decay == "l1":
                p.sub_(factor * p.sign())
            elif self.decay == "shift":
                p.sub_(factor)
            elif self.decay == "toward":
                p.sub_(factor * (p - self.state[p]["w0"]))
            elif self.decay == "cubic":
                p.sub_(factor * p**3)

    def _decay_after(self, group: dict[str, Any], p: torch.Tensor) -> None:
        if self.decay == "prox":
            t = self._s(group) * group["weight_decay"]
            p.sub_(p.clamp(-t, t))

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            skip = self.skip_in_foreach and bool(group["foreach"])
            for p in group["params"]:
                if p.grad is None:
                    if self.decay_no_grad and not skip:
                        self._decay_before(group, p)
                    continue
                g = p.grad.clone()
                if self.decay == "coupled" and not skip:
                    g.add_(p, alpha=group["weight_decay"])
                elif not skip:
                    self._decay_before(group, p)
                state = self.state[p]
                if self.adam:
                    state["t"] = state.get("t", 0) + 1
                    m = state.setdefault("m", torch.zeros_like(p))
                    v = state.setdefault("v", torch.zeros_like(p))
                    beta1 = group["momentum"]
                    m.mul_(beta1).add_(g, alpha=1 - beta1)
                    v.mul_(0.999).addcmul_(g, g, value=0.001)
                    m_hat = m / (1 - beta1 ** state["t"]) if beta1 else m
                    v_hat = v / (1 - 0.999 ** state["t"])
                    p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + 1e-8))
                else:
                    if group["momentum"]:
                        buf = state.get("buf")
                        buf = g.clone() if buf is None else buf.mul_(group["momentum"]).add_(g)
                        state["buf"] = buf
                        g = buf
                    p.sub_(group["lr"] * g)
                if not skip:
                    self._decay_after(group, p)
        return None


class HangsInConstructor(torch.optim.SGD):
    def __init__(self, params: Any, lr: float = 0.01, weight_decay: float = 0.0) -> None:
        time.sleep(3600)


class HangsInStep(torch.optim.SGD):
    def step(self, closure: Any = None) -> Any:
        while True:
            time.sleep(0.01)


class RaisesInConstructor(torch.optim.SGD):
    def __init__(self, params: Any, lr: float = 0.01, weight_decay: float = 0.0) -> None:
        raise RuntimeError("refuses to be built")


class RaisesInStep(torch.optim.SGD):
    def step(self, closure: Any = None) -> Any:
        raise ValueError("step exploded")


class KillsTheProcess(torch.optim.SGD):
    def step(self, closure: Any = None) -> Any:
        os._exit(3)
