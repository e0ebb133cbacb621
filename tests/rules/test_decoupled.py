"""Each decoupled rule against its formula, with property tests over random tensors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from decaylab.rules import decoupled_l1_, decoupled_l2_, proximal_l1_, toward_reference_

finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False, allow_infinity=False, width=32)
tensors = arrays("float32", st.integers(1, 40), elements=finite).map(torch.from_numpy)
factors = st.floats(min_value=0.0, max_value=2.0, allow_nan=False, width=32)


def both_paths(fn, values: list[torch.Tensor], *args) -> list[torch.Tensor]:
    loop = [v.clone() for v in values]
    multi = [v.clone() for v in values]
    fn(loop, *args, foreach=False)
    fn(multi, *args, foreach=True)
    for a, b in zip(loop, multi, strict=True):
        assert torch.equal(a, b), "foreach and per-tensor paths disagree"
    return loop


@given(w=tensors, factor=factors)
def test_decoupled_l2_is_multiplicative_shrink(w: torch.Tensor, factor: float) -> None:
    (out,) = both_paths(decoupled_l2_, [w], factor)
    expected = [x * (1.0 - factor) for x in w.double().tolist()]
    torch.testing.assert_close(out.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-6, atol=1e-6)


@given(w=tensors, factor=factors)
def test_decoupled_l1_moves_every_nonzero_weight_by_factor_toward_zero(w: torch.Tensor, factor: float) -> None:
    (out,) = both_paths(decoupled_l1_, [w], factor)
    for before, after in zip(w.tolist(), out.tolist(), strict=True):
        expected = before - factor * math.copysign(1.0, before) if before != 0 else 0.0
        assert after == pytest.approx(expected, rel=1e-6, abs=1e-5)


@settings(max_examples=300)
@given(w=tensors, threshold=factors)
def test_proximal_l1_gives_exact_zeros_and_never_flips_a_sign(w: torch.Tensor, threshold: float) -> None:
    (out,) = both_paths(proximal_l1_, [w], threshold)
    t = torch.tensor(threshold, dtype=torch.float32)
    inside = w.abs() <= t
    assert (out[inside] == 0).all(), "every |w| <= threshold must become exactly 0"
    outside = ~inside
    assert (torch.sign(out[outside]) == torch.sign(w[outside])).all(), "a weight crossed zero"
    assert (out.abs() <= w.abs()).all()
    expected = torch.sign(w.double()) * torch.clamp(w.double().abs() - threshold, min=0.0)
    torch.testing.assert_close(out.double(), expected, rtol=1e-6, atol=1e-4)


@given(w=tensors, factor=st.floats(min_value=0.0, max_value=1.0, width=32), data=st.data())
def test_toward_reference_leaves_the_reference_fixed(w: torch.Tensor, factor: float, data: st.DataObject) -> None:
    ref = torch.from_numpy(data.draw(arrays("float32", w.shape, elements=finite)))
    ref_copy = ref.clone()
    (out,) = both_paths(lambda ps, f, foreach: toward_reference_(ps, [ref], f, foreach=foreach), [w], factor)
    assert torch.equal(ref, ref_copy), "the reference must never change"
    expected = w.double() - factor * (w.double() - ref.double())
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-3)
    at_ref = [ref.clone()]
    toward_reference_(at_ref, [ref], factor, foreach=False)
    assert torch.equal(at_ref[0], ref), "a weight equal to its reference must stay there"


def test_seed_numbers_for_each_rule() -> None:
    """lr=0.1, lam=0.1 with s=1: conv 1.0, fc -1.5 (DESIGN.md's table)."""
    ws = [torch.tensor([1.0]), torch.tensor([-1.5, -1.5])]
    l2 = [w.clone() for w in ws]
    decoupled_l2_(l2, 0.1, foreach=False)
    assert l2[0].item() == pytest.approx(0.9) and l2[1][0].item() == pytest.approx(-1.35)
    l1 = [w.clone() for w in ws]
    decoupled_l1_(l1, 0.1, foreach=True)
    assert l1[0].item() == pytest.approx(0.9) and l1[1][0].item() == pytest.approx(-1.4)
    prox = [torch.tensor([1.0, 0.05, -0.05, 0.0, -1.5])]
    proximal_l1_(prox, 0.1, foreach=False)
    assert prox[0].tolist() == pytest.approx([0.9, 0.0, 0.0, 0.0, -1.4])


@pytest.mark.parametrize("fn", [decoupled_l2_, decoupled_l1_, proximal_l1_])
def test_zero_factor_leaves_weights_bit_for_bit(fn) -> None:
    w = [torch.randn(5), torch.randn(3, 2)]
    copy = [x.clone() for x in w]
    fn(w, 0.0, foreach=True)
    assert all(torch.equal(a, b) for a, b in zip(w, copy, strict=True))
