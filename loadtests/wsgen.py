"""The load generator: watcher connections held by worker processes.

Each worker process runs uvloop and holds a share of the watchers, speaking raw
Engine.IO/Socket.IO text frames (``eio.py``) or, for the bare reference, plain
WebSocket frames. A watcher is by default a :class:`rawws.RawWebSocket` (an
``asyncio.Protocol`` that parses frames in ``data_received``: no task, no
message objects); ``client="aiohttp"`` uses aiohttp's client WebSocket with one
reader task per connection instead, about twice the CPU per frame. Either way a
received frame is scanned with one regex for the driver's send times
(``eio.TIME_IN_TEXT``) and each time found becomes one latency sample,
``time.time() - t`` in ms, in a flat ``array('d')``.

Watcher ``i`` connects to node ``i % len(node_urls)``: round-robin over the nodes.

The parent talks to the workers through :class:`GeneratorPool`, over one pipe
per worker: ``connect``, then per step ``arm(t0)`` (count only diffs sent at or
after ``t0``), ``count`` while the step drains, ``collect``. Diffs that arrive
while a worker is not armed, or that were sent before ``t0``, are counted as
*stale*, never as samples.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import resource
import time
from array import array
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Callable, Final, Sequence
from urllib.parse import urlsplit

import aiohttp

from eio import EIO_WS_PATH, PING, PONG, TIME_IN_TEXT, TIME_IN_TEXT_BYTES, AiohttpText, sio_call, sio_handshake
from procs import rss_kb
from rawws import RawWebSocket, raw_connect

__all__ = ["WatcherSpec", "StepSample", "GeneratorPool", "mint_token_for", "raise_nofile_limit"]

#: Concurrent handshakes per worker: enough to be quick, few enough not to overflow
#: the server's listen backlog (aiohttp's default is 128).
_CONNECT_CONCURRENCY: Final = 48
_CLOSED_TYPES: Final = frozenset(
    {aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR}
)


@dataclass(frozen=True, slots=True)
class WatcherSpec:
    """What one worker holds: the watcher indices ``indices`` of target ``kind``.

    ``kind``: ``ours`` (token auth + ``floor.watch``), ``socketio`` (plain connect;
    the reference server puts every client in its room) or ``bare`` (``/ws``).
    """

    kind: str
    node_urls: tuple[str, ...]
    indices: tuple[int, ...]
    floor_id: str = "projekt"
    config_path: str = "config/default.toml"
    municipalities: tuple[str, ...] = ("altbach", "bergheim", "lindenau", "seefeld")
    token_ttl_seconds: int = 3600
    connect_timeout: float = 60.0
    #: ``raw``: :class:`rawws.RawWebSocket` (default, cheap); ``aiohttp``: aiohttp's client WebSocket.
    client: str = "raw"


@dataclass(slots=True)
class StepSample:
    """What the workers saw during one step, merged."""

    latencies_ms: array = field(default_factory=lambda: array("d"))
    frames: int = 0
    stale: int = 0
    last_recv: float | None = None

    def merge(self, other: StepSample) -> None:
        self.latencies_ms.extend(other.latencies_ms)
        self.frames += other.frames
        self.stale += other.stale
        if other.last_recv is not None:
            self.last_recv = other.last_recv if self.last_recv is None else max(self.last_recv, other.last_recv)


def raise_nofile_limit() -> int:
    """Raise this process's open-files soft limit to its hard limit; return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def mint_token_for(settings: Any, municipality: str, user_id: str, name: str, ttl_seconds: int) -> str:
    from presence_server.auth import mint_token

    return mint_token(settings.auth, municipality=municipality, user_id=user_id, name=name, ttl_seconds=ttl_seconds)


# --------------------------------------------------------------------- worker side


class _Counters:
    """One worker's figures for the current step; ``t0 is None`` between steps."""

    __slots__ = ("t0", "lat", "frames", "stale", "last", "closed")

    def __init__(self) -> None:
        self.t0: float | None = None
        self.lat = array("d")
        self.frames = 0
        self.stale = 0
        self.last: float | None = None
        self.closed = 0

    def record(self, found: list[Any], received: float) -> None:
        """One frame holding the send times ``found`` (str or bytes), received at ``received``."""
        t0 = self.t0
        if t0 is None:
            self.stale += len(found)
            return
        self.frames += 1
        self.last = received
        if len(found) == 1:  # the common case, kept short: this runs once per frame
            t = float(found[0])
            if t >= t0:
                self.lat.append((received - t) * 1000.0)
            else:
                self.stale += 1
            return
        for s in found:
            t = float(s)
            if t >= t0:
                self.lat.append((received - t) * 1000.0)
            else:
                self.stale += 1

    def lost(self) -> None:
        self.closed += 1


class _Worker:
    def __init__(self, spec: WatcherSpec) -> None:
        self.spec = spec
        self.c = _Counters()
        self.conns: list[Any] = []  # RawWebSocket or AiohttpText
        self.readers: list[asyncio.Task[None]] = []  # aiohttp client only
        self.session: aiohttp.ClientSession | None = None
        self.tokens: dict[int, str] = {}

    async def serve(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        if self.spec.client == "aiohttp":
            # No connector limit: every watcher holds its connection for the whole run.
            self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, force_close=True))
        try:
            while True:
                try:
                    cmd, *args = await loop.run_in_executor(None, conn.recv)
                except EOFError:  # the parent is gone
                    return
                if cmd == "stop":
                    return
                conn.send(await self._command(cmd, args))
        finally:
            for task in self.readers:
                task.cancel()
            await asyncio.gather(*self.readers, return_exceptions=True)
            await asyncio.gather(*(c.close() for c in self.conns), return_exceptions=True)
            if self.session is not None:
                await self.session.close()

    async def _command(self, cmd: str, args: list[Any]) -> tuple[Any, ...]:
        c = self.c
        if cmd == "prepare":
            self._prepare()
            return ("prepared", rss_kb(os.getpid()))
        if cmd == "connect":
            self._prepare()
            ok, failed, error = await self._connect_all()
            return ("connected", ok, failed, error, rss_kb(os.getpid()))
        if cmd == "arm":
            c.t0, c.lat, c.frames, c.last = float(args[0]), array("d"), 0, None
            return ("armed",)
        if cmd == "count":
            return ("count", len(c.lat), c.stale, c.closed)
        if cmd == "collect":
            out = ("collected", c.lat.tobytes(), c.frames, c.stale, c.last)
            c.t0, c.lat, c.frames, c.stale, c.last = None, array("d"), 0, 0, None
            return out
        if cmd == "rss":
            return ("rss", rss_kb(os.getpid()), len(self.conns) - c.closed)
        raise ValueError(f"unknown command {cmd!r}")

    def _prepare(self) -> None:
        """Mint the watchers' tokens (ours): before connecting, outside any memory baseline."""
        spec = self.spec
        if spec.kind != "ours" or self.tokens:
            return
        from presence_server.config import load_settings

        settings = load_settings(spec.config_path)
        for i in spec.indices:
            muni = spec.municipalities[i % len(spec.municipalities)]
            self.tokens[i] = mint_token_for(settings, muni, f"w{i}.{muni}", f"Watcher {i}", spec.token_ttl_seconds)

    async def _connect_all(self) -> tuple[int, int, str | None]:
        spec = self.spec
        gate = asyncio.Semaphore(_CONNECT_CONCURRENCY)
        errors: list[str] = []

        async def one(i: int) -> None:
            async with gate:
                try:
                    await asyncio.wait_for(self._open(i), spec.connect_timeout)
                except Exception as exc:  # reported as a count plus the first message
                    errors.append(f"{type(exc).__name__}: {exc}")

        await asyncio.gather(*(one(i) for i in spec.indices))
        self.tokens.clear()
        return len(spec.indices) - len(errors), len(errors), errors[0] if errors else None

    async def _open(self, i: int) -> None:
        spec = self.spec
        url = spec.node_urls[i % len(spec.node_urls)]
        path = "/ws" if spec.kind == "bare" else EIO_WS_PATH
        if spec.client == "raw":
            parts = urlsplit(url)
            sock: Any = await raw_connect(parts.hostname or "127.0.0.1", parts.port or 80, path, on_lost=self.c.lost)
        else:
            assert self.session is not None
            sock = await AiohttpText.connect(self.session, url + path)
        try:
            if spec.kind != "bare":
                auth = {"token": self.tokens[i], "lang": "en"} if spec.kind == "ours" else None
                await sio_handshake(sock, auth)
            if spec.kind == "ours":
                ack = await sio_call(sock, 1, "floor.watch", {"floor_id": spec.floor_id})
                if not (isinstance(ack, dict) and ack.get("ok")):
                    raise RuntimeError(f"floor.watch refused: {ack}")
        except BaseException:
            await sock.close()
            raise
        self.conns.append(sock)
        if spec.client == "raw":
            sock.go_hot(self._raw_handler(sock))
        else:
            self.readers.append(asyncio.create_task(self._read(sock.ws)))

    def _raw_handler(self, sock: RawWebSocket) -> Callable[[bytes, float], None]:
        # The hot path of the generator: a comparison, a regex, appends.
        record = self.c.record
        findall = TIME_IN_TEXT_BYTES.findall
        ping = PING.encode()

        def on_text(payload: bytes, received: float) -> None:
            if payload == ping:
                sock.send_text_nowait(PONG)
                return
            found = findall(payload)
            if found:
                record(found, received)

        return on_text

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """The aiohttp client's reader task: one per connection."""
        record = self.c.record
        receive = ws.receive
        findall = TIME_IN_TEXT.findall
        now = time.time
        text = aiohttp.WSMsgType.TEXT
        try:
            while True:
                msg = await receive()
                if msg.type is text:
                    data = msg.data
                    if data == PING:
                        await ws.send_str(PONG)
                        continue
                    found = findall(data)
                    if found:
                        record(found, now())
                elif msg.type in _CLOSED_TYPES:
                    self.c.lost()
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            self.c.lost()


def worker_main(conn: Connection, spec: WatcherSpec) -> None:
    """Entry point of a worker process (spawned)."""
    raise_nofile_limit()
    try:
        import uvloop
    except ImportError:  # reported by the parent, which checks before spawning
        uvloop = None
    worker = _Worker(spec)
    try:
        if uvloop is not None:
            uvloop.run(worker.serve(conn))
        else:
            asyncio.run(worker.serve(conn))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the parent cleans up
        pass


# --------------------------------------------------------------------- parent side


class GeneratorPool:
    """Worker processes holding ``n`` watchers of one target, spread evenly."""

    def __init__(self, spec_for: Any, n: int, procs: int, *, cpus: Sequence[int] | None = None,
                 worker: Callable[[Connection, Any], None] | None = None) -> None:
        """``spec_for(indices) -> WatcherSpec`` builds each worker's share; ``worker``
        is the process's entry point (default :func:`worker_main`; the swarm brings its own)."""
        ctx = mp.get_context("spawn")
        procs = max(1, min(procs, n)) if n else 1
        self.workers: list[tuple[Any, Connection]] = []
        self.cpus = cpus
        shares = [tuple(range(k, n, procs)) for k in range(procs)]
        for k, share in enumerate(shares):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=worker or worker_main, args=(child_end, spec_for(share)), name=f"wsgen-{k}", daemon=True)
            self.workers.append((proc, parent_end))

    @property
    def pids(self) -> list[int]:
        return [p.pid for p, _ in self.workers if p.pid is not None]

    def start(self) -> None:
        for proc, _ in self.workers:
            proc.start()
            if self.cpus:
                os.sched_setaffinity(proc.pid, set(self.cpus))

    async def _ask(self, *cmd: Any, timeout: float = 600.0) -> list[tuple[Any, ...]]:
        loop = asyncio.get_running_loop()

        def ask(conn: Connection) -> tuple[Any, ...]:
            conn.send(cmd)
            if not conn.poll(timeout):
                raise TimeoutError(f"generator worker did not answer {cmd[0]!r} in {timeout}s")
            return conn.recv()

        return list(await asyncio.gather(*(loop.run_in_executor(None, ask, c) for _, c in self.workers)))

    async def prepare(self) -> int:
        """Mint tokens ahead of :meth:`connect`; returns the workers' RSS KiB."""
        return sum(r[1] for r in await self._ask("prepare"))

    async def connect(self) -> tuple[int, int, str | None, int]:
        """Open every watcher; returns (connected, failed, first error, workers' RSS KiB)."""
        replies = await self._ask("connect")
        ok = sum(r[1] for r in replies)
        failed = sum(r[2] for r in replies)
        error = next((r[3] for r in replies if r[3]), None)
        return ok, failed, error, sum(r[4] for r in replies)

    async def arm(self, t0: float) -> None:
        await self._ask("arm", t0)

    async def count(self) -> tuple[int, int, int]:
        """(samples so far, stale so far, closed sockets) over all workers."""
        replies = await self._ask("count", timeout=30)
        return sum(r[1] for r in replies), sum(r[2] for r in replies), sum(r[3] for r in replies)

    async def collect(self) -> StepSample:
        total = StepSample()
        for _, raw, frames, stale, last in await self._ask("collect"):
            part = StepSample(array("d"), frames, stale, last)
            part.latencies_ms.frombytes(raw)
            total.merge(part)
        return total

    async def rss(self) -> tuple[int, int]:
        """(workers' RSS KiB, open watcher sockets)."""
        replies = await self._ask("rss", timeout=30)
        return sum(r[1] for r in replies), sum(r[2] for r in replies)

    def stop(self) -> None:
        """Ask every worker to close its sockets; then stop each one by PID if needed."""
        for proc, conn in self.workers:
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
        for proc, conn in self.workers:
            if proc.pid is None:
                continue
            proc.join(10)
            if proc.is_alive():
                proc.terminate()  # SIGTERM to this PID
                proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
            conn.close()
