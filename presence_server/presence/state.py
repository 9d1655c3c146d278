"""Presence as a pure data structure.

Every mutating method is synchronous, never awaits, and returns the floor diffs the
change implies, already stamped with the floor's next sequence number. Because
nothing can interleave inside a method, a change and its sequence number are
atomic on one node; and because nothing here does I/O, the hard cases (two tabs,
reloads within the grace period, a room deleted under its occupants) are tested
without sockets.

Rules (documented in docs/protocol.md):

* One presence per person (municipality, user id), however many sessions. A user's effective status is the
  highest-priority status among their sessions: do_not_disturb > busy > available
  > away; its text comes from the session that set that status most recently.
* A new session inherits the user's effective status, so opening a second tab or
  reloading changes nothing others can see.
* A user whose last session drops lingers (no diff) until :meth:`expire` is called
  after the grace period; a session that reconnects first makes the linger invisible.
* Location is (floor, room); room ``None`` is the floor's hallway. Access rules
  (doors, capacity) are checked by the caller *before* :meth:`move`, in the same
  synchronous step, so the check and the move cannot be separated by another change.
"""

from __future__ import annotations

import enum
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, Iterable

from presence_server.diffs import FloorDiff
from rooms.actors import Actor
from rooms.person import PersonId

__all__ = ["Status", "STATUS_PRIORITY", "UserPresence", "PresenceState"]


class Status(str, enum.Enum):
    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    DO_NOT_DISTURB = "do_not_disturb"


#: Merge rule across a user's sessions: the highest wins.
STATUS_PRIORITY: Final[dict[Status, int]] = {
    Status.DO_NOT_DISTURB: 3,
    Status.BUSY: 2,
    Status.AVAILABLE: 1,
    Status.AWAY: 0,
}


@dataclass(slots=True)
class _Session:
    status: Status
    text: str
    set_order: int  # tie-break: the most recent setter of the winning status wins


@dataclass(slots=True)
class UserPresence:
    actor: Actor
    sessions: dict[str, _Session] = field(default_factory=dict)
    status: Status = Status.AVAILABLE  # effective, derived from sessions (cached)
    text: str = ""
    floor_id: str | None = None
    room_id: str | None = None
    lingering_since: float | None = None

    def member(self) -> dict[str, Any]:
        """The entry watchers of a floor see for this user."""
        return {
            **self.actor.public_dict(),
            "status": self.status.value,
            "text": self.text,
            "room_id": self.room_id,
        }


@dataclass(slots=True)
class _Floor:
    seq: int = 0
    members: dict[PersonId, UserPresence] = field(default_factory=dict)
    occupancy: Counter[str] = field(default_factory=Counter)  # room id -> users inside


class PresenceState:
    """All presence on one node. See the module docstring for the rules."""

    def __init__(self) -> None:
        self._users: dict[PersonId, UserPresence] = {}
        self._session_user: dict[str, PersonId] = {}
        self._floors: dict[str, _Floor] = {}
        self._order = itertools.count(1)

    # ------------------------------------------------------------------ reads
    def user(self, person: PersonId) -> UserPresence | None:
        return self._users.get(person)

    def user_of(self, sid: str) -> UserPresence | None:
        person = self._session_user.get(sid)
        return self._users.get(person) if person is not None else None

    def users(self) -> Iterable[UserPresence]:
        return self._users.values()

    def session_count(self) -> int:
        return len(self._session_user)

    def seq(self, floor_id: str) -> int:
        floor = self._floors.get(floor_id)
        return floor.seq if floor else 0

    def occupants(self, room_id: str, floor_id: str) -> int:
        floor = self._floors.get(floor_id)
        return floor.occupancy[room_id] if floor else 0

    def occupants_of(self, floor_id: str, room_id: str | None) -> list[UserPresence]:
        floor = self._floors.get(floor_id)
        if floor is None:
            return []
        return [u for u in floor.members.values() if u.room_id == room_id]

    def snapshot(self, floor_id: str) -> tuple[int, list[dict[str, Any]]]:
        """(seq, members) of a floor, consistent: no diff can fall between the two."""
        floor = self._floors.get(floor_id)
        if floor is None:
            return 0, []
        return floor.seq, [u.member() for u in floor.members.values()]

    # --------------------------------------------------------------- sessions
    def connect(self, sid: str, actor: Actor, now: float) -> list[FloorDiff]:
        """Add a session. Re-connecting within the grace period emits nothing."""
        if sid in self._session_user:
            raise ValueError(f"session {sid} already connected")
        user = self._users.get(actor.person_id)
        if user is None:
            user = UserPresence(actor=actor)
            self._users[actor.person_id] = user
        diffs = self.update_actor(actor)
        user.sessions[sid] = _Session(user.status, user.text, next(self._order))
        user.lingering_since = None
        self._session_user[sid] = actor.person_id
        return diffs

    def update_actor(self, actor: Actor) -> list[FloorDiff]:
        """A fresh token may carry a new name or profile: show it (as a join)."""
        user = self._users.get(actor.person_id)
        if user is None or user.actor == actor:
            return []
        user.actor = actor
        if user.floor_id is None:
            return []
        return [self._stamp(user.floor_id, "joined", {"member": user.member()})]

    def disconnect(self, sid: str, now: float) -> tuple[list[FloorDiff], UserPresence | None]:
        """Remove a session. Returns the diffs and, if it was the user's last
        session, the user now lingering (the caller schedules :meth:`expire`)."""
        person = self._session_user.pop(sid, None)
        if person is None:
            return [], None
        user = self._users[person]
        del user.sessions[sid]
        if not user.sessions:
            # Keep the last effective status: a reload must not flicker.
            user.lingering_since = now
            return [], user
        return self._recompute_status(user), None

    def expire(self, person: PersonId, lingering_since: float) -> tuple[list[FloorDiff], UserPresence | None]:
        """Forget a user whose grace period ran out. No-op if they came back (or
        lingered again later, which ``lingering_since`` tells apart)."""
        user = self._users.get(person)
        if user is None or user.sessions or user.lingering_since != lingering_since:
            return [], None
        diffs = self._leave_floor(user)
        del self._users[person]  # privacy: nothing is kept once they are gone
        return diffs, user

    # ----------------------------------------------------------------- status
    def set_status(self, sid: str, status: Status, text: str, *, all_sessions: bool) -> list[FloorDiff]:
        user = self.user_of(sid)
        if user is None:
            raise KeyError(sid)
        order = next(self._order)
        targets = user.sessions.values() if all_sessions else (user.sessions[sid],)
        for session in targets:
            session.status, session.text, session.set_order = status, text, order
        return self._recompute_status(user)

    def _recompute_status(self, user: UserPresence) -> list[FloorDiff]:
        best = max(
            user.sessions.values(),
            key=lambda s: (STATUS_PRIORITY[s.status], s.set_order),
        )
        if (best.status, best.text) == (user.status, user.text):
            return []
        user.status, user.text = best.status, best.text
        if user.floor_id is None:
            return []
        data = {"person": user.actor.person_id, "status": user.status.value, "text": user.text}
        return [self._stamp(user.floor_id, "status", data)]

    # --------------------------------------------------------------- location
    def move(self, person: PersonId, floor_id: str, room_id: str | None) -> list[FloorDiff]:
        """Put a user at (floor, room). Same place: no diff."""
        user = self._users[person]
        if user.floor_id == floor_id:
            if user.room_id == room_id:
                return []
            floor = self._floors[floor_id]
            if user.room_id is not None:
                floor.occupancy[user.room_id] -= 1
            if room_id is not None:
                floor.occupancy[room_id] += 1
            previous, user.room_id = user.room_id, room_id
            data = {"person": person, "from": previous, "room_id": room_id}
            return [self._stamp(floor_id, "moved", data)]
        diffs = self._leave_floor(user)
        floor = self._floors.setdefault(floor_id, _Floor())
        user.floor_id, user.room_id = floor_id, room_id
        floor.members[person] = user
        if room_id is not None:
            floor.occupancy[room_id] += 1
        diffs.append(self._stamp(floor_id, "joined", {"member": user.member()}))
        return diffs

    def leave_floor(self, person: PersonId) -> list[FloorDiff]:
        user = self._users.get(person)
        return self._leave_floor(user) if user else []

    def _leave_floor(self, user: UserPresence) -> list[FloorDiff]:
        if user.floor_id is None:
            return []
        floor = self._floors[user.floor_id]
        if user.room_id is not None:
            floor.occupancy[user.room_id] -= 1
        del floor.members[user.actor.person_id]
        diff = self._stamp(user.floor_id, "left", {"person": user.actor.person_id})
        user.floor_id = user.room_id = None
        return [diff]

    # ----------------------------------------------------------------- campus
    def campus_diff(self, floor_id: str, type_: str, data: dict[str, Any]) -> FloorDiff:
        """Stamp a campus change (room changed, removed...) into the floor's sequence."""
        return self._stamp(floor_id, type_, data)

    def evacuate_room(self, floor_id: str, room_id: str) -> list[FloorDiff]:
        """Move everyone in a room to the hallway (the room is being removed)."""
        diffs: list[FloorDiff] = []
        for user in self.occupants_of(floor_id, room_id):
            diffs.extend(self.move(user.actor.person_id, floor_id, None))
        return diffs

    def drop_floor(self, floor_id: str) -> list[UserPresence]:
        """Empty a deleted floor; its members end up nowhere. Returns them.

        The floor's sequence number is kept, so a floor recreated under the same
        id continues it and no old view can mistake its diffs for old ones."""
        floor = self._floors.get(floor_id)
        if floor is None:
            return []
        members = list(floor.members.values())
        for user in members:
            user.floor_id = user.room_id = None
        floor.members.clear()
        floor.occupancy.clear()
        return members

    # -------------------------------------------------------------- internals
    def _stamp(self, floor_id: str, type_: str, data: dict[str, Any]) -> FloorDiff:
        floor = self._floors.setdefault(floor_id, _Floor())
        floor.seq += 1
        return FloorDiff(floor_id, floor.seq, type_, data)
