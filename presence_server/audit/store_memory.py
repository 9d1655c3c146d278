"""The audit trail in this process: the :class:`~presence_server.audit.store.AuditStore`
of a single node with ``storage.backend = "memory"``.

Single node only: another node cannot read it, and it is empty after a restart
(which is what a memory campus means anyway).
"""

from __future__ import annotations

import bisect

from presence_server.audit.store import AuditQuery, id_range
from rooms.audit import AuditEntry, entry_id_bound

__all__ = ["MemoryAuditStore"]


class MemoryAuditStore:
    """Entries in a list sorted by id. Single node only; forgotten on restart."""

    def __init__(self) -> None:
        self._ids: list[str] = []
        self._entries: dict[str, AuditEntry] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def append(self, entry: AuditEntry) -> None:
        if entry.id in self._entries:
            return  # an entry never changes: a retried append is a no-op
        bisect.insort(self._ids, entry.id)
        self._entries[entry.id] = entry

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        found: list[AuditEntry] = []
        low, _, high = id_range(query)
        start = 0 if low is None else bisect.bisect_left(self._ids, low)  # skip what lies before the range
        for entry_id in self._ids[start:]:
            if high is not None and entry_id >= high:
                break
            entry = self._entries[entry_id]
            if query.matches(entry):
                found.append(entry)
                if len(found) >= query.limit:
                    break
        return found

    async def purge(self, *, before: float) -> int:
        cut = bisect.bisect_left(self._ids, entry_id_bound(before))
        for entry_id in self._ids[:cut]:
            del self._entries[entry_id]
        del self._ids[:cut]
        return cut
