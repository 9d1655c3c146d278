"""The tenant store in the campus's SQLite file (``storage.sqlite_path``), single node.

A table of its own, ``runtime_municipalities``, in the same file as the campus,
so one file holds everything a single node keeps (one backup). Created with
``CREATE TABLE IF NOT EXISTS``; the campus schema's ``user_version`` is left to
the campus store. Like the campus store, all work runs on one worker thread that
owns its connection; WAL mode lets both connections share the file. Writes are
single statements in autocommit mode with ``synchronous=FULL``: on disk when
the call returns. Limit: one process per file, not a cluster backend.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final, TypeVar

from presence_server.tenants.store import TenantRecord

__all__ = ["SqliteTenantStore"]

T = TypeVar("T")

_SCHEMA: Final = """
    CREATE TABLE IF NOT EXISTS runtime_municipalities (
        id     TEXT PRIMARY KEY,
        record TEXT NOT NULL            -- TenantRecord.to_json()
    )
"""


class SqliteTenantStore:
    """:class:`~presence_server.tenants.store.TenantStore` in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self._path = Path(path)
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tenants-sqlite")
        try:
            self._conn = await self._run(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        executor, self._executor = self._executor, None
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await asyncio.get_running_loop().run_in_executor(executor, conn.close)
        finally:
            executor.shutdown(wait=True)

    async def load(self) -> dict[str, TenantRecord]:
        def work() -> dict[str, TenantRecord]:
            rows = self._connection().execute("SELECT record FROM runtime_municipalities").fetchall()
            records = [TenantRecord.from_json(row[0]) for row in rows]
            return {r.id: r for r in records}

        return await self._run(work)

    async def get(self, municipality_id: str) -> TenantRecord | None:
        def work() -> TenantRecord | None:
            row = self._connection().execute(
                "SELECT record FROM runtime_municipalities WHERE id = ?", (municipality_id,)
            ).fetchone()
            return None if row is None else TenantRecord.from_json(row[0])

        return await self._run(work)

    async def create(self, record: TenantRecord) -> bool:
        sql = "INSERT INTO runtime_municipalities (id, record) VALUES (?, ?) ON CONFLICT(id) DO NOTHING"
        return await self._execute(sql, (record.id, record.to_json())) > 0

    async def replace(self, record: TenantRecord) -> bool:
        sql = "UPDATE runtime_municipalities SET record = ? WHERE id = ?"
        return await self._execute(sql, (record.to_json(), record.id)) > 0

    # -- worker-thread side -------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise RuntimeError("SqliteTenantStore is not open: call .open() first")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _execute(self, sql: str, params: tuple[object, ...]) -> int:
        def work() -> int:
            return self._connection().execute(sql, params).rowcount

        return await self._run(work)

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("SqliteTenantStore is not open: call .open() first")
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute(_SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn
