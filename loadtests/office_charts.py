"""PNG charts of a load-test run (matplotlib, no display).

Every function takes plain series and a path, draws one figure, and returns
the file name, or ``None`` when there was nothing to draw.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # files only; no display on a server or in CI
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["latency_chart", "throughput_chart", "server_chart", "steps_chart"]

_DPI = 110


def _finish(fig: Any, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path.name


def latency_chart(path: Path, lines: dict[str, tuple[Sequence[float], Sequence[float]]], *, limit: float | None,
                  spawned: float | None, title: str) -> str | None:
    """``lines``: label -> (t seconds, ms)."""
    lines = {k: v for k, v in lines.items() if v[0]}
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for label, (t, ms) in lines.items():
        ax.plot(t, ms, label=label, linewidth=1.3)
    if limit:
        ax.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"target {limit:g} ms")
    if spawned is not None:
        ax.axvline(spawned, color="grey", linestyle=":", linewidth=1, label="all users spawned")
    ax.set_xlabel("seconds since the nodes were ready")
    ax.set_ylabel("ms")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    return _finish(fig, path)


def throughput_chart(path: Path, lines: dict[str, tuple[Sequence[float], Sequence[float]]],
                     users: tuple[Sequence[float], Sequence[float]] | None, *, title: str) -> str | None:
    lines = {k: v for k, v in lines.items() if v[0]}
    if not lines:
        return None
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for label, (t, per_s) in lines.items():
        ax.plot(t, per_s, label=label, linewidth=1.3)
    ax.set_xlabel("seconds since the nodes were ready")
    ax.set_ylabel("per second")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    if users and users[0]:
        ax2 = ax.twinx()
        ax2.plot(users[0], users[1], color="black", linestyle="--", linewidth=1, label="locust users")
        ax2.set_ylabel("locust users")
        ax2.legend(fontsize=8, loc="upper right")
    ax.legend(fontsize=8, loc="upper left")
    return _finish(fig, path)


def server_chart(path: Path, series: dict[str, Any], *, probe: list[tuple[float, list[float | None]]],
                 load: list[tuple[float, float]], title: str) -> str | None:
    """``series``: name -> stack.Series (t, cpu %, rss MiB); ``probe``: (t, /healthz ms per
    node); ``load``: (t, 1-minute load average of the machine)."""
    if not series:
        return None
    fig, (cpu_ax, rss_ax, probe_ax) = plt.subplots(3, 1, figsize=(10, 8), sharex=True)
    for name, s in series.items():
        cpu_ax.plot(s.t, s.cpu, label=name, linewidth=1.1)
        rss_ax.plot(s.t, s.rss_mib, label=name, linewidth=1.1)
    nodes = max((len(v) for _, v in probe), default=0)
    for k in range(nodes):
        pts = [(t, v[k]) for t, v in probe if k < len(v) and v[k] is not None]
        probe_ax.plot([p[0] for p in pts], [p[1] for p in pts], label=f"node {k} /healthz round trip", linewidth=1.1)
    probe_ax.set_yscale("log")
    probe_ax.set_ylabel("ms (log)")
    if load:
        load_ax = probe_ax.twinx()
        load_ax.plot([t for t, _ in load], [v for _, v in load], color="black", linestyle="--", linewidth=1,
                     label="machine load average (1 min)")
        load_ax.set_ylabel("load average")
        load_ax.legend(fontsize=8, loc="upper right")
    cpu_ax.set_ylabel("CPU, % of one core")
    rss_ax.set_ylabel("RSS, MiB")
    probe_ax.set_xlabel("seconds since the nodes were ready")
    cpu_ax.set_title(title)
    for ax in (cpu_ax, rss_ax, probe_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    return _finish(fig, path)


def steps_chart(path: Path, steps: list[dict[str, Any]], *, limit: float) -> str | None:
    if not steps:
        return None
    pop = [s["population"] for s in steps]
    fig, (lat_ax, mem_ax) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for key in ("p50", "p95", "p99"):
        lat_ax.plot(pop, [s[key] for s in steps], marker="o", label=f"status→screen {key}")
    lat_ax.axhline(limit, color="red", linestyle="--", linewidth=1, label=f"limit {limit:g} ms")
    lat_ax.set_ylabel("ms")
    lat_ax.set_title("Presence latency and server load as the population grows (one step each)")
    cpu_ax = lat_ax.twinx()
    cpu_ax.plot(pop, [s["server_cpu"] for s in steps], color="grey", linestyle=":", marker=".", label="server CPU %")
    cpu_ax.set_ylabel("server CPU, % of one core")
    cpu_ax.legend(fontsize=8, loc="lower right")
    mem_ax.plot(pop, [sum(s["rss_kb"]) / 1024 for s in steps], marker="o", label="server RSS MiB")
    mem_ax.set_ylabel("RSS, MiB")
    mem_ax.set_xlabel("staff online (connections)")
    kb_ax = mem_ax.twinx()
    kb_ax.plot(pop, [s["kb_per_conn"] for s in steps], color="green", marker=".", label="KB per connection")
    kb_ax.set_ylabel("KB per connection")
    kb_ax.legend(fontsize=8, loc="lower right")
    for ax in (lat_ax, mem_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    return _finish(fig, path)
