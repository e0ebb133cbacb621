"""LR schedulers change the decay when the scale is "lr" or "schedule" and not when it is "none"."""

from __future__ import annotations

import pytest
import torch

from decaylab import SGDW, AdamW, DecayWrapper

LR0, LAM, GAMMA, STEPS = 0.1, 0.2, 0.5, 5


def _decay_only_trajectory(make, scale: str) -> list[float]:
    """Zero gradients: only the decay moves w. Returns w after each step."""
    w = torch.nn.Parameter(torch.tensor([1.0], dtype=torch.float64))
    opt = make([w], scale)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=GAMMA)
    out = []
    for _ in range(STEPS):
        w.grad = torch.zeros_like(w)
        opt.step()
        sched.step()
        out.append(w.item())
    return out


MAKERS = {
    "SGDW": lambda ps, scale: SGDW(ps, lr=LR0, weight_decay=LAM, scale=scale),
    "DecayWrapper(SGD)": lambda ps, scale: DecayWrapper(torch.optim.SGD(ps, lr=LR0), weight_decay=LAM, scale=scale),
}


@pytest.mark.parametrize("maker", list(MAKERS))
@pytest.mark.parametrize("scale", ["lr", "schedule", "none"])
def test_decay_per_step_follows_the_convention(maker: str, scale: str) -> None:
    trajectory = _decay_only_trajectory(MAKERS[maker], scale)
    expected, w = [], 1.0
    for t in range(STEPS):
        lr = LR0 * GAMMA**t
        s = {"lr": lr, "schedule": lr / LR0, "none": 1.0}[scale]
        w *= 1 - s * LAM
        expected.append(w)
    assert trajectory == pytest.approx(expected, rel=1e-12)


def test_none_ignores_the_scheduler_and_schedule_follows_it() -> None:
    none = _decay_only_trajectory(MAKERS["SGDW"], "none")
    schedule = _decay_only_trajectory(MAKERS["SGDW"], "schedule")
    assert none[0] == pytest.approx(schedule[0])  # same at the initial lr
    assert none[-1] < schedule[-1]  # the scheduler shrank the decay for "schedule" only


def test_adamw_decay_scales_with_a_warmup_scheduler() -> None:
    w = torch.nn.Parameter(torch.ones(1, dtype=torch.float64))
    opt = AdamW([w], lr=0.1, weight_decay=0.5)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=3)
    lrs = []
    for _ in range(3):
        lrs.append(opt.param_groups[0]["lr"])
        w.grad = torch.zeros_like(w)
        before = w.item()
        opt.step()
        assert w.item() == pytest.approx(before * (1 - lrs[-1] * 0.5))
        sched.step()
    assert lrs == pytest.approx([0.025, 0.05, 0.075])
