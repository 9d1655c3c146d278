"""What the kernel says about one TCP connection on loopback, read from /proc.

Lets a test look at the *server's* side of a connection from outside the server
process: how many bytes its kernel still queues for the peer, and whether the
socket exists at all (an orphan left by a plain close would still be listed).
"""

from __future__ import annotations

__all__ = ["server_send_queue"]


def server_send_queue(local_port: int, remote_port: int) -> int | None:
    """``tx_queue`` of the IPv4 socket ``127.0.0.1:local_port`` <-> ``:remote_port``
    (bytes written but not acknowledged by the peer), or None if there is none."""
    with open("/proc/net/tcp") as f:
        next(f)  # header
        for line in f:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.rsplit(":", 1)[1], 16) == local_port and int(remote.rsplit(":", 1)[1], 16) == remote_port:
                return int(fields[4].split(":")[0], 16)
    return None
