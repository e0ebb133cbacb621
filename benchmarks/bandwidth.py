"""The floor of a step: the bytes it must move divided by the machine's in-place memory bandwidth.

A step's *traffic* counts, per parameter element, the tensors it must read and those it must
write (one float32 each): SGD with momentum reads ``w, g, buf`` and writes ``w, buf`` (5);
AdamW reads ``w, g, m, v`` and writes ``w, m, v`` (7); ``rule="toward_reference"`` also reads
``w_ref``; the penalty's gradient mode reads ``w, g`` and writes ``g`` (3). Its *footprint* is the
distinct tensors it touches (3, 4, ... parameter-sized tensors).

The bandwidth is measured in the same run with streaming in-place kernels on float32 buffers
(in place, so no write-allocate traffic, like an optimizer step):

========  ====================  =========================  ======================
kernel    operation             traffic per element of a   buffers
========  ====================  =========================  ======================
scale     ``a *= 1``            read a, write a (2)        a = the footprint
add       ``a += b``            read a, b, write a (3)     a, b = half each
fma       ``a += b * c``        read a, b, c, write a (4)  a, b, c = a third each
========  ====================  =========================  ======================

Each kernel's buffers together have the step's footprint, so caches help the floor exactly as
much as they can help the step (this machine's L3 is as large as some footprints). Each kernel
is timed as the steps are (:func:`call_seconds`: the median of ``repeats`` single calls on CPU,
the mean over a block of ``repeats`` queued calls on CUDA); the bandwidth is the best of the three
kernels, so the floor is what the fastest simple in-place stream achieves on these bytes, with the
same threads, on the same device.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from benchmarks.device import synchronizer

FLOAT_BYTES = 4


@dataclass(frozen=True)
class Traffic:
    """Parameter-sized float32 tensors a step reads and writes (every written tensor is also read)."""

    reads: int
    writes: int

    @property
    def moved(self) -> int:
        return self.reads + self.writes

    @property
    def footprint(self) -> int:
        return self.reads

    def bytes_moved(self, numel: int) -> int:
        return self.moved * numel * FLOAT_BYTES

    def footprint_bytes(self, numel: int) -> int:
        return self.footprint * numel * FLOAT_BYTES


@dataclass(frozen=True)
class Bandwidth:
    footprint_bytes: int
    bytes_per_second: float  # the best kernel's
    kernel: str
    per_kernel: dict[str, float]  # bytes per second of each kernel

    @property
    def gb_per_s(self) -> float:
        return self.bytes_per_second / 1e9


# The streams each bandwidth kernel reads and writes, per element, as a step's traffic.
KERNEL_TRAFFIC = {
    "scale": Traffic(reads=1, writes=1),
    "add": Traffic(reads=2, writes=1),
    "fma": Traffic(reads=3, writes=1),
}


def _no_wait() -> None:
    return None


def median_seconds(
    fn: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] = _no_wait
) -> float:
    """Median wall seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones (which touch
    the pages and warm the caches). ``sync`` waits for the device's queued work (CUDA: see
    :mod:`benchmarks.device`); it is called before each clock reading."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def block_seconds(
    fn: Callable[[], object], repeats: int, warmup: int = 1, sync: Callable[[], None] = _no_wait
) -> float:
    """Mean wall seconds per call of ``repeats`` calls queued back to back between two waits for
    the device: how a GPU runs a stream of kernels, without a launch-and-wait per call."""
    for _ in range(warmup):
        fn()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    sync()
    return (time.perf_counter() - start) / repeats


def call_seconds(fn: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> float:
    """One call's time on ``device``: the median of single calls on CPU, :func:`block_seconds` on CUDA."""
    if device.type == "cuda":
        return block_seconds(fn, repeats, warmup, synchronizer(device))
    return median_seconds(fn, repeats, warmup)


class BandwidthMeter:
    """Measures the in-place bandwidth for any footprint up to ``max_footprint_bytes`` from one
    buffer on ``device``, each kernel timed as :func:`call_seconds` times a step there."""

    def __init__(self, max_footprint_bytes: int, device: torch.device | str = "cpu") -> None:
        elements = max(3, -(-max_footprint_bytes // FLOAT_BYTES))
        self._device = torch.device(device)
        self._pool = torch.ones(elements, dtype=torch.float32, device=self._device)

    def measure(self, footprint_bytes: int, repeats: int = 7) -> Bandwidth:
        n = min(self._pool.numel(), max(3, footprint_bytes // FLOAT_BYTES))
        pool = self._pool[:n]
        half, third = n // 2, n // 3
        a2, b2 = pool[:half], pool[half : 2 * half]
        a3, b3, c3 = pool[:third], pool[third : 2 * third], pool[2 * third : 3 * third]
        b3.fill_(0.0)  # a += 0 * c keeps the values (and away from overflow or denormals)
        b2.fill_(0.0)
        kernels = {  # each kernel and the elements of each of its streams
            "scale": (lambda: pool.mul_(1.0), n),
            "add": (lambda: a2.add_(b2), half),
            "fma": (lambda: a3.addcmul_(b3, c3), third),
        }
        per_kernel = {
            name: KERNEL_TRAFFIC[name].bytes_moved(elements) / call_seconds(fn, repeats, 1, self._device)
            for name, (fn, elements) in kernels.items()
        }
        best = max(per_kernel, key=per_kernel.__getitem__)
        pool.fill_(1.0)
        return Bandwidth(n * FLOAT_BYTES, per_kernel[best], best, per_kernel)


def floor_seconds(traffic: Traffic, numel: int, bandwidth: Bandwidth) -> float:
    """The time to move the step's bytes at the measured in-place bandwidth."""
    return traffic.bytes_moved(numel) / bandwidth.bytes_per_second


def same_streams_kernel(traffic: Traffic) -> str | None:
    """The bandwidth kernel that reads and writes as many streams as ``traffic`` (the penalty's
    ``g += f(w)`` is ``add``'s ``a += b``), or None. The floor uses the *best* kernel, which on
    some machines is a kernel with fewer streams; a step's time against the kernel with its own
    streams says how much of its distance to the floor any code moving those streams would have."""
    return next((name for name, t in KERNEL_TRAFFIC.items() if t == traffic), None)


def same_streams_seconds(traffic: Traffic, numel: int, bandwidth: Bandwidth) -> float | None:
    """The time :func:`same_streams_kernel` takes to move the step's bytes, or None if there is none."""
    kernel = same_streams_kernel(traffic)
    if kernel is None:
        return None
    return traffic.bytes_moved(numel) / bandwidth.per_kernel[kernel]
