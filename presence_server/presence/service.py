"""Presence: sessions, grace periods, walking, status and floor views.

The rules that need the campus (visibility, doors, ownership) are checked here
against the campus read model; what races between nodes (capacity, sequence
numbers, sessions of one user on several nodes) is decided atomically by the
:class:`~presence_server.presence.store.PresenceStore`. Every change's diffs go
to the outbox as soon as the store returns them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable

import structlog

from presence_server import metrics
from presence_server.outbox import Outbox
from presence_server.diffs import FloorDiff
from presence_server.presence.state import Status
from presence_server.presence.store import Member, PresenceStore
from presence_server.tasks import cancel_and_wait
from rooms.access import check_door, is_room_owner
from rooms.actors import Actor
from rooms.campus import CampusChange, CampusService
from rooms.errors import DomainError, ErrorCode, StoreUnavailable
from rooms.model import Room
from rooms.person import PersonId

__all__ = ["PresenceService", "PresenceHooks", "Annotator"]

log = structlog.get_logger(__name__)

#: Extra fields for members of a floor snapshot: person ids in, {person id: fields} out.
Annotator = Callable[[list[PersonId]], Awaitable[dict[PersonId, dict[str, Any]]]]

_RETRY_SECONDS = 1.0  # an expiry that met a store outage is tried again after this


class PresenceHooks:
    """What other parts (knocks, calls, the gateway) may hear about presence.
    Awaited right after the change; override what you need."""

    async def room_emptied(self, floor_id: str, room_id: str) -> None:
        """Nobody who may answer the door is inside any more."""

    async def user_gone(self, person: PersonId) -> None:
        """The grace period ran out: the user is offline."""

    async def room_removed(self, room: Room) -> None:
        """Deleted or expired; its occupants are in the hallway."""

    async def floor_removed(self, floor_id: str) -> None:
        """Deleted; its members are nowhere and its watchers unsubscribed."""

    async def user_left_room(self, person: PersonId, floor_id: str, room_id: str) -> None:
        """The user is no longer in the room (walked out, went offline, room removed)."""

    async def status_changed(self, person: PersonId, status: Status) -> None:
        """The user's effective status is now ``status``."""

    async def user_arrived(self, person: PersonId, floor_id: str) -> None:
        """The user came onto ``floor_id`` from elsewhere (its watchers saw ``joined``)."""

    async def actor_seen(self, actor: Actor) -> None:
        """A session connected or refreshed its token (name and profile may be new)."""

    async def presence_ended(self, actor: Actor, since: float) -> None:
        """After ``user_gone``: who went, and since when they had been lingering."""


class PresenceService:
    def __init__(
        self,
        campus: CampusService,
        outbox: Outbox,
        store: PresenceStore,
        *,
        grace_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.campus = campus
        self.store = store
        self._outbox = outbox
        self._grace = grace_seconds
        self._clock = clock
        self._linger_timers: dict[PersonId, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._hooks: list[PresenceHooks] = []
        # Other services add fields to the members of a snapshot (calls: in_call).
        self._annotators: list[Annotator] = []

    def add_hooks(self, hooks: PresenceHooks) -> None:
        self._hooks.append(hooks)

    def add_annotator(self, annotate: Annotator) -> None:
        """``await annotate(persons)`` returns, per user, fields to add to that
        member in every floor snapshot (one call per snapshot, so a shared store
        answers in one round trip)."""
        self._annotators.append(annotate)

    async def _tell(self, hook: str, *args: Any) -> None:
        """Call ``hook`` on every listener. One that fails (its store away, a bug)
        is logged and does not keep the others from hearing it."""
        for hooks in self._hooks:
            try:
                await getattr(hooks, hook)(*args)
            except Exception:
                log.exception("presence_hook_failed", hook=hook, listener=type(hooks).__name__)

    async def post_floor_diff(self, floor_id: str, type_: str, data: dict[str, Any]) -> None:
        """Stamp a change other services own (calls) into a floor's sequence and send it."""
        self._post([await self.store.campus_diff(floor_id, type_, data)])

    async def close(self) -> None:
        for handle in self._linger_timers.values():
            handle.cancel()
        self._linger_timers.clear()
        for task in list(self._tasks):
            await cancel_and_wait(task)

    # --------------------------------------------------------------- sessions
    async def connect(self, sid: str, actor: Actor) -> Member:
        timer = self._linger_timers.pop(actor.person_id, None)
        if timer is not None:
            timer.cancel()
        diffs, member = await self.store.connect(sid, actor, self._clock())
        self._post(diffs)
        await self._tell("actor_seen", actor)
        return member

    async def disconnect(self, sid: str, person: PersonId) -> None:
        """The session ``sid`` of ``person`` ended; a last session starts the grace period."""
        diffs, since = await self.store.disconnect(sid, self._clock())
        self._post(diffs)
        if since is None:
            return
        if self._grace <= 0:
            await self._expire(person, since)
        else:
            loop = asyncio.get_running_loop()
            self._linger_timers[person] = loop.call_later(self._grace, self._spawn_expire, person, since)

    async def reaped(self, person: PersonId, diffs: list[FloorDiff], since: float | None) -> None:
        """A session of a node that died was removed (``diffs``): no grace period,
        the node will not come back for it; a user left with none is gone."""
        self._post(diffs)
        if since is not None:
            await self._expire(person, since)

    async def reap_linger(self, person: PersonId, since: float) -> None:
        """A grace period that a dead node had started: it ends now."""
        await self._expire(person, since)

    def _spawn_expire(self, person: PersonId, since: float) -> None:
        self._linger_timers.pop(person, None)
        task = asyncio.create_task(self._expire(person, since), name=f"expire-{person}")
        self._tasks.add(task)
        task.add_done_callback(self._expired)

    def _expired(self, task: asyncio.Task[None]) -> None:
        """An expiry task ended. One that failed is logged here: nobody awaits it."""
        self._tasks.discard(task)
        if not task.cancelled() and (failure := task.exception()) is not None:
            log.error("presence_expire_failed", task=task.get_name(), exc_info=failure)

    async def _expire(self, person: PersonId, since: float) -> None:
        try:
            diffs, gone = await self.store.expire(person, since)
        except StoreUnavailable:
            # The store is away: try again shortly; the grace period only gets longer.
            loop = asyncio.get_running_loop()
            self._linger_timers[person] = loop.call_later(_RETRY_SECONDS, self._spawn_expire, person, since)
            return
        if gone is None:
            return
        log.info("presence_gone", person=person, municipality=gone.actor.municipality_id)
        self._post(diffs)
        await self._tell("user_gone", person)
        await self._tell("presence_ended", gone.actor, since)
        await self._left(person, gone.floor_id, gone.room_id)

    # ------------------------------------------------------------------ views
    async def floor_view(self, actor: Actor, floor_id: str) -> dict[str, Any]:
        """Snapshot of a floor: rooms, doors, occupants with status, and its seq."""
        floor = self.campus.visible_floor(actor, floor_id)
        seq, members = await self.store.snapshot(floor_id)
        for annotate in self._annotators:
            extra = await annotate([member["person"] for member in members])
            for member in members:
                member.update(extra.get(member["person"], ()))
        return {
            "floor": floor.to_dict(),
            "rooms": [room.to_dict() for room in self.campus.rooms_on(floor_id)],
            "members": members,
            "seq": seq,
        }

    async def location(self, person: PersonId) -> dict[str, Any]:
        member = await self.store.member(person)
        if member is None:
            return {"floor_id": None, "room_id": None}
        return {"floor_id": member.floor_id, "room_id": member.room_id}

    async def answerers(self, floor_id: str, room_id: str) -> list[Member]:
        """Occupants who may answer the door (guests may not)."""
        return [m for m in await self.store.occupants(floor_id, room_id) if not m.actor.is_guest]

    # ----------------------------------------------------------------- moving
    async def move(
        self, actor: Actor, floor_id: str, room_id: str | None, *, admitted: bool = False
    ) -> dict[str, Any]:
        """Walk to a floor's hallway (``room_id`` None) or into a room. An admitted
        knocker is moved by the server and told so with ``presence.location``."""
        floor = self.campus.visible_floor(actor, floor_id)
        capacity: int | None = None
        if room_id is not None:
            # A room on a floor the actor may not see is not_found, like a missing one
            # (protocol.md §8): not_on_floor would confirm that it exists.
            room = self.campus.visible_room(actor, room_id)
            if room.floor_id != floor.id:
                raise DomainError(ErrorCode.NOT_ON_FLOOR)
            check_door(actor, room, admitted=admitted)
            # Owners always enter; everyone else within capacity, decided by the store.
            capacity = None if is_room_owner(actor, room) else room.capacity
        diffs, before = await self.store.move(actor.person_id, floor.id, room_id, capacity=capacity)
        self._post(diffs)
        if admitted:
            self._tell_location(actor.person_id, {"floor_id": floor.id, "room_id": room_id}, "admitted")
        if (before.floor_id, before.room_id) != (floor.id, room_id):
            await self._left(actor.person_id, before.floor_id, before.room_id)
        if before.floor_id != floor.id:
            await self._tell("user_arrived", actor.person_id, floor.id)
        return {"floor_id": floor.id, "room_id": room_id}

    async def leave_floor(self, actor: Actor) -> None:
        diffs, before = await self.store.leave_floor(actor.person_id)
        self._post(diffs)
        if before is not None:
            await self._left(actor.person_id, before.floor_id, before.room_id)

    async def remove_from_floor(self, actor: Actor, floor_id: str, reason: str) -> bool:
        """Walk ``actor`` off ``floor_id`` if they are on it (they lost the right to
        see it); their sessions hear ``presence.location`` with ``reason``."""
        member = await self.store.member(actor.person_id)
        if member is None or member.floor_id != floor_id:
            return False
        await self.leave_floor(actor)
        self._tell_location(actor.person_id, {"floor_id": None, "room_id": None}, reason)
        return True

    async def update_actor(self, actor: Actor) -> None:
        """A refreshed token: show a changed name or profile to the floor."""
        self._post(await self.store.update_actor(actor))
        await self._tell("actor_seen", actor)

    async def set_status(self, sid: str, status: Status, text: str, *, all_sessions: bool) -> dict[str, Any]:
        diffs, member = await self.store.set_status(sid, status, text, all_sessions=all_sessions)
        self._post(diffs)
        await self._tell("status_changed", member.person, member.status)
        return {"status": member.status.value, "text": member.text}

    async def _left(self, person: PersonId, floor_id: str | None, room_id: str | None) -> None:
        """``person`` is no longer in (floor, room): tell the hooks, then see if the
        room is now empty of people who may answer its door."""
        if floor_id is None or room_id is None:
            return
        await self._tell("user_left_room", person, floor_id, room_id)
        if not await self.answerers(floor_id, room_id):
            await self._tell("room_emptied", floor_id, room_id)

    # ----------------------------------------------------------------- campus
    async def campus_changed(self, change: CampusChange) -> None:
        """Campus listener: turn a floor or room change into floor diffs."""
        metrics.CAMPUS_CHANGES.labels(change.kind).inc()
        if change.remote:
            # Another node made it: it stamped and published the diffs and told the
            # people it moved. Here only what this node holds is updated.
            if change.kind == "room_deleted" and change.room is not None:
                await self._tell("room_removed", change.room)
            elif change.kind == "floor_deleted":
                await self._tell("floor_removed", change.floor_id)
            return
        store = self.store
        if change.kind == "room_upserted" and change.room is not None:
            self._post([await store.campus_diff(change.floor_id, "room", {"room": change.room.to_dict()})])
        elif change.kind == "room_deleted" and change.room is not None:
            room = change.room
            diffs, evacuated = await store.evacuate_room(room.floor_id, room.id)
            diffs.append(await store.campus_diff(room.floor_id, "room_removed", {"room_id": room.id}))
            self._post(diffs)
            for person in evacuated:
                self._tell_location(person, {"floor_id": room.floor_id, "room_id": None}, "room_removed")
                await self._tell("user_left_room", person, room.floor_id, room.id)
            await self._tell("room_removed", room)
        elif change.kind == "floor_upserted" and change.floor is not None:
            self._post([await store.campus_diff(change.floor_id, "floor", {"floor": change.floor.to_dict()})])
        elif change.kind == "floor_deleted":
            self._post([await store.campus_diff(change.floor_id, "floor_removed", {})])
            for person in await store.drop_floor(change.floor_id):
                self._tell_location(person, {"floor_id": None, "room_id": None}, "floor_removed")
            # After the floor_removed frame, nobody stays subscribed: a floor
            # recreated under this id may belong to someone else.
            self._outbox.post_floor_closed(change.floor_id)
            await self._tell("floor_removed", change.floor_id)

    def _tell_location(self, person: PersonId, where: dict[str, Any], reason: str) -> None:
        """The server moved someone (admitted, room or floor removed): tell their sessions."""
        self._outbox.post_person(person, "presence.location", {**where, "reason": reason})

    def _post(self, diffs: list[FloorDiff]) -> None:
        if diffs:
            self._outbox.post_diffs(diffs)
