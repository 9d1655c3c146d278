"""Calls, rings and notes in this process: the pure
:class:`~signalling.calls.CallBook` behind the
:class:`~presence_server.calls.store.CallStore` contract.

Single node only: another node cannot see these calls. Every method runs to
completion without awaiting, so on one event loop each is atomic by construction.
"""

from __future__ import annotations

from typing import Iterable

from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId
from signalling.calls import Call, CallBook, Note, Ring, RingResolution, RoomJoin

__all__ = ["MemoryCallStore"]


class MemoryCallStore:
    """:class:`CallStore` in this process's memory (single node only)."""

    def __init__(self, *, max_mesh: int, ring_timeout: float, sfu: bool = False) -> None:
        self.book = CallBook(max_mesh=max_mesh, ring_timeout=ring_timeout, sfu=sfu)
        self.max_mesh = max_mesh
        self.ring_timeout = ring_timeout

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def call_of(self, person: PersonId) -> Call | None:
        return self.book.call_of(person)

    async def calls_of(self, persons: Iterable[PersonId]) -> dict[PersonId, str]:
        found = {person: self.book.call_of(person) for person in persons}
        return {person: call.id for person, call in found.items() if call is not None}

    async def stats(self) -> tuple[int, int]:
        calls = self.book.calls()
        return len(calls), sum(len(c.members) for c in calls)

    async def join_room_call(self, person: PersonId, room_id: str, now: float) -> RoomJoin:
        return self.book.join_room_call(person, room_id, now)

    async def leave(self, person: PersonId, now: float) -> Call | None:
        return self.book.leave(person, now)

    async def leave_room(self, person: PersonId, room_id: str, now: float) -> Call | None:
        return self.book.leave_room(person, room_id, now)

    async def check_relay(self, sender: PersonId, recipient: PersonId, call_id: str) -> None:
        call = self.book.call_of(sender)
        if call is None or call.id != call_id:
            raise DomainError(ErrorCode.NOT_IN_CALL)
        self.book.check_relay(sender, recipient)

    async def ring(self, ring_id: str, caller: Actor, callee: PersonId, *, callee_dnd: bool, now: float) -> Ring:
        return self.book.ring(ring_id, caller, callee, callee_dnd=callee_dnd, now=now)

    async def answer(self, ring_id: str, callee: PersonId, accept: bool, now: float) -> RingResolution:
        return self.book.answer(ring_id, callee, accept, now)

    async def cancel(self, ring_id: str, caller: PersonId, now: float) -> RingResolution:
        return self.book.cancel(ring_id, caller, now)

    async def due(self, now: float) -> list[str]:
        return [ring.id for ring in self.book.due(now)]

    async def expire(self, ring_id: str, now: float) -> RingResolution:
        return self.book.expire(ring_id, now)

    async def callee_unavailable(self, callee: PersonId, now: float) -> list[RingResolution]:
        return self.book.callee_unavailable(callee, now)

    async def cancel_all(self, caller: PersonId, now: float) -> list[RingResolution]:
        return self.book.cancel_all(caller, now)

    async def leave_note(self, caller: Actor, callee: PersonId, text: str, now: float) -> Note:
        return self.book.leave_note(caller, callee, text, now)

    async def take_notes(self, callee: PersonId) -> list[Note]:
        return self.book.take_notes(callee)
