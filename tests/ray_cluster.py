"""A real Ray cluster for tests: one head with 2 CPUs on loopback, started by ``ray start --head``.

Network rule: every Ray process binds and talks to 127.0.0.1 only. ``--node-ip-address 127.0.0.1``
alone is not enough (Ray swaps loopback for the machine's network address and then listens on all
interfaces); :data:`~decaylab.sandbox.ray_executor.LOCAL_ENV` keeps it on loopback, and
:meth:`LocalRayCluster.exposed` lists any listening socket of the cluster's processes that is not
on loopback, so tests check it while the cluster works.

The cluster is stopped by process id (its own processes only: those naming its private temp
directory, and their descendants), never by ``ray stop``, which would stop every Ray on the machine.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from decaylab.sandbox.ray_executor import LOCAL_ENV

RAY = Path(sys.executable).parent / "ray"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                # the command name (field 2) may hold spaces; the parent pid is the 2nd field after it
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "*":
        return False
    ip = ipaddress.ip_address(host.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def listeners() -> list[tuple[str, int, set[int], str]]:
    """Every listening TCP/UDP socket: (host, port, owner pids, ss line)."""
    out = subprocess.run(["ss", "-H", "-l", "-n", "-p", "-t", "-u"], capture_output=True, text=True, check=True)
    found = []
    for line in out.stdout.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        host, _, port = fields[4].rpartition(":")
        found.append(
            (host, int(port) if port.isdigit() else -1, {int(p) for p in re.findall(r"pid=(\d+)", line)}, line)
        )
    return found


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
        command = [
            str(RAY), "start", "--head", "--num-cpus", str(self.num_cpus), "--node-ip-address", "127.0.0.1",
            "--port", str(port), "--include-dashboard", "false", "--disable-usage-stats",
            "--temp-dir", str(self.temp_dir),
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
        roots = [
            int(e.name)
            for e in Path("/proc").iterdir()
            if e.name.isdigit() and str(self.temp_dir) in _cmdline(int(e.name))
        ]
        tree, found, stack = _children(), set(), list(roots)
        while stack:
            pid = stack.pop()
            if pid not in found:
                found.add(pid)
                stack.extend(tree.get(pid, []))
        return found

    def exposed(self, extra_pids: set[int] = frozenset()) -> list[str]:
        """``ss`` lines of sockets that the cluster's processes (or ``extra_pids``) listen on off loopback."""
        ours = self.pids() | set(extra_pids)
        return [line for host, _, owners, line in listeners() if owners & ours and not _is_loopback(host)]

    def stop(self, grace_s: float = 3.0) -> None:
        """SIGTERM the cluster's processes, SIGKILL what is left after ``grace_s``; remove its temp directory."""
        pids = self.pids()
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + (grace_s if sig == signal.SIGTERM else 5)
            while time.monotonic() < deadline and (
                pids := {p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)}
            ):
                time.sleep(0.1)
            if not pids:
                break
        if self.temp_dir is not None:
            shutil.rmtree(self.temp_dir, ignore_errors=True)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    return True


@contextlib.contextmanager
def ray_cluster(num_cpus: int = 2) -> Iterator[LocalRayCluster]:
    """Start a :class:`LocalRayCluster` (skip if Ray is not installed); always stop it afterwards."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("Ray is not installed (pip install 'decaylab[ray]')")
    for name, value in LOCAL_ENV.items():  # before this process imports Ray: its driver stays on loopback too
        os.environ.setdefault(name, value)
    if not RAY.exists():
        pytest.skip(f"Ray's command line is not installed beside {sys.executable}")
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is needed to check that Ray listens on loopback only")
    cluster = LocalRayCluster(num_cpus)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
