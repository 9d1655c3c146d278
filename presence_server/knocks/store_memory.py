"""Pending knocks in this process: the pure :class:`~rooms.knocks.KnockBook`
behind the :class:`~presence_server.knocks.store.KnockStore` contract.

Single node only: another node cannot see these knocks. Every method runs to
completion without awaiting, so on one event loop each is atomic by construction.
"""

from __future__ import annotations

from rooms.actors import Actor
from rooms.knocks import Knock, KnockBook, KnockOutcome, Resolution
from rooms.person import PersonId

__all__ = ["MemoryKnockStore"]


class MemoryKnockStore:
    """One node: the pure :class:`KnockBook` behind the async contract."""

    def __init__(self, *, timeout: float, cooldown: float) -> None:
        self.book = KnockBook(timeout=timeout, cooldown=cooldown)
        self.timeout = timeout
        self.cooldown = cooldown

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def add(
        self,
        knock_id: str,
        knocker: Actor,
        *,
        room_id: str,
        floor_id: str,
        recipients: frozenset[PersonId],
        to_owners: bool,
        message: str,
        now: float,
    ) -> Knock:
        return self.book.open(
            knock_id, knocker, room_id=room_id, floor_id=floor_id, recipients=recipients,
            to_owners=to_owners, message=message, now=now,
        )

    async def get(self, knock_id: str) -> Knock:
        return self.book.get(knock_id)

    async def claim(self, knock_id: str) -> Knock:
        return self.book.claim(knock_id)

    async def release(self, knock_id: str) -> None:
        self.book.release(knock_id)

    async def resolve(
        self,
        knock_id: str,
        outcome: KnockOutcome,
        *,
        now: float,
        by: PersonId | None = None,
        reason: str | None = None,
        claimed: bool = False,
    ) -> Resolution:
        resolution = self.book.resolve(knock_id, outcome, now=now, by=by, reason=reason, claimed=claimed)
        self.book.forget_cooldowns(now)
        return resolution

    async def pending_of(self, person: PersonId) -> Knock | None:
        return self.book.pending_of(person)

    async def pending_for_room(self, floor_id: str, room_id: str) -> list[Knock]:
        return self.book.pending_for_room(room_id)

    async def incoming(self, person: PersonId) -> list[Knock]:
        return [k for k in self.book.pending() if person in k.recipients]

    async def due(self, now: float) -> list[Knock]:
        return self.book.due(now)
