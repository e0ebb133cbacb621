"""Shared by the batched tests: mixed groups of configurations and comparing event streams."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence

from decaylab.rules import SCALES
from decaylab.sandbox.methods import METHODS
from decaylab.sandbox.runner import EpochDone, Event, Job, LocalExecutor, RunEnded
from decaylab.sandbox.train import EpochRecord, RunConfig

TOLERANCE = 1e-5


def mixed_configs(task: RunConfig, lrs: Sequence[float], strengths: Sequence[float]) -> list[RunConfig]:
    """Every method in METHODS, each at two (lr, strength, seed) settings, scale conventions cycling."""
    configs = []
    for i, method in enumerate(METHODS):
        for j in range(2):
            k = 2 * i + j
            configs.append(
                dataclasses.replace(
                    task,
                    method=method,
                    strength=0.0 if method == "none" else strengths[k % len(strengths)],
                    lr=lrs[k % len(lrs)],
                    seed=k,
                    scale=SCALES[k % len(SCALES)],
                )
            )
    return configs


def jobs_for(configs: Iterable[RunConfig]) -> list[Job]:
    return [Job(c.run_id, c) for c in configs]


def local_events(jobs: Sequence[Job]) -> list[Event]:
    return list(LocalExecutor().run(jobs))


def by_run(events: Iterable[Event]) -> dict[str, list[Event]]:
    out: dict[str, list[Event]] = {}
    for event in events:
        out.setdefault(event.run_id, []).append(event)
    return out


def close(a: float | None, b: float | None, tolerance: float = TOLERANCE) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)


def record_differences(expected: EpochRecord, got: EpochRecord, tolerance: float = TOLERANCE) -> list[str]:
    """Every field (and per-layer statistic) of two records that differs by more than ``tolerance``."""
    wrong = [
        f"{name}: {value!r} vs {got.metrics()[name]!r}"
        for name, value in expected.metrics().items()
        if name != "wall_s" and not close(value, got.metrics()[name], tolerance)
    ]
    if [s.name for s in expected.layers] != [s.name for s in got.layers]:
        wrong.append("layer names differ")
    for a, b in zip(expected.layers, got.layers, strict=False):
        for field in ("numel", "norm", "zero_frac", "small_frac"):
            if not close(getattr(a, field), getattr(b, field), tolerance):
                wrong.append(f"{a.name}.{field}: {getattr(a, field)!r} vs {getattr(b, field)!r}")
    return wrong


def assert_same_results(expected: Iterable[Event], got: Iterable[Event], tolerance: float = TOLERANCE) -> None:
    """Both streams hold the same events per run, in the same order: epochs within ``tolerance``
    (every field of every record), the same ``last`` flags and checkpoint presence, and the same
    terminal events (status and message)."""
    want, have = by_run(expected), by_run(got)
    assert sorted(want) == sorted(have)
    problems = []
    for run_id, events in want.items():
        mine = have[run_id]
        assert [type(e) for e in events] == [type(e) for e in mine], run_id
        for a, b in zip(events, mine, strict=True):
            if isinstance(a, EpochDone) and isinstance(b, EpochDone):
                assert (a.record.epoch, a.last, a.checkpoint is None) == (b.record.epoch, b.last, b.checkpoint is None)
                problems += [f"{run_id} epoch {a.record.epoch} {d}" for d in record_differences(a.record, b.record)]
            elif isinstance(a, RunEnded) and isinstance(b, RunEnded):
                assert (a.status, a.message) == (b.status, b.message), run_id
    assert not problems, "\n".join(problems)
