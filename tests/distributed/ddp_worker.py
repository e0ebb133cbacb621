"""Training loops shared by the DDP test's worker processes and its single-process reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from decaylab import RULES, SGD, SGDW, AdamW, DecayWrapper, WeightRegularization
from decaylab.distributed import broadcast_references

STEPS = 12
BATCH = 16
WORLD = 2


def _l1(rule: str) -> float:
    return 0.01 if rule == "elastic_net" else 0.0


OPTIMIZERS: dict[str, Callable[[list[nn.Parameter]], torch.optim.Optimizer]] = {
    "sgd_plain": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    "sgd_coupled": lambda ps: SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    "penalty_loss": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    "penalty_grad": lambda ps: SGD(ps, lr=0.1, momentum=0.9),
    **{
        f"sgdw_{r}": (
            lambda ps, r=r: SGDW(
                ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05, rule=r, l1_decay=_l1(r), scale="lr"
            )
        )
        for r in RULES
    },
    **{f"adamw_{r}": (lambda ps, r=r: AdamW(ps, lr=0.01, weight_decay=0.5, rule=r, l1_decay=_l1(r))) for r in RULES},
    **{
        f"wrapper_adam_{r}": (
            lambda ps, r=r: DecayWrapper(torch.optim.Adam(ps, lr=0.01), weight_decay=0.5, rule=r, l1_decay=_l1(r))
        )
        for r in RULES
    },
}


def make_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).double()


def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    return torch.randn(BATCH, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (BATCH,), generator=g)


def train(
    name: str, model: nn.Module, forward: nn.Module, optimizer: torch.optim.Optimizer, x, y
) -> list[torch.Tensor]:
    penalty = WeightRegularization(model, 0.01, p=2) if name.startswith("penalty") else None
    for _ in range(STEPS):
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(forward(x), y)
        if name == "penalty_loss":
            loss = loss + penalty.penalty()
        loss.backward()
        if name == "penalty_grad":
            penalty.add_to_grad()
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()]


def single_process(name: str, seed: int = 0) -> list[torch.Tensor]:
    model = make_model(seed)
    x, y = data()
    return train(name, model, model, OPTIMIZERS[name](list(model.parameters())), x, y)


def ddp_worker(rank: int, rendezvous: str, out_dir: str) -> None:
    """One rank: every configuration on its half of the batch, plus the reference-sync cases."""
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    x, y = data()
    half = BATCH // WORLD
    x, y = x[rank * half : (rank + 1) * half], y[rank * half : (rank + 1) * half]
    results: dict[str, list[torch.Tensor]] = {}
    for name, make in OPTIMIZERS.items():
        model = make_model(0)
        ddp = nn.parallel.DistributedDataParallel(model)
        results[name] = train(name, model, ddp, make(list(model.parameters())), x, y)
    # Each rank initializes differently and builds the optimizer before DDP broadcasts rank 0's
    # weights: the references differ until broadcast_references makes them rank 0's.
    for synced in (True, False):
        model = make_model(1000 + rank)
        optimizer = OPTIMIZERS["sgdw_toward_reference"](list(model.parameters()))
        ddp = nn.parallel.DistributedDataParallel(model)
        if synced:
            broadcast_references(optimizer)
        results[f"reference_{'synced' if synced else 'unsynced'}"] = train(
            "sgdw_toward_reference", model, ddp, optimizer, x, y
        )
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()
