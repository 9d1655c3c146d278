"""The audit log: records what domain code reports, purges by age, answers reads.

:class:`AuditLog` is the server's :class:`~rooms.audit.AuditSink`. The campus
service and the knock service call :meth:`AuditLog.record` after a write has
succeeded; the log stamps the entry (id, time), appends it to the
:class:`~presence_server.audit.store.AuditStore` the backends chose, and counts
it in ``vo_audit_entries_total{action}``.

An outage never fails the act being recorded (it has happened): the entry is
logged in full (``audit_write_failed``), counted
(``vo_audit_write_failures_total``) and kept in a bounded queue on this node,
written again before the next entry and by the maintenance loop (appends are
idempotent by id, so a retry cannot duplicate). Only if the node stops, or
more than :data:`PENDING_MAX` entries wait, is an entry lost — and then its
log line is what remains.

The maintenance loop (``audit_maintenance``, supervised) retries what waits
every :data:`RETRY_SECONDS` and deletes entries older than
``audit.retention_days`` every :data:`PURGE_SECONDS` (and once at start),
counting them in ``vo_audit_purged_total``.

Reads: :meth:`AuditLog.for_municipality` (what the REST endpoint serves an
admin) and :meth:`AuditLog.for_project` (for a project's coordinators);
:meth:`AuditLog.stream` pages through either for an export.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any, Callable, Final

import structlog
from prometheus_client import Counter, Gauge

from presence_server.audit.store import AuditQuery, AuditStore
from presence_server.metrics import REGISTRY
from presence_server.supervise import supervised
from presence_server.tasks import cancel_and_wait
from rooms.audit import AuditEntry
from rooms.errors import StoreUnavailable
from rooms.person import PersonId

__all__ = [
    "AuditLog",
    "AUDIT_ENTRIES",
    "AUDIT_PURGED",
    "AUDIT_WRITE_FAILURES",
    "AUDIT_PENDING",
    "PURGE_SECONDS",
    "RETRY_SECONDS",
    "PENDING_MAX",
    "PAGE",
]

log = structlog.get_logger(__name__)

#: How often entries past their retention are deleted.
PURGE_SECONDS: Final = 3600.0
#: How often entries that could not be written are tried again.
RETRY_SECONDS: Final = 5.0
#: Entries a node holds for a retry at most; beyond that the oldest is dropped (it was logged).
PENDING_MAX: Final = 10_000
#: Entries read from the store per round trip by :meth:`AuditLog.stream`.
PAGE: Final = 500
_DAY: Final = 86400.0

AUDIT_ENTRIES: Final = Counter(
    "vo_audit_entries_total", "Audit entries written, by action.", ["action"], registry=REGISTRY
)
AUDIT_PURGED: Final = Counter(
    "vo_audit_purged_total", "Audit entries deleted after audit.retention_days.", registry=REGISTRY
)
AUDIT_WRITE_FAILURES: Final = Counter(
    "vo_audit_write_failures_total",
    "Audit entries the store could not take at the first attempt (logged in full as audit_write_failed; "
    "retried from this node's queue); result=dropped: given up because the queue was full; result=failed: "
    "refused for another reason than an outage (full disk, a bug), not retried.",
    ["result"],
    registry=REGISTRY,
)
AUDIT_PENDING: Final = Gauge(
    "vo_audit_pending", "Audit entries on this node waiting to be written again after a store outage.",
    registry=REGISTRY,
)


class AuditLog:
    """:class:`~rooms.audit.AuditSink` on an :class:`AuditStore`, with retention."""

    def __init__(
        self,
        store: AuditStore,
        *,
        retention_days: float,
        purge_seconds: float = PURGE_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if retention_days <= 0:
            raise ValueError("retention_days must be positive (config: audit.retention_days >= 1)")
        self.store = store
        self._retention = retention_days * _DAY
        self._purge_seconds = purge_seconds
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._pending: deque[AuditEntry] = deque()
        self._last_id: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def retention_seconds(self) -> float:
        return self._retention

    @property
    def pending(self) -> int:
        """Entries waiting on this node for the store to come back."""
        return len(self._pending)

    # ------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the maintenance loop (the store is opened by its owner, the backends)."""
        self._task = supervised("audit_maintenance", self._maintain_forever)

    async def close(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None
        if self._pending:  # their audit_write_failed lines are what remains of them
            log.error("audit_entries_lost_on_stop", count=len(self._pending), ids=[e.id for e in self._pending])

    async def _maintain_forever(self) -> None:
        next_purge = 0.0  # purge once at start
        while True:
            try:
                await self._flush()
                if time.monotonic() >= next_purge:
                    await self.purge()
                    next_purge = time.monotonic() + self._purge_seconds
            except StoreUnavailable as exc:  # the store away: next round
                log.warning("audit_maintenance_store_unavailable", error=str(exc))
            await asyncio.sleep(min(self._retry_seconds, self._purge_seconds))

    # ------------------------------------------------------------- recording
    async def record(
        self,
        action: str,
        *,
        actor: PersonId | None,
        target: Mapping[str, str],
        change: Mapping[str, Any] | None = None,
        scopes: Iterable[str] = (),
        project: str | None = None,
    ) -> AuditEntry:
        entry = AuditEntry.new(
            action, at=self._clock(), actor=actor, target=target, change=change, scopes=scopes, project=project,
            previous=self._last_id,  # this node's entries keep the order they were recorded in
        )
        self._last_id = entry.id
        try:
            await self._flush()  # older entries first, so the store receives them in order
            await self._append(entry)
        except StoreUnavailable as exc:
            self._hold(entry, exc)
        except Exception:
            # Not an outage (a full disk, a bug): retrying would block every later
            # entry behind this one. The log line is the record.
            AUDIT_WRITE_FAILURES.labels("failed").inc()
            log.exception("audit_write_failed", entry=entry.to_dict())
        return entry

    async def _append(self, entry: AuditEntry) -> None:
        await self.store.append(entry)
        AUDIT_ENTRIES.labels(entry.action).inc()
        log.debug("audit_recorded", id=entry.id, action=entry.action)

    def _hold(self, entry: AuditEntry, exc: StoreUnavailable) -> None:
        # The full entry goes to the log: if the node stops before the store is
        # back, this line is the record.
        AUDIT_WRITE_FAILURES.labels("retrying").inc()
        log.error("audit_write_failed", error=str(exc), entry=entry.to_dict())
        if len(self._pending) >= PENDING_MAX:
            dropped = self._pending.popleft()
            AUDIT_WRITE_FAILURES.labels("dropped").inc()
            log.error("audit_entry_dropped", id=dropped.id, action=dropped.action)
        self._pending.append(entry)
        AUDIT_PENDING.set(len(self._pending))

    async def _flush(self) -> None:
        """Write what waits, oldest first; stops (raising) at the first outage."""
        while self._pending:
            await self._append(self._pending[0])
            self._pending.popleft()
            AUDIT_PENDING.set(len(self._pending))
            if not self._pending:
                log.info("audit_pending_written")

    # --------------------------------------------------------------- retention
    async def purge(self) -> int:
        """Delete entries older than the retention now; returns how many."""
        before = self._clock() - self._retention
        purged = await self.store.purge(before=before)
        if purged:
            AUDIT_PURGED.inc(purged)
            log.info("audit_purged", count=purged, before=before)
        return purged

    # ------------------------------------------------------------------ reads
    async def for_municipality(
        self,
        municipality: str,
        *,
        since: float | None = None,
        until: float | None = None,
        after: str | None = None,
        limit: int = PAGE,
    ) -> list[AuditEntry]:
        """Entries a municipality's admins may read, oldest first (raises StoreUnavailable)."""
        query = AuditQuery(municipality=municipality, since=since, until=until, after=after, limit=limit)
        return await self.store.query(query)

    async def for_project(
        self,
        project_id: str,
        *,
        since: float | None = None,
        until: float | None = None,
        after: str | None = None,
        limit: int = PAGE,
    ) -> list[AuditEntry]:
        """Entries a project's coordinators may read, oldest first (raises StoreUnavailable).
        Who counts as a coordinator is the caller's to check."""
        query = AuditQuery(project=project_id, since=since, until=until, after=after, limit=limit)
        return await self.store.query(query)

    async def stream(
        self,
        *,
        municipality: str | None = None,
        project: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after: str | None = None,
        limit: int,
    ) -> AsyncIterator[AuditEntry]:
        """Up to ``limit`` entries of one scope, oldest first, read :data:`PAGE` at a time."""
        left = limit
        while left > 0:
            page = await self.store.query(
                AuditQuery(
                    municipality=municipality, project=project, since=since, until=until, after=after,
                    limit=min(PAGE, left),
                )
            )
            for entry in page:
                yield entry
            if len(page) < min(PAGE, left):
                return
            left -= len(page)
            after = page[-1].id
