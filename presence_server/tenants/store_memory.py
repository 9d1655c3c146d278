"""The tenant store in this process's memory.

Limit: single node only, and nothing survives a restart: a municipality added
at runtime is gone after it (``storage.backend = "memory"`` is for tests and
trials). Each method runs without an await inside, so it is atomic on the loop.
"""

from __future__ import annotations

from presence_server.tenants.store import TenantRecord

__all__ = ["MemoryTenantStore"]


class MemoryTenantStore:
    """:class:`~presence_server.tenants.store.TenantStore` in a dict."""

    def __init__(self) -> None:
        self._records: dict[str, TenantRecord] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def load(self) -> dict[str, TenantRecord]:
        return dict(self._records)

    async def get(self, municipality_id: str) -> TenantRecord | None:
        return self._records.get(municipality_id)

    async def create(self, record: TenantRecord) -> bool:
        if record.id in self._records:
            return False
        self._records[record.id] = record
        return True

    async def replace(self, record: TenantRecord) -> bool:
        if record.id not in self._records:
            return False
        self._records[record.id] = record
        return True
