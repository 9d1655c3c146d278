"""A deliberately minimal, blocking WebSocket client on a raw socket.

For the one thing real clients cannot do on purpose: connect, subscribe, and
then stop reading, with a tiny receive buffer, so the server sees a slow client.
:meth:`StalledClient.wait_reset` then tells, still without reading a byte, when
the server has cut the connection off.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import struct
from typing import Any

__all__ = ["StalledClient", "TCP_CLOSE", "TCP_ESTABLISHED", "tcp_state", "wait_reset"]

# Linux TCP states (include/net/tcp_states.h), the first byte of struct tcp_info.
TCP_ESTABLISHED = 1
TCP_CLOSE = 7


class StalledClient:
    def __init__(self, host: str, port: int, *, rcvbuf: int = 4096) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: small window
        self.sock.settimeout(5)
        self.sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self._buf = b""
        while b"\r\n\r\n" not in self._buf:
            self._buf += self.sock.recv(4096)
        head, self._buf = self._buf.split(b"\r\n\r\n", 1)
        assert b" 101 " in head.split(b"\r\n", 1)[0], head

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        size = len(payload)
        if size < 126:
            header = struct.pack("!BB", 0x81, 0x80 | size)
        else:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, size)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def recv_text(self) -> str:
        while True:
            if len(self._buf) >= 2:
                size = self._buf[1] & 0x7F
                offset = 2
                if size == 126:
                    size, offset = struct.unpack("!H", self._buf[2:4])[0], 4
                elif size == 127:
                    size, offset = struct.unpack("!Q", self._buf[2:10])[0], 10
                if len(self._buf) >= offset + size:
                    frame, self._buf = self._buf[offset : offset + size], self._buf[offset + size :]
                    return frame.decode()
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self._buf += chunk

    def socketio_connect(self, auth: dict[str, Any]) -> None:
        assert self.recv_text().startswith("0")  # engine.io open
        self.send_text("40" + json.dumps(auth))
        while not self.recv_text().startswith("40"):
            pass

    def emit_with_ack(self, event: str, payload: Any) -> None:
        self.send_text("421" + json.dumps([event, payload]))
        while not self.recv_text().startswith("431"):
            pass

    def is_closed_by_peer(self) -> bool:
        """Drain what is buffered; True once the server has closed the connection."""
        self.sock.settimeout(0.5)
        try:
            while True:
                if not self.sock.recv(1 << 20):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def tcp_state(self) -> int:
        return tcp_state(self.sock)

    def wait_reset(self, timeout: float) -> bool:
        return wait_reset(self.sock, timeout)

    def close(self) -> None:
        self.sock.close()


def tcp_state(sock: socket.socket) -> int:
    """This end's TCP state, read from TCP_INFO (no data is consumed)."""
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]


def wait_reset(sock: socket.socket, timeout: float) -> bool:
    """Block until the connection is reset (or otherwise dead), without reading:
    poll() for errors and hang-ups only (an empty event mask still reports
    both), so unread data in the receive buffer does not wake it. A graceful
    FIN from the peer does not count: it would leave the backlog queued there."""
    poller = select.poll()
    poller.register(sock.fileno(), 0)
    return bool(poller.poll(timeout * 1000))
