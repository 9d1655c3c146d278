"""A WebSocket client as a bare ``asyncio.Protocol``: the generator's cheap watcher.

aiohttp's client WebSocket costs a future wake-up, a task step and a message
object per frame, and about 14 KB per connection. A watcher only has to find the
send times in the frames it receives, so this protocol parses frames straight out
of ``data_received`` (RFC 6455; server frames are unmasked, client frames masked)
and hands each text payload to a callback, with one clock reading per read.
Per connection: this object, a transport and a small buffer.

Set-up (Engine.IO open, Socket.IO connect, ``floor.watch``) uses the awaitable
:meth:`RawWebSocket.recv_text` / :meth:`send_text`; then :meth:`go_hot` switches
to the callback and drops the set-up queue.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct
import time
from collections import deque
from typing import Callable, Final

__all__ = ["RawWebSocket", "raw_connect", "ClosedError"]

_GUID: Final = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

#: ``on_text(payload, received_at)`` for every text frame once hot.
TextHandler = Callable[[bytes, float], None]


class ClosedError(ConnectionError):
    pass


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


def _frame(opcode: int, payload: bytes) -> bytes:
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return header + key + _mask(payload, key)


class RawWebSocket(asyncio.Protocol):
    __slots__ = ("transport", "_request", "_accept", "_opened", "_upgraded", "_buf", "_setup", "_waiter",
                 "_on_text", "_on_lost", "closed", "_fragments")

    def __init__(self, host: str, port: int, path: str, on_lost: Callable[[], None] | None = None) -> None:
        key = base64.b64encode(os.urandom(16))
        self._accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        self._request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
        self.transport: asyncio.Transport | None = None
        self._opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._upgraded = False
        self._buf = b""
        self._setup: deque[bytes] | None = deque()  # text frames while setting up
        self._waiter: asyncio.Future[None] | None = None
        self._on_text: TextHandler | None = None
        self._on_lost = on_lost
        self._fragments: bytes | None = None
        self.closed = False

    # ------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's TCPTransport is no asyncio.Transport subclass
        transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._opened.done():
            self._opened.set_exception(ClosedError("closed during the WebSocket handshake"))
        self._wake()
        if self._on_lost is not None:
            self._on_lost()

    def data_received(self, data: bytes) -> None:
        if self._buf:
            data = self._buf + data
            self._buf = b""
        elif self._on_text is not None and data[0] == 0x81:
            # The hot path: exactly one whole, unmasked text frame in this read.
            n, size = data[1], len(data)
            if n < 126:
                if size == n + 2:
                    self._on_text(data[2:], time.time())
                    return
            elif n == 126 and size >= 4 and size == 4 + ((data[2] << 8) | data[3]):
                self._on_text(data[4:], time.time())
                return
        if not self._upgraded:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self._buf = data
                return
            head, data = data[:end], data[end + 4 :]
            status = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status or self._accept not in head:
                self._opened.set_exception(ClosedError(f"upgrade refused: {status.decode(errors='replace')}"))
                assert self.transport is not None
                self.transport.close()
                return
            self._upgraded = True
            self._opened.set_result(None)
        self._parse(data)

    # ------------------------------------------------------------ frames
    def _parse(self, data: bytes) -> None:
        now = time.time()  # one clock reading per read: every frame in it arrived together
        handler = self._on_text
        size = len(data)
        pos = 0
        while size - pos >= 2:
            b0, b1 = data[pos], data[pos + 1]
            n = b1 & 0x7F
            head = 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (data[pos + 2] << 8) | data[pos + 3]
                head = 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = int.from_bytes(data[pos + 2 : pos + 10], "big")
                head = 10
            end = pos + head + n
            if end > size:
                break
            payload = data[pos + head : end]
            pos = end
            opcode = b0 & 0x0F
            if b0 == 0x81 and handler is not None:  # the hot path: a whole text frame
                handler(payload, now)
            elif opcode == _OP_TEXT and b0 & 0x80:
                self._text(payload, now)
            else:
                self._other(b0, opcode, payload, now)
        if pos < size:
            self._buf = data[pos:]

    def _text(self, payload: bytes, now: float) -> None:
        handler = self._on_text
        if handler is not None:
            handler(payload, now)
        elif self._setup is not None:
            self._setup.append(payload)
            self._wake()

    def _other(self, b0: int, opcode: int, payload: bytes, now: float) -> None:
        if opcode == _OP_PING:
            self._write(_frame(_OP_PONG, payload))
        elif opcode == _OP_CLOSE:
            self._write(_frame(_OP_CLOSE, payload[:2]))
            assert self.transport is not None
            self.transport.close()
        elif opcode in (_OP_TEXT, _OP_CONT):  # fragmented text (no server here fragments, but be correct)
            self._fragments = payload if opcode == _OP_TEXT else (self._fragments or b"") + payload
            if b0 & 0x80:
                whole, self._fragments = self._fragments, None
                self._text(whole, now)
        # binary and pong frames: nothing to do

    def _write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # ------------------------------------------------------------ API
    async def opened(self) -> None:
        await self._opened

    def send_text_nowait(self, text: str) -> None:
        if self.closed:
            raise ClosedError("connection closed")
        self._write(_frame(_OP_TEXT, text.encode()))

    async def send_text(self, text: str) -> None:
        self.send_text_nowait(text)

    async def recv_text(self, timeout: float) -> str:
        """The next text frame during set-up."""
        assert self._setup is not None, "recv_text() after go_hot()"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._setup:
            if self.closed:
                raise ClosedError("connection closed")
            self._waiter = loop.create_future()
            try:
                await asyncio.wait_for(self._waiter, max(0.0, deadline - loop.time()))
            finally:
                self._waiter = None
        return self._setup.popleft().decode()

    def go_hot(self, on_text: TextHandler) -> None:
        """From now on every text frame goes to ``on_text``; set-up leftovers are dropped."""
        self._setup = None
        self._on_text = on_text

    async def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self._write(_frame(_OP_CLOSE, struct.pack("!H", 1000)))
            self.transport.close()


async def raw_connect(
    host: str, port: int, path: str, *, on_lost: Callable[[], None] | None = None, timeout: float = 30.0
) -> RawWebSocket:
    loop = asyncio.get_running_loop()
    _, proto = await asyncio.wait_for(
        loop.create_connection(lambda: RawWebSocket(host, port, path, on_lost), host, port), timeout
    )
    try:
        await asyncio.wait_for(proto.opened(), timeout)
    except BaseException:
        await proto.close()
        raise
    return proto
