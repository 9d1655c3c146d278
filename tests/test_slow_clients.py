"""Slow clients are really cut off.

A client that stops reading must not park data anywhere for long: not in the
server's buffers (process memory) and not in the kernel's send queue for its
socket, which Linux would otherwise let grow to megabytes unseen by the
send-buffer limit. The server bounds the kernel queue (``SO_SNDBUF``), counts
both queues against ``fanout.max_send_buffer_bytes`` and cuts the client off
with a TCP reset, so the backlog is freed at once (``presence_server/sendbuf.py``).

The end-to-end test runs the server as a real process, so its memory is its own
(``/proc/<pid>/status``) and its side of the stalled connection can be read from
``/proc/net/tcp``; the client completes the Socket.IO handshake, watches a busy
floor, and never reads again.
"""

from __future__ import annotations

import asyncio
import socket
import time
from typing import AsyncIterator

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from loadtests.procs import rss_kb
from presence_server.auth import mint_token
from presence_server.sendbuf import bound_kernel_buffer, cut_off, is_backed_up, kernel_queued
from signalling.client import OfficeClient
from tests.conftest import DEMO_CAMPUS, StartServer, make_settings
from tests.support.processes import ServerProcess
from tests.support.rawws import TCP_CLOSE, StalledClient, tcp_state, wait_reset
from tests.support.tcp import server_send_queue

FLOOR = "projekt"
LOUNGE = "projekt-lounge"
#: Generous for a loaded 2-core runner shared with other jobs; a few seconds measured there.
CUT_OFF_WITHIN_S = 30.0


# ------------------------------------------------------------- the mechanism
async def test_a_backlog_counts_kernel_and_process_bytes_and_a_cut_off_resets_the_peer() -> None:
    """Real loopback sockets, no server: a peer that never reads, a bounded kernel buffer."""
    listener = socket.create_server(("127.0.0.1", 0))
    peer = socket.socket()
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    peer.connect(listener.getsockname())
    conn, _ = listener.accept()
    listener.close()
    lost = asyncio.get_running_loop().create_future()

    class Protocol(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.set_result(exc)

    transport, _ = await asyncio.get_running_loop().connect_accepted_socket(Protocol, conn)
    try:
        assert bound_kernel_buffer(transport, 16384)
        assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 16384  # Linux doubles it
        for _ in range(10_000):  # ~40 MB at most; the kernel refuses after a few dozen KB
            if transport.get_write_buffer_size():
                break
            transport.write(b"x" * 4096)
        buffered, kernel = transport.get_write_buffer_size(), kernel_queued(transport)
        assert buffered > 0 and 0 < kernel <= 2 * 16384
        assert is_backed_up(transport, buffered)  # the kernel's bytes count too
        assert not is_backed_up(transport, buffered + 10 * 2 * 16384)
        server_port, peer_port = transport.get_extra_info("sockname")[1], peer.getsockname()[1]
        assert server_send_queue(server_port, peer_port) == kernel

        cut_off(transport)
        await asyncio.wait_for(lost, 5)
        assert await asyncio.to_thread(wait_reset, peer, 5)
        assert tcp_state(peer) == TCP_CLOSE  # a reset, not a FIN queued behind the backlog
        assert server_send_queue(server_port, peer_port) is None  # no orphan holding the backlog
    finally:
        transport.abort()
        peer.close()


async def test_websocket_connections_get_the_configured_kernel_send_buffer(start_server: StartServer) -> None:
    for configured, expected in ((32768, 2 * 32768), (0, None)):
        office = await start_server({"PRESENCE_FANOUT__SOCKET_SEND_BUFFER_BYTES": str(configured)})
        client = await office.client(f"anna{configured}.altbach", "altbach")
        eio_sid = client.sio.eio.sid
        sock = office.runtime.sio.eio.sockets[eio_sid]._transport.get_extra_info("socket")
        size = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        if expected is None:
            assert size != 2 * 32768  # left to the kernel's auto-tuning
        else:
            assert size == expected


# ----------------------------------------------------------------- end to end
@pytest.fixture
async def server(tmp_path) -> AsyncIterator[ServerProcess]:
    env = {
        "PRESENCE_STORAGE__BACKEND": "memory",
        "PRESENCE_CAMPUS__SEED_FILE": str(DEMO_CAMPUS),
        "PRESENCE_LOG__LEVEL": "warning",
        # The floor is busy on purpose: the budget must not slow the movers down.
        "PRESENCE_LIMITS__EVENTS_PER_SECOND": "100000",
        "PRESENCE_LIMITS__BURST": "100000",
        "PRESENCE_PRESENCE__STATUS_TEXT_MAX": "1000",
    }  # fanout.*: the defaults under test (1 MiB limit, 64 KiB SO_SNDBUF)
    process = await asyncio.to_thread(ServerProcess(env, log_path=tmp_path / "server.log").start)
    try:
        yield process
    finally:
        await asyncio.to_thread(process.stop)


async def metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as resp:
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return 0.0


async def test_a_watcher_that_stops_reading_on_a_busy_floor_is_reset_within_seconds_with_memory_bounded(
    server: ServerProcess,
) -> None:
    fanout = make_settings().fanout
    settings = make_settings()

    def token(user: str, municipality: str) -> str:
        return mint_token(settings.auth, municipality=municipality, user_id=user, name=user.split(".")[0].title())

    stalled = await asyncio.to_thread(StalledClient, "127.0.0.1", server.port)
    await asyncio.to_thread(stalled.socketio_connect, {"token": token("slow.seefeld", "seefeld")})
    await asyncio.to_thread(stalled.emit_with_ack, "floor.watch", {"floor_id": FLOOR})
    client_port = stalled.sock.getsockname()[1]  # from here on it never reads again

    clients: list[OfficeClient] = []
    try:
        healthy = await OfficeClient(server.url, token("ben.bergheim", "bergheim")).connect()
        clients.append(healthy)
        await healthy.watch(FLOOR)
        movers = []
        for i in range(6):
            mover = await OfficeClient(server.url, token(f"m{i}.altbach", "altbach")).connect()
            clients.append(mover)
            await mover.move(FLOOR)
            movers.append(mover)
        rss_before = rss_kb(server.proc.pid)
        slow_before = await metric(server.url, "vo_slow_clients_disconnected_total")

        stop = asyncio.Event()
        last_text: dict[str, str] = {}
        kernel_peak = 0

        async def busy(i: int, mover: OfficeClient) -> None:
            n = 0
            while not stop.is_set():  # as fast as the server answers: 4 statuses in flight, then a walk
                texts = [f"{'Haushalt ' * 110}{i}-{n}-{k}" for k in range(4)]  # ~1 KB diffs
                await asyncio.gather(*(mover.set_status("busy", text) for text in texts))
                last_text[mover.person] = texts[-1]  # one session's requests apply in order
                await mover.move(FLOOR, LOUNGE if n % 2 else None)
                n += 1

        async def watch_kernel_queue() -> None:
            nonlocal kernel_peak
            while not stop.is_set():  # a measurement, taken until the reset ends it
                kernel_peak = max(kernel_peak, server_send_queue(server.port, client_port) or 0)
                await asyncio.sleep(0.02)

        tasks = [asyncio.create_task(busy(i, m)) for i, m in enumerate(movers)]
        tasks.append(asyncio.create_task(watch_kernel_queue()))
        started = time.monotonic()
        reset = await asyncio.to_thread(stalled.wait_reset, CUT_OFF_WITHIN_S)
        cut_off_after = time.monotonic() - started
        rss_at_cut_off = rss_kb(server.proc.pid)
        stop.set()
        await asyncio.gather(*tasks)

        assert reset, f"the stalled client was not cut off within {CUT_OFF_WITHIN_S} s"
        assert stalled.tcp_state() == TCP_CLOSE  # reset by the server, without reading a byte
        assert server_send_queue(server.port, client_port) is None  # and nothing left queued for it
        # The kernel held at most its fixed buffer (Linux doubles SO_SNDBUF), never megabytes.
        assert 0 < kernel_peak <= 2 * fanout.socket_send_buffer_bytes
        # The process held at most the limit for it: resident memory stays flat.
        assert rss_at_cut_off - rss_before < 24 * 1024, (rss_before, rss_at_cut_off)
        assert await metric(server.url, "vo_slow_clients_disconnected_total") == slow_before + 1

        async def session_gone() -> None:  # the server ended the session too
            while await metric(server.url, "vo_sessions") != len(clients):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(session_gone(), 10)
        # Everyone else kept their frames: the healthy watcher sees every mover's last status.
        await healthy.until_view(
            FLOOR, lambda v: all(v.members.get(u, {}).get("text") == t for u, t in last_text.items()), timeout=15
        )
        print(
            f"\ncut off after {cut_off_after:.2f} s; kernel queue peak {kernel_peak} B; "
            f"server RSS {rss_before} kB before, {rss_at_cut_off} kB at the cut-off"
        )
    finally:
        for client in clients:
            await client.disconnect()
        stalled.close()
