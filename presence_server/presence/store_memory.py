"""Presence in this process: the pure :class:`PresenceState` behind the store contract.

Single node only: another node cannot see it. Every method runs to completion
without awaiting, so on one event loop each is atomic by construction.
"""

from __future__ import annotations

from typing import Any

from presence_server.diffs import FloorDiff
from presence_server.presence.state import PresenceState, Status, UserPresence
from presence_server.presence.store import Member
from rooms.access import room_full
from rooms.actors import Actor
from rooms.person import PersonId
from rooms.errors import DomainError, ErrorCode

__all__ = ["MemoryPresenceStore"]


def _member(user: UserPresence) -> Member:
    return Member(user.actor, user.status, user.text, user.floor_id, user.room_id, len(user.sessions))


class MemoryPresenceStore:
    def __init__(self) -> None:
        self.state = PresenceState()

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def connect(self, sid: str, actor: Actor, now: float) -> tuple[list[FloorDiff], Member]:
        diffs = self.state.connect(sid, actor, now)
        user = self.state.user(actor.person_id)
        assert user is not None
        return diffs, _member(user)

    async def disconnect(self, sid: str, now: float) -> tuple[list[FloorDiff], float | None]:
        diffs, lingering = self.state.disconnect(sid, now)
        return diffs, lingering.lingering_since if lingering else None

    async def expire(self, person: PersonId, since: float) -> tuple[list[FloorDiff], Member | None]:
        user = self.state.user(person)
        before = _member(user) if user else None
        diffs, gone = self.state.expire(person, since)
        return diffs, before if gone else None

    async def update_actor(self, actor: Actor) -> list[FloorDiff]:
        return self.state.update_actor(actor)

    async def set_status(
        self, sid: str, status: Status, text: str, *, all_sessions: bool
    ) -> tuple[list[FloorDiff], Member]:
        diffs = self.state.set_status(sid, status, text, all_sessions=all_sessions)
        user = self.state.user_of(sid)
        assert user is not None
        return diffs, _member(user)

    async def move(
        self, person: PersonId, floor_id: str, room_id: str | None, *, capacity: int | None
    ) -> tuple[list[FloorDiff], Member]:
        user = self.state.user(person)
        if user is None:
            raise DomainError(ErrorCode.CONFLICT, "not online")
        before = _member(user)
        same_room = (user.floor_id, user.room_id) == (floor_id, room_id)
        if room_id is not None and capacity is not None and not same_room:
            if self.state.occupants(room_id, floor_id) >= capacity:
                raise room_full(capacity)
        return self.state.move(person, floor_id, room_id), before

    async def leave_floor(self, person: PersonId) -> tuple[list[FloorDiff], Member | None]:
        user = self.state.user(person)
        if user is None:
            return [], None
        before = _member(user)
        return self.state.leave_floor(person), before

    async def member(self, person: PersonId) -> Member | None:
        user = self.state.user(person)
        return _member(user) if user else None

    async def snapshot(self, floor_id: str) -> tuple[int, list[dict[str, Any]]]:
        return self.state.snapshot(floor_id)

    async def occupants(self, floor_id: str, room_id: str | None) -> list[Member]:
        return [_member(u) for u in self.state.occupants_of(floor_id, room_id)]

    async def campus_diff(self, floor_id: str, type_: str, data: dict[str, Any]) -> FloorDiff:
        return self.state.campus_diff(floor_id, type_, data)

    async def evacuate_room(self, floor_id: str, room_id: str) -> tuple[list[FloorDiff], list[PersonId]]:
        moved = [u.actor.person_id for u in self.state.occupants_of(floor_id, room_id)]
        return self.state.evacuate_room(floor_id, room_id), moved

    async def drop_floor(self, floor_id: str) -> list[PersonId]:
        return [u.actor.person_id for u in self.state.drop_floor(floor_id)]
