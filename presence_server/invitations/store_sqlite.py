"""Invitations in SQLite: the :class:`~presence_server.invitations.store.InvitationStore`
of a single node with ``storage.backend = "sqlite"`` (the default).

The table ``invitations`` lives in the campus file (``storage.sqlite_path``),
on a connection of its own: one file to back up. Like the campus store, all
work runs on one worker thread that owns the connection
(:class:`rooms.sqlite_worker.SqliteWorker`). A redemption is one
conditional ``UPDATE`` (``uses < max_uses`` and not revoked and not expired),
so even two processes on one file could not both count the last use; only a
refused one reads the row again to say why. One process per file, as for the
campus: this is not a cluster backend.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Final

from presence_server.invitations.store import Invitation, check_redeemable
from rooms.sqlite_worker import OnSqliteWorker, SharedTable

__all__ = ["SqliteInvitationStore"]

_COLUMNS: Final = (
    "id", "project_id", "municipality", "display_name", "max_uses", "uses", "expires_at", "revoked",
    "created_by", "created_at", "code_hash",
)  # fmt: skip
_SELECT: Final = f"SELECT {', '.join(_COLUMNS)} FROM invitations"

_SCHEMA: Final = SharedTable("""
CREATE TABLE IF NOT EXISTS invitations (
    id           TEXT PRIMARY KEY,
    project_id   TEXT NOT NULL,
    municipality TEXT NOT NULL,
    display_name TEXT NOT NULL,
    max_uses     INTEGER NOT NULL,
    uses         INTEGER NOT NULL,
    expires_at   REAL NOT NULL,
    revoked      INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    code_hash    TEXT NOT NULL UNIQUE
)
""")


class SqliteInvitationStore(OnSqliteWorker):
    """Invitation records in a SQLite file (WAL). One node; survives restarts."""

    def __init__(self, path: str | Path) -> None:
        # No foreign keys: the table references nothing.
        super().__init__(path, thread_name="invitations-sqlite", schema=_SCHEMA, foreign_keys=False)

    async def add(self, invitation: Invitation) -> None:
        record = invitation.to_record()
        row = tuple(int(record[c]) if c == "revoked" else record[c] for c in _COLUMNS)

        def work() -> None:
            try:
                self._worker.connection().execute(
                    f"INSERT INTO invitations ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})", row
                )
            except sqlite3.IntegrityError as exc:
                raise ValueError("invitation id or code already exists") from exc

        await self._worker.run(work)

    async def get(self, invitation_id: str) -> Invitation | None:
        return await self._worker.run(lambda: self._one("id", invitation_id))

    async def peek(self, code_hash: str) -> Invitation | None:
        return await self._worker.run(lambda: self._one("code_hash", code_hash))

    async def for_project(self, project_id: str) -> list[Invitation]:
        def work() -> list[Invitation]:
            sql = f"{_SELECT} WHERE project_id = ? ORDER BY created_at, id"
            rows = self._worker.connection().execute(sql, (project_id,))
            return [_invitation(row) for row in rows]

        return await self._worker.run(work)

    async def redeem(self, code_hash: str, *, now: float) -> Invitation:
        def work() -> Invitation:
            changed = self._worker.connection().execute(
                "UPDATE invitations SET uses = uses + 1"
                " WHERE code_hash = ? AND revoked = 0 AND expires_at > ? AND uses < max_uses",
                (code_hash, now),
            ).rowcount
            invitation = self._one("code_hash", code_hash)
            if changed != 1:
                check_redeemable(invitation, now)  # raises the reason
                raise RuntimeError("invitation redeemable but not counted")  # cannot happen on one thread
            assert invitation is not None
            return invitation

        return await self._worker.run(work)

    async def revoke(self, invitation_id: str) -> Invitation | None:
        def work() -> Invitation | None:
            self._worker.connection().execute("UPDATE invitations SET revoked = 1 WHERE id = ?", (invitation_id,))
            return self._one("id", invitation_id)

        return await self._worker.run(work)

    async def purge(self, *, expired_before: float) -> int:
        return await self._worker.execute("DELETE FROM invitations WHERE expires_at < ?", (expired_before,))

    # -- worker-thread side -------------------------------------------------

    def _one(self, column: str, value: str) -> Invitation | None:
        row = self._worker.connection().execute(f"{_SELECT} WHERE {column} = ?", (value,)).fetchone()
        return None if row is None else _invitation(row)


def _invitation(row: tuple[Any, ...]) -> Invitation:
    return Invitation.from_record(dict(zip(_COLUMNS, row)))
