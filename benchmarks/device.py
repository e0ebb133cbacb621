"""Where the benchmark runs: the device, how to wait for its queued work, and what to call it.

On CPU a call is done when it returns. On CUDA a call only queues kernels, so every timing
waits for the device (``torch.cuda.synchronize``) before it reads the clock, at the start and at
the end of a block of queued calls (:func:`benchmarks.bandwidth.call_seconds`); the floor's
bandwidth kernels are timed the same way, so on a GPU the floor is the in-place HBM bandwidth
measured on that GPU.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

DEVICES = ("cpu", "cuda")


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)`` after checking this machine has it (ValueError naming ``--device`` if not)."""
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ValueError(f"--device: expected one of {', '.join(DEVICES)} (or cuda:N), got {name!r}") from error
    if device.type not in DEVICES:
        raise ValueError(f"--device: expected one of {', '.join(DEVICES)} (or cuda:N), got {name!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            built = "built without CUDA" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise ValueError(f"--device {name}: no CUDA device is available (torch {torch.__version__}, {built})")
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
        device = torch.device("cuda", index)
    return device


def synchronizer(device: torch.device) -> Callable[[], None]:
    """A function that returns once every kernel queued on ``device`` has finished."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({device})"
    return "cpu"
