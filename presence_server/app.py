"""Wiring: settings in, a ready aiohttp application out.

Constructors do no I/O; everything that opens, starts or spawns lives in one
``cleanup_ctx`` generator, so start-up happens in order and shutdown in reverse,
and every background task has an owner that cancels it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import socketio
import structlog
from aiohttp import web

from presence_server import (
    audit_rest,
    invitations_rest,
    metrics_http,
    platform_rest,
    portal_rest,
    projects_rest,
    rest,
    security_headers,
)
from presence_server.audit.service import AuditLog
from presence_server.auth import TokenVerifier
from presence_server.backends import make_backends
from presence_server.calls.service import CallService
from presence_server.cluster.membership import Rejoin
from presence_server.cluster.node import ClusterNode
from presence_server.cluster.transport import ClusterTransport
from presence_server.config import ConfigError, Settings
from presence_server.cors import ORIGIN_RULES, OriginRules, cors_middleware, town_origins
from presence_server.eio_lean import LeanEngineServer
from presence_server.fanout import FloorFanout
from presence_server.gateway import Gateway
from presence_server.knocks.service import KnockService
from presence_server.origins import EngineOriginPolicy
from presence_server.outbox import Outbox
from presence_server.presence.service import PresenceService
from presence_server.runtime import RUNTIME, Runtime
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from presence_server.transport_sio import NodeTransport, SocketIOTransport
from rooms.campus import CampusService
from rooms.expiry import RoomExpirer
from rooms.seed import load_seed

__all__ = ["build_app", "run_server"]

log = structlog.get_logger(__name__)

_SHUTDOWN_TIMEOUT = 5.0

# How long a node holds a floor diff that arrived before its predecessor while
# the floor's channel carries nothing past the missing one (a bus that went
# silent without saying so). A predecessor the channel went past is given up at
# once; one still unread on a busy node's socket is waited for (cluster/ordering.py).
_REORDER_HOLD = 2.0

# Frames above this are cut by the transport itself; events between
# limits.max_event_bytes and this get a structured payload_too_large error.
_TRANSPORT_MAX_BYTES = 1_000_000


class _SocketServer(socketio.AsyncServer):
    """python-socketio's server on :class:`LeanEngineServer` (lean WebSocket sessions)."""

    def _engineio_server_class(self) -> type[LeanEngineServer]:
        return LeanEngineServer


def build_app(settings: Settings) -> web.Application:
    # One view of every municipality's origins: configured ones now, runtime ones
    # as the tenant service learns of them (platform_rest.install).
    origins = town_origins(settings)
    sio = _SocketServer(
        async_mode="aiohttp",
        # WebSocket handshakes pass; the gateway refuses unknown origins with a code
        # a browser can read (origin_not_allowed). Long-polling is checked here.
        cors_allowed_origins=EngineOriginPolicy(origins.known),
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
    backends = make_backends(settings)
    cluster_transport = (
        ClusterTransport(local, backends.cluster.bus, reorder_hold=_REORDER_HOLD) if backends.cluster else None
    )
    transport: NodeTransport = cluster_transport or local
    audit = AuditLog(backends.audit, retention_days=settings.audit.retention_days)
    campus = CampusService(backends.campus, project_policy=settings.project_policy, audit=audit)
    outbox = Outbox(transport, window=settings.fanout.batch_window_ms / 1000)
    local.outbox = outbox
    presence = PresenceService(campus, outbox, backends.presence, grace_seconds=settings.presence.grace_seconds)
    campus.add_listener(presence)
    knocks = KnockService(presence, outbox, store=backends.knocks, audit=audit)
    secret = settings.invitations.signing_secret
    verifier = TokenVerifier(settings.auth, invitation_secret=None if secret is None else secret.get_secret_value())
    calls = CallService(presence, outbox, settings, backends.calls)
    gateway = Gateway(
        sio, transport, settings=settings, verifier=verifier, presence=presence, knocks=knocks, calls=calls,
        origins=origins,
    )
    campus.add_listener(gateway)  # after presence: project membership ends views (floor.revoked)
    runtime = Runtime(
        settings, backends, sio, campus, outbox, presence, knocks, verifier, gateway, calls, audit, origins
    )
    if backends.cluster is not None and cluster_transport is not None:
        runtime.cluster = ClusterNode(
            backends.cluster, cluster_transport, campus, presence,
            on_state=_readiness(runtime), recover=lambda: _recover(runtime),
        )
    app[RUNTIME] = runtime
    # Before _lifecycle: a listener of its own is up while the server starts and stops.
    metrics_http.install(app, settings, middlewares=[rest.error_middleware])
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_drain)
    rest.setup(app)
    app[ORIGIN_RULES] = OriginRules(towns=origins)
    portal_rest.install(app)  # occupancy, badge, finder, webhooks (docs/portal.md)
    projects_rest.install(app)  # self-service projects (docs/projects.md)
    audit_rest.install(app)  # GET /api/v1/audit (docs/audit.md)
    platform_rest.install(app)  # municipalities and cooperations at runtime (docs/onboarding.md)
    invitations_rest.install(app)  # invitation links and guest sessions (docs/projects.md)
    return app


async def _drain(app: web.Application) -> None:
    """SIGTERM: stop taking clients and tell the connected ones to go elsewhere."""
    rt = app[RUNTIME]
    rt.ready = False
    drained = await rt.gateway.drain()
    log.info("drained", sessions=drained)


def _readiness(runtime: Runtime) -> Callable[[bool], Awaitable[None]]:
    async def on_state(ok: bool) -> None:
        # Not ready while Redis is away or this node is fenced: a load balancer sends
        # new clients elsewhere, and the clients here are told.
        if runtime.ready != ok:
            log.warning("cluster_redis_state", ready=ok)
        runtime.ready = ok
        await runtime.gateway.notify_degraded(not ok)

    return on_state


async def _recover(runtime: Runtime) -> None:
    """Redis is back, or this node was fenced: make the store hold what this node
    holds, end the degraded state, then tell local watchers where each floor
    stands so stale views resync (docs/cluster.md, "Fencing and recovery")."""
    assert runtime.cluster is not None, "only a cluster member recovers"
    store = runtime.cluster.store
    node_id = runtime.cluster.node_id
    transport = runtime.cluster.transport
    await runtime.backends.drop_idle_connections()  # they died with the old server (idempotent if it did not restart)
    outcome = await runtime.cluster.membership.rejoin()
    if outcome is Rejoin.LOST:
        restored = await runtime.campus.restore_store()
        if runtime.tenants is not None:  # the municipalities added at runtime, too
            restored += await runtime.tenants.restore_store()
        for floor_id, delivered in transport.delivered_seqs().items():
            await store.raise_seq(floor_id, delivered)  # before any diff is stamped there again
        log.warning("cluster_redis_lost_data", node=node_id, campus_items_restored=restored)
    if outcome is Rejoin.KEPT:
        registered = {sid: user for user, sid in await store.node_sessions(node_id)}
        await runtime.gateway.reregister_sessions(registered)
    else:
        place, live = _placer(runtime.campus), runtime.gateway.live_sessions()
        store.keep_only({sid for sid, _ in live})
        for sid, actor in live:
            diffs, _ = await store.restore(sid, actor, time.time(), place=place)
            runtime.outbox.post_diffs(diffs)
        for actor in {actor.person_id: actor for _, actor in live}.values():
            await runtime.calls.rejoin_room_call(actor)
    runtime.cluster.membership.settled()
    await _readiness(runtime)(True)  # before floor.seq: the resyncs it causes must be served
    for floor_id in transport.watched_floors():
        transport.resync_floor(floor_id, await store.floor_seq(floor_id))
    log.info("cluster_recovered", node=node_id, outcome=outcome.value, sessions=runtime.gateway.session_count)


def _placer(campus: CampusService) -> Callable[[str | None, str | None], tuple[str | None, str | None]]:
    """Where a remembered location stands in the campus now: a removed room means
    its floor's hallway, a removed floor nowhere."""

    def place(floor_id: str | None, room_id: str | None) -> tuple[str | None, str | None]:
        if floor_id is None or campus.floor(floor_id) is None:
            return None, None
        room = campus.room(room_id) if room_id is not None else None
        return floor_id, room_id if room is not None and room.floor_id == floor_id else None

    return place


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    await rt.backends.open()  # Redis away at start-up: the start fails here
    seed_file = rt.settings.campus.seed_file
    try:
        seed = load_seed(Path(seed_file)) if seed_file else None
        await rt.campus.start(seed, legacy_owners=rt.settings.campus.legacy_owners)
    except BaseException as exc:
        await rt.backends.close()  # nothing else has started yet
        if isinstance(exc, ValueError):  # a bad seed file, or stored owners that cannot be migrated
            raise ConfigError([f"campus: {exc}"]) from None
        raise
    rt.audit.start()
    rt.outbox.start()
    rt.knocks.start()
    rt.calls.start()
    if rt.cluster is not None:
        await rt.cluster.start()
    expirer = RoomExpirer(rt.campus, period=rt.settings.campus.expiry_sweep_seconds)
    sweeper = supervised("room_expiry", expirer.run)
    rt.ready = True
    log.info(
        "server_started",
        storage=rt.backends.storage,
        node=rt.cluster.node_id if rt.cluster else None,
        municipalities=len(rt.campus.municipalities),
    )
    try:
        yield
    finally:
        rt.ready = False
        await cancel_and_wait(sweeper)
        await rt.gateway.close()
        if rt.cluster is not None:
            # Sessions were drained on shutdown; their grace periods outlive this node.
            await rt.cluster.close(handover_seconds=rt.settings.presence.grace_seconds + 1)
        await rt.calls.close()
        await rt.knocks.close()
        await rt.presence.close()
        await rt.outbox.close()
        await rt.campus.close()
        await rt.audit.close()
        await rt.backends.close()
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
