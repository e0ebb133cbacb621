"""Which jobs can share one stacked model, and whether stacking them pays.

**Grouping** (:func:`group_jobs`, pure): two configurations can be stacked when everything that
shapes the computation is equal: the data (dataset and its split and generation options), the
architecture, the base optimizer (and SGD's momentum), epochs, batch size, and the epoch they
start from (a resumed job starts after its checkpoint). What may differ per configuration is
:data:`PER_CONFIGURATION`: method, strength, lr, seed, decay scale convention and lr schedule; the
stacked step turns those into per-configuration coefficients. Any future ``RunConfig`` field is
part of the group key unless listed there. Groups keep the jobs' order and are cut into near-equal
chunks of at most ``max_size``.

**Deciding** (:func:`decide`): stacking pays when one stacked step costs less than ``C`` steps of
one configuration alone. That depends on the model, the batch size and the machine (64 small
MLPs: stacked is many times faster; 64 CNNs on a CPU: the grouped convolution can lose), so the
decision is measured, on the group itself: :func:`time_plans` times a few steps of each plan on
its own data (a throwaway copy: the study's runs are untouched) and :func:`choose_plan` stacks when
that is at least :data:`MIN_SPEEDUP` times faster. A single configuration always runs alone. ``plan="stacked"`` or ``"sequential"`` skips
the measurement.

:func:`plan_batches` does both and returns :class:`Batch` objects, the unit other executors (e.g.
Ray shards) can ship and run with :func:`~decaylab.sandbox.batched.executor.run_batch`;
:func:`shard_plan` only groups (``planner(jobs, slots)``), leaving the decision to the worker.
"""

from __future__ import annotations

import contextlib
import datetime
import itertools
import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from decaylab.optim._validation import check_bool
from decaylab.sandbox.runner import Job
from decaylab.sandbox.train import FIELDS, DivergedError, Run

PER_CONFIGURATION: frozenset[str] = frozenset(
    {"method", "strength", "lr", "seed", "scale", "schedule", "step_every", "gamma"}
)
"""RunConfig fields that may differ within a stacked group (everything else must be equal)."""
ONLY_FOR: dict[str, tuple[str, str]] = {
    "hidden": ("model", "mlp"),
    "conv_layers": ("model", "cnn"),
    "channels": ("model", "cnn"),
    "momentum": ("base", "sgd"),
}
"""Fields that only matter for one model or base optimizer (``hidden`` of a linear model is unused)."""
PLANS: tuple[str, ...] = ("auto", "stacked", "sequential")
MAX_SIZE = 64
"""Configurations per stacked group at most (memory grows linearly with it; the step time too,
once the kernels are large enough to be compute-bound)."""
PROBE_STEPS = 3
MIN_SPEEDUP = 1.2
"""Stack only when the probe measures at least this speed-up: near a tie the choice would follow the
noise of a few timed steps, and the two plans' numbers differ in the last float bits (both equal the
local executor's within 1e-5), so a study keeps one plan unless the other is clearly faster."""


def group_key(job: Job) -> tuple:
    """What must be equal for jobs to share a stacked model (see the module docstring)."""
    config = job.config
    fields = tuple(
        (name, getattr(config, name))
        for name in FIELDS
        if name not in PER_CONFIGURATION
        and (name not in ONLY_FOR or getattr(config, ONLY_FOR[name][0]) == ONLY_FOR[name][1])
    )
    return (*fields, ("start_epoch", job.checkpoint[0] if job.checkpoint else 0))


def describe(jobs: Sequence[Job]) -> str:
    """A short name for a group, e.g. ``digits/mlp (64 configurations)``."""
    config, start = jobs[0].config, dict(group_key(jobs[0]))["start_epoch"]
    resumed = f", from epoch {start}" if start else ""
    return f"{config.dataset}/{config.model} ({len(jobs)} configuration{'s' * (len(jobs) != 1)}{resumed})"


def _check_size(max_size: int) -> int:
    if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 1:
        raise ValueError(f"max_size: expected an integer >= 1, got {max_size!r}")
    return max_size


def group_jobs(jobs: Sequence[Job], max_size: int = MAX_SIZE) -> list[list[Job]]:
    """Jobs grouped by :func:`group_key`, in order of first appearance, each group cut into near-equal
    chunks of at most ``max_size`` (70 jobs with ``max_size=64``: two groups of 35)."""
    _check_size(max_size)
    groups: dict[tuple, list[Job]] = {}
    for job in jobs:
        groups.setdefault(group_key(job), []).append(job)
    chunks = []
    for members in groups.values():
        count = -(-len(members) // max_size)
        size, extra = divmod(len(members), count)
        start = 0
        for index in range(count):
            stop = start + size + (index < extra)
            chunks.append(members[start:stop])
            start = stop
    return chunks


def shard_plan(jobs: Sequence[Job], slots: int, *, max_size: int = MAX_SIZE) -> list[list[Job]]:
    """Groups for a distributed executor with ``slots`` shards running at once (a Ray planner).

    :func:`group_jobs` with groups cut small enough that a study fills the slots: at most
    ``ceil(len(jobs) / slots)`` (and ``max_size``) jobs per shard. Each shard is a stackable group,
    so a worker can run it with :class:`~decaylab.sandbox.batched.executor.BatchedExecutor`, which
    decides there, on the worker's own hardware, whether to stack it.
    """
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ValueError(f"slots: expected an integer >= 1, got {slots!r}")
    if not jobs:
        return []
    return group_jobs(jobs, min(_check_size(max_size), -(-len(jobs) // slots)))


@dataclass(frozen=True)
class PlanTiming:
    """Measured seconds per step: one stacked step of the whole group, one step of one configuration."""

    stacked_step_s: float
    single_step_s: float


@dataclass(frozen=True)
class Batch:
    """Jobs to run together: as one stacked model (``stacked``) or one after another; ``reason`` says why.

    ``compiled``: a stacked batch computes its forward and backward compiled
    (:class:`~decaylab.sandbox.batched.compiled.CompiledGradients`); never set for one at a time.
    """

    jobs: tuple[Job, ...]
    stacked: bool
    reason: str
    timing: PlanTiming | None = None
    compiled: bool = False

    def __post_init__(self) -> None:
        if self.compiled and not self.stacked:
            raise ValueError("compiled: only a stacked batch can be compiled")

    @property
    def label(self) -> str:
        return describe(self.jobs)

    @property
    def plan(self) -> str:
        if not self.stacked:
            return "one at a time"
        return "stacked, compiled" if self.compiled else "stacked"

    def message(self) -> str:
        """One line for the terminal: the group, the plan and why."""
        return f"{self.label}: {self.plan} ({self.reason})"

    def to_dict(self) -> dict:
        """What a study records about the decision (JSON-ready)."""
        timing = self.timing
        return {
            "group": self.label,
            "configurations": len(self.jobs),
            "plan": "stacked" if self.stacked else "sequential",
            "compiled": self.compiled,
            "reason": self.reason,
            "stacked_step_s": timing.stacked_step_s if timing else None,
            "single_step_s": timing.single_step_s if timing else None,
            "run_ids": [job.run_id for job in self.jobs],
        }


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def choose_plan(size: int, timing: PlanTiming, *, min_speedup: float = MIN_SPEEDUP) -> tuple[bool, str]:
    """``(stacked, reason)``: stack ``size`` configurations iff one stacked step is at least ``min_speedup``
    times faster than ``size`` single steps."""
    sequential = size * timing.single_step_s
    speedup = sequential / timing.stacked_step_s
    stacked = speedup >= min_speedup
    comparison = (
        f"measured {_ms(timing.stacked_step_s)} per stacked step vs {size} x {_ms(timing.single_step_s)} = "
        f"{_ms(sequential)} one at a time"
    )
    if speedup >= 1:
        verdict = f"stacking is {speedup:.1f}x faster"
        if not stacked:
            verdict += f", under the {min_speedup:g}x it takes to switch"
    else:
        verdict = f"stacking would be {1 / speedup:.1f}x slower"
    return stacked, f"{comparison}: {verdict}"


def time_plans(jobs: Sequence[Job], *, steps: int = PROBE_STEPS, warmup: int = 1, rounds: int = 2) -> PlanTiming:
    """Median seconds per step of the group stacked and of its first configuration alone.

    Each round runs ``warmup`` + ``steps`` steps of one plan back to back, then the same of the other
    (the order swaps every round, so a change in the machine's load hits both alike); the warm-up
    steps are not timed. Steps of one plan run back to back as they do in training: alternating
    single steps with stacked ones would evict the single model from the cache and make it look
    2x slower than it is (seen with 64-channel CNNs).

    Both run on throwaway copies built from the configurations (the jobs' checkpoints and the
    study's runs are untouched) with the first ``batch_size`` training examples, on the calling
    thread count.
    """
    from decaylab.sandbox.batched.engine import StackedGroup

    group = StackedGroup([Job(job.run_id, job.config) for job in jobs])
    batch = min(jobs[0].config.batch_size, len(group.data.x_train))
    index = torch.arange(batch).expand(len(group), batch)  # the same examples for every configuration
    coefficients = group.coefficients()
    run = Run(jobs[0].config)
    x, y = group.data.x_train[:batch], group.data.y_train[:batch]
    counter = itertools.count(1)  # the single run's step numbers

    def stacked_step() -> None:
        group.step(index, coefficients)

    def single_step() -> None:
        with contextlib.suppress(DivergedError):  # a probe's loss may blow up; the step's cost is what counts
            run.train_step(x, y, epoch=1, step=next(counter))

    times: dict[Callable[[], None], list[float]] = {stacked_step: [], single_step: []}
    for round_index in range(rounds):
        order = (stacked_step, single_step) if round_index % 2 == 0 else (single_step, stacked_step)
        for plan_step in order:
            for i in range(warmup + steps):
                start = time.perf_counter()
                plan_step()
                if i >= warmup:
                    times[plan_step].append(time.perf_counter() - start)
    return PlanTiming(statistics.median(times[stacked_step]), statistics.median(times[single_step]))


def decide(
    jobs: Sequence[Job],
    *,
    plan: str = "auto",
    timer: Callable[[Sequence[Job]], PlanTiming] = time_plans,
    compile: bool = False,
) -> Batch:
    """The :class:`Batch` for one group: stacked or not, and why (``timer`` measures, for ``plan="auto"``).

    ``compile``: a group that is stacked computes its forward and backward compiled. The decision
    to stack is measured on the eager stacked step (the probe does not compile: that takes seconds);
    compiled steps are faster still where stacking pays (linear layers) and about the same for
    convolutions.
    """
    check_bool("compile", compile)
    if plan not in PLANS:
        raise ValueError(f"plan: unknown plan {plan!r}; choose from {', '.join(PLANS)}")
    jobs = tuple(jobs)
    if not jobs:
        raise ValueError("jobs: a batch needs at least one job")
    if len(jobs) == 1:
        return Batch(jobs, False, "a single configuration")
    if plan == "stacked":
        return Batch(jobs, True, "stacking was asked for (plan='stacked')", compiled=compile)
    if plan == "sequential":
        return Batch(jobs, False, "one at a time was asked for (plan='sequential')")
    timing = timer(jobs)
    stacked, reason = choose_plan(len(jobs), timing)
    return Batch(jobs, stacked, reason, timing, compiled=compile and stacked)


def plan_batches(
    jobs: Sequence[Job],
    *,
    plan: str = "auto",
    max_size: int = MAX_SIZE,
    timer: Callable[[Sequence[Job]], PlanTiming] = time_plans,
    compile: bool = False,
) -> list[Batch]:
    """Group ``jobs`` (:func:`group_jobs`) and decide each group (:func:`decide`): every job in exactly one batch."""
    return [decide(group, plan=plan, timer=timer, compile=compile) for group in group_jobs(jobs, max_size)]


PLANS_FILE = "plans.jsonl"


def record_plans(directory: Path, batches: Sequence[Batch]) -> Path:
    """Append each batch's decision (:meth:`Batch.to_dict`, with the time) to ``directory/plans.jsonl``."""
    path = Path(directory) / PLANS_FILE
    stamp = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    with path.open("a") as handle:
        for batch in batches:
            handle.write(json.dumps({"time": stamp, **batch.to_dict()}) + "\n")
    return path
