"""The scalar helpers: ``add_signed_`` gives the same bits eagerly and under torch.compile."""

from __future__ import annotations

import pytest
import torch

from decaylab.rules._scalar import add_signed_

SPECIAL = [float("nan"), -0.0, 0.0, 1e-45, -1e-45, 1e-40, float("inf"), -float("inf"), 3.0, -2.5, 6e4, -6e4]


def _weights(dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    random = torch.randn(37, generator=gen) * torch.logspace(-30, 3, 37)
    return torch.cat([torch.tensor(SPECIAL), random]).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("strength", [0.3, 1e-3, 0.0], ids=["0.3", "1e-3", "0"])
@pytest.mark.parametrize("subtract", [False, True], ids=["add", "subtract"])
def test_add_signed_compiled_equals_eager_and_the_formula(dtype: torch.dtype, strength: float, subtract: bool) -> None:
    w = _weights(dtype)
    x = torch.linspace(-2, 2, w.numel()).to(dtype)
    eager = x.clone()
    add_signed_(eager, w, strength, subtract=subtract)
    opmath = torch.float64 if dtype == torch.float64 else torch.float32  # torch's alpha= precision
    signed = (-1 if subtract else 1) * torch.tensor(strength, dtype=opmath).double() * w.double().sign()
    expected = x.double() + signed
    # 16-bit types may round alpha * sign(w) before the add: one rounding of |x| <= 2.3, at most 2 eps
    atol = 0.0 if dtype in (torch.float32, torch.float64) else 2 * torch.finfo(dtype).eps
    torch.testing.assert_close(eager, expected.to(dtype), rtol=0, atol=atol, equal_nan=True)

    torch._dynamo.reset()  # each parametrization is a new graph; keep dynamo's recompile limit out of it

    def step(x: torch.Tensor, w: torch.Tensor, s: torch.Tensor) -> None:
        add_signed_(x, w, s, subtract=subtract)

    compiled = x.clone()
    torch.compile(step, fullgraph=True, dynamic=False)(compiled, w, torch.tensor(strength, dtype=torch.float64))
    assert torch.equal(compiled, eager), "the bit form under torch.compile differs from x.add_(w.sign(), alpha)"


def test_add_signed_treats_zero_and_nan_weights_as_torch_sign_does() -> None:
    w = torch.tensor([float("nan"), -0.0, 0.0, -1e-45])

    def step(x: torch.Tensor) -> None:
        add_signed_(x, w, torch.tensor(0.5, dtype=torch.float64))

    x = torch.zeros(4)
    torch._dynamo.reset()
    torch.compile(step, fullgraph=True)(x)
    assert x.tolist() == [0.0, 0.0, 0.0, -0.5]
