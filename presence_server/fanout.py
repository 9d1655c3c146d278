"""The fast broadcast path: encode once, write once per watcher, never wait.

python-socketio delivers a room emit by queueing a packet per recipient and
waking one writer task per socket; at a thousand watchers that bookkeeping costs
far more than the socket writes. For sessions connected straight over WebSocket
(the transport clients are told to use), this module keeps the raw connection
and writes floor frames to it directly:

* the Socket.IO event is encoded once per frame, then framed once as a
  WebSocket text frame (RFC 6455, server frames are unmasked). Floor diffs
  arrive as JSON text (:func:`presence_server.diffs.floor_diffs_json`: remote
  diffs exactly as they crossed the bus) and are wrapped in the Socket.IO and
  Engine.IO headers by hand (``42["floor.diffs",<payload>]``, byte for byte
  what python-socketio's encoders make); other events go through those
  encoders;
* delivery is one synchronous ``transport.write`` per watcher: no task, no queue,
  no await. aiohttp writes its own frames with synchronous writes too, so frames
  from both paths never interleave; an uncompressed frame is valid on a
  connection that negotiated permessage-deflate (RFC 7692 allows it per message);
* a watcher whose unsent bytes exceed ``max_buffer`` is a slow client: it is
  cut off rather than allowed to grow the server's memory. Unsent bytes are
  the transport's buffer and the kernel's send queue (:mod:`presence_server.sendbuf`
  says why both, and why a reset).

Sessions that arrived over long-polling are not here; the transport sends to
them through python-socketio as before.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any, Callable, Final

import engineio.packet
import socketio.packet
import structlog

from presence_server import metrics
from presence_server.sendbuf import cut_off, is_backed_up, kernel_queued

__all__ = ["FloorFanout", "encode_event_frame", "encode_json_event_frame", "websocket_frame"]

log = structlog.get_logger(__name__)

_OP_TEXT_FIN: Final = 0x81
_OP_BINARY_FIN: Final = 0x82


def encode_event_frame(event: str, payload: Any) -> bytes:
    """One Socket.IO event for the default namespace, as a complete WebSocket frame."""
    sio_packet = socketio.packet.Packet(socketio.packet.EVENT, data=[event, payload]).encode()
    text = engineio.packet.Packet(engineio.packet.MESSAGE, data=sio_packet).encode()
    return websocket_frame(text.encode() if isinstance(text, str) else text)


def encode_json_event_frame(event: str, payload_json: str) -> bytes:
    """As :func:`encode_event_frame`, for a payload that is JSON text already:
    Engine.IO MESSAGE (4), Socket.IO EVENT (2) for the default namespace, no ack id."""
    return websocket_frame(("42[" + json.dumps(event) + "," + payload_json + "]").encode())


def websocket_frame(body: bytes, *, binary: bool = False) -> bytes:
    """``body`` as one complete, unmasked (server-to-client) WebSocket frame."""
    opcode = _OP_BINARY_FIN if binary else _OP_TEXT_FIN
    size = len(body)
    if size < 126:
        header = struct.pack("!BB", opcode, size)
    elif size < 65536:
        header = struct.pack("!BBH", opcode, 126, size)
    else:
        header = struct.pack("!BBQ", opcode, 127, size)
    return header + body


class FloorFanout:
    """Floor watchers on this node that can be written to directly."""

    def __init__(self, *, max_buffer: int, on_slow: Callable[[str], None] | None = None) -> None:
        self._max_buffer = max_buffer
        self._on_slow = on_slow
        self._transports: dict[str, asyncio.Transport] = {}  # sid -> raw connection
        self._floors: dict[str, dict[str, asyncio.Transport]] = {}  # floor -> sid -> connection

    def register(self, sid: str, transport: asyncio.Transport) -> None:
        """A session connected straight over WebSocket: remember its connection."""
        self._transports[sid] = transport

    def is_direct(self, sid: str) -> bool:
        return sid in self._transports

    def watch(self, floor_id: str, sid: str) -> None:
        self._floors.setdefault(floor_id, {})[sid] = self._transports[sid]

    def unwatch(self, floor_id: str, sid: str) -> None:
        watchers = self._floors.get(floor_id)
        if watchers is not None:
            watchers.pop(sid, None)
            if not watchers:
                del self._floors[floor_id]

    def close_floor(self, floor_id: str) -> None:
        self._floors.pop(floor_id, None)

    def forget(self, sid: str) -> None:
        """The session is gone: drop it from every floor."""
        if self._transports.pop(sid, None) is None:
            return
        for floor_id in [f for f, watchers in self._floors.items() if sid in watchers]:
            self.unwatch(floor_id, sid)

    def watchers(self, floor_id: str) -> int:
        return len(self._floors.get(floor_id, ()))

    def broadcast(self, floor_id: str, event: str, payload: Any) -> int:
        """Send one event to every direct watcher of the floor. Returns how many got it."""
        if not self._floors.get(floor_id):
            return 0
        return self._write(floor_id, encode_event_frame(event, payload))

    def broadcast_json(self, floor_id: str, event: str, payload_json: str) -> int:
        """As :meth:`broadcast`, for a payload that is JSON text already."""
        if not self._floors.get(floor_id):
            return 0
        return self._write(floor_id, encode_json_event_frame(event, payload_json))

    def _write(self, floor_id: str, frame: bytes) -> int:
        """One frame to every direct watcher of the floor, one synchronous write each."""
        watchers = self._floors[floor_id]
        limit = self._max_buffer
        slow: list[str] = []
        sent = 0
        for sid, transport in watchers.items():
            if transport.is_closing():
                continue
            if is_backed_up(transport, limit):
                slow.append(sid)
                continue
            transport.write(frame)
            sent += 1
        for sid in slow:
            self._disconnect_slow(sid)
        metrics.FANOUT_DELIVERIES.inc(sent)
        return sent

    def _disconnect_slow(self, sid: str) -> None:
        transport = self._transports.get(sid)
        self.forget(sid)
        metrics.SLOW_CLIENTS.inc()
        if transport is not None:
            log.warning(
                "slow_client_disconnected", sid=sid, limit=self._max_buffer,
                buffered=transport.get_write_buffer_size(), kernel=kernel_queued(transport),
            )
            # Drop the unsent backlog at once; the disconnect then takes the
            # normal path (grace period, leave) through engine.io.
            cut_off(transport)
        if self._on_slow is not None:
            self._on_slow(sid)
