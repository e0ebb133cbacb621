"""`decaylab compare --executor ray [--address ADDR]` end to end on a real 2-CPU Ray cluster on loopback:
a killed driver resumed by the same command to the store the local executor writes, a local Ray
instance when no address is given, and the errors (no Ray, nothing at the address, misplaced flag)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from decaylab.cli import app
from decaylab.sandbox.batched.plan import PLANS_FILE
from decaylab.sandbox.store import FILENAME
from tests.ray_cluster import (
    LocalRayCluster,
    Watch,
    descendants,
    exposed,
    free_port,
    require_ray,
    shared_cluster,
)
from tests.sandbox.test_runner import assert_close_contents, contents

# `make test` runs the Ray tests in a pytest run of their own, without xdist: one cluster for all of them
pytestmark = pytest.mark.ray

SRC = Path(__file__).resolve().parents[2] / "src"
# 15 CNN runs on digits (about 0.2 s each): long enough to kill the driver between two shards.
STUDY = [
    "--dataset", "digits", "--model", "cnn", "--train-size", "200", "--epochs", "3",
    "--methods", "none,coupled_l2,decoupled_l2,proximal_l1,penalty_l2", "--strengths", "0.003",
    "--seeds", "0,1,2", "--no-report",
]  # fmt: skip
RUNS = 15


def invoke(*args: str):
    return CliRunner().invoke(app, ["compare", *args])


@pytest.fixture(scope="module")
def cluster(pytestconfig: pytest.Config) -> LocalRayCluster:
    return shared_cluster(pytestconfig)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list]:
    """The study as `decaylab compare` stores it with the default (local) executor."""
    directory = tmp_path_factory.mktemp("local")
    result = invoke(*STUDY, "--out", str(directory))
    assert result.exit_code == 0, result.output
    assert "executor local" in result.output
    return contents(directory)


def _finished(directory: Path) -> int:
    try:
        db = sqlite3.connect(f"{(directory / FILENAME).as_uri()}?mode=ro", uri=True, timeout=5)
        try:
            return db.execute("SELECT count(*) FROM runs WHERE status = 'finished'").fetchone()[0]
        finally:
            db.close()
    except sqlite3.DatabaseError:  # not created yet
        return 0


def test_a_killed_driver_is_resumed_by_the_same_command_to_what_the_local_executor_stores(
    cluster: LocalRayCluster, local: dict, tmp_path: Path
) -> None:
    """SIGKILL the driver (`compare --executor ray --address`) mid-study; the same command finishes the study."""
    args = [*STUDY, "--executor", "ray", "--no-stack", "--address", cluster.address, "--out", str(tmp_path)]
    driver = subprocess.Popen(
        [sys.executable, "-m", "decaylab", "compare", *args],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and driver.poll() is None and _finished(tmp_path) < 2:
            time.sleep(0.005)
        assert driver.poll() is None, "the study ended before its driver could be killed"
        driver.send_signal(signal.SIGKILL)
    finally:
        driver.kill()
        driver.wait()
    done = _finished(tmp_path)
    assert 2 <= done < RUNS
    # Ray ends a dead driver's job: no shard of it keeps the cluster busy, the re-run has it to itself.
    deadline = time.monotonic() + 30
    while cluster.workers() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.workers() == []
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert f"{RUNS} finished ({done} already done" in result.output
    assert "executor ray" in result.output
    assert contents(tmp_path) == local  # bit-identical numbers


def test_without_an_address_a_local_ray_instance_runs_the_study_on_loopback(local: dict, tmp_path: Path) -> None:
    require_ray()
    home_ray = Path.home() / ".ray"
    had_home_ray = home_ray.exists()
    with Watch(lambda: descendants([os.getpid()])) as watch:  # the instance is this process's children
        result = invoke(*STUDY, "--executor", "ray", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    # stacked shards (the default): the local numbers within float rounding, each worker's plan printed and kept
    assert_close_contents(contents(tmp_path), local, tolerance=1e-5)
    plans = [json.loads(line) for line in (tmp_path / PLANS_FILE).read_text().splitlines()]
    assert sum(plan["configurations"] for plan in plans) == RUNS
    assert result.output.count("plan: digits/cnn") == len(plans)
    assert watch.samples_with_workers > 0, "the watch never saw the workers"
    assert watch.exposed == [], "Ray listened off loopback:\n" + "\n".join(sorted(set(watch.exposed)))
    assert [p for p in descendants([os.getpid()]) if p != os.getpid()] == []  # the instance was stopped
    assert exposed({os.getpid()}) == []
    assert home_ray.exists() == had_home_ray  # the session's token came from the environment


def test_address_without_the_ray_executor_is_refused(tmp_path: Path) -> None:
    result = invoke(*STUDY, "--address", "127.0.0.1:6379", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "--address: only used with --executor ray (got --executor local)" in result.output
    assert not tmp_path.joinpath(FILENAME).exists()


@pytest.mark.parametrize("flag", ["--stack", "--no-stack"])
def test_stacking_flags_without_the_ray_executor_are_refused(flag: str, tmp_path: Path) -> None:
    result = invoke(*STUDY, flag, "--executor", "batched", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert f"{flag}: only used with --executor ray (got --executor batched)" in result.output
    assert not tmp_path.joinpath(FILENAME).exists()


def test_compile_with_unstacked_ray_shards_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    result = invoke(*STUDY, "--executor", "ray", "--no-stack", "--compile", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "--compile: compiles stacked shards; it does nothing with stack=False (--no-stack)" in result.output
    assert not tmp_path.joinpath(FILENAME).exists()


def test_a_malformed_address_is_refused(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    result = invoke(*STUDY, "--executor", "ray", "--address", "headnode", "--out", str(tmp_path))
    assert result.exit_code == 2
    assert "--address: expected HOST:PORT, ray://HOST:PORT or auto, got 'headnode'" in result.output


def test_an_address_where_no_cluster_answers_is_reported_and_nothing_is_recorded(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{free_port()}"
    result = invoke(*STUDY, "--executor", "ray", "--address", address, "--out", str(tmp_path))
    assert result.exit_code == 1
    assert f"--address: no Ray cluster answers at {address}" in result.output
    assert contents(tmp_path)["epochs"] == []


def test_without_ray_installed_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = invoke(*STUDY, "--executor", "ray", "--out", str(tmp_path))
    assert result.exit_code == 1
    assert "--executor: ray needs Ray, which is not installed" in result.output
    assert "pip install 'decaylab[ray]'" in result.output
    assert not tmp_path.joinpath(FILENAME).exists()
