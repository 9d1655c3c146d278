"""The registry of runtime municipalities on one node: store in, verifier and origins out.

Token verification (:class:`~presence_server.auth.TokenVerifier`) and the origin
checks (:class:`~presence_server.origins.TownOrigins`, shared by the socket
gateway, the HTTP API and Engine.IO) merge the configured municipalities with the
ones this service puts in from the :class:`~presence_server.tenants.store.TenantStore`.
Configured ids stay authoritative: a stored record for one is ignored (logged).

How a municipality added on node A reaches node B without a restart:

1. A writes the record to the shared store, then puts the municipality on the
   campus, whose ``municipality_upserted`` change travels to every node on the
   bus (``campus`` channel, like every campus change);
2. B's campus applies it and tells its listeners; this service, one of them,
   re-reads that record from the store and installs it (milliseconds);
3. a token of a municipality B does not know yet makes B look in the store once
   (:meth:`lookup`, at most once a second per id), in case the bus message is
   still on its way or was lost;
4. in cluster mode every node also re-reads the whole store every
   ``auth.runtime_refresh_seconds`` (a supervised loop), which covers changes
   missed while Redis was away.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Final

import structlog

from presence_server import metrics
from presence_server.auth import TokenVerifier
from presence_server.config import ConfigError
from presence_server.origins import TownOrigins
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from presence_server.tenants.store import TenantRecord, TenantStore
from rooms.campus import CampusService
from rooms.changes import CampusChange
from rooms.errors import StoreUnavailable

__all__ = ["TenantService", "LOOKUP_INTERVAL_SECONDS"]

log = structlog.get_logger(__name__)

#: A token of an unknown municipality makes a node look in the store at most this often per id.
LOOKUP_INTERVAL_SECONDS: Final = 1.0
_MUNICIPALITY_ID: Final = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
#: Ids remembered for that limit at most (unknown ids in forged tokens cost memory otherwise).
_LOOKUPS_MAX: Final = 10_000


class TenantService:
    """Keeps this node's verifier and origin checks in step with the tenant store."""

    def __init__(
        self,
        store: TenantStore,
        *,
        verifier: TokenVerifier,
        origins: TownOrigins,
        campus: CampusService,
        refresh_seconds: float | None = None,
    ) -> None:
        self.store = store
        self._verifier = verifier
        self._origins = origins
        self._refresh_seconds = refresh_seconds
        self._records: dict[str, TenantRecord] = {}
        self._looked_up: dict[str, float] = {}
        self._refresher: asyncio.Task[None] | None = None
        campus.add_listener(self)

    @property
    def records(self) -> dict[str, TenantRecord]:
        """The runtime municipalities this node verifies tokens of."""
        return dict(self._records)

    async def start(self) -> None:
        """Install every stored record; in cluster mode start the refresh loop.
        The store is opened by the backends; an outage here fails the start."""
        for record in (await self.store.load()).values():
            self.install(record)
        self._verifier.on_unknown = self.lookup
        if self._refresh_seconds is not None:
            self._refresher = supervised("tenant_refresh", self._refresh_forever)
        log.info("tenants_loaded", runtime_municipalities=len(self._records))

    async def close(self) -> None:
        self._verifier.on_unknown = None
        await cancel_and_wait(self._refresher)

    def install(self, record: TenantRecord) -> bool:
        """Verify ``record``'s tokens and allow its origins here from now on.
        False (and logged) for a configured id or settings that cannot verify."""
        if self._verifier.is_configured(record.id):
            log.warning("tenant_shadowed_by_config", municipality=record.id)
            return False
        if self._records.get(record.id) == record:
            return True
        try:
            self._verifier.put_runtime(record.id, record.auth)
        except (ConfigError, ValueError) as exc:  # a stored key that does not load (checked when written)
            log.error("tenant_unusable", municipality=record.id, error=str(exc))
            return False
        self._origins.set_town(record.id, record.auth.allowed_origins)
        self._records[record.id] = record
        metrics.RUNTIME_MUNICIPALITIES.set(len(self._records))
        log.info("tenant_installed", municipality=record.id, algorithm=record.auth.algorithm)
        return True

    async def reload(self, municipality_id: str) -> bool:
        """Read one record from the store and install it; False if there is none."""
        record = await self.store.get(municipality_id)
        return record is not None and self.install(record)

    async def refresh(self) -> int:
        """Install every record that is new or changed in the store; how many were."""
        changed = 0
        for record in (await self.store.load()).values():
            if self._records.get(record.id) != record and self.install(record):
                changed += 1
        return changed

    async def lookup(self, municipality_id: str) -> bool:
        """The verifier met a token of an unknown municipality: maybe another node
        just added it. Looks in the store at most once a second per id."""
        if not _MUNICIPALITY_ID.fullmatch(municipality_id):
            return False  # could never have been added: no store read for it
        now = time.monotonic()
        last = self._looked_up.get(municipality_id)
        if last is not None and now - last < LOOKUP_INTERVAL_SECONDS:
            return False
        if len(self._looked_up) >= _LOOKUPS_MAX:
            self._looked_up.clear()
        self._looked_up[municipality_id] = now
        try:
            return await self.reload(municipality_id)
        except StoreUnavailable:
            return False

    async def restore_store(self) -> int:
        """Write back what the store lost and this node holds (cluster mode: Redis
        came back empty). Only missing records are written; returns how many."""
        written = 0
        for record in list(self._records.values()):
            if await self.store.create(record):
                written += 1
        return written

    async def campus_changed(self, change: CampusChange) -> None:
        """Campus listener: a municipality added or changed on another node."""
        if change.kind != "municipality_upserted" or not change.remote or change.municipality is None:
            return
        try:
            await self.reload(change.municipality.id)
        except StoreUnavailable:
            log.warning("tenant_reload_unavailable", municipality=change.municipality.id)

    async def _refresh_forever(self) -> None:
        assert self._refresh_seconds is not None
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                changed = await self.refresh()
            except StoreUnavailable:
                log.warning("tenant_refresh_unavailable")
                continue
            if changed:
                log.info("tenants_refreshed", changed=changed)
