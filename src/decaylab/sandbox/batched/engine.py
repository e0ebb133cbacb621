"""Training a group of configurations as one stacked model, epoch by epoch, as events.

Each configuration keeps its own :class:`~decaylab.sandbox.train.Run` beside the stack: that is
where its initial weights (``torch.manual_seed(seed)``), its mini-batch order (its own generator),
its lr schedule and its checkpoints come from, and where its epochs are measured. The stack holds
the weights and optimizer state while training:

1. start: every run is built (and loaded from its checkpoint, if any) exactly as the local
   executor builds it; weights and optimizer state are stacked into ``[C, P]`` buffers;
2. each step: each configuration's mini-batch (the next slice of its own order), one stacked
   forward/backward, one stacked update (:func:`~decaylab.sandbox.batched.update.stacked_step`);
   a configuration whose loss is NaN/inf is recorded as diverged (the message train.py gives) and
   dropped from the stack before the update, so it never touches the others;
3. end of epoch: each run's lr scheduler steps; the weights go back into the runs' models, which
   are measured by train.py's own :meth:`~decaylab.sandbox.train.Run.measure` (the losses and
   accuracies from one stacked evaluation, or each model's own for convolutional models, see
   :attr:`~decaylab.sandbox.batched.stacked.StackedModel.evaluates_stacked`); the optimizer state
   goes back into the runs' optimizers and each run writes its usual checkpoint, so a study can
   resume under any executor.

``wall_s`` of an epoch record is the group's epoch wall time divided by the configurations it
trained (each run's share), so per-run totals still add up to the study's time.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from decaylab.optim._validation import check_bool
from decaylab.rules import RULES_NEEDING_REFERENCE
from decaylab.sandbox.batched.compiled import CompiledGradients
from decaylab.sandbox.batched.stacked import StackedModel
from decaylab.sandbox.batched.update import Coefficients, OptimizerState, stacked_step
from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.runner import EpochDone, Event, Job, RunEnded
from decaylab.sandbox.train import DivergedError, Run, check_loss

HYPER_KEYS = {"sgd": ("momentum", "dampening", "nesterov"), "adam": ("betas", "eps")}


def failure(run_id: str, error: BaseException) -> RunEnded:
    """The event :func:`~decaylab.sandbox.runner.run_job` gives a run that raised ``error``."""
    text = "".join(traceback.format_exception(error))
    return RunEnded(run_id, "failed", f"{type(error).__name__}: {error}\n{text}")


def _hyper(runs: Sequence[Run]) -> dict[str, Any]:
    """The base optimizer's shared options (equal in every run of a group; checked)."""
    base = runs[0].config.base
    options = [{k: run.regularized.optimizer.param_groups[0][k] for k in HYPER_KEYS[base]} for run in runs]
    if any(o != options[0] for o in options):
        raise ValueError(f"base optimizer options differ within a stacked group: {options[0]} vs others")
    for run in runs:
        group = run.regularized.optimizer.param_groups[0]
        if group.get("maximize") or group.get("amsgrad"):
            raise ValueError("stacked groups support neither maximize nor amsgrad")
    return options[0]


def gather_state(runs: Sequence[Run], stacked: StackedModel) -> OptimizerState:
    """Stack the runs' optimizer state (fresh or loaded from checkpoints) into ``[C, P]`` buffers."""
    base = runs[0].config.base
    state = OptimizerState(base=base, hyper=_hyper(runs))

    def rows(key: str) -> Tensor | None:
        per_run = []
        for run in runs:
            store = run.regularized.optimizer.state
            values = [store[p].get(key) if p in store else None for p in run.model.parameters()]
            per_run.append(None if any(v is None for v in values) else stacked.flatten(values))
        if all(r is None for r in per_run):
            return None
        if any(r is None for r in per_run):
            raise ValueError(f"optimizer state {key!r} exists for some runs of a stacked group and not others")
        return torch.stack(per_run)

    if base == "sgd":
        state.momentum_buffer = rows("momentum_buffer") if state.hyper["momentum"] != 0 else None
    else:
        state.exp_avg = rows("exp_avg")
        state.exp_avg_sq = rows("exp_avg_sq")
        if state.exp_avg is None:
            state.exp_avg = torch.zeros_like(stacked.flat)
            state.exp_avg_sq = torch.zeros_like(stacked.flat)
            state.steps = torch.zeros(len(runs), 1)
        else:
            first = [next(iter(run.model.parameters())) for run in runs]
            state.steps = torch.stack(
                [run.regularized.optimizer.state[p]["step"].reshape(1) for run, p in zip(runs, first, strict=True)]
            )
    users = [
        i
        for i, run in enumerate(runs)
        if run.config.method_spec.rule in RULES_NEEDING_REFERENCE and run.config.strength != 0
    ]
    if users:  # the references of rows users[0] .. users[-1] (the optimizers snapshot them at construction)
        start, stop = users[0], users[-1] + 1
        state.references = torch.zeros(stop - start, stacked.numel)
        state.reference_start = start
        for i in users:
            store = runs[i].regularized.optimizer.state
            state.references[i - start] = stacked.flatten([store[p]["reference"] for p in runs[i].model.parameters()])
    return state


def scatter_state(state: OptimizerState, stacked: StackedModel, runs: Sequence[Run]) -> None:
    """Write row ``c`` of the stacked optimizer state into ``runs[c]``'s optimizer (for its checkpoint)."""
    for c, run in enumerate(runs):
        store = run.regularized.optimizer.state
        params = list(run.model.parameters())
        if state.momentum_buffer is not None:
            for p, buffer in zip(params, stacked.unflatten(state.momentum_buffer[c]), strict=True):
                store[p]["momentum_buffer"] = buffer
        if state.exp_avg is not None and state.exp_avg_sq is not None and state.steps is not None:
            moments = zip(stacked.unflatten(state.exp_avg[c]), stacked.unflatten(state.exp_avg_sq[c]), strict=True)
            for p, (exp_avg, exp_avg_sq) in zip(params, moments, strict=True):
                store[p]["step"] = state.steps[c, 0].clone()
                store[p]["exp_avg"] = exp_avg
                store[p]["exp_avg_sq"] = exp_avg_sq


def gather(data: Tensor, index: Tensor) -> Tensor:
    """``data[index]`` for a ``C x B`` index: each configuration's mini-batch (``C x B x ...``)."""
    return data.index_select(0, index.reshape(-1)).view(*index.shape, *data.shape[1:])


def method_order(job: Job) -> int:
    """Position of the job's method in METHODS: a group sorted by it has each method's rows together."""
    return list(METHODS).index(job.config.method)


class StackedGroup:
    """Jobs that share everything but method, strength, lr, seed, scale and lr schedule (see
    :func:`~decaylab.sandbox.batched.plan.group_key`), trained together. :meth:`events` runs them.

    The rows are the jobs sorted by method (stable), so each method's terms of the update act on
    one contiguous range of rows (:class:`~decaylab.sandbox.batched.update.Term`).

    ``compile``: compute the forward and backward with
    :class:`~decaylab.sandbox.batched.compiled.CompiledGradients` (compiled on the first step, for
    that step's shape; other shapes run eagerly; built again when runs leave the stack). The update
    stays eager.
    """

    def __init__(self, jobs: Sequence[Job], *, compile: bool = False) -> None:
        check_bool("compile", compile)
        self.compiled_gradients: CompiledGradients | None = None
        self.jobs: list[Job] = []
        self.runs: list[Run] = []
        self.ended: list[RunEnded] = []  # runs that could not even be built (their events come first)
        for job in sorted(jobs, key=method_order):
            try:
                run = Run(job.config)
                if job.checkpoint is not None:
                    run.load_state_bytes(job.checkpoint[1])
            except Exception as error:  # e.g. a corrupt checkpoint: that run fails, the rest go on
                self.ended.append(failure(job.run_id, error))
                continue
            self.jobs.append(job)
            self.runs.append(run)
        if self.runs:
            first = self.runs[0]
            if any(r.epoch != first.epoch or r.steps_per_epoch != first.steps_per_epoch for r in self.runs):
                raise ValueError("a stacked group's runs must be at the same epoch with the same steps per epoch")
            self.data = first.data
            self.stacked = StackedModel([run.model for run in self.runs])
            self.state = gather_state(self.runs, self.stacked)
            if compile:
                self.compiled_gradients = CompiledGradients(self.stacked, self.data.task)

    def __len__(self) -> int:
        return len(self.runs)

    @property
    def epoch(self) -> int:
        return self.runs[0].epoch

    def coefficients(self) -> Coefficients:
        """This epoch's per-configuration coefficients (each run's scheduler gives its lr)."""
        initial = [run.regularized.optimizer.param_groups[0].get("initial_lr", run.config.lr) for run in self.runs]
        return Coefficients.build([r.config for r in self.runs], [r.lr for r in self.runs], initial)

    def _keep(self, rows: list[int], *tensors: Tensor) -> list[Tensor]:
        """Drop every configuration not in ``rows`` from the stack; returns ``tensors`` (``[C, ...]``) cut the same way."""
        index = torch.tensor(rows, dtype=torch.long)
        self.stacked.keep(index)
        self.state.select(index)
        if self.compiled_gradients is not None and rows:  # compiled for the old stack: build one for this
            self.compiled_gradients = CompiledGradients(self.stacked, self.data.task)
        self.jobs = [self.jobs[i] for i in rows]
        self.runs = [self.runs[i] for i in rows]
        return [t.index_select(0, index) for t in tensors]

    def gradients(self, index: Tensor) -> tuple[Tensor, Tensor]:
        """``(losses [C], gradients [C, P])`` on the mini-batches ``index`` (``C x B`` example indices)."""
        x, y = gather(self.data.x_train, index), gather(self.data.y_train, index)
        if self.compiled_gradients is not None and self.compiled_gradients.accepts(x, y):
            return self.compiled_gradients(x, y)
        return self.stacked.loss_and_grad(self.data.task, x, y)

    def step(self, index: Tensor, coefficients: Coefficients) -> Tensor:
        """One stacked step (what each step of :meth:`train_epoch` does, divergence checks aside); returns the losses."""
        losses, grads = self.gradients(index)
        stacked_step(self.stacked.flat, grads, self.state, coefficients)
        return losses

    def events(self) -> Iterator[Event]:
        """Train every run to its last epoch, yielding each epoch's events as it finishes."""
        yield from self.ended
        while self.runs and not self.runs[0].finished:
            yield from self.train_epoch()

    def train_epoch(self) -> Iterator[Event]:
        """One epoch of every run still going: its steps, then measuring and checkpointing each run.

        Yields a ``diverged`` :class:`RunEnded` as soon as a run's loss is NaN/inf (that run leaves
        the stack before the step's update), then each remaining run's :class:`EpochDone`."""
        start = time.perf_counter()
        trained = len(self.runs)
        epoch = self.epoch + 1
        lrs = [run.lr for run in self.runs]
        coefficients = self.coefficients()
        n, batch_size = len(self.data.x_train), self.runs[0].config.batch_size
        orders = torch.stack([run.epoch_order() for run in self.runs])
        totals = torch.zeros(len(self.runs), dtype=torch.float64)
        for step, first in enumerate(range(0, n, batch_size), start=1):
            index = orders[:, first : first + batch_size]
            losses, grads = self.gradients(index)
            finite = torch.isfinite(losses)
            if not bool(finite.all()):
                rows = []
                for i, (job, ok) in enumerate(zip(self.jobs, finite.tolist(), strict=True)):
                    if ok:
                        rows.append(i)
                        continue
                    try:
                        check_loss(
                            float(losses[i]), epoch=epoch, step=step, steps_per_epoch=self.runs[i].steps_per_epoch
                        )
                    except DivergedError as error:
                        yield RunEnded(job.run_id, "diverged", str(error))
                orders, totals, losses, grads = self._keep(rows, orders, totals, losses, grads)
                coefficients = self.coefficients()  # the same lrs (schedulers step at the end of the epoch)
                lrs = [lrs[i] for i in rows]
                if not self.runs:
                    return
            stacked_step(self.stacked.flat, grads, self.state, coefficients)
            totals += losses.double() * index.shape[1]
        yield from self._finish_epoch(epoch, lrs, (totals / n).tolist(), start, trained)

    def _finish_epoch(
        self, epoch: int, lrs: list[float], batch_losses: list[float], start: float, trained: int
    ) -> Iterator[Event]:
        with warnings.catch_warnings():  # the runs' own optimizers never step (the stack does): torch would warn
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` before")
            for run in self.runs:
                run.end_epoch()
        self.stacked.write_back([run.model for run in self.runs])
        task = self.data.task
        scores: Iterable[tuple[tuple[float, float], tuple[float, float]] | None] = [None] * len(self.runs)
        if self.stacked.evaluates_stacked:  # else each run's measure() evaluates its own model
            scores = zip(
                self.stacked.evaluate(task, self.data.x_train, self.data.y_train),
                self.stacked.evaluate(task, self.data.x_test, self.data.y_test),
                strict=True,
            )
        finished = self.runs[0].finished
        if not finished:
            scatter_state(self.state, self.stacked, self.runs)
        done: list[tuple[Job, Any, bytes | None]] = []
        ended: list[RunEnded] = []
        for job, run, lr, batch_loss, evaluation in zip(self.jobs, self.runs, lrs, batch_losses, scores, strict=True):
            try:
                record = run.measure(epoch, lr=lr, batch_loss=batch_loss, wall_s=0.0, evaluation=evaluation)
                done.append((job, record, None if finished else run.state_bytes()))
            except DivergedError as error:
                ended.append(RunEnded(job.run_id, "diverged", str(error)))
            except Exception as error:
                ended.append(failure(job.run_id, error))
        share = (time.perf_counter() - start) / trained
        for job, record, checkpoint in done:
            yield EpochDone(job.run_id, dataclasses.replace(record, wall_s=share), checkpoint, finished)
        yield from ended
        if ended:
            gone = {e.run_id for e in ended}
            self._keep([i for i, job in enumerate(self.jobs) if job.run_id not in gone])
