"""The campus service's platform part: municipalities and cooperations added or
changed at runtime by platform admins (presence_server/tenants/platform.py).

A mixin of :class:`rooms.campus.CampusService`, like :mod:`rooms.campus_projects`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

from rooms.campus_state import CampusState
from rooms.changes import CampusChange
from rooms.errors import DomainError, ErrorCode
from rooms.model import Cooperation, Municipality
from rooms.store import CampusStore
from rooms.validation import check_id, check_name, invalid

__all__ = ["CampusTenants"]

#: Municipalities in one cooperation at most.
_MEMBERS_MAX: Final = 200


class CampusTenants:
    """Municipalities and cooperations: system actions, authorised by the caller."""

    _write_lock: asyncio.Lock
    _state: CampusState
    _store: CampusStore

    if TYPE_CHECKING:  # provided by CampusService

        def _require_started(self) -> None: ...

        async def _emit(self, change: CampusChange) -> None: ...

    # -- municipalities and cooperations (platform administration) ----------
    #
    # System actions like expire_rooms: the caller authorises (platform admins,
    # presence_server/tenants/platform.py). Cooperations are few and rarely
    # changed; as with floors and rooms, two nodes writing the same one at once
    # end with the last write.

    async def upsert_municipality(self, municipality_id: str, name: str) -> Municipality:
        """Add a municipality to the campus or rename it.

        Listeners get ``municipality_upserted`` even when nothing changed: what goes
        with a municipality outside the campus (its identity provider settings) may
        have, and other nodes re-read it on this event.
        """
        async with self._write_lock:
            self._require_started()
            municipality = Municipality(check_id(municipality_id, "id"), check_name(name))
            await self._store.put_municipality(municipality)
            self._state.put_municipality(municipality)
            await self._emit(CampusChange("municipality_upserted", "", municipality=municipality))
            return municipality

    async def create_cooperation(self, cooperation_id: str, name: str, members: Sequence[str]) -> Cooperation:
        """A new cooperation of known municipalities; ``CONFLICT`` if the id is taken."""
        async with self._write_lock:
            self._require_started()
            check_id(cooperation_id, "id")
            if cooperation_id in self._state.cooperations:
                raise DomainError(ErrorCode.CONFLICT, f"id: {cooperation_id!r} already exists", field="id")
            cooperation = Cooperation(cooperation_id, check_name(name), self._check_members(members))
            await self._put_cooperation(cooperation)
            return cooperation

    async def update_cooperation(
        self,
        cooperation_id: str,
        *,
        name: str | None = None,
        members: Sequence[str] | None = None,
        add: Sequence[str] = (),
        remove: Sequence[str] = (),
    ) -> Cooperation:
        """Rename, replace the member list, or add and remove single members.

        ``NOT_FOUND`` for an unknown cooperation; ``INVALID_PAYLOAD`` naming
        ``members`` for an unknown municipality. Removing a non-member or adding a
        member changes nothing. Listeners get ``cooperation_upserted`` only for an
        effective change; floors of the cooperation become invisible at once to
        the municipalities that left it (:func:`rooms.access.can_see_floor`).
        """
        async with self._write_lock:
            self._require_started()
            old = self._state.cooperations.get(cooperation_id)
            if old is None:
                raise DomainError(ErrorCode.NOT_FOUND, f"cooperation {cooperation_id!r}")
            listed = list(old.members if members is None else members)
            listed += [mid for mid in add if mid not in listed]
            gone = set(remove)
            new = Cooperation(
                old.id,
                old.name if name is None else check_name(name),
                self._check_members([mid for mid in listed if mid not in gone]),
            )
            if new != old:
                await self._put_cooperation(new)
            return new

    def _check_members(self, members: Sequence[str]) -> tuple[str, ...]:
        if len(members) > _MEMBERS_MAX:
            raise invalid("members", f"at most {_MEMBERS_MAX}")
        for mid in members:
            check_id(mid, "members")
            if mid not in self._state.municipalities:
                raise invalid("members", f"no such municipality {mid!r}")
        return tuple(dict.fromkeys(members))

    async def _put_cooperation(self, cooperation: Cooperation) -> None:
        await self._store.put_cooperation(cooperation)
        self._state.put_cooperation(cooperation)
        await self._emit(CampusChange("cooperation_upserted", "", cooperation=cooperation))
