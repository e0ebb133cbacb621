"""Property tests through the optimizers (hypothesis)."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from decaylab import SCALES, SGDW, AdamW, DecayWrapper

finite = st.floats(min_value=-10, max_value=10, allow_nan=False, width=32)
vectors = arrays("float32", st.integers(1, 16), elements=finite).map(torch.from_numpy)
lrs = st.floats(min_value=1e-4, max_value=0.5)
momenta = st.sampled_from([0.0, 0.5, 0.9])


def _run(opt_factory, w0: torch.Tensor, grads: list[torch.Tensor]) -> torch.Tensor:
    w = torch.nn.Parameter(w0.clone())
    opt = opt_factory([w])
    for g in grads:
        w.grad = g.clone()
        opt.step()
    return w.detach()


@given(w0=vectors, lr=lrs, momentum=momenta, nesterov=st.booleans(), seed=st.integers(0, 2**16))
def test_sgdw_without_decay_is_torch_sgd_bit_for_bit(w0, lr, momentum, nesterov, seed) -> None:
    nesterov = nesterov and momentum > 0
    grads = [torch.randn(w0.shape, generator=torch.Generator().manual_seed(seed + i)) for i in range(5)]
    for rule in ("l2", "l1", "proximal_l1", "toward_reference"):
        ours = _run(
            lambda p, r=rule: SGDW(p, lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=0.0, rule=r), w0, grads
        )
        theirs = _run(lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum, nesterov=nesterov), w0, grads)
        assert torch.equal(ours, theirs)


@given(w0=vectors, lr=lrs, amsgrad=st.booleans(), seed=st.integers(0, 2**16))
def test_adamw_and_wrapper_without_decay_are_plain_adam_bit_for_bit(w0, lr, amsgrad, seed) -> None:
    grads = [torch.randn(w0.shape, generator=torch.Generator().manual_seed(seed + i)) for i in range(5)]
    theirs = _run(lambda p: torch.optim.Adam(p, lr=lr, amsgrad=amsgrad), w0, grads)
    ours = _run(lambda p: AdamW(p, lr=lr, amsgrad=amsgrad, weight_decay=0.0), w0, grads)
    wrapped = _run(lambda p: DecayWrapper(torch.optim.Adam(p, lr=lr, amsgrad=amsgrad), weight_decay=0.0), w0, grads)
    assert torch.equal(ours, theirs)
    assert torch.equal(wrapped, theirs)


@given(w0=vectors, lr=lrs, lam=st.floats(0.0, 5.0), scale=st.sampled_from(SCALES))
def test_proximal_l1_step_gives_exact_zeros_and_no_sign_flips(w0, lr, lam, scale) -> None:
    s = {"lr": lr, "schedule": 1.0, "none": 1.0}[scale]
    threshold = torch.tensor(s * lam, dtype=torch.float32)
    out = _run(lambda p: SGDW(p, lr=lr, weight_decay=lam, rule="proximal_l1", scale=scale), w0, [torch.zeros_like(w0)])
    assert (out[w0.abs() <= threshold] == 0).all()
    assert (out * w0 >= 0).all(), "a weight flipped sign"


@given(w0=vectors, lr=lrs, lam=st.floats(0.0, 1.0), momentum=momenta, seed=st.integers(0, 2**16))
def test_toward_reference_keeps_the_reference_fixed(w0, lr, lam, momentum, seed) -> None:
    reference = torch.randn(w0.shape, generator=torch.Generator().manual_seed(seed))
    w = torch.nn.Parameter(reference.clone())
    opt = SGDW(
        [w], lr=lr, momentum=momentum, weight_decay=lam, rule="toward_reference", scale="lr", reference=[reference]
    )
    for _ in range(3):  # at the reference with zero gradient nothing moves
        w.grad = torch.zeros_like(w)
        opt.step()
    assert torch.equal(w.detach(), reference)
    w.grad = torch.randn(w0.shape, generator=torch.Generator().manual_seed(seed + 1))
    opt.step()
    assert torch.equal(opt.state[w]["reference"], reference), "stepping must never move the reference"


def test_params_without_grad_are_neither_updated_nor_decayed() -> None:
    a, b = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    for opt in (
        SGDW([a, b], lr=0.1, weight_decay=0.1),
        AdamW([a, b], weight_decay=0.1),
        DecayWrapper(torch.optim.SGD([a, b], lr=0.1)),
    ):
        a.grad, b.grad = torch.zeros(2), None
        opt.step()
        assert torch.equal(b.detach(), torch.ones(2))
        assert a.detach()[0] < 1.0
        with torch.no_grad():
            a.fill_(1.0)


@pytest.mark.parametrize(
    "make", [lambda p: SGDW(p, lr=0.1, weight_decay=0.1), lambda p: AdamW(p, lr=0.1, weight_decay=0.1)]
)
def test_closure_is_called_and_its_loss_returned(make) -> None:
    w = torch.nn.Parameter(torch.tensor([2.0]))
    opt = make([w])

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(4.0)
    assert w.item() < 2.0


def test_maximize_ascends_but_decay_still_shrinks() -> None:
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = SGDW([w], lr=0.1, weight_decay=0.5, maximize=True)
    w.grad = torch.tensor([1.0])
    opt.step()
    assert w.item() == pytest.approx(1.0 - 0.5 * 1.0 + 0.1 * 1.0)
