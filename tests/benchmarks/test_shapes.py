"""The benchmark's parameter shapes are the real architectures'."""

from __future__ import annotations

from benchmarks.shapes import digits_cnn, digits_shapes, numel, resnet50_shapes


def test_resnet50_has_torchvisions_parameter_count() -> None:
    shapes = resnet50_shapes()
    # torchvision.models.resnet50(): 161 parameter tensors, 25,557,032 values (its published size)
    assert len(shapes) == 161
    assert numel(shapes) == 25_557_032
    assert shapes[0] == (64, 3, 7, 7)
    assert shapes[-2:] == [(1000, 2048), (1000,)]


def test_digits_shapes_are_simplecnn_on_8x8_digits() -> None:
    model = digits_cnn()
    assert digits_shapes() == [tuple(p.shape) for p in model.parameters()]
    assert model.fc.in_features == 16 * 8 * 8
