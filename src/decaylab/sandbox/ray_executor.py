"""The ``ray`` executor: a study's jobs as shards on a Ray cluster, results streamed back per shard.

Flow (the driver, :func:`~decaylab.sandbox.runner.run_study`, still alone writes the store)::

    jobs --planner(jobs, slots)--> shards --one Ray task each: run_shard(shard, shard_executor)-->
         ray.wait loop: as each task finishes, its events are yielded (and stored by the driver)

- **Sharding** is pluggable: ``planner`` groups the jobs, ``shard_executor`` runs one shard inside
  its task. With ``stack=True`` (the default) a shard is a group of compatible configurations
  (:func:`decaylab.sandbox.batched.shard_plan`, sized to fill the cluster's slots) run by a
  :class:`~decaylab.sandbox.batched.BatchedExecutor`, which measures on the worker's own hardware
  whether training the group as one stacked model pays and says what it chose (``on_plan`` gets
  each decision on the driver). ``stack=False``: :func:`~decaylab.sandbox.shards.shard_plan` and
  :class:`~decaylab.sandbox.runner.LocalExecutor` (one job after another, one torch thread).
- **Fault tolerance**: a worker that dies mid-shard (killed, out of memory, its node lost) makes Ray
  run the task again (``max_retries``); a shard's events reach the driver only when its task has
  finished, so a killed attempt records nothing, and the store ignores an epoch it already has.
  A shard that still fails marks its runs ``failed`` (re-running the study retries them from their
  checkpoints). A killed driver loses only the shards in flight: re-running the study resumes from
  the store. Stopping the driver (Ctrl-C) cancels its pending tasks.
- **Same numbers**: with ``stack=False`` a shard runs :func:`~decaylab.sandbox.runner.run_job` on one
  torch thread, so a worker gives bit-identical results to the local executor on the same CPU type
  and torch version; a stacked shard equals them within float rounding (tested to 1e-5).
- **Code on the workers**: decaylab's own package is shipped with each task (``runtime_env``
  ``py_modules``: the driver's exact source), so workers need only its dependencies (torch, numpy,
  scikit-learn, at the driver's versions). ``ship_code=False`` uses the workers' installed decaylab.
- **Where**: ``address`` is a running cluster (``HOST:PORT`` of its head, ``ray://HOST:PORT``, or
  ``auto``); without it a local Ray instance is started for the run (loopback only, no dashboard,
  no usage reporting) and stopped afterwards. A session the caller already opened with
  ``ray.init`` is used as it is.

Ray is imported only when this executor is built, so decaylab works without the ``ray`` extra.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import decaylab
from decaylab.sandbox.runner import EpochDone, Event, Executor, ExecutorError, Job, LocalExecutor, RunEnded
from decaylab.sandbox.shards import ShardPlanner, check_plan, shard_plan

INSTALL_HINT = "pip install 'decaylab[ray]'"
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""Makes Ray keep 127.0.0.1 as the node address (by default it swaps loopback for the machine's
network address and listens on all interfaces); read by Ray when it is imported."""
LOCAL_ENV = {**LOOPBACK_ENV, "RAY_USAGE_STATS_ENABLED": "0"}
"""Set (unless already set) before a local instance is started: loopback only, no usage reporting."""
CONNECT_TIMEOUT_S = 5.0


def import_ray(*, loopback: bool) -> ModuleType:
    """Import Ray, or raise :class:`ExecutorError` saying how to install it.

    ``loopback``: the cluster is on this machine's loopback (a local instance or a 127.0.0.1 address);
    :data:`LOCAL_ENV` is then set first, unless the variables are set already or Ray was imported
    before (then Ray keeps the settings it was imported with).
    """
    if loopback and "ray" not in sys.modules:
        for name, value in LOCAL_ENV.items():
            os.environ.setdefault(name, value)
    try:
        import ray
    except ImportError as error:
        raise ExecutorError(f"executor: ray needs Ray, which is not installed ({error}); {INSTALL_HINT}") from None
    return ray


def parse_address(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``HOST:PORT`` or ``ray://HOST:PORT`` (IPv6 hosts in brackets); None for ``auto``.

    Raises ValueError naming ``address`` for anything else.
    """
    text = address.strip()
    if text == "auto":
        return None
    rest = text.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"address: expected HOST:PORT, ray://HOST:PORT or auto, got {address!r}")
    return host, int(port)


def is_loopback(address: str | None) -> bool:
    """Whether ``address`` is on this machine's loopback (None: a local instance, which is)."""
    if address is None:
        return True
    parsed = parse_address(address)
    if parsed is None:
        return False
    host = parsed[0]
    if host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def check_reachable(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Raise :class:`ExecutorError` unless something accepts TCP connections at ``address``.

    ``ray.init`` itself waits minutes on an address where nothing listens; this answers in seconds.
    """
    parsed = parse_address(address)
    if parsed is None:
        return
    try:
        with socket.create_connection(parsed, timeout=timeout):
            pass
    except OSError as error:
        raise ExecutorError(
            f"address: no Ray cluster answers at {address} ({error}); start its head there "
            f"(ray start --head --port {parsed[1]}) or give the address `ray start --head` printed"
        ) from None


def code_runtime_env() -> dict[str, Any]:
    """A Ray ``runtime_env`` that ships this process's decaylab package to the workers."""
    return {"py_modules": [str(Path(decaylab.__file__).parent)], "excludes": ["__pycache__"]}


def run_shard(shard: Sequence[Job], executor: Executor) -> tuple[list[Event], list[Any]]:
    """The body of one Ray task: run ``shard`` with ``executor``; all its events, and the plan
    decisions the executor made for it (an executor's ``decisions`` list, if it keeps one)."""
    decisions = getattr(executor, "decisions", None)
    before = len(decisions) if decisions is not None else 0
    events = list(executor.run(shard))
    return events, list(decisions[before:]) if decisions is not None else []


def complete(shard: Sequence[Job], events: Iterable[Event], reason: str) -> Iterator[Event]:
    """``events``, then a ``failed`` :class:`RunEnded` (saying ``reason``) for each job of ``shard``
    that got no terminal event: every job ends exactly once, whatever happened to its shard."""
    ended: set[str] = set()
    for event in events:
        if isinstance(event, RunEnded) or (isinstance(event, EpochDone) and event.last):
            ended.add(event.run_id)
        yield event
    for job in shard:
        if job.run_id not in ended:
            yield RunEnded(job.run_id, "failed", reason)


@dataclass
class RayExecutor:
    """Runs jobs as shards on a Ray cluster (see the module docstring).

    ``address``: the cluster (None: start a local instance with ``num_cpus`` CPUs, default all).
    ``stack``: shards are stackable groups run by a batched executor (default) or single jobs run
    one after another. ``planner`` / ``shard_executor``: override how jobs are grouped and how a
    task runs its shard; each task reserves ``cpus_per_shard`` CPUs and is run again up to
    ``max_retries`` times if its worker dies. ``on_plan(batch)``: called on the driver with each
    plan decision a shard's executor made, as that shard's results arrive.
    ``ship_code``: send this decaylab's source with the tasks (else workers import their own).
    ``compile``: the default shard executor compiles each stacked shard's forward and backward
    (:mod:`decaylab.sandbox.batched.compiled`); only with ``stack`` and no ``shard_executor`` of your own.
    """

    address: str | None = None
    stack: bool = True
    compile: bool = False
    planner: ShardPlanner | None = None
    shard_executor: Executor | None = None
    on_plan: Callable[[Any], None] | None = None
    cpus_per_shard: int = 1
    max_retries: int = 3
    num_cpus: int | None = None
    ship_code: bool = True
    name: str = "ray"

    def __post_init__(self) -> None:
        if self.address is not None:
            if not isinstance(self.address, str) or not self.address.strip():
                raise ValueError(f"address: expected HOST:PORT, ray://HOST:PORT or auto, got {self.address!r}")
            parse_address(self.address)
            if self.num_cpus is not None:
                raise ValueError("num_cpus: only for a local instance; a cluster at an address has its own CPUs")
        if not isinstance(self.stack, bool):
            raise ValueError(f"stack: expected True or False, got {self.stack!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile: expected True or False, got {self.compile!r}")
        if self.compile and not self.stack:
            raise ValueError("compile: compiles stacked shards; it does nothing with stack=False (--no-stack)")
        if self.compile and self.shard_executor is not None:
            raise ValueError("compile: give your shard_executor its own compile=True instead")
        if self.stack:
            from decaylab.sandbox import batched  # torch.func loads only when stacking is asked for

            self.planner = self.planner or batched.shard_plan
            self.shard_executor = self.shard_executor or batched.BatchedExecutor(compile=self.compile)
        else:
            self.planner = self.planner or shard_plan
            self.shard_executor = self.shard_executor or LocalExecutor()
        if self.num_cpus is not None and (isinstance(self.num_cpus, bool) or self.num_cpus < 1):
            raise ValueError(f"num_cpus: expected a whole number >= 1, got {self.num_cpus!r}")
        if isinstance(self.cpus_per_shard, bool) or not isinstance(self.cpus_per_shard, int) or self.cpus_per_shard < 1:
            raise ValueError(f"cpus_per_shard: expected a whole number >= 1, got {self.cpus_per_shard!r}")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int) or self.max_retries < 0:
            raise ValueError(f"max_retries: expected a whole number >= 0, got {self.max_retries!r}")
        # A missing Ray is reported now, before any study starts.
        self._ray = import_ray(loopback=is_loopback(self.address))

    @contextlib.contextmanager
    def session(self) -> Iterator[ModuleType]:
        """Ray, connected for the duration: to ``address``, or to a local instance started (and stopped) here,
        with :func:`code_runtime_env` as the job's runtime environment when ``ship_code``.

        A session the caller already opened is used as it is and left open (Ray ships local code
        only at ``ray.init``: pass ``runtime_env=code_runtime_env()`` there to ship decaylab).
        """
        ray = self._ray
        if ray.is_initialized():
            yield ray
            return
        runtime_env = code_runtime_env() if self.ship_code else None
        if self.address is None:
            for name, value in LOCAL_ENV.items():
                os.environ.setdefault(name, value)
            ray.init(address="local", num_cpus=self.num_cpus, include_dashboard=False, runtime_env=runtime_env)
        else:
            check_reachable(self.address)
            try:
                ray.init(address=self.address, runtime_env=runtime_env)
            except (ConnectionError, TimeoutError, RuntimeError) as error:
                raise ExecutorError(
                    f"address: could not connect to the Ray cluster at {self.address}: {error}"
                ) from None
        try:
            yield ray
        finally:
            ray.shutdown()

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        jobs = list(jobs)
        if not jobs:
            return
        with self.session() as ray:
            slots = max(1, int(ray.cluster_resources().get("CPU", 1)) // self.cpus_per_shard)
            shards = self.planner(jobs, slots)
            check_plan(jobs, shards)
            options: dict[str, Any] = {
                "num_cpus": self.cpus_per_shard,
                "max_retries": self.max_retries,
                "retry_exceptions": False,  # run_job turns training errors into events; only lost workers retry
            }
            task = ray.remote(run_shard).options(**options)
            pending = {task.remote(shard, self.shard_executor): shard for shard in shards}
            try:
                while pending:
                    done, _ = ray.wait(list(pending), num_returns=1)
                    for ref in done:
                        shard = pending.pop(ref)
                        yield from self._results(ray, ref, shard)
            finally:  # the driver stopped early (Ctrl-C, an error): free the cluster
                for ref in pending:
                    with contextlib.suppress(Exception):
                        ray.cancel(ref, force=True)

    def _results(self, ray: ModuleType, ref: Any, shard: Sequence[Job]) -> Iterator[Event]:
        """A finished task's events; a task that failed for good marks its runs ``failed``."""
        try:
            events, decisions = ray.get(ref)
            reason = f"ray: the shard executor {self.shard_executor.name!r} gave this run no final event"
        except ray.exceptions.RayError as error:
            events, decisions = [], []
            reason = f"ray: {self._failure(ray, error)}; run the study again to retry it"
        if self.on_plan is not None:
            for decision in decisions:
                self.on_plan(decision)
        yield from complete(shard, events, reason)

    def _failure(self, ray: ModuleType, error: Exception) -> str:
        """Why a task failed for good, in one line."""
        cause = getattr(error, "cause", None)
        if isinstance(error, ray.exceptions.RayTaskError) and cause is not None:  # raised by the shard's code
            return f"this run's shard raised {type(cause).__name__}: {_first_line(str(cause))}"
        return (
            f"this run's shard was lost {self.max_retries + 1} time(s) "
            f"({type(error).__name__}: {_first_line(str(error))})"
        )


def _first_line(text: str) -> str:
    lines = re.sub(r"\x1b\[[0-9;]*m", "", text).strip().splitlines()  # Ray colors its messages
    return lines[0] if lines else ""
