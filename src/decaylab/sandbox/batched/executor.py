"""The ``batched`` executor: each group of compatible jobs as one stacked model, where that pays."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from decaylab.optim._validation import check_bool
from decaylab.sandbox.batched.engine import StackedGroup, failure
from decaylab.sandbox.batched.plan import MAX_SIZE, PLANS, Batch, PlanTiming, decide, group_jobs, time_plans
from decaylab.sandbox.runner import EpochDone, Event, Job, run_job
from decaylab.sandbox.train import threads


def run_batch(batch: Batch, *, num_threads: int = 1) -> Iterator[Event]:
    """Run a :class:`~decaylab.sandbox.batched.plan.Batch` on ``num_threads`` torch threads.

    Stacked: one :class:`~decaylab.sandbox.batched.engine.StackedGroup` (compiled if
    ``batch.compiled``); an error in the stacked
    code itself ends every run still going as ``failed`` (a re-run retries them from their
    checkpoints). Not stacked: :func:`~decaylab.sandbox.runner.run_job` for each job in turn.
    """
    if not batch.stacked:
        for job in batch.jobs:
            yield from run_job(job, num_threads=num_threads)
        return
    ended: set[str] = set()
    with threads(num_threads):
        try:
            for event in StackedGroup(batch.jobs, compile=batch.compiled).events():
                if not isinstance(event, EpochDone) or event.last:
                    ended.add(event.run_id)
                yield event
        except Exception as error:
            for job in batch.jobs:
                if job.run_id not in ended:
                    yield failure(job.run_id, error)


@dataclass
class BatchedExecutor:
    """Groups the jobs (:func:`~decaylab.sandbox.batched.plan.group_jobs`), decides each group's plan
    (``plan``: ``auto`` measures both, see :mod:`decaylab.sandbox.batched.plan`) and runs it.

    ``on_plan(batch)`` is called as each group starts (the CLI prints ``batch.message()``);
    ``decisions`` keeps every batch run, in order. Results equal the local executor's within float
    rounding (about 1e-6; tested to 1e-5); one torch thread by default, like the local executor.
    ``compile=True`` compiles each stacked group's forward and backward
    (:mod:`~decaylab.sandbox.batched.compiled`: seconds per group, then faster steps).
    """

    num_threads: int = 1
    plan: str = "auto"
    compile: bool = False
    max_size: int = MAX_SIZE
    timer: Callable[[Sequence[Job]], PlanTiming] = time_plans
    on_plan: Callable[[Batch], None] | None = None
    name: str = "batched"
    decisions: list[Batch] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.plan not in PLANS:
            raise ValueError(f"plan: unknown plan {self.plan!r}; choose from {', '.join(PLANS)}")
        check_bool("compile", self.compile)

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        for group in group_jobs(jobs, self.max_size):
            with threads(self.num_threads):
                batch = decide(group, plan=self.plan, timer=self.timer, compile=self.compile)
            self.decisions.append(batch)
            if self.on_plan is not None:
                self.on_plan(batch)
            yield from run_batch(batch, num_threads=self.num_threads)
