"""The tenant store in the campus's SQLite file (``storage.sqlite_path``), single node.

A table of its own, ``runtime_municipalities``, in the same file as the campus,
so one file holds everything a single node keeps (one backup). Created with
``CREATE TABLE IF NOT EXISTS``; the campus schema's ``user_version`` is left to
the campus store. Like the campus store, all work runs on one worker thread that
owns its connection (:class:`rooms.sqlite_worker.SqliteWorker`); WAL mode lets
both connections share the file. Writes are single statements in autocommit
mode with ``synchronous=FULL``: on disk when the call returns. Limit: one process per file, not a cluster backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from presence_server.tenants.store import TenantRecord
from rooms.sqlite_worker import OnSqliteWorker, SharedTable

__all__ = ["SqliteTenantStore"]

_SCHEMA: Final = SharedTable("""
    CREATE TABLE IF NOT EXISTS runtime_municipalities (
        id     TEXT PRIMARY KEY,
        record TEXT NOT NULL            -- TenantRecord.to_json()
    )
""")


class SqliteTenantStore(OnSqliteWorker):
    """:class:`~presence_server.tenants.store.TenantStore` in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        # No foreign keys: the table references nothing.
        super().__init__(path, thread_name="tenants-sqlite", schema=_SCHEMA, foreign_keys=False)

    async def load(self) -> dict[str, TenantRecord]:
        def work() -> dict[str, TenantRecord]:
            rows = self._worker.connection().execute("SELECT record FROM runtime_municipalities").fetchall()
            records = [TenantRecord.from_json(row[0]) for row in rows]
            return {r.id: r for r in records}

        return await self._worker.run(work)

    async def get(self, municipality_id: str) -> TenantRecord | None:
        def work() -> TenantRecord | None:
            row = self._worker.connection().execute(
                "SELECT record FROM runtime_municipalities WHERE id = ?", (municipality_id,)
            ).fetchone()
            return None if row is None else TenantRecord.from_json(row[0])

        return await self._worker.run(work)

    async def create(self, record: TenantRecord) -> bool:
        sql = "INSERT INTO runtime_municipalities (id, record) VALUES (?, ?) ON CONFLICT(id) DO NOTHING"
        return await self._worker.execute(sql, (record.id, record.to_json())) > 0

    async def replace(self, record: TenantRecord) -> bool:
        sql = "UPDATE runtime_municipalities SET record = ? WHERE id = ?"
        return await self._worker.execute(sql, (record.to_json(), record.id)) > 0
