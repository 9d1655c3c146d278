"""Wiring: settings in, a ready aiohttp application out.

Constructors do no I/O; everything that opens, starts or spawns lives in one
``cleanup_ctx`` generator, so start-up happens in order and shutdown in reverse,
and every background task has an owner that cancels it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import socketio
import structlog
from aiohttp import web

from presence_server import rest
from presence_server.auth import TokenVerifier
from presence_server.config import Settings
from presence_server.fanout import FloorFanout
from presence_server.gateway import Gateway
from presence_server.knocking import KnockService
from presence_server.origins import OriginPolicy
from presence_server.outbox import Outbox
from presence_server.presence.service import PresenceService
from presence_server.presence.store_memory import MemoryPresenceStore
from presence_server.runtime import RUNTIME, Runtime
from presence_server.tasks import cancel_and_wait
from presence_server.transport_sio import SocketIOTransport
from rooms.campus import CampusService
from rooms.expiry import RoomExpirer
from rooms.seed import load_seed
from rooms.store_factory import make_campus_store

__all__ = ["build_app", "run_server"]

log = structlog.get_logger(__name__)

# Frames above this are cut by the transport itself; events between
# limits.max_event_bytes and this get a structured payload_too_large error.
_TRANSPORT_MAX_BYTES = 1_000_000




def build_app(settings: Settings) -> web.Application:
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        cors_allowed_origins=OriginPolicy(_allowed_origins(settings)),
        max_http_buffer_size=_TRANSPORT_MAX_BYTES,
        logger=False,
        engineio_logger=False,
    )
    app = web.Application(client_max_size=settings.http.max_body_bytes, middlewares=[rest.error_middleware])
    sio.attach(app, socketio_path="socket.io")

    store = make_campus_store(settings.storage.backend, sqlite_path=settings.storage.sqlite_path)
    campus = CampusService(store)
    fanout = FloorFanout(max_buffer=settings.fanout.max_send_buffer_bytes)
    transport = SocketIOTransport(sio, fanout)
    outbox = Outbox(transport, window=settings.fanout.batch_window_ms / 1000)
    transport.outbox = outbox
    presence = PresenceService(campus, outbox, MemoryPresenceStore(), grace_seconds=settings.presence.grace_seconds)
    campus.add_listener(presence)
    knocks = KnockService(
        presence,
        outbox,
        timeout_seconds=settings.knock.timeout_seconds,
        cooldown_seconds=settings.knock.cooldown_seconds,
    )
    verifier = TokenVerifier(settings.auth)
    gateway = Gateway(sio, transport, settings=settings, verifier=verifier, presence=presence, knocks=knocks)
    app[RUNTIME] = Runtime(settings, sio, campus, outbox, presence, knocks, verifier, gateway)
    app.cleanup_ctx.append(_lifecycle)
    rest.setup(app)
    return app


def _allowed_origins(settings: Settings) -> list[str]:
    origins: list[str] = list(settings.http.cors_origins)
    for conf in settings.auth.municipalities.values():
        origins.extend(o for o in conf.allowed_origins if o not in origins)
    return origins


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    rt = app[RUNTIME]
    seed_file = rt.settings.campus.seed_file
    seed = load_seed(Path(seed_file)) if seed_file else None
    await rt.campus.start(seed)
    await rt.presence.store.open()
    rt.outbox.start()
    expirer = RoomExpirer(rt.campus, period=rt.settings.campus.expiry_sweep_seconds)
    sweeper = asyncio.create_task(expirer.run(), name="room-expiry")
    rt.ready = True
    log.info("server_started", storage=rt.settings.storage.backend, municipalities=len(rt.campus.municipalities))
    try:
        yield
    finally:
        rt.ready = False
        await cancel_and_wait(sweeper)
        await rt.knocks.close()
        await rt.presence.close()
        await rt.outbox.close()
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
        print=lambda *_: log.info("listening", host=settings.http.host, port=settings.http.port),
    )
