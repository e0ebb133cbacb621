"""WeightRegularization: value and gradient against closed forms and autograd; fast mode; coverage."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from decaylab import WeightRegularization


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2))


def reference_penalty(model: nn.Module, lam: float, p: float, names: list[str] | None = None) -> float:
    total = 0.0
    for name, w in model.named_parameters():
        if names is None or name in names:
            total += sum(abs(x) ** p for x in w.detach().double().flatten().tolist())
    return lam * total


@pytest.mark.parametrize("p", [0.5, 1, 1.5, 2, 3])
def test_value_matches_a_plain_loop(p: float) -> None:
    model = small_model()
    reg = WeightRegularization(model, 0.1, p=p)
    assert reg.penalty().item() == pytest.approx(reference_penalty(model, 0.1, p), rel=1e-5)


@pytest.mark.parametrize("p", [0.5, 1, 1.5, 2, 3])
def test_fast_mode_adds_the_same_gradient_as_autograd(p: float) -> None:
    model = small_model()
    with torch.no_grad():
        model[0].weight[0, 0] = 0.0  # an exact zero: gradient 0 for every p
    reg = WeightRegularization(model, 0.05, p=p)
    reg.penalty().backward()
    autograd = [w.grad.clone() for w in model.parameters()]
    model.zero_grad(set_to_none=True)
    reg.add_to_grad()
    for w, expected in zip(model.parameters(), autograd, strict=True):
        torch.testing.assert_close(w.grad, expected)
        assert torch.isfinite(w.grad).all()
    assert model[0].weight.grad[0, 0] == 0


@given(p=st.floats(0.1, 4.0), lam=st.floats(0.0, 1.0), x=st.floats(-5, 5).filter(lambda v: abs(v) > 1e-3))
def test_gradient_closed_form(p: float, lam: float, x: float) -> None:
    model = nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(x)
    reg = WeightRegularization(model, lam, p=p)
    reg.add_to_grad()
    expected = lam * p * abs(x) ** (p - 1) * math.copysign(1.0, x)
    assert model.weight.grad.item() == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_fast_mode_adds_to_an_existing_grad() -> None:
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    model.weight.grad = torch.tensor([[0.5, 0.5]])
    WeightRegularization(model, 0.1).add_to_grad(foreach=True)
    torch.testing.assert_close(model.weight.grad, torch.tensor([[0.7, 0.1]]))


def test_coverage_choices() -> None:
    model = small_model()
    names = [n for n, _ in model.named_parameters()]
    assert WeightRegularization(model, 0.1).names == names
    assert WeightRegularization(model, 0.1, covers="weights").names == ["0.weight", "2.weight"]
    assert WeightRegularization(model, 0.1, covers=["2.weight"]).names == ["2.weight"]
    only_biases = WeightRegularization(model, 0.1, covers=lambda name, _: name.endswith("bias"))
    assert only_biases.names == ["0.bias", "1.bias", "2.bias"]
    assert only_biases.value().item() == pytest.approx(reference_penalty(model, 0.1, 2, only_biases.names), rel=1e-5)


@pytest.mark.parametrize("p", [0, -1, math.nan, math.inf])
def test_p_must_be_positive(p: float) -> None:
    with pytest.raises(ValueError, match=r"^p: expected a finite number > 0"):
        WeightRegularization(small_model(), 0.1, p=p)


def test_bad_arguments_name_themselves() -> None:
    with pytest.raises(ValueError, match="^weight_decay"):
        WeightRegularization(small_model(), -0.1)
    with pytest.raises(TypeError, match="^model"):
        WeightRegularization([torch.ones(2)], 0.1)
    with pytest.raises(ValueError, match="^covers: unknown parameter name"):
        WeightRegularization(small_model(), 0.1, covers=["nope"])
    with pytest.raises(ValueError, match="^covers: expected 'all', 'weights'"):
        WeightRegularization(small_model(), 0.1, covers="biases")
    with pytest.raises(TypeError, match="^p: expected a real number"):
        WeightRegularization(small_model(), 0.1, p="2")


@pytest.mark.parametrize("p", [1, 1.5])
def test_compiled_fast_mode_equals_the_eager_one(p: float) -> None:
    """``add_to_grad(fused=True)`` compiles the same per-tensor update; a new strength does not recompile."""
    model = small_model()
    with torch.no_grad():
        model[0].weight[0, 0] = 0.0  # an exact zero: gradient 0 for every p
    reg = WeightRegularization(model, 0.05, p=p)
    for lam in (0.05, 0.2):
        reg.weight_decay = lam
        model.zero_grad(set_to_none=True)
        reg.add_to_grad()
        eager = [w.grad.clone() for w in model.parameters()]
        for w in model.parameters():
            w.grad = torch.ones_like(w)  # fused adds to an existing grad too
        reg.add_to_grad(fused=True)
        for w, expected in zip(model.parameters(), eager, strict=True):
            torch.testing.assert_close(w.grad - 1, expected, rtol=1e-6, atol=1e-7)
        assert model[0].weight.grad[0, 0] == 1
    assert reg._fused.layouts == 1  # the strength is a 0-dim tensor input, not a constant of the graph


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_compiled_l1_fast_mode_gives_the_eager_bits(dtype: torch.dtype) -> None:
    """Given to the compiled loops in the weights' opmath dtype (float32 for float32 weights, the
    precision the eager kernel rounds it to), the strength gives the eager bits: 0.1 is not a float32."""
    model = small_model().to(dtype)
    reg = WeightRegularization(model, 0.1, p=1)
    model.zero_grad(set_to_none=True)
    reg.add_to_grad()
    eager = [w.grad.clone() for w in model.parameters()]
    model.zero_grad(set_to_none=True)
    reg.add_to_grad(fused=True)
    for w, expected in zip(model.parameters(), eager, strict=True):
        assert w.grad.dtype == dtype
        assert torch.equal(w.grad, expected)


def test_fast_mode_flags_are_checked() -> None:
    reg = WeightRegularization(small_model(), 0.1, p=1)
    with pytest.raises(ValueError, match="fused=True and foreach=True are mutually exclusive"):
        reg.add_to_grad(fused=True, foreach=True)
    with pytest.raises(TypeError, match=r"^fused: expected True, False or None"):
        reg.add_to_grad(fused="yes")
    with pytest.raises(TypeError, match=r"^foreach: expected True, False or None"):
        reg.add_to_grad(foreach=1)
    complex_model = nn.Linear(2, 2, dtype=torch.complex64)
    with pytest.raises(TypeError, match=r"add_to_grad\(fused=True\) supports real floating-point parameters"):
        WeightRegularization(complex_model, 0.1).add_to_grad(fused=True)
    assert all(w.grad is None for w in complex_model.parameters())  # nothing applied
