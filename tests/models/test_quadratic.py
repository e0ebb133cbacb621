"""The seed-2 toy against the DESIGN.md oracle (closed form of coupled decay on a diagonal quadratic)."""

from __future__ import annotations

import pytest
import torch

from decaylab import SGD, DiagonalQuadratic


def train(model: DiagonalQuadratic, weight_decay: float, steps: int, use_torch: bool = False) -> list[float]:
    opt_cls = torch.optim.SGD if use_torch else SGD
    opt = opt_cls(model.parameters(), lr=0.01, weight_decay=weight_decay)
    for _ in range(steps):
        opt.zero_grad()
        model.forward_loss().backward()
        opt.step()
    return [float(w.detach()) for w in model.weights]


def test_default_is_the_seed_loss() -> None:
    model = DiagonalQuadratic((0.3, -0.7))
    assert model.forward_loss().item() == pytest.approx(0.3**2 / 20 + 0.7**2)


@pytest.mark.parametrize("use_torch", [False, True], ids=["decaylab", "torch"])
def test_design_oracle(use_torch: bool) -> None:
    with_decay = train(DiagonalQuadratic().double(), 0.01, 100, use_torch)
    plain = train(DiagonalQuadratic().double(), 0.0, 100, use_torch)
    assert with_decay == pytest.approx([0.8957799, 0.1312731], abs=5e-8)
    assert plain == pytest.approx([0.9047921, 0.1326196], abs=5e-8)
    assert train(DiagonalQuadratic().double(), 0.01, 1000, use_torch)[0] == pytest.approx(0.3326696, abs=5e-8)
    assert train(DiagonalQuadratic().double(), 0.0, 1000, use_torch)[0] == pytest.approx(0.3676954, abs=5e-8)


def test_per_step_factors_and_closed_form() -> None:
    model = DiagonalQuadratic().double()
    after_one = train(model, 0.01, 1)
    assert after_one == pytest.approx([0.9989, 0.9799], abs=1e-12)
    fresh = DiagonalQuadratic().double()
    assert fresh.closed_form(1000, 0.01, 0.01) == pytest.approx(
        train(DiagonalQuadratic().double(), 0.01, 1000), rel=1e-10
    )


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="^init and curvatures"):
        DiagonalQuadratic((1.0,), (1.0, 2.0))
    with pytest.raises(ValueError, match="^curvatures"):
        DiagonalQuadratic((1.0,), (float("nan"),))
