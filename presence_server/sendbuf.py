"""What a client has not received yet, and cutting off one that stopped reading.

Bytes on their way to a client sit in two queues: the transport's own write
buffer (process memory) and the kernel's socket send queue. asyncio only
buffers once the kernel refuses more, and Linux grows a TCP send buffer by
itself up to ``net.ipv4.tcp_wmem`` (4 MiB by default). So a client that stops
reading first fills megabytes of kernel memory while the transport buffer stays
empty, and a cut-off that looks only at the transport buffer fires late, or,
if the floor is quiet, not at all. Hence, per WebSocket:

* :func:`bound_kernel_buffer` fixes ``SO_SNDBUF`` to a modest size (Linux
  doubles the value for its bookkeeping and stops auto-tuning it), so the
  kernel queue stays small and a backlog shows up in the transport buffer soon;
* :func:`is_backed_up` counts both queues against the limit. The kernel queue
  (``SIOCOUTQ``, one ``ioctl``) is asked only once the transport has started
  buffering: before that the kernel took every byte and a healthy client costs
  no system call;
* :func:`cut_off` closes with ``SO_LINGER`` 0: the peer gets a reset and the
  kernel frees the queue at once. A plain close would leave an orphaned socket
  that keeps probing the stalled peer's zero window for minutes with the whole
  backlog still queued, while the peer believes it is connected.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import termios
from typing import Final

__all__ = ["bound_kernel_buffer", "kernel_queued", "is_backed_up", "cut_off"]

#: ``SIOCOUTQ`` (== ``TIOCOUTQ`` on Linux): bytes in a TCP socket's send queue, not yet acknowledged.
_SIOCOUTQ: Final = getattr(termios, "TIOCOUTQ", None)
_INT: Final = struct.Struct("i")
_LINGER_RESET: Final = struct.pack("ii", 1, 0)  # l_onoff=1, l_linger=0: close sends RST, drops the queue


def bound_kernel_buffer(transport: asyncio.BaseTransport, size: int) -> bool:
    """Fix the connection's kernel send buffer at ``size`` bytes (0: leave the
    kernel's auto-tuning alone). Returns whether it was set."""
    sock = transport.get_extra_info("socket")
    if size <= 0 or sock is None:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    except OSError:  # not a socket that has one (a pipe in some test harness)
        return False
    return True


def kernel_queued(transport: asyncio.BaseTransport) -> int:
    """Bytes the kernel still holds for the peer (unsent or unacknowledged); 0 if unknown."""
    sock = transport.get_extra_info("socket")
    if _SIOCOUTQ is None or sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), _SIOCOUTQ, b"\0" * _INT.size)
    except (OSError, ValueError):  # closed meanwhile (fileno -1), or not a TCP socket
        return 0
    return int(_INT.unpack(raw)[0])


def is_backed_up(transport: asyncio.WriteTransport, limit: int) -> bool:
    """More than ``limit`` bytes are waiting for the peer, in the process and the kernel."""
    buffered = transport.get_write_buffer_size()
    if buffered == 0:
        return False  # the kernel took everything; its queue is bounded by SO_SNDBUF (or tcp_wmem)
    return buffered + kernel_queued(transport) > limit


def cut_off(transport: asyncio.WriteTransport) -> None:
    """Drop the connection now: a reset to the peer, the unsent backlog freed in
    the process and in the kernel. The session then ends through its receive
    loop, as for any broken connection."""
    sock = transport.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        except OSError:
            pass  # already closed: abort() below is all there is to do
    transport.abort()
