from __future__ import annotations

import pytest
import torch

from decaylab import SimpleCNN


def test_layers_and_shapes() -> None:
    model = SimpleCNN(img_size=(8, 8), in_channels=1, num_classes=10, num_layers=3, num_channels=4, kernel_size=3)
    assert [c.in_channels for c in model.convs()] == [1, 4, 4]
    assert model.conv3.out_channels == 4 and model.num_channels == 4
    assert model.fc.in_features == 4 * 8 * 8
    assert model(torch.randn(5, 1, 8, 8)).shape == (5, 10)


def test_seed_reset_with_one_element_fc_bias() -> None:
    """The seed replaces fc.bias by a 1-element parameter; the forward pass must still work."""
    model = SimpleCNN(
        img_size=torch.Size([1, 1]), in_channels=1, num_classes=2, num_layers=1, num_channels=1, kernel_size=1
    )
    model.fc.bias = torch.nn.Parameter(torch.zeros(1))
    model.fc.weight = torch.nn.Parameter(torch.full(model.fc.weight.shape, -1.5))
    model.conv1.weight = torch.nn.Parameter(torch.ones(1, 1, 1, 1))
    model.conv1.bias = torch.nn.Parameter(torch.zeros(1))
    out = model(torch.ones(1, 1, 1, 1))
    torch.testing.assert_close(out, torch.tensor([[-1.5, -1.5]]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_layers": 0}, "^num_layers: expected an integer >= 1"),
        ({"kernel_size": 2}, "^kernel_size: expected an odd integer"),
        ({"img_size": (8,)}, "^img_size"),
        ({"num_classes": 1.5}, "^num_classes"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    args = dict(img_size=8, in_channels=1, num_classes=10) | kwargs
    with pytest.raises(ValueError, match=message):
        SimpleCNN(**args)
