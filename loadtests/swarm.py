"""The connection swarm: thousands of real, authenticated staff connections.

Locust users are heavy (a python-socketio client, JSON for every frame, a few
greenlets: about 50 KB and 160 µs per received frame). The swarm holds the
*lightly active* majority of the staff the cheap way, in uvloop worker
processes with the raw WebSocket protocol of ``rawws.py`` and the Engine.IO /
Socket.IO framing of ``eio.py`` (the fan-out benchmark's generator):

* every connection is one person of the scenario (``scenario.swarm_staff()``),
  with a token minted from the run's secret: Engine.IO open, Socket.IO connect
  with ``auth``, ``floor.watch`` of their home floor, ``presence.move`` onto its
  hallway. They are members of the floor, like everyone online;
* every connection changes its status now and then (``activity``: one change per
  ``every`` seconds each, on a fixed open-loop schedule), with the send time in
  the text (``"Im Büro @<t>"``);
* every ``status`` diff with such a stamp that reaches a connection is one
  latency sample (*status→screen*), whoever made the change (swarm or locust);
  a regex over the raw frame finds them, no JSON is parsed on the hot path.

:class:`SwarmPool` (a :class:`wsgen.GeneratorPool` with this module's worker)
drives the workers over pipes: ``prepare`` (mint tokens), ``connect_upto(n)``
(open people until ``n`` of the swarm are connected: the step mode grows the
population town by town), ``activity(every)``, ``collect`` (samples since the
last collect, with their arrival times), ``rss``, ``stop``.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from array import array
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Callable, Final
from urllib.parse import urlsplit

from eio import EIO_WS_PATH, PING, PONG, event_frame, sio_call, sio_handshake
from procs import rss_kb
from rawws import RawWebSocket, raw_connect
from scenario import STAMP_MARK
from wsgen import GeneratorPool, mint_token_for, raise_nofile_limit

__all__ = ["Person", "SwarmSpec", "SwarmPool", "SwarmSample", "STATUS_STAMP"]

_CONNECT_CONCURRENCY: Final = 48
#: A status diff carrying a send time. ``[^{}]`` keeps the match inside one diff
#: object: a ``joined`` diff nests its member (whose text may hold an old stamp)
#: in braces and never matches. Diffs start with seq and type on one node and in
#: cluster mode alike (diffs.py FloorDiff.to_wire, presence/store_redis_lua.py).
STATUS_STAMP: Final = re.compile(
    rb'"type":\s*"status"[^{}]*?"text":\s*"[^"]*' + re.escape(STAMP_MARK.encode()) + rb'([0-9]+\.[0-9]+)"')
_DIFFS: Final = b'42["floor.diffs"'
_TEXTS: Final = ("Im Büro", "Im Termin", "Telefonat", "Akten", "Sprechstunde")
_STATUSES: Final = ("available", "busy", "away")


@dataclass(frozen=True, slots=True)
class Person:
    position: int  # place in the swarm's staff list: the first n are the population of n
    user_id: str
    name: str
    municipality: str
    home_floor: str

    @property
    def person(self) -> str:
        """``"municipality/user_id"``: the user id alone is unique only within its town."""
        return f"{self.municipality}/{self.user_id}"


@dataclass(frozen=True, slots=True)
class SwarmSpec:
    """One worker's share of the swarm."""

    node_urls: tuple[str, ...]
    config_path: str
    people: tuple[Person, ...]
    connect_timeout: float = 60.0


@dataclass(slots=True)
class SwarmSample:
    """Samples since the last collect: arrival times (unix s) and latencies (ms)."""

    received: array
    latency_ms: array
    acks: int = 0
    refused: int = 0
    first_refusal: str | None = None
    sent: int = 0
    closed: int = 0


class _SwarmWorker:
    def __init__(self, spec: SwarmSpec) -> None:
        self.spec = spec
        self.tokens: dict[str, str] = {}
        self.open: list[RawWebSocket] = []
        self.opened_upto = 0  # people[:opened_upto] were tried
        self.recv = array("d")
        self.lat = array("d")
        self.acks = self.refused = self.sent = self.closed = 0
        self.first_refusal: str | None = None
        self.every = 0.0
        self.activity: asyncio.Task[None] | None = None
        self.ack_id = 10

    async def serve(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    cmd, *args = await loop.run_in_executor(None, conn.recv)
                except EOFError:
                    return
                if cmd == "stop":
                    return
                conn.send(await self.command(cmd, args))
        finally:
            if self.activity is not None:
                self.activity.cancel()
            await asyncio.gather(*(c.close() for c in self.open), return_exceptions=True)

    async def command(self, cmd: str, args: list[Any]) -> tuple[Any, ...]:
        if cmd == "prepare":
            self._prepare()
            return ("prepared", rss_kb(os.getpid()))
        if cmd == "connect_upto":
            ok, failed, error, took = await self._connect_upto(int(args[0]))
            return ("connected", ok, failed, error, took, rss_kb(os.getpid()))
        if cmd == "activity":
            self.every = float(args[0])
            if self.activity is None and self.every > 0:
                self.activity = asyncio.create_task(self._activity())
            return ("activity",)
        if cmd == "collect":
            out = ("collected", self.recv.tobytes(), self.lat.tobytes(), self.acks, self.refused, self.first_refusal,
                   self.sent, self.closed)
            self.recv, self.lat = array("d"), array("d")
            self.acks = self.refused = self.sent = 0
            return out
        if cmd == "rss":
            return ("rss", rss_kb(os.getpid()), len(self.open) - self.closed)
        raise ValueError(f"unknown command {cmd!r}")

    def _prepare(self) -> None:
        """Mint every token before connecting: outside any memory baseline."""
        if self.tokens:
            return
        from presence_server.config import load_settings

        settings = load_settings(self.spec.config_path)
        for p in self.spec.people:
            self.tokens[p.person] = mint_token_for(settings, p.municipality, p.user_id, p.name, 8 * 3600)

    async def _connect_upto(self, n: int) -> tuple[int, int, str | None, float]:
        self._prepare()
        todo = [p for p in self.spec.people[self.opened_upto:] if p.position < n]
        self.opened_upto += len(todo)
        gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)
        errors: list[str] = []

        async def one(p: Person) -> None:
            async with gate:
                try:
                    await asyncio.wait_for(self._open(p), self.spec.connect_timeout)
                except Exception as exc:
                    errors.append(f"{p.person}: {type(exc).__name__}: {exc}")

        start = time.monotonic()
        await asyncio.gather(*(one(p) for p in todo))
        return len(todo) - len(errors), len(errors), errors[0] if errors else None, time.monotonic() - start

    async def _open(self, p: Person) -> None:
        url = self.spec.node_urls[p.position % len(self.spec.node_urls)]
        parts = urlsplit(url)
        sock = await raw_connect(parts.hostname or "127.0.0.1", parts.port or 80, EIO_WS_PATH, on_lost=self._lost)
        try:
            await sio_handshake(sock, {"token": self.tokens[p.person], "lang": "en"})
            for ack_id, event, payload in ((1, "floor.watch", {"floor_id": p.home_floor}),
                                           (2, "presence.move", {"floor_id": p.home_floor})):
                ack = await sio_call(sock, ack_id, event, payload)
                if not (isinstance(ack, dict) and ack.get("ok")):
                    raise RuntimeError(f"{event} refused: {ack}")
        except BaseException:
            await sock.close()
            raise
        self.open.append(sock)
        sock.go_hot(self._handler(sock))

    def _lost(self) -> None:
        self.closed += 1

    def _handler(self, sock: RawWebSocket) -> Callable[[bytes, float], None]:
        # The hot path: a comparison or two, one regex over diff frames, appends.
        ping = PING.encode()
        findall = STATUS_STAMP.findall

        def on_text(payload: bytes, received: float) -> None:
            if payload == ping:
                sock.send_text_nowait(PONG)
            elif payload.startswith(_DIFFS):
                # self.recv/self.lat, not locals: collect swaps in fresh arrays
                for t in findall(payload):
                    self.recv.append(received)
                    self.lat.append((received - float(t)) * 1000.0)
            elif payload.startswith(b"43"):
                if b'"ok": false' in payload or b'"ok":false' in payload:
                    self.refused += 1
                    if self.first_refusal is None:
                        self.first_refusal = payload[:300].decode(errors="replace")
                else:
                    self.acks += 1

        return on_text

    async def _activity(self) -> None:
        """Stamped status changes: each open connection once per ``every`` s on average.

        Open loop: change ``k`` is due one interval after change ``k-1`` (never
        drifting, never bursting after a stall of more than a second); the interval
        is re-read at least every 0.5 s, so a population that grows speeds it up at once.
        """
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            live = [c for c in self.open if not c.closed]
            if not live or self.every <= 0:
                await asyncio.sleep(0.5)
                last = loop.time()
                continue
            due = last + self.every / len(live)
            now = loop.time()
            if due > now:
                await asyncio.sleep(min(0.5, due - now))
                continue
            last = max(due, now - 1.0)
            sock = random.choice(live)
            self.ack_id += 1
            text = f"{random.choice(_TEXTS)}{STAMP_MARK}{time.time():.6f}"
            try:
                sock.send_text_nowait(event_frame("presence.status", {"status": random.choice(_STATUSES),
                                                                      "text": text}, self.ack_id))
                self.sent += 1
            except ConnectionError:
                pass


def swarm_main(conn: Connection, spec: SwarmSpec) -> None:
    """Entry point of a swarm worker process (spawned)."""
    raise_nofile_limit()
    worker = _SwarmWorker(spec)
    try:
        import uvloop

        uvloop.run(worker.serve(conn))
    except ImportError:
        asyncio.run(worker.serve(conn))
    except KeyboardInterrupt:  # the parent stops everything
        pass


class SwarmPool(GeneratorPool):
    """Worker processes holding up to ``len(people)`` staff connections."""

    def __init__(self, people: list[Person], node_urls: list[str], config_path: str, procs: int, *,
                 cpus: list[int] | None = None) -> None:
        def spec_for(indices: tuple[int, ...]) -> SwarmSpec:
            return SwarmSpec(tuple(node_urls), config_path, tuple(people[i] for i in indices))

        super().__init__(spec_for, len(people), procs, cpus=cpus, worker=swarm_main)

    async def connect_upto(self, n: int) -> tuple[int, int, str | None, float]:
        """Open connections until the first ``n`` people are online; returns
        (newly connected, failed, first error, seconds)."""
        replies = await self._ask("connect_upto", n)
        return (sum(r[1] for r in replies), sum(r[2] for r in replies), next((r[3] for r in replies if r[3]), None),
                max((r[4] for r in replies), default=0.0))

    async def set_activity(self, every: float) -> None:
        await self._ask("activity", every)

    async def collect_sample(self) -> SwarmSample:
        out = SwarmSample(array("d"), array("d"))
        for _, recv, lat, acks, refused, first, sent, closed in await self._ask("collect", timeout=60):
            out.received.frombytes(recv)
            out.latency_ms.frombytes(lat)
            out.acks += acks
            out.refused += refused
            out.sent += sent
            out.closed += closed
            out.first_refusal = out.first_refusal or first
        return out
