"""A lean engine.io session for clients connected straight over WebSocket.

python-engineio gives every session an ``asyncio.Queue`` and, on WebSocket, a
writer task that drains it (wrapped in ``wait_for``, a second task), a task per
received message (``ensure_future`` + ``wait_for``) and a task per ping that
sleeps the ping interval. At ten thousand idle staff that is ~50,000 tasks and
~10 KiB per connection of bookkeeping for sockets that mostly say nothing.

:class:`LeanSocket` keeps engine.io's protocol and events and drops the
machinery, for WebSocket-direct sessions only (the transport our clients are
told to use; long-polling and polling-to-WebSocket upgrades keep the library's
path unchanged):

* sending is one synchronous write of a complete WebSocket frame to the
  connection, like the floor fan-out (:mod:`presence_server.fanout`), so both
  paths keep call order and never interleave; a connection whose unsent bytes
  pass ``max_send_buffer`` is cut off (a slow client), never queued for; its
  kernel send buffer is fixed at ``socket_send_buffer`` when the WebSocket
  opens, so unsent bytes cannot hide in the kernel (:mod:`presence_server.sendbuf`);
* packets sent before the WebSocket opened (engine.io's OPEN, the Socket.IO
  connect acknowledgement) are flushed in order, then the queue is dropped;
* the receive loop awaits aiohttp's ``receive(timeout)`` directly: no task per
  message; a client silent for ping interval + timeout is gone, as before;
* the next ping is a timer (``loop.call_later``), not a sleeping task.

:class:`LeanEngineServer` gives a WebSocket-direct session this class at its
``connect`` event — the moment after engine.io created the session and before
it schedules the first ping or opens the WebSocket. The class is swapped on the
instance (same layout, a subclass), so no engine.io code is copied or patched;
``tests/test_eio_lean.py`` pins the library behaviour this relies on.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final
from urllib.parse import parse_qs

import engineio
import engineio.async_socket
import structlog
from aiohttp import WSMsgType
from engineio import exceptions, packet

from presence_server import metrics
from presence_server.fanout import websocket_frame
from presence_server.sendbuf import bound_kernel_buffer, cut_off, is_backed_up

__all__ = ["LeanEngineServer", "LeanSocket"]

log = structlog.get_logger(__name__)

_DATA: Final = (WSMsgType.TEXT, WSMsgType.BINARY)


class LeanSocket(engineio.async_socket.AsyncSocket):
    """An engine.io session on a WebSocket of its own (see the module docstring)."""

    _transport: asyncio.Transport | None = None  # set while the WebSocket is open
    _ping_timer: asyncio.TimerHandle | None = None
    # Set by engine.io's socket (untyped); declared so their uses here are checked.
    last_ping: float | None
    connected: bool

    def __getattr__(self, name: str) -> Any:
        # The queue is dropped once the WebSocket is open; should anything still ask
        # for it (a close that waits for it to drain), an empty one answers.
        if name == "queue":
            queue = self.server.create_queue()
            self.queue = queue
            return queue
        raise AttributeError(name)

    async def send(self, pkt: packet.Packet) -> None:
        transport = self._transport
        if transport is None:
            await super().send(pkt)  # not open yet (or closing): engine.io's queue
            return
        if await self.check_ping_timeout():
            self._write(transport, pkt)

    def _write(self, transport: asyncio.Transport, pkt: packet.Packet) -> None:
        if transport.is_closing():
            return
        if is_backed_up(transport, self.server.max_send_buffer):
            metrics.SLOW_CLIENTS.inc()
            log.warning("slow_client_disconnected", eio_sid=self.sid, limit=self.server.max_send_buffer)
            cut_off(transport)  # the receive loop ends and the session closes as usual
            return
        encoded = pkt.encode()
        if isinstance(encoded, str):
            transport.write(websocket_frame(encoded.encode()))
        else:
            transport.write(websocket_frame(encoded, binary=True))

    # ------------------------------------------------------------------ pings
    def schedule_ping(self) -> None:
        if self.last_ping:  # only after the previous ping was answered (as engine.io)
            self.last_ping = None
            loop = asyncio.get_running_loop()
            self._ping_timer = loop.call_later(self.server.ping_interval, self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.closing or self.closed:
            return
        self.last_ping = time.time()
        transport = self._transport
        if transport is not None:
            self._write(transport, packet.Packet(packet.PING))
        else:
            self.queue.put_nowait(packet.Packet(packet.PING))

    # ---------------------------------------------------------- the WebSocket
    async def _websocket_handler(self, ws: Any) -> None:
        sock = ws._sock  # engine.io's aiohttp driver: the WebSocketResponse
        transport = ws.environ["aiohttp.request"].transport
        if self.connected or transport is None:
            await super()._websocket_handler(ws)  # an upgrade from long-polling: the library's way
            return
        self.connected = self.upgraded = True
        bound_kernel_buffer(transport, self.server.socket_send_buffer)
        _release_handshake(ws.environ)
        self._flush_queue(transport)
        self._transport = transport
        timeout = self.server.ping_interval + self.server.ping_timeout
        try:
            while True:
                msg = await sock.receive(timeout=timeout)
                if msg.type not in _DATA or len(msg.data) > self.server.max_http_buffer_size:
                    break
                try:
                    await self.receive(packet.Packet(encoded_packet=msg.data))
                except exceptions.UnknownPacketError:
                    pass
                except exceptions.SocketIsClosedError:
                    break
                except Exception:
                    self.server.logger.exception("Unknown receive error")
        except (asyncio.TimeoutError, ConnectionError, asyncio.CancelledError):
            # Silent past the ping timeout, or the connection broke: aiohttp cancels a
            # request whose connection is lost. As engine.io does, the session then
            # closes below, so the application hears the disconnect.
            pass  # silent past the ping timeout, or the connection broke
        finally:
            self._transport = None
            if self._ping_timer is not None:
                self._ping_timer.cancel()
                self._ping_timer = None
        await sock.close()
        await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    def _flush_queue(self, transport: asyncio.Transport) -> None:
        queue = self.__dict__.pop("queue", None)
        while queue is not None and not queue.empty():
            pkt = queue.get_nowait()
            queue.task_done()
            if pkt is not None:
                self._write(transport, pkt)


class LeanEngineServer(engineio.AsyncServer):
    """engine.io's server, giving WebSocket-direct sessions a :class:`LeanSocket`."""

    #: Unsent bytes past which a lean session's connection is cut off (set by the app).
    max_send_buffer: int = 1 << 20
    #: ``SO_SNDBUF`` of a lean session's connection; 0 leaves the kernel's auto-tuning (set by the app).
    socket_send_buffer: int = 0

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect":
            sid, environ = args[0], args[1]
            sock = self.sockets.get(sid)
            if type(sock) is engineio.async_socket.AsyncSocket and _is_websocket(environ):
                sock.__class__ = LeanSocket
        return await super()._trigger_event(event, *args, **kwargs)


#: What a session's environ still holds once its WebSocket is open: what the
#: Socket.IO connect handler reads (it runs after the WebSocket opened: origin,
#: language, transport) and what logs may want. The other headers go.
_KEPT_ENVIRON: Final = (
    "aiohttp.request", "QUERY_STRING", "REMOTE_ADDR", "wsgi.url_scheme", "HTTP_HOST", "HTTP_ORIGIN",
    "HTTP_ACCEPT_LANGUAGE", "HTTP_USER_AGENT", "HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_HOST",
    "HTTP_X_FORWARDED_PROTO",
)


def _release_handshake(environ: dict[str, Any]) -> None:
    """Free what only the handshake needed: most of the environ engine.io built
    from the request headers (python-socketio keeps it for the session's life),
    and aiohttp's HTTP parser, idle once the connection reads WebSocket frames."""
    kept: dict[str, Any] = {key: environ[key] for key in _KEPT_ENVIRON if key in environ}
    environ.clear()
    environ.update(kept)
    protocol = kept["aiohttp.request"].protocol
    if getattr(protocol, "_payload_parser", None) is not None:  # upgraded: the WebSocket reader took over
        protocol._parser = None


def _is_websocket(environ: dict[str, Any]) -> bool:
    transport = parse_qs(environ.get("QUERY_STRING", "")).get("transport", [""])[0]
    return transport == "websocket"
