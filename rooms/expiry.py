"""Removes project rooms whose expiry has passed.

Sleeps until the next expiry is due (at most ``period`` seconds) and is woken by
every campus change, so a room created with an expiry in ten seconds goes in ten
seconds, not at the next periodic sweep.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from rooms.campus import CampusService
from rooms.changes import CampusChange
from rooms.errors import StoreUnavailable

__all__ = ["RoomExpirer"]

log = logging.getLogger(__name__)


class RoomExpirer:
    def __init__(self, campus: CampusService, *, period: float, clock: Callable[[], float] = time.time) -> None:
        self._campus = campus
        self._period = period
        self._clock = clock
        self._wake = asyncio.Event()
        campus.add_listener(self)

    async def campus_changed(self, change: CampusChange) -> None:
        if change.kind == "room_upserted" and change.room is not None and change.room.expires_at is not None:
            self._wake.set()

    async def run(self) -> None:
        """Until cancelled. A store outage is logged and retried next round; any
        other error ends the run (the server runs it supervised: logged, counted,
        restarted)."""
        while True:
            try:
                for room in await self._campus.expire_rooms(self._clock()):
                    log.info("room expired: %s on %s", room.id, room.floor_id)
            except StoreUnavailable as exc:  # the next round retries
                log.warning("room expiry: store unavailable (%s)", exc)
            due = self._campus.next_expiry()
            delay = self._period if due is None else min(self._period, max(0.0, due - self._clock()))
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            except asyncio.TimeoutError:
                pass
