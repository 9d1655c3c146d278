"""Wiring: settings in, a ready aiohttp application out.

Constructors do no I/O; everything that opens, starts or spawns lives in one
``cleanup_ctx`` generator, so start-up happens in order and shutdown in reverse,
and every background task has an owner that cancels it.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import socketio
import structlog
from aiohttp import web

from presence_server import metrics_http, portal_rest, rest, security_headers
from presence_server.auth import TokenVerifier
from presence_server.calls.service import CallService
from presence_server.cluster.bus import Bus
from presence_server.cluster.bus_redis import RedisBus
from presence_server.calls.store_redis import RedisCallStore
from presence_server.eio_lean import LeanEngineServer
from presence_server.knocks.store_redis import RedisKnockStore
from presence_server.cluster.membership import Membership
from presence_server.cluster.node import ClusterNode, new_node_id
from presence_server.presence.store_redis import RedisPresenceStore
from presence_server.cluster.transport import ClusterTransport
from presence_server.config import ConfigError, Settings
from presence_server.cors import cors_middleware
from presence_server.fanout import FloorFanout
from presence_server.gateway import Gateway
from presence_server.knocks.store import KnockStore
from presence_server.knocks.store_memory import MemoryKnockStore
from presence_server.knocks.service import KnockService
from presence_server.origins import OriginPolicy
from presence_server.outbox import Outbox
from presence_server.presence.service import PresenceService
from presence_server.presence.store import PresenceStore
from presence_server.presence.store_memory import MemoryPresenceStore
from presence_server.runtime import RUNTIME, Runtime
from presence_server.tasks import cancel_and_wait
from presence_server.transport_sio import SocketIOTransport
from rooms.campus import CampusService
from rooms.expiry import RoomExpirer
from rooms.person import PersonId
from rooms.seed import load_seed
from rooms.store import CampusStore
from rooms.store_factory import make_campus_store
from presence_server.calls.store import CallStore
from presence_server.calls.store_memory import MemoryCallStore

__all__ = ["build_app", "run_server"]

log = structlog.get_logger(__name__)

_SHUTDOWN_TIMEOUT = 5.0

# How long a node holds a floor diff that arrived before its predecessor.
_REORDER_HOLD = 0.25

# Frames above this are cut by the transport itself; events between
# limits.max_event_bytes and this get a structured payload_too_large error.
_TRANSPORT_MAX_BYTES = 1_000_000


class _SocketServer(socketio.AsyncServer):
    """python-socketio's server on :class:`LeanEngineServer` (lean WebSocket sessions)."""

    def _engineio_server_class(self) -> type[LeanEngineServer]:
        return LeanEngineServer


def build_app(settings: Settings) -> web.Application:
    sio = _SocketServer(
        async_mode="aiohttp",
        cors_allowed_origins=OriginPolicy(_allowed_origins(settings)),
        max_http_buffer_size=_TRANSPORT_MAX_BYTES,
        # One session's requests apply in the order sent (a status set twice ends
        # as the second); other sessions are not held up by it.
        async_handlers=False,
        logger=False,
        engineio_logger=False,
    )
    sio.eio.max_send_buffer = settings.fanout.max_send_buffer_bytes
    sio.eio.socket_send_buffer = settings.fanout.socket_send_buffer_bytes
    app = web.Application(
        client_max_size=settings.http.max_body_bytes, middlewares=[cors_middleware, rest.error_middleware]
    )
    sio.attach(app, socketio_path="socket.io")
    security_headers.install(app)  # nosniff everywhere; CSP, frame and referrer rules on pages

    fanout = FloorFanout(max_buffer=settings.fanout.max_send_buffer_bytes)
    local = SocketIOTransport(sio, fanout)
    parts = _cluster_parts(settings, local) if settings.redis.url else _single_node_parts(settings, local)
    transport, campus_store, presence_store, bus = parts
    campus = CampusService(campus_store)
    outbox = Outbox(transport, window=settings.fanout.batch_window_ms / 1000)
    local.outbox = outbox
    presence = PresenceService(campus, outbox, presence_store, grace_seconds=settings.presence.grace_seconds)
    campus.add_listener(presence)
    knock_timing = {"timeout": settings.knock.timeout_seconds, "cooldown": settings.knock.cooldown_seconds}
    if settings.redis.url:
        knock_store: KnockStore = RedisKnockStore(settings.redis.url, prefix=settings.redis.prefix, **knock_timing)
    else:
        knock_store = MemoryKnockStore(**knock_timing)
    knocks = KnockService(presence, outbox, store=knock_store)
    verifier = TokenVerifier(settings.auth)
    call_limits = {"max_mesh": settings.calls.max_mesh, "ring_timeout": settings.calls.ring_timeout_seconds}
    if settings.redis.url:
        call_store: CallStore = RedisCallStore(settings.redis.url, prefix=settings.redis.prefix, **call_limits)
    else:
        call_store = MemoryCallStore(**call_limits)
    calls = CallService(presence, outbox, settings, call_store)
    gateway = Gateway(
        sio, transport, settings=settings, verifier=verifier, presence=presence, knocks=knocks, calls=calls
    )
    runtime = Runtime(settings, sio, campus, outbox, presence, knocks, verifier, gateway, calls)
    if bus is not None:
        assert isinstance(transport, ClusterTransport)
        membership = _membership(settings, bus.node_id, presence)
        runtime.cluster = ClusterNode(bus, transport, campus, membership, on_state=_readiness(runtime))
    app[RUNTIME] = runtime
    # Before _lifecycle: a listener of its own is up while the server starts and stops.
    metrics_http.install(app, settings, middlewares=[rest.error_middleware])
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_drain)
    rest.setup(app)
    portal_rest.install(app)  # occupancy, badge, finder, webhooks, CORS rules (docs/portal.md)
    return app


async def _drain(app: web.Application) -> None:
    """SIGTERM: stop taking clients and tell the connected ones to go elsewhere."""
    rt = app[RUNTIME]
    rt.ready = False
    drained = await rt.gateway.drain()
    log.info("drained", sessions=drained)


_Parts = tuple[Any, CampusStore, PresenceStore, Bus | None]


def _single_node_parts(settings: Settings, local: SocketIOTransport) -> _Parts:
    store = make_campus_store(settings.storage.backend, sqlite_path=settings.storage.sqlite_path)
    return local, store, MemoryPresenceStore(), None


def _cluster_parts(settings: Settings, local: SocketIOTransport) -> _Parts:
    """A Redis URL makes this node a cluster member: campus and presence in Redis."""
    url, prefix = settings.redis.url, settings.redis.prefix
    assert url is not None
    node_id = new_node_id()
    bus = RedisBus(url, node_id=node_id, prefix=prefix)
    transport = ClusterTransport(local, bus, reorder_hold=_REORDER_HOLD)
    store = make_campus_store("redis", redis_url=url, redis_prefix=prefix)
    return transport, store, RedisPresenceStore(url, prefix=prefix, node_id=node_id), bus


def _membership(settings: Settings, node_id: str, presence: PresenceService) -> Membership:
    store = presence.store
    assert isinstance(store, RedisPresenceStore)

    async def on_dead_session(node: str, person: PersonId, sid: str) -> None:
        diffs, since = await store.reap_session(node, person, sid, time.time())
        await presence.reaped(person, diffs, since)

    async def on_dead_linger(person: PersonId, since: float) -> None:
        await presence.reaped(person, [], since)

    assert settings.redis.url is not None
    return Membership(
        settings.redis.url,
        prefix=settings.redis.prefix,
        node_id=node_id,
        sessions=store,
        on_dead_session=on_dead_session,
        on_dead_linger=on_dead_linger,
    )


def _readiness(runtime: Runtime) -> Callable[[bool], Awaitable[None]]:
    async def on_state(connected: bool) -> None:
        # Not ready while Redis is away: a load balancer sends new clients elsewhere.
        runtime.ready = connected
        log.warning("cluster_redis_state", connected=connected)
        await runtime.gateway.notify_degraded(not connected)
        if connected:
            await _recover(runtime)

    return on_state


async def _recover(runtime: Runtime) -> None:
    """Redis is back: make the store agree with what this node holds, then tell
    local watchers where each floor stands so stale views resync."""
    assert runtime.cluster is not None
    store = runtime.presence.store
    assert isinstance(store, RedisPresenceStore)
    node_id = runtime.cluster.node_id
    registered = {sid: user for user, sid in await store.node_sessions(node_id)}
    await runtime.gateway.reregister_sessions(registered)
    transport = runtime.cluster.transport
    for floor_id in transport.watched_floors():
        seq, _ = await store.snapshot(floor_id)
        transport.resync_floor(floor_id, seq)
    log.info("cluster_recovered", node=node_id, sessions=len(registered))


def _allowed_origins(settings: Settings) -> list[str]:
    origins: list[str] = list(settings.http.cors_origins)
    for conf in settings.auth.municipalities.values():
        origins.extend(o for o in conf.allowed_origins if o not in origins)
    return origins


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    seed_file = rt.settings.campus.seed_file
    try:
        seed = load_seed(Path(seed_file)) if seed_file else None
        await rt.campus.start(seed, legacy_owners=rt.settings.campus.legacy_owners)
    except ValueError as exc:  # a bad seed file, or stored owners that cannot be migrated
        raise ConfigError([f"campus: {exc}"]) from None
    await rt.presence.store.open()
    await rt.knocks.store.open()
    await rt.calls.store.open()
    rt.outbox.start()
    rt.knocks.start()
    rt.calls.start()
    if rt.cluster is not None:
        await rt.cluster.start()
    expirer = RoomExpirer(rt.campus, period=rt.settings.campus.expiry_sweep_seconds)
    sweeper = asyncio.create_task(expirer.run(), name="room-expiry")
    rt.ready = True
    log.info(
        "server_started",
        storage="redis" if rt.cluster else rt.settings.storage.backend,
        node=rt.cluster.node_id if rt.cluster else None,
        municipalities=len(rt.campus.municipalities),
    )
    try:
        yield
    finally:
        rt.ready = False
        await cancel_and_wait(sweeper)
        if rt.cluster is not None:
            # Sessions were drained on shutdown; their grace periods outlive this node.
            await rt.cluster.close(handover_seconds=rt.settings.presence.grace_seconds + 1)
        await rt.calls.close()
        await rt.knocks.close()
        await rt.presence.close()
        await rt.outbox.close()
        await rt.calls.store.close()
        await rt.knocks.store.close()
        await rt.presence.store.close()
        await rt.campus.close()
        log.info("server_stopped")


def run_server(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; aiohttp then runs the cleanup contexts."""
    app = build_app(settings)
    web.run_app(
        app,
        host=settings.http.host,
        port=settings.http.port,
        access_log=None,
        # After the drain, wait at most this long for clients to close their sockets.
        shutdown_timeout=_SHUTDOWN_TIMEOUT,
        print=lambda *_: log.info("listening", host=settings.http.host, port=settings.http.port),
    )
