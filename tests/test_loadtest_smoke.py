"""The load-test harness, end to end: ``python -m loadtests.run --preset smoke``.

Real nodes (and Redis for two), real swarm connections, a real headless locust
run of a few seconds. Proves the harness works — the report is written, locust
recorded requests and presence latencies, the swarm held its connections,
nothing failed, every process the run started is gone — and asserts no
performance figure.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def _run_smoke(out: Path, *extra: str) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "loadtests.run", "--preset", "smoke", "--out", str(out), "--timeout", "90", *extra]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output, _ = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the harness stops its children by PID on SIGTERM
        output, _ = proc.communicate(timeout=30)
    return proc.returncode, output


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"  # a zombie has ended
    except OSError:
        return False


@pytest.mark.parametrize("nodes", [1, 2])
def test_smoke_preset_runs_end_to_end_and_leaves_a_report(tmp_path: Path, nodes: int) -> None:
    out = tmp_path / "report"
    code, output = _run_smoke(out, "--nodes", str(nodes))
    assert code == 0, output[-4000:]

    for name in ("summary.md", "run.json", "locust_stats.csv", "locust_stats_history.csv", "locust.html",
                 "latency.png", "throughput.png", "server.png"):
        assert (out / name).stat().st_size > 0, name
    data = json.loads((out / "run.json").read_text())
    assert data["harness_errors"] == []
    assert data["nodes"] == nodes
    assert data["swarm_connected"] == data["swarm"] > 0
    assert data["locust_requests"] > 0
    assert data["locust_failures"] == 0, (out / "summary.md").read_text()
    assert data["errors"] == 0, (out / "summary.md").read_text()

    with (out / "locust_stats.csv").open(newline="", encoding="utf-8") as f:
        counts = {(r["Type"], r["Name"]): int(r["Request Count"]) for r in csv.DictReader(f)}
    for key in (("sio", "connect"), ("sio", "presence.move"), ("sio", "presence.status"),
                ("presence", "walk→screen"), ("presence", "status→screen")):
        assert counts.get(key, 0) > 0, (key, counts)
    summary = (out / "summary.md").read_text(encoding="utf-8")
    assert "walk→screen" in summary and "![latency.png](latency.png)" in summary

    # Every process the run started (nodes, Redis, swarm workers, locust and its workers) is gone.
    assert data["pids"] and not [pid for pid in data["pids"] if pid != os.getpid() and _alive(pid)]
