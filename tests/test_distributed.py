"""decaylab under DistributedDataParallel (gloo, 2 CPU processes) equals one process on the full batch."""

from __future__ import annotations

import pytest
import torch
import torch.multiprocessing as mp

from decaylab import SGDW
from decaylab.distributed import broadcast_references
from tests.distributed.ddp_worker import OPTIMIZERS, WORLD, ddp_worker, single_process

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")


@pytest.fixture(scope="module")
def ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, list[torch.Tensor]]]:
    directory = tmp_path_factory.mktemp("ddp")
    mp.spawn(ddp_worker, args=(str(directory / "rendezvous"), str(directory)), nprocs=WORLD, join=True)
    return [torch.load(directory / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_ddp_equals_one_process_on_the_full_batch(ranks, name: str) -> None:
    """Every optimizer and rule, the wrapper, and the penalty in both modes (neither doubled nor skipped)."""
    expected = single_process(name)
    for rank in ranks:
        for got, want in zip(rank[name], expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)


def test_both_penalty_modes_agree_and_differ_from_no_penalty() -> None:
    """So the DDP comparison above would catch a penalty that was skipped or counted twice."""
    plain, as_loss, as_grad = (single_process(n) for n in ("sgd_plain", "penalty_loss", "penalty_grad"))
    for a, b in zip(as_loss, as_grad, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert max((a - b).abs().max().item() for a, b in zip(plain, as_loss, strict=True)) > 1e-4


def test_broadcast_references_keeps_one_reference_across_ranks(ranks) -> None:
    expected = single_process("sgdw_toward_reference", seed=1000)  # rank 0's initialization
    for rank in ranks:
        for got, want in zip(rank["reference_synced"], expected, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-8)


def test_without_the_broadcast_ranks_drift_apart(ranks) -> None:
    drift = max(
        (a - b).abs().max().item()
        for a, b in zip(ranks[0]["reference_unsynced"], ranks[1]["reference_unsynced"], strict=True)
    )
    assert drift > 1e-3


def test_broadcast_references_needs_an_initialized_process_group() -> None:
    opt = SGDW([torch.nn.Parameter(torch.ones(2))], weight_decay=0.1, rule="toward_reference")
    with pytest.raises(RuntimeError, match="not initialized"):
        broadcast_references(opt)
