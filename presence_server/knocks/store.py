"""Where pending knocks live: the contract every knock store keeps.

Contract:

* **One outcome.** :meth:`KnockStore.resolve` succeeds for exactly one caller
  per knock, cluster-wide; every other caller gets ``knock_resolved`` (or
  ``not_found`` for an id that never existed). A knock under :meth:`claim` is
  refused to every other caller until :meth:`resolve` (with ``claimed``) or
  :meth:`release`.
* **One pending knock per knocker** (``already_knocking``), and after a human
  decline (``outcome=declined`` with ``by`` set) a cool-down per (knocker,
  room) of ``cooldown`` seconds (``knock_cooldown`` with ``retry_after``).
* **Expiry.** :meth:`due` lists unclaimed knocks past ``expires_at``; whoever
  resolves one first as expired wins, like any answer.
* Knock ids name their floor (``k-<token>@<floor>``) so a store can find a
  knock's home without an index.

Implementations: :class:`~presence_server.knocks.store_memory.MemoryKnockStore`
(one node: the pure :class:`rooms.knocks.KnockBook`) and
:class:`~presence_server.knocks.store_redis.RedisKnockStore` (cluster mode).
"""

from __future__ import annotations

import secrets
from typing import Protocol

from rooms.actors import Actor
from rooms.errors import DomainError, ErrorCode
from rooms.knocks import Knock, KnockOutcome, Resolution
from rooms.person import PersonId

__all__ = ["KnockStore", "new_knock_id", "floor_of"]


def new_knock_id(floor_id: str) -> str:
    return f"k-{secrets.token_urlsafe(9)}@{floor_id}"


def floor_of(knock_id: str) -> str:
    """The floor a knock id names; ``not_found`` for an id that names none."""
    _, at, floor_id = knock_id.rpartition("@")
    if not at or not floor_id:
        raise DomainError(ErrorCode.NOT_FOUND)
    return floor_id


class KnockStore(Protocol):
    timeout: float
    cooldown: float

    async def open(self) -> None: ...

    async def close(self) -> None: ...

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
        """Open a knock (``already_knocking``, ``knock_cooldown``)."""

    async def get(self, knock_id: str) -> Knock:
        """A pending, unclaimed knock (``knock_resolved``, ``not_found``)."""

    async def claim(self, knock_id: str) -> Knock: ...

    async def release(self, knock_id: str) -> None: ...

    async def resolve(
        self,
        knock_id: str,
        outcome: KnockOutcome,
        *,
        now: float,
        by: PersonId | None = None,
        reason: str | None = None,
        claimed: bool = False,
    ) -> Resolution: ...

    async def pending_of(self, person: PersonId) -> Knock | None:
        """The knocker's own pending knock."""

    async def pending_for_room(self, floor_id: str, room_id: str) -> list[Knock]: ...

    async def incoming(self, person: PersonId) -> list[Knock]:
        """Pending knocks the user was asked to answer."""

    async def due(self, now: float) -> list[Knock]:
        """Unclaimed pending knocks whose time is up."""
