"""Child processes of the benchmark: start on a free loopback port, wait until
ready, stop by PID; and what /proc says about them (CPU seconds, resident memory).

Follows ``tests/support/processes.py`` (same start/ready/stop shape) without
importing the test package. Every :class:`Child` is registered with a
:class:`Children` owner whose :meth:`Children.stop_all` runs in the benchmark's
``finally``: processes are stopped one by one, by PID, newest first.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Final, Mapping, Sequence

__all__ = [
    "Children",
    "Child",
    "free_port",
    "cpu_seconds",
    "all_cpu_ticks",
    "other_cpu_seconds",
    "rss_kb",
    "set_affinity",
    "REDIS_INSTALL_HINT",
    "redis_child",
]

_CLK_TCK: Final = os.sysconf("SC_CLK_TCK")
REDIS_INSTALL_HINT: Final = "redis-server not found: install it with `apt-get install redis-server`"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` (all its threads), from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        raw = f.read()
    # The command name may contain spaces or parentheses: split after the last ')'.
    fields = raw[raw.rindex(b")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / _CLK_TCK


def all_cpu_ticks() -> dict[int, int]:
    """Per process: own CPU ticks plus those of its reaped children (``cutime``/``cstime``),
    so a short-lived process that ends between two snapshots still shows up in its parent."""
    out: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                raw = f.read()
        except OSError:  # gone meanwhile
            continue
        fields = raw[raw.rindex(b")") + 2 :].split()
        out[int(name)] = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return out


def other_cpu_seconds(before: dict[int, int], after: dict[int, int], exclude: set[int]) -> float:
    """CPU seconds used between two :func:`all_cpu_ticks` snapshots by processes not in ``exclude``."""
    ticks = sum(max(0, t - before.get(pid, 0)) for pid, t in after.items() if pid not in exclude)
    return ticks / _CLK_TCK


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def set_affinity(pid: int, cpus: Sequence[int] | None) -> None:
    if cpus:
        os.sched_setaffinity(pid, set(cpus))


class Child:
    """One child process; ready when its HTTP ``ready_path`` answers 200 or, without
    a path, when its TCP port accepts connections."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        ready_path: str | None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_path: Path | None = None,
        cpus: Sequence[int] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.port = port
        self.ready_path = ready_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        self.log_path = log_path
        self.cpus = cpus
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name}: call .start() first")
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Child:
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                self.argv, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Own process group: a Ctrl-C in the terminal reaches only the benchmark,
                # which then stops its children in order instead of all dying at once.
                start_new_session=True,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        set_affinity(self.proc.pid, self.cpus)
        self._wait_ready(timeout)
        return self

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                exc = RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}")
                exc.child = self  # type: ignore[attr-defined]  # lets the caller quote the log
                raise exc
            if self._is_ready():
                return
            time.sleep(0.05)  # polling readiness, bounded by the deadline
        exc = TimeoutError(f"{self.name} on port {self.port} not ready after {timeout}s; log: {self.log_path}")
        exc.child = self  # type: ignore[attr-defined]
        raise exc

    def _is_ready(self) -> bool:
        try:
            if self.ready_path is None:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return True
            with urllib.request.urlopen(self.base_url + self.ready_path, timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of the child's log, for a one-line failure report."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        return " / ".join(line.strip() for line in text[-lines:])

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM this PID, SIGKILL if it has not gone after ``timeout``."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout)


class Children:
    """Owner of every process the benchmark starts; stops them newest first."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def start(self, child: Child, timeout: float = 30.0) -> Child:
        self._children.append(child)  # registered before start: a half-started child is stopped too
        return child.start(timeout)

    def stop(self, child: Child) -> None:
        child.stop()
        if child in self._children:
            self._children.remove(child)

    def stop_all(self) -> None:
        while self._children:
            child = self._children.pop()
            try:
                child.stop()
            except Exception as exc:  # keep stopping the others
                print(f"warning: could not stop {child.name} (pid {child.proc and child.proc.pid}): {exc}")


def redis_child(port: int, *, log_path: Path | None, cpus: Sequence[int] | None) -> Child | None:
    """A throwaway redis-server on 127.0.0.1 without persistence; None if not installed."""
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    argv = [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--daemonize", "no", "--loglevel", "warning"]
    return Child("redis-server", argv, port=port, ready_path=None, log_path=log_path, cpus=cpus)
