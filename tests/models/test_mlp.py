"""MLP: named layers, flattening, and the linear special case."""

from __future__ import annotations

import pytest
import torch

from decaylab.models import MLP


def test_layers_are_named_and_sized() -> None:
    model = MLP(64, 10, hidden=(32, 16))
    names = [n for n, _ in model.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias", "out.weight", "out.bias"]
    assert model.fc1.weight.shape == (32, 64)
    assert model.out.weight.shape == (10, 16)
    assert model.first_layer() is model.fc1


def test_flattens_images_and_matches_a_manual_forward() -> None:
    torch.manual_seed(0)
    model = MLP(64, 3, hidden=(5,))
    x = torch.randn(4, 1, 8, 8)
    expected = model.out(torch.relu(model.fc1(x.reshape(4, 64))))
    assert torch.equal(model(x), expected)


def test_no_hidden_layer_is_a_linear_model() -> None:
    model = MLP(4, 2, hidden=())
    assert model.first_layer() is model.out
    x = torch.randn(3, 4)
    assert torch.allclose(model(x), x @ model.out.weight.T + model.out.bias)


@pytest.mark.parametrize(("args", "message"), [((0, 2), "in_features"), ((4, 2, (3, 0)), "hidden")])
def test_bad_sizes_name_the_argument(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MLP(*args)
