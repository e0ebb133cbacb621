"""Audit many optimizers in worker processes, each with a time limit, so none can hang or crash the audit.

Each worker audits one optimizer at a time. A worker that runs past ``timeout`` seconds on one
optimizer is killed and replaced (that optimizer's row says so); one that dies (a segfault in
third-party code, ``os._exit``...) is replaced the same way. Workers are forked where the platform
allows it, so they inherit every imported class (including ones defined in tests); elsewhere the
targets are pickled to spawned workers. ``jobs=0`` audits in this process, without a time limit.

A tqdm progress bar is shown on standard error when it is a terminal (``progress=None``).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from tqdm import tqdm

from decaylab.audit.auditor import audit_target
from decaylab.audit.builder import Target
from decaylab.audit.result import AuditResult
from decaylab.audit.settings import ProbeSettings


class _Bar(tqdm):
    """tqdm without its monitor thread: workers are forked while the bar is alive."""

    monitor_interval = 0


DEFAULT_TIMEOUT = 30.0
"""Seconds one optimizer may take (the slowest real one takes well under 5 s)."""


def safe_audit(target: Target, settings: ProbeSettings) -> AuditResult:
    """:func:`audit_target`, with any unexpected error turned into a row."""
    start = time.perf_counter()
    try:
        return audit_target(target, settings)
    except Exception as error:  # a bug of the audit itself must not lose the other rows
        return AuditResult.not_probed(
            target.name, f"audit error: {type(error).__name__}: {error}", seconds=time.perf_counter() - start
        )


def _worker_main(conn: Connection, targets: Sequence[Target] | None, settings: ProbeSettings) -> None:
    import torch

    torch.set_num_threads(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # third-party prints (also from C) must not garble the report
    os.dup2(devnull, 2)
    while True:
        try:
            message = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if message is None:
            return
        index, target = message
        if target is None and targets is not None:
            target = targets[index]
        conn.send((index, safe_audit(target, settings).to_dict()))


@dataclass
class _Slot:
    process: Any
    conn: Connection
    index: int | None = None
    started: float = 0.0


def _warm_up() -> None:
    """Construct one optimizer here, so that forked workers inherit what torch imports lazily on the
    first construction (torch._dynamo: seconds), instead of each worker importing it again."""
    import torch

    torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)


class _Pool:
    def __init__(self, targets: Sequence[Target], settings: ProbeSettings, jobs: int) -> None:
        self.fork = "fork" in mp.get_all_start_methods()
        self.context = mp.get_context("fork" if self.fork else "spawn")
        if self.fork:
            _warm_up()
        self.targets = targets
        self.settings = settings
        self.slots = [self._start() for _ in range(jobs)]

    def _start(self) -> _Slot:
        parent, child = self.context.Pipe()
        inherited = self.targets if self.fork else None
        process = self.context.Process(target=_worker_main, args=(child, inherited, self.settings), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent)

    def assign(self, slot: _Slot, index: int) -> None:
        slot.index, slot.started = index, time.monotonic()
        slot.conn.send((index, None if self.fork else self.targets[index]))

    def replace(self, slot: _Slot) -> None:
        slot.process.kill()
        slot.process.join(timeout=5)
        slot.conn.close()
        fresh = self._start()
        slot.process, slot.conn, slot.index = fresh.process, fresh.conn, None

    def close(self) -> None:
        for slot in self.slots:
            with contextlib.suppress(BrokenPipeError, OSError):
                slot.conn.send(None)
        for slot in self.slots:
            slot.process.join(timeout=2)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join(timeout=2)
            slot.conn.close()


def run_audit(
    targets: Sequence[Target],
    *,
    settings: ProbeSettings | None = None,
    jobs: int = 2,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool | None = None,
    on_result: Callable[[AuditResult], None] | None = None,
) -> list[AuditResult]:
    """Audit ``targets`` (results in the same order). ``jobs=0``: in this process, no time limit."""
    if jobs < 0:
        raise ValueError(f"jobs: expected an integer >= 0, got {jobs}")
    if not timeout > 0:
        raise ValueError(f"timeout: expected a number of seconds > 0, got {timeout}")
    settings = settings or ProbeSettings()
    show = sys.stderr.isatty() if progress is None else progress
    results: list[AuditResult | None] = [None] * len(targets)
    bar = _Bar(total=len(targets), disable=not show, desc="audit", unit="opt", file=sys.stderr, leave=False)

    def done(index: int, result: AuditResult) -> None:
        results[index] = result
        bar.update(1)
        bar.set_postfix_str(result.name[-40:], refresh=False)
        if on_result is not None:
            on_result(result)

    try:
        if jobs == 0:
            for i, target in enumerate(targets):
                done(i, safe_audit(target, settings))
        else:
            _run_pool(targets, settings, min(jobs, max(len(targets), 1)), timeout, done)
    finally:
        bar.close()
    return [r for r in results if r is not None]


def _run_pool(
    targets: Sequence[Target],
    settings: ProbeSettings,
    jobs: int,
    timeout: float,
    done: Callable[[int, AuditResult], None],
) -> None:
    pending = deque(range(len(targets)))
    pool = _Pool(targets, settings, jobs)
    try:
        while True:
            for slot in pool.slots:
                if slot.index is None and pending:
                    pool.assign(slot, pending.popleft())
            busy = [slot for slot in pool.slots if slot.index is not None]
            if not busy:
                break
            now = time.monotonic()
            wait_for = max(0.0, min(slot.started + timeout - now for slot in busy))
            ready = wait([slot.conn for slot in busy], timeout=wait_for)
            for slot in busy:
                index = slot.index
                assert index is not None
                if slot.conn in ready:
                    try:
                        got, data = slot.conn.recv()
                    except (EOFError, OSError):
                        slot.process.join(timeout=2)
                        code = slot.process.exitcode
                        pool.replace(slot)
                        done(
                            index,
                            AuditResult.not_probed(
                                targets[index].name,
                                f"the worker process died while probing it (exit code {code})",
                                status="crashed",
                                seconds=time.monotonic() - slot.started,
                            ),
                        )
                        continue
                    slot.index = None
                    done(got, AuditResult.from_dict(data))
                elif time.monotonic() - slot.started >= timeout:
                    pool.replace(slot)
                    done(
                        index,
                        AuditResult.not_probed(
                            targets[index].name,
                            f"no result within the time limit of {timeout:g} s (hangs or is too slow); the audit went on",
                            status="timeout",
                            seconds=timeout,
                        ),
                    )
    finally:
        pool.close()
