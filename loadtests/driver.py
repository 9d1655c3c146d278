"""The driver: one connection that makes changes at a fixed rate.

Every change carries its send time ``t = time.time()`` so the watchers can
measure change-to-screen latency on the same clock:

* ``ours``: ``presence.status`` with ``text = "<t>"`` and the status alternating
  between ``busy`` and ``available``; the text differs every time, so every
  request changes the effective status and yields exactly one ``status`` diff.
  The driver first walks onto the floor (``presence.move``): someone on no floor
  has no audience and produces no diff.
* ``socketio``: the event ``change`` with ``{t, n}``.
* ``bare``: a text message ``{"t": .., "n": ..}``.

Pacing is open-loop on a fixed schedule: change ``k`` is due at
``start + k / rate``; a late driver sends at once (never skips, never drifts),
and the worst lateness is reported so a reader can tell a slow driver from a
slow server.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import aiohttp

from eio import EIO_WS_PATH, PING, PONG, AiohttpText, event_frame, sio_call, sio_handshake

__all__ = ["Driver", "DriverRun"]


@dataclass(slots=True)
class DriverRun:
    sent: int
    first_sent: float  # time.time() of the first change
    last_sent: float
    max_lag_ms: float  # worst lateness against the schedule
    acks: int  # ours: acknowledgements received by the end of the run
    refused: int  # ours: acknowledgements with ok=false
    first_refusal: str | None


class Driver:
    def __init__(self, kind: str, node_url: str, *, floor_id: str = "projekt", token: str | None = None) -> None:
        self.kind = kind
        self.node_url = node_url
        self.floor_id = floor_id
        self.token = token
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._acks = 0
        self._refused = 0
        self._first_refusal: str | None = None
        self._n = 0
        self.acks_at_start = 0

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()
        if self.kind == "bare":
            sock = await AiohttpText.connect(self._session, self.node_url + "/ws?role=driver")
        elif self.kind == "socketio":
            sock = await AiohttpText.connect(self._session, self.node_url + EIO_WS_PATH)
            # The reference server keeps a client that says it is the driver out of the room.
            await sio_handshake(sock, {"driver": True})
        else:
            sock = await AiohttpText.connect(self._session, self.node_url + EIO_WS_PATH)
            await sio_handshake(sock, {"token": self.token, "lang": "en"})
            ack = await sio_call(sock, 1, "presence.move", {"floor_id": self.floor_id})
            if not (isinstance(ack, dict) and ack.get("ok")):
                raise RuntimeError(f"driver could not walk onto {self.floor_id}: {ack}")
        self._ws = sock.ws
        self._reader = asyncio.create_task(self._read(), name="driver-reader")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            try:
                await self._reader
            except (asyncio.CancelledError, Exception):
                pass
        if self._ws is not None:
            await self._ws.close()
        if self._session is not None:
            await self._session.close()

    async def _read(self) -> None:
        """Answer pings; count acknowledgements and refusals (ours)."""
        assert self._ws is not None
        ws = self._ws
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data: str = msg.data
            if data == PING:
                await ws.send_str(PONG)
            elif data.startswith("43"):
                self._acks += 1
                if '"ok":false' in data:
                    self._refused += 1
                    if self._first_refusal is None:
                        self._first_refusal = data[:300]

    def _frame(self, t: float) -> str:
        n = self._n = self._n + 1
        if self.kind == "bare":
            return json.dumps({"t": t, "n": n})
        if self.kind == "socketio":
            return event_frame("change", {"t": t, "n": n})
        status = "busy" if n % 2 else "available"
        # Ack ids start above the set-up call's id 1.
        return event_frame("presence.status", {"status": status, "text": f"{t:.6f}"}, ack_id=n + 1)

    async def run(self, rate: float, seconds: float) -> DriverRun:
        """Make ``round(rate * seconds)`` changes, change ``k`` due at ``start + k / rate``."""
        assert self._ws is not None
        send = self._ws.send_str
        loop = asyncio.get_running_loop()
        count = max(1, round(rate * seconds))
        acks0, refused0 = self._acks, self._refused
        self.acks_at_start = acks0
        start = loop.time() + 0.01
        max_lag = 0.0
        first = last = 0.0
        for k in range(count):
            due = start + k / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            max_lag = max(max_lag, loop.time() - due)
            t = time.time()
            await send(self._frame(t))
            if k == 0:
                first = t
            last = t
        return DriverRun(
            sent=count,
            first_sent=first,
            last_sent=last,
            max_lag_ms=max_lag * 1000.0,
            acks=self._acks - acks0,
            refused=self._refused - refused0,
            first_refusal=self._first_refusal,
        )

    def counts(self) -> tuple[int, int]:
        """(acknowledgements, refusals) received so far, over the connection's life."""
        return self._acks, self._refused
