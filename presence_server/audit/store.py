"""The audit trail's storage: entries appended, read by scope and time, purged by age.

Contract (the same for every store; ``tests/test_audit_store_contract.py`` runs
it against each):

* :meth:`AuditStore.append` stores an entry; an id already stored is left as
  it is (an entry never changes), so a retried append cannot duplicate;
* entries are ordered by id, which sorts by time
  (:func:`rooms.audit.new_entry_id`); every read returns them oldest first;
* :meth:`AuditStore.query` returns the entries of exactly one scope: a
  municipality (``entry.scopes`` contains it) or a project (``entry.project``
  is it), with ``since <= at < until`` (by the id's time part), only ids
  greater than ``after`` (a paging cursor: the last id of the previous page),
  at most ``limit``;
* :meth:`AuditStore.purge` deletes every entry recorded before ``before`` and
  returns how many; a purged entry is gone from every scope at once.

An outage raises :class:`rooms.errors.StoreUnavailable`.

Implementations: :class:`~presence_server.audit.store_memory.MemoryAuditStore`
(one node only, empty after a restart),
:class:`~presence_server.audit.store_sqlite.SqliteAuditStore` (the embedded
default of a single node: a file of its own) and
:class:`~presence_server.audit.store_redis.RedisAuditStore` (cluster mode).
"""

from __future__ import annotations

from typing import Protocol

from rooms.audit import AuditEntry, entry_id_bound

__all__ = ["AuditStore", "AuditQuery", "id_range"]


class AuditQuery:
    """Which entries a read wants; built by the log, checked here once."""

    __slots__ = ("municipality", "project", "since", "until", "after", "limit")

    def __init__(
        self,
        *,
        municipality: str | None = None,
        project: str | None = None,
        since: float | None = None,
        until: float | None = None,
        after: str | None = None,
        limit: int = 1000,
    ) -> None:
        if (municipality is None) == (project is None):
            raise ValueError("an audit query reads exactly one scope: a municipality or a project")
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.municipality = municipality
        self.project = project
        self.since = since
        self.until = until
        self.after = after
        self.limit = limit

    def matches(self, entry: AuditEntry) -> bool:
        """The scope and range test, for stores that filter in Python."""
        if self.municipality is not None and self.municipality not in entry.scopes:
            return False
        if self.project is not None and entry.project != self.project:
            return False
        low, inclusive, high = id_range(self)
        if low is not None and (entry.id < low or (entry.id == low and not inclusive)):
            return False
        return high is None or entry.id < high


def id_range(query: AuditQuery) -> tuple[str | None, bool, str | None]:
    """The query as ids: (lower bound, whether it is inclusive, upper bound, exclusive).

    The lower bound is ``since``'s (inclusive) or ``after`` (exclusive), whichever
    lies later; ids of entries at ``since`` start with its bound and so sort after it.
    """
    low = None if query.since is None else entry_id_bound(query.since)
    inclusive = True
    if query.after is not None and (low is None or query.after >= low):
        low, inclusive = query.after, False
    high = None if query.until is None else entry_id_bound(query.until)
    return low, inclusive, high


class AuditStore(Protocol):
    async def open(self) -> None:
        """Connect / prepare. Idempotent."""

    async def close(self) -> None:
        """Release resources. Idempotent."""

    async def append(self, entry: AuditEntry) -> None:
        """Store ``entry``; an id already stored is left as it is."""

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        """The entries of one scope in the query's range, oldest first, at most ``limit``."""

    async def purge(self, *, before: float) -> int:
        """Delete every entry recorded before ``before``; returns how many."""
