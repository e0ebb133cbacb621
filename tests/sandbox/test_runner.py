"""The study driver and its executor seam: resume after a kill, determinism, divergence, failures,
locking, and the executor contract (any executor that keeps it fills the store identically)."""

from __future__ import annotations

import itertools
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from decaylab.sandbox import train as train_module
from decaylab.sandbox.runner import (
    STUDY_FILE,
    EpochDone,
    Event,
    Job,
    LocalExecutor,
    RunEnded,
    StudyBusyError,
    run_job,
    run_study,
    study_lock,
)
from decaylab.sandbox.store import FILENAME, Store, StoreError
from decaylab.sandbox.study import Study

SRC = Path(__file__).resolve().parents[2] / "src"
SMALL = Study.from_dict(
    {
        "task": {"dataset": "moons", "model": "mlp", "hidden": [8], "epochs": 3, "batch_size": 50},
        "grid": {
            "methods": ["none", "decoupled_l2", "proximal_l1"],
            "strengths": [0.01],
            "seeds": [0, 1],
            "lrs": [0.1],
        },
    }
)
# Slow enough (about 2 s of training, 20 ms per epoch) that a kill lands mid-study.
KILLABLE = Study.from_dict(
    {
        "task": {"dataset": "digits", "model": "mlp", "hidden": [32], "epochs": 6, "batch_size": 32},
        "grid": {
            "methods": ["none", "coupled_l2", "proximal_l1"],
            "strengths": [0.003],
            "seeds": [0, 1],
            "lrs": [0.05],
        },
    }
)


def contents(directory: Path) -> dict[str, list]:
    """Everything a study stored, minus wall-clock times and timestamps."""
    with Store.read(directory) as store:
        return {
            "runs": [(r.run_id, r.status, r.epochs_done, r.message) for r in store.runs()],
            "epochs": [{k: v for k, v in row.items() if k != "wall_s"} for row in store.epochs()],
            "layers": store.layers(),
            "checkpoints": store.db.execute("SELECT count(*) FROM checkpoints").fetchone()[0],
        }


def assert_close_contents(got: dict[str, list], expected: dict[str, list], tolerance: float) -> None:
    """Two :func:`contents` equal except that floats may differ by ``tolerance`` (relative or absolute)."""
    problems: list[str] = []

    def compare(a: object, b: object, where: str) -> None:
        if isinstance(a, float) and isinstance(b, float):
            if not math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance) and not (math.isnan(a) and math.isnan(b)):
                problems.append(f"{where}: {a!r} vs {b!r}")
        elif isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
            for key in a:
                compare(a[key], b[key], f"{where}.{key}")
        elif isinstance(a, list | tuple) and isinstance(b, list | tuple) and len(a) == len(b):
            for index, (x, y) in enumerate(zip(a, b, strict=True)):
                compare(x, y, f"{where}[{index}]")
        elif a != b:
            problems.append(f"{where}: {a!r} vs {b!r}")

    compare(got, expected, "store")
    assert not problems, "\n".join(problems[:20])


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    directory = tmp_path_factory.mktemp("reference")
    run_study(SMALL, directory)
    return contents(directory)


def test_a_study_runs_every_configuration_and_a_rerun_skips_them(tmp_path: Path, small_reference: dict) -> None:
    outcome = run_study(SMALL, tmp_path)
    assert outcome.total == 6
    assert outcome.skipped == 0
    assert outcome.counts == {"finished": 6}
    assert (tmp_path / STUDY_FILE).exists()
    assert Study.from_toml(tmp_path / STUDY_FILE) == SMALL
    again = run_study(SMALL, tmp_path)
    assert again.skipped == 6
    assert again.counts == {"finished": 6}
    with Store.read(tmp_path) as store:
        assert all(r.attempts == 1 for r in store.runs())
    # the same study and seeds in another directory give identical numbers
    assert contents(tmp_path) == small_reference


class StopStudyError(Exception):
    pass


def test_an_interrupted_study_resumes_to_the_same_numbers(tmp_path: Path, small_reference: dict) -> None:
    count = itertools.count(1)

    def stop_after_eight(event: Event, _: object) -> None:
        if next(count) == 8:  # mid-way through the third run (3 epochs per run)
            raise StopStudyError

    with pytest.raises(StopStudyError):
        run_study(SMALL, tmp_path, on_event=stop_after_eight)
    with Store.read(tmp_path) as store:
        statuses = [r.status for r in store.runs()]
        assert statuses[:2] == ["finished", "finished"]
        assert statuses[2] == "running"
        assert store.checkpoint(store.runs()[2].run_id)[0] == 2
    run_study(SMALL, tmp_path)
    assert contents(tmp_path) == small_reference


def _start(directory: Path, study: Study) -> subprocess.Popen:
    code = (
        "import sys; from pathlib import Path; from decaylab.sandbox.study import Study; "
        "from decaylab.sandbox.runner import run_study; "
        "run_study(Study.from_dict(__import__('json').loads(sys.argv[1])), Path(sys.argv[2]))"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen([sys.executable, "-c", code, study.to_json(), str(directory)], env=env)


def _progress(directory: Path) -> tuple[int, int]:
    """(finished runs, runs with a checkpoint), read without disturbing the writer."""
    path = directory / FILENAME
    if not path.exists():
        return 0, 0
    try:
        db = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            finished = db.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()[0]
            checkpoints = db.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError:  # the schema is not committed yet
        return 0, 0
    return finished, checkpoints


def test_a_study_killed_mid_run_resumes_from_its_checkpoints(tmp_path: Path) -> None:
    """SIGKILL the driver twice while a run is half done; the re-run ends where an uninterrupted run does."""
    killed_at = []
    for round_ in (1, 2):
        process = _start(tmp_path, KILLABLE)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            finished, checkpoints = _progress(tmp_path)
            if finished >= 2 * round_ - 1 and checkpoints >= 1:
                break
            time.sleep(0.005)
        assert process.poll() is None, "the study ended before it could be killed; make KILLABLE slower"
        process.send_signal(signal.SIGKILL)
        process.wait()
        killed_at.append(_progress(tmp_path))
    with Store.read(tmp_path) as store:
        interrupted = [r for r in store.runs() if r.status == "running"]
        assert interrupted
        assert store.checkpoint(interrupted[0].run_id) is not None
        assert 0 < store.checkpoint(interrupted[0].run_id)[0] < KILLABLE.task.epochs
    outcome = run_study(KILLABLE, tmp_path)
    assert outcome.counts == {"finished": 6}
    assert outcome.skipped >= 1
    reference = tmp_path / "uninterrupted"
    run_study(KILLABLE, reference)
    assert contents(tmp_path) == contents(reference)
    with Store.read(tmp_path) as store:
        assert max(r.attempts for r in store.runs()) >= 2  # some run really was resumed


def test_a_diverging_run_is_recorded_and_the_study_goes_on(tmp_path: Path) -> None:
    study = Study.from_dict(
        {
            "task": {"dataset": "sparse_regression", "model": "linear", "epochs": 8},
            "grid": {"methods": ["none", "l1"], "strengths": [0.01], "seeds": [0], "lrs": [0.01, 5.0]},
        }
    )
    outcome = run_study(study, tmp_path)
    assert outcome.counts == {"finished": 2, "diverged": 2}
    with Store.read(tmp_path) as store:
        runs = store.runs()
        assert [r.status for r in runs] == ["finished", "finished", "diverged", "diverged"]
        assert all(r.message.startswith("diverged in epoch") for r in runs[2:])
        assert store.db.execute("SELECT count(*) FROM checkpoints").fetchone()[0] == 0
    again = run_study(study, tmp_path)
    assert again.skipped == 4  # divergence is final: deterministic runs would diverge again


def test_a_failing_run_is_recorded_then_retried(
    tmp_path: Path, small_reference: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = train_module.Run.train_epoch

    def flaky(self: train_module.Run) -> train_module.EpochRecord:
        if self.config.method == "proximal_l1" and self.config.seed == 1 and self.epoch == 1:
            raise RuntimeError("disk full")
        return original(self)

    monkeypatch.setattr(train_module.Run, "train_epoch", flaky)
    outcome = run_study(SMALL, tmp_path)
    assert outcome.counts == {"finished": 5, "failed": 1}
    with Store.read(tmp_path) as store:
        failed = next(r for r in store.runs() if r.status == "failed")
        assert failed.message.startswith("RuntimeError: disk full")
        assert failed.epochs_done == 1
    monkeypatch.setattr(train_module.Run, "train_epoch", original)
    assert run_study(SMALL, tmp_path).counts == {"finished": 6}
    assert contents(tmp_path) == small_reference


def test_a_busy_study_directory_is_refused(tmp_path: Path) -> None:
    with study_lock(tmp_path), pytest.raises(StudyBusyError, match=r"is being run by pid \d+"):
        run_study(SMALL, tmp_path)


def test_a_directory_holding_another_study_is_refused(tmp_path: Path) -> None:
    run_study(SMALL, tmp_path)
    with pytest.raises(StoreError, match="holds a different study"):
        run_study(SMALL.override(task={"epochs": 4}), tmp_path)


class InterleavingExecutor:
    """Runs all jobs concurrently, round-robin one event at a time: events of runs interleave."""

    name = "interleaving"

    def run(self, jobs: Sequence[Job]) -> Iterator[Event]:
        streams = [run_job(job) for job in jobs]
        while streams:
            for stream in list(streams):
                event = next(stream, None)
                if event is None:
                    streams.remove(stream)
                else:
                    yield event


def test_any_executor_keeping_the_contract_fills_the_store_identically(tmp_path: Path, small_reference: dict) -> None:
    outcome = run_study(SMALL, tmp_path, executor=InterleavingExecutor())
    assert outcome.executor == "interleaving"
    assert contents(tmp_path) == small_reference


def test_run_job_ends_every_job_with_one_terminal_event() -> None:
    config = SMALL.configurations()[1]
    events = list(LocalExecutor().run([Job(config.run_id, config)]))
    assert [type(e) for e in events] == [EpochDone] * 3
    assert [e.last for e in events] == [False, False, True]
    assert events[-1].checkpoint is None
    assert all(e.checkpoint for e in events[:-1])
    diverging = config.__class__(dataset="sparse_regression", model="linear", lr=5.0, epochs=20)
    events = list(run_job(Job(diverging.run_id, diverging)))
    assert isinstance(events[-1], RunEnded)
    assert events[-1].status == "diverged"
    assert all(isinstance(e, EpochDone) and not e.last for e in events[:-1])


def test_a_users_own_study_toml_in_the_directory_is_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / STUDY_FILE
    mine.write_text('[task]\ndataset = "moons"\n# my notes\n')
    run_study(SMALL, tmp_path)
    assert mine.read_text() == '[task]\ndataset = "moons"\n# my notes\n'
