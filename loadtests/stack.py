"""The servers of one load-test run, and a monitor that watches them.

:class:`Stack` starts Redis (for several nodes, or when asked) and N nodes of
the presence server with a generated configuration (``scenario.py``), each on
a free loopback port, registered with a :class:`procs.Children` owner so that
:meth:`Stack.stop` stops every one by PID, newest first, whatever happened.

:class:`Monitor` is a thread that once a second reads ``/proc`` (CPU seconds and
resident memory of each node, Redis and the load generators, the machine's
load average, the round trip of each node's ``/healthz``) and, every few
seconds, each node's ``vo_sessions`` gauge from ``/metrics``: the time series
of the report.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Final, Mapping, Sequence

import procs
from procs import Child, Children, cpu_seconds, free_port, rss_kb
from targets import ROOT

__all__ = ["Stack", "Monitor", "Series", "process_tree", "load_average"]

_SESSIONS: Final = re.compile(r"^vo_sessions\s+([0-9.e+]+)$", re.MULTILINE)


class Stack:
    """Redis and the nodes; everything stopped by :meth:`stop` (idempotent)."""

    def __init__(
        self,
        config: Path,
        log_dir: Path,
        *,
        nodes: int,
        redis: bool,
        cpus: Sequence[int] | None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.env = dict(env or {})  # PRESENCE_* overrides for every node
        self.log_dir = log_dir
        self.n = nodes
        self.want_redis = redis or nodes > 1
        self.cpus = cpus
        self.children = Children()
        self.redis: Child | None = None
        self.nodes: list[Child] = []

    @property
    def urls(self) -> list[str]:
        return [n.base_url for n in self.nodes]

    def start(self, timeout: float = 60.0) -> None:
        env = dict(self.env)
        if self.want_redis:
            child = procs.redis_child(free_port(), log_path=self.log_dir / "redis.log", cpus=self.cpus)
            if child is None:
                raise RuntimeError(procs.REDIS_INSTALL_HINT)
            self.redis = self.children.start(child, timeout)
            env["PRESENCE_REDIS__URL"] = f"redis://127.0.0.1:{child.port}/0"
        for k in range(self.n):
            port = free_port()
            argv = [sys.executable, "-m", "presence_server", "run", "--config", str(self.config),
                    "--host", "127.0.0.1", "--port", str(port)]
            child = Child(f"node {k}", argv, port=port, ready_path="/readyz", env=env, cwd=ROOT,
                          log_path=self.log_dir / f"node{k}.log", cpus=self.cpus)
            self.nodes.append(self.children.start(child, timeout))

    def alive(self) -> bool:
        return all(n.alive() for n in self.nodes) and (self.redis is None or self.redis.alive())

    def stop(self) -> None:
        self.children.stop_all()


def load_average() -> tuple[float, float, float]:
    with open("/proc/loadavg") as f:
        a, b, c = f.read().split()[:3]
    return float(a), float(b), float(c)


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (locust's forked workers), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            continue
    return out


def node_sessions(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url + "/metrics", timeout=2) as resp:
            m = _SESSIONS.search(resp.read().decode())
            return int(float(m.group(1))) if m else None
    except OSError:
        return None


def _healthz_ms(url: str) -> float | None:
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=5) as resp:
            resp.read()
    except OSError:
        return None
    return (time.perf_counter() - start) * 1000


@dataclass(slots=True)
class Series:
    """One watched process group: CPU (% of one core) and RSS (MiB) over time."""

    name: str
    t: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rss_mib: list[float] = field(default_factory=list)


class Monitor(threading.Thread):
    """Samples every ``period`` s until :meth:`halt`. ``groups()`` names the pid
    groups to watch and is asked on every sample (locust's workers come and go)."""

    def __init__(self, groups: Callable[[], dict[str, list[int]]], node_urls: list[str], *, period: float = 1.0) -> None:
        super().__init__(name="monitor", daemon=True)
        self.groups = groups
        self.node_urls = node_urls
        self.period = period
        self.t0 = time.time()
        self.series: dict[str, Series] = {}
        self.load: list[tuple[float, float]] = []  # (t, 1-minute load average)
        self.sessions: list[tuple[float, list[int | None]]] = []
        #: Round trip of GET /healthz per node, every sample: a node whose event loop
        #: stalls answers late, whatever the load generators measure.
        self.probe: list[tuple[float, list[float | None]]] = []
        self._halt = threading.Event()
        self._last: dict[int, float] = {}
        self._last_t = time.monotonic()

    def halt(self) -> None:
        self._halt.set()
        self.join(5)

    def run(self) -> None:
        tick = 0
        self._sample(record=False)
        while not self._halt.wait(self.period):
            self._sample(record=True)
            if self.node_urls:
                self.probe.append((time.time() - self.t0, [_healthz_ms(u) for u in self.node_urls]))
            if tick % 5 == 0 and self.node_urls:
                self.sessions.append((time.time() - self.t0, [node_sessions(u) for u in self.node_urls]))
            tick += 1

    def _sample(self, *, record: bool) -> None:
        now_m = time.monotonic()
        wall = max(1e-6, now_m - self._last_t)
        self._last_t = now_m
        t = time.time() - self.t0
        seen: dict[int, float] = {}
        for name, pids in self.groups().items():
            cpu_pct, rss = 0.0, 0
            for pid in pids:
                try:
                    c = cpu_seconds(pid)
                    rss += rss_kb(pid)
                except (OSError, RuntimeError):
                    continue
                seen[pid] = c
                if pid in self._last:
                    cpu_pct += 100.0 * max(0.0, c - self._last[pid]) / wall
            if record:
                s = self.series.setdefault(name, Series(name))
                s.t.append(t)
                s.cpu.append(cpu_pct)
                s.rss_mib.append(rss / 1024)
        self._last = seen
        if record:
            self.load.append((t, load_average()[0]))
