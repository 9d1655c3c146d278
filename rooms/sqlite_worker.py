"""One SQLite connection on one worker thread: the machinery every SQLite store shares.

``sqlite3`` blocks, and the event loop must not. A single-thread executor both
keeps the connection on the thread that created it and serialises every call,
so no lock is needed and calls run in the order they were made. A store owns a
:class:`SqliteWorker` (by subclassing :class:`OnSqliteWorker`, whose ``open``
and ``close`` are the worker's) and sends its work through :meth:`SqliteWorker.run`.

The connection is in autocommit mode (``isolation_level=None``): each write
statement commits on its own, and multi-statement work states its transaction
explicitly. Every file is in WAL mode, so several stores' connections can share
one file, and ``synchronous=FULL``: a write is on disk when its call returns.

The schema comes in one of two kinds, by who owns the file:

* :class:`Migrations` for a store that owns its file: numbered steps, the
  version kept in ``PRAGMA user_version``, a newer file refused.
* :class:`SharedTable` for a table in a file another store owns (the campus
  file): ``CREATE TABLE IF NOT EXISTS``, and ``user_version`` left alone, since
  it is the owner's.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["SqliteWorker", "OnSqliteWorker", "Migrations", "SharedTable"]

T = TypeVar("T")


@dataclass(frozen=True)
class Migrations:
    """A schema versioned in ``PRAGMA user_version``.

    ``steps[n]`` takes a file from version n to n + 1. Append, never edit:
    files in the field are at every version that was ever released. ``name``
    says whose schema it is in the error for a file newer than the code.
    """

    steps: tuple[str, ...]
    name: str = "schema"

    @property
    def version(self) -> int:
        return len(self.steps)

    def apply(self, conn: sqlite3.Connection, path: Path) -> None:
        version: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > self.version:
            raise RuntimeError(
                f"{path}: {self.name} version {version} is newer than this code ({self.version}); upgrade the server"
            )
        for target in range(version + 1, self.version + 1):
            # executescript() would commit on its own; split the script so each step
            # and its version bump land in one transaction or not at all.
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in self.steps[target - 1].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {target:d}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise


@dataclass(frozen=True)
class SharedTable:
    """One ``CREATE TABLE IF NOT EXISTS`` statement in a file another store
    versions; never reads or writes ``user_version``."""

    statement: str

    def apply(self, conn: sqlite3.Connection, path: Path) -> None:
        conn.execute(self.statement)


class SqliteWorker:
    """The one connection to ``path`` and the one thread it lives on.

    ``owner`` names the store in the "not open" errors; ``thread_name`` is the
    worker thread's name prefix; ``foreign_keys`` turns the pragma on (a store
    whose tables reference each other). ``open`` and ``close`` are idempotent.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        owner: str,
        thread_name: str,
        schema: Migrations | SharedTable,
        foreign_keys: bool,
    ) -> None:
        self._path = Path(path)
        self._owner = owner
        self._thread_name = thread_name
        self._schema = schema
        self._foreign_keys = foreign_keys
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    @property
    def path(self) -> Path:
        return self._path

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._thread_name)
        try:
            self._conn = await self.run(self._connect)
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

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the worker thread, after every call made before it."""
        if self._executor is None:
            raise RuntimeError(f"{self._owner} is not open: call .open() first")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def execute(self, sql: str, params: tuple[object, ...]) -> int:
        """Run one write statement; returns the number of rows it changed."""

        def work() -> int:
            return self.connection().execute(sql, params).rowcount

        return await self.run(work)

    def connection(self) -> sqlite3.Connection:
        """The connection; call it only on the worker thread (inside :meth:`run`)."""
        if self._conn is None:
            raise RuntimeError(f"{self._owner} is not open: call .open() first")
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self._path, isolation_level=None)  # autocommit; transactions stated
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if self._foreign_keys:
                conn.execute("PRAGMA foreign_keys=ON")
            # Other connections (another store's, on a shared file) may hold the write lock.
            conn.execute("PRAGMA busy_timeout=5000")
            self._schema.apply(conn, self._path)
        except BaseException:
            conn.close()
            raise
        return conn


class OnSqliteWorker:
    """Base of a store that runs on one :class:`SqliteWorker`, named for the
    store's class in its errors: the store's ``open`` and ``close`` are the
    worker's, and its methods reach the file through ``self._worker``."""

    def __init__(
        self, path: str | Path, *, thread_name: str, schema: Migrations | SharedTable, foreign_keys: bool
    ) -> None:
        self._worker = SqliteWorker(
            path, owner=type(self).__name__, thread_name=thread_name, schema=schema, foreign_keys=foreign_keys
        )

    async def open(self) -> None:
        await self._worker.open()

    async def close(self) -> None:
        await self._worker.close()
