"""Presence on one node: sessions, grace periods, walking, status and floor views.

Wraps the pure :class:`PresenceState` with the campus rules (visibility, doors,
capacity), the grace-period timers and the outbox. Every public method does its
checks and its state change in one synchronous step (no ``await`` in between), so
on one node no other change can slip between "the door is open and there is room"
and "the user is inside".
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import structlog

from presence_server import metrics
from presence_server.outbox import Outbox
from presence_server.presence.state import FloorDiff, PresenceState, Status, UserPresence
from rooms.access import check_enter
from rooms.actors import Actor
from rooms.campus import CampusChange, CampusService
from rooms.errors import DomainError, ErrorCode
from rooms.model import Room

__all__ = ["PresenceService", "PresenceHooks"]

log = structlog.get_logger(__name__)


class PresenceHooks:
    """What other parts (knocks, calls, the gateway) may hear about presence.
    Called synchronously, right after the change; override what you need."""

    def room_emptied(self, floor_id: str, room_id: str) -> None:
        """Nobody who may answer the door is inside any more."""

    def user_gone(self, user_id: str) -> None:
        """The grace period ran out: the user is offline."""

    def room_removed(self, room: Room) -> None:
        """Deleted or expired; its occupants are in the hallway."""

    def floor_removed(self, floor_id: str) -> None:
        """Deleted; its members are nowhere and its watchers unsubscribed."""


class PresenceService:
    def __init__(
        self,
        campus: CampusService,
        outbox: Outbox,
        *,
        grace_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.campus = campus
        self.state = PresenceState()
        self._outbox = outbox
        self._grace = grace_seconds
        self._clock = clock
        self._linger_timers: dict[str, asyncio.TimerHandle] = {}
        self._hooks: list[PresenceHooks] = []

    def add_hooks(self, hooks: PresenceHooks) -> None:
        self._hooks.append(hooks)

    def close(self) -> None:
        for handle in self._linger_timers.values():
            handle.cancel()
        self._linger_timers.clear()

    # --------------------------------------------------------------- sessions
    def connect(self, sid: str, actor: Actor) -> UserPresence:
        timer = self._linger_timers.pop(actor.user_id, None)
        if timer is not None:
            timer.cancel()
        was_online = self.state.user(actor.user_id) is not None
        self._post(self.state.connect(sid, actor, self._clock()))
        metrics.SESSIONS.inc()
        if not was_online:
            metrics.ONLINE_USERS.labels(actor.municipality_id).inc()
        user = self.state.user(actor.user_id)
        assert user is not None
        return user

    def disconnect(self, sid: str) -> None:
        if self.state.user_of(sid) is None:
            return
        diffs, lingering = self.state.disconnect(sid, self._clock())
        metrics.SESSIONS.dec()
        self._post(diffs)
        if lingering is None:
            return
        user_id, since = lingering.actor.user_id, lingering.lingering_since
        assert since is not None
        if self._grace <= 0:
            self._expire(user_id, since)
        else:
            loop = asyncio.get_running_loop()
            self._linger_timers[user_id] = loop.call_later(self._grace, self._expire, user_id, since)

    def _expire(self, user_id: str, since: float) -> None:
        self._linger_timers.pop(user_id, None)
        user = self.state.user(user_id)
        where = (user.floor_id, user.room_id) if user else (None, None)
        diffs, gone = self.state.expire(user_id, since)
        if gone is None:
            return
        metrics.ONLINE_USERS.labels(gone.actor.municipality_id).dec()
        log.info("presence_gone", user=user_id, municipality=gone.actor.municipality_id)
        self._post(diffs)
        for hooks in self._hooks:
            hooks.user_gone(user_id)
        self._check_emptied(*where)

    # ------------------------------------------------------------------ views
    def floor_view(self, actor: Actor, floor_id: str) -> dict[str, Any]:
        """Snapshot of a floor: rooms, doors, occupants with status, and its seq."""
        floor = self.campus.visible_floor(actor, floor_id)
        seq, members = self.state.snapshot(floor_id)
        return {
            "floor": floor.to_dict(),
            "rooms": [room.to_dict() for room in self.campus.rooms_on(floor_id)],
            "members": members,
            "seq": seq,
        }

    def location(self, user_id: str) -> dict[str, Any]:
        user = self.state.user(user_id)
        if user is None:
            return {"floor_id": None, "room_id": None}
        return {"floor_id": user.floor_id, "room_id": user.room_id}

    def answerers(self, floor_id: str, room_id: str) -> list[UserPresence]:
        """Occupants who may answer the door (guests may not)."""
        return [u for u in self.state.occupants_of(floor_id, room_id) if not u.actor.is_guest]

    # ----------------------------------------------------------------- moving
    def move(self, actor: Actor, floor_id: str, room_id: str | None, *, admitted: bool = False) -> dict[str, Any]:
        """Walk to a floor's hallway (``room_id`` None) or into a room. An admitted
        knocker is moved by the server and told so with ``presence.location``."""
        user = self._online(actor)
        floor = self.campus.visible_floor(actor, floor_id)
        if (user.floor_id, user.room_id) == (floor.id, room_id):
            return self.location(actor.user_id)
        if room_id is not None:
            room = self.campus.room(room_id)
            if room is None:
                raise DomainError(ErrorCode.NOT_FOUND, "room")
            if room.floor_id != floor.id:
                raise DomainError(ErrorCode.NOT_ON_FLOOR)
            check_enter(actor, room, occupants=self.state.occupants(room_id, floor_id), admitted=admitted)
        previous = (user.floor_id, user.room_id)
        self._post(self.state.move(actor.user_id, floor.id, room_id))
        if admitted:
            self._tell_location(actor.user_id, "admitted")
        self._check_emptied(*previous)
        return self.location(actor.user_id)

    def leave_floor(self, actor: Actor) -> None:
        user = self._online(actor)
        previous = (user.floor_id, user.room_id)
        self._post(self.state.leave_floor(actor.user_id))
        self._check_emptied(*previous)

    def update_actor(self, actor: Actor) -> None:
        """A refreshed token: show a changed name or profile to the floor."""
        self._post(self.state.update_actor(actor))

    def set_status(self, sid: str, status: Status, text: str, *, all_sessions: bool) -> dict[str, Any]:
        self._post(self.state.set_status(sid, status, text, all_sessions=all_sessions))
        user = self.state.user_of(sid)
        assert user is not None
        return {"status": user.status.value, "text": user.text}

    def _online(self, actor: Actor) -> UserPresence:
        user = self.state.user(actor.user_id)
        if user is None:  # only reachable through a race with the grace timer
            raise DomainError(ErrorCode.CONFLICT, "not online")
        return user

    def _check_emptied(self, floor_id: str | None, room_id: str | None) -> None:
        if floor_id is None or room_id is None:
            return
        if not self.answerers(floor_id, room_id):
            for hooks in self._hooks:
                hooks.room_emptied(floor_id, room_id)

    # ----------------------------------------------------------------- campus
    async def campus_changed(self, change: CampusChange) -> None:
        """Campus listener: turn a floor or room change into floor diffs."""
        metrics.CAMPUS_CHANGES.labels(change.kind).inc()
        state = self.state
        if change.kind == "room_upserted" and change.room is not None:
            self._post([state.campus_diff(change.floor_id, "room", {"room": change.room.to_dict()})])
        elif change.kind == "room_deleted" and change.room is not None:
            room = change.room
            evacuated = [u.actor.user_id for u in state.occupants_of(room.floor_id, room.id)]
            diffs = state.evacuate_room(room.floor_id, room.id)
            diffs.append(state.campus_diff(room.floor_id, "room_removed", {"room_id": room.id}))
            self._post(diffs)
            for user_id in evacuated:
                self._tell_location(user_id, "room_removed")
            for hooks in self._hooks:
                hooks.room_removed(room)
        elif change.kind == "floor_upserted" and change.floor is not None:
            self._post([state.campus_diff(change.floor_id, "floor", {"floor": change.floor.to_dict()})])
        elif change.kind == "floor_deleted":
            self._post([state.campus_diff(change.floor_id, "floor_removed", {})])
            for user in state.drop_floor(change.floor_id):
                self._tell_location(user.actor.user_id, "floor_removed")
            # After the floor_removed frame, nobody stays subscribed: a floor
            # recreated under this id may belong to someone else.
            self._outbox.post_floor_closed(change.floor_id)
            for hooks in self._hooks:
                hooks.floor_removed(change.floor_id)

    def _tell_location(self, user_id: str, reason: str) -> None:
        """The server moved someone (admitted, room or floor removed): tell their sessions."""
        self._outbox.post_user(user_id, "presence.location", {**self.location(user_id), "reason": reason})

    def _post(self, diffs: list[FloorDiff]) -> None:
        if diffs:
            self._outbox.post_diffs(diffs)
