"""A linear model: logistic (softmax) regression with a cross-entropy loss, least squares with MSE."""

from __future__ import annotations

from torch import Tensor, nn


class LinearModel(nn.Module):
    """``logits = x.flatten(1) @ W.T + b`` in one layer named ``linear``.

    Trained with cross-entropy this is multinomial logistic regression; with ``out_features=1``
    and a squared loss it is linear (least-squares) regression. Inputs are flattened, so images work.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        self.linear = nn.Linear(in_features, out_features)

    def first_layer(self) -> nn.Linear:
        """The layer that reads the inputs (its columns measure how much each input feature is used)."""
        return self.linear

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x.flatten(1))
