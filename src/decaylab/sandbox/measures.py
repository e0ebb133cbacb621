"""What a run measures about its weights: per-tensor norms and sparsity, and feature recovery."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

SMALL = 1e-3  # |w| below this counts as "small" in the sparsity statistics


@dataclass(frozen=True)
class LayerStats:
    """One parameter tensor: L2 norm, and the fractions of entries exactly 0 and with |w| < 1e-3."""

    name: str
    numel: int
    norm: float
    zero_frac: float
    small_frac: float


def layer_stats(model: nn.Module) -> tuple[LayerStats, ...]:
    stats = []
    with torch.no_grad():
        for name, p in model.named_parameters():
            w = p.detach()
            stats.append(
                LayerStats(
                    name=name,
                    numel=w.numel(),
                    norm=float(torch.linalg.vector_norm(w)),
                    zero_frac=float((w == 0).sum()) / w.numel(),
                    small_frac=float((w.abs() < SMALL).sum()) / w.numel(),
                )
            )
    return tuple(stats)


def totals(layers: tuple[LayerStats, ...]) -> tuple[float, float, float]:
    """Whole-model ``(L2 norm, fraction == 0, fraction < 1e-3)`` from per-tensor statistics."""
    numel = sum(s.numel for s in layers)
    norm = math.sqrt(sum(s.norm**2 for s in layers))
    zeros = sum(s.zero_frac * s.numel for s in layers) / numel
    small = sum(s.small_frac * s.numel for s in layers) / numel
    return norm, zeros, small


def feature_recovery(model: nn.Module, true_features: tuple[int, ...]) -> tuple[int, int]:
    """``(recovered, spurious)`` for a task whose informative inputs are ``true_features`` (k of them).

    A feature's importance is the L2 norm of its column in the model's first layer. ``recovered``:
    how many true features are among the k most important; ``spurious``: how many other features
    keep an importance >= 1e-3 (a sparse method drives them to zero).
    """
    weight = model.first_layer().weight.detach()
    importance = torch.linalg.vector_norm(weight, dim=0)
    k = len(true_features)
    top = set(torch.topk(importance, k).indices.tolist())
    truth = set(true_features)
    spurious = int(sum(1 for j, v in enumerate(importance.tolist()) if v >= SMALL and j not in truth))
    return len(top & truth), spurious
