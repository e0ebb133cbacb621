from __future__ import annotations

import torch

from decaylab.rules import coupled_l2, coupled_l2_


def test_coupled_l2_adds_lam_w_without_touching_inputs() -> None:
    grads, params = [torch.tensor([0.0, 1.0])], [torch.tensor([1.0, -1.5])]
    for foreach in (False, True):
        out = coupled_l2(grads, params, 0.1, foreach=foreach)
        torch.testing.assert_close(out[0], torch.tensor([0.1, 0.85]))
        assert torch.equal(grads[0], torch.tensor([0.0, 1.0]))


def test_in_place_variant_matches() -> None:
    params = [torch.randn(4), torch.randn(2, 3)]
    grads = [torch.randn(4), torch.randn(2, 3)]
    expected = coupled_l2(grads, params, 0.3, foreach=False)
    for foreach in (False, True):
        work = [g.clone() for g in grads]
        coupled_l2_(work, params, 0.3, foreach=foreach)
        assert all(torch.equal(a, b) for a, b in zip(work, expected, strict=True))
