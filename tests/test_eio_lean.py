"""The lean engine.io session (presence_server/eio_lean.py) against real clients.

These pin what the lean path relies on: which sessions get it, that it keeps no
queue or per-session task, that pings still flow and a silent client is still
dropped, and that long-polling (with or without an upgrade) keeps the library's
path."""

from __future__ import annotations

import asyncio
from urllib.parse import urlparse

import engineio.async_socket

from presence_server.eio_lean import LeanSocket
from signalling.client import OfficeClient
from tests.conftest import OfficeServer, StartServer
from tests.support.rawws import StalledClient

FLOOR = "projekt"
ANNA = "altbach/anna.altbach"


def eio_socket(office: OfficeServer, client: OfficeClient) -> engineio.async_socket.AsyncSocket:
    return office.runtime.sio.eio.sockets[client.sio.eio.sid]


async def test_a_websocket_session_is_lean_with_no_queue_task_or_handshake_headers(office: OfficeServer) -> None:
    client = await office.client("anna.altbach", "altbach")
    await client.move(FLOOR)  # requests and acks flow both ways
    sock = eio_socket(office, client)
    assert type(sock) is LeanSocket
    assert "queue" not in sock.__dict__  # flushed and dropped once the WebSocket opened
    assert isinstance(sock._ping_timer, asyncio.TimerHandle)  # the next ping is a timer, not a task
    assert not [t for t in asyncio.all_tasks() if "_send_ping" in repr(t.get_coro()) or "writer" in repr(t.get_coro())]
    environ = office.runtime.sio.get_environ(client.sio.get_sid("/"))
    assert "aiohttp.request" in environ and "HTTP_SEC_WEBSOCKET_KEY" not in environ


async def test_long_polling_and_upgraded_sessions_keep_the_library_path(office: OfficeServer) -> None:
    polling = OfficeClient(office.url, office.token("ben.bergheim", "bergheim"), transports=["polling"])
    upgraded = OfficeClient(office.url, office.token("lea.lindenau", "lindenau"), transports=["polling", "websocket"])
    for client in (polling, upgraded):
        office.clients.append(client)
        await client.connect()
        await client.watch(FLOOR)
    anna = await office.client("anna.altbach", "altbach")
    await anna.move(FLOOR, "projekt-lounge")
    for client in (polling, upgraded):
        await client.until_view(FLOOR, lambda v: v.members.get(ANNA, {}).get("room_id") == "projekt-lounge")
        assert type(eio_socket(office, client)) is engineio.async_socket.AsyncSocket
    await asyncio.wait_for(_until(lambda: upgraded.sio.transport() == "websocket"), 5)
    await upgraded.move(FLOOR)
    await upgraded.set_status("busy", "nach dem Upgrade")
    await anna.watch(FLOOR)
    await anna.until_view(FLOOR, lambda v: v.members.get("lindenau/lea.lindenau", {}).get("text") == "nach dem Upgrade")


async def test_pings_keep_a_lean_session_alive_and_a_silent_client_is_dropped(start_server: StartServer) -> None:
    office = await start_server({})
    eio = office.runtime.sio.eio
    eio.ping_interval, eio.ping_timeout = 0.2, 0.4  # before anyone connects: the OPEN packet tells clients
    alive = await office.client("anna.altbach", "altbach")
    sock = eio_socket(office, alive)
    pings: list[float] = []
    ping = sock._ping

    def counted() -> None:  # the next timers call this (schedule_ping looks the method up)
        pings.append(asyncio.get_running_loop().time())
        ping()

    sock._ping = counted  # type: ignore[method-assign]
    await asyncio.wait_for(_until(lambda: len(pings) >= 3), 5)  # each one answered, or no next one
    url = urlparse(office.url)
    silent = await asyncio.to_thread(StalledClient, url.hostname, url.port)  # never answers a ping
    await asyncio.to_thread(silent.socketio_connect, {"token": office.token("slow.seefeld", "seefeld")})
    try:
        await asyncio.wait_for(_until(lambda: _online(office, "seefeld/slow.seefeld") is False), 5)
    finally:
        silent.close()
    assert alive.sio.connected and _online(office, ANNA)
    await alive.move(FLOOR)


def _online(office: OfficeServer, person: str) -> bool:
    return any(s.identity.actor.person_id == person for s in office.runtime.gateway._sessions.values())


async def _until(predicate) -> None:  # type: ignore[no-untyped-def]
    while not predicate():
        await asyncio.sleep(0.02)
