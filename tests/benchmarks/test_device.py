"""The benchmark's device handling: the choice is checked, and timing waits for queued work.

No GPU is lent to CI or to the development machine, so the CUDA branches are exercised only
where CUDA is available (the tests marked skipif); everywhere else the refusal is tested.
"""

from __future__ import annotations

import pytest
import torch

from benchmarks.bandwidth import median_seconds
from benchmarks.cases import Workspace
from benchmarks.device import describe, resolve_device, synchronizer
from benchmarks.memory import allocation_profile

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_cpu_is_accepted_as_it_is() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert describe(torch.device("cpu")) == "cpu"


@pytest.mark.parametrize("name", ["tpu", "gpu", "mps"])
def test_other_devices_are_refused_naming_the_option(name: str) -> None:
    with pytest.raises(ValueError, match=r"^--device: expected one of cpu, cuda"):
        resolve_device(name)


@no_cuda
def test_cuda_without_a_gpu_is_refused_with_what_torch_was_built_for() -> None:
    with pytest.raises(ValueError, match=r"^--device cuda: no CUDA device is available \(torch .*\)"):
        resolve_device("cuda")


def test_median_seconds_waits_for_the_device_before_each_clock_reading() -> None:
    calls: list[str] = []
    median_seconds(lambda: calls.append("fn"), repeats=2, warmup=1, sync=lambda: calls.append("sync"))
    assert calls == ["fn", "sync", "fn", "sync", "sync", "fn", "sync"]


def test_workspace_values_come_from_the_seed_alone() -> None:
    """Drawn on the CPU, then moved: the same numbers whatever ``device`` is."""
    ws = Workspace([(3, 4), (5,)], seed=7, device="cpu")
    gen = torch.Generator().manual_seed(7)
    weights = [torch.randn(s, generator=gen) * 0.05 for s in [(3, 4), (5,)]]
    grads = [torch.randn(s, generator=gen) * 1e-3 for s in [(3, 4), (5,)]]
    for p, w, g in zip(ws.params, weights, grads, strict=True):
        assert torch.equal(p.detach(), w) and torch.equal(p.grad, g)


@cuda
def test_cuda_timing_memory_and_workspace() -> None:
    device = resolve_device("cuda")
    ws = Workspace([(1024,)], device=device)
    assert ws.params[0].device == device and ws.params[0].grad.device == device
    with torch.no_grad():
        assert median_seconds(lambda: ws.params[0].mul_(1.0), 3, sync=synchronizer(device)) > 0
        kept = []
        profile = allocation_profile(lambda: kept.append(ws.params[0] * 2), device)
    assert profile.peak_bytes >= 4096 and profile.kept_bytes >= 4096 and profile.largest_bytes is None
    assert Workspace([(1024,)]).params[0].equal(ws.params[0].cpu())


def test_block_seconds_waits_once_before_and_once_after_the_block() -> None:
    from benchmarks.bandwidth import block_seconds

    calls: list[str] = []
    assert block_seconds(lambda: calls.append("fn"), repeats=3, warmup=1, sync=lambda: calls.append("sync")) >= 0
    assert calls == ["fn", "sync", "fn", "fn", "fn", "sync"]
