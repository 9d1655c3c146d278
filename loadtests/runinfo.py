"""What a report says about the run itself: machine, software, code, placement."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

from report import RunInfo
from targets import ROOT

__all__ = ["code_version", "run_info", "machine", "software"]


def code_version() -> str:
    """The commit, and whether presence_server/ had uncommitted changes (others work on it)."""

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "?"

    dirty = git("status", "--porcelain", "--", "presence_server")
    diff = git("diff", "HEAD", "--", "presence_server") if dirty else ""
    fingerprint = f" (diff sha1 {hashlib.sha1((diff + dirty).encode()).hexdigest()[:8]})" if dirty else ""
    return f"commit {git('rev-parse', '--short', 'HEAD')}" + (
        f" with uncommitted changes in presence_server/{fingerprint}" if dirty else ", presence_server/ clean")


def machine() -> str:
    """``2 cores (AMD EPYC), 24 GiB, Linux 6.1``: what the figures were measured on."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {mem:.0f} GiB, Linux {platform.release()}"


def software() -> str:
    import aiohttp
    import socketio

    return (f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}, python-socketio "
            f"{socketio.__version__ if hasattr(socketio, '__version__') else _dist_version('python-socketio')}, "
            f"python-engineio {_dist_version('python-engineio')}")


def run_info(args: argparse.Namespace, bench: Any, code: str, started: dt.datetime) -> RunInfo:
    """``bench``: the :class:`bench_fanout.Bench` that ran."""
    try:
        import uvloop

        uv = f"uvloop {uvloop.__version__}"
    except ImportError:
        uv = "no uvloop"
    placement = (
        f"servers and Redis pinned to CPU {bench.server_cpus}, generator workers and driver to CPU {bench.gen_cpus}"
        if bench.server_cpus else "not pinned: servers, Redis and generator share all cores")
    placement += (f"; generator: {uv}, {args.client} WebSocket client, {args.procs or 'auto'} worker process(es); "
                  "servers on the standard asyncio loop")
    return RunInfo(
        command=" ".join(shlex.quote(a) for a in ["python", "loadtests/bench_fanout.py", *sys.argv[1:]]),
        started=started.strftime("%Y-%m-%d %H:%M"),
        machine=machine(),
        software=software(),
        code=code,
        placement=placement,
        gen_cores=bench.gen_cores,
        notes=bench.notes,
    )


def _dist_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
