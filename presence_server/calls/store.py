"""Where calls, rings and notes live: the contract every call store keeps.

:class:`CallStore` is :class:`~signalling.calls.CallBook`'s contract made
asynchronous, so a cluster can keep it in Redis
(:class:`~presence_server.calls.store_redis.RedisCallStore`) while the call
service stays the same. Every method is atomic: whatever number of nodes ask at
once, a ring has exactly one resolution, a room has at most one call, a user is
in at most one call, and a mesh never exceeds ``max_mesh``. Refusals are
:class:`~rooms.errors.DomainError` with the codes :class:`CallBook` documents.

:class:`~presence_server.calls.store_memory.MemoryCallStore` is the book itself
behind the contract: single node only. One contract suite
(``tests/test_call_store_contract.py``) runs against both.
"""

from __future__ import annotations

from typing import Iterable, Protocol

from rooms.actors import Actor
from rooms.person import PersonId
from signalling.calls import Call, Note, Ring, RingResolution, RoomJoin

__all__ = ["CallStore"]


class CallStore(Protocol):
    """Calls, pending rings and notes, shared by every node that uses the store."""

    max_mesh: int
    ring_timeout: float

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def call_of(self, person: PersonId) -> Call | None: ...

    async def calls_of(self, persons: Iterable[PersonId]) -> dict[PersonId, str]:
        """Call id per user, for those of ``persons`` who are in a call (one round trip)."""
        ...

    async def stats(self) -> tuple[int, int]:
        """(active calls, people in a call) across everything the store holds."""
        ...

    async def join_room_call(self, person: PersonId, room_id: str, now: float) -> RoomJoin: ...

    async def leave(self, person: PersonId, now: float) -> Call | None: ...

    async def leave_room(self, person: PersonId, room_id: str, now: float) -> Call | None:
        """Leave ``room_id``'s call only (not a direct call taken while standing there)."""
        ...

    async def check_relay(self, sender: PersonId, recipient: PersonId, call_id: str) -> None:
        """``not_in_call`` unless both are members of the call ``call_id``
        (``forbidden`` for a message to oneself)."""
        ...

    async def ring(self, ring_id: str, caller: Actor, callee: PersonId, *, callee_dnd: bool, now: float) -> Ring: ...

    async def answer(self, ring_id: str, callee: PersonId, accept: bool, now: float) -> RingResolution: ...

    async def cancel(self, ring_id: str, caller: PersonId, now: float) -> RingResolution: ...

    async def due(self, now: float) -> list[str]:
        """Ids of pending rings whose time is up; resolve each with :meth:`expire`."""
        ...

    async def expire(self, ring_id: str, now: float) -> RingResolution: ...

    async def callee_unavailable(self, callee: PersonId, now: float) -> list[RingResolution]: ...

    async def cancel_all(self, caller: PersonId, now: float) -> list[RingResolution]: ...

    async def leave_note(self, caller: Actor, callee: PersonId, text: str, now: float) -> Note: ...

    async def take_notes(self, callee: PersonId) -> list[Note]: ...
