"""Running a study: the driver, and the executor seam it runs configurations through.

Data flows one way::

    Study --configurations()--> [RunConfig] --driver: Job per unfinished run--> Executor.run(jobs)
          --> stream of Events (EpochDone / RunEnded) --driver--> Store (one transaction per event)

The **driver** (:func:`run_study`) alone touches the store: it registers the study's runs, skips
finished and diverged ones, hands every other run to the executor as a :class:`Job` (with the
checkpoint to resume from, if any), and writes each :class:`Event` as it arrives.

An **executor** is anything with ``name`` and ``run(jobs) -> Iterator[Event]`` (:class:`Executor`).
Its contract:

- every job ends with exactly one terminal event: an :class:`EpochDone` with ``last=True``, or a
  :class:`RunEnded` (``diverged`` or ``failed``);
- a job's epochs arrive in order, each with the checkpoint taken right after it (events of different
  jobs may interleave);
- events are plain picklable data, so they can cross process or network boundaries; an epoch sent
  twice (a retried worker) is ignored by the store;
- an executor never writes the store and must give the numbers :func:`run_job` gives.

:class:`LocalExecutor` (the default) runs the jobs one after the other in this process, one torch
thread each. :class:`~decaylab.sandbox.batched.BatchedExecutor` (``batched``) trains each group of
compatible configurations as one stacked (vmapped) model where that is faster.
:class:`~decaylab.sandbox.ray_executor.RayExecutor` (``ray``) ships shards of jobs to a Ray cluster
as tasks and streams their events back.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from decaylab.sandbox.store import FILENAME, Store, StoreError
from decaylab.sandbox.study import Study
from decaylab.sandbox.train import DivergedError, EpochRecord, RunConfig, threads, train

STUDY_FILE = "study.toml"
LOCK_FILE = ".decaylab.lock"


@dataclass(frozen=True)
class Job:
    """One configuration to run, and the checkpoint ``(epoch, state)`` to resume it from (or None)."""

    run_id: str
    config: RunConfig
    checkpoint: tuple[int, bytes] | None = None


@dataclass(frozen=True)
class EpochDone:
    """Epoch ``record.epoch`` of run ``run_id`` finished; ``checkpoint`` is the state right after it.
    ``last``: it was the run's final epoch (the run is finished)."""

    run_id: str
    record: EpochRecord
    checkpoint: bytes | None
    last: bool


@dataclass(frozen=True)
class RunEnded:
    """Run ``run_id`` stopped early: ``status`` is ``diverged`` (NaN/inf; final) or ``failed``
    (an error; retried when the study is run again). ``message`` says why."""

    run_id: str
    status: str
    message: str


Event = EpochDone | RunEnded


class Executor(Protocol):
    """Runs a set of jobs and streams their events back (see the module docstring for the contract)."""

    name: str

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]: ...


def run_job(job: Job, *, num_threads: int = 1) -> Iterator[Event]:
    """Train one job, yielding an :class:`EpochDone` per epoch and ending with a terminal event.

    The reference semantics every executor must reproduce. Runs on ``num_threads`` torch threads
    (results are bit-identical for a fixed count).
    """
    state = job.checkpoint[1] if job.checkpoint else None
    with threads(num_threads):
        try:
            for record, run in train(job.config, state):
                yield EpochDone(job.run_id, record, None if run.finished else run.state_bytes(), run.finished)
        except DivergedError as error:
            yield RunEnded(job.run_id, "diverged", str(error))
        except Exception as error:  # recorded as failed; the study goes on and a re-run retries it
            yield RunEnded(job.run_id, "failed", f"{type(error).__name__}: {error}\n{traceback.format_exc()}")


@dataclass
class LocalExecutor:
    """Runs jobs one after the other in this process (``num_threads`` torch threads each)."""

    num_threads: int = 1
    name: str = "local"

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        for job in jobs:
            yield from run_job(job, num_threads=self.num_threads)


class ExecutorError(RuntimeError):
    """An executor cannot run here (a missing optional dependency, an unreachable cluster); the
    message starts with the option at fault and says what to do."""


def _batched_executor(**options: Any) -> Executor:
    from decaylab.sandbox.batched import BatchedExecutor  # torch.func and friends load only when used

    return BatchedExecutor(**options)


def _ray_executor(**options: Any) -> Executor:
    from decaylab.sandbox.ray_executor import RayExecutor  # imports Ray itself only when built

    return RayExecutor(**options)


EXECUTORS: dict[str, Callable[..., Executor]] = {
    "local": LocalExecutor,
    "batched": _batched_executor,
    "ray": _ray_executor,
}
"""Executors by name (``decaylab compare --executor NAME``); new executors register here."""


def make_executor(name: str, **options: Any) -> Executor:
    """The executor registered as ``name``, built with ``options`` (e.g. ``address`` for ``ray``)."""
    if name not in EXECUTORS:
        raise ValueError(f"executor: unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")
    return EXECUTORS[name](**options)


@dataclass
class StudyOutcome:
    """What :func:`run_study` did: run counts by final status and the wall time it took."""

    directory: Path
    total: int
    skipped: int
    counts: dict[str, int] = field(default_factory=dict)
    wall_s: float = 0.0
    executor: str = "local"


class StudyBusyError(StoreError):
    """Another process is running a study in the same directory."""


@contextlib.contextmanager
def study_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` for the duration (released if the process dies)."""
    with (directory / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise StudyBusyError(f"{directory} is being run by {holder}; wait for it or use another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


STUDY_FILE_MARK = "# decaylab study "


def open_study_store(study: Study, directory: Path) -> Store:
    """Open (or create) ``directory``'s store for ``study``, and write ``study.toml`` beside it.

    An existing ``study.toml`` that decaylab did not write (a user's own config kept there) is left alone.
    """
    directory.mkdir(parents=True, exist_ok=True)
    store = Store.for_study(directory / FILENAME, study.to_dict(), study.fingerprint)
    toml = directory / STUDY_FILE
    text = (
        f"{STUDY_FILE_MARK}{study.fingerprint}; re-run with: decaylab compare --config {toml} --out {directory}\n"
        + study.to_toml()
    )
    if not toml.exists() or (toml.read_text().startswith(STUDY_FILE_MARK) and toml.read_text() != text):
        toml.write_text(text)
    return store


ProgressCallback = Callable[[Event, RunConfig], None]


def run_study(
    study: Study,
    directory: Path,
    *,
    executor: Executor | None = None,
    on_event: ProgressCallback | None = None,
    on_start: Callable[[int, int], None] | None = None,
) -> StudyOutcome:
    """Run every unfinished configuration of ``study``, storing results in ``directory``.

    Finished and diverged runs are skipped; interrupted and failed runs resume from their last
    checkpoint. ``on_start(total, skipped)`` is called once the work is known; ``on_event(event,
    config)`` after each event is stored (for progress bars).
    """
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise StoreError(f"{directory} is a file, not a study directory; choose another --out")
    executor = executor or LocalExecutor()
    start = time.perf_counter()
    directory.mkdir(parents=True, exist_ok=True)
    with study_lock(directory), contextlib.closing(open_study_store(study, directory)) as store:
        configs = study.configurations()
        store.add_runs(configs)
        by_id = {c.run_id: c for c in configs}
        rows = store.runs()
        todo = [r for r in rows if r.status not in ("finished", "diverged")]
        skipped = len(rows) - len(todo)
        if on_start is not None:
            on_start(len(rows), skipped)
        jobs = [Job(r.run_id, by_id[r.run_id], store.start_attempt(r.run_id)) for r in todo]
        for event in executor.run(jobs):
            if isinstance(event, EpochDone):
                store.record_epoch(event.run_id, event.record, event.checkpoint, last=event.last)
            else:
                store.record_end(event.run_id, event.status, event.message)
            if on_event is not None:
                on_event(event, by_id[event.run_id])
        counts: dict[str, int] = {}
        for row in store.runs():
            counts[row.status] = counts.get(row.status, 0) + 1
    return StudyOutcome(directory, len(rows), skipped, counts, time.perf_counter() - start, executor.name)
