"""The scalar helpers: ``add_signed_`` gives the same bits eagerly and under torch.compile."""

from __future__ import annotations

import pytest
import torch

from decaylab.rules._scalar import _bit_form_applies, add_signed_, opmath_dtype

SPECIAL = [float("nan"), -0.0, 0.0, 1e-45, -1e-45, 1e-40, float("inf"), -float("inf"), 3.0, -2.5, 6e4, -6e4]


def _weights(dtype: torch.dtype) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    random = torch.randn(37, generator=gen) * torch.logspace(-30, 3, 37)
    return torch.cat([torch.tensor(SPECIAL), random]).to(dtype)


def _compiled_add_signed(x: torch.Tensor, w: torch.Tensor, strength: object, subtract: bool) -> None:
    torch._dynamo.reset()  # each case is a new graph; keep dynamo's recompile limit out of it

    def step(x: torch.Tensor, w: torch.Tensor, s: object) -> None:
        add_signed_(x, w, s, subtract=subtract)

    torch.compile(step, fullgraph=True, dynamic=False)(x, w, strength)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("strength", [0.3, 1e-3, 0.0, -0.0, -0.7], ids=["0.3", "1e-3", "0", "-0", "-0.7"])
@pytest.mark.parametrize("subtract", [False, True], ids=["add", "subtract"])
def test_add_signed_compiled_equals_eager_and_the_formula(dtype: torch.dtype, strength: float, subtract: bool) -> None:
    w = _weights(dtype)
    x = torch.cat([torch.linspace(-2, 2, w.numel() - 2), torch.tensor([-0.0, 0.0])]).to(dtype)
    eager = x.clone()
    add_signed_(eager, w, strength, subtract=subtract)
    opmath = torch.float64 if dtype == torch.float64 else torch.float32  # torch's alpha= precision
    signed = (-1 if subtract else 1) * torch.tensor(strength, dtype=opmath).double() * w.double().sign()
    expected = x.double() + signed
    # 16-bit types may round alpha * sign(w) before the add: one rounding of |x| <= 2.7, at most 2 eps
    atol = 0.0 if dtype in (torch.float32, torch.float64) else 2 * torch.finfo(dtype).eps
    torch.testing.assert_close(eager, expected.to(dtype), rtol=0, atol=atol, equal_nan=True)

    for given in (strength, torch.tensor(strength, dtype=torch.float64)):  # a number; the fused path's 0-dim tensor
        compiled = x.clone()
        _compiled_add_signed(compiled, w, given, subtract)
        if atol:  # 16-bit: sign on both paths; Inductor rounds once where eager may round alpha first
            torch.testing.assert_close(compiled, eager, rtol=0, atol=atol, equal_nan=True)
            continue
        same = torch.equal(compiled.view(torch.uint8), eager.view(torch.uint8))  # bits: signed zeros count
        assert same, f"compiled differs from x.add_(w.sign(), alpha) for strength {given!r}"


@pytest.mark.parametrize("strength_dtype", [torch.float32, torch.float64])
def test_per_row_strengths_under_compile_equal_eager(strength_dtype: torch.dtype) -> None:
    """A ``[C, 1]`` strength (the batched executor's) keeps ``sign``: the same values as eager."""
    w = _weights(torch.float32).reshape(1, -1).repeat(3, 1) * torch.tensor([[1.0], [-0.5], [2.0]])
    strength = torch.tensor([[0.3], [1e-3], [0.7]], dtype=strength_dtype)
    eager, compiled = torch.ones_like(w), torch.ones_like(w)
    add_signed_(eager, w, strength)
    _compiled_add_signed(compiled, w, strength, False)
    assert torch.equal(compiled, eager)


def test_the_bit_form_is_taken_for_float32_and_float64_with_one_strength() -> None:
    w32, w64 = torch.ones(2), torch.ones(2, dtype=torch.float64)
    assert _bit_form_applies(0.1, w32) and _bit_form_applies(torch.tensor(0.1, dtype=torch.float64), w64)
    assert not _bit_form_applies(0.1, w32.half()) and not _bit_form_applies(0.1, w32.bfloat16())
    assert not _bit_form_applies(torch.full((2, 1), 0.1), w32)


def test_add_signed_treats_zero_and_nan_weights_as_torch_sign_does() -> None:
    w = torch.tensor([float("nan"), -0.0, 0.0, -1e-45])
    x = torch.zeros(4)
    _compiled_add_signed(x, w, torch.tensor(0.5, dtype=torch.float64), False)
    assert x.tolist() == [0.0, 0.0, 0.0, -0.5]


def test_opmath_dtype_is_float64_only_where_a_tensor_is() -> None:
    tensors = {d: torch.zeros(2, dtype=d) for d in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}
    assert opmath_dtype([tensors[torch.float32]]) == torch.float32
    assert opmath_dtype([tensors[torch.bfloat16], tensors[torch.float16]]) == torch.float32
    assert opmath_dtype([tensors[torch.float64]]) == torch.float64
    assert opmath_dtype([tensors[torch.float32], tensors[torch.float64]]) == torch.float64
