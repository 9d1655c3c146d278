"""The minimum of Engine.IO v4 / Socket.IO v5 over one WebSocket, as raw text frames.

Enough for a load generator: open, connect to the default namespace with an auth
payload, answer pings, send events (optionally with an ack id), wait for one ack.
No python-socketio client objects: they cost far too much per connection.

Wire format (Engine.IO packet type, then Socket.IO packet type, then JSON):

* ``0{"sid":..,"pingInterval":..}``  server: Engine.IO open
* ``40{auth}`` / ``40{"sid":..}``     client connect / server accepts
* ``44{"message":..,"data":..}``      server refuses the connect
* ``2`` / ``3``                        server ping / client pong
* ``42["name",payload]``               event; ``42<id>["name",payload]`` asks for an ack
* ``43<id>[result]``                   ack

The handshake works on any :class:`TextSocket`: the generator's
:class:`rawws.RawWebSocket` or :class:`AiohttpText` around an aiohttp client
WebSocket (the driver, and the generator's ``--client aiohttp`` mode).
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, Protocol

import aiohttp

__all__ = [
    "EIO_WS_PATH",
    "PING",
    "PONG",
    "SioError",
    "TextSocket",
    "AiohttpText",
    "event_frame",
    "sio_handshake",
    "sio_call",
    "TIME_IN_TEXT",
    "TIME_IN_TEXT_BYTES",
]

EIO_WS_PATH: Final = "/socket.io/?EIO=4&transport=websocket"
PING: Final = "2"
PONG: Final = "3"

#: Every frame of every target carries the driver's send time as the ``text`` of a
#: status diff (``"text":"1715000000.123456"``). A regex over the raw frame finds
#: all of them in C, whether a frame holds one diff or a batch.
TIME_IN_TEXT: Final = re.compile(r'"text":\s*"([0-9]+\.[0-9]+)"')
TIME_IN_TEXT_BYTES: Final = re.compile(rb'"text":\s*"([0-9]+\.[0-9]+)"')

_COMPACT: Final = (",", ":")


class SioError(Exception):
    """The server refused or broke the Socket.IO handshake."""


class TextSocket(Protocol):
    async def recv_text(self, timeout: float) -> str:
        """The next text frame; raises on close."""

    async def send_text(self, text: str) -> None: ...

    async def close(self) -> None: ...


class AiohttpText:
    """:class:`TextSocket` over an aiohttp client WebSocket."""

    __slots__ = ("ws",)

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    @classmethod
    async def connect(cls, session: aiohttp.ClientSession, url: str) -> AiohttpText:
        return cls(await session.ws_connect(url, autoping=True, compress=0, max_msg_size=0))

    async def recv_text(self, timeout: float) -> str:
        msg = await self.ws.receive(timeout=timeout)
        if msg.type is not aiohttp.WSMsgType.TEXT:
            raise SioError(f"connection closed ({msg.type.name})")
        return str(msg.data)

    async def send_text(self, text: str) -> None:
        await self.ws.send_str(text)

    async def close(self) -> None:
        await self.ws.close()


def event_frame(name: str, payload: Any, ack_id: int | None = None) -> str:
    body = json.dumps([name, payload], separators=_COMPACT)
    return f"42{body}" if ack_id is None else f"42{ack_id}{body}"


async def _next_text(sock: TextSocket, timeout: float) -> str:
    """Next text frame; Engine.IO pings are answered on the way."""
    while True:
        data = await sock.recv_text(timeout)
        if data == PING:
            await sock.send_text(PONG)
            continue
        return data


async def sio_handshake(sock: TextSocket, auth: dict[str, Any] | None, *, timeout: float = 30.0) -> None:
    """Complete the Engine.IO open and the Socket.IO connect on an open WebSocket."""
    opened = await _next_text(sock, timeout)
    if not opened.startswith("0"):
        raise SioError(f"expected an Engine.IO open packet, got {opened[:80]!r}")
    await sock.send_text("40" if auth is None else "40" + json.dumps(auth, separators=_COMPACT))
    while True:
        reply = await _next_text(sock, timeout)
        if reply.startswith("40"):
            return
        if reply.startswith("44"):
            raise SioError(f"connect refused: {reply[2:200]}")
        # Anything else before the connect ack is unexpected but harmless.


async def sio_call(sock: TextSocket, ack_id: int, name: str, payload: Any, *, timeout: float = 30.0) -> Any:
    """Send one event with an ack id and return the ack's first argument.

    Only for set-up, before anything else reads the socket: events that arrive
    meanwhile (``session.ready``, diffs) are dropped.
    """
    await sock.send_text(event_frame(name, payload, ack_id))
    prefix = f"43{ack_id}["
    while True:
        data = await _next_text(sock, timeout)
        if data.startswith(prefix):
            args = json.loads(data[len(prefix) - 1 :])
            return args[0] if args else None
