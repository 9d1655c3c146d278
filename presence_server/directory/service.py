"""The people directory as the portal uses it: fed by presence, swept, read.

Presence hooks feed it: every connect and token refresh stores the token's
profile; when the person goes offline the entry is forgotten
(``portal.directory_retention_days = 0``, the default) or kept that many days.
Status, location and calls are never stored here; the portal reads them live
from the presence store and the call store.

A directory outage never costs anyone their connection: a failed write is
logged and written again by the next connect or token refresh, and entries
whose "gone" was lost expire on their own (``online_ttl``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Callable, Final

import structlog

from presence_server.directory.store import DirectoryStore
from presence_server.presence.service import PresenceHooks, PresenceService
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms.actors import Actor
from rooms.errors import StoreUnavailable
from rooms.people import Person

__all__ = ["DirectoryService", "SWEEP_SECONDS"]

log = structlog.get_logger(__name__)

#: How often expired directory entries are deleted.
SWEEP_SECONDS: Final = 60.0
_DAY: Final = 86400.0


class DirectoryService(PresenceHooks):
    def __init__(
        self,
        presence: PresenceService,
        store: DirectoryStore,
        *,
        retention_days: float,
        online_ttl: float,
        sweep_seconds: float = SWEEP_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``online_ttl``: how long an entry lives without a refresh while its person is
        online (a bound for entries whose "gone" never arrived, e.g. during an outage)."""
        self.store = store
        self._retention = retention_days * _DAY
        self._online_ttl = max(online_ttl, self._retention)
        self._sweep_seconds = sweep_seconds
        self._clock = clock
        self._sweeper: asyncio.Task[None] | None = None
        presence.add_hooks(self)

    @property
    def keeps_offline(self) -> bool:
        return self._retention > 0

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the sweep (the store is opened by its owner, the backends)."""
        self._sweeper = supervised("directory_sweep", self._sweep_forever)

    async def close(self) -> None:
        await cancel_and_wait(self._sweeper)
        self._sweeper = None

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            try:
                dropped = await self.store.sweep(now=self._clock())
            except StoreUnavailable as exc:  # the store away: next round
                log.warning("directory_sweep_store_unavailable", error=str(exc))
                continue
            if dropped:
                log.info("directory_swept", dropped=dropped)

    # ------------------------------------------------------------------ reads
    async def get(self, municipality: str, user_id: str) -> Person | None:
        """The entry, unless missing or expired now."""
        return await self.store.get(municipality, user_id, now=self._clock())

    async def people(self, municipalities: Iterable[str]) -> list[Person]:
        """Every unexpired entry of ``municipalities`` (in no particular order)."""
        return await self.store.people(municipalities, now=self._clock())

    # ------------------------------------------------------- presence hooks
    async def actor_seen(self, actor: Actor) -> None:
        if actor.is_guest:
            return  # visitors are not part of the staff directory
        try:
            await self.store.put(Person.of(actor, self._clock()), ttl=self._online_ttl)
        except StoreUnavailable:
            # A directory outage must not cost anyone their connection; the next
            # connect or token refresh writes the entry again.
            log.warning("directory_put_failed", person=actor.person_id, municipality=actor.municipality_id, exc_info=True)

    async def presence_ended(self, actor: Actor, since: float) -> None:
        if actor.is_guest:
            return
        try:
            if self.keeps_offline:
                await self.store.put(Person.of(actor, self._clock()), ttl=self._retention)
            else:
                # Seen after the linger began means they are back (on another node).
                await self.store.forget(actor.municipality_id, actor.user_id, seen_before=since)
        except StoreUnavailable:  # the entry expires by itself (online_ttl)
            log.warning("directory_end_failed", person=actor.person_id, municipality=actor.municipality_id, exc_info=True)
