"""The audit trail in SQLite: the embedded default of a single node (``storage.backend = "sqlite"``).

A file of its own (``audit.sqlite_path``, by default ``audit.sqlite3`` beside
the campus file), not a
table in the campus file: the campus file versions its schema in ``PRAGMA
user_version`` and refuses versions it does not know, the two have different
lives (the campus is the office, the trail a record about it, purged by age),
and an operator may back them up, keep or hand over one without the other.

Schema (version 1)::

    audit_entries (id TEXT PRIMARY KEY, at REAL, project TEXT, body TEXT)  -- body: JSON of to_dict
    audit_scopes  (municipality TEXT, entry_id TEXT REFERENCES audit_entries ON DELETE CASCADE,
                   PRIMARY KEY (municipality, entry_id))

A read of one municipality walks its part of the ``audit_scopes`` key in id
order; a purge is one ``DELETE ... WHERE id < ?`` that takes the scope rows
with it. As in the campus store, one worker thread owns the one connection
(:class:`rooms.sqlite_worker.SqliteWorker`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final

from presence_server.audit.store import AuditQuery, id_range
from rooms.audit import AuditEntry, entry_id_bound
from rooms.sqlite_worker import Migrations, OnSqliteWorker

__all__ = ["SqliteAuditStore", "SCHEMA_VERSION"]

SCHEMA_VERSION: Final = 1

# _MIGRATIONS[n] takes the file from version n to n + 1. Append, never edit.
_MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE audit_entries (
        id      TEXT PRIMARY KEY,     -- sorts by time (rooms.audit.new_entry_id)
        at      REAL NOT NULL,
        project TEXT,
        body    TEXT NOT NULL         -- JSON of AuditEntry.to_dict()
    );
    CREATE INDEX audit_by_project ON audit_entries(project, id);
    CREATE TABLE audit_scopes (
        municipality TEXT NOT NULL,
        entry_id     TEXT NOT NULL REFERENCES audit_entries(id) ON DELETE CASCADE,
        PRIMARY KEY (municipality, entry_id)
    ) WITHOUT ROWID;
    CREATE INDEX audit_scopes_by_entry ON audit_scopes(entry_id);
    """,
)
_SCHEMA: Final = Migrations(_MIGRATIONS, name="audit schema")
assert _SCHEMA.version == SCHEMA_VERSION

# An entry never changes: a retried append of a stored id is a no-op.
_PUT: Final = "INSERT OR IGNORE INTO audit_entries (id, at, project, body) VALUES (?, ?, ?, ?)"


class SqliteAuditStore(OnSqliteWorker):
    """:class:`~presence_server.audit.store.AuditStore` in one SQLite file (WAL).
    One process per file: not a cluster backend."""

    def __init__(self, path: str | Path) -> None:
        # An audit entry is a record someone may have to produce: the worker pays for
        # synchronous=FULL, as the campus does.
        super().__init__(path, thread_name="audit-sqlite", schema=_SCHEMA, foreign_keys=True)

    @property
    def path(self) -> Path:
        return self._worker.path

    async def append(self, entry: AuditEntry) -> None:
        body = json.dumps(entry.to_dict(), ensure_ascii=False, separators=(",", ":"))

        def work() -> None:
            conn = self._worker.connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                if conn.execute(_PUT, (entry.id, entry.at, entry.project, body)).rowcount:
                    conn.executemany(
                        "INSERT INTO audit_scopes (municipality, entry_id) VALUES (?, ?)",
                        [(scope, entry.id) for scope in entry.scopes],
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._worker.run(work)

    async def query(self, query: AuditQuery) -> list[AuditEntry]:
        low, inclusive, high = id_range(query)
        where: list[str] = []
        params: list[Any] = []
        if query.municipality is not None:
            sql = "SELECT e.body FROM audit_scopes s JOIN audit_entries e ON e.id = s.entry_id WHERE s.municipality = ?"
            column = "s.entry_id"
            params.append(query.municipality)
        else:
            sql = "SELECT e.body FROM audit_entries e WHERE e.project = ?"
            column = "e.id"
            params.append(query.project)
        if low is not None:
            where.append(f"{column} {'>=' if inclusive else '>'} ?")
            params.append(low)
        if high is not None:
            where.append(f"{column} < ?")
            params.append(high)
        sql += "".join(f" AND {w}" for w in where) + f" ORDER BY {column} LIMIT ?"
        params.append(query.limit)

        def work() -> list[AuditEntry]:
            rows = self._worker.connection().execute(sql, params)
            return [AuditEntry.from_dict(json.loads(body)) for (body,) in rows]

        return await self._worker.run(work)

    async def purge(self, *, before: float) -> int:
        bound = entry_id_bound(before)
        return await self._worker.execute("DELETE FROM audit_entries WHERE id < ?", (bound,))
