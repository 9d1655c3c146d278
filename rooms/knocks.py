"""Doorknocks as a pure state machine.

A knock is *pending* until exactly one of admitted, declined, cancelled or expired
resolves it. :meth:`KnockBook.resolve` is synchronous: the first caller takes the
knock out of the book and every later caller gets ``knock_resolved``. That is the
whole "exactly one outcome" guarantee on one node; a cluster store gives the same
guarantee with an atomic compare-and-delete.

Policy kept here: one pending knock per knocker, and a cool-down per (knocker,
room) after a *human* decline, so a declined knocker cannot spam the door.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.person import PersonId

__all__ = ["KnockOutcome", "Knock", "Resolution", "KnockBook"]

_RECENT_LIMIT: Final = 4096  # resolved ids remembered, to tell "already answered" from "never existed"


class KnockOutcome(str, enum.Enum):
    ADMITTED = "admitted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Knock:
    id: str
    knocker: Actor
    room_id: str
    floor_id: str
    message: str
    created_at: float
    expires_at: float
    recipients: frozenset[PersonId]  # persons notified: the occupants, or the owners of an empty room
    to_owners: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "knock_id": self.id,
            "room_id": self.room_id,
            "floor_id": self.floor_id,
            "knocker": self.knocker.public_dict(),
            "message": self.message,
            "expires_at": self.expires_at,
            "to_owners": self.to_owners,
        }


@dataclass(frozen=True, slots=True)
class Resolution:
    knock: Knock
    outcome: KnockOutcome
    by: PersonId | None = None  # whoever answered or cancelled
    reason: str | None = None  # e.g. "room_empty", "room_removed", "knocker_left"

    def to_wire(self) -> dict[str, Any]:
        return {
            "knock_id": self.knock.id,
            "room_id": self.knock.room_id,
            "floor_id": self.knock.floor_id,
            "knocker_id": self.knock.knocker.person_id,
            "outcome": self.outcome.value,
            "by": self.by,
            "reason": self.reason,
        }


class KnockBook:
    """Pending knocks on one node. Never awaits; the caller supplies ``now``."""

    def __init__(self, *, timeout: float, cooldown: float) -> None:
        self.timeout = timeout
        self.cooldown = cooldown
        self._pending: dict[str, Knock] = {}
        self._claimed: set[str] = set()  # being admitted: no other answer may win meanwhile
        self._by_knocker: dict[PersonId, str] = {}
        self._cooldown_until: dict[tuple[PersonId, str], float] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pending)

    def get(self, knock_id: str) -> Knock:
        knock = self._pending.get(knock_id)
        if knock_id in self._claimed:
            raise DomainError(ErrorCode.KNOCK_RESOLVED)
        if knock is None:
            code = ErrorCode.KNOCK_RESOLVED if knock_id in self._recent else ErrorCode.NOT_FOUND
            raise DomainError(code)
        return knock

    def pending_of(self, person: PersonId) -> Knock | None:
        knock_id = self._by_knocker.get(person)
        return self._pending[knock_id] if knock_id else None

    def pending_for_room(self, room_id: str) -> list[Knock]:
        return [k for k in self._pending.values() if k.room_id == room_id]

    def pending(self) -> list[Knock]:
        return list(self._pending.values())

    def open(
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
        if knocker.person_id in self._by_knocker:
            raise DomainError(ErrorCode.ALREADY_KNOCKING)
        until = self._cooldown_until.get((knocker.person_id, room_id))
        if until is not None:
            if until > now:
                raise DomainError(ErrorCode.KNOCK_COOLDOWN, retry_after=round(until - now, 1))
            del self._cooldown_until[(knocker.person_id, room_id)]
        knock = Knock(
            id=knock_id,
            knocker=knocker,
            room_id=room_id,
            floor_id=floor_id,
            message=message,
            created_at=now,
            expires_at=now + self.timeout,
            recipients=recipients,
            to_owners=to_owners,
        )
        self._pending[knock_id] = knock
        self._by_knocker[knocker.person_id] = knock_id
        return knock

    def claim(self, knock_id: str) -> Knock:
        """Reserve a knock for an answer that needs a moment (an admit moves the
        knocker first). Until :meth:`resolve` or :meth:`release`, every other
        caller gets ``knock_resolved``."""
        knock = self.get(knock_id)
        self._claimed.add(knock_id)
        return knock

    def release(self, knock_id: str) -> None:
        """The claimed answer failed (the room filled up): the knock is pending again."""
        self._claimed.discard(knock_id)

    def resolve(
        self,
        knock_id: str,
        outcome: KnockOutcome,
        *,
        now: float,
        by: PersonId | None = None,
        reason: str | None = None,
        claimed: bool = False,
    ) -> Resolution:
        """Take the knock out of the book. Raises ``knock_resolved`` for every caller
        but the first (``claimed``: the caller holds the claim from :meth:`claim`)."""
        if claimed and knock_id in self._claimed:
            self._claimed.discard(knock_id)
            knock = self._pending[knock_id]
        else:
            knock = self.get(knock_id)
        del self._pending[knock_id]
        del self._by_knocker[knock.knocker.person_id]
        self._recent[knock_id] = None
        if len(self._recent) > _RECENT_LIMIT:
            self._recent.popitem(last=False)
        if outcome is KnockOutcome.DECLINED and by is not None and self.cooldown > 0:
            self._cooldown_until[(knock.knocker.person_id, knock.room_id)] = now + self.cooldown
        return Resolution(knock, outcome, by=by, reason=reason)

    def due(self, now: float) -> list[Knock]:
        """Unclaimed knocks whose time is up (the caller resolves them as expired)."""
        return [k for k in self._pending.values() if k.expires_at <= now and k.id not in self._claimed]

    def forget_cooldowns(self, now: float) -> None:
        """Drop elapsed cool-downs so the map cannot grow without bound."""
        for key in [k for k, until in self._cooldown_until.items() if until <= now]:
            del self._cooldown_until[key]
