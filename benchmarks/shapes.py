"""Parameter shapes of the two benchmark sizes, built from the real architectures (no torchvision needed)."""

from __future__ import annotations

import math

from torch import nn

from decaylab.models import SimpleCNN

Shape = tuple[int, ...]


def _batch_norm(channels: int) -> list[Shape]:
    return [(channels,), (channels,)]  # weight, bias (running stats are buffers, not parameters)


def _bottleneck(inplanes: int, planes: int, downsample: bool) -> list[Shape]:
    expansion = 4
    shapes: list[Shape] = [(planes, inplanes, 1, 1), *_batch_norm(planes)]
    shapes += [(planes, planes, 3, 3), *_batch_norm(planes)]
    shapes += [(planes * expansion, planes, 1, 1), *_batch_norm(planes * expansion)]
    if downsample:
        shapes += [(planes * expansion, inplanes, 1, 1), *_batch_norm(planes * expansion)]
    return shapes


def resnet50_shapes(num_classes: int = 1000) -> list[Shape]:
    """The 161 parameter shapes of torchvision's ``resnet50()`` in ``named_parameters()`` order (25,557,032 values)."""
    shapes: list[Shape] = [(64, 3, 7, 7), *_batch_norm(64)]
    inplanes = 64
    for planes, blocks in zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True):
        for block in range(blocks):
            shapes += _bottleneck(inplanes, planes, downsample=block == 0)
            inplanes = planes * 4
    shapes += [(num_classes, inplanes), (num_classes,)]
    return shapes


def digits_cnn() -> nn.Module:
    """The sandbox's digits model: SimpleCNN on 8x8 greyscale images, 10 classes (seed defaults)."""
    return SimpleCNN(img_size=8, in_channels=1, num_classes=10)


def digits_shapes() -> list[Shape]:
    return [tuple(p.shape) for p in digits_cnn().parameters()]


def numel(shapes: list[Shape]) -> int:
    return sum(math.prod(s) for s in shapes)
