"""SimpleCNN: the seed notebook's tiny convolutional classifier."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
    return value


class SimpleCNN(nn.Module):
    """``num_layers`` convolutions (``conv1``..``convN``, 'same' padding, ReLU after each) and a linear ``fc``.

    ``img_size`` is ``(H, W)`` (or an int for square images); ``fc`` maps the
    ``num_channels * H * W`` features to ``num_classes`` logits. ``conv1`` reads ``in_channels``;
    each later convolution maps ``num_channels`` to ``num_channels``. The seed's ``reset()``
    replaces ``fc.bias`` by a one-element parameter, which the forward pass broadcasts.
    """

    def __init__(
        self,
        img_size: Sequence[int] | int,
        in_channels: int,
        num_classes: int,
        num_layers: int = 2,
        num_channels: int = 16,
        kernel_size: int = 3,
    ) -> None:
        super().__init__()
        size = (img_size, img_size) if isinstance(img_size, int) else tuple(int(s) for s in img_size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"img_size: expected (height, width) of positive integers, got {img_size!r}")
        self.img_size = size
        self.in_channels = _positive_int("in_channels", in_channels)
        self.num_classes = _positive_int("num_classes", num_classes)
        self.num_layers = _positive_int("num_layers", num_layers)
        self.num_channels = _positive_int("num_channels", num_channels)
        self.kernel_size = _positive_int("kernel_size", kernel_size)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: expected an odd integer ('same' padding), got {kernel_size}")
        for i in range(1, num_layers + 1):
            conv = nn.Conv2d(
                in_channels if i == 1 else num_channels, num_channels, kernel_size, padding=kernel_size // 2
            )
            self.add_module(f"conv{i}", conv)
        self.fc = nn.Linear(num_channels * size[0] * size[1], num_classes)

    def convs(self) -> list[nn.Conv2d]:
        return [getattr(self, f"conv{i}") for i in range(1, self.num_layers + 1)]

    def forward(self, x: Tensor) -> Tensor:
        for conv in self.convs():
            x = torch.relu(conv(x))
        return self.fc(x.flatten(1))
