"""The three servers under test and how to start N nodes of each.

* ``ours``: ``python -m presence_server run`` with the dev config, in-memory
  storage, quiet logs and the per-session rate limit lifted (the driver sends up
  to hundreds of changes per second on one session).
* ``socketio``: reference 1, ``ref_socketio_redis.py`` (needs Redis, even on one
  node: the recipe publishes every emit through it).
* ``bare``: reference 2, ``ref_bare_ws.py`` (single node by nature: no bus).

For ``ours`` with more than one node, each node gets ``PRESENCE_REDIS__URL``;
whether the server actually does anything with it is checked by
:func:`ours_cluster_available`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Sequence

from procs import Child, free_port

__all__ = ["ROOT", "CONFIG", "TARGETS", "Target", "node_children", "ours_cluster_available", "OURS_ENV"]

ROOT: Final = Path(__file__).resolve().parents[1]
CONFIG: Final = ROOT / "config" / "default.toml"
HERE: Final = Path(__file__).resolve().parent

OURS_ENV: Final = {
    "PRESENCE_LIMITS__EVENTS_PER_SECOND": "100000",
    "PRESENCE_LIMITS__BURST": "100000",
    "PRESENCE_STORAGE__BACKEND": "memory",
    "PRESENCE_LOG__LEVEL": "warning",
}


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    needs_redis: bool
    max_nodes: int | None  # None: any number


TARGETS: Final = {
    "ours": Target("ours", needs_redis=False, max_nodes=None),
    "socketio": Target("socketio", needs_redis=True, max_nodes=None),
    "bare": Target("bare", needs_redis=False, max_nodes=1),
}

# Where a wired cluster mode would read its setting. Only config.py mentions it today.
_USES_REDIS_URL: Final = re.compile(r"\bredis\.url\b|\bsettings\.redis\b|PRESENCE_REDIS__URL")


def ours_cluster_available() -> bool:
    """Does any server module besides the settings model use ``redis.url``?

    A first, cheap check on the current source, re-read on every run: the config
    accepted ``redis.url`` before anything read it. When this says yes, the
    benchmark still has to see the nodes start with ``PRESENCE_REDIS__URL``; a node
    that exits or never gets ready means cluster mode is not usable yet either.
    """
    for path in (ROOT / "presence_server").rglob("*.py"):
        if path.name == "config.py":
            continue
        if _USES_REDIS_URL.search(path.read_text(encoding="utf-8", errors="replace")):
            return True
    return False


def node_children(
    target: str, nodes: int, *, redis_url: str | None, log_dir: Path, cpus: Sequence[int] | None
) -> list[Child]:
    """``nodes`` processes of ``target``, each on its own free loopback port."""
    children: list[Child] = []
    for k in range(nodes):
        port = free_port()
        log_path = log_dir / f"{target}-node{k}.log"
        if target == "ours":
            env = dict(OURS_ENV)
            if nodes > 1 and redis_url:
                env["PRESENCE_REDIS__URL"] = redis_url
            argv = [sys.executable, "-m", "presence_server", "run", "--config", str(CONFIG),
                    "--host", "127.0.0.1", "--port", str(port)]
            children.append(Child(f"ours node {k}", argv, port=port, ready_path="/readyz", env=env, cwd=ROOT,
                                  log_path=log_path, cpus=cpus))
        elif target == "socketio":
            assert redis_url is not None
            argv = [sys.executable, str(HERE / "ref_socketio_redis.py"), "--port", str(port), "--redis", redis_url]
            children.append(Child(f"socketio node {k}", argv, port=port, ready_path="/healthz", cwd=ROOT,
                                  log_path=log_path, cpus=cpus))
        elif target == "bare":
            argv = [sys.executable, str(HERE / "ref_bare_ws.py"), "--port", str(port)]
            children.append(Child(f"bare node {k}", argv, port=port, ready_path="/healthz", cwd=ROOT,
                                  log_path=log_path, cpus=cpus))
        else:
            raise ValueError(f"unknown target {target!r}")
    return children
