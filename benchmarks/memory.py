"""Peak memory of one call, from torch's own allocation record.

Method: ``torch.profiler.profile(profile_memory=True)`` records every allocation and free that
goes through torch's CPU (and CUDA) allocators during the call, with its size and time: tensors
made by eager ops, by foreach kernels and by Inductor's generated code alike. Replaying those
events in time order gives the running total of bytes allocated *during* the call; its maximum is
the call's transient peak (temporaries), and its final value the bytes the call kept (new state).
Python objects and memory allocated outside torch are not counted; for an optimizer step those
are bytes, not megabytes.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import NamedTuple

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
    largest_bytes: int  # the largest single allocation
    allocations: int


def allocation_profile(fn: Callable[[], object]) -> AllocationProfile:
    """Call ``fn()`` once under the profiler and summarize its allocations."""
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


def peak_transient_bytes(fn: Callable[[], object]) -> int:
    """The most bytes ``fn()`` had allocated at once during one call (see :func:`allocation_profile`)."""
    return allocation_profile(fn).peak_bytes
