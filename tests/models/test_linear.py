"""LinearModel: one layer named ``linear`` over flattened inputs."""

from __future__ import annotations

import pytest
import torch

from decaylab.models import LinearModel


def test_is_an_affine_map_of_the_flattened_input() -> None:
    model = LinearModel(6, 2)
    x = torch.randn(5, 2, 3)
    assert torch.allclose(model(x), x.reshape(5, 6) @ model.linear.weight.T + model.linear.bias)
    assert model.first_layer() is model.linear


def test_bad_sizes_name_the_argument() -> None:
    with pytest.raises(ValueError, match="out_features: expected an integer >= 1"):
        LinearModel(3, 0)
