"""Where presence lives: the contract every presence store keeps.

A presence store holds sessions, each user's effective status and location,
each floor's members, room occupancy and sequence number. Each method is one
use case, atomic for the floor it changes: the check (capacity), the change and
the sequence numbers of the diffs it returns cannot be separated by another
change. The caller delivers the returned diffs to its local watchers; a shared
store (Redis) also publishes them to the other nodes as part of the same step.

Rules (the same for every store; docs/protocol.md states them for clients):

* one presence per person (municipality, user id) however many sessions; a new session inherits the
  user's effective status; effective status = highest of the sessions'
  (do_not_disturb > busy > available > away), text from the most recent setter;
* a user whose last session ends lingers (no diff) until :meth:`expire` with
  the same ``since``;
* location is (floor, room); room ``None`` is the floor's hallway; a move to the
  same place changes nothing and returns no diff;
* a floor's diffs carry consecutive sequence numbers; a deleted floor keeps its
  sequence so a floor recreated under the same id continues it.

Implementations: :mod:`presence_server.presence.store_memory` (one node) and
:mod:`presence_server.presence.store_redis` (cluster mode; see docs/cluster.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

from presence_server.diffs import FloorDiff
from presence_server.presence.state import Status
from rooms.actors import Actor
from rooms.person import PersonId

__all__ = ["Member", "PresenceStore", "ClusterPresenceStore", "Placer"]


@dataclass(frozen=True, slots=True)
class Member:
    """A user's presence as a store returns it (a copy, never live state)."""

    actor: Actor
    status: Status
    text: str
    floor_id: str | None
    room_id: str | None
    sessions: int  # open sessions on all nodes; 0 while lingering

    @property
    def person(self) -> PersonId:
        return self.actor.person_id

    def to_wire(self) -> dict[str, Any]:
        """The entry watchers of a floor see for this user."""
        return {**self.actor.public_dict(), "status": self.status.value, "text": self.text, "room_id": self.room_id}


class PresenceStore(Protocol):
    """See the module docstring. An outage of a shared store raises
    :class:`~rooms.errors.StoreUnavailable` from any method."""

    async def open(self) -> None:
        """Connect / prepare. Idempotent."""

    async def close(self) -> None:
        """Release resources. Idempotent."""

    # ------------------------------------------------------------- sessions
    async def connect(self, sid: str, actor: Actor, now: float) -> tuple[list[FloorDiff], Member]:
        """Add a session (a changed name or profile shows as a ``joined``)."""

    async def disconnect(self, sid: str, now: float) -> tuple[list[FloorDiff], float | None]:
        """Remove a session. Returns its diffs (the merged status may change) and,
        if it was the user's last session, the ``since`` of the linger that began."""

    async def expire(self, person: PersonId, since: float) -> tuple[list[FloorDiff], Member | None]:
        """Forget a user still lingering since ``since``; returns who left (with the
        location they left), or None if they came back or lingered again later."""

    async def update_actor(self, actor: Actor) -> list[FloorDiff]:
        """A refreshed token: a new name or profile is shown on the user's floor."""

    async def set_status(
        self, sid: str, status: Status, text: str, *, all_sessions: bool
    ) -> tuple[list[FloorDiff], Member]:
        """Set the status of one session or of all the user's sessions."""

    # ------------------------------------------------------------- location
    async def move(
        self, person: PersonId, floor_id: str, room_id: str | None, *, capacity: int | None
    ) -> tuple[list[FloorDiff], Member]:
        """Put a user at (floor, room). ``capacity``: the room's limit, checked
        atomically with the move (``room_full``); None lets them in regardless
        (owners). Returns the diffs and the user *before* the move."""

    async def leave_floor(self, person: PersonId) -> tuple[list[FloorDiff], Member | None]:
        """Take a user off their floor; returns the diffs and the user before."""

    # ---------------------------------------------------------------- reads
    async def member(self, person: PersonId) -> Member | None: ...

    async def snapshot(self, floor_id: str) -> tuple[int, list[dict[str, Any]]]:
        """(seq, members) of a floor, consistent: no diff can fall between the two."""

    async def occupants(self, floor_id: str, room_id: str | None) -> list[Member]: ...

    # --------------------------------------------------------------- campus
    async def campus_diff(self, floor_id: str, type_: str, data: dict[str, Any]) -> FloorDiff:
        """Stamp a change that is not presence itself (a room changed or removed, a
        member joining a call) into the floor's sequence."""

    async def evacuate_room(self, floor_id: str, room_id: str) -> tuple[list[FloorDiff], list[PersonId]]:
        """Move everyone in a room to the hallway; returns the diffs and who moved."""

    async def drop_floor(self, floor_id: str) -> list[PersonId]:
        """Empty a deleted floor (its members end up nowhere); returns who was on it."""


#: ``place(floor, room)``: where a remembered location stands now (the campus may
#: have changed): the floor and room, the floor's hallway, or ``(None, None)``.
Placer = Callable[[str | None, str | None], tuple[str | None, str | None]]


class ClusterPresenceStore(PresenceStore, Protocol):
    """What cluster mode needs of a presence store besides the contract above.

    A shared store knows which node registered each session and which grace
    periods each node started, so the survivors can clean up after a node that
    died (:class:`~presence_server.cluster.membership.Membership`) and a node
    can compare its sessions with the store's after an outage. Only a store
    every node sees can keep this: the memory store has no such side.
    """

    @property
    def node_id(self) -> str:
        """The node whose sessions this store object registers."""

    async def node_sessions(self, node_id: str) -> list[tuple[PersonId, str]]:
        """(person, session id) of every session ``node_id`` registered and has not removed."""

    async def node_lingering(self, node_id: str) -> list[tuple[PersonId, float]]:
        """(person, since) of the grace periods ``node_id`` started and has not ended."""

    async def reap_session(
        self, node_id: str, person: PersonId, sid: str, now: float
    ) -> tuple[list[FloorDiff], float | None]:
        """Remove a session a dead node held, like :meth:`disconnect` (same return)."""

    async def forget_node(self, node_id: str) -> None:
        """Drop the node's lists (after its sessions were removed)."""

    # ------------------------------------------------ recovery (docs/cluster.md)
    async def restore(
        self, sid: str, actor: Actor, now: float, *, place: Placer
    ) -> tuple[list[FloorDiff], Member | None]:
        """Register again a live session of this node that the store no longer holds
        (fenced, or Redis lost its data), with what this node last knew of it.
        ``None`` if it was still registered."""

    async def raise_seq(self, floor_id: str, delivered: int) -> int:
        """Lift the floor's seq above ``delivered`` unless it is above it; returns it."""

    async def floor_seq(self, floor_id: str) -> int:
        """The floor's current sequence number."""

    def keep_only(self, sids: set[str]) -> None:
        """Forget what is kept of sessions that ended while the store could not hear it."""
