"""Weight statistics and feature recovery on hand-set weights."""

from __future__ import annotations

import math

import pytest
import torch

from decaylab.models import LinearModel
from decaylab.sandbox.measures import feature_recovery, layer_stats, totals


def test_layer_stats_and_totals_on_known_weights() -> None:
    model = LinearModel(4, 2)
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([[3.0, 0.0, 4.0, 0.0], [0.0, 5e-4, 0.0, 0.0]]))
        model.linear.bias.copy_(torch.tensor([0.0, 12.0]))
    stats = {s.name: s for s in layer_stats(model)}
    weight = stats["linear.weight"]
    assert weight.numel == 8
    assert weight.norm == pytest.approx(math.sqrt(9 + 16 + 2.5e-7))
    assert weight.zero_frac == pytest.approx(5 / 8)
    assert weight.small_frac == pytest.approx(6 / 8)
    norm, zeros, small = totals(tuple(stats.values()))
    assert norm == pytest.approx(math.sqrt(25 + 2.5e-7 + 144))
    assert zeros == pytest.approx(6 / 10)
    assert small == pytest.approx(7 / 10)


def test_feature_recovery_counts_top_k_and_spurious_columns() -> None:
    model = LinearModel(6, 1)
    with torch.no_grad():
        model.linear.weight.copy_(torch.tensor([[2.0, 0.0, -3.0, 0.5, 0.0, 1e-4]]))
    assert feature_recovery(model, (0, 2)) == (2, 1)  # feature 3 kept (0.5 >= 1e-3); 5 is below
    assert feature_recovery(model, (1, 2)) == (1, 2)  # top-2 is {0, 2}: one true; 0 and 3 spurious
