"""Peak memory of one call, from torch's own allocation record.

Method: ``torch.profiler.profile(profile_memory=True)`` records every allocation and free that
goes through torch's CPU (and CUDA) allocators during the call, with its size and time: tensors
made by eager ops, by foreach kernels and by Inductor's generated code alike. Replaying those
events in time order gives the running total of bytes allocated *during* the call; its maximum is
the call's transient peak (temporaries), and its final value the bytes the call kept (new state).
Python objects and memory allocated outside torch are not counted; for an optimizer step those
are bytes, not megabytes.

On a CUDA device the figures come from the caching allocator's own counters instead
(``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, around a synchronized
call): the same peak and kept bytes and the number of allocations, but not the largest single one.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import NamedTuple

import torch
from torch.profiler import ProfilerActivity, profile


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null: the profiler's C++ side prints a line at start and stop."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class AllocationProfile(NamedTuple):
    peak_bytes: int  # the largest running total of bytes allocated and not yet freed during the call
    kept_bytes: int  # allocated during the call and still alive after it
    largest_bytes: int | None  # the largest single allocation (None: not recorded, on CUDA)
    allocations: int


def allocation_profile(fn: Callable[[], object], device: torch.device | str = "cpu") -> AllocationProfile:
    """Call ``fn()`` once and summarize what it allocated on ``device``."""
    device = torch.device(device)
    if device.type == "cuda":
        return _cuda_allocation_profile(fn, device)
    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    events.sort(key=lambda e: e.start_ns())
    total = peak = largest = count = 0
    for event in events:
        size = event.nbytes()
        total += size
        peak = max(peak, total)
        if size > 0:
            largest = max(largest, size)
            count += 1
    return AllocationProfile(peak, total, largest, count)


def _cuda_allocation_profile(fn: Callable[[], object], device: torch.device) -> AllocationProfile:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    count = torch.cuda.memory_stats(device).get("allocation.all.allocated", 0)
    fn()
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    kept = torch.cuda.memory_allocated(device) - base
    count = torch.cuda.memory_stats(device).get("allocation.all.allocated", 0) - count
    return AllocationProfile(peak, kept, None, count)


def peak_transient_bytes(fn: Callable[[], object]) -> int:
    """The most bytes ``fn()`` had allocated at once during one call (see :func:`allocation_profile`)."""
    return allocation_profile(fn).peak_bytes
