"""Batched studies: configuration-steps per second, stacked vs one at a time, and memory per configuration.

    python -m benchmarks.batched [--tasks mlp,linear,cnn] [--configs 64] [--batch-size 32] [--threads 1,2]
                                 [--rounds 5] [--steps 20] [--epoch-rounds 3] [--no-compile] [--drift]
                                 [--json PATH] [--quick]

For each task (digits: a 64-wide MLP, logistic regression, the SimpleCNN) it builds ``--configs``
configurations the way a study does (every method in METHODS in turn, two strengths, two lrs, one
seed each; SGD with momentum 0.9) and measures:

- **steps**: one stacked step of all of them (:meth:`StackedGroup.step`: the mini-batch gather,
  forward, backward and update of every configuration), eager and with the forward and backward
  compiled (``compile=True``, :mod:`decaylab.sandbox.batched.compiled`; its compile is timed
  apart), against one step of one configuration alone (:meth:`Run.train_step`, what the local
  executor runs, one torch thread), averaged over one configuration of each method.
  Configuration-steps per second = configurations per stacked step / its time, and 1 / the
  single step's time.
- **epochs**: a whole epoch as each executor runs it (the steps, then measuring every
  configuration and writing its checkpoint): :meth:`StackedGroup.train_epoch` against
  :meth:`Run.train_epoch` + :meth:`Run.state_bytes`, in configuration-epochs per second.
- **memory per configuration**: the stacked group's resident training state (weights, gradients,
  optimizer state) and the transient peak of one stacked step (torch's allocation record, see
  :mod:`benchmarks.memory`), divided by the number of configurations; beside them the same for one
  configuration alone.
- **the plan** the batched executor picks for that group (its own probe, :func:`time_plans`).
- with ``--drift``: the default study run by the local executor on 1 and on 2 threads, stacked and
  stacked compiled, and how far each drifts from the first over 30 epochs (float32 rounding
  amplified by training).

Measuring on a shared machine: within a round the candidates run back to back in a rotating order;
a candidate's figure is the median over rounds of its per-round median step, and each speed-up is
the median over rounds of the per-round ratio. The load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from typing import Any

import torch

from benchmarks.bandwidth import median_seconds
from benchmarks.memory import allocation_profile
from benchmarks.run import machine
from decaylab.sandbox.batched.engine import StackedGroup
from decaylab.sandbox.batched.plan import decide
from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.runner import Job
from decaylab.sandbox.train import Run, RunConfig, threads

TASKS: dict[str, RunConfig] = {
    "mlp": RunConfig(dataset="digits", model="mlp", hidden=(64,)),
    "linear": RunConfig(dataset="digits", model="linear"),
    "cnn": RunConfig(dataset="digits", model="cnn", conv_layers=2, channels=16),
    # a wider CNN, where stacking stops paying on a CPU (the plan should pick one at a time)
    "cnn64": RunConfig(dataset="digits", model="cnn", conv_layers=2, channels=64),
}
TARGET = 10.0  # x, configuration-steps per second, for mlp and linear (issue 5)


def study_configs(task: RunConfig, count: int, batch_size: int) -> list[RunConfig]:
    """``count`` configurations of ``task`` as a study has them: methods in turn, 2 strengths, 2 lrs."""
    methods = list(METHODS)
    base = dataclasses.replace(task, batch_size=batch_size, epochs=10_000, momentum=0.9, schedule="constant")
    return [
        dataclasses.replace(
            base,
            method=methods[i % len(methods)],
            strength=0.0 if methods[i % len(methods)] == "none" else (1e-3, 1e-2)[(i // len(methods)) % 2],
            lr=(0.05, 0.1)[i % 2],
            seed=i,
        )
        for i in range(count)
    ]


class Subject:
    """One task's stacked group, one compiled group per thread count in ``compile_threads`` (Inductor
    builds its loops for the thread count it compiles under), and a one-per-method sample of single
    runs, on fixed mini-batches."""

    def __init__(self, configs: list[RunConfig], *, compile_threads: tuple[int, ...] = ()) -> None:
        self.configs = configs
        self.jobs = [Job(c.run_id, c) for c in configs]
        self.group = StackedGroup(self.jobs)
        self.coefficients = self.group.coefficients()
        self.compiled_groups = {t: StackedGroup(self.jobs, compile=True) for t in compile_threads}
        seen: dict[str, RunConfig] = {}
        for config in configs:
            seen.setdefault(config.method, config)
        self.singles = [Run(c) for c in seen.values()]
        data = self.group.data
        self.batch = min(configs[0].batch_size, len(data.x_train))
        generator = torch.Generator().manual_seed(0)
        self.orders = torch.stack([torch.randperm(len(data.x_train), generator=generator) for _ in configs])
        self.cursor = 0

    def index(self) -> torch.Tensor:
        """The next mini-batch of every configuration (``C x B``), cycling through its order."""
        n = self.orders.shape[1]
        if self.cursor + self.batch > n:
            self.cursor = 0
        index = self.orders[:, self.cursor : self.cursor + self.batch]
        self.cursor += self.batch
        return index

    def stacked_step(self) -> None:
        self.group.step(self.index(), self.coefficients)

    def compiled_step(self, thread_count: int) -> None:
        """A step of the group compiled for ``thread_count`` threads (run it under that many)."""
        self.compiled_groups[thread_count].step(self.index(), self.coefficients)

    def compile(self, thread_count: int) -> float:
        """Compile the group for ``thread_count`` threads (its first step, under that many); returns the seconds."""
        with threads(thread_count):
            self.compiled_step(thread_count)
        gradients = self.compiled_groups[thread_count].compiled_gradients
        if gradients is None or gradients.compile_seconds is None:
            raise RuntimeError("the first compiled step did not compile")
        return gradients.compile_seconds

    def single_step(self, run: Run) -> None:
        index = self.index()[0]
        data = self.group.data
        run.train_step(data.x_train[index], data.y_train[index], epoch=1, step=1)


def speedup_key(kind: str, thread_count: int | None = None, figure: str = "speedup") -> str:
    """``speedup@2`` for the eager stacked step (the keys earlier results have), ``compiled_speedup@2``
    for the compiled one; without ``thread_count`` (whole epochs, 1 thread) ``speedup`` / ``compiled_speedup``."""
    key = figure if kind == "stacked" else f"{kind}_{figure}"
    return key if thread_count is None else f"{key}@{thread_count}"


def measure_steps(subject: Subject, thread_counts: list[int], rounds: int, steps: int, log: Any) -> dict[str, Any]:
    """Per round: single steps (1 thread, the local executor's) and stacked steps (eager, and compiled if
    the subject has a compiled group) at each thread count."""
    candidates = ["single@1"]
    for t in thread_counts:
        candidates += [f"stacked@{t}"] + ([f"compiled@{t}"] if t in subject.compiled_groups else [])
    per_round: dict[str, list[float]] = {c: [] for c in candidates}
    for r in range(rounds):
        order = candidates[r % len(candidates) :] + candidates[: r % len(candidates)]
        for candidate in order:
            kind, count = candidate.split("@")
            with threads(int(count)):
                if kind == "single":
                    value = statistics.mean(
                        median_seconds(lambda run=run: subject.single_step(run), steps, 2) for run in subject.singles
                    )
                elif kind == "compiled":
                    value = median_seconds(lambda t=int(count): subject.compiled_step(t), steps, 2)
                else:
                    value = median_seconds(subject.stacked_step, steps, 2)
            per_round[candidate].append(value)
        log(f"  round {r + 1}/{rounds}: " + ", ".join(f"{c} {v[-1] * 1e3:.3f} ms" for c, v in per_round.items()))
    count = len(subject.configs)
    out: dict[str, Any] = {
        "single_step_s": statistics.median(per_round["single@1"]),
        "single_config_steps_per_s": 1 / statistics.median(per_round["single@1"]),
        "per_round_s": per_round,
    }
    for candidate in candidates[1:]:
        kind, threads_text = candidate.split("@")
        t = int(threads_text)
        stacked = per_round[candidate]
        ratios = [count * s / b for s, b in zip(per_round["single@1"], stacked, strict=True)]
        out[f"{kind}_step_s@{t}"] = statistics.median(stacked)
        out[f"{kind}_config_steps_per_s@{t}"] = count / statistics.median(stacked)
        out[speedup_key(kind, t)] = statistics.median(ratios)
        out[speedup_key(kind, t, figure="speedup_range")] = [min(ratios), max(ratios)]
    return out


def measure_epochs(subject: Subject, rounds: int, log: Any) -> dict[str, Any]:
    """Whole epochs (steps, measuring, checkpoints) as each executor runs them, one thread: the stacked
    group (and the compiled one, if the subject has it) against the sample of single runs."""
    groups = {"stacked": subject.group}
    if 1 in subject.compiled_groups:
        groups["compiled"] = subject.compiled_groups[1]
    per_config: dict[str, list[float]] = {name: [] for name in [*groups, "alone"]}
    for r in range(rounds):
        jobs = {name: (lambda group=group: list(group.train_epoch()), len(group)) for name, group in groups.items()}
        jobs["alone"] = (
            lambda: [(run.train_epoch(), run.state_bytes()) for run in subject.singles],
            len(subject.singles),
        )
        names = list(jobs)
        with threads(1):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                work, count = jobs[name]  # every configuration of a group trains, unless one diverged
                start = time.perf_counter()
                work()
                per_config[name].append((time.perf_counter() - start) / count)
        log(f"  epoch round {r + 1}/{rounds}: " + ", ".join(f"{k} {v[-1] * 1e3:.2f} ms" for k, v in per_config.items()))
    alone = per_config["alone"]
    out: dict[str, Any] = {
        "steps_per_epoch": subject.group.runs[0].steps_per_epoch,
        "single_epoch_s": statistics.median(alone),
        "single_config_epochs_per_s": 1 / statistics.median(alone),
    }
    for name in groups:
        out[f"{name}_epoch_s_per_config"] = statistics.median(per_config[name])
        out[f"{name}_config_epochs_per_s"] = 1 / statistics.median(per_config[name])
        out[speedup_key(name)] = statistics.median(a / b for a, b in zip(alone, per_config[name], strict=True))
    return out


def _state_bytes(tensors: list[torch.Tensor | None]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def measure_memory(subject: Subject) -> dict[str, Any]:
    """Bytes per configuration: resident training state and the transient peak of one step."""
    group, count = subject.group, len(subject.configs)
    with threads(1):
        subject.stacked_step()  # the optimizer state exists
        stacked_peak = allocation_profile(subject.stacked_step).peak_bytes
        run = subject.singles[0]
        subject.single_step(run)
        single_peak = allocation_profile(lambda: subject.single_step(run)).peak_bytes
    state = group.state
    stacked_state = _state_bytes(
        [
            group.stacked.flat,
            group.stacked.grad,
            state.momentum_buffer,
            state.exp_avg,
            state.exp_avg_sq,
            state.references,
        ]
    )
    params = list(run.model.parameters())
    single_state = _state_bytes(
        [*params, *(p.grad for p in params)]
        + [v for p in params for v in run.regularized.optimizer.state[p].values() if isinstance(v, torch.Tensor)]
    )
    return {
        "params_per_config": group.stacked.numel,
        "stacked_state_bytes_per_config": stacked_state / count,
        "stacked_step_peak_bytes_per_config": stacked_peak / count,
        "single_state_bytes": single_state,
        "single_step_peak_bytes": single_peak,
    }


def plan_decision(subject: Subject) -> dict[str, Any]:
    with threads(1):
        batch = decide(subject.jobs)
    return {"plan": "stacked" if batch.stacked else "sequential", "message": batch.message()}


DRIFT_EPOCHS = (1, 2, 3, 5, 10, 20, 30)
DRIFT_RUNS = ("local@2", "stacked@1", "compiled@1")  # each compared with the local executor on 1 thread


def measure_drift(log: Any, study: Any = None) -> dict[str, Any]:
    """How far the stacked numbers drift from the local executor's over a study (the default one: 30 epochs),
    beside how far the local executor drifts from itself when run on 2 threads instead of 1.

    Any change in how a sum is split (a batched matrix product, another thread count) changes the
    last bits of float32 results; training amplifies such differences epoch by epoch. Returns the
    largest relative difference of the weight norm at selected epochs, and of the final accuracies.
    """
    from decaylab.sandbox.batched.executor import run_batch
    from decaylab.sandbox.batched.plan import Batch
    from decaylab.sandbox.runner import EpochDone, LocalExecutor
    from decaylab.sandbox.study import default_study

    study = study or default_study()
    jobs = [Job(c.run_id, c) for c in study.configurations()]
    epochs = [e for e in DRIFT_EPOCHS if e <= study.task.epochs]

    def records(events: Any) -> dict:
        return {(e.run_id, e.record.epoch): e.record for e in events if isinstance(e, EpochDone)}

    runs = {}
    for name, events in (
        ("local@1", lambda: LocalExecutor(num_threads=1).run(jobs)),
        ("local@2", lambda: LocalExecutor(num_threads=2).run(jobs)),
        ("stacked@1", lambda: run_batch(Batch(tuple(jobs), True, "drift"), num_threads=1)),
        ("compiled@1", lambda: run_batch(Batch(tuple(jobs), True, "drift", compiled=True), num_threads=1)),
    ):
        start = time.perf_counter()
        runs[name] = records(events())
        log(f"  drift: {name} {time.perf_counter() - start:.0f} s")
    reference = runs["local@1"]
    out: dict[str, Any] = {"configs": len(jobs), "epochs": epochs}
    for name in DRIFT_RUNS:
        other = runs[name]
        worst = dict.fromkeys(epochs, 0.0)
        for (run_id, epoch), record in reference.items():
            if epoch in worst:
                norm = abs(record.weight_norm)
                worst[epoch] = max(
                    worst[epoch], abs(record.weight_norm - other[run_id, epoch].weight_norm) / max(norm, 1e-12)
                )
        last = study.task.epochs
        accuracy = [abs(r.test_metric - other[k].test_metric) for k, r in reference.items() if k[1] == last]
        out[name] = {"weight_norm_rel_diff": worst, "final_test_accuracy_max_abs_diff": max(accuracy)}
    return out


def _kb(value: float) -> str:
    return f"{value / 1024:.1f} KiB" if value < 1024**2 else f"{value / 1024**2:.2f} MiB"


def table(report: dict[str, Any]) -> str:
    thread_counts = report["settings"]["threads"]
    compiled = any("compile_s" in task for task in report["tasks"].values())
    kinds = ["stacked", "compiled"] if compiled else ["stacked"]
    head = f"{'task':<7} {'params':>7} {'alone (1 thr)':>16}"
    for t in thread_counts:
        for kind in kinds:
            head += f" {f'{kind} ({t} thr)':>18} {'x':>6}"
    if compiled:
        head += f" {'compile':>8}"
    lines = [
        f"configuration-steps per second, {report['settings']['configs']} configurations, batch "
        f"{report['settings']['batch_size']} (median of {report['settings']['rounds']} rounds; x = speed-up, "
        f"target {TARGET:g}x for mlp and linear)",
        head,
    ]
    for name, task in report["tasks"].items():
        steps = task["steps"]
        line = f"{name:<7} {task['memory']['params_per_config']:>7} {steps['single_config_steps_per_s']:>12.0f} c/s"
        for t in thread_counts:
            for kind in kinds:
                speedup = steps[speedup_key(kind, t)]
                line += f" {steps[f'{kind}_config_steps_per_s@{t}']:>14.0f} c/s {speedup:>5.1f}x"
        if compiled:
            line += " " + "/".join(f"{seconds:.1f}" for seconds in task["compile_s"].values()) + " s"
        lines.append(line)
    if any("epochs" in task for task in report["tasks"].values()):
        lines += [
            "",
            "whole epochs (steps + measuring + checkpoint per configuration), 1 thread, configuration-epochs per second",
        ]
        head = f"{'task':<7} {'steps/epoch':>11} {'alone':>10} {'stacked':>10} {'x':>6}"
        lines.append(head + (f" {'compiled':>10} {'x':>6}" if compiled else ""))
        for name, task in report["tasks"].items():
            if "epochs" in task:
                e = task["epochs"]
                line = (
                    f"{name:<7} {e['steps_per_epoch']:>11} {e['single_config_epochs_per_s']:>10.1f} "
                    f"{e['stacked_config_epochs_per_s']:>10.1f} {e['speedup']:>5.1f}x"
                )
                if "compiled_speedup" in e:
                    line += f" {e['compiled_config_epochs_per_s']:>10.1f} {e['compiled_speedup']:>5.1f}x"
                lines.append(line)
    lines += [
        "",
        "memory per configuration (training state: weights, gradients, optimizer state; step: transient peak)",
    ]
    lines.append(f"{'task':<7} {'stacked state':>14} {'stacked step':>13} {'alone state':>12} {'alone step':>11}")
    for name, task in report["tasks"].items():
        m = task["memory"]
        lines.append(
            f"{name:<7} {_kb(m['stacked_state_bytes_per_config']):>14} {_kb(m['stacked_step_peak_bytes_per_config']):>13} "
            f"{_kb(m['single_state_bytes']):>12} {_kb(m['single_step_peak_bytes']):>11}"
        )
    lines += ["", "plan picked by the batched executor (its own probe, 1 thread)"]
    lines += [f"{name:<7} {task['plan']['message']}" for name, task in report["tasks"].items()]
    if "drift" in report:
        drift = report["drift"]
        lines += [
            "",
            f"drift from the local executor (1 thread) over the default study ({drift['configs']} runs): "
            "largest relative difference of the weight norm at epoch",
        ]
        lines.append(f"{'':<18}" + "".join(f"{e:>9}" for e in drift["epochs"]) + f"{'final acc':>11}")
        for name in DRIFT_RUNS:
            row = drift[name]
            lines.append(
                f"{name:<18}"
                + "".join(f"{row['weight_norm_rel_diff'][e]:>9.1e}" for e in drift["epochs"])
                + f"{row['final_test_accuracy_max_abs_diff']:>11.3g}"
            )
    load = report["machine"]
    lines.append(f"\nload average before {load['load_average_before']}, after {load.get('load_average_after')}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="mlp,linear,cnn", help=f"comma-separated: {', '.join(TASKS)}")
    parser.add_argument("--configs", type=int, default=64, help="configurations in the group")
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (the default study's: 32)")
    parser.add_argument("--threads", default="1,2", help="thread counts for the stacked step, e.g. 1,2")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per candidate per round")
    parser.add_argument("--epoch-rounds", type=int, default=3, help="rounds of whole epochs (0: skip)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run (8 configurations)")
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time stacked steps with the forward and backward compiled (seconds to compile per task)",
    )
    parser.add_argument(
        "--drift", action="store_true", help="also run the default study 3 ways (minutes) and report how far they drift"
    )
    parser.add_argument("--json", metavar="PATH", help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    names = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in names if t not in TASKS]
    if unknown:
        parser.error(f"--tasks: unknown task {unknown[0]!r}; choose from {', '.join(TASKS)}")
    thread_counts = [int(t) for t in args.threads.split(",") if t]
    if args.quick:
        args.configs, args.rounds, args.steps, args.epoch_rounds = 8, 2, 3, 1

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    report: dict[str, Any] = {
        "machine": machine(),
        "settings": {
            "configs": args.configs,
            "batch_size": args.batch_size,
            "threads": thread_counts,
            "rounds": args.rounds,
            "steps": args.steps,
            "epoch_rounds": args.epoch_rounds,
            "base": "sgd, momentum 0.9",
        },
        "tasks": {},
    }
    for name in names:
        log(f"{name}: building {args.configs} configurations")
        compile_threads = tuple(thread_counts) if args.compile else ()
        subject = Subject(study_configs(TASKS[name], args.configs, args.batch_size), compile_threads=compile_threads)
        task: dict[str, Any] = {"config": TASKS[name].to_dict()}
        if compile_threads:
            task["compile_s"] = {str(t): subject.compile(t) for t in compile_threads}
            log(
                "  compiled the stacked forward and backward in "
                + ", ".join(f"{s:.1f} s ({t} thr)" for t, s in task["compile_s"].items())
            )
        task["steps"] = measure_steps(subject, thread_counts, args.rounds, args.steps, log)
        if args.epoch_rounds:
            task["epochs"] = measure_epochs(subject, args.epoch_rounds, log)
        task["memory"] = measure_memory(subject)
        task["plan"] = plan_decision(Subject(study_configs(TASKS[name], args.configs, args.batch_size)))
        report["tasks"][name] = task
    if args.drift:
        report["drift"] = measure_drift(log)
    report["machine"]["load_average_after"] = os.getloadavg()
    print(table(report), flush=True)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(report, handle, indent=1)
        log(f"wrote {args.json}")
    return report


if __name__ == "__main__":
    main()
