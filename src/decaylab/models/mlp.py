"""A multi-layer perceptron with named layers (``fc1``..``fcN``, ``out``) so per-layer reports read well."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Module):
    """``x.flatten(1) -> [fc_i -> ReLU] * len(hidden) -> out``.

    Inputs of any shape ``N x ...`` are flattened, so the digits images (``N x 1 x 8 x 8``) and
    tabular data (``N x d``) both work. With ``hidden=()`` this is a linear model.
    """

    def __init__(self, in_features: int, out_features: int, hidden: Sequence[int] = (64,)) -> None:
        super().__init__()
        sizes = [in_features, *hidden]
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        for width in hidden:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ValueError(f"hidden: expected layer widths >= 1, got {tuple(hidden)!r}")
        self.hidden = tuple(hidden)
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes), start=1):
            self.add_module(f"fc{i}", nn.Linear(fan_in, fan_out))
        self.out = nn.Linear(sizes[-1], out_features)

    def hidden_layers(self) -> list[nn.Linear]:
        return [getattr(self, f"fc{i}") for i in range(1, len(self.hidden) + 1)]

    def first_layer(self) -> nn.Linear:
        """The layer that reads the inputs (its columns measure how much each input feature is used)."""
        layers = self.hidden_layers()
        return layers[0] if layers else self.out

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(1)
        for layer in self.hidden_layers():
            x = layer(x).relu()
        return self.out(x)
