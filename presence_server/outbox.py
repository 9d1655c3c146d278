"""Ordered, batched delivery from the domain to the transport.

Producers (presence, knocks, campus) call the synchronous ``post_*`` methods at
the very moment their state changes, so the order in the outbox *is* the order of
the changes. One drain task owned by the outbox hands them to the
:class:`Transport`:

* floor diffs are grouped per floor into one ``floor.diffs`` frame per drain
  cycle (a burst on a floor goes out as one frame; within a frame diffs keep
  their sequence order). They reach the transport typed; the transport
  serialises them once, at the socket edge;
* direct events (to a user's sessions or to one session) keep their FIFO order.

The domain never sees a socket id, a Socket.IO room or a Redis channel: it
addresses a floor, a user or a session, and the transport decides how.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Protocol, Sequence

import structlog

from presence_server import metrics
from presence_server.diffs import FloorDiff
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms.person import PersonId

__all__ = ["Transport", "Outbox"]

log = structlog.get_logger(__name__)


class Transport(Protocol):
    """Delivers events to audiences on this node. Must not raise for a vanished audience."""

    async def send_diffs(self, floor_id: str, diffs: Sequence[FloorDiff]) -> None:
        """One ``floor.diffs`` frame with ``diffs`` (one floor, in sequence order)."""

    async def send_person(self, person: PersonId, event: str, payload: dict[str, Any]) -> None: ...

    async def send_session(self, sid: str, event: str, payload: dict[str, Any]) -> None: ...

    async def close_floor(self, floor_id: str) -> None:
        """Unsubscribe every watcher of the floor on this node."""


@dataclass(slots=True)
class _Direct:
    kind: str  # "person" | "session"
    target: str
    event: str
    payload: dict[str, Any]


class Outbox:
    def __init__(self, transport: Transport, *, window: float = 0.0) -> None:
        """``window``: seconds to wait after the first change of a burst before
        flushing, so more changes can join the frame; 0 flushes on the next loop turn."""
        self._transport = transport
        self._window = window
        self._floors: dict[str, list[FloorDiff]] = {}
        self._floor_since: dict[str, float] = {}
        self._direct: deque[_Direct] = deque()
        self._closed_floors: list[str] = []
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._observers: list[Callable[[list[FloorDiff]], None]] = []

    def add_observer(self, observe: Callable[[list[FloorDiff]], None]) -> None:
        """``observe(diffs)`` sees every batch of diffs posted here, synchronously and
        in order: the diffs of changes made on this node only (in cluster mode the
        others' arrive through the bus, not through this outbox). It must not block;
        an exception is logged and does not stop the post."""
        self._observers.append(observe)

    # -------------------------------------------------------------- producers
    def post_diffs(self, diffs: Iterable[FloorDiff]) -> None:
        now = time.perf_counter()
        diffs = list(diffs)
        for observe in self._observers:
            try:
                observe(diffs)
            except Exception:
                log.exception("outbox_observer_failed")
        for diff in diffs:
            pending = self._floors.get(diff.floor_id)
            if pending is None:
                self._floors[diff.floor_id] = [diff]
                self._floor_since[diff.floor_id] = now
            else:
                pending.append(diff)
            self._kick()

    def post_person(self, person: PersonId, event: str, payload: dict[str, Any]) -> None:
        self._direct.append(_Direct("person", person, event, payload))
        self._kick()

    def post_session(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        self._direct.append(_Direct("session", sid, event, payload))
        self._kick()

    def post_floor_closed(self, floor_id: str) -> None:
        """Unsubscribe the floor's watchers once its pending frames are out."""
        self._closed_floors.append(floor_id)
        self._kick()

    def _kick(self) -> None:
        self._idle.clear()
        self._wakeup.set()

    # -------------------------------------------------------------- lifecycle
    def start(self) -> None:
        if self._task is None:
            self._task = supervised("outbox_drain", self._drain_forever)

    async def flushed(self) -> None:
        """Wait until everything posted so far has been handed to the transport."""
        await self._idle.wait()

    async def close(self) -> None:
        """Deliver what is pending, then stop the drain task."""
        if self._task is None:
            return
        await self._flush()
        await cancel_and_wait(self._task)
        self._task = None

    async def _drain_forever(self) -> None:
        # (Re)started: what was posted while no drain ran goes out first; with
        # nothing pending, whoever waits for flushed() must not wait for a crashed run.
        if self._floors or self._direct or self._closed_floors:
            self._kick()
        else:
            self._idle.set()
        while True:
            await self._wakeup.wait()
            if self._window > 0:
                await asyncio.sleep(self._window)
            self._wakeup.clear()
            await self._flush()
            if not self._wakeup.is_set():
                self._idle.set()

    async def _flush(self) -> None:
        floors, since = self._floors, self._floor_since
        self._floors, self._floor_since = {}, {}
        direct, self._direct = self._direct, deque()
        closed, self._closed_floors = self._closed_floors, []
        # Each send is isolated: one failing audience must not cost the others
        # their frames (a lost floor frame heals by resync; a lost knock would not).
        for floor_id, diffs in floors.items():
            if await self._send(self._transport.send_diffs(floor_id, diffs), floor_id, "floor.diffs"):
                metrics.BROADCAST_LATENCY.observe(time.perf_counter() - since[floor_id])
                for diff in diffs:
                    metrics.EVENTS_OUT.labels(diff.type).inc()
        for item in direct:
            if item.kind == "person":
                sending = self._transport.send_person(PersonId(item.target), item.event, item.payload)
            else:
                sending = self._transport.send_session(item.target, item.event, item.payload)
            sent = await self._send(sending, item.target, item.event)
            if sent:
                metrics.EVENTS_OUT.labels(item.event).inc()
        for floor_id in closed:
            try:
                await self._transport.close_floor(floor_id)
            except Exception:
                log.exception("outbox_close_floor_failed", floor=floor_id)

    @staticmethod
    async def _send(sending: Awaitable[None], target: str, kind: str) -> bool:
        try:
            await sending
            return True
        except Exception:
            metrics.DELIVERY_FAILURES.inc()
            log.exception("outbox_send_failed", target=target, kind=kind)
            return False
