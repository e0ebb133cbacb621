"""The batched executor through the study driver: the store it fills equals the local executor's (within
float rounding), it resumes an interrupted study, it runs unprofitable groups one at a time (then
bit-identical to local), and an error in the stacked code marks the group's runs failed for a retry."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from pathlib import Path

import pytest

from decaylab.sandbox.batched import BatchedExecutor, PlanTiming, run_batch
from decaylab.sandbox.batched import engine as engine_module
from decaylab.sandbox.batched.plan import Batch
from decaylab.sandbox.runner import EpochDone, Event, LocalExecutor, RunEnded, make_executor, run_study
from decaylab.sandbox.store import Store
from decaylab.sandbox.study import Study
from tests.sandbox.batched.helpers import close, jobs_for

STUDY = Study.from_dict(
    {
        "task": {
            "dataset": "moons",
            "model": "mlp",
            "hidden": [8],
            "epochs": 3,
            "batch_size": 50,
            "schedule": "cosine",
        },
        "grid": {
            "methods": ["none", "coupled_l2", "proximal_l1", "penalty_l1"],
            "strengths": [0.01, 0.1],
            "seeds": [0, 1],
            "lrs": [0.05, 0.2],
        },
    }
)  # 28 runs: one group (cut into chunks of at most max_size)


def faster(jobs):
    return PlanTiming(stacked_step_s=1e-3, single_step_s=1e-3)


def slower(jobs):
    return PlanTiming(stacked_step_s=1.0, single_step_s=1e-3)


def without_wall(events: Iterable[Event]) -> list[Event]:
    return [
        dataclasses.replace(e, record=dataclasses.replace(e.record, wall_s=0.0)) if isinstance(e, EpochDone) else e
        for e in events
    ]


def stored(directory: Path) -> tuple[list, list, list]:
    with Store.read(directory) as store:
        runs = [(r.run_id, r.status, r.epochs_done) for r in store.runs()]
        epochs = [{k: v for k, v in row.items() if k != "wall_s"} for row in store.epochs()]
        return runs, epochs, store.layers()


def assert_same_store(expected: Path, got: Path) -> None:
    want, have = stored(expected), stored(got)
    assert want[0] == have[0]
    for rows_a, rows_b in ((want[1], have[1]), (want[2], have[2])):
        assert len(rows_a) == len(rows_b)
        for a, b in zip(rows_a, rows_b, strict=True):
            assert a.keys() == b.keys()
            for key, value in a.items():
                other = b[key]
                same = close(value, other) if isinstance(value, float) else value == other
                assert same, (key, value, other)


@pytest.fixture(scope="module")
def local_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("local")
    run_study(STUDY, directory)
    return directory


def test_batched_study_fills_the_store_as_the_local_executor_does(tmp_path: Path, local_store: Path) -> None:
    executor = BatchedExecutor(max_size=12, timer=faster)
    outcome = run_study(STUDY, tmp_path, executor=executor)
    assert outcome.counts == {"finished": 28}
    assert outcome.executor == "batched"
    assert [len(b.jobs) for b in executor.decisions] == [10, 9, 9]
    assert all(b.stacked for b in executor.decisions)
    assert_same_store(local_store, tmp_path)


def test_a_compiled_batched_study_fills_the_store_as_the_local_executor_does(tmp_path: Path, local_store: Path) -> None:
    executor = BatchedExecutor(compile=True, timer=faster)
    outcome = run_study(STUDY, tmp_path, executor=executor)
    assert outcome.counts == {"finished": 28}
    assert [(b.stacked, b.compiled) for b in executor.decisions] == [(True, True)]
    assert_same_store(local_store, tmp_path)


def test_an_interrupted_batched_study_resumes_to_the_same_numbers(tmp_path: Path, local_store: Path) -> None:
    count = itertools.count(1)

    def stop(event: Event, _: object) -> None:
        if next(count) == 20:  # group 1 (14 runs): all at epoch 1 (events 1-14), 6 at epoch 2; group 2 not begun
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(STUDY, tmp_path, executor=BatchedExecutor(max_size=14, timer=faster), on_event=stop)
    resumed = BatchedExecutor(max_size=14, timer=faster)
    outcome = run_study(STUDY, tmp_path, executor=resumed)
    assert outcome.counts == {"finished": 28}
    assert sorted(b.label for b in resumed.decisions) == [
        "moons/mlp (14 configurations)",
        "moons/mlp (6 configurations, from epoch 2)",
        "moons/mlp (8 configurations, from epoch 1)",
    ]
    assert_same_store(local_store, tmp_path)


def test_groups_where_stacking_does_not_pay_run_one_at_a_time_exactly_as_local(tmp_path: Path) -> None:
    jobs = jobs_for(STUDY.configurations()[:6])
    announced: list[Batch] = []
    executor = BatchedExecutor(timer=slower, on_plan=announced.append)
    events = list(executor.run(jobs))
    assert without_wall(events) == without_wall(LocalExecutor().run(jobs))  # the same code path: bit for bit
    assert announced == executor.decisions
    assert [b.stacked for b in announced] == [False]
    assert (
        announced[0]
        .message()
        .endswith(
            "one at a time (measured 1 s per stacked step vs 6 x 1 ms = 6 ms one at a time: stacking would be 166.7x slower)"
        )
    )


def test_an_error_in_the_stacked_code_fails_the_groups_runs_and_a_rerun_retries_them(
    tmp_path: Path, local_store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(engine_module, "stacked_step", broken)
    outcome = run_study(STUDY, tmp_path, executor=BatchedExecutor(timer=faster))
    assert outcome.counts == {"failed": 28}
    with Store.read(tmp_path) as store:
        assert all(r.message.startswith("RuntimeError: out of memory") for r in store.runs())
    monkeypatch.undo()
    again = run_study(STUDY, tmp_path, executor=BatchedExecutor(timer=faster))
    assert again.counts == {"finished": 28}
    assert_same_store(local_store, tmp_path)


def test_run_batch_ends_every_job_exactly_once() -> None:
    jobs = jobs_for(STUDY.configurations()[:5])
    for stacked in (True, False):
        events = list(run_batch(Batch(tuple(jobs), stacked, "test")))
        ends = [e.run_id for e in events if isinstance(e, RunEnded) or (isinstance(e, EpochDone) and e.last)]
        assert sorted(ends) == sorted(j.run_id for j in jobs)


def test_the_batched_executor_is_registered_and_checks_its_options() -> None:
    executor = make_executor("batched")
    assert isinstance(executor, BatchedExecutor)
    assert (executor.name, executor.plan, executor.num_threads, executor.compile) == ("batched", "auto", 1, False)
    assert make_executor("batched", compile=True).compile
    with pytest.raises(ValueError, match="plan: unknown plan 'always'; choose from auto, stacked, sequential"):
        BatchedExecutor(plan="always")
    with pytest.raises(TypeError, match="compile: expected True or False, got 'yes'"):
        BatchedExecutor(compile="yes")  # type: ignore[arg-type]


def test_no_jobs_no_events_no_plans() -> None:
    executor = BatchedExecutor(timer=faster)
    assert list(executor.run([])) == []
    assert executor.decisions == []
