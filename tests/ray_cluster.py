"""A real Ray cluster for tests: one head with 2 CPUs on loopback, started by ``ray start --head``.

Authentication: the clusters require a token made up for the test session (``RAY_AUTH_TOKEN``).

Network rule: every Ray process binds and talks to 127.0.0.1 only. ``--node-ip-address 127.0.0.1``
alone is not enough (Ray swaps loopback for the machine's network address and then listens on all
interfaces); :data:`~decaylab.sandbox.ray_executor.LOCAL_ENV` keeps it on loopback, and
:func:`exposed` / :class:`Watch` list any listening socket of Ray's processes that is not on
loopback, so tests check it while the cluster works.

The cluster is stopped by process id (its own processes only: those naming its private temp
directory, and their descendants), never by ``ray stop``, which would stop every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

from decaylab.sandbox.ray_executor import LOCAL_ENV

RAY = Path(sys.executable).parent / "ray"


def require_ray() -> None:
    """Skip unless Ray, its command line and ``ss`` are here; keep this process's Ray on loopback."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install 'decaylab[ray]')")
    if not RAY.exists():
        pytest.skip(f"Ray's command line is not installed beside {sys.executable}")
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is needed to check that Ray listens on loopback only")
    # Before this process imports Ray: its driver stays on loopback too, and every cluster of this test
    # session requires a private token (Ray's own default otherwise depends on whether a ~/.ray/auth_token
    # exists, and a local `ray.init` writes one there).
    for name, value in {**LOCAL_ENV, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}.items():
        os.environ.setdefault(name, value)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- processes (from /proc) -----------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    """Fields 3.. of /proc/PID/stat (after the command name, which may hold spaces); [] if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def _all_pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def cmdline(pid: int) -> str:
    """The command line, or the title a process gave itself (Ray names its workers ``ray::TASK``)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return bool(fields) and fields[0] != "Z"


def descendants(roots: Iterable[int]) -> set[int]:
    """``roots`` and all their descendant processes."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        fields = _stat_fields(pid)
        if fields:
            children.setdefault(int(fields[1]), []).append(pid)
    found: set[int] = set()
    stack = list(roots)
    while stack:
        pid = stack.pop()
        if pid not in found:
            found.add(pid)
            stack.extend(children.get(pid, []))
    return found


# --- sockets (from ss) ----------------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").split("%")[0]
    if host == "*":
        return False
    ip = ipaddress.ip_address(host)
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def listeners() -> list[tuple[str, set[int], str]]:
    """Every listening TCP/UDP socket: (host, owner pids, ``ss`` line)."""
    out = subprocess.run(["ss", "-H", "-l", "-n", "-p", "-t", "-u"], capture_output=True, text=True, check=True)
    found = []
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 5:
            host = fields[4].rpartition(":")[0]
            found.append((host, {int(p) for p in re.findall(r"pid=(\d+)", line)}, line))
    return found


def exposed(pids: set[int]) -> list[str]:
    """``ss`` lines of the sockets that processes ``pids`` listen on anywhere but loopback."""
    return [line for host, owners, line in listeners() if owners & pids and not _is_loopback(host)]


class Watch:
    """While it runs, a thread samples every 0.2 s the listening sockets of the processes ``pids()``."""

    def __init__(self, pids: Callable[[], set[int]]) -> None:
        self.pids = pids
        self.exposed: list[str] = []
        self.samples_with_workers = 0  # samples taken while a Ray worker was alive
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            pids = self.pids()
            self.exposed += exposed(pids)
            self.samples_with_workers += any(cmdline(pid).startswith("ray::") for pid in pids)

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --- the cluster ----------------------------------------------------------------------------------


@dataclass
class LocalRayCluster:
    """A Ray head on 127.0.0.1 with ``num_cpus`` CPUs and a private temp directory."""

    num_cpus: int = 2
    address: str = ""
    temp_dir: Path | None = None

    def start(self) -> None:
        self.temp_dir = Path(tempfile.mkdtemp(prefix="dlray-"))  # short: Ray's socket paths must fit 107 bytes
        port = free_port()
        self.address = f"127.0.0.1:{port}"
        # Ray's other listening ports default to fixed numbers (dashboard 8265, dashboard agent 52365,
        # ...): a head started while another runs (two pytest workers, another session) must not share them.
        fixed_ports = [
            "--dashboard-port", "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port",
        ]  # fmt: skip
        command = [
            str(RAY), "start", "--head", "--num-cpus", str(self.num_cpus), "--node-ip-address", "127.0.0.1",
            "--port", str(port), "--include-dashboard", "false", "--disable-usage-stats",
            "--temp-dir", str(self.temp_dir),
            *(part for flag in fixed_ports for part in (flag, str(free_port()))),
        ]  # fmt: skip
        env = {**os.environ, **LOCAL_ENV}
        env.pop("RAY_ADDRESS", None)
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            self.stop()
            raise RuntimeError(f"ray start failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def pids(self) -> set[int]:
        """The cluster's processes: those naming its temp directory, and all their descendants (workers)."""
        if self.temp_dir is None:
            return set()
        return descendants(pid for pid in _all_pids() if str(self.temp_dir) in cmdline(pid))

    def workers(self) -> list[str]:
        """Titles of the cluster's worker processes that are running a task (``ray::run_shard``)."""
        return [title for pid in self.pids() if (title := cmdline(pid)).startswith("ray::run_shard")]

    def stop(self, grace_s: float = 1.0) -> None:
        """SIGTERM the cluster's processes, SIGKILL what is left after ``grace_s``; remove its temp directory."""
        pids = self.pids()
        for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait_s
            while (pids := {p for p in pids if alive(p)}) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not pids:
                break
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


_shared: LocalRayCluster | None = None


def shared_cluster(config: pytest.Config) -> LocalRayCluster:
    """The test session's cluster (2 CPUs): started on first use (skipping if Ray is not installed) and
    stopped when pytest ends, however it ends (``config.add_cleanup`` runs on failures and Ctrl-C too).

    One cluster serves every module that needs one: starting and stopping a head takes about 10 s.
    """
    global _shared
    require_ray()
    if _shared is None:
        cluster = LocalRayCluster(num_cpus=2)
        config.add_cleanup(cluster.stop)
        cluster.start()
        _shared = cluster
    return _shared
