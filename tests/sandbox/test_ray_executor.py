"""The ray executor on a real 2-CPU Ray cluster on loopback: the same numbers as the local executor
(bit for bit one job per shard; within 1e-5 as stacked shards, with the plan decisions reported), a worker killed mid-shard (retried, every epoch recorded once), a shard failing for good, and
Ray listening on loopback only. The parts that need no cluster (addresses, errors) run without one."""

from __future__ import annotations

import dataclasses
import os
import signal
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from decaylab.sandbox.batched import BatchedExecutor
from decaylab.sandbox.batched import shard_plan as stacked_shard_plan
from decaylab.sandbox.ray_executor import (
    INSTALL_HINT,
    RayExecutor,
    check_reachable,
    code_runtime_env,
    complete,
    is_loopback,
    parse_address,
    run_shard,
)
from decaylab.sandbox.runner import (
    EXECUTORS,
    EpochDone,
    Event,
    ExecutorError,
    Job,
    LocalExecutor,
    RunEnded,
    make_executor,
    run_study,
)
from decaylab.sandbox.shards import shard_plan
from decaylab.sandbox.study import Study
from tests.ray_cluster import LocalRayCluster, Watch, exposed, shared_cluster
from tests.sandbox.test_runner import assert_close_contents, contents

# `make test` runs the Ray tests in a pytest run of their own, without xdist: one cluster for all of them
pytestmark = pytest.mark.ray

# Nine CNN runs on digits, about 0.1 s each: several shards per worker, conv numerics compared bit for bit.
STUDY = Study.from_dict(
    {
        "task": {"dataset": "digits", "model": "cnn", "train_size": 120, "epochs": 3, "batch_size": 40},
        "grid": {
            "methods": ["none", "coupled_l2", "decoupled_l2", "proximal_l1", "penalty_l2"],
            "strengths": [0.003],
            "seeds": [0, 1],
            "lrs": [0.05],
        },
    }
)
RUNS = len(STUDY.configurations())
EPOCHS = STUDY.task.epochs


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """The study run by the local executor (the reference every executor must reproduce)."""
    directory = tmp_path_factory.mktemp("local")
    assert run_study(STUDY, directory).counts == {"finished": RUNS}
    return contents(directory)


@pytest.fixture(scope="module")
def cluster(pytestconfig: pytest.Config) -> LocalRayCluster:
    return shared_cluster(pytestconfig)


@pytest.fixture(scope="module")
def connected(cluster: LocalRayCluster) -> Iterator[LocalRayCluster]:
    """This process connected to the cluster once for the module (RayExecutor uses an open session as
    it is), so the tests share warm workers. The executor's own connect/stop path runs in the CLI tests."""
    import ray
    from ray import cloudpickle

    ray.init(address=cluster.address, runtime_env=code_runtime_env())
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test shard executors below
    try:
        yield cluster
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        ray.shutdown()


# --- test shard executors (run inside Ray tasks) -----------------------------------------------------


@dataclass
class StallOnce:
    """The first attempt at the shard holding ``run_id`` writes its pid to ``marker`` right after that
    run's first epoch, then stalls until it is killed; later attempts append their pid to
    ``marker.retries`` and run normally."""

    marker: str
    run_id: str
    name: str = "stall-once"

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        for event in LocalExecutor().run(jobs):
            yield event
            if event.run_id == self.run_id and isinstance(event, EpochDone) and event.record.epoch == 1:
                written = f"{self.marker}.{os.getpid()}"
                Path(written).write_text(str(os.getpid()))
                try:
                    os.link(written, self.marker)  # atomic: exactly one attempt is the first
                except FileExistsError:
                    with open(f"{self.marker}.retries", "a") as retries:
                        retries.write(f"{os.getpid()}\n")
                    continue
                time.sleep(60)


@dataclass
class BrokenAfterFirstEpoch:
    """Raises (outside any training step) in the shard holding ``run_id``, after its first epoch."""

    run_id: str
    name: str = "broken"

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        for event in LocalExecutor().run(jobs):
            yield event
            if event.run_id == self.run_id:
                raise OSError("the shard's scratch disk vanished")


def timeless(events: Iterable[Event]) -> list[Event]:
    """``events`` with wall-clock times zeroed."""
    return [
        dataclasses.replace(e, record=dataclasses.replace(e.record, wall_s=0.0)) if isinstance(e, EpochDone) else e
        for e in events
    ]


def delivered_epochs() -> tuple[Counter, Callable[[Event, object], None]]:
    seen: Counter = Counter()

    def on_event(event: Event, _: object) -> None:
        if isinstance(event, EpochDone):
            seen[(event.run_id, event.record.epoch)] += 1

    return seen, on_event


# --- on the cluster -----------------------------------------------------------------------------------


def test_results_equal_the_local_executors_and_ray_stays_on_loopback(
    connected: LocalRayCluster, reference: dict, tmp_path: Path
) -> None:
    def ours() -> set[int]:  # the cluster's processes and its driver, this one
        return connected.pids() | {os.getpid()}

    assert exposed(ours()) == []
    seen, on_event = delivered_epochs()
    with Watch(ours) as watch:
        executor = RayExecutor(address=connected.address, stack=False)
        outcome = run_study(STUDY, tmp_path, executor=executor, on_event=on_event)
    assert outcome.executor == "ray"
    assert outcome.counts == {"finished": RUNS}
    assert contents(tmp_path) == reference  # bit-identical metrics, layer statistics, statuses
    assert set(seen.values()) == {1} and len(seen) == RUNS * EPOCHS
    assert watch.samples_with_workers > 0, "the watch never saw the workers"
    assert watch.exposed == [], "Ray listened off loopback:\n" + "\n".join(sorted(set(watch.exposed)))


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_stacked_shards_give_the_local_numbers_and_report_each_plan_decision(
    connected: LocalRayCluster, reference: dict, tmp_path: Path, compile: bool
) -> None:
    """The default: shards are stackable groups sized to the cluster's 2 slots; each worker decides (here
    forced to stack, so the stacked code really runs on the workers) and the driver hears every decision.
    Compiled shards compile on the workers."""
    decisions: list = []
    shard_executor = BatchedExecutor(plan="stacked", compile=compile)
    executor = RayExecutor(address=connected.address, shard_executor=shard_executor)
    executor.on_plan = decisions.append
    assert executor.planner is stacked_shard_plan
    seen, on_event = delivered_epochs()
    outcome = run_study(STUDY, tmp_path, executor=executor, on_event=on_event)
    assert outcome.counts == {"finished": RUNS}
    assert set(seen.values()) == {1} and len(seen) == RUNS * EPOCHS
    assert len(decisions) == 2 and all(batch.stacked for batch in decisions)  # RUNS jobs over 2 slots
    assert all(batch.compiled is compile for batch in decisions)
    assert sorted(job.run_id for batch in decisions for job in batch.jobs) == sorted(
        c.run_id for c in STUDY.configurations()
    )
    assert_close_contents(contents(tmp_path), reference, tolerance=1e-5)


def test_a_worker_killed_mid_shard_is_retried_and_every_epoch_is_recorded_once(
    connected: LocalRayCluster, reference: dict, tmp_path: Path
) -> None:
    marker = tmp_path / "first-attempt.pid"
    target = STUDY.configurations()[4].run_id
    killed: list[int] = []

    def kill_when_stalled() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not marker.exists():
            time.sleep(0.01)
        pid = int(marker.read_text())
        assert pid in connected.pids(), "the stalled shard is not one of the cluster's processes"
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_when_stalled, daemon=True)
    killer.start()
    seen, on_event = delivered_epochs()
    executor = RayExecutor(address=connected.address, stack=False, shard_executor=StallOnce(str(marker), target))
    outcome = run_study(STUDY, tmp_path / "study", executor=executor, on_event=on_event)
    killer.join(timeout=5)
    assert len(killed) == 1
    retries = [int(line) for line in Path(f"{marker}.retries").read_text().split()]
    assert len(retries) == 1 and retries[0] != killed[0]  # the shard ran again, in another worker
    assert outcome.counts == {"finished": RUNS}
    # The killed attempt had finished an epoch of `target`; none of it reached the driver twice.
    assert set(seen.values()) == {1} and len(seen) == RUNS * EPOCHS
    assert contents(tmp_path / "study") == reference


def test_a_shard_that_fails_for_good_marks_its_runs_failed_and_a_rerun_finishes_them(
    connected: LocalRayCluster, reference: dict, tmp_path: Path
) -> None:
    target = STUDY.configurations()[2].run_id
    broken = RayExecutor(address=connected.address, stack=False, shard_executor=BrokenAfterFirstEpoch(target))
    outcome = run_study(STUDY, tmp_path, executor=broken)
    assert outcome.counts == {"finished": RUNS - 1, "failed": 1}
    failed = next(r for r in contents(tmp_path)["runs"] if r[1] == "failed")
    assert failed[0] == target
    assert failed[2] == 0  # its shard's events never arrived: nothing half-recorded
    assert "scratch disk vanished" in failed[3] and "run the study again" in failed[3]
    again = run_study(STUDY, tmp_path, executor=RayExecutor(address=connected.address))
    assert again.skipped == RUNS - 1
    assert contents(tmp_path) == reference


# --- without a cluster -----------------------------------------------------------------------------


def test_ray_is_registered_and_built_with_its_options() -> None:
    pytest.importorskip("ray")
    assert "ray" in EXECUTORS
    executor = make_executor("ray", address="127.0.0.1:6379")
    assert isinstance(executor, RayExecutor)
    assert executor.name == "ray" and executor.address == "127.0.0.1:6379"
    assert executor.planner is stacked_shard_plan and isinstance(executor.shard_executor, BatchedExecutor)
    one_by_one = make_executor("ray", stack=False)
    assert one_by_one.planner is shard_plan and isinstance(one_by_one.shard_executor, LocalExecutor)
    assert not executor.shard_executor.compile
    compiled = make_executor("ray", compile=True)
    assert isinstance(compiled.shard_executor, BatchedExecutor) and compiled.shard_executor.compile


def test_without_ray_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(ExecutorError, match=r"^executor: ray needs Ray, which is not installed") as error:
        make_executor("ray")
    assert str(error.value).endswith(INSTALL_HINT)
    assert make_executor("local").name == "local"  # decaylab itself works without Ray


@pytest.mark.parametrize(
    ("address", "parsed", "loopback"),
    [
        ("127.0.0.1:6379", ("127.0.0.1", 6379), True),
        ("localhost:10001", ("localhost", 10001), True),
        ("ray://10.0.0.5:10001", ("10.0.0.5", 10001), False),
        ("[::1]:6379", ("::1", 6379), True),
        ("head.cluster.example:6379", ("head.cluster.example", 6379), False),
        ("auto", None, False),
    ],
)
def test_addresses_are_parsed(address: str, parsed: tuple | None, loopback: bool) -> None:
    assert parse_address(address) == parsed
    assert is_loopback(address) is loopback


@pytest.mark.parametrize("address", ["", "6379", "host:", "host:port", "127.0.0.1:70000", ":6379"])
def test_a_bad_address_is_refused(address: str) -> None:
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match=r"^address: expected HOST:PORT, ray://HOST:PORT or auto"):
        RayExecutor(address=address)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cpus_per_shard": 0}, r"^cpus_per_shard: expected a whole number >= 1"),
        ({"max_retries": -1}, r"^max_retries: expected a whole number >= 0"),
        ({"num_cpus": 0}, r"^num_cpus: expected a whole number >= 1"),
        ({"num_cpus": 2, "address": "127.0.0.1:6379"}, r"^num_cpus: only for a local instance"),
        ({"stack": "yes"}, r"^stack: expected True or False"),
        ({"compile": "yes"}, r"^compile: expected True or False"),
        ({"compile": True, "stack": False}, r"^compile: compiles stacked shards; it does nothing with stack=False"),
        ({"compile": True, "shard_executor": LocalExecutor()}, r"^compile: give your shard_executor its own"),
    ],
)
def test_bad_options_are_refused(options: dict, message: str) -> None:
    pytest.importorskip("ray")
    with pytest.raises(ValueError, match=message):
        RayExecutor(**options)


def test_an_address_where_nothing_listens_is_reported_in_seconds() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(ExecutorError, match=rf"^address: no Ray cluster answers at 127.0.0.1:{port}"):
        check_reachable(f"127.0.0.1:{port}")
    assert time.monotonic() - start < 10


def test_a_shard_runs_through_its_executor_and_every_job_ends_once() -> None:
    configs = STUDY.configurations()[:2]
    jobs = [Job(c.run_id, c) for c in configs]
    events, decisions = run_shard(jobs, LocalExecutor())
    assert decisions == []  # the local executor makes none
    assert timeless(events) == timeless(LocalExecutor().run(jobs))
    assert list(complete(jobs, events, "unused")) == events
    # A shard that lost its events (a task failed for good) ends each of its jobs as failed, once.
    lost = list(complete(jobs, events[:1], "the node died"))
    assert lost[0] == events[0]
    assert lost[1:] == [RunEnded(j.run_id, "failed", "the node died") for j in jobs]


def test_a_shard_returns_the_plan_decisions_made_for_it_only() -> None:
    jobs = [Job(c.run_id, c) for c in STUDY.configurations()[:2]]
    executor = BatchedExecutor(plan="sequential")
    run_shard(jobs[:1], executor)  # an earlier shard on the same executor object
    events, decisions = run_shard(jobs[1:], executor)
    assert [batch.jobs for batch in decisions] == [tuple(jobs[1:])]
    assert not decisions[0].stacked
    assert timeless(events) == timeless(LocalExecutor().run(jobs[1:]))
