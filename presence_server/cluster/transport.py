"""The transport in cluster mode: this node's audiences plus the bus.

Floor diffs made here come from the presence store, which has already
published them to the other nodes inside its Lua scripts; they arrive here
typed, through the outbox. Diffs made elsewhere arrive from the bus as the
JSON text the script published (:class:`~presence_server.diffs.DiffsText`)
and are forwarded to local sockets as that text, never parsed on the way.
Both pass through :class:`FloorOrder`, so local watchers see every floor
strictly in sequence order whichever node made a change.

Routing: the node subscribes to a floor's channel when its first local session
watches the floor and unsubscribes after the last one leaves; likewise to a
user's channel while it holds a session of that user. Direct events (knocks,
outcomes, location notices) are delivered to local sessions and published on
the user's channel for sessions on other nodes.

A view is never left stale by a refused snapshot: a watch whose snapshot could
not be read (the store away) owes its floor's watchers a ``floor.seq``, sent
``OWED_SEQ_SECONDS`` later; a view left stale takes a snapshot on it
(protocol.md §5). While the node is degraded the gateway refuses watches before
they get here, and the node's recovery sends ``floor.seq`` to every watched
floor instead.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Coroutine, Sequence
from typing import Any, Final, Mapping

import structlog
from prometheus_client import Counter as Metric

from presence_server.cluster.bus import Bus
from presence_server.cluster.ordering import FloorOrder, Item
from presence_server.diffs import DiffsText, FloorDiff
from presence_server.metrics import REGISTRY
from presence_server.outbox import Outbox
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from presence_server.transport_sio import SocketIOTransport
from rooms.person import PersonId

__all__ = ["ClusterTransport", "OWED_SEQ_SECONDS"]

log = structlog.get_logger(__name__)

#: After a watch whose snapshot failed, when its floor's watchers hear ``floor.seq``.
OWED_SEQ_SECONDS: Final = 1.0


GAPS: Final = Metric(
    "vo_cluster_gaps_given_up_total",
    "Floor diffs this node gave up waiting for, by reason: lost (the floor's channel went past them: "
    "after an outage) or bus_silent (the channel carried nothing for the reorder hold). Watchers then "
    "resync by snapshot; anything outside an outage is worth a look.",
    ["reason"],
    registry=REGISTRY,
)


def floor_channel(floor_id: str) -> str:
    return "f:" + floor_id


def user_channel(person: PersonId) -> str:
    return "u:" + person


class ClusterTransport:
    def __init__(self, local: SocketIOTransport, bus: Bus, *, reorder_hold: float) -> None:
        self.local = local
        self._bus = bus
        self._order = FloorOrder(hold=reorder_hold)
        self._floor_watchers: Counter[str] = Counter()
        self._user_sessions: Counter[PersonId] = Counter()
        self._session_user: dict[str, PersonId] = {}
        self._watching: dict[str, set[str]] = {}  # sid -> floors
        self._gap_task: asyncio.Task[None] | None = None
        self._gap_wakeup = asyncio.Event()
        # One owned sender keeps local deliveries (and bus work) in the order made.
        self._work: asyncio.Queue[Coroutine[Any, Any, None]] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._owed: dict[str, asyncio.TimerHandle] = {}  # floor -> its owed floor.seq
        self._gaps_seen = (0, 0)  # FloorOrder's gaps_lost, gaps_timed_out already counted

    @property
    def outbox(self) -> Outbox | None:
        return self.local.outbox

    def start(self) -> None:
        self._gap_task = supervised("gap_release", self._give_up_gaps)
        self._sender = supervised("cluster_sender", self._send_forever)

    async def close(self) -> None:
        for handle in self._owed.values():
            handle.cancel()
        self._owed.clear()
        await cancel_and_wait(self._gap_task)
        await cancel_and_wait(self._sender)

    # ------------------------------------------------------------- sessions
    async def attach(self, sid: str, person: PersonId, environ: Mapping[str, Any]) -> None:
        await self.local.attach(sid, person, environ)
        self._session_user[sid] = person
        self._user_sessions[person] += 1
        if self._user_sessions[person] == 1:
            await self._bus.subscribe(user_channel(person))

    def detach(self, sid: str) -> None:
        self.local.detach(sid)
        for floor_id in self._watching.pop(sid, set()):
            self._release_floor(floor_id)
        person = self._session_user.pop(sid, None)
        if person is not None:
            self._user_sessions[person] -= 1
            if self._user_sessions[person] <= 0:
                del self._user_sessions[person]
                self._spawn(self._unsubscribe_unless_needed(user_channel(person)))

    async def watch(self, sid: str, floor_id: str) -> None:
        # Every watch (a re-watch too) is matched by watch_started or watch_aborted.
        self._order.prepare(floor_id)
        await self.local.watch(sid, floor_id)
        if floor_id in self._watching.setdefault(sid, set()):
            return
        self._watching[sid].add(floor_id)
        self._floor_watchers[floor_id] += 1
        if self._floor_watchers[floor_id] == 1:
            await self._bus.subscribe(floor_channel(floor_id))

    def watch_started(self, floor_id: str, seq: int) -> None:
        """The snapshot a watch began with was read at ``seq``."""
        if self._order.is_ordering(floor_id):  # else unwatched meanwhile
            self._deliver(floor_id, self._order.start(floor_id, seq, time.monotonic()))

    def watch_aborted(self, floor_id: str) -> None:
        """The snapshot of a watch could not be read (the store away): the watcher's
        view stays stale until a ``floor.seq``, owed from now."""
        self._deliver(floor_id, self._order.abort(floor_id, time.monotonic()))
        if floor_id not in self._owed:
            loop = asyncio.get_running_loop()
            self._owed[floor_id] = loop.call_later(OWED_SEQ_SECONDS, self._pay_owed, floor_id)

    def _pay_owed(self, floor_id: str) -> None:
        del self._owed[floor_id]
        if floor_id in self._floor_watchers:
            seq = self._order.delivered().get(floor_id, 0)
            self._spawn(self.local.send_floor_event(floor_id, "floor.seq", {"floor_id": floor_id, "seq": seq}))

    async def unwatch(self, sid: str, floor_id: str) -> None:
        await self.local.unwatch(sid, floor_id)
        floors = self._watching.get(sid)
        if floors is not None and floor_id in floors:
            floors.discard(floor_id)
            self._release_floor(floor_id)

    def _release_floor(self, floor_id: str) -> None:
        self._floor_watchers[floor_id] -= 1
        if self._floor_watchers[floor_id] <= 0:
            del self._floor_watchers[floor_id]
            self._order.stop(floor_id)
            self._spawn(self._unsubscribe_unless_needed(floor_channel(floor_id)))

    async def _unsubscribe_unless_needed(self, channel: str) -> None:
        """Unsubscribe, unless someone here needs the channel again by now.

        The unsubscribe runs later than the leave that queued it. A watcher (or a
        session of the user) that arrived meanwhile found the channel still
        subscribed and did not subscribe again; unsubscribing now would leave it
        deaf to the other nodes (every remote diff a sequence gap)."""
        kind, _, name = channel.partition(":")
        needed = self._floor_watchers[name] if kind == "f" else self._user_sessions[PersonId(name)]
        if needed <= 0:
            await self._bus.unsubscribe(channel)

    # ------------------------------------------------------------- delivery
    async def send_diffs(self, floor_id: str, diffs: Sequence[FloorDiff]) -> None:
        """This node's own diffs (already published by the store): order, deliver."""
        self._deliver(floor_id, self._order.offer(diffs, time.monotonic()))

    async def send_person(self, person: PersonId, event: str, payload: dict[str, Any]) -> None:
        await self.local.send_person(person, event, payload)
        await self._bus.publish([(user_channel(person), {"event": event, "payload": payload})])

    async def send_session(self, sid: str, event: str, payload: dict[str, Any]) -> None:
        await self.local.send_session(sid, event, payload)

    async def close_floor(self, floor_id: str) -> None:
        await self.local.close_floor(floor_id)

    def post_welcome(self, sid: str, payload: dict[str, Any]) -> None:
        self.local.post_welcome(sid, payload)

    def watched_floors(self) -> list[str]:
        return list(self._floor_watchers)

    def delivered_seqs(self) -> dict[str, int]:
        """Per watched floor, the highest seq delivered here: after Redis lost its
        data, each floor's seq must go above it (``RedisPresenceStore.raise_seq``)."""
        return self._order.delivered()

    def resync_floor(self, floor_id: str, seq: int) -> None:
        """After an outage: the floor is at ``seq`` in the store. Whatever was held
        below it is given up, and local watchers are told the seq, so a view that
        missed diffs sees it is behind and takes a fresh snapshot."""
        self._deliver(floor_id, self._order.resync(floor_id, seq, time.monotonic()))
        self._spawn(self.local.send_floor_event(floor_id, "floor.seq", {"floor_id": floor_id, "seq": seq}))

    # ------------------------------------------------------------ from the bus
    def on_bus_message(self, channel: str, body: dict[str, Any]) -> None:
        kind, _, name = channel.partition(":")
        if kind == "f":
            self._deliver(name, self._order.offer(_bus_diffs(name, body), time.monotonic(), bus=True))
        elif kind == "u":
            self._spawn(self.local.send_person(PersonId(name), body["event"], body["payload"]))

    def on_bus_echo(self, channel: str, body: dict[str, Any]) -> None:
        """This node's own floor diffs, back from the bus in their place among the
        others': the stream of the floor has come this far (``FloorOrder``). Usually
        they were delivered already (local first) and are dropped as old, or the
        local copy follows within the outbox's batch window; only if it is late
        while a later diff waits is the echo delivered instead."""
        kind, _, name = channel.partition(":")
        if kind == "f":
            self._deliver(name, self._order.offer(_bus_diffs(name, body), time.monotonic(), echo=True))

    def _deliver(self, floor_id: str, items: list[Item]) -> None:
        given_up = self._order.gaps_lost, self._order.gaps_timed_out
        if given_up != self._gaps_seen:
            self._count_gaps(floor_id, given_up)
        if items:
            self._spawn(self._send_local(floor_id, items))
        if self._order.next_deadline() is not None:
            self._gap_wakeup.set()

    async def _send_local(self, floor_id: str, items: list[Item]) -> None:
        await self.local.send_diffs(floor_id, items)
        if any(d.type == "floor_removed" if isinstance(d, FloorDiff) else d.removes_floor for d in items):
            await self.local.close_floor(floor_id)  # after its last frame, as on one node

    async def _give_up_gaps(self) -> None:
        """Release diffs held for a missing one once the hold is over."""
        while True:
            deadline = self._order.next_deadline()
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                await asyncio.wait_for(self._gap_wakeup.wait(), timeout)
            except asyncio.TimeoutError:
                pass
            self._gap_wakeup.clear()
            released = self._order.due(time.monotonic())
            for floor_id in {d.floor_id for d in released}:
                self._deliver(floor_id, [d for d in released if d.floor_id == floor_id])

    def _count_gaps(self, floor_id: str, given_up: tuple[int, int]) -> None:
        lost, timed_out = given_up[0] - self._gaps_seen[0], given_up[1] - self._gaps_seen[1]
        self._gaps_seen = given_up
        if lost:
            GAPS.labels("lost").inc(lost)
        if timed_out:
            GAPS.labels("bus_silent").inc(timed_out)
        # Once per give-up, rare by design: after an outage, or a bus that went quiet.
        log.warning("cluster_gap_given_up", floor=floor_id, lost=lost, bus_silent=timed_out)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Queue work for the sender; it runs in the order queued."""
        self._work.put_nowait(coro)

    async def _send_forever(self) -> None:
        while True:
            coro = await self._work.get()
            try:
                await coro
            except Exception:  # one failed delivery must not stop the others
                log.exception("cluster_delivery_failed")


def _bus_diffs(floor_id: str, body: dict[str, Any]) -> list[Item]:
    """A floor message as the floor scripts publish it: ``diffs_json`` with the
    ``first`` and ``last`` seq it covers, kept as text. A message from a node
    older than ``first``/``last`` (a rolling upgrade) is parsed instead."""
    text = body["diffs_json"]
    if "first" in body and "last" in body:
        return [DiffsText(floor_id, int(body["first"]), int(body["last"]), text)]
    return [FloorDiff.from_wire(floor_id, wire) for wire in json.loads(text)]
