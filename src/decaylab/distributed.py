"""decaylab under torch.distributed (DistributedDataParallel).

What needs no help: DDP averages gradients before ``step()``, so every rank applies the same
update and the same decoupled decay to the same weights; a penalty added to each rank's loss is
averaged with the gradients, and ``WeightRegularization.add_to_grad()`` called after ``backward()``
adds it once per rank to the already-averaged gradient. Either way it counts exactly once.

What does: ``rule="toward_reference"`` snapshots the weights each rank holds when the optimizer is
built. If the model was initialized differently per rank and the optimizer built before DDP
broadcast rank 0's weights, the references differ and the ranks drift apart.
:func:`broadcast_references` makes them rank ``src``'s (or build the optimizer after wrapping the
model in DDP, which broadcasts the weights at construction).
"""

from __future__ import annotations

from typing import Protocol

import torch
import torch.distributed as dist
from torch import Tensor


class HasReferences(Protocol):
    def stored_references(self) -> list[tuple[Tensor, Tensor]]: ...


def broadcast_references(optimizer: HasReferences, src: int = 0, group: dist.ProcessGroup | None = None) -> int:
    """Overwrite every rank's stored references with rank ``src``'s; returns how many were sent.

    A collective: every rank of ``group`` must call it, with optimizers over the same parameters.
    """
    if not dist.is_available() or not dist.is_initialized():
        raise RuntimeError("broadcast_references: torch.distributed is not initialized (call init_process_group first)")
    references = [ref for _, ref in optimizer.stored_references()]
    with torch.no_grad():
        for ref in references:
            dist.broadcast(ref, src=src, group=group)
    return len(references)
